//! What the `kubectl todo secrets` tests share: an emulator with the
//! default project's namespace, the real binary pointed at it, and the
//! canary checks that prove a value went nowhere but the Secret's data.

#![allow(dead_code)] // each test file uses its own part

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine as _;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, ListParams, PostParams};
use kube_emulator::{Config, Emulator};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::AsyncWriteExt as _;

pub use crate::harness::Run;
use crate::harness::Running;

pub const NAMESPACE: &str = "todo";
pub const SECRET: &str = "todo-secrets";

pub struct Env {
    pub emulator: Emulator,
    pub client: kube::Client,
    dir: TempDir,
}

impl Env {
    /// An emulator with the `todo` namespace.
    pub async fn start() -> Env {
        let env = Env::without_namespace().await;
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": NAMESPACE}})).unwrap();
        Api::<Namespace>::all(env.client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("namespace created");
        env
    }

    pub async fn without_namespace() -> Env {
        let emulator = Emulator::start(Config::default())
            .await
            .expect("emulator starts");
        let dir = tempfile::tempdir().expect("tempdir");
        emulator
            .write_kubeconfig(&dir.path().join("kubeconfig"))
            .expect("kubeconfig");
        let client = emulator.client().await.expect("client");
        Env {
            emulator,
            client,
            dir,
        }
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// The project root: without a todo.yaml the default keys apply.
    pub fn project(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file in the scratch directory and returns its path.
    pub fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("write file");
        path
    }

    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-todo"));
        cmd.arg("--kubeconfig")
            .arg(self.kubeconfig())
            .arg("--project")
            .arg(self.project())
            .arg("secrets")
            .args(args)
            .env_remove("KUBECONFIG")
            .kill_on_drop(true);
        cmd
    }

    /// `kubectl todo secrets ARGS` with stdin closed (not a terminal).
    pub async fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, b"").await
    }

    pub async fn run_with_stdin(&self, args: &[&str], stdin: &[u8]) -> Run {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::piped());
        let mut child = Running::start(cmd);
        let mut pipe = child.stdin().expect("stdin");
        pipe.write_all(stdin).await.expect("write stdin");
        drop(pipe);
        child.finish_within(Duration::from_secs(60)).await
    }

    pub async fn secret(&self) -> Option<Secret> {
        Api::<Secret>::namespaced(self.client.clone(), NAMESPACE)
            .get_opt(SECRET)
            .await
            .expect("get secret")
    }

    /// The Secret's data as text.
    pub async fn data(&self) -> BTreeMap<String, String> {
        self.secret()
            .await
            .expect("the Secret exists")
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8(v.0).expect("utf-8")))
            .collect()
    }

    /// A Deployment of `replicas` pods; `uses` says how its pod reads the Secret.
    pub async fn deployment(&self, name: &str, uses: Uses) {
        let container = match uses {
            Uses::EnvFrom => {
                json!({"name": "app", "image": "app:1", "envFrom": [{"secretRef": {"name": SECRET}}]})
            }
            Uses::KeyRef => {
                json!({"name": "app", "image": "app:1", "env": [{"name": "DATABASE_URL",
                "valueFrom": {"secretKeyRef": {"name": SECRET, "key": "DATABASE_URL"}}}]})
            }
            Uses::Nothing => json!({"name": "app", "image": "app:1"}),
        };
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}}
            }
        }))
        .unwrap();
        Api::<Deployment>::namespaced(self.client.clone(), NAMESPACE)
            .create(&PostParams::default(), &d)
            .await
            .expect("deployment created");
    }

    /// The checksum annotation on a Deployment's pod template.
    pub async fn checksum_of(&self, name: &str) -> Option<String> {
        let d = Api::<Deployment>::namespaced(self.client.clone(), NAMESPACE)
            .get(name)
            .await
            .expect("deployment");
        d.spec?
            .template
            .metadata?
            .annotations?
            .get("kubectl-todo/secret-checksum")
            .cloned()
    }

    /// Waits until a Deployment's controller has made `n` ReplicaSets.
    pub async fn wait_for_replica_sets(&self, name: &str, n: usize) -> Vec<ReplicaSet> {
        let api = Api::<ReplicaSet>::namespaced(self.client.clone(), NAMESPACE);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let sets: Vec<ReplicaSet> = api
                .list(&ListParams::default().labels(&format!("app={name}")))
                .await
                .expect("list replica sets")
                .items;
            if sets.len() >= n || Instant::now() > deadline {
                return sets;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Asserts that no stored object but the Secret's data holds a canary,
    /// raw or base64-encoded: not managedFields, annotations, Events, ReplicaSets…
    pub fn assert_only_in_secret_data(&self, canaries: &[&str]) {
        let store = &self.emulator.cluster().store;
        for def in kube_emulator::resources::RESOURCES {
            if def.create_only {
                continue;
            }
            for mut obj in store.all(def, None) {
                let name = obj
                    .pointer("/metadata/name")
                    .cloned()
                    .unwrap_or(Value::Null);
                if def.kind == "Secret"
                    && let Some(m) = obj.as_object_mut()
                {
                    m.remove("data");
                    m.remove("stringData");
                }
                let text = obj.to_string();
                for canary in canaries {
                    for form in forms(canary) {
                        assert!(
                            !text.contains(&form),
                            "a canary is stored in {} {name}: {text}",
                            def.kind
                        );
                    }
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Uses {
    EnvFrom,
    KeyRef,
    Nothing,
}

/// The forms a value takes on the wire and at rest.
pub fn forms(canary: &str) -> Vec<String> {
    vec![
        canary.to_string(),
        base64::engine::general_purpose::STANDARD.encode(canary),
    ]
}

/// Asserts that no canary appears in some captured output.
#[track_caller]
pub fn assert_no_canary(output: &str, canaries: &[&str]) {
    for canary in canaries {
        for form in forms(canary) {
            assert!(
                !output.contains(&form),
                "a canary leaked into the output:\n{output}"
            );
        }
    }
}
