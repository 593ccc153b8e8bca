//! The kubelet's half of a port-forward: a connection to `localhost:port`
//! inside the pod's network namespace, made as containerd makes it (enter
//! the sandbox's namespace, dial IPv4 then IPv6 loopback).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpStream;

use crate::cluster::{Cluster, Runtime};

use super::{docker, probes};

const DIAL_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a dial inside the namespace did not connect.
enum Failure {
    /// The emulator may not enter the namespace (it is not root, or the
    /// engine's processes are not on this host).
    NoNamespace(String),
    Dial(String),
}

/// Connects to `port` of a running pod; `Err` carries the message the
/// kubelet writes to the forward's error stream.
pub async fn connect_port(cluster: &Cluster, pod: &Value, port: u16) -> Result<TcpStream, String> {
    let meta = &pod["metadata"];
    let uid = meta["uid"].as_str().unwrap_or_default();
    let prefix = format!(
        "error forwarding port {port} to pod {}_{}, uid {uid}",
        meta["name"].as_str().unwrap_or_default(),
        meta["namespace"].as_str().unwrap_or_default(),
    );
    if cluster.runtime == Runtime::Scripted {
        return Err(format!(
            "{prefix}: the scripted runtime runs no containers, so nothing listens on port {port}; start the emulator with --runtime docker"
        ));
    }
    let pid = docker::sandbox_pid(uid)
        .await
        .map_err(|e| format!("{prefix}: {e}"))?;
    match dial_in_namespace(pid, port).await {
        Ok(stream) => Ok(stream),
        Err(Failure::Dial(e)) => Err(format!("{prefix}: {e}")),
        Err(Failure::NoNamespace(why)) => {
            // The sandbox's bridge address is the nearest thing: it misses listeners bound to loopback only.
            tracing::debug!("port-forward dials the pod's IP: {why}");
            let ip = pod
                .pointer("/status/podIP")
                .and_then(Value::as_str)
                .filter(|ip| !ip.is_empty())
                .ok_or_else(|| format!("{prefix}: the pod has no IP yet"))?;
            probes::connect(&format!("{ip}:{port}"), DIAL_TIMEOUT)
                .await
                .map_err(|e| format!("{prefix}: failed to connect to {ip}:{port}: {e}"))
        }
    }
}

/// Dials on a thread of its own: entering a namespace changes the calling
/// thread for good, and a socket stays in the namespace it was made in.
async fn dial_in_namespace(pid: i64, port: u16) -> Result<TcpStream, Failure> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(dial_on_this_thread(pid, port));
    });
    let stream = rx
        .await
        .map_err(|_| Failure::NoNamespace("the dialling thread died".into()))??;
    stream
        .set_nonblocking(true)
        .and_then(|()| TcpStream::from_std(stream))
        .map_err(|e| Failure::Dial(e.to_string()))
}

fn dial_on_this_thread(pid: i64, port: u16) -> Result<std::net::TcpStream, Failure> {
    let path = format!("/proc/{pid}/ns/net");
    let ns =
        std::fs::File::open(&path).map_err(|e| Failure::NoNamespace(format!("{path}: {e}")))?;
    // SAFETY: setns only reads the descriptor, which outlives the call, and
    // changes this thread's namespace; the thread ends after this dial.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(Failure::NoNamespace(format!("entering {path}: {e}")));
    }
    let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
    let e4 = match std::net::TcpStream::connect_timeout(&v4, DIAL_TIMEOUT) {
        Ok(s) => return Ok(s),
        Err(e) => probes::dial_error("tcp4", &v4.to_string(), &e),
    };
    let e6 = match std::net::TcpStream::connect_timeout(&v6, DIAL_TIMEOUT) {
        Ok(s) => return Ok(s),
        Err(e) => probes::dial_error("tcp6", &v6.to_string(), &e),
    };
    Err(Failure::Dial(format!(
        "failed to connect to localhost:{port} inside the pod's network namespace, IPv4: {e4} IPv6: {e6}"
    )))
}
