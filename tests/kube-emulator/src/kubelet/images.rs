//! The node's image store: what [`load_image`] put there, and the pull
//! decisions the kubelet makes from it.

use serde_json::Value;

use crate::cluster::{Cluster, NodeImage, Runtime};
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

/// Why an image cannot be used, as the container's waiting state shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum PullError {
    /// The node tried to pull and failed (ErrImagePull, then ImagePullBackOff).
    Failed(String),
    /// `imagePullPolicy: Never` and the image is not on the node.
    NeverPull(String),
}

/// The repository part of a reference, as Docker names it in pull errors.
fn repository(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    match without_digest.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => without_digest,
    }
}

/// Decides whether the container's image can be used, as the kubelet's
/// image manager does with a registry that is never reachable.
pub(super) fn check(cluster: &Cluster, container: &Value) -> Result<NodeImage, PullError> {
    let image = container["image"].as_str().unwrap_or_default();
    let policy = container["imagePullPolicy"]
        .as_str()
        .unwrap_or("IfNotPresent");
    let present = cluster.image(image);
    match (policy, present) {
        ("Never", None) => Err(PullError::NeverPull(format!(
            "Container image \"{image}\" is not present with pull policy of Never"
        ))),
        ("Always", _) | (_, None) => Err(PullError::Failed(format!(
            "Error response from daemon: pull access denied for {}, repository does not exist or may require 'docker login': denied: requested access to the resource is denied",
            repository(image)
        ))),
        (_, Some(found)) => Ok(found),
    }
}

#[cfg(test)]
mod tests {
    use super::repository;

    #[test]
    fn pull_errors_name_the_repository() {
        assert_eq!(repository("todo:1"), "todo");
        assert_eq!(repository("localhost:5000/todo"), "localhost:5000/todo");
        assert_eq!(repository("busybox@sha256:abc"), "busybox");
    }
}
