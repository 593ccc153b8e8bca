//! Removing the app: everything it owns (the ApplySet's members, its
//! parent, the revision history), waiting until it is gone; the Secret only
//! when asked (`down --purge`), since it holds what cannot be rebuilt.
//! `down` drives it, and `dev --down-on-exit` when the session ends.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::{DeleteParams, DynamicObject, ListParams};

use crate::apply::{Error, applyset};
use crate::context::Connection;
use crate::history::store::Store;
use crate::project::Project;
use crate::retry::retry;

/// What removing the app did.
pub struct Removed {
    /// Each object that was there and is gone, as `Kind/name`.
    pub deleted: Vec<String>,
    /// The app's Secret exists and stays (no `purge`).
    pub kept_secret: bool,
}

/// Deletes what the app owns, and says what; the caller holds the lock.
pub async fn delete_app(
    conn: &Connection,
    project: &Project,
    purge: bool,
    timeout: Duration,
) -> anyhow::Result<Removed> {
    let ns = &project.namespace;
    let parent_name = applyset::parent_name(&project.name);
    let id = applyset::id(&parent_name, ns);
    let parents: Api<ConfigMap> = Api::namespaced(conn.client.clone(), ns);
    let kinds = retry(|| parents.get_opt(&parent_name))
        .await
        .map_err(|e| Error::api("get", "configmaps", &parent_name, e))?
        .and_then(|p| {
            p.metadata
                .annotations?
                .get(applyset::GROUP_KINDS_ANNOTATION)
                .cloned()
        })
        .map(|a| applyset::parse_group_kinds(&a))
        .unwrap_or_default();
    let mut deleted = Vec::new();
    for gk in &kinds {
        let Some(resource) = resource_of(&conn.client, gk).await? else {
            continue;
        };
        let api: Api<DynamicObject> = Api::namespaced_with(conn.client.clone(), ns, &resource);
        let selector = format!("{}={id}", applyset::PART_OF_LABEL);
        let params = ListParams::default().labels(&selector);
        let listed = retry(|| api.list(&params))
            .await
            .map_err(|e| Error::api("list", &resource.plural, ns, e))?;
        for item in listed.items {
            let name = item.metadata.name.unwrap_or_default();
            if delete(&api, &resource.plural, &name).await? {
                deleted.push(format!("{}/{name}", resource.kind));
            }
        }
        wait_gone(&api, &params, timeout).await?;
    }
    delete(&parents, "configmaps", &parent_name).await?;
    Store::new(conn.client.clone(), ns, &project.name)
        .delete_all()
        .await
        .map_err(Error::history)?;
    let secrets: Api<Secret> = Api::namespaced(conn.client.clone(), ns);
    if !purge {
        let kept_secret = retry(|| secrets.get_opt(&project.secret.name))
            .await
            .map_err(|e| Error::api("get", "secrets", &project.secret.name, e))?
            .is_some();
        return Ok(Removed {
            deleted,
            kept_secret,
        });
    }
    // Only a Secret that was there is reported deleted.
    if delete(&secrets, "secrets", &project.secret.name).await? {
        // Foreground deletion leaves the Secret in place until its finalizer is done.
        let deadline = tokio::time::Instant::now() + timeout;
        while retry(|| secrets.get_opt(&project.secret.name))
            .await
            .map_err(|e| Error::api("get", "secrets", &project.secret.name, e))?
            .is_some()
        {
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!(
                    "Secret/{} is still being deleted after {}s",
                    project.secret.name,
                    timeout.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        deleted.push(format!("Secret/{}", project.secret.name));
    }
    Ok(Removed {
        deleted,
        kept_secret: false,
    })
}

/// The resource of a group-kind the parent lists: one kubectl-todo renders, or
/// one kubectl added to the set (asked of the API server's discovery), so that
/// no member is left behind once the parent is gone. A kind the server no
/// longer serves has no members left to delete.
async fn resource_of(
    client: &kube::Client,
    group_kind: &str,
) -> Result<Option<kube::api::ApiResource>, Error> {
    if let Some(known) = applyset::known_resource(group_kind) {
        return Ok(Some(known));
    }
    let (kind, group) = group_kind.split_once('.').unwrap_or((group_kind, ""));
    match kube::discovery::group(client, group).await {
        Ok(found) => Ok(found
            .recommended_kind(kind)
            .filter(|(_, caps)| caps.scope == kube::discovery::Scope::Namespaced)
            .map(|(resource, _)| resource)),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(Error::api("discover", "apigroups", group, e)),
    }
}

/// Deletes `name`; whether it was there.
async fn delete<K>(api: &Api<K>, plural: &str, name: &str) -> Result<bool, Error>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    // Foreground: the Deployment goes only once its ReplicaSets and pods have.
    let params = DeleteParams::foreground();
    match retry(|| api.delete(name, &params)).await {
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(Error::api("delete", plural, name, e)),
        Ok(_) => Ok(true),
    }
}

async fn wait_gone(
    api: &Api<DynamicObject>,
    params: &ListParams,
    timeout: Duration,
) -> Result<(), Error> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = retry(|| api.list(params))
            .await
            .map_err(|e| Error::api("list", "objects", "", e))?;
        if left.items.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            let names: Vec<String> = left
                .items
                .into_iter()
                .filter_map(|o| o.metadata.name)
                .collect();
            return Err(Error::StillThere(names.join(", ")));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
