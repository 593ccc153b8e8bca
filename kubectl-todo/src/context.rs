//! Connecting to the cluster with kubectl's conventions: `--kubeconfig`
//! (else `$KUBECONFIG`, else `~/.kube/config`), `--context`, `-n`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};

use crate::settings::Settings;

pub use timeout::TimedOut;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot load the kubeconfig")]
    Kubeconfig(#[source] kube::config::KubeconfigError),
    #[error("cannot build a client for context {context:?}")]
    Client {
        context: String,
        #[source]
        source: kube::Error,
    },
    #[error("cannot reach the cluster at {server} (context {context}): {cause}")]
    Unreachable {
        server: String,
        context: String,
        cause: String,
    },
}

impl crate::report::Hinted for Error {
    fn hint(&self) -> Option<String> {
        Some(match self {
            Error::Kubeconfig(_) => "start a local cluster (`minikube start`) or point --kubeconfig at a kubeconfig file".into(),
            Error::Client { .. } => "list the contexts with `kubectl config get-contexts` and pick one with --context".into(),
            Error::Unreachable { .. } => "run `kubectl todo doctor` to see why, then run the command again".into(),
        })
    }
}
crate::report::hinted!(Error);

/// The kubeconfig as kubectl reads it: `path` (`--kubeconfig`), else the
/// files listed in `$KUBECONFIG` merged, skipping those that do not exist,
/// else `~/.kube/config`.
pub fn read_kubeconfig(path: Option<&Path>) -> Result<Kubeconfig, KubeconfigError> {
    if let Some(path) = path {
        return Kubeconfig::read_from(path);
    }
    let listed: Vec<PathBuf> = std::env::var_os("KUBECONFIG")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    let listed: Vec<PathBuf> = listed
        .into_iter()
        .filter(|p| !p.as_os_str().is_empty())
        .collect();
    let Some(first) = listed.first().cloned() else {
        return Kubeconfig::read();
    };
    let existing: Vec<&PathBuf> = listed.iter().filter(|p| p.exists()).collect();
    if existing.is_empty() {
        // Nothing to merge: the first one is the file to create.
        return Kubeconfig::read_from(first);
    }
    existing
        .into_iter()
        .try_fold(Kubeconfig::default(), |merged, p| {
            Kubeconfig::read_from(p).and_then(|c| merged.merge(c))
        })
}

/// A client and the namespace the command works in.
#[derive(Clone)]
pub struct Connection {
    pub client: kube::Client,
    pub namespace: String,
    /// The kubeconfig context in use.
    pub context: String,
    /// The API server's host, as the kubeconfig names it.
    pub server_host: String,
}

/// Connects as kubectl would, to work in `namespace` (the project's, which
/// `-n` has already overridden: [`Settings::load_project`]).
pub async fn connect(global: &Settings, namespace: &str) -> Result<Connection, Error> {
    let kubeconfig = read_kubeconfig(global.kubeconfig.as_deref()).map_err(Error::Kubeconfig)?;
    let context = global
        .context
        .clone()
        .or_else(|| kubeconfig.current_context.clone())
        .unwrap_or_default();
    let options = KubeConfigOptions {
        context: global.context.clone(),
        ..KubeConfigOptions::default()
    };
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(Error::Kubeconfig)?;
    // `http::Uri` keeps an IPv6 host's brackets; URLs add their own.
    let server_host = config
        .cluster_url
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let server = config
        .cluster_url
        .authority()
        .map(ToString::to_string)
        .unwrap_or_default();
    // The connector's own limit covers what the per-request one does not:
    // connecting for a watch.
    config.connect_timeout = global.request_timeout;
    let client =
        client(config, global.request_timeout, server).map_err(|source| Error::Client {
            context: context.clone(),
            source,
        })?;
    Ok(Connection {
        client,
        namespace: namespace.to_string(),
        context,
        server_host,
    })
}

/// Watches that must notice a silent server soon (a rollout wait, followed
/// logs): the server ends each within 15 s, the watcher resumes it from
/// where it was (no new listing), and one that sends nothing for longer
/// (and its grace) has lost the server: see [`timeout`].
pub fn live_watcher() -> kube::runtime::watcher::Config {
    kube::runtime::watcher::Config::default().timeout(15)
}

/// TCP keep-alive on every connection: a watch or a followed log stream to
/// a server whose host vanished without a word (no FIN, no RST) fails once
/// the probes go unanswered, about a minute and a half after it fell
/// silent, instead of waiting forever.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_PROBES: u32 = 3;

/// kube's own client stack (base URI, retries of the server's 429/503,
/// credentials, extra headers, TLS, connect timeout) on a connector with
/// TCP keep-alive, under the `--request-timeout` layer.
fn client(
    config: kube::Config,
    request_timeout: Option<Duration>,
    server: String,
) -> Result<kube::Client, kube::Error> {
    use kube::client::ConfigExt;
    use tower::ServiceBuilder;

    let layer = timeout::Layer::new(request_timeout, server);
    if config.proxy_url.is_some() {
        // Proxies are kube's to connect through (or refuse, as this build
        // has no proxy support): its builder says which.
        return Ok(kube::client::ClientBuilder::try_from(config)?
            .with_layer(&layer)
            .build());
    }
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_keepalive(Some(KEEPALIVE_IDLE));
    http.set_keepalive_interval(Some(KEEPALIVE_INTERVAL));
    http.set_keepalive_retries(Some(KEEPALIVE_PROBES));
    let mut connector =
        hyper_timeout::TimeoutConnector::new(config.rustls_https_connector_with_connector(http)?);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    let http: hyper_util::client::legacy::Client<_, kube::client::Body> =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector);
    let service = ServiceBuilder::new()
        .layer(layer)
        .map_response(|answer: http::Response<hyper::body::Incoming>| {
            answer.map(|body| {
                Box::new(http_body_util::BodyExt::map_err(
                    body,
                    tower::BoxError::from,
                )) as Box<kube::client::DynBody>
            })
        })
        .layer(config.base_uri_layer())
        .option_layer(config.default_retry.then(|| {
            tower::retry::RetryLayer::new(kube::client::retry::RetryPolicy::server_retry())
        }))
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(tower::BoxError::from)
        .service(http);
    Ok(kube::Client::new(service, config.default_namespace))
}

/// A request that never got an answer from the API server is one line and
/// a pointer to doctor; any other error is left as it is.
pub fn unreachable(err: anyhow::Error, conn: &Connection) -> anyhow::Error {
    let transport = err
        .chain()
        .find_map(|e| match e.downcast_ref::<kube::Error>() {
            Some(kube::Error::Api(_)) | None => None,
            Some(k) => Some(k),
        });
    match transport {
        Some(k) => {
            let root = std::iter::successors(Some(k as &dyn std::error::Error), |e| e.source())
                .last()
                .map(ToString::to_string)
                .unwrap_or_default();
            Error::Unreachable {
                server: conn.server_host.clone(),
                context: conn.context.clone(),
                cause: root,
            }
            .into()
        }
        None => err,
    }
}

/// The texts of an error and its causes, each once, as they may be shown: a
/// failed credential plugin appears with its exit status and its stderr,
/// never its stdout (which holds the token), and an API error as the
/// server's message, not as a Rust debug dump.
pub fn causes(err: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut replacements: Vec<(String, String)> = Vec::new();
    let mut level = Some(err);
    while let Some(e) = level {
        if let Some(safe) = shown_as(e) {
            replacements.push((e.to_string(), safe));
        }
        level = e.source();
    }
    let mut out: Vec<String> = Vec::new();
    let mut level = Some(err);
    while let Some(e) = level {
        let text = replacements
            .iter()
            .fold(e.to_string(), |t, (raw, safe)| t.replace(raw, safe));
        // Wrappers repeat their cause's text: show it once.
        if !out.iter().any(|o| o.contains(&text)) {
            out.push(text);
        }
        // The server's answer was said in full: its Status, the cause
        // below, would only say it again in other words.
        if matches!(e.downcast_ref::<kube::Error>(), Some(kube::Error::Api(_))) {
            break;
        }
        level = e.source();
    }
    out
}

/// [`causes`] on one line.
pub fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    causes(err).join(": ")
}

fn shown_as(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(kube::client::AuthError::AuthExecRun { out, .. }) =
        e.downcast_ref::<kube::client::AuthError>()
    {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stderr = stderr.trim();
        return Some(if stderr.is_empty() {
            format!(
                "the kubeconfig's credential plugin (users[].user.exec) failed ({})",
                out.status
            )
        } else {
            format!(
                "the kubeconfig's credential plugin (users[].user.exec) failed ({}): {stderr}",
                out.status
            )
        });
    }
    // The middleware's own error says it all; kube's wrapper adds a type name.
    if let Some(kube::Error::Service(inner)) = e.downcast_ref::<kube::Error>() {
        return Some(inner.to_string());
    }
    if let Some(kube::Error::Api(status)) = e.downcast_ref::<kube::Error>() {
        return Some(format!(
            "the API server answered {} {}: {}",
            status.code, status.reason, status.message
        ));
    }
    None
}

/// `--request-timeout`: every request to the API server either ends within
/// it or fails saying which server did not answer in how long. Watches,
/// followed logs and upgraded connections (exec, port-forward) last as long
/// as they are wanted, once answered. A watch still has a bound: the server
/// ends it within its `timeoutSeconds`, so a watch that sends nothing, not
/// even its end, for longer has lost its server (a proxy that keeps the TCP
/// connection alive hides that from keep-alive); it fails, and the watcher
/// starts over.
mod timeout {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use bytes::Bytes;
    use http::{Request, Response};
    use http_body::{Body, Frame};
    use kube::client::{Body as RequestBody, DynBody};
    use tower::BoxError;

    /// How much later than its `timeoutSeconds` a watch may end: the
    /// server's clock and the network's delays.
    const WATCH_GRACE: Duration = Duration::from_secs(5);

    #[derive(Debug, Clone, thiserror::Error)]
    #[error(
        "the API server {server} did not answer within {} (--request-timeout; 0 waits without a limit)",
        shown(*timeout)
    )]
    pub struct TimedOut {
        pub server: Arc<str>,
        pub timeout: Duration,
    }

    /// A watch that outlived the server's own promise to end it.
    #[derive(Debug, Clone, thiserror::Error)]
    #[error(
        "lost the connection to the API server {server}: a watch it was to end within {} sent nothing for {}",
        shown(*promised),
        shown(*idle)
    )]
    pub struct Silent {
        pub server: Arc<str>,
        pub promised: Duration,
        pub idle: Duration,
    }

    /// A duration as `--request-timeout` takes it.
    fn shown(d: Duration) -> String {
        let secs = d.as_secs();
        if d.subsec_millis() != 0 || secs == 0 {
            format!("{}ms", d.as_millis())
        } else if secs.is_multiple_of(3600) {
            format!("{}h", secs / 3600)
        } else if secs.is_multiple_of(60) {
            format!("{}m", secs / 60)
        } else {
            format!("{secs}s")
        }
    }

    #[derive(Clone)]
    pub struct Layer {
        timeout: Option<Duration>,
        server: Arc<str>,
    }

    impl Layer {
        pub fn new(timeout: Option<Duration>, server: String) -> Layer {
            Layer {
                timeout,
                server: server.into(),
            }
        }
    }

    impl<S> tower::Layer<S> for Layer {
        type Service = Service<S>;
        fn layer(&self, inner: S) -> Service<S> {
            Service {
                inner,
                layer: self.clone(),
            }
        }
    }

    #[derive(Clone)]
    pub struct Service<S> {
        inner: S,
        layer: Layer,
    }

    /// How long a request may stay open.
    #[derive(Debug, PartialEq)]
    enum Kind {
        /// Answered in full within `--request-timeout`.
        Plain,
        /// A watch the server ends within this long.
        Watch(Option<Duration>),
        /// A followed log or a connection upgraded to a stream: its headers
        /// within `--request-timeout`, then as long as it is wanted.
        Stream,
    }

    fn kind<B>(req: &Request<B>) -> Kind {
        let query = req.uri().query().unwrap_or_default();
        let pairs = || query.split('&');
        if pairs().any(|pair| matches!(pair, "watch=true" | "watch=1")) {
            let promised = pairs()
                .find_map(|pair| pair.strip_prefix("timeoutSeconds="))
                .and_then(|s| s.parse().ok())
                .map(Duration::from_secs);
            return Kind::Watch(promised);
        }
        if pairs().any(|pair| matches!(pair, "follow=true" | "follow=1"))
            || req.headers().contains_key(http::header::UPGRADE)
        {
            return Kind::Stream;
        }
        Kind::Plain
    }

    type Answer = Response<Box<DynBody>>;

    /// Why a limited request ended.
    #[derive(Clone)]
    enum Expired {
        TimedOut(TimedOut),
        Silent(Silent),
    }

    impl Expired {
        fn boxed(&self) -> BoxError {
            match self {
                Expired::TimedOut(e) => Box::new(e.clone()),
                Expired::Silent(e) => Box::new(e.clone()),
            }
        }
    }

    impl<S> tower::Service<Request<RequestBody>> for Service<S>
    where
        S: tower::Service<Request<RequestBody>, Response = Answer, Error = BoxError>,
        S::Future: Send + 'static,
    {
        type Response = Answer;
        type Error = BoxError;
        type Future = Pin<Box<dyn Future<Output = Result<Answer, BoxError>> + Send>>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            self.inner.poll_ready(cx)
        }

        fn call(&mut self, req: Request<RequestBody>) -> Self::Future {
            let kind = kind(&req);
            let server = self.layer.server.clone();
            let timed_out = |timeout| {
                Expired::TimedOut(TimedOut {
                    server: server.clone(),
                    timeout,
                })
            };
            // The limit on the answer, and on the body: a fixed deadline or
            // a bound on the silence between frames.
            let (limit, body) = match kind {
                Kind::Plain => match self.layer.timeout {
                    Some(t) => (Some((t, timed_out(t))), Some(BodyLimit::Deadline)),
                    None => (None, None),
                },
                Kind::Stream => (self.layer.timeout.map(|t| (t, timed_out(t))), None),
                Kind::Watch(Some(promised)) => {
                    let idle = promised + WATCH_GRACE;
                    let silent = Expired::Silent(Silent {
                        server: server.clone(),
                        promised,
                        idle,
                    });
                    (Some((idle, silent)), Some(BodyLimit::Idle(idle)))
                }
                Kind::Watch(None) => (None, None),
            };
            let answer = self.inner.call(req);
            let Some((within, expired)) = limit else {
                return Box::pin(answer);
            };
            let deadline = tokio::time::Instant::now() + within;
            Box::pin(async move {
                let answer = tokio::time::timeout_at(deadline, answer)
                    .await
                    .map_err(|_| expired.boxed())??;
                let Some(limit) = body else {
                    return Ok(answer);
                };
                Ok(answer.map(|body| {
                    Box::new(Limited {
                        body,
                        timer: Box::pin(tokio::time::sleep_until(deadline)),
                        limit,
                        expired,
                        ended: false,
                    }) as Box<DynBody>
                }))
            })
        }
    }

    enum BodyLimit {
        /// The answer's deadline covers the body too: a server that sends
        /// the headers and then stalls has not answered either.
        Deadline,
        /// No more than this between two frames.
        Idle(Duration),
    }

    struct Limited {
        body: Box<DynBody>,
        timer: Pin<Box<tokio::time::Sleep>>,
        limit: BodyLimit,
        expired: Expired,
        ended: bool,
    }

    impl Body for Limited {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            if self.ended {
                return Poll::Ready(None);
            }
            if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
                if let (Some(Ok(_)), BodyLimit::Idle(idle)) = (&frame, &self.limit) {
                    let next = tokio::time::Instant::now() + *idle;
                    self.timer.as_mut().reset(next);
                }
                return Poll::Ready(frame);
            }
            match self.timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    // Said once; the stream is over.
                    self.ended = true;
                    Poll::Ready(Some(Err(self.expired.boxed())))
                }
                Poll::Pending => Poll::Pending,
            }
        }

        fn is_end_stream(&self) -> bool {
            self.ended || self.body.is_end_stream()
        }

        fn size_hint(&self) -> http_body::SizeHint {
            self.body.size_hint()
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn watches_are_bounded_by_their_promise_and_streams_only_until_answered() {
            let req = |uri: &str| Request::get(uri).body(()).unwrap();
            assert_eq!(
                kind(&req("/api/v1/pods?watch=true&timeoutSeconds=290")),
                Kind::Watch(Some(Duration::from_secs(290)))
            );
            assert_eq!(kind(&req("/api/v1/pods?watch=1")), Kind::Watch(None));
            assert_eq!(
                kind(&req("/api/v1/namespaces/a/pods/p/log?follow=true")),
                Kind::Stream
            );
            assert_eq!(
                kind(&req("/api/v1/pods?labelSelector=watch%3Dtrue")),
                Kind::Plain
            );
            assert_eq!(
                kind(&req("/api/v1/namespaces/a/pods/p/log?follow=false")),
                Kind::Plain
            );
            let upgrade = Request::get("/api/v1/namespaces/a/pods/p/portforward")
                .header(http::header::UPGRADE, "websocket")
                .body(())
                .unwrap();
            assert_eq!(kind(&upgrade), Kind::Stream);
        }

        #[test]
        fn the_timeout_is_shown_as_the_flag_takes_it() {
            assert_eq!(shown(Duration::from_secs(5)), "5s");
            assert_eq!(shown(Duration::from_secs(90)), "90s");
            assert_eq!(shown(Duration::from_secs(120)), "2m");
            assert_eq!(shown(Duration::from_millis(1500)), "1500ms");
        }
    }
}
