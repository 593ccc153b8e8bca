//! Fault injection for tests: failing chosen requests, adding latency,
//! closing watches early, going silent, denying verbs as RBAC would, and
//! failing containers on the node before they run.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;

use serde::{Deserialize, Serialize};

use crate::status::ApiError;

/// One rule; a request matches when every given field matches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Fault {
    /// HTTP method (`GET`, `PATCH`…); any when empty.
    pub method: Option<String>,
    /// A substring of the request path (`/deployments/web`); any when empty.
    pub path: Option<String>,
    /// Only watch requests (`?watch=true`).
    pub watch_only: bool,
    /// Answer with this status code instead of serving the request.
    pub code: Option<u16>,
    pub message: Option<String>,
    /// How many requests to affect; unlimited when empty.
    pub times: Option<u32>,
    /// Delay before the request is served.
    pub latency_ms: Option<u64>,
    /// End matching watches and log streams after this long; drop a
    /// matching port-forward connection this long after its upgrade.
    pub close_after_ms: Option<u64>,
    /// Go silent, as a host gone without a FIN or a proxy that keeps the
    /// TCP connection alive after its backend died: matching requests are
    /// never answered, and matching watches and log streams already open
    /// stop sending without closing. The emulator's own endpoints stay up.
    pub silent: bool,
}

/// An RBAC denial: the user may not `verb` `resource` (in `namespace`, or anywhere).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Denial {
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub namespace: Option<String>,
}

/// A container the node fails before it runs, chosen by its image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerFault {
    /// A substring of the container's image.
    pub image: String,
    pub failure: ContainerFailure,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ContainerFailure {
    /// The runtime refuses to create the container, with its message: what
    /// it says of a volume's missing subPath or of a user the image lacks.
    /// The kubelet retries with back-off, as it does after a crash.
    CreateContainerError(String),
    /// The kubelet cannot parse the reference. It finds a reference that is
    /// not valid by itself; this stands for one mangled on its way to the
    /// node (a mutating webhook, a registry mirror's rewrite) after
    /// whoever deployed it checked it.
    InvalidImageName,
}

#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<Fault>>,
    denials: Mutex<Vec<Denial>>,
    containers: Mutex<Vec<ContainerFault>>,
    /// Woken on every new rule, for open streams to check for silence.
    added: Notify,
}

/// What a matching rule asks of one request.
#[derive(Debug, Default)]
pub struct Effect {
    pub error: Option<ApiError>,
    pub latency: Option<Duration>,
    pub close_after: Option<Duration>,
    pub silent: bool,
}

pub const USER: &str = "emulator-admin";

/// The emulator's own endpoints, which tests need to undo a fault.
fn own_endpoint(path: &str) -> bool {
    path.starts_with("/emulator/")
}

impl Fault {
    fn matches(&self, method: &str, path: &str, is_watch: bool) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.path.as_deref().is_none_or(|p| path.contains(p))
            && (!self.watch_only || is_watch)
    }
}

impl Faults {
    pub fn add(&self, fault: Fault) {
        self.rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(fault);
        self.added.notify_waiters();
    }

    pub fn deny(&self, denial: Denial) {
        self.denials
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(denial);
    }

    pub fn fail_containers(&self, fault: ContainerFault) {
        self.containers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(fault);
    }

    /// How the node fails a container running `image`, if it does.
    pub fn container_failure(&self, image: &str) -> Option<ContainerFailure> {
        self.containers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|f| image.contains(&f.image))
            .map(|f| f.failure.clone())
    }

    pub fn clear(&self) {
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.denials
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.containers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    pub fn effect(&self, method: &str, path: &str, is_watch: bool) -> Effect {
        let mut effect = Effect::default();
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        for rule in rules.iter_mut() {
            if !rule.matches(method, path, is_watch) || rule.times == Some(0) {
                continue;
            }
            if let Some(t) = rule.times.as_mut() {
                *t -= 1;
            }
            if let Some(code) = rule.code {
                let message = rule
                    .message
                    .clone()
                    .unwrap_or_else(|| format!("injected failure ({code})"));
                effect
                    .error
                    .get_or_insert(ApiError::injected(code, message));
            }
            if let Some(ms) = rule.latency_ms {
                effect.latency = Some(Duration::from_millis(ms));
            }
            if let Some(ms) = rule.close_after_ms {
                effect.close_after = Some(Duration::from_millis(ms));
            }
            effect.silent |= rule.silent && !own_endpoint(path);
        }
        effect
    }

    /// Resolves once a `silent` rule matches this request: an open stream
    /// then stops sending.
    pub async fn silenced(&self, method: &str, path: &str, is_watch: bool) {
        if own_endpoint(path) {
            return std::future::pending().await;
        }
        loop {
            let added = self.added.notified();
            tokio::pin!(added);
            // Registered before the check, so a rule added in between still wakes it.
            added.as_mut().enable();
            let silent = self
                .rules
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .any(|rule| rule.silent && rule.matches(method, path, is_watch));
            if silent {
                return;
            }
            added.await;
        }
    }

    pub fn allowed(
        &self,
        verb: &str,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
    ) -> bool {
        let denials = self.denials.lock().unwrap_or_else(|e| e.into_inner());
        !denials.iter().any(|d| {
            (d.verb == verb || d.verb == "*")
                && (d.resource == resource || d.resource == "*")
                && (d.group == group || d.group == "*")
                && d.namespace.as_deref().is_none_or(|n| Some(n) == namespace)
        })
    }

    /// The 403 the real server sends when RBAC says no.
    pub fn forbidden(
        verb: &str,
        group: &str,
        resource: &str,
        name: Option<&str>,
        namespace: Option<&str>,
    ) -> ApiError {
        // The subject names the resource without its subresource (`pods "web"`, not `pods/portforward "web"`).
        let plural = resource.split('/').next().unwrap_or(resource);
        let qualified = if group.is_empty() {
            plural.to_string()
        } else {
            format!("{plural}.{group}")
        };
        let subject = match name {
            Some(n) => format!("{qualified} \"{n}\""),
            None => qualified,
        };
        let scope = match namespace {
            Some(ns) => format!(" in the namespace \"{ns}\""),
            None => " at the cluster scope".into(),
        };
        ApiError::forbidden(format!(
            "{subject} is forbidden: User \"{USER}\" cannot {verb} resource \"{resource}\" in API group \"{group}\"{scope}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_faults_expire() {
        let f = Faults::default();
        f.add(Fault {
            method: Some("GET".into()),
            path: Some("/pods".into()),
            code: Some(500),
            times: Some(1),
            ..Fault::default()
        });
        assert!(f.effect("GET", "/api/v1/pods", false).error.is_some());
        assert!(f.effect("GET", "/api/v1/pods", false).error.is_none());
    }

    #[tokio::test]
    async fn open_streams_fall_silent_when_a_matching_rule_arrives() {
        let f = std::sync::Arc::new(Faults::default());
        let waiting = tokio::spawn({
            let f = f.clone();
            async move { f.silenced("GET", "/api/v1/namespaces/a/pods", true).await }
        });
        f.add(Fault {
            path: Some("/services".into()),
            silent: true,
            ..Fault::default()
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "another path's rule silenced it");
        f.add(Fault {
            path: Some("/pods".into()),
            silent: true,
            ..Fault::default()
        });
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("silenced")
            .unwrap();
        assert!(f.effect("GET", "/api/v1/pods", false).silent);
        assert!(!f.effect("POST", "/emulator/v1/faults", false).silent);
    }

    #[test]
    fn denials_match_verb_resource_and_namespace() {
        let f = Faults::default();
        f.deny(Denial {
            verb: "create".into(),
            resource: "secrets".into(),
            namespace: Some("todo".into()),
            ..Denial::default()
        });
        assert!(!f.allowed("create", "", "secrets", Some("todo")));
        assert!(f.allowed("create", "", "secrets", Some("other")));
        assert!(f.allowed("get", "", "secrets", Some("todo")));
    }
}
