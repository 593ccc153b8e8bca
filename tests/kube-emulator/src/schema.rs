//! Field validation by the typed Kubernetes objects: a body that does not
//! decode is a 400, and with `fieldValidation=Strict` so is an unknown field.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::resources::ResourceDef;
use crate::status::ApiError;

fn round_trip<T: DeserializeOwned + Serialize>(obj: &Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(obj.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(typed).map_err(|e| e.to_string())
}

/// The object decoded into its k8s-openapi type and encoded again; `None`
/// for kinds the emulator only stores.
fn typed_round_trip(def: &ResourceDef, obj: &Value) -> Option<Result<Value, String>> {
    use k8s_openapi::api::{
        apps::v1 as apps, autoscaling::v2 as autoscaling, batch::v1 as batch,
        coordination::v1 as coordination, core::v1 as core, discovery::v1 as discovery,
        networking::v1 as networking, policy::v1 as policy, rbac::v1 as rbac,
    };
    Some(match (def.group, def.kind) {
        ("", "Pod") => round_trip::<core::Pod>(obj),
        ("", "Service") => round_trip::<core::Service>(obj),
        ("", "Endpoints") => round_trip::<core::Endpoints>(obj),
        ("", "ConfigMap") => round_trip::<core::ConfigMap>(obj),
        ("", "Secret") => round_trip::<core::Secret>(obj),
        ("", "Event") => round_trip::<core::Event>(obj),
        ("", "ServiceAccount") => round_trip::<core::ServiceAccount>(obj),
        ("", "Namespace") => round_trip::<core::Namespace>(obj),
        ("", "Node") => round_trip::<core::Node>(obj),
        ("", "PersistentVolumeClaim") => round_trip::<core::PersistentVolumeClaim>(obj),
        ("", "ResourceQuota") => round_trip::<core::ResourceQuota>(obj),
        ("", "LimitRange") => round_trip::<core::LimitRange>(obj),
        ("apps", "Deployment") => round_trip::<apps::Deployment>(obj),
        ("apps", "ReplicaSet") => round_trip::<apps::ReplicaSet>(obj),
        ("apps", "StatefulSet") => round_trip::<apps::StatefulSet>(obj),
        ("apps", "DaemonSet") => round_trip::<apps::DaemonSet>(obj),
        ("apps", "ControllerRevision") => round_trip::<apps::ControllerRevision>(obj),
        ("batch", "Job") => round_trip::<batch::Job>(obj),
        ("batch", "CronJob") => round_trip::<batch::CronJob>(obj),
        ("autoscaling", "HorizontalPodAutoscaler") => {
            round_trip::<autoscaling::HorizontalPodAutoscaler>(obj)
        }
        ("discovery.k8s.io", "EndpointSlice") => round_trip::<discovery::EndpointSlice>(obj),
        ("coordination.k8s.io", "Lease") => round_trip::<coordination::Lease>(obj),
        ("networking.k8s.io", "NetworkPolicy") => round_trip::<networking::NetworkPolicy>(obj),
        ("networking.k8s.io", "Ingress") => round_trip::<networking::Ingress>(obj),
        ("policy", "PodDisruptionBudget") => round_trip::<policy::PodDisruptionBudget>(obj),
        ("rbac.authorization.k8s.io", "Role") => round_trip::<rbac::Role>(obj),
        ("rbac.authorization.k8s.io", "RoleBinding") => round_trip::<rbac::RoleBinding>(obj),
        ("rbac.authorization.k8s.io", "ClusterRole") => round_trip::<rbac::ClusterRole>(obj),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            round_trip::<rbac::ClusterRoleBinding>(obj)
        }
        _ => return None,
    })
}

fn unknown(input: &Value, known: &Value, path: &mut String, out: &mut Vec<String>) {
    match (input, known) {
        (Value::Object(i), Value::Object(k)) => {
            for (key, v) in i {
                let len = path.len();
                path.push('.');
                path.push_str(key);
                match k.get(key) {
                    Some(kv) => unknown(v, kv, path, out),
                    None if !v.is_null() => out.push(path.clone()),
                    None => {}
                }
                path.truncate(len);
            }
        }
        (Value::Array(i), Value::Array(k)) => {
            for (idx, (v, kv)) in i.iter().zip(k).enumerate() {
                let len = path.len();
                path.push_str(&format!("[{idx}]"));
                unknown(v, kv, path, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// Checks a request body. `strict` turns unknown fields into errors.
pub fn check(def: &ResourceDef, obj: &Value, strict: bool) -> Result<(), ApiError> {
    let mut body = obj.clone();
    // apiVersion and kind are checked elsewhere; typed decoding ignores them.
    if let Some(m) = body.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
    }
    let Some(result) = typed_round_trip(def, &body) else {
        return Ok(());
    };
    let known = result.map_err(|e| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {e}",
            def.kind, def.version, def.kind
        ))
    })?;
    if !strict {
        return Ok(());
    }
    let mut fields = Vec::new();
    unknown(&body, &known, &mut String::new(), &mut fields);
    if fields.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = fields
        .iter()
        .map(|f| format!("unknown field \"{}\"", f.trim_start_matches('.')))
        .collect();
    Err(ApiError::bad_request(format!(
        "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
        def.kind,
        def.version,
        def.kind,
        list.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_named_with_their_paths() {
        let def = resources::get("apps/v1", "Deployment");
        let d = json!({ "metadata": { "name": "x" }, "spec": { "replicas": 1, "replica": 2,
            "template": { "spec": { "containers": [{ "name": "a", "image": "b", "imagePolicy": "x" }] } } } });
        let err = check(def, &d, true).unwrap_err();
        assert!(
            err.message.contains("unknown field \"spec.replica\""),
            "{}",
            err.message
        );
        assert!(
            err.message
                .contains("spec.template.spec.containers[0].imagePolicy"),
            "{}",
            err.message
        );
        assert!(check(def, &d, false).is_ok());
    }

    #[test]
    fn wrong_types_are_bad_requests() {
        let def = resources::get("apps/v1", "Deployment");
        let err = check(def, &json!({ "spec": { "replicas": "two" } }), false).unwrap_err();
        assert_eq!(err.code, 400);
    }
}
