//! The command line, settled: what every command works with once clap has
//! parsed the arguments. Library and pipeline code take these values and
//! never clap's types, so that the command line can change shape (a new flag,
//! an environment variable, a `dev` loop driving the pipeline) without the
//! code below it noticing.

use std::path::PathBuf;
use std::time::Duration;

use crate::project::{self, Project};

/// Where the app is and which cluster and namespace to work in.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The kubeconfig file (`None`: `$KUBECONFIG`, then `~/.kube/config`).
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (`None`: its current context).
    pub context: Option<String>,
    /// The namespace the command line asks for; it overrides the project's
    /// in [`Settings::load_project`], the one place that decides it.
    pub namespace: Option<String>,
    /// The app's root directory.
    pub project: PathBuf,
    /// The longest one API request may take (`None`: no limit), watches and
    /// followed logs excepted: `--request-timeout`.
    pub request_timeout: Option<Duration>,
}

impl Settings {
    /// The project as the command line adjusts it (`-n` wins over the file).
    pub fn load_project(&self) -> Result<Project, project::Error> {
        let mut project = Project::load(&self.project)?;
        if let Some(ns) = &self.namespace {
            project.namespace = ns.clone();
        }
        Ok(project)
    }
}
