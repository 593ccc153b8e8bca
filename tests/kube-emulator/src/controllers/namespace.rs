//! The namespace controller: empties a namespace being deleted, then removes it.

use super::{deleting, name, uid};
use crate::cluster::Cluster;
use crate::resources::{self, RESOURCES};
use crate::store::DeleteOptions;

pub fn reconcile(cluster: &Cluster) {
    let store = &cluster.store;
    for ns in store.all(resources::get("v1", "Namespace"), None) {
        if !deleting(&ns) {
            continue;
        }
        let ns = name(&ns);
        let mut remaining = 0;
        for def in RESOURCES.iter().filter(|d| d.namespaced && !d.create_only) {
            for obj in store.all(def, Some(ns)) {
                // Whatever is still terminating (pods the kubelet stops) keeps the namespace.
                remaining += 1;
                if !deleting(&obj) {
                    let opts = DeleteOptions {
                        precondition_uid: Some(uid(&obj).to_string()),
                        ..DeleteOptions::default()
                    };
                    let _ = store.delete(def, ns, name(&obj), &opts);
                }
            }
        }
        if remaining == 0 {
            store.finalize_namespace(ns);
        }
    }
}
