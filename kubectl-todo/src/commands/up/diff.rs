//! `up --dry-run`: what `up` would change, as a unified diff of each object
//! between the cluster and the server's own dry run of the apply (so
//! defaulting and field ownership are the server's, as with `kubectl diff`),
//! plus what would be pruned. Nothing is written.

use std::fmt::Write as _;

use kube::Api;
use kube::api::{DynamicObject, Patch, PatchParams};
use serde_json::Value;

use crate::apply::{self, applyset};
use crate::labels;
use crate::project::Project;
use crate::render::Object;

/// What a dry run found, for the summary line.
#[derive(Debug, Default)]
pub struct Changes {
    pub created: usize,
    pub changed: usize,
    pub pruned: usize,
    pub text: String,
}

pub async fn diff(
    client: &kube::Client,
    project: &Project,
    rendered: &[Object],
    live_members: &[DynamicObject],
    force_conflicts: bool,
) -> Result<Changes, apply::Error> {
    let ns = &project.namespace;
    let id = applyset::id(&applyset::parent_name(&project.name), ns);
    let mut params = PatchParams::apply(labels::FIELD_MANAGER).dry_run();
    params.force = force_conflicts;
    let mut changes = Changes::default();
    for object in rendered {
        let resource = object.api_resource();
        let name = object.name().to_string();
        let mut desired = object.to_dynamic();
        desired
            .metadata
            .labels
            .get_or_insert_default()
            .insert(applyset::PART_OF_LABEL.into(), id.clone());
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
        let live = live_members.iter().find(|m| {
            m.types.as_ref().map(|t| t.kind.as_str()) == Some(resource.kind.as_str())
                && m.metadata.name.as_deref() == Some(name.as_str())
        });
        let live = match live {
            Some(l) => Some(l.clone()),
            // Not in the set: it may still exist, made by something else.
            None => crate::retry::retry(|| api.get_opt(&name))
                .await
                .map_err(|e| apply::Error::api("get", &resource.plural, &name, e))?,
        };
        let patch = Patch::Apply(&desired);
        let after = match (
            &live,
            crate::retry::retry(|| api.patch(&name, &params, &patch)).await,
        ) {
            (_, Ok(after)) => after,
            // The namespace does not exist yet: every object is new, as rendered.
            (None, Err(kube::Error::Api(s))) if s.code == 404 => desired.clone(),
            (_, Err(e)) => {
                return Err(apply::Error::apply(
                    &resource.kind,
                    &resource.plural,
                    &name,
                    e,
                ));
            }
        };
        let before_text = live.as_ref().map(yaml).unwrap_or_default();
        let after_text = yaml(&after);
        if before_text == after_text {
            continue;
        }
        if live.is_some() {
            changes.changed += 1;
        } else {
            changes.created += 1;
        }
        let label = format!("{}/{name}", resource.kind);
        let diff = similar::TextDiff::from_lines(&before_text, &after_text);
        let _ = write!(
            changes.text,
            "{}",
            diff.unified_diff()
                .context_radius(3)
                .header(&format!("live/{label}"), &format!("up/{label}"))
        );
    }
    for member in live_members {
        let kind = member
            .types
            .as_ref()
            .map(|t| t.kind.clone())
            .unwrap_or_default();
        let name = member.metadata.name.clone().unwrap_or_default();
        let wanted = rendered
            .iter()
            .any(|o| o.api_resource().kind == kind && o.name() == name);
        if !wanted {
            changes.pruned += 1;
            let label = format!("{kind}/{name}");
            let text = yaml(member);
            let diff = similar::TextDiff::from_lines(text.as_str(), "");
            let _ = write!(
                changes.text,
                "{}",
                diff.unified_diff()
                    .header(&format!("live/{label}"), "pruned")
            );
        }
    }
    Ok(changes)
}

/// The object as a reader compares it: without the fields the server keeps for itself.
fn yaml(object: &DynamicObject) -> String {
    let mut v = serde_json::to_value(object).expect("objects serialize");
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for noise in [
            "managedFields",
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
        ] {
            meta.remove(noise);
        }
    }
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
    }
    serde_yaml_ng::to_string(&v).expect("JSON values serialize")
}
