//! The project: which components an app has and how they run. It comes from
//! `todo.yaml` at the app's root over what detection reads in the repository
//! over the defaults; without a file, the defaults are those of the original
//! two-tier layout (`frontend/` and `backend/`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod build;
pub mod detected;
mod error;
pub mod file;
mod resolve;
pub mod schema;
mod validate;

pub use error::{Error, UnknownComponent, suggestion};

pub const FILE_NAME: &str = "todo.yaml";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Project {
    pub name: String,
    pub namespace: String,
    pub components: Vec<Component>,
    pub secret: SecretSpec,
    /// The CA bundle every build trusts (`build.caCert`), relative to the root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
    /// The directory holding the project (not part of the file).
    #[serde(skip)]
    pub root: PathBuf,
    /// Where each value came from, by path (`components.web.port`): a line
    /// of `todo.yaml`, a detected file, or a default. Only values the file or
    /// detection set are listed; the rest are defaults.
    #[serde(skip)]
    pub sources: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Component {
    pub name: String,
    /// Relative to the project root.
    pub path: PathBuf,
    pub port: u16,
    /// The local port `kubectl todo dev` forwards to it, when pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev_port: Option<u16>,
    /// The path of the startup and liveness probes; `None`: nothing says the
    /// app serves an HTTP route, so the probes connect to the port (TCP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_path: Option<String>,
    /// The path of the readiness probe; `None`: TCP on the port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_path: Option<String>,
    pub replicas: i32,
    pub service: Service,
    pub resources: Resources,
    /// Non-secret settings, rendered into the component's ConfigMap.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Keys of the project's Secret this component receives as environment variables.
    #[serde(default)]
    pub secret_keys: Vec<String>,
    /// The stack to build; image-builder detects it when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<Stack>,
    /// Paths backed by an emptyDir, since the root filesystem is read-only.
    #[serde(default)]
    pub writable_paths: Vec<String>,
    /// Image repository name, without registry or tag.
    pub image: String,
    /// Other Service names the app's callers use for this component (a
    /// hard-coded `http://backend-service:8000`), each with its port.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aliases: BTreeMap<String, u16>,
    #[serde(default)]
    pub build: Build,
}

/// What image-builder needs beyond the path and the stack.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Build {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder_image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
}

/// A component's stack is image-builder's: the project file names the same
/// stacks image-builder builds.
pub use image_builder::spec::StackKind as Stack;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Service {
    #[serde(rename = "type")]
    pub kind: ServiceKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_port: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ServiceKind {
    ClusterIP,
    NodePort,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Resources {
    pub requests: Quantities,
    pub limits: Quantities,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quantities {
    pub cpu: String,
    pub memory: String,
}

/// The app's one Secret and the keys it must hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretSpec {
    pub name: String,
    pub keys: Vec<SecretKey>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKey {
    pub name: String,
    #[serde(default = "yes")]
    pub required: bool,
    /// How the value is checked before anything is written.
    #[serde(default)]
    pub format: KeyFormat,
    /// Values may be generated (`secrets create --generate`, `secrets rotate`): so many random bytes, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate_bytes: Option<usize>,
    /// An extra regular expression the value must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum KeyFormat {
    /// Any non-empty value.
    #[default]
    Opaque,
    /// A PostgreSQL connection URL.
    PostgresUrl,
    /// An API key: non-empty, no whitespace.
    ApiKey,
}

/// Where Next.js writes its image and fetch cache in image-builder's images.
pub const NEXT_CACHE: &str = "/app/.next/cache";

impl Project {
    /// The defaults of the original setup: `frontend/` on 3000 behind NodePort
    /// 30000, `backend/` on 8000 behind a ClusterIP, namespace `todo`.
    pub fn defaults(root: &Path) -> Project {
        let quantities = |cpu: &str, memory: &str| Quantities {
            cpu: cpu.into(),
            memory: memory.into(),
        };
        Project {
            name: "todo".into(),
            namespace: "todo".into(),
            ca_cert: None,
            root: root.to_path_buf(),
            sources: BTreeMap::new(),
            components: vec![
                Component {
                    name: "frontend".into(),
                    path: "frontend".into(),
                    port: 3000,
                    dev_port: None,
                    health_path: Some("/health".into()),
                    ready_path: Some("/ready".into()),
                    replicas: 1,
                    service: Service {
                        kind: ServiceKind::NodePort,
                        node_port: Some(30000),
                    },
                    resources: Resources {
                        requests: quantities("250m", "256Mi"),
                        limits: quantities("500m", "512Mi"),
                    },
                    // Where the Next.js server reaches the API: the backend's Service.
                    env: BTreeMap::from([(
                        "BACKEND_URL".into(),
                        "http://todo-backend:8000".into(),
                    )]),
                    secret_keys: vec!["BETTER_AUTH_SECRET".into()],
                    // Detection decides, as the original layout may hold its own Dockerfiles.
                    stack: None,
                    writable_paths: vec!["/tmp".into(), NEXT_CACHE.into()],
                    image: "todo-frontend".into(),
                    aliases: BTreeMap::new(),
                    build: Build::default(),
                },
                Component {
                    name: "backend".into(),
                    path: "backend".into(),
                    port: 8000,
                    dev_port: None,
                    health_path: Some("/health".into()),
                    ready_path: Some("/ready".into()),
                    replicas: 1,
                    service: Service {
                        kind: ServiceKind::ClusterIP,
                        node_port: None,
                    },
                    resources: Resources {
                        requests: quantities("500m", "512Mi"),
                        limits: quantities("1000m", "1Gi"),
                    },
                    env: BTreeMap::new(),
                    secret_keys: vec![
                        "DATABASE_URL".into(),
                        "BETTER_AUTH_SECRET".into(),
                        "OPENAI_API_KEY".into(),
                    ],
                    stack: None,
                    writable_paths: vec!["/tmp".into()],
                    image: "todo-backend".into(),
                    aliases: BTreeMap::new(),
                    build: Build::default(),
                },
            ],
            secret: SecretSpec {
                name: "todo-secrets".into(),
                keys: vec![
                    SecretKey {
                        name: "DATABASE_URL".into(),
                        required: true,
                        format: KeyFormat::PostgresUrl,
                        generate_bytes: None,
                        pattern: None,
                    },
                    SecretKey {
                        name: "BETTER_AUTH_SECRET".into(),
                        required: true,
                        format: KeyFormat::Opaque,
                        generate_bytes: Some(32),
                        pattern: None,
                    },
                    SecretKey {
                        name: "OPENAI_API_KEY".into(),
                        required: true,
                        format: KeyFormat::ApiKey,
                        generate_bytes: None,
                        pattern: None,
                    },
                ],
            },
        }
    }

    /// Loads `todo.yaml` from `root`; without one, detection over the original layout's defaults.
    pub fn load(root: &Path) -> Result<Project, Error> {
        let path = root.join(FILE_NAME);
        match read_bounded(&path) {
            Ok(text) => resolve::parse(&path, &text, root),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && root.is_dir() => {
                let mut project = resolve::without_file(root)?;
                // The default layout's directories may be symbolic links out of the repository.
                validate::project(&mut project, None).map_err(|r| Error::Refused {
                    root: root.to_path_buf(),
                    message: r.message,
                })?;
                Ok(project)
            }
            Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => Err(Error::TooLarge {
                path,
                limit: validate::MAX_FILE_BYTES,
            }),
            Err(source) => Err(Error::Read { path, source }),
        }
    }

    /// The project `text` would give as `todo.yaml` at `root`, without writing it.
    pub fn from_text(root: &Path, text: &str) -> Result<Project, Error> {
        resolve::parse(&root.join(FILE_NAME), text, root)
    }

    /// Where the project file is (whether or not it exists).
    pub fn file(&self) -> PathBuf {
        self.root.join(FILE_NAME)
    }

    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.name == name)
    }

    /// The component `name`, or the refusal whose hint `way_out` words from
    /// the project's component names for the command that asked.
    pub fn require_component(
        &self,
        name: &str,
        way_out: impl FnOnce(&[String]) -> String,
    ) -> Result<&Component, UnknownComponent> {
        self.component(name).ok_or_else(|| {
            let known: Vec<String> = self
                .component_names()
                .into_iter()
                .map(String::from)
                .collect();
            UnknownComponent {
                name: name.to_string(),
                hint: way_out(&known),
                known,
            }
        })
    }

    pub fn component_names(&self) -> Vec<&str> {
        self.components.iter().map(|c| c.name.as_str()).collect()
    }
}

/// The file's text, refused by its size before it is read whole.
fn read_bounded(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)?;
    let mut text = String::new();
    file.take(validate::MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > validate::MAX_FILE_BYTES {
        return Err(std::io::ErrorKind::FileTooLarge.into());
    }
    Ok(text)
}

#[cfg(test)]
mod tests;
