//! The app: namespace, Secret, images, and per component its Deployment,
//! pods and Services. Everything is listed once, concurrently, and diagnosed
//! from those lists.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Endpoints, Event, Namespace, Node, Pod, Secret, Service};
use kube::api::ListParams;
use kube::{Api, Resource};

use super::catalogue as cat;
use super::cluster::{Failure, Live, could_not, within};
use super::output::{Finding, Status};
use super::{Ctx, images, pods, services};
use crate::labels;
use crate::project::Component;

const COMPONENT_LABEL: &str = "app.kubernetes.io/component";

/// What the app checks read, listed once.
pub struct State {
    pub nodes: Result<Vec<Node>, Failure>,
    pub pods: Result<Vec<Pod>, Failure>,
    pub deployments: Result<Vec<Deployment>, Failure>,
    pub services: Result<Vec<Service>, Failure>,
    pub endpoints: Result<Vec<Endpoints>, Failure>,
    pub events: Vec<Event>,
}

/// The single line when the cluster could not be used at all.
pub fn unchecked(cluster: &[Finding]) -> Finding {
    let why = cluster
        .iter()
        .find(|f| f.status != Status::Ok)
        .map_or("the cluster could not be reached".to_string(), |f| {
            f.message.clone()
        });
    Finding::unknown(
        &cat::UNCHECKED,
        format!("app checks could not run: {why}"),
        "fix the cluster problem above, then run `kubectl todo doctor` again",
    )
}

pub async fn check(ctx: &Ctx, live: &Live) -> Vec<Finding> {
    let ns = live.conn.namespace.clone();
    let client = live.conn.client.clone();
    let selector = ListParams::default().labels(&labels::project_selector(&ctx.project.name));
    let namespace = async {
        let api: Api<Namespace> = Api::all(client.clone());
        within(live, api.get(&ns)).await
    };
    let secret = async {
        let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
        within(live, api.get(&ctx.project.secret.name)).await
    };
    let nodes = async {
        let api: Api<Node> = Api::all(client.clone());
        within(live, api.list(&ListParams::default()))
            .await
            .map(|l| l.items)
    };
    let pods = async {
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
        within(live, api.list(&selector)).await.map(|l| l.items)
    };
    let deployments = async {
        let api: Api<Deployment> = Api::namespaced(client.clone(), &ns);
        within(live, api.list(&selector)).await.map(|l| l.items)
    };
    let svcs = async {
        let api: Api<Service> = Api::namespaced(client.clone(), &ns);
        within(live, api.list(&selector)).await.map(|l| l.items)
    };
    let endpoints = async {
        let api: Api<Endpoints> = Api::namespaced(client.clone(), &ns);
        within(live, api.list(&ListParams::default()))
            .await
            .map(|l| l.items)
    };
    let events = async {
        let api: Api<Event> = Api::namespaced(client.clone(), &ns);
        within(live, api.list(&ListParams::default()))
            .await
            .map(|l| l.items)
    };
    let references = images::current(ctx);
    let (namespace, secret, nodes, pods, deployments, svcs, endpoints, events, references) = futures::join!(
        namespace,
        secret,
        nodes,
        pods,
        deployments,
        svcs,
        endpoints,
        events,
        references
    );

    let mut findings = Vec::new();
    let namespace_exists = match namespace {
        Ok(_) => {
            findings.push(Finding::ok(
                &cat::NAMESPACE,
                format!("namespace {ns} exists"),
            ));
            true
        }
        Err(e) if e.is_not_found() => {
            findings.push(Finding::fail(
                &cat::NAMESPACE,
                format!(
                    "namespace {ns} does not exist: the app is not deployed to context {}",
                    live.context
                ),
                "deploy it: `kubectl todo up`",
            ));
            false
        }
        Err(e) => {
            findings.push(could_not(
                &cat::NAMESPACE,
                &format!("read namespace {ns}"),
                "get",
                "namespaces",
                "",
                &e,
            ));
            true
        }
    };
    let events = match events {
        Ok(events) => events,
        Err(e) => {
            findings.push(could_not(
                &cat::PODS,
                "list events (pod diagnoses are less precise)",
                "list",
                "events",
                &ns,
                &e,
            ));
            Vec::new()
        }
    };
    let state = State {
        nodes,
        pods,
        deployments,
        services: svcs,
        endpoints,
        events,
    };
    for (c, reference) in ctx.components.iter().zip(&references) {
        let nodes = state.nodes.as_ref().ok().map(Vec::as_slice);
        findings.extend(images::check(ctx, live, c, nodes, reference).await);
    }
    if !namespace_exists {
        return findings;
    }
    findings.extend(secret_findings(ctx, live, &secret));
    // Log lines quoted in diagnoses are scrubbed of the app's secret values.
    let redact = secret
        .as_ref()
        .ok()
        .and_then(|s| s.data.as_ref())
        .map(crate::secrets::redactions)
        .unwrap_or_default();
    let per_component = ctx
        .components
        .iter()
        .zip(&references)
        .map(|(c, reference)| component(ctx, live, &state, c, reference.as_ref().ok(), &redact));
    for group in futures::future::join_all(per_component).await {
        findings.extend(group);
    }
    findings
}

fn secret_findings(ctx: &Ctx, live: &Live, secret: &Result<Secret, Failure>) -> Vec<Finding> {
    let spec = &ctx.project.secret;
    let ns = &live.conn.namespace;
    let filtered = ctx.components.len() < ctx.project.components.len();
    let required: Vec<&str> = spec
        .keys
        .iter()
        .filter(|k| k.required)
        .filter(|k| {
            !filtered
                || ctx
                    .components
                    .iter()
                    .any(|c| c.secret_keys.contains(&k.name))
        })
        .map(|k| k.name.as_str())
        .collect();
    let secret = match secret {
        Ok(s) => s,
        Err(e) if e.is_not_found() => {
            return vec![Finding::fail(
                &cat::SECRET,
                format!(
                    "secret/{} does not exist in namespace {ns} (required keys: {})",
                    spec.name,
                    required.join(", ")
                ),
                "create it: `kubectl todo secrets create`",
            )];
        }
        Err(e) => {
            return vec![could_not(
                &cat::SECRET,
                &format!("read secret/{}", spec.name),
                "get",
                "secrets",
                ns,
                e,
            )];
        }
    };
    let data = secret.data.clone().unwrap_or_default();
    // Only names and emptiness are looked at: values never reach the output.
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|k| !data.contains_key(*k))
        .collect();
    let empty: Vec<&str> = required
        .iter()
        .copied()
        .filter(|k| data.get(*k).is_some_and(|v| v.0.is_empty()))
        .collect();
    if missing.is_empty() && empty.is_empty() {
        return vec![Finding::ok(
            &cat::SECRET,
            format!(
                "secret/{} holds all {} required keys",
                spec.name,
                required.len()
            ),
        )];
    }
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!("missing {}", missing.join(", ")));
    }
    if !empty.is_empty() {
        problems.push(format!("empty {}", empty.join(", ")));
    }
    let first = missing
        .first()
        .or(empty.first())
        .copied()
        .unwrap_or_default();
    vec![Finding::fail(
        &cat::SECRET,
        format!("secret/{}: {}", spec.name, problems.join("; ")),
        format!(
            "set it: `kubectl todo secrets set {first}` (or `kubectl todo secrets create` for all)"
        ),
    )]
}

pub fn of_component<'a, K: Resource>(items: &'a [K], c: &Component) -> Vec<&'a K> {
    items
        .iter()
        .filter(|o| {
            o.meta()
                .labels
                .as_ref()
                .and_then(|l| l.get(COMPONENT_LABEL))
                == Some(&c.name)
        })
        .collect()
}

async fn component(
    ctx: &Ctx,
    live: &Live,
    state: &State,
    c: &Component,
    reference: Option<&String>,
    redact: &[String],
) -> Vec<Finding> {
    let ns = &live.conn.namespace;
    let mut findings = Vec::new();
    let deployments = match &state.deployments {
        Ok(all) => of_component(all, c),
        Err(e) => {
            return vec![
                could_not(
                    &cat::DEPLOYMENT,
                    "list Deployments",
                    "list",
                    "deployments",
                    ns,
                    e,
                )
                .of(&c.name),
            ];
        }
    };
    let Some(deployment) = deployments.first() else {
        return vec![
            Finding::fail(
                &cat::DEPLOYMENT,
                format!("{}: no Deployment in namespace {ns}", c.name),
                "deploy it: `kubectl todo up`",
            )
            .of(&c.name),
        ];
    };
    let name = deployment.metadata.name.clone().unwrap_or_default();
    if let Some(reference) = reference {
        findings.extend(outdated(deployment, reference, c));
    }
    let wanted = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let available = deployment
        .status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0);
    findings.push(if available >= wanted {
        Finding::ok(&cat::DEPLOYMENT, format!("{}: deployment/{name} has {available}/{wanted} replicas available", c.name))
    } else {
        Finding::fail(
            &cat::DEPLOYMENT,
            format!("{}: deployment/{name} has {available}/{wanted} replicas available", c.name),
            format!("see the pod lines below; follow with `kubectl rollout status deployment/{name} -n {ns}`"),
        )
    });
    let pods = match &state.pods {
        Ok(all) => of_component(all, c),
        Err(e) => {
            findings.push(could_not(&cat::PODS, "list pods", "list", "pods", ns, e));
            Vec::new()
        }
    };
    let observed = pods::Observed {
        events: &state.events,
        nodes: state.nodes.as_ref().ok().map(Vec::as_slice),
        redact,
    };
    let diagnosed = futures::future::join_all(
        pods.iter()
            .map(|p| pods::diagnose(ctx, live, c, deployment, p, &observed)),
    )
    .await;
    let problems: Vec<Finding> = diagnosed.into_iter().flatten().collect();
    if problems.is_empty() && state.pods.is_ok() {
        findings.push(if pods.is_empty() {
            Finding::warn(
                &cat::PODS,
                format!("{}: deployment/{name} has no pods", c.name),
                format!("see why with `kubectl describe deployment/{name} -n {ns}`"),
            )
        } else {
            Finding::ok(
                &cat::PODS,
                format!(
                    "{}: {} pod{} running and ready",
                    c.name,
                    pods.len(),
                    if pods.len() == 1 { "" } else { "s" }
                ),
            )
        });
    }
    findings.extend(problems);
    findings.extend(services::check(live, state, c, &pods, deployment).await);
    findings.into_iter().map(|f| f.of(&c.name)).collect()
}

fn outdated(deployment: &Deployment, reference: &str, c: &Component) -> Option<Finding> {
    let running = pods::container_images(
        deployment
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref()),
    );
    let want = image_builder::load::normalize(reference);
    let repository = reference.rsplit_once(':').map_or(reference, |(r, _)| r);
    let old = running.iter().find(|i| {
        image_builder::load::normalize(i) != want
            && i.rsplit_once(':').is_some_and(|(r, _)| r == repository)
    })?;
    Some(Finding::warn(
        &cat::IMAGE_OUTDATED,
        format!(
            "{}: the Deployment runs {old}, the sources on disk are {reference}",
            c.name
        ),
        "deploy the current sources: `kubectl todo up`",
    ))
}
