//! Connecting to the cluster with kubectl's conventions: `--kubeconfig`
//! (else `$KUBECONFIG`, else `~/.kube/config`), `--context`, `-n`.

use std::path::{Path, PathBuf};

use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};

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

impl crate::report::Hinted for Error {
    fn hint(&self) -> Option<String> {
        Some(match self {
            Error::Kubeconfig(_) => "start a local cluster (`minikube start`) or point --kubeconfig at a kubeconfig file".into(),
            Error::Client { .. } => "list the contexts with `kubectl config get-contexts` and pick one with --context".into(),
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
    if let Some(kube::Error::Api(status)) = e.downcast_ref::<kube::Error>() {
        return Some(format!(
            "the API server answered {} {}: {}",
            status.code, status.reason, status.message
        ));
    }
    None
}
