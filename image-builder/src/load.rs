//! Getting images onto the cluster's node: `minikube image load`, `kind load
//! docker-image` or `k3d image import`, skipped when the node already reports the
//! image in `status.images`.

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};
use serde::Serialize;

use crate::error::{Error, Result};

/// Where to load images.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "cluster")]
pub enum Loader {
    /// `minikube image load IMAGE --profile PROFILE`
    Minikube(Option<String>),
    /// `kind load docker-image IMAGE --name NAME`
    Kind(Option<String>),
    /// `k3d image import IMAGE --cluster NAME`
    K3d(Option<String>),
}

impl Loader {
    /// Parse `minikube|kind|k3d|none` with an optional cluster/profile name.
    pub fn parse(kind: &str, cluster: Option<String>) -> Result<Option<Loader>> {
        Ok(match kind {
            "minikube" => Some(Loader::Minikube(cluster)),
            "kind" => Some(Loader::Kind(cluster)),
            "k3d" => Some(Loader::K3d(cluster)),
            "none" | "" => None,
            other => {
                return Err(Error::Invalid {
                    what: format!("load target `{other}`"),
                    reason: "unknown cluster kind".into(),
                    fix: "use one of: minikube, kind, k3d, none (or --push REGISTRY for a remote cluster)".into(),
                });
            }
        })
    }

    pub fn tool(&self) -> &'static str {
        match self {
            Loader::Minikube(_) => "minikube",
            Loader::Kind(_) => "kind",
            Loader::K3d(_) => "k3d",
        }
    }

    pub fn cluster(&self) -> String {
        match self {
            Loader::Minikube(p) => p.clone().unwrap_or_else(|| "minikube".into()),
            Loader::Kind(n) => n.clone().unwrap_or_else(|| "kind".into()),
            Loader::K3d(c) => c.clone().unwrap_or_else(|| "k3s-default".into()),
        }
    }

    /// `minikube`, `kind/NAME`... as reported in results.
    pub fn describe(&self) -> String {
        format!("{}/{}", self.tool(), self.cluster())
    }

    /// The command line that loads `image`.
    pub fn args(&self, image: &str) -> Vec<String> {
        let c = self.cluster();
        match self {
            Loader::Minikube(_) => vec![
                "image".into(),
                "load".into(),
                image.into(),
                "--profile".into(),
                c,
            ],
            Loader::Kind(_) => vec![
                "load".into(),
                "docker-image".into(),
                image.into(),
                "--name".into(),
                c,
            ],
            Loader::K3d(_) => vec![
                "image".into(),
                "import".into(),
                image.into(),
                "--cluster".into(),
                c,
            ],
        }
    }

    fn start_hint(&self) -> String {
        let c = self.cluster();
        match self {
            Loader::Minikube(_) => format!(
                "start the cluster with `minikube start --profile {c}` (see `minikube status --profile {c}`)"
            ),
            Loader::Kind(_) => format!(
                "create/start the cluster with `kind create cluster --name {c}` (see `kind get clusters`)"
            ),
            Loader::K3d(_) => {
                format!("start the cluster with `k3d cluster start {c}` (see `k3d cluster list`)")
            }
        }
    }

    fn install_hint(&self) -> &'static str {
        match self {
            Loader::Minikube(_) => {
                "install minikube (https://minikube.sigs.k8s.io/docs/start/) and make sure it is on PATH"
            }
            Loader::Kind(_) => {
                "install kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation) and make sure it is on PATH"
            }
            Loader::K3d(_) => {
                "install k3d (https://k3d.io/#installation) and make sure it is on PATH"
            }
        }
    }
}

/// What a load did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadOutcome {
    pub image: String,
    pub target: String,
    /// `loaded`, or `present` when the node already had it.
    pub action: String,
}

/// `docker.io/library/` normalisation, as the kubelet reports image names.
pub fn normalize(image: &str) -> String {
    let (name, rest) = match image.find(['@']) {
        Some(i) => (&image[..i], &image[i..]),
        None => (image, ""),
    };
    let first = name.split('/').next().unwrap_or("");
    let has_domain =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let full = if has_domain {
        name.to_string()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    let last = full.rsplit('/').next().unwrap_or("");
    let tagged = if rest.is_empty() && !last.contains(':') {
        format!("{full}:latest")
    } else {
        full
    };
    format!("{tagged}{rest}")
}

/// Does every node of the cluster already report `image` in `status.images`?
pub async fn nodes_have_image(client: &kube::Client, image: &str) -> Result<bool> {
    let nodes: Api<Node> = Api::all(client.clone());
    let list = nodes
        .list(&ListParams::default())
        .await
        .map_err(|e| Error::Load {
            image: image.to_string(),
            target: "the cluster".into(),
            reason: format!("cannot list nodes to see whether the image is already there: {e}"),
            fix: "check the kubeconfig and that you may list nodes (`kubectl get nodes`)".into(),
        })?;
    Ok(nodes_report(&list.items, image))
}

/// Whether every one of `nodes` (and there is one) reports `image` in `status.images`.
pub fn nodes_report(nodes: &[Node], image: &str) -> bool {
    let want = normalize(image);
    !nodes.is_empty()
        && nodes.iter().all(|n| {
            n.status
                .as_ref()
                .and_then(|s| s.images.as_ref())
                .is_some_and(|imgs| {
                    imgs.iter()
                        .flat_map(|i| i.names.iter().flatten())
                        .any(|name| normalize(name) == want)
                })
        })
}

/// Load `image` into the cluster, unless `client` shows the nodes already have it.
pub async fn load(
    image: &str,
    loader: &Loader,
    client: Option<&kube::Client>,
) -> Result<LoadOutcome> {
    let target = loader.describe();
    if let Some(c) = client {
        match nodes_have_image(c, image).await {
            Ok(true) => {
                return Ok(LoadOutcome {
                    image: image.into(),
                    target,
                    action: "present".into(),
                });
            }
            Ok(false) => {}
            Err(e) => tracing::debug!("node image check failed, loading anyway: {e}"),
        }
    }
    let tool = which::which(loader.tool()).map_err(|_| Error::Load {
        image: image.into(),
        target: target.clone(),
        reason: format!("`{}` was not found on PATH", loader.tool()),
        fix: loader.install_hint().into(),
    })?;
    let out = tokio::process::Command::new(&tool)
        .args(loader.args(image))
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| Error::Load {
            image: image.into(),
            target: target.clone(),
            reason: format!("cannot run {}: {e}", tool.display()),
            fix: loader.install_hint().into(),
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let text = format!("{stderr}\n{stdout}");
        let lower = text.to_ascii_lowercase();
        let stopped = [
            "not running",
            "stopped",
            "does not exist",
            "not found",
            "no nodes",
            "could not find",
            "no such",
            "is not running",
        ]
        .iter()
        .any(|w| lower.contains(w));
        let tail: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .rev()
            .take(5)
            .collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(Error::Load {
            image: image.into(),
            target,
            reason: format!(
                "`{} {}` exited with {}: {}",
                loader.tool(),
                loader.args(image).join(" "),
                out.status,
                tail.join(" | ")
            ),
            fix: if stopped {
                loader.start_hint()
            } else {
                format!(
                    "run the command above by hand to see the full error; {}",
                    loader.start_hint()
                )
            },
        });
    }
    Ok(LoadOutcome {
        image: image.into(),
        target,
        action: "loaded".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_the_kubelet() {
        assert_eq!(
            normalize("todo-frontend:abc"),
            "docker.io/library/todo-frontend:abc"
        );
        assert_eq!(
            normalize("docker.io/library/todo-frontend:abc"),
            "docker.io/library/todo-frontend:abc"
        );
        assert_eq!(normalize("me/app:1"), "docker.io/me/app:1");
        assert_eq!(normalize("localhost:5000/app:1"), "localhost:5000/app:1");
        assert_eq!(normalize("app"), "docker.io/library/app:latest");
    }

    #[test]
    fn commands() {
        let l = Loader::parse("minikube", Some("dev".into()))
            .unwrap()
            .unwrap();
        assert_eq!(l.args("a:1"), ["image", "load", "a:1", "--profile", "dev"]);
        let l = Loader::parse("kind", None).unwrap().unwrap();
        assert_eq!(
            l.args("a:1"),
            ["load", "docker-image", "a:1", "--name", "kind"]
        );
        let l = Loader::parse("k3d", None).unwrap().unwrap();
        assert_eq!(
            l.args("a:1"),
            ["image", "import", "a:1", "--cluster", "k3s-default"]
        );
        assert!(Loader::parse("none", None).unwrap().is_none());
        assert!(Loader::parse("docker-desktop", None).is_err());
    }
}
