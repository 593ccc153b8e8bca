//! Every command the docs show is checked, so the docs cannot rot.
//!
//! The convention (docs/README.md in short; see docs/getting-started.md for
//! an example):
//!
//! - ```` ```console ```` blocks are sessions: each line starting with `$ `
//!   is a command (a trailing `\` continues it), other lines are its output
//!   and are not compared. The commands of one file run in order, starting
//!   in one scratch copy of `examples/todo-app` (inside a scratch copy of
//!   the repository's layout), against a fresh emulated cluster
//!   whose context is named `minikube`, with stand-in `minikube`, `kind` and
//!   `k3d` on PATH and `kubectl-todo`, `kubectl_complete-todo` and
//!   `image-builder` as `cargo install` leaves them. Each must exit 0, or
//!   the code its line ends with as `# exit N`. `cd` carries over.
//!   The kubeconfig also has a context named `staging` (the same cluster),
//!   and `$REGISTRY` names a real registry on loopback (Debian's
//!   `docker-registry`) that the cluster's node pulls from, for the pages
//!   about remote clusters.
//! - A block whose info string has `file=PATH` (```` ```dotenv file=.env ````)
//!   is written to PATH, relative to the session's directory, when the
//!   session reaches it: the files a reader makes with an editor.
//! - Any other block (`sh`, `text`, `yaml`…) is reference, not run: install
//!   commands, placeholders (`KEY`), machine-specific paths. Every
//!   `kubectl todo …` and `image-builder …` command in those, and in the
//!   sessions, must still parse with the current command-line definition,
//!   so a renamed flag or subcommand fails here wherever it is shown.
//!
//! One deviation, because no base image can be pulled here: the scratch
//! copy's `frontend/` and `backend/` also get a small Dockerfile on a local
//! busybox base (image-builder uses a component's own Dockerfile when it
//! has one), so `up` builds real images in seconds. The cluster's runtime
//! is scripted: pods are Running and Ready once their image is loaded.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use clap::Parser;
use kube_emulator::{Config, Emulator};

const BASE_TAG: &str = "docs-commands";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The documents: README.md and docs/*.md.
fn documents() -> Vec<PathBuf> {
    let mut docs = vec![root().join("README.md")];
    let mut more: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    more.sort();
    docs.extend(more);
    docs
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    /// A command of a console block, with the exit code it must give.
    Run {
        line: usize,
        command: String,
        code: i32,
    },
    /// A file the reader writes.
    Write { path: String, text: String },
}

#[derive(Debug, Default)]
struct Document {
    steps: Vec<Step>,
    /// Every command line of every block, with its line number.
    shown: Vec<(usize, String)>,
}

fn parse(text: &str) -> Document {
    let mut doc = Document::default();
    let mut lines = text.lines().enumerate();
    while let Some((_, line)) = lines.next() {
        let Some(info) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        let fence_indent = line.len() - line.trim_start().len();
        let mut body = Vec::new();
        for (n, line) in lines.by_ref() {
            if line.trim_start().starts_with("```") {
                break;
            }
            body.push((n + 1, line.get(fence_indent..).unwrap_or(line.trim_start())));
        }
        let mut words = info.split_whitespace();
        let lang = words.next().unwrap_or("");
        if let Some(path) = words.find_map(|w| w.strip_prefix("file=")) {
            let mut text: String = body.iter().map(|(_, l)| format!("{l}\n")).collect();
            if text.is_empty() {
                text.push('\n');
            }
            doc.steps.push(Step::Write {
                path: path.to_string(),
                text,
            });
            continue;
        }
        let console = lang == "console";
        // Output, data and code blocks show no commands.
        if !["console", "sh", "bash", "shell", "zsh", "fish", ""].contains(&lang) {
            continue;
        }
        let mut pending: Option<(usize, String)> = None;
        for (n, line) in body {
            let command = match pending.take() {
                Some((start, mut so_far)) => {
                    so_far.push('\n');
                    so_far.push_str(line);
                    Some((start, so_far))
                }
                None if console => line.strip_prefix("$ ").map(|c| (n, c.to_string())),
                None => Some((n, line.to_string())),
            };
            let Some((start, command)) = command else {
                continue;
            };
            if command.ends_with('\\') {
                pending = Some((start, command));
                continue;
            }
            doc.shown.push((start, command.clone()));
            if console {
                doc.steps.push(Step::Run {
                    line: start,
                    code: expected_code(&command),
                    command,
                });
            }
        }
    }
    doc
}

/// `… # exit 1` documents a failure the reader should expect.
fn expected_code(command: &str) -> i32 {
    command
        .rsplit_once('#')
        .and_then(|(_, comment)| comment.trim().strip_prefix("exit "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// The arguments of every `kubectl todo …` and `image-builder …` command in
/// a shown line, up to the first shell operator; `[…]` marks optional parts.
fn invocations(command: &str) -> Vec<(&'static str, Vec<String>)> {
    let joined = command.replace("\\\n", " ");
    let Some(words) = shlex::split(&joined) else {
        return Vec::new();
    };
    let is_operator = |w: &str| {
        ["|", "||", "&&", ";", "&", "<", ">", ">>"].contains(&w)
            || w.starts_with('>')
            || w.starts_with("2>")
    };
    let mut found = Vec::new();
    // Only words in command position run a program: the first, and those
    // after an operator or inside `<(…)` / `$(…)`.
    let mut command_position = true;
    let mut i = 0;
    while i < words.len() {
        let raw = words[i].as_str();
        if raw.starts_with('#') {
            break;
        }
        let word = raw.trim_start_matches("<(").trim_start_matches("$(");
        let opens = word.len() != raw.len();
        if !(command_position || opens) {
            command_position = is_operator(raw);
            i += 1;
            continue;
        }
        let next = words.get(i + 1).map(String::as_str);
        let (program, skip) = match (word, next) {
            ("kubectl", Some("todo")) => ("kubectl-todo", 2),
            ("kubectl-todo", _) => ("kubectl-todo", 1),
            ("image-builder", _) => ("image-builder", 1),
            _ => {
                command_position = is_operator(raw);
                i += 1;
                continue;
            }
        };
        let mut args = Vec::new();
        let mut j = i + skip;
        while j < words.len() {
            let w = words[j].trim_end_matches(')');
            if w.starts_with('#') || is_operator(w) {
                break;
            }
            let w = w.trim_start_matches('[').trim_end_matches(']');
            if !w.is_empty() {
                args.push(w.to_string());
            }
            j += 1;
        }
        found.push((program, args));
        command_position = true;
        i = j;
    }
    found
}

fn parses(program: &str, args: &[String]) -> Result<(), String> {
    // A shell variable (`"$REGISTRY"`) stands for a value the session sets:
    // a plain word takes its place, as the checks of values would refuse `$`.
    let argv = std::iter::once(program.to_string()).chain(args.iter().map(|a| {
        if a.starts_with('$') {
            "placeholder".to_string()
        } else {
            a.clone()
        }
    }));
    let result = match program {
        "kubectl-todo" => kubectl_todo::cli::Cli::try_parse_from(argv).map(|_| ()),
        _ => image_builder::cli::Cli::try_parse_from(argv).map(|_| ()),
    };
    match result {
        Ok(()) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp
                    | clap::error::ErrorKind::DisplayVersion
                    | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn every_command_shown_parses() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for path in documents() {
        let doc = parse(&std::fs::read_to_string(&path).unwrap());
        for (line, command) in &doc.shown {
            for (program, args) in invocations(command) {
                checked += 1;
                if let Err(e) = parses(program, &args) {
                    let first = e.lines().next().unwrap_or("").to_string();
                    broken.push(format!("{}:{line}: `{command}`: {first}", path.display()));
                }
            }
        }
    }
    assert!(checked > 30, "only {checked} commands found in the docs");
    assert!(
        broken.is_empty(),
        "commands in the docs that do not parse:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_conventions_are_read_as_documented() {
    let doc = parse(
        "text\n```console\n$ kubectl todo up \\\n    --timeout 2m\nbuilt\n$ kubectl todo status  # exit 1\n```\n\
         ```dotenv file=.env\nA=1\n```\n```sh\nkubectl todo secrets list [-o json]  # keys\n```\n",
    );
    assert_eq!(
        doc.steps,
        [
            Step::Run {
                line: 3,
                command: "kubectl todo up \\\n    --timeout 2m".into(),
                code: 0
            },
            Step::Run {
                line: 6,
                command: "kubectl todo status  # exit 1".into(),
                code: 1
            },
            Step::Write {
                path: ".env".into(),
                text: "A=1\n".into()
            },
        ]
    );
    assert_eq!(doc.shown.len(), 3);
    assert_eq!(
        invocations(&doc.shown[2].1),
        [(
            "kubectl-todo",
            vec![
                "secrets".to_string(),
                "list".into(),
                "-o".into(),
                "json".into()
            ]
        )]
    );
    assert_eq!(
        invocations("source <(kubectl todo completion bash) && image-builder plan fe | jq ."),
        [
            (
                "kubectl-todo",
                vec!["completion".to_string(), "bash".into()]
            ),
            ("image-builder", vec!["plan".to_string(), "fe".into()]),
        ]
    );
    assert!(parses("kubectl-todo", &["logs".into(), "--no-such-flag".into()]).is_err());
}

/// A scratch copy of the example app, a cluster and the installed binaries.
struct Session {
    _emulator: Emulator,
    registry: Registry,
    dir: tempfile::TempDir,
    bin: PathBuf,
    standins: PathBuf,
    kubeconfig: PathBuf,
}

impl Session {
    async fn start(base: &str) -> Session {
        let emulator = Emulator::start(Config::default()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        emulator.write_kubeconfig(&kubeconfig).unwrap();
        rename_context(&kubeconfig, "minikube");
        add_context(&kubeconfig, "staging");
        let registry = Registry::start(dir.path());
        let standins =
            kube_emulator::standins::install(&dir.path().join("standins"), &emulator.url())
                .unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for (name, exe) in installed() {
            std::os::unix::fs::symlink(exe, bin.join(name)).unwrap();
        }
        let app = dir.path().join("examples/todo-app");
        copy_dir(&root().join("examples/todo-app"), &app);
        for (component, port) in [("frontend", 3000), ("backend", 8000)] {
            std::fs::write(
                app.join(component).join("Dockerfile"),
                format!(
                    "FROM {base}\nRUN mkdir -p /www && echo ok > /www/health && echo ok > /www/ready\n\
                     USER 1001:1001\nEXPOSE {port}\n\
                     CMD [\"busybox\", \"httpd\", \"-f\", \"-p\", \"{port}\", \"-h\", \"/www\"]\n"
                ),
            )
            .unwrap();
        }
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        Session {
            _emulator: emulator,
            registry,
            dir,
            bin,
            standins,
            kubeconfig,
        }
    }

    /// Runs one command in `cwd` with bash; returns its exit code, output
    /// and the directory it ended in.
    async fn run(&self, cwd: &Path, command: &str) -> (i32, String, PathBuf) {
        let pwd_file = self.dir.path().join("pwd");
        // One stream, so the output reads as it would on a terminal.
        let script = format!("exec 2>&1\n{command}\nstatus=$?\npwd > \"$DOCS_PWD\"\nexit $status");
        let path =
            std::env::join_paths([self.bin.clone(), self.standins.clone()].into_iter().chain(
                std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
            ))
            .unwrap();
        let out = tokio::process::Command::new("bash")
            .args(["--noprofile", "--norc", "-o", "pipefail", "-c", &script])
            .current_dir(cwd)
            .env("PATH", path)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.path().join("home"))
            .env("IMAGE_BUILDER_CACHE_DIR", self.dir.path().join("cache"))
            .env("NO_COLOR", "1")
            .env("DOCS_PWD", &pwd_file)
            .env("REGISTRY", &self.registry.address)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(std::time::Duration::from_secs(300), out)
            .await
            .expect("a documented command finishes within 5 minutes")
            .unwrap();
        let cwd = std::fs::read_to_string(&pwd_file)
            .map(|p| PathBuf::from(p.trim()))
            .unwrap_or_else(|_| cwd.to_path_buf());
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), output, cwd)
    }
}

/// The executables `cargo install` puts on PATH; image-builder is another
/// package's binary, built here if it is not yet.
fn installed() -> Vec<(&'static str, PathBuf)> {
    let todo = PathBuf::from(env!("CARGO_BIN_EXE_kubectl-todo"));
    let dir = todo.parent().unwrap().to_path_buf();
    let status = std::process::Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "-p",
            "image-builder",
            "--bin",
            "image-builder",
        ])
        .current_dir(root())
        .status()
        .unwrap();
    assert!(status.success(), "cargo build -p image-builder");
    vec![
        ("kubectl-todo", todo),
        (
            "kubectl_complete-todo",
            PathBuf::from(env!("CARGO_BIN_EXE_kubectl_complete-todo")),
        ),
        ("image-builder", dir.join("image-builder")),
    ]
}

fn rename_context(kubeconfig: &Path, name: &str) {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    doc["current-context"] = name.into();
    doc["contexts"][0]["name"] = name.into();
    std::fs::write(kubeconfig, serde_yaml_ng::to_string(&doc).unwrap()).unwrap();
}

/// A second context for the same cluster, as a remote one would be named.
fn add_context(kubeconfig: &Path, name: &str) {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let mut context = doc["contexts"][0].clone();
    context["name"] = name.into();
    doc["contexts"].as_sequence_mut().unwrap().push(context);
    std::fs::write(kubeconfig, serde_yaml_ng::to_string(&doc).unwrap()).unwrap();
}

/// A registry on loopback, which the emulated node pulls from as a remote
/// cluster's does (the kubelet pulls what a pod names on a loopback registry).
struct Registry {
    address: String,
    child: std::process::Child,
}

impl Registry {
    fn start(dir: &Path) -> Registry {
        let bin = which::which("docker-registry")
            .expect("docker-registry is not installed: `apt-get install -y docker-registry`");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data = dir.join("registry");
        let config = dir.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                data.display()
            ),
        )
        .unwrap();
        let child = std::process::Command::new(bin)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = (0..100).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(started, "docker-registry did not start");
        Registry {
            address: format!("127.0.0.1:{port}"),
            child,
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_session_in_the_docs_runs() {
    let base = kube_emulator::testimage::busybox_image(BASE_TAG)
        .await
        .expect("busybox base image");
    let before = example_images().await;
    let mut failures = Vec::new();
    let mut ran = 0;
    for path in documents() {
        let doc = parse(&std::fs::read_to_string(&path).unwrap());
        if doc.steps.is_empty() {
            continue;
        }
        let session = Session::start(&base).await;
        // Sessions start in the example app, as a reader who followed
        // getting-started.md does.
        let mut cwd = session.dir.path().join("examples/todo-app");
        for step in &doc.steps {
            match step {
                Step::Write { path, text } => std::fs::write(cwd.join(path), text).unwrap(),
                Step::Run {
                    line,
                    command,
                    code,
                } => {
                    ran += 1;
                    let (got, output, after) = session.run(&cwd, command).await;
                    cwd = after;
                    // Shown with --no-capture: what a reader would see.
                    eprintln!("{}:{line}: $ {command}\n{output}", path.display());
                    if got != *code {
                        failures.push(format!(
                            "{}:{line}: `{command}` exited {got}, the docs expect {code}:\n{output}",
                            path.display()
                        ));
                        // Later commands of this file depend on this one.
                        break;
                    }
                }
            }
        }
    }
    remove_images_made_since(&before).await;
    assert!(ran > 0, "no console sessions found");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Image ids of the example's repositories (`todo-frontend`, `todo-backend`),
/// here or pushed.
async fn example_images() -> Vec<String> {
    let out = tokio::process::Command::new("docker")
        .args([
            "images",
            "-q",
            "--no-trunc",
            "--filter",
            "reference=todo-frontend",
        ])
        .args(["--filter", "reference=todo-backend"])
        .output()
        .await
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// Removes the images the sessions made, leaving the engine as it was
/// (an image another test had already made stays).
async fn remove_images_made_since(before: &[String]) {
    let made: Vec<String> = example_images()
        .await
        .into_iter()
        .filter(|id| !before.contains(id))
        .collect();
    if !made.is_empty() {
        let _ = tokio::process::Command::new("docker")
            .args(["rmi", "-f"])
            .args(&made)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
    }
}
