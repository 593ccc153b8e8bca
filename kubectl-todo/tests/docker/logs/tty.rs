//! `kubectl todo logs` on a terminal: a colour per pod, none with
//! `NO_COLOR`, and Ctrl-C typed at the terminal ends following cleanly.

use super::logs_support;

use std::time::Duration;

use expectrl::process::unix::WaitStatus;
use expectrl::{ControlCode, Eof, Expect, Session};
use logs_support::{Env, scripted};

/// Runs `kubectl todo logs ARGS` in a pseudo-terminal; `interrupt` types
/// Ctrl-C once `line 3` shows. Returns the transcript and the exit code.
async fn on_a_terminal(env: &Env, args: &[&str], no_color: bool, interrupt: bool) -> (String, i32) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-todo"));
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
    tokio::task::spawn_blocking(move || {
        let mut session = Session::spawn(cmd).expect("spawn in a pty");
        session.set_expect_timeout(Some(Duration::from_secs(30)));
        let mut transcript = String::new();
        if interrupt {
            let seen = session.expect("line 3").expect("output on the terminal");
            transcript.push_str(&String::from_utf8_lossy(seen.before()));
            session.send(ControlCode::EndOfText).expect("Ctrl-C typed");
        }
        let rest = session.expect(Eof).expect("the command ends");
        transcript.push_str(&String::from_utf8_lossy(rest.before()));
        for m in rest.matches() {
            transcript.push_str(&String::from_utf8_lossy(m));
        }
        let code = match session.get_process().wait().expect("wait") {
            WaitStatus::Exited(_, code) => code,
            other => panic!("ended by {other:?}\ntranscript:\n{transcript}"),
        };
        (transcript, code)
    })
    .await
    .expect("terminal thread")
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
