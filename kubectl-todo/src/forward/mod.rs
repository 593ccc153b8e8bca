//! Port-forwards that survive rollouts: one local listener per Service
//! port, and for every accepted connection a fresh `pods/portforward` to a
//! pod that is ready at that moment. A rollout only changes which pod the
//! next connection reaches; open connections stay on their pod until
//! either side closes them, as the pod drains during termination.

pub mod endpoints;
pub mod port;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use endpoints::Backend;
pub use port::{PortChoice, PortError};

/// Pods tried for one connection before it is given up.
const DIAL_ATTEMPTS: usize = 3;

/// How long a connection whose pods all failed waits before trying one again.
const RETRY_SAME_AFTER: Duration = Duration::from_millis(500);

/// The Service port to forward.
#[derive(Debug, Clone)]
pub struct Target {
    pub namespace: String,
    pub service: String,
    /// The Service's `port` (not the container's).
    pub port: u16,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "service/{}:{} in {}",
            self.service, self.port, self.namespace
        )
    }
}

/// What a forward reports while it runs; the caller prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// No pod was ready when a connection came in; it waits for one.
    Waiting { target: String, up_to: Duration },
    /// Opening the forward to a pod failed; the connection tries another.
    Retrying { pod: String, reason: String },
    /// A connection could not be served and was closed.
    Dropped { reason: String },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Waiting { target, up_to } => write!(
                f,
                "no ready pod behind {target}; holding the connection up to {}s for one",
                up_to.as_secs()
            ),
            Event::Retrying { pod, reason } => {
                write!(
                    f,
                    "forward to pod {pod} failed ({reason}); trying another pod"
                )
            }
            Event::Dropped { reason } => write!(f, "connection closed: {reason}"),
        }
    }
}

/// Where events go; called from the forward's tasks.
pub type Sink = Arc<dyn Fn(Event) + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read service {service} in namespace {namespace}")]
    Service {
        service: String,
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error("service {service} has no port {port} (it has {available:?})")]
    NoSuchPort {
        service: String,
        port: u16,
        available: Vec<i32>,
    },
    #[error(transparent)]
    Port(#[from] PortError),
    #[error("no ready pod behind {target} within {}s", waited.as_secs())]
    NoReadyPod { target: String, waited: Duration },
    #[error("no pod behind {target} accepted the forward (tried {tried:?}): {last}")]
    Unreachable {
        target: String,
        tried: Vec<String>,
        last: String,
    },
}

impl crate::report::Hinted for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::Service { service, .. } => Some(format!(
                "deploy it first (kubectl todo up), or check: kubectl get service {service}"
            )),
            Error::NoSuchPort { .. } => None,
            Error::Port(e) => e.hint(),
            Error::NoReadyPod { target, .. } | Error::Unreachable { target, .. } => Some(format!(
                "see why its pods are not serving: kubectl todo doctor ({target})"
            )),
        }
    }
}
crate::report::hinted!(Error);

/// Tuning of a forward; the defaults suit an interactive session.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long a connection waits for a ready pod before it is closed.
    pub ready_wait: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ready_wait: Duration::from_secs(30),
        }
    }
}

/// A running forward; dropping it stops accepting and watching (open
/// connections end with their tasks).
pub struct Forward {
    pub local: SocketAddr,
    acceptor: JoinHandle<()>,
    watchers: [JoinHandle<()>; 2],
}

impl Forward {
    /// Resolves the Service port, binds the local listener and starts
    /// watching the Service's EndpointSlices.
    pub async fn start(
        client: Client,
        target: Target,
        choice: &PortChoice,
        options: Options,
        sink: Sink,
    ) -> Result<Forward, Error> {
        let (port_name, selector) = service_port(&client, &target).await?;
        let listener = port::bind(choice)?;
        let local = listener.local_addr().map_err(|source| PortError::Listen {
            address: choice.address,
            source,
        })?;
        listener
            .set_nonblocking(true)
            .and_then(|()| TcpListener::from_std(listener))
            .map(|listener| {
                let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), &target.namespace);
                let (store, writer) = reflector::store();
                let config = watcher::Config::default()
                    .labels(&format!("kubernetes.io/service-name={}", target.service));
                // The backoff re-lists after a dropped or expired watch, so the
                // store follows the endpoints for the whole session.
                let slice_watcher = tokio::spawn(
                    watcher(slices, config)
                        .default_backoff()
                        .reflect(writer)
                        .for_each(|_| async {}),
                );
                // The pods behind the Service, for which version each runs.
                let pods: Api<Pod> = Api::namespaced(client, &target.namespace);
                let (versions, writer) = reflector::store();
                let pod_watcher = tokio::spawn(
                    watcher(pods.clone(), watcher::Config::default().labels(&selector))
                        .default_backoff()
                        .reflect(writer)
                        .for_each(|_| async {}),
                );
                let shared = Arc::new(Shared {
                    pods,
                    versions,
                    store,
                    port_name,
                    target,
                    options,
                    sink,
                    turn: AtomicUsize::new(0),
                });
                let acceptor = tokio::spawn(accept(listener, shared));
                Forward {
                    local,
                    acceptor,
                    watchers: [slice_watcher, pod_watcher],
                }
            })
            .map_err(|source| {
                PortError::Listen {
                    address: choice.address,
                    source,
                }
                .into()
            })
    }

    /// The URL printed for the user.
    pub fn url(&self) -> String {
        format!("http://{}", self.local)
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.acceptor.abort();
        for watcher in &self.watchers {
            watcher.abort();
        }
    }
}

/// The name of the Service port, which is how EndpointSlices refer to it,
/// and the Service's selector as a label selector.
async fn service_port(client: &Client, target: &Target) -> Result<(String, String), Error> {
    let service = Api::<Service>::namespaced(client.clone(), &target.namespace)
        .get(&target.service)
        .await
        .map_err(|source| Error::Service {
            service: target.service.clone(),
            namespace: target.namespace.clone(),
            source,
        })?;
    let spec = service.spec.unwrap_or_default();
    let selector = spec
        .selector
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let ports = spec.ports.unwrap_or_default();
    ports
        .iter()
        .find(|p| p.port == i32::from(target.port))
        .map(|p| (p.name.clone().unwrap_or_default(), selector))
        .ok_or_else(|| Error::NoSuchPort {
            service: target.service.clone(),
            port: target.port,
            available: ports.iter().map(|p| p.port).collect(),
        })
}

struct Shared {
    pods: Api<Pod>,
    versions: Store<Pod>,
    store: Store<EndpointSlice>,
    port_name: String,
    target: Target,
    options: Options,
    sink: Sink,
    turn: AtomicUsize,
}

impl Shared {
    fn version(&self, pod: &str) -> Option<endpoints::Version> {
        let pod = self
            .versions
            .get(&reflector::ObjectRef::new(pod).within(&self.target.namespace))?;
        let owner = pod
            .metadata
            .owner_references
            .as_ref()
            .and_then(|refs| refs.iter().find(|r| r.controller == Some(true)))
            .map(|r| r.uid.clone());
        Some(endpoints::Version {
            owner,
            created: pod.metadata.creation_timestamp.as_ref().map(|t| t.0),
        })
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            // Out of file descriptors and the like: pause rather than spin.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Err(e) = serve(socket, &shared).await {
                (shared.sink)(Event::Dropped {
                    reason: e.to_string(),
                });
            }
        });
    }
}

/// One local connection: dial a ready pod (another one if that fails),
/// then copy both ways until both sides have closed.
async fn serve(mut socket: TcpStream, shared: &Shared) -> Result<(), Error> {
    let _ = socket.set_nodelay(true);
    let turn = shared.turn.fetch_add(1, Ordering::Relaxed);
    let mut tried: Vec<Backend> = Vec::new();
    let mut last = String::new();
    // What the client sent before any answer: replayed to the next pod when
    // this one turns out not to listen (it was stopping), since the app
    // never saw those bytes.
    let mut sent = Vec::new();
    let mut client_done = false;
    while tried.len() < DIAL_ATTEMPTS {
        let Some(backend) = next_backend(shared, turn, &tried).await? else {
            break;
        };
        let reason = match shared.pods.portforward(&backend.pod, &[backend.port]).await {
            Ok(mut forwarder) => {
                match (
                    forwarder.take_stream(backend.port),
                    forwarder.take_error(backend.port),
                ) {
                    (Some(upstream), Some(refused)) => {
                        let outcome =
                            relay(&mut socket, upstream, refused, &mut sent, &mut client_done)
                                .await;
                        // The server closes its side first; kube-rs's failure to
                        // send its own close after that is no news.
                        let _ = forwarder.join().await;
                        match outcome {
                            Relay::Done => return Ok(()),
                            Relay::Refused(reason) => reason,
                        }
                    }
                    _ => "the forward carried no stream for the port".into(),
                }
            }
            Err(e) => e.to_string(),
        };
        (shared.sink)(Event::Retrying {
            pod: backend.pod.clone(),
            reason: reason.clone(),
        });
        last = reason;
        tried.push(backend);
    }
    Err(Error::Unreachable {
        target: shared.target.to_string(),
        tried: tried.into_iter().map(|b| b.pod).collect(),
        last,
    })
}

enum Relay {
    /// The connection ran its course (or broke after the app answered).
    Done,
    /// Nothing listened in the pod: the app never saw the client's bytes.
    Refused(String),
}

/// Copies between the client and one pod. Until the pod's first byte the
/// client's bytes are kept in `sent`, so a refused dial can be replayed.
async fn relay(
    socket: &mut TcpStream,
    mut upstream: tokio::io::DuplexStream,
    refused: impl Future<Output = Option<String>>,
    sent: &mut Vec<u8>,
    client_done: &mut bool,
) -> Relay {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    if upstream.write_all(sent).await.is_err() {
        return Relay::Refused("the forward closed before the request".into());
    }
    if *client_done {
        let _ = upstream.shutdown().await;
    }
    let mut from_client = [0u8; 16 * 1024];
    let mut from_pod = [0u8; 16 * 1024];
    loop {
        tokio::select! {
            n = socket.read(&mut from_client), if !*client_done => match n {
                Ok(0) | Err(_) => {
                    *client_done = true;
                    let _ = upstream.shutdown().await;
                }
                Ok(n) => {
                    sent.extend_from_slice(&from_client[..n]);
                    if upstream.write_all(&from_client[..n]).await.is_err() {
                        break;
                    }
                }
            },
            n = upstream.read(&mut from_pod) => match n {
                Ok(n) if n > 0 => {
                    if socket.write_all(&from_pod[..n]).await.is_err() {
                        return Relay::Done;
                    }
                    let _ = tokio::io::copy_bidirectional(socket, &mut upstream).await;
                    return Relay::Done;
                }
                _ => break,
            },
        }
    }
    // The pod side ended without a byte: either nothing listened (the error
    // channel says so right away) or the app closed the connection.
    match tokio::time::timeout(Duration::from_secs(2), refused).await {
        Ok(Some(message)) => Relay::Refused(message),
        _ => Relay::Done,
    }
}

/// A ready pod, preferring one this connection has not tried; waits a
/// bounded time for one to appear. `None` when time ran out after tries.
async fn next_backend(
    shared: &Shared,
    turn: usize,
    tried: &[Backend],
) -> Result<Option<Backend>, Error> {
    let started = Instant::now();
    let mut announced = false;
    loop {
        let slices = shared.store.state();
        let ready = endpoints::newest(
            endpoints::ready_backends(slices.iter().map(|s| s.as_ref()), &shared.port_name),
            |pod| shared.version(pod),
        );
        let waited = started.elapsed();
        if let Some(backend) = endpoints::pick(&ready, turn, tried) {
            return Ok(Some(backend.clone()));
        }
        // Only pods that already failed: a new one may be coming up (a
        // rollout), but a dropped stream is worth one more try after a pause.
        if waited >= RETRY_SAME_AFTER
            && let Some(backend) = endpoints::pick(&ready, turn + tried.len(), &[])
        {
            return Ok(Some(backend.clone()));
        }
        if waited >= shared.options.ready_wait {
            return match tried {
                [] => Err(Error::NoReadyPod {
                    target: shared.target.to_string(),
                    waited,
                }),
                _ => Ok(None),
            };
        }
        if !announced && ready.is_empty() {
            announced = true;
            (shared.sink)(Event::Waiting {
                target: shared.target.to_string(),
                up_to: shared.options.ready_wait,
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
