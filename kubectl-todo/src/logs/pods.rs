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

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "app"}]},
            "status": {"containerStatuses": [status]},
        }))
        .unwrap()
    }

    fn base(state: serde_json::Value, last: serde_json::Value, id: &str) -> serde_json::Value {
        serde_json::json!({
            "name": "app", "image": "i", "imageID": "", "ready": false, "restartCount": 1,
            "containerID": id, "state": state, "lastState": last,
        })
    }

    #[test]
    fn the_running_instance_is_the_one_to_read() {
        let p = pod(base(
            serde_json::json!({"running": {}}),
            serde_json::json!({}),
            "x://2",
        ));
        let running = Instance {
            id: "x://2".into(),
            running: true,
        };
        assert_eq!(instance(&p, "app"), Some(running));
        assert!(!ended(&p, "app", "x://2"));
        assert!(ended(&p, "app", "x://1"), "a replaced run has ended");
    }

    #[test]
    fn between_restarts_the_last_run_is_still_readable() {
        let p = pod(base(
            serde_json::json!({"waiting": {"reason": "CrashLoopBackOff"}}),
            serde_json::json!({"terminated": {"exitCode": 1, "containerID": "x://1"}}),
            "",
        ));
        let last = Instance {
            id: "x://1".into(),
            running: false,
        };
        assert_eq!(instance(&p, "app"), Some(last));
        assert!(ended(&p, "app", "x://1"));
        assert_eq!(waiting_reason(&p, "app"), "CrashLoopBackOff");
    }

    #[test]
    fn a_container_that_never_started_has_nothing_to_read() {
        let p = pod(base(
            serde_json::json!({"waiting": {"reason": "ErrImagePull"}}),
            serde_json::json!({}),
            "",
        ));
        assert_eq!(instance(&p, "app"), None);
        assert_eq!(instance(&p, "other"), None);
    }
}
