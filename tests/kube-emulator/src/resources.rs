//! The resources the emulator serves, and the discovery documents that
//! describe them to kubectl and kube-rs.

use serde_json::{Value, json};

/// One served resource. Every resource is served at exactly one version.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ResourceDef {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub subresources: &'static [&'static str],
    /// Create-only review resources (SelfSubjectAccessReview) are not stored.
    pub create_only: bool,
    pub categories: &'static [&'static str],
}

impl ResourceDef {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps`, `pods` — the form the real server uses in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn has_status(&self) -> bool {
        self.subresources.contains(&"status")
    }

    fn verbs(&self) -> Value {
        if self.create_only {
            json!(["create"])
        } else {
            json!([
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch"
            ])
        }
    }
}

macro_rules! res {
    ($group:expr, $version:expr, $kind:expr, $plural:expr, $singular:expr, $namespaced:expr,
     short: [$($short:expr),*], sub: [$($sub:expr),*] $(, cat: [$($cat:expr),*])? $(, create_only: $co:expr)?) => {
        ResourceDef {
            group: $group,
            version: $version,
            kind: $kind,
            plural: $plural,
            singular: $singular,
            namespaced: $namespaced,
            short_names: &[$($short),*],
            subresources: &[$($sub),*],
            create_only: false $(|| $co)?,
            categories: &[$($($cat),*)?],
        }
    };
}

pub static RESOURCES: &[ResourceDef] = &[
    res!("", "v1", "Namespace", "namespaces", "namespace", false, short: ["ns"], sub: ["status", "finalize"]),
    res!("", "v1", "Node", "nodes", "node", false, short: ["no"], sub: ["status"]),
    res!("", "v1", "Pod", "pods", "pod", true, short: ["po"], sub: ["status", "log", "eviction", "portforward"], cat: ["all"]),
    res!("", "v1", "Service", "services", "service", true, short: ["svc"], sub: ["status"], cat: ["all"]),
    res!("", "v1", "Endpoints", "endpoints", "endpoints", true, short: ["ep"], sub: []),
    res!("", "v1", "ConfigMap", "configmaps", "configmap", true, short: ["cm"], sub: []),
    res!("", "v1", "Secret", "secrets", "secret", true, short: [], sub: []),
    res!("", "v1", "Event", "events", "event", true, short: ["ev"], sub: []),
    res!("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", true, short: ["sa"], sub: []),
    res!("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", "persistentvolumeclaim", true, short: ["pvc"], sub: ["status"]),
    res!("", "v1", "ResourceQuota", "resourcequotas", "resourcequota", true, short: ["quota"], sub: ["status"]),
    res!("", "v1", "LimitRange", "limitranges", "limitrange", true, short: ["limits"], sub: []),
    res!("apps", "v1", "Deployment", "deployments", "deployment", true, short: ["deploy"], sub: ["status", "scale"], cat: ["all"]),
    res!("apps", "v1", "ReplicaSet", "replicasets", "replicaset", true, short: ["rs"], sub: ["status", "scale"], cat: ["all"]),
    res!("apps", "v1", "StatefulSet", "statefulsets", "statefulset", true, short: ["sts"], sub: ["status", "scale"], cat: ["all"]),
    res!("apps", "v1", "DaemonSet", "daemonsets", "daemonset", true, short: ["ds"], sub: ["status"], cat: ["all"]),
    res!("apps", "v1", "ControllerRevision", "controllerrevisions", "controllerrevision", true, short: [], sub: []),
    res!("batch", "v1", "Job", "jobs", "job", true, short: [], sub: ["status"], cat: ["all"]),
    res!("batch", "v1", "CronJob", "cronjobs", "cronjob", true, short: ["cj"], sub: ["status"], cat: ["all"]),
    res!("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", "horizontalpodautoscaler", true, short: ["hpa"], sub: ["status"], cat: ["all"]),
    res!("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", true, short: [], sub: []),
    res!("coordination.k8s.io", "v1", "Lease", "leases", "lease", true, short: [], sub: []),
    res!("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", "networkpolicy", true, short: ["netpol"], sub: []),
    res!("networking.k8s.io", "v1", "Ingress", "ingresses", "ingress", true, short: ["ing"], sub: ["status"]),
    res!("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", "poddisruptionbudget", true, short: ["pdb"], sub: ["status"]),
    res!("rbac.authorization.k8s.io", "v1", "Role", "roles", "role", true, short: [], sub: []),
    res!("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", "rolebinding", true, short: [], sub: []),
    res!("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", "clusterrole", false, short: [], sub: []),
    res!("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", "clusterrolebinding", false, short: [], sub: []),
    res!("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", "selfsubjectaccessreview", false, short: [], sub: [], create_only: true),
    res!("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", "selfsubjectrulesreview", false, short: [], sub: [], create_only: true),
];

/// Finds a resource by group, version and plural, as they appear in a URL.
pub fn lookup(group: &str, version: &str, plural: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Finds a resource by apiVersion and kind, as they appear in an object.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|r| r.kind == kind && r.api_version() == api_version)
}

pub fn pods() -> &'static ResourceDef {
    lookup("", "v1", "pods").expect("pods are served")
}

/// A short-hand for the resources the controllers use.
pub fn get(api_version: &str, kind: &str) -> &'static ResourceDef {
    by_kind(api_version, kind).unwrap_or_else(|| panic!("{api_version} {kind} is served"))
}

fn groups() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for r in RESOURCES {
        if !r.group.is_empty() && !out.contains(&r.group) {
            out.push(r.group);
        }
    }
    out
}

fn version_of(group: &str) -> &'static str {
    RESOURCES
        .iter()
        .find(|r| r.group == group)
        .map(|r| r.version)
        .unwrap_or("v1")
}

/// `GET /api`
pub fn api_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1" }]
    })
}

fn group_entry(group: &str) -> Value {
    let version = version_of(group);
    let gv = json!({ "groupVersion": format!("{group}/{version}"), "version": version });
    json!({ "name": group, "versions": [gv.clone()], "preferredVersion": gv })
}

/// `GET /apis`
pub fn api_group_list() -> Value {
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": groups().into_iter().map(group_entry).collect::<Vec<_>>()
    })
}

/// `GET /apis/{group}`
pub fn api_group(group: &str) -> Option<Value> {
    if !groups().contains(&group) {
        return None;
    }
    let mut entry = group_entry(group);
    entry["kind"] = json!("APIGroup");
    entry["apiVersion"] = json!("v1");
    Some(entry)
}

/// `GET /api/v1` and `GET /apis/{group}/{version}`
pub fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    let members: Vec<&ResourceDef> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if members.is_empty() {
        return None;
    }
    let mut list = Vec::new();
    for r in &members {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs(),
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        list.push(entry);
        for sub in r.subresources {
            let (kind, verbs, group_version) = match *sub {
                "scale" => (
                    "Scale",
                    json!(["get", "patch", "update"]),
                    Some(("autoscaling", "v1")),
                ),
                "log" => ("Pod", json!(["get"]), None),
                "portforward" => ("PodPortForwardOptions", json!(["create", "get"]), None),
                "eviction" => ("Eviction", json!(["create"]), Some(("policy", "v1"))),
                "finalize" => ("Namespace", json!(["update"]), None),
                _ => (r.kind, json!(["get", "patch", "update"]), None),
            };
            let mut entry = json!({
                "name": format!("{}/{sub}", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": kind,
                "verbs": verbs,
            });
            if let Some((g, v)) = group_version {
                entry["group"] = json!(g);
                entry["version"] = json!(v);
            }
            list.push(entry);
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": list,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_is_found_by_url_and_by_kind() {
        for r in RESOURCES {
            assert_eq!(lookup(r.group, r.version, r.plural), Some(r));
            assert_eq!(by_kind(&r.api_version(), r.kind), Some(r));
        }
    }

    #[test]
    fn discovery_lists_subresources_with_their_kinds() {
        let list = api_resource_list("apps", "v1").unwrap();
        let scale = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "deployments/scale")
            .unwrap();
        assert_eq!(scale["kind"], "Scale");
        assert_eq!(scale["group"], "autoscaling");
    }
}
