//! The cluster: kubeconfig, context, API server, credentials, nodes, capacity
//! and RBAC.

use std::time::Duration;

use futures::StreamExt;
use image_builder::load::{ClusterKind, Loader};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{ListParams, PostParams};

use super::catalogue::{self as cat, Entry};
use super::output::Finding;
use super::{Ctx, quantity};
use crate::context::{self, Connection};
use crate::report::Hinted as _;
use crate::settings::Settings;

/// The context and API server address the kubeconfig selects.
pub struct Target {
    pub context: String,
    pub server: String,
}

pub fn target(global: &Settings) -> Result<Target, kube::config::KubeconfigError> {
    let kubeconfig = crate::context::read_kubeconfig(global.kubeconfig.as_deref())?;
    let context = global
        .context
        .clone()
        .or(kubeconfig.current_context.clone())
        .unwrap_or_default();
    let cluster = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone());
    let server = kubeconfig
        .clusters
        .iter()
        .find(|c| Some(&c.name) == cluster.as_ref())
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .unwrap_or_default();
    Ok(Target { context, server })
}

/// The command that starts a stopped local cluster again: kind's node is
/// a container, so starting it is enough (`kind create` would make a new one).
fn start_command(local: &Loader) -> String {
    let name = local.cluster.as_deref().unwrap_or_default();
    match local.kind {
        ClusterKind::Minikube => "minikube start".into(),
        ClusterKind::Kind => format!("docker start {name}-control-plane"),
        ClusterKind::K3d => format!("k3d cluster start {name}"),
    }
}

/// A cluster that answered.
pub struct Live {
    pub conn: Connection,
    pub context: String,
    /// The local cluster the context belongs to, if it is one.
    pub local: Option<Loader>,
    pub server_version: Option<String>,
    pub timeout: Duration,
}

impl Live {
    /// The command that loads `image` into this cluster's node.
    pub fn load_command(&self, image: &str) -> String {
        match &self.local {
            Some(local) => local.command_line(image),
            None => "kubectl todo up".into(),
        }
    }
}

fn looks_local(context: &str, server: &str) -> bool {
    let host = url::Url::parse(server)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    Loader::of_context(context).is_some()
        || ["docker-desktop", "rancher-desktop", "orbstack"].contains(&context)
        || matches!(host.as_str(), "localhost" | "127.0.0.1" | "[::1]" | "::1")
        || host.starts_with("192.168.49.")
        || host.ends_with(".local")
}

/// The kubeconfig, the context and the API server; `Some` when the API answered.
pub async fn connect(ctx: &Ctx) -> (Vec<Finding>, Option<Live>) {
    let kubeconfig_fix = "start a local cluster (`minikube start` writes the kubeconfig) or pass --kubeconfig PATH; list contexts with `kubectl config get-contexts`";
    let target = match target(&ctx.global) {
        Ok(t) => t,
        Err(e) => {
            let message = format!("cannot load the kubeconfig: {}", chain(&e));
            return (
                vec![Finding::fail(&cat::KUBECONFIG, message, kubeconfig_fix)],
                None,
            );
        }
    };
    let conn = match context::connect(&ctx.global, &ctx.project.namespace).await {
        Ok(c) => c,
        Err(e) => {
            let message = format!("cannot use context {:?}: {}", target.context, chain(&e));
            let hint = e.hint().unwrap_or_else(|| kubeconfig_fix.into());
            return (vec![Finding::fail(&cat::KUBECONFIG, message, hint)], None);
        }
    };
    let local = Loader::of_context(&target.context);
    let mut findings = vec![Finding::ok(
        &cat::KUBECONFIG,
        match &ctx.global.kubeconfig {
            Some(p) => format!("kubeconfig {} loads", p.display()),
            None => "kubeconfig loads".to_string(),
        },
    )];
    findings.push(if looks_local(&target.context, &target.server) {
        Finding::ok(
            &cat::CONTEXT,
            format!("context {} ({}) is local", target.context, target.server),
        )
    } else {
        Finding::warn(
            &cat::CONTEXT,
            format!(
                "context {} ({}) does not look like a local cluster: up and secrets would change it",
                target.context, target.server
            ),
            "if that is not intended: `kubectl config use-context minikube` (or pass --context NAME)",
        )
    });
    let start = local
        .as_ref()
        .map_or("minikube start".into(), start_command);
    let version = tokio::time::timeout(ctx.timeout, conn.client.apiserver_version()).await;
    let server_version = match version {
        Ok(Ok(info)) => Some(info.git_version),
        // A server that hides its version still answered.
        Ok(Err(kube::Error::Api(s))) if s.code == 403 => None,
        Ok(Err(kube::Error::Api(s))) if s.code == 401 => {
            findings.push(Finding::fail(
                &cat::CREDENTIALS,
                format!("{} rejected the credentials of context {}: {} (401 Unauthorized)", target.server, target.context, s.message),
                match local.as_ref().map(|l| l.kind) {
                    Some(ClusterKind::Minikube) => "refresh them: `minikube update-context`, then `kubectl get nodes`".to_string(),
                    _ => "log in again to refresh the token or certificate (e.g. `aws eks update-kubeconfig`, `gcloud container clusters get-credentials`), then `kubectl get nodes`".to_string(),
                },
            ));
            return (findings, None);
        }
        Ok(Err(e)) => {
            let message = format!(
                "cannot reach the API server {}: {}",
                target.server,
                chain(&e)
            );
            let finding = if matches!(e, kube::Error::Auth(_)) {
                Finding::fail(
                    &cat::CREDENTIALS,
                    message,
                    "refresh the credentials (your provider's login command), then `kubectl get nodes`",
                )
            } else {
                Finding::fail(
                    &cat::API,
                    message,
                    format!("start the cluster: `{start}`, then `kubectl cluster-info`"),
                )
            };
            findings.push(finding);
            return (findings, None);
        }
        Err(_) => {
            findings.push(Finding::fail(
                &cat::API,
                format!(
                    "the API server {} did not answer within {:?}",
                    target.server, ctx.timeout
                ),
                format!("start the cluster: `{start}`, then `kubectl cluster-info`"),
            ));
            return (findings, None);
        }
    };
    findings.push(Finding::ok(
        &cat::API,
        format!(
            "API server {} answers ({})",
            target.server,
            server_version.as_deref().unwrap_or("version hidden")
        ),
    ));
    let live = Live {
        conn,
        context: target.context,
        local,
        server_version,
        timeout: ctx.timeout,
    };
    (findings, Some(live))
}

/// Nodes, capacity and RBAC, concurrently.
pub async fn check(ctx: &Ctx, live: &Live) -> Vec<Finding> {
    let (nodes, rbac) = futures::join!(nodes(ctx, live), rbac(live));
    nodes.into_iter().chain(rbac).collect()
}

async fn nodes(ctx: &Ctx, live: &Live) -> Vec<Finding> {
    let api: Api<Node> = Api::all(live.conn.client.clone());
    let list = match within(live, api.list(&ListParams::default())).await {
        Ok(list) => list.items,
        Err(e) => {
            return vec![could_not(
                &cat::NODES,
                "list the nodes",
                "list",
                "nodes",
                "",
                &e,
            )];
        }
    };
    let not_ready: Vec<String> = list
        .iter()
        .filter(|n| !node_ready(n))
        .map(|n| n.metadata.name.clone().unwrap_or_default())
        .collect();
    let ready = if list.is_empty() {
        Finding::fail(
            &cat::NODES,
            "the cluster has no nodes",
            "start the cluster's node: `minikube start`",
        )
    } else if !not_ready.is_empty() {
        Finding::fail(
            &cat::NODES,
            format!(
                "{} of {} nodes not Ready: {}",
                not_ready.len(),
                list.len(),
                not_ready.join(", ")
            ),
            format!("see why with `kubectl describe node {}`", not_ready[0]),
        )
    } else {
        Finding::ok(
            &cat::NODES,
            format!(
                "{} node{} Ready",
                list.len(),
                if list.len() == 1 { "" } else { "s" }
            ),
        )
    };
    vec![ready, capacity(ctx, &list)]
}

fn node_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The app's requests (every replica of every selected component) against the roomiest node.
fn capacity(ctx: &Ctx, nodes: &[Node]) -> Finding {
    let allocatable = |n: &Node, r: &str| {
        n.status
            .as_ref()
            .and_then(|s| s.allocatable.as_ref())
            .and_then(|a| a.get(r))
            .and_then(|q| quantity::parse(&q.0))
            .unwrap_or(0.0)
    };
    let best_cpu = nodes
        .iter()
        .map(|n| allocatable(n, "cpu"))
        .fold(0.0, f64::max);
    let best_mem = nodes
        .iter()
        .map(|n| allocatable(n, "memory"))
        .fold(0.0, f64::max);
    let mut cpu = 0.0;
    let mut mem = 0.0;
    for c in &ctx.components {
        let replicas = f64::from(c.replicas.max(0));
        cpu += replicas * quantity::parse(&c.resources.requests.cpu).unwrap_or(0.0);
        mem += replicas * quantity::parse(&c.resources.requests.memory).unwrap_or(0.0);
    }
    let message = format!(
        "the app requests {} CPU and {} memory; the largest node allocates {} CPU and {}",
        quantity::cpu(cpu),
        quantity::bytes(mem),
        quantity::cpu(best_cpu),
        quantity::bytes(best_mem)
    );
    if cpu > best_cpu || mem > best_mem {
        Finding::fail(
            &cat::CAPACITY,
            message,
            format!(
                "lower resources.requests in {} or give the node more: `minikube delete && minikube start --cpus {} --memory {}m`",
                ctx.project.file().display(),
                (cpu.ceil() as u64).max(2),
                ((mem / (1024.0 * 1024.0)).ceil() as u64).max(2048) * 2,
            ),
        )
    } else {
        Finding::ok(&cat::CAPACITY, message)
    }
}

/// Everything `up`, `secrets` and `logs` do: (verb, group, resource, subresource).
const NEEDED: &[(&str, &str, &str, &str)] = &[
    ("get", "", "namespaces", ""),
    ("create", "", "namespaces", ""),
    ("patch", "", "namespaces", ""),
    ("get", "", "secrets", ""),
    ("list", "", "secrets", ""),
    ("create", "", "secrets", ""),
    ("patch", "", "secrets", ""),
    ("delete", "", "secrets", ""),
    ("get", "", "configmaps", ""),
    ("patch", "", "configmaps", ""),
    ("delete", "", "configmaps", ""),
    ("get", "", "services", ""),
    ("list", "", "services", ""),
    ("patch", "", "services", ""),
    ("delete", "", "services", ""),
    ("get", "apps", "deployments", ""),
    ("list", "apps", "deployments", ""),
    ("watch", "apps", "deployments", ""),
    ("patch", "apps", "deployments", ""),
    ("delete", "apps", "deployments", ""),
    ("list", "apps", "replicasets", ""),
    ("get", "", "pods", ""),
    ("list", "", "pods", ""),
    ("watch", "", "pods", ""),
    ("get", "", "pods", "log"),
    ("list", "", "events", ""),
    ("patch", "networking.k8s.io", "networkpolicies", ""),
];

async fn rbac(live: &Live) -> Vec<Finding> {
    let api: Api<SelfSubjectAccessReview> = Api::all(live.conn.client.clone());
    let ns = &live.conn.namespace;
    let answers: Vec<_> = futures::stream::iter(NEEDED)
        .map(|&(verb, group, resource, sub)| {
            let api = api.clone();
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        verb: Some(verb.into()),
                        group: Some(group.into()),
                        resource: Some(resource.into()),
                        subresource: (!sub.is_empty()).then(|| sub.into()),
                        namespace: (resource != "namespaces").then(|| ns.clone()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            };
            async move {
                let answer = within(live, api.create(&PostParams::default(), &review)).await;
                (verb, resource, sub, answer)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut denied = Vec::new();
    for (verb, resource, sub, answer) in answers {
        let what = if sub.is_empty() {
            resource.to_string()
        } else {
            format!("{resource}/{sub}")
        };
        match answer {
            Ok(r) if r.status.as_ref().is_some_and(|s| s.allowed) => {}
            Ok(_) => denied.push(format!("{verb} {what}")),
            Err(e) => {
                return vec![could_not(
                    &cat::RBAC,
                    "ask the API what you may do",
                    "create",
                    "selfsubjectaccessreviews",
                    "",
                    &e,
                )];
            }
        }
    }
    denied.sort();
    vec![if denied.is_empty() {
        Finding::ok(
            &cat::RBAC,
            format!(
                "allowed all {} verbs that up, secrets and logs use in namespace {ns}",
                NEEDED.len()
            ),
        )
    } else {
        let first = &denied[0];
        Finding::fail(
            &cat::RBAC,
            format!("not allowed in namespace {ns}: {}", denied.join(", ")),
            format!(
                "ask the cluster's administrator for a Role granting them (check: `kubectl auth can-i {first} -n {ns}`)"
            ),
        )
    }]
}

/// A request bounded by the timeout; a timeout comes back as its own error.
pub async fn within<T>(
    live: &Live,
    request: impl Future<Output = kube::Result<T>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(live.timeout, request).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Failure::Api(e)),
        Err(_) => Err(Failure::Timeout(live.timeout)),
    }
}

#[derive(Debug)]
pub enum Failure {
    Api(kube::Error),
    Timeout(Duration),
}

impl Failure {
    pub fn is_not_found(&self) -> bool {
        matches!(self, Failure::Api(kube::Error::Api(s)) if s.code == 404)
    }
}

/// A check that could not run: said so, with why and what to do, never as healthy.
pub fn could_not(
    entry: &Entry,
    what: &str,
    verb: &str,
    resource: &str,
    ns: &str,
    e: &Failure,
) -> Finding {
    let ns_flag = if ns.is_empty() {
        String::new()
    } else {
        format!(" -n {ns}")
    };
    match e {
        Failure::Timeout(t) => Finding::unknown(
            entry,
            format!("could not {what}: no answer within {t:?}"),
            "check the API server's health (`kubectl get --raw /readyz`) or raise --timeout",
        ),
        Failure::Api(kube::Error::Api(s)) if s.code == 403 => Finding::unknown(
            entry,
            format!("could not {what}: forbidden ({})", s.message),
            format!(
                "ask for RBAC to {verb} {resource}{ns_flag} (check: `kubectl auth can-i {verb} {resource}{ns_flag}`)"
            ),
        ),
        Failure::Api(e) => Finding::unknown(
            entry,
            format!("could not {what}: {}", chain(e)),
            "check the API server with `kubectl cluster-info` and run doctor again",
        ),
    }
}

pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    crate::context::describe(e)
}
