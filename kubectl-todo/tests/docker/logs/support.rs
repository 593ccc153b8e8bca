//! What the `kubectl todo logs` tests share: an emulator with the project's
//! namespace, Deployments labelled as kubectl-todo labels them, and the real
//! binary pointed at it.

#![allow(dead_code)] // each test file uses its own part

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube_emulator::{Cluster, Config, Emulator, NodeConfig, Runtime};
use serde_json::{Value, json};
use tempfile::TempDir;

pub use crate::harness::Run;
use crate::harness::Running;

pub const NAMESPACE: &str = "todo";
/// The scripted runtime only needs the image to be on the node by name.
pub const IMAGE: &str = "logs-test:1";

pub struct Env {
    pub emulator: Emulator,
    pub client: kube::Client,
    dir: TempDir,
}

impl Env {
    /// The scripted runtime, with a short restart back-off so restarts happen within a test.
    pub async fn scripted() -> Env {
        let mut cluster = Cluster::new(NodeConfig::default(), Runtime::Scripted);
        Arc::get_mut(&mut cluster)
            .expect("not shared yet")
            .backoff_ms = (200, 1000);
        let emulator = Emulator::start_with(cluster, 0, &[IMAGE.to_string()], false)
            .await
            .expect("emulator starts");
        Env::with(emulator).await
    }

    pub async fn docker(image: &str) -> Env {
        let config = Config {
            preload: vec![image.to_string()],
            ..Config::docker()
        };
        Env::with(Emulator::start(config).await.expect("emulator starts")).await
    }

    async fn with(emulator: Emulator) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        emulator
            .write_kubeconfig(&dir.path().join("kubeconfig"))
            .expect("kubeconfig");
        let client = emulator.client().await.expect("client");
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": NAMESPACE}})).unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("namespace created");
        Env {
            emulator,
            client,
            dir,
        }
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// `kubectl todo logs ARGS` against this emulator, for the default project.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-todo"));
        cmd.arg("--kubeconfig")
            .arg(self.kubeconfig())
            .arg("--project")
            .arg(self.dir.path())
            .arg("logs")
            .args(args)
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    pub async fn run(&self, args: &[&str]) -> Run {
        let out = self
            .command(args)
            .output()
            .await
            .expect("kubectl-todo runs");
        Run::from(out)
    }

    /// Starts `kubectl todo logs ARGS` in the background, collecting its lines.
    pub fn spawn(&self, args: &[&str]) -> Follower {
        Follower {
            run: Running::start(self.command(args)),
        }
    }

    pub fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), NAMESPACE)
    }

    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), NAMESPACE)
    }

    /// A Deployment for `component` of project `todo`, labelled so that
    /// `labels::component_selector` finds its pods.
    pub async fn deploy(&self, component: &str, replicas: i32, template: Value) {
        let labels = kubectl_todo::labels::component("todo", component);
        let mut template = template;
        template["metadata"]["labels"] = json!(labels);
        let deployment = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": component, "labels": labels},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": template,
            },
        });
        self.deployments()
            .create(
                &PostParams::default(),
                &serde_json::from_value(deployment).unwrap(),
            )
            .await
            .expect("deployment created");
    }

    /// Changes a pod-template annotation, which rolls the Deployment out.
    pub async fn roll(&self, component: &str, annotations: Value) {
        let patch = json!({"spec": {"template": {"metadata": {"annotations": annotations}}}});
        self.deployments()
            .patch(component, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("deployment patched");
    }

    /// Waits until `count` pods of the component run, not counting terminating ones.
    pub async fn wait_running(&self, component: &str, count: usize) -> Vec<Pod> {
        let selector = kubectl_todo::labels::component_selector("todo", component);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let pods = self
                .pods()
                .list(&ListParams::default().labels(&selector))
                .await
                .expect("pods listed")
                .items;
            let running: Vec<Pod> = pods
                .into_iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .collect();
            if running.len() == count {
                return running;
            }
            assert!(
                Instant::now() < deadline,
                "{count} running pods of {component} never appeared"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A pod template for the scripted runtime: every container prints
/// `line 1` … `line N`, one every `interval_ms`, then keeps running (or
/// exits with `exit_code`).
pub fn scripted(
    lines: u32,
    interval_ms: u32,
    containers: &[&str],
    exit_code: Option<i32>,
) -> Value {
    let mut annotations = BTreeMap::from([
        ("kube-emulator.dev/log-lines".to_string(), lines.to_string()),
        (
            "kube-emulator.dev/log-interval-ms".to_string(),
            interval_ms.to_string(),
        ),
    ]);
    if let Some(code) = exit_code {
        annotations.insert("kube-emulator.dev/exit-code".into(), code.to_string());
    }
    let containers: Vec<Value> = containers
        .iter()
        .map(|c| json!({"name": c, "image": IMAGE}))
        .collect();
    json!({
        "metadata": {"annotations": annotations},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": containers},
    })
}

pub struct Follower {
    run: Running,
}

impl Follower {
    /// Its stdout lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.run.stdout().lines().map(String::from).collect()
    }

    /// Its stderr lines so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.run.stderr().lines().map(String::from).collect()
    }

    /// Waits until the lines so far satisfy `done`, failing with them after `secs`.
    pub async fn wait_for(&self, what: &str, secs: u64, done: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !done(&self.lines()) {
            assert!(
                Instant::now() < deadline,
                "{what} never happened; {} lines so far, stderr:\n{}",
                self.lines().len(),
                self.run.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends `signal` and returns how the run ended.
    pub async fn stop(self, signal: libc::c_int) -> Run {
        self.run.signal(signal);
        self.run.finish_within(Duration::from_secs(10)).await
    }

    /// Ctrl-C, as a terminal sends it.
    pub async fn interrupt(self) -> Run {
        self.stop(libc::SIGINT).await
    }
}

/// A JSON line of `-o json`: (pod, container, message).
pub fn parse_json(line: &str) -> (String, String, String) {
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    let s = |k: &str| {
        v[k].as_str()
            .unwrap_or_else(|| panic!("{k} in {line}"))
            .to_string()
    };
    (s("pod"), s("container"), s("message"))
}

/// Per pod and container, the numbers of `line N` messages in the order they arrived.
pub fn numbers_by_stream(lines: &[String]) -> BTreeMap<(String, String), Vec<u32>> {
    let mut by: BTreeMap<(String, String), Vec<u32>> = BTreeMap::new();
    for line in lines {
        let (pod, container, message) = parse_json(line);
        let n = message
            .strip_prefix("line ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected message {message:?}"));
        by.entry((pod, container)).or_default().push(n);
    }
    by
}

/// `1..=n` exactly once each, in order: nothing lost, nothing repeated.
#[track_caller]
pub fn assert_complete(what: &str, numbers: &[u32], n: u32) {
    let expected: Vec<u32> = (1..=n).collect();
    if numbers != expected {
        let dupes = numbers.len() as i64
            - numbers
                .iter()
                .collect::<std::collections::HashSet<_>>()
                .len() as i64;
        panic!(
            "{what}: expected line 1..={n} once each in order; got {} lines ({dupes} repeated), first differences: {:?}",
            numbers.len(),
            numbers
                .iter()
                .zip(&expected)
                .enumerate()
                .filter(|(_, (a, b))| a != b)
                .take(5)
                .collect::<Vec<_>>()
        );
    }
}
