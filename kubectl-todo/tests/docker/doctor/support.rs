//! Shared set-up for the doctor tests: an in-process emulator, a project
//! directory with real sources (so image-builder can plan the content-hash
//! tags), the app's objects built directly, and the real binary.

#![allow(dead_code)] // each test binary uses part of it

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use image_builder::build::Engine;
use image_builder::plan::PlanOptions;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use kube::Api;
use kube::api::PostParams;
use kube_emulator::{Config, Emulator};
use kubectl_todo::labels;
use kubectl_todo::project::Project;
use serde_json::{Value, json};

pub use crate::harness::Run;

pub const NS: &str = "todo";

pub struct Setup {
    pub emu: Emulator,
    pub client: kube::Client,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub project: PathBuf,
    /// Put first on PATH (stand-in executables).
    pub bin: PathBuf,
}

pub async fn start(config: Config) -> Setup {
    let emu = Emulator::start(config).await.expect("emulator starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    emu.write_kubeconfig(&kubeconfig)
        .expect("kubeconfig written");
    let project = dir.path().join("app");
    write_sources(&project);
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let client = emu.client().await.expect("client");
    Setup {
        emu,
        client,
        dir,
        kubeconfig,
        project,
        bin,
    }
}

/// The default layout: a Next.js frontend and a FastAPI backend.
fn write_sources(root: &Path) {
    let files = [
        (
            "frontend/package.json",
            r#"{"name":"web","dependencies":{"next":"15.0.0"},"scripts":{"build":"next build"}}"#,
        ),
        (
            "frontend/next.config.js",
            "module.exports = { output: 'standalone' };\n",
        ),
        (
            "frontend/app/page.js",
            "export default function Page() { return 'todo'; }\n",
        ),
        ("backend/requirements.txt", "fastapi\nuvicorn\n"),
        (
            "backend/main.py",
            // The original app's three keys, each required: the project's Secret is read from the code.
            "import os\nfrom fastapi import FastAPI\napp = FastAPI()\nDATABASE_URL = os.environ[\"DATABASE_URL\"]\nAUTH = os.environ[\"BETTER_AUTH_SECRET\"]\nOPENAI = os.environ[\"OPENAI_API_KEY\"]\n",
        ),
    ];
    for (path, text) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

impl Setup {
    pub fn project(&self) -> Project {
        Project::load(&self.project).expect("project loads")
    }

    /// The image `up` would deploy for `component` now.
    pub async fn current_image(&self, component: &str) -> String {
        let project = self.project();
        let c = project.component(component).expect("component");
        let builder = Engine::connect().await.ok().map(|e| e.builder);
        let options = PlanOptions {
            builder,
            use_cache: false,
            ..PlanOptions::default()
        };
        image_builder::plan::plan(&c.build_spec(&project), &options)
            .expect("plan")
            .reference()
    }

    /// A real image under `reference` in the local engine and on the node.
    pub async fn provide_image(&self, reference: &str) {
        let base = kube_emulator::testimage::busybox_image("doctor-tests")
            .await
            .expect("busybox image");
        let tagged = tokio::process::Command::new("docker")
            .args(["tag", &base, reference])
            .status()
            .await
            .expect("docker tag runs");
        assert!(tagged.success(), "docker tag {base} {reference}");
        self.load(reference).await;
    }

    /// Removes tags `provide_image` made, leaving the engine as it was.
    pub async fn remove_images(&self, references: &[String]) {
        let status = tokio::process::Command::new("docker")
            .arg("rmi")
            .args(references)
            .stdout(std::process::Stdio::null())
            .status()
            .await
            .expect("docker rmi runs");
        assert!(status.success(), "docker rmi {references:?}");
    }

    pub async fn load(&self, reference: &str) {
        kube_emulator::client::Client::new(&self.emu.url())
            .unwrap()
            .load_images(&[reference.to_string()])
            .await
            .expect("loaded onto the node");
    }

    pub async fn namespace(&self) {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let ns = serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap();
        api.create(&PostParams::default(), &ns)
            .await
            .expect("namespace");
    }

    /// The app's Secret with these keys (each a non-empty value, a canary
    /// no run may print).
    pub async fn secret(&self, keys: &[&str]) {
        let values: Vec<(String, String)> = keys
            .iter()
            .map(|k| (k.to_string(), format!("value-of-{k}")))
            .collect();
        crate::harness::canaries(values.iter().map(|(_, v)| v.clone()));
        let data: serde_json::Map<String, Value> =
            values.into_iter().map(|(k, v)| (k, json!(v))).collect();
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": "todo-secrets", "labels": labels::project("todo")},
            "stringData": data,
        }))
        .unwrap();
        let api: Api<Secret> = Api::namespaced(self.client.clone(), NS);
        api.create(&PostParams::default(), &secret)
            .await
            .expect("secret");
    }

    /// A Deployment as `up` shapes it; `pod` is merged into the pod spec's first container.
    pub async fn deployment(&self, component: &str, image: &str, container: Value, pod: Value) {
        let labels = labels::component("todo", component);
        let mut c = json!({"name": component, "image": image, "imagePullPolicy": "IfNotPresent"});
        merge(&mut c, container);
        let mut spec = json!({"terminationGracePeriodSeconds": 1, "containers": [c]});
        merge(&mut spec, pod);
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": format!("todo-{component}"), "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {
                    "app.kubernetes.io/instance": "todo",
                    "app.kubernetes.io/component": component,
                }},
                "template": {"metadata": {"labels": labels}, "spec": spec},
            },
        }))
        .unwrap();
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), NS);
        api.create(&PostParams::default(), &d)
            .await
            .expect("deployment");
    }

    pub async fn service(&self, component: &str, spec: Value) {
        let labels = labels::component("todo", component);
        let mut s = json!({
            "selector": {"app.kubernetes.io/instance": "todo", "app.kubernetes.io/component": component},
            "ports": [{"name": "http", "port": 80, "targetPort": 8000}],
        });
        merge(&mut s, spec);
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": format!("todo-{component}"), "labels": labels},
            "spec": s,
        }))
        .unwrap();
        let api: Api<Service> = Api::namespaced(self.client.clone(), NS);
        api.create(&PostParams::default(), &svc)
            .await
            .expect("service");
    }

    /// What doctor adds to the `kubectl todo` commands of its fixes: the
    /// global flags it ran with.
    pub fn todo_flags(&self) -> String {
        format!(
            "--project {} --kubeconfig {}",
            self.project.display(),
            self.kubeconfig.display()
        )
    }

    pub async fn doctor(&self, args: &[&str]) -> Run {
        self.doctor_with(args, &[]).await
    }

    pub async fn doctor_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-todo"));
        cmd.arg("doctor")
            .args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--project")
            .arg(&self.project)
            .env("PATH", path)
            .env("IMAGE_BUILDER_CACHE_DIR", self.dir.path().join("cache"))
            .env_remove("KUBECONFIG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        Run::from(cmd.output().await.expect("doctor runs"))
    }

    /// Runs `doctor -o json` (plus `args`) until a finding `id` shows up, as the
    /// kubelet takes a moment to reach the broken state.
    pub async fn wait_for(&self, id: &str, args: &[&str]) -> (Run, Value) {
        let mut all = vec!["-o", "json"];
        all.extend_from_slice(args);
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let run = self.doctor(&all).await;
            let doc = run.json();
            if let Some(f) = finding(&doc, id) {
                return (run, f.clone());
            }
            assert!(
                Instant::now() < deadline,
                "no {id} finding; last output:\n{}\n{}",
                run.stdout,
                run.stderr
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// A stand-in for a tool on PATH that prints `output` and exits 0.
    pub fn stand_in(&self, name: &str, output: &str) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.bin.join(name);
        std::fs::write(&path, format!("#!/bin/sh\necho '{output}'\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Renames the kubeconfig's context, as minikube or kind would name it.
    pub fn rename_context(&self, name: &str) {
        crate::harness::rename_context(&self.kubeconfig, name);
    }
}

pub fn finding<'a>(doc: &'a Value, id: &str) -> Option<&'a Value> {
    doc["checks"].as_array()?.iter().find(|f| f["id"] == id)
}

pub fn findings<'a>(doc: &'a Value, id: &str) -> Vec<&'a Value> {
    doc["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["id"] == id)
        .collect()
}

fn merge(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, e) => *b = e,
    }
}
