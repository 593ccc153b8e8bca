//! doctor when the environment or the cluster is broken: unreachable API,
//! expired credentials, a missing Docker socket, forbidden and slow requests.
//! It must say so clearly, and never call a check it could not run healthy.

use super::doctor_support;

use doctor_support::{NS, finding, findings, start};
use kube_emulator::Config;
use kube_emulator::faults::{Denial, Fault};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unreachable_api_server_says_start_the_cluster() {
    let s = start(Config::default()).await;
    // A port nothing listens on: bind one, then let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = std::fs::read_to_string(&s.kubeconfig).unwrap();
    std::fs::write(
        &s.kubeconfig,
        text.replace(&s.emu.url(), &format!("http://127.0.0.1:{port}")),
    )
    .unwrap();
    let run = s.doctor(&["-o", "json"]).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let doc = run.json();
    let api = finding(&doc, "cluster.api").expect("cluster.api");
    assert_eq!(api["status"], "fail");
    assert!(
        api["message"]
            .as_str()
            .unwrap()
            .contains(&format!("127.0.0.1:{port}")),
        "{api}"
    );
    assert!(
        api["hint"].as_str().unwrap().contains("minikube start"),
        "{api}"
    );
    let app = finding(&doc, "app.unchecked").expect("app.unchecked");
    assert_eq!(app["status"], "unknown");
    assert!(finding(&doc, "app.namespace").is_none());
    assert_eq!(
        finding(&doc, "env.version-skew").unwrap()["status"],
        "unknown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_api_server_is_a_timeout_not_a_pass() {
    let s = start(Config::default()).await;
    s.emu.faults().add(Fault {
        path: Some("/version".into()),
        latency_ms: Some(3000),
        ..Fault::default()
    });
    let run = s
        .doctor(&["-o", "json", "--only", "cluster", "--timeout", "500ms"])
        .await;
    assert_eq!(run.code, Some(1));
    let api = run.json();
    let api = finding(&api, "cluster.api").unwrap();
    assert_eq!(api["status"], "fail");
    assert!(
        api["message"]
            .as_str()
            .unwrap()
            .contains("did not answer within 500ms"),
        "{api}"
    );
    assert!(api["hint"].as_str().unwrap().contains("minikube start"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expired_credentials_are_named_as_such() {
    let s = start(Config::default()).await;
    s.emu.faults().add(Fault {
        code: Some(401),
        message: Some("Unauthorized".into()),
        ..Fault::default()
    });
    s.rename_context("minikube");
    s.stand_in("minikube", "v1.36.0");
    let run = s.doctor(&["-o", "json"]).await;
    assert_eq!(run.code, Some(1));
    let doc = run.json();
    let cred = finding(&doc, "cluster.credentials").expect("cluster.credentials");
    assert_eq!(cred["status"], "fail");
    assert!(cred["message"].as_str().unwrap().contains("401"), "{cred}");
    assert_eq!(
        cred["hint"].as_str().unwrap(),
        format!(
            "refresh them: `minikube update-context`, then `kubectl get nodes --kubeconfig {}`",
            s.kubeconfig.display()
        )
    );
    assert_eq!(finding(&doc, "env.cluster-tool").unwrap()["status"], "ok");
    assert_eq!(finding(&doc, "cluster.context").unwrap()["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missing_docker_socket_fails_the_engine_and_leaves_images_unknown() {
    let s = start(Config::default()).await;
    let socket = s.dir.path().join("no-docker.sock");
    let host = format!("unix://{}", socket.display());
    let run = s
        .doctor_with(&["-o", "json"], &[("DOCKER_HOST", &host)])
        .await;
    assert_eq!(run.code, Some(1));
    let doc = run.json();
    let engine = finding(&doc, "env.docker-engine").expect("env.docker-engine");
    assert_eq!(engine["status"], "fail");
    let message = engine["message"].as_str().unwrap();
    assert!(
        message.contains(&host) && message.contains("no engine answers"),
        "{engine}"
    );
    assert!(
        engine["hint"]
            .as_str()
            .unwrap()
            .contains("systemctl start docker"),
        "{engine}"
    );
    for f in findings(&doc, "app.image-local") {
        assert_eq!(f["status"], "unknown", "{f}");
    }
    // The cluster side still ran.
    assert_eq!(finding(&doc, "cluster.api").unwrap()["status"], "ok");
}

/// A CA bundle needs BuildKit; with no engine to ask, doctor names the tag
/// `up` would build (BuildKit's) rather than failing the plan as if the
/// builder were the classic one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_a_ca_bundle_and_no_engine_the_images_are_the_buildkit_ones() {
    let s = start(Config::default()).await;
    std::fs::copy(
        "/etc/ssl/certs/ca-certificates.crt",
        s.project.join("proxy-ca.pem"),
    )
    .unwrap();
    std::fs::write(
        s.project.join("todo.yaml"),
        "name: todo\nbuild:\n  caCert: proxy-ca.pem\n",
    )
    .unwrap();
    let host = format!("unix://{}", s.dir.path().join("no-docker.sock").display());
    let run = s
        .doctor_with(&["-o", "json"], &[("DOCKER_HOST", &host)])
        .await;
    let doc = run.json();
    assert!(findings(&doc, "app.image-plan").is_empty(), "{doc}");
    for component in ["frontend", "backend"] {
        let image = s.current_image(component).await;
        let local = findings(&doc, "app.image-local")
            .into_iter()
            .find(|f| f["message"].as_str().unwrap().starts_with(component))
            .unwrap_or_else(|| panic!("no app.image-local for {component}: {doc}"));
        assert_eq!(local["status"], "unknown", "{local}");
        assert!(
            local["message"].as_str().unwrap().contains(&image),
            "{local} names {image}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forbidden_checks_are_reported_as_not_run_and_rbac_names_the_verbs() {
    let s = start(Config::default()).await;
    s.namespace().await;
    s.emu.faults().deny(Denial {
        verb: "list".into(),
        group: "".into(),
        resource: "pods".into(),
        namespace: Some(NS.into()),
    });
    s.emu.faults().deny(Denial {
        verb: "create".into(),
        group: "".into(),
        resource: "secrets".into(),
        namespace: Some(NS.into()),
    });
    s.deployment(
        "backend",
        "todo-backend:x",
        serde_json::json!({}),
        serde_json::json!({}),
    )
    .await;
    let run = s.doctor(&["-o", "json", "--component", "backend"]).await;
    assert_eq!(run.code, Some(1));
    let doc = run.json();
    let rbac = finding(&doc, "cluster.rbac").unwrap();
    assert_eq!(rbac["status"], "fail");
    assert!(
        rbac["message"]
            .as_str()
            .unwrap()
            .contains("create secrets, list pods"),
        "{rbac}"
    );
    assert!(
        rbac["hint"]
            .as_str()
            .unwrap()
            .contains("kubectl auth can-i create secrets -n todo"),
        "{rbac}"
    );
    let pods = finding(&doc, "app.pods").expect("app.pods");
    assert_eq!(pods["status"], "unknown", "{pods}");
    assert!(
        pods["message"].as_str().unwrap().contains("forbidden"),
        "{pods}"
    );
    assert!(
        pods["hint"]
            .as_str()
            .unwrap()
            .contains("kubectl auth can-i list pods -n todo")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn text_output_groups_marks_and_fixes_without_colour_off_a_terminal() {
    let s = start(Config::default()).await;
    let run = s.doctor(&["--only", "app"]).await;
    assert_eq!(run.code, Some(1));
    assert!(!run.stdout.contains('\x1b'), "{}", run.stdout);
    assert!(run.stdout.starts_with("App\n"), "{}", run.stdout);
    assert!(
        run.stdout.contains("  ✗ namespace todo does not exist"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!(
            "[app.namespace]\n      fix: deploy it: `kubectl todo up {}`",
            s.todo_flags()
        )),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("Environment") && !run.stdout.contains("Cluster"));
    assert!(
        run.stdout.contains("failed, 0 could not run"),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_component_means_doctor_could_not_run() {
    let s = start(Config::default()).await;
    let run = s.doctor(&["--component", "backnd"]).await;
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr
            .contains("error: the project has no component `backnd` (did you mean `backend`?)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("did you mean `backend`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("hint: pass one of: frontend, backend"),
        "{}",
        run.stderr
    );
}
