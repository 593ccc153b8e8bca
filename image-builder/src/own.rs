//! The app's own Dockerfile, read before anything is built: the user its
//! final stage runs as. An image that would run as root is refused here,
//! before a build the post-build check ([`crate::check`]) would reject anyway.

use crate::error::{Error, Result};
use crate::spec::StackKind;

/// The final stage's last `USER` as written, and the line it is on (the
/// final `FROM`'s line when the stage has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalUser {
    pub user: Option<String>,
    pub line: usize,
}

pub fn final_user(text: &str) -> FinalUser {
    let mut out = FinalUser {
        user: None,
        line: 1,
    };
    for (line, instruction) in instructions(text) {
        let (word, args) = instruction
            .split_once(char::is_whitespace)
            .unwrap_or((instruction.as_str(), ""));
        match word.to_ascii_uppercase().as_str() {
            // A new stage: only the last one's user reaches the image.
            "FROM" => out = FinalUser { user: None, line },
            "USER" => {
                out = FinalUser {
                    user: Some(args.trim().to_string()),
                    line,
                }
            }
            _ => {}
        }
    }
    out
}

/// Whether an image whose final `USER` is `user` runs as root: no `USER`,
/// or `root`/`0` (with any group).
pub fn runs_as_root(user: Option<&str>) -> bool {
    match user {
        None => true,
        Some(u) => matches!(u.split(':').next().unwrap_or_default(), "root" | "0"),
    }
}

/// Refuses the Dockerfile at `path` (as messages name it) when its final
/// stage runs as root, naming both ways out: a numeric user in the
/// Dockerfile, or `recipe`, the stack whose generated recipe builds the
/// component instead.
pub fn refuse_root(path: &str, text: &str, recipe: Option<StackKind>) -> Result<()> {
    let last = final_user(text);
    if !runs_as_root(last.user.as_deref()) {
        return Ok(());
    }
    let reason = match &last.user {
        Some(u) => format!(
            "{path}:{} sets `USER {u}`: the image would run as root",
            last.line
        ),
        None => format!(
            "its final stage (from {path}:{}) has no `USER`: the image would run as root",
            last.line
        ),
    };
    let recipe = match recipe {
        Some(kind) => format!(
            "or set `stack: {}` for this component in the project file (todo.yaml) to build the generated recipe, which runs as UID 1001",
            kind.as_str()
        ),
        None => "or set `stack:` (nextjs, node, python, go, binary) for this component in the project file (todo.yaml) to build a generated recipe, which runs as UID 1001".into(),
    };
    Err(Error::Invalid {
        what: format!("Dockerfile {path}"),
        reason,
        fix: format!("add `USER 1001:1001` as the last instruction of {path}, {recipe}"),
    })
}

/// Instructions with continuation lines joined, each with its first line
/// (1-based): how a Dockerfile is read wherever it is read before a build.
pub fn instructions(text: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut open = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('#') || (line.is_empty() && !open) {
            continue;
        }
        let (body, continues) = match line.strip_suffix('\\') {
            Some(b) => (b.trim_end(), true),
            None => (line, false),
        };
        match (open, out.last_mut()) {
            (true, Some((_, text))) => {
                text.push(' ');
                text.push_str(body);
            }
            _ => out.push((i + 1, body.to_string())),
        }
        open = continues;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_final_stage_decides() {
        let text = "FROM node AS build\nUSER 1001\nFROM node\nRUN adduser \\\n  --uid 1001 nextjs\nUSER nextjs\n";
        assert_eq!(
            final_user(text),
            FinalUser {
                user: Some("nextjs".into()),
                line: 6
            }
        );
        assert!(!runs_as_root(Some("nextjs")));
        assert!(refuse_root("web/Dockerfile", text, None).is_ok());
        let root = "FROM python AS deps\nUSER 1001\nFROM python:3.12-slim\nCOPY . .\n";
        assert_eq!(
            final_user(root),
            FinalUser {
                user: None,
                line: 3
            }
        );
        for user in ["root", "0", "0:0", "root:staff"] {
            assert!(runs_as_root(Some(user)), "{user}");
        }
    }

    #[test]
    fn a_root_image_is_refused_with_both_ways_out() {
        let err = refuse_root(
            "backend/Dockerfile",
            "FROM python:3.12-slim\nCOPY . .\n",
            Some(StackKind::Python),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "invalid Dockerfile backend/Dockerfile: its final stage (from backend/Dockerfile:1) has no `USER`: the image would run as root\n  fix: add `USER 1001:1001` as the last instruction of backend/Dockerfile, or set `stack: python` for this component in the project file (todo.yaml) to build the generated recipe, which runs as UID 1001"
        );
        let err = refuse_root("Dockerfile", "FROM x\nUSER root\n", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("Dockerfile:2 sets `USER root`"), "{err}");
    }
}
