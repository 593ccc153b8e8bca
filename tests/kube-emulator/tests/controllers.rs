//! The controllers, driven through the store with a stand-in kubelet.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kube_emulator::bootstrap;
use kube_emulator::cluster::{Cluster, NodeConfig, Runtime};
use kube_emulator::controllers;
use kube_emulator::resources::{self, ResourceDef};
use kube_emulator::store::{DeleteOptions, EventType, Propagation, WriteOptions};
use serde_json::{Value, json};

const NEVER_READY: &str = "never-ready:1";

fn deployments() -> &'static ResourceDef {
    resources::get("apps/v1", "Deployment")
}

fn replica_sets() -> &'static ResourceDef {
    resources::get("apps/v1", "ReplicaSet")
}

fn pods() -> &'static ResourceDef {
    resources::pods()
}

fn user() -> WriteOptions {
    WriteOptions::manager("kubectl")
}

fn start() -> Arc<Cluster> {
    let cluster = Cluster::new(NodeConfig::default(), Runtime::Scripted);
    bootstrap::bootstrap(&cluster);
    controllers::spawn(cluster.clone());
    fake_kubelet(&cluster);
    cluster
}

fn set_condition(pod: &mut Value, kind: &str, status: bool) {
    let condition = json!({ "type": kind, "status": if status { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": kube_emulator::time::now() });
    let mut conditions: Vec<Value> = pod["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    conditions.retain(|c| c["type"] != kind);
    conditions.push(condition);
    pod["status"]["conditions"] = json!(conditions);
}

/// Stands in for the kubelet: bound pods run at once with an IP, and are
/// Ready unless their image is `NEVER_READY`; terminating pods go at once.
fn fake_kubelet(cluster: &Arc<Cluster>) {
    let cluster = cluster.clone();
    tokio::spawn(async move {
        let mut changes = cluster.store.changes();
        let mut next_ip = 0;
        let opts = WriteOptions::manager("kubelet");
        loop {
            for pod in cluster.store.all(pods(), None) {
                let (ns, name) = (ns_of(&pod), name_of(&pod));
                if pod.pointer("/spec/nodeName").is_none() {
                    continue;
                }
                if pod.pointer("/metadata/deletionTimestamp").is_some() {
                    let _ = cluster
                        .store
                        .delete(pods(), &ns, &name, &DeleteOptions::now());
                } else if pod.pointer("/status/podIP").is_none() {
                    next_ip += 1;
                    let ready =
                        pod.pointer("/spec/containers/0/image") != Some(&json!(NEVER_READY));
                    let _ = cluster
                        .store
                        .modify(pods(), &ns, &name, "status", &opts, |p| {
                            p["status"]["phase"] = json!("Running");
                            p["status"]["podIP"] = json!(format!("10.244.0.{next_ip}"));
                            set_condition(p, "Initialized", true);
                            set_condition(p, "ContainersReady", ready);
                            set_condition(p, "Ready", ready);
                            Ok(())
                        });
                }
            }
            tokio::select! {
                _ = changes.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    });
}

fn name_of(obj: &Value) -> String {
    obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn ns_of(obj: &Value) -> String {
    obj["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn uid_of(obj: &Value) -> String {
    obj["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Polls until `f` gives something, or fails the test after `secs`.
async fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn template(image: &str) -> Value {
    json!({
        "metadata": { "labels": { "app": "web" } },
        "spec": { "containers": [{ "name": "web", "image": image, "ports": [{ "name": "http", "containerPort": 8080 }] }] }
    })
}

fn deployment(name: &str, replicas: i64, image: &str, strategy: Value) -> Value {
    json!({
        "metadata": { "name": name },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": "web" } },
            "strategy": strategy,
            "template": template(image),
        }
    })
}

fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

fn int(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn rollout_done(cluster: &Cluster, ns: &str, name: &str) -> Option<Value> {
    let d = cluster.store.try_get(deployments(), ns, name)?;
    let replicas = int(&d, "/spec/replicas");
    let done = int(&d, "/status/observedGeneration") == int(&d, "/metadata/generation")
        && int(&d, "/status/updatedReplicas") == replicas
        && int(&d, "/status/replicas") == replicas
        && int(&d, "/status/availableReplicas") == replicas
        && condition(&d, "Progressing").is_some_and(|c| c["reason"] == "NewReplicaSetAvailable");
    done.then_some(d)
}

fn owned_by<'a>(items: &'a [Value], owner: &Value) -> Vec<&'a Value> {
    let uid = uid_of(owner);
    items
        .iter()
        .filter(|o| {
            o.pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|refs| {
                    refs.iter()
                        .any(|r| r["uid"] == uid.as_str() && r["controller"] == true)
                })
        })
        .collect()
}

fn events(cluster: &Cluster, ns: &str, reason: &str) -> Vec<Value> {
    cluster
        .store
        .all(resources::get("v1", "Event"), Some(ns))
        .into_iter()
        .filter(|e| e["reason"] == reason)
        .collect()
}

fn has_event(cluster: &Cluster, ns: &str, reason: &str, message: &str) -> bool {
    events(cluster, ns, reason)
        .iter()
        .any(|e| e["message"] == message)
}

fn set_image(cluster: &Cluster, ns: &str, name: &str, image: &str) {
    cluster
        .store
        .modify(deployments(), ns, name, "", &user(), |d| {
            d["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image);
            Ok(())
        })
        .unwrap();
}

fn new_namespace(cluster: &Cluster, name: &str) {
    let ns = resources::get("v1", "Namespace");
    cluster
        .store
        .create(ns, "", json!({ "metadata": { "name": name } }), &user())
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deployment_becomes_available_with_the_real_status() {
    let cluster = start();
    cluster
        .store
        .create(
            deployments(),
            "default",
            deployment("web", 3, "nginx:1", json!({ "type": "RollingUpdate" })),
            &user(),
        )
        .unwrap();
    let d = wait_for("the rollout", 10, || {
        rollout_done(&cluster, "default", "web")
    })
    .await;

    let rss = cluster.store.all(replica_sets(), Some("default"));
    assert_eq!(rss.len(), 1);
    let rs = &rss[0];
    let hash = rs["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        hash.len() <= 10
            && hash
                .chars()
                .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c))
    );
    assert_eq!(name_of(rs), format!("web-{hash}"));
    assert_eq!(
        rs["spec"]["selector"]["matchLabels"]["pod-template-hash"],
        hash.as_str()
    );
    assert_eq!(
        rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"],
        hash.as_str()
    );
    assert_eq!(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    assert_eq!(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"],
        "3"
    );
    assert_eq!(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"],
        "4"
    );
    assert_eq!(
        rs["metadata"]["ownerReferences"][0]["uid"],
        d["metadata"]["uid"]
    );
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );

    let status = &d["status"];
    assert_eq!(
        (
            status["replicas"].clone(),
            status["updatedReplicas"].clone()
        ),
        (json!(3), json!(3))
    );
    assert_eq!(
        (
            status["readyReplicas"].clone(),
            status["availableReplicas"].clone()
        ),
        (json!(3), json!(3))
    );
    assert!(
        status.get("unavailableReplicas").is_none(),
        "zero counts are left out"
    );
    let available = condition(&d, "Available").unwrap();
    assert_eq!(available["status"], "True");
    assert_eq!(available["reason"], "MinimumReplicasAvailable");
    assert_eq!(available["message"], "Deployment has minimum availability.");
    let progressing = condition(&d, "Progressing").unwrap();
    assert_eq!(progressing["status"], "True");
    assert_eq!(
        progressing["message"],
        format!("ReplicaSet \"web-{hash}\" has successfully progressed.")
    );
    assert!(
        progressing["lastUpdateTime"].is_string() && progressing["lastTransitionTime"].is_string()
    );

    let all_pods = cluster.store.all(pods(), Some("default"));
    let owned = owned_by(&all_pods, rs);
    assert_eq!(owned.len(), 3);
    for p in &owned {
        assert!(name_of(p).starts_with(&format!("web-{hash}-")));
        assert_eq!(p["metadata"]["labels"]["pod-template-hash"], hash.as_str());
        assert_eq!(p["spec"]["nodeName"], "emulator");
        assert_eq!(
            p["metadata"]["ownerReferences"][0]["blockOwnerDeletion"],
            true
        );
        let message = format!("Successfully assigned default/{} to emulator", name_of(p));
        assert!(has_event(&cluster, "default", "Scheduled", &message));
        assert!(has_event(
            &cluster,
            "default",
            "SuccessfulCreate",
            &format!("Created pod: {}", name_of(p))
        ));
    }
    assert!(has_event(
        &cluster,
        "default",
        "ScalingReplicaSet",
        &format!("Scaled up replica set web-{hash} from 0 to 3")
    ));
    let rs_status = &cluster
        .store
        .get(replica_sets(), "default", &name_of(rs))
        .unwrap()["status"];
    assert_eq!(
        rs_status,
        &json!({ "replicas": 3, "fullyLabeledReplicas": 3, "readyReplicas": 3, "availableReplicas": 3, "observedGeneration": 1 })
    );

    // Nothing left to do: a quiet cluster writes nothing.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let rv = cluster.store.resource_version();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        cluster.store.resource_version(),
        rv,
        "the controllers keep writing"
    );
    cluster.begin_shutdown();
}

/// The store's history of replica sets and pods, in order, with resourceVersions.
fn history(cluster: &Cluster, ns: &str) -> Vec<(u64, EventType, Value)> {
    let mut events: Vec<(u64, EventType, Value)> = Vec::new();
    for def in [replica_sets(), pods()] {
        let start = cluster.store.watch(def, Some(ns), 0).unwrap();
        events.extend(
            start
                .backlog
                .iter()
                .map(|e| (e.rv, e.kind, e.object.clone())),
        );
    }
    events.sort_by_key(|e| e.0);
    events
}

fn pod_ready(p: &Value) -> bool {
    condition(p, "Ready").is_some_and(|c| c["status"] == "True")
        && p.pointer("/metadata/deletionTimestamp").is_none()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rolling_update_stays_within_surge_and_unavailability_and_rolls_back() {
    let cluster = start();
    let strategy =
        json!({ "type": "RollingUpdate", "rollingUpdate": { "maxSurge": 1, "maxUnavailable": 1 } });
    cluster
        .store
        .create(
            deployments(),
            "default",
            deployment("web", 4, "nginx:1", strategy),
            &user(),
        )
        .unwrap();
    wait_for("the first rollout", 10, || {
        rollout_done(&cluster, "default", "web")
    })
    .await;
    let first = cluster.store.all(replica_sets(), Some("default")).remove(0);

    let from = cluster.store.resource_version();
    set_image(&cluster, "default", "web", "nginx:2");
    let d = wait_for("the second rollout", 10, || {
        rollout_done(&cluster, "default", "web")
            .filter(|d| d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2")
    })
    .await;

    let (mut rs_sizes, mut live_pods) = (HashMap::new(), HashMap::new());
    for (rv, kind, obj) in history(&cluster, "default") {
        let key = uid_of(&obj);
        let table = if obj["kind"] == "ReplicaSet" {
            &mut rs_sizes
        } else {
            &mut live_pods
        };
        if kind == EventType::Deleted {
            table.remove(&key);
        } else {
            table.insert(key, obj);
        }
        if rv <= from {
            continue;
        }
        let total: i64 = rs_sizes.values().map(|rs| int(rs, "/spec/replicas")).sum();
        assert!(total <= 5, "replica sets scaled to {total} > 4 + maxSurge");
        let ready = live_pods.values().filter(|p| pod_ready(p)).count();
        assert!(ready >= 3, "{ready} ready pods < 4 - maxUnavailable");
    }

    let rss = cluster.store.all(replica_sets(), Some("default"));
    assert_eq!(rss.len(), 2);
    let old = rss
        .iter()
        .find(|rs| rs["metadata"]["uid"] == first["metadata"]["uid"])
        .unwrap();
    let new = rss
        .iter()
        .find(|rs| rs["metadata"]["uid"] != first["metadata"]["uid"])
        .unwrap();
    assert_eq!(old["spec"]["replicas"], 0);
    assert_eq!(
        old["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    assert_eq!(
        new["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    assert_eq!(new["spec"]["replicas"], 4);
    assert_eq!(d["status"]["updatedReplicas"], 4);
    assert!(
        events(&cluster, "default", "ScalingReplicaSet")
            .iter()
            .any(|e| e["message"].as_str().unwrap().starts_with(&format!(
                "Scaled down replica set {} from 4 to",
                name_of(old)
            )))
    );
    wait_for("old pods to go", 5, || {
        let all = cluster.store.all(pods(), Some("default"));
        owned_by(&all, old).is_empty().then_some(())
    })
    .await;

    // `kubectl rollout undo` puts the old template back: its replica set returns as revision 3.
    set_image(&cluster, "default", "web", "nginx:1");
    wait_for("the rollback", 10, || {
        rollout_done(&cluster, "default", "web")
            .filter(|d| d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3")
    })
    .await;
    let old = cluster
        .store
        .get(replica_sets(), "default", &name_of(&first))
        .unwrap();
    assert_eq!(
        old["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );
    assert_eq!(
        old["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"],
        "1"
    );
    assert_eq!(old["spec"]["replicas"], 4);
    assert_eq!(cluster.store.all(replica_sets(), Some("default")).len(), 2);
    cluster.begin_shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn pods_that_never_become_ready_exceed_the_progress_deadline() {
    let cluster = start();
    let mut d = deployment("stuck", 1, NEVER_READY, json!({ "type": "RollingUpdate" }));
    d["spec"]["progressDeadlineSeconds"] = json!(2);
    cluster
        .store
        .create(deployments(), "default", d, &user())
        .unwrap();
    let d = wait_for("the deadline", 8, || {
        let d = cluster.store.get(deployments(), "default", "stuck").ok()?;
        condition(&d, "Progressing")
            .is_some_and(|c| c["status"] == "False")
            .then_some(d)
    })
    .await;
    let rs = cluster.store.all(replica_sets(), Some("default")).remove(0);
    let progressing = condition(&d, "Progressing").unwrap();
    assert_eq!(progressing["reason"], "ProgressDeadlineExceeded");
    assert_eq!(
        progressing["message"],
        format!("ReplicaSet \"{}\" has timed out progressing.", name_of(&rs))
    );
    let available = condition(&d, "Available").unwrap();
    assert_eq!(
        (available["status"].clone(), available["reason"].clone()),
        (json!("False"), json!("MinimumReplicasUnavailable"))
    );
    assert_eq!(
        available["message"],
        "Deployment does not have minimum availability."
    );
    assert_eq!(d["status"]["unavailableReplicas"], 1);
    assert_eq!(d["status"]["updatedReplicas"], 1);
    assert!(d["status"].get("availableReplicas").is_none());
    cluster.begin_shutdown();
}

fn scale(cluster: &Cluster, name: &str, replicas: i64) {
    cluster
        .store
        .modify(deployments(), "default", name, "", &user(), |d| {
            d["spec"]["replicas"] = json!(replicas);
            Ok(())
        })
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn scaling_resizes_the_replica_set() {
    let cluster = start();
    cluster
        .store
        .create(
            deployments(),
            "default",
            deployment("web", 2, "nginx:1", json!({ "type": "RollingUpdate" })),
            &user(),
        )
        .unwrap();
    wait_for("the rollout", 10, || {
        rollout_done(&cluster, "default", "web")
    })
    .await;
    let rs = name_of(&cluster.store.all(replica_sets(), Some("default"))[0]);
    for (from, to, way) in [(2, 5, "up"), (5, 1, "down")] {
        scale(&cluster, "web", to);
        wait_for("the scaled rollout", 10, || {
            let live = cluster.store.all(pods(), Some("default"));
            let live = live
                .iter()
                .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none())
                .count();
            rollout_done(&cluster, "default", "web").filter(|_| live == to as usize)
        })
        .await;
        let set = cluster.store.get(replica_sets(), "default", &rs).unwrap();
        assert_eq!(set["spec"]["replicas"], to);
        assert_eq!(
            set["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"],
            to.to_string()
        );
        assert!(has_event(
            &cluster,
            "default",
            "ScalingReplicaSet",
            &format!("Scaled {way} replica set {rs} from {from} to {to}")
        ));
    }
    assert_eq!(cluster.store.all(replica_sets(), Some("default")).len(), 1);
    cluster.begin_shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn recreate_stops_every_old_pod_before_starting_new_ones() {
    let cluster = start();
    cluster
        .store
        .create(
            deployments(),
            "default",
            deployment("web", 3, "nginx:1", json!({ "type": "Recreate" })),
            &user(),
        )
        .unwrap();
    wait_for("the rollout", 10, || {
        rollout_done(&cluster, "default", "web")
    })
    .await;
    let first = cluster.store.all(replica_sets(), Some("default")).remove(0);
    let from = cluster.store.resource_version();
    set_image(&cluster, "default", "web", "nginx:2");
    wait_for("the recreate", 10, || {
        rollout_done(&cluster, "default", "web")
            .filter(|d| d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2")
    })
    .await;
    let (mut old_pods, mut new_pods) = (HashMap::new(), HashMap::new());
    for (rv, kind, obj) in history(&cluster, "default") {
        if obj["kind"] != "Pod" {
            continue;
        }
        let ours = obj["metadata"]["ownerReferences"][0]["uid"] == first["metadata"]["uid"];
        let table = if ours { &mut old_pods } else { &mut new_pods };
        if kind == EventType::Deleted {
            table.remove(&uid_of(&obj));
        } else {
            table.insert(uid_of(&obj), ());
        }
        assert!(
            rv <= from || old_pods.is_empty() || new_pods.is_empty(),
            "old and new pods side by side"
        );
    }
    let old = cluster
        .store
        .get(replica_sets(), "default", &name_of(&first))
        .unwrap();
    assert_eq!(old["spec"]["replicas"], 0);
    assert!(has_event(
        &cluster,
        "default",
        "ScalingReplicaSet",
        &format!("Scaled down replica set {} from 3 to 0", name_of(&first))
    ));
    cluster.begin_shutdown();
}

fn pod(name: &str, cpu: &str, memory: &str) -> Value {
    json!({
        "metadata": { "name": name, "labels": { "app": "web" } },
        "spec": { "containers": [{ "name": "c", "image": "busybox:1", "resources": { "requests": { "cpu": cpu, "memory": memory } },
            "ports": [{ "name": "http", "containerPort": 8080 }] }] }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn pods_that_do_not_fit_stay_pending_with_failed_scheduling() {
    let cluster = start();
    cluster
        .store
        .create(pods(), "default", pod("big", "3", "1Gi"), &user())
        .unwrap();
    wait_for("the first pod to bind", 5, || {
        cluster
            .store
            .get(pods(), "default", "big")
            .ok()?
            .pointer("/spec/nodeName")
            .map(|_| ())
    })
    .await;
    cluster
        .store
        .create(pods(), "default", pod("second", "1500m", "512Mi"), &user())
        .unwrap();
    cluster
        .store
        .create(pods(), "default", pod("huge", "8", "16Gi"), &user())
        .unwrap();
    let message = "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.";
    wait_for("FailedScheduling", 5, || {
        has_event(&cluster, "default", "FailedScheduling", message).then_some(())
    })
    .await;
    let both = "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.";
    wait_for("FailedScheduling for both", 5, || {
        has_event(&cluster, "default", "FailedScheduling", both).then_some(())
    })
    .await;
    let second = cluster.store.get(pods(), "default", "second").unwrap();
    assert!(second.pointer("/spec/nodeName").is_none());
    let scheduled = condition(&second, "PodScheduled").unwrap();
    assert_eq!(
        (scheduled["status"].clone(), scheduled["reason"].clone()),
        (json!("False"), json!("Unschedulable"))
    );
    assert_eq!(scheduled["message"], message);
    let event = events(&cluster, "default", "FailedScheduling")
        .into_iter()
        .find(|e| e["message"] == message)
        .unwrap();
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["source"]["component"], "default-scheduler");

    // Retries bump the one event rather than adding more.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(events(&cluster, "default", "FailedScheduling").len(), 2);

    // Room on the node schedules the waiting pod.
    cluster
        .store
        .delete(pods(), "default", "big", &DeleteOptions::default())
        .unwrap();
    let second = wait_for("the second pod to bind", 5, || {
        let p = cluster.store.get(pods(), "default", "second").ok()?;
        p.pointer("/spec/nodeName").is_some().then_some(p)
    })
    .await;
    let scheduled = wait_for("PodScheduled", 5, || {
        let p = cluster.store.get(pods(), "default", "second").ok()?;
        condition(&p, "PodScheduled")
            .filter(|c| c["status"] == "True")
            .cloned()
    })
    .await;
    assert!(scheduled.get("reason").is_none());
    assert_eq!(second["spec"]["nodeName"], "emulator");
    assert!(
        cluster
            .store
            .get(pods(), "default", "huge")
            .unwrap()
            .pointer("/spec/nodeName")
            .is_none()
    );
    cluster.begin_shutdown();
}

fn endpoint_slices(cluster: &Cluster, service: &str) -> Vec<Value> {
    cluster
        .store
        .all(
            resources::get("discovery.k8s.io/v1", "EndpointSlice"),
            Some("default"),
        )
        .into_iter()
        .filter(|s| s["metadata"]["labels"]["kubernetes.io/service-name"] == service)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn endpoints_and_slices_follow_pod_readiness() {
    let cluster = start();
    let svc = json!({
        "metadata": { "name": "web", "labels": { "tier": "front" } },
        "spec": { "selector": { "app": "web" }, "ports": [{ "name": "http", "port": 80, "targetPort": "http" }] }
    });
    cluster
        .store
        .create(resources::get("v1", "Service"), "default", svc, &user())
        .unwrap();
    let placeholder = wait_for("the placeholder slice", 5, || {
        endpoint_slices(&cluster, "web").pop()
    })
    .await;
    assert_eq!(placeholder["endpoints"], json!([]));
    assert!(placeholder.get("ports").is_none());
    assert!(
        name_of(&placeholder).starts_with("web-")
            && name_of(&placeholder).len() == "web-".len() + 5
    );

    for n in ["a", "b"] {
        cluster
            .store
            .create(pods(), "default", pod(n, "100m", "64Mi"), &user())
            .unwrap();
    }
    let ep = resources::get("v1", "Endpoints");
    let endpoints = wait_for("two ready addresses", 5, || {
        let e = cluster.store.try_get(ep, "default", "web")?;
        (e.pointer("/subsets/0/addresses")
            .and_then(Value::as_array)
            .map(Vec::len)
            == Some(2))
        .then_some(e)
    })
    .await;
    let subset = &endpoints["subsets"][0];
    assert_eq!(
        subset["ports"],
        json!([{ "name": "http", "port": 8080, "protocol": "TCP" }])
    );
    let address = &subset["addresses"][0];
    assert_eq!(address["nodeName"], "emulator");
    assert_eq!(address["targetRef"]["kind"], "Pod");
    assert!(address["ip"].as_str().unwrap().starts_with("10.244.0."));
    assert_eq!(endpoints["metadata"]["labels"]["tier"], "front");

    let slice = wait_for("a slice with two endpoints", 5, || {
        let s = endpoint_slices(&cluster, "web").pop()?;
        (s["endpoints"].as_array().map(Vec::len) == Some(2)).then_some(s)
    })
    .await;
    assert_eq!(endpoint_slices(&cluster, "web").len(), 1);
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(
        slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    assert_eq!(slice["metadata"]["ownerReferences"][0]["kind"], "Service");
    assert_eq!(
        slice["ports"],
        json!([{ "name": "http", "port": 8080, "protocol": "TCP" }])
    );
    assert_eq!(
        slice["endpoints"][0]["conditions"],
        json!({ "ready": true, "serving": true, "terminating": false })
    );

    // A pod that stops being ready moves to notReadyAddresses.
    cluster
        .store
        .modify(pods(), "default", "a", "status", &user(), |p| {
            set_condition(p, "Ready", false);
            Ok(())
        })
        .unwrap();
    let endpoints = wait_for("a not-ready address", 5, || {
        let e = cluster.store.try_get(ep, "default", "web")?;
        e.pointer("/subsets/0/notReadyAddresses")
            .is_some()
            .then_some(e)
    })
    .await;
    assert_eq!(
        endpoints["subsets"][0]["addresses"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        endpoints["subsets"][0]["notReadyAddresses"][0]["targetRef"]["name"],
        "a"
    );
    wait_for("a not-ready slice endpoint", 5, || {
        let s = endpoint_slices(&cluster, "web").pop()?;
        s["endpoints"]
            .as_array()?
            .iter()
            .any(|e| e["conditions"]["ready"] == false && e["targetRef"]["name"] == "a")
            .then_some(())
    })
    .await;

    // The Service going takes its Endpoints and slices with it.
    cluster
        .store
        .delete(
            resources::get("v1", "Service"),
            "default",
            "web",
            &DeleteOptions::default(),
        )
        .unwrap();
    wait_for("endpoints to go", 5, || {
        (cluster.store.try_get(ep, "default", "web").is_none()
            && endpoint_slices(&cluster, "web").is_empty())
        .then_some(())
    })
    .await;
    cluster.begin_shutdown();
}

fn configmap(name: &str, owner: Option<&Value>) -> Value {
    let mut cm = json!({ "metadata": { "name": name }, "data": { "k": "v" } });
    if let Some(o) = owner {
        cm["metadata"]["ownerReferences"] = json!([{ "apiVersion": "v1", "kind": "ConfigMap", "name": name_of(o), "uid": uid_of(o) }]);
    }
    cm
}

#[tokio::test(flavor = "multi_thread")]
async fn the_garbage_collector_deletes_in_background_and_foreground_and_orphans() {
    let cluster = start();
    let cm = resources::get("v1", "ConfigMap");

    // Background: the dependent goes after its owner.
    let owner = cluster
        .store
        .create(cm, "default", configmap("owner", None), &user())
        .unwrap();
    cluster
        .store
        .create(cm, "default", configmap("dependent", Some(&owner)), &user())
        .unwrap();
    cluster
        .store
        .delete(cm, "default", "owner", &DeleteOptions::default())
        .unwrap();
    wait_for("the dependent to go", 5, || {
        cluster
            .store
            .try_get(cm, "default", "dependent")
            .is_none()
            .then_some(())
    })
    .await;

    // Foreground: the deployment stays until its replica sets and pods are gone.
    cluster
        .store
        .create(
            deployments(),
            "default",
            deployment("web", 2, "nginx:1", json!({ "type": "RollingUpdate" })),
            &user(),
        )
        .unwrap();
    wait_for("the rollout", 10, || {
        rollout_done(&cluster, "default", "web")
    })
    .await;
    let foreground = DeleteOptions {
        propagation: Some(Propagation::Foreground),
        ..DeleteOptions::default()
    };
    let deleting = cluster
        .store
        .delete(deployments(), "default", "web", &foreground)
        .unwrap();
    assert_eq!(
        deleting["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
    let from = cluster.store.resource_version();
    wait_for("the deployment to go", 10, || {
        cluster
            .store
            .try_get(deployments(), "default", "web")
            .is_none()
            .then_some(())
    })
    .await;
    assert!(
        cluster
            .store
            .all(replica_sets(), Some("default"))
            .is_empty()
    );
    assert!(cluster.store.all(pods(), Some("default")).is_empty());
    let deletions: Vec<String> = history(&cluster, "default")
        .into_iter()
        .filter(|(rv, k, _)| *rv > from && *k == EventType::Deleted)
        .map(|(_, _, o)| o["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        deletions,
        ["Pod", "Pod", "ReplicaSet"],
        "dependents go first"
    );

    // Orphan: the replica set goes, its pods stay, without owner.
    let rs = json!({
        "metadata": { "name": "lonely" },
        "spec": { "replicas": 2, "selector": { "matchLabels": { "app": "lonely" } },
            "template": { "metadata": { "labels": { "app": "lonely" } }, "spec": { "containers": [{ "name": "c", "image": "busybox:1" }] } } }
    });
    cluster
        .store
        .create(replica_sets(), "default", rs, &user())
        .unwrap();
    wait_for("two pods", 5, || {
        (cluster.store.all(pods(), Some("default")).len() == 2).then_some(())
    })
    .await;
    let orphan = DeleteOptions {
        propagation: Some(Propagation::Orphan),
        ..DeleteOptions::default()
    };
    cluster
        .store
        .delete(replica_sets(), "default", "lonely", &orphan)
        .unwrap();
    wait_for("the replica set to go", 5, || {
        cluster
            .store
            .try_get(replica_sets(), "default", "lonely")
            .is_none()
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let left = cluster.store.all(pods(), Some("default"));
    assert_eq!(left.len(), 2);
    assert!(
        left.iter()
            .all(|p| p.pointer("/metadata/ownerReferences").is_none()
                && p.pointer("/metadata/deletionTimestamp").is_none())
    );
    cluster.begin_shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_namespace_empties_and_removes_it() {
    let cluster = start();
    new_namespace(&cluster, "doomed");
    cluster
        .store
        .create(
            deployments(),
            "doomed",
            deployment("web", 2, "nginx:1", json!({ "type": "RollingUpdate" })),
            &user(),
        )
        .unwrap();
    cluster
        .store
        .create(
            resources::get("v1", "ConfigMap"),
            "doomed",
            configmap("settings", None),
            &user(),
        )
        .unwrap();
    wait_for("the rollout", 10, || {
        rollout_done(&cluster, "doomed", "web")
    })
    .await;
    let ns = resources::get("v1", "Namespace");
    cluster
        .store
        .delete(ns, "", "doomed", &DeleteOptions::default())
        .unwrap();
    wait_for("the namespace to go", 10, || {
        cluster
            .store
            .try_get(ns, "", "doomed")
            .is_none()
            .then_some(())
    })
    .await;
    for def in resources::RESOURCES
        .iter()
        .filter(|d| d.namespaced && !d.create_only)
    {
        assert!(
            cluster.store.all(def, Some("doomed")).is_empty(),
            "{} left behind",
            def.plural
        );
    }
    cluster.begin_shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn every_namespace_gets_a_default_service_account() {
    let cluster = start();
    new_namespace(&cluster, "fresh");
    let sa = resources::get("v1", "ServiceAccount");
    for ns in ["default", "kube-system", "fresh"] {
        wait_for("the default service account", 5, || {
            cluster.store.try_get(sa, ns, "default")
        })
        .await;
    }
    cluster.begin_shutdown();
}

fn revision_is(cluster: &Cluster, name: &str, revision: &str) -> Option<Value> {
    rollout_done(cluster, "default", name)
        .filter(|d| d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == revision)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_deployment_waits_and_old_replica_sets_are_pruned() {
    let cluster = start();
    let mut d = deployment("web", 2, "nginx:1", json!({ "type": "RollingUpdate" }));
    d["spec"]["revisionHistoryLimit"] = json!(1);
    cluster
        .store
        .create(deployments(), "default", d, &user())
        .unwrap();
    wait_for("the rollout", 10, || revision_is(&cluster, "web", "1")).await;

    let pause = |paused: bool| {
        cluster
            .store
            .modify(deployments(), "default", "web", "", &user(), |d| {
                d["spec"]["paused"] = json!(paused);
                Ok(())
            })
            .unwrap();
    };
    pause(true);
    set_image(&cluster, "default", "web", "nginx:2");
    let d = wait_for("the paused condition", 5, || {
        let d = cluster.store.get(deployments(), "default", "web").ok()?;
        condition(&d, "Progressing")
            .filter(|c| c["reason"] == "DeploymentPaused")
            .map(|_| d.clone())
    })
    .await;
    assert_eq!(condition(&d, "Progressing").unwrap()["status"], "Unknown");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        cluster.store.all(replica_sets(), Some("default")).len(),
        1,
        "a paused deployment rolls nothing out"
    );

    pause(false);
    wait_for("the second rollout", 10, || {
        revision_is(&cluster, "web", "2")
    })
    .await;
    set_image(&cluster, "default", "web", "nginx:3");
    wait_for("the third rollout", 10, || {
        revision_is(&cluster, "web", "3")
    })
    .await;
    let revisions = wait_for("the oldest replica set to go", 5, || {
        let rss = cluster.store.all(replica_sets(), Some("default"));
        let mut revisions: Vec<String> = rss
            .iter()
            .map(|rs| {
                rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        revisions.sort();
        (revisions.len() == 2).then_some(revisions)
    })
    .await;
    assert_eq!(revisions, ["2", "3"]);
    cluster.begin_shutdown();
}
