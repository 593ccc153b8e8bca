//! The scheduler: binds pending pods to the one node when their requests fit
//! its allocatable resources, and reports why when they do not.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{creation, deleting, name, namespace, terminal, uid, write};
use crate::cluster::Cluster;
use crate::events::Severity;
use crate::quantity;
use crate::resources;
use crate::time;

const COMPONENT: &str = "default-scheduler";
/// How long an unschedulable pod waits before it is tried again when nothing
/// on the node changed (the real scheduler's backoff tops out at 10s).
const RETRY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Usage {
    cpu: i64,
    memory: i64,
    pods: i64,
}

/// What the pod asks for: the sum over its containers, or the largest init
/// container when that is more, as the real scheduler computes it.
fn requests(pod: &Value) -> Usage {
    let sum = |list: &str, r: &str| -> Vec<i64> {
        pod.pointer(&format!("/spec/{list}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| {
                c.pointer(&format!("/resources/requests/{r}"))
                    .and_then(quantity::from_json)
                    .map_or(0, |q| {
                        if r == "cpu" {
                            q.milli_value()
                        } else {
                            q.value()
                        }
                    })
            })
            .collect()
    };
    let effective = |r: &str| {
        let main: i64 = sum("containers", r).iter().sum();
        let init = sum("initContainers", r).into_iter().max().unwrap_or(0);
        main.max(init)
    };
    Usage {
        cpu: effective("cpu"),
        memory: effective("memory"),
        pods: 1,
    }
}

#[derive(Default)]
pub struct Scheduler {
    /// Unschedulable pods: what the node's usage was and when they were last tried.
    waiting: HashMap<String, (Usage, Instant)>,
}

impl Scheduler {
    pub fn reconcile(&mut self, cluster: &Cluster) {
        let def = resources::pods();
        let pods = cluster.store.all(def, None);
        let node = &cluster.node;
        let mut used = Usage::default();
        for p in pods
            .iter()
            .filter(|p| p.pointer("/spec/nodeName").and_then(Value::as_str) == Some(&node.name))
        {
            if !terminal(p) {
                let r = requests(p);
                used.cpu += r.cpu;
                used.memory += r.memory;
                used.pods += 1;
            }
        }
        let mut pending: Vec<&Value> = pods
            .iter()
            .filter(|p| {
                p.pointer("/spec/nodeName")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
            })
            .filter(|p| !deleting(p) && !terminal(p))
            .filter(|p| {
                p.pointer("/spec/schedulerName")
                    .and_then(Value::as_str)
                    .is_none_or(|s| s == COMPONENT)
            })
            .collect();
        pending.sort_by_key(|p| {
            (
                -super::int(p, "/spec/priority"),
                creation(p).to_string(),
                name(p).to_string(),
            )
        });
        let pending_uids: Vec<&str> = pending.iter().map(|p| uid(p)).collect();
        self.waiting
            .retain(|u, _| pending_uids.contains(&u.as_str()));
        for pod in pending {
            if let Some((seen, at)) = self.waiting.get(uid(pod))
                && *seen == used
                && at.elapsed() < RETRY
            {
                continue;
            }
            let want = requests(pod);
            let mut reasons = Vec::new();
            if used.pods + 1 > node.max_pods {
                reasons.push("Too many pods");
            }
            if used.cpu + want.cpu > node.cpu_millis {
                reasons.push("Insufficient cpu");
            }
            if used.memory + want.memory > node.memory_bytes {
                reasons.push("Insufficient memory");
            }
            if reasons.is_empty() {
                if bind(cluster, pod) {
                    used.cpu += want.cpu;
                    used.memory += want.memory;
                    used.pods += 1;
                }
                self.waiting.remove(uid(pod));
            } else {
                reasons.sort_unstable();
                let detail = reasons
                    .iter()
                    .map(|r| format!("1 {r}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let message = format!(
                    "0/1 nodes are available: {detail}. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
                );
                unschedulable(cluster, pod, &message);
                self.waiting
                    .insert(uid(pod).to_string(), (used, Instant::now()));
            }
        }
    }
}

fn set_scheduled_condition(pod: &mut Value, condition: Value) {
    if !pod["status"].is_object() {
        pod["status"] = json!({});
    }
    let conditions = pod["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let old = conditions.iter().find(|c| c["type"] == "PodScheduled");
    if old.is_some_and(|o| {
        o["status"] == condition["status"]
            && o["reason"] == condition["reason"]
            && o["message"] == condition["message"]
    }) {
        return;
    }
    let mut condition = condition;
    if let Some(o) = old.filter(|o| o["status"] == condition["status"]) {
        condition["lastTransitionTime"] = o["lastTransitionTime"].clone();
    }
    let mut rest: Vec<Value> = conditions
        .into_iter()
        .filter(|c| c["type"] != "PodScheduled")
        .collect();
    rest.insert(0, condition);
    pod["status"]["conditions"] = json!(rest);
}

/// Binds the pod as the `pods/binding` subresource would: the node name,
/// then the PodScheduled condition.
fn bind(cluster: &Cluster, pod: &Value) -> bool {
    let def = resources::pods();
    let node = &cluster.node.name;
    let mut ours = false;
    let bound = write(&cluster.store, def, pod, "", COMPONENT, |p| {
        let taken = p
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        if !deleting(p) && !taken && uid(p) == uid(pod) {
            p["spec"]["nodeName"] = json!(node);
            ours = true;
        }
    });
    let Some(bound) = bound.filter(|_| ours) else {
        return false;
    };
    let _ = write(&cluster.store, def, pod, "status", COMPONENT, |p| {
        set_scheduled_condition(
            p,
            json!({ "type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": time::now() }),
        );
    });
    cluster.recorder.record(
        &bound,
        Severity::Normal,
        "Scheduled",
        &format!(
            "Successfully assigned {}/{} to {node}",
            namespace(pod),
            name(pod)
        ),
        COMPONENT,
        None,
    );
    true
}

fn unschedulable(cluster: &Cluster, pod: &Value, message: &str) {
    let def = resources::pods();
    let _ = write(&cluster.store, def, pod, "status", COMPONENT, |p| {
        set_scheduled_condition(
            p,
            json!({
                "type": "PodScheduled",
                "status": "False",
                "lastProbeTime": null,
                "lastTransitionTime": time::now(),
                "reason": "Unschedulable",
                "message": message,
            }),
        );
    });
    cluster.recorder.record(
        pod,
        Severity::Warning,
        "FailedScheduling",
        message,
        COMPONENT,
        None,
    );
}
