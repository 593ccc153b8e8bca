//! What an app's own Dockerfile says about running it, read before any build:
//! the port its final stage exposes, the user it runs as (with the UID the
//! Dockerfile gives a named user) and the files it copies that are missing.

use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;

use super::Evidence;

static USERADD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:adduser|useradd)\b[^&;|]*?(?:-u|--uid)[ =](\d+)[^&;|]*?\s([a-z_][\w-]*)\s*(?:$|&&|;|\|)")
        .expect("valid regex")
});

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub from: Evidence,
    /// The first port the final stage exposes.
    pub expose: Option<(u16, Evidence)>,
    /// The final stage's last `USER`, as written.
    pub user: Option<(String, Evidence)>,
    /// The UID the Dockerfile gives that user when it is a name created with
    /// a fixed UID (`adduser --uid 1001 nextjs`).
    pub uid: Option<u32>,
    /// Files `COPY`/`ADD` take from the context that the context lacks.
    pub missing: Vec<(String, Evidence)>,
}

impl Dockerfile {
    /// Whether the image runs as root: no `USER`, or `root`/`0`.
    pub fn runs_as_root(&self) -> bool {
        image_builder::own::runs_as_root(self.user.as_ref().map(|(u, _)| u.as_str()))
    }

    /// Why the image cannot run as kubectl todo runs images, if it cannot. A
    /// named user can: image-builder resolves it to numbers after the build.
    pub fn unusable(&self) -> Option<String> {
        if self.runs_as_root() {
            return Some(format!(
                "{} runs its final stage as root (no `USER`)",
                self.from.file.display()
            ));
        }
        let (file, at) = self.missing.first()?;
        Some(format!(
            "{at} copies `{file}`, which is not in the build context"
        ))
    }
}

pub(super) fn read(dir: &Path, rel: &Path, name: &str) -> Option<Dockerfile> {
    let text = std::fs::read_to_string(dir.join(name)).ok()?;
    let file = rel.join(name);
    let at = |line: usize| Evidence {
        file: file.clone(),
        line,
    };
    let mut out = Dockerfile {
        from: at(1),
        expose: None,
        user: None,
        uid: None,
        missing: Vec::new(),
    };
    let mut uids: Vec<(String, u32)> = Vec::new();
    for (line, instruction) in image_builder::own::instructions(&text) {
        let (word, args) = instruction
            .split_once(char::is_whitespace)
            .unwrap_or((&instruction, ""));
        let args = args.trim();
        match word.to_ascii_uppercase().as_str() {
            "FROM" => {
                // A new stage: only the last one's settings reach the image.
                out.from = at(line);
                out.expose = None;
                out.user = None;
                uids.clear();
            }
            "EXPOSE" => {
                let port = args
                    .split_whitespace()
                    .next()
                    .and_then(|p| p.split('/').next()?.parse().ok());
                if let (None, Some(p)) = (&out.expose, port) {
                    out.expose = Some((p, at(line)));
                }
            }
            "USER" => out.user = Some((args.to_string(), at(line))),
            "RUN" => {
                for c in USERADD.captures_iter(args) {
                    if let Ok(uid) = c[1].parse() {
                        uids.push((c[2].to_string(), uid));
                    }
                }
            }
            "COPY" | "ADD" => {
                let words: Vec<&str> = args.split_whitespace().collect();
                if words.iter().any(|w| w.starts_with("--from")) || args.starts_with('[') {
                    continue;
                }
                let sources: Vec<&str> = words
                    .iter()
                    .copied()
                    .filter(|w| !w.starts_with("--"))
                    .collect();
                if let Some((_, sources)) = sources.split_last() {
                    for s in sources {
                        let is_pattern = s.contains(['*', '?', '[', '$']) || s.contains("://");
                        if !is_pattern && !dir.join(s).exists() {
                            out.missing.push((s.to_string(), at(line)));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if let Some((user, _)) = &out.user {
        let name = user.split(':').next().unwrap_or_default();
        out.uid = uids.iter().rev().find(|(n, _)| n == name).map(|(_, u)| *u);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, files: &[&str]) -> Dockerfile {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), text).unwrap();
        for f in files {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        read(dir.path(), Path::new("web"), "Dockerfile").unwrap()
    }

    #[test]
    fn the_final_stage_decides_port_and_user() {
        let d = parse(
            "FROM node AS build\nUSER build\nEXPOSE 9999\nFROM node\nRUN addgroup --system --gid 1001 nodejs && \\\n    adduser --system --uid 1001 nextjs\nUSER nextjs\nEXPOSE 3000/tcp\n",
            &[],
        );
        assert_eq!(d.expose.as_ref().map(|e| (e.0, e.1.line)), Some((3000, 8)));
        assert_eq!(d.user.as_ref().map(|u| u.0.as_str()), Some("nextjs"));
        assert_eq!(d.uid, Some(1001));
        assert!(!d.runs_as_root());
        // image-builder resolves a named user after the build: the Dockerfile works as it is.
        assert_eq!(d.unusable(), None);
    }

    #[test]
    fn root_images_and_missing_files_are_named() {
        let d = parse(
            "FROM python\nCOPY pyproject.toml uv.lock ./\nCOPY --from=x /a /b\n",
            &["pyproject.toml"],
        );
        assert!(d.runs_as_root());
        assert_eq!(d.missing.len(), 1);
        assert_eq!(d.missing[0].0, "uv.lock");
        assert_eq!(d.missing[0].1.to_string(), "web/Dockerfile:2");
        let d = parse("FROM python\nCOPY app.py .\nUSER 1001:1001\n", &["app.py"]);
        assert_eq!(d.unusable(), None);
        let d = parse(
            "FROM python\nRUN useradd -u 1000 -m appuser\nUSER appuser\n",
            &[],
        );
        assert_eq!(d.uid, Some(1000));
    }
}
