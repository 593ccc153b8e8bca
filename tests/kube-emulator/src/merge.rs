//! Patches and merges: JSON merge patch (RFC 7386), strategic merge patch as
//! kubectl sends it, and the list semantics both it and server-side apply use.

use serde_json::{Map, Value};

/// How a list field merges, from the Kubernetes schema's patch strategies and
/// `x-kubernetes-list-type` markers for the fields our users touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// Items are identified by these keys and merged one by one.
    Keyed(&'static [&'static str]),
    /// Items are scalars merged as a set.
    Set,
    /// The list is replaced as a whole.
    Atomic,
}

/// `path` holds the field names leading to the list, innermost last.
pub fn list_kind(path: &[String]) -> ListKind {
    let Some(last) = path.last() else {
        return ListKind::Atomic;
    };
    let parent = path.len().checked_sub(2).map(|i| path[i].as_str());
    match last.as_str() {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims" => ListKind::Keyed(&["name"]),
        "ports"
            if matches!(
                parent,
                Some("containers" | "initContainers" | "ephemeralContainers")
            ) =>
        {
            ListKind::Keyed(&["containerPort", "protocol"])
        }
        "ports" if parent == Some("spec") => ListKind::Keyed(&["port", "protocol"]),
        "volumeMounts" => ListKind::Keyed(&["mountPath"]),
        "volumeDevices" => ListKind::Keyed(&["devicePath"]),
        "conditions" => ListKind::Keyed(&["type"]),
        "ownerReferences" => ListKind::Keyed(&["uid"]),
        "hostAliases" => ListKind::Keyed(&["ip"]),
        "topologySpreadConstraints" => ListKind::Keyed(&["topologyKey", "whenUnsatisfiable"]),
        "finalizers" => ListKind::Set,
        _ => ListKind::Atomic,
    }
}

/// The value of one key field of a list item, with the schema's defaults
/// filled in so that `{containerPort: 80}` and `{containerPort: 80, protocol: TCP}` match.
pub fn key_value(item: &Value, key: &str) -> Value {
    match (item.get(key), key) {
        (Some(v), _) => v.clone(),
        (None, "protocol") => Value::String("TCP".into()),
        (None, _) => Value::Null,
    }
}

pub fn same_item(a: &Value, b: &Value, keys: &[&str]) -> bool {
    keys.iter().all(|k| key_value(a, k) == key_value(b, k))
}

/// RFC 7386 JSON merge patch.
pub fn json_merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let target_map = target.as_object_mut().expect("made an object above");
    for (k, v) in patch_map {
        if v.is_null() {
            target_map.remove(k);
        } else {
            json_merge_patch(target_map.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// Strategic merge patch, with the `$patch`, `$retainKeys`,
/// `$setElementOrder` and `$deleteFromPrimitiveList` directives.
pub fn strategic_merge_patch(target: &mut Value, patch: &Value) {
    smp(target, patch, &mut Vec::new());
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

fn smp(target: &mut Value, patch: &Value, path: &mut Vec<String>) {
    let Value::Object(patch_map) = patch else {
        *target = strip_directives(patch);
        return;
    };
    if patch_map.get("$patch").and_then(Value::as_str) == Some("replace") {
        *target = strip_directives(patch);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let target_map = target.as_object_mut().expect("made an object above");
    for (k, v) in patch_map {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Some(remove)) =
                (target_map.get_mut(field), v.as_array())
            {
                list.retain(|item| !remove.contains(item));
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        if v.is_null() {
            target_map.remove(k);
            continue;
        }
        path.push(k.clone());
        let slot = target_map.entry(k.clone()).or_insert(Value::Null);
        match (v, list_kind(path)) {
            (Value::Array(items), ListKind::Keyed(keys)) => smp_list(slot, items, &keys[..1], path),
            (Value::Array(items), ListKind::Set) => {
                let mut merged = slot.as_array().cloned().unwrap_or_default();
                for item in items {
                    if !merged.contains(item) {
                        merged.push(item.clone());
                    }
                }
                *slot = Value::Array(merged);
            }
            (Value::Object(_), _) => smp(slot, v, path),
            _ => *slot = strip_directives(v),
        }
        path.pop();
    }
    if let Some(Value::Array(retain)) = patch_map.get("$retainKeys") {
        target_map.retain(|k, _| retain.iter().any(|r| r.as_str() == Some(k)));
    }
}

fn smp_list(slot: &mut Value, items: &[Value], keys: &[&str], path: &mut Vec<String>) {
    if items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *slot = Value::Array(
            items
                .iter()
                .filter(|i| i.get("$patch").is_none())
                .map(strip_directives)
                .collect(),
        );
        return;
    }
    let mut list = slot.as_array().cloned().unwrap_or_default();
    for item in items {
        let position = list
            .iter()
            .position(|existing| same_item(existing, item, keys));
        match (item.get("$patch").and_then(Value::as_str), position) {
            (Some("delete"), Some(i)) => {
                list.remove(i);
            }
            (Some("delete"), None) => {}
            (_, Some(i)) => smp(&mut list[i], item, path),
            (_, None) => list.push(strip_directives(item)),
        }
    }
    *slot = Value::Array(list);
}

/// Merges an applied configuration into the live object as server-side apply
/// does: maps field by field, keyed lists item by item, sets by value.
pub fn apply_merge(live: &mut Value, applied: &Value, path: &mut Vec<String>) {
    let (Value::Object(live_map), Value::Object(applied_map)) = (&mut *live, applied) else {
        *live = applied.clone();
        return;
    };
    for (k, v) in applied_map {
        path.push(k.clone());
        let slot = live_map.entry(k.clone()).or_insert(Value::Null);
        match (v, list_kind(path)) {
            (Value::Array(items), ListKind::Keyed(keys)) => {
                let mut list = slot.as_array().cloned().unwrap_or_default();
                let mut ordered = Vec::with_capacity(list.len().max(items.len()));
                for item in items {
                    match list.iter().position(|e| same_item(e, item, keys)) {
                        Some(i) => {
                            let mut existing = list.remove(i);
                            apply_merge(&mut existing, item, path);
                            ordered.push(existing);
                        }
                        None => ordered.push(item.clone()),
                    }
                }
                // Items that other managers own keep their place after ours.
                ordered.extend(list);
                *slot = Value::Array(ordered);
            }
            (Value::Array(items), ListKind::Set) => {
                let mut merged = slot.as_array().cloned().unwrap_or_default();
                for item in items {
                    if !merged.contains(item) {
                        merged.push(item.clone());
                    }
                }
                *slot = Value::Array(merged);
            }
            (Value::Object(m), _) if !m.is_empty() && slot.is_object() => {
                apply_merge(slot, v, path)
            }
            _ => *slot = v.clone(),
        }
        path.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_removes_nulls() {
        let mut t = json!({ "a": 1, "b": { "c": 2, "d": 3 } });
        json_merge_patch(&mut t, &json!({ "a": null, "b": { "c": 5 } }));
        assert_eq!(t, json!({ "b": { "c": 5, "d": 3 } }));
    }

    #[test]
    fn strategic_merge_merges_containers_by_name() {
        let mut t = json!({ "spec": { "containers": [
            { "name": "a", "image": "x:1" }, { "name": "b", "image": "y:1" }
        ] } });
        strategic_merge_patch(
            &mut t,
            &json!({ "spec": {
                "$setElementOrder/containers": [{ "name": "a" }, { "name": "b" }],
                "containers": [{ "name": "b", "image": "y:2" }, { "name": "a", "$patch": "delete" }]
            } }),
        );
        assert_eq!(
            t,
            json!({ "spec": { "containers": [{ "name": "b", "image": "y:2" }] } })
        );
    }

    #[test]
    fn strategic_merge_replaces_atomic_lists_and_honours_retain_keys() {
        let mut t = json!({ "strategy": { "type": "RollingUpdate", "rollingUpdate": { "maxSurge": 1 } },
                            "args": ["a", "b"] });
        strategic_merge_patch(
            &mut t,
            &json!({ "strategy": { "$retainKeys": ["type"], "type": "Recreate" }, "args": ["c"] }),
        );
        assert_eq!(
            t,
            json!({ "strategy": { "type": "Recreate" }, "args": ["c"] })
        );
    }

    #[test]
    fn apply_merge_matches_ports_with_defaulted_protocol() {
        let mut live =
            json!({ "ports": [{ "containerPort": 80, "protocol": "TCP", "name": "http" }] });
        let mut path = vec!["containers".to_string()];
        apply_merge(
            &mut live,
            &json!({ "ports": [{ "containerPort": 80, "name": "web" }] }),
            &mut path,
        );
        assert_eq!(
            live,
            json!({ "ports": [{ "containerPort": 80, "protocol": "TCP", "name": "web" }] })
        );
    }
}
