//! Every component's pods accept traffic on their own port only. Internal
//! components (ClusterIP services, the backend) accept it only from the
//! project's other components (the frontend); components exposed on a node
//! port from anywhere, as the browser must reach them.

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{meta, selector};
use crate::project::{Component, Project, ServiceKind};

pub(super) fn policies(project: &Project) -> Vec<NetworkPolicy> {
    project
        .components
        .iter()
        .map(|c| {
            let port = NetworkPolicyPort {
                port: Some(IntOrString::Int(c.port.into())),
                protocol: Some("TCP".into()),
                ..NetworkPolicyPort::default()
            };
            if c.service.kind == ServiceKind::NodePort {
                // No `from`: any source, but on the served port alone.
                return policy(
                    project,
                    c,
                    vec![NetworkPolicyIngressRule {
                        from: None,
                        ports: Some(vec![port]),
                    }],
                );
            }
            let clients: Vec<String> = project
                .components
                .iter()
                .filter(|o| o.name != c.name)
                .map(|o| o.name.clone())
                .collect();
            // With no other component, an ingress rule without peers would
            // admit everyone; no rule at all admits no one, which is the intent.
            let ingress = (!clients.is_empty()).then(|| {
                vec![NetworkPolicyIngressRule {
                    from: Some(vec![NetworkPolicyPeer {
                        pod_selector: Some(LabelSelector {
                            match_labels: Some(
                                [(
                                    "app.kubernetes.io/instance".to_string(),
                                    project.name.clone(),
                                )]
                                .into(),
                            ),
                            match_expressions: Some(vec![LabelSelectorRequirement {
                                key: "app.kubernetes.io/component".into(),
                                operator: "In".into(),
                                values: Some(clients),
                            }]),
                        }),
                        ..NetworkPolicyPeer::default()
                    }]),
                    ports: Some(vec![port]),
                }]
            });
            policy(project, c, ingress.unwrap_or_default())
        })
        .collect()
}

fn policy(
    project: &Project,
    c: &Component,
    ingress: Vec<NetworkPolicyIngressRule>,
) -> NetworkPolicy {
    NetworkPolicy {
        metadata: meta(project, c, None),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(selector(project, c)),
                ..LabelSelector::default()
            }),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(ingress),
            ..NetworkPolicySpec::default()
        }),
    }
}
