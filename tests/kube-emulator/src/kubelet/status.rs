//! The pod status the kubelet reports, in the real shapes: phase,
//! conditions, IPs and one containerStatus per container.

use serde_json::{Value, json};

use crate::time;

/// A container's state as `containerStatuses[].state` shows it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum State {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        started_at: String,
    },
    /// The `terminated` object: exitCode, reason, startedAt, finishedAt, containerID.
    Terminated(Value),
}

impl State {
    pub(super) fn waiting(reason: &str, message: Option<String>) -> Self {
        State::Waiting {
            reason: reason.into(),
            message,
        }
    }

    fn to_json(&self) -> Value {
        match self {
            State::Waiting {
                reason,
                message: Some(m),
            } => json!({ "waiting": { "reason": reason, "message": m } }),
            State::Waiting {
                reason,
                message: None,
            } => json!({ "waiting": { "reason": reason } }),
            State::Running { started_at } => json!({ "running": { "startedAt": started_at } }),
            State::Terminated(t) => json!({ "terminated": t }),
        }
    }
}

/// What the status needs to know of one container.
pub(super) struct ContainerView<'a> {
    pub name: &'a str,
    pub image: &'a str,
    pub image_id: &'a str,
    /// `docker://…` or `scripted://…` of the latest instance, if any ran.
    pub container_id: Option<String>,
    pub state: &'a State,
    pub last: Option<&'a Value>,
    pub ready: bool,
    pub started: bool,
    pub restarts: i64,
}

impl ContainerView<'_> {
    fn to_json(&self) -> Value {
        let mut s = json!({
            "name": self.name,
            "image": self.image,
            "imageID": self.image_id,
            "ready": self.ready,
            "started": self.started,
            "restartCount": self.restarts,
            "state": self.state.to_json(),
            "lastState": self.last.map(|t| json!({ "terminated": t })).unwrap_or_else(|| json!({})),
        });
        if let Some(id) = &self.container_id {
            s["containerID"] = json!(id);
        }
        s
    }
}

/// The kubelet's phase rule: Pending until every container has run, then
/// Running while any runs or will restart, then Succeeded or Failed.
fn phase(views: &[ContainerView], restart_policy: &str) -> &'static str {
    let pending = views
        .iter()
        .any(|v| matches!(v.state, State::Waiting { .. }) && v.last.is_none());
    let running = views
        .iter()
        .any(|v| matches!(v.state, State::Running { .. }));
    let terminated: Vec<i64> = views
        .iter()
        .filter_map(|v| match v.state {
            State::Terminated(t) => Some(t["exitCode"].as_i64().unwrap_or(0)),
            _ => None,
        })
        .collect();
    if pending {
        "Pending"
    } else if running || terminated.len() < views.len() {
        "Running"
    } else if terminated.iter().all(|c| *c == 0) {
        "Succeeded"
    } else if restart_policy == "Never" {
        "Failed"
    } else {
        "Running"
    }
}

fn condition(
    old: &Value,
    kind: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
) -> Value {
    let status = if ok { "True" } else { "False" };
    let previous = old
        .get("conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind));
    let since = match previous {
        Some(p) if p["status"] == status => p["lastTransitionTime"].clone(),
        _ => json!(time::now()),
    };
    let mut c = json!({ "type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": since });
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    if let Some(m) = message {
        c["message"] = json!(m);
    }
    c
}

/// The pod's new status, built on the old one (which keeps PodScheduled and qosClass).
pub(super) fn pod_status(
    old: &Value,
    views: &[ContainerView],
    pod_ip: Option<&str>,
    start_time: &str,
    restart_policy: &str,
) -> Value {
    let phase = phase(views, restart_policy);
    let done = matches!(phase, "Succeeded" | "Failed");
    let unready: Vec<&str> = views.iter().filter(|v| !v.ready).map(|v| v.name).collect();
    let (ready_reason, ready_message) = if done {
        (Some("PodCompleted"), None)
    } else if unready.is_empty() {
        (None, None)
    } else {
        (
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        )
    };
    let ready = unready.is_empty() && !done;
    let mut conditions = vec![
        condition(
            old,
            "PodReadyToStartContainers",
            pod_ip.is_some(),
            None,
            None,
        ),
        condition(
            old,
            "Initialized",
            true,
            done.then_some("PodCompleted"),
            None,
        ),
        condition(old, "Ready", ready, ready_reason, ready_message.clone()),
        condition(old, "ContainersReady", ready, ready_reason, ready_message),
    ];
    let ours = [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
    ];
    conditions.extend(
        old.get("conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|c| !ours.iter().any(|k| c["type"] == *k))
            .cloned(),
    );
    let mut status = old.clone();
    if !status.is_object() {
        status = json!({});
    }
    status["phase"] = json!(phase);
    status["conditions"] = json!(conditions);
    status["hostIP"] = json!("127.0.0.1");
    status["hostIPs"] = json!([{ "ip": "127.0.0.1" }]);
    status["startTime"] = json!(start_time);
    if let Some(ip) = pod_ip {
        status["podIP"] = json!(ip);
        status["podIPs"] = json!([{ "ip": ip }]);
    }
    status["containerStatuses"] =
        json!(views.iter().map(ContainerView::to_json).collect::<Vec<_>>());
    status
}

/// A duration as Go prints it (`10s`, `1m20s`, `5m0s`, `500ms`), as the kubelet's messages show it.
pub(super) fn go_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis() as u64;
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, m, s_ms) = (ms / 3_600_000, ms / 60_000 % 60, ms % 60_000);
    let secs = if s_ms % 1000 == 0 {
        format!("{}s", s_ms / 1000)
    } else {
        format!(
            "{}s",
            (s_ms as f64 / 1000.0).to_string().trim_end_matches('0')
        )
    };
    match (h, m) {
        (0, 0) => secs,
        (0, m) => format!("{m}m{secs}"),
        (h, m) => format!("{h}h{m}m{secs}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_print_like_go() {
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_secs(80)), "1m20s");
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
    }
}
