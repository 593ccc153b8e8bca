//! The kubeconfig as kubectl reads it, and its credentials never shown: a
//! `KUBECONFIG` list with a missing file, and an exec credential plugin that
//! prints a token and fails.

use std::path::Path;
use std::process::Output;

use kube::config::Kubeconfig;
use kube_emulator::{Config, Emulator};

const TOKEN: &str = "canary-exec-token-0123456789";

fn kubectl_todo(project: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-todo"));
    cmd.args(args)
        .arg("--project")
        .arg(project)
        .env_remove("KUBECONFIG")
        .env("HOME", project);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("kubectl-todo runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_file_in_the_kubeconfig_list_is_skipped_as_kubectl_does() {
    let emu = Emulator::start(Config::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    emu.write_kubeconfig(&real).unwrap();
    let list = format!(
        "{}:{}",
        dir.path().join("missing").display(),
        real.display()
    );
    let out = tokio::task::block_in_place(|| {
        kubectl_todo(dir.path(), &["secrets", "list"], &[("KUBECONFIG", &list)])
    });
    let all = text(&out);
    // The cluster was reached: the answer is about the Secret, not the kubeconfig.
    assert!(
        all.contains("secret/todo-secrets does not exist in namespace todo"),
        "{all}"
    );
    assert!(!all.contains("kubeconfig"), "{all}");
}

/// A kubeconfig whose user runs `plugin` for its credentials.
fn with_plugin(emu_config: &Path, plugin: &Path, interactive: &str, to: &Path) {
    let mut config = Kubeconfig::read_from(emu_config).unwrap();
    let user = config.auth_infos[0].auth_info.as_mut().unwrap();
    *user = serde_json::from_value(serde_json::json!({"exec": {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": plugin,
        "interactiveMode": interactive,
    }}))
    .unwrap();
    std::fs::write(to, serde_json::to_string(&config).unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_credential_plugin_shows_its_stderr_never_its_stdout() {
    use std::os::unix::fs::PermissionsExt as _;
    let emu = Emulator::start(Config::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let emu_config = dir.path().join("emulator");
    emu.write_kubeconfig(&emu_config).unwrap();
    let plugin = dir.path().join("plugin");
    let credential = format!(
        r#"{{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{{"token":"{TOKEN}"}}}}"#
    );
    std::fs::write(
        &plugin,
        format!("#!/bin/sh\necho '{credential}'\necho 'plugin: the session expired, log in again' >&2\nexit 1\n"),
    )
    .unwrap();
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
    for interactive in ["Never", "IfAvailable"] {
        let kubeconfig = dir.path().join(format!("kubeconfig-{interactive}"));
        with_plugin(&emu_config, &plugin, interactive, &kubeconfig);
        for args in [
            &["status"][..],
            &["secrets", "list"],
            &["doctor"],
            &["doctor", "-o", "json"],
        ] {
            let mut all = args.to_vec();
            all.extend(["--kubeconfig", kubeconfig.to_str().unwrap()]);
            let out = tokio::task::block_in_place(|| kubectl_todo(dir.path(), &all, &[]));
            let all = text(&out);
            assert!(!out.status.success(), "{args:?}: {all}");
            assert!(
                !all.contains("canary-exec-token"),
                "{args:?} printed the token:\n{all}"
            );
            for dump in ["Output {", "Status {", "ExitStatus(", "stdout: ["] {
                assert!(!all.contains(dump), "{args:?} printed a debug dump:\n{all}");
            }
            assert!(
                all.contains("plugin: the session expired, log in again"),
                "{args:?} ({interactive}) hides the plugin's stderr:\n{all}"
            );
        }
    }
}
