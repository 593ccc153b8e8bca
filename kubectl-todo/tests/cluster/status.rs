//! `kubectl todo status` through the real binary against the emulator.

use crate::harness;

use std::time::Duration;

use harness::{App, Cluster, run_against};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kubectl_todo::history::store::{Outcome, Store};
use serde_json::{Value, json};

const PROJECT: &str = "name: shop\nsecret:\n  keys:\n    - name: API_KEY\ncomponents:\n  - {name: web, port: 3000, service: {type: NodePort}}\n  - {name: api, port: 8000, replicas: 2, secretKeys: [API_KEY]}\n";
const WEB: &str = "shop-web:1111111111111111";
const API: &str = "shop-api:2222222222222222";

async fn status_json(app: &App, kc: &str) -> Value {
    let out = run_against(app, kc, &["status", "-o", "json"]).await.ok();
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

/// Polls `status -o json` until `done` holds (the emulator's controllers run asynchronously).
async fn status_until(app: &App, kc: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let status = status_json(app, kc).await;
        if done(&status) {
            return status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "status never got there: {status:#}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn status_shows_images_replicas_restarts_urls_and_the_revision() {
    let cluster = Cluster::start().await;
    let kc = cluster.kubeconfig().to_string();
    let app = App::with_file(PROJECT);

    // Not deployed: exit 1, nothing on stdout (as `kubectl get` of a missing object), and how to deploy.
    for format in ["table", "json"] {
        let out = run_against(&app, &kc, &["status", "-o", format])
            .await
            .failed();
        assert_eq!(out.code, Some(1));
        assert!(out.stdout.is_empty(), "{}", out.stdout);
        assert!(
            out.stderr
                .contains("error: shop is not deployed in namespace shop")
                && out.stderr.contains("kubectl todo up"),
            "{}",
            out.stderr
        );
    }

    cluster.namespace("shop").await;
    cluster
        .secret("shop", "shop-secrets", &[("API_KEY", "canary-status-key")])
        .await;
    cluster.load(&[WEB, API]).await;
    let images = format!("web={WEB}");
    let api_image = format!("api={API}");
    run_against(
        &app,
        &kc,
        &["apply", "--image", &images, "--image", &api_image],
    )
    .await
    .ok();

    let status = status_until(&app, &kc, |s| {
        s["components"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["replicas"]["available"] == c["replicas"]["desired"])
    })
    .await;
    let node_port = Api::<Service>::namespaced(cluster.client.clone(), "shop")
        .get("shop-web")
        .await
        .unwrap()
        .spec
        .unwrap()
        .ports
        .unwrap()[0]
        .node_port
        .unwrap();
    assert_eq!(status["apiVersion"], "kubectl-todo/v1");
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["project"], "shop");
    assert_eq!(status["namespace"], "shop");
    assert_eq!(status["revision"]["number"], 1);
    assert_eq!(status["revision"]["outcome"], "applied");
    assert_eq!(status["revision"]["origin"], "apply");
    let web = &status["components"][0];
    assert_eq!(web["name"], "web");
    assert_eq!(web["deployment"], "shop-web");
    assert_eq!(web["image"], WEB);
    assert_eq!(
        web["replicas"],
        json!({"desired": 1, "updated": 1, "ready": 1, "available": 1})
    );
    assert_eq!(web["restarts"], 0);
    // The emulator's node has InternalIP 127.0.0.1.
    assert_eq!(
        web["urls"],
        json!([format!("http://127.0.0.1:{node_port}")])
    );
    let api = &status["components"][1];
    assert_eq!(api["image"], API);
    assert_eq!(api["replicas"]["ready"], 2);
    assert_eq!(api["urls"], json!([]), "a ClusterIP Service has no URL");

    let table = run_against(&app, &kc, &["status"]).await.ok().stdout;
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("shop in namespace shop: revision 1 (applied, apply, "),
        "{table}"
    );
    assert!(lines[1].starts_with("COMPONENT"), "{table}");
    assert!(
        lines[2].starts_with("web ")
            && lines[2].contains(" 1/1 ")
            && lines[2].contains(WEB)
            && lines[2].ends_with(&format!("http://127.0.0.1:{node_port}")),
        "{table}"
    );
    assert!(
        lines[3].starts_with("api ") && lines[3].contains(" 2/2 "),
        "{table}"
    );

    // A run that was killed part-way leaves its revision `applying`: with no
    // run holding the lock, status says it was interrupted; with one, applying.
    let store = Store::new(cluster.client.clone(), "shop", "shop");
    let mut summary = store.list().await.unwrap().pop().unwrap();
    summary.outcome = Outcome::Applying;
    store.set_summary(&summary).await.unwrap();
    let status = status_json(&app, &kc).await;
    assert_eq!(status["revision"]["outcome"], "interrupted");
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some("shop-lock".into()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("elsewhere/1".into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(jiff::Timestamp::now())),
            ..LeaseSpec::default()
        }),
    };
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), "shop");
    leases.create(&PostParams::default(), &lease).await.unwrap();
    let status = status_json(&app, &kc).await;
    assert_eq!(status["revision"]["outcome"], "applying");
    leases
        .delete("shop-lock", &Default::default())
        .await
        .unwrap();
    summary.outcome = Outcome::Applied;
    store.set_summary(&summary).await.unwrap();

    // Pods that crash: their restarts are summed per component. Another
    // manager rolls the api pods to a template whose containers exit.
    let crash = json!({"spec": {"template": {"metadata": {"annotations": {
        "kube-emulator.dev/log-lines": "1",
        "kube-emulator.dev/exit-code": "1",
    }}}}});
    Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(cluster.client.clone(), "shop")
        .patch(
            "shop-api",
            &PatchParams::default(),
            &Patch::Strategic(&crash),
        )
        .await
        .unwrap();
    let status = status_until(&app, &kc, |s| {
        s["components"][1]["restarts"].as_i64().unwrap() >= 1
    })
    .await;
    let pods = Api::<Pod>::namespaced(cluster.client.clone(), "shop")
        .list(&kube::api::ListParams::default().labels("app.kubernetes.io/component=api"))
        .await
        .unwrap();
    let crashing = pods.items.iter().filter(|p| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.restart_count > 0))
    });
    assert!(crashing.count() >= 1, "the patched pods restart");
    assert_eq!(status["components"][0]["restarts"], 0, "web is untouched");
    assert!(
        status["components"][1]["replicas"]["updated"]
            .as_i64()
            .unwrap()
            >= 1,
        "{status:#}"
    );

    // Nodes cannot be listed (a namespaced Role): the URL falls back to the kubeconfig's server host.
    cluster
        .emulator
        .faults()
        .deny(kube_emulator::faults::Denial {
            verb: "list".into(),
            group: String::new(),
            resource: "nodes".into(),
            namespace: None,
        });
    let status = status_json(&app, &kc).await;
    assert_eq!(
        status["components"][0]["urls"],
        json!([format!("http://127.0.0.1:{node_port}")])
    );

    // The Deployments are gone but the revision is recorded: the components say so.
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(cluster.client.clone(), "shop");
    deployments
        .delete("shop-web", &Default::default())
        .await
        .unwrap();
    let status = status_until(&app, &kc, |s| s["components"][0]["deployment"].is_null()).await;
    assert_eq!(status["components"][0]["image"], Value::Null);
    let table = run_against(&app, &kc, &["status"]).await.ok().stdout;
    assert!(table.contains("(no Deployment)"), "{table}");
    cluster.emulator.stop().await;
}
