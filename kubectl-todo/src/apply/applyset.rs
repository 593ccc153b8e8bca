//! kubectl's ApplySet conventions (KEP-3659), so that `kubectl apply
//! --prune --applyset=configmaps/<project>-applyset` and kubectl-todo see
//! the same set: a parent ConfigMap labelled with the set's id and
//! annotated with the group-kinds it contains; members labelled `part-of`.

use std::collections::BTreeSet;

use base64::Engine as _;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::ApiResource;
use sha2::{Digest, Sha256};

pub const ID_LABEL: &str = "applyset.kubernetes.io/id";
pub const PART_OF_LABEL: &str = "applyset.kubernetes.io/part-of";
pub const GROUP_KINDS_ANNOTATION: &str = "applyset.kubernetes.io/contains-group-kinds";
pub const TOOLING_ANNOTATION: &str = "applyset.kubernetes.io/tooling";
/// kubectl refuses sets whose tooling is not `kubectl/…`; ours follow its
/// semantics exactly (server-side apply, the same labels), so they say so and
/// `kubectl apply --prune --applyset` can take over or prune them.
pub const TOOLING: &str = "kubectl/v1.32";

/// The parent ConfigMap of a project's set.
pub fn parent_name(project: &str) -> String {
    format!("{project}-applyset")
}

/// `applyset-<base64url(sha256(<name>.<namespace>.<kind>.<group>))>-v1`, as kubectl computes it.
pub fn id(parent: &str, namespace: &str) -> String {
    let hash = Sha256::digest(format!("{parent}.{namespace}.ConfigMap.").as_bytes());
    format!(
        "applyset-{}-v1",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash)
    )
}

/// `Kind` for the core group, `Kind.group` otherwise.
pub fn group_kind(resource: &ApiResource) -> String {
    if resource.group.is_empty() {
        resource.kind.clone()
    } else {
        format!("{}.{}", resource.kind, resource.group)
    }
}

pub fn parse_group_kinds(annotation: &str) -> BTreeSet<String> {
    annotation
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The group-kinds of [`known_resource`], to list every member.
pub const KINDS: [&str; 5] = [
    "ServiceAccount",
    "ConfigMap",
    "Service",
    "Deployment.apps",
    "NetworkPolicy.networking.k8s.io",
];

/// The kinds kubectl-todo renders, to list members when pruning.
pub fn known_resource(group_kind: &str) -> Option<ApiResource> {
    [
        ApiResource::erase::<ServiceAccount>(&()),
        ApiResource::erase::<ConfigMap>(&()),
        ApiResource::erase::<Service>(&()),
        ApiResource::erase::<Deployment>(&()),
        ApiResource::erase::<NetworkPolicy>(&()),
    ]
    .into_iter()
    .find(|r| self::group_kind(r) == group_kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_kubectls() {
        // kubectl: base64.RawURLEncoding(sha256("todo-applyset.todo.ConfigMap.")).
        let hash = Sha256::digest(b"todo-applyset.todo.ConfigMap.");
        let want = format!(
            "applyset-{}-v1",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash)
        );
        assert_eq!(id("todo-applyset", "todo"), want);
        assert!(
            id("todo-applyset", "todo").len() <= 63,
            "fits in a label value"
        );
    }

    #[test]
    fn group_kinds_round_trip() {
        let gk = group_kind(&ApiResource::erase::<Deployment>(&()));
        assert_eq!(gk, "Deployment.apps");
        assert_eq!(known_resource(&gk).unwrap().plural, "deployments");
        assert_eq!(group_kind(&ApiResource::erase::<Service>(&())), "Service");
        assert_eq!(parse_group_kinds("Service,,Deployment.apps").len(), 2);
        for gk in KINDS {
            assert_eq!(group_kind(&known_resource(gk).unwrap()), gk);
        }
    }
}
