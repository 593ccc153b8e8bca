//! kubectl and kubectl-todo share the app's ApplySet: the real `kubectl
//! apply --server-side --prune --applyset` against the emulator prunes what
//! kubectl-todo applied and no longer listed, and kubectl-todo prunes what
//! kubectl added to the set.

use crate::harness;

use std::process::Output;

use harness::{App, Cluster, run_against};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

const PROJECT: &str = "name: shop\nsecret:\n  keys:\n    - name: API_KEY\ncomponents:\n  - {name: web, port: 3000, service: {type: NodePort}}\n  - {name: api, port: 8000, secretKeys: [API_KEY]}\n";
const IMAGES: [&str; 4] = [
    "--image",
    "web=shop-web:1111111111111111",
    "--image",
    "api=shop-api:2222222222222222",
];

async fn kubectl_applyset(kubeconfig: &str, manifests: &Value) -> Output {
    let dir = tempfile::tempdir().unwrap();
    // One document per object, as `kubectl todo render -o yaml` prints them
    // (JSON is YAML): kubectl validates a `List` as a kind of its own.
    let file = dir.path().join("manifests.yaml");
    let documents: Vec<String> = manifests["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.to_string())
        .collect();
    std::fs::write(&file, documents.join("\n---\n")).unwrap();
    tokio::process::Command::new("kubectl")
        .env("KUBECTL_APPLYSET", "true")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args([
            "apply",
            "--server-side",
            "--prune",
            "--applyset=configmaps/shop-applyset",
            "-n",
            "shop",
            "-f",
        ])
        .arg(&file)
        .output()
        .await
        .expect("kubectl runs")
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn tooling(cluster: &Cluster) -> String {
    Api::<ConfigMap>::namespaced(cluster.client.clone(), "shop")
        .get("shop-applyset")
        .await
        .unwrap()
        .metadata
        .annotations
        .unwrap()["applyset.kubernetes.io/tooling"]
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_and_kubectl_todo_prune_each_others_members() {
    let cluster = Cluster::start().await;
    let kc = cluster.kubeconfig().to_string();
    let app = App::with_file(PROJECT);
    cluster.namespace("shop").await;
    cluster
        .secret(
            "shop",
            "shop-secrets",
            &[("API_KEY", "canary-applyset-key")],
        )
        .await;
    let mut apply = vec!["apply"];
    apply.extend(IMAGES);
    run_against(&app, &kc, &apply).await.ok();
    assert!(
        tooling(&cluster).await.starts_with("kubectl/"),
        "kubectl only operates sets whose tooling is kubectl"
    );

    // kubectl applies the same render minus the api Service: it must accept
    // our set and prune that Service.
    let mut render = vec!["render", "-o", "json"];
    render.extend(IMAGES);
    let rendered = run_against(&app, &kc, &render).await.ok().stdout;
    let mut list: Value = serde_json::from_str(&rendered).unwrap();
    let items = list["items"].as_array_mut().unwrap();
    let before = items.len();
    items.retain(|o| !(o["kind"] == "Service" && o["metadata"]["name"] == "shop-api"));
    assert_eq!(items.len(), before - 1);
    let out = kubectl_applyset(&kc, &list).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("failed to update ApplySet"),
        "the parent's fields have the manager kubectl expects: {}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("service/shop-api pruned"),
        "{}",
        text(&out)
    );
    let services: Api<Service> = Api::namespaced(cluster.client.clone(), "shop");
    assert!(services.get_opt("shop-api").await.unwrap().is_none());
    assert!(services.get_opt("shop-web").await.unwrap().is_some());

    // kubectl adds members of its own: a ConfigMap, which kubectl-todo's next
    // apply prunes (bringing the api Service back), and a Secret, a kind
    // kubectl-todo does not manage: it stays in the set, for kubectl to prune.
    let ours = list.clone();
    list["items"].as_array_mut().unwrap().extend([
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "shop-extra", "namespace": "shop"},
            "data": {"added": "by kubectl"},
        }),
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "shop-extra", "namespace": "shop"},
            "stringData": {"added": "by kubectl"},
        }),
    ]);
    let out = kubectl_applyset(&kc, &list).await;
    assert!(out.status.success(), "{}", text(&out));
    let configmaps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "shop");
    assert!(configmaps.get_opt("shop-extra").await.unwrap().is_some());
    let out = run_against(&app, &kc, &apply).await.ok();
    assert!(
        out.stdout.contains("pruned ConfigMap/shop-extra")
            && out.stdout.contains("applied Service/shop-api"),
        "{}",
        out.stdout
    );
    assert!(configmaps.get_opt("shop-extra").await.unwrap().is_none());
    assert!(services.get_opt("shop-api").await.unwrap().is_some());
    assert_eq!(
        tooling(&cluster).await,
        kubectl_todo::apply::applyset::TOOLING,
        "each tool writes its own version"
    );
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "shop");
    assert!(secrets.get_opt("shop-extra").await.unwrap().is_some());
    let kinds = configmaps
        .get("shop-applyset")
        .await
        .unwrap()
        .metadata
        .annotations
        .unwrap()["applyset.kubernetes.io/contains-group-kinds"]
        .clone();
    assert!(kinds.split(',').any(|k| k == "Secret"), "{kinds}");
    let out = kubectl_applyset(&kc, &ours).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("secret/shop-extra pruned"),
        "{}",
        text(&out)
    );
    assert!(secrets.get_opt("shop-extra").await.unwrap().is_none());

    // A set another tool manages is not ours to change: refused, untouched.
    let foreign =
        json!({"metadata": {"annotations": {"applyset.kubernetes.io/tooling": "helm/v3"}}});
    configmaps
        .patch(
            "shop-applyset",
            &PatchParams::default(),
            &Patch::Merge(&foreign),
        )
        .await
        .unwrap();
    let parent_before = configmaps.get("shop-applyset").await.unwrap();
    let out = run_against(&app, &kc, &apply).await.failed();
    assert!(
        out.stderr.contains("managed by \"helm/v3\""),
        "{}",
        out.stderr
    );
    let parent_after = configmaps.get("shop-applyset").await.unwrap();
    assert_eq!(
        parent_before.metadata.resource_version,
        parent_after.metadata.resource_version
    );
    cluster.emulator.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn down_deletes_members_kubectl_added_of_kinds_kubectl_todo_does_not_render() {
    let cluster = Cluster::start().await;
    let kc = cluster.kubeconfig().to_string();
    let app = App::with_file(PROJECT);
    cluster.namespace("shop").await;
    cluster
        .secret(
            "shop",
            "shop-secrets",
            &[("API_KEY", "canary-applyset-key")],
        )
        .await;
    let mut apply = vec!["apply"];
    apply.extend(IMAGES);
    run_against(&app, &kc, &apply).await.ok();
    let mut render = vec!["render", "-o", "json"];
    render.extend(IMAGES);
    let rendered = run_against(&app, &kc, &render).await.ok().stdout;
    let mut list: Value = serde_json::from_str(&rendered).unwrap();
    list["items"].as_array_mut().unwrap().push(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "shop-extra", "namespace": "shop"},
        "stringData": {"added": "by kubectl"},
    }));
    let out = kubectl_applyset(&kc, &list).await;
    assert!(out.status.success(), "{}", text(&out));
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "shop");
    assert!(secrets.get_opt("shop-extra").await.unwrap().is_some());

    let out = run_against(&app, &kc, &["down"]).await.ok();
    assert!(
        out.stdout.contains("deleted Secret/shop-extra"),
        "{}",
        out.stdout
    );
    assert!(secrets.get_opt("shop-extra").await.unwrap().is_none());
    assert!(
        secrets.get_opt("shop-secrets").await.unwrap().is_some(),
        "the app's own Secret is not a member: it stays"
    );
    cluster.emulator.stop().await;
}
