//! Connecting to the cluster with kubectl's conventions: `--kubeconfig`
//! (else `$KUBECONFIG`, else `~/.kube/config`), `--context`, `-n`.

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::settings::Settings;

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
}

impl Error {
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Error::Kubeconfig(_) => "start a local cluster (`minikube start`) or point --kubeconfig at a kubeconfig file".into(),
            Error::Client { .. } => "list the contexts with `kubectl config get-contexts` and pick one with --context".into(),
        })
    }
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
    let kubeconfig = match &global.kubeconfig {
        Some(path) => Kubeconfig::read_from(path).map_err(Error::Kubeconfig)?,
        None => Kubeconfig::read().map_err(Error::Kubeconfig)?,
    };
    let context = global
        .context
        .clone()
        .or_else(|| kubeconfig.current_context.clone())
        .unwrap_or_default();
    let options = KubeConfigOptions {
        context: global.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
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
    let client = kube::Client::try_from(config).map_err(|source| Error::Client {
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
