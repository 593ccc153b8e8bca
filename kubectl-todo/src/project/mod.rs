//! The project: which components an app has and how they run. It comes from
//! `todo.yaml` at the app's root, or, without one, from the defaults that
//! reproduce the original two-tier layout (`frontend/` and `backend/`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const FILE_NAME: &str = "todo.yaml";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Error {
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Read { .. } => Some("check the path given with --project".into()),
            Error::Invalid { .. } => Some(format!("see docs/configuration.md for the {FILE_NAME} reference")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Project {
    pub name: String,
    pub namespace: String,
    pub components: Vec<Component>,
    pub secret: SecretSpec,
    /// The directory holding the project (not part of the file).
    #[serde(skip)]
    pub root: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Component {
    pub name: String,
    /// Relative to the project root.
    pub path: PathBuf,
    pub port: u16,
    pub health_path: String,
    pub ready_path: String,
    pub replicas: i32,
    pub service: Service,
    pub resources: Resources,
    /// Non-secret settings, rendered into the component's ConfigMap.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Keys of the project's Secret this component receives as environment variables.
    #[serde(default)]
    pub secret_keys: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Service {
    #[serde(rename = "type")]
    pub kind: ServiceKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_port: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
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
            root: root.to_path_buf(),
            components: vec![
                Component {
                    name: "frontend".into(),
                    path: "frontend".into(),
                    port: 3000,
                    health_path: "/health".into(),
                    ready_path: "/ready".into(),
                    replicas: 1,
                    service: Service {
                        kind: ServiceKind::NodePort,
                        node_port: Some(30000),
                    },
                    resources: Resources {
                        requests: quantities("250m", "256Mi"),
                        limits: quantities("500m", "512Mi"),
                    },
                    env: BTreeMap::new(),
                    secret_keys: vec!["BETTER_AUTH_SECRET".into()],
                },
                Component {
                    name: "backend".into(),
                    path: "backend".into(),
                    port: 8000,
                    health_path: "/health".into(),
                    ready_path: "/ready".into(),
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

    /// Loads `todo.yaml` from `root`, or the defaults when there is none.
    pub fn load(root: &Path) -> Result<Project, Error> {
        let path = root.join(FILE_NAME);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && root.is_dir() => {
                return Ok(Project::defaults(root));
            }
            Err(source) => return Err(Error::Read { path, source }),
        };
        let mut project: Project = serde_yaml_ng::from_str(&text).map_err(|e| Error::Invalid {
            path: path.clone(),
            message: e.to_string(),
        })?;
        project.root = root.to_path_buf();
        Ok(project)
    }

    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.name == name)
    }

    pub fn component_names(&self) -> Vec<&str> {
        self.components.iter().map(|c| c.name.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_project_file_the_original_layout_applies() {
        let dir = tempfile::tempdir().unwrap();
        let p = Project::load(dir.path()).unwrap();
        assert_eq!(p.namespace, "todo");
        assert_eq!(p.component_names(), ["frontend", "backend"]);
        let fe = p.component("frontend").unwrap();
        assert_eq!((fe.port, fe.service.node_port), (3000, Some(30000)));
        assert_eq!(p.component("backend").unwrap().resources.limits.memory, "1Gi");
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = serde_yaml_ng::to_string(&Project::defaults(dir.path())).unwrap();
        text.push_str("nmespace: x\n");
        std::fs::write(dir.path().join(FILE_NAME), text).unwrap();
        let err = Project::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("todo.yaml") && err.contains("nmespace"), "{err}");
    }
}
