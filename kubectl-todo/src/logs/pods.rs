//! What the logs need to know about a pod: its containers and which
//! instance of each (the current one, or the last after a restart) has output.

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

pub fn name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or_default()
}

pub fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or_default()
}

pub fn template_hash(pod: &Pod) -> Option<&str> {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("pod-template-hash"))
        .map(String::as_str)
}

/// The app containers (init containers have finished before the app starts).
pub fn containers(pod: &Pod) -> Vec<&str> {
    pod.spec
        .iter()
        .flat_map(|s| &s.containers)
        .map(|c| c.name.as_str())
        .collect()
}

/// One run of a container, named by its runtime id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    pub running: bool,
}

fn status<'a>(pod: &'a Pod, container: &str) -> Option<&'a ContainerStatus> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|s| s.name == container)
}

/// The instance whose output is there to read: the running one, else the
/// one that ended last; `None` before the container first started.
pub fn instance(pod: &Pod, container: &str) -> Option<Instance> {
    let status = status(pod, container)?;
    let state = status.state.as_ref();
    if let Some(id) = state
        .and_then(|s| s.running.as_ref())
        .and(status.container_id.clone())
    {
        return Some(Instance { id, running: true });
    }
    let terminated = state
        .and_then(|s| s.terminated.as_ref())
        .and_then(|t| t.container_id.clone());
    let last = status
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .and_then(|t| t.container_id.clone());
    terminated
        .or(last)
        .filter(|id| !id.is_empty())
        .map(|id| Instance { id, running: false })
}

/// Whether the instance has stopped writing: it terminated, or another replaced it.
pub fn ended(pod: &Pod, container: &str, id: &str) -> bool {
    instance(pod, container).is_none_or(|now| now.id != id || !now.running)
}

/// Why a container has no output yet, for the note that says so.
pub fn waiting_reason(pod: &Pod, container: &str) -> String {
    status(pod, container)
        .and_then(|s| s.state.as_ref())
        .and_then(|s| s.waiting.as_ref())
        .and_then(|w| w.reason.clone())
        .unwrap_or_else(|| "ContainerCreating".into())
}
