//! The objects a fresh cluster starts with.

use serde_json::json;

use crate::cluster::Cluster;
use crate::resources;
use crate::store::WriteOptions;

pub fn bootstrap(cluster: &Cluster) {
    let opts = WriteOptions::manager("kube-apiserver");
    let ns = resources::get("v1", "Namespace");
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let _ = cluster
            .store
            .create(ns, "", json!({ "metadata": { "name": name } }), &opts);
    }
    let svc = resources::get("v1", "Service");
    let _ = cluster.store.create(
        svc,
        "default",
        json!({
            "metadata": { "name": "kubernetes", "labels": { "component": "apiserver", "provider": "kubernetes" } },
            "spec": { "ports": [{ "name": "https", "port": 443, "targetPort": 6443 }] }
        }),
        &opts,
    );
}
