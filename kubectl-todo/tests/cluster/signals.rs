//! `down` stopped by SIGTERM (CI, `timeout`, `docker stop`) or SIGHUP (a
//! closed terminal) ends as Ctrl-C ends `up`: the lock released at once,
//! the shell's exit status for the signal, and a next run that finishes
//! the job.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube_emulator::faults::Fault;

use crate::harness::{App, Cluster, Running, against, run_against};

const PROJECT: &str = "name: shop\nsecret:\n  keys:\n    - name: API_KEY\ncomponents:\n  - {name: web, port: 3000}\n  - {name: api, port: 8000, secretKeys: [API_KEY]}\n";

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_and_sighup_stop_down_releasing_the_lock_and_the_next_down_finishes() {
    let cluster = Cluster::start().await;
    let kc = cluster.kubeconfig().to_string();
    let app = App::with_file(PROJECT);
    cluster.namespace("shop").await;
    cluster
        .secret("shop", "shop-secrets", &[("API_KEY", "canary-signals-key")])
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
    // Deleting a Deployment is slow enough to be signalled in the middle of.
    cluster.emulator.faults().add(Fault {
        method: Some("DELETE".into()),
        path: Some("/deployments/".into()),
        latency_ms: Some(3_000),
        ..Fault::default()
    });
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), "shop");
    for (signal, name, code) in [
        (libc::SIGTERM, "SIGTERM", 143),
        (libc::SIGHUP, "SIGHUP", 129),
    ] {
        let child = Running::start(against(&app, &kc, &["down"]));
        let mut locked = false;
        for _ in 0..200 {
            if leases.get_opt("shop-lock").await.unwrap().is_some() {
                locked = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(locked, "{name}: down took the lock");
        tokio::time::sleep(Duration::from_millis(300)).await;
        child.signal(signal);
        let run = child.finish_within(Duration::from_secs(20)).await;
        assert_eq!(run.code, Some(code), "{name}: {}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("error: interrupted by {name}\n")),
            "{name}: {}",
            run.stderr
        );
        assert!(
            leases.get_opt("shop-lock").await.unwrap().is_none(),
            "{name}: the lock is released"
        );
    }
    cluster.emulator.faults().clear();
    run_against(&app, &kc, &["down"]).await.ok();
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), "shop");
    assert!(
        deployments
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}
