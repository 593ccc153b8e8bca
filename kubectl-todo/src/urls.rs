//! Where the app answers from this machine: `http://<node address>:<nodePort>`
//! for every component whose Service is a NodePort. `up`, `status` and
//! `doctor` share it so that they print and probe the same address.

use k8s_openapi::api::core::v1::{Node, Service};
use kube::Api;
use kube::api::ListParams;
use serde::Serialize;

use crate::apply::Error;
use crate::context::Connection;
use crate::project::Project;
use crate::render::object_name;
use crate::retry::retry;

/// One address a component answers at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppUrl {
    pub component: String,
    /// The Service it goes through.
    pub service: String,
    pub url: String,
}

/// The URL of every NodePort of every component's Service, in project order.
/// Components without a Service, or with an internal one, have none.
pub async fn app_urls(conn: &Connection, project: &Project) -> Result<Vec<AppUrl>, Error> {
    let services: Api<Service> = Api::namespaced(conn.client.clone(), &project.namespace);
    let mut found = Vec::new();
    for c in &project.components {
        let name = object_name(project, c);
        let service = retry(|| services.get_opt(&name))
            .await
            .map_err(|e| Error::api("get", "services", &name, e))?;
        if let Some(service) = service {
            found.push((c.name.clone(), name, node_ports(&service)));
        }
    }
    if found.iter().all(|(.., ports)| ports.is_empty()) {
        return Ok(Vec::new());
    }
    // Reading Nodes is cluster-scoped and often refused to app developers: the
    // API server's host is then the best guess (right for minikube, kind, k3d).
    let nodes: Api<Node> = Api::all(conn.client.clone());
    let params = ListParams::default();
    let listed = retry(|| nodes.list(&params)).await.ok().map(|l| l.items);
    let host = node_address(listed.as_deref()).unwrap_or_else(|| conn.server_host.clone());
    Ok(found
        .into_iter()
        .flat_map(|(component, service, ports)| {
            let host = &host;
            ports.into_iter().map(move |port| AppUrl {
                component: component.clone(),
                service: service.clone(),
                url: format!("http://{}", socket_address(host, port)),
            })
        })
        .collect())
}

/// The NodePorts of a NodePort (or LoadBalancer) Service.
fn node_ports(service: &Service) -> Vec<i32> {
    let Some(spec) = &service.spec else {
        return Vec::new();
    };
    if !matches!(spec.type_.as_deref(), Some("NodePort" | "LoadBalancer")) {
        return Vec::new();
    }
    spec.ports
        .iter()
        .flatten()
        .filter_map(|p| p.node_port)
        .collect()
}

/// Where the host reaches NodePorts: an InternalIP (what minikube and kind
/// hand out to the host), else an ExternalIP; `None` without nodes.
pub fn node_address(nodes: Option<&[Node]>) -> Option<String> {
    let addresses: Vec<_> = nodes
        .unwrap_or_default()
        .iter()
        .filter_map(|n| n.status.as_ref()?.addresses.as_ref())
        .flatten()
        .collect();
    ["InternalIP", "ExternalIP"].iter().find_map(|kind| {
        addresses
            .iter()
            .find(|a| a.type_ == *kind)
            .map(|a| a.address.clone())
    })
}

/// `host:port`, with an IPv6 host in brackets.
pub fn socket_address(host: &str, port: i32) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{NodeAddress, NodeStatus, ServicePort, ServiceSpec};

    use super::*;

    fn node(addresses: &[(&str, &str)]) -> Node {
        Node {
            status: Some(NodeStatus {
                addresses: Some(
                    addresses
                        .iter()
                        .map(|(t, a)| NodeAddress {
                            type_: t.to_string(),
                            address: a.to_string(),
                        })
                        .collect(),
                ),
                ..NodeStatus::default()
            }),
            ..Node::default()
        }
    }

    #[test]
    fn an_internal_ip_wins_over_an_external_one_on_any_node() {
        let nodes = [
            node(&[("Hostname", "n1"), ("ExternalIP", "203.0.113.5")]),
            node(&[("InternalIP", "192.168.49.2")]),
        ];
        assert_eq!(node_address(Some(&nodes)).unwrap(), "192.168.49.2");
        assert_eq!(
            node_address(Some(&nodes[..1])).unwrap(),
            "203.0.113.5",
            "an ExternalIP when no node has an InternalIP"
        );
        assert_eq!(node_address(Some(&[node(&[("Hostname", "n1")])])), None);
        assert_eq!(node_address(None), None);
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        assert_eq!(socket_address("fd00::2", 30000), "[fd00::2]:30000");
        assert_eq!(socket_address("10.0.0.1", 30000), "10.0.0.1:30000");
    }

    #[test]
    fn only_node_port_services_have_node_ports() {
        let service = |kind: &str| Service {
            spec: Some(ServiceSpec {
                type_: Some(kind.into()),
                ports: Some(vec![ServicePort {
                    port: 3000,
                    node_port: Some(30000),
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        };
        assert_eq!(node_ports(&service("NodePort")), vec![30000]);
        assert_eq!(node_ports(&service("LoadBalancer")), vec![30000]);
        assert!(node_ports(&service("ClusterIP")).is_empty());
        assert!(node_ports(&Service::default()).is_empty());
    }
}
