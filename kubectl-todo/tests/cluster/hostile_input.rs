//! Bad and hostile input, each refused at once with the rule it breaks,
//! before anything reaches the cluster: `up` runs against the emulator, and
//! afterwards the cluster holds exactly what it held before.

use crate::harness;

use harness::{App, Cluster, run_against};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::api::ListParams;

const WEB: &str = "name: shop\ncomponents:\n  - name: web\n    port: 3000\n";

fn with(extra: &str) -> String {
    format!("{WEB}{extra}")
}

/// What the cluster holds, by name: namespaces and Secrets.
async fn contents(cluster: &Cluster) -> Vec<String> {
    let lp = ListParams::default();
    let namespaces = Api::<Namespace>::all(cluster.client.clone())
        .list(&lp)
        .await
        .unwrap();
    let secrets = Api::<Secret>::all(cluster.client.clone())
        .list(&lp)
        .await
        .unwrap();
    namespaces
        .items
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .chain(secrets.items.iter().filter_map(|s| s.metadata.name.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bad_input_is_refused_with_its_rule_and_nothing_changes() {
    let cluster = Cluster::start().await;
    let kubeconfig = cluster.kubeconfig().to_string();
    let before = contents(&cluster).await;
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("id_rsa"), "canary-private-key").unwrap();
    let outside_path = outside.path().display().to_string();
    let files: Vec<(String, &str)> = vec![
        (
            with("    path: ../..\n"),
            "leads outside the repository through `..`",
        ),
        (
            with(&format!("    path: {outside_path}\n")),
            "is outside the repository",
        ),
        (with("    path: linked\n"), "through a symbolic link"),
        (
            with(&format!("    dockerfile: {outside_path}/id_rsa\n")),
            "the dockerfile",
        ),
        (
            format!(
                "{WEB}    service: {{type: NodePort, nodePort: 30001}}\n  - name: api\n    port: 8000\n    service: {{type: NodePort, nodePort: 30001}}\n"
            ),
            "is already the node port of component `web`",
        ),
        (
            format!("{WEB}secret:\n  keys:\n    - name: K\n      generateBytes: 4000000000\n"),
            "above the limit of 1048576",
        ),
        (
            format!(
                "name: {}\ncomponents:\n  - name: w\n    port: 80\n",
                "a".repeat(63)
            ),
            "is 63 characters long",
        ),
        (
            format!(
                "name: {}\ncomponents:\n  - name: w\n    port: 80\n",
                "a".repeat(62)
            ),
            "may have at most 61",
        ),
        (with("    writablePaths: [/]\n"), "is the root directory"),
        (with("    writablePaths: [/var/../etc]\n"), "holds `..`"),
        (
            with("    healthPath: \"/a b\"\n"),
            "no whitespace or control characters",
        ),
        (
            with("    readyPath: \"/a\\u0007\"\n"),
            "no whitespace or control characters",
        ),
        (
            format!("{WEB}secret:\n  keys:\n    - name: K\n      pattern: \"(\"\n"),
            "not a valid regular expression",
        ),
        (
            with("    resources:\n      requests: {cpu: \"2\"}\n      limits: {cpu: 1}\n"),
            "is above its limit",
        ),
    ];
    let mut tried = 0;
    for (text, rule) in &files {
        let app = App::with_file(text);
        std::os::unix::fs::symlink(outside.path(), app.path().join("linked")).unwrap();
        let run = run_against(&app, &kubeconfig, &["up"]).await.failed();
        assert!(
            run.stderr.contains(rule),
            "{text}\nwanted {rule:?}:\n{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("todo.yaml:"),
            "not located:\n{}",
            run.stderr
        );
        assert!(!run.stderr.contains("canary-private-key"), "{}", run.stderr);
        tried += 1;
    }
    // A huge file is refused by its size, unread (sparse: no disk, no memory).
    let app = App::with_file("");
    std::fs::File::create(app.path().join("todo.yaml"))
        .unwrap()
        .set_len(200 * 1024 * 1024)
        .unwrap();
    let run = run_against(&app, &kubeconfig, &["up"]).await.failed();
    assert!(
        run.stderr.contains("is larger than 1048576 bytes"),
        "{}",
        run.stderr
    );
    tried += 1;
    let app = App::with_file(WEB);
    for (args, rule) in [
        (&["up", "--image", "web=UPPER:tag"][..], "uppercase letters"),
        (&["up", "--push", ""], "the registry is empty"),
        (&["up", "--push", "https://ghcr.io"], "without `https://`"),
        (&["up", "-n", ""], "is not a namespace name"),
        (&["up", "-n", "Prod"], "is not a namespace name"),
    ] {
        let run = run_against(&app, &kubeconfig, args).await.failed();
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains(rule),
            "{args:?} wanted {rule:?}:\n{}",
            run.stderr
        );
        tried += 1;
    }
    assert_eq!(tried, 20);
    assert_eq!(
        contents(&cluster).await,
        before,
        "a refused run changed the cluster"
    );
}
