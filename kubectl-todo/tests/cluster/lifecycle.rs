//! apply, history and down through the real binary against the emulator.

use crate::harness;

use harness::{App, Cluster, run_against};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::Api;
use serde_json::Value;

const PROJECT: &str = "name: shop\nsecret:\n  keys:\n    - name: API_KEY\ncomponents:\n  - {name: web, port: 3000, service: {type: NodePort}}\n  - {name: api, port: 8000, secretKeys: [API_KEY]}\n";
const IMAGES: [&str; 4] = [
    "--image",
    "web=shop-web:1111111111111111",
    "--image",
    "api=shop-api:2222222222222222",
];

#[tokio::test(flavor = "multi_thread")]
async fn apply_records_revisions_prunes_and_down_keeps_the_secret() {
    let cluster = Cluster::start().await;
    let kc = cluster.kubeconfig().to_string();
    let app = App::with_file(PROJECT);

    // No Secret yet: nothing changes, and the user is told how to create it.
    let mut args = vec!["apply"];
    args.extend(IMAGES);
    let out = run_against(&app, &kc, &args).await.failed();
    assert!(
        out.stderr.contains("Secret shop-secrets")
            && out.stderr.contains("kubectl todo secrets create"),
        "{}",
        out.stderr
    );

    cluster.namespace("shop").await;
    let secret = cluster
        .secret(
            "shop",
            "shop-secrets",
            &[("API_KEY", "canary-lifecycle-key")],
        )
        .await;
    let out = run_against(&app, &kc, &args).await.ok();
    assert!(
        out.stdout.contains("applied Deployment/shop-api") && out.stdout.contains("revision 1"),
        "{}",
        out.stdout
    );
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), "shop");
    let api = deployments.get("shop-api").await.unwrap();
    let labels = api.metadata.labels.clone().unwrap();
    assert!(labels["applyset.kubernetes.io/part-of"].starts_with("applyset-"));
    let annotations = api
        .spec
        .unwrap()
        .template
        .metadata
        .unwrap()
        .annotations
        .unwrap();
    // `up` gave the Secret, made by another tool, the key of its checksum;
    // its values are untouched.
    let keyed = Api::<Secret>::namespaced(cluster.client.clone(), "shop")
        .get("shop-secrets")
        .await
        .unwrap();
    assert_eq!(keyed.data, secret.data);
    assert!(
        secret
            .metadata
            .annotations
            .is_none_or(|a| !a.contains_key(kubectl_todo::secrets::CHECKSUM_KEY_ANNOTATION))
    );
    assert_eq!(
        Some(annotations["kubectl-todo/secret-checksum"].clone()),
        kubectl_todo::secrets::checksum(&keyed)
    );
    let parent = Api::<ConfigMap>::namespaced(cluster.client.clone(), "shop")
        .get("shop-applyset")
        .await
        .unwrap();
    assert_eq!(
        parent.metadata.annotations.unwrap()["applyset.kubernetes.io/contains-group-kinds"],
        "ConfigMap,Deployment.apps,NetworkPolicy.networking.k8s.io,Service,ServiceAccount"
    );
    assert_eq!(
        parent.metadata.labels.unwrap()["applyset.kubernetes.io/id"],
        labels["applyset.kubernetes.io/part-of"]
    );

    // The api component goes away: the next revision prunes its objects.
    app.write("todo.yaml", "name: shop\nsecret:\n  keys:\n    - name: API_KEY\ncomponents:\n  - {name: web, port: 3000, service: {type: NodePort}}\n");
    let out = run_against(
        &app,
        &kc,
        &["apply", "--image", "web=shop-web:3333333333333333"],
    )
    .await
    .ok();
    assert!(
        out.stdout.contains("pruned Deployment/shop-api")
            && out.stdout.contains("pruned NetworkPolicy/shop-api"),
        "{}",
        out.stdout
    );
    assert!(deployments.get_opt("shop-api").await.unwrap().is_none());

    let out = run_against(&app, &kc, &["history", "-o", "json"])
        .await
        .ok();
    let history: Value = serde_json::from_str(&out.stdout).unwrap();
    let revisions = history.as_array().unwrap();
    assert_eq!(revisions.len(), 2);
    assert_eq!(revisions[0]["outcome"], "applied");
    assert_eq!(revisions[1]["images"]["web"], "shop-web:3333333333333333");
    let table = run_against(&app, &kc, &["history"]).await.ok().stdout;
    assert!(
        table.starts_with("REVISION") && table.contains("shop-web:3333333333333333"),
        "{table}"
    );
    let stored: Vec<ConfigMap> = Api::<ConfigMap>::namespaced(cluster.client.clone(), "shop")
        .list(&Default::default())
        .await
        .unwrap()
        .items;
    for map in stored.iter().filter(|m| {
        m.metadata
            .name
            .as_deref()
            .unwrap_or_default()
            .contains("-rev-")
    }) {
        let text = serde_json::to_string(map).unwrap();
        assert!(!text.contains("\"k\""), "no secret value in the history");
        assert!(map.binary_data.is_some(), "manifests are stored compressed");
    }

    let out = run_against(&app, &kc, &["down"]).await.ok();
    assert!(
        out.stdout.contains("deleted Deployment/shop-web")
            && out.stdout.contains("kept Secret/shop-secrets"),
        "{}",
        out.stdout
    );
    assert!(
        deployments
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let services: Api<Service> = Api::namespaced(cluster.client.clone(), "shop");
    assert!(
        services
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "shop");
    assert!(secrets.get_opt("shop-secrets").await.unwrap().is_some());
    let history = run_against(&app, &kc, &["history", "-o", "json"])
        .await
        .ok()
        .stdout;
    assert_eq!(history.trim(), "[]");
    run_against(&app, &kc, &["down", "--purge"]).await.ok();
    assert!(secrets.get_opt("shop-secrets").await.unwrap().is_none());
    cluster.emulator.stop().await;
}
