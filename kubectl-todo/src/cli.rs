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
    #[arg(short = 'n', long, global = true, value_name = "NAME", value_parser = parse_namespace)]
    pub namespace: Option<String>,
    /// The app's root directory, holding `todo.yaml` if it has one.
    #[arg(long, global = true, value_name = "DIR", default_value = ".")]
    pub project: PathBuf,
    /// How long one request to the API server may take (e.g. 5s, 1m; 0: no limit). Watches and followed logs are long by design and are excepted.
    #[arg(long, global = true, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: std::time::Duration,
}

impl GlobalArgs {
    /// The arguments as the rest of the program takes them.
    pub fn settle(self) -> crate::settings::Settings {
        crate::settings::Settings {
            kubeconfig: self.kubeconfig,
            context: self.context,
            namespace: self.namespace,
            project: self.project,
            request_timeout: (!self.request_timeout.is_zero()).then_some(self.request_timeout),
        }
    }
}

/// Waiting for the rollout, as `up` and `rollback` do it.
#[derive(Debug, Clone, Args)]
pub struct WaitArgs {
    /// How long to wait for the rollout (e.g. 90s, 5m).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    /// Return once applied, without waiting for the rollout.
    #[arg(long)]
    pub no_wait: bool,
}

impl WaitArgs {
    pub fn settle(&self) -> crate::pipeline::Wait {
        crate::pipeline::Wait {
            timeout: self.timeout,
            no_wait: self.no_wait,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build, load, apply and wait: from source to a healthy app, then print its URLs.
    ///
    /// Examples: `kubectl todo up`, `kubectl todo up --dry-run`, `kubectl todo up --push localhost:5000`.
    Up(crate::commands::up::Args),
    /// Find what is wrong with the environment, the cluster and the app, and how to fix it.
    ///
    /// Examples: `kubectl todo doctor`, `kubectl todo doctor --only app --component backend -o json`.
    Doctor(crate::commands::doctor::Args),
    /// Print the manifests `up` applies (deterministic), without applying them.
    Render(crate::commands::render::Args),
    /// Apply the rendered manifests as a new revision (images built elsewhere), pruning what the last one had.
    Apply(crate::commands::apply::Args),
    /// The revisions recorded in the cluster: time, images, outcome.
    History(crate::commands::history::Args),
    /// What runs now: per component the image, replicas, restarts and URLs, and the current revision.
    ///
    /// Examples: `kubectl todo status`, `kubectl todo status -o json`.
    Status(crate::commands::status::Args),
    /// Re-apply a recorded revision (default: the last one applied before the current) as a new revision.
    ///
    /// Examples: `kubectl todo rollback`, `kubectl todo rollback 3 --wait-for-lock 60`.
    Rollback(crate::commands::rollback::Args),
    /// Delete everything the app owns and wait until it is gone; the Secret stays unless --purge.
    Down(crate::commands::down::Args),
    /// The inner loop: deploy, then rebuild and redeploy what each change touches, with port-forwards and logs.
    ///
    /// Examples: `kubectl todo dev`, `kubectl todo dev backend --no-logs`, `kubectl todo dev --down-on-exit`.
    Dev(crate::commands::dev::Args),
    /// Every pod of a component, merged, and followed across restarts and rollouts.
    ///
    /// Examples: `kubectl todo logs`, `kubectl todo logs backend -f --grep ERROR`.
    Logs(crate::commands::logs::Args),
    /// Create, set, list, rotate, delete and check the app's secrets; values are never shown.
    Secrets(crate::commands::secrets::Args),
    /// Look at the repository and write a todo.yaml with only what `up` cannot work out itself.
    ///
    /// Examples: `kubectl todo init`, `kubectl todo init --dry-run`.
    Init(crate::commands::init::Args),
    /// The effective project (todo.yaml over detection over the defaults) and where each value came from.
    Config(crate::commands::config::Args),
    /// The image plan of each component as `up` builds it (stack, port, Dockerfile, build arguments, tag, notes), offline.
    ///
    /// Examples: `kubectl todo plan`, `kubectl todo plan frontend -o json`.
    Plan(crate::commands::plan::Args),
    /// Print a shell completion script (bash, zsh, fish or powershell); names complete from the project.
    Completion(crate::commands::completion::Args),
}

/// A duration as kubectl writes one: `500ms`, `90s`, `5m`, `1h`, `1m30s` (a
/// bare number is seconds).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    use std::time::Duration;
    let not_a_duration = || format!("`{s}` is not a duration such as 90s or 5m");
    if s.is_empty() {
        return Err(not_a_duration());
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map(Duration::from_secs)
            .map_err(|_| not_a_duration());
    }
    let mut rest = s;
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let n: u64 = rest[..digits].parse().map_err(|_| not_a_duration())?;
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let part = match &rest[..unit] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            _ => return Err(format!("`{s}`: use ms, s, m or h")),
        };
        total = total.saturating_add(part);
        rest = &rest[unit..];
    }
    Ok(total)
}

/// `-n`: a namespace name is a DNS label.
pub fn parse_namespace(s: &str) -> Result<String, String> {
    let ok = (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{s}` is not a namespace name: 1-63 lowercase letters, digits or `-`, starting and ending with a letter or digit (e.g. `-n todo`)"
        ))
    }
}

/// `--push`: a registry host, with an optional port and path, without a scheme.
pub fn parse_registry(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err(
            "the registry is empty: give its host, e.g. `--push localhost:5000` or `--push ghcr.io/me`"
                .into(),
        );
    }
    if let Some((scheme, rest)) = s.split_once("://") {
        return Err(format!(
            "`{s}`: a registry is named without `{scheme}://` (write `--push {rest}`)"
        ));
    }
    let probe = format!("{}/x", s.trim_end_matches('/'));
    image_builder::reference::check(&probe).map_err(|_| {
        format!(
            "`{s}` is not a registry: a host with an optional port and path in lowercase, e.g. `localhost:5000` or `ghcr.io/me`"
        )
    })?;
    Ok(s.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn namespaces_are_dns_labels() {
        assert_eq!(parse_namespace("todo-dev").unwrap(), "todo-dev");
        for bad in ["", "Todo", "-x", "x-", "a_b", &"a".repeat(64)] {
            let err = parse_namespace(bad).unwrap_err();
            assert!(
                err.contains("is not a namespace name: 1-63 lowercase"),
                "{err}"
            );
        }
    }

    #[test]
    fn registries_are_hosts_without_a_scheme() {
        assert_eq!(parse_registry("localhost:5000").unwrap(), "localhost:5000");
        assert_eq!(parse_registry("ghcr.io/me/").unwrap(), "ghcr.io/me");
        assert!(
            parse_registry("")
                .unwrap_err()
                .contains("the registry is empty")
        );
        assert!(
            parse_registry("https://ghcr.io")
                .unwrap_err()
                .contains("write `--push ghcr.io`")
        );
        assert!(
            parse_registry("my registry")
                .unwrap_err()
                .contains("is not a registry")
        );
    }

    #[test]
    fn durations_read_as_kubectl_writes_them() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("").unwrap_err().contains("not a duration"));
        assert!(
            parse_duration("-5s")
                .unwrap_err()
                .contains("not a duration")
        );
        assert!(parse_duration("soon").unwrap_err().contains("soon"));
        assert!(
            parse_duration("5d")
                .unwrap_err()
                .contains("use ms, s, m or h")
        );
    }
}
