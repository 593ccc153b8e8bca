//! What the real API server does to an object before it is stored:
//! defaulting, allocation of cluster IPs and node ports, and validation.

use serde_json::{Value, json};

use crate::resources::ResourceDef;
use crate::status::{Cause, invalid_value, required};

const NODE_PORT_RANGE: std::ops::RangeInclusive<i64> = 30000..=32767;

fn set_default(obj: &mut Value, key: &str, value: Value) {
    if let Some(m) = obj.as_object_mut() {
        m.entry(key.to_string()).or_insert(value);
    }
}

fn image_pull_policy(image: &str) -> &'static str {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') {
        "IfNotPresent"
    } else {
        match last.split_once(':') {
            Some((_, "latest")) | None => "Always",
            Some(_) => "IfNotPresent",
        }
    }
}

fn default_probe(probe: &mut Value) {
    set_default(probe, "timeoutSeconds", json!(1));
    set_default(probe, "periodSeconds", json!(10));
    set_default(probe, "successThreshold", json!(1));
    set_default(probe, "failureThreshold", json!(3));
    if let Some(http) = probe.get_mut("httpGet") {
        set_default(http, "scheme", json!("HTTP"));
        set_default(http, "path", json!("/"));
    }
}

fn default_container(c: &mut Value) {
    set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(c, "terminationMessagePolicy", json!("File"));
    let policy = image_pull_policy(c["image"].as_str().unwrap_or_default());
    set_default(c, "imagePullPolicy", json!(policy));
    set_default(c, "resources", json!({}));
    if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports {
            set_default(p, "protocol", json!("TCP"));
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe) {
            default_probe(p);
        }
    }
    // Requests default to limits, as the real defaulting does.
    if let Some(limits) = c.pointer("/resources/limits").cloned()
        && let Some(res) = c.get_mut("resources")
    {
        let requests = res
            .as_object_mut()
            .expect("resources defaulted to an object")
            .entry("requests")
            .or_insert(json!({}));
        if let (Some(req), Some(lim)) = (requests.as_object_mut(), limits.as_object()) {
            for (k, v) in lim {
                req.entry(k.clone()).or_insert(v.clone());
            }
        }
    }
}

fn default_pod_spec(spec: &mut Value) {
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    set_default(spec, "securityContext", json!({}));
    for list in ["containers", "initContainers"] {
        if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
            cs.iter_mut().for_each(default_container);
        }
    }
}

/// Defaults applied on every write, so that re-applying the same manifest
/// yields exactly the same stored object.
pub fn default(def: &ResourceDef, obj: &mut Value) {
    match (def.group, def.kind) {
        ("", "Pod") => {
            if let Some(spec) = obj.get_mut("spec") {
                default_pod_spec(spec);
                set_default(spec, "serviceAccountName", json!("default"));
                set_default(spec, "enableServiceLinks", json!(true));
                set_default(spec, "priority", json!(0));
            }
        }
        ("apps", "Deployment") => {
            if let Some(spec) = obj.get_mut("spec") {
                set_default(spec, "replicas", json!(1));
                set_default(spec, "revisionHistoryLimit", json!(10));
                set_default(spec, "progressDeadlineSeconds", json!(600));
                set_default(spec, "strategy", json!({ "type": "RollingUpdate" }));
                if spec["strategy"]["type"] == "RollingUpdate" {
                    set_default(
                        &mut spec["strategy"],
                        "rollingUpdate",
                        json!({ "maxSurge": "25%", "maxUnavailable": "25%" }),
                    );
                }
                if let Some(t) = spec.pointer_mut("/template/spec") {
                    default_pod_spec(t);
                }
            }
        }
        ("apps", "ReplicaSet") => {
            if let Some(spec) = obj.get_mut("spec") {
                set_default(spec, "replicas", json!(1));
                if let Some(t) = spec.pointer_mut("/template/spec") {
                    default_pod_spec(t);
                }
            }
        }
        ("", "Service") => {
            if let Some(spec) = obj.get_mut("spec") {
                set_default(spec, "type", json!("ClusterIP"));
                set_default(spec, "sessionAffinity", json!("None"));
                set_default(spec, "ipFamilies", json!(["IPv4"]));
                set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
                set_default(spec, "internalTrafficPolicy", json!("Cluster"));
                if matches!(spec["type"].as_str(), Some("NodePort" | "LoadBalancer")) {
                    set_default(spec, "externalTrafficPolicy", json!("Cluster"));
                }
                if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports {
                        set_default(p, "protocol", json!("TCP"));
                        let port = p["port"].clone();
                        set_default(p, "targetPort", port);
                    }
                }
            }
        }
        ("", "Namespace") => {
            let name = obj["metadata"]["name"].clone();
            if let Some(meta) = obj.get_mut("metadata") {
                set_default(meta, "labels", json!({}));
                meta["labels"]["kubernetes.io/metadata.name"] = name;
            }
            set_default(obj, "spec", json!({ "finalizers": ["kubernetes"] }));
            set_default(obj, "status", json!({ "phase": "Active" }));
        }
        ("", "Secret") => {
            set_default(obj, "type", json!("Opaque"));
            if let Some(string_data) = obj.as_object_mut().and_then(|m| m.remove("stringData"))
                && let Some(sd) = string_data.as_object()
            {
                set_default(obj, "data", json!({}));
                for (k, v) in sd {
                    let encoded = base64_encode(v.as_str().unwrap_or_default().as_bytes());
                    obj["data"][k] = json!(encoded);
                }
            }
        }
        _ => {}
    }
}

/// Allocates a Service's cluster IP and node ports. `taken` lists the node
/// ports other Services hold.
pub fn allocate_service(
    obj: &mut Value,
    old: Option<&Value>,
    taken: &[i64],
    next_ip: u32,
) -> Vec<Cause> {
    let mut causes = Vec::new();
    let Some(spec) = obj.get_mut("spec") else {
        return causes;
    };
    if spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        let ip = old
            .and_then(|o| o.pointer("/spec/clusterIP").cloned())
            .unwrap_or_else(|| json!(format!("10.96.{}.{}", next_ip / 250, next_ip % 250 + 1)));
        spec["clusterIP"] = ip;
    }
    let ip = spec["clusterIP"].clone();
    set_default(spec, "clusterIPs", json!([ip]));
    let wants_node_port = matches!(spec["type"].as_str(), Some("NodePort" | "LoadBalancer"));
    let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) else {
        return causes;
    };
    let mut used: Vec<i64> = taken.to_vec();
    for (i, p) in ports.iter_mut().enumerate() {
        if !wants_node_port {
            if let Some(m) = p.as_object_mut() {
                m.remove("nodePort");
            }
            continue;
        }
        match p.get("nodePort").and_then(Value::as_i64) {
            Some(np) if !NODE_PORT_RANGE.contains(&np) => causes.push(invalid_value(
                &format!("spec.ports[{i}].nodePort"),
                &json!(np),
                "provided port is not in the valid range. The range of valid ports is 30000-32767",
            )),
            Some(np) if used.contains(&np) => causes.push(invalid_value(
                &format!("spec.ports[{i}].nodePort"),
                &json!(np),
                "provided port is already allocated",
            )),
            Some(np) => used.push(np),
            None => {
                let previous = old.and_then(|o| {
                    o.pointer("/spec/ports")?
                        .as_array()?
                        .iter()
                        .find(|op| op["port"] == p["port"])?
                        .get("nodePort")?
                        .as_i64()
                });
                let np = previous
                    .or_else(|| NODE_PORT_RANGE.clone().find(|n| !used.contains(n)))
                    .unwrap_or(*NODE_PORT_RANGE.end());
                used.push(np);
                p["nodePort"] = json!(np);
            }
        }
    }
    causes
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

fn is_label_value(s: &str) -> bool {
    s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && s.chars().next().is_none_or(|c| c.is_ascii_alphanumeric())
        && s.chars().last().is_none_or(|c| c.is_ascii_alphanumeric())
}

fn validate_name(def: &ResourceDef, name: &str, causes: &mut Vec<Cause>) {
    let label_only = matches!(def.kind, "Namespace" | "Service" | "Pod");
    let ok = if label_only {
        is_dns_label(name)
    } else {
        is_dns_subdomain(name)
    };
    if !ok {
        let rule = if label_only {
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        } else {
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        };
        causes.push(invalid_value("metadata.name", &json!(name), rule));
    }
}

fn validate_pod_spec(spec: &Value, prefix: &str, causes: &mut Vec<Cause>) {
    let containers = spec["containers"].as_array();
    if containers.is_none_or(|c| c.is_empty()) {
        causes.push(required(&format!("{prefix}.containers")));
        return;
    }
    let mut names = Vec::new();
    for (i, c) in containers.into_iter().flatten().enumerate() {
        let field = format!("{prefix}.containers[{i}]");
        match c["name"].as_str() {
            None | Some("") => causes.push(required(&format!("{field}.name"))),
            Some(n) if names.contains(&n) => causes.push(Cause {
                reason: "FieldValueDuplicate".into(),
                message: format!("Duplicate value: \"{n}\""),
                field: format!("{field}.name"),
            }),
            Some(n) => names.push(n),
        }
        if c["image"].as_str().is_none_or(|s| s.trim().is_empty()) {
            causes.push(required(&format!("{field}.image")));
        }
    }
}

/// Validation as the real server does it, reduced to the rules our users meet.
pub fn validate(def: &ResourceDef, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    if name.is_empty() {
        causes.push(required("metadata.name"));
    } else {
        validate_name(def, name, &mut causes);
    }
    if let Some(labels) = obj.pointer("/metadata/labels").and_then(Value::as_object) {
        for (k, v) in labels {
            let value = v.as_str().unwrap_or_default();
            if !is_label_value(value) {
                causes.push(invalid_value(
                    "metadata.labels",
                    v,
                    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
                ));
            }
            let _ = k;
        }
    }
    match (def.group, def.kind) {
        ("apps", "Deployment" | "ReplicaSet") => {
            let selector = obj.pointer("/spec/selector");
            if selector.is_none_or(|s| s.as_object().is_none_or(|m| m.is_empty())) {
                causes.push(required("spec.selector"));
            } else {
                let sel = crate::selector::LabelSelector::from_object(selector.expect("checked"));
                let labels = obj.pointer("/spec/template/metadata/labels");
                if !sel.matches_labels(labels) {
                    causes.push(invalid_value(
                        "spec.template.metadata.labels",
                        labels.unwrap_or(&Value::Null),
                        "`selector` does not match template `labels`",
                    ));
                }
                if let Some(old_sel) = old.and_then(|o| o.pointer("/spec/selector"))
                    && old_sel != selector.expect("checked")
                {
                    causes.push(invalid_value(
                        "spec.selector",
                        selector.expect("checked"),
                        "field is immutable",
                    ));
                }
            }
            if let Some(r) = obj.pointer("/spec/replicas").and_then(Value::as_i64)
                && r < 0
            {
                causes.push(invalid_value(
                    "spec.replicas",
                    &json!(r),
                    "must be greater than or equal to 0",
                ));
            }
            match obj.pointer("/spec/template/spec") {
                Some(spec) => validate_pod_spec(spec, "spec.template.spec", &mut causes),
                None => causes.push(required("spec.template.spec.containers")),
            }
        }
        ("", "Pod") => match obj.get("spec") {
            Some(spec) => validate_pod_spec(spec, "spec", &mut causes),
            None => causes.push(required("spec.containers")),
        },
        ("", "Service") => {
            let headless = obj.pointer("/spec/clusterIP").and_then(Value::as_str) == Some("None");
            let ports = obj.pointer("/spec/ports").and_then(Value::as_array);
            if ports.is_none_or(|p| p.is_empty())
                && !headless
                && obj.pointer("/spec/type").and_then(Value::as_str) != Some("ExternalName")
            {
                causes.push(required("spec.ports"));
            }
            for (i, p) in ports.into_iter().flatten().enumerate() {
                let port = p["port"].as_i64().unwrap_or(0);
                if !(1..=65535).contains(&port) {
                    causes.push(invalid_value(
                        &format!("spec.ports[{i}].port"),
                        &p["port"],
                        "must be between 1 and 65535, inclusive",
                    ));
                }
            }
        }
        ("", "ConfigMap" | "Secret") => {
            for field in ["data", "binaryData"] {
                if let Some(data) = obj.get(field).and_then(Value::as_object) {
                    for k in data.keys() {
                        let ok = !k.is_empty()
                            && k.len() <= 253
                            && k.chars()
                                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
                        if !ok {
                            causes.push(invalid_value(&format!("{field}[{k}]"), &json!(k), "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"));
                        }
                    }
                }
            }
            if def.kind == "Secret" {
                let size: usize = obj
                    .get("data")
                    .and_then(Value::as_object)
                    .map(|d| {
                        d.values()
                            .map(|v| v.as_str().map_or(0, |s| s.len() * 3 / 4))
                            .sum()
                    })
                    .unwrap_or(0);
                if size > 1024 * 1024 {
                    causes.push(Cause {
                        reason: "FieldValueTooLong".into(),
                        message: "Too long: must have at most 1048576 bytes".into(),
                        field: "data".into(),
                    });
                }
            }
        }
        _ => {}
    }
    causes
}

pub fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources;

    #[test]
    fn deployment_defaults_are_idempotent() {
        let def = resources::get("apps/v1", "Deployment");
        let mut d = json!({ "metadata": { "name": "web" }, "spec": { "selector": { "matchLabels": { "a": "b" } },
            "template": { "metadata": { "labels": { "a": "b" } }, "spec": { "containers": [{ "name": "c", "image": "x:1" }] } } } });
        default(def, &mut d);
        let once = d.clone();
        default(def, &mut d);
        assert_eq!(d, once);
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "IfNotPresent"
        );
        assert!(validate(def, &d, None).is_empty());
    }

    #[test]
    fn selector_mismatch_is_invalid() {
        let def = resources::get("apps/v1", "Deployment");
        let d = json!({ "metadata": { "name": "web" }, "spec": { "selector": { "matchLabels": { "a": "b" } },
            "template": { "metadata": { "labels": { "a": "c" } }, "spec": { "containers": [{ "name": "c", "image": "x" }] } } } });
        let causes = validate(def, &d, None);
        assert_eq!(causes[0].field, "spec.template.metadata.labels");
    }

    #[test]
    fn node_ports_are_allocated_and_checked() {
        let mut svc = json!({ "spec": { "type": "NodePort", "ports": [{ "port": 80 }] } });
        assert!(allocate_service(&mut svc, None, &[30000], 1).is_empty());
        assert_eq!(svc["spec"]["ports"][0]["nodePort"], 30001);
        let mut clash =
            json!({ "spec": { "type": "NodePort", "ports": [{ "port": 80, "nodePort": 30001 }] } });
        assert_eq!(allocate_service(&mut clash, None, &[30001], 2).len(), 1);
    }

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64_encode(b"hello"), "aGVsbG8=");
        assert_eq!(base64_encode(b"ab"), "YWI=");
        assert_eq!(base64_encode(b"abc"), "YWJj");
    }
}
