//! Connecting to the cluster with kubectl's conventions: `--kubeconfig`
//! (else `$KUBECONFIG`, else `~/.kube/config`), `--context`, `-n`.

use std::path::{Path, PathBuf};

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
    let client = kube::client::ClientBuilder::try_from(config)
        .map_err(|source| Error::Client {
            context: context.clone(),
            source,
        })?
        .with_layer(&timeout::Layer::new(global.request_timeout, server))
        .build();
    Ok(Connection {
        client,
        namespace: namespace.to_string(),
        context,
        server_host,
    })
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
/// as they are wanted: the watcher's idle timeout and the server's own
/// `timeoutSeconds` end a dead watch instead.
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

    #[derive(Debug, Clone, thiserror::Error)]
    #[error(
        "the API server {server} did not answer within {} (--request-timeout; 0 waits without a limit)",
        shown(*timeout)
    )]
    pub struct TimedOut {
        pub server: Arc<str>,
        pub timeout: Duration,
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

    /// Whether the request is meant to stay open: a watch, a followed log,
    /// or a connection upgraded to a stream.
    fn streams<B>(req: &Request<B>) -> bool {
        let query = req.uri().query().unwrap_or_default();
        let open_ended = query
            .split('&')
            .any(|pair| matches!(pair, "watch=true" | "watch=1" | "follow=true" | "follow=1"));
        open_ended || req.headers().contains_key(http::header::UPGRADE)
    }

    type Answer = Response<Box<DynBody>>;

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
            let limit = self.layer.timeout.filter(|_| !streams(&req));
            let answer = self.inner.call(req);
            let Some(timeout) = limit else {
                return Box::pin(answer);
            };
            let timed_out = TimedOut {
                server: self.layer.server.clone(),
                timeout,
            };
            let deadline = tokio::time::Instant::now() + timeout;
            Box::pin(async move {
                let answer = tokio::time::timeout_at(deadline, answer)
                    .await
                    .map_err(|_| Box::new(timed_out.clone()) as BoxError)??;
                // The deadline covers the body too: a server that sends the
                // headers and then stalls has not answered either.
                Ok(answer.map(|body| {
                    Box::new(Deadline {
                        body,
                        deadline: Box::pin(tokio::time::sleep_until(deadline)),
                        timed_out,
                    }) as Box<DynBody>
                }))
            })
        }
    }

    struct Deadline {
        body: Box<DynBody>,
        deadline: Pin<Box<tokio::time::Sleep>>,
        timed_out: TimedOut,
    }

    impl Body for Deadline {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
                return Poll::Ready(frame);
            }
            match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(self.timed_out.clone())))),
                Poll::Pending => Poll::Pending,
            }
        }

        fn is_end_stream(&self) -> bool {
            self.body.is_end_stream()
        }

        fn size_hint(&self) -> http_body::SizeHint {
            self.body.size_hint()
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn only_open_ended_requests_are_excepted() {
            let req = |uri: &str| Request::get(uri).body(()).unwrap();
            assert!(streams(&req("/api/v1/pods?watch=true&timeoutSeconds=290")));
            assert!(streams(&req("/api/v1/namespaces/a/pods/p/log?follow=true")));
            assert!(!streams(&req("/api/v1/pods?labelSelector=watch%3Dtrue")));
            assert!(!streams(&req(
                "/api/v1/namespaces/a/pods/p/log?follow=false"
            )));
            let upgrade = Request::get("/api/v1/namespaces/a/pods/p/portforward")
                .header(http::header::UPGRADE, "websocket")
                .body(())
                .unwrap();
            assert!(streams(&upgrade));
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
