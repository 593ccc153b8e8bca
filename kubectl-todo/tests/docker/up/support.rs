//! What the `up` tests share: an emulated cluster whose kubeconfig context is
//! named as minikube names it, stand-in `minikube`/`kind`/`k3d` executables
//! first on PATH, an app whose components are small Dockerfiles on a
//! busybox base (real builds, in seconds), and the real binary.
#![allow(dead_code)] // each test binary uses its own part of this module

use std::path::{Path, PathBuf};
use std::process::Stdio;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use kube::Api;
use kube::api::{ListParams, ObjectMeta, PostParams};
use kube_emulator::{Config, Emulator};

use crate::harness;
pub use harness::{Run, rename_context};

pub const NS: &str = "shop";
/// The test images' base, made by `kube_emulator::testimage`.
pub const BASE_TAG: &str = "up-tests";

/// Two components: `web` behind a NodePort, `api` internal with a secret key.
pub const PROJECT: &str = "name: shop
secret:
  keys:
    - name: API_KEY
components:
  - name: web
    port: 8080
    healthPath: /healthz
    readyPath: /healthz
    service: {type: NodePort, nodePort: 30080}
    env: {GREETING: hello}
  - name: api
    port: 8080
    healthPath: /healthz
    readyPath: /healthz
    secretKeys: [API_KEY]
";

pub struct Setup {
    pub emu: Emulator,
    pub client: kube::Client,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub app: PathBuf,
    pub bin: PathBuf,
}

impl Setup {
    /// An emulator (scripted or docker runtime) and the two-component app.
    pub async fn start(config: Config) -> Setup {
        let base = kube_emulator::testimage::busybox_image(BASE_TAG)
            .await
            .expect("busybox base image");
        let emu = Emulator::start(config).await.expect("emulator starts");
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        emu.write_kubeconfig(&kubeconfig).unwrap();
        rename_context(&kubeconfig, "minikube");
        let bin = kube_emulator::standins::install(&dir.path().join("bin"), &emu.url()).unwrap();
        let app = dir.path().join("app");
        std::fs::create_dir_all(&app).unwrap();
        std::fs::write(app.join("todo.yaml"), PROJECT).unwrap();
        for component in ["web", "api"] {
            write_component(&app.join(component), &base, component);
        }
        let client = emu.client().await.unwrap();
        Setup {
            emu,
            client,
            dir,
            kubeconfig,
            app,
            bin,
        }
    }

    pub fn write(&self, rel: &str, text: &str) {
        let path = self.app.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// `kubectl-todo --project <app> --kubeconfig <cluster> ARGS`, stand-ins first on PATH.
    pub async fn run(&self, args: &[&str]) -> Run {
        Run::from(
            self.command(args)
                .output()
                .await
                .expect("kubectl-todo runs"),
        )
    }

    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(harness::binary());
        cmd.arg("--project")
            .arg(&self.app)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .env("PATH", kube_emulator::standins::path_with(&self.bin))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    pub fn minikube_calls(&self) -> Vec<String> {
        self.calls("minikube")
    }

    /// The argument lines a stand-in (`minikube`, `kind`, `k3d`) recorded.
    pub fn calls(&self, tool: &str) -> Vec<String> {
        kube_emulator::standins::calls(&self.bin, tool)
    }

    pub async fn namespace(&self) {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(NS.into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        api.create(&PostParams::default(), &ns).await.unwrap();
    }

    /// The namespace and the app's Secret, as `kubectl todo secrets create`
    /// leaves them; the value is a canary no later run may print.
    pub async fn secret(&self, value: &str) {
        harness::canaries([value.to_string()]);
        self.namespace().await;
        let api: Api<Secret> = Api::namespaced(self.client.clone(), NS);
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some("shop-secrets".into()),
                ..ObjectMeta::default()
            },
            data: Some([("API_KEY".to_string(), ByteString(value.as_bytes().to_vec()))].into()),
            ..Secret::default()
        };
        api.create(&PostParams::default(), &secret).await.unwrap();
    }

    pub async fn deployment(&self, name: &str) -> Deployment {
        Api::<Deployment>::namespaced(self.client.clone(), NS)
            .get(name)
            .await
            .unwrap()
    }

    pub async fn image_of(&self, deployment: &str) -> String {
        self.deployment(deployment)
            .await
            .spec
            .unwrap()
            .template
            .spec
            .unwrap()
            .containers[0]
            .image
            .clone()
            .unwrap()
    }

    /// Names of the component's pods that are not being deleted.
    pub async fn pods(&self, component: &str) -> Vec<Pod> {
        let selector =
            format!("app.kubernetes.io/instance=shop,app.kubernetes.io/component={component}");
        Api::<Pod>::namespaced(self.client.clone(), NS)
            .list(&ListParams::default().labels(&selector))
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect()
    }

    /// `kubectl todo history -o json`.
    pub async fn history(&self) -> serde_json::Value {
        let run = self.run(&["history", "-o", "json"]).await.ok();
        serde_json::from_str(&run.stdout).unwrap()
    }

    /// Stops the emulator (its containers hold the images) and removes the
    /// images this test's runs built, told apart from other tests' by their
    /// source label (the component's own directory): the engine is left as
    /// it was.
    pub async fn remove_built_images(self) {
        self.emu.stop().await;
        remove_images_built_for(&self.app).await;
    }
}

/// Removes the images runs built for the app in `app` (after its emulator,
/// whose containers hold them, has stopped).
pub async fn remove_images_built_for(app: &Path) {
    {
        for component in ["web", "api"] {
            let ids = images_built_for(app, component).await;
            if !ids.is_empty() {
                let _ = tokio::process::Command::new("docker")
                    .args(["rmi", "-f"])
                    .args(&ids)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .await;
            }
        }
    }
}

/// The IDs of the images built from a component's directory (told by their
/// source label), each once.
pub async fn images_built_for(app: &Path, component: &str) -> Vec<String> {
    let dir = std::fs::canonicalize(app.join(component)).unwrap();
    let label = format!(
        "label=org.opencontainers.image.source=file://{}",
        dir.display()
    );
    let out = tokio::process::Command::new("docker")
        .args(["images", "-q", "--no-trunc", "--filter", &label])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// A component: busybox httpd on 8080 as UID 1001, serving `/healthz` and its name.
pub fn write_component(dir: &Path, base: &str, name: &str) {
    std::fs::create_dir_all(dir.join("www")).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM {base}\nCOPY www /www\nUSER 1001:1001\nEXPOSE 8080\nCMD [\"busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("www/healthz"), "ok\n").unwrap();
    std::fs::write(dir.join("www/index.html"), format!("{name} v1\n")).unwrap();
    // Tests run in parallel and each removes the images it built: content
    // of its own gives each test its own tags.
    let nonce = format!("{:?} {}", std::time::SystemTime::now(), dir.display());
    std::fs::write(dir.join("www/instance"), nonce).unwrap();
}
