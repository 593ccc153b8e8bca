//! Waiting for a rollout: watches on the app's Deployments, pods and events
//! (no polling; kube's watcher resumes a dropped watch on its own), a line
//! per component as its state changes, and an early stop with doctor's
//! diagnosis as soon as a new pod shows a problem that waiting will not fix.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::Api;
use kube::api::ListParams;
use kube::runtime::watcher::{self, watcher};
use kube::runtime::{WatchStreamExt, reflector::Lookup};

use super::display::Display;
use crate::doctor::output::{Finding, Status};
use crate::doctor::{PodDoctor, container_images, fatal};
use crate::labels;
use crate::project::Project;

/// What a component's new pods must look like.
struct Wanted {
    component: crate::project::Component,
    deployment: String,
    annotations: BTreeMap<String, String>,
    images: Vec<String>,
}

pub enum Outcome {
    Ready,
    /// A pod problem that waiting will not fix, as doctor explains it.
    Failed(Vec<Finding>),
    /// `--timeout` passed: what was still pending, and what doctor says of it.
    TimedOut(Vec<String>, Vec<Finding>),
    /// The API server stopped answering for [`LOST_AFTER`]: why, as the
    /// connection last failed.
    Lost(String),
}

/// How long every watch may fail to reach the API server before the wait
/// ends: what it last saw is stale, and judging the pods by it would blame
/// the app for the cluster's absence. Shorter than the app's lock outlives
/// a server gone (6 s at the least: [`crate::lock::GIVE_UP_AFTER`] after a
/// renewal up to 5 s old), which would end the wait anyway and say less.
const LOST_AFTER: Duration = Duration::from_secs(4);

/// Why a watch could not reach the API server, when that is why it failed
/// (an answer from the server, even an error, is not a lost connection).
fn unreachable(err: &watcher::Error) -> Option<String> {
    let (watcher::Error::InitialListFailed(e)
    | watcher::Error::WatchStartFailed(e)
    | watcher::Error::WatchFailed(e)) = err
    else {
        return None;
    };
    if matches!(e, kube::Error::Api(_)) {
        return None;
    }
    std::iter::successors(Some(e as &dyn std::error::Error), |e| e.source())
        .last()
        .map(ToString::to_string)
}

/// A watch's failure as the server said it (message and reason), or as the
/// connection failed: never kube's debug dump of the server's Status.
fn watch_error(err: &watcher::Error) -> String {
    let status = match err {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s))
        | watcher::Error::WatchError(s) => s,
        _ => return unreachable(err).unwrap_or_else(|| err.to_string()),
    };
    match status.reason.as_str() {
        "" => status.message.clone(),
        reason => format!("{} ({reason})", status.message),
    }
}

/// The state one watch has built (a fresh list replaces it after a drop).
struct Cache<K> {
    items: BTreeMap<String, K>,
    next: BTreeMap<String, K>,
    ready: bool,
}

impl<K: Lookup<DynamicType = ()> + Clone> Cache<K> {
    fn new() -> Self {
        Cache {
            items: BTreeMap::new(),
            next: BTreeMap::new(),
            ready: false,
        }
    }

    fn key(k: &K) -> String {
        k.name().map(|n| n.into_owned()).unwrap_or_default()
    }

    fn apply(&mut self, event: watcher::Event<K>) {
        match event {
            watcher::Event::Init => self.next.clear(),
            watcher::Event::InitApply(k) => {
                self.next.insert(Self::key(&k), k);
            }
            watcher::Event::InitDone => {
                self.items = std::mem::take(&mut self.next);
                self.ready = true;
            }
            watcher::Event::Apply(k) => {
                self.items.insert(Self::key(&k), k);
            }
            watcher::Event::Delete(k) => {
                self.items.remove(&Self::key(&k));
            }
        }
    }
}

// Short-lived: each change is applied to its cache as soon as it arrives.
#[allow(clippy::large_enum_variant)]
enum Change {
    Deployment(watcher::Event<Deployment>),
    ReplicaSet(watcher::Event<ReplicaSet>),
    Pod(watcher::Event<Pod>),
    Event(watcher::Event<Event>),
}

pub struct Rollout<'a> {
    pub client: kube::Client,
    pub project: &'a Project,
    pub doctor: &'a PodDoctor,
    /// Secret values no quoted log line may show.
    pub redact: &'a [String],
    pub timeout: Duration,
}

impl Rollout<'_> {
    /// Waits until every one of `deployments` (as applied) has rolled out, a
    /// new pod fails in a way waiting will not fix, or the timeout passes.
    pub async fn wait(&self, deployments: &[Deployment], display: &dyn Display) -> Outcome {
        let wanted = wanted(self.project, deployments);
        let ns = &self.project.namespace;
        let selector = labels::project_selector(&self.project.name);
        let config = crate::context::live_watcher().labels(&selector);
        let deployments = watcher(
            Api::<Deployment>::namespaced(self.client.clone(), ns),
            config.clone(),
        )
        .default_backoff()
        .map_ok(Change::Deployment);
        let replica_sets = watcher(
            Api::<ReplicaSet>::namespaced(self.client.clone(), ns),
            config.clone(),
        )
        .default_backoff()
        .map_ok(Change::ReplicaSet);
        let pods = watcher(Api::<Pod>::namespaced(self.client.clone(), ns), config)
            .default_backoff()
            .map_ok(Change::Pod);
        let events = watcher(
            Api::<Event>::namespaced(self.client.clone(), ns),
            crate::context::live_watcher(),
        )
        .default_backoff()
        .map_ok(Change::Event);
        let mut changes = futures::stream::select_all([
            deployments.boxed(),
            replica_sets.boxed(),
            pods.boxed(),
            events.boxed(),
        ]);
        let (mut ds, mut rs, mut ps, mut es) =
            (Cache::new(), Cache::new(), Cache::new(), Cache::new());
        // Probe grace is measured here, so the display is re-evaluated now and then
        // even when nothing in the cluster changes.
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let deadline = tokio::time::sleep(self.timeout);
        tokio::pin!(deadline);
        let mut shown: BTreeMap<String, String> = BTreeMap::new();
        let mut watch_error_shown = false;
        // Since when, and why, the watches cannot reach the server.
        let mut disconnected: Option<(tokio::time::Instant, String)> = None;
        loop {
            tokio::select! {
                change = changes.next() => match change {
                    Some(Ok(change)) => {
                        disconnected = None;
                        match change {
                            Change::Deployment(e) => ds.apply(e),
                            Change::ReplicaSet(e) => rs.apply(e),
                            Change::Pod(e) => ps.apply(e),
                            Change::Event(e) => es.apply(e),
                        }
                    }
                    Some(Err(e)) => {
                        if let Some(cause) = unreachable(&e) {
                            let since = disconnected.map_or_else(tokio::time::Instant::now, |(t, _)| t);
                            disconnected = Some((since, cause));
                        }
                        if !watch_error_shown {
                            display.note(&format!("watch interrupted, resuming: {}", watch_error(&e)));
                            watch_error_shown = true;
                        }
                        continue;
                    }
                    None => {}
                },
                _ = tick.tick() => {}
                _ = &mut deadline => {
                    let pending = wanted
                        .iter()
                        .filter(|w| !complete(ds.items.get(&w.deployment)))
                        .map(|w| shown.get(&w.component.name).cloned().unwrap_or_else(|| format!("{}: no Deployment yet", w.component.name)))
                        .collect();
                    let findings = self.diagnose_pending(&wanted, &ds, &rs, &ps, &es, false).await;
                    return Outcome::TimedOut(pending, findings);
                }
            }
            if let Some((since, cause)) = &disconnected {
                if since.elapsed() >= LOST_AFTER {
                    return Outcome::Lost(cause.clone());
                }
                continue;
            }
            if !(ds.ready && rs.ready && ps.ready) {
                continue;
            }
            for w in &wanted {
                let line = progress_line(w, ds.items.get(&w.deployment), &rs.items, &ps.items);
                if shown.get(&w.component.name) != Some(&line) {
                    display.component(
                        &w.component.name,
                        &line,
                        complete(ds.items.get(&w.deployment)),
                    );
                    shown.insert(w.component.name.clone(), line);
                }
            }
            if wanted.iter().all(|w| complete(ds.items.get(&w.deployment))) {
                return Outcome::Ready;
            }
            let failed = self
                .diagnose_pending(&wanted, &ds, &rs, &ps, &es, true)
                .await;
            if !failed.is_empty() {
                return Outcome::Failed(failed);
            }
        }
    }

    /// Doctor's findings for the new pods in trouble; with `fatal_only`, only
    /// for problems waiting will not fix (and nothing otherwise).
    async fn diagnose_pending(
        &self,
        wanted: &[Wanted],
        ds: &Cache<Deployment>,
        rs: &Cache<ReplicaSet>,
        ps: &Cache<Pod>,
        es: &Cache<Event>,
        fatal_only: bool,
    ) -> Vec<Finding> {
        let events: Vec<Event> = es.items.values().cloned().collect();
        let mut nodes: Option<Vec<Node>> = None;
        let mut out = Vec::new();
        for w in wanted {
            let Some(deployment) = ds.items.get(&w.deployment) else {
                continue;
            };
            if complete(Some(deployment)) {
                continue;
            }
            if let Some(f) = deadline_exceeded(w, deployment)
                && fatal_only
            {
                out.push(f);
            }
            for pod in ps
                .items
                .values()
                .filter(|p| is_new(w, deployment, &rs.items, p))
            {
                if fatal_only && !fatal(pod, &events) {
                    continue;
                }
                if nodes.is_none() {
                    let api: Api<Node> = Api::all(self.client.clone());
                    nodes = Some(
                        api.list(&ListParams::default())
                            .await
                            .map(|l| l.items)
                            .unwrap_or_default(),
                    );
                }
                let findings = self
                    .doctor
                    .diagnose(
                        &w.component,
                        deployment,
                        pod,
                        &events,
                        nodes.as_deref(),
                        self.redact,
                    )
                    .await;
                out.extend(
                    findings
                        .into_iter()
                        .filter(|f| !fatal_only || f.status == Status::Fail),
                );
            }
        }
        out
    }
}

/// The Deployments among applied objects (as rendered, or as a revision recorded them).
pub fn deployments_of(manifests: &[serde_json::Value]) -> Vec<Deployment> {
    manifests
        .iter()
        .filter(|m| m["kind"] == "Deployment")
        .filter_map(|m| serde_json::from_value(m.clone()).ok())
        .collect()
}

fn wanted(project: &Project, deployments: &[Deployment]) -> Vec<Wanted> {
    deployments
        .iter()
        .filter_map(|d| {
            let name = d.metadata.name.clone()?;
            let component = project
                .components
                .iter()
                .find(|c| crate::render::object_name(project, c) == name)?
                .clone();
            let template = d.spec.as_ref()?.template.clone();
            Some(Wanted {
                component,
                deployment: name,
                annotations: template
                    .metadata
                    .and_then(|m| m.annotations)
                    .unwrap_or_default(),
                images: template
                    .spec
                    .map(|s| s.containers.into_iter().filter_map(|c| c.image).collect())
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// A pod of the rollout being waited for: its template carries the rendered
/// checksums and images, and it belongs to the Deployment's newest
/// ReplicaSet. Older pods, going away, do not count, even when a failed
/// revision had the same images and checksums.
fn is_new(
    w: &Wanted,
    deployment: &Deployment,
    replica_sets: &BTreeMap<String, ReplicaSet>,
    pod: &Pod,
) -> bool {
    let annotations = pod.metadata.annotations.clone().unwrap_or_default();
    let images = container_images(pod.spec.as_ref());
    pod.metadata.deletion_timestamp.is_none()
        && images == w.images
        && w.annotations
            .iter()
            .all(|(k, v)| annotations.get(k) == Some(v))
        && new_replica_set(deployment, replica_sets)
            .is_some_and(|rs| controller_of(&pod.metadata) == Some(rs))
}

/// The UID of the ReplicaSet the Deployment controller made for the
/// Deployment's current template, once it has seen that template: the one
/// whose revision is the Deployment's.
fn new_replica_set<'a>(
    deployment: &Deployment,
    replica_sets: &'a BTreeMap<String, ReplicaSet>,
) -> Option<&'a str> {
    const REVISION: &str = "deployment.kubernetes.io/revision";
    let status = deployment.status.as_ref()?;
    if status.observed_generation < deployment.metadata.generation {
        return None;
    }
    let revision = deployment.metadata.annotations.as_ref()?.get(REVISION)?;
    let uid = deployment.metadata.uid.as_deref()?;
    replica_sets
        .values()
        .find(|rs| {
            controller_of(&rs.metadata) == Some(uid)
                && rs
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(REVISION))
                    == Some(revision)
        })?
        .metadata
        .uid
        .as_deref()
}

/// The UID of the object's controller.
fn controller_of(meta: &kube::api::ObjectMeta) -> Option<&str> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.as_str())
}

/// kubectl's `rollout status` test: the controller saw this generation, and
/// every replica is updated and available, with no old ones left.
fn complete(d: Option<&Deployment>) -> bool {
    let Some(d) = d else { return false };
    let (Some(spec), Some(status)) = (d.spec.as_ref(), d.status.as_ref()) else {
        return false;
    };
    let want = spec.replicas.unwrap_or(1);
    status.observed_generation >= d.metadata.generation
        && status.updated_replicas.unwrap_or(0) == want
        && status.replicas.unwrap_or(0) == want
        && status.available_replicas.unwrap_or(0) == want
}

fn progress_line(
    w: &Wanted,
    d: Option<&Deployment>,
    replica_sets: &BTreeMap<String, ReplicaSet>,
    pods: &BTreeMap<String, Pod>,
) -> String {
    let name = &w.component.name;
    let Some(d) = d else {
        return format!("{name}: waiting for Deployment {}", w.deployment);
    };
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = d.status.clone().unwrap_or_default();
    if complete(Some(d)) {
        return format!("{name}: {want}/{want} ready");
    }
    let new: Vec<&Pod> = pods
        .values()
        .filter(|p| is_new(w, d, replica_sets, p))
        .collect();
    let waiting: Vec<String> = new
        .iter()
        .filter_map(|p| {
            let statuses = p.status.as_ref()?.container_statuses.as_ref()?;
            statuses
                .iter()
                .find_map(|cs| cs.state.as_ref()?.waiting.as_ref()?.reason.clone())
        })
        .collect();
    let mut line = format!(
        "{name}: {}/{want} updated, {}/{want} ready",
        status.updated_replicas.unwrap_or(0),
        status.ready_replicas.unwrap_or(0)
    );
    if !waiting.is_empty() {
        line.push_str(&format!(" ({})", waiting.join(", ")));
    }
    line
}

fn deadline_exceeded(w: &Wanted, d: &Deployment) -> Option<Finding> {
    let condition = d.status.as_ref()?.conditions.as_ref()?.iter().find(|c| {
        c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    })?;
    Some(Finding::fail(
        &crate::doctor::catalogue::DEPLOYMENT,
        format!(
            "{}: Deployment {} {}",
            w.component.name,
            w.deployment,
            condition.message.clone().unwrap_or_default()
        ),
        format!(
            "look at its pods: `kubectl todo doctor --component {}`",
            w.component.name
        ),
    ))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStatus};
    use k8s_openapi::api::core::v1::{
        Container, ContainerState, ContainerStateWaiting, ContainerStatus, PodSpec, PodStatus,
        PodTemplateSpec,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
    use kube::api::ObjectMeta;

    use super::*;
    use crate::context::Connection;
    use crate::doctor::FATAL_WAITING;
    use crate::settings::Settings;

    fn container(image: &str) -> Container {
        Container {
            name: "app".into(),
            image: Some(image.into()),
            ..Container::default()
        }
    }

    const REVISION: &str = "deployment.kubernetes.io/revision";

    fn owned_by(uid: &str) -> Option<Vec<OwnerReference>> {
        Some(vec![OwnerReference {
            uid: uid.into(),
            controller: Some(true),
            ..OwnerReference::default()
        }])
    }

    /// The Deployment at its revision 2, as its controller has seen it.
    fn deployment(name: &str, image: &str) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some(name.into()),
                uid: Some("deployment-uid".into()),
                generation: Some(1),
                annotations: Some([(REVISION.to_string(), "2".to_string())].into()),
                ..ObjectMeta::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(1),
                template: PodTemplateSpec {
                    metadata: None,
                    spec: Some(PodSpec {
                        containers: vec![container(image)],
                        ..PodSpec::default()
                    }),
                },
                ..DeploymentSpec::default()
            }),
            status: Some(DeploymentStatus {
                observed_generation: Some(1),
                replicas: Some(1),
                ..DeploymentStatus::default()
            }),
        }
    }

    /// The Deployment's ReplicaSets: `rs-2` for its revision 2, `rs-1` older.
    fn replica_sets() -> Cache<ReplicaSet> {
        let mut cache = Cache::new();
        for revision in ["1", "2"] {
            let name = format!("rs-{revision}");
            cache.items.insert(
                name.clone(),
                ReplicaSet {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        uid: Some(format!("{name}-uid")),
                        owner_references: owned_by("deployment-uid"),
                        annotations: Some([(REVISION.to_string(), revision.to_string())].into()),
                        ..ObjectMeta::default()
                    },
                    ..ReplicaSet::default()
                },
            );
        }
        cache
    }

    /// A pod of `rs-2`, the Deployment's newest ReplicaSet.
    fn waiting_pod(image: &str, reason: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("pod-1".into()),
                uid: Some("uid-1".into()),
                owner_references: owned_by("rs-2-uid"),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                containers: vec![container(image)],
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                container_statuses: Some(vec![ContainerStatus {
                    name: "app".into(),
                    image: image.into(),
                    ready: false,
                    state: Some(ContainerState {
                        waiting: Some(ContainerStateWaiting {
                            reason: Some(reason.into()),
                            message: Some(format!("the kubelet says {reason}")),
                        }),
                        ..ContainerState::default()
                    }),
                    ..ContainerStatus::default()
                }]),
                ..PodStatus::default()
            }),
        }
    }

    /// Each state doctor's catalogue calls fatal must stop `up`'s wait at the
    /// first look: `wait` returns as soon as `diagnose_pending` finds a
    /// failure, so a state doctor rated a mere warning would wait out --timeout.
    #[tokio::test]
    async fn every_fatal_pod_state_ends_the_wait_at_once() {
        let project = Project::defaults(Path::new("/nonexistent/shop"));
        // Nothing listens here: doctor's look-ups (logs, nodes) fail at once.
        let client =
            kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap()))
                .unwrap();
        let conn = Connection {
            client: client.clone(),
            namespace: project.namespace.clone(),
            context: "kind-test".into(),
            server_host: "127.0.0.1".into(),
        };
        let doctor = PodDoctor::new(&Settings::default(), &project, conn);
        let rollout = Rollout {
            client,
            project: &project,
            doctor: &doctor,
            redact: &[],
            timeout: Duration::from_secs(300),
        };
        let component = &project.components[0];
        let name = crate::render::object_name(&project, component);
        let image = "shop-backend:0123abcd";
        let applied = deployment(&name, image);
        let wanted = wanted(&project, std::slice::from_ref(&applied));
        assert_eq!(wanted.len(), 1);
        let mut ds = Cache::new();
        ds.items.insert(name.clone(), applied);
        let es = Cache::new();
        let rs = replica_sets();
        for reason in FATAL_WAITING {
            let pod = waiting_pod(image, reason);
            assert!(fatal(&pod, &[]), "{reason} is not fatal");
            let mut ps = Cache::new();
            ps.items.insert("pod-1".into(), pod);
            let found = rollout
                .diagnose_pending(&wanted, &ds, &rs, &ps, &es, true)
                .await;
            assert!(
                found.iter().any(|f| f.status == Status::Fail),
                "{reason}: up would keep waiting; doctor says {found:?}"
            );
        }
        // A pod that is merely starting is not a reason to stop.
        let mut ps = Cache::new();
        ps.items
            .insert("pod-1".into(), waiting_pod(image, "ContainerCreating"));
        assert!(
            rollout
                .diagnose_pending(&wanted, &ds, &rs, &ps, &es, true)
                .await
                .is_empty()
        );
    }

    /// A failed revision's pod can have the images and checksums of the one
    /// being rolled out (only, say, its resources differed): it belongs to
    /// an older ReplicaSet and is not blamed. Until the controller has seen
    /// the applied template, no pod is known to be new.
    #[test]
    fn only_pods_of_the_newest_replica_set_are_new() {
        let project = Project::defaults(Path::new("/nonexistent/shop"));
        let component = &project.components[0];
        let name = crate::render::object_name(&project, component);
        let image = "shop-backend:0123abcd";
        let applied = deployment(&name, image);
        let wanted = &wanted(&project, std::slice::from_ref(&applied))[0];
        let rs = replica_sets();
        let new = waiting_pod(image, "CrashLoopBackOff");
        assert!(is_new(wanted, &applied, &rs.items, &new));
        let mut old = new.clone();
        old.metadata.owner_references = owned_by("rs-1-uid");
        assert!(!is_new(wanted, &applied, &rs.items, &old));
        let mut unseen = applied.clone();
        unseen.metadata.generation = Some(2);
        assert!(!is_new(wanted, &unseen, &rs.items, &new));
    }
}
