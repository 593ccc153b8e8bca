//! `kubectl todo up` through the real binary against the emulator's scripted
//! runtime, with real image builds and stand-in `minikube` on PATH.

use super::support;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::ListParams;
use kube_emulator::Config;
use support::{NS, Setup};

#[tokio::test(flavor = "multi_thread")]
async fn up_builds_loads_applies_waits_then_does_nothing_when_nothing_changed() {
    let s = Setup::start(Config::default()).await;
    s.secret("canary-up-1").await;

    let run = s.run(&["up", "--timeout", "2m"]).await.ok();
    assert!(
        run.stdout.contains("web: http://") && run.stdout.contains(":30080"),
        "{}",
        run.all()
    );
    assert!(run.stderr.contains("web: 1/1 ready"), "{}", run.all());
    let web_image = s.image_of("shop-web").await;
    let api_image = s.image_of("shop-api").await;
    assert!(web_image.starts_with("shop-web:"), "{web_image}");
    let calls = s.minikube_calls();
    assert!(
        calls.iter().any(|c| c.contains(&web_image))
            && calls.iter().any(|c| c.contains(&api_image)),
        "both images are loaded with minikube: {calls:?}"
    );
    let history = s.history().await;
    assert_eq!(history.as_array().unwrap().len(), 1);
    assert_eq!(history[0]["outcome"], "applied");
    assert_eq!(history[0]["images"]["web"], web_image.as_str());
    assert!(!run.all().contains("canary-up-1"));

    // Nothing changed: no build, no load, no write.
    let maps: Api<ConfigMap> = Api::namespaced(s.client.clone(), NS);
    let before = maps.list(&ListParams::default()).await.unwrap();
    let run = s.run(&["up"]).await.ok();
    assert!(
        run.stderr.contains("nothing changed since revision 1"),
        "{}",
        run.all()
    );
    assert!(run.stdout.contains(":30080"), "{}", run.all());
    assert_eq!(s.minikube_calls().len(), calls.len(), "no load");
    let after = maps.list(&ListParams::default()).await.unwrap();
    let versions = |l: &kube::api::ObjectList<ConfigMap>| {
        l.items
            .iter()
            .map(|m| (m.metadata.name.clone(), m.metadata.resource_version.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(versions(&before), versions(&after), "no write");
    assert_eq!(s.history().await.as_array().unwrap().len(), 1);

    // A code change: a new tag, a new revision, new pods.
    let old_pods: Vec<String> = s
        .pods("web")
        .await
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    s.write("web/www/index.html", "web v2\n");
    let run = s.run(&["up", "--timeout", "2m"]).await.ok();
    let new_image = s.image_of("shop-web").await;
    assert_ne!(new_image, web_image, "{}", run.all());
    assert_eq!(s.image_of("shop-api").await, api_image, "api is unchanged");
    assert!(s.minikube_calls().iter().any(|c| c.contains(&new_image)));
    let pods = s.pods("web").await;
    assert!(
        pods.iter()
            .all(|p| !old_pods.contains(p.metadata.name.as_ref().unwrap())),
        "the web pods were replaced"
    );
    let history = s.history().await;
    assert_eq!(history[1]["outcome"], "applied");
    assert_eq!(history[1]["images"]["web"], new_image.as_str());
    s.remove_built_images().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_secret_stops_up_before_anything_changes() {
    let s = Setup::start(Config::default()).await;
    let run = s.run(&["up"]).await.failed();
    assert!(
        run.stderr.contains("Secret shop-secrets")
            && run.stderr.contains("kubectl todo secrets create"),
        "{}",
        run.all()
    );
    assert!(s.minikube_calls().is_empty(), "nothing loaded");
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(s.client.clone());
    assert!(
        namespaces.get_opt(NS).await.unwrap().is_none(),
        "nothing created"
    );
    // The images were built while the cluster was read; the engine is left as it was.
    s.remove_built_images().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_explained() {
    let s = Setup::start(Config::default()).await;
    let run = s.run(&["up", "--image", "wbe=shop-web:1"]).await.failed();
    assert!(
        run.stderr.contains("`wbe`") && run.stderr.contains("web"),
        "{}",
        run.all()
    );
    let run = s.run(&["up", "--timeout", "soon"]).await.failed();
    assert!(run.stderr.contains("soon"), "{}", run.all());
    s.write(
        "todo.yaml",
        "name: shop\ncomponents:\n  - name: web\n    prot: 8080\n",
    );
    let run = s.run(&["up"]).await.failed();
    assert!(run.stderr.contains("todo.yaml:4"), "{}", run.all());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_cluster_is_one_line_and_the_doctor_command() {
    let s = Setup::start(Config::default()).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let text = std::fs::read_to_string(&s.kubeconfig).unwrap();
    let url = s.emu.url();
    std::fs::write(
        &s.kubeconfig,
        text.replace(&url, &format!("http://127.0.0.1:{port}")),
    )
    .unwrap();
    let run = s.run(&["up"]).await.failed();
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.stderr);
    assert!(
        lines[0].starts_with("error: cannot reach the cluster at 127.0.0.1"),
        "{}",
        run.stderr
    );
    assert!(lines[1].contains("kubectl todo doctor"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_context_says_which_cluster_tool_loads_the_images() {
    let s = Setup::start(Config::default()).await;
    s.secret("canary-up-2").await;
    support::rename_context(&s.kubeconfig, "kind-dev");
    s.run(&["up", "--timeout", "2m"]).await.ok();
    let web_image = s.image_of("shop-web").await;
    let kind = s.calls("kind");
    assert!(
        kind.iter()
            .any(|c| c == &format!("load docker-image {web_image} --name dev")),
        "{kind:?}"
    );
    assert!(s.minikube_calls().is_empty());

    // --load overrides the guess (k3d, with the cluster named after the context).
    s.write("web/www/index.html", "web v2\n");
    s.run(&["up", "--load", "k3d", "--timeout", "2m"])
        .await
        .ok();
    let k3d = s.calls("k3d");
    let new_image = s.image_of("shop-web").await;
    assert!(
        k3d.iter()
            .any(|c| c.starts_with(&format!("image import {new_image}"))),
        "{k3d:?}"
    );
    s.remove_built_images().await;
}
