//! Field ownership for server-side apply: `managedFields` in the FieldsV1
//! format, the sets of fields each manager owns, and the apply algorithm.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::merge::{ListKind, apply_merge, key_value, list_kind, same_item};

/// A set of field paths, stored as the FieldsV1 tree: `f:name` for a field,
/// `k:{...}` for a keyed list item, `v:...` for a set member; `self_member`
/// is FieldsV1's `"."` (the item itself is owned).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    children: BTreeMap<String, FieldSet>,
    self_member: bool,
}

/// Metadata fields that the server manages and nobody owns.
const UNOWNED_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
    "generateName",
];

impl FieldSet {
    pub fn is_empty(&self) -> bool {
        self.children.is_empty() && !self.self_member
    }

    /// The fields an object sets. `status_only` selects the status
    /// subresource's view, otherwise status is left out.
    pub fn of_object(obj: &Value, status_only: bool) -> FieldSet {
        let mut set = FieldSet::default();
        let Some(map) = obj.as_object() else {
            return set;
        };
        for (k, v) in map {
            let wanted = match k.as_str() {
                "apiVersion" | "kind" => false,
                "status" => status_only,
                _ => !status_only,
            };
            if !wanted {
                continue;
            }
            let mut path = vec![k.clone()];
            let child = if k == "metadata" {
                let mut meta = FieldSet::default();
                if let Some(m) = v.as_object() {
                    for (mk, mv) in m {
                        if UNOWNED_METADATA.contains(&mk.as_str()) {
                            continue;
                        }
                        path.push(mk.clone());
                        meta.children
                            .insert(format!("f:{mk}"), Self::of_value(mv, &mut path));
                        path.pop();
                    }
                }
                if meta.is_empty() {
                    continue;
                }
                meta
            } else {
                Self::of_value(v, &mut path)
            };
            set.children.insert(format!("f:{k}"), child);
        }
        set
    }

    fn of_value(v: &Value, path: &mut Vec<String>) -> FieldSet {
        match v {
            Value::Object(m) if !m.is_empty() => {
                let mut set = FieldSet::default();
                for (k, child) in m {
                    path.push(k.clone());
                    set.children
                        .insert(format!("f:{k}"), Self::of_value(child, path));
                    path.pop();
                }
                set
            }
            Value::Array(items) if !items.is_empty() => match list_kind(path) {
                ListKind::Keyed(keys) => {
                    let mut set = FieldSet::default();
                    for item in items {
                        let mut child = Self::of_value(item, path);
                        child.self_member = true;
                        set.children.insert(item_key(item, keys), child);
                    }
                    set
                }
                ListKind::Set => {
                    let mut set = FieldSet::default();
                    for item in items {
                        set.children
                            .insert(format!("v:{item}"), FieldSet::default());
                    }
                    set
                }
                ListKind::Atomic => FieldSet::default(),
            },
            _ => FieldSet::default(),
        }
    }

    pub fn from_fields_v1(v: &Value) -> FieldSet {
        let mut set = FieldSet::default();
        if let Some(m) = v.as_object() {
            for (k, child) in m {
                if k == "." {
                    set.self_member = true;
                } else {
                    set.children.insert(k.clone(), Self::from_fields_v1(child));
                }
            }
        }
        set
    }

    pub fn to_fields_v1(&self) -> Value {
        let mut m = Map::new();
        if self.self_member {
            m.insert(".".into(), json!({}));
        }
        for (k, child) in &self.children {
            m.insert(k.clone(), child.to_fields_v1());
        }
        Value::Object(m)
    }

    /// Every owned path: leaves, and list items marked with `"."`.
    pub fn members(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if self.self_member || (self.children.is_empty() && !prefix.is_empty()) {
            out.push(prefix.clone());
        }
        for (k, child) in &self.children {
            prefix.push(k.clone());
            child.collect(prefix, out);
            prefix.pop();
        }
    }

    pub fn contains(&self, path: &[String]) -> bool {
        let mut node = self;
        for p in path {
            match node.children.get(p) {
                Some(c) => node = c,
                None => return false,
            }
        }
        node.self_member || node.children.is_empty()
    }

    pub fn insert(&mut self, path: &[String]) {
        let mut node = self;
        for p in path {
            node = node.children.entry(p.clone()).or_default();
        }
        if !node.children.is_empty() {
            node.self_member = true;
        }
    }

    /// Removes one member; parents left empty go too.
    pub fn remove(&mut self, path: &[String]) {
        fn go(node: &mut FieldSet, path: &[String]) -> bool {
            match path.split_first() {
                None => {
                    node.self_member = false;
                    node.children.is_empty()
                }
                Some((first, rest)) => {
                    let Some(child) = node.children.get_mut(first) else {
                        return false;
                    };
                    let leaf_matched = rest.is_empty() && child.children.is_empty();
                    if leaf_matched || go(child, rest) {
                        node.children.remove(first);
                    }
                    node.children.is_empty() && !node.self_member
                }
            }
        }
        go(self, path);
    }

    pub fn difference(&self, other: &FieldSet) -> Vec<Vec<String>> {
        self.members()
            .into_iter()
            .filter(|m| !other.contains(m))
            .collect()
    }
}

fn item_key(item: &Value, keys: &[&str]) -> String {
    let mut m = Map::new();
    for k in keys {
        let v = key_value(item, k);
        if !v.is_null() {
            m.insert((*k).to_string(), v);
        }
    }
    // serde_json's map is sorted, matching the server's canonical key form.
    format!("k:{}", Value::Object(m))
}

fn item_matches(item: &Value, key: &str) -> bool {
    let Ok(Value::Object(wanted)) = serde_json::from_str::<Value>(key) else {
        return false;
    };
    wanted.iter().all(|(k, v)| key_value(item, k) == *v)
}

/// Looks up the value at a FieldsV1 path.
pub fn value_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = obj;
    for p in path {
        cur = if let Some(field) = p.strip_prefix("f:") {
            cur.get(field)?
        } else if let Some(key) = p.strip_prefix("k:") {
            cur.as_array()?.iter().find(|i| item_matches(i, key))?
        } else if let Some(v) = p.strip_prefix("v:") {
            let want: Value = serde_json::from_str(v).ok()?;
            cur.as_array()?.iter().find(|i| **i == want)?
        } else {
            return None;
        };
    }
    Some(cur)
}

/// Removes the value at a FieldsV1 path, if present.
pub fn remove_at(obj: &mut Value, path: &[String]) {
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for p in parent_path {
        let next = if let Some(field) = p.strip_prefix("f:") {
            cur.get_mut(field)
        } else if let Some(key) = p.strip_prefix("k:") {
            cur.as_array_mut()
                .and_then(|a| a.iter_mut().find(|i| item_matches(i, key)))
        } else {
            None
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let Some(field) = last.strip_prefix("f:") {
        if let Some(m) = cur.as_object_mut() {
            m.remove(field);
        }
    } else if let Some(key) = last.strip_prefix("k:") {
        if let Some(a) = cur.as_array_mut() {
            a.retain(|i| !item_matches(i, key));
        }
    } else if let Some(v) = last.strip_prefix("v:")
        && let (Some(a), Ok(want)) = (cur.as_array_mut(), serde_json::from_str::<Value>(v))
    {
        a.retain(|i| *i != want);
    }
}

/// `.spec.template.spec.containers[name="app"].image`, as conflict messages show paths.
pub fn display_path(path: &[String]) -> String {
    let mut out = String::new();
    for p in path {
        if let Some(f) = p.strip_prefix("f:") {
            out.push('.');
            out.push_str(f);
        } else if let Some(k) = p.strip_prefix("k:") {
            let parts: Vec<String> = serde_json::from_str::<Map<String, Value>>(k)
                .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                .unwrap_or_default();
            out.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = p.strip_prefix("v:") {
            out.push_str(&format!("[={v}]"));
        }
    }
    out
}

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: String,
    pub fields: FieldSet,
}

impl Entry {
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": self.fields.to_fields_v1(),
        });
        if !self.subresource.is_empty() {
            v["subresource"] = json!(self.subresource);
        }
        v
    }
}

pub fn read_entries(obj: &Value) -> Vec<Entry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|e| Entry {
                    manager: e["manager"].as_str().unwrap_or_default().into(),
                    operation: e["operation"].as_str().unwrap_or_default().into(),
                    api_version: e["apiVersion"].as_str().unwrap_or_default().into(),
                    time: e["time"].as_str().unwrap_or_default().into(),
                    subresource: e["subresource"].as_str().unwrap_or_default().into(),
                    fields: FieldSet::from_fields_v1(&e["fieldsV1"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn write_entries(obj: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(Entry::to_json)
        .collect();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// Leaves whose values differ between two objects, and what `new` adds.
fn changed_members(old: &Value, new: &Value, status_only: bool) -> Vec<Vec<String>> {
    FieldSet::of_object(new, status_only)
        .members()
        .into_iter()
        .filter(|m| value_at(old, m) != value_at(new, m) || value_at(old, m).is_none())
        .filter(|m| {
            // An item whose own content is unchanged is not re-owned as a whole.
            !(m.last().is_some_and(|l| l.starts_with("k:")) && value_at(old, m).is_some())
        })
        .collect()
}

/// Records an update (create, PUT or a non-apply patch) by `manager`:
/// it takes the fields it changed, and fields that disappeared are owned by nobody.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    subresource: &str,
    now: &str,
) {
    let status_only = subresource == "status";
    let empty = json!({});
    let old_obj = old.unwrap_or(&empty);
    let mut entries = old.map(read_entries).unwrap_or_default();
    let changed = changed_members(old_obj, new, status_only);
    let present_new = FieldSet::of_object(new, status_only);
    for e in entries
        .iter_mut()
        .filter(|e| (e.subresource == "status") == status_only)
    {
        for m in e.fields.members() {
            if !present_new.contains(&m) && value_at(new, &m).is_none() {
                e.fields.remove(&m);
            }
        }
        if e.manager != manager || e.operation != "Update" {
            for m in &changed {
                e.fields.remove(m);
            }
        }
    }
    if !changed.is_empty() {
        let idx = entries.iter().position(|e| {
            e.manager == manager && e.operation == "Update" && e.subresource == subresource
        });
        let entry = match idx {
            Some(i) => &mut entries[i],
            None => {
                entries.push(Entry {
                    manager: manager.into(),
                    operation: "Update".into(),
                    api_version: api_version.into(),
                    time: now.into(),
                    subresource: subresource.into(),
                    fields: FieldSet::default(),
                });
                entries.last_mut().expect("just pushed")
            }
        };
        for m in &changed {
            entry.fields.insert(m);
        }
        entry.time = now.into();
    }
    write_entries(new, &entries);
}

/// The outcome of a server-side apply before it is stored.
pub struct Applied {
    pub object: Value,
}

/// Server-side apply of `config` by `manager` onto `live` (or onto nothing, to create).
/// Returns the conflicts as (manager, field) pairs when `force` is off.
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    subresource: &str,
    now: &str,
) -> Result<Applied, Vec<(String, String)>> {
    let status_only = subresource == "status";
    let mut object = live.cloned().unwrap_or_else(|| json!({}));
    let mut entries = read_entries(&object);
    let new_set = FieldSet::of_object(config, status_only);
    let own_idx = entries.iter().position(|e| {
        e.manager == manager && e.operation == "Apply" && e.subresource == subresource
    });
    let previous = own_idx
        .map(|i| entries[i].fields.clone())
        .unwrap_or_default();

    let mut conflicts = Vec::new();
    for member in new_set.members() {
        let (Some(live_v), Some(new_v)) = (value_at(&object, &member), value_at(config, &member))
        else {
            continue;
        };
        if live_v == new_v || member.last().is_some_and(|l| l.starts_with("k:")) {
            continue;
        }
        for (i, e) in entries.iter().enumerate() {
            if Some(i) != own_idx && e.subresource == subresource && e.fields.contains(&member) {
                conflicts.push((i, e.manager.clone(), member.clone()));
            }
        }
    }
    if !conflicts.is_empty() {
        if !force {
            return Err(conflicts
                .into_iter()
                .map(|(_, m, p)| (m, display_path(&p)))
                .collect());
        }
        for (i, _, p) in &conflicts {
            entries[*i].fields.remove(p);
        }
    }

    // Fields this manager stopped sending go, unless another manager still owns them.
    for member in previous.difference(&new_set) {
        let shared = entries.iter().enumerate().any(|(i, e)| {
            Some(i) != own_idx && e.subresource == subresource && e.fields.contains(&member)
        });
        if !shared {
            remove_at(&mut object, &member);
        }
    }

    let mut body = config.clone();
    if let Some(m) = body.as_object_mut() {
        if status_only {
            m.retain(|k, _| k == "status" || k == "metadata");
            if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.retain(|k, _| k == "name" || k == "namespace");
            }
        } else {
            m.remove("status");
        }
        if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
            meta.remove("resourceVersion");
        }
    }
    apply_merge(&mut object, &body, &mut Vec::new());

    let changed = previous != new_set || live.is_none_or(|l| !same_content(l, &object));
    match own_idx {
        Some(i) => {
            if changed {
                entries[i].time = now.into();
            }
            entries[i].fields = new_set;
        }
        None => entries.push(Entry {
            manager: manager.into(),
            operation: "Apply".into(),
            api_version: config["apiVersion"].as_str().unwrap_or_default().into(),
            time: now.into(),
            subresource: subresource.into(),
            fields: new_set,
        }),
    }
    write_entries(&mut object, &entries);
    Ok(Applied { object })
}

/// Two objects equal but for their `managedFields`.
pub fn same_content(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
        }
        v
    };
    strip(a) == strip(b)
}

/// True when `a` and `b` describe the same list item under `path`'s keys.
pub fn same_list_item(path: &[String], a: &Value, b: &Value) -> bool {
    match list_kind(path) {
        ListKind::Keyed(keys) => same_item(a, b, keys),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy(replicas: i64, image: &str, extra_label: bool) -> Value {
        let mut labels = json!({ "app": "web" });
        if extra_label {
            labels["tier"] = json!("front");
        }
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "web", "labels": labels },
            "spec": { "replicas": replicas, "template": { "spec": { "containers": [
                { "name": "app", "image": image, "ports": [{ "containerPort": 80 }] }
            ] } } }
        })
    }

    #[test]
    fn fields_v1_round_trip() {
        let set = FieldSet::of_object(&deploy(1, "x", true), false);
        let v1 = set.to_fields_v1();
        assert_eq!(
            v1["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"app\"}"]["."],
            json!({})
        );
        assert!(
            v1["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"app\"}"]["f:ports"]
                ["k:{\"containerPort\":80,\"protocol\":\"TCP\"}"]
                .is_object()
        );
        assert_eq!(FieldSet::from_fields_v1(&v1), set);
    }

    #[test]
    fn apply_removes_fields_the_manager_stops_sending() {
        let first = apply(None, &deploy(1, "x", true), "me", false, "", "t")
            .unwrap()
            .object;
        let second = apply(Some(&first), &deploy(1, "x", false), "me", false, "", "t")
            .unwrap()
            .object;
        assert_eq!(second["metadata"]["labels"], json!({ "app": "web" }));
    }

    #[test]
    fn apply_reports_conflicts_with_other_managers_unless_forced() {
        let first = apply(None, &deploy(1, "x", false), "a", false, "", "t")
            .unwrap()
            .object;
        let err = apply(Some(&first), &deploy(3, "x", false), "b", false, "", "t")
            .err()
            .unwrap();
        assert_eq!(err, vec![("a".to_string(), ".spec.replicas".to_string())]);
        let forced = apply(Some(&first), &deploy(3, "x", false), "b", true, "", "t")
            .unwrap()
            .object;
        assert_eq!(forced["spec"]["replicas"], 3);
        let owners: Vec<String> = read_entries(&forced)
            .into_iter()
            .filter(|e| e.fields.contains(&["f:spec".into(), "f:replicas".into()]))
            .map(|e| e.manager)
            .collect();
        assert_eq!(owners, vec!["b"]);
    }

    #[test]
    fn shared_fields_stay_while_another_manager_owns_them() {
        let first = apply(None, &deploy(1, "x", true), "a", false, "", "t")
            .unwrap()
            .object;
        let both = apply(Some(&first), &deploy(1, "x", true), "b", false, "", "t")
            .unwrap()
            .object;
        let dropped = apply(Some(&both), &deploy(1, "x", false), "a", false, "", "t")
            .unwrap()
            .object;
        assert_eq!(dropped["metadata"]["labels"]["tier"], "front");
    }

    #[test]
    fn updates_take_ownership_of_what_they_change() {
        let first = apply(None, &deploy(1, "x", false), "a", false, "", "t")
            .unwrap()
            .object;
        let mut scaled = first.clone();
        scaled["spec"]["replicas"] = json!(5);
        record_update(
            Some(&first),
            &mut scaled,
            "kubectl-scale",
            "apps/v1",
            "",
            "t",
        );
        let entries = read_entries(&scaled);
        let a = entries.iter().find(|e| e.manager == "a").unwrap();
        assert!(!a.fields.contains(&["f:spec".into(), "f:replicas".into()]));
        let s = entries
            .iter()
            .find(|e| e.manager == "kubectl-scale")
            .unwrap();
        assert!(s.fields.contains(&["f:spec".into(), "f:replicas".into()]));
    }
}
