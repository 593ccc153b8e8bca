//! `kubectl todo logs` on a terminal: a colour per pod, none with
//! `NO_COLOR`, and Ctrl-C typed at the terminal ends following cleanly.

use super::logs_support;

use std::time::Duration;

use crate::harness::Terminal;
use logs_support::{Env, scripted};

/// Runs `kubectl todo logs ARGS` in a pseudo-terminal; `interrupt` types
/// Ctrl-C once `line 3` shows. Returns the transcript and the exit code.
async fn on_a_terminal(env: &Env, args: &[&str], no_color: bool, interrupt: bool) -> (String, i32) {
    let mut cmd = std::process::Command::new(crate::harness::binary());
    cmd.arg("--kubeconfig")
        .arg(env.kubeconfig())
        .arg("--project")
        .arg(env.kubeconfig().parent().unwrap())
        .arg("logs")
        .args(args)
        .env_remove("NO_COLOR");
    if no_color {
        cmd.env("NO_COLOR", "1");
    }
    let run = Terminal::run(cmd, Duration::from_secs(30), move |t| {
        if interrupt {
            t.wait_for("line 3")?;
            t.ctrl_c()?;
        }
        Ok(())
    })
    .await;
    (run.stdout, run.code.expect("an exit code"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_pod_has_its_colour_on_a_terminal_and_none_with_no_color() {
    let env = Env::scripted().await;
    env.deploy("backend", 2, scripted(2, 0, &["api"], None))
        .await;
    env.wait_running("backend", 2).await;

    let (coloured, code) = on_a_terminal(&env, &["backend"], false, false).await;
    assert_eq!(code, 0, "{coloured}");
    let colours: std::collections::BTreeSet<&str> = coloured
        .lines()
        .map(|l| {
            let prefix = l
                .strip_prefix("\x1b[")
                .unwrap_or_else(|| panic!("not coloured: {l:?}"));
            assert!(l.contains("/api\x1b[0m line "), "{l:?}");
            prefix.split('m').next().unwrap()
        })
        .collect();
    assert_eq!(colours.len(), 2, "one colour per pod: {coloured:?}");

    let (plain, code) = on_a_terminal(&env, &["backend"], true, false).await;
    assert_eq!(code, 0);
    assert_eq!(plain.lines().count(), 4, "{plain:?}");
    assert!(!plain.contains('\x1b'), "{plain:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_at_the_terminal_ends_following_with_success_and_no_error() {
    let env = Env::scripted().await;
    env.deploy("backend", 1, scripted(100_000, 10, &["api"], None))
        .await;
    env.wait_running("backend", 1).await;
    let (transcript, code) = on_a_terminal(&env, &["backend", "-f"], true, true).await;
    assert_eq!(code, 0, "{transcript}");
    assert!(!transcript.contains("error"), "{transcript}");
    assert!(!transcript.contains("warning"), "{transcript}");
}
