//! The LLBBridge gRPC client a gateway frontend uses to talk to BuildKit.
//!
//! BuildKit starts the frontend container with one HTTP/2 connection on its stdin
//! and stdout. `bollard-buildkit-proto` carries LLB and the control API but not the
//! gateway service, so its messages are declared here from BuildKit's
//! `frontend/gateway/pb/gateway.proto` (field numbers as in BuildKit v0.8, the one in
//! Docker 20.10; later versions keep them).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use bollard_buildkit_proto::fsutil::types::Stat;
use bollard_buildkit_proto::google::rpc::Status as RpcStatus;
use bollard_buildkit_proto::pb;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::client::Grpc;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint, Uri};

#[derive(Clone, PartialEq, prost::Message)]
pub struct SolveRequest {
    #[prost(message, optional, tag = "1")]
    pub definition: Option<pb::Definition>,
    #[prost(string, tag = "2")]
    pub frontend: String,
    #[prost(map = "string, string", tag = "3")]
    pub frontend_opt: HashMap<String, String>,
    #[prost(bool, tag = "5")]
    pub allow_result_return: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SolveResponse {
    /// Older daemons answer with the bare reference id.
    #[prost(string, tag = "1")]
    pub ref_id: String,
    #[prost(message, optional, tag = "3")]
    pub result: Option<GatewayResult>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GatewayResult {
    #[prost(oneof = "ResultRef", tags = "1, 3")]
    pub result: Option<ResultRef>,
    #[prost(map = "string, bytes", tag = "10")]
    pub metadata: HashMap<String, Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum ResultRef {
    /// The reference id alone (what v0.8 returns without `allowResultArrayRef`).
    #[prost(string, tag = "1")]
    Id(String),
    #[prost(message, tag = "3")]
    Ref(RefMessage),
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RefMessage {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(message, optional, tag = "2")]
    pub def: Option<pb::Definition>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReturnRequest {
    #[prost(message, optional, tag = "1")]
    pub result: Option<GatewayResult>,
    #[prost(message, optional, tag = "2")]
    pub error: Option<RpcStatus>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReturnResponse {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ResolveImageConfigRequest {
    #[prost(string, tag = "1")]
    pub r#ref: String,
    #[prost(message, optional, tag = "2")]
    pub platform: Option<pb::Platform>,
    #[prost(string, tag = "3")]
    pub resolve_mode: String,
    #[prost(string, tag = "4")]
    pub log_name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ResolveImageConfigResponse {
    #[prost(string, tag = "1")]
    pub digest: String,
    #[prost(bytes = "vec", tag = "2")]
    pub config: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadFileRequest {
    #[prost(string, tag = "1")]
    pub r#ref: String,
    #[prost(string, tag = "2")]
    pub file_path: String,
    #[prost(message, optional, tag = "3")]
    pub range: Option<FileRange>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct FileRange {
    #[prost(int64, tag = "1")]
    pub offset: i64,
    #[prost(int64, tag = "2")]
    pub length: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadFileResponse {
    #[prost(bytes = "vec", tag = "1")]
    pub data: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadDirRequest {
    #[prost(string, tag = "1")]
    pub r#ref: String,
    #[prost(string, tag = "2")]
    pub dir_path: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadDirResponse {
    #[prost(message, repeated, tag = "1")]
    pub entries: Vec<Stat>,
}

const SERVICE: &str = "/moby.buildkit.v1.frontend.LLBBridge/";

/// A connection to BuildKit's LLBBridge.
#[derive(Clone)]
pub struct Bridge {
    grpc: Grpc<Channel>,
}

/// The frontend's stdin and stdout as one duplex stream.
struct Stdio {
    rd: Box<dyn AsyncRead + Send + Unpin>,
    wr: Box<dyn AsyncWrite + Send + Unpin>,
}

impl Stdio {
    /// BuildKit hands the frontend pipes: read and write them without blocking, so
    /// no thread sits in a read the runtime cannot interrupt. Anything else (a
    /// socket, a terminal) goes through tokio's blocking stdio.
    fn open() -> Self {
        use std::os::fd::AsFd as _;
        use tokio::net::unix::pipe;
        let rd: Box<dyn AsyncRead + Send + Unpin> = match std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .and_then(pipe::Receiver::from_owned_fd)
        {
            Ok(r) => Box::new(r),
            Err(_) => Box::new(tokio::io::stdin()),
        };
        let wr: Box<dyn AsyncWrite + Send + Unpin> = match std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .and_then(pipe::Sender::from_owned_fd)
        {
            Ok(w) => Box::new(w),
            Err(_) => Box::new(tokio::io::stdout()),
        };
        Stdio { rd, wr }
    }
}

impl AsyncRead for Stdio {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.rd).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stdio {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.wr).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.wr).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.wr).poll_shutdown(cx)
    }
}

impl Bridge {
    /// Speak HTTP/2 over stdin/stdout. The connection can be made once: BuildKit
    /// offers no other.
    pub async fn over_stdio() -> Result<Bridge, tonic::transport::Error> {
        let io = Mutex::new(Some(Stdio::open()));
        let connector = tower::service_fn(move |_: Uri| {
            let io = io.lock().expect("stdio lock").take();
            async move {
                io.map(TokioIo::new).ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::BrokenPipe,
                        "the connection to BuildKit on stdin/stdout is gone",
                    )
                })
            }
        });
        let channel = Endpoint::from_static("http://buildkit.frontend")
            .connect_with_connector(connector)
            .await?;
        Ok(Bridge {
            grpc: Grpc::new(channel).max_decoding_message_size(64 << 20),
        })
    }

    async fn call<Q, R>(&mut self, method: &'static str, req: Q) -> Result<R, tonic::Status>
    where
        Q: prost::Message + Send + Sync + 'static,
        R: prost::Message + Default + Send + Sync + 'static,
    {
        self.grpc
            .ready()
            .await
            .map_err(|e| tonic::Status::unavailable(format!("BuildKit gateway: {e}")))?;
        let path = PathAndQuery::try_from(format!("{SERVICE}{method}"))
            .map_err(|e| tonic::Status::internal(e.to_string()))?;
        let codec = tonic_prost::ProstCodec::<Q, R>::default();
        Ok(self
            .grpc
            .unary(tonic::Request::new(req), path, codec)
            .await?
            .into_inner())
    }

    pub async fn solve(&mut self, req: SolveRequest) -> Result<SolveResponse, tonic::Status> {
        self.call("Solve", req).await
    }

    pub async fn resolve_image_config(
        &mut self,
        req: ResolveImageConfigRequest,
    ) -> Result<ResolveImageConfigResponse, tonic::Status> {
        self.call("ResolveImageConfig", req).await
    }

    /// The file's bytes, or only the first `limit` of them.
    pub async fn read_file(
        &mut self,
        r#ref: &str,
        path: &str,
        limit: Option<i64>,
    ) -> Result<Vec<u8>, tonic::Status> {
        let resp: ReadFileResponse = self
            .call(
                "ReadFile",
                ReadFileRequest {
                    r#ref: r#ref.to_string(),
                    file_path: path.to_string(),
                    range: limit.map(|length| FileRange { offset: 0, length }),
                },
            )
            .await?;
        Ok(resp.data)
    }

    pub async fn read_dir(&mut self, r#ref: &str, path: &str) -> Result<Vec<Stat>, tonic::Status> {
        let resp: ReadDirResponse = self
            .call(
                "ReadDir",
                ReadDirRequest {
                    r#ref: r#ref.to_string(),
                    dir_path: path.to_string(),
                },
            )
            .await?;
        Ok(resp.entries)
    }

    pub async fn ret(&mut self, req: ReturnRequest) -> Result<ReturnResponse, tonic::Status> {
        self.call("Return", req).await
    }
}

impl SolveResponse {
    /// The result reference, however the daemon spelled it.
    pub fn into_result(self) -> GatewayResult {
        match self.result {
            Some(r) if r.result.is_some() => r,
            Some(mut r) => {
                r.result = Some(ResultRef::Id(self.ref_id));
                r
            }
            None => GatewayResult {
                result: Some(ResultRef::Id(self.ref_id)),
                metadata: HashMap::new(),
            },
        }
    }
}

impl GatewayResult {
    pub fn ref_id(&self) -> &str {
        match &self.result {
            Some(ResultRef::Id(id)) => id,
            Some(ResultRef::Ref(r)) => &r.id,
            None => "",
        }
    }
}
