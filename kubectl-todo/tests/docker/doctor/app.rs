//! One test per diagnosis, each building the broken state for real on the
//! emulator (real containers where the kubelet must run them), and a healthy
//! app that passes.

use super::doctor_support;

use doctor_support::{Setup, finding, start};
use kube_emulator::{Config, NodeConfig};
use serde_json::{Value, json};

fn field<'a>(f: &'a Value, key: &str) -> &'a str {
    f[key].as_str().unwrap_or_default()
}

/// Namespace and the complete Secret, so that only the broken part fails.
async fn base(s: &Setup) {
    s.namespace().await;
    s.secret(&["DATABASE_URL", "BETTER_AUTH_SECRET", "OPENAI_API_KEY"])
        .await;
}

async fn busybox(s: &Setup) -> String {
    let image = kube_emulator::testimage::busybox_image("doctor-tests")
        .await
        .expect("busybox");
    s.load(&image).await;
    image
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn healthy_app_exits_zero() {
    let s = start(Config::default()).await;
    base(&s).await;
    // Stands in for the node's kube-proxy, which the emulator does not run.
    let listener = (30000..30100)
        .find_map(|p| std::net::TcpListener::bind(("127.0.0.1", p)).ok())
        .expect("a free NodePort");
    let node_port = listener.local_addr().unwrap().port();
    let mut images = Vec::new();
    for component in ["frontend", "backend"] {
        let image = s.current_image(component).await;
        s.provide_image(&image).await;
        images.push(image.clone());
        let port = if component == "frontend" { 3000 } else { 8000 };
        s.deployment(
            component,
            &image,
            json!({"ports": [{"name": "http", "containerPort": port}]}),
            json!({}),
        )
        .await;
        let svc = if component == "frontend" {
            json!({"type": "NodePort", "ports": [{"name": "http", "port": 3000, "targetPort": 3000, "nodePort": node_port}]})
        } else {
            json!({"ports": [{"name": "http", "port": 8000, "targetPort": 8000}]})
        };
        s.service(component, svc).await;
    }
    let (run, _) = s.wait_for("app.nodeport", &[]).await;
    let doc = run.json();
    let bad: Vec<&Value> = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["status"] != "ok" && !f["id"].as_str().unwrap().starts_with("env."))
        .collect();
    assert!(bad.is_empty(), "not healthy: {bad:#?}");
    assert_eq!(finding(&doc, "app.pods").unwrap()["status"], "ok");
    assert_eq!(finding(&doc, "app.image-node").unwrap()["status"], "ok");
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    let run = s.doctor(&["--only", "app"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    drop(listener);
    s.remove_images(&images).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn never_loaded_image_says_load_it_into_minikube() {
    let s = start(Config::default()).await;
    base(&s).await;
    s.rename_context("minikube");
    s.stand_in("minikube", "v1.36.0");
    s.deployment(
        "backend",
        "todo-backend:0123456789abcdef",
        json!({}),
        json!({}),
    )
    .await;
    let (run, f) = s
        .wait_for("pod.image-not-loaded", &["--component", "backend"])
        .await;
    assert_eq!(run.code, Some(1));
    assert_eq!(f["status"], "fail");
    assert_eq!(f["component"], "backend");
    assert!(
        field(&f, "message").contains("todo-backend:0123456789abcdef is not on the node"),
        "{f}"
    );
    assert_eq!(
        field(&f, "hint"),
        "load it into the node: `minikube image load todo-backend:0123456789abcdef`"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pull_policy_always_on_a_local_image_is_named() {
    let s = start(Config::default()).await;
    base(&s).await;
    let image = busybox(&s).await;
    s.deployment(
        "backend",
        &image,
        json!({"imagePullPolicy": "Always"}),
        json!({}),
    )
    .await;
    let (_, f) = s
        .wait_for("pod.image-pull-always", &["--component", "backend"])
        .await;
    assert!(
        field(&f, "hint").contains("\"value\":\"IfNotPresent\""),
        "{f}"
    );
    assert!(
        field(&f, "hint").contains("kubectl -n todo patch deployment todo-backend"),
        "{f}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn container_that_exits_1_shows_the_code_and_its_last_log_lines() {
    let s = start(Config::docker()).await;
    base(&s).await;
    let image = busybox(&s).await;
    let script =
        "echo starting; echo \"fatal: cannot reach the database at $DATABASE_URL\"; exit 1";
    s.deployment(
        "backend",
        &image,
        json!({"command": ["sh", "-c", script], "env": [{"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "todo-secrets", "key": "DATABASE_URL"}}}]}),
        json!({}),
    )
    .await;
    let (_, f) = s
        .wait_for("pod.crash-loop", &["--component", "backend"])
        .await;
    let message = field(&f, "message");
    assert!(message.contains("exiting with code 1"), "{f}");
    assert!(
        message.contains("fatal: cannot reach the database at [redacted]"),
        "{f}"
    );
    assert!(
        !message.contains("value-of-DATABASE_URL"),
        "a secret value leaked: {f}"
    );
    assert_eq!(
        field(&f, "hint"),
        format!(
            "read the previous run's log: `kubectl todo logs backend --previous {}`",
            s.todo_flags()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn container_over_its_memory_limit_is_oom_killed_with_the_limit_to_raise() {
    let s = start(Config::docker()).await;
    base(&s).await;
    let image = busybox(&s).await;
    let hog = "x=aaaaaaaaaaaaaaaa; while :; do x=$x$x; done";
    s.deployment(
        "backend",
        &image,
        json!({"command": ["sh", "-c", hog], "resources": {"limits": {"memory": "16Mi"}}}),
        json!({}),
    )
    .await;
    let (_, f) = s
        .wait_for("pod.oom-killed", &["--component", "backend"])
        .await;
    assert!(field(&f, "message").contains("memory limit 16Mi"), "{f}");
    assert!(
        field(&f, "hint").contains(
            "kubectl -n todo set resources deployment/todo-backend -c backend --limits=memory=32Mi"
        ),
        "{f}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missing_secret_key_names_the_key_and_the_command_that_sets_it() {
    let s = start(Config::default()).await;
    s.namespace().await;
    s.secret(&["DATABASE_URL", "BETTER_AUTH_SECRET"]).await;
    let image = busybox(&s).await;
    s.deployment(
        "backend",
        &image,
        json!({"env": [{"name": "OPENAI_API_KEY", "valueFrom": {"secretKeyRef": {"name": "todo-secrets", "key": "OPENAI_API_KEY"}}}]}),
        json!({}),
    )
    .await;
    let (run, f) = s
        .wait_for("pod.config-missing", &["--component", "backend"])
        .await;
    assert!(
        field(&f, "message").contains("key OPENAI_API_KEY is missing from secret todo-secrets"),
        "{f}"
    );
    assert_eq!(
        field(&f, "hint"),
        format!(
            "`kubectl todo secrets set OPENAI_API_KEY {}`",
            s.todo_flags()
        )
    );
    let secret = finding(&run.json(), "app.secret").cloned().unwrap();
    assert_eq!(secret["status"], "fail");
    assert_eq!(
        field(&secret, "message"),
        "secret/todo-secrets: missing OPENAI_API_KEY"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn image_running_as_root_under_run_as_non_root() {
    let s = start(Config::docker()).await;
    base(&s).await;
    let image = busybox(&s).await;
    s.deployment(
        "backend",
        &image,
        json!({"command": ["sleep", "1000"], "securityContext": {"runAsNonRoot": true}}),
        json!({}),
    )
    .await;
    let (_, f) = s
        .wait_for("pod.run-as-root", &["--component", "backend"])
        .await;
    assert!(field(&f, "message").contains("image runs as root"), "{f}");
    assert!(field(&f, "hint").contains("\"runAsUser\":1001"), "{f}");
    assert!(field(&f, "hint").contains("USER 1001:1001"), "{f}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_above_the_node_capacity_name_the_short_resource() {
    let s = start(Config {
        node: NodeConfig {
            memory_bytes: 2 << 30,
            ..NodeConfig::default()
        },
        ..Config::default()
    })
    .await;
    base(&s).await;
    let image = busybox(&s).await;
    s.deployment(
        "backend",
        &image,
        json!({"resources": {"requests": {"memory": "4Gi"}}}),
        json!({}),
    )
    .await;
    let (_, f) = s
        .wait_for("pod.unschedulable", &["--component", "backend"])
        .await;
    let message = field(&f, "message");
    assert!(message.contains("not enough memory"), "{f}");
    assert!(
        message.contains("memory: requests 4Gi, the node allocates 2Gi"),
        "{f}"
    );
    assert!(
        field(&f, "hint").contains("minikube delete && minikube start --memory"),
        "{f}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn service_selector_mismatch_gives_the_patch_that_fixes_it() {
    let s = start(Config::default()).await;
    base(&s).await;
    let image = busybox(&s).await;
    s.deployment(
        "backend",
        &image,
        json!({"ports": [{"containerPort": 8000}]}),
        json!({}),
    )
    .await;
    s.service(
        "backend",
        json!({"selector": {"app.kubernetes.io/component": "api"}}),
    )
    .await;
    let (_, f) = s
        .wait_for("service.selector-mismatch", &["--component", "backend"])
        .await;
    assert!(
        field(&f, "message").contains(
            "selector app.kubernetes.io/component=api,app.kubernetes.io/instance=todo matches none"
        ),
        "{f}"
    );
    assert_eq!(
        field(&f, "hint"),
        format!(
            "`kubectl -n todo patch service todo-backend --type=merge -p '{{\"spec\":{{\"selector\":{{\"app.kubernetes.io/component\":\"backend\",\"app.kubernetes.io/instance\":\"todo\"}}}}}}' --kubeconfig {}`",
            s.kubeconfig.display()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failing_readiness_probe_names_path_port_and_last_result() {
    let s = start(Config::docker()).await;
    base(&s).await;
    let image = busybox(&s).await;
    let serve =
        "mkdir -p /tmp/www && echo ok > /tmp/www/health && exec httpd -f -p 8000 -h /tmp/www";
    s.deployment(
        "backend",
        &image,
        json!({
            "command": ["sh", "-c", serve],
            "securityContext": {"runAsUser": 1001},
            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8000}, "periodSeconds": 1},
        }),
        json!({}),
    )
    .await;
    let (_, f) = s
        .wait_for("pod.probe-failing", &["--component", "backend"])
        .await;
    let message = field(&f, "message");
    assert!(
        message.contains("readiness probe GET :8000/ready fails"),
        "{f}"
    );
    assert!(message.contains("statuscode: 404"), "{f}");
    assert!(
        field(&f, "hint").contains("kubectl todo logs backend"),
        "{f}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dockerfile_that_runs_as_root_fails_with_both_ways_out() {
    let s = start(Config::default()).await;
    base(&s).await;
    std::fs::write(
        s.project.join("backend/Dockerfile"),
        "FROM python:3.11-slim\nWORKDIR /app\nCOPY . .\nCMD [\"uvicorn\", \"main:app\", \"--host\", \"0.0.0.0\"]\n",
    )
    .unwrap();
    let run = s.doctor(&["-o", "json", "--component", "backend"]).await;
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    let doc = run.json();
    let f = finding(&doc, "app.image-plan").expect("an app.image-plan finding");
    assert_eq!(f["status"], "fail", "{f}");
    assert_eq!(f["component"], "backend");
    assert!(
        field(f, "message").contains("Dockerfile") && field(f, "message").contains("run as root"),
        "{f}"
    );
    assert!(
        field(f, "hint").contains("`USER 1001:1001`")
            && field(f, "hint").contains("`stack: python`"),
        "{f}"
    );
    assert!(finding(&doc, "app.image-local").is_none(), "{doc:#}");
}
