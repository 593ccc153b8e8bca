//! `kubectl todo rollback` through the real binary against the emulator
//! (`--no-wait`: these images are never loaded; docker/up/docker.rs waits for a
//! rollback's rollout with real containers).

use crate::harness;

use harness::{App, Cluster, run_against};
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const V1: &str = "name: shop\nsecret:\n  keys:\n    - name: API_KEY\ncomponents:\n  - {name: web, port: 3000, service: {type: NodePort}}\n  - {name: api, port: 8000, secretKeys: [API_KEY]}\n";
/// Adds a component and changes web's settings.
const V2: &str = "name: shop\nsecret:\n  keys:\n    - name: API_KEY\ncomponents:\n  - {name: web, port: 3000, service: {type: NodePort}, env: {GREETING: hello}}\n  - {name: api, port: 8000, secretKeys: [API_KEY]}\n  - {name: worker, port: 9000}\n";

fn image_of(d: &Deployment) -> String {
    d.spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .image
        .clone()
        .unwrap()
}

fn secret_checksum_of(d: &Deployment) -> Option<String> {
    d.spec
        .as_ref()?
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get("kubectl-todo/secret-checksum")
        .cloned()
}

async fn history(app: &App, kc: &str) -> Vec<Value> {
    let out = run_against(app, kc, &["history", "-o", "json"]).await.ok();
    serde_json::from_str::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn rollback_reapplies_a_recorded_revision_as_a_new_one() {
    let cluster = Cluster::start().await;
    let kc = cluster.kubeconfig().to_string();
    let app = App::with_file(V1);

    let out = run_against(&app, &kc, &["rollback"]).await.failed();
    assert!(
        out.stderr.contains("shop has no revision yet"),
        "{}",
        out.stderr
    );

    cluster.namespace("shop").await;
    cluster
        .secret("shop", "shop-secrets", &[("API_KEY", "canary-rollback-1")])
        .await;
    let web_v1 = "web=shop-web:1111111111111111";
    let api_v1 = "api=shop-api:1111111111111111";
    run_against(&app, &kc, &["apply", "--image", web_v1, "--image", api_v1])
        .await
        .ok();
    // One revision: nothing before it to go back to.
    let out = run_against(&app, &kc, &["rollback"]).await.failed();
    assert!(
        out.stderr
            .contains("none applied successfully before revision 1")
            && out.stderr.contains("kubectl todo history"),
        "{}",
        out.stderr
    );

    app.write("todo.yaml", V2);
    run_against(
        &app,
        &kc,
        &[
            "apply",
            "--image",
            "web=shop-web:2222222222222222",
            "--image",
            "api=shop-api:2222222222222222",
            "--image",
            "worker=shop-worker:2222222222222222",
        ],
    )
    .await
    .ok();
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), "shop");
    let configmaps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "shop");
    assert!(deployments.get_opt("shop-worker").await.unwrap().is_some());

    // An unknown revision: refused, with the revisions there are, and nothing changes.
    let out = run_against(&app, &kc, &["rollback", "7"]).await.failed();
    assert!(
        out.stderr
            .contains("shop has no revision 7 (revisions 1 to 2 are recorded)")
            && out.stderr.contains("kubectl todo history"),
        "{}",
        out.stderr
    );
    assert_eq!(history(&app, &kc).await.len(), 2);

    // The Secret is rotated after revision 1: the rollback must keep the new value's checksum.
    harness::canaries(["canary-rollback-2".to_string()]);
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "shop");
    let mut secret = secrets.get("shop-secrets").await.unwrap();
    secret.data = Some(
        [(
            "API_KEY".to_string(),
            ByteString(b"canary-rollback-2".to_vec()),
        )]
        .into(),
    );
    let rotated = secrets
        .replace("shop-secrets", &PostParams::default(), &secret)
        .await
        .unwrap();
    let rotated_sum = kubectl_todo::secrets::checksum(&rotated).unwrap();
    let mut first = rotated.clone();
    first.data = Some(
        [(
            "API_KEY".to_string(),
            ByteString(b"canary-rollback-1".to_vec()),
        )]
        .into(),
    );
    let first_sum = kubectl_todo::secrets::checksum(&first).unwrap();
    assert_ne!(rotated_sum, first_sum);

    // Held by another run: refused before anything changes.
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), "shop");
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
    leases.create(&PostParams::default(), &lease).await.unwrap();
    let out = run_against(&app, &kc, &["rollback"]).await.failed();
    assert!(
        out.stderr
            .contains("another operation on shop is in progress"),
        "{}",
        out.stderr
    );
    assert_eq!(history(&app, &kc).await.len(), 2);
    leases
        .delete("shop-lock", &Default::default())
        .await
        .unwrap();

    // The default: the revision before the current one.
    let out = run_against(&app, &kc, &["rollback", "--no-wait"])
        .await
        .ok();
    assert!(
        out.stdout
            .contains("revision 3 of shop in namespace shop: rolled back to revision 1")
            && out.stdout.contains("pruned Deployment/shop-worker"),
        "{}",
        out.stdout
    );
    let web = deployments.get("shop-web").await.unwrap();
    assert_eq!(image_of(&web), "shop-web:1111111111111111");
    let api = deployments.get("shop-api").await.unwrap();
    assert_eq!(image_of(&api), "shop-api:1111111111111111");
    assert_eq!(secret_checksum_of(&api), Some(rotated_sum.clone()));
    assert_eq!(secret_checksum_of(&web), None, "web reads no secret");
    assert!(deployments.get_opt("shop-worker").await.unwrap().is_none());
    let web_config = configmaps.get("shop-web").await.unwrap();
    assert!(!web_config.data.unwrap_or_default().contains_key("GREETING"));
    let revisions = history(&app, &kc).await;
    assert_eq!(revisions.len(), 3);
    assert_eq!(revisions[2]["origin"], "rollback to 1");
    assert_eq!(revisions[2]["outcome"], "applied");
    assert_eq!(revisions[2]["images"]["web"], "shop-web:1111111111111111");
    assert!(
        revisions[2]["images"].get("worker").is_none(),
        "{:#}",
        revisions[2]
    );
    let status = run_against(&app, &kc, &["status", "-o", "json"])
        .await
        .ok()
        .stdout;
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["revision"]["origin"], "rollback to 1");

    // An explicit revision: back to 2 (the rolled-back-from one).
    let out = run_against(&app, &kc, &["rollback", "2", "--no-wait"])
        .await
        .ok();
    assert!(
        out.stdout.contains("revision 4 of shop")
            && out.stdout.contains("rolled back to revision 2"),
        "{}",
        out.stdout
    );
    assert_eq!(
        image_of(&deployments.get("shop-worker").await.unwrap()),
        "shop-worker:2222222222222222"
    );
    let api = deployments.get("shop-api").await.unwrap();
    assert_eq!(secret_checksum_of(&api), Some(rotated_sum));

    // Another manager owns a field the revision sets: refused until forced.
    let theirs = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "shop-api"},
        "spec": {"replicas": 3},
    });
    deployments
        .patch(
            "shop-api",
            &PatchParams::apply("someone-else").force(),
            &Patch::Apply(&theirs),
        )
        .await
        .unwrap();
    let out = run_against(&app, &kc, &["rollback", "1"]).await.failed();
    assert!(
        out.stderr
            .contains("Deployment/shop-api: .spec.replicas is owned by \"someone-else\""),
        "{}",
        out.stderr
    );
    assert_eq!(history(&app, &kc).await.len(), 4);
    // ...and a run that was killed holds the lock for two more seconds: --wait-for-lock waits it out.
    let abandoned = Lease {
        spec: Some(LeaseSpec {
            renew_time: Some(MicroTime(
                jiff::Timestamp::now() - jiff::SignedDuration::from_secs(13),
            )),
            ..lease.spec.clone().unwrap()
        }),
        ..lease.clone()
    };
    leases
        .create(&PostParams::default(), &abandoned)
        .await
        .unwrap();
    let out = run_against(
        &app,
        &kc,
        &[
            "rollback",
            "1",
            "--force-conflicts",
            "--wait-for-lock",
            "30",
            "--no-wait",
        ],
    )
    .await
    .ok();
    assert!(
        out.stdout.contains("revision 5 of shop")
            && out.stdout.contains("rolled back to revision 1"),
        "{}",
        out.stdout
    );
    let api = deployments.get("shop-api").await.unwrap();
    assert_eq!(api.spec.unwrap().replicas, Some(1));

    // A revision whose manifests are gone from the store: refused, nothing changes.
    let drop = json!([{"op": "remove", "path": "/binaryData"}]);
    configmaps
        .patch(
            "shop-rev-1",
            &PatchParams::default(),
            &Patch::<Value>::Json(serde_json::from_value(drop).unwrap()),
        )
        .await
        .unwrap();
    let out = run_against(&app, &kc, &["rollback", "1"]).await.failed();
    assert!(
        out.stderr
            .contains("the objects of revision 1 are no longer stored")
            && out.stderr.contains("kubectl todo history"),
        "{}",
        out.stderr
    );
    assert_eq!(history(&app, &kc).await.len(), 5);

    // No Secret: the same preflight error as apply, and nothing changes.
    secrets
        .delete("shop-secrets", &Default::default())
        .await
        .unwrap();
    let out = run_against(&app, &kc, &["rollback", "3"]).await.failed();
    assert!(
        out.stderr
            .contains("Secret shop-secrets in namespace shop does not exist")
            && out.stderr.contains("kubectl todo secrets create"),
        "{}",
        out.stderr
    );
    assert_eq!(history(&app, &kc).await.len(), 5);
    cluster.emulator.stop().await;
}
