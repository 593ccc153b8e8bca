//! A run that is refused changes nothing: not even the annotation a Secret
//! made by another tool gets (the key of its checksum) is written before
//! the run holds the app's lock.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta, PostParams};

use crate::harness::{App, Cluster, run_against};

const PROJECT: &str = "name: shop\nsecret:\n  keys:\n    - name: API_KEY\ncomponents:\n  - {name: web, port: 3000}\n  - {name: api, port: 8000, secretKeys: [API_KEY]}\n";
const IMAGES: [&str; 4] = [
    "--image",
    "web=shop-web:1111111111111111",
    "--image",
    "api=shop-api:2222222222222222",
];

#[tokio::test(flavor = "multi_thread")]
async fn runs_refused_by_a_held_lock_leave_the_secret_as_it_was() {
    let cluster = Cluster::start().await;
    let kc = cluster.kubeconfig().to_string();
    let app = App::with_file(PROJECT);
    cluster.namespace("shop").await;
    cluster
        .secret("shop", "shop-secrets", &[("API_KEY", "canary-refused-1")])
        .await;
    let mut apply = vec!["apply"];
    apply.extend(IMAGES);
    // Two revisions, so that there is one to roll back to.
    run_against(&app, &kc, &apply).await.ok();
    run_against(&app, &kc, &apply).await.ok();

    // The Secret as another tool makes it: no key for its checksum.
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "shop");
    secrets
        .delete("shop-secrets", &DeleteParams::default())
        .await
        .unwrap();
    let before = cluster
        .secret("shop", "shop-secrets", &[("API_KEY", "canary-refused-2")])
        .await;
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), "shop");
    let held = Lease {
        metadata: ObjectMeta {
            name: Some("shop-lock".into()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("elsewhere/42".into()),
            lease_duration_seconds: Some(300),
            renew_time: Some(MicroTime(jiff::Timestamp::now())),
            ..LeaseSpec::default()
        }),
    };
    leases.create(&PostParams::default(), &held).await.unwrap();

    let mut up = vec!["up", "--no-wait"];
    up.extend(IMAGES);
    for args in [&up[..], &apply[..], &["rollback", "--no-wait"][..]] {
        let out = run_against(&app, &kc, args).await.failed();
        assert!(
            out.stderr
                .contains("another operation on shop is in progress: elsewhere/42"),
            "{args:?}: {}",
            out.stderr
        );
        let after = secrets.get("shop-secrets").await.unwrap();
        assert_eq!(
            after.metadata.resource_version, before.metadata.resource_version,
            "{args:?} wrote to the Secret: {:?}",
            after.metadata.annotations
        );
    }

    // Once the lock is free, the next run gives the Secret its key.
    leases
        .delete("shop-lock", &DeleteParams::default())
        .await
        .unwrap();
    run_against(&app, &kc, &up).await.ok();
    let after = secrets.get("shop-secrets").await.unwrap();
    assert!(
        after
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key("kubectl-todo/checksum-key")
    );
}

/// Where a user runs from: a folder holding the app in `apps/my shop`, a
/// kubeconfig in a folder with a space whose current context points at
/// nothing (so a command without `--context emulated` fails), and `kubectl`
/// on PATH as the plugin machinery calls `kubectl-todo`.
struct Elsewhere {
    dir: tempfile::TempDir,
    kubeconfig: std::path::PathBuf,
}

impl Elsewhere {
    fn new(cluster: &Cluster) -> Elsewhere {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("apps/my shop");
        std::fs::create_dir_all(&app).unwrap();
        std::fs::write(app.join("todo.yaml"), PROJECT).unwrap();
        std::fs::write(app.join(".env"), "API_KEY=canary-pasted-1\n").unwrap();
        let text = std::fs::read_to_string(&cluster.kubeconfig).unwrap();
        let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        let mut stale = doc["contexts"][0].clone();
        doc["contexts"][0]["name"] = "emulated".into();
        stale["name"] = "elsewhere".into();
        stale["context"]["cluster"] = "nowhere".into();
        let mut nowhere = doc["clusters"][0].clone();
        nowhere["name"] = "nowhere".into();
        nowhere["cluster"]["server"] = "https://127.0.0.1:9".into();
        doc["contexts"].as_sequence_mut().unwrap().push(stale);
        doc["clusters"].as_sequence_mut().unwrap().push(nowhere);
        doc["current-context"] = "elsewhere".into();
        let kubeconfig = dir.path().join("my configs/kubeconfig");
        std::fs::create_dir_all(kubeconfig.parent().unwrap()).unwrap();
        std::fs::write(&kubeconfig, serde_yaml_ng::to_string(&doc).unwrap()).unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let shim = bin.join("kubectl");
        std::fs::write(
            &shim,
            format!(
                "#!/bin/sh\n[ \"$1\" = todo ] || exit 97\nshift\nexec '{}' \"$@\"\n",
                crate::harness::binary()
            ),
        )
        .unwrap();
        let mut perms = std::fs::metadata(&shim).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&shim, perms).unwrap();
        Elsewhere { dir, kubeconfig }
    }

    /// `kubectl todo up` with the user's global flags, from the folder above the app.
    async fn up(&self) -> crate::harness::Run {
        let mut args = vec![
            "--project",
            "apps/my shop",
            "--kubeconfig",
            self.kubeconfig.to_str().unwrap(),
            "--context",
            "emulated",
            "up",
            "--no-wait",
        ];
        args.extend(IMAGES);
        crate::harness::Run::from(
            tokio::process::Command::new(crate::harness::binary())
                .args(&args)
                .current_dir(self.dir.path())
                .env("KUBECONFIG", self.dir.path().join("no-kubeconfig"))
                .env("NO_COLOR", "1")
                .output()
                .await
                .expect("kubectl-todo runs"),
        )
    }

    /// The command the hint prints, pasted into a shell in the same folder,
    /// with the values from a file as a script would add them.
    async fn paste(&self, stderr: &str) -> crate::harness::Run {
        let hint = stderr
            .lines()
            .find(|l| l.starts_with("hint: create it with `"))
            .unwrap_or_else(|| panic!("no hint to create the Secret:\n{stderr}"));
        let command = hint.split('`').nth(1).unwrap();
        let path = format!(
            "{}:{}",
            self.dir.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        crate::harness::Run::from(
            tokio::process::Command::new("sh")
                .arg("-c")
                .arg(format!("{command} --from-env-file 'apps/my shop/.env'"))
                .current_dir(self.dir.path())
                .env("PATH", path)
                .env("KUBECONFIG", self.dir.path().join("no-kubeconfig"))
                .env("NO_COLOR", "1")
                .output()
                .await
                .expect("sh runs"),
        )
    }

    /// `stderr` with this run's folder as `[DIR]`.
    fn redacted(&self, stderr: &str) -> String {
        stderr.replace(self.dir.path().to_str().unwrap(), "[DIR]")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_missing_secret_hint_works_when_pasted_even_before_the_namespace_exists() {
    let cluster = Cluster::start().await;
    let user = Elsewhere::new(&cluster);
    crate::harness::canaries(["canary-pasted-1".to_string()]);

    // A fresh cluster: neither the namespace nor the Secret is there.
    let out = user.up().await.failed();
    insta::assert_snapshot!("missing_secret_new_namespace", user.redacted(&out.stderr));
    user.paste(&out.stderr).await.ok();
    user.up().await.ok();

    // The namespace is there now: the flag is not needed, so not printed.
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "shop");
    secrets
        .delete("shop-secrets", &DeleteParams::default())
        .await
        .unwrap();
    let out = user.up().await.failed();
    insta::assert_snapshot!("missing_secret", user.redacted(&out.stderr));
    user.paste(&out.stderr).await.ok();
    user.up().await.ok();
}
