//! Why an apply failed, in the terms needed to fix it.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{object}: another field manager owns fields kubectl-todo sets ({message})")]
    Conflict { object: String, message: String },
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
            kube::Error::Api(s) if s.code == 409 => Error::Conflict {
                object: format!("{kind}/{name}"),
                message: s.message.clone(),
            },
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

    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Error::Conflict { .. } => "someone changed these fields with another tool (kubectl edit/apply, a controller); \
                 re-run with --force-conflicts to take them over, or remove them from the other tool's config"
                .into(),
            Error::Forbidden { verb, resource, .. } => format!(
                "check with `kubectl auth can-i {verb} {resource}`; ask a cluster admin for a Role granting it in the app's namespace"
            ),
            Error::Api { .. } | Error::History(_) => {
                "check the cluster with `kubectl todo doctor`; the revision is recorded as failed and the next apply converges".into()
            }
            Error::StillThere(_) => {
                "a finalizer may hold them: look with `kubectl get <kind> <name> -o yaml`, then re-run `kubectl todo down`"
                    .into()
            }
            Error::Manifest(_) | Error::UnknownKind(_) => return None,
        })
    }
}
