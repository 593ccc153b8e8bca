//! The ReplicaSet controller: keeps `spec.replicas` pods of the template
//! alive and reports how many are ready and available.

use serde_json::{Map, Value, json};

use super::{
    CONTROLLER_MANAGER, adopt, controller_ref, controller_uid, creation, deleting, int, name,
    namespace, opts, pod_available, pod_ready, terminal, uid, write,
};
use crate::cluster::Cluster;
use crate::events::Severity;
use crate::resources;
use crate::selector::LabelSelector;
use crate::store::DeleteOptions;

const COMPONENT: &str = "replicaset-controller";
/// The real controller creates at most this many pods per sync.
const BURST: usize = 500;

pub fn reconcile(cluster: &Cluster) {
    let def = resources::get("apps/v1", "ReplicaSet");
    for rs in cluster.store.all(def, None) {
        sync(cluster, &rs);
    }
}

/// The pods the replica set controls and that still count: not terminating, not finished.
fn active_pods(cluster: &Cluster, rs: &Value) -> Vec<Value> {
    let selector = LabelSelector::from_object(rs.pointer("/spec/selector").unwrap_or(&Value::Null));
    let pods = cluster.store.all(resources::pods(), Some(namespace(rs)));
    let mut owned = Vec::new();
    for pod in pods {
        if deleting(&pod) || terminal(&pod) {
            continue;
        }
        match controller_uid(&pod) {
            Some(u) if u == uid(rs) => owned.push(pod),
            None if !deleting(rs) && !selector.is_empty() && selector.matches(&pod) => {
                if let Some(p) = adopt(&cluster.store, resources::pods(), &pod, rs) {
                    owned.push(p);
                }
            }
            _ => {}
        }
    }
    owned
}

fn sync(cluster: &Cluster, rs: &Value) {
    let mut pods = active_pods(cluster, rs);
    // A replica set being deleted leaves its pods to the garbage collector.
    if !deleting(rs) {
        let want = int(rs, "/spec/replicas").max(0) as usize;
        if pods.len() < want {
            for _ in 0..(want - pods.len()).min(BURST) {
                create_pod(cluster, rs);
            }
            pods = active_pods(cluster, rs);
        } else if pods.len() > want {
            pods.sort_by(deletion_order);
            for pod in &pods[..pods.len() - want] {
                delete_pod(cluster, rs, pod);
            }
            pods = active_pods(cluster, rs);
        }
    }
    update_status(cluster, rs, &pods);
}

fn create_pod(cluster: &Cluster, rs: &Value) {
    let template = rs.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let mut meta = Map::new();
    meta.insert("generateName".into(), json!(format!("{}-", name(rs))));
    for field in ["labels", "annotations", "finalizers"] {
        if let Some(v) = template.pointer(&format!("/metadata/{field}")) {
            meta.insert(field.into(), v.clone());
        }
    }
    meta.insert("ownerReferences".into(), json!([controller_ref(rs)]));
    let pod =
        json!({ "metadata": meta, "spec": template.get("spec").cloned().unwrap_or(json!({})) });
    match cluster
        .store
        .create(resources::pods(), namespace(rs), pod, &opts())
    {
        Ok(created) => cluster.recorder.record(
            rs,
            Severity::Normal,
            "SuccessfulCreate",
            &format!("Created pod: {}", name(&created)),
            COMPONENT,
            None,
        ),
        Err(e) => tracing::debug!(
            "replica set {}/{}: creating a pod: {}",
            namespace(rs),
            name(rs),
            e.message
        ),
    }
}

fn delete_pod(cluster: &Cluster, rs: &Value, pod: &Value) {
    if cluster
        .store
        .delete(
            resources::pods(),
            namespace(pod),
            name(pod),
            &DeleteOptions::default(),
        )
        .is_ok()
    {
        cluster.recorder.record(
            rs,
            Severity::Normal,
            "SuccessfulDelete",
            &format!("Deleted pod: {}", name(pod)),
            COMPONENT,
            None,
        );
    }
}

/// The real controller's preference for which pods go first: unscheduled,
/// then pending, then not ready, then ready for the shortest time, then
/// most restarted, then newest.
fn deletion_order(a: &Value, b: &Value) -> std::cmp::Ordering {
    fn key(
        p: &Value,
    ) -> (
        bool,
        u8,
        bool,
        std::cmp::Reverse<String>,
        std::cmp::Reverse<i64>,
        std::cmp::Reverse<String>,
    ) {
        let scheduled = p
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        let phase = match p.pointer("/status/phase").and_then(Value::as_str) {
            Some("Pending") => 0,
            Some("Unknown") => 1,
            _ => 2,
        };
        let ready_since = super::condition(p, "Ready")
            .filter(|_| pod_ready(p))
            .and_then(|c| c["lastTransitionTime"].as_str())
            .unwrap_or_default()
            .to_string();
        let restarts = p
            .pointer("/status/containerStatuses")
            .and_then(Value::as_array)
            .map_or(0, |cs| cs.iter().map(|c| int(c, "/restartCount")).sum());
        (
            scheduled,
            phase,
            pod_ready(p),
            std::cmp::Reverse(ready_since),
            std::cmp::Reverse(restarts),
            std::cmp::Reverse(creation(p).to_string()),
        )
    }
    key(a).cmp(&key(b))
}

fn update_status(cluster: &Cluster, rs: &Value, pods: &[Value]) {
    let min_ready = int(rs, "/spec/minReadySeconds");
    let template_labels = LabelSelector::from_map(
        rs.pointer("/spec/template/metadata/labels")
            .unwrap_or(&json!({})),
    );
    let count = |f: &dyn Fn(&Value) -> bool| pods.iter().filter(|p| f(p)).count() as i64;
    let mut status = Map::new();
    status.insert("replicas".into(), json!(pods.len()));
    let mut put = |k: &str, v: i64| {
        // The real status omits zero counts.
        if v != 0 {
            status.insert(k.into(), json!(v));
        }
    };
    put(
        "fullyLabeledReplicas",
        count(&|p| template_labels.matches(p)),
    );
    put("readyReplicas", count(&pod_ready));
    put("availableReplicas", count(&|p| pod_available(p, min_ready)));
    put("observedGeneration", int(rs, "/metadata/generation"));
    let status = Value::Object(status);
    if rs.get("status") == Some(&status) {
        return;
    }
    let def = resources::get("apps/v1", "ReplicaSet");
    let _ = write(&cluster.store, def, rs, "status", CONTROLLER_MANAGER, |o| {
        o["status"] = status;
    });
}
