//! The deployment controller's pure helpers, after the real
//! `pkg/controller/deployment/util`: template hashes, surge and
//! unavailability fenceposts, revision annotations and conditions.

use serde_json::{Map, Value, json};

use super::{creation, int, name};
use crate::time;

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
pub const HASH_LABEL: &str = "pod-template-hash";
const MAX_REVISION_HISTORY_CHARS: usize = 2000;

pub fn replicas(obj: &Value) -> i64 {
    int(obj, "/spec/replicas")
}

pub fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/annotations")?.get(key)?.as_str()
}

fn set_annotation(obj: &mut Value, key: &str, value: &str) {
    if !obj["metadata"]["annotations"].is_object() {
        obj["metadata"]["annotations"] = json!({});
    }
    obj["metadata"]["annotations"][key] = json!(value);
}

pub fn revision(rs: &Value) -> i64 {
    annotation(rs, REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// Oldest first, then by name, as `ReplicaSetsByCreationTimestamp`.
pub fn by_creation(a: &Value, b: &Value) -> std::cmp::Ordering {
    (creation(a), name(a)).cmp(&(creation(b), name(b)))
}

/// Drops what Go's semantic equality does not see: nulls, empty maps and lists.
fn normalized(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Object(m) => {
            let m: Map<String, Value> = m
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), normalized(v)?)))
                .collect();
            (!m.is_empty()).then_some(Value::Object(m))
        }
        Value::Array(a) => {
            let a: Vec<Value> = a
                .iter()
                .map(|v| normalized(v).unwrap_or(Value::Null))
                .collect();
            (!a.is_empty()).then_some(Value::Array(a))
        }
        v => Some(v.clone()),
    }
}

fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(labels) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(HASH_LABEL);
    }
    normalized(&t).unwrap_or(Value::Null)
}

/// `EqualIgnoreHash`: the templates are the same but for the hash label.
pub fn same_template(a: &Value, b: &Value) -> bool {
    without_hash(a) == without_hash(b)
}

fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for k in keys {
                out.push_str(&json!(k).to_string());
                out.push(':');
                canonical(&m[k], out);
                out.push(',');
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for v in a {
                canonical(v, out);
                out.push(',');
            }
            out.push(']');
        }
        v => out.push_str(&v.to_string()),
    }
}

/// `controller.ComputeHash`: FNV-32a of the template (and the collision
/// count), its decimal digits spelt in the safe alphabet, as in `nginx-66b6c48dd5`.
pub fn template_hash(template: &Value, collision_count: Option<i64>) -> String {
    let mut text = String::new();
    canonical(&without_hash(template), &mut text);
    let mut bytes = text.into_bytes();
    if let Some(c) = collision_count {
        bytes.extend_from_slice(&(c as u32).to_le_bytes());
    }
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    h.to_string()
        .bytes()
        .map(|c| ALPHABET[usize::from(c) % ALPHABET.len()] as char)
        .collect()
}

/// The template of a new replica set: the deployment's, labelled with its hash.
pub fn with_hash_label(v: &Value, pointer: &str, hash: &str) -> Value {
    let mut v = v.clone();
    if v.pointer(pointer).is_none_or(|m| !m.is_object()) {
        let (parent, key) = pointer.rsplit_once('/').expect("an absolute pointer");
        if let Some(p) = v.pointer_mut(parent) {
            p[key] = json!({});
        }
    }
    if let Some(m) = v.pointer_mut(pointer).and_then(Value::as_object_mut) {
        m.insert(HASH_LABEL.into(), json!(hash));
    }
    v
}

/// An int-or-percent against `total`, rounded up or down.
fn scaled(v: Option<&Value>, total: i64, round_up: bool) -> i64 {
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
            Some(p) if round_up => (p * total + 99) / 100,
            Some(p) => p * total / 100,
            None => s.parse().unwrap_or(0),
        },
        _ => 0,
    }
}

pub fn rolling(d: &Value) -> bool {
    d.pointer("/spec/strategy/type")
        .and_then(Value::as_str)
        .unwrap_or("RollingUpdate")
        == "RollingUpdate"
}

/// `ResolveFenceposts`: (maxSurge, maxUnavailable); never both zero.
fn fenceposts(d: &Value) -> (i64, i64) {
    let desired = replicas(d);
    let surge = scaled(
        d.pointer("/spec/strategy/rollingUpdate/maxSurge"),
        desired,
        true,
    );
    let unavailable = scaled(
        d.pointer("/spec/strategy/rollingUpdate/maxUnavailable"),
        desired,
        false,
    );
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

pub fn max_surge(d: &Value) -> i64 {
    if rolling(d) { fenceposts(d).0 } else { 0 }
}

pub fn max_unavailable(d: &Value) -> i64 {
    if !rolling(d) || replicas(d) == 0 {
        return 0;
    }
    fenceposts(d).1.min(replicas(d))
}

/// `ReplicasAnnotationsNeedUpdate` and `SetReplicasAnnotations` in one: true when it changed something.
pub fn set_replicas_annotations(rs: &mut Value, desired: i64, max: i64) -> bool {
    let mut changed = false;
    for (k, v) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        if annotation(rs, k) != Some(&v.to_string()) {
            set_annotation(rs, k, &v.to_string());
            changed = true;
        }
    }
    changed
}

/// `SetNewReplicaSetAnnotations`: the deployment's own annotations, the new
/// revision, and for a replica set rolled back to, the revisions it had before.
pub fn set_new_rs_annotations(d: &Value, rs: &mut Value, new_revision: i64, exists: bool) -> bool {
    const SKIP: &[&str] = &[
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
        REVISION_HISTORY,
        DESIRED_REPLICAS,
        MAX_REPLICAS,
        "deprecated.deployment.rollback.to",
    ];
    let mut changed = false;
    if let Some(ann) = d
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
    {
        for (k, v) in ann {
            let v = v.as_str().unwrap_or_default();
            if !SKIP.contains(&k.as_str()) && annotation(rs, k) != Some(v) {
                set_annotation(rs, k, v);
                changed = true;
            }
        }
    }
    let old = annotation(rs, REVISION).map(String::from);
    let old_revision = match old.as_deref() {
        None | Some("") => 0,
        Some(r) => match r.parse::<i64>() {
            Ok(n) => n,
            Err(_) => return false,
        },
    };
    if old_revision < new_revision {
        set_annotation(rs, REVISION, &new_revision.to_string());
        changed = true;
        if let Some(old) = old {
            let history = annotation(rs, REVISION_HISTORY)
                .unwrap_or_default()
                .to_string();
            let mut revisions: Vec<&str> = history.split(',').filter(|r| !r.is_empty()).collect();
            revisions.push(&old);
            while revisions.join(",").len() > MAX_REVISION_HISTORY_CHARS && revisions.len() > 1 {
                revisions.remove(0);
            }
            let joined = revisions.join(",");
            set_annotation(rs, REVISION_HISTORY, &joined);
        }
    }
    if !exists && set_replicas_annotations(rs, replicas(d), replicas(d) + max_surge(d)) {
        changed = true;
    }
    changed
}

pub fn new_condition(kind: &str, status: &str, reason: &str, message: &str) -> Value {
    let now = time::now();
    json!({
        "type": kind,
        "status": status,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    })
}

pub fn get_condition<'a>(status: &'a Value, kind: &str) -> Option<&'a Value> {
    status
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

pub fn remove_condition(status: &mut Value, kind: &str) {
    if let Some(cs) = status.get_mut("conditions").and_then(Value::as_array_mut) {
        cs.retain(|c| c["type"] != kind);
        if cs.is_empty() {
            status
                .as_object_mut()
                .expect("status is an object")
                .remove("conditions");
        }
    }
}

/// `SetDeploymentCondition`: nothing when status and reason are unchanged,
/// the old transition time when only the reason changes; appended last.
pub fn set_condition(status: &mut Value, mut condition: Value) {
    let kind = condition["type"].as_str().unwrap_or_default().to_string();
    if let Some(current) = get_condition(status, &kind) {
        if current["status"] == condition["status"] && current["reason"] == condition["reason"] {
            return;
        }
        if current["status"] == condition["status"] {
            condition["lastTransitionTime"] = current["lastTransitionTime"].clone();
        }
    }
    remove_condition(status, &kind);
    match status.get_mut("conditions").and_then(Value::as_array_mut) {
        Some(cs) => cs.push(condition),
        None => status["conditions"] = json!([condition]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(replicas: i64, surge: Value, unavailable: Value) -> Value {
        json!({ "spec": { "replicas": replicas, "strategy": { "type": "RollingUpdate",
            "rollingUpdate": { "maxSurge": surge, "maxUnavailable": unavailable } } } })
    }

    #[test]
    fn surge_rounds_up_and_unavailable_rounds_down() {
        let d = deployment(10, json!("25%"), json!("25%"));
        assert_eq!((max_surge(&d), max_unavailable(&d)), (3, 2));
        let d = deployment(1, json!("25%"), json!("25%"));
        assert_eq!((max_surge(&d), max_unavailable(&d)), (1, 0));
        let d = deployment(3, json!(0), json!(0));
        assert_eq!((max_surge(&d), max_unavailable(&d)), (0, 1));
        let d = json!({ "spec": { "replicas": 3, "strategy": { "type": "Recreate" } } });
        assert_eq!((max_surge(&d), max_unavailable(&d)), (0, 0));
    }

    #[test]
    fn hashes_are_stable_and_ignore_key_order_and_the_hash_label() {
        let a = json!({ "metadata": { "labels": { "app": "x" } }, "spec": { "containers": [{ "name": "c", "image": "i" }] } });
        let b = json!({ "spec": { "containers": [{ "image": "i", "name": "c" }] }, "metadata": { "creationTimestamp": null, "labels": { "app": "x", "pod-template-hash": "zzz" } } });
        let h = template_hash(&a, None);
        assert_eq!(h, template_hash(&b, None));
        assert!(h.len() <= 10 && h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
        assert_ne!(h, template_hash(&a, Some(1)));
        assert!(same_template(&a, &b));
    }

    #[test]
    fn rolling_back_keeps_the_revision_history() {
        let d = json!({ "metadata": { "annotations": { "team": "a", REVISION: "3" } }, "spec": { "replicas": 1 } });
        let mut rs = json!({ "metadata": { "annotations": { REVISION: "1" } } });
        assert!(set_new_rs_annotations(&d, &mut rs, 3, true));
        assert_eq!(annotation(&rs, REVISION), Some("3"));
        assert_eq!(annotation(&rs, REVISION_HISTORY), Some("1"));
        assert_eq!(annotation(&rs, "team"), Some("a"));
        assert!(!set_new_rs_annotations(&d, &mut rs, 3, true));
    }
}
