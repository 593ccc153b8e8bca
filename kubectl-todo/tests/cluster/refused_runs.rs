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

/// The command `up`'s hint prints, run as printed (with the harness's
/// --project and --kubeconfig, and the values from a file as a script would).
async fn run_hinted(app: &App, kc: &str, stderr: &str) -> crate::harness::Run {
    let hint = stderr
        .lines()
        .find(|l| l.starts_with("hint: create it with `"))
        .unwrap_or_else(|| panic!("no hint to create the Secret:\n{stderr}"));
    let command = hint.split('`').nth(1).unwrap();
    let env_file = app.path().join(".env");
    let args: Vec<&str> = command
        .strip_prefix("kubectl todo ")
        .unwrap()
        .split_whitespace()
        .chain(["--from-env-file", env_file.to_str().unwrap()])
        .collect();
    run_against(app, kc, &args).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_missing_secret_hint_works_when_pasted_even_before_the_namespace_exists() {
    let cluster = Cluster::start().await;
    let kc = cluster.kubeconfig().to_string();
    let app = App::with_file(PROJECT);
    crate::harness::canaries(["canary-pasted-1".to_string()]);
    app.write(".env", "API_KEY=canary-pasted-1\n");
    let mut up = vec!["up", "--no-wait"];
    up.extend(IMAGES);

    // A fresh cluster: neither the namespace nor the Secret is there.
    let out = run_against(&app, &kc, &up).await.failed();
    assert!(
        out.stderr.contains(
            "hint: create it with `kubectl todo secrets create -n shop --create-namespace`; nothing was changed"
        ),
        "{}",
        out.stderr
    );
    run_hinted(&app, &kc, &out.stderr).await.ok();
    run_against(&app, &kc, &up).await.ok();

    // The namespace is there now: the flag is not needed, so not printed.
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "shop");
    secrets
        .delete("shop-secrets", &DeleteParams::default())
        .await
        .unwrap();
    let out = run_against(&app, &kc, &up).await.failed();
    assert!(
        out.stderr.contains(
            "hint: create it with `kubectl todo secrets create -n shop`; nothing was changed"
        ),
        "{}",
        out.stderr
    );
    run_hinted(&app, &kc, &out.stderr).await.ok();
    run_against(&app, &kc, &up).await.ok();
}
