//! Errors of `kubectl todo secrets`. None of them holds a value: messages
//! from the API server are redacted before they are kept (see [`Error::api`]).

use std::fmt;
use std::path::PathBuf;

use super::value::{Value, redact};

/// One invalid input: which key, where it came from, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: Option<String>,
    pub origin: String,
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "{key} ({}): {}", self.origin, self.reason),
            None => write!(f, "{}: {}", self.origin, self.reason),
        }
    }
}

pub struct Problems<'a>(pub &'a [Problem]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in self.0 {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "refusing the value of {key} given on the command line: it would stay in your shell history and be visible to other users in `ps`"
    )]
    Literal { key: String },
    #[error("{} invalid; nothing was written:{}", count(.0.len()), Problems(.0))]
    Invalid(Vec<Problem>),
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("stdin is not a terminal and no value was given{}", for_key(.key))]
    NoInput { key: Option<String> },
    #[error("required {} missing: {}; nothing was written", if .0.len() == 1 { "key is" } else { "keys are" }, .0.join(", "))]
    Missing(Vec<String>),
    #[error("{key} cannot be generated: todo.yaml gives it no generateBytes")]
    NotGeneratable { key: String },
    #[error("secret/{secret} has no key {key}")]
    NoSuchKey { secret: String, key: String },
    #[error("secret/{secret} does not exist in namespace {namespace}")]
    NoSecret { secret: String, namespace: String },
    #[error("namespace {0} does not exist; nothing was written")]
    NoNamespace(String),
    #[error(
        "the values entered for {key} did not match or were invalid three times; nothing was written"
    )]
    Attempts { key: String },
    #[error("cannot use the terminal")]
    Terminal(#[source] std::io::Error),
    #[error("cancelled; nothing was written")]
    Cancelled,
    #[error("cannot {action}: {message}")]
    Api {
        action: String,
        code: Option<u16>,
        /// What RBAC must allow, as `kubectl auth can-i` takes it: `patch secrets -n todo`.
        permission: String,
        message: String,
    },
    #[error(
        "secret/{secret} was updated, but restarting the Deployments that use it failed: {message}"
    )]
    Restart {
        secret: String,
        namespace: String,
        message: String,
    },
}

fn count(n: usize) -> String {
    if n == 1 {
        "1 value is".into()
    } else {
        format!("{n} values are")
    }
}

fn for_key(key: &Option<String>) -> String {
    key.as_ref()
        .map(|k| format!(" for {k}"))
        .unwrap_or_default()
}

impl Error {
    /// Keeps only the redacted text of a client error: API messages can echo
    /// parts of a request body, and the body holds the values.
    pub fn api<'a>(
        action: impl Into<String>,
        permission: &str,
        err: &kube::Error,
        values: impl IntoIterator<Item = &'a Value> + Clone,
    ) -> Error {
        let (code, raw) = match err {
            kube::Error::Api(status) => (Some(status.code), status.message.clone()),
            other => (None, chain(other)),
        };
        Error::Api {
            action: action.into(),
            code,
            permission: permission.to_string(),
            message: redact(&raw, values),
        }
    }
}

impl crate::report::Hinted for Error {
    fn hint(&self) -> Option<String> {
        let source_flags =
            "--from-env-file PATH, --from-file KEY=PATH, --stdin KEY or --generate KEY";
        Some(match self {
            Error::Literal { .. } => format!(
                "pass it with {source_flags}, or run on a terminal to be prompted; --allow-insecure-literal accepts it anyway"
            ),
            Error::Invalid(_) => "fix the values listed and run the command again".into(),
            Error::Read { .. } => "check the path and its permissions".into(),
            Error::NoInput { key: None } => format!("give the values with {source_flags}, or run on a terminal to be prompted"),
            Error::NoInput { key: Some(k) } => format!(
                "give the value with --stdin, --from-file PATH or --generate, e.g. `kubectl todo secrets set {k} --stdin < file`"
            ),
            Error::Missing(keys) => format!(
                "give them too, e.g. `--stdin {}`, or run `kubectl todo secrets create` on a terminal",
                keys[0]
            ),
            Error::NotGeneratable { key } => format!(
                "set a new value with `kubectl todo secrets set {key}`, or add `generateBytes: 32` to the key in todo.yaml"
            ),
            Error::NoSuchKey { .. } => "list the keys with `kubectl todo secrets list`".into(),
            Error::NoSecret { .. } => "create it with `kubectl todo secrets create`".into(),
            Error::NoNamespace(ns) => format!(
                "pass --create-namespace, or create it with `kubectl create namespace {ns}`"
            ),
            Error::Attempts { key } => format!("run `kubectl todo secrets set {key}` to try again"),
            Error::Terminal(_) => format!("run without a terminal and pass the values with {source_flags}"),
            Error::Cancelled => return None,
            Error::Api {
                code, permission, ..
            } => match code {
                Some(403) => format!(
                    "you lack the permission; check with `kubectl auth can-i {permission}` and ask a cluster admin for a Role that allows it"
                ),
                Some(409) => "the Secret changed while kubectl-todo was writing it; run the command again".into(),
                Some(c) if *c >= 500 => "the API server failed; try again, and check it with `kubectl get --raw /readyz`".into(),
                None => "check that the cluster is reachable with `kubectl cluster-info`".into(),
                _ => return None,
            },
            Error::Restart { namespace, .. } => format!(
                "restart them yourself with `kubectl rollout restart deployment/NAME -n {namespace}`"
            ),
        })
    }
}
crate::report::hinted!(Error);

fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    crate::context::describe(err)
}
