//! The labels every object kubectl-todo manages carries, in one place so that
//! rendering, selecting pods and diagnosing agree on them.

use std::collections::BTreeMap;

pub const MANAGED_BY: &str = "kubectl-todo";
/// The field manager for server-side apply.
pub const FIELD_MANAGER: &str = "kubectl-todo";
/// Pod-template annotation holding `secrets::checksum` of the app's Secret: a change rolls the pods.
pub const SECRET_CHECKSUM_ANNOTATION: &str = "kubectl-todo/secret-checksum";

/// The label naming the component an object belongs to.
pub const COMPONENT: &str = "app.kubernetes.io/component";

/// The `app.kubernetes.io/*` labels of one component of a project.
pub fn component(project: &str, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), component.to_string()),
        (
            "app.kubernetes.io/instance".to_string(),
            project.to_string(),
        ),
        (COMPONENT.to_string(), component.to_string()),
        ("app.kubernetes.io/part-of".to_string(), project.to_string()),
        (
            "app.kubernetes.io/managed-by".to_string(),
            MANAGED_BY.to_string(),
        ),
    ])
}

/// The labels of objects that belong to the whole project (the Secret, the NetworkPolicy).
pub fn project(project: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/instance".to_string(),
            project.to_string(),
        ),
        ("app.kubernetes.io/part-of".to_string(), project.to_string()),
        (
            "app.kubernetes.io/managed-by".to_string(),
            MANAGED_BY.to_string(),
        ),
    ])
}

/// The selector that finds a component's pods (stable across versions, so rollouts keep it).
pub fn component_selector(project: &str, component: &str) -> String {
    format!("app.kubernetes.io/instance={project},app.kubernetes.io/component={component}")
}

/// The selector for everything the project owns.
pub fn project_selector(project: &str) -> String {
    format!("app.kubernetes.io/instance={project},app.kubernetes.io/managed-by={MANAGED_BY}")
}
