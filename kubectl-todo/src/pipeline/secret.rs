//! Reading the app's Secret before anything changes.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;

use crate::context::Connection;
use crate::project::Project;
use crate::retry::retry;
use crate::settings::Settings;

#[derive(Debug, thiserror::Error)]
#[error("Secret {name} in namespace {namespace} {problem}")]
pub struct MissingSecret {
    name: String,
    namespace: String,
    problem: String,
    /// `secrets create` refuses to make the namespace unless told to.
    namespace_missing: bool,
}

impl crate::report::Hinted for MissingSecret {
    fn hint(&self) -> Option<String> {
        let create_namespace = if self.namespace_missing {
            " --create-namespace"
        } else {
            ""
        };
        Some(format!(
            "create it with `kubectl todo secrets create -n {}{create_namespace}`; nothing was changed",
            self.namespace
        ))
    }
}
crate::report::hinted!(MissingSecret);

/// The checksum the pods carry of the Secret, read now and checked as
/// [`secret_data`] checks it. A Secret without the key of its checksum
/// gets one first: a write, so the caller holds the app's lock.
pub async fn secret_checksum(
    client: &kube::Client,
    project: &Project,
) -> anyhow::Result<Option<String>> {
    let Some(secret) = secret_data(client, project).await? else {
        return Ok(None);
    };
    let keyed = crate::secrets::with_checksum_key(client, secret).await?;
    Ok(crate::secrets::checksum(&keyed))
}

/// The Secret as it is, or an error before any change while a required key
/// is missing. Writes nothing.
pub async fn secret_data(
    client: &kube::Client,
    project: &Project,
) -> anyhow::Result<Option<Secret>> {
    let required: Vec<&str> = project
        .secret
        .keys
        .iter()
        .filter(|k| k.required)
        .map(|k| k.name.as_str())
        .collect();
    let api: Api<Secret> = Api::namespaced(client.clone(), &project.namespace);
    let secret = retry(|| api.get_opt(&project.secret.name))
        .await
        .map_err(|e| crate::apply::Error::api("get", "secrets", &project.secret.name, e))?;
    let missing = |problem: String, namespace_missing: bool| MissingSecret {
        name: project.secret.name.clone(),
        namespace: project.namespace.clone(),
        problem,
        namespace_missing,
    };
    let Some(secret) = secret else {
        if required.is_empty() {
            return Ok(None);
        }
        return Err(missing(
            "does not exist".into(),
            !namespace_exists(client, &project.namespace).await,
        )
        .into());
    };
    let data = secret.data.clone().unwrap_or_default();
    let absent: Vec<&str> = required
        .into_iter()
        .filter(|k| data.get(*k).is_none_or(|v| v.0.is_empty()))
        .collect();
    if !absent.is_empty() {
        return Err(missing(
            format!("lacks the required keys {}", absent.join(", ")),
            false,
        )
        .into());
    }
    Ok(Some(secret))
}

/// Whether the namespace is there; one that cannot be read (no permission to
/// get namespaces) counts as there, so the hint adds no flag it cannot back.
async fn namespace_exists(client: &kube::Client, namespace: &str) -> bool {
    let api: Api<Namespace> = Api::all(client.clone());
    !matches!(retry(|| api.get_opt(namespace)).await, Ok(None))
}

/// Best effort: rendering must work without a cluster, and says what it
/// left out (its commands with the run's global flags of `settings`).
pub async fn secret_checksum_best_effort(
    connect: impl Future<Output = anyhow::Result<Connection>>,
    project: &Project,
    settings: &Settings,
) -> Option<String> {
    // One line: the chain of a connection error repeats itself, and render
    // goes on without the cluster anyway.
    let lookup = async {
        let conn = connect.await?;
        let api: Api<Secret> = Api::namespaced(conn.client.clone(), &project.namespace);
        api.get_opt(&project.secret.name)
            .await
            .map_err(|e| crate::context::unreachable(e.into(), &conn))
    };
    match tokio::time::timeout(Duration::from_secs(5), lookup).await {
        Ok(Ok(Some(secret))) => {
            let sum = crate::secrets::checksum(&secret);
            if sum.is_none() {
                // Rendering only reads: the key is added by the next `up` or `secrets` write.
                let note = format!(
                    "note: Secret {} has no checksum key yet (the next `kubectl todo up` adds it); the pods carry no secret checksum",
                    project.secret.name
                );
                eprintln!("{}", crate::report::commands(&note, settings));
            }
            sum
        }
        Ok(Ok(None)) => {
            let note = format!(
                "note: Secret {} does not exist in namespace {}; the pods carry no secret checksum (create it with `kubectl todo secrets create`)",
                project.secret.name, project.namespace
            );
            eprintln!("{}", crate::report::commands(&note, settings));
            None
        }
        Ok(Err(e)) => {
            eprintln!(
                "note: {}; rendered without the checksum of Secret {} (`--offline` skips the lookup)",
                crate::context::describe(e.as_ref()),
                project.secret.name
            );
            None
        }
        Err(_) => {
            eprintln!(
                "note: the cluster did not answer in 5s; rendered without the Secret's checksum"
            );
            None
        }
    }
}
