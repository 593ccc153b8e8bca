//! Shared helpers for the end-to-end tests: an emulator with a kubeconfig
//! on disk, and real `kubectl` pointed at it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kube_emulator::{Config, Emulator, Runtime};
use tempfile::TempDir;

/// An emulator plus the kubeconfig file kubectl reads.
pub struct Cluster {
    pub emulator: Emulator,
    dir: TempDir,
}

impl Cluster {
    pub async fn start(runtime: Runtime) -> anyhow::Result<Cluster> {
        let config = Config {
            runtime,
            ..Config::default()
        };
        Self::start_with(config).await
    }

    pub async fn start_with(config: Config) -> anyhow::Result<Cluster> {
        let emulator = Emulator::start(config).await?;
        let dir = tempfile::tempdir()?;
        emulator.write_kubeconfig(&dir.path().join("kubeconfig"))?;
        Ok(Cluster { emulator, dir })
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a manifest into the cluster's scratch directory and returns its path.
    pub fn manifest(&self, name: &str, yaml: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, yaml).expect("write manifest");
        path
    }

    /// Runs real kubectl against this emulator, off the async runtime's threads.
    pub async fn kubectl(&self, args: &[&str]) -> KubectlOutput {
        let kubeconfig = self.kubeconfig();
        // A cache per cluster keeps parallel tests from sharing discovery files.
        let cache = self.dir.path().join("kube-cache");
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let output = tokio::task::spawn_blocking(move || {
            Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .arg("--cache-dir")
                .arg(&cache)
                .args(&args)
                .output()
                .expect("kubectl runs")
        })
        .await
        .expect("kubectl task");
        KubectlOutput(output)
    }

    pub async fn stop(self) {
        self.emulator.stop().await;
    }
}

pub struct KubectlOutput(pub Output);

impl KubectlOutput {
    pub fn success(&self) -> bool {
        self.0.status.success()
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }

    /// Stdout, after asserting that kubectl succeeded.
    #[track_caller]
    pub fn ok(&self) -> String {
        assert!(
            self.success(),
            "kubectl failed ({}):\nstdout: {}\nstderr: {}",
            self.0.status,
            self.stdout(),
            self.stderr()
        );
        self.stdout()
    }

    /// Stderr, after asserting that kubectl failed.
    #[track_caller]
    pub fn err(&self) -> String {
        assert!(
            !self.success(),
            "kubectl unexpectedly succeeded: {}",
            self.stdout()
        );
        self.stderr()
    }
}

/// A Deployment of the busybox test image whose `httpd` answers `/health`
/// on port 8080 as UID 1001, with probes on it.
pub fn httpd_deployment(name: &str, image: &str, progress_deadline: u32) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  replicas: 1
  progressDeadlineSeconds: {progress_deadline}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      terminationGracePeriodSeconds: 1
      securityContext:
        runAsNonRoot: true
        runAsUser: 1001
        runAsGroup: 1001
      containers:
      - name: web
        image: {image}
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "mkdir -p /tmp/www && echo ok > /tmp/www/health && echo serving on 8080 && exec httpd -f -v -p 8080 -h /tmp/www"]
        ports:
        - {{name: http, containerPort: 8080}}
        readinessProbe:
          httpGet: {{path: /health, port: http}}
          periodSeconds: 1
        livenessProbe:
          httpGet: {{path: /health, port: http}}
          periodSeconds: 2
        resources:
          requests: {{cpu: 50m, memory: 16Mi}}
          limits: {{cpu: 500m, memory: 64Mi}}
"#
    )
}
