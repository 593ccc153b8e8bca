//! A field another manager owns: `apply` stops before changing anything and
//! says which object, field and manager; `--force-conflicts` takes it over.

use crate::harness;

use harness::{App, Cluster, run_against};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

const PROJECT: &str = "name: shop\nsecret:\n  keys:\n    - name: API_KEY\ncomponents:\n  - {name: web, port: 3000, service: {type: NodePort}}\n  - {name: api, port: 8000, secretKeys: [API_KEY]}\n";
const CHANGED: &str = "name: shop\nsecret:\n  keys:\n    - name: API_KEY\ncomponents:\n  - {name: web, port: 3000, service: {type: NodePort}, env: {GREETING: hello}}\n  - {name: api, port: 8000, secretKeys: [API_KEY]}\n";

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

#[tokio::test(flavor = "multi_thread")]
async fn a_field_owned_by_another_manager_stops_apply_until_forced() {
    let cluster = Cluster::start().await;
    let kc = cluster.kubeconfig().to_string();
    let app = App::with_file(PROJECT);
    cluster.namespace("shop").await;
    cluster
        .secret(
            "shop",
            "shop-secrets",
            &[("API_KEY", "canary-conflicts-key")],
        )
        .await;
    run_against(
        &app,
        &kc,
        &[
            "apply",
            "--image",
            "web=shop-web:1111111111111111",
            "--image",
            "api=shop-api:2222222222222222",
        ],
    )
    .await
    .ok();

    // Someone scales the api with their own server-side apply, taking .spec.replicas over.
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), "shop");
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

    // The next apply changes the web ConfigMap (applied before any Deployment)
    // and both images: none of it may happen while the conflict stands.
    app.write("todo.yaml", CHANGED);
    let configmaps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "shop");
    let before: Vec<Value> = futures::future::join_all(
        ["shop-web", "shop-applyset"]
            .into_iter()
            .map(|n| async { serde_json::to_value(configmaps.get(n).await.unwrap()).unwrap() }),
    )
    .await;
    let new_images = [
        "apply",
        "--image",
        "web=shop-web:3333333333333333",
        "--image",
        "api=shop-api:4444444444444444",
    ];
    let out = run_against(&app, &kc, &new_images).await.failed();
    assert!(
        out.stderr
            .contains("Deployment/shop-api: .spec.replicas is owned by \"someone-else\""),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--force-conflicts"), "{}", out.stderr);
    let after: Vec<Value> = futures::future::join_all(
        ["shop-web", "shop-applyset"]
            .into_iter()
            .map(|n| async { serde_json::to_value(configmaps.get(n).await.unwrap()).unwrap() }),
    )
    .await;
    assert_eq!(
        before, after,
        "the ConfigMap and the ApplySet parent are untouched"
    );
    assert_eq!(
        image_of(&deployments.get("shop-web").await.unwrap()),
        "shop-web:1111111111111111"
    );
    let api = deployments.get("shop-api").await.unwrap();
    assert_eq!(image_of(&api), "shop-api:2222222222222222");
    assert_eq!(api.spec.unwrap().replicas, Some(3));
    let history = run_against(&app, &kc, &["history", "-o", "json"])
        .await
        .ok()
        .stdout;
    let history: Value = serde_json::from_str(&history).unwrap();
    assert_eq!(
        history.as_array().unwrap().len(),
        1,
        "no revision is recorded for an apply that changed nothing: {history:#}"
    );

    // Forced: kubectl-todo takes the field back and everything is applied.
    let mut forced = new_images.to_vec();
    forced.push("--force-conflicts");
    let out = run_against(&app, &kc, &forced).await.ok();
    assert!(out.stdout.contains("revision 2"), "{}", out.stdout);
    let api = deployments.get("shop-api").await.unwrap();
    assert_eq!(image_of(&api), "shop-api:4444444444444444");
    assert_eq!(api.spec.as_ref().unwrap().replicas, Some(1));
    let replicas_owner = api
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter(|m| {
            m.fields_v1
                .as_ref()
                .is_some_and(|f| f.0["f:spec"]["f:replicas"].is_object())
        })
        .filter_map(|m| m.manager)
        .collect::<Vec<_>>();
    assert_eq!(replicas_owner, vec!["kubectl-todo".to_string()]);
    assert_eq!(
        configmaps.get("shop-web").await.unwrap().data.unwrap()["GREETING"],
        "hello"
    );
    cluster.emulator.stop().await;
}
