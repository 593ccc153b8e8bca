//! Reading and writing the app's Secret. Writes are server-side applies
//! with the `kubectl-todo` field manager that carry the whole data map, so
//! that a key left out is a key removed.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, Patch, PatchParams};

use crate::labels::FIELD_MANAGER;

use super::error::Error;
use super::value::{CHECKSUM_KEY_ANNOTATION, Value, new_checksum_key};

/// When each key last changed, as a JSON object of RFC 3339 times: the
/// managedFields time is per manager, not per key.
pub const CHANGED_AT_ANNOTATION: &str = "kubectl-todo/changed-at";

pub struct Store {
    client: kube::Client,
    api: Api<Secret>,
    pub name: String,
    pub namespace: String,
}

/// The data a write should leave in the Secret.
pub struct Desired<'a> {
    pub data: BTreeMap<String, Value>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub existing: Option<&'a Secret>,
}

impl Store {
    pub fn new(client: kube::Client, namespace: &str, name: &str) -> Store {
        Store {
            api: Api::namespaced(client.clone(), namespace),
            client,
            name: name.to_string(),
            namespace: namespace.to_string(),
        }
    }

    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    pub async fn get(&self) -> Result<Option<Secret>, Error> {
        self.api
            .get_opt(&self.name)
            .await
            .map_err(|e| self.error(&format!("read secret/{}", self.name), "get", &e, []))
    }

    /// Applies `desired`; creates the namespace first when it is missing and
    /// `create_namespace` allows it.
    pub async fn write(
        &self,
        desired: &Desired<'_>,
        create_namespace: bool,
    ) -> Result<Secret, Error> {
        let secret = self.object(desired)?;
        let values: Vec<&Value> = desired.data.values().collect();
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let action = format!("write secret/{}", self.name);
        let mut applied = match self
            .api
            .patch(&self.name, &params, &Patch::Apply(&secret))
            .await
        {
            Err(e) if is_missing_namespace(&e) => {
                if !create_namespace {
                    return Err(Error::NoNamespace(self.namespace.clone()));
                }
                self.create_namespace(&desired.labels).await?;
                self.api
                    .patch(&self.name, &params, &Patch::Apply(&secret))
                    .await
                    .map_err(|e| self.error(&action, "patch", &e, values.iter().copied()))?
            }
            other => other.map_err(|e| self.error(&action, "patch", &e, values.iter().copied()))?,
        };
        // Keys another manager owns survive an apply that leaves them out.
        let leftovers: Vec<&String> = desired
            .removed
            .iter()
            .filter(|k| applied.data.as_ref().is_some_and(|d| d.contains_key(*k)))
            .collect();
        if !leftovers.is_empty() {
            // A merge patch's null removes a key whoever owns it.
            let removals: serde_json::Map<String, serde_json::Value> = leftovers
                .iter()
                .map(|k| (k.to_string(), serde_json::Value::Null))
                .collect();
            let params = PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..PatchParams::default()
            };
            let patch = serde_json::json!({ "data": removals });
            applied = self
                .api
                .patch(&self.name, &params, &Patch::Merge(&patch))
                .await
                .map_err(|e| self.error(&action, "patch", &e, values.iter().copied()))?;
        }
        Ok(applied)
    }

    pub async fn delete(&self) -> Result<(), Error> {
        match self.api.delete(&self.name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Err(Error::NoSecret {
                secret: self.name.clone(),
                namespace: self.namespace.clone(),
            }),
            Err(e) => Err(self.error(&format!("delete secret/{}", self.name), "delete", &e, [])),
        }
    }

    fn object(&self, desired: &Desired<'_>) -> Result<Secret, Error> {
        let existing = desired.existing;
        let now = jiff::Timestamp::now().to_string();
        let mut changed_at = existing.map(changed_at).unwrap_or_default();
        for key in &desired.changed {
            changed_at.insert(key.clone(), now.clone());
        }
        changed_at.retain(|k, _| desired.data.contains_key(k));
        let checksum_key = match existing.and_then(checksum_key) {
            Some(key) => key.to_string(),
            None => new_checksum_key().map_err(random_error)?,
        };
        let annotations = BTreeMap::from([
            (
                CHANGED_AT_ANNOTATION.to_string(),
                serde_json::to_string(&changed_at).unwrap_or_default(),
            ),
            (CHECKSUM_KEY_ANNOTATION.to_string(), checksum_key),
        ]);
        Ok(Secret {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(desired.labels.clone()),
                annotations: Some(annotations),
                // A precondition: a concurrent writer makes the server answer 409.
                resource_version: existing.and_then(|s| s.metadata.resource_version.clone()),
                ..ObjectMeta::default()
            },
            // The type is immutable; keep the one a Secret made elsewhere has.
            type_: Some(
                existing
                    .and_then(|s| s.type_.clone())
                    .unwrap_or_else(|| "Opaque".into()),
            ),
            data: Some(
                desired
                    .data
                    .iter()
                    .map(|(k, v)| (k.clone(), ByteString(v.bytes().to_vec())))
                    .collect(),
            ),
            ..Secret::default()
        })
    }

    async fn create_namespace(&self, labels: &BTreeMap<String, String>) -> Result<(), Error> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(self.namespace.clone()),
                labels: Some(labels.clone()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        api.patch(
            &self.namespace,
            &PatchParams::apply(FIELD_MANAGER),
            &Patch::Apply(&ns),
        )
        .await
        .map_err(|e| {
            let action = format!("create namespace {}", self.namespace);
            Error::api(action, "patch namespaces", &e, [])
        })?;
        Ok(())
    }

    /// An error of a request on the Secret that needed RBAC's `verb`.
    fn error<'a>(
        &self,
        action: &str,
        verb: &str,
        err: &kube::Error,
        values: impl IntoIterator<Item = &'a Value> + Clone,
    ) -> Error {
        let permission = format!("{verb} secrets -n {}", self.namespace);
        Error::api(action, &permission, err, values)
    }
}

fn checksum_key(secret: &Secret) -> Option<&str> {
    secret
        .metadata
        .annotations
        .as_ref()?
        .get(CHECKSUM_KEY_ANNOTATION)
        .map(String::as_str)
        .filter(|k| !k.is_empty())
}

fn random_error(source: std::io::Error) -> Error {
    Error::Read {
        path: "the operating system's random source".into(),
        source,
    }
}

/// `secret` with the key of its checksum, which a Secret made before
/// checksums were keyed (or by another tool) gets now: one annotation,
/// no value changed, so the app does not notice.
pub async fn with_checksum_key(client: &kube::Client, secret: Secret) -> Result<Secret, Error> {
    if checksum_key(&secret).is_some() {
        return Ok(secret);
    }
    let name = secret.metadata.name.clone().unwrap_or_default();
    let namespace = secret.metadata.namespace.clone().unwrap_or_default();
    let key = new_checksum_key().map_err(random_error)?;
    let patch = serde_json::json!({"metadata": {"annotations": {CHECKSUM_KEY_ANNOTATION: key}}});
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    api.patch(&name, &params, &Patch::Merge(&patch))
        .await
        .map_err(|e| {
            let action = format!("add the checksum key to secret/{name}");
            Error::api(action, &format!("patch secrets -n {namespace}"), &e, [])
        })
}

fn is_missing_namespace(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 404 && s.message.starts_with("namespaces \""))
}

/// The values of a Secret, `stringData` having been folded in by the server.
pub fn data(secret: &Secret) -> BTreeMap<String, Value> {
    secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), Value::new(v.0.clone())))
        .collect()
}

/// The per-key change times kubectl-todo recorded.
pub fn changed_at(secret: &Secret) -> BTreeMap<String, String> {
    secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CHANGED_AT_ANNOTATION))
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default()
}

/// When `key` last changed: the recorded time, else the newest managedFields
/// entry that owns it, else the Secret's creation.
pub fn last_change(secret: &Secret, key: &str) -> Option<String> {
    if let Some(t) = changed_at(secret).remove(key) {
        return Some(t);
    }
    let field = format!("f:{key}");
    secret
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| {
            m.fields_v1
                .as_ref()
                .and_then(|f| f.0.get("f:data"))
                .is_some_and(|d| d.get(&field).is_some())
        })
        .filter_map(|m| m.time.as_ref().map(|t| t.0))
        .max()
        .or_else(|| secret.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .map(|t| t.to_string())
}
