//! Controllers: deployments, replica sets, the scheduler, endpoints, garbage
//! collection, namespaces and service accounts.
//!
//! Each is level-triggered: a pass looks at everything in the store and
//! writes only what differs from what it wants, so running it again with
//! nothing new to do writes nothing. A pass runs after every change to the
//! store (debounced) and on a short tick, so that time-based conditions
//! (minReadySeconds, progress deadlines) advance without a write.

mod deployment;
mod deployment_util;
mod endpoints;
mod gc;
mod namespace;
mod replicaset;
mod scheduler;
mod serviceaccount;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::resources::ResourceDef;
use crate::store::{Store, WriteOptions};

const DEBOUNCE: Duration = Duration::from_millis(10);
const TICK: Duration = Duration::from_millis(250);

/// Starts every controller; they stop when the cluster shuts down.
pub fn spawn(cluster: Arc<Cluster>) {
    run(&cluster, replicaset::reconcile);
    run(&cluster, deployment::reconcile);
    run(&cluster, endpoints::reconcile);
    run(&cluster, gc::reconcile);
    run(&cluster, namespace::reconcile);
    run(&cluster, serviceaccount::reconcile);
    let mut scheduler = scheduler::Scheduler::default();
    run(&cluster, move |c: &Cluster| scheduler.reconcile(c));
}

fn run(cluster: &Arc<Cluster>, mut pass: impl FnMut(&Cluster) + Send + 'static) {
    let cluster = cluster.clone();
    tokio::spawn(async move {
        let mut changes = cluster.store.changes();
        let mut shutdown = cluster.shutdown_signal();
        loop {
            if *shutdown.borrow_and_update() {
                return;
            }
            changes.borrow_and_update();
            pass(&cluster);
            tokio::select! {
                r = changes.changed() => {
                    if r.is_err() {
                        return;
                    }
                    // Let a burst of writes land before looking again.
                    tokio::time::sleep(DEBOUNCE).await;
                }
                _ = tokio::time::sleep(TICK) => {}
                _ = shutdown.changed() => {}
            }
        }
    });
}

const CONTROLLER_MANAGER: &str = "kube-controller-manager";

fn opts() -> WriteOptions {
    WriteOptions::manager(CONTROLLER_MANAGER)
}

/// Read-modify-write of `obj` under the store's lock. A controller that
/// loses a race (the object changed or went) looks again on its next pass,
/// so the store's error is of no use to it.
fn write(
    store: &Store,
    def: &'static ResourceDef,
    obj: &Value,
    subresource: &str,
    manager: &str,
    f: impl FnOnce(&mut Value),
) -> Option<Value> {
    let opts = WriteOptions::manager(manager);
    store
        .modify(def, namespace(obj), name(obj), subresource, &opts, |o| {
            f(o);
            Ok(())
        })
        .ok()
}

fn name(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn namespace(obj: &Value) -> &str {
    obj.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn uid(obj: &Value) -> &str {
    obj.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn int(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

fn creation(obj: &Value) -> &str {
    obj.pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn owner_refs(obj: &Value) -> &[Value] {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// The uid of the object's managing controller, if any.
fn controller_uid(obj: &Value) -> Option<&str> {
    owner_refs(obj)
        .iter()
        .find(|r| r["controller"] == json!(true))
        .and_then(|r| r["uid"].as_str())
}

/// The owner reference a controller puts on what it creates.
fn controller_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": name(owner),
        "uid": uid(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Makes `owner` the controller of an orphan that its selector matches, as
/// the real controllers' adoption does.
fn adopt(store: &Store, def: &'static ResourceDef, orphan: &Value, owner: &Value) -> Option<Value> {
    write(store, def, orphan, "", CONTROLLER_MANAGER, |o| {
        if controller_uid(o).is_none() {
            let mut refs = owner_refs(o).to_vec();
            refs.push(controller_ref(owner));
            o["metadata"]["ownerReferences"] = json!(refs);
        }
    })
}

fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c["type"] == kind)
}

fn pod_ready(pod: &Value) -> bool {
    condition(pod, "Ready").is_some_and(|c| c["status"] == "True")
}

/// Ready for at least `min_ready_seconds`.
fn pod_available(pod: &Value, min_ready_seconds: i64) -> bool {
    let Some(c) = condition(pod, "Ready").filter(|c| c["status"] == "True") else {
        return false;
    };
    min_ready_seconds <= 0
        || c["lastTransitionTime"]
            .as_str()
            .and_then(crate::time::seconds_since)
            .is_some_and(|s| s >= min_ready_seconds as f64)
}

fn terminal(pod: &Value) -> bool {
    matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    )
}
