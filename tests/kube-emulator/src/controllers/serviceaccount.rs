//! The service account controller: a `default` ServiceAccount in every active namespace.

use serde_json::json;

use super::{deleting, name, opts};
use crate::cluster::Cluster;
use crate::resources;

pub fn reconcile(cluster: &Cluster) {
    let store = &cluster.store;
    let def = resources::get("v1", "ServiceAccount");
    for ns in store.all(resources::get("v1", "Namespace"), None) {
        if !deleting(&ns) && store.try_get(def, name(&ns), "default").is_none() {
            let _ = store.create(
                def,
                name(&ns),
                json!({ "metadata": { "name": "default" } }),
                &opts(),
            );
        }
    }
}
