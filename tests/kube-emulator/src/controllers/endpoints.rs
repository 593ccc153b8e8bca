//! The endpoints and EndpointSlice controllers: the addresses of the pods a
//! Service selects, split by readiness, with the ports its targetPorts name.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{
    CONTROLLER_MANAGER, controller_ref, deleting, name, namespace, opts, pod_ready, terminal, uid,
    write,
};
use crate::cluster::Cluster;
use crate::resources;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::DeleteOptions;

const SERVICE_NAME: &str = "kubernetes.io/service-name";
const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
const SLICE_CONTROLLER: &str = "endpointslice-controller.k8s.io";
const SKIP_MIRROR: &str = "endpointslice.kubernetes.io/skip-mirror";

pub fn reconcile(cluster: &Cluster) {
    let store = &cluster.store;
    let services = store.all(resources::get("v1", "Service"), None);
    for svc in &services {
        let selector = svc
            .pointer("/spec/selector")
            .filter(|s| s.as_object().is_some_and(|m| !m.is_empty()));
        if let Some(selector) = selector
            && !deleting(svc)
        {
            let pods = store
                .list(
                    resources::pods(),
                    Some(namespace(svc)),
                    &LabelSelector::from_map(selector),
                    &FieldSelector::default(),
                )
                .0;
            let members: Vec<Member> = pods.iter().filter_map(|p| Member::of(svc, p)).collect();
            sync_endpoints(cluster, svc, &members);
            sync_slices(cluster, svc, &members);
        }
    }
    // Endpoints of Services that are gone; their slices go with their owner.
    let ep = resources::get("v1", "Endpoints");
    for e in store.all(ep, None) {
        let ours = e.pointer(&format!(
            "/metadata/labels/{}",
            SKIP_MIRROR.replace('/', "~1")
        )) == Some(&json!("true"));
        if ours
            && !services
                .iter()
                .any(|s| namespace(s) == namespace(&e) && name(s) == name(&e))
        {
            let opts = DeleteOptions {
                precondition_uid: Some(uid(&e).to_string()),
                ..DeleteOptions::default()
            };
            let _ = store.delete(ep, namespace(&e), name(&e), &opts);
        }
    }
}

/// One pod behind a Service.
struct Member {
    pod: Value,
    ip: String,
    ports: Vec<Value>,
    ready: bool,
    terminating: bool,
}

impl Member {
    fn of(svc: &Value, pod: &Value) -> Option<Member> {
        let ip = pod
            .pointer("/status/podIP")
            .and_then(Value::as_str)
            .filter(|ip| !ip.is_empty())?;
        if terminal(pod) {
            return None;
        }
        let ports = svc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let port = target_port(p, pod)?;
                let mut out = json!({ "name": p["name"].as_str().unwrap_or_default(), "port": port, "protocol": p["protocol"].as_str().unwrap_or("TCP") });
                if let Some(a) = p.get("appProtocol") {
                    out["appProtocol"] = a.clone();
                }
                Some(out)
            })
            .collect::<Vec<_>>();
        let wants_ports = svc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .is_some_and(|p| !p.is_empty());
        if wants_ports && ports.is_empty() {
            return None;
        }
        Some(Member {
            pod: pod.clone(),
            ip: ip.to_string(),
            ports,
            ready: pod_ready(pod),
            terminating: deleting(pod),
        })
    }

    fn target_ref(&self) -> Value {
        json!({ "kind": "Pod", "namespace": namespace(&self.pod), "name": name(&self.pod), "uid": uid(&self.pod) })
    }

    fn node(&self) -> Option<&str> {
        self.pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
    }
}

/// A service port's targetPort on this pod: a number, or the name of one of its container ports.
fn target_port(service_port: &Value, pod: &Value) -> Option<i64> {
    match service_port.get("targetPort") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => match s.parse() {
            Ok(n) => Some(n),
            Err(_) => pod
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .flat_map(|c| c["ports"].as_array().into_iter().flatten())
                .find(|p| p["name"] == s.as_str())
                .and_then(|p| p["containerPort"].as_i64()),
        },
        _ => service_port["port"].as_i64(),
    }
}

/// Members grouped by the ports they resolve to, in a stable order.
fn by_ports(members: &[Member]) -> BTreeMap<String, (Vec<Value>, Vec<&Member>)> {
    let mut groups: BTreeMap<String, (Vec<Value>, Vec<&Member>)> = BTreeMap::new();
    for m in members {
        groups
            .entry(Value::Array(m.ports.clone()).to_string())
            .or_insert_with(|| (m.ports.clone(), Vec::new()))
            .1
            .push(m);
    }
    for (_, ms) in groups.values_mut() {
        ms.sort_by(|a, b| (&a.ip, name(&a.pod)).cmp(&(&b.ip, name(&b.pod))));
    }
    groups
}

fn labels(svc: &Value, extra: &[(&str, &str)]) -> Value {
    let mut labels = svc
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if svc.pointer("/spec/clusterIP").and_then(Value::as_str) == Some("None") {
        labels.insert("service.kubernetes.io/headless".into(), json!(""));
    }
    for (k, v) in extra {
        labels.insert((*k).into(), json!(v));
    }
    Value::Object(labels)
}

fn sync_endpoints(cluster: &Cluster, svc: &Value, members: &[Member]) {
    let publish = svc.pointer("/spec/publishNotReadyAddresses") == Some(&json!(true));
    let mut subsets = Vec::new();
    for (ports, group) in by_ports(members).into_values() {
        let (mut ready, mut not_ready) = (Vec::new(), Vec::new());
        for m in group.into_iter().filter(|m| publish || !m.terminating) {
            let mut address = json!({ "ip": m.ip, "targetRef": m.target_ref() });
            if let Some(n) = m.node() {
                address["nodeName"] = json!(n);
            }
            if publish || m.ready {
                ready.push(address)
            } else {
                not_ready.push(address)
            }
        }
        let mut subset = Map::new();
        if !ready.is_empty() {
            subset.insert("addresses".into(), json!(ready));
        }
        if !not_ready.is_empty() {
            subset.insert("notReadyAddresses".into(), json!(not_ready));
        }
        if subset.is_empty() {
            continue;
        }
        // The Endpoints API leaves an unnamed port's name out.
        let ports: Vec<Value> = ports
            .into_iter()
            .map(|mut p| {
                if p["name"] == "" {
                    p.as_object_mut().expect("a port object").remove("name");
                }
                p
            })
            .collect();
        if !ports.is_empty() {
            subset.insert("ports".into(), json!(ports));
        }
        subsets.push(Value::Object(subset));
    }
    let def = resources::get("v1", "Endpoints");
    let labels = labels(svc, &[(SKIP_MIRROR, "true")]);
    let (ns, n) = (namespace(svc), name(svc));
    let apply = |e: &mut Value| {
        e["metadata"]["labels"] = labels.clone();
        match e.as_object_mut() {
            Some(o) if subsets.is_empty() => {
                o.remove("subsets");
            }
            _ => e["subsets"] = json!(subsets),
        }
    };
    match cluster.store.try_get(def, ns, n) {
        None => {
            let mut e = json!({ "metadata": { "name": n } });
            apply(&mut e);
            let _ = cluster.store.create(def, ns, e, &opts());
        }
        Some(existing) => {
            let mut wanted = existing.clone();
            apply(&mut wanted);
            if wanted != existing {
                let _ = write(
                    &cluster.store,
                    def,
                    &existing,
                    "",
                    CONTROLLER_MANAGER,
                    |e| {
                        apply(e);
                    },
                );
            }
        }
    }
}

fn sync_slices(cluster: &Cluster, svc: &Value, members: &[Member]) {
    let publish = svc.pointer("/spec/publishNotReadyAddresses") == Some(&json!(true));
    let mut wanted: Vec<(Option<Vec<Value>>, Vec<Value>)> = by_ports(members)
        .into_values()
        .map(|(ports, group)| {
            let endpoints = group
                .into_iter()
                .map(|m| {
                    let serving = publish || m.ready;
                    let mut e = json!({
                        "addresses": [m.ip],
                        "conditions": { "ready": publish || (serving && !m.terminating), "serving": serving, "terminating": m.terminating },
                        "targetRef": m.target_ref(),
                    });
                    if let Some(n) = m.node() {
                        e["nodeName"] = json!(n);
                    }
                    e
                })
                .collect();
            (Some(ports), endpoints)
        })
        .collect();
    if wanted.is_empty() {
        // A Service with no endpoints still has one slice, without ports.
        wanted.push((None, Vec::new()));
    }
    let def = resources::get("discovery.k8s.io/v1", "EndpointSlice");
    let ns = namespace(svc);
    let selector =
        LabelSelector::from_map(&json!({ SERVICE_NAME: name(svc), MANAGED_BY: SLICE_CONTROLLER }));
    let mut existing = cluster
        .store
        .list(def, Some(ns), &selector, &FieldSelector::default())
        .0;
    let labels = labels(
        svc,
        &[(SERVICE_NAME, name(svc)), (MANAGED_BY, SLICE_CONTROLLER)],
    );
    for (ports, endpoints) in wanted {
        let apply = |s: &mut Value| {
            s["metadata"]["labels"] = labels.clone();
            s["addressType"] = json!("IPv4");
            s["endpoints"] = json!(endpoints);
            match (&ports, s.as_object_mut()) {
                (Some(p), _) => s["ports"] = json!(p),
                (None, Some(o)) => {
                    o.remove("ports");
                }
                (None, None) => {}
            }
        };
        let same_ports = |s: &Value| s.get("ports").and_then(Value::as_array) == ports.as_ref();
        match existing.iter().position(same_ports) {
            Some(i) => {
                let current = existing.swap_remove(i);
                let mut updated = current.clone();
                apply(&mut updated);
                if updated != current {
                    let _ = write(&cluster.store, def, &current, "", CONTROLLER_MANAGER, |s| {
                        apply(s);
                    });
                }
            }
            None => {
                let mut slice = json!({
                    "metadata": { "generateName": format!("{}-", name(svc)), "ownerReferences": [controller_ref(svc)] },
                });
                apply(&mut slice);
                let _ = cluster.store.create(def, ns, slice, &opts());
            }
        }
    }
    for stale in existing {
        let _ = cluster
            .store
            .delete(def, ns, name(&stale), &DeleteOptions::default());
    }
}
