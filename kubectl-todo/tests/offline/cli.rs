//! The plugin binary answers `--help` and `--version` as kubectl users expect.

use std::process::Command;

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-todo"))
        .args(args)
        .output()
        .expect("kubectl-todo runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn help_names_the_plugin_as_kubectl_invokes_it() {
    let (ok, out) = run(&["--help"]);
    assert!(ok);
    assert!(out.contains("Usage: kubectl todo"), "{out}");
    assert!(out.contains("Examples:"), "{out}");
}

#[test]
fn version_prints_the_crate_version() {
    let (ok, out) = run(&["--version"]);
    assert!(ok);
    assert_eq!(
        out.trim(),
        format!("kubectl-todo {}", env!("CARGO_PKG_VERSION"))
    );
}
