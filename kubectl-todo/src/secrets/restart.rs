//! Rolling the Deployments that use the Secret: pods read Secret values
//! only when they start, so a changed value needs new pods. A checksum of
//! the data in the pod template's annotations makes the change a rollout.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::PodSpec;
use kube::api::{Api, ListParams, Patch, PatchParams};

use crate::labels::{FIELD_MANAGER, SECRET_CHECKSUM_ANNOTATION};

use super::error::Error;

/// The Deployments in the namespace whose pods read the Secret.
pub async fn users(
    client: &kube::Client,
    namespace: &str,
    secret: &str,
) -> Result<Vec<Deployment>, Error> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|e| restart_error(secret, namespace, &e))?;
    Ok(list
        .items
        .into_iter()
        .filter(|d| {
            d.spec
                .as_ref()
                .and_then(|s| s.template.spec.as_ref())
                .is_some_and(|pod| uses_secret(pod, secret))
        })
        .collect())
}

/// What [`roll`] did: how many Deployments use the Secret, and which of
/// them (sorted) it rolled.
pub struct Rolled {
    pub users: usize,
    pub restarted: Vec<String>,
}

/// Sets the checksum on each Deployment whose pods run with another one.
pub async fn roll(
    client: &kube::Client,
    namespace: &str,
    secret: &str,
    checksum: &str,
) -> Result<Rolled, Error> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let mut restarted = Vec::new();
    let users = users(client, namespace, secret).await?;
    let count = users.len();
    for deployment in users {
        let name = deployment.metadata.name.clone().unwrap_or_default();
        let current = deployment
            .spec
            .as_ref()
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get(SECRET_CHECKSUM_ANNOTATION));
        if current.map(String::as_str) == Some(checksum) {
            continue;
        }
        // A merge patch, not an apply: an apply of this one field by the
        // manager `up` uses would drop every other field `up` owns.
        let patch = serde_json::json!({
            "spec": {"template": {"metadata": {"annotations": {SECRET_CHECKSUM_ANNOTATION: checksum}}}}
        });
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        api.patch(&name, &params, &Patch::Strategic(&patch))
            .await
            .map_err(|e| restart_error(secret, namespace, &e))?;
        restarted.push(name);
    }
    restarted.sort();
    Ok(Rolled {
        users: count,
        restarted,
    })
}

fn restart_error(secret: &str, namespace: &str, err: &kube::Error) -> Error {
    // Nothing the Deployment requests carry is secret, so the message needs no redaction.
    let message = match err {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    };
    Error::Restart {
        secret: secret.to_string(),
        namespace: namespace.to_string(),
        message,
    }
}

/// Whether a pod reads the Secret through env, envFrom or a volume.
pub fn uses_secret(pod: &PodSpec, secret: &str) -> bool {
    let containers = pod
        .containers
        .iter()
        .chain(pod.init_containers.iter().flatten());
    for c in containers {
        let by_env = c.env.iter().flatten().any(|e| {
            e.value_from
                .as_ref()
                .and_then(|v| v.secret_key_ref.as_ref())
                .is_some_and(|r| r.name == secret)
        });
        let by_env_from = c
            .env_from
            .iter()
            .flatten()
            .any(|e| e.secret_ref.as_ref().is_some_and(|r| r.name == secret));
        if by_env || by_env_from {
            return true;
        }
    }
    pod.volumes.iter().flatten().any(|v| {
        v.secret
            .as_ref()
            .is_some_and(|s| s.secret_name.as_deref() == Some(secret))
            || v.projected.as_ref().is_some_and(|p| {
                p.sources
                    .iter()
                    .flatten()
                    .any(|s| s.secret.as_ref().is_some_and(|r| r.name == secret))
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> PodSpec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn every_way_of_reading_a_secret_counts() {
        let env = pod(serde_json::json!({"containers": [{"name": "a", "env": [
            {"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": "X"}}}]}]}));
        let env_from = pod(serde_json::json!({"containers": [{"name": "a"}],
            "initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "s"}}]}]}));
        let volume = pod(serde_json::json!({"containers": [{"name": "a"}],
            "volumes": [{"name": "v", "secret": {"secretName": "s"}}]}));
        let projected = pod(serde_json::json!({"containers": [{"name": "a"}],
            "volumes": [{"name": "v", "projected": {"sources": [{"secret": {"name": "s"}}]}}]}));
        for p in [&env, &env_from, &volume, &projected] {
            assert!(uses_secret(p, "s"));
            assert!(!uses_secret(p, "other"));
        }
        let config_map = pod(
            serde_json::json!({"containers": [{"name": "a", "envFrom": [{"configMapRef": {"name": "s"}}]}]}),
        );
        assert!(!uses_secret(&config_map, "s"));
    }
}
