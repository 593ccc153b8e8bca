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

/// A failure, as what happened and why ([`Error::problem`]) and the change or
/// command that fixes it ([`Error::fix`]); `Display` prints both, the fix on
/// its own `  fix: ` line, so callers that lay findings out themselves (such
/// as kubectl-todo's doctor) take the two parts rather than parse the text.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    MissingDir {
        path: PathBuf,
        reason: String,
    },

    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    Ignore {
        pattern: String,
        reason: String,
    },

    UnknownStack {
        path: PathBuf,
    },

    Invalid {
        what: String,
        reason: String,
        fix: String,
    },

    Engine {
        reason: String,
        fix: String,
    },

    Build(Box<BuildFailure>),

    Check {
        image: String,
        reason: String,
        fix: String,
    },

    Load {
        image: String,
        target: String,
        reason: String,
        fix: String,
    },

    Push {
        image: String,
        reason: String,
        fix: String,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\n  fix: {}", self.problem(), self.fix())
    }
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

impl BuildFailure {
    /// What failed, where, and the build's last words; everything but the fix.
    fn problem(&self) -> String {
        let mut out = format!(
            "building {} ({}) failed: {}",
            self.component,
            self.image,
            self.message.trim()
        );
        if let Some(step) = &self.step {
            out.push_str(&format!("\n  step: {}", step.trim()));
        }
        if !self.last_lines.is_empty() {
            out.push_str("\n  last output:");
            for l in &self.last_lines {
                out.push_str(&format!("\n    {l}"));
            }
        }
        out
    }
}

impl std::fmt::Display for BuildFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\n  fix: {}", self.problem(), self.fix)
    }
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// What happened and why, without the fix.
    pub fn problem(&self) -> String {
        match self {
            Error::MissingDir { path, reason } => format!(
                "component directory {} does not exist\n  why: {reason}",
                path.display()
            ),
            Error::Io { path, source } => format!("cannot read {}: {source}", path.display()),
            Error::Ignore { pattern, reason } => {
                format!("malformed .dockerignore pattern `{pattern}`: {reason}")
            }
            Error::UnknownStack { path } => format!(
                "cannot tell which stack {} uses\n  why: looked for a Dockerfile, package.json (Next.js/Node), requirements.txt or pyproject.toml (Python), go.mod (Go) and a prebuilt executable, and found none",
                path.display()
            ),
            Error::Invalid { what, reason, .. } => format!("invalid {what}: {reason}"),
            Error::Engine { reason, .. } => format!("cannot reach the Docker Engine: {reason}"),
            Error::Build(b) => b.problem(),
            Error::Check { image, reason, .. } => {
                format!("image {image} fails its checks: {reason}")
            }
            Error::Load {
                image,
                target,
                reason,
                ..
            } => format!("cannot load {image} into {target}: {reason}"),
            Error::Push { image, reason, .. } => format!("cannot push {image}: {reason}"),
        }
    }

    /// The change or command that fixes it.
    pub fn fix(&self) -> String {
        match self {
            Error::MissingDir { .. } => {
                "pass an existing app directory, e.g. `image-builder plan ./frontend`".into()
            }
            Error::Io { path, .. } => format!(
                "check the file's permissions (`ls -l {}`) or exclude it in .dockerignore",
                path.display()
            ),
            Error::Ignore { .. } => "correct the line in .dockerignore (syntax: https://docs.docker.com/build/concepts/context/#dockerignore-files)".into(),
            Error::UnknownStack { .. } => "add one of those, or set `stack:` (nextjs, node, python, go, binary, dockerfile) for this component in the project file".into(),
            Error::Build(b) => b.fix.clone(),
            Error::Invalid { fix, .. }
            | Error::Engine { fix, .. }
            | Error::Check { fix, .. }
            | Error::Load { fix, .. }
            | Error::Push { fix, .. } => fix.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_problem_then_the_fix_on_its_own_line() {
        let err = Error::UnknownStack {
            path: PathBuf::from("web"),
        };
        assert_eq!(
            err.to_string(),
            format!("{}\n  fix: {}", err.problem(), err.fix())
        );
        assert!(
            err.problem()
                .starts_with("cannot tell which stack web uses\n  why: ")
        );
        assert!(!err.problem().contains("fix:"));
        assert!(err.fix().starts_with("add one of those"));
    }

    #[test]
    fn a_failed_build_keeps_its_step_and_output_out_of_the_fix() {
        let err = Error::Build(Box::new(BuildFailure {
            component: "api".into(),
            image: "shop-api:abc".into(),
            step: Some("RUN pip install .".into()),
            message: "exit code 1".into(),
            last_lines: vec!["ERROR: no such package".into()],
            fix: "correct requirements.txt".into(),
        }));
        assert_eq!(
            err.to_string(),
            "building api (shop-api:abc) failed: exit code 1\n  step: RUN pip install .\n  last output:\n    ERROR: no such package\n  fix: correct requirements.txt"
        );
        assert_eq!(err.fix(), "correct requirements.txt");
    }
}
