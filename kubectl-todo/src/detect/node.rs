//! What a Node.js or Next.js app's code says: its routes (route handlers
//! under `app/` or `src/app/`, `pages/api`, Express handlers), the port it
//! listens on, the environment it reads and the in-cluster hosts it calls.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use super::{Evidence, Read, Route};

fn re(s: &str) -> Regex {
    Regex::new(s).expect("valid regex")
}

static PROCESS_ENV: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r#"process\.env(?:\.(\w+)|\[\s*["'](\w+)["']\s*\])(\s*(?:\|\||\?\?)\s*(?:["'`]([^"'`]*)["'`])?)?"#,
    )
});
static EXPRESS: LazyLock<Regex> =
    LazyLock::new(|| re(r#"\b\w+\.(?:get|all)\(\s*["'](/[^"']*)["']"#));
static LISTEN: LazyLock<Regex> = LazyLock::new(|| re(r"\.listen\(\s*(\d{2,5})\b"));
static PORT_FALLBACK: LazyLock<Regex> =
    LazyLock::new(|| re(r"process\.env\.PORT\s*(?:\|\||\?\?)\s*(\d{2,5})\b"));
static NEXT_PORT: LazyLock<Regex> =
    LazyLock::new(|| re(r"next start\b.*?(?:-p|--port)\s+(\d{2,5})"));
static HOST_URL: LazyLock<Regex> = LazyLock::new(|| re(r"https?://([a-z][a-z0-9-]*):(\d{2,5})\b"));

/// Variables a platform sets, not the app's configuration.
const PLATFORM: &[&str] = &["NODE_ENV", "PORT", "HOSTNAME", "NEXT_RUNTIME", "CI"];

pub(super) const SOURCE: &[&str] = &[".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs"];

/// A host name the code calls on a port, such as `http://todo-backend:8000`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRef {
    pub host: String,
    pub port: u16,
    pub from: Evidence,
    /// The variable this URL is the fallback of (`process.env.BACKEND_URL ??
    /// "http://backend:8000"`): setting that variable makes the call go elsewhere.
    pub fallback_of: Option<String>,
}

#[derive(Default)]
pub(super) struct Facts {
    pub routes: Vec<Route>,
    pub reads: Vec<Read>,
    pub port: Option<(u16, Evidence)>,
    pub hosts: Vec<HostRef>,
}

pub(super) fn scan(dir: &Path, rel: &Path, files: &[PathBuf], next: bool) -> Facts {
    let mut facts = Facts::default();
    for f in files {
        let Ok(text) = std::fs::read_to_string(dir.join(f)) else {
            continue;
        };
        let evidence = |line: usize| Evidence {
            file: rel.join(f),
            line,
        };
        if next && let Some(path) = next_route(f) {
            facts.routes.push(Route {
                path,
                from: evidence(1),
            });
        }
        for (i, line) in text.lines().enumerate() {
            let mut fallbacks: Vec<(std::ops::Range<usize>, String)> = Vec::new();
            for c in PROCESS_ENV.captures_iter(line) {
                let name = c.get(1).or(c.get(2)).map_or("", |m| m.as_str());
                if let Some(f) = c.get(4) {
                    fallbacks.push((f.range(), name.to_string()));
                }
                if PLATFORM.contains(&name) {
                    continue;
                }
                let fallback = c.get(3).is_some();
                let example = c.get(4).map(|m| m.as_str().to_string());
                facts
                    .reads
                    .push(Read::new(name, !fallback, example, evidence(i + 1)));
            }
            if !next {
                for c in EXPRESS.captures_iter(line) {
                    facts.routes.push(Route {
                        path: c[1].to_string(),
                        from: evidence(i + 1),
                    });
                }
                let port = LISTEN
                    .captures(line)
                    .or_else(|| PORT_FALLBACK.captures(line));
                if facts.port.is_none()
                    && let Some(p) = port.and_then(|c| c[1].parse().ok())
                {
                    facts.port = Some((p, evidence(i + 1)));
                }
            }
            for c in HOST_URL.captures_iter(line) {
                let host = c[1].to_string();
                let at = c.get(0).map_or(0, |m| m.start());
                if host != "localhost"
                    && let Ok(port) = c[2].parse()
                {
                    facts.hosts.push(HostRef {
                        host,
                        port,
                        from: evidence(i + 1),
                        fallback_of: fallbacks
                            .iter()
                            .find(|(range, _)| range.contains(&at))
                            .map(|(_, name)| name.clone()),
                    });
                }
            }
        }
    }
    if let Ok(text) = std::fs::read_to_string(dir.join("package.json"))
        && let Some((i, c)) = text
            .lines()
            .enumerate()
            .find_map(|(i, l)| NEXT_PORT.captures(l).map(|c| (i, c)))
        && let Ok(p) = c[1].parse()
    {
        facts.port = Some((
            p,
            Evidence {
                file: rel.join("package.json"),
                line: i + 1,
            },
        ));
    }
    facts
}

/// The URL path a Next.js file serves, if it is a route handler
/// (`app/**/route.ts`), an API route (`pages/api/**`) or the home page.
fn next_route(f: &Path) -> Option<String> {
    let parts: Vec<String> = f.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let parts: &[String] = match parts.first().map(String::as_str) {
        Some("src") => &parts[1..],
        _ => &parts,
    };
    let (last, dirs) = parts.split_last()?;
    let stem = last.split('.').next().unwrap_or_default();
    let url = |segments: &[String]| {
        let kept: Vec<&str> = segments
            .iter()
            .map(String::as_str)
            // Route groups `(name)` and parallel slots `@name` are not in the URL.
            .filter(|s| !(s.starts_with('@') || s.starts_with('(') && s.ends_with(')')))
            .collect();
        format!("/{}", kept.join("/"))
    };
    match dirs.first().map(String::as_str) {
        Some("app") if stem == "route" || (stem == "page" && dirs.len() == 1) => {
            Some(url(&dirs[1..]))
        }
        Some("pages") if dirs.get(1).map(String::as_str) == Some("api") => {
            let mut segments = dirs[1..].to_vec();
            if stem != "index" {
                segments.push(stem.to_string());
            }
            Some(url(&segments))
        }
        Some("pages") if dirs.len() == 1 && stem == "index" => Some("/".into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::next_route;

    #[test]
    fn next_files_map_to_the_paths_they_serve() {
        let r = |p: &str| next_route(Path::new(p));
        assert_eq!(r("app/api/health/route.ts").as_deref(), Some("/api/health"));
        assert_eq!(
            r("src/app/(site)/api/health/route.js").as_deref(),
            Some("/api/health")
        );
        assert_eq!(r("pages/api/healthz.ts").as_deref(), Some("/api/healthz"));
        assert_eq!(
            r("pages/api/health/index.ts").as_deref(),
            Some("/api/health")
        );
        assert_eq!(r("app/page.tsx").as_deref(), Some("/"));
        assert_eq!(r("pages/index.tsx").as_deref(), Some("/"));
        assert_eq!(r("app/tasks/page.tsx"), None);
        assert_eq!(r("lib/route.ts"), None);
    }
}
