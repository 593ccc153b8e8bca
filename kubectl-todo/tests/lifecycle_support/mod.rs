//! What the render and lifecycle tests share: the real binary, an app
//! directory, and an emulated cluster with a kubeconfig pointing at it.
#![allow(dead_code)] // each test binary uses its own part of this module

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::api::{ObjectMeta, PostParams};

pub const FRONTEND_IMAGE: &str = "todo-frontend:00000000000000f1";
pub const BACKEND_IMAGE: &str = "todo-backend:00000000000000b1";

/// The result of one run of `kubectl-todo`.
pub struct Run {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            ok: out.status.success(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Panics with both streams unless the run succeeded.
    pub fn ok(self) -> Run {
        assert!(
            self.ok,
            "kubectl-todo failed ({:?})\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    pub fn failed(self) -> Run {
        assert!(
            !self.ok,
            "kubectl-todo should have failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// An app directory: the original layout, copied from examples/todo-app.
pub struct App {
    pub dir: tempfile::TempDir,
}

impl App {
    pub fn original_layout() -> App {
        let dir = tempfile::tempdir().unwrap();
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/todo-app");
        for component in ["frontend", "backend"] {
            copy_dir(&example.join(component), &dir.path().join(component));
        }
        App { dir }
    }

    pub fn with_file(text: &str) -> App {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("todo.yaml"), text).unwrap();
        App { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, text: &str) {
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Runs `kubectl-todo --project <app> ARGS` with no kubeconfig of the user's in reach.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(
            Command::new(env!("CARGO_BIN_EXE_kubectl-todo"))
                .arg("--project")
                .arg(self.path())
                .args(args)
                .env("KUBECONFIG", self.path().join("no-kubeconfig"))
                .env("NO_COLOR", "1")
                .output()
                .expect("kubectl-todo runs"),
        )
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// An emulated cluster and a kubeconfig for it.
pub struct Cluster {
    pub emulator: kube_emulator::Emulator,
    pub kubeconfig: PathBuf,
    pub client: kube::Client,
    _dir: tempfile::TempDir,
}

impl Cluster {
    pub async fn start() -> Cluster {
        let emulator = kube_emulator::Emulator::start(kube_emulator::Config::default())
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        emulator.write_kubeconfig(&kubeconfig).unwrap();
        let client = emulator.client().await.unwrap();
        Cluster {
            emulator,
            kubeconfig,
            client,
            _dir: dir,
        }
    }

    pub fn kubeconfig(&self) -> &str {
        self.kubeconfig.to_str().unwrap()
    }

    pub async fn namespace(&self, name: &str) {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        api.create(&PostParams::default(), &ns).await.unwrap();
    }

    /// The app's Secret, as `kubectl todo secrets create` would leave it.
    /// Its values become canaries: no later run may print one.
    pub async fn secret(&self, namespace: &str, name: &str, data: &[(&str, &str)]) -> Secret {
        canaries(data.iter().map(|(_, v)| v.to_string()));
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Secret::default()
        };
        api.create(&PostParams::default(), &secret).await.unwrap()
    }

    /// Makes the images exist on the node, as `minikube image load` would.
    pub async fn load(&self, images: &[&str]) {
        let client = kube_emulator::client::Client::new(&self.emulator.url()).unwrap();
        let images: Vec<String> = images.iter().map(|s| s.to_string()).collect();
        client.load_images(&images).await.unwrap();
    }
}

static CANARIES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Secret values of this test binary that no run of `kubectl-todo` may print.
/// Values too short to be told from ordinary text (`k`) are not canaries.
pub fn canaries(values: impl IntoIterator<Item = String>) {
    CANARIES
        .lock()
        .unwrap()
        .extend(values.into_iter().filter(|v| v.len() >= 8));
}

fn assert_no_canary(run: &Run) {
    for canary in CANARIES.lock().unwrap().iter() {
        assert!(
            !run.stdout.contains(canary.as_str()) && !run.stderr.contains(canary.as_str()),
            "a secret value was printed\nstdout:\n{}\nstderr:\n{}",
            run.stdout,
            run.stderr
        );
    }
}

/// Runs `kubectl-todo --project <app> --kubeconfig <cluster> ARGS`; a run
/// that prints a Secret value the test made fails the test.
pub async fn run_against(app: &App, kubeconfig: &str, args: &[&str]) -> Run {
    let run = Run::from(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-todo"))
            .arg("--project")
            .arg(app.path())
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .await
            .expect("kubectl-todo runs"),
    );
    assert_no_canary(&run);
    run
}
