//! What a FastAPI app's Python says: its routes (with `APIRouter` and
//! `include_router` prefixes) and the environment it reads (pydantic-settings
//! fields, `os.getenv`, `os.environ`).

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use super::{Evidence, Read, Route};

fn re(s: &str) -> Regex {
    Regex::new(s).expect("valid regex")
}

static APP: LazyLock<Regex> =
    LazyLock::new(|| re(r"^(\w+)\s*(?::\s*\w+\s*)?=\s*(?:fastapi\.)?FastAPI\("));
static ROUTER: LazyLock<Regex> =
    LazyLock::new(|| re(r"^(\w+)\s*(?::\s*\w+\s*)?=\s*(?:fastapi\.)?APIRouter\(([^)]*)"));
static PREFIX: LazyLock<Regex> = LazyLock::new(|| re(r#"prefix\s*=\s*["']([^"']*)["']"#));
static DECORATOR: LazyLock<Regex> = LazyLock::new(|| {
    re(r#"^\s*@(\w+)\.(?:get|head|api_route)\(\s*(?:path\s*=\s*)?["']([^"']*)["']"#)
});
static INCLUDE: LazyLock<Regex> =
    LazyLock::new(|| re(r"(\w+)\.include_router\(\s*([\w.]+)([^)]*)"));
static GETENV: LazyLock<Regex> =
    LazyLock::new(|| re(r#"os\.(?:getenv|environ\.get)\(\s*["'](\w+)["']\s*(,\s*([^)]*))?\)"#));
static ENVIRON: LazyLock<Regex> = LazyLock::new(|| re(r#"os\.environ\[\s*["'](\w+)["']\s*\]"#));
static SETTINGS: LazyLock<Regex> =
    LazyLock::new(|| re(r"^class\s+\w+\s*\(\s*(?:pydantic_settings\.)?BaseSettings\s*\)"));
static FIELD: LazyLock<Regex> =
    LazyLock::new(|| re(r"^\s+(\w+)\s*:\s*([^=#]+?)\s*(?:=\s*(.+?))?\s*(?:#.*)?$"));
static ENV_PREFIX: LazyLock<Regex> = LazyLock::new(|| re(r#"env_prefix\s*=\s*["'](\w*)["']"#));

struct Source {
    file: PathBuf,
    text: String,
}

/// A name routes hang from: an app, or a router with its own prefix.
struct Mount {
    file: PathBuf,
    var: String,
    prefix: String,
    app: bool,
}

struct Include {
    file: PathBuf,
    parent: String,
    child: String,
    prefix: String,
}

struct Decorated {
    file: PathBuf,
    line: usize,
    var: String,
    path: String,
}

pub(super) fn scan(dir: &Path, rel: &Path, files: &[PathBuf]) -> (Vec<Route>, Vec<Read>) {
    let sources: Vec<Source> = files
        .iter()
        .filter(|f| !f.components().any(|c| c.as_os_str() == "tests"))
        .filter_map(|f| {
            Some(Source {
                text: std::fs::read_to_string(dir.join(f)).ok()?,
                file: f.clone(),
            })
        })
        .collect();
    let mut mounts = Vec::new();
    let mut includes = Vec::new();
    let mut decorated = Vec::new();
    let mut reads = Vec::new();
    for s in &sources {
        let evidence = |line: usize| Evidence {
            file: rel.join(&s.file),
            line,
        };
        let lines: Vec<&str> = s.text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if let Some(c) = APP.captures(line) {
                mounts.push(Mount {
                    file: s.file.clone(),
                    var: c[1].to_string(),
                    prefix: String::new(),
                    app: true,
                });
            }
            if let Some(c) = ROUTER.captures(line) {
                // The constructor may span lines: its prefix is in the next few.
                let args = lines[i..lines.len().min(i + 6)].join(" ");
                let args = args.split_once("APIRouter(").map_or("", |(_, a)| a);
                let args = args.split(')').next().unwrap_or_default();
                mounts.push(Mount {
                    file: s.file.clone(),
                    var: c[1].to_string(),
                    prefix: PREFIX
                        .captures(args)
                        .map(|p| p[1].to_string())
                        .unwrap_or_default(),
                    app: false,
                });
            }
            if let Some(c) = DECORATOR.captures(line) {
                decorated.push(Decorated {
                    file: s.file.clone(),
                    line: i + 1,
                    var: c[1].to_string(),
                    path: c[2].to_string(),
                });
            }
            for c in INCLUDE.captures_iter(line) {
                includes.push(Include {
                    file: s.file.clone(),
                    parent: c[1].to_string(),
                    child: c[2].to_string(),
                    prefix: PREFIX
                        .captures(&c[3])
                        .map(|p| p[1].to_string())
                        .unwrap_or_default(),
                });
            }
            for c in GETENV.captures_iter(line) {
                let default = c.get(3).map(|d| unquote(d.as_str()));
                reads.push(Read::new(&c[1], false, default, evidence(i + 1)));
            }
            for c in ENVIRON.captures_iter(line) {
                reads.push(Read::new(&c[1], true, None, evidence(i + 1)));
            }
        }
        settings_fields(&lines, &mut reads, &evidence);
    }
    let routes = decorated
        .iter()
        .filter_map(|d| {
            let prefix = prefix_of(&d.file, &d.var, &mounts, &includes, 0)?;
            Some(Route {
                path: join(&prefix, &d.path),
                from: Evidence {
                    file: rel.join(&d.file),
                    line: d.line,
                },
            })
        })
        .collect();
    (routes, reads)
}

/// Fields of `BaseSettings` classes: each is an environment variable
/// (upper-cased, with the class's `env_prefix`), optional when it has a default.
fn settings_fields(lines: &[&str], reads: &mut Vec<Read>, evidence: &dyn Fn(usize) -> Evidence) {
    let mut i = 0;
    while i < lines.len() {
        if !SETTINGS.is_match(lines[i]) {
            i += 1;
            continue;
        }
        let body: Vec<(usize, &str)> = lines
            .iter()
            .enumerate()
            .skip(i + 1)
            .take_while(|(_, l)| l.trim().is_empty() || l.starts_with([' ', '\t']))
            .map(|(n, l)| (n, *l))
            .collect();
        let prefix = body
            .iter()
            .find_map(|(_, l)| ENV_PREFIX.captures(l).map(|c| c[1].to_uppercase()))
            .unwrap_or_default();
        // Only the class's own level: deeper lines belong to its methods.
        let indent = body
            .iter()
            .find(|(_, l)| !l.trim().is_empty())
            .map_or(0, |(_, l)| l.len() - l.trim_start().len());
        for (n, line) in &body {
            if line.len() - line.trim_start().len() != indent {
                continue;
            }
            let Some(c) = FIELD.captures(line) else {
                continue;
            };
            if c[1].starts_with('_') || &c[1] == "model_config" {
                continue;
            }
            let default = c.get(3).map(|d| d.as_str());
            let required = match default {
                None => true,
                Some(d) => d.starts_with("Field(...") || d.starts_with("Field(default=...)"),
            };
            let name = format!("{prefix}{}", c[1].to_uppercase());
            let example = default.filter(|_| !required).map(unquote);
            reads.push(Read::new(&name, required, example, evidence(n + 1)));
        }
        i += body.len() + 1;
    }
}

/// A default written as a plain string literal, without its quotes.
fn unquote(s: &str) -> String {
    let s = s.trim();
    for q in ['"', '\''] {
        if let Some(inner) = s.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner.to_string();
        }
    }
    s.to_string()
}

/// The path prefix routes on `var` (defined in `file`) get, following
/// `include_router` up to the app; `None` when `var` is not a known app or router.
fn prefix_of(
    file: &Path,
    var: &str,
    mounts: &[Mount],
    includes: &[Include],
    depth: usize,
) -> Option<String> {
    let mount = mounts.iter().find(|m| m.file == file && m.var == var)?;
    if mount.app || depth > 4 {
        return Some(mount.prefix.clone());
    }
    let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned());
    let include = includes
        .iter()
        .find(|inc| match inc.child.rsplit_once('.') {
            Some((module, attr)) => attr == var && module.rsplit('.').next() == stem.as_deref(),
            None => inc.child == var,
        });
    let Some(inc) = include else {
        // Mounted in a way not seen here: the router's own prefix is what is known.
        return Some(mount.prefix.clone());
    };
    let outer = prefix_of(&inc.file, &inc.parent, mounts, includes, depth + 1).unwrap_or_default();
    Some(join(&join(&outer, &inc.prefix), &mount.prefix))
}

fn join(a: &str, b: &str) -> String {
    let joined = format!("{}/{}", a.trim_end_matches('/'), b.trim_start_matches('/'));
    let trimmed = joined.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".into()
    } else if b.is_empty() || b == "/" {
        trimmed.to_string()
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::join;

    #[test]
    fn prefixes_join_like_fastapi() {
        assert_eq!(join("", "/health"), "/health");
        assert_eq!(join("/api", "/health"), "/api/health");
        assert_eq!(join("/api/health", ""), "/api/health");
        assert_eq!(join("", "/"), "/");
        assert_eq!(join("/tasks", "/"), "/tasks");
    }
}
