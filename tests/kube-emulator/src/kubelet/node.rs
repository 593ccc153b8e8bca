//! The Node object: registered at start, its `status.images` kept current.

use serde_json::{Value, json};

use crate::cluster::{Cluster, Runtime};
use crate::resources;
use crate::store::WriteOptions;
use crate::time;

fn cpu_quantity(millis: i64) -> String {
    if millis % 1000 == 0 {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

fn memory_quantity(bytes: i64) -> String {
    if bytes % 1024 == 0 {
        format!("{}Ki", bytes / 1024)
    } else {
        bytes.to_string()
    }
}

fn condition(kind: &str, status: &str, reason: &str, message: &str, now: &str) -> Value {
    json!({
        "type": kind, "status": status, "reason": reason, "message": message,
        "lastHeartbeatTime": now, "lastTransitionTime": now,
    })
}

fn node_status(cluster: &Cluster) -> Value {
    let now = time::now();
    let n = &cluster.node;
    let resources = json!({
        "cpu": cpu_quantity(n.cpu_millis),
        "memory": memory_quantity(n.memory_bytes),
        "pods": n.max_pods.to_string(),
        "ephemeral-storage": "102400000Ki",
        "hugepages-2Mi": "0",
    });
    let runtime = match cluster.runtime {
        Runtime::Docker => "docker://20.10.24",
        Runtime::Scripted => "scripted://1.0",
    };
    json!({
        "capacity": resources,
        "allocatable": resources,
        "conditions": [
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available", &now),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure", &now),
            condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available", &now),
            condition("Ready", "True", "KubeletReady", "kubelet is posting ready status", &now),
        ],
        "addresses": [
            { "type": "InternalIP", "address": "127.0.0.1" },
            { "type": "Hostname", "address": n.name },
        ],
        "daemonEndpoints": { "kubeletEndpoint": { "Port": 10250 } },
        "nodeInfo": {
            "machineID": cluster.instance,
            "systemUUID": cluster.instance,
            "bootID": cluster.instance,
            "kernelVersion": "6.0.0",
            "osImage": "kube-emulator",
            "containerRuntimeVersion": runtime,
            "kubeletVersion": "v1.33.0",
            "kubeProxyVersion": "v1.33.0",
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
        "images": cluster.node_images_json(),
    })
}

pub(super) fn register(cluster: &Cluster) {
    let name = &cluster.node.name;
    let node = json!({
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": "amd64",
                "node-role.kubernetes.io/control-plane": "",
            },
            "annotations": { "node.alpha.kubernetes.io/ttl": "0" },
        },
        "spec": { "podCIDR": "10.244.0.0/16", "podCIDRs": ["10.244.0.0/16"] },
    });
    let opts = WriteOptions::manager("kubelet");
    let def = resources::get("v1", "Node");
    // An existing Node (a restarted kubelet) keeps its metadata; its status is renewed.
    let _ = cluster.store.create(def, "", node, &opts);
    let status = node_status(cluster);
    let _ = cluster.store.modify(def, "", name, "status", &opts, |n| {
        n["status"] = status;
        Ok(())
    });
}

/// Publishes the node's images after one was loaded.
pub(super) fn refresh_images(cluster: &Cluster) {
    let images = cluster.node_images_json();
    let _ = cluster.store.modify(
        resources::get("v1", "Node"),
        "",
        &cluster.node.name,
        "status",
        &WriteOptions::manager("kubelet"),
        |n| {
            n["status"]["images"] = images;
            Ok(())
        },
    );
}
