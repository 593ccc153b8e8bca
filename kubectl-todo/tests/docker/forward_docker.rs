//! The forwarder on real containers: the emulator's docker runtime runs a
//! busybox httpd as UID 1001 behind a Service, and requests go through
//! `forward::Forward` while the Deployment rolls, pods are deleted and
//! streams are dropped.

use crate::logs::logs_support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube_emulator::faults::Fault;
use kubectl_todo::forward::{Error, Event, Forward, Options, PortChoice, PortError, Target};
use kubectl_todo::report::Hinted as _;
use logs_support::{Env, NAMESPACE};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// httpd answering `/` with `version N` and `/health` with `ok`, ready once
/// `/health` answers.
fn template(image: &str, version: u32) -> Value {
    json!({
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "securityContext": {"runAsNonRoot": true, "runAsUser": 1001, "runAsGroup": 1001},
            "containers": [{
                "name": "web",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "env": [{"name": "VERSION", "value": version.to_string()}],
                "command": ["sh", "-c", "mkdir -p /tmp/www && echo ok > /tmp/www/health && echo \"version $VERSION\" > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"],
                "ports": [{"name": "http", "containerPort": 8080}],
                "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 1},
            }],
        },
    })
}

struct Setup {
    env: Env,
    image: String,
    forward: Forward,
    events: Arc<Mutex<Vec<Event>>>,
}

async fn setup() -> Setup {
    let image = kube_emulator::testimage::busybox_image("forward-tests")
        .await
        .expect("busybox test image");
    let env = Env::docker(&image).await;
    env.deploy("web", 1, template(&image, 1)).await;
    let service = json!({
        "metadata": {"name": "web"},
        "spec": {
            "selector": kubectl_todo::labels::component("todo", "web"),
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    });
    Api::<Service>::namespaced(env.client.clone(), NAMESPACE)
        .create(
            &PostParams::default(),
            &serde_json::from_value(service).unwrap(),
        )
        .await
        .expect("service created");
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let forward = Forward::start(
        env.client.clone(),
        target("web"),
        &choice(None),
        Options::default(),
        Arc::new(move |e| sink.lock().unwrap().push(e)),
    )
    .await
    .expect("forward starts");
    Setup {
        env,
        image,
        forward,
        events,
    }
}

fn target(service: &str) -> Target {
    Target {
        namespace: NAMESPACE.into(),
        service: service.into(),
        port: 80,
    }
}

fn choice(pinned: Option<u16>) -> PortChoice {
    PortChoice {
        address: "127.0.0.1".parse().unwrap(),
        pinned,
        // No own port: the one derived from the project and component.
        own: 0,
        project: format!("forward-tests-{}", std::process::id()),
        component: "web".into(),
    }
}

/// The status code and body of a response, or why there was none.
type Outcome = Result<(u16, String), String>;

/// One HTTP/1.0 request on a new connection.
async fn get(at: SocketAddr, path: &str) -> Outcome {
    let mut socket = TcpStream::connect(at).await.map_err(|e| e.to_string())?;
    socket
        .write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(40), socket.read_to_end(&mut response))
        .await
        .map_err(|_| "no answer within 40s".to_string())?
        .map_err(|e| e.to_string())?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("not an HTTP response: {response:?}"))?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    Ok((code, body.to_string()))
}

/// A client requesting `/` every 20 ms, recording every outcome.
struct Client {
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Client {
    fn start(at: SocketAddr) -> Client {
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let record = outcomes.clone();
        let task = tokio::spawn(async move {
            loop {
                let outcome = get(at, "/").await;
                record.lock().unwrap().push(outcome);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Client { outcomes, task }
    }

    fn failures(&self) -> Vec<String> {
        self.outcomes
            .lock()
            .unwrap()
            .iter()
            .filter_map(|o| match o {
                Ok((200, _)) => None,
                other => Some(format!("{other:?}")),
            })
            .collect()
    }

    async fn wait_for_body(&self, body: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let seen = self
                .outcomes
                .lock()
                .unwrap()
                .iter()
                .any(|o| matches!(o, Ok((200, b)) if b == body));
            if seen {
                return;
            }
            assert!(Instant::now() < deadline, "{what}: never answered {body:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn count(&self) -> usize {
        self.outcomes.lock().unwrap().len()
    }
}

impl Setup {
    /// Waits until only `count` pods of web exist, all running: a rollout
    /// or a replacement has finished.
    async fn wait_settled(&self) {
        let selector = kubectl_todo::labels::component_selector("todo", "web");
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let pods = self
                .env
                .pods()
                .list(&ListParams::default().labels(&selector))
                .await
                .expect("pods listed")
                .items;
            let running = pods
                .iter()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .count();
            if pods.len() == 1 && running == 1 && pods[0].metadata.deletion_timestamp.is_none() {
                return;
            }
            assert!(Instant::now() < deadline, "web never settled on one pod");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn events(&self) -> String {
        let events = self.events.lock().unwrap();
        events.iter().map(|e| format!("{e}\n")).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_every_20ms_see_no_failure_through_rollouts_and_a_deleted_pod() {
    let s = setup().await;
    let at = s.forward.local;
    assert!(
        kubectl_todo::forward::port::DERIVED_RANGE.contains(&at.port()),
        "{at}"
    );
    let client = Client::start(at);
    client.wait_for_body("version 1\n", "the first pod").await;
    s.wait_settled().await;

    for version in 2..=4 {
        let patch = json!({"spec": {"template": template(&s.image, version)}});
        s.env
            .deployments()
            .patch("web", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("deployment patched");
        client
            .wait_for_body(&format!("version {version}\n"), "after the rollout")
            .await;
        s.wait_settled().await;
    }

    let selector = kubectl_todo::labels::component_selector("todo", "web");
    let pods = s
        .env
        .pods()
        .list(&ListParams::default().labels(&selector))
        .await
        .unwrap()
        .items;
    let before = client.count();
    s.env
        .pods()
        .delete(
            pods[0].metadata.name.as_deref().unwrap(),
            &Default::default(),
        )
        .await
        .expect("pod deleted");
    s.wait_settled().await;
    let settled = client.count();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        client.count() > settled,
        "requests go on after the replacement"
    );

    client.task.abort();
    let failures = client.failures();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed:\n{}\nforward events:\n{}",
        failures.len(),
        client.count(),
        failures.join("\n"),
        s.events()
    );
    assert!(
        client.count() > before,
        "requests went on during the deletion"
    );
    eprintln!(
        "{} requests, 0 failed; forward events:\n{}",
        client.count(),
        s.events()
    );
    s.env.emulator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dropped_stream_ends_its_connection_and_the_next_one_works() {
    let s = setup().await;
    let at = s.forward.local;
    assert_eq!(get(at, "/").await, Ok((200, "version 1\n".into())));

    s.env.emulator.faults().add(Fault {
        path: Some("/portforward".into()),
        close_after_ms: Some(500),
        times: Some(1),
        ..Fault::default()
    });
    let started = Instant::now();
    let mut idle = TcpStream::connect(at).await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), idle.read_to_end(&mut got))
        .await
        .expect("the drop ends the local connection")
        .unwrap();
    assert!(
        got.is_empty() && started.elapsed() >= Duration::from_millis(500),
        "{got:?} after {:?}",
        started.elapsed()
    );

    assert_eq!(get(at, "/").await, Ok((200, "version 1\n".into())));
    assert_eq!(get(at, "/health").await, Ok((200, "ok\n".into())));
    s.env.emulator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pinned_taken_port_and_a_missing_service_are_clear_errors() {
    let s = setup().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let quiet: kubectl_todo::forward::Sink = Arc::new(|_| {});

    let err = Forward::start(
        s.env.client.clone(),
        target("web"),
        &choice(Some(port)),
        Options::default(),
        quiet.clone(),
    )
    .await
    .err()
    .expect("a taken pinned port fails");
    let Error::Port(PortError::PinnedTaken {
        holder: Some(holder),
        ..
    }) = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(holder.pid, std::process::id());
    assert_eq!(
        err.to_string(),
        format!("local port {port} on 127.0.0.1 (devPort of web) is taken by {holder}")
    );

    let err = Forward::start(
        s.env.client.clone(),
        target("api"),
        &choice(None),
        Options::default(),
        quiet,
    )
    .await
    .err()
    .expect("a missing service fails");
    assert_eq!(
        (err.to_string(), err.hint()),
        (
            format!("cannot read service api in namespace {NAMESPACE}"),
            Some(
                "deploy it first (kubectl todo up), or check: kubectl get service api".to_string()
            )
        )
    );
    s.env.emulator.stop().await;
}
