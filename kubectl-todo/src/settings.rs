//! The command line, settled: what every command works with once clap has
//! parsed the arguments. Library and pipeline code take these values and
//! never clap's types, so that the command line can change shape (a new flag,
//! an environment variable, a `dev` loop driving the pipeline) without the
//! code below it noticing.

use std::path::PathBuf;

/// Where the app is and which cluster and namespace to work in.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The kubeconfig file (`None`: `$KUBECONFIG`, then `~/.kube/config`).
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (`None`: its current context).
    pub context: Option<String>,
    /// The namespace the command line asks for; it overrides the project's
    /// once, when [`crate::pipeline::load_project`] loads the project.
    pub namespace: Option<String>,
    /// The app's root directory.
    pub project: PathBuf,
}
