//! Getting images onto the cluster's node: `minikube image load`, `kind load
//! docker-image` or `k3d image import`, skipped when the node already reports the
//! image in `status.images`.

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};
use serde::Serialize;

use crate::error::{Error, Result};

/// A kind of local cluster whose node images are loaded into: the one list
/// of them, for both binaries' `--load` and `--to`, `kubectl todo up`'s
/// choice of where images go, and doctor's checks of the cluster's tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ClusterKind {
    Minikube,
    Kind,
    K3d,
}

impl ClusterKind {
    /// The command-line tool that runs this kind of cluster.
    pub fn tool(self) -> &'static str {
        match self {
            ClusterKind::Minikube => "minikube",
            ClusterKind::Kind => "kind",
            ClusterKind::K3d => "k3d",
        }
    }

    /// The arguments that make [`ClusterKind::tool`] print its version.
    pub fn version_args(self) -> &'static [&'static str] {
        match self {
            ClusterKind::Minikube => &["version", "--short"],
            ClusterKind::Kind | ClusterKind::K3d => &["version"],
        }
    }

    /// Where the tool's installation is described.
    pub fn install_url(self) -> &'static str {
        match self {
            ClusterKind::Minikube => "https://minikube.sigs.k8s.io/docs/start/",
            ClusterKind::Kind => "https://kind.sigs.k8s.io/docs/user/quick-start/#installation",
            ClusterKind::K3d => "https://k3d.io/#installation",
        }
    }
}

/// `--load`'s value in both binaries: a kind of local cluster, or `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadInto {
    Cluster(ClusterKind),
    Nowhere,
}

impl clap::ValueEnum for LoadInto {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            LoadInto::Cluster(ClusterKind::Minikube),
            LoadInto::Cluster(ClusterKind::Kind),
            LoadInto::Cluster(ClusterKind::K3d),
            LoadInto::Nowhere,
        ]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        match self {
            LoadInto::Cluster(kind) => kind.to_possible_value(),
            LoadInto::Nowhere => Some(clap::builder::PossibleValue::new("none")),
        }
    }
}

/// Where to load images: a kind of cluster and, when not the tool's
/// default, the cluster's name (minikube's profile).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Loader {
    pub kind: ClusterKind,
    pub cluster: Option<String>,
}

impl Loader {
    /// The local cluster a kube context belongs to, by the names the tools
    /// give their contexts: minikube names it after the profile (`minikube`
    /// for the default one); kind and k3d prefix the cluster's name.
    pub fn of_context(context: &str) -> Option<Loader> {
        if context == "minikube" {
            return Some(Loader {
                kind: ClusterKind::Minikube,
                cluster: None,
            });
        }
        [("kind-", ClusterKind::Kind), ("k3d-", ClusterKind::K3d)]
            .into_iter()
            .find_map(|(prefix, kind)| {
                context.strip_prefix(prefix).map(|name| Loader {
                    kind,
                    cluster: Some(name.to_string()),
                })
            })
    }

    /// A `kind` of cluster the user named, in the cluster the context's name
    /// tells (the whole name when it has no tool's prefix).
    pub fn in_context(kind: ClusterKind, context: &str) -> Loader {
        let cluster = match context {
            "" | "minikube" => None,
            c => Some(
                c.strip_prefix("kind-")
                    .or_else(|| c.strip_prefix("k3d-"))
                    .unwrap_or(c)
                    .to_string(),
            ),
        };
        Loader { kind, cluster }
    }

    pub fn tool(&self) -> &'static str {
        self.kind.tool()
    }

    pub fn cluster(&self) -> String {
        match (&self.cluster, self.kind) {
            (Some(c), _) => c.clone(),
            (None, ClusterKind::Minikube) => "minikube".into(),
            (None, ClusterKind::Kind) => "kind".into(),
            (None, ClusterKind::K3d) => "k3s-default".into(),
        }
    }

    /// `minikube`, `kind/NAME`... as reported in results.
    pub fn describe(&self) -> String {
        format!("{}/{}", self.tool(), self.cluster())
    }

    /// The command line that loads `image`.
    pub fn args(&self, image: &str) -> Vec<String> {
        let (verb, flag) = self.verb_and_flag();
        verb.iter()
            .map(|w| w.to_string())
            .chain([image.to_string(), flag.to_string(), self.cluster()])
            .collect()
    }

    /// The command a person types to load `image`: the cluster flag only
    /// when the cluster has a name of its own.
    pub fn command_line(&self, image: &str) -> String {
        let (verb, flag) = self.verb_and_flag();
        let mut line = format!("{} {} {image}", self.tool(), verb.join(" "));
        if let Some(c) = &self.cluster {
            line.push_str(&format!(" {flag} {c}"));
        }
        line
    }

    fn verb_and_flag(&self) -> (&'static [&'static str], &'static str) {
        match self.kind {
            ClusterKind::Minikube => (&["image", "load"], "--profile"),
            ClusterKind::Kind => (&["load", "docker-image"], "--name"),
            ClusterKind::K3d => (&["image", "import"], "--cluster"),
        }
    }

    fn start_hint(&self) -> String {
        let c = self.cluster();
        match self.kind {
            ClusterKind::Minikube => format!(
                "start the cluster with `minikube start --profile {c}` (see `minikube status --profile {c}`)"
            ),
            ClusterKind::Kind => format!(
                "create/start the cluster with `kind create cluster --name {c}` (see `kind get clusters`)"
            ),
            ClusterKind::K3d => {
                format!("start the cluster with `k3d cluster start {c}` (see `k3d cluster list`)")
            }
        }
    }

    fn install_hint(&self) -> String {
        format!(
            "install {} ({}) and make sure it is on PATH",
            self.tool(),
            self.kind.install_url()
        )
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
        fix: loader.install_hint(),
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
            fix: loader.install_hint(),
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
        let l = Loader {
            kind: ClusterKind::Minikube,
            cluster: Some("dev".into()),
        };
        assert_eq!(l.args("a:1"), ["image", "load", "a:1", "--profile", "dev"]);
        let l = Loader {
            kind: ClusterKind::Kind,
            cluster: None,
        };
        assert_eq!(
            l.args("a:1"),
            ["load", "docker-image", "a:1", "--name", "kind"]
        );
        let l = Loader {
            kind: ClusterKind::K3d,
            cluster: None,
        };
        assert_eq!(
            l.args("a:1"),
            ["image", "import", "a:1", "--cluster", "k3s-default"]
        );
        use clap::ValueEnum as _;
        assert_eq!(LoadInto::from_str("none", false), Ok(LoadInto::Nowhere));
        assert!(LoadInto::from_str("docker-desktop", false).is_err());
    }

    #[test]
    fn the_context_names_the_cluster() {
        let of = |c: &str| Loader::of_context(c).map(|l| (l.kind, l.cluster));
        assert_eq!(of("minikube"), Some((ClusterKind::Minikube, None)));
        assert_eq!(
            of("kind-dev"),
            Some((ClusterKind::Kind, Some("dev".into())))
        );
        assert_eq!(
            of("k3d-demo"),
            Some((ClusterKind::K3d, Some("demo".into())))
        );
        assert_eq!(of("docker-desktop"), None);
        assert_eq!(
            Loader::in_context(ClusterKind::Minikube, "work").cluster,
            Some("work".into())
        );
        assert_eq!(
            Loader::in_context(ClusterKind::Kind, "kind-dev").cluster,
            Some("dev".into())
        );
    }

    #[test]
    fn the_typed_command_names_the_cluster_only_when_it_has_a_name() {
        let minikube = Loader::of_context("minikube").unwrap();
        assert_eq!(minikube.command_line("a:1"), "minikube image load a:1");
        let kind = Loader::of_context("kind-dev").unwrap();
        assert_eq!(
            kind.command_line("a:1"),
            "kind load docker-image a:1 --name dev"
        );
        let k3d = Loader::of_context("k3d-demo").unwrap();
        assert_eq!(
            k3d.command_line("a:1"),
            "k3d image import a:1 --cluster demo"
        );
    }
}
