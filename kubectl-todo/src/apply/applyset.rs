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

/// The tooling annotation, `<tool>/<semver>`. kubectl (applyset.go) takes the
/// part before the last `/` as the tool and refuses to touch a set whose tool
/// is not `kubectl`; the spec asks every tool to refuse sets of other tools.
/// kubectl-todo runs as `kubectl todo` and operates the set exactly as
/// `kubectl apply --server-side --prune --applyset` does (same id, labels,
/// annotations, superset-then-prune order), so the set is a kubectl ApplySet
/// and says so: tool `kubectl`. It does not pretend to be a kubectl release:
/// the version is the Kubernetes API it is built against, with semver build
/// metadata naming the writer, e.g. `kubectl/v1.33.0+kubectl-todo.0.1.0`.
/// kubectl rewrites it to its own version when it applies; both are accepted.
pub const TOOLING: &str = concat!("kubectl/v1.33.0+kubectl-todo.", env!("CARGO_PKG_VERSION"));
const TOOL: &str = "kubectl";

/// The field manager of the parent's labels and annotations: the one kubectl
/// uses for them. Whichever tool wrote the set last, its bookkeeping has one
/// owner, so neither kubectl nor kubectl-todo meets a conflict on it (kubectl
/// warns "ApplySet field manager kubectl-applyset should own these fields"
/// and forces otherwise). The members keep kubectl-todo's own manager.
pub const PARENT_FIELD_MANAGER: &str = "kubectl-applyset";

/// Why an existing parent is not one kubectl-todo may change.
pub fn refusal(parent: &ConfigMap, id: &str) -> Option<String> {
    let meta = &parent.metadata;
    let tooling = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(TOOLING_ANNOTATION));
    let Some(tooling) = tooling else {
        return Some(format!("it has no {TOOLING_ANNOTATION} annotation"));
    };
    let tool = tooling
        .rsplit_once('/')
        .map_or(tooling.as_str(), |(t, _)| t);
    if tool != TOOL {
        return Some(format!("it is managed by {tooling:?}"));
    }
    match meta.labels.as_ref().and_then(|l| l.get(ID_LABEL)) {
        Some(found) if found == id => None,
        Some(found) => Some(format!("its {ID_LABEL} label is {found}, not {id}")),
        None => Some(format!("it has no {ID_LABEL} label")),
    }
}

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
    fn only_sets_of_kubectl_tooling_with_our_id_are_ours() {
        let parent = |tooling: Option<&str>, id: Option<&str>| ConfigMap {
            metadata: kube::api::ObjectMeta {
                annotations: tooling
                    .map(|t| [(TOOLING_ANNOTATION.to_string(), t.to_string())].into()),
                labels: id.map(|i| [(ID_LABEL.to_string(), i.to_string())].into()),
                ..Default::default()
            },
            ..ConfigMap::default()
        };
        let ours = id("shop-applyset", "shop");
        assert_eq!(refusal(&parent(Some(TOOLING), Some(&ours)), &ours), None);
        // What kubectl writes after `kubectl apply --applyset`.
        assert_eq!(
            refusal(&parent(Some("kubectl/v1.32.4"), Some(&ours)), &ours),
            None
        );
        assert_eq!(
            refusal(&parent(Some("helm/v3"), Some(&ours)), &ours).unwrap(),
            "it is managed by \"helm/v3\""
        );
        assert!(refusal(&parent(Some("kubectl-todo/v1"), Some(&ours)), &ours).is_some());
        assert!(refusal(&parent(None, Some(&ours)), &ours).is_some());
        assert!(refusal(&parent(Some(TOOLING), Some("applyset-x-v1")), &ours).is_some());
        assert!(refusal(&parent(Some(TOOLING), None), &ours).is_some());
        assert!(TOOLING.starts_with("kubectl/v1."));
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
