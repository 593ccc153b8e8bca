//! The one harness of kubectl-todo's integration tests: the real binary, an
//! app directory, an emulated cluster with a kubeconfig pointing at it, and
//! the app's Secret. Every Secret value a test makes is a canary, and every
//! run of the binary goes through [`Run::from`] (or, for a run the test acts
//! on while it goes, [`Running`]), which fails the test when a canary (as
//! written, or base64-encoded as the API carries it) appears in stdout or
//! stderr: the secret-leak check does not depend on a test remembering it.
#![allow(dead_code)] // each test binary uses its own part of this module

use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::api::{ObjectMeta, PostParams};

/// Images the lifecycle tests load onto the node and deploy by name.
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
    /// The run's result, after checking that it printed no canary.
    pub fn from(out: Output) -> Run {
        Run::checked(
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn checked(status: ExitStatus, stdout: String, stderr: String) -> Run {
        assert_no_canary(&stdout, &stderr);
        Run {
            ok: status.success(),
            code: status.code(),
            stdout,
            stderr,
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

    /// Panics with both streams unless the run exited non-zero.
    pub fn failed(self) -> Run {
        assert!(
            self.code.is_some_and(|c| c != 0),
            "kubectl-todo should have failed ({:?})\nstdout:\n{}\nstderr:\n{}",
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Both streams, for assertions that do not care which one says it.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// [`Run::ok`] for a test that keeps the run for more checks: stdout.
    #[track_caller]
    pub fn ok_stdout(&self) -> &str {
        assert!(
            self.ok,
            "kubectl-todo failed ({:?})\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        &self.stdout
    }

    /// Stderr, after checking the run did not succeed (killed by a signal counts).
    #[track_caller]
    pub fn failed_stderr(&self) -> &str {
        assert!(
            !self.ok,
            "kubectl-todo should have failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        &self.stderr
    }

    /// Stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "kubectl-todo printed no JSON ({e}):\n{}\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// A run of `kubectl-todo` still going: the one way a test starts the binary
/// without waiting for it. Its output is gathered as it comes, every look at
/// it is checked for canaries, and so is the [`Run`] it ends in.
pub struct Running {
    child: tokio::process::Child,
    stdout: Gathered,
    stderr: Gathered,
}

type Gathered = (Arc<Mutex<Vec<u8>>>, tokio::task::JoinHandle<()>);

fn gather(mut pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static) -> Gathered {
    use tokio::io::AsyncReadExt as _;
    let text = Arc::new(Mutex::new(Vec::new()));
    let into = text.clone();
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut buf).await
            && n > 0
        {
            into.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    (text, task)
}

impl Running {
    /// Starts `cmd`, a command for [`binary`], with stdout and stderr piped
    /// and the child killed if the test drops it.
    pub fn start(mut cmd: tokio::process::Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("kubectl-todo starts");
        let stdout = gather(child.stdout.take().unwrap());
        let stderr = gather(child.stderr.take().unwrap());
        Running {
            child,
            stdout,
            stderr,
        }
    }

    /// Its stdin, when the command piped it.
    pub fn stdin(&mut self) -> Option<tokio::process::ChildStdin> {
        self.child.stdin.take()
    }

    /// Sends `signal` to the child.
    pub fn signal(&self, signal: libc::c_int) {
        let pid = self.child.id().expect("still running") as i32;
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        unsafe { libc::kill(pid, signal) };
    }

    /// Whether it has not exited yet.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// The lines it has printed to stdout so far (a line still being
    /// written is left for the next look).
    pub fn stdout(&self) -> String {
        self.so_far().0
    }

    /// The lines it has printed to stderr so far.
    pub fn stderr(&self) -> String {
        self.so_far().1
    }

    fn so_far(&self) -> (String, String) {
        let whole_lines = |mut text: String| {
            text.truncate(text.rfind('\n').map_or(0, |end| end + 1));
            text
        };
        let out = whole_lines(text(&self.stdout));
        let err = whole_lines(text(&self.stderr));
        assert_no_canary(&out, &err);
        (out, err)
    }

    /// Both streams so far, labelled, for failure messages.
    pub fn all(&self) -> String {
        let (out, err) = self.so_far();
        format!("stdout:\n{out}\nstderr:\n{err}")
    }

    /// Waits for it to exit, and all it printed.
    pub async fn finish(mut self) -> Run {
        let status = self.child.wait().await.expect("kubectl-todo exits");
        for task in [&mut self.stdout.1, &mut self.stderr.1] {
            task.await.expect("output gathered");
        }
        Run::checked(status, text(&self.stdout), text(&self.stderr))
    }

    /// [`Running::finish`], failing the test with the output so far if it
    /// has not exited within `limit` (a hang is a failure, not a stuck test).
    pub async fn finish_within(mut self, limit: Duration) -> Run {
        if tokio::time::timeout(limit, self.child.wait())
            .await
            .is_err()
        {
            panic!("kubectl-todo still running after {limit:?}\n{}", self.all());
        }
        self.finish().await
    }
}

fn text(gathered: &Gathered) -> String {
    String::from_utf8_lossy(&gathered.0.lock().unwrap()).into_owned()
}

/// A run of `kubectl-todo` on a pseudo-terminal, driven by a script: what a
/// user at a terminal sees and types. The transcript is checked for
/// canaries at every look, and so is the [`Run`] it ends in (the
/// transcript as its stdout: a terminal has one stream).
pub struct Terminal {
    session: expectrl::session::OsSession,
    transcript: String,
}

impl Terminal {
    /// Runs `cmd` on a terminal: `script` acts on it on a blocking thread
    /// (the test's runtime goes on serving the emulator), then the run is
    /// followed to its end, `limit` at most per wait.
    pub async fn run(
        cmd: Command,
        limit: Duration,
        script: impl FnOnce(&mut Terminal) -> Result<(), expectrl::Error> + Send + 'static,
    ) -> Run {
        use expectrl::Expect as _;
        use expectrl::process::unix::WaitStatus;
        tokio::task::spawn_blocking(move || {
            let mut session = expectrl::Session::spawn(cmd).expect("spawn on a pty");
            session.set_expect_timeout(Some(limit));
            let mut terminal = Terminal {
                session,
                transcript: String::new(),
            };
            if let Err(e) = script(&mut terminal) {
                panic!(
                    "the terminal script failed: {e}\ntranscript:\n{}",
                    terminal.transcript
                );
            }
            let rest = terminal
                .session
                .expect(expectrl::Eof)
                .expect("the run ends");
            // Eof matches everything left, so the rest is the match itself.
            terminal.record(rest.before());
            for m in rest.matches() {
                terminal.record(m);
            }
            let code = match terminal.session.get_process().wait().expect("wait") {
                WaitStatus::Exited(_, code) => code,
                other => panic!("ended by {other:?}\ntranscript:\n{}", terminal.transcript),
            };
            Run::checked(
                ExitStatus::from_raw(code << 8),
                terminal.transcript,
                String::new(),
            )
        })
        .await
        .expect("terminal thread")
    }

    fn record(&mut self, bytes: &[u8]) {
        self.transcript.push_str(&String::from_utf8_lossy(bytes));
        assert_no_canary(&self.transcript, "");
    }

    /// Waits until `text` shows.
    pub fn wait_for(&mut self, text: &str) -> Result<(), expectrl::Error> {
        use expectrl::Expect as _;
        let found = self.session.expect(text)?;
        self.record(found.before());
        self.record(text.as_bytes());
        Ok(())
    }

    /// Waits for `prompt`, then types `line` and Enter.
    pub fn answer(&mut self, prompt: &str, line: &str) -> Result<(), expectrl::Error> {
        use expectrl::Expect as _;
        self.wait_for(prompt)?;
        self.session.send_line(line)
    }

    /// Types `text` without Enter.
    pub fn type_text(&mut self, text: &str) -> Result<(), expectrl::Error> {
        use expectrl::Expect as _;
        self.session.send(text)
    }

    /// Types Ctrl-C.
    pub fn ctrl_c(&mut self) -> Result<(), expectrl::Error> {
        use expectrl::Expect as _;
        self.session.send(expectrl::ControlCode::EndOfText)
    }

    /// The pid of the process the terminal runs.
    pub fn pid(&self) -> i32 {
        self.session.get_process().pid().as_raw()
    }
}

static CANARIES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Secret values of this test that no run of `kubectl-todo` may print.
/// Values too short to be told from ordinary text (`k`) are not canaries.
pub fn canaries(values: impl IntoIterator<Item = String>) {
    CANARIES
        .lock()
        .unwrap()
        .extend(values.into_iter().filter(|v| v.len() >= 8));
}

/// Fails the test when `stdout` or `stderr` holds a canary, raw or base64.
pub fn assert_no_canary(stdout: &str, stderr: &str) {
    for canary in CANARIES.lock().unwrap().iter() {
        let encoded = base64::engine::general_purpose::STANDARD.encode(canary);
        for form in [canary.as_str(), encoded.as_str()] {
            assert!(
                !stdout.contains(form) && !stderr.contains(form),
                "a secret value was printed\nstdout:\n{stdout}\nstderr:\n{stderr}"
            );
        }
    }
}

/// The binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_kubectl-todo")
}

/// An app directory.
pub struct App {
    pub dir: tempfile::TempDir,
}

impl App {
    /// The original layout, copied from examples/todo-app.
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
            Command::new(binary())
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

pub fn copy_dir(from: &Path, to: &Path) {
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
    pub dir: tempfile::TempDir,
}

impl Cluster {
    pub async fn start() -> Cluster {
        Cluster::start_with(kube_emulator::Config::default()).await
    }

    /// An emulator with this configuration (a runtime, a node's capacity).
    pub async fn start_with(config: kube_emulator::Config) -> Cluster {
        let emulator = kube_emulator::Emulator::start(config).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        emulator.write_kubeconfig(&kubeconfig).unwrap();
        let client = emulator.client().await.unwrap();
        Cluster {
            emulator,
            kubeconfig,
            client,
            dir,
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

    /// Names the kubeconfig's context as a local-cluster tool names its own.
    pub fn rename_context(&self, name: &str) {
        rename_context(&self.kubeconfig, name);
    }
}

pub fn rename_context(kubeconfig: &Path, name: &str) {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    doc["current-context"] = name.into();
    doc["contexts"][0]["name"] = name.into();
    std::fs::write(kubeconfig, serde_yaml_ng::to_string(&doc).unwrap()).unwrap();
}

/// `kubectl-todo --project <app> --kubeconfig <cluster> ARGS`, for
/// [`Running::start`]; [`run_against`] runs it to the end.
pub fn against(app: &App, kubeconfig: &str, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(binary());
    cmd.arg("--project")
        .arg(app.path())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env("NO_COLOR", "1");
    cmd
}

/// Runs [`against`]; a run that prints a Secret value the test made fails
/// the test.
pub async fn run_against(app: &App, kubeconfig: &str, args: &[&str]) -> Run {
    Run::from(
        against(app, kubeconfig, args)
            .output()
            .await
            .expect("kubectl-todo runs"),
    )
}
