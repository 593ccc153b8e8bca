//! `logs -f` while the app's Secret changes: a value set while someone
//! follows is hidden from the lines of the pods that start with it, and
//! the value it replaced stays hidden (an old pod may still print it).

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube_emulator::faults::Denial;
use serde_json::json;
use tokio::io::AsyncWriteExt as _;

use crate::harness::{self, App, Cluster, Running, against, run_against};

const OLD: &str = "canary-before-rotation-5c1e";
const NEW: &str = "canary-set-while-following-9d07";

/// Waits until the follower has printed `count` lines holding `marker`.
async fn lines_with(follower: &Running, marker: &str, count: usize) -> String {
    for _ in 0..300 {
        let out = follower.stdout();
        if out.matches(marker).count() >= count {
            return out;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "no {count} lines with {marker:?} within 30 s\n{}",
        follower.all()
    );
}

/// The app `shop` deployed with its Secret holding [`OLD`], its one
/// component's pods printing their key as they start.
async fn deployed() -> (Cluster, App) {
    let cluster = Cluster::start().await;
    let kc = cluster.kubeconfig().to_string();
    cluster.namespace("shop").await;
    cluster
        .secret("shop", "shop-secrets", &[("API_KEY", OLD)])
        .await;
    harness::canaries([NEW.to_string()]);
    cluster.load(&["shop-web:1"]).await;
    let app = App::with_file(
        "name: shop\nsecret:\n  keys:\n    - name: API_KEY\ncomponents:\n  - name: web\n    port: 3000\n    secretKeys: [API_KEY]\n",
    );
    run_against(
        &app,
        &kc,
        &["up", "--timeout", "60s", "--image", "web=shop-web:1"],
    )
    .await
    .ok();
    // Another manager makes the app print its key once it starts.
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), "shop");
    let talkative = json!({"spec": {"template": {"metadata": {"annotations": {
        "kube-emulator.dev/log-text": "key=$(API_KEY)",
    }}}}});
    deployments
        .patch(
            "shop-web",
            &PatchParams::default(),
            &Patch::Strategic(&talkative),
        )
        .await
        .unwrap();
    (cluster, app)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_value_set_while_following_is_hidden_and_so_is_the_old_one() {
    let (cluster, app) = deployed().await;
    let kc = cluster.kubeconfig().to_string();
    let follower = Running::start(against(&app, &kc, &["logs", "-f"]));
    let out = lines_with(&follower, "key=", 1).await;
    assert!(out.contains("key=[redacted]"), "{out}");

    // The change rolls the Deployment: its new pod prints the new value.
    let mut set = against(&app, &kc, &["secrets", "set", "API_KEY", "--stdin"]);
    set.stdin(std::process::Stdio::piped());
    let mut set = Running::start(set);
    let mut stdin = set.stdin().expect("stdin piped");
    stdin.write_all(NEW.as_bytes()).await.unwrap();
    drop(stdin);
    let run = set.finish_within(Duration::from_secs(60)).await.ok();
    assert!(
        run.stdout.contains("restarted deployment/shop-web"),
        "{}",
        run.all()
    );

    // Every look at the follower's output checks that neither value shows.
    let out = lines_with(&follower, "key=", 2).await;
    assert_eq!(
        out.matches("key=[redacted]").count(),
        out.matches("key=").count(),
        "{out}"
    );
    follower.signal(libc::SIGINT);
    follower.finish_within(Duration::from_secs(10)).await.ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_that_cannot_be_watched_is_said_once() {
    let (cluster, app) = deployed().await;
    let kc = cluster.kubeconfig().to_string();
    // Readable, so the values at the start are hidden; not listable, so not watchable.
    cluster.emulator.faults().deny(Denial {
        verb: "list".into(),
        group: String::new(),
        resource: "secrets".into(),
        namespace: None,
    });
    let follower = Running::start(against(&app, &kc, &["logs", "-f"]));
    let out = lines_with(&follower, "key=", 1).await;
    assert!(out.contains("key=[redacted]"), "{out}");
    // The watch is retried with back-off: a few attempts in this time.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let err = follower.stderr();
    assert_eq!(
        err.matches("warning: cannot watch Secret shop-secrets")
            .count(),
        1,
        "{err}"
    );
    assert!(
        err.contains("a value set from now on is not hidden from these logs"),
        "{err}"
    );
    follower.signal(libc::SIGINT);
    follower.finish_within(Duration::from_secs(10)).await.ok();
}
