//! The node's image store: what [`load_image`] put there or the node
//! pulled from a registry on loopback, and the pull decisions the kubelet
//! makes from it.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::cluster::{Cluster, NodeImage, Runtime};
use crate::faults::ContainerFailure;
use crate::status::ApiResult;

use super::{docker, node};

/// Puts an image on the node and republishes the node's `status.images`.
pub async fn load_image(cluster: &Cluster, reference: &str) -> ApiResult<NodeImage> {
    let image = match docker::inspect_image(reference).await {
        Ok(image) => image,
        Err(e) if cluster.runtime == Runtime::Docker => return Err(e),
        // The scripted runtime runs nothing, so a name is all it needs.
        Err(_) => NodeImage {
            names: vec![reference.to_string()],
            size_bytes: 0,
            user: None,
            id: None,
        },
    };
    let mut image = image;
    if !image
        .names
        .iter()
        .any(|n| crate::cluster::normalize_image(n) == crate::cluster::normalize_image(reference))
    {
        image.names.push(reference.to_string());
    }
    cluster.add_image(image.clone());
    node::refresh_images(cluster);
    Ok(image)
}

/// What the kubelet does about a container's image before starting it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Decision {
    /// On the node and not to be pulled again.
    Present(NodeImage),
    /// To pull (absent, or `imagePullPolicy: Always`).
    Pull,
    /// `imagePullPolicy: Never` and the image is not on the node.
    NeverPull(String),
    /// The reference does not parse: InvalidImageName, with the kubelet's message.
    Invalid(String),
}

/// The reference grammar of the kubelet's parser (distribution's
/// `reference` package): an optional registry host, lower-case path
/// components, then a tag, a digest, or both.
static REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
    let component = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
    let host = r"(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?";
    let tag = r"[\w][\w.-]{0,127}";
    let digest = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
    Regex::new(&format!(
        "^(?:{host}/)?{component}(?:/{component})*(?::{tag})?(?:@{digest})?$"
    ))
    .expect("a valid pattern")
});

/// Whether `image` is a reference the kubelet can parse (a name is at most 255 characters).
fn valid(image: &str) -> bool {
    REFERENCE.is_match(image) && repository(image).len() <= 255
}

/// The repository part of a reference, as Docker names it in pull errors.
fn repository(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    match without_digest.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => without_digest,
    }
}

/// The registry host a reference names, if it names one (`docker.io` is implied otherwise).
fn registry(image: &str) -> Option<&str> {
    let (first, _) = image.split_once('/')?;
    (first.contains('.') || first.contains(':') || first == "localhost").then_some(first)
}

/// A registry on this machine's loopback: the only kind the emulated node
/// reaches, as the Docker Engine pulls from it without TLS.
fn on_loopback(registry: &str) -> bool {
    let host = match registry.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => registry,
    };
    host == "localhost" || host == "[::1]" || host.starts_with("127.")
}

/// What the engine pulls for `image`: by digest when there is one (the tag
/// beside it then only names it), else by tag, `latest` when none is given
/// (a bare name would pull every tag).
fn pullable(image: &str) -> String {
    match image.split_once('@') {
        Some((_, digest)) => format!("{}@{digest}", repository(image)),
        None if repository(image) == image => format!("{image}:latest"),
        None => image.to_string(),
    }
}

/// Decides what to do about the container's image, as the kubelet's image
/// manager does from its pull policy and the node's images.
pub(super) fn check(cluster: &Cluster, container: &Value) -> Decision {
    let image = container["image"].as_str().unwrap_or_default();
    let mangled =
        cluster.faults.container_failure(image) == Some(ContainerFailure::InvalidImageName);
    if mangled || !valid(image) {
        return Decision::Invalid(format!(
            "Failed to apply default image tag \"{image}\": couldn't parse image name \"{image}\": invalid reference format"
        ));
    }
    let policy = container["imagePullPolicy"]
        .as_str()
        .unwrap_or("IfNotPresent");
    match (policy, cluster.image(image)) {
        ("Never", None) => Decision::NeverPull(format!(
            "Container image \"{image}\" is not present with pull policy of Never"
        )),
        ("Always", _) | (_, None) => Decision::Pull,
        (_, Some(found)) => Decision::Present(found),
    }
}

/// Pulls the container's image onto the node, or says why the pull failed
/// in the runtime's words. Only a registry on loopback is reached, through
/// the Docker Engine in both runtimes; any other is treated as one that
/// refuses (nothing leaves the machine).
pub(super) async fn pull(cluster: &Cluster, image: &str) -> Result<NodeImage, String> {
    if !registry(image).is_some_and(on_loopback) {
        return Err(format!(
            "Error response from daemon: pull access denied for {}, repository does not exist or may require 'docker login': denied: requested access to the resource is denied",
            repository(image)
        ));
    }
    let reference = pullable(image);
    if docker::pull(&reference).await? {
        super::kubelet_of(cluster).pulled(reference.clone());
    }
    let mut found = docker::inspect_image(&reference)
        .await
        .map_err(|e| e.message)?;
    found.names.push(image.to_string());
    cluster.add_image(found.clone());
    node::refresh_images(cluster);
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::{on_loopback, pullable, registry, repository, valid};

    #[test]
    fn references_the_kubelet_cannot_parse_are_invalid() {
        for ok in [
            "todo:1",
            "busybox",
            "team/todo-api:1.2.3",
            "127.0.0.1:5000/todo:abc",
            "localhost/todo__x:latest",
            "registry.example:5000/a/b/c:v1",
            "todo@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(valid(ok), "{ok}");
        }
        for bad in [
            "Todo:1",
            "todo:",
            "todo:1:2",
            "todo api:1",
            "-todo:1",
            "todo@sha256:abc",
            "",
            &format!("{}:1", "a".repeat(256)),
        ] {
            assert!(!valid(bad), "{bad:?} is valid");
        }
    }

    #[test]
    fn pull_errors_name_the_repository() {
        assert_eq!(repository("todo:1"), "todo");
        assert_eq!(repository("localhost:5000/todo"), "localhost:5000/todo");
        assert_eq!(repository("busybox@sha256:abc"), "busybox");
    }

    #[test]
    fn only_a_registry_on_loopback_is_pulled_from_by_tag_or_digest() {
        let reachable = |i: &str| registry(i).is_some_and(on_loopback);
        assert!(reachable("127.0.0.1:5000/todo:1"));
        assert!(reachable("localhost/todo"));
        assert!(reachable("[::1]:5000/todo:1"));
        assert!(!reachable("registry.example:5000/todo:1"));
        assert!(!reachable("todo:1"));
        assert!(!reachable("team/todo:1"));
        assert_eq!(
            pullable("127.0.0.1:5000/todo:abc@sha256:0f"),
            "127.0.0.1:5000/todo@sha256:0f"
        );
        assert_eq!(
            pullable("127.0.0.1:5000/todo"),
            "127.0.0.1:5000/todo:latest"
        );
        assert_eq!(pullable("127.0.0.1:5000/todo:1"), "127.0.0.1:5000/todo:1");
    }
}
