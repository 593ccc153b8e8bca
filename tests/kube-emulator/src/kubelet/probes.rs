//! Startup, readiness and liveness probes for the docker runtime, with the
//! real prober's thresholds and failure messages. HTTPS probes are checked
//! as a TCP connection (the emulator carries no TLS client for them).

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::docker;

struct Probe {
    spec: Value,
    next: Instant,
    successes: i64,
    failures: i64,
}

impl Probe {
    fn new(spec: Option<&Value>, started: Instant) -> Option<Probe> {
        let spec = spec?.clone();
        let delay = spec["initialDelaySeconds"].as_u64().unwrap_or(0);
        Some(Probe {
            next: started + Duration::from_secs(delay),
            spec,
            successes: 0,
            failures: 0,
        })
    }

    fn threshold(&self, field: &str) -> i64 {
        self.spec[field]
            .as_i64()
            .unwrap_or(if field == "failureThreshold" { 3 } else { 1 })
            .max(1)
    }

    fn due(&mut self) -> bool {
        let now = Instant::now();
        if now < self.next {
            return false;
        }
        self.next =
            now + Duration::from_secs(self.spec["periodSeconds"].as_u64().unwrap_or(10).max(1));
        true
    }

    /// Runs the probe and counts the result; `Err` carries the failure message.
    async fn check(&mut self, target: &Target<'_>) -> Result<(), String> {
        let result = run(&self.spec, target).await;
        if result.is_ok() {
            self.successes += 1;
            self.failures = 0;
        } else {
            self.failures += 1;
            self.successes = 0;
        }
        result
    }
}

/// Where probes go: the pod's IP, and the container for exec probes.
pub(super) struct Target<'a> {
    pub ip: &'a str,
    pub container_id: &'a str,
    pub container: &'a Value,
}

/// What the worker must do after a round of probes.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    Healthy,
    /// Kill and restart the container; names the probe that failed.
    Kill(&'static str),
}

/// One container's probes, with the `started` and `ready` they decide.
pub(super) struct Probes {
    startup: Option<Probe>,
    readiness: Option<Probe>,
    liveness: Option<Probe>,
    pub started: bool,
    pub ready: bool,
}

impl Probes {
    pub(super) fn new(container: &Value) -> Probes {
        let now = Instant::now();
        let startup = Probe::new(container.get("startupProbe"), now);
        let readiness = Probe::new(container.get("readinessProbe"), now);
        Probes {
            started: startup.is_none(),
            ready: startup.is_none() && readiness.is_none(),
            liveness: Probe::new(container.get("livenessProbe"), now),
            startup,
            readiness,
        }
    }

    /// Runs the probes that are due; `event` records Unhealthy warnings.
    pub(super) async fn run(
        &mut self,
        target: &Target<'_>,
        mut event: impl FnMut(String),
    ) -> Verdict {
        if !self.started {
            let Some(p) = self.startup.as_mut() else {
                return Verdict::Healthy;
            };
            if !p.due() {
                return Verdict::Healthy;
            }
            match p.check(target).await {
                Ok(()) => {
                    self.started = true;
                    self.ready = self.readiness.is_none();
                    // Readiness and liveness start counting once the container has started.
                    let now = Instant::now();
                    for q in [self.readiness.as_mut(), self.liveness.as_mut()]
                        .into_iter()
                        .flatten()
                    {
                        q.next = q.next.max(now);
                    }
                }
                Err(m) => {
                    event(format!("Startup probe failed: {m}"));
                    if p.failures >= p.threshold("failureThreshold") {
                        return Verdict::Kill("startup");
                    }
                }
            }
            return Verdict::Healthy;
        }
        if let Some(p) = self.readiness.as_mut()
            && p.due()
        {
            match p.check(target).await {
                Ok(()) if p.successes >= p.threshold("successThreshold") => self.ready = true,
                Ok(()) => {}
                Err(m) => {
                    event(format!("Readiness probe failed: {m}"));
                    if p.failures >= p.threshold("failureThreshold") {
                        self.ready = false;
                    }
                }
            }
        }
        if let Some(p) = self.liveness.as_mut()
            && p.due()
            && let Err(m) = p.check(target).await
        {
            event(format!("Liveness probe failed: {m}"));
            if p.failures >= p.threshold("failureThreshold") {
                return Verdict::Kill("liveness");
            }
        }
        Verdict::Healthy
    }
}

/// A port by number or by the container's port name.
fn port(container: &Value, port: &Value) -> Option<u16> {
    if let Some(n) = port.as_u64() {
        return u16::try_from(n).ok();
    }
    let name = port.as_str()?;
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    container["ports"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_u64())
        .and_then(|n| u16::try_from(n).ok())
}

/// A failed dial, worded as Go's net package words it (the kubelet is Go).
pub(super) fn dial_error(network: &str, addr: &str, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
            format!("dial {network} {addr}: i/o timeout")
        }
        std::io::ErrorKind::ConnectionRefused => {
            format!("dial {network} {addr}: connect: connection refused")
        }
        // Go prints the bare errno text: "cannot assign requested address".
        _ => {
            let text = e.to_string();
            let text = text.split(" (os error").next().unwrap_or_default();
            let mut chars = text.chars();
            let first = chars.next().map(|c| c.to_ascii_lowercase());
            format!(
                "dial {network} {addr}: connect: {}{}",
                first.unwrap_or_default(),
                chars.as_str()
            )
        }
    }
}

pub(super) async fn connect(addr: &str, timeout: Duration) -> Result<TcpStream, String> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Err(_) => Err(dial_error(
            "tcp",
            addr,
            &std::io::ErrorKind::TimedOut.into(),
        )),
        Ok(Err(e)) => Err(dial_error("tcp", addr, &e)),
        Ok(Ok(s)) => Ok(s),
    }
}

async fn http_get(addr: &str, path: &str, headers: &str, timeout: Duration) -> Result<(), String> {
    let url = format!("http://{addr}{path}");
    let attempt = async {
        let mut stream = connect(addr, timeout)
            .await
            .map_err(|e| format!("Get \"{url}\": {e}"))?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: kube-probe/1.33\r\nAccept: */*\r\n{headers}Connection: close\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("Get \"{url}\": {e}"))?;
        let mut head = Vec::new();
        let mut buf = [0u8; 512];
        while !head.contains(&b'\n') {
            match stream.read(&mut buf).await {
                Ok(0) => return Err(format!("Get \"{url}\": EOF")),
                Ok(n) => head.extend_from_slice(&buf[..n]),
                Err(e) => return Err(format!("Get \"{url}\": {e}")),
            }
        }
        let code: u16 = String::from_utf8_lossy(&head)
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        if (200..400).contains(&code) {
            Ok(())
        } else {
            Err(format!("HTTP probe failed with statuscode: {code}"))
        }
    };
    tokio::time::timeout(timeout, attempt).await.unwrap_or_else(|_| {
        Err(format!("Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"))
    })
}

async fn run(spec: &Value, target: &Target<'_>) -> Result<(), String> {
    let timeout = Duration::from_secs(spec["timeoutSeconds"].as_u64().unwrap_or(1).max(1));
    let addr_of = |handler: &Value| {
        let host = handler["host"]
            .as_str()
            .filter(|h| !h.is_empty())
            .unwrap_or(target.ip);
        port(target.container, &handler["port"]).map(|p| format!("{host}:{p}"))
    };
    if let Some(h) = spec.get("httpGet") {
        let addr = addr_of(h).ok_or("unknown port")?;
        if h["scheme"].as_str() == Some("HTTPS") {
            return connect(&addr, timeout).await.map(drop);
        }
        let headers: String = h["httpHeaders"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| {
                format!(
                    "{}: {}\r\n",
                    x["name"].as_str().unwrap_or_default(),
                    x["value"].as_str().unwrap_or_default()
                )
            })
            .collect();
        return http_get(&addr, h["path"].as_str().unwrap_or("/"), &headers, timeout).await;
    }
    if let Some(h) = spec.get("tcpSocket").or_else(|| spec.get("grpc")) {
        let addr = addr_of(h).ok_or("unknown port")?;
        return connect(&addr, timeout).await.map(drop);
    }
    if let Some(cmd) = spec.pointer("/exec/command").and_then(Value::as_array) {
        let cmd = cmd
            .iter()
            .filter_map(|s| s.as_str().map(String::from))
            .collect();
        let (code, output) = docker::exec(target.container_id, cmd, timeout).await?;
        return if code == 0 { Ok(()) } else { Err(output) };
    }
    Ok(())
}
