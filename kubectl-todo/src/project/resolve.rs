//! From the file as written to a [`Project`] with every default filled in,
//! checking on the way everything that would otherwise fail later in the
//! cluster, each time with the line and column to fix.

use std::collections::BTreeMap;
use std::path::Path;

use serde_saphyr::{Location, Spanned};

use super::detected::{self, Base};

use super::error::{Error, suggestion};
use super::file::{ComponentFile, ProjectFile, QuantitiesFile, SecretKeyFile};
use super::validate;
use super::{
    Build, Component, KeyFormat, NEXT_CACHE, Project, Quantities, Resources, SecretKey, SecretSpec,
    Service, ServiceKind, Stack,
};

/// Object names are `<project>-<component>`, and must stay DNS labels.
const MAX_NAME: usize = 63;
const NODE_PORTS: std::ops::RangeInclusive<u16> = 30000..=32767;

struct Issue {
    at: Location,
    message: String,
}

fn issue(at: Location, message: impl Into<String>) -> Issue {
    Issue {
        at,
        message: message.into(),
    }
}

pub(super) fn parse(path: &Path, text: &str, root: &Path) -> Result<Project, Error> {
    let invalid = |at: Location, message: String| Error::Invalid {
        path: path.to_path_buf(),
        line: at.line(),
        column: at.column(),
        message,
    };
    let file: ProjectFile = serde_saphyr::from_str(text).map_err(|e| {
        let e = e.without_snippet();
        invalid(
            e.location().unwrap_or(Location::UNKNOWN),
            syntax_message(e, text),
        )
    })?;
    let refused = |r: validate::Refusal| invalid(r.at, r.message);
    validate::project_name(&file.name.value, file.name.referenced).map_err(refused)?;
    let spans = validate::Spans::of(&file);
    let layer = detected::layer(root, &file.name.value);
    let mut project = resolve(file, root, layer).map_err(|i| invalid(i.at, i.message))?;
    validate::project(&mut project, Some(&spans)).map_err(refused)?;
    Ok(project)
}

fn syntax_message(e: &serde_saphyr::Error, text: &str) -> String {
    let list = |expected: &[&str]| {
        expected
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match e {
        serde_saphyr::Error::SerdeUnknownField {
            field, expected, ..
        } => format!(
            "unknown key `{field}`{}; the keys here are {}",
            suggestion(field, expected.iter().copied()),
            list(expected)
        ),
        serde_saphyr::Error::SerdeUnknownVariant {
            variant, expected, ..
        } => format!(
            "unknown value `{variant}`{}; expected one of {}",
            suggestion(variant, expected.iter().copied()),
            list(expected)
        ),
        serde_saphyr::Error::DuplicateMappingKey {
            key: Some(key),
            location,
        } => {
            let first = first_written(text, key, location.line(), location.column())
                .map(|(line, column)| format!(" (first at line {line}, column {column})"))
                .unwrap_or_default();
            format!(
                "the key `{key}` is written twice in the same mapping{first}: remove one of the two `{key}:` keys"
            )
        }
        serde_saphyr::Error::DuplicateMappingKey { key: None, .. } => {
            "a key is written twice in the same mapping: remove one of the two".into()
        }
        other => other.to_string(),
    }
}

/// Where `key` was first written in the block mapping that writes it again
/// at `line`, `column` (the parser only locates the second): the nearest
/// line above with the key at the same column, before a line indented less
/// (the mapping's parent) ends the search.
fn first_written(text: &str, key: &str, line: u64, column: u64) -> Option<(u64, u64)> {
    let column = usize::try_from(column).ok()?.checked_sub(1)?;
    let line = usize::try_from(line).ok()?.checked_sub(1)?;
    let lines: Vec<&str> = text.lines().collect();
    for n in (0..line.min(lines.len())).rev() {
        let l = lines[n];
        let indent = l.len() - l.trim_start().len();
        if l.trim().is_empty() || l.trim_start().starts_with('#') {
            continue;
        }
        // Columns count characters; a line whose text is not ASCII before
        // the column has no key there.
        let before = l.get(..column).unwrap_or("?");
        let same_key = l
            .get(column..)
            .and_then(|at| at.strip_prefix(key))
            .is_some_and(|rest| rest.trim_start().starts_with(':'));
        if same_key && before.chars().all(|c| c == ' ' || c == '-') {
            return Some((n as u64 + 1, column as u64 + 1));
        }
        if indent < column {
            return None;
        }
    }
    None
}

/// No `todo.yaml`: the original layout's defaults with what detection reads
/// in the repository over them, as if the file said only the default name.
/// A default component detection does not recognise stays as it is, so an
/// app detection cannot read deploys as it did before detection.
pub(super) fn without_file(root: &Path) -> Result<Project, Error> {
    let defaults = Project::defaults(root);
    let layer = detected::layer(root, &defaults.name);
    if layer.components.is_empty() {
        return Ok(defaults);
    }
    let refused = |message: String| Error::Refused {
        root: root.to_path_buf(),
        message,
    };
    let file: ProjectFile = serde_saphyr::from_str(&format!("name: {}", defaults.name))
        .map_err(|e| refused(e.to_string()))?;
    let mut project = resolve(file, root, layer).map_err(|i| refused(i.message))?;
    let order: Vec<_> = defaults.components.iter().map(|d| d.path.clone()).collect();
    for d in defaults.components {
        match project.components.iter_mut().find(|c| c.path == d.path) {
            Some(c) => {
                // Detection never says how much CPU and memory an app needs,
                // nor which node port: the original layout's numbers stand.
                c.resources = d.resources;
                let service_source = format!("components.{}.service", c.name);
                let fixed =
                    c.service.kind == ServiceKind::NodePort && c.service.node_port.is_none();
                if !project.sources.contains_key(&service_source) || fixed {
                    c.service = d.service;
                }
            }
            None if root.join(&d.path).is_dir() => {
                for k in &d.secret_keys {
                    let missing = !project.secret.keys.iter().any(|o| &o.name == k);
                    if let (true, Some(key)) =
                        (missing, defaults.secret.keys.iter().find(|o| &o.name == k))
                    {
                        project.secret.keys.push(key.clone());
                    }
                }
                project.components.push(d);
            }
            None => {}
        }
    }
    // The original layout's order (frontend first), then what else was found.
    project.components.sort_by_key(|c| {
        order
            .iter()
            .position(|p| *p == c.path)
            .unwrap_or(order.len())
    });
    Ok(project)
}

fn resolve(f: ProjectFile, root: &Path, layer: detected::Layer) -> Result<Project, Issue> {
    let name = dns_label(&f.name, "the project name", MAX_NAME)?;
    let namespace = match &f.namespace {
        Some(ns) => dns_label(ns, "the namespace", MAX_NAME)?,
        None => name.clone(),
    };
    let mut sources = BTreeMap::new();
    let mut keys: Vec<SecretKey> = Vec::new();
    for k in f.secret.keys {
        let at = k.name.referenced;
        let key = secret_key(k)?;
        if keys.iter().any(|o| o.name == key.name) {
            return Err(issue(
                at,
                format!("secret key `{}` is declared twice", key.name),
            ));
        }
        sources.insert(format!("secret.keys.{}", key.name), file_line(at));
        keys.push(key);
    }
    // Keys the code reads and the file does not declare come from detection.
    for k in layer.keys {
        if !keys.iter().any(|o| o.name == k.value.name) {
            sources.insert(format!("secret.keys.{}", k.value.name), k.source);
            keys.push(k.value);
        }
    }
    let secret = SecretSpec {
        name: f.secret.name.unwrap_or_else(|| format!("{name}-secrets")),
        keys,
    };
    let written = match f.components {
        Some(c) if c.value.is_empty() => {
            return Err(issue(
                c.referenced,
                "`components` is empty: declare at least one component",
            ));
        }
        Some(c) => c.value,
        None => Vec::new(),
    };
    let mut bases = layer.components;
    if written.is_empty() && bases.is_empty() {
        return Err(issue(
            f.name.referenced,
            format!(
                "no components: todo.yaml declares none and none was found in {} (looked for folders holding package.json, requirements.txt or pyproject.toml); declare them under `components:`, e.g. `components: [{{name: web, path: frontend, port: 3000}}]`",
                root.display()
            ),
        ));
    }
    let mut components: Vec<Component> = Vec::new();
    for c in written {
        let at = c.name.referenced;
        let base = bases
            .iter()
            .position(|b| b.name == c.name.value)
            .map(|i| bases.remove(i));
        let c = component(c, &name, &secret, base.as_ref(), &mut sources)?;
        if components.iter().any(|o| o.name == c.name) {
            return Err(issue(
                at,
                format!("component `{}` is declared twice", c.name),
            ));
        }
        components.push(c);
    }
    for base in bases {
        // The component as if the file named it and nothing else.
        let c: ComponentFile = serde_saphyr::from_str(&format!("name: {}", base.name))
            .map_err(|e| issue(Location::UNKNOWN, e.to_string()))?;
        components.push(component(c, &name, &secret, Some(&base), &mut sources)?);
    }
    Ok(Project {
        name,
        namespace,
        components,
        secret,
        ca_cert: f.build.ca_cert,
        root: root.to_path_buf(),
        sources,
    })
}

fn origin<T>(s: Option<&detected::Sourced<T>>) -> Option<&str> {
    s.map(|s| s.source.as_str())
}

fn file_line(at: Location) -> String {
    format!("{}:{}", super::FILE_NAME, at.line())
}

fn secret_key(k: SecretKeyFile) -> Result<SecretKey, Issue> {
    env_name(&k.name.value, k.name.referenced, "secret key")?;
    Ok(SecretKey {
        name: k.name.value,
        required: k.required.unwrap_or(true),
        format: k.format.unwrap_or(KeyFormat::Opaque),
        generate_bytes: k.generate_bytes,
        pattern: k.pattern,
    })
}

fn component(
    c: ComponentFile,
    project: &str,
    secret: &SecretSpec,
    base: Option<&Base>,
    sources: &mut BTreeMap<String, String>,
) -> Result<Component, Issue> {
    let at = c.name.referenced;
    let name = dns_label(
        &c.name,
        "a component name",
        MAX_NAME.saturating_sub(project.len() + 1),
    )?;
    // Each value: the file's, else detection's, else the default; and where it came from.
    let mut source = |key: &str, file: bool, detected: Option<&str>| {
        let from = if file {
            Some(file_line(at))
        } else {
            detected.map(str::to_string)
        };
        if let Some(from) = from {
            sources.insert(format!("components.{name}.{key}"), from);
        }
    };
    let stack = c
        .stack
        .or_else(|| c.dockerfile.as_ref().map(|_| Stack::Dockerfile));
    source(
        "stack",
        stack.is_some(),
        origin(base.and_then(|b| b.stack.as_ref())),
    );
    let stack = stack.or_else(|| base.and_then(|b| b.stack.as_ref()).map(|s| s.value));
    let base_port = base.and_then(|b| b.port.as_ref());
    source("port", c.port.is_some(), origin(base_port));
    let port = match (&c.port, stack) {
        (Some(p), _) if p.value == 0 => {
            return Err(issue(p.referenced, "`port` must be between 1 and 65535"));
        }
        (Some(p), _) => p.value,
        (None, _) if base_port.is_some() => base_port.map_or(0, |p| p.value),
        // A Dockerfile says nothing of the framework; detection knows its port.
        (None, None | Some(Stack::Dockerfile)) if base.is_some() => {
            base.map_or(0, |b| b.default_port)
        }
        (None, Some(s)) => s.default_port(),
        (None, None) => {
            return Err(issue(
                at,
                format!(
                    "component `{name}` has neither `port` nor `stack`: set `port` to the port the app listens on"
                ),
            ));
        }
    };
    let dev_port = match &c.dev_port {
        Some(p) if p.value == 0 => {
            return Err(issue(p.referenced, "`devPort` must be between 1 and 65535"));
        }
        p => p.as_ref().map(|p| p.value),
    };
    let base_health = base.and_then(|b| b.health_path.as_ref());
    let base_ready = base.and_then(|b| b.ready_path.as_ref());
    source("healthPath", c.health_path.is_some(), origin(base_health));
    // A readiness route of its own, else the one health route serves every
    // probe; with neither, the probes are TCP on the port.
    source(
        "readyPath",
        c.ready_path.is_some() || (base_ready.is_none() && c.health_path.is_some()),
        origin(base_ready.or(base_health)),
    );
    let health_path = match http_path(c.health_path, "healthPath", at)? {
        Some(p) => Some(p),
        None => base_health.map(|p| p.value.clone()),
    };
    let ready_path = match http_path(c.ready_path, "readyPath", at)? {
        Some(p) => Some(p),
        None => base_ready.map(|p| p.value.clone()).or(health_path.clone()),
    };
    let replicas = match &c.replicas {
        Some(r) if r.value < 0 => return Err(issue(r.referenced, "`replicas` cannot be negative")),
        Some(r) => r.value,
        None => 1,
    };
    let base_service = base.and_then(|b| b.service.as_ref());
    source("service", c.service.is_some(), origin(base_service));
    let service = match (&c.service, base_service) {
        (None, Some(s)) => s.value.clone(),
        (given, _) => service(given.as_ref())?,
    };
    let resources = Resources {
        requests: quantities(
            c.resources.as_ref().and_then(|r| r.requests.as_ref()),
            "100m",
            "128Mi",
        )?,
        limits: quantities(
            c.resources.as_ref().and_then(|r| r.limits.as_ref()),
            "500m",
            "512Mi",
        )?,
    };
    let mut secret_keys: Vec<String> = Vec::new();
    if c.secret_keys.is_empty()
        && let Some(b) = base
    {
        for k in &b.secret_keys {
            source(&format!("secretKeys.{}", k.value), false, Some(&k.source));
            secret_keys.push(k.value.clone());
        }
    }
    for k in &c.secret_keys {
        if !secret.keys.iter().any(|d| d.name == k.value) {
            return Err(issue(
                k.referenced,
                format!(
                    "secret key `{}` is not declared under `secret.keys`{}",
                    k.value,
                    suggestion(&k.value, secret.keys.iter().map(|d| d.name.as_str()))
                ),
            ));
        }
        if !secret_keys.contains(&k.value) {
            secret_keys.push(k.value.clone());
        }
    }
    let mut env = BTreeMap::new();
    for (key, value) in base.map(|b| &b.env).into_iter().flatten() {
        if !c.env.contains_key(key) && !secret_keys.contains(key) {
            source(&format!("env.{key}"), false, Some(&value.source));
            env.insert(key.clone(), value.value.clone());
        }
    }
    for key in c.env.keys() {
        source(&format!("env.{key}"), true, None);
        env_name(key, at, "environment variable")?;
        if secret_keys.contains(key) {
            return Err(issue(
                at,
                format!(
                    "`{key}` is both in `env` and in `secretKeys` of component `{name}`: keep one"
                ),
            ));
        }
    }
    let mut always = vec!["/tmp".to_string()];
    let framework = stack.or_else(|| base.and_then(|b| b.framework));
    if framework == Some(Stack::Nextjs) {
        always.push(NEXT_CACHE.into());
    }
    let writable_paths = validate::writable_paths(always, &c.writable_paths)
        .map_err(|r| issue(r.at, format!("{} (component `{name}`)", r.message)))?;
    env.extend(c.env);
    let base_path = base.and_then(|b| b.path.as_ref());
    source("path", c.path.is_some(), origin(base_path));
    let path = c
        .path
        .or_else(|| base_path.map(|p| p.value.clone()))
        .unwrap_or_else(|| name.clone().into());
    let mut args: BTreeMap<String, String> = BTreeMap::new();
    for (key, value) in base.map(|b| &b.build_args).into_iter().flatten() {
        if !c.build_args.contains_key(key) {
            source(&format!("buildArgs.{key}"), false, Some(&value.source));
            args.insert(key.clone(), value.value.clone());
        }
    }
    for key in c.build_args.keys() {
        source(&format!("buildArgs.{key}"), true, None);
    }
    args.extend(c.build_args);
    let aliases = base.map(|b| b.aliases.clone()).unwrap_or_default();
    for alias in aliases.keys() {
        source(
            &format!("aliases.{alias}"),
            false,
            base.and_then(|b| b.alias_sources.get(alias))
                .map(String::as_str),
        );
    }
    Ok(Component {
        aliases,
        path,
        image: c.image.unwrap_or_else(|| format!("{project}-{name}")),
        name,
        port,
        dev_port,
        health_path,
        ready_path,
        replicas,
        service,
        resources,
        env,
        secret_keys,
        stack,
        writable_paths,
        build: Build {
            builder_image: c.base_images.builder,
            runtime_image: c.base_images.runtime,
            dockerfile: c.dockerfile,
            args,
            target: c.target,
            platform: c.platform,
            module: c.module,
            command: c.command,
        },
    })
}

fn service(s: Option<&Spanned<super::file::ServiceFile>>) -> Result<Service, Issue> {
    let Some(s) = s else {
        return Ok(Service {
            kind: ServiceKind::ClusterIP,
            node_port: None,
        });
    };
    match (s.value.kind, s.value.node_port) {
        (ServiceKind::ClusterIP, Some(_)) => Err(issue(
            s.referenced,
            "`nodePort` needs `type: NodePort` (a ClusterIP service is not reachable from outside the cluster)",
        )),
        (_, Some(p)) if !NODE_PORTS.contains(&p) => Err(issue(
            s.referenced,
            format!("`nodePort` {p} is outside the cluster's node port range 30000-32767"),
        )),
        (kind, node_port) => Ok(Service { kind, node_port }),
    }
}

fn quantities(q: Option<&QuantitiesFile>, cpu: &str, memory: &str) -> Result<Quantities, Issue> {
    let pick =
        |v: Option<&Spanned<String>>, default: &str, valid: fn(&str) -> bool, what: &str| match v {
            Some(v) if !valid(&v.value) => Err(issue(
                v.referenced,
                format!(
                    "`{}` is not a valid {what} quantity (examples: {default})",
                    v.value
                ),
            )),
            Some(v) => Ok(v.value.clone()),
            None => Ok(default.to_string()),
        };
    Ok(Quantities {
        cpu: pick(q.and_then(|q| q.cpu.as_ref()), cpu, is_cpu, "CPU")?,
        memory: pick(
            q.and_then(|q| q.memory.as_ref()),
            memory,
            is_memory,
            "memory",
        )?,
    })
}

fn is_decimal(s: &str) -> bool {
    let mut parts = s.splitn(2, '.');
    let whole = parts.next().unwrap_or_default();
    let frac = parts.next();
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

fn is_cpu(s: &str) -> bool {
    is_decimal(s.strip_suffix('m').unwrap_or(s))
}

fn is_memory(s: &str) -> bool {
    const SUFFIXES: [&str; 12] = [
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "k", "M", "G", "T", "P", "E",
    ];
    let number = SUFFIXES.iter().find_map(|x| s.strip_suffix(x)).unwrap_or(s);
    is_decimal(number)
}

fn http_path(p: Option<String>, key: &str, at: Location) -> Result<Option<String>, Issue> {
    match p {
        Some(p) if !p.starts_with('/') => {
            Err(issue(at, format!("`{key}` `{p}` must start with `/`")))
        }
        p => Ok(p),
    }
}

fn dns_label(v: &Spanned<String>, what: &str, max: usize) -> Result<String, Issue> {
    let s = &v.value;
    let ok = !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(s.clone())
    } else {
        Err(issue(
            v.referenced,
            format!(
                "{what} `{s}` must be 1-{max} lowercase letters, digits or `-`, starting and ending with a letter or digit"
            ),
        ))
    }
}

fn env_name(s: &str, at: Location, what: &str) -> Result<(), Issue> {
    let ok = s
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(issue(
            at,
            format!(
                "{what} `{s}` is not a valid environment variable name (letters, digits and `_`, not starting with a digit)"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_of_two_keys_is_found_in_its_own_mapping_only() {
        let item = "components:\n  - port: 1\n    name: w\n    port: 2\n";
        assert_eq!(first_written(item, "port", 4, 5), Some((2, 5)));
        // A key of the parent mapping is not the first of the two.
        let nested = "port: 1\nservice:\n  port: 2\n  port: 3\n";
        assert_eq!(first_written(nested, "port", 4, 3), Some((3, 3)));
        let quoted = "aé:\n  'k': 1\n  k: 2\n";
        assert_eq!(first_written(quoted, "k", 3, 3), None);
    }
}
