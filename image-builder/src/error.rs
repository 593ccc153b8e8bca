//! Library errors. Each variant says what happened, why, and how to fix it.

use std::path::PathBuf;

/// Process exit codes used by the `image-builder` binary (also documented in `--help`).
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// Unexpected internal error.
    pub const INTERNAL: i32 = 1;
    /// Bad command line (clap's usage errors).
    pub const USAGE: i32 = 2;
    /// Bad input: missing directory, unreadable file, malformed `.dockerignore`,
    /// unknown stack, bad project file.
    pub const INPUT: i32 = 3;
    /// The Docker Engine is not reachable (not running, permission denied).
    pub const ENGINE: i32 = 4;
    /// The image build failed (Dockerfile error, failing step, disk full).
    pub const BUILD: i32 = 5;
    /// A post-build check failed (root user, over `--max-size`).
    pub const CHECK: i32 = 6;
    /// Loading into the cluster or pushing to a registry failed.
    pub const DELIVER: i32 = 7;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "component directory {path} does not exist\n  why: {reason}\n  fix: pass an existing app directory, e.g. `image-builder plan ./frontend`"
    )]
    MissingDir { path: PathBuf, reason: String },

    #[error(
        "cannot read {path}: {source}\n  fix: check the file's permissions (`ls -l {path}`) or exclude it in .dockerignore"
    )]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "malformed .dockerignore pattern `{pattern}`: {reason}\n  fix: correct the line in .dockerignore (syntax: https://docs.docker.com/build/concepts/context/#dockerignore-files)"
    )]
    Ignore { pattern: String, reason: String },

    #[error(
        "cannot tell which stack {path} uses\n  why: looked for a Dockerfile, package.json (Next.js/Node), requirements.txt or pyproject.toml (Python), go.mod (Go) and a prebuilt executable, and found none\n  fix: add one of those, or set `stack:` (nextjs, node, python, go, binary, dockerfile) for this component in the project file"
    )]
    UnknownStack { path: PathBuf },

    #[error("invalid {what}: {reason}\n  fix: {fix}")]
    Invalid {
        what: String,
        reason: String,
        fix: String,
    },

    #[error("cannot reach the Docker Engine: {reason}\n  fix: {fix}")]
    Engine { reason: String, fix: String },

    #[error("{0}")]
    Build(Box<BuildFailure>),

    #[error("image {image} fails its checks: {reason}\n  fix: {fix}")]
    Check {
        image: String,
        reason: String,
        fix: String,
    },

    #[error("cannot load {image} into {target}: {reason}\n  fix: {fix}")]
    Load {
        image: String,
        target: String,
        reason: String,
        fix: String,
    },

    #[error("cannot push {image}: {reason}\n  fix: {fix}")]
    Push {
        image: String,
        reason: String,
        fix: String,
    },
}

/// Details of a failed build: the step, its command and its last output lines.
#[derive(Debug, Clone)]
pub struct BuildFailure {
    pub component: String,
    pub image: String,
    pub step: Option<String>,
    pub message: String,
    pub last_lines: Vec<String>,
    pub fix: String,
}

impl std::fmt::Display for BuildFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "building {} ({}) failed: {}",
            self.component,
            self.image,
            self.message.trim()
        )?;
        if let Some(step) = &self.step {
            writeln!(f, "  step: {}", step.trim())?;
        }
        if !self.last_lines.is_empty() {
            writeln!(f, "  last output:")?;
            for l in &self.last_lines {
                writeln!(f, "    {l}")?;
            }
        }
        write!(f, "  fix: {}", self.fix)
    }
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The exit code the binary uses for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::MissingDir { .. }
            | Error::Io { .. }
            | Error::Ignore { .. }
            | Error::UnknownStack { .. }
            | Error::Invalid { .. } => exit::INPUT,
            Error::Engine { .. } => exit::ENGINE,
            Error::Build(_) => exit::BUILD,
            Error::Check { .. } => exit::CHECK,
            Error::Load { .. } | Error::Push { .. } => exit::DELIVER,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
