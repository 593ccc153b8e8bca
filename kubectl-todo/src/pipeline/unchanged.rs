//! Whether a deploy (`up`, or a `dev` cycle) has nothing to do: the last revision applied exactly these
//! objects and finished, the cluster still holds them as applied (nothing
//! added, removed or edited by hand), no other run holds the lock, and the
//! node has the images. Everything is read in parallel, and nothing is
//! written; when in doubt the answer is "changed", which only costs an apply.

use std::collections::BTreeSet;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{DynamicObject, ListParams};
use serde_json::Value;

use crate::apply::{self, applyset};
use crate::history::store::{Outcome, Store, Summary};
use crate::project::Project;

/// What the cluster holds of the app, read once.
pub struct Observed {
    pub last: Option<(Summary, Option<Vec<Value>>)>,
    /// Every object labelled into the app's ApplySet.
    pub members: Vec<DynamicObject>,
    /// Another run holds the app's lock: the refusal that means.
    pub busy: Option<crate::lock::Error>,
    pub nodes: Vec<Node>,
}

pub async fn observe(client: &kube::Client, project: &Project) -> Result<Observed, apply::Error> {
    let ns = &project.namespace;
    let store = Store::new(client.clone(), ns, &project.name);
    let id = applyset::id(&applyset::parent_name(&project.name), ns);
    let selector = format!("{}={id}", applyset::PART_OF_LABEL);
    let lists = applyset::KINDS.iter().map(|gk| {
        let resource = applyset::known_resource(gk).expect("a known kind");
        let selector = selector.clone();
        async move {
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
            let params = ListParams::default().labels(&selector);
            crate::retry::retry(|| api.list(&params))
                .await
                .map(|l| l.items)
                .map_err(|e| apply::Error::api("list", &resource.plural, ns, e))
        }
    });
    let leases: Api<Lease> = Api::namespaced(client.clone(), ns);
    let lock_name = crate::lock::name(&project.name);
    let nodes: Api<Node> = Api::all(client.clone());
    let all = ListParams::default();
    let (last, members, lease, nodes) = tokio::join!(
        crate::retry::retry(|| store.latest()),
        futures::future::try_join_all(lists),
        crate::retry::retry(|| leases.get_opt(&lock_name)),
        crate::retry::retry(|| nodes.list(&all)),
    );
    Ok(Observed {
        last: last.map_err(apply::Error::history)?,
        members: members?.into_iter().flatten().collect(),
        busy: lease
            .map_err(|e| apply::Error::api("get", "leases", &lock_name, e))?
            .and_then(|l| crate::lock::busy(&l, &project.name)),
        // Only used to see whether the images are there; without it, `up` loads them.
        nodes: nodes.map(|l| l.items).unwrap_or_default(),
    })
}

/// Nothing to apply: the rendered objects are those of a finished revision, and
/// each is in the cluster as applied.
pub fn nothing_to_apply(rendered: &[Value], observed: &Observed) -> bool {
    let Some((summary, Some(manifests))) = &observed.last else {
        return false;
    };
    if summary.outcome != Outcome::Applied || observed.busy.is_some() || manifests != rendered {
        return false;
    }
    let key = |kind: &str, name: &str| (kind.to_string(), name.to_string());
    let live: BTreeSet<_> = observed
        .members
        .iter()
        .filter_map(|o| Some(key(&o.types.as_ref()?.kind, o.metadata.name.as_deref()?)))
        .collect();
    let wanted: BTreeSet<_> = rendered
        .iter()
        .filter_map(|o| Some(key(o["kind"].as_str()?, o["metadata"]["name"].as_str()?)))
        .collect();
    if live != wanted {
        return false;
    }
    rendered.iter().all(|want| {
        observed.members.iter().any(|o| {
            o.types.as_ref().map(|t| t.kind.as_str()) == want["kind"].as_str()
                && o.metadata.name.as_deref() == want["metadata"]["name"].as_str()
                && serde_json::to_value(o).is_ok_and(|live| contains(&live, want))
        })
    })
}

/// Every node reports every image in `status.images`.
pub fn nodes_have(nodes: &[Node], images: &[String]) -> bool {
    images
        .iter()
        .all(|i| image_builder::load::nodes_report(nodes, i))
}

/// `live` has every field of `want` with the same value (the server adds
/// defaults and status, which do not count).
fn contains(live: &Value, want: &Value) -> bool {
    match (live, want) {
        (Value::Object(l), Value::Object(w)) => w
            .iter()
            .all(|(k, wv)| l.get(k).is_some_and(|lv| contains(lv, wv))),
        (Value::Array(l), Value::Array(w)) => {
            l.len() == w.len() && l.iter().zip(w).all(|(lv, wv)| contains(lv, wv))
        }
        _ => live == want,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_do_not_count_but_edits_do() {
        let want = json!({"spec": {"replicas": 2, "ports": [{"port": 80}]}});
        let live = json!({"spec": {"replicas": 2, "ports": [{"port": 80, "protocol": "TCP"}], "x": 1}, "status": {}});
        assert!(contains(&live, &want));
        let edited = json!({"spec": {"replicas": 3, "ports": [{"port": 80}]}});
        assert!(!contains(&edited, &want));
        let extra_port = json!({"spec": {"replicas": 2, "ports": [{"port": 80}, {"port": 81}]}});
        assert!(!contains(&extra_port, &want));
    }
}
