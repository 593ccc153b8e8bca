//! The kubelet with the scripted runtime: pod lifecycle, checks, status,
//! events and scripted logs, without any container.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube_emulator::bootstrap;
use kube_emulator::cluster::{Cluster, NodeConfig, Runtime};
use kube_emulator::kubelet::{self, LogOptions};
use kube_emulator::resources;
use kube_emulator::store::{DeleteOptions, WriteOptions};
use serde_json::{Value, json};

fn start() -> Arc<Cluster> {
    let mut cluster = Cluster::new(NodeConfig::default(), Runtime::Scripted);
    Arc::get_mut(&mut cluster)
        .expect("not shared yet")
        .backoff_ms = (300, 1200);
    bootstrap::bootstrap(&cluster);
    kubelet::spawn(cluster.clone());
    cluster
}

fn create_pod(cluster: &Cluster, name: &str, annotations: Value, containers: Value) {
    let pod = json!({
        "metadata": { "name": name, "annotations": annotations },
        "spec": { "nodeName": "emulator", "containers": containers },
    });
    cluster
        .store
        .create(
            resources::pods(),
            "default",
            pod,
            &WriteOptions::manager("test"),
        )
        .expect("pod created");
}

async fn wait_for(cluster: &Cluster, name: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        if let Some(p) = cluster.store.try_get(resources::pods(), "default", name)
            && ok(&p)
        {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let now = cluster.store.try_get(resources::pods(), "default", name);
    panic!("pod {name}: {what} never happened; last: {now:#?}");
}

fn waiting_reason(pod: &Value) -> Option<&str> {
    pod.pointer("/status/containerStatuses/0/state/waiting/reason")
        .and_then(Value::as_str)
}

fn events(cluster: &Cluster, pod: &str) -> Vec<(String, String, String)> {
    cluster
        .store
        .all(resources::get("v1", "Event"), Some("default"))
        .into_iter()
        .filter(|e| e["involvedObject"]["name"] == pod)
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (s("type"), s("reason"), s("message"))
        })
        .collect()
}

async fn read_all(cluster: &Arc<Cluster>, pod: &str, opts: LogOptions) -> String {
    let mut stream = kubelet::logs(cluster.clone(), "default", pod, opts)
        .await
        .expect("logs");
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.expect("chunk"));
    }
    String::from_utf8(out).expect("utf-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_pods_run_and_are_ready_at_once() {
    let cluster = start();
    kubelet::load_image(&cluster, "app:1")
        .await
        .expect("loaded");
    let node = cluster
        .store
        .get(resources::get("v1", "Node"), "", "emulator")
        .expect("node registered");
    assert_eq!(
        node["status"]["nodeInfo"]["containerRuntimeVersion"],
        "scripted://1.0"
    );
    assert_eq!(node["status"]["capacity"]["memory"], "8388608Ki");
    assert_eq!(node["status"]["images"][0]["names"], json!(["app:1"]));
    create_pod(
        &cluster,
        "ready-a",
        json!({}),
        json!([{ "name": "c", "image": "app:1" }]),
    );
    create_pod(
        &cluster,
        "ready-b",
        json!({}),
        json!([{ "name": "c", "image": "app:1" }]),
    );
    let a = wait_for(&cluster, "ready-a", "Running", |p| {
        p["status"]["phase"] == "Running"
    })
    .await;
    let b = wait_for(&cluster, "ready-b", "Running", |p| {
        p["status"]["phase"] == "Running"
    })
    .await;
    let ready = a["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .cloned()
        .unwrap();
    assert_eq!(ready["status"], "True");
    let ip = a["status"]["podIP"].as_str().unwrap();
    assert!(ip.starts_with("10.244."), "{ip}");
    assert_ne!(a["status"]["podIP"], b["status"]["podIP"]);
    let cs = &a["status"]["containerStatuses"][0];
    assert_eq!(cs["ready"], true);
    assert_eq!(cs["started"], true);
    assert_eq!(cs["restartCount"], 0);
    assert!(
        cs["containerID"]
            .as_str()
            .unwrap()
            .starts_with("scripted://")
    );
    assert!(cs["state"]["running"]["startedAt"].is_string());
    assert_eq!(a["status"]["hostIP"], "127.0.0.1");
    let reasons: Vec<String> = events(&cluster, "ready-a")
        .into_iter()
        .map(|e| e.1)
        .collect();
    for r in ["Pulled", "Created", "Started"] {
        assert!(reasons.iter().any(|x| x == r), "{r} in {reasons:?}");
    }
    kubelet::shutdown(&cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_images_back_off_until_loaded() {
    let cluster = start();
    create_pod(
        &cluster,
        "pull",
        json!({}),
        json!([{ "name": "c", "image": "late:2" }]),
    );
    create_pod(
        &cluster,
        "never",
        json!({}),
        json!([{ "name": "c", "image": "late:2", "imagePullPolicy": "Never" }]),
    );
    let p = wait_for(&cluster, "pull", "ErrImagePull", |p| {
        waiting_reason(p) == Some("ErrImagePull")
    })
    .await;
    assert!(p["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
        .as_str()
        .unwrap()
        .contains("pull access denied for late, repository does not exist or may require 'docker login'"));
    wait_for(&cluster, "pull", "ImagePullBackOff", |p| {
        waiting_reason(p) == Some("ImagePullBackOff")
    })
    .await;
    let n = wait_for(&cluster, "never", "ErrImageNeverPull", |p| {
        waiting_reason(p) == Some("ErrImageNeverPull")
    })
    .await;
    assert_eq!(
        n["status"]["containerStatuses"][0]["state"]["waiting"]["message"],
        "Container image \"late:2\" is not present with pull policy of Never"
    );
    let ev = events(&cluster, "pull");
    let has = |t: &str, r: &str, m: &str| {
        ev.iter()
            .any(|e| e.0 == t && e.1 == r && e.2.starts_with(m))
    };
    assert!(
        has("Normal", "Pulling", "Pulling image \"late:2\""),
        "{ev:?}"
    );
    assert!(
        has("Warning", "Failed", "Failed to pull image \"late:2\": "),
        "{ev:?}"
    );
    assert!(has("Warning", "Failed", "Error: ErrImagePull"), "{ev:?}");
    assert!(
        has("Normal", "BackOff", "Back-off pulling image \"late:2\""),
        "{ev:?}"
    );
    assert!(
        has("Warning", "Failed", "Error: ImagePullBackOff"),
        "{ev:?}"
    );
    let err = kubelet::logs(cluster.clone(), "default", "pull", LogOptions::default())
        .await
        .err()
        .unwrap();
    assert_eq!(err.code, 400);
    assert!(
        err.message
            .starts_with("container \"c\" in pod \"pull\" is waiting to start: "),
        "{}",
        err.message
    );
    kubelet::load_image(&cluster, "late:2").await.unwrap();
    wait_for(&cluster, "pull", "Running after the load", |p| {
        p["status"]["phase"] == "Running"
    })
    .await;
    wait_for(&cluster, "never", "Running after the load", |p| {
        p["status"]["phase"] == "Running"
    })
    .await;
    kubelet::shutdown(&cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_config_and_root_users_stop_containers() {
    let cluster = start();
    kubelet::load_image(&cluster, "cfg:1").await.unwrap();
    let secret_env = json!([{ "name": "c", "image": "cfg:1", "env": [
        { "name": "TOKEN", "valueFrom": { "secretKeyRef": { "name": "creds", "key": "token" } } },
    ] }]);
    create_pod(&cluster, "needs-secret", json!({}), secret_env);
    let p = wait_for(&cluster, "needs-secret", "config error", |p| {
        waiting_reason(p) == Some("CreateContainerConfigError")
    })
    .await;
    assert_eq!(
        p["status"]["containerStatuses"][0]["state"]["waiting"]["message"],
        "secret \"creds\" not found"
    );
    let opts = WriteOptions::manager("test");
    let secrets = resources::get("v1", "Secret");
    let secret = json!({ "metadata": { "name": "creds" }, "data": { "other": "eA==" } });
    cluster
        .store
        .create(secrets, "default", secret, &opts)
        .unwrap();
    wait_for(&cluster, "needs-secret", "missing key", |p| {
        p.pointer("/status/containerStatuses/0/state/waiting/message")
            == Some(&json!("couldn't find key token in Secret default/creds"))
    })
    .await;
    assert!(
        events(&cluster, "needs-secret")
            .iter()
            .any(|e| e.1 == "Failed" && e.2 == "Error: secret \"creds\" not found")
    );
    cluster
        .store
        .modify(secrets, "default", "creds", "", &opts, |s| {
            s["data"]["token"] = json!("eA==");
            Ok(())
        })
        .unwrap();
    wait_for(
        &cluster,
        "needs-secret",
        "Running once the key exists",
        |p| p["status"]["phase"] == "Running",
    )
    .await;

    let root = json!([{ "name": "c", "image": "cfg:1", "securityContext": { "runAsUser": 0 } }]);
    let pod = json!({
        "metadata": { "name": "as-root" },
        "spec": { "nodeName": "emulator", "securityContext": { "runAsNonRoot": true }, "containers": root },
    });
    let created = cluster
        .store
        .create(resources::pods(), "default", pod, &opts)
        .unwrap();
    let uid = created["metadata"]["uid"].as_str().unwrap();
    let p = wait_for(&cluster, "as-root", "non-root error", |p| {
        waiting_reason(p) == Some("CreateContainerConfigError")
    })
    .await;
    assert_eq!(
        p["status"]["containerStatuses"][0]["state"]["waiting"]["message"],
        format!(
            "container's runAsUser breaks non-root policy (pod: \"as-root_default({uid})\", container: c)"
        )
    );
    kubelet::shutdown(&cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_logs_honour_the_options() {
    let cluster = start();
    kubelet::load_image(&cluster, "log:1").await.unwrap();
    create_pod(
        &cluster,
        "many",
        json!({ "kube-emulator.dev/log-lines": "10000" }),
        json!([{ "name": "c", "image": "log:1" }]),
    );
    wait_for(&cluster, "many", "Running", |p| {
        p["status"]["phase"] == "Running"
    })
    .await;
    let all = read_all(&cluster, "many", LogOptions::default()).await;
    assert_eq!(all.lines().count(), 10000);
    assert_eq!(all.lines().next(), Some("line 1"));
    assert_eq!(all.lines().last(), Some("line 10000"));
    let tail = read_all(
        &cluster,
        "many",
        LogOptions {
            tail_lines: Some(2),
            timestamps: true,
            ..Default::default()
        },
    )
    .await;
    let lines: Vec<&str> = tail.lines().collect();
    assert_eq!(lines.len(), 2);
    let (stamp, text) = lines[1].split_once(' ').unwrap();
    assert_eq!(text, "line 10000");
    assert_eq!(
        stamp.len(),
        "2026-11-23T21:00:00.123456789Z".len(),
        "{stamp}"
    );
    assert!(stamp.parse::<jiff::Timestamp>().is_ok());
    let limited = read_all(
        &cluster,
        "many",
        LogOptions {
            limit_bytes: Some(10),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(limited, "line 1\nlin");
    let future = read_all(
        &cluster,
        "many",
        LogOptions {
            since_seconds: Some(0),
            ..Default::default()
        },
    )
    .await;
    assert!(future.lines().count() <= 10000);

    let annotations =
        json!({ "kube-emulator.dev/log-lines": "3", "kube-emulator.dev/log-interval-ms": "100" });
    create_pod(
        &cluster,
        "slow",
        annotations,
        json!([{ "name": "c", "image": "log:1" }]),
    );
    wait_for(&cluster, "slow", "Running", |p| {
        p["status"]["phase"] == "Running"
    })
    .await;
    let follower = {
        let cluster = cluster.clone();
        tokio::spawn(async move {
            read_all(
                &cluster,
                "slow",
                LogOptions {
                    follow: true,
                    ..Default::default()
                },
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!follower.is_finished(), "follow waits for the pod's end");
    cluster
        .store
        .delete(
            resources::pods(),
            "default",
            "slow",
            &DeleteOptions::default(),
        )
        .unwrap();
    let followed = tokio::time::timeout(Duration::from_secs(5), follower)
        .await
        .expect("follow ends")
        .unwrap();
    assert_eq!(followed, "line 1\nline 2\nline 3\n");
    wait_for_gone(&cluster, "slow").await;
    assert!(
        events(&cluster, "slow")
            .iter()
            .any(|e| e.1 == "Killing" && e.2 == "Stopping container c")
    );
    kubelet::shutdown(&cluster).await;
}

async fn wait_for_gone(cluster: &Cluster, name: &str) {
    for _ in 0..200 {
        if cluster
            .store
            .try_get(resources::pods(), "default", name)
            .is_none()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("pod {name} was never removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_exits_crash_loop_and_keep_previous_logs() {
    let cluster = start();
    kubelet::load_image(&cluster, "crash:1").await.unwrap();
    let annotations =
        json!({ "kube-emulator.dev/log-lines": "2", "kube-emulator.dev/exit-code": "1" });
    create_pod(
        &cluster,
        "crash",
        annotations,
        json!([{ "name": "c", "image": "crash:1" }]),
    );
    let p = wait_for(&cluster, "crash", "CrashLoopBackOff", |p| {
        waiting_reason(p) == Some("CrashLoopBackOff")
            && p["status"]["containerStatuses"][0]["restartCount"].as_i64() >= Some(2)
    })
    .await;
    let cs = &p["status"]["containerStatuses"][0];
    let uid = p["metadata"]["uid"].as_str().unwrap();
    let message = cs["state"]["waiting"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("back-off ")
            && message.ends_with(&format!(
                " restarting failed container=c pod=crash_default({uid})"
            )),
        "{message}"
    );
    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 1);
    assert_eq!(cs["lastState"]["terminated"]["reason"], "Error");
    assert_eq!(p["status"]["phase"], "Running");
    let previous = read_all(
        &cluster,
        "crash",
        LogOptions {
            previous: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(previous, "line 1\nline 2\n");
    let backoff = format!("Back-off restarting failed container c in pod crash_default({uid})");
    assert!(
        events(&cluster, "crash")
            .iter()
            .any(|e| e.0 == "Warning" && e.1 == "BackOff" && e.2 == backoff)
    );

    create_pod(
        &cluster,
        "two",
        json!({}),
        json!([{ "name": "a", "image": "crash:1" }, { "name": "b", "image": "crash:1" }]),
    );
    let err = kubelet::logs(cluster.clone(), "default", "two", LogOptions::default())
        .await
        .err()
        .unwrap();
    assert_eq!(
        err.message,
        "a container name must be specified for pod two, choose one of: [a b]"
    );
    let err = kubelet::logs(
        cluster.clone(),
        "default",
        "two",
        LogOptions {
            container: Some("z".into()),
            ..Default::default()
        },
    )
    .await
    .err()
    .unwrap();
    assert_eq!(err.message, "container z is not valid for pod two");
    let err = kubelet::logs(cluster.clone(), "default", "nope", LogOptions::default())
        .await
        .err()
        .unwrap();
    assert_eq!(err.code, 404);
    kubelet::shutdown(&cluster).await;
}

/// A container the runtime will not create waits in CreateContainerError
/// with the runtime's message, tried again after back-off; a reference the
/// kubelet cannot parse, or one a fault mangles, waits in InvalidImageName.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_fail_at_create_and_unparsable_references_are_invalid() {
    use kube_emulator::faults::{ContainerFailure, ContainerFault};

    let cluster = start();
    kubelet::load_image(&cluster, "app:1").await.unwrap();
    kubelet::load_image(&cluster, "mangled:1").await.unwrap();
    let refused = "failed to create containerd container: mount source \"/var/lib/kubelet/pods/x/volumes/data\" subPath \"missing\" does not exist";
    cluster.faults.fail_containers(ContainerFault {
        image: "app:1".into(),
        failure: ContainerFailure::CreateContainerError(refused.into()),
    });
    cluster.faults.fail_containers(ContainerFault {
        image: "mangled:".into(),
        failure: ContainerFailure::InvalidImageName,
    });
    create_pod(
        &cluster,
        "refused",
        json!({}),
        json!([{ "name": "app", "image": "app:1" }]),
    );
    create_pod(
        &cluster,
        "upper",
        json!({}),
        json!([{ "name": "app", "image": "App:1" }]),
    );
    create_pod(
        &cluster,
        "mangled",
        json!({}),
        json!([{ "name": "app", "image": "mangled:1" }]),
    );

    let pod = wait_for(&cluster, "refused", "CreateContainerError", |p| {
        waiting_reason(p) == Some("CreateContainerError")
    })
    .await;
    assert_eq!(
        pod.pointer("/status/containerStatuses/0/state/waiting/message"),
        Some(&json!(refused))
    );
    let said = events(&cluster, "refused");
    assert!(
        said.contains(&(
            "Warning".into(),
            "Failed".into(),
            format!("Error: {refused}")
        )),
        "{said:?}"
    );
    assert!(
        !said.iter().any(|(_, reason, _)| reason == "Created"),
        "{said:?}"
    );
    for name in ["upper", "mangled"] {
        let pod = wait_for(&cluster, name, "InvalidImageName", |p| {
            waiting_reason(p) == Some("InvalidImageName")
        })
        .await;
        let message = pod
            .pointer("/status/containerStatuses/0/state/waiting/message")
            .and_then(Value::as_str)
            .unwrap_or_default();
        assert!(message.ends_with("invalid reference format"), "{message}");
    }

    // Once the runtime creates it, the container is created, then started.
    cluster.faults.clear();
    wait_for(&cluster, "refused", "running", |p| {
        p.pointer("/status/containerStatuses/0/state/running")
            .is_some()
    })
    .await;
    let reasons: Vec<String> = events(&cluster, "refused")
        .into_iter()
        .map(|e| e.1)
        .collect();
    for r in ["Created", "Started"] {
        assert!(reasons.iter().any(|x| x == r), "{r} in {reasons:?}");
    }
    kubelet::shutdown(&cluster).await;
}
