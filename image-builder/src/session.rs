//! A BuildKit session that serves build secrets to a build through the Engine
//! API's `/build`.
//!
//! BuildKit asks the client for secrets (`RUN --mount=type=secret`) over a session:
//! the client opens `/session`, the engine upgrades the connection to HTTP/2 and
//! from then on calls the client as a gRPC server. bollard opens such a session
//! for its BuildKit builds, but with registry credentials only and no way to add
//! a secrets provider, so a build with secrets runs on this one instead.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bollard_buildkit_proto::health::health_check_response::ServingStatus;
use bollard_buildkit_proto::health::health_server::{Health, HealthServer};
use bollard_buildkit_proto::health::{
    HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse,
};
use bollard_buildkit_proto::moby::buildkit::secrets::v1::secrets_server::{Secrets, SecretsServer};
use bollard_buildkit_proto::moby::buildkit::secrets::v1::{GetSecretRequest, GetSecretResponse};
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};

/// The gRPC methods the session offers; the engine routes only these to it.
const METHODS: &[&str] = &[
    "/grpc.health.v1.Health/Check",
    "/moby.buildkit.secrets.v1.Secrets/GetSecret",
];

/// A running session; closed when dropped.
pub struct Session {
    serve: JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.serve.abort();
    }
}

/// Where the engine listens, as `DOCKER_HOST` says (bollard's default otherwise).
enum Address {
    Unix(String),
    Tcp(String),
}

fn address() -> Result<Address> {
    let unsupported = |host: &str| {
        Error::Invalid {
        what: "--ca-cert".into(),
        reason: format!(
            "it needs a BuildKit session, which image-builder opens over a local socket or plain TCP, and DOCKER_HOST is `{host}`"
        ),
        fix: "build on an engine reached through its socket (unset DOCKER_HOST, or `unix://…`), or bake the CA into the base image".into(),
    }
    };
    let host = std::env::var("DOCKER_HOST").unwrap_or_default();
    if host.is_empty() {
        return Ok(Address::Unix("/var/run/docker.sock".into()));
    }
    if let Some(p) = host.strip_prefix("unix://") {
        return Ok(Address::Unix(p.to_string()));
    }
    let tls = std::env::var("DOCKER_TLS_VERIFY").is_ok_and(|v| !v.is_empty());
    match host.strip_prefix("tcp://") {
        Some(a) if !tls => Ok(Address::Tcp(a.to_string())),
        _ => Err(unsupported(&host)),
    }
}

trait Conn: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Conn for T {}

async fn connect(a: &Address) -> std::io::Result<Box<dyn Conn>> {
    Ok(match a {
        Address::Unix(p) => Box::new(tokio::net::UnixStream::connect(p).await?),
        Address::Tcp(a) => Box::new(tokio::net::TcpStream::connect(a).await?),
    })
}

/// Open a session named `id` that hands out `secrets` (id → content).
pub async fn start(id: &str, secrets: HashMap<String, Bytes>) -> Result<Session> {
    let failed = |reason: String| Error::Engine {
        reason: format!("cannot open a BuildKit session: {reason}"),
        fix: "check `docker info` (BuildKit must be available) and the engine's logs".into(),
    };
    let addr = address()?;
    let stream = connect(&addr).await.map_err(|e| failed(e.to_string()))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| failed(e.to_string()))?;
    let connection = tokio::spawn(conn.with_upgrades());
    let mut req = hyper::Request::post("/session")
        .header(hyper::header::HOST, "docker")
        .header(hyper::header::CONNECTION, "Upgrade")
        .header(hyper::header::UPGRADE, "h2c")
        .header("X-Docker-Expose-Session-Uuid", id)
        .header("X-Docker-Expose-Session-Name", "image-builder");
    for m in METHODS {
        req = req.header("X-Docker-Expose-Session-Grpc-Method", *m);
    }
    let req = req
        .body(Empty::<Bytes>::new())
        .map_err(|e| failed(e.to_string()))?;
    let res = sender
        .send_request(req)
        .await
        .map_err(|e| failed(e.to_string()))?;
    if res.status() != hyper::StatusCode::SWITCHING_PROTOCOLS {
        connection.abort();
        return Err(failed(format!("the engine answered {}", res.status())));
    }
    let upgraded = hyper::upgrade::on(res)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let io = Upgraded(TokioIo::new(upgraded));
    let secrets = SecretStore(Arc::new(secrets));
    let serve = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(HealthServer::new(Healthy))
            .add_service(SecretsServer::new(secrets))
            .serve_with_incoming(futures::stream::iter([Ok::<_, std::io::Error>(io)]))
            .await;
        connection.abort();
    });
    Ok(Session { serve })
}

/// The upgraded connection, as the gRPC server takes it.
struct Upgraded(TokioIo<hyper::upgrade::Upgraded>);

impl tonic::transport::server::Connected for Upgraded {
    type ConnectInfo = ();
    fn connect_info(&self) {}
}

impl AsyncRead for Upgraded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Upgraded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// The engine checks that the session is alive before each use.
struct Healthy;

#[tonic::async_trait]
impl Health for Healthy {
    async fn check(
        &self,
        _: tonic::Request<HealthCheckRequest>,
    ) -> std::result::Result<tonic::Response<HealthCheckResponse>, tonic::Status> {
        Ok(tonic::Response::new(HealthCheckResponse {
            status: ServingStatus::Serving as i32,
        }))
    }

    async fn list(
        &self,
        _: tonic::Request<HealthListRequest>,
    ) -> std::result::Result<tonic::Response<HealthListResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("list"))
    }

    type WatchStream =
        futures::stream::Empty<std::result::Result<HealthCheckResponse, tonic::Status>>;

    async fn watch(
        &self,
        _: tonic::Request<HealthCheckRequest>,
    ) -> std::result::Result<tonic::Response<Self::WatchStream>, tonic::Status> {
        Err(tonic::Status::unimplemented("watch"))
    }
}

struct SecretStore(Arc<HashMap<String, Bytes>>);

#[tonic::async_trait]
impl Secrets for SecretStore {
    async fn get_secret(
        &self,
        request: tonic::Request<GetSecretRequest>,
    ) -> std::result::Result<tonic::Response<GetSecretResponse>, tonic::Status> {
        let id = &request.get_ref().id;
        match self.0.get(id) {
            Some(data) => Ok(tonic::Response::new(GetSecretResponse {
                data: data.to_vec(),
            })),
            None => Err(tonic::Status::not_found(format!(
                "image-builder has no secret `{id}`"
            ))),
        }
    }
}
