//! Where built images go: the node of a local cluster (minikube, kind or k3d,
//! told apart by the kube context's name as those tools write it), a
//! registry (`--push`), or nowhere (`--load none`, for a cluster that shares
//! the Docker Engine's image store).

use image_builder::load::Loader;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LoadArg {
    Minikube,
    Kind,
    K3d,
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Load(Loader),
    Push(String),
    /// The node sees the engine's images already, or the user said so.
    Nothing,
}

impl Target {
    /// `--push` wins, then `--load`, then what the context's name says.
    pub fn choose(push: Option<&str>, load: Option<LoadArg>, context: &str) -> Target {
        if let Some(registry) = push {
            return Target::Push(registry.trim_end_matches('/').to_string());
        }
        let cluster = cluster_name(context);
        match load {
            Some(LoadArg::Minikube) => Target::Load(Loader::Minikube(cluster)),
            Some(LoadArg::Kind) => Target::Load(Loader::Kind(cluster)),
            Some(LoadArg::K3d) => Target::Load(Loader::K3d(cluster)),
            Some(LoadArg::None) => Target::Nothing,
            None => match detect(context) {
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

/// minikube names its context after the profile; kind and k3d prefix the cluster's name.
fn detect(context: &str) -> Option<Loader> {
    if context == "minikube" {
        Some(Loader::Minikube(None))
    } else if let Some(name) = context.strip_prefix("kind-") {
        Some(Loader::Kind(Some(name.to_string())))
    } else {
        context
            .strip_prefix("k3d-")
            .map(|name| Loader::K3d(Some(name.to_string())))
    }
}

fn cluster_name(context: &str) -> Option<String> {
    match context {
        "" | "minikube" => None,
        c => Some(
            c.strip_prefix("kind-")
                .or_else(|| c.strip_prefix("k3d-"))
                .unwrap_or(c)
                .to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_names_the_loader() {
        assert_eq!(
            Target::choose(None, None, "minikube"),
            Target::Load(Loader::Minikube(None))
        );
        assert_eq!(
            Target::choose(None, None, "kind-dev"),
            Target::Load(Loader::Kind(Some("dev".into())))
        );
        assert_eq!(
            Target::choose(None, None, "k3d-demo"),
            Target::Load(Loader::K3d(Some("demo".into())))
        );
        assert_eq!(
            Target::choose(None, None, "docker-desktop"),
            Target::Nothing
        );
    }

    #[test]
    fn flags_override_the_context() {
        assert_eq!(
            Target::choose(Some("localhost:5000/"), Some(LoadArg::Kind), "minikube"),
            Target::Push("localhost:5000".into())
        );
        assert_eq!(
            Target::choose(None, Some(LoadArg::Kind), "kind-dev"),
            Target::Load(Loader::Kind(Some("dev".into())))
        );
        assert_eq!(
            Target::choose(None, Some(LoadArg::Minikube), "work"),
            Target::Load(Loader::Minikube(Some("work".into())))
        );
        assert_eq!(
            Target::choose(None, Some(LoadArg::None), "minikube"),
            Target::Nothing
        );
    }
}
