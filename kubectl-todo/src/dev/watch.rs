//! What the loop watches on disk: every directory of each component's build
//! context that the context includes (`.dockerignore` and image-builder's
//! own excludes, `.env` files among them, decide, exactly as for the
//! build), and the project root for `todo.yaml`. Directories are watched
//! one by one, never recursively, so that an excluded `node_modules` costs
//! no inotify watch.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use image_builder::context::EntryKind;
use image_builder::ignore::Matcher;
use image_builder::plan::Plan;
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot watch {}: the limit of inotify watches for this user is reached{}", path.display(), limit.map(|l| format!(" ({l})")).unwrap_or_default())]
    Limit { path: PathBuf, limit: Option<u64> },
    #[error("cannot watch files for changes: the limit of inotify instances for this user is reached{}", limit.map(|l| format!(" ({l})")).unwrap_or_default())]
    Instances { limit: Option<u64> },
    #[error("cannot watch {} for changes", path.display())]
    Watch {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
}

impl crate::report::Hinted for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::Limit { limit, .. } => Some(format!(
                "{}, or exclude large directories in .dockerignore",
                raise(
                    "max_user_watches",
                    limit.map_or(524_288, |l| (l * 4).max(524_288))
                )
            )),
            // Each editor, language server and `dev` session holds instances.
            Error::Instances { limit } => Some(format!(
                "{}, or end other programs that watch files",
                raise(
                    "max_user_instances",
                    limit.map_or(1024, |l| (l * 4).max(1024))
                )
            )),
            Error::Watch { .. } => None,
        }
    }
}
crate::report::hinted!(Error);

/// The fix for a limit: a value well above the current one (and above
/// what most distributions now ship: 524288 watches, 1024 instances).
fn raise(sysctl: &str, to: u64) -> String {
    format!(
        "raise the limit: sudo sysctl fs.inotify.{sysctl}={to} (add the line fs.inotify.{sysctl}={to} to /etc/sysctl.d/90-inotify.conf to keep it)"
    )
}

fn current_limit(sysctl: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/sys/fs/inotify/{sysctl}"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// One component's build context, with the rules of what is in it.
pub struct Context {
    pub component: String,
    pub dir: PathBuf,
    matcher: Matcher,
    /// The context's directories, relative to `dir` ("" for itself).
    dirs: Vec<String>,
}

impl Context {
    /// The context a plan hashed: its directory, its ignore rules and the
    /// directories it included.
    pub fn of(plan: &Plan) -> Result<Context, image_builder::Error> {
        let excludes = image_builder::ignore::stack_excludes(plan.stack);
        let matcher = image_builder::context::load_matcher(&plan.dir, excludes)?;
        let dirs = std::iter::once(String::new())
            .chain(
                plan.context
                    .entries
                    .iter()
                    .filter(|e| e.kind == EntryKind::Dir)
                    .map(|e| e.rel.clone()),
            )
            .collect();
        Ok(Context {
            component: plan.component.clone(),
            dir: plan.dir.clone(),
            matcher,
            dirs,
        })
    }

    /// Whether a change at `path` can alter the context's digest: the
    /// `.dockerignore` itself, or a path the context includes (editors'
    /// swap and backup files are among image-builder's default excludes).
    fn includes(&self, path: &Path) -> Option<bool> {
        let rel = path.strip_prefix(&self.dir).ok()?;
        let rel = rel.to_string_lossy().replace('\\', "/");
        if rel.is_empty() || rel == ".dockerignore" {
            return Some(true);
        }
        Some(!self.matcher.matches(&rel))
    }
}

/// What a change touched, for the status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touched {
    /// The component, or `None` for `todo.yaml`.
    pub component: Option<String>,
    /// Relative to the project root when it is inside it.
    pub path: PathBuf,
}

pub struct Files {
    watcher: RecommendedWatcher,
    root: PathBuf,
    watched: HashSet<PathBuf>,
    project_file: PathBuf,
    contexts: Vec<Context>,
}

impl Files {
    /// Starts watching the project root (for `todo.yaml`); events go to `tx`.
    pub fn start(
        root: &Path,
        tx: mpsc::UnboundedSender<notify::Result<notify::Event>>,
    ) -> Result<Files, Error> {
        let watcher = notify::recommended_watcher(move |event| {
            let _ = tx.send(event);
        })
        .map_err(|source| match &source.kind {
            // inotify_init's EMFILE: this user's instances are all taken.
            notify::ErrorKind::Io(e) if e.raw_os_error() == Some(libc::EMFILE) => {
                Error::Instances {
                    limit: current_limit("max_user_instances"),
                }
            }
            _ => Error::Watch {
                path: root.to_path_buf(),
                source,
            },
        })?;
        // Watched paths are compared with the ones events carry, which are absolute.
        let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        let mut files = Files {
            watcher,
            watched: HashSet::new(),
            project_file: root.join(crate::project::FILE_NAME),
            root: root.clone(),
            contexts: Vec::new(),
        };
        files.add(&root)?;
        Ok(files)
    }

    /// Watches every directory of `contexts` not watched yet (a context's
    /// new directories appear in the next plan); these become the rules
    /// [`Files::relevant`] applies.
    pub fn sync(&mut self, contexts: Vec<Context>) -> Result<(), Error> {
        for context in &contexts {
            for rel in &context.dirs {
                let dir = if rel.is_empty() {
                    context.dir.clone()
                } else {
                    context.dir.join(rel)
                };
                self.add(&dir)?;
            }
        }
        self.contexts = contexts;
        Ok(())
    }

    fn add(&mut self, dir: &Path) -> Result<(), Error> {
        if self.watched.contains(dir) {
            return Ok(());
        }
        match self.watcher.watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => {
                self.watched.insert(dir.to_path_buf());
                Ok(())
            }
            Err(e) if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) => Err(Error::Limit {
                path: dir.to_path_buf(),
                limit: current_limit("max_user_watches"),
            }),
            // A directory removed since it was planned: the next plan says so.
            Err(e)
                if matches!(e.kind, notify::ErrorKind::PathNotFound)
                    || matches!(&e.kind, notify::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::NotFound) =>
            {
                Ok(())
            }
            Err(source) => Err(Error::Watch {
                path: dir.to_path_buf(),
                source,
            }),
        }
    }

    /// The paths of an event that may change what is deployed: `todo.yaml`,
    /// or a file some context includes. Reads and metadata-only events
    /// other than a write's are dropped here; a touched file passes, and
    /// its unchanged digest then stops it.
    pub fn relevant(&mut self, event: &notify::Event) -> Vec<Touched> {
        if matches!(event.kind, EventKind::Access(_)) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for path in &event.paths {
            if *path == self.project_file {
                out.push(Touched {
                    component: None,
                    path: self.shown(path),
                });
                continue;
            }
            let hit = self
                .contexts
                .iter()
                .find(|c| c.includes(path) == Some(true));
            if let Some(context) = hit {
                if path == &context.dir && !path.exists() {
                    // The watch on a removed context directory is gone with it.
                    self.watched.remove(path);
                }
                let component = Some(context.component.clone());
                out.push(Touched {
                    component,
                    path: self.shown(path),
                });
            }
        }
        out
    }

    fn shown(&self, path: &Path) -> PathBuf {
        path.strip_prefix(&self.root)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| path.to_path_buf())
    }

    /// Forgets watches of directories that no longer exist (inotify dropped
    /// them), so that one created again under the same name is watched.
    pub fn forget_removed(&mut self) {
        self.watched.retain(|d| d.is_dir());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_rules_decide_and_env_files_never_count() {
        let context = Context {
            component: "api".into(),
            dir: "/app/api".into(),
            matcher: image_builder::context::load_matcher(
                Path::new("/nonexistent"),
                &["node_modules"],
            )
            .unwrap(),
            dirs: vec![String::new()],
        };
        let includes = |p: &str| context.includes(Path::new(p));
        assert_eq!(includes("/app/api/main.py"), Some(true));
        assert_eq!(includes("/app/api/.dockerignore"), Some(true));
        assert_eq!(includes("/app/api/.env"), Some(false));
        assert_eq!(includes("/app/api/sub/.env.local"), Some(false));
        assert_eq!(includes("/app/api/node_modules/x.js"), Some(false));
        assert_eq!(includes("/app/api/.main.py.swp"), Some(false));
        assert_eq!(includes("/app/web/main.py"), None);
    }
}
