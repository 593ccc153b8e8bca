//! One pod's diagnosis from its status, its events and its previous log:
//! what the kubelet or the scheduler said, turned into a cause and a fix.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Event, Node, Pod, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Api;
use kube::api::LogParams;

use super::catalogue as cat;
use super::cluster::{Live, within};
use super::output::Finding;
use super::{Ctx, images, quantity};
use crate::project::Component;

/// What every diagnosis of one pod needs.
struct Subject<'a> {
    ctx: &'a Ctx,
    live: &'a Live,
    component: &'a Component,
    deployment: String,
    pod: &'a Pod,
    name: String,
    events: Vec<&'a Event>,
    nodes: Option<&'a [Node]>,
    redact: &'a [String],
}

/// What was read from the cluster once and is shared by every pod's diagnosis.
pub struct Observed<'a> {
    pub events: &'a [Event],
    pub nodes: Option<&'a [Node]>,
    /// Values that must never reach the output.
    pub redact: &'a [String],
}

/// How long a readiness or startup probe may keep failing before `up` stops
/// waiting: longer than any app needs to start, far shorter than --timeout.
const PROBE_GRACE: Duration = Duration::from_secs(30);

/// The waiting reasons of a container that more waiting will not fix;
/// [`diagnose`] rates each a failure, so `up`'s rollout watch stops at once.
pub const FATAL_WAITING: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "CrashLoopBackOff",
];

/// A problem that more waiting will not fix: the scheduler has no room, the
/// image cannot be had, the container cannot be created or keeps crashing,
/// or a probe has failed for longer than [`PROBE_GRACE`].
/// The images a pod spec's containers run, in order.
pub fn container_images(spec: Option<&k8s_openapi::api::core::v1::PodSpec>) -> Vec<String> {
    spec.map(|s| {
        s.containers
            .iter()
            .filter_map(|c| c.image.clone())
            .collect()
    })
    .unwrap_or_default()
}

pub fn fatal(pod: &Pod, events: &[Event]) -> bool {
    let Some(status) = pod.status.as_ref() else {
        return false;
    };
    let unschedulable = status.conditions.iter().flatten().any(|c| {
        c.type_ == "PodScheduled"
            && c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
    });
    let containers = status.container_statuses.iter().flatten();
    let stuck = containers.clone().any(|cs| {
        let waiting = cs
            .state
            .as_ref()
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.as_deref());
        waiting.is_some_and(|w| FATAL_WAITING.contains(&w))
            || cs
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .is_some_and(|t| t.reason.as_deref() == Some("OOMKilled"))
    });
    let ready = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    unschedulable
        || stuck
        || (!ready && probe_failing_since(pod, events).is_some_and(|t| t >= PROBE_GRACE))
}

/// How long the pod's probes have been failing, from its oldest `Unhealthy` event.
fn probe_failing_since(pod: &Pod, events: &[Event]) -> Option<Duration> {
    let name = pod.metadata.name.as_deref()?;
    let first = events
        .iter()
        .filter(|e| {
            e.reason.as_deref() == Some("Unhealthy")
                && e.involved_object.kind.as_deref() == Some("Pod")
                && e.involved_object.name.as_deref() == Some(name)
                && (e.involved_object.uid.is_none() || e.involved_object.uid == pod.metadata.uid)
        })
        .filter_map(|e| {
            e.first_timestamp
                .as_ref()
                .map(|t| t.0)
                .or_else(|| e.event_time.as_ref().map(|t| t.0))
        })
        .min()?;
    let since = jiff::Timestamp::now().duration_since(first);
    Duration::try_from(since).ok()
}

pub async fn diagnose(
    ctx: &Ctx,
    live: &Live,
    component: &Component,
    deployment: &Deployment,
    pod: &Pod,
    observed: &Observed<'_>,
) -> Vec<Finding> {
    let Observed {
        events,
        nodes,
        redact,
    } = *observed;
    let name = pod.metadata.name.clone().unwrap_or_default();
    let uid = pod.metadata.uid.clone();
    let s = Subject {
        ctx,
        live,
        component,
        deployment: deployment.metadata.name.clone().unwrap_or_default(),
        pod,
        events: events
            .iter()
            .filter(|e| {
                e.involved_object.kind.as_deref() == Some("Pod")
                    && (e.involved_object.uid.is_some() && e.involved_object.uid == uid
                        || e.involved_object.name.as_deref() == Some(name.as_str()))
            })
            .collect(),
        name,
        nodes,
        redact,
    };
    if let Some(f) = unschedulable(&s) {
        return vec![f];
    }
    let statuses = pod
        .status
        .as_ref()
        .and_then(|st| st.container_statuses.clone())
        .unwrap_or_default();
    let containers = pod
        .spec
        .as_ref()
        .map(|sp| sp.containers.clone())
        .unwrap_or_default();
    let mut findings = Vec::new();
    for (index, container) in containers.iter().enumerate() {
        let Some(status) = statuses.iter().find(|cs| cs.name == container.name) else {
            continue;
        };
        if let Some(f) = container_finding(&s, index, container, status).await {
            findings.push(f);
        }
    }
    if findings.is_empty() && !ready(pod) {
        let phase = pod
            .status
            .as_ref()
            .and_then(|st| st.phase.clone())
            .unwrap_or_default();
        let waiting = statuses
            .iter()
            .find_map(|cs| cs.state.as_ref()?.waiting.as_ref()?.reason.clone())
            .map(|r| format!(", {r}"))
            .unwrap_or_default();
        findings.push(Finding::warn(
            &cat::PODS,
            format!(
                "{}: pod {} is not ready yet ({phase}{waiting})",
                s.component.name, s.name
            ),
            format!(
                "watch it: `kubectl get pod {} -n {} -w`",
                s.name, s.live.conn.namespace
            ),
        ));
    }
    findings
}

fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|st| st.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn container_finding(
    s: &Subject<'_>,
    index: usize,
    c: &Container,
    status: &ContainerStatus,
) -> Option<Finding> {
    let waiting = status.state.as_ref().and_then(|st| st.waiting.as_ref());
    let reason = waiting
        .and_then(|w| w.reason.as_deref())
        .unwrap_or_default();
    let message = waiting
        .and_then(|w| w.message.as_deref())
        .unwrap_or_default();
    let last = status
        .last_state
        .as_ref()
        .and_then(|st| st.terminated.as_ref());
    match reason {
        "ErrImagePull" | "ImagePullBackOff" | "ErrImageNeverPull" => {
            return Some(image(s, index, c, reason));
        }
        "InvalidImageName" => return Some(invalid_image(s, c, message)),
        "CreateContainerConfigError" => return Some(config(s, index, message)),
        "CreateContainerError" | "RunContainerError" => {
            return Some(container_error(s, c, reason, message));
        }
        _ => {}
    }
    if last.is_some_and(|t| t.reason.as_deref() == Some("OOMKilled")) {
        return Some(oom(s, c, status));
    }
    let unhealthy = s.events.iter().rev().find(|e| {
        e.reason.as_deref() == Some("Unhealthy")
            && e.involved_object
                .field_path
                .as_deref()
                .is_none_or(|p| p.contains(&format!("{{{}}}", c.name)))
    });
    if let Some(event) = unhealthy
        && (!status.ready || status.restart_count > 0)
    {
        return Some(probe(s, c, event));
    }
    let crashed = last.is_some_and(|t| t.exit_code != 0);
    if reason == "CrashLoopBackOff" || (crashed && !status.ready) {
        return Some(crash(s, c, status).await);
    }
    None
}

fn image(s: &Subject<'_>, index: usize, c: &Container, reason: &str) -> Finding {
    let ns = &s.live.conn.namespace;
    let image = c.image.clone().unwrap_or_default();
    let comp = &s.component.name;
    if c.image_pull_policy.as_deref() == Some("Always") {
        return Finding::fail(
            &cat::IMAGE_PULL_ALWAYS,
            format!(
                "{comp}: pod {} {reason}: imagePullPolicy is Always, so the node tries a registry for {image}, which exists only locally",
                s.name
            ),
            format!(
                "`kubectl -n {ns} patch deployment {} --type=json -p '[{{\"op\":\"replace\",\"path\":\"/spec/template/spec/containers/{index}/imagePullPolicy\",\"value\":\"IfNotPresent\"}}]'`",
                s.deployment
            ),
        );
    }
    let repo = |n: &str| {
        let n = image_builder::load::normalize(n);
        n.rsplit_once(':').map_or(n.clone(), |(r, _)| r.to_string())
    };
    let want = image_builder::load::normalize(&image);
    let other_tags: Vec<String> = s
        .nodes
        .unwrap_or_default()
        .iter()
        .flat_map(images::node_images)
        .filter(|n| repo(n) == repo(&image) && image_builder::load::normalize(n) != want)
        .cloned()
        .collect();
    if !other_tags.is_empty() {
        return Finding::fail(
            &cat::IMAGE_TAG_MISMATCH,
            format!(
                "{comp}: pod {} {reason}: it wants {image}, the node has {}",
                s.name,
                other_tags.join(", ")
            ),
            format!(
                "build, load and deploy one tag: `kubectl todo up` (or load this one: `{}`)",
                s.live.load_command(&image)
            ),
        );
    }
    Finding::fail(
        &cat::IMAGE_NOT_LOADED,
        format!(
            "{comp}: pod {} {reason}: image {image} is not on the node, which cannot pull it",
            s.name
        ),
        format!("load it into the node: `{}`", s.live.load_command(&image)),
    )
}

fn invalid_image(s: &Subject<'_>, c: &Container, message: &str) -> Finding {
    let comp = &s.component.name;
    Finding::fail(
        &cat::INVALID_IMAGE_NAME,
        format!(
            "{comp}: pod {} InvalidImageName: {:?} is not a valid image reference ({})",
            s.name,
            c.image.as_deref().unwrap_or_default(),
            redact(message, s.redact)
        ),
        format!(
            "deploy a valid reference: `kubectl todo up`, or `kubectl todo up --image {comp}=REPOSITORY:TAG` with a lower-case repository"
        ),
    )
}

fn container_error(s: &Subject<'_>, c: &Container, reason: &str, message: &str) -> Finding {
    Finding::fail(
        &cat::CONTAINER_ERROR,
        format!(
            "{}: container {} of pod {} {reason}: {}",
            s.component.name,
            c.name,
            s.name,
            redact(message, s.redact)
        ),
        format!(
            "read the runtime's message with `kubectl describe pod {} -n {}`, fix the image's command or entrypoint, then run `kubectl todo up`",
            s.name, s.live.conn.namespace
        ),
    )
}

fn config(s: &Subject<'_>, index: usize, message: &str) -> Finding {
    let ns = &s.live.conn.namespace;
    let comp = &s.component.name;
    let project_secret = &s.ctx.project.secret.name;
    if message.contains("runAsUser breaks non-root") {
        return Finding::fail(
            &cat::RUN_AS_ROOT,
            format!(
                "{comp}: pod {} sets runAsUser 0 with runAsNonRoot: {message}",
                s.name
            ),
            format!(
                "`kubectl -n {ns} patch deployment {} --type=json -p '[{{\"op\":\"replace\",\"path\":\"/spec/template/spec/containers/{index}/securityContext/runAsUser\",\"value\":1001}}]'`",
                s.deployment
            ),
        );
    }
    if message.contains("runAsNonRoot") {
        return Finding::fail(
            &cat::RUN_AS_ROOT,
            format!(
                "{comp}: pod {} requires a non-root user but its image runs as root: {message}",
                s.name
            ),
            format!(
                "rebuild with `USER 1001:1001` (`kubectl todo up` images have it) or run it as 1001: `kubectl -n {ns} patch deployment {} -p '{{\"spec\":{{\"template\":{{\"spec\":{{\"securityContext\":{{\"runAsUser\":1001,\"runAsGroup\":1001}}}}}}}}}}'`",
                s.deployment
            ),
        );
    }
    let key_re = regex::Regex::new(r"couldn't find key (\S+) in (Secret|ConfigMap) [^/\s]+/(\S+)")
        .expect("valid regex");
    let missing_re =
        regex::Regex::new(r#"(secret|configmap) "([^"]+)" not found"#).expect("valid regex");
    let (what, hint) = if let Some(m) = key_re.captures(message) {
        let (key, kind, obj) = (&m[1], &m[2], &m[3]);
        let hint = match kind {
            "Secret" if obj == project_secret => format!("`kubectl todo secrets set {key}`"),
            "Secret" => {
                format!("add key {key} to secret/{obj}: `kubectl -n {ns} edit secret {obj}`")
            }
            _ => "re-render the ConfigMaps: `kubectl todo up`".to_string(),
        };
        (
            format!("key {key} is missing from {} {obj}", kind.to_lowercase()),
            hint,
        )
    } else if let Some(m) = missing_re.captures(message) {
        let (kind, obj) = (&m[1], &m[2]);
        let hint = match kind {
            "secret" if obj == project_secret => "`kubectl todo secrets create`".to_string(),
            "secret" => format!(
                "create it: `kubectl -n {ns} create secret generic {obj} --from-env-file=PATH`"
            ),
            _ => "render it: `kubectl todo up`".to_string(),
        };
        (format!("{kind} {obj} does not exist"), hint)
    } else {
        (
            message.to_string(),
            format!("`kubectl describe pod {} -n {ns}`", s.name),
        )
    };
    Finding::fail(
        &cat::CONFIG_MISSING,
        format!("{comp}: pod {} CreateContainerConfigError: {what}", s.name),
        hint,
    )
}

fn oom(s: &Subject<'_>, c: &Container, status: &ContainerStatus) -> Finding {
    let ns = &s.live.conn.namespace;
    let limit = c
        .resources
        .as_ref()
        .and_then(|r| r.limits.as_ref())
        .and_then(|l| l.get("memory"))
        .map(|q| q.0.clone());
    let raised = limit
        .as_deref()
        .and_then(quantity::parse)
        .map_or("1Gi".to_string(), |b| quantity::bytes(b * 2.0));
    Finding::fail(
        &cat::OOM_KILLED,
        format!(
            "{}: container {} of pod {} was OOMKilled: it used more than its memory limit {} ({} restarts)",
            s.component.name,
            c.name,
            s.name,
            limit.as_deref().unwrap_or("(none: the node ran out)"),
            status.restart_count
        ),
        format!(
            "raise the limit: `kubectl -n {ns} set resources deployment/{} -c {} --limits=memory={raised}`, and set resources.limits.memory: {raised} for {} in todo.yaml so `kubectl todo up` keeps it",
            s.deployment, c.name, s.component.name
        ),
    )
}

fn probe(s: &Subject<'_>, c: &Container, event: &Event) -> Finding {
    let message = event.message.clone().unwrap_or_default();
    let (kind, spec): (&str, Option<&Probe>) = if message.starts_with("Liveness") {
        ("liveness", c.liveness_probe.as_ref())
    } else if message.starts_with("Startup") {
        ("startup", c.startup_probe.as_ref())
    } else {
        ("readiness", c.readiness_probe.as_ref())
    };
    let target = spec
        .and_then(|p| p.http_get.as_ref())
        .map(|h| {
            let port = match &h.port {
                IntOrString::Int(p) => p.to_string(),
                IntOrString::String(p) => p.clone(),
            };
            format!("GET :{port}{}", h.path.as_deref().unwrap_or("/"))
        })
        .unwrap_or_else(|| format!("{kind} probe"));
    Finding::fail(
        &cat::PROBE_FAILING,
        format!(
            "{}: pod {} {kind} probe {target} fails (×{}): {message}",
            s.component.name,
            s.name,
            event.count.unwrap_or(1)
        ),
        format!(
            "make the app answer 200 on {target} (todo.yaml: port {}, healthPath {}, readyPath {}; then `kubectl todo up`); its log: `kubectl todo logs {}`",
            s.component.port,
            s.component.health_path.as_deref().unwrap_or("none (TCP)"),
            s.component.ready_path.as_deref().unwrap_or("none (TCP)"),
            s.component.name
        ),
    )
}

async fn crash(s: &Subject<'_>, c: &Container, status: &ContainerStatus) -> Finding {
    let terminated = status
        .last_state
        .as_ref()
        .and_then(|st| st.terminated.as_ref())
        .or_else(|| status.state.as_ref().and_then(|st| st.terminated.as_ref()));
    let code = terminated.map_or("unknown".into(), |t| t.exit_code.to_string());
    let api: Api<Pod> = Api::namespaced(s.live.conn.client.clone(), &s.live.conn.namespace);
    let params = LogParams {
        container: Some(c.name.clone()),
        previous: true,
        tail_lines: Some(5),
        ..LogParams::default()
    };
    let log = match within(s.live, api.logs(&s.name, &params)).await {
        Ok(text) => {
            let lines: Vec<String> = text.lines().map(|l| redact(l, s.redact)).collect();
            if lines.is_empty() {
                "the previous run printed nothing".to_string()
            } else {
                format!("last lines: {}", lines.join(" | "))
            }
        }
        Err(_) => "its previous log could not be read".to_string(),
    };
    Finding::fail(
        &cat::CRASH_LOOP,
        format!(
            "{}: container {} of pod {} keeps exiting with code {code} ({} restarts); {log}",
            s.component.name, c.name, s.name, status.restart_count
        ),
        format!(
            "read the previous run's log: `kubectl todo logs {} --previous`",
            s.component.name
        ),
    )
}

/// The app's secret values never reach doctor's output, even through a log line.
fn redact(line: &str, secrets: &[String]) -> String {
    crate::secrets::redact_forms(line, secrets)
}

fn unschedulable(s: &Subject<'_>) -> Option<Finding> {
    let condition = s
        .pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")?;
    let message = condition
        .message
        .clone()
        .or_else(|| {
            s.events
                .iter()
                .rev()
                .find(|e| e.reason.as_deref() == Some("FailedScheduling"))?
                .message
                .clone()
        })
        .unwrap_or_default();
    let short: Vec<&str> = ["cpu", "memory"]
        .into_iter()
        .filter(|r| message.contains(&format!("Insufficient {r}")))
        .collect();
    let requests = |r: &str| -> f64 {
        s.pod
            .spec
            .iter()
            .flat_map(|sp| &sp.containers)
            .filter_map(|c| c.resources.as_ref()?.requests.as_ref()?.get(r))
            .filter_map(|q| quantity::parse(&q.0))
            .sum()
    };
    let allocatable = |r: &str| -> f64 {
        s.nodes
            .unwrap_or_default()
            .iter()
            .filter_map(|n| n.status.as_ref()?.allocatable.as_ref()?.get(r))
            .filter_map(|q| quantity::parse(&q.0))
            .fold(0.0, f64::max)
    };
    let show = |r: &str, v: f64| {
        if r == "cpu" {
            quantity::cpu(v)
        } else {
            quantity::bytes(v)
        }
    };
    let detail: Vec<String> = short
        .iter()
        .map(|r| {
            format!(
                "{r}: requests {}, the node allocates {}",
                show(r, requests(r)),
                show(r, allocatable(r))
            )
        })
        .collect();
    let comp = &s.component.name;
    let what = if short.is_empty() {
        "resources".to_string()
    } else {
        short.join(" and ")
    };
    let more = match short.as_slice() {
        ["cpu"] => format!("--cpus {}", requests("cpu").ceil().max(2.0)),
        _ => format!(
            "--memory {}m",
            ((requests("memory") / 1048576.0).ceil() as u64 + 2048).max(4096)
        ),
    };
    Some(Finding::fail(
        &cat::UNSCHEDULABLE,
        format!(
            "{comp}: pod {} is Pending, not enough {what}{}: {message}",
            s.name,
            if detail.is_empty() {
                String::new()
            } else {
                format!(" ({})", detail.join("; "))
            }
        ),
        format!(
            "lower resources.requests.{} of {comp} in todo.yaml and run `kubectl todo up`, or give the node more: `minikube delete && minikube start {more}`",
            short.first().copied().unwrap_or("memory")
        ),
    ))
}
