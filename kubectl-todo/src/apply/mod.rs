//! Applying a rendered revision: server-side apply of every object as
//! `kubectl-todo`, each labelled into the project's ApplySet, then pruning
//! the members the previous revision had and this one does not, and
//! recording the revision. A failure part-way is recorded as such, never
//! reported as success.

pub mod applyset;
mod errors;
pub mod interrupt;

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Api;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, ListParams, ObjectMeta, Patch, PatchParams,
    PostParams,
};

pub use errors::{Conflict, Error};

use crate::history::store::{Outcome, Store, Summary};
use crate::labels;
use crate::project::Project;
use crate::retry::retry;

/// What one apply did.
#[derive(Debug, Default)]
pub struct Applied {
    pub revision: u32,
    pub applied: Vec<String>,
    pub pruned: Vec<String>,
}

pub struct Options {
    pub force_conflicts: bool,
    /// Recorded in the revision: `apply`, `up`, `rollback to N`.
    pub origin: String,
}

/// Applies `objects` (JSON, as rendered or as recorded) as the project's next revision.
pub async fn apply(
    client: &kube::Client,
    project: &Project,
    objects: &[serde_json::Value],
    images: std::collections::BTreeMap<String, String>,
    options: &Options,
) -> Result<Applied, Error> {
    let ns = &project.namespace;
    ensure_namespace(client, ns).await?;
    let parent = parent(client, project).await?;
    let members = members(project, objects)?;
    if !options.force_conflicts {
        preflight(client, ns, &members).await?;
    }
    let store = Store::new(client.clone(), ns, &project.name);
    let last = store.list().await.map_err(Error::history)?.pop();
    // The caller holds the lock: a revision still `applying` is no run's any
    // more. Its outcome is recorded, as `history` and `status` show it.
    if last
        .as_ref()
        .is_some_and(|s| s.outcome == Outcome::Applying)
    {
        store
            .mark_interrupted("its run stopped without recording an outcome")
            .await
            .map_err(Error::history)?;
    }
    let revision = last.map_or(1, |s| s.revision + 1);
    let mut summary = Summary {
        revision,
        time: jiff::Timestamp::now().to_string(),
        outcome: Outcome::Applying,
        origin: options.origin.clone(),
        images,
        error: None,
    };
    store
        .write(&summary, objects)
        .await
        .map_err(Error::history)?;
    let result = apply_set(
        client,
        project,
        parent.as_ref(),
        &members,
        options.force_conflicts,
    )
    .await;
    summary.outcome = if result.is_ok() {
        Outcome::Applied
    } else {
        Outcome::Failed
    };
    summary.error = result.as_ref().err().map(|e| format!("{e}"));
    store.set_summary(&summary).await.map_err(Error::history)?;
    let (applied, pruned) = result?;
    Ok(Applied {
        revision,
        applied,
        pruned,
    })
}

pub async fn ensure_namespace(client: &kube::Client, ns: &str) -> Result<(), Error> {
    let api: Api<Namespace> = Api::all(client.clone());
    if retry(|| api.get_opt(ns))
        .await
        .map_err(|e| Error::api("get", "namespaces", ns, e))?
        .is_some()
    {
        return Ok(());
    }
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(ns.to_string()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    match api.create(&PostParams::default(), &namespace).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(Error::api("create", "namespaces", ns, e)),
    }
}

/// One object to apply, labelled into the project's set.
struct Member {
    group_kind: String,
    resource: ApiResource,
    object: DynamicObject,
}

impl Member {
    fn name(&self) -> String {
        self.object.metadata.name.clone().unwrap_or_default()
    }
}

// The module's one error type: boxing its kube::Error would hide it from
// error chains, where `up` looks for it to tell an unreachable cluster.
#[allow(clippy::result_large_err)]
fn members(project: &Project, objects: &[serde_json::Value]) -> Result<Vec<Member>, Error> {
    let ns = &project.namespace;
    let id = applyset::id(&applyset::parent_name(&project.name), ns);
    let mut members = Vec::new();
    for value in objects {
        let mut object: DynamicObject =
            serde_json::from_value(value.clone()).map_err(Error::Manifest)?;
        let types = object
            .types
            .clone()
            .ok_or_else(|| Error::Manifest(serde::de::Error::custom("an object has no kind")))?;
        let group_kind = group_kind_of(&types.api_version, &types.kind);
        let resource = applyset::known_resource(&group_kind)
            .ok_or_else(|| Error::UnknownKind(group_kind.clone()))?;
        object.metadata.namespace = Some(ns.clone());
        object
            .metadata
            .labels
            .get_or_insert_default()
            .insert(applyset::PART_OF_LABEL.into(), id.clone());
        members.push(Member {
            group_kind,
            resource,
            object,
        });
    }
    Ok(members)
}

/// A server-side dry run of every object, unforced and all at once, so that
/// fields another manager owns are found (every one of them) before anything
/// is written: an apply that would conflict leaves the cluster as it was.
async fn preflight(client: &kube::Client, ns: &str, members: &[Member]) -> Result<(), Error> {
    let params = PatchParams::apply(labels::FIELD_MANAGER).dry_run();
    let checks = members.iter().map(|m| {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &m.resource);
        let params = &params;
        async move {
            let name = m.name();
            let patch = Patch::Apply(&m.object);
            let result = retry(|| api.patch(&name, params, &patch)).await;
            (m, name, result)
        }
    });
    let mut conflicts = Vec::new();
    for (m, name, result) in futures::future::join_all(checks).await {
        match result {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {
                conflicts.push(Conflict::of(&format!("{}/{name}", m.resource.kind), &s));
            }
            Err(e) => return Err(Error::apply(&m.resource.kind, &m.resource.plural, &name, e)),
        }
    }
    if conflicts.is_empty() {
        Ok(())
    } else {
        Err(Error::Conflict(conflicts))
    }
}

/// The set's parent as it is, after checking that kubectl-todo may change it.
async fn parent(client: &kube::Client, project: &Project) -> Result<Option<ConfigMap>, Error> {
    let ns = &project.namespace;
    let name = applyset::parent_name(&project.name);
    let parents: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let parent = retry(|| parents.get_opt(&name))
        .await
        .map_err(|e| Error::api("get", "configmaps", &name, e))?;
    if let Some(why) = parent
        .as_ref()
        .and_then(|p| applyset::refusal(p, &applyset::id(&name, ns)))
    {
        return Err(Error::ForeignApplySet {
            parent: name,
            namespace: ns.clone(),
            why,
        });
    }
    Ok(parent)
}

async fn apply_set(
    client: &kube::Client,
    project: &Project,
    previous: Option<&ConfigMap>,
    members: &[Member],
    force: bool,
) -> Result<(Vec<String>, Vec<String>), Error> {
    let ns = &project.namespace;
    let parent_name = applyset::parent_name(&project.name);
    let id = applyset::id(&parent_name, ns);
    let parents: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let previous_kinds = previous
        .and_then(|p| {
            p.metadata
                .annotations
                .as_ref()?
                .get(applyset::GROUP_KINDS_ANNOTATION)
                .cloned()
        })
        .map(|a| applyset::parse_group_kinds(&a))
        .unwrap_or_default();
    let kinds: BTreeSet<String> = members.iter().map(|m| m.group_kind.clone()).collect();
    // Superset first, as kubectl does: a run that dies after applying still
    // lets the next one find every kind it may have left behind.
    let superset: BTreeSet<String> = kinds.union(&previous_kinds).cloned().collect();
    write_parent(&parents, project, &parent_name, &id, &superset).await?;
    let mut applied = Vec::new();
    let mut params = PatchParams::apply(labels::FIELD_MANAGER);
    params.force = force;
    for m in members {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &m.resource);
        let name = m.name();
        let patch = Patch::Apply(&m.object);
        retry(|| api.patch(&name, &params, &patch))
            .await
            .map_err(|e| Error::apply(&m.resource.kind, &m.resource.plural, &name, e))?;
        applied.push(format!("{}/{name}", m.resource.kind));
    }
    let mut pruned = Vec::new();
    for gk in &superset {
        let Some(resource) = applyset::known_resource(gk) else {
            continue;
        };
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
        let selector = format!("{}={id}", applyset::PART_OF_LABEL);
        let list_params = ListParams::default().labels(&selector);
        let listed = retry(|| api.list(&list_params))
            .await
            .map_err(|e| Error::api("list", &resource.plural, ns, e))?;
        for item in listed.items {
            let name = item.metadata.name.clone().unwrap_or_default();
            let wanted = members
                .iter()
                .any(|m| &m.group_kind == gk && m.name() == name);
            if !wanted {
                match api.delete(&name, &DeleteParams::background()).await {
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => return Err(Error::api("delete", &resource.plural, &name, e)),
                    Ok(_) => {}
                }
                pruned.push(format!("{}/{name}", resource.kind));
            }
        }
    }
    // Kinds kubectl-todo cannot list (kubectl added them to the set) stay in
    // it: their members are still there, and kubectl must still find them.
    let unlisted = previous_kinds
        .iter()
        .filter(|gk| applyset::known_resource(gk).is_none());
    let remaining: BTreeSet<String> = kinds.iter().chain(unlisted).cloned().collect();
    write_parent(&parents, project, &parent_name, &id, &remaining).await?;
    Ok((applied, pruned))
}

fn group_kind_of(api_version: &str, kind: &str) -> String {
    match api_version.split_once('/') {
        Some((group, _)) => format!("{kind}.{group}"),
        None => kind.to_string(),
    }
}

async fn write_parent(
    api: &Api<ConfigMap>,
    project: &Project,
    name: &str,
    id: &str,
    kinds: &BTreeSet<String>,
) -> Result<(), Error> {
    let mut labels = labels::project(&project.name);
    labels.insert(applyset::ID_LABEL.into(), id.to_string());
    let parent = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(labels),
            annotations: Some(
                [
                    (
                        applyset::TOOLING_ANNOTATION.to_string(),
                        applyset::TOOLING.to_string(),
                    ),
                    (
                        applyset::GROUP_KINDS_ANNOTATION.to_string(),
                        kinds.iter().cloned().collect::<Vec<_>>().join(","),
                    ),
                ]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    };
    // Forced, unlike the members: the parent holds only the set's bookkeeping,
    // which every tool operating the set rewrites (an older kubectl-todo wrote
    // it as `kubectl-todo`). Taking it back is the ApplySet protocol, not
    // overriding someone's intent for the app; `refusal` has already checked
    // that the set is not another tool's.
    let params = PatchParams::apply(applyset::PARENT_FIELD_MANAGER).force();
    let patch = Patch::Apply(&parent);
    retry(|| api.patch(name, &params, &patch))
        .await
        .map(|_| ())
        .map_err(|e| Error::api("patch", "configmaps", name, e))
}
