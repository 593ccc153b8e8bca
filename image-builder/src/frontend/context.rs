//! The build context as BuildKit holds it, read through the gateway: the tree that
//! stack detection looks at and the entries the input digest is made of.

use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};

use super::gateway::Bridge;
use crate::context::EntryKind;
use crate::detect::{Tree, TreeEntry};
use crate::digest::{HashedContext, HashedEntry};
use crate::error::{Error, Result};
use crate::ignore::{Matcher, ParentInfo};

// Go's os.FileMode type bits, as fsutil reports them.
const MODE_DIR: u32 = 1 << 31;
const MODE_SYMLINK: u32 = 1 << 27;
const MODE_OTHER: u32 = (1 << 26) | (1 << 25) | (1 << 24) | (1 << 21);

#[derive(Debug, Clone)]
struct Node {
    kind: EntryKind,
    exec: bool,
    data: Vec<u8>,
    link: String,
}

/// How much of the context to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every file: the input digest needs them all.
    Full,
    /// What stack detection looks at (the client already sent the digest).
    Detection,
}

/// Top-level files stack detection reads.
const DETECTION_FILES: &[&str] = &[
    "Dockerfile",
    "package.json",
    "pnpm-lock.yaml",
    "yarn.lock",
    "package-lock.json",
    "server.js",
    "index.js",
    "app.js",
    "main.js",
    "next.config.js",
    "next.config.mjs",
    "next.config.ts",
    "next.config.cjs",
    "requirements.txt",
    "pyproject.toml",
    "main.py",
    "app.py",
    "server.py",
    "go.mod",
    "main.go",
];

/// Directories detection looks into, the files it reads there, and the top-level
/// files that make it look (Python apps in app/ or src/, Go commands in cmd/).
type DetectionDir = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);
const DETECTION_DIRS: &[DetectionDir] = &[
    ("app", &["main.py"], &["requirements.txt", "pyproject.toml"]),
    ("src", &["main.py"], &["requirements.txt", "pyproject.toml"]),
    ("cmd", &[], &["go.mod"]),
];

/// The context (or what detection needs of it) in memory: small apps are what this
/// builds.
#[derive(Debug, Clone, Default)]
pub struct ContextTree {
    nodes: BTreeMap<String, Node>,
}

fn gateway_error(what: &str, e: tonic::Status) -> Error {
    Error::Invalid {
        what: what.to_string(),
        reason: format!("BuildKit's gateway answered: {}", e.message()),
        fix: "check that the build context was sent (and the engine's logs)".into(),
    }
}

impl ContextTree {
    /// Walk the solved context `ctx_ref`, leaving out what `matcher` excludes, as
    /// [`crate::context::walk`] does on disk.
    pub async fn load(
        bridge: &mut Bridge,
        ctx_ref: &str,
        matcher: &Matcher,
        scope: Scope,
    ) -> Result<Self> {
        let mut t = ContextTree::default();
        let mut todo = vec![(String::new(), ParentInfo::default())];
        while let Some((dir, parent)) = todo.pop() {
            // Subdirectories come after the whole top level: by now it is known
            // whether detection will look into this one.
            if scope == Scope::Detection
                && !dir.is_empty()
                && !DETECTION_DIRS.iter().any(|(d, _, needs)| {
                    *d == dir && needs.iter().any(|n| t.nodes.contains_key(*n))
                })
            {
                continue;
            }
            let stats = bridge
                .read_dir(ctx_ref, &format!("/{dir}"))
                .await
                .map_err(|e| gateway_error(&format!("context directory /{dir}"), e))?;
            for st in stats {
                let name = st.path.rsplit('/').next().unwrap_or_default().to_string();
                let rel = if dir.is_empty() {
                    name.clone()
                } else {
                    format!("{dir}/{name}")
                };
                if dir.is_empty() && name == ".dockerignore" {
                    continue;
                }
                let (excluded, info) = matcher.matches_with_parent(&rel, &parent);
                let wanted_file = match scope {
                    Scope::Full => true,
                    Scope::Detection if dir.is_empty() => {
                        DETECTION_FILES.contains(&name.as_str()) || st.mode & 0o111 != 0
                    }
                    Scope::Detection => DETECTION_DIRS
                        .iter()
                        .any(|(d, files, _)| *d == dir && files.contains(&name.as_str())),
                };
                if st.mode & MODE_DIR != 0 {
                    if excluded && !matcher.may_reinclude_below(&rel) {
                        continue;
                    }
                    if !excluded {
                        t.nodes.insert(
                            rel.clone(),
                            Node {
                                kind: EntryKind::Dir,
                                exec: false,
                                data: Vec::new(),
                                link: String::new(),
                            },
                        );
                    }
                    if scope == Scope::Full
                        || (dir.is_empty() && DETECTION_DIRS.iter().any(|(d, _, _)| *d == rel))
                    {
                        todo.push((rel, info));
                    }
                } else if excluded || st.mode & MODE_OTHER != 0 {
                    continue;
                } else if st.mode & MODE_SYMLINK != 0 {
                    t.nodes.insert(
                        rel,
                        Node {
                            kind: EntryKind::Symlink,
                            exec: false,
                            data: Vec::new(),
                            link: st.linkname,
                        },
                    );
                } else if wanted_file {
                    // Detection needs an executable's first bytes only.
                    let limit = (scope == Scope::Detection
                        && !DETECTION_FILES.contains(&name.as_str()))
                    .then_some(4);
                    let data = bridge
                        .read_file(ctx_ref, &rel, limit)
                        .await
                        .map_err(|e| gateway_error(&format!("context file {rel}"), e))?;
                    t.nodes.insert(
                        rel,
                        Node {
                            kind: EntryKind::File,
                            exec: st.mode & 0o111 != 0,
                            data,
                            link: String::new(),
                        },
                    );
                }
            }
        }
        Ok(t)
    }

    /// Every path, and whether it is a directory.
    pub fn paths(&self) -> impl Iterator<Item = (&str, bool)> {
        self.nodes
            .iter()
            .map(|(rel, n)| (rel.as_str(), n.kind == EntryKind::Dir))
    }

    /// The entries as the input digest takes them.
    pub fn hashed(&self) -> HashedContext {
        let mut ctx = HashedContext::default();
        for (rel, n) in &self.nodes {
            let hash = if n.kind == EntryKind::File {
                Sha256::digest(&n.data).into()
            } else {
                [0; 32]
            };
            ctx.total_bytes += n.data.len() as u64;
            ctx.entries.push(HashedEntry {
                rel: rel.clone(),
                kind: n.kind,
                exec: n.exec,
                size: n.data.len() as u64,
                hash,
                link_target: (n.kind == EntryKind::Symlink).then(|| n.link.clone()),
            });
        }
        // The digest orders entries by the bytes of their paths, like the disk walk.
        ctx.entries
            .sort_unstable_by(|a, b| a.rel.as_bytes().cmp(b.rel.as_bytes()));
        ctx.hashed_files = ctx
            .entries
            .iter()
            .filter(|e| e.kind == EntryKind::File)
            .count();
        ctx
    }

    fn node(&self, rel: &str) -> Option<&Node> {
        let mut n = self.nodes.get(rel.trim_start_matches("./"))?;
        // Follow links inside the context (as the disk checks follow them).
        for _ in 0..8 {
            if n.kind != EntryKind::Symlink {
                return Some(n);
            }
            n = self.nodes.get(n.link.trim_start_matches('/'))?;
        }
        None
    }
}

impl Tree for ContextTree {
    fn read_bytes(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .node(rel)
            .filter(|n| n.kind == EntryKind::File)
            .map(|n| n.data.clone()))
    }
    fn is_file(&self, rel: &str) -> bool {
        self.node(rel).is_some_and(|n| n.kind == EntryKind::File)
    }
    fn is_dir(&self, rel: &str) -> bool {
        rel.is_empty() || self.node(rel).is_some_and(|n| n.kind == EntryKind::Dir)
    }
    fn list(&self, rel: &str) -> Result<Vec<TreeEntry>> {
        let prefix = if rel.is_empty() {
            String::new()
        } else {
            format!("{rel}/")
        };
        Ok(self
            .nodes
            .iter()
            .filter_map(|(k, n)| {
                let name = k.strip_prefix(&prefix)?;
                (!name.contains('/')).then(|| TreeEntry {
                    name: name.to_string(),
                    is_dir: self.is_dir(k),
                    is_file: n.kind == EntryKind::File,
                    executable: n.exec,
                })
            })
            .collect())
    }
    fn magic(&self, rel: &str) -> Option<[u8; 4]> {
        let n = self.node(rel)?;
        n.data.get(..4).map(|b| [b[0], b[1], b[2], b[3]])
    }
    fn display(&self, rel: &str) -> String {
        if rel.is_empty() {
            "the build context".into()
        } else {
            format!("{rel} in the build context")
        }
    }
}
