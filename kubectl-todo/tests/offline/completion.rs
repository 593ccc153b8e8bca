//! Completion through its real doors: real kubectl calling
//! `kubectl_complete-todo` (plugin completion, kubectl 1.26+), and bash
//! running the script `kubectl todo completion bash` prints.

use std::path::{Path, PathBuf};
use std::process::Command;

use kubectl_todo::completion::{Shell, script};

const PROJECT: &str = "\
name: shop
secret:
  keys:
    - name: STRIPE_KEY
      format: api-key
    - name: SESSION_SECRET
      generateBytes: 32
components:
  - name: web
    port: 3000
  - name: api
    port: 9000
";

/// A project whose names differ from the defaults, so that a candidate can
/// only have come from its file.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("todo.yaml"), PROJECT).unwrap();
    for component in ["web", "api"] {
        std::fs::create_dir(dir.path().join(component)).unwrap();
    }
    dir
}

/// A directory holding only the two installed executables, as `cargo
/// install` leaves them, to put first on PATH.
fn bin_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, exe) in [
        ("kubectl-todo", env!("CARGO_BIN_EXE_kubectl-todo")),
        (
            "kubectl_complete-todo",
            env!("CARGO_BIN_EXE_kubectl_complete-todo"),
        ),
    ] {
        std::os::unix::fs::symlink(exe, dir.path().join(name)).unwrap();
    }
    dir
}

fn path_with(bin: &Path) -> std::ffi::OsString {
    let mut paths = vec![bin.to_path_buf()];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(paths).unwrap()
}

/// `kubectl __complete todo WORDS…` in `cwd`: what kubectl's shell scripts ask for on TAB.
fn kubectl_complete(cwd: &Path, words: &[&str]) -> Vec<String> {
    let bin = bin_dir();
    let out = Command::new("kubectl")
        .args(["__complete", "todo"])
        .args(words)
        .current_dir(cwd)
        .env("PATH", path_with(bin.path()))
        .env("KUBECONFIG", cwd.join("no-kubeconfig"))
        .output()
        .expect("kubectl runs");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn values(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .filter(|l| !l.starts_with(':'))
        .map(|l| l.split('\t').next().unwrap())
        .collect()
}

#[test]
fn kubectl_completes_subcommands_through_the_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let lines = kubectl_complete(dir.path(), &["lo"]);
    assert_eq!(values(&lines), ["logs"], "{lines:?}");
    assert_eq!(lines.last().unwrap(), ":4", "no file completion: {lines:?}");
    let lines = kubectl_complete(dir.path(), &["secrets", "ro"]);
    assert_eq!(values(&lines), ["rotate"], "{lines:?}");
    // Flags once a `-` is typed, not before.
    let lines = kubectl_complete(dir.path(), &["logs", "--fo"]);
    assert_eq!(values(&lines), ["--follow"], "{lines:?}");
}

#[test]
fn kubectl_completes_the_components_of_the_project_in_the_current_directory() {
    let app = project();
    let lines = kubectl_complete(app.path(), &["logs", ""]);
    assert_eq!(values(&lines), ["web", "api"], "{lines:?}");
    assert!(
        lines[0].starts_with("web\t"),
        "with a description: {lines:?}"
    );
    // A second component after the first.
    let lines = kubectl_complete(app.path(), &["logs", "web", "a"]);
    assert_eq!(values(&lines), ["api"], "{lines:?}");
}

#[test]
fn kubectl_completes_names_from_the_project_given_by_flag() {
    let app = project();
    let elsewhere = tempfile::tempdir().unwrap();
    let root = app.path().to_str().unwrap();
    let lines = kubectl_complete(
        elsewhere.path(),
        &["--project", root, "doctor", "--component", ""],
    );
    assert_eq!(values(&lines), ["web", "api"], "{lines:?}");
    let lines = kubectl_complete(
        elsewhere.path(),
        &["--project", root, "secrets", "rotate", ""],
    );
    assert_eq!(
        values(&lines),
        ["SESSION_SECRET"],
        "only generatable keys: {lines:?}"
    );
    let lines = kubectl_complete(
        elsewhere.path(),
        &["--project", root, "render", "--image", "w"],
    );
    assert_eq!(values(&lines), ["web="], "{lines:?}");
    assert_eq!(lines.last().unwrap(), ":6", "no space after `=`: {lines:?}");
    // Without a project file, the defaults' components.
    let lines = kubectl_complete(elsewhere.path(), &["logs", ""]);
    assert_eq!(values(&lines), ["frontend", "backend"], "{lines:?}");
}

#[test]
fn completion_prints_each_shells_script() {
    for (shell, name) in [
        (Shell::Bash, "bash"),
        (Shell::Zsh, "zsh"),
        (Shell::Fish, "fish"),
        (Shell::Powershell, "powershell"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_kubectl-todo"))
            .args(["completion", name])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(text, script(shell));
        assert!(text.contains("kubectl_complete-todo"), "{name}: {text}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-todo"))
        .args(["completion", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("possible values: bash, zsh, fish, powershell")
    );
}

/// Bash sources the printed script and runs its completion function as it
/// would on TAB after `line` (words split on spaces; a trailing space starts
/// an empty word).
fn bash_complete(cwd: &Path, line: &str) -> Vec<String> {
    let bin = bin_dir();
    let script_path: PathBuf = bin.path().join("kubectl-todo.bash");
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-todo"))
        .args(["completion", "bash"])
        .output()
        .unwrap();
    std::fs::write(&script_path, out.stdout).unwrap();
    let driver = r#"
source "$1"
read -ra COMP_WORDS <<< "$2"
[[ "$2" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE="$2"; COMP_POINT=${#COMP_LINE}; COMP_TYPE=9
_clap_complete_kubectl_todo kubectl-todo "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"#;
    let out = Command::new("bash")
        .args(["--norc", "-c", driver, "bash"])
        .arg(&script_path)
        .arg(line)
        .current_dir(cwd)
        .env("PATH", path_with(bin.path()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_commands_components_and_keys() {
    let app = project();
    assert_eq!(bash_complete(app.path(), "kubectl-todo lo"), ["logs"]);
    // clap's engine lists the flags after the values when nothing is typed.
    let logs = bash_complete(app.path(), "kubectl-todo logs ");
    assert_eq!(logs[..2], ["web", "api"], "{logs:?}");
    assert!(logs[2..].iter().all(|c| c.starts_with("--")), "{logs:?}");
    assert_eq!(
        bash_complete(app.path(), "kubectl-todo secrets set S"),
        ["STRIPE_KEY", "SESSION_SECRET"]
    );
    // KEY=PATH: the key, then the files after the `=`.
    assert_eq!(
        bash_complete(app.path(), "kubectl-todo secrets create --from-file ST"),
        ["STRIPE_KEY="]
    );
    std::fs::write(app.path().join("stripe-key"), "").unwrap();
    assert_eq!(
        bash_complete(
            app.path(),
            "kubectl-todo secrets create --from-file STRIPE_KEY=str"
        ),
        ["STRIPE_KEY=stripe-key"]
    );
}

/// Fish asks for candidates with descriptions; the check runs where fish is
/// installed (`apt-get install fish`) and says so where it is not.
#[test]
fn fish_completes_components_with_descriptions() {
    if Command::new("fish").arg("--version").output().is_err() {
        eprintln!("fish is not installed: not checked");
        return;
    }
    let app = project();
    let bin = bin_dir();
    let script_path = bin.path().join("kubectl-todo.fish");
    std::fs::write(&script_path, script(Shell::Fish)).unwrap();
    let out = Command::new("fish")
        .arg("-c")
        .arg(format!(
            "source {}; complete -C 'kubectl-todo logs '",
            script_path.display()
        ))
        .current_dir(app.path())
        .env("PATH", path_with(bin.path()))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("web\tweb, port 3000\napi\tapi, port 9000\n"),
        "{text}"
    );
}

#[test]
fn kubectl_completes_contexts_from_the_kubeconfig_given() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1
kind: Config
clusters:
  - name: lab
    cluster: {server: https://127.0.0.1:6443}
users:
  - name: me
    user: {token: t}
contexts:
  - name: kind-dev
    context: {cluster: lab, user: me}
  - name: prod
    context: {cluster: lab, user: me}
current-context: kind-dev
",
    )
    .unwrap();
    let path = kubeconfig.to_str().unwrap();
    // Global flags before and after the subcommand.
    let lines = kubectl_complete(dir.path(), &["--kubeconfig", path, "up", "--context", ""]);
    assert_eq!(values(&lines), ["kind-dev", "prod"], "{lines:?}");
    assert!(lines[0].ends_with("\tcluster lab"), "{lines:?}");
    let lines = kubectl_complete(
        dir.path(),
        &["status", "--kubeconfig", path, "--context", "p"],
    );
    assert_eq!(values(&lines), ["prod"], "{lines:?}");
}

/// Zsh: the script's completer function, run outside the line editor with
/// `_describe` (what hands candidates to zsh) replaced by a printer. Runs
/// where zsh is installed and says so where it is not.
#[test]
fn zsh_hands_components_with_descriptions_to_describe() {
    if Command::new("zsh").arg("--version").output().is_err() {
        eprintln!("zsh is not installed: not checked");
        return;
    }
    let app = project();
    let bin = bin_dir();
    let script_path = bin.path().join("_kubectl-todo");
    std::fs::write(&script_path, script(Shell::Zsh)).unwrap();
    let driver = r#"
compdef() { : }
_describe() {
    local name
    for a in "$@"; do case $a in -V|values) ;; *) name=$a; break ;; esac; done
    print -l -- ${(P)name}
}
source "$1"
words=(kubectl-todo secrets rotate "")
CURRENT=4
_clap_dynamic_completer_kubectl_todo
"#;
    let out = Command::new("zsh")
        .args(["-f", "-c", driver, "zsh"])
        .arg(&script_path)
        .current_dir(app.path())
        .env("PATH", path_with(bin.path()))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let first = text.lines().next().unwrap_or_default();
    assert_eq!(first, "SESSION_SECRET:opaque, required", "{text}");
}
