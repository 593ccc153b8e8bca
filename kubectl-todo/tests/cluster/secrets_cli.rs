//! `kubectl todo secrets` without a terminal, through the real binary
//! against the emulator: every path checks that the canary values never
//! reach stdout, stderr or any stored object but the Secret's data.

use crate::secrets_support;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use kube_emulator::faults::{Denial, Fault};
use secrets_support::{Env, NAMESPACE, SECRET, Uses, assert_no_canary};

const DB_PASSWORD: &str = "canary-db-7f3a9c";
const DB_URL: &str = "postgres://app:canary-db-7f3a9c@db.todo.svc:5432/todo";
const AUTH: &str = "canary-auth-8e41b0aa";
const OPENAI: &str = "sk-canary-openai-51d2";
const CANARIES: &[&str] = &[DB_URL, DB_PASSWORD, AUTH, OPENAI];

fn env_file() -> String {
    format!(
        "# production\nexport DATABASE_URL=\"{DB_URL}\"\nBETTER_AUTH_SECRET='{AUTH}'\nOPENAI_API_KEY={OPENAI} # from the dashboard\n"
    )
}

/// The Secret with all three keys, written from an env file.
async fn created(env: &Env) {
    let path = env.file("prod.env", env_file().as_bytes());
    let run = env
        .run(&["create", "--from-env-file", path.to_str().unwrap()])
        .await;
    run.ok_stdout();
    assert_no_canary(&run.all(), CANARIES);
}

#[tokio::test(flavor = "multi_thread")]
async fn create_from_an_env_file_applies_every_key_with_the_apps_labels() {
    let env = Env::start().await;
    let path = env.file("prod.env", env_file().as_bytes());
    let run = env
        .run(&["create", "--from-env-file", path.to_str().unwrap()])
        .await;
    let out = run.ok_stdout();
    assert!(
        out.contains("secret/todo-secrets in namespace todo: set DATABASE_URL, BETTER_AUTH_SECRET, OPENAI_API_KEY"),
        "{out}"
    );
    assert!(
        out.contains("no Deployment uses secret/todo-secrets yet"),
        "{out}"
    );
    assert_no_canary(&run.all(), CANARIES);

    let data = env.data().await;
    assert_eq!(data["DATABASE_URL"], DB_URL);
    assert_eq!(data["BETTER_AUTH_SECRET"], AUTH);
    assert_eq!(data["OPENAI_API_KEY"], OPENAI);
    let secret = env.secret().await.unwrap();
    let labels = secret.metadata.labels.unwrap();
    assert_eq!(labels["app.kubernetes.io/managed-by"], "kubectl-todo");
    assert_eq!(labels["app.kubernetes.io/instance"], "todo");
    let managers: Vec<(String, String)> = secret
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .map(|m| {
            (
                m.manager.unwrap_or_default(),
                m.operation.unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        managers,
        [("kubectl-todo".to_string(), "Apply".to_string())]
    );
    env.assert_only_in_secret_data(CANARIES);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_invalid_value_means_nothing_is_written() {
    let env = Env::start().await;
    let text = format!(
        "DATABASE_URL=mysql://app:{DB_PASSWORD}@db/todo\nBETTER_AUTH_SECRET={AUTH}\nOPENAI_API_KEY=\n"
    );
    let path = env.file("bad.env", text.as_bytes());
    let run = env
        .run(&["create", "--from-env-file", path.to_str().unwrap()])
        .await;
    let err = run.failed_stderr();
    assert!(
        err.contains("2 values are invalid; nothing was written"),
        "{err}"
    );
    assert!(
        err.contains("DATABASE_URL (")
            && err.contains("bad.env line 1): must start with postgres://"),
        "{err}"
    );
    assert!(
        err.contains("OPENAI_API_KEY (") && err.contains("bad.env line 3): is empty"),
        "{err}"
    );
    assert!(err.contains("hint: "), "{err}");
    assert_no_canary(&run.all(), CANARIES);
    assert!(env.secret().await.is_none());
    env.assert_only_in_secret_data(CANARIES);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_env_lines_and_duplicates_are_reported_by_line_number() {
    let env = Env::start().await;
    let text = format!("DATABASE_URL={DB_URL}\n{OPENAI}\nDATABASE_URL={DB_URL}\nB='{AUTH}\n");
    let path = env.file("broken.env", text.as_bytes());
    let run = env
        .run(&["create", "--from-env-file", path.to_str().unwrap()])
        .await;
    let err = run.failed_stderr();
    assert!(
        err.contains("broken.env line 2: expected KEY=VALUE"),
        "{err}"
    );
    assert!(
        err.contains("broken.env line 3: DATABASE_URL is already set on line 1"),
        "{err}"
    );
    assert!(
        err.contains("broken.env line 4: the quote that opens the value is never closed"),
        "{err}"
    );
    assert_no_canary(&run.all(), CANARIES);
    assert!(env.secret().await.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn stdin_files_and_generation_fill_the_keys_and_required_ones_are_enforced() {
    let env = Env::start().await;
    let db = env.file("db-url", format!("{DB_URL}\n").as_bytes());
    let from_file = format!("DATABASE_URL={}", db.display());

    let partial = env
        .run_with_stdin(&["create", "--from-file", &from_file], b"")
        .await;
    let err = partial.failed_stderr();
    assert!(
        err.contains(
            "required keys are missing: BETTER_AUTH_SECRET, OPENAI_API_KEY; nothing was written"
        ),
        "{err}"
    );
    assert!(env.secret().await.is_none());

    let args = [
        "create",
        "--from-file",
        &from_file,
        "--stdin",
        "OPENAI_API_KEY",
        "--generate",
        "BETTER_AUTH_SECRET",
    ];
    let run = env
        .run_with_stdin(&args, format!("{OPENAI}\n").as_bytes())
        .await;
    let out = run.ok_stdout();
    assert!(
        out.contains("set DATABASE_URL, OPENAI_API_KEY; generated BETTER_AUTH_SECRET"),
        "{out}"
    );
    assert_no_canary(&run.all(), CANARIES);
    let data = env.data().await;
    assert_eq!(data["DATABASE_URL"], DB_URL, "one final newline is dropped");
    assert_eq!(data["OPENAI_API_KEY"], OPENAI);
    let generated = &data["BETTER_AUTH_SECRET"];
    assert_eq!(generated.len(), 43, "32 bytes, base64url without padding");
    assert!(
        generated
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert_no_canary(&run.all(), &[generated]);
    env.assert_only_in_secret_data(&[DB_URL, OPENAI, generated]);
}

#[tokio::test(flavor = "multi_thread")]
async fn literal_values_are_refused_unless_explicitly_allowed() {
    let env = Env::start().await;
    let literal = format!("OPENAI_API_KEY={OPENAI}");
    let run = env.run(&["create", "--from-literal", &literal]).await;
    let err = run.failed_stderr();
    assert!(
        err.contains("refusing the value of OPENAI_API_KEY given on the command line"),
        "{err}"
    );
    assert!(err.contains("--allow-insecure-literal"), "{err}");
    assert_no_canary(&run.all(), CANARIES);

    let run = env.run(&["set", "OPENAI_API_KEY", OPENAI]).await;
    assert!(
        run.failed_stderr()
            .contains("refusing the value of OPENAI_API_KEY"),
        "{}",
        run.stderr
    );
    assert_no_canary(&run.all(), CANARIES);
    let run = env
        .run(&["set", &literal, "--allow-insecure-literal"])
        .await;
    assert!(
        run.failed_stderr()
            .contains("refusing the value of OPENAI_API_KEY"),
        "{}",
        run.stderr
    );
    assert_no_canary(&run.all(), CANARIES);
    assert!(env.secret().await.is_none());

    let run = env
        .run(&["set", "OPENAI_API_KEY", OPENAI, "--allow-insecure-literal"])
        .await;
    run.ok_stdout();
    assert_no_canary(&run.all(), CANARIES);
    assert_eq!(env.data().await["OPENAI_API_KEY"], OPENAI);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_terminal_or_a_source_the_command_says_how_to_give_values() {
    let env = Env::start().await;
    let run = env.run(&["create"]).await;
    let err = run.failed_stderr();
    assert!(
        err.contains("stdin is not a terminal and no value was given"),
        "{err}"
    );
    assert!(
        err.contains("hint: give the values with --from-env-file"),
        "{err}"
    );
    let run = env.run(&["set", "OPENAI_API_KEY"]).await;
    assert!(
        run.failed_stderr().contains("for OPENAI_API_KEY"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn values_over_the_secret_limit_are_refused() {
    let env = Env::start().await;
    let big = env.file("big", &vec![b'a'; 1024 * 1024 + 1]);
    let run = env
        .run(&["set", "BLOB", "--from-file", big.to_str().unwrap()])
        .await;
    let err = run.failed_stderr();
    assert!(
        err.contains("BLOB (--from-file") && err.contains("over the 1 MiB limit"),
        "{err}"
    );
    assert!(env.secret().await.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn list_shows_lengths_fingerprints_and_change_times_but_never_values() {
    let env = Env::start().await;
    created(&env).await;
    let run = env.run(&["list"]).await;
    let out = run.ok_stdout();
    assert_no_canary(&run.all(), CANARIES);
    let line = out
        .lines()
        .find(|l| l.starts_with("OPENAI_API_KEY"))
        .expect(out);
    assert!(line.contains(&OPENAI.len().to_string()), "{line}");
    assert!(line.contains("sha256:"), "{line}");

    let run = env.run(&["list", "-o", "json"]).await;
    assert_no_canary(&run.all(), CANARIES);
    let json: serde_json::Value = serde_json::from_str(run.ok_stdout()).unwrap();
    assert_eq!(json["secret"], SECRET);
    let keys = json["keys"].as_array().unwrap();
    let names: Vec<&str> = keys.iter().map(|k| k["key"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["DATABASE_URL", "BETTER_AUTH_SECRET", "OPENAI_API_KEY"]
    );
    let db = &keys[0];
    assert_eq!(db["length"], DB_URL.len());
    assert_eq!(db["present"], true);
    let fingerprint = db["fingerprint"].as_str().unwrap();
    assert_eq!(fingerprint.len(), "sha256:".len() + 8);
    assert!(db["lastChange"].as_str().unwrap().ends_with('Z'));
    assert_ne!(keys[1]["fingerprint"], keys[2]["fingerprint"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_fails_until_every_required_key_is_set() {
    let env = Env::start().await;
    let run = env.run(&["check", "-o", "json"]).await;
    assert_eq!(run.code, Some(1));
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["ok"], false);
    assert_eq!(json["exists"], false);

    let run = env
        .run_with_stdin(&["set", "OPENAI_API_KEY", "--stdin"], OPENAI.as_bytes())
        .await;
    run.ok_stdout();
    let run = env.run(&["check"]).await;
    assert_eq!(run.code, Some(1));
    assert!(
        run.stdout.contains("DATABASE_URL") && run.stdout.contains("missing (required)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("OPENAI_API_KEY") && run.stdout.contains("ok"),
        "{}",
        run.stdout
    );

    created(&env).await;
    let run = env.run(&["check", "-o", "json"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["ok"], true);
    assert!(
        json["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["status"] == "ok")
    );
    assert_no_canary(&run.all(), CANARIES);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_rolls_the_deployments_that_use_the_secret_and_says_which() {
    let env = Env::start().await;
    env.deployment("todo-backend", Uses::KeyRef).await;
    env.deployment("todo-frontend", Uses::EnvFrom).await;
    env.deployment("unrelated", Uses::Nothing).await;
    assert_eq!(env.wait_for_replica_sets("todo-backend", 1).await.len(), 1);

    let path = env.file("prod.env", env_file().as_bytes());
    let run = env
        .run(&["create", "--from-env-file", path.to_str().unwrap()])
        .await;
    let out = run.ok_stdout();
    assert!(
        out.contains("restarted deployment/todo-backend, deployment/todo-frontend"),
        "{out}"
    );
    let first = env.checksum_of("todo-backend").await.expect("checksum set");
    assert_eq!(
        env.checksum_of("todo-frontend").await.as_ref(),
        Some(&first)
    );
    assert_eq!(env.checksum_of("unrelated").await, None);
    // The controller turns the template change into a new ReplicaSet: a rollout.
    assert_eq!(env.wait_for_replica_sets("todo-backend", 2).await.len(), 2);

    let run = env.run(&["rotate", "BETTER_AUTH_SECRET"]).await;
    let out = run.ok_stdout();
    assert!(out.contains("generated BETTER_AUTH_SECRET"), "{out}");
    assert!(
        out.contains("restarted deployment/todo-backend, deployment/todo-frontend"),
        "{out}"
    );
    assert_ne!(env.data().await["BETTER_AUTH_SECRET"], AUTH);
    let second = env.checksum_of("todo-backend").await.unwrap();
    assert_ne!(first, second);

    let run = env
        .run_with_stdin(
            &["set", "OPENAI_API_KEY", "--stdin", "--no-restart"],
            b"sk-new-value\n",
        )
        .await;
    let out = run.ok_stdout();
    assert!(out.contains("not restarting (--no-restart)"), "{out}");
    assert_eq!(env.checksum_of("todo-backend").await, Some(second));

    let run = env
        .run_with_stdin(&["set", "OPENAI_API_KEY", "--stdin"], b"sk-new-value\n")
        .await;
    assert!(run.ok_stdout().contains("unchanged"), "{}", run.stdout);
    env.assert_only_in_secret_data(CANARIES);
}

#[tokio::test(flavor = "multi_thread")]
async fn rotate_refuses_keys_that_cannot_be_generated() {
    let env = Env::start().await;
    created(&env).await;
    let run = env.run(&["rotate", "OPENAI_API_KEY"]).await;
    let err = run.failed_stderr();
    assert!(err.contains("OPENAI_API_KEY cannot be generated"), "{err}");
    assert!(
        err.contains("kubectl todo secrets set OPENAI_API_KEY"),
        "{err}"
    );
    assert_eq!(env.data().await["OPENAI_API_KEY"], OPENAI);
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_removes_one_key_or_the_whole_secret() {
    let env = Env::start().await;
    created(&env).await;
    let run = env.run(&["delete", "OPENAI_API_KEY"]).await;
    assert!(
        run.ok_stdout().contains("removed OPENAI_API_KEY"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("OPENAI_API_KEY is required"),
        "{}",
        run.stderr
    );
    let data = env.data().await;
    assert!(!data.contains_key("OPENAI_API_KEY"));
    assert_eq!(data["DATABASE_URL"], DB_URL);

    let run = env.run(&["delete", "OPENAI_API_KEY"]).await;
    assert!(
        run.failed_stderr()
            .contains("secret/todo-secrets has no key OPENAI_API_KEY"),
        "{}",
        run.stderr
    );

    env.deployment("todo-backend", Uses::EnvFrom).await;
    let run = env.run(&["delete"]).await;
    assert!(
        run.ok_stdout()
            .contains("secret/todo-secrets deleted from namespace todo"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("deployment/todo-backend uses the Secret"),
        "{}",
        run.stderr
    );
    assert!(env.secret().await.is_none());
    let run = env.run(&["delete"]).await;
    assert!(
        run.failed_stderr()
            .contains("does not exist in namespace todo"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_namespace_is_created_only_when_asked() {
    let env = Env::without_namespace().await;
    let path = env.file("prod.env", env_file().as_bytes());
    let file = path.to_str().unwrap();
    let run = env.run(&["create", "--from-env-file", file]).await;
    let err = run.failed_stderr();
    assert!(
        err.contains("namespace todo does not exist; nothing was written"),
        "{err}"
    );
    assert!(err.contains("hint: pass --create-namespace"), "{err}");
    assert_no_canary(&run.all(), CANARIES);

    let run = env
        .run(&["create", "--from-env-file", file, "--create-namespace"])
        .await;
    run.ok_stdout();
    let ns = Api::<Namespace>::all(env.client.clone())
        .get(NAMESPACE)
        .await
        .unwrap();
    assert_eq!(
        ns.metadata.labels.unwrap()["app.kubernetes.io/managed-by"],
        "kubectl-todo"
    );
    assert_eq!(env.data().await["DATABASE_URL"], DB_URL);
    env.assert_only_in_secret_data(CANARIES);
}

#[tokio::test(flavor = "multi_thread")]
async fn forbidden_writes_explain_the_permission_and_write_nothing() {
    let env = Env::start().await;
    env.emulator.faults().deny(Denial {
        verb: "patch".into(),
        resource: "secrets".into(),
        namespace: Some(NAMESPACE.into()),
        ..Denial::default()
    });
    let path = env.file("prod.env", env_file().as_bytes());
    let run = env
        .run(&["create", "--from-env-file", path.to_str().unwrap()])
        .await;
    let err = run.failed_stderr();
    assert!(err.contains("cannot write secret/todo-secrets"), "{err}");
    assert!(err.contains("forbidden"), "{err}");
    assert!(
        err.contains("kubectl auth can-i patch secrets -n todo"),
        "{err}"
    );
    assert_no_canary(&run.all(), CANARIES);
    assert!(env.secret().await.is_none());
    env.assert_only_in_secret_data(CANARIES);
}

#[tokio::test(flavor = "multi_thread")]
async fn api_errors_are_reported_with_any_echoed_value_redacted() {
    let env = Env::start().await;
    let path = env.file("prod.env", env_file().as_bytes());
    let file = path.to_str().unwrap();
    // A server (or webhook) that echoes the request in its message.
    env.emulator.faults().add(Fault {
        method: Some("PATCH".into()),
        path: Some("/secrets/".into()),
        code: Some(500),
        message: Some(format!(
            "internal error while storing {OPENAI} and {DB_URL}"
        )),
        times: Some(1),
        ..Fault::default()
    });
    let run = env.run(&["create", "--from-env-file", file]).await;
    let err = run.failed_stderr();
    assert!(
        err.contains("internal error while storing [redacted] and [redacted]"),
        "{err}"
    );
    assert!(err.contains("the API server failed; try again"), "{err}");
    assert_no_canary(&run.all(), CANARIES);
    assert!(env.secret().await.is_none());

    env.emulator.faults().add(Fault {
        method: Some("PATCH".into()),
        path: Some("/secrets/".into()),
        code: Some(409),
        message: Some("the object has been modified".into()),
        times: Some(1),
        ..Fault::default()
    });
    let run = env.run(&["create", "--from-env-file", file]).await;
    let err = run.failed_stderr();
    assert!(
        err.contains("the Secret changed while kubectl-todo was writing it"),
        "{err}"
    );
    assert_no_canary(&run.all(), CANARIES);
    assert!(env.secret().await.is_none());
    env.assert_only_in_secret_data(CANARIES);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_restart_says_the_secret_was_written_and_how_to_restart() {
    let env = Env::start().await;
    env.deployment("todo-backend", Uses::EnvFrom).await;
    env.emulator.faults().deny(Denial {
        verb: "patch".into(),
        group: "apps".into(),
        resource: "deployments".into(),
        ..Denial::default()
    });
    let path = env.file("prod.env", env_file().as_bytes());
    let run = env
        .run(&["create", "--from-env-file", path.to_str().unwrap()])
        .await;
    let err = run.failed_stderr();
    assert!(
        run.stdout
            .contains("secret/todo-secrets in namespace todo: set"),
        "{}",
        run.stdout
    );
    assert!(
        err.contains(
            "secret/todo-secrets was updated, but restarting the Deployments that use it failed"
        ),
        "{err}"
    );
    assert!(
        err.contains("kubectl rollout restart deployment/NAME -n todo"),
        "{err}"
    );
    assert_no_canary(&run.all(), CANARIES);
    assert_eq!(env.data().await["OPENAI_API_KEY"], OPENAI);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forbidden_read_names_the_get_permission() {
    let env = Env::start().await;
    env.emulator.faults().deny(Denial {
        verb: "get".into(),
        resource: "secrets".into(),
        ..Denial::default()
    });
    let run = env.run(&["list"]).await;
    let err = run.failed_stderr();
    assert!(err.contains("cannot read secret/todo-secrets"), "{err}");
    assert!(
        err.contains("kubectl auth can-i get secrets -n todo"),
        "{err}"
    );
}

#[test]
fn help_shows_examples_for_every_subcommand() {
    let bin = env!("CARGO_BIN_EXE_kubectl-todo");
    for sub in [
        &[][..],
        &["create"],
        &["set"],
        &["list"],
        &["rotate"],
        &["delete"],
        &["check"],
    ] {
        let out = std::process::Command::new(bin)
            .arg("secrets")
            .args(sub)
            .arg("--help")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{sub:?}: {text}");
        assert!(
            text.contains("Examples:") && text.contains("\n  kubectl todo secrets "),
            "{sub:?}: {text}"
        );
    }
}

/// A Secret made by another tool (kubectl create secret), owned by its manager.
async fn made_elsewhere(env: &Env, data: serde_json::Value) {
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": SECRET, "namespace": NAMESPACE},
        "type": "Opaque",
        "stringData": data,
    }))
    .unwrap();
    let params = kube::api::PostParams {
        field_manager: Some("kubectl-create".into()),
        ..Default::default()
    };
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(env.client.clone(), NAMESPACE)
        .create(&params, &secret)
        .await
        .expect("secret created");
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reports_invalid_values_in_the_cluster_without_showing_them() {
    let env = Env::start().await;
    let bad = format!("mysql://app:{DB_PASSWORD}@db/todo");
    made_elsewhere(
        &env,
        serde_json::json!({"DATABASE_URL": bad, "BETTER_AUTH_SECRET": AUTH, "OPENAI_API_KEY": ""}),
    )
    .await;
    let run = env.run(&["check", "-o", "json"]).await;
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert_no_canary(&run.all(), &[&bad, DB_PASSWORD, AUTH]);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let status: Vec<(&str, &str)> = json["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["key"].as_str().unwrap(), k["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        status,
        [
            ("DATABASE_URL", "invalid"),
            ("BETTER_AUTH_SECRET", "ok"),
            ("OPENAI_API_KEY", "empty")
        ]
    );
    assert_eq!(
        json["keys"][0]["reason"],
        "must start with postgres:// or postgresql://"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_another_tool_owns_are_still_deleted_and_list_falls_back_to_managed_fields() {
    let env = Env::start().await;
    made_elsewhere(
        &env,
        serde_json::json!({"DATABASE_URL": DB_URL, "BETTER_AUTH_SECRET": AUTH, "OPENAI_API_KEY": OPENAI}),
    )
    .await;
    let run = env.run(&["list", "-o", "json"]).await;
    let json: serde_json::Value = serde_json::from_str(run.ok_stdout()).unwrap();
    assert!(json["keys"][2]["lastChange"].as_str().is_some(), "{json}");

    let run = env.run(&["delete", "OPENAI_API_KEY"]).await;
    assert!(
        run.ok_stdout().contains("removed OPENAI_API_KEY"),
        "{}",
        run.stdout
    );
    let data = env.data().await;
    assert!(!data.contains_key("OPENAI_API_KEY"), "{data:?}");
    assert_eq!(data["DATABASE_URL"], DB_URL);
    assert_no_canary(&run.all(), CANARIES);
    env.assert_only_in_secret_data(CANARIES);
}
