//! `down` reports what it did and nothing else: no Secret it never saw,
//! deleted or kept, and no error for an app that is not there.

use crate::harness::{App, Cluster, run_against};

const PROJECT: &str = "name: shop\ncomponents:\n  - {name: web, port: 3000}\n";

#[tokio::test(flavor = "multi_thread")]
async fn down_names_only_the_secret_that_exists() {
    let cluster = Cluster::start().await;
    let kc = cluster.kubeconfig().to_string();
    let app = App::with_file(PROJECT);

    let out = run_against(&app, &kc, &["down"]).await.ok();
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert_eq!(
        out.stderr,
        "nothing to delete: namespace shop does not exist\n"
    );

    cluster.namespace("shop").await;
    for args in [&["down"][..], &["down", "--purge"][..]] {
        let out = run_against(&app, &kc, args).await.ok();
        assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
        assert_eq!(
            out.stderr, "nothing to delete: shop has nothing in namespace shop\n",
            "{args:?}"
        );
    }

    cluster
        .secret("shop", "shop-secrets", &[("API_KEY", "canary-down-1")])
        .await;
    let out = run_against(&app, &kc, &["down"]).await.ok();
    assert_eq!(
        out.stdout,
        "kept Secret/shop-secrets (delete it with `kubectl todo down --purge`)\n"
    );
    let out = run_against(&app, &kc, &["down", "--purge"]).await.ok();
    assert_eq!(out.stdout, "deleted Secret/shop-secrets\n");
}
