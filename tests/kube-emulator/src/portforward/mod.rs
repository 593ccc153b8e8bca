//! The `pods/{name}/portforward` subresource, in the three transports real
//! clients use:
//!
//! * a WebSocket with subprotocol `SPDY/3.1+portforward.k8s.io`, whose binary
//!   messages carry a SPDY/3.1 connection: what `kubectl port-forward` tries
//!   first;
//! * an HTTP upgrade to `SPDY/3.1` with `X-Stream-Protocol-Version:
//!   portforward.k8s.io`: kubectl's fallback ([`session`] serves both);
//! * a WebSocket with subprotocol `v4.channel.k8s.io` and `?ports=`: what
//!   kube-rs's `Api::portforward` speaks ([`channel`]).
//!
//! The connection to the pod's port is the kubelet's
//! ([`kubelet::connect_port`]). A fault rule matching the path with
//! `closeAfterMs` drops the whole connection, without a goodbye, that long
//! after the upgrade.

mod channel;
mod session;
mod spdy;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::cluster::Cluster;
use crate::faults::Faults;
use crate::kubelet;
use crate::resources;
use crate::server::ServerState;
use crate::status::{ApiError, ApiResult};

const STREAM_PROTOCOL: &str = "portforward.k8s.io";
const TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";
const CHANNEL_PROTOCOL: &str = "v4.channel.k8s.io";
const STREAM_PROTOCOL_HEADER: &str = "x-stream-protocol-version";

/// Where a forward's connections go; `Err` is the message for the error stream.
trait Dial: Send + Sync + 'static {
    fn dial(&self, port: u16) -> impl Future<Output = Result<TcpStream, String>> + Send;
}

/// The pod a forward reaches, through the kubelet.
struct Target {
    cluster: Arc<Cluster>,
    pod: Value,
}

impl Dial for Target {
    async fn dial(&self, port: u16) -> Result<TcpStream, String> {
        kubelet::connect_port(&self.cluster, &self.pod, port).await
    }
}

/// The namespace and pod of a `…/namespaces/{ns}/pods/{name}/portforward` path.
pub fn pod_of(path: &str) -> Option<(&str, &str)> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["api", "v1", "namespaces", ns, "pods", name, "portforward"] => Some((ns, name)),
        _ => None,
    }
}

fn header_has(parts: &Parts, name: impl header::AsHeaderName, value: &str) -> bool {
    parts
        .headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case(value))
}

/// `ports=80,8080&ports=9090`, as the kubelet reads it for the channel protocol.
fn ports(query: Option<&str>) -> ApiResult<Vec<u16>> {
    let values: Vec<String> = query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(k, _)| *k == "ports")
        .map(|(_, v)| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    if values.is_empty() {
        return Err(ApiError::bad_request(
            "query parameter \"ports\" is required: name the pod's ports, as in ?ports=8080",
        ));
    }
    let mut ports = Vec::new();
    for value in values {
        for p in value.split(',') {
            match p.trim().parse::<u16>() {
                Ok(n) if n > 0 => ports.push(n),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "unable to parse {p:?} as a port: ports are numbers from 1 to 65535"
                    )));
                }
            }
        }
    }
    Ok(ports)
}

/// Checks the pod as the API server and the kubelet do, then upgrades the connection.
pub async fn serve(
    st: &ServerState,
    mut parts: Parts,
    ns: &str,
    name: &str,
    close_after: Option<Duration>,
) -> ApiResult<Response> {
    if parts.method != Method::GET && parts.method != Method::POST {
        return Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource (pods/portforward)",
        ));
    }
    // Since Kubernetes 1.30 a WebSocket GET needs `create` too, as the SPDY POST always did.
    if !st
        .faults
        .allowed("create", "", "pods/portforward", Some(ns))
    {
        return Err(Faults::forbidden(
            "create",
            "",
            "pods/portforward",
            Some(name),
            Some(ns),
        ));
    }
    let pod = st.cluster.store.get(resources::pods(), ns, name)?;
    if pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("Pending")
        .to_string();
    if phase != "Running" {
        return Err(ApiError::bad_request(format!(
            "unable to upgrade connection: pod {name} is not running (phase {phase}): a port-forward needs the pod's sandbox running"
        )));
    }
    let target = Arc::new(Target {
        cluster: st.cluster.clone(),
        pod,
    });
    let lifetime = Lifetime {
        shutdown: st.cluster.shutdown_signal(),
        close_after,
    };
    if header_has(&parts, header::UPGRADE, "websocket") {
        let query = parts.uri.query().map(String::from);
        let ws = WebSocketUpgrade::from_request_parts(&mut parts, &())
            .await
            .map_err(|r| ApiError::bad_request(r.body_text()))?
            .protocols([TUNNEL_PROTOCOL, CHANNEL_PROTOCOL]);
        let requested: Vec<String> = ws
            .requested_protocols()
            .filter_map(|p| p.to_str().ok().map(String::from))
            .collect();
        return match ws.selected_protocol().and_then(|p| p.to_str().ok()) {
            Some(TUNNEL_PROTOCOL) => Ok(ws.on_upgrade(move |socket| {
                lifetime.run(async move {
                    let (ours, theirs) = tokio::io::duplex(256 * 1024);
                    tokio::join!(session::serve(ours, target), tunnel(socket, theirs));
                })
            })),
            Some(_) => {
                let ports = ports(query.as_deref())?;
                Ok(
                    ws.on_upgrade(move |socket| {
                        lifetime.run(channel::serve(socket, target, ports))
                    }),
                )
            }
            None => Err(ApiError::bad_request(format!(
                "unable to upgrade: none of the requested subprotocols {requested:?} is served; port-forward speaks {TUNNEL_PROTOCOL} and {CHANNEL_PROTOCOL}"
            ))),
        };
    }
    if header_has(&parts, header::UPGRADE, "SPDY/3.1") {
        let offered: Vec<String> = parts
            .headers
            .get_all(STREAM_PROTOCOL_HEADER)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|v| v.trim().to_string())
            .collect();
        if offered.is_empty() {
            return Err(ApiError::bad_request(format!(
                "unable to upgrade: {STREAM_PROTOCOL_HEADER} is required"
            )));
        }
        if !offered.iter().any(|p| p == STREAM_PROTOCOL) {
            return Err(ApiError::forbidden(format!(
                "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server accepts [\"{STREAM_PROTOCOL}\"]"
            )));
        }
        let on_upgrade = parts
            .extensions
            .remove::<hyper::upgrade::OnUpgrade>()
            .ok_or_else(|| ApiError::bad_request("this connection cannot be upgraded"))?;
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    lifetime
                        .run(session::serve(TokioIo::new(upgraded), target))
                        .await
                }
                Err(e) => tracing::debug!("port-forward upgrade failed: {e}"),
            }
        });
        let mut resp = (StatusCode::SWITCHING_PROTOCOLS, Body::empty()).into_response();
        let h = resp.headers_mut();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
        h.insert(
            STREAM_PROTOCOL_HEADER,
            HeaderValue::from_static(STREAM_PROTOCOL),
        );
        return Ok(resp);
    }
    Err(ApiError::bad_request("Upgrade request required"))
}

/// Copies one forwarded connection until the pod's side ends: the pod's
/// bytes go out framed by `wrap`, the client's chunks go to the pod, and the
/// end of the client's chunks half-closes the pod's connection. `Err` is the
/// message for the error stream when reading from the pod failed.
async fn copy<T>(
    port: u16,
    tcp: TcpStream,
    mut from_client: mpsc::Receiver<Bytes>,
    out: &mpsc::Sender<T>,
    wrap: impl Fn(Bytes) -> T,
) -> Result<(), String> {
    let (mut pod_rd, mut pod_wr) = tcp.into_split();
    // The client's side may outlive the pod's; it ends when the client's chunks do.
    tokio::spawn(async move {
        while let Some(chunk) = from_client.recv().await {
            if pod_wr.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = pod_wr.shutdown().await;
    });
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match pod_rd.read(&mut buf).await {
            Ok(0) => return Ok(()),
            Ok(n) => {
                if out
                    .send(wrap(Bytes::copy_from_slice(&buf[..n])))
                    .await
                    .is_err()
                {
                    return Ok(());
                }
            }
            Err(e) => {
                return Err(format!(
                    "error forwarding port {port}: reading from the pod: {e}"
                ));
            }
        }
    }
}

/// How long a forward's connection may live: until the emulator stops, or
/// until an injected drop.
struct Lifetime {
    shutdown: tokio::sync::watch::Receiver<bool>,
    close_after: Option<Duration>,
}

impl Lifetime {
    async fn run(mut self, connection: impl Future<Output = ()>) {
        let dropped = async {
            match self.close_after {
                Some(after) => tokio::time::sleep(after).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = connection => {}
            _ = self.shutdown.wait_for(|s| *s) => {}
            () = dropped => tracing::debug!("port-forward dropped by a fault rule"),
        }
    }
}

/// Carries a SPDY connection in a WebSocket's binary messages, as
/// kubectl's tunnelling connection does, until either side ends.
async fn tunnel(socket: WebSocket, io: DuplexStream) {
    let (mut sink, mut incoming) = socket.split();
    let (mut rd, mut wr) = tokio::io::split(io);
    let inbound = async move {
        while let Some(Ok(message)) = incoming.next().await {
            match message {
                Message::Binary(bytes) if wr.write_all(&bytes).await.is_err() => break,
                Message::Close(_) => break,
                _ => {}
            }
        }
        // End of the client's bytes: the session reads EOF and ends.
        let _ = wr.shutdown().await;
        std::future::pending::<()>().await
    };
    let outbound = async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let chunk = Bytes::copy_from_slice(&buf[..n]);
                    if sink.send(Message::Binary(chunk)).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = sink.send(Message::Close(None)).await;
    };
    tokio::select! {
        () = inbound => {}
        () = outbound => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tokio::io::AsyncReadExt;

    use super::spdy::{Frame, HeaderReader, HeaderWriter};
    use super::*;
    use crate::emulator::{Config, Emulator};
    use crate::store::WriteOptions;

    /// A scripted emulator with the Running pod `web`.
    async fn emulator() -> Emulator {
        let emulator = Emulator::start(Config {
            preload: vec!["web:1".into()],
            ..Config::default()
        })
        .await
        .unwrap();
        let pod = json!({
            "metadata": { "name": "web" },
            "spec": { "containers": [{ "name": "web", "image": "web:1" }] },
        });
        let store = &emulator.cluster().store;
        store
            .create(
                resources::pods(),
                "default",
                pod,
                &WriteOptions::manager("test"),
            )
            .unwrap();
        for _ in 0..100 {
            let pod = store.get(resources::pods(), "default", "web").unwrap();
            if pod.pointer("/status/phase") == Some(&json!("Running")) {
                return emulator;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the scripted pod never ran");
    }

    /// Sends a request head; returns the connection and the response head.
    async fn request(emulator: &Emulator, head: &str) -> (TcpStream, String) {
        let addr = emulator.url().trim_start_matches("http://").to_string();
        let mut conn = TcpStream::connect(addr).await.unwrap();
        let path = "/api/v1/namespaces/default/pods/web/portforward";
        let head = head.replace("PATH", path);
        conn.write_all(format!("{head}Host: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut got = Vec::new();
        while !got.ends_with(b"\r\n\r\n") {
            got.push(conn.read_u8().await.unwrap());
        }
        (conn, String::from_utf8(got).unwrap())
    }

    /// The status code and `metav1.Status` message of a refused upgrade.
    async fn refused(emulator: &Emulator, head: &str) -> (String, String) {
        let (mut conn, response) = request(emulator, head).await;
        let code = response.split_whitespace().nth(1).unwrap().to_string();
        let length: usize = response
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(String::from)
            })
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let mut body = vec![0; length];
        conn.read_exact(&mut body).await.unwrap();
        let status: Value = serde_json::from_slice(&body).unwrap();
        (code, status["message"].as_str().unwrap().to_string())
    }

    const WS: &str = "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

    #[tokio::test]
    async fn upgrades_that_cannot_be_served_are_refused_as_the_api_server_refuses_them() {
        let emulator = emulator().await;
        let cases = [
            ("GET PATH HTTP/1.1\r\n".to_string(), "400", "Upgrade request required".to_string()),
            (
                format!("GET PATH HTTP/1.1\r\n{WS}Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n"),
                "400",
                format!("unable to upgrade: none of the requested subprotocols [\"v5.channel.k8s.io\"] is served; port-forward speaks {TUNNEL_PROTOCOL} and {CHANNEL_PROTOCOL}"),
            ),
            (
                format!("GET PATH HTTP/1.1\r\n{WS}Sec-WebSocket-Protocol: v4.channel.k8s.io\r\n"),
                "400",
                "query parameter \"ports\" is required: name the pod's ports, as in ?ports=8080".to_string(),
            ),
            (
                "POST PATH HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n".to_string(),
                "400",
                "unable to upgrade: x-stream-protocol-version is required".to_string(),
            ),
            (
                "POST PATH HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: channel.k8s.io\r\n".to_string(),
                "403",
                "unable to upgrade: unable to negotiate protocol: client supports [\"channel.k8s.io\"], server accepts [\"portforward.k8s.io\"]".to_string(),
            ),
            (
                "DELETE PATH HTTP/1.1\r\n".to_string(),
                "405",
                "the server does not allow this method on the requested resource (pods/portforward)".to_string(),
            ),
        ];
        for (head, code, message) in cases {
            assert_eq!(
                refused(&emulator, &head).await,
                (code.to_string(), message),
                "{head}"
            );
        }
        let missing = refused(
            &emulator,
            "GET /api/v1/namespaces/default/pods/ghost/portforward HTTP/1.1\r\n",
        )
        .await;
        assert_eq!(
            missing,
            ("404".to_string(), "pods \"ghost\" not found".to_string())
        );
        emulator.stop().await;
    }

    #[tokio::test]
    async fn the_spdy_upgrade_serves_stream_pairs_and_the_scripted_runtime_says_nothing_listens() {
        let emulator = emulator().await;
        let (mut conn, response) = request(
            &emulator,
            "POST PATH HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\n",
        )
        .await;
        assert!(
            response.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
            "{response}"
        );
        assert!(
            response.contains("x-stream-protocol-version: portforward.k8s.io\r\n"),
            "{response}"
        );
        let mut hw = HeaderWriter::default();
        for (id, kind) in [(1, "error"), (3, "data")] {
            let headers = [("streamtype", kind), ("port", "8080"), ("requestid", "0")]
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .to_vec();
            let frame = Frame::SynStream {
                stream_id: id,
                fin: false,
                headers,
            };
            conn.write_all(&frame.encode(&mut hw)).await.unwrap();
        }
        let mut hr = HeaderReader::default();
        let mut error = Vec::new();
        loop {
            match spdy::read_frame(&mut conn, &mut hr).await.unwrap().unwrap() {
                Frame::Data {
                    stream_id: 1,
                    fin,
                    data,
                } => {
                    error.extend_from_slice(&data);
                    if fin {
                        break;
                    }
                }
                Frame::SynReply { .. } | Frame::Data { .. } => {}
                other => panic!("{other:?}"),
            }
        }
        let error = String::from_utf8(error).unwrap();
        assert!(
            error.starts_with("error forwarding port 8080 to pod web_default, uid ")
                && error.ends_with(": the scripted runtime runs no containers, so nothing listens on port 8080; start the emulator with --runtime docker"),
            "{error}"
        );
        emulator.stop().await;
    }

    #[test]
    fn ports_are_read_as_the_kubelet_reads_them() {
        assert_eq!(ports(Some("&ports=80%2C1234")).unwrap(), vec![80, 1234]);
        assert_eq!(ports(Some("ports=80&ports=9090")).unwrap(), vec![80, 9090]);
        assert_eq!(
            ports(None).unwrap_err().message,
            "query parameter \"ports\" is required: name the pod's ports, as in ?ports=8080"
        );
        assert_eq!(
            ports(Some("ports=0")).unwrap_err().message,
            "unable to parse \"0\" as a port: ports are numbers from 1 to 65535"
        );
    }

    #[test]
    fn only_the_pod_subresource_path_is_a_port_forward() {
        assert_eq!(
            pod_of("/api/v1/namespaces/todo/pods/web-1/portforward"),
            Some(("todo", "web-1"))
        );
        assert_eq!(pod_of("/api/v1/namespaces/todo/pods/web-1/log"), None);
    }
}
