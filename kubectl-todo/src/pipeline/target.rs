//! Where built images go: the node of a local cluster (minikube, kind or k3d,
//! told apart by the kube context's name as those tools write it), a
//! registry (`--push`), or nowhere (`--load none`, for a cluster that shares
//! the Docker Engine's image store).

use image_builder::load::{LoadInto, Loader};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Load(Loader),
    Push(String),
    /// The node sees the engine's images already, or the user said so.
    Nothing,
}

impl Target {
    /// `--push` wins, then `--load`, then what the context's name says.
    pub fn choose(push: Option<&str>, load: Option<LoadInto>, context: &str) -> Target {
        if let Some(registry) = push {
            return Target::Push(registry.trim_end_matches('/').to_string());
        }
        match load {
            Some(LoadInto::Cluster(kind)) => Target::Load(Loader::in_context(kind, context)),
            Some(LoadInto::Nowhere) => Target::Nothing,
            None => match Loader::of_context(context) {
                Some(loader) => Target::Load(loader),
                None => Target::Nothing,
            },
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Target::Load(l) => l.describe(),
            Target::Push(r) => r.clone(),
            Target::Nothing => "none".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use image_builder::load::ClusterKind;

    use super::*;

    fn load(kind: ClusterKind, cluster: Option<&str>) -> Target {
        Target::Load(Loader {
            kind,
            cluster: cluster.map(str::to_string),
        })
    }

    #[test]
    fn the_context_names_the_loader() {
        assert_eq!(
            Target::choose(None, None, "minikube"),
            load(ClusterKind::Minikube, None)
        );
        assert_eq!(
            Target::choose(None, None, "kind-dev"),
            load(ClusterKind::Kind, Some("dev"))
        );
        assert_eq!(
            Target::choose(None, None, "k3d-demo"),
            load(ClusterKind::K3d, Some("demo"))
        );
        assert_eq!(
            Target::choose(None, None, "docker-desktop"),
            Target::Nothing
        );
    }

    #[test]
    fn flags_override_the_context() {
        assert_eq!(
            Target::choose(
                Some("localhost:5000/"),
                Some(LoadInto::Cluster(ClusterKind::Kind)),
                "minikube"
            ),
            Target::Push("localhost:5000".into())
        );
        assert_eq!(
            Target::choose(None, Some(LoadInto::Cluster(ClusterKind::Kind)), "kind-dev"),
            load(ClusterKind::Kind, Some("dev"))
        );
        assert_eq!(
            Target::choose(None, Some(LoadInto::Cluster(ClusterKind::Minikube)), "work"),
            load(ClusterKind::Minikube, Some("work"))
        );
        assert_eq!(
            Target::choose(None, Some(LoadInto::Nowhere), "minikube"),
            Target::Nothing
        );
    }
}
