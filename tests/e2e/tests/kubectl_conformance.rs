//! Real `kubectl` against the emulator: the proof that it speaks the API faithfully.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e::{Cluster, httpd_deployment};
use kube_emulator::Runtime;
use kube_emulator::faults::Denial;
use kube_emulator::testimage::busybox_image;
use serde_json::Value;

async fn load(cluster: &Cluster, image: &str) {
    let client = kube_emulator::client::Client::new(&cluster.emulator.url()).unwrap();
    client.load_images(&[image.to_string()]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_deployment_becomes_available_and_kubectl_follows_its_logs() {
    let image = busybox_image("e2e").await.unwrap();
    let cluster = Cluster::start(Runtime::Docker).await.unwrap();
    load(&cluster, &image).await;
    let manifest = cluster.manifest("web.yaml", &httpd_deployment("web", &image, 60));

    cluster
        .kubectl(&["apply", "--server-side", "-f", manifest.to_str().unwrap()])
        .await
        .ok();
    let status = cluster
        .kubectl(&["rollout", "status", "deploy/web", "--timeout=90s"])
        .await
        .ok();
    assert!(status.contains("successfully rolled out"), "{status}");

    let deploy: Value = serde_json::from_str(
        &cluster
            .kubectl(&["get", "deploy", "web", "-o", "json"])
            .await
            .ok(),
    )
    .unwrap();
    assert_eq!(deploy["status"]["availableReplicas"], 1);
    let available = deploy["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Available")
        .unwrap();
    assert_eq!(available["status"], "True");

    let pods = cluster
        .kubectl(&["get", "pods", "-l", "app=web"])
        .await
        .ok();
    assert!(pods.contains("1/1") && pods.contains("Running"), "{pods}");

    let logs = cluster.kubectl(&["logs", "deploy/web"]).await.ok();
    assert!(logs.contains("serving on 8080"), "{logs}");

    // `kubectl logs -f` keeps streaming: the readiness probe's requests show up as they happen.
    let mut follow = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig())
        .args(["logs", "-f", "deploy/web"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        let mut seen = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let is_probe = line.contains("response:200");
            seen.push(line);
            if seen.iter().filter(|l| l.contains("response:200")).count() >= 3 && is_probe
                || start.elapsed() > Duration::from_secs(30)
            {
                break;
            }
        }
        seen
    })
    .await
    .unwrap();
    follow.kill().unwrap();
    let _ = follow.wait();
    assert!(
        lines.iter().filter(|l| l.contains("response:200")).count() >= 3,
        "{lines:?}"
    );

    let described = cluster
        .kubectl(&["describe", "pods", "-l", "app=web"])
        .await
        .ok();
    for expected in [
        "Readiness:",
        "http-get http://:http/health",
        "Scheduled",
        "Started",
        "Ready:          True",
    ] {
        assert!(
            described.contains(expected),
            "missing {expected:?} in:\n{described}"
        );
    }
    let events = cluster.kubectl(&["get", "events"]).await.ok();
    for reason in [
        "Scheduled",
        "Pulled",
        "Created",
        "Started",
        "ScalingReplicaSet",
        "SuccessfulCreate",
    ] {
        assert!(events.contains(reason), "missing {reason} in:\n{events}");
    }

    cluster.kubectl(&["delete", "deploy", "web"]).await.ok();
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_never_loaded_backs_off_and_rollout_status_reports_the_deadline() {
    let cluster = Cluster::start(Runtime::Docker).await.unwrap();
    let manifest = cluster.manifest(
        "web.yaml",
        &httpd_deployment("ghost", "todo/never-loaded:1.0", 3),
    );
    cluster
        .kubectl(&["apply", "--server-side", "-f", manifest.to_str().unwrap()])
        .await
        .ok();

    let err = cluster
        .kubectl(&["rollout", "status", "deploy/ghost", "--timeout=60s"])
        .await
        .err();
    assert!(
        err.contains("deployment \"ghost\" exceeded its progress deadline"),
        "{err}"
    );

    let pods = cluster
        .kubectl(&["get", "pods", "-l", "app=ghost"])
        .await
        .ok();
    assert!(
        pods.contains("ImagePullBackOff") || pods.contains("ErrImagePull"),
        "{pods}"
    );
    let events = cluster
        .kubectl(&["get", "events", "--field-selector", "reason=BackOff"])
        .await
        .ok();
    assert!(
        events.contains("Back-off pulling image \"todo/never-loaded:1.0\""),
        "{events}"
    );
    let deploy: Value = serde_json::from_str(
        &cluster
            .kubectl(&["get", "deploy", "ghost", "-o", "json"])
            .await
            .ok(),
    )
    .unwrap();
    let progressing = deploy["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Progressing")
        .unwrap()
        .clone();
    assert_eq!(progressing["reason"], "ProgressDeadlineExceeded");
    cluster.stop().await;
}

const CONFIG: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  labels: {app: api, tier: back}
spec:
  replicas: 2
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
      - name: api
        image: todo-api:1
        env:
        - {name: MODE, value: dev}
        - {name: EXTRA, value: "yes"}
"#;

fn rv(json: &str) -> String {
    let v: Value = serde_json::from_str(json).unwrap();
    v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn server_side_apply_is_idempotent_updates_and_removes_fields() {
    let cluster = Cluster::start(Runtime::Scripted).await.unwrap();
    let path = cluster.manifest("api.yaml", CONFIG);
    let file = path.to_str().unwrap();

    let out = cluster
        .kubectl(&["apply", "--server-side", "-f", file])
        .await
        .ok();
    assert_eq!(out.trim(), "deployment.apps/api serverside-applied");
    // The controllers write the Deployment's status as they take it up; only
    // a settled object (observed, and unchanged for half a second) tells an
    // apply's write from theirs.
    let mut first = String::new();
    for _ in 0..60 {
        let now = cluster
            .kubectl(&["get", "deploy", "api", "-o", "json"])
            .await
            .ok();
        let v: Value = serde_json::from_str(&now).unwrap();
        let observed = v["status"]["observedGeneration"] == v["metadata"]["generation"];
        if observed && !first.is_empty() && rv(&now) == rv(&first) {
            break;
        }
        first = now;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    cluster
        .kubectl(&["apply", "--server-side", "-f", file])
        .await
        .ok();
    let second = cluster
        .kubectl(&["get", "deploy", "api", "-o", "json"])
        .await
        .ok();
    assert_eq!(
        rv(&first),
        rv(&second),
        "re-applying the same manifest must not write"
    );

    let changed = CONFIG
        .replace("replicas: 2", "replicas: 3")
        .replace("value: dev", "value: prod");
    cluster.manifest("api.yaml", &changed);
    cluster
        .kubectl(&["apply", "--server-side", "-f", file])
        .await
        .ok();
    let env = cluster
        .kubectl(&[
            "get",
            "deploy",
            "api",
            "-o",
            "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].env[0].value}",
        ])
        .await
        .ok();
    assert_eq!(env, "3 prod");

    let removed = changed
        .replace("        - {name: EXTRA, value: \"yes\"}\n", "")
        .replace(", tier: back", "");
    cluster.manifest("api.yaml", &removed);
    cluster
        .kubectl(&["apply", "--server-side", "-f", file])
        .await
        .ok();
    let live: Value = serde_json::from_str(
        &cluster
            .kubectl(&["get", "deploy", "api", "-o", "json"])
            .await
            .ok(),
    )
    .unwrap();
    assert_eq!(
        live["metadata"]["labels"],
        serde_json::json!({ "app": "api" })
    );
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Another manager changing a field kubectl owns is a conflict, until forced.
    let other = removed.replace("replicas: 3", "replicas: 5");
    let other_path = cluster.manifest("other.yaml", &other);
    let err = cluster
        .kubectl(&[
            "apply",
            "--server-side",
            "--field-manager=ops",
            "-f",
            other_path.to_str().unwrap(),
        ])
        .await
        .err();
    assert!(
        err.contains("conflict with \"kubectl\"") && err.contains(".spec.replicas"),
        "{err}"
    );
    cluster
        .kubectl(&[
            "apply",
            "--server-side",
            "--field-manager=ops",
            "--force-conflicts",
            "-f",
            other_path.to_str().unwrap(),
        ])
        .await
        .ok();
    let replicas = cluster
        .kubectl(&["get", "deploy", "api", "-o", "jsonpath={.spec.replicas}"])
        .await
        .ok();
    assert_eq!(replicas, "5");

    let dry = cluster
        .kubectl(&["delete", "deploy", "api", "--dry-run=server"])
        .await
        .ok();
    assert!(dry.contains("(server dry run)"), "{dry}");
    cluster.kubectl(&["get", "deploy", "api"]).await.ok();
    cluster.kubectl(&["delete", "-f", file]).await.ok();
    let gone = cluster.kubectl(&["get", "deploy", "api"]).await.err();
    assert!(
        gone.contains("deployments.apps \"api\" not found"),
        "{gone}"
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_version_get_describe_auth_and_events() {
    let cluster = Cluster::start(Runtime::Scripted).await.unwrap();
    let version = cluster.kubectl(&["version"]).await.ok();
    assert!(version.contains("Server Version: v1.33"), "{version}");

    let nodes = cluster.kubectl(&["get", "nodes"]).await.ok();
    assert!(
        nodes.contains("emulator") && nodes.contains("Ready"),
        "{nodes}"
    );
    let node = cluster
        .kubectl(&["describe", "node", "emulator"])
        .await
        .ok();
    assert!(
        node.contains("Allocatable:") && node.contains("cpu:"),
        "{node}"
    );

    cluster.kubectl(&["create", "namespace", "todo"]).await.ok();
    cluster
        .kubectl(&[
            "-n",
            "todo",
            "create",
            "configmap",
            "settings",
            "--from-literal=LOG_LEVEL=info",
        ])
        .await
        .ok();
    let cm = cluster
        .kubectl(&[
            "-n",
            "todo",
            "get",
            "cm",
            "settings",
            "-o",
            "jsonpath={.data.LOG_LEVEL}",
        ])
        .await
        .ok();
    assert_eq!(cm, "info");
    let described = cluster
        .kubectl(&["-n", "todo", "describe", "cm", "settings"])
        .await
        .ok();
    assert!(described.contains("LOG_LEVEL"), "{described}");

    assert_eq!(
        cluster
            .kubectl(&["auth", "can-i", "create", "secrets", "-n", "todo"])
            .await
            .ok()
            .trim(),
        "yes"
    );
    cluster.emulator.faults().deny(Denial {
        verb: "create".into(),
        resource: "secrets".into(),
        namespace: Some("todo".into()),
        ..Denial::default()
    });
    let no = cluster
        .kubectl(&["auth", "can-i", "create", "secrets", "-n", "todo"])
        .await;
    assert_eq!(no.stdout().trim(), "no");
    let forbidden = cluster
        .kubectl(&[
            "-n",
            "todo",
            "create",
            "secret",
            "generic",
            "s",
            "--from-literal=a=b",
        ])
        .await
        .err();
    assert!(
        forbidden.contains("cannot create resource \"secrets\""),
        "{forbidden}"
    );

    cluster
        .kubectl(&[
            "-n",
            "todo",
            "run",
            "--image=busybox:1",
            "--restart=Never",
            "probe",
        ])
        .await;
    let pod = cluster.manifest(
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: lonely, namespace: todo}\nspec:\n  containers: [{name: c, image: missing:1}]\n",
    );
    cluster
        .kubectl(&["apply", "-f", pod.to_str().unwrap()])
        .await
        .ok();
    let mut events = String::new();
    for _ in 0..50 {
        events = cluster.kubectl(&["-n", "todo", "get", "events"]).await.ok();
        if events.contains("ErrImagePull") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        events.contains("Scheduled") && events.contains("ErrImagePull"),
        "{events}"
    );

    cluster
        .kubectl(&["delete", "namespace", "todo", "--timeout=30s"])
        .await
        .ok();
    let gone = cluster.kubectl(&["get", "namespace", "todo"]).await.err();
    assert!(gone.contains("not found"), "{gone}");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_patch_label_scale_and_rollout_undo() {
    let cluster = Cluster::start(Runtime::Scripted).await.unwrap();
    let path = cluster.manifest("api.yaml", &CONFIG.replace("todo-api:1", "busybox:1"));
    let file = path.to_str().unwrap();
    load(&cluster, "busybox:1").await;
    load(&cluster, "busybox:2").await;
    cluster.kubectl(&["apply", "-f", file]).await.ok();
    let unchanged = cluster.kubectl(&["apply", "-f", file]).await.ok();
    assert!(unchanged.contains("unchanged"), "{unchanged}");
    cluster
        .kubectl(&["rollout", "status", "deploy/api", "--timeout=30s"])
        .await
        .ok();

    cluster
        .kubectl(&["label", "deploy", "api", "owner=team"])
        .await
        .ok();
    cluster
        .kubectl(&[
            "patch",
            "deploy",
            "api",
            "-p",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"api","image":"busybox:2"}]}}}}"#,
        ])
        .await
        .ok();
    cluster
        .kubectl(&["rollout", "status", "deploy/api", "--timeout=30s"])
        .await
        .ok();
    let rs = cluster.kubectl(&["get", "rs", "-l", "app=api", "-o", "jsonpath={range .items[*]}{.spec.replicas}:{.metadata.annotations.deployment\\.kubernetes\\.io/revision} {end}"]).await.ok();
    let mut pairs: Vec<&str> = rs.split_whitespace().collect();
    pairs.sort();
    assert_eq!(pairs, ["0:1", "2:2"], "{rs}");

    cluster
        .kubectl(&["rollout", "undo", "deploy/api"])
        .await
        .ok();
    cluster
        .kubectl(&["rollout", "status", "deploy/api", "--timeout=30s"])
        .await
        .ok();
    let image = cluster
        .kubectl(&[
            "get",
            "deploy",
            "api",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ])
        .await
        .ok();
    assert_eq!(image, "busybox:1");

    cluster
        .kubectl(&["scale", "deploy", "api", "--replicas=4"])
        .await
        .ok();
    cluster
        .kubectl(&["rollout", "status", "deploy/api", "--timeout=30s"])
        .await
        .ok();
    let ready = cluster
        .kubectl(&[
            "get",
            "deploy",
            "api",
            "-o",
            "jsonpath={.status.readyReplicas}",
        ])
        .await
        .ok();
    assert_eq!(ready, "4");
    let labels = cluster
        .kubectl(&[
            "get",
            "deploy",
            "api",
            "-o",
            "jsonpath={.metadata.labels.owner}",
        ])
        .await
        .ok();
    assert_eq!(labels, "team");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn over_https_kubectl_and_kube_rs_trust_the_emulators_own_ca() {
    let cluster = Cluster::start_with(kube_emulator::Config {
        tls: true,
        ..kube_emulator::Config::default()
    })
    .await
    .unwrap();
    assert!(cluster.emulator.url().starts_with("https://127.0.0.1:"));
    let kubeconfig = std::fs::read_to_string(cluster.kubeconfig()).unwrap();
    assert!(
        kubeconfig.contains("certificate-authority-data:"),
        "{kubeconfig}"
    );

    let namespaces = cluster.kubectl(&["get", "namespaces"]).await.ok();
    assert!(namespaces.contains("kube-system"), "{namespaces}");
    cluster
        .kubectl(&["create", "configmap", "over-tls", "--from-literal=a=b"])
        .await
        .ok();

    let client = cluster.emulator.client().await.unwrap();
    let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client, "default");
    assert!(cms.get_opt("over-tls").await.unwrap().is_some());

    // Without the CA the server is not trusted.
    let untrusted = cluster
        .kubectl(&[
            "--certificate-authority",
            "/dev/null",
            "get",
            "namespaces",
            "--request-timeout=5s",
        ])
        .await;
    assert!(!untrusted.success());
    cluster.stop().await;
}
