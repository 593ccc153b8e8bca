//! `kubectl todo up` on a terminal: spinners that end in a check mark per
//! component; with `NO_COLOR`, the plain lines a pipe gets.

use super::support;

use std::time::Duration;

use crate::harness::Terminal;
use kube_emulator::Config;
use support::Setup;

/// Runs `kubectl todo up` in a pseudo-terminal; returns the transcript and the exit code.
async fn on_a_terminal(s: &Setup, no_color: bool) -> (String, i32) {
    let mut cmd = std::process::Command::new(crate::harness::binary());
    cmd.arg("--project")
        .arg(&s.app)
        .arg("--kubeconfig")
        .arg(&s.kubeconfig)
        .args(["up", "--timeout", "2m"])
        .env("PATH", kube_emulator::standins::path_with(&s.bin))
        .env_remove("NO_COLOR");
    if no_color {
        cmd.env("NO_COLOR", "1");
    }
    let run = Terminal::run(cmd, Duration::from_secs(120), |_| Ok(())).await;
    (run.stdout, run.code.expect("an exit code"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spinners_on_a_terminal_plain_lines_with_no_color() {
    let s = Setup::start(Config::default()).await;
    s.secret("canary-tty-1").await;

    let (fancy, code) = on_a_terminal(&s, false).await;
    assert_eq!(code, 0, "{fancy}");
    assert!(fancy.contains("✓ web: 1/1 ready"), "{fancy:?}");
    assert!(fancy.contains('\x1b'), "the spinners redraw: {fancy:?}");

    // A code change: the build and the rollout both show, as plain lines without escapes.
    s.write("api/www/index.html", "api v2\n");
    let (plain, code) = on_a_terminal(&s, true).await;
    assert_eq!(code, 0, "{plain}");
    assert!(
        plain.contains("\napi: 1/1 ready") || plain.starts_with("api: 1/1 ready"),
        "{plain:?}"
    );
    assert!(!plain.contains('\x1b') && !plain.contains('✓'), "{plain:?}");
    s.remove_built_images().await;
}
