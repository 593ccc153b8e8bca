//! The kubelet's half of a port-forward: a connection to a port inside the
//! pod's network namespace.

use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpStream;

use crate::cluster::{Cluster, Runtime};

use super::probes;

/// Connects to `port` of a running pod; `Err` carries the message the
/// kubelet writes to the forward's error stream.
pub async fn connect_port(cluster: &Cluster, pod: &Value, port: u16) -> Result<TcpStream, String> {
    let meta = &pod["metadata"];
    let prefix = format!(
        "error forwarding port {port} to pod {}_{}, uid {}",
        meta["name"].as_str().unwrap_or_default(),
        meta["namespace"].as_str().unwrap_or_default(),
        meta["uid"].as_str().unwrap_or_default(),
    );
    if cluster.runtime == Runtime::Scripted {
        return Err(format!(
            "{prefix}: the scripted runtime runs no containers, so nothing listens on port {port}; start the emulator with --runtime docker"
        ));
    }
    let ip = pod
        .pointer("/status/podIP")
        .and_then(Value::as_str)
        .filter(|ip| !ip.is_empty())
        .ok_or_else(|| format!("{prefix}: the pod has no IP yet"))?;
    // The sandbox's bridge address stands for localhost in its network namespace.
    probes::connect(&format!("{ip}:{port}"), Duration::from_secs(5))
        .await
        .map_err(|e| {
            format!(
                "{prefix}: failed to connect to port {port} inside the pod's network namespace: {e}"
            )
        })
}
