//! Which files of a repository detection reads: source, not what tools put
//! beside it (dependencies, virtualenvs, build output) nor what git ignores.

use std::path::{Path, PathBuf};

/// Directories no app keeps its own source in.
const SKIPPED: &[&str] = &[
    "node_modules",
    ".git",
    ".next",
    ".venv",
    "venv",
    "env",
    ".env",
    "__pycache__",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".turbo",
    "dist",
    "build",
    "out",
    "target",
    "coverage",
    "site-packages",
];

/// How deep a walk goes: real apps keep route handlers a few levels down
/// (`src/app/api/health/route.ts`), never dozens.
const MAX_DEPTH: usize = 10;

/// The names a `.gitignore` lists as plain names (`dist/`, `/out`, `.venv`);
/// glob patterns are not needed to keep build trees out and are left aside.
pub(super) fn ignored_names(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join(".gitignore"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().trim_start_matches('/').trim_end_matches('/'))
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with('#')
                && !l.starts_with('!')
                && !l.contains(['*', '?', '[', '/'])
        })
        .map(str::to_string)
        .collect()
}

pub(super) fn skipped(name: &str, ignored: &[String]) -> bool {
    SKIPPED.contains(&name) || ignored.iter().any(|i| i == name)
}

/// The subdirectories of `dir` worth looking into, sorted by name.
pub(super) fn subdirs(dir: &Path, ignored: &[String]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            !name.starts_with('.') && !skipped(&name, ignored)
        })
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs
}

/// Every file under `dir` with one of `extensions`, sorted, relative to `dir`.
pub(super) fn files(dir: &Path, extensions: &[&str], ignored: &[String]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    collect(dir, dir, extensions, ignored, 0, &mut out);
    out.sort();
    out
}

fn collect(
    base: &Path,
    dir: &Path,
    extensions: &[&str],
    ignored: &[String],
    depth: usize,
    out: &mut Vec<PathBuf>,
) {
    if depth > MAX_DEPTH {
        return;
    }
    let mut ignored = ignored.to_vec();
    ignored.extend(ignored_names(dir));
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        match entry.file_type() {
            Ok(t) if t.is_dir() && !skipped(&name, &ignored) => {
                collect(base, &path, extensions, &ignored, depth + 1, out);
            }
            Ok(t) if t.is_file() => {
                if extensions.iter().any(|x| name.ends_with(x))
                    && let Ok(rel) = path.strip_prefix(base)
                {
                    out.push(rel.to_path_buf());
                }
            }
            _ => {}
        }
    }
}
