//! The interactive `kubectl todo secrets` flows through a pseudo-terminal:
//! hidden input asked twice, the offer to generate, a wrong confirmation,
//! Ctrl-C midway. The transcript of the terminal never holds a value.

use crate::{harness, secrets_support};

use std::process::Command;
use std::time::Duration;

use harness::Terminal;
use secrets_support::{Env, assert_no_canary};

const DB_URL: &str = "postgres://app:canary-tty-db-93ab@db.todo.svc:5432/todo";
const OPENAI: &str = "sk-canary-tty-openai-0c4e";
const OTHER: &str = "sk-canary-tty-other-77aa";
const CANARIES: &[&str] = &[DB_URL, OPENAI, OTHER, "canary-tty-db-93ab"];

/// One scripted conversation on a terminal. Returns the transcript and the
/// exit code; the harness has checked the transcript for the test's values.
async fn converse(
    env: &Env,
    args: &[&str],
    script: fn(&mut Terminal) -> Result<(), expectrl::Error>,
) -> (String, i32) {
    harness::canaries(CANARIES.iter().map(|c| c.to_string()));
    // expectrl turns echo off before the child starts; a user's terminal has
    // it on, so the shell turns it back on, and afterwards reports whether
    // kubectl-todo left it on.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"stty echo icanon isig; "$0" "$@"; code=$?; stty -a | tr ' ;' '\n\n' | grep -qx echo && echo TERMINAL-ECHO-ON; exit $code"#)
        .arg(harness::binary())
        .arg("--kubeconfig")
        .arg(env.kubeconfig())
        .arg("--project")
        .arg(env.project())
        .arg("secrets")
        .args(args)
        .env_remove("KUBECONFIG");
    let run = Terminal::run(cmd, Duration::from_secs(30), script).await;
    (run.stdout, run.code.expect("an exit code"))
}

#[tokio::test(flavor = "multi_thread")]
async fn create_prompts_hidden_twice_and_offers_to_generate_the_auth_secret() {
    let env = Env::start().await;
    let (transcript, code) = converse(&env, &["create"], |t| {
        t.answer("DATABASE_URL (input hidden): ", DB_URL)?;
        t.answer("DATABASE_URL again to confirm: ", DB_URL)?;
        t.answer(
            "Generate a random value (32 random bytes, base64url)? [Y/n] ",
            "",
        )?;
        t.answer("OPENAI_API_KEY (input hidden): ", OPENAI)?;
        t.answer("OPENAI_API_KEY again to confirm: ", OPENAI)
    })
    .await;
    assert_eq!(code, 0, "exit {code}: {transcript}");
    assert!(
        transcript.contains("Values are never shown"),
        "{transcript}"
    );
    assert!(transcript.contains("TERMINAL-ECHO-ON"), "{transcript}");
    assert!(
        transcript.contains("generated BETTER_AUTH_SECRET"),
        "{transcript}"
    );
    let data = env.data().await;
    assert_eq!(data["DATABASE_URL"], DB_URL);
    assert_eq!(data["OPENAI_API_KEY"], OPENAI);
    let auth = data["BETTER_AUTH_SECRET"].clone();
    assert_eq!(auth.len(), 43);
    assert_no_canary(&transcript, &[CANARIES, &[auth.as_str()]].concat());
    env.assert_only_in_secret_data(&[DB_URL, OPENAI, &auth]);

    // On a second run every key is set: Enter keeps each one.
    let (transcript, code) = converse(&env, &["create"], |t| {
        t.answer("Replace it? [y/N] ", "")?;
        t.answer("Replace it? [y/N] ", "")?;
        t.answer("Replace it? [y/N] ", "")
    })
    .await;
    assert_eq!(code, 0, "exit {code}: {transcript}");
    assert!(transcript.contains("unchanged"), "{transcript}");
    assert_no_canary(&transcript, &[CANARIES, &[auth.as_str()]].concat());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_confirmation_asks_again_and_ctrl_c_then_writes_nothing() {
    let env = Env::start().await;
    let (transcript, code) = converse(&env, &["set", "OPENAI_API_KEY"], |t| {
        t.answer("OPENAI_API_KEY (input hidden): ", OPENAI)?;
        t.answer("OPENAI_API_KEY again to confirm: ", OTHER)?;
        t.wait_for("the two values differ; try again")?;
        t.answer("OPENAI_API_KEY (input hidden): ", OPENAI)?;
        t.wait_for("OPENAI_API_KEY again to confirm: ")?;
        t.ctrl_c()
    })
    .await;
    assert_eq!(code, 130, "exit {code}: {transcript}");
    assert!(
        transcript.contains("cancelled; nothing was written"),
        "{transcript}"
    );
    assert!(transcript.contains("TERMINAL-ECHO-ON"), "{transcript}");
    assert_no_canary(&transcript, CANARIES);
    assert!(env.secret().await.is_none());
    env.assert_only_in_secret_data(CANARIES);
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_midway_through_create_writes_nothing() {
    let env = Env::start().await;
    let (transcript, code) = converse(&env, &["create"], |t| {
        t.answer("DATABASE_URL (input hidden): ", DB_URL)?;
        t.answer("DATABASE_URL again to confirm: ", DB_URL)?;
        t.answer("[Y/n] ", "y")?;
        t.wait_for("OPENAI_API_KEY (input hidden): ")?;
        t.type_text("sk-half-typed")?;
        t.ctrl_c()
    })
    .await;
    assert_eq!(code, 130, "exit {code}: {transcript}");
    assert!(
        transcript.contains("cancelled; nothing was written"),
        "{transcript}"
    );
    assert!(transcript.contains("TERMINAL-ECHO-ON"), "{transcript}");
    assert_no_canary(&transcript, CANARIES);
    assert!(!transcript.contains("sk-half-typed"), "{transcript}");
    assert!(env.secret().await.is_none());
    env.assert_only_in_secret_data(CANARIES);
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_or_mismatched_values_three_times_give_up_without_writing() {
    let env = Env::start().await;
    let bad_url = "mysql://app:canary-tty-db-93ab@db/todo";
    let (transcript, code) = converse(&env, &["set", "DATABASE_URL"], |t| {
        t.answer(
            "DATABASE_URL (input hidden): ",
            "mysql://app:canary-tty-db-93ab@db/todo",
        )?;
        t.wait_for("DATABASE_URL must start with postgres:// or postgresql://; try again")?;
        t.answer("DATABASE_URL (input hidden): ", DB_URL)?;
        t.answer("again to confirm: ", "postgres://x@y/z")?;
        t.answer("DATABASE_URL (input hidden): ", DB_URL)?;
        t.answer("again to confirm: ", "")
    })
    .await;
    assert_eq!(code, 1, "exit {code}: {transcript}");
    assert!(
        transcript.contains("did not match or were invalid three times; nothing was written"),
        "{transcript}"
    );
    assert_no_canary(&transcript, &[CANARIES, &[bad_url]].concat());
    assert!(env.secret().await.is_none());
}

/// SIGTERM while a value is being typed (hidden, the terminal's echo off):
/// the terminal gets its modes back, nothing is written, and the exit status
/// is the shell's for SIGTERM.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_at_a_hidden_prompt_gives_the_terminal_back_and_writes_nothing() {
    let env = Env::start().await;
    let (transcript, code) = converse(&env, &["set", "OPENAI_API_KEY"], |t| {
        t.wait_for("OPENAI_API_KEY (input hidden): ")?;
        t.type_text("sk-half-typed")?;
        // kubectl-todo is the child of the shell the session runs.
        let sh = t.pid();
        let children = std::fs::read_to_string(format!("/proc/{sh}/task/{sh}/children"))?;
        let pid: i32 = children.split_whitespace().next().unwrap().parse().unwrap();
        // SAFETY: signalling a process this test started.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        Ok(())
    })
    .await;
    assert_eq!(code, 143, "exit {code}: {transcript}");
    assert!(
        transcript.contains("error: interrupted by SIGTERM"),
        "{transcript}"
    );
    assert!(transcript.contains("TERMINAL-ECHO-ON"), "{transcript}");
    assert!(!transcript.contains("sk-half-typed"), "{transcript}");
    assert!(env.secret().await.is_none());
}
