//! The kubelet with the docker runtime: real containers from the busybox
//! test image (see `kube_emulator::testimage`) on the machine's engine.

use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::ListContainersOptions;
use futures::StreamExt;
use kube_emulator::bootstrap;
use kube_emulator::cluster::{Cluster, NodeConfig, Runtime};
use kube_emulator::kubelet::{self, LogOptions};
use kube_emulator::resources;
use kube_emulator::store::{DeleteOptions, WriteOptions};
use kube_emulator::testimage::busybox_image;
use serde_json::{Value, json};

async fn start() -> (Arc<Cluster>, String) {
    let image = busybox_image("kubelet-tests")
        .await
        .expect("busybox test image");
    let mut cluster = Cluster::new(NodeConfig::default(), Runtime::Docker);
    Arc::get_mut(&mut cluster)
        .expect("not shared yet")
        .backoff_ms = (500, 2000);
    bootstrap::bootstrap(&cluster);
    kubelet::spawn(cluster.clone());
    kubelet::load_image(&cluster, &image).await.expect("loaded");
    (cluster, image)
}

fn create_pod(cluster: &Cluster, name: &str, spec: Value) -> Value {
    let mut spec = spec;
    spec["nodeName"] = json!("emulator");
    spec["terminationGracePeriodSeconds"] = json!(1);
    let pod = json!({ "metadata": { "name": name }, "spec": spec });
    cluster
        .store
        .create(
            resources::pods(),
            "default",
            pod,
            &WriteOptions::manager("test"),
        )
        .expect("pod created")
}

async fn wait_for(cluster: &Cluster, name: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..600 {
        if let Some(p) = cluster.store.try_get(resources::pods(), "default", name)
            && ok(&p)
        {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let now = cluster.store.try_get(resources::pods(), "default", name);
    panic!("pod {name}: {what} never happened; last: {now:#?}");
}

fn container_status(pod: &Value) -> &Value {
    &pod["status"]["containerStatuses"][0]
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
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

async fn containers_labelled(label: &str) -> usize {
    let docker = Docker::connect_with_local_defaults()
        .unwrap()
        .negotiate_version()
        .await
        .unwrap();
    let opts = ListContainersOptions {
        all: true,
        filters: Some([("label".to_string(), vec![label.to_string()])].into()),
        ..Default::default()
    };
    docker.list_containers(Some(opts)).await.unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn httpd_as_uid_1001_becomes_ready_and_serves_logs() {
    let (cluster, image) = start().await;
    let script = "echo uid=$(id -u) token=$TOKEN; mkdir -p /tmp/www && echo ok > /tmp/www/health && exec httpd -f -p 8080 -h /tmp/www";
    let secrets = resources::get("v1", "Secret");
    let secret = json!({ "metadata": { "name": "web-secret" }, "data": { "token": "czNjcjN0" } });
    cluster
        .store
        .create(secrets, "default", secret, &WriteOptions::manager("test"))
        .unwrap();
    let pod = create_pod(
        &cluster,
        "web",
        json!({
            "securityContext": { "runAsNonRoot": true },
            "containers": [{
                "name": "web", "image": image, "command": ["sh", "-c", script],
                "securityContext": { "runAsUser": 1001, "allowPrivilegeEscalation": false },
                "ports": [{ "name": "http", "containerPort": 8080 }],
                "env": [{ "name": "TOKEN", "valueFrom": { "secretKeyRef": { "name": "web-secret", "key": "token" } } }],
                "resources": { "limits": { "memory": "64Mi" } },
                "readinessProbe": { "httpGet": { "path": "/health", "port": "http" }, "periodSeconds": 1 },
            }],
        }),
    );
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_string();
    let p = wait_for(&cluster, "web", "Ready", is_ready).await;
    assert_eq!(p["status"]["phase"], "Running");
    let cs = container_status(&p);
    assert!(cs["containerID"].as_str().unwrap().starts_with("docker://"));
    assert!(
        cs["imageID"]
            .as_str()
            .unwrap()
            .starts_with("docker://sha256:")
    );
    assert_eq!(cs["ready"], true);
    let ip = p["status"]["podIP"].as_str().unwrap();
    assert!(!ip.is_empty() && !ip.starts_with("127."), "{ip}");
    let reasons: Vec<String> = events(&cluster, "web").into_iter().map(|e| e.1).collect();
    for r in ["Pulled", "Created", "Started"] {
        assert!(reasons.iter().any(|x| x == r), "{r} in {reasons:?}");
    }

    let plain = read_all(&cluster, "web", LogOptions::default()).await;
    assert_eq!(plain.lines().next(), Some("uid=1001 token=s3cr3t"));
    let stamped = read_all(
        &cluster,
        "web",
        LogOptions {
            timestamps: true,
            tail_lines: Some(1),
            ..Default::default()
        },
    )
    .await;
    let (stamp, text) = stamped.trim_end().split_once(' ').unwrap();
    assert_eq!(text, "uid=1001 token=s3cr3t");
    assert_eq!(
        stamp.len(),
        "2026-11-23T21:00:00.123456789Z".len(),
        "{stamp}"
    );
    let mut follow = kubelet::logs(
        cluster.clone(),
        "default",
        "web",
        LogOptions {
            follow: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), follow.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&first).starts_with("uid=1001"));
    let later = LogOptions {
        since_time: Some("2999-01-01T00:00:00Z".into()),
        ..Default::default()
    };
    assert_eq!(read_all(&cluster, "web", later).await, "");

    cluster
        .store
        .delete(
            resources::pods(),
            "default",
            "web",
            &DeleteOptions::default(),
        )
        .unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(15), async {
        while follow.next().await.is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "follow ends with the container");
    for _ in 0..100 {
        if cluster
            .store
            .try_get(resources::pods(), "default", "web")
            .is_none()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        cluster
            .store
            .try_get(resources::pods(), "default", "web")
            .is_none(),
        "pod deleted"
    );
    assert_eq!(
        containers_labelled(&format!("io.kubernetes.pod.uid={uid}")).await,
        0
    );
    assert!(
        events(&cluster, "web")
            .iter()
            .any(|e| e.1 == "Killing" && e.2 == "Stopping container web")
    );
    kubelet::shutdown(&cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unloaded_images_back_off_then_start_once_loaded() {
    let (cluster, _) = start().await;
    let late = busybox_image("kubelet-late").await.unwrap();
    create_pod(
        &cluster,
        "late",
        json!({ "containers": [{ "name": "c", "image": late, "command": ["sleep", "1000"] }] }),
    );
    let p = wait_for(&cluster, "late", "ImagePullBackOff", |p| {
        container_status(p).pointer("/state/waiting/reason") == Some(&json!("ImagePullBackOff"))
    })
    .await;
    assert_eq!(p["status"]["phase"], "Pending");
    let ev = events(&cluster, "late");
    assert!(
        ev.iter()
            .any(|e| e.0 == "Warning" && e.2 == "Error: ErrImagePull"),
        "{ev:?}"
    );
    assert!(
        ev.iter()
            .any(|e| e.0 == "Warning" && e.2 == "Error: ImagePullBackOff"),
        "{ev:?}"
    );
    kubelet::load_image(&cluster, &late).await.unwrap();
    let node = cluster
        .store
        .get(resources::get("v1", "Node"), "", "emulator")
        .unwrap();
    assert!(
        node["status"]["images"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["names"].as_array().unwrap().contains(&json!(late)))
    );
    wait_for(&cluster, "late", "Running", |p| {
        p["status"]["phase"] == "Running"
    })
    .await;
    kubelet::shutdown(&cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_images_break_run_as_non_root() {
    let (cluster, image) = start().await;
    let pod = create_pod(
        &cluster,
        "rooted",
        json!({
            "securityContext": { "runAsNonRoot": true },
            "containers": [{ "name": "c", "image": image, "command": ["sleep", "1000"] }],
        }),
    );
    let uid = pod["metadata"]["uid"].as_str().unwrap();
    let p = wait_for(&cluster, "rooted", "config error", |p| {
        container_status(p).pointer("/state/waiting/reason")
            == Some(&json!("CreateContainerConfigError"))
    })
    .await;
    assert_eq!(
        container_status(&p)["state"]["waiting"]["message"],
        format!(
            "container has runAsNonRoot and image will run as root (pod: \"rooted_default({uid})\", container: c)"
        )
    );
    kubelet::shutdown(&cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_restart_with_back_off_and_keep_previous_logs() {
    let (cluster, image) = start().await;
    create_pod(
        &cluster,
        "crasher",
        json!({ "containers": [{ "name": "c", "image": image, "command": ["sh", "-c", "echo crashing; exit 3"] }] }),
    );
    let p = wait_for(&cluster, "crasher", "CrashLoopBackOff", |p| {
        container_status(p).pointer("/state/waiting/reason") == Some(&json!("CrashLoopBackOff"))
            && container_status(p)["restartCount"].as_i64() >= Some(2)
    })
    .await;
    let last = &container_status(&p)["lastState"]["terminated"];
    assert_eq!(last["exitCode"], 3);
    assert_eq!(last["reason"], "Error");
    assert_eq!(
        read_all(
            &cluster,
            "crasher",
            LogOptions {
                previous: true,
                ..Default::default()
            }
        )
        .await,
        "crashing\n"
    );
    assert!(
        events(&cluster, "crasher")
            .iter()
            .any(|e| e.0 == "Warning" && e.1 == "BackOff")
    );
    kubelet::shutdown(&cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exceeding_the_memory_limit_is_oom_killed() {
    let (cluster, image) = start().await;
    let hog = "x=aaaaaaaaaaaaaaaa; while :; do x=$x$x; done";
    create_pod(
        &cluster,
        "hog",
        json!({
            "restartPolicy": "Never",
            "containers": [{ "name": "c", "image": image, "command": ["sh", "-c", hog], "resources": { "limits": { "memory": "10Mi" } } }],
        }),
    );
    let p = wait_for(&cluster, "hog", "Failed", |p| {
        p["status"]["phase"] == "Failed"
    })
    .await;
    let t = &container_status(&p)["state"]["terminated"];
    assert_eq!(t["reason"], "OOMKilled");
    assert_eq!(t["exitCode"], 137);
    kubelet::shutdown(&cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_liveness_probes_restart_the_container() {
    let (cluster, image) = start().await;
    create_pod(
        &cluster,
        "sick",
        json!({ "containers": [{
            "name": "c", "image": image, "command": ["sleep", "1000"],
            "livenessProbe": { "tcpSocket": { "port": 8081 }, "periodSeconds": 1, "failureThreshold": 2 },
        }] }),
    );
    let p = wait_for(&cluster, "sick", "a restart", |p| {
        container_status(p)["restartCount"].as_i64() >= Some(1)
    })
    .await;
    let ip = p["status"]["podIP"].as_str().unwrap();
    let ev = events(&cluster, "sick");
    let refused = format!("Liveness probe failed: dial tcp {ip}:8081: connect: connection refused");
    assert!(
        ev.iter()
            .any(|e| e.0 == "Warning" && e.1 == "Unhealthy" && e.2 == refused),
        "{ev:?}"
    );
    assert!(
        ev.iter()
            .any(|e| e.1 == "Killing"
                && e.2 == "Container c failed liveness probe, will be restarted"),
        "{ev:?}"
    );
    let instance = cluster.instance.clone();
    kubelet::shutdown(&cluster).await;
    assert_eq!(
        containers_labelled(&format!("kube-emulator.instance={instance}")).await,
        0
    );
}

/// Debian's `docker-registry` on a free loopback port, stopped on drop.
struct LoopbackRegistry {
    address: String,
    child: std::process::Child,
    _data: tempfile::TempDir,
}

impl LoopbackRegistry {
    fn start() -> LoopbackRegistry {
        let data = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = data.path().join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                data.path().join("store").display()
            ),
        )
        .unwrap();
        let child = std::process::Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("docker-registry runs (`apt-get install -y docker-registry`)");
        let started = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(started, "docker-registry did not start");
        LoopbackRegistry {
            address: format!("127.0.0.1:{port}"),
            child,
            _data: data,
        }
    }
}

impl Drop for LoopbackRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn docker_cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs")
}

/// An image the node lacks is pulled from the registry on loopback the pod
/// names, as a node pulls it; one the registry does not hold fails with the
/// engine's own error (ErrImagePull, then ImagePullBackOff); and what the
/// node pulled leaves the engine when the emulator stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_are_pulled_from_a_registry_on_loopback() {
    let (cluster, image) = start().await;
    let registry = LoopbackRegistry::start();
    let pushed = format!("{}/kubelet-pull:1", registry.address);
    for args in [
        &["tag", &image, &pushed][..],
        &["push", &pushed],
        &["rmi", &pushed],
    ] {
        let out = docker_cli(args);
        assert!(out.status.success(), "docker {args:?}: {out:?}");
    }
    create_pod(
        &cluster,
        "pulled",
        json!({ "containers": [{ "name": "c", "image": pushed, "command": ["sleep", "1000"] }] }),
    );
    wait_for(&cluster, "pulled", "Running", |p| {
        p["status"]["phase"] == "Running"
    })
    .await;
    let ev = events(&cluster, "pulled");
    assert!(
        ev.iter().any(|e| e.1 == "Pulled"
            && e.2
                .starts_with(&format!("Successfully pulled image \"{pushed}\""))),
        "{ev:?}"
    );

    let missing = format!("{}/kubelet-pull:absent", registry.address);
    create_pod(
        &cluster,
        "missing",
        json!({ "containers": [{ "name": "c", "image": missing, "command": ["sleep", "1000"] }] }),
    );
    let p = wait_for(&cluster, "missing", "ErrImagePull", |p| {
        container_status(p).pointer("/state/waiting/reason") == Some(&json!("ErrImagePull"))
    })
    .await;
    let message = container_status(&p)["state"]["waiting"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("manifest unknown") || message.contains("not found"),
        "{message}"
    );
    wait_for(&cluster, "missing", "ImagePullBackOff", |p| {
        container_status(p).pointer("/state/waiting/reason") == Some(&json!("ImagePullBackOff"))
    })
    .await;

    kubelet::shutdown(&cluster).await;
    assert!(
        !docker_cli(&["image", "inspect", &pushed]).status.success(),
        "the pulled image is removed with the emulator"
    );
}
