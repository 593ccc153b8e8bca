//! The kubelet: registers the node and runs the pods bound to it.
//!
//! Two runtimes share the same pod worker ([`worker`]): image, config and
//! `runAsNonRoot` checks, restarts with back-off, status and events are the
//! same; only starting, watching and stopping containers differ.
//!
//! * `docker` ([`docker`]): every container is a real container on the Docker
//!   Engine, sharing the network namespace of a per-pod sandbox container.
//!   Every container carries the label `kube-emulator.instance=<instance>` so
//!   that [`shutdown`] removes exactly what this emulator started.
//! * `scripted` ([`scripted`]): no containers. Once the checks pass, each
//!   container is Running and Ready at once, and pod IPs come from
//!   `10.244.0.0/16`. Its output and exit are scripted through annotations
//!   on the pod, applying to every container of the pod:
//!   - `kube-emulator.dev/log-lines: "N"`: the container writes `line 1` …
//!     `line N` to stdout (default 0);
//!   - `kube-emulator.dev/log-text: "TEXT"`: the container writes the lines
//!     of TEXT instead, `$(VAR)` replaced by the value of its environment
//!     variable VAR (as the kubelet expands `env`), so that a test app can
//!     print its Secret's values;
//!   - `kube-emulator.dev/log-interval-ms: "MS"`: line *i* is written *i*×MS
//!     milliseconds after the container starts (default 0: all at once);
//!   - `kube-emulator.dev/exit-code: "C"`: the container exits with code C
//!     after its last line, and the restart policy, back-off and
//!     CrashLoopBackOff apply; without it the container runs until the pod
//!     is deleted, and `logs --follow` waits for more until then.
//!
//! In both runtimes an image is on the node once [`load_image`] put it
//! there, or once the node pulled it: an image the node lacks (or any, with
//! `imagePullPolicy: Always`) is pulled through the Docker Engine when its
//! reference names a registry on loopback (`127.0.0.1:PORT/…`,
//! `localhost:PORT/…`), as a node pulls from a registry; the engine's error
//! is the ErrImagePull message when the pull fails. References to any other
//! registry fail as a registry that refuses them would, so nothing leaves
//! the machine. What the node pulled into the engine is removed at [`shutdown`].
//!
//! A container is created, then started, as a runtime does: a
//! [`crate::faults::ContainerFault`] makes the runtime refuse to create it
//! (CreateContainerError with the fault's message), or stands for an image
//! reference mangled on its way to the node. A reference that does not parse
//! gives InvalidImageName by itself, before any pull.

mod config;
mod docker;
mod forward;
mod images;
mod logs;
mod node;
mod probes;
mod scripted;
mod status;
mod volumes;
mod worker;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

use crate::cluster::{Cluster, Runtime};
use crate::resources;

pub use forward::connect_port;
pub use images::load_image;
pub use logs::{LogOptions, logs};

/// Why a pod worker stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Running,
    /// The pod has a deletionTimestamp: kill its containers, then finish the deletion.
    Delete,
    /// The pod is gone from the store, or the emulator stops: clean up quietly.
    Vanished,
}

struct WorkerHandle {
    stop: watch::Sender<Stop>,
    task: tokio::task::JoinHandle<()>,
}

/// The kubelet's state for one emulator; several emulators may share a process.
#[derive(Default)]
struct Kubelet {
    workers: Mutex<HashMap<String, WorkerHandle>>,
    stopped: Mutex<bool>,
    next_ip: Mutex<u32>,
    /// References the node pulled that the engine did not hold before.
    pulled: Mutex<Vec<String>>,
}

impl Kubelet {
    fn pulled(&self, reference: String) {
        self.pulled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(reference);
    }
}

static KUBELETS: LazyLock<Mutex<HashMap<String, Arc<Kubelet>>>> = LazyLock::new(Default::default);

fn kubelet_of(cluster: &Cluster) -> Arc<Kubelet> {
    let mut all = KUBELETS.lock().unwrap_or_else(|e| e.into_inner());
    all.entry(cluster.instance.clone()).or_default().clone()
}

/// A fresh pod IP for the scripted runtime.
fn scripted_pod_ip(cluster: &Cluster) -> String {
    let k = kubelet_of(cluster);
    let mut n = k.next_ip.lock().unwrap_or_else(|e| e.into_inner());
    *n += 1;
    format!("10.244.{}.{}", *n / 254, *n % 254 + 1)
}

/// Registers the node and starts the sync loop.
pub fn spawn(cluster: Arc<Cluster>) {
    node::register(&cluster);
    let kubelet = kubelet_of(&cluster);
    tokio::spawn(sync_loop(cluster, kubelet));
}

/// Stops every pod worker and removes every container this emulator started.
pub async fn shutdown(cluster: &Cluster) {
    let kubelet = kubelet_of(cluster);
    *kubelet.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
    let workers: Vec<WorkerHandle> = kubelet
        .workers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain()
        .map(|(_, w)| w)
        .collect();
    for w in &workers {
        w.stop.send_replace(Stop::Vanished);
    }
    for w in workers {
        // A worker stuck on the engine must not hold up the exit for long.
        let _ = tokio::time::timeout(Duration::from_secs(15), w.task).await;
    }
    if cluster.runtime == Runtime::Docker {
        docker::remove_instance(&cluster.instance).await;
    }
    let pulled = std::mem::take(&mut *kubelet.pulled.lock().unwrap_or_else(|e| e.into_inner()));
    for reference in pulled {
        docker::remove_image(&reference).await;
    }
    volumes::remove_instance_dirs(&cluster.instance);
    KUBELETS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&cluster.instance);
}

fn is_stopped(kubelet: &Kubelet, cluster: &Cluster) -> bool {
    cluster.is_shutting_down() || *kubelet.stopped.lock().unwrap_or_else(|e| e.into_inner())
}

/// Level-triggered: every change to the store, and a tick, reconciles the
/// pods bound to this node with the workers running them.
async fn sync_loop(cluster: Arc<Cluster>, kubelet: Arc<Kubelet>) {
    let mut changes = cluster.store.changes();
    let mut shutdown = cluster.shutdown_signal();
    while !is_stopped(&kubelet, &cluster) {
        reconcile(&cluster, &kubelet);
        tokio::select! {
            _ = changes.changed() => {}
            _ = shutdown.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}

fn reconcile(cluster: &Arc<Cluster>, kubelet: &Kubelet) {
    let pods: Vec<Value> = cluster
        .store
        .all(resources::pods(), None)
        .into_iter()
        .filter(|p| {
            p.pointer("/spec/nodeName").and_then(Value::as_str) == Some(cluster.node.name.as_str())
        })
        .collect();
    let mut workers = kubelet.workers.lock().unwrap_or_else(|e| e.into_inner());
    let mut live = Vec::new();
    for pod in &pods {
        let uid = pod["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let deleting = pod.pointer("/metadata/deletionTimestamp").is_some();
        let handle = workers.entry(uid.clone()).or_insert_with(|| {
            let (stop, rx) = watch::channel(Stop::Running);
            let task = tokio::spawn(worker::run(cluster.clone(), pod.clone(), rx));
            WorkerHandle { stop, task }
        });
        if deleting && *handle.stop.borrow() == Stop::Running {
            handle.stop.send_replace(Stop::Delete);
        }
        live.push(uid);
    }
    for (uid, w) in workers.iter() {
        if !live.contains(uid) && *w.stop.borrow() != Stop::Vanished {
            w.stop.send_replace(Stop::Vanished);
        }
    }
    workers.retain(|uid, w| live.contains(uid) || !w.task.is_finished());
}
