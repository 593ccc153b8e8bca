//! The garbage collector: deletes objects whose owners are gone, and carries
//! out foreground and orphan deletion of owners.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::{CONTROLLER_MANAGER, deleting, name, namespace, owner_refs, uid, write};
use crate::cluster::Cluster;
use crate::resources::{self, RESOURCES, ResourceDef};
use crate::store::{DeleteOptions, Propagation, Store};

const FOREGROUND: &str = "foregroundDeletion";
const ORPHAN: &str = "orphan";

fn has_finalizer(obj: &Value, finalizer: &str) -> bool {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|x| x == finalizer))
}

enum Owner {
    /// Exists and is staying.
    Solid,
    /// Gone, or replaced by another object of the same name.
    Dangling,
    /// Being deleted in the foreground: waits for its dependents.
    Waiting,
}

/// Looks the owner up by kind and name, as the real collector does, rather
/// than trusting a snapshot that may predate it.
fn classify(store: &Store, dependent: &Value, reference: &Value) -> Owner {
    let api_version = reference["apiVersion"].as_str().unwrap_or_default();
    let kind = reference["kind"].as_str().unwrap_or_default();
    let Some(def) = resources::by_kind(api_version, kind) else {
        // An owner of a kind we do not serve cannot be checked; leave the dependent alone.
        return Owner::Solid;
    };
    let ns = if def.namespaced {
        namespace(dependent)
    } else {
        ""
    };
    match store.try_get(def, ns, reference["name"].as_str().unwrap_or_default()) {
        Some(owner) if uid(&owner) == reference["uid"].as_str().unwrap_or_default() => {
            if deleting(&owner) && has_finalizer(&owner, FOREGROUND) {
                Owner::Waiting
            } else {
                Owner::Solid
            }
        }
        _ => Owner::Dangling,
    }
}

pub fn reconcile(cluster: &Cluster) {
    let store = &cluster.store;
    let objects: Vec<(&'static ResourceDef, Value)> = RESOURCES
        .iter()
        .filter(|d| !d.create_only)
        .flat_map(|d| store.all(d, None).into_iter().map(move |o| (d, o)))
        .collect();
    let mut dependents: HashMap<&str, Vec<&Value>> = HashMap::new();
    for (_, o) in &objects {
        for r in owner_refs(o) {
            dependents
                .entry(r["uid"].as_str().unwrap_or_default())
                .or_default()
                .push(o);
        }
    }
    for (def, o) in objects.iter().filter(|(_, o)| deleting(o)) {
        let deps = dependents
            .get(uid(o))
            .map(Vec::as_slice)
            .unwrap_or_default();
        if has_finalizer(o, ORPHAN) {
            for dep in deps {
                release(store, dep, uid(o));
            }
            remove_finalizer(store, def, o, ORPHAN);
        } else if has_finalizer(o, FOREGROUND) {
            let blocking = deps.iter().any(|dep| {
                owner_refs(dep)
                    .iter()
                    .any(|r| r["uid"] == uid(o) && r["blockOwnerDeletion"] == json!(true))
            });
            if !blocking {
                remove_finalizer(store, def, o, FOREGROUND);
            }
        }
    }
    for (def, o) in objects.iter().filter(|(_, o)| !owner_refs(o).is_empty()) {
        // Read it again: an orphaning above may have just released it.
        let Some(o) = store
            .try_get(def, namespace(o), name(o))
            .filter(|now| uid(now) == uid(o))
        else {
            continue;
        };
        if deleting(&o) || owner_refs(&o).is_empty() {
            continue;
        }
        let (mut solid, mut released) = (false, Vec::new());
        let mut waiting = false;
        for r in owner_refs(&o) {
            match classify(store, &o, r) {
                Owner::Solid => solid = true,
                Owner::Dangling => released.push(r["uid"].clone()),
                Owner::Waiting => {
                    waiting = true;
                    released.push(r["uid"].clone());
                }
            }
        }
        if solid {
            // Another owner keeps the object; only the references to the others go.
            for u in released {
                release(store, &o, u.as_str().unwrap_or_default());
            }
            continue;
        }
        let propagation =
            (waiting && dependents.contains_key(uid(&o))).then_some(Propagation::Foreground);
        let delete = DeleteOptions {
            propagation,
            precondition_uid: Some(uid(&o).to_string()),
            ..DeleteOptions::default()
        };
        let _ = store.delete(def, namespace(&o), name(&o), &delete);
    }
}

/// Drops the dependent's references to one owner.
fn release(store: &Store, dependent: &Value, owner_uid: &str) {
    let def = resources::by_kind(
        dependent["apiVersion"].as_str().unwrap_or_default(),
        dependent["kind"].as_str().unwrap_or_default(),
    );
    let Some(def) = def else { return };
    let _ = write(store, def, dependent, "", CONTROLLER_MANAGER, |d| {
        if uid(d) != uid(dependent) {
            return;
        }
        let refs: Vec<Value> = owner_refs(d)
            .iter()
            .filter(|r| r["uid"] != owner_uid)
            .cloned()
            .collect();
        let meta = d["metadata"]
            .as_object_mut()
            .expect("metadata is an object");
        if refs.is_empty() {
            meta.remove("ownerReferences");
        } else {
            meta.insert("ownerReferences".into(), json!(refs));
        }
    });
}

fn remove_finalizer(store: &Store, def: &'static ResourceDef, obj: &Value, finalizer: &str) {
    let _ = write(store, def, obj, "", CONTROLLER_MANAGER, |o| {
        if uid(o) != uid(obj) {
            return;
        }
        let rest: Vec<Value> = o["metadata"]["finalizers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| *f != finalizer)
            .cloned()
            .collect();
        let meta = o["metadata"]
            .as_object_mut()
            .expect("metadata is an object");
        if rest.is_empty() {
            meta.remove("finalizers");
        } else {
            meta.insert("finalizers".into(), json!(rest));
        }
    });
}
