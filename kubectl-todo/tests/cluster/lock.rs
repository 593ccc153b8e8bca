//! The app lock: one holder at a time, released on finish, and a lock left
//! by a run that died expires on its own.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, PostParams};
use kube_emulator::faults::Fault;
use kube_emulator::{Config, Emulator};
use kubectl_todo::lock;

use crate::harness::{App, Running, against, run_against};

#[tokio::test(flavor = "multi_thread")]
async fn one_holder_at_a_time_and_released_locks_are_free_at_once() {
    let emu = Emulator::start(Config::default()).await.unwrap();
    let client = emu.client().await.unwrap();

    let first = lock::acquire(client.clone(), "default", "todo", None)
        .await
        .unwrap();
    let busy = lock::acquire(client.clone(), "default", "todo", None)
        .await
        .err()
        .unwrap();
    assert!(matches!(busy, lock::Error::Busy { .. }), "{busy}");
    assert!(
        busy.to_string()
            .contains("another operation on todo is in progress"),
        "{busy}"
    );

    // A waiter gets the lock as soon as the holder releases it.
    let waiter = tokio::spawn(lock::acquire(
        client.clone(),
        "default",
        "todo",
        Some(Duration::from_secs(20)),
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished());
    first.release().await;
    let second = waiter.await.unwrap().unwrap();
    second.release().await;
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lock_whose_holder_stopped_renewing_expires() {
    let emu = Emulator::start(Config::default()).await.unwrap();
    let client = emu.client().await.unwrap();
    // What a killed run leaves behind: a Lease last renewed long ago.
    let stale: Lease = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "todo-lock" },
        "spec": {
            "holderIdentity": "laptop/4242",
            "leaseDurationSeconds": lock::LEASE_SECONDS,
            "renewTime": "2026-01-01T00:00:00.000000Z",
            "acquireTime": "2026-01-01T00:00:00.000000Z",
        }
    }))
    .unwrap();
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    leases.create(&PostParams::default(), &stale).await.unwrap();

    let taken = lock::acquire(client.clone(), "default", "todo", None)
        .await
        .unwrap();
    let lease = leases.get("todo-lock").await.unwrap();
    let spec = lease.spec.unwrap();
    assert_ne!(spec.holder_identity.as_deref(), Some("laptop/4242"));
    assert_eq!(spec.lease_transitions, Some(1));
    taken.release().await;
    assert!(leases.get_opt("todo-lock").await.unwrap().is_none());
    emu.stop().await;
}

/// A 500 or two while taking the lock (reading the Lease, creating it,
/// taking over an expired one) is retried, as every other request is.
#[tokio::test(flavor = "multi_thread")]
async fn taking_the_lock_retries_transient_api_errors() {
    let emu = Emulator::start(Config::default()).await.unwrap();
    let client = emu.client().await.unwrap();
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    for method in ["GET", "POST", "PUT"] {
        if method == "PUT" {
            // Only an expired Lease is taken over with a PUT.
            let stale: Lease = serde_json::from_value(serde_json::json!({
                "metadata": { "name": "todo-lock" },
                "spec": {
                    "holderIdentity": "laptop/4242",
                    "leaseDurationSeconds": lock::LEASE_SECONDS,
                    "renewTime": "2026-01-01T00:00:00.000000Z",
                }
            }))
            .unwrap();
            leases.create(&PostParams::default(), &stale).await.unwrap();
        }
        emu.faults().add(Fault {
            method: Some(method.into()),
            path: Some("/leases".into()),
            code: Some(500),
            times: Some(2),
            ..Fault::default()
        });
        let held = lock::acquire(client.clone(), "default", "todo", None)
            .await
            .unwrap_or_else(|e| panic!("{method}: {e}"));
        emu.faults().clear();
        held.release().await;
        assert!(leases.get_opt("todo-lock").await.unwrap().is_none());
    }
    emu.stop().await;
}

/// One failed request (a 500 on the Lease's GET) does not end the renewal:
/// long after the Lease's duration, the lock is still held.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_renewal_is_retried_and_the_lock_stays_held() {
    let emu = Emulator::start(Config::default()).await.unwrap();
    let client = emu.client().await.unwrap();
    let held = lock::acquire(client.clone(), "default", "todo", None)
        .await
        .unwrap();
    emu.faults().add(Fault {
        method: Some("GET".into()),
        path: Some("/leases/todo-lock".into()),
        code: Some(500),
        times: Some(1),
        ..Fault::default()
    });
    tokio::time::sleep(Duration::from_secs(lock::LEASE_SECONDS as u64 + 3)).await;
    let second = lock::acquire(client.clone(), "default", "todo", None).await;
    assert!(
        matches!(second, Err(lock::Error::Busy { .. })),
        "a second holder was admitted"
    );
    held.release().await;
    emu.stop().await;
}

/// A holder that cannot renew says so before the Lease expires for others.
#[tokio::test(flavor = "multi_thread")]
async fn a_holder_that_cannot_renew_knows_before_the_lease_expires() {
    let emu = Emulator::start(Config::default()).await.unwrap();
    let client = emu.client().await.unwrap();
    let held = lock::acquire(client.clone(), "default", "todo", None)
        .await
        .unwrap();
    let acquired = std::time::Instant::now();
    emu.faults().add(Fault {
        path: Some("/leases/todo-lock".into()),
        code: Some(503),
        ..Fault::default()
    });
    let lost = tokio::time::timeout(Duration::from_secs(lock::LEASE_SECONDS as u64), held.lost())
        .await
        .expect("the holder learns it lost the lock");
    assert!(acquired.elapsed() < Duration::from_secs(lock::LEASE_SECONDS as u64));
    let message = lost.to_string();
    assert!(
        message.starts_with("lost the lock todo-lock in namespace default: could not renew it for")
            && message.ends_with("stopped before writing anything more"),
        "{message}"
    );
    emu.faults().clear();
    held.release().await;
    emu.stop().await;
}

/// When the API server is gone, the holder says that, not a status code.
#[tokio::test(flavor = "multi_thread")]
async fn a_holder_whose_api_server_is_gone_says_the_connection_was_lost() {
    let emu = Emulator::start(Config::default()).await.unwrap();
    let client = emu.client().await.unwrap();
    let held = lock::acquire(client.clone(), "default", "todo", None)
        .await
        .unwrap();
    emu.stop().await;
    let lost = tokio::time::timeout(Duration::from_secs(lock::LEASE_SECONDS as u64), held.lost())
        .await
        .expect("the holder learns it lost the lock");
    let message = lost.to_string();
    assert!(
        message.starts_with(
            "lost the lock todo-lock in namespace default: lost the connection to the cluster ("
        ),
        "{message}"
    );
    held.release().await;
}

/// `up --wait-for-lock` that waited while another run deployed the same
/// thing looks again once it has the lock: nothing to do, no new revision,
/// as a fresh `up` would find.
#[tokio::test(flavor = "multi_thread")]
async fn an_up_that_waited_while_another_deployed_the_same_writes_no_revision() {
    let cluster = crate::harness::Cluster::start().await;
    let kc = cluster.kubeconfig().to_string();
    let app = App::with_file(
        "name: shop\ncomponents:\n  - {name: web, port: 3000}\n  - {name: api, port: 8000}\n",
    );
    cluster.load(&["shop-web:1", "shop-api:1"]).await;
    // The first run's apply is slow enough for the second to find its lock held.
    cluster.emulator.faults().add(Fault {
        method: Some("PATCH".into()),
        path: Some("/deployments/".into()),
        latency_ms: Some(1_000),
        ..Fault::default()
    });
    let up = [
        "up",
        "--timeout",
        "1m",
        "--wait-for-lock",
        "60",
        "--image",
        "web=shop-web:1",
        "--image",
        "api=shop-api:1",
    ];
    let first = Running::start(against(&app, &kc, &up));
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), "shop");
    let mut locked = false;
    for _ in 0..300 {
        if leases.get_opt("shop-lock").await.is_ok_and(|l| l.is_some()) {
            locked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(locked, "the first run took the lock\n{}", first.all());
    let second = Running::start(against(&app, &kc, &up));
    let first = first.finish_within(Duration::from_secs(60)).await.ok();
    let second = second.finish_within(Duration::from_secs(60)).await.ok();
    assert!(
        first.stderr.contains("applied revision 1 "),
        "{}",
        first.all()
    );
    assert!(
        second.stderr.contains("waiting for the lock held by")
            && second
                .stderr
                .contains("nothing to apply: revision 1 holds these objects already")
            && !second.stderr.contains("applied revision"),
        "{}",
        second.all()
    );
    let history = run_against(&app, &kc, &["history", "-o", "json"])
        .await
        .ok();
    let history: serde_json::Value = serde_json::from_str(&history.stdout).unwrap();
    let outcomes: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["applied"], "{history}");
    assert!(leases.get_opt("shop-lock").await.unwrap().is_none());
}
