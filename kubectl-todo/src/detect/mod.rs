//! Repository detection: what an app's repository already says about how it
//! runs, each fact with the file and line it comes from. It reads, in this
//! order of trust, the code, the app's Dockerfiles, compose files, Helm
//! values and templates, and example environment files; never `.env` values.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::project::Stack;

mod dockerfile;
mod envfile;
mod node;
mod python;
mod repo;
mod summary;
mod walk;

pub use dockerfile::Dockerfile;
pub use envfile::{is_credential, is_placeholder, is_stand_in, looks_real};
pub use node::HostRef;
pub use summary::summary;

/// Where a fact was read: a file relative to the app's root, and a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub file: PathBuf,
    pub line: usize,
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// A value and where it was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Found<T> {
    pub value: T,
    pub from: Evidence,
}

/// An HTTP path the app serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub path: String,
    pub from: Evidence,
}

/// An environment variable the app reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    pub name: String,
    /// The app fails without it (no default, no fallback).
    pub required: bool,
    /// A default or sample value, when the source gives one.
    pub example: Option<String>,
    pub from: Evidence,
}

impl Read {
    fn new(name: &str, required: bool, example: Option<String>, from: Evidence) -> Read {
        Read {
            name: name.to_string(),
            required,
            example,
            from,
        }
    }
}

/// A Secret key a component reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Key {
    pub name: String,
    pub required: bool,
    pub from: Evidence,
}

/// A component found in the repository.
#[derive(Debug, Clone)]
pub struct Component {
    pub name: String,
    /// Relative to the app's root.
    pub path: PathBuf,
    pub stack: Found<Stack>,
    pub port: Option<Found<u16>>,
    /// The route that serves as health check, if the app has one.
    pub health: Option<Route>,
    /// A separate readiness route, if the app has one.
    pub ready: Option<Route>,
    /// `/`, when something says the app serves it.
    pub root_route: Option<Route>,
    /// NodePort a compose file or Helm chart exposes it on.
    pub node_port: Option<Found<u16>>,
    /// Settings (ConfigMap) with their sample values.
    pub settings: Vec<Found<(String, Option<String>)>>,
    pub secret_keys: Vec<Key>,
    /// `NEXT_PUBLIC_*` names, inlined at build time.
    pub public: Vec<Read>,
    /// Hosts the code calls, to be resolved in the cluster.
    pub hosts: Vec<HostRef>,
    pub dockerfile: Option<Dockerfile>,
    /// What detection could not decide, or what needs a hand.
    pub notes: Vec<String>,
}

/// An app's root and what it holds.
#[derive(Debug, Clone)]
pub struct App {
    pub root: PathBuf,
    pub components: Vec<Component>,
    /// Secret key names a Helm Secret template or compose file declares.
    pub declared_keys: Vec<Key>,
    /// Things the user must know (a real-looking credential in an example file).
    pub warnings: Vec<String>,
}

/// The folders under `start` (itself included) that hold an app: a directory
/// whose subfolders (or `apps/*`, `services/*`) are components. The search
/// stops at the first app on each branch and goes at most four levels down.
pub fn candidates(start: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut level = vec![start.to_path_buf()];
    for _ in 0..=4 {
        let mut next = Vec::new();
        for dir in level {
            if !component_dirs(&dir).is_empty() {
                found.push(dir);
            } else {
                next.extend(walk::subdirs(&dir, &walk::ignored_names(&dir)));
            }
        }
        level = next;
    }
    found
}

/// The component directories of an app root, relative to it.
fn component_dirs(root: &Path) -> Vec<PathBuf> {
    let ignored = walk::ignored_names(root);
    let mut dirs = Vec::new();
    for sub in walk::subdirs(root, &ignored) {
        if classify(&sub).is_some() {
            dirs.push(sub);
        } else if sub
            .file_name()
            .is_some_and(|n| ["apps", "services", "packages"].contains(&&*n.to_string_lossy()))
        {
            dirs.extend(
                walk::subdirs(&sub, &ignored)
                    .into_iter()
                    .filter(|d| classify(d).is_some()),
            );
        }
    }
    dirs.into_iter()
        .filter_map(|d| d.strip_prefix(root).ok().map(Path::to_path_buf))
        .collect()
}

/// The stack of a directory as image-builder's recipe would build it (its
/// own Dockerfile aside), with the file and line that tell it. Only Node,
/// Next.js and Python folders are components, and a package.json without
/// dependencies (monorepo tooling) makes none.
fn classify(dir: &Path) -> Option<(Stack, usize, &'static str, Option<String>)> {
    use image_builder::spec::StackKind;
    let detected =
        image_builder::detect::recipe_in(&image_builder::detect::FsTree(dir), &Default::default())
            .ok()?;
    let package = std::fs::read_to_string(dir.join("package.json")).ok();
    match detected.stack {
        StackKind::Python => {
            let file = ["requirements.txt", "pyproject.toml"]
                .into_iter()
                .find(|f| dir.join(f).is_file())?;
            let note = package.is_some().then(|| {
                format!("{file} beside a package.json without dependencies (scripts only): the component is Python")
            });
            Some((Stack::Python, 1, file, note))
        }
        StackKind::Nextjs | StackKind::Node => {
            let text = package?;
            let manifest: serde_json::Value = serde_json::from_str(&text).ok()?;
            let has_deps = ["dependencies", "devDependencies"].iter().any(|k| {
                manifest
                    .get(k)
                    .and_then(|d| d.as_object())
                    .is_some_and(|d| !d.is_empty())
            });
            if !has_deps {
                return None;
            }
            Some(match detected.stack {
                StackKind::Nextjs => {
                    let line = text
                        .lines()
                        .position(|l| l.contains("\"next\""))
                        .map_or(1, |i| i + 1);
                    (Stack::Nextjs, line, "package.json", None)
                }
                _ => (Stack::Node, 1, "package.json", None),
            })
        }
        _ => None,
    }
}

/// Everything detection finds in the app at `root`.
pub fn app(root: &Path) -> App {
    let mut components: Vec<Component> = component_dirs(root)
        .into_iter()
        .filter_map(|rel| component(root, &rel))
        .collect();
    let mut warnings = Vec::new();
    let mut declared_keys = Vec::new();
    repo::apply(root, &mut components, &mut declared_keys, &mut warnings);
    for c in &components {
        for e in envfile::read(&root.join(&c.path), &c.path) {
            if is_credential(&e.name, Some(&e.value)) && looks_real(&e.value) {
                warnings.push(format!(
                    "{} holds what looks like a real credential for `{}`: it is not copied anywhere; replace it with a placeholder (`{}=change-me`) and rotate the credential",
                    e.from, e.name, e.name
                ));
            }
        }
    }
    App {
        root: root.to_path_buf(),
        components,
        declared_keys,
        warnings,
    }
}

fn component(root: &Path, rel: &Path) -> Option<Component> {
    let dir = root.join(rel);
    let (stack, line, file, note) = classify(&dir)?;
    let ignored = {
        let mut i = walk::ignored_names(root);
        i.extend(walk::ignored_names(&dir));
        i
    };
    let name = dns_name(&rel.file_name()?.to_string_lossy());
    let mut c = Component {
        name,
        path: rel.to_path_buf(),
        stack: Found {
            value: stack,
            from: Evidence {
                file: rel.join(file),
                line,
            },
        },
        port: None,
        health: None,
        ready: None,
        root_route: None,
        node_port: None,
        settings: Vec::new(),
        secret_keys: Vec::new(),
        public: Vec::new(),
        hosts: Vec::new(),
        dockerfile: dockerfile::read(&dir, rel, "Dockerfile"),
        notes: note.into_iter().collect(),
    };
    let (routes, reads) = match stack {
        Stack::Python => {
            let files = walk::files(&dir, &[".py"], &ignored);
            python::scan(&dir, rel, &files)
        }
        _ => {
            let files = walk::files(&dir, node::SOURCE, &ignored);
            let facts = node::scan(&dir, rel, &files, stack == Stack::Nextjs);
            c.port = facts.port.map(|(value, from)| Found { value, from });
            c.hosts = facts.hosts;
            (facts.routes, facts.reads)
        }
    };
    if c.port.is_none()
        && let Some(d) = &c.dockerfile
        && let Some((value, from)) = &d.expose
    {
        c.port = Some(Found {
            value: *value,
            from: from.clone(),
        });
    }
    c.health = pick(&routes, &["health", "healthz", "livez", "ping"]);
    c.ready = pick(&routes, &["ready", "readyz", "readiness"]);
    c.root_route = routes.iter().find(|r| r.path == "/").cloned();
    let examples = envfile::read(&dir, rel);
    add_reads(&mut c, reads, &examples);
    Some(c)
}

/// The shortest route whose last segment is one of `names`, so that
/// `/health` wins over `/health/with-db`.
fn pick(routes: &[Route], names: &[&str]) -> Option<Route> {
    let mut hits: Vec<&Route> = routes
        .iter()
        .filter(|r| {
            let last = r
                .path
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default();
            names.contains(&last)
        })
        .collect();
    hits.sort_by_key(|r| (r.path.len(), r.path.clone()));
    hits.first().map(|r| (*r).clone())
}

/// Sorts what the code reads (then what the example files name) into
/// Secret keys, settings and build-time public variables, one entry a name:
/// the code's own word first.
fn add_reads(c: &mut Component, reads: Vec<Read>, examples: &[envfile::Entry]) {
    let from_examples = examples.iter().map(|e| Read {
        name: e.name.clone(),
        // A name only an example file lists is one the app may do without.
        required: false,
        example: Some(e.value.clone()),
        from: e.from.clone(),
    });
    for r in reads.into_iter().chain(from_examples) {
        let sample = examples
            .iter()
            .find(|e| e.name == r.name)
            .map(|e| e.value.clone())
            .or(r.example.clone());
        add_read(c, r, sample);
    }
}

fn add_read(c: &mut Component, r: Read, sample: Option<String>) {
    let known = c.secret_keys.iter().any(|k| k.name == r.name)
        || c.settings.iter().any(|s| s.value.0 == r.name)
        || c.public.iter().any(|p| p.name == r.name);
    if known {
        if r.required
            && let Some(k) = c.secret_keys.iter_mut().find(|k| k.name == r.name)
        {
            k.required = true;
        }
        return;
    }
    if r.name.starts_with("NEXT_PUBLIC_") {
        c.public.push(Read {
            example: sample,
            ..r
        });
    } else if is_credential(&r.name, sample.as_deref()) {
        c.secret_keys.push(Key {
            name: r.name,
            required: r.required,
            from: r.from,
        });
    } else {
        // A sample that only makes sense on a laptop is no default in a cluster.
        let value = sample.filter(|s| !is_placeholder(s));
        c.settings.push(Found {
            value: (r.name, value),
            from: r.from,
        });
    }
}

/// A directory name as a DNS label (possibly empty).
pub fn dns_name(dir: &str) -> String {
    let mapped: String = dir
        .to_ascii_lowercase()
        .chars()
        .map(|ch| if ch.is_ascii_alphanumeric() { ch } else { '-' })
        .collect();
    mapped.trim_matches('-').to_string()
}

#[cfg(test)]
mod tests;
