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

impl Error {
    pub fn hint(&self) -> Option<String> {
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
    watcher: JoinHandle<()>,
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
        let port_name = service_port_name(&client, &target).await?;
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
                let watcher = tokio::spawn(
                    watcher(slices, config)
                        .default_backoff()
                        .reflect(writer)
                        .for_each(|_| async {}),
                );
                let shared = Arc::new(Shared {
                    pods: Api::namespaced(client, &target.namespace),
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
                    watcher,
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
        self.watcher.abort();
    }
}

/// The name of the Service port, which is how EndpointSlices refer to it.
async fn service_port_name(client: &Client, target: &Target) -> Result<String, Error> {
    let service = Api::<Service>::namespaced(client.clone(), &target.namespace)
        .get(&target.service)
        .await
        .map_err(|source| Error::Service {
            service: target.service.clone(),
            namespace: target.namespace.clone(),
            source,
        })?;
    let ports = service.spec.and_then(|s| s.ports).unwrap_or_default();
    ports
        .iter()
        .find(|p| p.port == i32::from(target.port))
        .map(|p| p.name.clone().unwrap_or_default())
        .ok_or_else(|| Error::NoSuchPort {
            service: target.service.clone(),
            port: target.port,
            available: ports.iter().map(|p| p.port).collect(),
        })
}

struct Shared {
    pods: Api<Pod>,
    store: Store<EndpointSlice>,
    port_name: String,
    target: Target,
    options: Options,
    sink: Sink,
    turn: AtomicUsize,
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
    while tried.len() < DIAL_ATTEMPTS {
        let Some(backend) = next_backend(shared, turn, &tried).await? else {
            break;
        };
        match shared.pods.portforward(&backend.pod, &[backend.port]).await {
            Ok(mut forwarder) => {
                let Some(mut upstream) = forwarder.take_stream(backend.port) else {
                    last = "the forward carried no stream".into();
                    tried.push(backend);
                    continue;
                };
                // Errors here are the connection ending (a drop, the pod
                // gone); the client sees its socket close, as with a real
                // server, and nothing more can be done for it.
                let _ = tokio::io::copy_bidirectional(&mut socket, &mut upstream).await;
                drop(upstream);
                let _ = forwarder.join().await;
                return Ok(());
            }
            Err(e) => {
                last = e.to_string();
                (shared.sink)(Event::Retrying {
                    pod: backend.pod.clone(),
                    reason: last.clone(),
                });
                tried.push(backend);
            }
        }
    }
    Err(Error::Unreachable {
        target: shared.target.to_string(),
        tried: tried.into_iter().map(|b| b.pod).collect(),
        last,
    })
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
        let ready = endpoints::ready_backends(slices.iter().map(|s| s.as_ref()), &shared.port_name);
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
