//! The shape of `todo.yaml` as written: everything but the name and the
//! components is optional. These types are the source of truth for `docs/todo.schema.json`;
//! [`super::resolve`] turns them into a [`super::Project`] with every default
//! filled in.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{KeyFormat, ServiceKind, Stack};

/// A kubectl-todo project: the components of an app and how they run.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "kubectl-todo project file (todo.yaml)")]
pub struct ProjectFile {
    /// Project name (a DNS label): the `app.kubernetes.io/instance` label and the first half of object and image names.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// Namespace the app is deployed to (`-n` overrides it). Default: the project name.
    #[schemars(with = "Option<String>")]
    pub namespace: Option<Spanned<String>>,
    /// The app's one Secret and the keys it holds. Default: `<name>-secrets` with no keys.
    #[serde(default)]
    pub secret: SecretFile,
    /// The app's components, deployed in this order. Each entry overrides the component of that name detection finds (every key left out comes from detection, then the defaults); components detection finds and the file leaves out are kept. Default: the detected components.
    #[schemars(with = "Option<Vec<ComponentFile>>", length(min = 1))]
    pub components: Option<Spanned<Vec<ComponentFile>>>,
    /// How every component's image is built.
    #[serde(default)]
    pub build: ProjectBuildFile,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProjectBuildFile {
    /// A PEM bundle of CAs that package downloads in the builds trust (a TLS-intercepting proxy's), relative to the project root; mounted as a BuildKit secret, never in an image (image-builder's `--ca-cert`).
    pub ca_cert: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretFile {
    /// Name of the Secret. Default: `<project name>-secrets`.
    pub name: Option<String>,
    /// The keys the Secret holds; `kubectl todo secrets` creates and checks them.
    #[serde(default)]
    pub keys: Vec<SecretKeyFile>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeyFile {
    /// Environment variable name, also the key in the Secret.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// `up` refuses to deploy while a required key is missing. Default: true.
    pub required: Option<bool>,
    /// How the value is checked before it is written. Default: `opaque`.
    pub format: Option<KeyFormat>,
    /// Values may be generated: so many random bytes, base64url-encoded.
    pub generate_bytes: Option<usize>,
    /// An extra regular expression the value must match.
    pub pattern: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ComponentFile {
    /// Component name (a DNS label): the names of its Deployment, Service, ConfigMap and ServiceAccount are `<project>-<name>`.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// Directory of the component relative to the project root (the build context). Default: the name.
    pub path: Option<PathBuf>,
    /// The stack to build; image-builder detects it when absent.
    pub stack: Option<Stack>,
    /// Port the app listens on. Default: 3000 for nextjs/node, 8000 for python, else 8080.
    #[schemars(with = "Option<u16>")]
    pub port: Option<Spanned<u16>>,
    /// HTTP path of the liveness (and startup) probe. Default: the health route detection finds in the code, compose healthcheck or Helm probes (else `/` when the app serves it); with none, the probes connect to the port (TCP).
    pub health_path: Option<String>,
    /// HTTP path of the readiness probe. Default: a readiness route detection finds, else the health path (TCP when there is none).
    pub ready_path: Option<String>,
    /// Number of pods. Default: 1.
    #[schemars(with = "Option<u32>")]
    pub replicas: Option<Spanned<i32>>,
    /// Local port `kubectl todo dev` forwards to this component, always this one (a taken port is an error). Default: the component's port if free, else one derived from the project and component names.
    #[schemars(with = "Option<u16>")]
    pub dev_port: Option<Spanned<u16>>,
    /// How the component is exposed inside (ClusterIP) or outside (NodePort) the cluster. Default: ClusterIP.
    #[schemars(with = "Option<ServiceFile>")]
    pub service: Option<Spanned<ServiceFile>>,
    /// CPU and memory requests and limits. Default: requests 100m/128Mi, limits 500m/512Mi.
    pub resources: Option<ResourcesFile>,
    /// Non-secret settings, rendered into the component's ConfigMap.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Keys of the project's Secret this component receives as environment variables.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub secret_keys: Vec<Spanned<String>>,
    /// Paths the app writes to, each backed by an emptyDir (the root filesystem is read-only). `/tmp` always is; nextjs adds `/app/.next/cache`.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub writable_paths: Vec<Spanned<String>>,
    /// Image repository name. Default: `<project>-<component>`.
    pub image: Option<String>,
    /// Base image overrides for the generated Dockerfile.
    #[serde(default)]
    pub base_images: BaseImagesFile,
    /// The component's own Dockerfile, relative to its path (implies stack `dockerfile`).
    pub dockerfile: Option<PathBuf>,
    /// Docker build arguments.
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
    /// Build target stage.
    pub target: Option<String>,
    /// Build platform, e.g. `linux/amd64`.
    pub platform: Option<String>,
    /// Python: the ASGI app uvicorn runs, `MODULE:ATTR` (e.g. `backend.main:app`). Default: the file that creates `FastAPI()`.
    pub module: Option<String>,
    /// The command the image runs, e.g. `["python", "-m", "app"]`. Default: chosen by the stack.
    pub command: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceFile {
    #[serde(rename = "type")]
    pub kind: ServiceKind,
    /// Fixed node port (30000-32767), NodePort only.
    pub node_port: Option<u16>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourcesFile {
    pub requests: Option<QuantitiesFile>,
    pub limits: Option<QuantitiesFile>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuantitiesFile {
    /// CPU, e.g. `250m` or `1`.
    #[schemars(with = "Option<String>")]
    pub cpu: Option<Spanned<String>>,
    /// Memory, e.g. `256Mi` or `1Gi`.
    #[schemars(with = "Option<String>")]
    pub memory: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BaseImagesFile {
    /// Image of the build stages.
    pub builder: Option<String>,
    /// Image of the final stage.
    pub runtime: Option<String>,
}
