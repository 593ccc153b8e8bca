//! The emulator's `pods/portforward` subresource driven by the real clients:
//! `kubectl port-forward` over its WebSocket tunnel and over the SPDY
//! upgrade it falls back to, and kube-rs's `Api::portforward`, to real
//! containers answering HTTP as UID 1001.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use e2e::{Cluster, httpd_deployment};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube_emulator::Runtime;
use kube_emulator::faults::{Denial, Fault};
use kube_emulator::testimage::busybox_image;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bytes in `/big`: several SPDY data frames and WebSocket messages.
const BIG: usize = 300_000;

/// The shared web Deployment (httpd serving `/health`, "ok", on 8080), also
/// serving `/big`, and on 127.0.0.1:8081 only; on 9000 `wc -c` counts what
/// a connection sends until its end; a Service on port 80.
fn web_manifest(image: &str) -> String {
    // The command sits in a double-quoted YAML string, which unescapes once: tr gets `\0`.
    let big = format!(
        "head -c {BIG} /dev/zero | tr '\\\\0' x > /tmp/www/big && httpd -p 127.0.0.1:8081 -h /tmp/www &&"
    );
    let deployment = httpd_deployment("web", image, 60)
        .replace("echo serving on 8080 &&", &big)
        .replace(
            "mkdir -p /tmp/www &&",
            "nc -ll -p 9000 -e wc -c & mkdir -p /tmp/www &&",
        );
    assert!(
        deployment.contains("/tmp/www/big") && deployment.contains("nc -ll"),
        "{deployment}"
    );
    format!(
        "{deployment}---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {{app: web}}
  ports:
  - {{name: http, port: 80, targetPort: http}}
"
    )
}

/// An emulator running the web Deployment, rolled out; returns the pod's name.
async fn start() -> (Cluster, String) {
    let image = busybox_image("e2e").await.unwrap();
    let cluster = Cluster::start(Runtime::Docker).await.unwrap();
    kube_emulator::client::Client::new(&cluster.emulator.url())
        .unwrap()
        .load_images(std::slice::from_ref(&image))
        .await
        .unwrap();
    let manifest = cluster.manifest("web.yaml", &web_manifest(&image));
    cluster
        .kubectl(&["apply", "--server-side", "-f", manifest.to_str().unwrap()])
        .await
        .ok();
    cluster
        .kubectl(&["rollout", "status", "deploy/web", "--timeout=90s"])
        .await
        .ok();
    let pods: Api<Pod> = Api::default_namespaced(cluster.emulator.client().await.unwrap());
    let list = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    let name = list.items[0].metadata.name.clone().unwrap();
    (cluster, name)
}

/// How kubectl reaches the API for the forward.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Transport {
    /// SPDY/3.1 inside a WebSocket (`SPDY/3.1+portforward.k8s.io`), kubectl's default.
    Tunnel,
    /// The plain `Upgrade: SPDY/3.1`, kubectl's fallback.
    Spdy,
}

/// A running `kubectl port-forward`, its output in files.
struct PortForward {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
    local: u16,
}

impl PortForward {
    async fn start(cluster: &Cluster, transport: Transport, target: &str, remote: u16) -> Self {
        let n = std::fs::read_dir(cluster.dir()).unwrap().count();
        let stdout = cluster.dir().join(format!("port-forward-{n}.out"));
        let stderr = cluster.dir().join(format!("port-forward-{n}.err"));
        let websockets = match transport {
            Transport::Tunnel => "true",
            Transport::Spdy => "false",
        };
        let child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig())
            .args(["port-forward", "-v=4", target, &format!(":{remote}")])
            .env("KUBECTL_PORT_FORWARD_WEBSOCKETS", websockets)
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .stdin(Stdio::null())
            .spawn()
            .expect("kubectl runs");
        let mut pf = PortForward {
            child,
            stdout,
            stderr,
            local: 0,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while pf.local == 0 {
            let out = std::fs::read_to_string(&pf.stdout).unwrap_or_default();
            // "Forwarding from 127.0.0.1:40123 -> 8080"
            if let Some(port) = out
                .lines()
                .find_map(|l| l.strip_prefix("Forwarding from 127.0.0.1:"))
                .and_then(|rest| rest.split_whitespace().next())
            {
                pf.local = port.parse().unwrap();
            } else if let Ok(Some(status)) = pf.child.try_wait() {
                panic!("kubectl port-forward exited ({status}):\n{}", pf.stderr());
            } else if Instant::now() > deadline {
                panic!("kubectl port-forward never listened:\n{}", pf.stderr());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        pf
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits for kubectl to exit on its own.
    async fn exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "kubectl port-forward still running after {within:?}:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr()
    }
}

/// One HTTP/1.0 request over `io`: the status code and the body.
async fn http_get(mut io: impl AsyncRead + AsyncWrite + Unpin, path: &str) -> (u16, Vec<u8>) {
    io.write_all(format!("GET {path} HTTP/1.0\r\nHost: web\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = Vec::new();
    io.read_to_end(&mut response).await.unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP response: {:?}", String::from_utf8_lossy(&response)));
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status code in {head:?}"));
    (status, response[split + 4..].to_vec())
}

async fn get_local(port: u16, path: &str) -> (u16, Vec<u8>) {
    http_get(TcpStream::connect(("127.0.0.1", port)).await.unwrap(), path).await
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_port_forward_carries_sequential_and_concurrent_http_over_both_transports() {
    let (cluster, pod) = start().await;
    for transport in [Transport::Tunnel, Transport::Spdy] {
        let pf = PortForward::start(&cluster, transport, &format!("pod/{pod}"), 8080).await;
        for _ in 0..3 {
            let (status, body) = get_local(pf.local, "/health").await;
            assert_eq!((status, body.as_slice()), (200, &b"ok\n"[..]));
        }
        // Half-close: the request's end is the client's FIN, and the response still comes back.
        let mut conn = TcpStream::connect(("127.0.0.1", pf.local)).await.unwrap();
        conn.write_all(b"GET /health HTTP/1.0\r\n\r\n")
            .await
            .unwrap();
        conn.shutdown().await.unwrap();
        let mut response = String::new();
        conn.read_to_string(&mut response).await.unwrap();
        assert!(
            response.starts_with("HTTP/1.1 200 OK") && response.ends_with("\r\n\r\nok\n"),
            "{transport:?}: {response:?}"
        );
        let concurrent: Vec<_> = (0..6)
            .map(|_| tokio::spawn(get_local(pf.local, "/big")))
            .collect();
        for request in concurrent {
            let (status, body) = request.await.unwrap();
            assert_eq!(status, 200);
            assert_eq!(body.len(), BIG);
            assert!(body.iter().all(|b| *b == b'x'));
        }
        let log = pf.stop();

        // An upload far past SPDY's initial 64 KiB window, ended by a half-close.
        let counter = PortForward::start(&cluster, transport, &format!("pod/{pod}"), 9000).await;
        let mut conn = TcpStream::connect(("127.0.0.1", counter.local))
            .await
            .unwrap();
        conn.write_all(&vec![b'y'; 1_000_000]).await.unwrap();
        conn.shutdown().await.unwrap();
        let mut count = String::new();
        conn.read_to_string(&mut count).await.unwrap();
        assert_eq!(count, "1000000\n", "{transport:?}");
        counter.stop();

        // kubectl logs the tunnel's negotiation at -v=4; the SPDY fallback never tries it.
        let tunnelled = log.contains("negotiated protocol: portforward.k8s.io");
        assert_eq!(
            tunnelled,
            transport == Transport::Tunnel,
            "{transport:?}:\n{log}"
        );
        assert!(!log.contains("fallback"), "{transport:?}:\n{log}");
    }

    // kubectl resolves the Service to its pod and the named target port to 8080 itself.
    let pf = PortForward::start(&cluster, Transport::Tunnel, "svc/web", 80).await;
    let (status, body) = get_local(pf.local, "/health").await;
    assert_eq!((status, body.as_slice()), (200, &b"ok\n"[..]));
    pf.stop();
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_port_forward_reports_a_closed_port_and_a_dropped_connection() {
    let (cluster, pod) = start().await;
    for transport in [Transport::Tunnel, Transport::Spdy] {
        let mut pf = PortForward::start(&cluster, transport, &format!("pod/{pod}"), 9999).await;
        let mut conn = TcpStream::connect(("127.0.0.1", pf.local)).await.unwrap();
        let mut got = Vec::new();
        let _ = conn.read_to_end(&mut got).await;
        assert!(got.is_empty(), "{got:?}");
        // kubectl gives up on a forward whose error stream carried a message, as against a real cluster.
        assert!(!pf.exit(Duration::from_secs(20)).await.success());
        let log = pf.stderr();
        for expected in [
            &format!(
                "an error occurred forwarding {} -> 9999: error forwarding port 9999 to pod {pod}_default, uid ",
                pf.local
            ),
            "failed to connect to localhost:9999 inside the pod's network namespace, IPv4: dial tcp4 127.0.0.1:9999: connect: connection refused IPv6: dial tcp6 [::1]:9999: connect: ",
            "error: lost connection to pod",
        ] {
            assert!(
                log.contains(expected),
                "{transport:?}: missing {expected:?} in:\n{log}"
            );
        }
    }

    for transport in [Transport::Tunnel, Transport::Spdy] {
        cluster.emulator.faults().add(Fault {
            path: Some("/portforward".into()),
            close_after_ms: Some(1500),
            times: Some(1),
            ..Fault::default()
        });
        let mut pf = PortForward::start(&cluster, transport, &format!("pod/{pod}"), 8080).await;
        let (status, _) = get_local(pf.local, "/health").await;
        assert_eq!(status, 200);
        assert!(!pf.exit(Duration::from_secs(20)).await.success());
        let log = pf.stderr();
        assert!(
            log.contains("error: lost connection to pod"),
            "{transport:?}:\n{log}"
        );
        assert!(TcpStream::connect(("127.0.0.1", pf.local)).await.is_err());
    }
    cluster.stop().await;
}

/// The server closes the socket once every port's pod side has ended (the
/// kubelet does the same); kube-rs then fails to send its own close, and
/// only that.
fn closed_by_the_server(joined: Result<(), impl std::fmt::Display>) {
    if let Err(e) = joined {
        assert_eq!(
            e.to_string(),
            "failed to send a WebSocket message: WebSocket protocol error: Sending after closing is not allowed"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kube_rs_portforward_round_trips_and_sees_errors_and_drops() {
    let (cluster, pod) = start().await;
    let pods: Api<Pod> = Api::default_namespaced(cluster.emulator.client().await.unwrap());

    // Two ports on one socket: 8080 answers, 9999 reports on its error channel.
    let mut pf = pods.portforward(&pod, &[8080, 9999]).await.unwrap();
    let refused = pf.take_error(9999).unwrap();
    let (status, body) = http_get(pf.take_stream(8080).unwrap(), "/big").await;
    assert_eq!((status, body.len()), (200, BIG));
    let message = refused.await.expect("an error message for port 9999");
    assert!(
        message.starts_with(&format!(
            "error forwarding port 9999 to pod {pod}_default, uid "
        )) && message.contains(": failed to connect to localhost:9999 inside the pod's network namespace, IPv4: dial tcp4 127.0.0.1:9999: connect: connection refused IPv6: "),
        "{message}"
    );
    closed_by_the_server(pf.join().await);

    for _ in 0..3 {
        let mut pf = pods.portforward(&pod, &[8080]).await.unwrap();
        let (status, body) = http_get(pf.take_stream(8080).unwrap(), "/health").await;
        assert_eq!((status, body.as_slice()), (200, &b"ok\n"[..]));
        closed_by_the_server(pf.join().await);
    }

    // The forward dials localhost in the pod's network namespace, as on a real node.
    let mut pf = pods.portforward(&pod, &[8081]).await.unwrap();
    let (status, body) = http_get(pf.take_stream(8081).unwrap(), "/health").await;
    assert_eq!((status, body.as_slice()), (200, &b"ok\n"[..]));
    closed_by_the_server(pf.join().await);

    // A dropped connection ends the stream: an idle HTTP connection reads EOF, not a response.
    cluster.emulator.faults().add(Fault {
        path: Some("/portforward".into()),
        close_after_ms: Some(1000),
        times: Some(1),
        ..Fault::default()
    });
    let started = Instant::now();
    let mut pf = pods.portforward(&pod, &[8080]).await.unwrap();
    let mut stream = pf.take_stream(8080).unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut got))
        .await
        .expect("the drop ends the stream")
        .unwrap();
    assert!(
        got.is_empty() && started.elapsed() >= Duration::from_secs(1),
        "{got:?}"
    );
    let dropped = pf.join().await.unwrap_err().to_string();
    assert!(
        dropped.starts_with("failed to receive a WebSocket message"),
        "{dropped}"
    );

    // Deleting the pod ends an open forward once its container stops, as on a node.
    let mut pf = pods.portforward(&pod, &[9000]).await.unwrap();
    let mut stream = pf.take_stream(9000).unwrap();
    stream.write_all(b"pending").await.unwrap();
    cluster
        .kubectl(&["delete", "pod", &pod, "--wait=false"])
        .await
        .ok();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut got))
        .await
        .expect("the pod's deletion ends the stream")
        .unwrap();
    drop(pf);

    let api_error = |e: kube::Error| match e {
        kube::Error::Api(s) => (s.code, s.message),
        other => panic!("{other:?}"),
    };
    let err = pods.portforward("ghost", &[8080]).await.err().unwrap();
    assert_eq!(
        api_error(err),
        (404, "pods \"ghost\" not found".to_string())
    );

    cluster.emulator.faults().deny(Denial {
        verb: "create".into(),
        resource: "pods/portforward".into(),
        ..Denial::default()
    });
    let err = pods.portforward(&pod, &[8080]).await.err().unwrap();
    assert_eq!(
        api_error(err),
        (
            403,
            format!(
                "pods \"{pod}\" is forbidden: User \"emulator-admin\" cannot create resource \"pods/portforward\" in API group \"\" in the namespace \"default\""
            )
        )
    );
    cluster.emulator.faults().clear();

    // An image never loaded keeps the pod Pending: there is no sandbox to forward into.
    cluster
        .kubectl(&[
            "run",
            "pending",
            "--image=todo/never-loaded:1.0",
            "--image-pull-policy=Never",
        ])
        .await
        .ok();
    for _ in 0..100 {
        let p = pods.get("pending").await.unwrap();
        if p.spec.and_then(|s| s.node_name).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let err = pods.portforward("pending", &[8080]).await.err().unwrap();
    assert_eq!(
        api_error(err),
        (
            400,
            "unable to upgrade connection: pod pending is not running (phase Pending): a port-forward needs the pod's sandbox running".to_string()
        )
    );
    cluster.stop().await;
}
