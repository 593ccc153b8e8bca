//! The layer between `todo.yaml` and the defaults: what detection reads in
//! the repository, turned into project values, each with where it came from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{KeyFormat, SecretKey, Service, ServiceKind, Stack};
use crate::detect;

/// A value and where it came from (`detected from frontend/Dockerfile:15`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced<T> {
    pub value: T,
    pub source: String,
}

fn sourced<T>(value: T, source: impl Into<String>) -> Sourced<T> {
    Sourced {
        value,
        source: source.into(),
    }
}

fn from(e: &detect::Evidence) -> String {
    format!("detected from {e}")
}

/// One component as detection sees it.
#[derive(Debug, Clone, Default)]
pub struct Base {
    pub name: String,
    pub path: Option<Sourced<PathBuf>>,
    pub stack: Option<Sourced<Stack>>,
    /// The generated recipe's stack when the app's own Dockerfile cannot
    /// work, with the reason: `init` writes it into todo.yaml, while without
    /// that line `up` refuses the Dockerfile and names both ways out.
    pub recipe_instead: Option<Sourced<Stack>>,
    pub port: Option<Sourced<u16>>,
    /// The detected stack's port, for when nothing names one.
    pub default_port: u16,
    /// The framework the code is written in, whatever builds the image.
    pub framework: Option<Stack>,
    pub health_path: Option<Sourced<String>>,
    pub ready_path: Option<Sourced<String>>,
    pub service: Option<Sourced<Service>>,
    pub env: BTreeMap<String, Sourced<String>>,
    pub secret_keys: Vec<Sourced<String>>,
    pub build_args: BTreeMap<String, Sourced<String>>,
    /// Service names callers use for this component, with their ports.
    pub aliases: BTreeMap<String, u16>,
    pub alias_sources: BTreeMap<String, String>,
    /// What needs a hand: the exact line to write, and why.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Layer {
    pub components: Vec<Base>,
    pub keys: Vec<Sourced<SecretKey>>,
}

/// What detection says about the app at `root`, for project `project`.
pub fn layer(root: &Path, project: &str) -> Layer {
    let app = detect::app(root);
    from_app(&app, project)
}

pub fn from_app(app: &detect::App, project: &str) -> Layer {
    let backend = backend(app);
    let components = app
        .components
        .iter()
        .map(|c| base(app, c, project, backend))
        .collect();
    Layer {
        components,
        keys: keys(app),
    }
}

/// The component the others call: the Python one, else one named like an API.
fn backend(app: &detect::App) -> Option<&detect::Component> {
    app.components
        .iter()
        .find(|c| c.stack.value == Stack::Python)
        .or_else(|| {
            app.components
                .iter()
                .find(|c| ["backend", "api", "server"].contains(&c.name.as_str()))
        })
}

fn port_of(c: &detect::Component) -> u16 {
    c.port
        .as_ref()
        .map_or(c.stack.value.default_port(), |p| p.value)
}

fn base(
    app: &detect::App,
    c: &detect::Component,
    project: &str,
    backend: Option<&detect::Component>,
) -> Base {
    let mut b = Base {
        name: c.name.clone(),
        path: Some(sourced(c.path.clone(), "detected: the component's folder")),
        default_port: c.stack.value.default_port(),
        framework: Some(c.stack.value),
        ..Base::default()
    };
    // The app's own Dockerfile is what image-builder picks; when it cannot
    // work, the generated recipe of the detected stack is used instead.
    let reason = c.dockerfile.as_ref().and_then(detect::Dockerfile::unusable);
    match reason {
        Some(reason) => {
            let recipe = sourced(c.stack.value, format!("generated recipe: {reason}"));
            // A root image is refused before the build, with both ways out;
            // a missing file would fail the build, so the recipe builds the
            // component meanwhile.
            if !c
                .dockerfile
                .as_ref()
                .is_some_and(detect::Dockerfile::runs_as_root)
            {
                b.stack = Some(recipe.clone());
            }
            b.recipe_instead = Some(recipe);
        }
        None if c.dockerfile.is_none() && c.stack.value == Stack::Python => {
            // A scripts-only package.json would otherwise make image-builder pick Node.
            b.stack = Some(sourced(c.stack.value, from(&c.stack.from)));
        }
        None => {}
    }
    b.port = c.port.as_ref().map(|p| sourced(p.value, from(&p.from)));
    let health = c.health.as_ref().or(c.root_route.as_ref());
    b.health_path = health.map(|r| sourced(r.path.clone(), from(&r.from)));
    b.ready_path = c
        .ready
        .as_ref()
        .map(|r| sourced(r.path.clone(), from(&r.from)));
    if health.is_none() {
        b.notes.push(format!(
            "no route of {} is known to answer, so its probes connect to port {} (TCP); if it serves a health route, add `healthPath: /your-health-route` under component `{}` in todo.yaml",
            c.name,
            port_of(c),
            c.name
        ));
    }
    let node_port = c.node_port.as_ref();
    let called = browser_called(app, c);
    if let (None, Some(caller)) = (node_port, &called) {
        let port = assigned_node_port(port_of(c));
        b.service = Some(sourced(
            Service {
                kind: ServiceKind::NodePort,
                node_port: Some(port),
            },
            format!(
                "{} calls it from the browser, so it is exposed on node port {port} (30000 + its port / 10)",
                caller.from
            ),
        ));
    } else if c.stack.value == Stack::Nextjs || node_port.is_some() {
        b.service = Some(sourced(
            Service {
                kind: ServiceKind::NodePort,
                node_port: node_port.map(|n| n.value),
            },
            node_port.map_or("detected: the browser-facing component".into(), |n| {
                from(&n.from)
            }),
        ));
    }
    let backend_url = backend
        .filter(|be| be.name != c.name)
        .map(|be| (be, format!("http://{project}-{}:{}", be.name, port_of(be))));
    for s in &c.settings {
        let (name, sample) = &s.value;
        match (&backend_url, sample) {
            (Some((be, url)), _) if names_backend(name) => {
                b.env.insert(
                    name.clone(),
                    sourced(
                        url.clone(),
                        format!("the Service of `{}` ({} reads it)", be.name, s.from),
                    ),
                );
            }
            (_, Some(v)) => {
                b.env
                    .insert(name.clone(), sourced(v.clone(), from(&s.from)));
            }
            // Without a value the app's own default applies.
            _ => {}
        }
    }
    for k in &c.secret_keys {
        b.secret_keys.push(sourced(k.name.clone(), from(&k.from)));
    }
    for h in &c.hosts {
        if !app
            .components
            .iter()
            .any(|o| o.name != c.name && port_of(o) == h.port)
        {
            b.notes.push(format!(
                "{} calls `{}:{}`, and no other component listens on {}: point that call at a component's Service (`http://{project}-<component>:<port>`)",
                h.from, h.host, h.port, h.port
            ));
        }
    }
    // Names other components call this one by, on its port, that its own
    // Service name does not already answer: an extra Service each.
    let own = format!("{project}-{}", c.name);
    for h in app
        .components
        .iter()
        .filter(|o| o.name != c.name)
        .flat_map(|o| &o.hosts)
    {
        // A fallback of a variable that gets the backend's URL is never called.
        let overridden = backend.is_some_and(|be| be.name == c.name)
            && h.fallback_of.as_deref().is_some_and(names_backend);
        if !overridden
            && h.port == port_of(c)
            && h.host != own
            && !app
                .components
                .iter()
                .any(|o| format!("{project}-{}", o.name) == h.host)
        {
            b.aliases.insert(h.host.clone(), h.port);
            b.alias_sources.insert(
                h.host.clone(),
                format!("{} calls `{}:{}`", h.from, h.host, h.port),
            );
        }
    }
    for p in &c.public {
        match browser_url(app, c, p) {
            Some((url, source)) => {
                b.build_args.insert(p.name.clone(), sourced(url, source));
            }
            None => b.notes.push(format!(
                "{} reads `{}` at build time (an address the browser calls): if it names another component, set it under `buildArgs` of component `{}`, e.g. `{}: http://localhost:<that component's nodePort>`",
                p.from, p.name, c.name, p.name
            )),
        }
    }
    b.notes.extend(c.notes.iter().cloned());
    b
}

/// Whether a setting is the address of the backend (`BACKEND_URL`, `API_URL`).
fn names_backend(name: &str) -> bool {
    name.contains("BACKEND") || name.ends_with("API_URL") || name == "API_BASE_URL"
}

/// The address a browser on the user's machine reaches the component a
/// `NEXT_PUBLIC_*` variable names (its sample is `http://localhost:<that
/// component's port>`), when that component has a fixed node port.
fn browser_url(
    app: &detect::App,
    c: &detect::Component,
    p: &detect::Read,
) -> Option<(String, String)> {
    let target = browser_target(app, c, p)?;
    let (node_port, whence) = match &target.node_port {
        Some(n) => (n.value, n.from.to_string()),
        None => (
            assigned_node_port(port_of(target)),
            "given to it for this call".to_string(),
        ),
    };
    Some((
        format!("http://localhost:{node_port}"),
        format!(
            "{} reads it in the browser; `{}` is on node port {node_port} ({whence}), which kind/k3d port mappings and `minikube tunnel` bring to localhost",
            p.from, target.name
        ),
    ))
}

/// The component a `NEXT_PUBLIC_*` variable of `c` names: its sample is
/// `http://localhost:<that component's port>`.
fn browser_target<'a>(
    app: &'a detect::App,
    c: &detect::Component,
    p: &detect::Read,
) -> Option<&'a detect::Component> {
    let port: u16 = p
        .example
        .as_deref()?
        .strip_prefix("http://localhost:")?
        .split('/')
        .next()?
        .parse()
        .ok()?;
    app.components
        .iter()
        .find(|o| o.name != c.name && port_of(o) == port)
}

/// The first read of another component's code that calls `c` from the browser.
fn browser_called<'a>(app: &'a detect::App, c: &detect::Component) -> Option<&'a detect::Read> {
    app.components
        .iter()
        .filter(|o| o.name != c.name)
        .flat_map(|o| o.public.iter().map(move |p| (o, p)))
        .find(|(o, p)| browser_target(app, o, p).is_some_and(|t| t.name == c.name))
        .map(|(_, p)| p)
}

/// A node port for a component the browser calls that no chart or compose
/// file gives one: fixed (so the URL built into the frontend stays valid)
/// and read off its port (8000 gets 30800).
fn assigned_node_port(port: u16) -> u16 {
    30000 + port / 10
}

/// The Secret keys the components read, with the format their samples suggest.
fn keys(app: &detect::App) -> Vec<Sourced<SecretKey>> {
    let mut out: Vec<Sourced<SecretKey>> = Vec::new();
    for k in app.components.iter().flat_map(|c| &c.secret_keys) {
        if let Some(known) = out.iter_mut().find(|o| o.value.name == k.name) {
            known.value.required |= k.required;
            continue;
        }
        let upper = k.name.to_ascii_uppercase();
        let (format, generate_bytes) = if upper.contains("DATABASE_URL") {
            (KeyFormat::PostgresUrl, None)
        } else if upper.contains("API_KEY") {
            (KeyFormat::ApiKey, None)
        } else if upper.contains("SECRET") {
            (KeyFormat::Opaque, Some(32))
        } else {
            (KeyFormat::Opaque, None)
        };
        out.push(sourced(
            SecretKey {
                name: k.name.clone(),
                required: k.required,
                format,
                generate_bytes,
                pattern: None,
            },
            from(&k.from),
        ));
    }
    for k in &mut out {
        // A database URL with a fallback (often SQLite) need not be PostgreSQL.
        if k.value.format == KeyFormat::PostgresUrl && !k.value.required {
            k.value.format = KeyFormat::Opaque;
        }
    }
    out
}

/// The project name: the one the frontend's calls imply when they name the
/// backend's Service as `<name>-<backend>` (so that the call resolves), else
/// the app folder's name.
pub fn project_name(app: &detect::App) -> Sourced<String> {
    let from_calls = backend(app).and_then(|be| {
        app.components.iter().flat_map(|c| &c.hosts).find_map(|h| {
            let name = h.host.strip_suffix(&format!("-{}", be.name))?;
            (!name.is_empty() && h.port == port_of(be)).then(|| {
                sourced(
                    name.to_string(),
                    format!(
                        "{} calls `{}:{}`, the backend's Service under this name",
                        h.from, h.host, h.port
                    ),
                )
            })
        })
    });
    from_calls.unwrap_or_else(|| {
        let label = app
            .root
            .file_name()
            .map(|n| detect::dns_name(&n.to_string_lossy()))
            .unwrap_or_default();
        if label.is_empty() || label.len() > 40 {
            sourced("todo".into(), "default")
        } else {
            sourced(label.to_string(), "the app folder's name")
        }
    })
}
