//! Which arguments take component names, secret keys or kubeconfig contexts,
//! and where those come from: the project under `--project` (or the current
//! directory) and the kubeconfig under `--kubeconfig` (or kubectl's default),
//! each read only when a candidate is asked for.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use clap::{Arg, CommandFactory};
use clap_complete::engine::{
    ArgValueCandidates, ArgValueCompleter, CompletionCandidate, PathCompleter, ValueCompleter,
};

use crate::cli::Cli;
use crate::project::{KeyFormat, Project};

/// The kubectl-todo command with candidates attached for every argument that
/// names a component, a secret key or a kubeconfig context, read from what
/// the words typed so far point at.
pub fn command(given: Given) -> clap::Command {
    attach(Cli::command(), &Source::new(given))
}

/// The global flags typed so far that say where candidates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Given {
    /// `--project`, else `.`.
    pub project: PathBuf,
    /// `--kubeconfig`, else kubectl's default ($KUBECONFIG, ~/.kube/config).
    pub kubeconfig: Option<PathBuf>,
}

impl Given {
    pub fn from_words(words: &[OsString]) -> Given {
        Given {
            project: flag(words, "--project").unwrap_or_else(|| PathBuf::from(".")),
            kubeconfig: flag(words, "--kubeconfig"),
        }
    }
}

/// The last value given to a long flag, as `--flag VALUE` or `--flag=VALUE`.
fn flag(words: &[OsString], name: &str) -> Option<PathBuf> {
    let mut value = None;
    // The last word is being typed: a value there is not yet meant.
    let typed = words.len().saturating_sub(1);
    let mut words = words[..typed].iter();
    let prefix = format!("{name}=");
    while let Some(word) = words.next() {
        let Some(word) = word.to_str() else { continue };
        if word == "--" {
            break;
        } else if word == name {
            value = words.next().map(PathBuf::from).or(value);
        } else if let Some(v) = word.strip_prefix(&prefix) {
            value = Some(PathBuf::from(v));
        }
    }
    value
}

/// The project, loaded once per completion and only if a candidate needs it;
/// an unreadable project offers nothing rather than failing the shell.
#[derive(Clone)]
struct Source {
    given: Arc<Given>,
    project: Arc<OnceLock<Option<Project>>>,
}

impl Source {
    fn new(given: Given) -> Source {
        Source {
            given: Arc::new(given),
            project: Arc::new(OnceLock::new()),
        }
    }

    fn project(&self) -> Option<&Project> {
        self.project
            .get_or_init(|| Project::load(&self.given.project).ok())
            .as_ref()
    }

    fn contexts(&self) -> Vec<CompletionCandidate> {
        let config = crate::context::read_kubeconfig(self.given.kubeconfig.as_deref());
        let Ok(config) = config else {
            return Vec::new();
        };
        config
            .contexts
            .into_iter()
            .map(|c| {
                let cluster = c.context.map(|c| format!("cluster {}", c.cluster));
                CompletionCandidate::new(c.name).help(cluster.map(Into::into))
            })
            .collect()
    }

    fn components(&self) -> Vec<CompletionCandidate> {
        let Some(project) = self.project() else {
            return Vec::new();
        };
        project
            .components
            .iter()
            .map(|c| {
                CompletionCandidate::new(&c.name).help(Some(
                    format!("{}, port {}", c.path.display(), c.port).into(),
                ))
            })
            .collect()
    }

    fn keys(&self, generatable_only: bool) -> Vec<CompletionCandidate> {
        let Some(project) = self.project() else {
            return Vec::new();
        };
        project
            .secret
            .keys
            .iter()
            .filter(|k| !generatable_only || k.generate_bytes.is_some())
            .map(|k| {
                let format = match k.format {
                    KeyFormat::Opaque => "opaque",
                    KeyFormat::PostgresUrl => "PostgreSQL URL",
                    KeyFormat::ApiKey => "API key",
                };
                let required = if k.required { "required" } else { "optional" };
                CompletionCandidate::new(&k.name).help(Some(format!("{format}, {required}").into()))
            })
            .collect()
    }
}

/// What an argument's values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Context,
    Component,
    /// `COMPONENT=REF`: the component and the `=`; the reference is the user's.
    ComponentAssignment,
    Key {
        generatable_only: bool,
    },
    /// `KEY=PATH` or `KEY=VALUE`: the key and the `=`, then a path if it is one.
    KeyAssignment {
        path: bool,
    },
}

fn kind(command: &str, parent: &str, arg: &Arg) -> Option<Kind> {
    let value_name = arg
        .get_value_names()
        .and_then(|names| names.first())
        .map(|name| name.as_str());
    let id = arg.get_id().as_str();
    let secrets = parent == "secrets";
    match value_name {
        Some("COMPONENT") => Some(Kind::Component),
        Some("COMPONENT=REF") => Some(Kind::ComponentAssignment),
        Some("KEY=PATH") => Some(Kind::KeyAssignment { path: true }),
        Some("KEY=VALUE") => Some(Kind::KeyAssignment { path: false }),
        _ if id == "component" => Some(Kind::Component),
        _ if id == "context" => Some(Kind::Context),
        // Only generatable keys can be rotated or generated.
        Some("KEY") | None if secrets && (id == "key" || value_name == Some("KEY")) => {
            Some(Kind::Key {
                generatable_only: command == "rotate" || id == "generate",
            })
        }
        _ => None,
    }
}

fn attach(command: clap::Command, source: &Source) -> clap::Command {
    attach_under(command, "", source)
}

fn attach_under(command: clap::Command, parent: &str, source: &Source) -> clap::Command {
    let name = command.get_name().to_string();
    // In place: re-adding an argument would move it and renumber the positionals.
    command
        .mut_args(|arg| match kind(&name, parent, &arg) {
            Some(kind) => with_candidates(arg, kind, source.clone()),
            None => arg,
        })
        .mut_subcommands(|sub| attach_under(sub, &name, source))
}

fn with_candidates(arg: Arg, kind: Kind, source: Source) -> Arg {
    match kind {
        Kind::Context => arg.add(ArgValueCandidates::new(move || source.contexts())),
        Kind::Component => arg.add(ArgValueCandidates::new(move || source.components())),
        Kind::Key { generatable_only } => arg.add(ArgValueCandidates::new(move || {
            source.keys(generatable_only)
        })),
        Kind::ComponentAssignment => arg.add(ArgValueCompleter::new(Assignment {
            names: move || source.components(),
            path: false,
        })),
        Kind::KeyAssignment { path } => arg.add(ArgValueCompleter::new(Assignment {
            names: move || source.keys(false),
            path,
        })),
    }
}

/// Completes `NAME=…`: the names with `=` until one is typed, then (for
/// paths) the files after it.
struct Assignment<F> {
    names: F,
    path: bool,
}

impl<F: Fn() -> Vec<CompletionCandidate> + Send + Sync> ValueCompleter for Assignment<F> {
    fn complete(&self, current: &OsStr) -> Vec<CompletionCandidate> {
        let current = current.to_string_lossy();
        match current.split_once('=') {
            None => (self.names)()
                .into_iter()
                .map(|c| {
                    let value = format!("{}=", c.get_value().to_string_lossy());
                    CompletionCandidate::new(value).help(c.get_help().cloned())
                })
                .filter(|c| c.get_value().to_string_lossy().starts_with(&*current))
                .collect(),
            Some((name, rest)) if self.path => PathCompleter::any()
                .complete(OsStr::new(rest))
                .into_iter()
                .map(|c| c.add_prefix(format!("{name}=")))
                .collect(),
            Some(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<OsString> {
        w.iter().map(OsString::from).collect()
    }

    fn project(w: &[&str]) -> PathBuf {
        Given::from_words(&words(w)).project
    }

    #[test]
    fn the_project_and_kubeconfig_come_from_the_words_typed() {
        assert_eq!(project(&["logs", ""]), PathBuf::from("."));
        assert_eq!(
            project(&["--project", "app", "logs", ""]),
            PathBuf::from("app")
        );
        assert_eq!(
            project(&["logs", "--project=app", "b"]),
            PathBuf::from("app")
        );
        // Still being typed: not yet the project.
        assert_eq!(project(&["--project", "ap"]), PathBuf::from("."));
        assert_eq!(project(&["--", "--project", "x", ""]), PathBuf::from("."));
        assert_eq!(
            Given::from_words(&words(&["--kubeconfig", "k", "--context", ""])).kubeconfig,
            Some(PathBuf::from("k"))
        );
        assert_eq!(Given::from_words(&words(&["up", ""])).kubeconfig, None);
    }

    #[test]
    fn every_component_and_key_argument_has_candidates() {
        let mut found = Vec::new();
        fn walk(cmd: &clap::Command, parent: &str, found: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                if let Some(kind) = kind(cmd.get_name(), parent, arg) {
                    found.push(format!("{} {}: {kind:?}", cmd.get_name(), arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, cmd.get_name(), found);
            }
        }
        walk(&Cli::command(), "", &mut found);
        for expected in [
            "kubectl-todo context: Context",
            "logs components: Component",
            "doctor component: Component",
            "render images: ComponentAssignment",
            "apply images: ComponentAssignment",
            "up images: ComponentAssignment",
            "set key: Key { generatable_only: false }",
            "rotate key: Key { generatable_only: true }",
            "delete key: Key { generatable_only: false }",
            "create stdin: Key { generatable_only: false }",
            "create generate: Key { generatable_only: true }",
            "create from_file: KeyAssignment { path: true }",
            "create from_literal: KeyAssignment { path: false }",
        ] {
            assert!(
                found.iter().any(|f| f == expected),
                "{expected} not in {found:#?}"
            );
        }
    }
}
