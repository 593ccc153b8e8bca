//! Starting and stopping an emulator, in-process or from the binary, and the
//! kubeconfig that points kubectl and kube-rs at it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::task::JoinHandle;

use crate::bootstrap::bootstrap;
use crate::cluster::{Cluster, NodeConfig, Runtime};
use crate::faults::Faults;
use crate::server::{ServerState, router};
use crate::tls::Tls;
use crate::{controllers, kubelet};

/// How to start an emulator.
#[derive(Debug, Clone)]
pub struct Config {
    /// 0 picks a free port.
    pub port: u16,
    pub runtime: Runtime,
    pub node: NodeConfig,
    /// Images put on the node before the API accepts requests.
    pub preload: Vec<String>,
    /// How many changes a watch can replay before `410 Gone`.
    pub watch_history: usize,
    /// Serve HTTPS with a CA of its own (in the kubeconfig) instead of plain HTTP.
    pub tls: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            port: 0,
            runtime: Runtime::Scripted,
            node: NodeConfig::default(),
            preload: Vec::new(),
            watch_history: 50_000,
            tls: false,
        }
    }
}

impl Config {
    pub fn docker() -> Self {
        Self {
            runtime: Runtime::Docker,
            ..Self::default()
        }
    }
}

/// A running emulator. Call [`Emulator::stop`] to remove its containers;
/// dropping it does the same, blocking.
pub struct Emulator {
    cluster: Arc<Cluster>,
    faults: Arc<Faults>,
    addr: SocketAddr,
    /// The CA clients must trust, when serving HTTPS.
    ca_pem: Option<String>,
    server: Option<JoinHandle<()>>,
}

impl Emulator {
    pub async fn start(config: Config) -> anyhow::Result<Emulator> {
        let cluster = Cluster::new(config.node, config.runtime);
        cluster.store.set_history_limit(config.watch_history);
        Self::start_with(cluster, config.port, &config.preload, config.tls).await
    }

    /// Starts the API for a cluster built by the caller (tests that tune the kubelet's back-off).
    pub async fn start_with(
        cluster: Arc<Cluster>,
        port: u16,
        preload: &[String],
        tls: bool,
    ) -> anyhow::Result<Emulator> {
        bootstrap(&cluster);
        kubelet::spawn(cluster.clone());
        controllers::spawn(cluster.clone());
        for image in preload {
            kubelet::load_image(&cluster, image)
                .await
                .with_context(|| format!("preloading {image}"))?;
        }
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("binding 127.0.0.1:{port}"))?;
        let addr = listener.local_addr()?;
        let faults = cluster.faults.clone();
        let app = router(Arc::new(ServerState {
            cluster: cluster.clone(),
            faults: faults.clone(),
        }));
        let mut stop = cluster.shutdown_signal();
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        let tls = if tls { Some(Tls::generate()?) } else { None };
        let ca_pem = tls.as_ref().map(|t| t.ca_pem.clone());
        let server = match tls {
            Some(tls) => {
                let serve =
                    axum::serve(tls.listener(listener), app).with_graceful_shutdown(shutdown);
                tokio::spawn(async move {
                    if let Err(e) = serve.await {
                        tracing::error!("API server failed: {e}");
                    }
                })
            }
            None => {
                let serve = axum::serve(listener, app).with_graceful_shutdown(shutdown);
                tokio::spawn(async move {
                    if let Err(e) = serve.await {
                        tracing::error!("API server failed: {e}");
                    }
                })
            }
        };
        Ok(Emulator {
            cluster,
            faults,
            addr,
            ca_pem,
            server: Some(server),
        })
    }

    pub fn url(&self) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// A kubeconfig whose current context, `emulator`, talks to this emulator.
    pub fn kubeconfig_yaml(&self) -> String {
        kubeconfig_yaml(&self.url(), self.ca_pem.as_deref())
    }

    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml())
    }

    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&self.kubeconfig_yaml())?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
        Ok(kube::Client::try_from(config)?)
    }

    /// Stops serving and removes every container the kubelet started.
    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        self.cluster.begin_shutdown();
        kubelet::shutdown(&self.cluster).await;
        if let Some(server) = self.server.take() {
            // Streams that never end on their own (followed logs) must not hold the exit.
            let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if self.server.is_none() {
            return;
        }
        self.cluster.begin_shutdown();
        let cluster = self.cluster.clone();
        // Drop cannot await; a private runtime on its own thread does the cleanup.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(kubelet::shutdown(&cluster));
            }
        })
        .join();
    }
}

pub fn kubeconfig_yaml(url: &str, ca_pem: Option<&str>) -> String {
    let ca = ca_pem
        .map(|pem| {
            format!(
                "\n    certificate-authority-data: {}",
                crate::admission::base64_encode(pem.as_bytes())
            )
        })
        .unwrap_or_default();
    // Over HTTPS kubectl asks for credentials when it has none; the emulator accepts any.
    let user = if ca_pem.is_some() {
        "{token: emulator-admin}"
    } else {
        "{}"
    };
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: emulator
  cluster:
    server: {url}{ca}
contexts:
- name: emulator
  context:
    cluster: emulator
    user: emulator-admin
    namespace: default
current-context: emulator
preferences: {{}}
users:
- name: emulator-admin
  user: {user}
"
    )
}

/// The API URL of the current context of a kubeconfig file.
pub fn server_url(kubeconfig: &Path) -> anyhow::Result<String> {
    let config = kube::config::Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading kubeconfig {}", kubeconfig.display()))?;
    let context_name = config
        .current_context
        .clone()
        .context("the kubeconfig has no current-context")?;
    let context = config
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.as_ref())
        .with_context(|| format!("context {context_name:?} is not in the kubeconfig"))?;
    config
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .with_context(|| format!("cluster {:?} has no server", context.cluster))
}
