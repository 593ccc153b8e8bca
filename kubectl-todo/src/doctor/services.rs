//! A component's Services: a selector that matches its pods, a targetPort its
//! containers declare, ready endpoints, and a NodePort that answers from here.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::app::{State, of_component};
use super::catalogue as cat;
use super::cluster::{Live, could_not};
use super::output::Finding;
use crate::project::Component;

pub async fn check(
    live: &Live,
    state: &State,
    c: &Component,
    pods: &[&Pod],
    deployment: &Deployment,
) -> Vec<Finding> {
    let ns = &live.conn.namespace;
    let services = match &state.services {
        Ok(all) => of_component(all, c),
        Err(e) => {
            return vec![could_not(
                &cat::SERVICE,
                "list Services",
                "list",
                "services",
                ns,
                e,
            )];
        }
    };
    if services.is_empty() {
        return vec![Finding::fail(
            &cat::SERVICE,
            format!("{}: no Service in namespace {ns}", c.name),
            "deploy it: `kubectl todo up`",
        )];
    }
    let mut findings = Vec::new();
    for svc in services {
        findings.extend(service(live, state, c, pods, deployment, svc).await);
    }
    findings
}

async fn service(
    live: &Live,
    state: &State,
    c: &Component,
    pods: &[&Pod],
    deployment: &Deployment,
    svc: &Service,
) -> Vec<Finding> {
    let ns = &live.conn.namespace;
    let name = svc.metadata.name.clone().unwrap_or_default();
    let spec = svc.spec.clone().unwrap_or_default();
    let selector = spec.selector.clone().unwrap_or_default();
    let matching: Vec<&&Pod> = pods
        .iter()
        .filter(|p| {
            let labels = p.metadata.labels.clone().unwrap_or_default();
            selector.iter().all(|(k, v)| labels.get(k) == Some(v))
        })
        .collect();
    if !selector.is_empty() && matching.is_empty() && !pods.is_empty() {
        let wanted: BTreeMap<String, String> = deployment
            .spec
            .as_ref()
            .and_then(|s| s.selector.match_labels.clone())
            .unwrap_or_default();
        let mut patch = serde_json::Map::new();
        for k in selector.keys().filter(|k| !wanted.contains_key(*k)) {
            patch.insert(k.clone(), serde_json::Value::Null);
        }
        for (k, v) in &wanted {
            patch.insert(k.clone(), v.clone().into());
        }
        let patch = serde_json::json!({ "spec": { "selector": patch } });
        return vec![Finding::fail(
            &cat::SELECTOR_MISMATCH,
            format!(
                "{}: service/{name} has no endpoints: its selector {} matches none of the {} pods ({})",
                c.name,
                show(&selector),
                pods.len(),
                show(&wanted)
            ),
            format!("`kubectl -n {ns} patch service {name} --type=merge -p '{patch}'`"),
        )];
    }
    let mut findings = Vec::new();
    for (i, port) in spec.ports.iter().flatten().enumerate() {
        let target = port
            .target_port
            .clone()
            .unwrap_or(IntOrString::Int(port.port));
        let declared: Vec<_> = matching
            .iter()
            .flat_map(|p| p.spec.iter().flat_map(|s| &s.containers))
            .flat_map(|ct| ct.ports.iter().flatten())
            .collect();
        let found = declared.iter().any(|cp| match &target {
            IntOrString::Int(n) => cp.container_port == *n,
            IntOrString::String(n) => cp.name.as_deref() == Some(n.as_str()),
        });
        if !declared.is_empty() && !found {
            let shown = match &target {
                IntOrString::Int(n) => n.to_string(),
                IntOrString::String(n) => n.clone(),
            };
            findings.push(Finding::fail(
                &cat::PORT_MISMATCH,
                format!("{}: service/{name} sends port {} to targetPort {shown}, which no container declares (the app listens on {})", c.name, port.port, c.port),
                format!(
                    "`kubectl -n {ns} patch service {name} --type=json -p '[{{\"op\":\"replace\",\"path\":\"/spec/ports/{i}/targetPort\",\"value\":{}}}]'`",
                    c.port
                ),
            ));
        }
    }
    let ready = ready_addresses(state, &name);
    findings.push(match ready {
        Some(0) | None => Finding::warn(
            &cat::SERVICE,
            format!(
                "{}: service/{name} has no ready endpoints: its pods are not ready",
                c.name
            ),
            format!("fix the pods (see above); check with `kubectl get endpoints {name} -n {ns}`"),
        ),
        Some(n) => Finding::ok(
            &cat::SERVICE,
            format!(
                "{}: service/{name} has {n} ready endpoint{}",
                c.name,
                if n == 1 { "" } else { "s" }
            ),
        ),
    });
    if ready.is_some_and(|n| n > 0) && spec.type_.as_deref() == Some("NodePort") {
        let host = crate::urls::node_address(state.nodes.as_ref().ok().map(Vec::as_slice))
            .unwrap_or_else(|| live.conn.server_host.clone());
        for port in spec.ports.iter().flatten() {
            if let Some(node_port) = port.node_port {
                findings.push(nodeport(live, c, &name, &host, (node_port, port.port)).await);
            }
        }
    }
    findings
}

fn show(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn ready_addresses(state: &State, name: &str) -> Option<usize> {
    let endpoints: &Vec<Endpoints> = state.endpoints.as_ref().ok()?;
    let e = endpoints
        .iter()
        .find(|e| e.metadata.name.as_deref() == Some(name))?;
    Some(
        e.subsets
            .iter()
            .flatten()
            .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
            .sum(),
    )
}

/// `ports` is (nodePort, the Service's port).
async fn nodeport(
    live: &Live,
    c: &Component,
    name: &str,
    host: &str,
    ports: (i32, i32),
) -> Finding {
    let (port, service_port) = ports;
    let ns = &live.conn.namespace;
    let addr = crate::urls::socket_address(host, port);
    let wait = live.timeout.min(Duration::from_secs(2));
    match tokio::time::timeout(wait, tokio::net::TcpStream::connect(&addr)).await {
        Ok(Ok(_)) => Finding::ok(
            &cat::NODEPORT,
            format!("{}: service/{name} answers at http://{addr}", c.name),
        ),
        outcome => {
            let why = match outcome {
                Ok(Err(e)) => e.to_string(),
                _ => format!("no answer within {wait:?}"),
            };
            Finding::fail(
                &cat::NODEPORT,
                format!(
                    "{}: NodePort {port} of service/{name} is not reachable from this machine at {addr}: {why}",
                    c.name
                ),
                match live.local.as_ref().map(|l| l.kind) {
                    Some(image_builder::load::ClusterKind::Minikube) => {
                        format!("open a tunnel: `minikube service {name} -n {ns} --url`")
                    }
                    _ => format!(
                        "reach it through the API server instead: `kubectl port-forward -n {ns} service/{name} {service_port}`"
                    ),
                },
            )
        }
    }
}
