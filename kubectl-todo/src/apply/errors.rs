//! Why an apply failed, in the terms needed to fix it.

use std::fmt::Write as _;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("other field managers own fields kubectl-todo sets{}", list(.0))]
    Conflict(Vec<Conflict>),
    #[error("the cluster refuses to let you {verb} {resource} ({message})")]
    Forbidden {
        verb: String,
        resource: String,
        message: String,
    },
    #[error("cannot {verb} {resource} {name}")]
    Api {
        verb: String,
        resource: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("cannot read or write the revision history")]
    History(#[source] kube::Error),
    #[error("a recorded manifest is not a Kubernetes object")]
    Manifest(#[source] serde_json::Error),
    #[error("kubectl-todo does not manage objects of kind {0}")]
    UnknownKind(String),
    #[error("still being deleted after the timeout: {0}")]
    StillThere(String),
    #[error(
        "ConfigMap {parent} in namespace {namespace} is not an ApplySet kubectl-todo may change: {why}"
    )]
    ForeignApplySet {
        parent: String,
        namespace: String,
        why: String,
    },
}

impl Error {
    pub fn api(verb: &str, resource: &str, name: &str, source: kube::Error) -> Error {
        match &source {
            kube::Error::Api(s) if s.code == 403 => Error::Forbidden {
                verb: verb.to_string(),
                resource: resource.to_string(),
                message: s.message.clone(),
            },
            _ => Error::Api {
                verb: verb.to_string(),
                resource: resource.to_string(),
                name: name.to_string(),
                source,
            },
        }
    }

    pub fn apply(kind: &str, plural: &str, name: &str, source: kube::Error) -> Error {
        match &source {
            kube::Error::Api(s) if s.code == 409 => {
                Error::Conflict(vec![Conflict::of(&format!("{kind}/{name}"), s)])
            }
            _ => Error::api("patch", plural, name, source),
        }
    }

    pub fn history(source: kube::Error) -> Error {
        match &source {
            kube::Error::Api(s) if s.code == 403 => {
                Error::api("write", "configmaps", "(revision history)", source)
            }
            _ => Error::History(source),
        }
    }
}

impl crate::report::Hinted for Error {
    fn hint(&self) -> Option<String> {
        Some(match self {
            Error::Conflict(_) => "someone set these fields with another tool (kubectl edit/apply/scale, a controller); \
                 re-run with --force-conflicts to take them over, or stop the other tool from setting them"
                .into(),
            Error::Forbidden { verb, resource, .. } => format!(
                "check with `kubectl auth can-i {verb} {resource}`; ask a cluster admin for a Role granting it in the app's namespace"
            ),
            Error::Api { source, .. } | Error::History(source) => {
                // Said of reads too (status, down): only what holds for every caller.
                if matches!(source, kube::Error::Api(_)) {
                    "check the cluster with `kubectl todo doctor`, then run the command again".into()
                } else {
                    "the request did not get an answer from the API server: see why with `kubectl todo doctor`, then run the command again".into()
                }
            }
            Error::StillThere(_) => {
                "a finalizer may hold them: look with `kubectl get <kind> <name> -o yaml`, then re-run `kubectl todo down`"
                    .into()
            }
            Error::ForeignApplySet { parent, namespace, .. } => format!(
                "another tool manages this app's objects: use that tool; if the app is yours, delete the parent \
                 (`kubectl delete configmap {parent} -n {namespace}`) and apply again; nothing was changed"
            ),
            Error::Manifest(_) | Error::UnknownKind(_) => return None,
        })
    }
}
crate::report::hinted!(Error);

/// One object's fields that another field manager owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// `Kind/name`.
    pub object: String,
    /// (manager, field) per contested field, as the API server lists them.
    pub owners: Vec<(String, String)>,
    /// The server's own words, shown when it gave no causes.
    pub message: String,
}

impl Conflict {
    /// Reads a 409 of server-side apply: one `FieldManagerConflict` cause per
    /// field, its message `conflict with "<manager>"` (real servers add `using <apiVersion>`).
    pub fn of(object: &str, status: &kube::core::Status) -> Conflict {
        let owners = status
            .details
            .iter()
            .flat_map(|d| &d.causes)
            .filter(|c| c.reason == "FieldManagerConflict")
            .map(|c| {
                let manager = c
                    .message
                    .split_once('"')
                    .and_then(|(_, rest)| rest.split_once('"'))
                    .map_or(c.message.as_str(), |(m, _)| m);
                (manager.to_string(), c.field.clone())
            })
            .collect();
        Conflict {
            object: object.to_string(),
            owners,
            message: status.message.clone(),
        }
    }
}

fn list(conflicts: &[Conflict]) -> String {
    let mut out = String::new();
    for c in conflicts {
        if c.owners.is_empty() {
            let _ = write!(out, "\n  {}: {}", c.object, c.message);
        }
        for (manager, field) in &c.owners {
            let _ = write!(out, "\n  {}: {field} is owned by {manager:?}", c.object);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::report::Hinted as _;
    use kube::core::Status;
    use kube::core::response::{StatusCause, StatusDetails};

    use super::*;

    #[test]
    fn a_conflict_names_the_object_the_fields_and_their_managers() {
        let cause = |manager: &str, field: &str| StatusCause {
            reason: "FieldManagerConflict".into(),
            message: format!("conflict with \"{manager}\" using apps/v1"),
            field: field.into(),
        };
        let status = Status {
            code: 409,
            message: "Apply failed with 2 conflicts: ...".into(),
            details: Some(StatusDetails {
                causes: vec![
                    cause("someone-else", ".spec.replicas"),
                    cause(
                        "kubectl-edit",
                        ".spec.template.spec.containers[name=\"api\"].image",
                    ),
                ],
                name: "shop-api".into(),
                group: "apps".into(),
                kind: "deployments".into(),
                uid: String::new(),
                retry_after_seconds: 0,
            }),
            ..Status::default()
        };
        let err = Error::Conflict(vec![Conflict::of("Deployment/shop-api", &status)]);
        assert_eq!(
            err.to_string(),
            "other field managers own fields kubectl-todo sets\n  \
             Deployment/shop-api: .spec.replicas is owned by \"someone-else\"\n  \
             Deployment/shop-api: .spec.template.spec.containers[name=\"api\"].image is owned by \"kubectl-edit\""
        );
        assert!(err.hint().unwrap().contains("--force-conflicts"));
    }

    #[test]
    fn without_causes_the_servers_message_is_shown() {
        let status = Status {
            code: 409,
            message: "Apply failed with 1 conflict: conflict with \"x\": .data.a".into(),
            ..Status::default()
        };
        let c = Conflict::of("ConfigMap/shop-api", &status);
        assert!(c.owners.is_empty());
        assert!(list(&[c]).ends_with(
            "ConfigMap/shop-api: Apply failed with 1 conflict: conflict with \"x\": .data.a"
        ));
    }
}
