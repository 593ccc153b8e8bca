//! What the emulator's parts share: the store, the node, its image store
//! and the event recorder.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::events::Recorder;
use crate::faults::Faults;
use crate::store::Store;

/// How the kubelet runs pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// Real containers on the machine's Docker Engine.
    Docker,
    /// No containers: pods become Running and Ready at once.
    Scripted,
}

#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub name: String,
    pub cpu_millis: i64,
    pub memory_bytes: i64,
    pub max_pods: i64,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            name: "emulator".into(),
            cpu_millis: 4000,
            memory_bytes: 8 * 1024 * 1024 * 1024,
            max_pods: 110,
        }
    }
}

/// An image the node has, as `status.images` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeImage {
    pub names: Vec<String>,
    pub size_bytes: i64,
    /// The image's configured user, when known (the runAsNonRoot check needs it).
    pub user: Option<String>,
    /// The Docker image ID the node's containers are created from.
    pub id: Option<String>,
}

/// Normalises an image reference the way the container runtime does:
/// `busybox` is `docker.io/library/busybox:latest`.
pub fn normalize_image(reference: &str) -> String {
    let (name, tag) = match reference.rsplit_once('@') {
        Some(_) => (reference.to_string(), String::new()),
        None => match reference.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => (n.to_string(), format!(":{t}")),
            _ => (reference.to_string(), ":latest".to_string()),
        },
    };
    let first = name.split('/').next().unwrap_or_default();
    let has_registry =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let full = if has_registry {
        name
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    format!("{full}{tag}")
}

pub struct Cluster {
    pub store: Arc<Store>,
    pub node: NodeConfig,
    pub runtime: Runtime,
    pub recorder: Recorder,
    /// Distinguishes this emulator's containers from any other's on the engine.
    pub instance: String,
    images: Mutex<BTreeMap<String, NodeImage>>,
    shutdown: watch::Sender<bool>,
    /// Kubelet's crash-loop back-off: first delay and cap, in milliseconds.
    pub backoff_ms: (u64, u64),
    /// What tests inject: the API server and the kubelet both obey them.
    pub faults: Arc<Faults>,
}

impl Cluster {
    pub fn new(node: NodeConfig, runtime: Runtime) -> Arc<Cluster> {
        let store = Store::new();
        let recorder = Recorder::new(store.clone(), &node.name);
        let (shutdown, _) = watch::channel(false);
        Arc::new(Cluster {
            store,
            recorder,
            runtime,
            instance: crate::store::new_uid()[..8].to_string(),
            images: Mutex::new(BTreeMap::new()),
            shutdown,
            node,
            backoff_ms: (10_000, 300_000),
            faults: Arc::default(),
        })
    }

    /// Resolves when the emulator stops.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Puts an image on the node; the node object's `status.images` follows.
    pub fn add_image(&self, image: NodeImage) {
        let mut images = self.images.lock().unwrap_or_else(|e| e.into_inner());
        for n in &image.names {
            images.insert(normalize_image(n), image.clone());
        }
    }

    pub fn image(&self, reference: &str) -> Option<NodeImage> {
        let images = self.images.lock().unwrap_or_else(|e| e.into_inner());
        images.get(&normalize_image(reference)).cloned()
    }

    /// `status.images` of the node object.
    pub fn node_images_json(&self) -> Value {
        let images = self.images.lock().unwrap_or_else(|e| e.into_inner());
        let mut seen: Vec<&NodeImage> = Vec::new();
        for img in images.values() {
            if !seen.contains(&img) {
                seen.push(img);
            }
        }
        Value::Array(
            seen.into_iter()
                .map(|i| json!({ "names": i.names, "sizeBytes": i.size_bytes }))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_normalise_like_the_runtime() {
        assert_eq!(
            normalize_image("busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            normalize_image("todo-web:abc"),
            "docker.io/library/todo-web:abc"
        );
        assert_eq!(normalize_image("me/app:1"), "docker.io/me/app:1");
        assert_eq!(
            normalize_image("localhost:5000/app"),
            "localhost:5000/app:latest"
        );
        assert_eq!(
            normalize_image("docker.io/library/busybox:latest"),
            "docker.io/library/busybox:latest"
        );
    }
}
