//! What the repository's deployment files say, below the code and the
//! Dockerfiles in trust: compose services (ports, healthchecks, environment
//! names) and Helm charts (node ports, probe paths, Secret keys). Values are
//! never taken from them, names and numbers only.

use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;

use super::{Component, Evidence, Found, Key, Read, Route, add_read, is_credential, walk};

const COMPOSE: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

pub(super) fn apply(
    root: &Path,
    components: &mut [Component],
    declared: &mut Vec<Key>,
    warnings: &mut Vec<String>,
) {
    for name in COMPOSE {
        if let Ok(text) = std::fs::read_to_string(root.join(name)) {
            compose(Path::new(name), &text, components, warnings);
        }
    }
    for chart in charts(root) {
        helm(root, &chart, components, declared, warnings);
    }
}

/// The first line at or after `after` that contains `needle` (1-based).
fn line_of(text: &str, needle: &str, after: usize) -> usize {
    text.lines()
        .enumerate()
        .skip(after.saturating_sub(1))
        .find(|(_, l)| l.contains(needle))
        .map_or(after.max(1), |(i, _)| i + 1)
}

fn compose(file: &Path, text: &str, components: &mut [Component], warnings: &mut Vec<String>) {
    let doc: Value = match serde_yaml_ng::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            warnings.push(format!(
                "{} is not valid YAML, so it was not read: {e}",
                file.display()
            ));
            return;
        }
    };
    let Some(services) = doc.get("services").and_then(Value::as_mapping) else {
        return;
    };
    for (key, service) in services {
        let Some(name) = key.as_str() else { continue };
        let context = match service.get("build") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(b) => b.get("context").and_then(Value::as_str).map(str::to_string),
            None => None,
        };
        let context =
            context.map(|c| PathBuf::from(c.trim_start_matches("./").trim_end_matches('/')));
        let Some(c) = components
            .iter_mut()
            .find(|c| context.as_deref() == Some(c.path.as_path()) || c.name == name)
        else {
            continue;
        };
        let at = |needle: &str| Evidence {
            file: file.to_path_buf(),
            line: line_of(text, needle, line_of(text, &format!("{name}:"), 1)),
        };
        if c.port.is_none()
            && let Some(port) = service
                .get("ports")
                .and_then(Value::as_sequence)
                .and_then(|p| p.first())
                .and_then(container_port)
        {
            c.port = Some(Found {
                value: port,
                from: at("ports:"),
            });
        }
        if let Some(test) = service.get("healthcheck").and_then(|h| h.get("test")) {
            let test = match test {
                Value::Sequence(s) => s
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" "),
                other => other.as_str().unwrap_or_default().to_string(),
            };
            if let Some(path) = url_path(&test) {
                offer(c, path, at("test:"));
            }
        }
        for env in env_names(service.get("environment")) {
            let from = at(&env);
            add_read(c, Read::new(&env, false, None, from), None);
        }
    }
}

/// The container side of a compose `ports` entry (`"8000:8000"`, `8000`, `{target: 8000}`).
fn container_port(v: &Value) -> Option<u16> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(s) => s.rsplit(':').next()?.split('/').next()?.parse().ok(),
        other => other.get("target").and_then(container_port),
    }
}

fn env_names(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Sequence(s)) => s
            .iter()
            .filter_map(Value::as_str)
            .map(|e| e.split('=').next().unwrap_or(e).to_string())
            .collect(),
        Some(Value::Mapping(m)) => m
            .keys()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// The path of the first `http://host:port/path` in a command line.
fn url_path(s: &str) -> Option<String> {
    let rest = s.split("://").nth(1)?;
    let rest = rest
        .split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
        .next()?;
    Some(match rest.find('/') {
        Some(i) => rest[i..].to_string(),
        None => "/".to_string(),
    })
}

/// Directories holding a `Chart.yaml`, up to three levels below the root.
fn charts(root: &Path) -> Vec<PathBuf> {
    let ignored = walk::ignored_names(root);
    let mut found = Vec::new();
    let mut level = vec![root.to_path_buf()];
    for _ in 0..3 {
        let mut next = Vec::new();
        for dir in level {
            if dir.join("Chart.yaml").is_file() {
                found.push(dir);
            } else {
                next.extend(walk::subdirs(&dir, &ignored));
            }
        }
        level = next;
    }
    found
}

fn helm(
    root: &Path,
    chart: &Path,
    components: &mut [Component],
    declared: &mut Vec<Key>,
    warnings: &mut Vec<String>,
) {
    let rel = chart.strip_prefix(root).unwrap_or(chart);
    let values_file = rel.join("values.yaml");
    if let Ok(text) = std::fs::read_to_string(root.join(&values_file)) {
        match serde_yaml_ng::from_str::<Value>(&text) {
            Ok(values) => {
                for c in components.iter_mut() {
                    if let Some(v) = values.get(c.name.as_str()) {
                        helm_component(&values_file, &text, c, v);
                    }
                }
            }
            Err(e) => warnings.push(format!(
                "{} is not valid YAML, so it was not read: {e}",
                values_file.display()
            )),
        }
    }
    let templates = walk::files(&chart.join("templates"), &[".yaml", ".yml"], &[]);
    for t in templates {
        let file = rel.join("templates").join(&t);
        let Ok(text) = std::fs::read_to_string(root.join(&file)) else {
            continue;
        };
        if !text.lines().any(|l| l.trim() == "kind: Secret") {
            continue;
        }
        let mut in_data = false;
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim_start();
            if !line.starts_with(' ') {
                in_data = matches!(line.trim_end(), "stringData:" | "data:");
                continue;
            }
            let Some((key, _)) = trimmed.split_once(':') else {
                continue;
            };
            if in_data && !declared.iter().any(|k| k.name == key) && is_credential(key, None) {
                declared.push(Key {
                    name: key.to_string(),
                    required: true,
                    from: Evidence {
                        file: file.clone(),
                        line: i + 1,
                    },
                });
            }
        }
    }
}

fn helm_component(file: &Path, text: &str, c: &mut Component, v: &Value) {
    let start = line_of(text, &format!("{}:", c.name), 1);
    let at = |needle: &str| Evidence {
        file: file.to_path_buf(),
        line: line_of(text, needle, start),
    };
    if let Some(p) = find(v, &["nodePort"])
        .and_then(|n| n.as_u64())
        .and_then(|n| u16::try_from(n).ok())
    {
        c.node_port.get_or_insert(Found {
            value: p,
            from: at("nodePort:"),
        });
    }
    if c.port.is_none()
        && let Some(p) = find(v, &["targetPort", "containerPort", "port"])
            .and_then(|n| n.as_u64())
            .and_then(|n| u16::try_from(n).ok())
    {
        c.port = Some(Found {
            value: p,
            from: at("port:"),
        });
    }
    if let Some(path) = find(v, &["path"]).and_then(Value::as_str)
        && path.starts_with('/')
    {
        offer(c, path.to_string(), at("path:"));
    }
}

/// A probe path a deployment file uses, below what the code says in trust.
fn offer(c: &mut Component, path: String, from: Evidence) {
    let slot = if path == "/" {
        &mut c.root_route
    } else {
        &mut c.health
    };
    slot.get_or_insert(Route { path, from });
}

/// The first value under any of `keys`, searched depth-first.
fn find<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    let map = v.as_mapping()?;
    for k in keys {
        if let Some(found) = map.get(*k) {
            return Some(found);
        }
    }
    map.values().find_map(|child| find(child, keys))
}
