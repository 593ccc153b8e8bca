//! What `up` applies, as typed Kubernetes objects: per component a
//! ServiceAccount, a ConfigMap, a Service, a Deployment and a
//! NetworkPolicy. Rendering is a pure function of the
//! project and [`Inputs`], so the same inputs always give the same bytes.

mod deployment;
pub mod images;
mod network;

use std::collections::BTreeMap;

use image_builder::check::RunAs;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount, ServicePort, ServiceSpec};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{ApiResource, DynamicObject};
use kube::core::GroupVersionKind;
use sha2::{Digest, Sha256};

use crate::format::Format;
use crate::labels;
use crate::project::{Component, Project, ServiceKind};

/// Pod-template annotation with the checksum of the component's ConfigMap: a change rolls the pods.
pub const CONFIG_CHECKSUM_ANNOTATION: &str = "kubectl-todo/config-checksum";

/// What rendering needs besides the project: facts from the image builder and the cluster.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// Full image reference per component name.
    pub images: BTreeMap<String, String>,
    /// `secrets::checksum` of the app's Secret, when it exists.
    pub secret_checksum: Option<String>,
    /// What each component's image runs as; a component in neither of its
    /// maps runs as [`deployment::APP_USER`].
    pub users: Users,
}

/// What the components' images run as, as far as it is known when rendering.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Users {
    /// The numbers (a built image's `USER` resolved by image-builder, or a
    /// numeric `USER` as written).
    pub resolved: BTreeMap<String, RunAs>,
    /// The `USER` name of an image not built yet: its numbers are in the
    /// image's own account files, so the pod names none until then.
    pub after_build: BTreeMap<String, String>,
}

/// One rendered object, typed.
// A project has a handful of objects: their size in memory does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    ServiceAccount(ServiceAccount),
    ConfigMap(ConfigMap),
    Service(Service),
    Deployment(Deployment),
    NetworkPolicy(NetworkPolicy),
}

impl Object {
    pub fn api_resource(&self) -> ApiResource {
        match self {
            Object::ServiceAccount(_) => ApiResource::erase::<ServiceAccount>(&()),
            Object::ConfigMap(_) => ApiResource::erase::<ConfigMap>(&()),
            Object::Service(_) => ApiResource::erase::<Service>(&()),
            Object::Deployment(_) => ApiResource::erase::<Deployment>(&()),
            Object::NetworkPolicy(_) => ApiResource::erase::<NetworkPolicy>(&()),
        }
    }

    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Object::ServiceAccount(o) => &o.metadata,
            Object::ConfigMap(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::Deployment(o) => &o.metadata,
            Object::NetworkPolicy(o) => &o.metadata,
        }
    }

    pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Object::ServiceAccount(o) => &mut o.metadata,
            Object::ConfigMap(o) => &mut o.metadata,
            Object::Service(o) => &mut o.metadata,
            Object::Deployment(o) => &mut o.metadata,
            Object::NetworkPolicy(o) => &mut o.metadata,
        }
    }

    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or_default()
    }

    pub fn gvk(&self) -> GroupVersionKind {
        let r = self.api_resource();
        GroupVersionKind::gvk(&r.group, &r.version, &r.kind)
    }

    /// `Kind/name`, as kubectl prints it.
    pub fn reference(&self) -> String {
        format!("{}/{}", self.api_resource().kind, self.name())
    }

    /// The object with its `apiVersion` and `kind`, as sent to the API server.
    pub fn to_json(&self) -> serde_json::Value {
        let v = match self {
            Object::ServiceAccount(o) => serde_json::to_value(o),
            Object::ConfigMap(o) => serde_json::to_value(o),
            Object::Service(o) => serde_json::to_value(o),
            Object::Deployment(o) => serde_json::to_value(o),
            Object::NetworkPolicy(o) => serde_json::to_value(o),
        };
        v.expect("Kubernetes objects serialize")
    }

    pub fn to_dynamic(&self) -> DynamicObject {
        serde_json::from_value(self.to_json()).expect("a rendered object is a valid object")
    }
}

/// Every object of the project, grouped by kind in the order they are applied
/// (what pods need exists before the pods), components in project order.
pub fn objects(project: &Project, inputs: &Inputs) -> Vec<Object> {
    let mut out = Vec::new();
    out.extend(
        project
            .components
            .iter()
            .map(|c| Object::ServiceAccount(service_account(project, c))),
    );
    out.extend(
        project
            .components
            .iter()
            .map(|c| Object::ConfigMap(config_map(project, c))),
    );
    out.extend(
        project
            .components
            .iter()
            .map(|c| Object::Service(service(project, c))),
    );
    out.extend(project.components.iter().flat_map(|c| {
        c.aliases
            .iter()
            .map(|(name, port)| Object::Service(alias(project, c, name, *port)))
    }));
    out.extend(project.components.iter().map(|c| {
        let config = config_map(project, c);
        let d = deployment::deployment(project, c, inputs, &checksum_of(&config));
        Object::Deployment(d)
    }));
    out.extend(
        network::policies(project)
            .into_iter()
            .map(Object::NetworkPolicy),
    );
    out
}

/// Name of every object of a component: `<project>-<component>`.
pub fn object_name(project: &Project, component: &Component) -> String {
    format!("{}-{}", project.name, component.name)
}

fn meta(project: &Project, component: &Component, version: Option<&str>) -> ObjectMeta {
    let mut labels = labels::component(&project.name, &component.name);
    if let Some(v) = version {
        labels.insert("app.kubernetes.io/version".into(), v.to_string());
    }
    ObjectMeta {
        name: Some(object_name(project, component)),
        namespace: Some(project.namespace.clone()),
        labels: Some(labels),
        ..ObjectMeta::default()
    }
}

fn service_account(project: &Project, c: &Component) -> ServiceAccount {
    ServiceAccount {
        metadata: meta(project, c, None),
        // The apps do not talk to the API server; a mounted token would only be a credential to steal.
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}

fn config_map(project: &Project, c: &Component) -> ConfigMap {
    ConfigMap {
        metadata: meta(project, c, None),
        data: Some(c.env.clone()),
        ..ConfigMap::default()
    }
}

fn checksum_of(config: &ConfigMap) -> String {
    let mut hasher = Sha256::new();
    for (k, v) in config.data.iter().flatten() {
        // Lengths keep `a=bc` and `ab=c` apart.
        hasher.update((k.len() as u64).to_be_bytes());
        hasher.update(k.as_bytes());
        hasher.update((v.len() as u64).to_be_bytes());
        hasher.update(v.as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn service(project: &Project, c: &Component) -> Service {
    let node_port = matches!(c.service.kind, ServiceKind::NodePort)
        .then_some(c.service.node_port)
        .flatten();
    Service {
        metadata: meta(project, c, None),
        spec: Some(ServiceSpec {
            type_: Some(match c.service.kind {
                ServiceKind::ClusterIP => "ClusterIP".into(),
                ServiceKind::NodePort => "NodePort".into(),
            }),
            selector: Some(selector(project, c)),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: c.port.into(),
                target_port: Some(IntOrString::String("http".into())),
                node_port: node_port.map(i32::from),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// A Service under another name the app's code calls (`backend-service:8000`),
/// in front of the same pods.
fn alias(project: &Project, c: &Component, name: &str, port: u16) -> Service {
    let mut s = service(project, c);
    s.metadata.name = Some(name.to_string());
    if let Some(spec) = s.spec.as_mut() {
        spec.type_ = Some("ClusterIP".into());
        spec.ports = Some(vec![ServicePort {
            name: Some("http".into()),
            port: port.into(),
            target_port: Some(IntOrString::String("http".into())),
            protocol: Some("TCP".into()),
            ..ServicePort::default()
        }]);
    }
    s
}

/// The labels that find a component's pods; never the version, so that rollouts keep them.
pub fn selector(project: &Project, c: &Component) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/instance".to_string(),
            project.name.clone(),
        ),
        ("app.kubernetes.io/component".to_string(), c.name.clone()),
    ])
}

/// A JSON `List`, or else YAML documents separated by `---`, as kubectl reads both.
/// The objects as YAML documents or a JSON List; in YAML, a Deployment whose
/// user is known only after the build says so in a comment (JSON has none:
/// the missing numbers speak there).
pub fn to_text(objects: &[Object], format: Format, users: &Users) -> String {
    match format {
        Format::Json => {
            let list = serde_json::json!({
                "apiVersion": "v1",
                "kind": "List",
                "items": objects.iter().map(Object::to_json).collect::<Vec<_>>(),
            });
            let mut text = serde_json::to_string_pretty(&list).expect("JSON values serialize");
            text.push('\n');
            text
        }
        _ => objects
            .iter()
            .map(|o| {
                let comment = match o {
                    Object::Deployment(d) => d
                        .metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(labels::COMPONENT))
                        .and_then(|c| users.after_build.get(c))
                        .map(|name| {
                            format!(
                                "# runAsUser and runAsGroup: those of USER {name}, read from the image's /etc/passwd and /etc/group once it is built\n"
                            )
                        }),
                    _ => None,
                };
                format!(
                    "---\n{}{}",
                    comment.unwrap_or_default(),
                    serde_yaml_ng::to_string(&o.to_json()).expect("JSON values serialize")
                )
            })
            .collect(),
    }
}
