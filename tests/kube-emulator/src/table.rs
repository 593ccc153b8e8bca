//! Server-side printing: the `Table` responses `kubectl get` asks for,
//! with the columns the real server prints for each kind.

use serde_json::{Value, json};

use crate::resources::ResourceDef;
use crate::time;

/// `kubectl get` asks for `application/json;as=Table;v=v1;g=meta.k8s.io`.
pub fn wants_table(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn i(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// kubectl's short durations: `45s`, `3m20s`, `5h`, `2d3h`.
pub fn human_duration(secs: f64) -> String {
    let secs = secs.max(0.0) as i64;
    match secs {
        0..120 => format!("{secs}s"),
        120..600 => format!("{}m{}s", secs / 60, secs % 60),
        600..10800 => format!("{}m", secs / 60),
        10800..28800 => format!("{}h{}m", secs / 3600, (secs % 3600) / 60),
        28800..172800 => format!("{}h", secs / 3600),
        172800..691200 => format!("{}d{}h", secs / 86400, (secs % 86400) / 3600),
        _ => format!("{}d", secs / 86400),
    }
}

fn age(obj: &Value) -> String {
    time::seconds_since(s(obj, "/metadata/creationTimestamp"))
        .map(human_duration)
        .unwrap_or_else(|| "<unknown>".into())
}

fn col(name: &str, kind: &str, priority: i64, description: &str) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    json!({ "name": name, "type": kind, "format": format, "description": description, "priority": priority })
}

fn pod_status(pod: &Value) -> String {
    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        return "Terminating".into();
    }
    let mut reason = s(pod, "/status/phase").to_string();
    if let Some(r) = pod.pointer("/status/reason").and_then(Value::as_str) {
        reason = r.into();
    }
    for c in pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(w) = c.pointer("/state/waiting/reason").and_then(Value::as_str) {
            reason = w.into();
        } else if let Some(t) = c.pointer("/state/terminated") {
            reason = t["reason"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| format!("ExitCode:{}", t["exitCode"]));
        }
    }
    reason
}

fn pod_row(pod: &Value) -> Vec<Value> {
    let statuses = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array);
    let total = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let ready = statuses.map_or(0, |c| c.iter().filter(|c| c["ready"] == true).count());
    let restarts: i64 = statuses.map_or(0, |c| {
        c.iter()
            .map(|c| c["restartCount"].as_i64().unwrap_or(0))
            .sum()
    });
    let last_restart = statuses
        .into_iter()
        .flatten()
        .filter_map(|c| {
            c.pointer("/lastState/terminated/finishedAt")
                .and_then(Value::as_str)
        })
        .filter_map(time::seconds_since)
        .reduce(f64::min);
    let restarts_cell = match last_restart {
        Some(ago) if restarts > 0 => format!("{restarts} ({} ago)", human_duration(ago)),
        _ => restarts.to_string(),
    };
    let ip = s(pod, "/status/podIP");
    let node = s(pod, "/spec/nodeName");
    vec![
        json!(s(pod, "/metadata/name")),
        json!(format!("{ready}/{total}")),
        json!(pod_status(pod)),
        json!(restarts_cell),
        json!(age(pod)),
        json!(if ip.is_empty() { "<none>" } else { ip }),
        json!(if node.is_empty() { "<none>" } else { node }),
        json!("<none>"),
        json!("<none>"),
    ]
}

fn containers_and_images(template_spec: Option<&Value>) -> (String, String) {
    let cs = template_spec
        .and_then(|t| t.get("containers"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let names: Vec<&str> = cs.iter().filter_map(|c| c["name"].as_str()).collect();
    let images: Vec<&str> = cs.iter().filter_map(|c| c["image"].as_str()).collect();
    (names.join(","), images.join(","))
}

fn selector_string(sel: Option<&Value>) -> String {
    let Some(labels) = sel
        .and_then(|s| s.get("matchLabels").or(Some(s)))
        .and_then(Value::as_object)
    else {
        return "<none>".into();
    };
    let parts: Vec<String> = labels
        .iter()
        .filter(|(_, v)| v.is_string())
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    if parts.is_empty() {
        "<none>".into()
    } else {
        parts.join(",")
    }
}

fn service_ports(svc: &Value) -> String {
    let ports: Vec<String> = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| match p["nodePort"].as_i64() {
            Some(np) => format!(
                "{}:{np}/{}",
                p["port"],
                p["protocol"].as_str().unwrap_or("TCP")
            ),
            None => format!("{}/{}", p["port"], p["protocol"].as_str().unwrap_or("TCP")),
        })
        .collect();
    if ports.is_empty() {
        "<none>".into()
    } else {
        ports.join(",")
    }
}

fn data_count(obj: &Value) -> usize {
    ["data", "binaryData"]
        .iter()
        .map(|f| {
            obj.get(*f)
                .and_then(Value::as_object)
                .map_or(0, |m| m.len())
        })
        .sum()
}

/// Column definitions and one row per object, for the kinds kubectl users look at.
fn columns_and_rows(def: &ResourceDef, items: &[Value]) -> (Vec<Value>, Vec<Vec<Value>>) {
    let name = col(
        "Name",
        "string",
        0,
        "Name must be unique within a namespace.",
    );
    let age_col = col(
        "Age",
        "string",
        0,
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
    );
    match (def.group, def.kind) {
        ("", "Pod") => (
            vec![
                name,
                col(
                    "Ready",
                    "string",
                    0,
                    "The aggregate readiness state of this pod for accepting traffic.",
                ),
                col(
                    "Status",
                    "string",
                    0,
                    "The aggregate status of the containers in this pod.",
                ),
                col(
                    "Restarts",
                    "string",
                    0,
                    "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
                ),
                age_col,
                col("IP", "string", 1, "IP address allocated to the pod."),
                col(
                    "Node",
                    "string",
                    1,
                    "Name of the Node this pod is assigned to.",
                ),
                col(
                    "Nominated Node",
                    "string",
                    1,
                    "Name of the Node this pod is nominated to.",
                ),
                col(
                    "Readiness Gates",
                    "string",
                    1,
                    "Readiness gates of this pod.",
                ),
            ],
            items.iter().map(pod_row).collect(),
        ),
        ("apps", "Deployment") => (
            vec![
                name,
                col("Ready", "string", 0, "Number of the pod with ready state"),
                col(
                    "Up-to-date",
                    "string",
                    0,
                    "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
                ),
                col(
                    "Available",
                    "string",
                    0,
                    "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
                ),
                age_col,
                col(
                    "Containers",
                    "string",
                    1,
                    "Names of each container in the template.",
                ),
                col(
                    "Images",
                    "string",
                    1,
                    "Images referenced by each container in the template.",
                ),
                col("Selector", "string", 1, "Label selector for pods."),
            ],
            items
                .iter()
                .map(|d| {
                    let (cs, images) = containers_and_images(d.pointer("/spec/template/spec"));
                    vec![
                        json!(s(d, "/metadata/name")),
                        json!(format!(
                            "{}/{}",
                            i(d, "/status/readyReplicas"),
                            i(d, "/spec/replicas")
                        )),
                        json!(i(d, "/status/updatedReplicas")),
                        json!(i(d, "/status/availableReplicas")),
                        json!(age(d)),
                        json!(cs),
                        json!(images),
                        json!(selector_string(d.pointer("/spec/selector"))),
                    ]
                })
                .collect(),
        ),
        ("apps", "ReplicaSet") => (
            vec![
                name,
                col("Desired", "integer", 0, "Number of desired pods."),
                col("Current", "integer", 0, "Number of actual replicas."),
                col("Ready", "integer", 0, "Number of ready replicas."),
                age_col,
                col(
                    "Containers",
                    "string",
                    1,
                    "Names of each container in the template.",
                ),
                col(
                    "Images",
                    "string",
                    1,
                    "Images referenced by each container in the template.",
                ),
                col("Selector", "string", 1, "Label selector for pods."),
            ],
            items
                .iter()
                .map(|r| {
                    let (cs, images) = containers_and_images(r.pointer("/spec/template/spec"));
                    vec![
                        json!(s(r, "/metadata/name")),
                        json!(i(r, "/spec/replicas")),
                        json!(i(r, "/status/replicas")),
                        json!(i(r, "/status/readyReplicas")),
                        json!(age(r)),
                        json!(cs),
                        json!(images),
                        json!(selector_string(r.pointer("/spec/selector"))),
                    ]
                })
                .collect(),
        ),
        ("", "Service") => (
            vec![
                name,
                col("Type", "string", 0, "The type of the service."),
                col("Cluster-IP", "string", 0, "The cluster IP of the service."),
                col(
                    "External-IP",
                    "string",
                    0,
                    "The external IP of the service.",
                ),
                col("Port(s)", "string", 0, "The ports of the service."),
                age_col,
                col("Selector", "string", 1, "The selector of the service."),
            ],
            items
                .iter()
                .map(|svc| {
                    vec![
                        json!(s(svc, "/metadata/name")),
                        json!(s(svc, "/spec/type")),
                        json!(s(svc, "/spec/clusterIP")),
                        json!("<none>"),
                        json!(service_ports(svc)),
                        json!(age(svc)),
                        json!(selector_string(svc.pointer("/spec/selector"))),
                    ]
                })
                .collect(),
        ),
        ("", "Node") => (
            vec![
                name,
                col("Status", "string", 0, "The status of the node"),
                col("Roles", "string", 0, "The roles of the node"),
                age_col,
                col(
                    "Version",
                    "string",
                    0,
                    "Kubelet Version reported by the node.",
                ),
            ],
            items
                .iter()
                .map(|n| {
                    let ready = n
                        .pointer("/status/conditions")
                        .and_then(Value::as_array)
                        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
                        .is_some_and(|c| c["status"] == "True");
                    let roles: Vec<&str> = n
                        .pointer("/metadata/labels")
                        .and_then(Value::as_object)
                        .map(|l| {
                            l.keys()
                                .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                                .collect()
                        })
                        .unwrap_or_default();
                    vec![
                        json!(s(n, "/metadata/name")),
                        json!(if ready { "Ready" } else { "NotReady" }),
                        json!(if roles.is_empty() {
                            "<none>".to_string()
                        } else {
                            roles.join(",")
                        }),
                        json!(age(n)),
                        json!(s(n, "/status/nodeInfo/kubeletVersion")),
                    ]
                })
                .collect(),
        ),
        ("", "Namespace") => (
            vec![
                name,
                col("Status", "string", 0, "The status of the namespace"),
                age_col,
            ],
            items
                .iter()
                .map(|n| {
                    vec![
                        json!(s(n, "/metadata/name")),
                        json!(s(n, "/status/phase")),
                        json!(age(n)),
                    ]
                })
                .collect(),
        ),
        ("", "Event") => (
            vec![
                col(
                    "Last Seen",
                    "string",
                    0,
                    "Time when this Event was last seen.",
                ),
                col("Type", "string", 0, "Type of this event."),
                col("Reason", "string", 0, "Reason of this event."),
                col("Object", "string", 0, "The object this Event is about."),
                col(
                    "Message",
                    "string",
                    0,
                    "A human-readable description of the status of this operation.",
                ),
            ],
            items
                .iter()
                .map(|e| {
                    let last = time::seconds_since(s(e, "/lastTimestamp"))
                        .map(human_duration)
                        .unwrap_or_else(|| "<unknown>".into());
                    vec![
                        json!(last),
                        json!(s(e, "/type")),
                        json!(s(e, "/reason")),
                        json!(format!(
                            "{}/{}",
                            s(e, "/involvedObject/kind").to_lowercase(),
                            s(e, "/involvedObject/name")
                        )),
                        json!(s(e, "/message")),
                    ]
                })
                .collect(),
        ),
        ("", "ConfigMap") => (
            vec![
                name,
                col("Data", "integer", 0, "Number of data entries."),
                age_col,
            ],
            items
                .iter()
                .map(|c| {
                    vec![
                        json!(s(c, "/metadata/name")),
                        json!(data_count(c)),
                        json!(age(c)),
                    ]
                })
                .collect(),
        ),
        ("", "Secret") => (
            vec![
                name,
                col("Type", "string", 0, "The type of the secret"),
                col("Data", "integer", 0, "Number of data entries."),
                age_col,
            ],
            items
                .iter()
                .map(|c| {
                    vec![
                        json!(s(c, "/metadata/name")),
                        json!(s(c, "/type")),
                        json!(data_count(c)),
                        json!(age(c)),
                    ]
                })
                .collect(),
        ),
        ("", "Endpoints") => (
            vec![
                name,
                col("Endpoints", "string", 0, "Endpoints of the service"),
                age_col,
            ],
            items
                .iter()
                .map(|e| {
                    let mut eps = Vec::new();
                    for subset in e["subsets"].as_array().into_iter().flatten() {
                        for a in subset["addresses"].as_array().into_iter().flatten() {
                            for p in subset["ports"].as_array().into_iter().flatten() {
                                eps.push(format!("{}:{}", s(a, "/ip"), p["port"]));
                            }
                        }
                    }
                    let cell = if eps.is_empty() {
                        "<none>".to_string()
                    } else {
                        eps.join(",")
                    };
                    vec![json!(s(e, "/metadata/name")), json!(cell), json!(age(e))]
                })
                .collect(),
        ),
        _ => (
            vec![name, age_col],
            items
                .iter()
                .map(|o| vec![json!(s(o, "/metadata/name")), json!(age(o))])
                .collect(),
        ),
    }
}

fn partial_metadata(obj: &Value) -> Value {
    json!({ "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"] })
}

pub fn table(def: &ResourceDef, items: &[Value], resource_version: u64) -> Value {
    let (columns, rows) = columns_and_rows(def, items);
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": { "resourceVersion": resource_version.to_string() },
        "columnDefinitions": columns,
        "rows": rows.into_iter().zip(items).map(|(cells, obj)| json!({
            "cells": cells,
            "object": partial_metadata(obj),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources;

    #[test]
    fn durations_read_like_kubectl() {
        assert_eq!(human_duration(5.0), "5s");
        assert_eq!(human_duration(200.0), "3m20s");
        assert_eq!(human_duration(3700.0), "61m");
        assert_eq!(human_duration(4.0 * 86400.0), "4d0h");
    }

    #[test]
    fn pod_rows_show_waiting_reasons() {
        let pod = json!({
            "metadata": { "name": "p", "creationTimestamp": time::now() },
            "spec": { "containers": [{ "name": "c" }] },
            "status": { "phase": "Pending", "containerStatuses": [
                { "name": "c", "ready": false, "restartCount": 0, "state": { "waiting": { "reason": "ImagePullBackOff" } } }
            ] }
        });
        let t = table(resources::pods(), &[pod], 7);
        assert_eq!(t["rows"][0]["cells"][1], "0/1");
        assert_eq!(t["rows"][0]["cells"][2], "ImagePullBackOff");
    }
}
