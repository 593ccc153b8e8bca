//! Command-line definition, kept in the library so that completions and man
//! pages can be generated from the same source.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Take a two-tier app from source to a healthy deployment on Kubernetes.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl-todo",
    bin_name = "kubectl todo",
    version,
    about,
    after_help = "Examples:\n  kubectl todo --help\n  kubectl todo --version"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The kubectl conventions every subcommand accepts.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// The namespace to use (default: the project's, `todo` without a project file).
    #[arg(short = 'n', long, global = true, value_name = "NAME")]
    pub namespace: Option<String>,
    /// The app's root directory, holding `todo.yaml` if it has one.
    #[arg(long, global = true, value_name = "DIR", default_value = ".")]
    pub project: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build, load, apply and wait: from source to a healthy app, then print its URLs.
    ///
    /// Examples: `kubectl todo up`, `kubectl todo up --dry-run`, `kubectl todo up --push localhost:5000`.
    Up(crate::up::Args),
    /// Find what is wrong with the environment, the cluster and the app, and how to fix it.
    ///
    /// Examples: `kubectl todo doctor`, `kubectl todo doctor --only app --component backend -o json`.
    Doctor(crate::doctor::Args),
    /// Print the manifests `up` applies (deterministic), without applying them.
    Render(crate::render::run::Args),
    /// Apply the rendered manifests as a new revision (images built elsewhere), pruning what the last one had.
    Apply(crate::apply::run::Args),
    /// The revisions recorded in the cluster: time, images, outcome.
    History(crate::history::Args),
    /// What runs now: per component the image, replicas, restarts and URLs, and the current revision.
    ///
    /// Examples: `kubectl todo status`, `kubectl todo status -o json`.
    Status(crate::status::Args),
    /// Re-apply a recorded revision (default: the last one applied before the current) as a new revision.
    ///
    /// Examples: `kubectl todo rollback`, `kubectl todo rollback 3 --wait-for-lock 60`.
    Rollback(crate::rollback::Args),
    /// Delete everything the app owns and wait until it is gone; the Secret stays unless --purge.
    Down(crate::down::Args),
    /// Every pod of a component, merged, and followed across restarts and rollouts.
    ///
    /// Examples: `kubectl todo logs`, `kubectl todo logs backend -f --grep ERROR`.
    Logs(crate::logs::Args),
    /// Create, set, list, rotate, delete and check the app's secrets; values are never shown.
    Secrets(crate::secrets::Args),
    /// Look at the repository and write a todo.yaml with only what `up` cannot work out itself.
    ///
    /// Examples: `kubectl todo init`, `kubectl todo init --dry-run`.
    Init(crate::init::Args),
    /// The effective project (todo.yaml over detection over the defaults) and where each value came from.
    Config(crate::config::Args),
    /// The image plan of each component as `up` builds it (stack, port, Dockerfile, build arguments, tag, notes), offline.
    ///
    /// Examples: `kubectl todo plan`, `kubectl todo plan frontend -o json`.
    Plan(crate::plan::Args),
    /// Print a shell completion script (bash, zsh, fish or powershell); names complete from the project.
    Completion(crate::completion::Args),
}

/// A duration as kubectl writes one: `500ms`, `90s`, `5m`, `1h` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    use std::time::Duration;
    let (number, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a duration such as 90s or 5m"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("`{s}`: use ms, s, m or h")),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::parse_duration;

    #[test]
    fn durations_read_as_kubectl_writes_them() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("soon").unwrap_err().contains("soon"));
        assert!(
            parse_duration("5d")
                .unwrap_err()
                .contains("use ms, s, m or h")
        );
    }
}
