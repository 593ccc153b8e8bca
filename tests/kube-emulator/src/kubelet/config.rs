//! A container's configuration as the kubelet resolves it before creating
//! the container: environment, security checks and resource limits. The
//! errors are the real kubelet's CreateContainerConfigError messages.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::cluster::Cluster;
use crate::resources;

/// The decoded data of a ConfigMap or Secret, or `None` when it does not exist.
pub(super) fn data(
    cluster: &Cluster,
    kind: &str,
    ns: &str,
    name: &str,
) -> Option<BTreeMap<String, Vec<u8>>> {
    let obj = cluster
        .store
        .try_get(resources::get("v1", kind), ns, name)?;
    let mut out = BTreeMap::new();
    if kind == "Secret" {
        for (k, v) in obj["data"].as_object().into_iter().flatten() {
            let bytes: k8s_openapi::ByteString =
                serde_json::from_value(v.clone()).unwrap_or(k8s_openapi::ByteString(Vec::new()));
            out.insert(k.clone(), bytes.0);
        }
    } else {
        for (k, v) in obj["data"].as_object().into_iter().flatten() {
            out.insert(
                k.clone(),
                v.as_str().unwrap_or_default().as_bytes().to_vec(),
            );
        }
        for (k, v) in obj["binaryData"].as_object().into_iter().flatten() {
            let bytes: k8s_openapi::ByteString =
                serde_json::from_value(v.clone()).unwrap_or(k8s_openapi::ByteString(Vec::new()));
            out.insert(k.clone(), bytes.0);
        }
    }
    Some(out)
}

fn lower(kind: &str) -> String {
    kind.to_lowercase()
}

/// `$(VAR)` references expand to variables defined so far; `$$` escapes.
pub(super) fn expand(s: &str, vars: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
            && let Some((_, v)) = vars.iter().rev().find(|(k, _)| k == &inner[..end])
        {
            out.push_str(v);
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn field_ref(pod: &Value, path: &str, pod_ip: &str) -> String {
    let meta_key = |field: &str| {
        path.strip_prefix(&format!("metadata.{field}['"))
            .and_then(|r| r.strip_suffix("']"))
            .map(|k| {
                pod["metadata"][field][k]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
    };
    if let Some(v) = meta_key("labels").or_else(|| meta_key("annotations")) {
        return v;
    }
    match path {
        "status.podIP" => pod_ip.to_string(),
        "status.hostIP" => "127.0.0.1".into(),
        "spec.serviceAccountName" => pod["spec"]["serviceAccountName"]
            .as_str()
            .unwrap_or("default")
            .into(),
        other => {
            let pointer = format!("/{}", other.replace('.', "/"));
            pod.pointer(&pointer)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        }
    }
}

fn resource_ref(container: &Value, r: &Value) -> String {
    let resource = r["resource"].as_str().unwrap_or_default();
    let (section, name) = resource.split_once('.').unwrap_or(("limits", resource));
    let q = crate::quantity::from_json(&container["resources"][section][name]);
    match (name, q) {
        // The downward API rounds CPU up to whole cores, at least one.
        ("cpu", Some(q)) => q.value().max(1).to_string(),
        (_, Some(q)) => q.value().to_string(),
        ("cpu", None) => "4".into(),
        (_, None) => "0".into(),
    }
}

/// A `configMapKeyRef` or `secretKeyRef`; `None` when optional and missing.
fn key_value(cluster: &Cluster, ns: &str, kind: &str, r: &Value) -> Result<Option<String>, String> {
    let obj = r["name"].as_str().unwrap_or_default();
    let key = r["key"].as_str().unwrap_or_default();
    let optional = r["optional"].as_bool() == Some(true);
    match data(cluster, kind, ns, obj).map(|d| d.get(key).cloned()) {
        Some(Some(v)) => Ok(Some(String::from_utf8_lossy(&v).into_owned())),
        _ if optional => Ok(None),
        None => Err(format!("{} \"{obj}\" not found", lower(kind))),
        Some(None) => Err(format!("couldn't find key {key} in {kind} {ns}/{obj}")),
    }
}

/// The container's environment, in Docker's `K=V` form.
pub(super) fn environment(
    cluster: &Cluster,
    pod: &Value,
    container: &Value,
    pod_ip: &str,
) -> Result<Vec<String>, String> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let mut vars: Vec<(String, String)> = Vec::new();
    for from in container["envFrom"].as_array().into_iter().flatten() {
        let prefix = from["prefix"].as_str().unwrap_or_default();
        let (kind, r) = match (from.get("configMapRef"), from.get("secretRef")) {
            (Some(r), _) => ("ConfigMap", r),
            (_, Some(r)) => ("Secret", r),
            _ => continue,
        };
        let name = r["name"].as_str().unwrap_or_default();
        match data(cluster, kind, ns, name) {
            Some(d) => vars.extend(d.into_iter().map(|(k, v)| {
                (
                    format!("{prefix}{k}"),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })),
            None if r["optional"].as_bool() == Some(true) => {}
            None => return Err(format!("{} \"{name}\" not found", lower(kind))),
        }
    }
    for e in container["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().unwrap_or_default().to_string();
        let value = match e.get("valueFrom") {
            None => expand(e["value"].as_str().unwrap_or_default(), &vars),
            Some(from) => {
                let key_ref = from
                    .get("configMapKeyRef")
                    .map(|r| ("ConfigMap", r))
                    .or_else(|| from.get("secretKeyRef").map(|r| ("Secret", r)));
                if let Some((kind, r)) = key_ref {
                    match key_value(cluster, ns, kind, r)? {
                        Some(v) => v,
                        None => continue,
                    }
                } else if let Some(f) = from.get("fieldRef") {
                    field_ref(pod, f["fieldPath"].as_str().unwrap_or_default(), pod_ip)
                } else if let Some(r) = from.get("resourceFieldRef") {
                    resource_ref(container, r)
                } else {
                    String::new()
                }
            }
        };
        vars.push((name, value));
    }
    Ok(vars.into_iter().map(|(k, v)| format!("{k}={v}")).collect())
}

/// The effective securityContext field: the container's, else the pod's.
pub(super) fn security<'a>(pod: &'a Value, container: &'a Value, field: &str) -> Option<&'a Value> {
    container
        .pointer(&format!("/securityContext/{field}"))
        .filter(|v| !v.is_null())
        .or_else(|| {
            pod.pointer(&format!("/spec/securityContext/{field}"))
                .filter(|v| !v.is_null())
        })
}

/// The kubelet's `runAsNonRoot` verification. `image_user` is `None` when
/// the image's user is unknown (a scripted image), which passes.
pub(super) fn verify_non_root(
    pod: &Value,
    container: &Value,
    image_user: Option<&str>,
) -> Result<(), String> {
    if security(pod, container, "runAsNonRoot").and_then(Value::as_bool) != Some(true) {
        return Ok(());
    }
    let c = container["name"].as_str().unwrap_or_default();
    let id = format!(
        "pod: \"{}_{}({})\", container: {c}",
        pod["metadata"]["name"].as_str().unwrap_or_default(),
        pod["metadata"]["namespace"].as_str().unwrap_or_default(),
        pod["metadata"]["uid"].as_str().unwrap_or_default()
    );
    if let Some(uid) = security(pod, container, "runAsUser").and_then(Value::as_i64) {
        return if uid == 0 {
            Err(format!(
                "container's runAsUser breaks non-root policy ({id})"
            ))
        } else {
            Ok(())
        };
    }
    let Some(user) = image_user else {
        return Ok(());
    };
    let user = user.split(':').next().unwrap_or_default();
    match user {
        "" | "root" | "0" => Err(format!(
            "container has runAsNonRoot and image will run as root ({id})"
        )),
        u if u.parse::<i64>().is_ok() => Ok(()),
        u => Err(format!(
            "container has runAsNonRoot and image has non-numeric user ({u}), cannot verify user is non-root ({id})"
        )),
    }
}

/// A resource quantity (`10Mi`, `1G`, `512k`, `1e3`) in base units.
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn variable_references_expand() {
        let vars = vec![("A".to_string(), "x".to_string())];
        assert_eq!(expand("$(A)-$(B)-$$(A)", &vars), "x-$(B)-$(A)");
    }

    #[test]
    fn non_root_checks_give_the_kubelet_messages() {
        let pod = json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": {"securityContext": {"runAsNonRoot": true}}});
        let c = json!({"name": "c"});
        assert_eq!(
            verify_non_root(&pod, &c, Some("")).unwrap_err(),
            "container has runAsNonRoot and image will run as root (pod: \"p_ns(u)\", container: c)"
        );
        assert!(
            verify_non_root(&pod, &c, Some("app"))
                .unwrap_err()
                .contains("non-numeric user (app)")
        );
        assert!(verify_non_root(&pod, &c, Some("1001")).is_ok());
        let root = json!({"name": "c", "securityContext": {"runAsUser": 0}});
        assert!(
            verify_non_root(&pod, &root, Some("1001"))
                .unwrap_err()
                .starts_with("container's runAsUser breaks")
        );
    }
}
