//! The API's semantics through `kube::Client`: watches, conflicts, apply,
//! selectors, dry runs, garbage collection and injected faults.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube_emulator::faults::Fault;
use kube_emulator::{Config, Emulator};
use serde_json::json;

fn api_error(err: kube::Error) -> Box<kube::core::Status> {
    match err {
        kube::Error::Api(status) => status,
        other => panic!("expected an API error, got {other}"),
    }
}

fn config_map(name: &str, labels: serde_json::Value, data: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": name, "labels": labels },
        "data": data,
    }))
    .unwrap()
}

fn deployment(name: &str, replicas: i32, image: &str) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": name },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "c", "image": image }] }
            }
        }
    })
}

async fn start() -> (Emulator, kube::Client) {
    let emu = Emulator::start(Config::default()).await.unwrap();
    let client = emu.client().await.unwrap();
    (emu, client)
}

#[tokio::test(flavor = "multi_thread")]
async fn watches_replay_from_a_resource_version_in_order() {
    let (emu, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let list = cms.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.unwrap();

    cms.create(
        &PostParams::default(),
        &config_map("a", json!({}), json!({ "k": "1" })),
    )
    .await
    .unwrap();
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({ "data": { "k": "2" } })),
    )
    .await
    .unwrap();
    cms.delete("a", &DeleteParams::default()).await.unwrap();

    let stream = cms
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .unwrap();
    let events: Vec<String> = stream
        .try_filter_map(|e| async move {
            Ok(match e {
                WatchEvent::Added(cm) => Some(format!("ADDED {}", cm.data.unwrap()["k"])),
                WatchEvent::Modified(cm) => Some(format!("MODIFIED {}", cm.data.unwrap()["k"])),
                WatchEvent::Deleted(cm) => Some(format!("DELETED {}", cm.data.unwrap()["k"])),
                _ => None,
            })
        })
        .take(3)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(events, ["ADDED 1", "MODIFIED 2", "DELETED 2"]);
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn watches_filter_by_label_and_report_too_old_versions_as_gone() {
    let emu = Emulator::start(Config {
        watch_history: 5,
        ..Config::default()
    })
    .await
    .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(emu.client().await.unwrap(), "default");
    let start = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let watch = cms
        .watch(&WatchParams::default().labels("tier=front").timeout(5), "0")
        .await
        .unwrap();
    for i in 0..10 {
        let tier = if i % 2 == 0 { "front" } else { "back" };
        cms.create(
            &PostParams::default(),
            &config_map(&format!("cm{i}"), json!({ "tier": tier }), json!({})),
        )
        .await
        .unwrap();
    }
    let names: Vec<String> = watch
        .try_filter_map(|e| async move {
            Ok(match e {
                WatchEvent::Added(cm) => cm.metadata.name,
                _ => None,
            })
        })
        .take(5)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(names, ["cm0", "cm2", "cm4", "cm6", "cm8"]);

    let mut stale = Box::pin(cms.watch(&WatchParams::default(), &start).await.unwrap());
    match stale.next().await.unwrap().unwrap() {
        WatchEvent::Error(e) => {
            assert_eq!(e.code, 410);
            assert!(
                e.message.contains("too old resource version"),
                "{}",
                e.message
            );
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_updates_conflict_and_generate_name_fills_names() {
    let (emu, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let mut cm = config_map("", json!({}), json!({ "k": "1" }));
    cm.metadata.name = None;
    cm.metadata.generate_name = Some("settings-".into());
    let created = cms.create(&PostParams::default(), &cm).await.unwrap();
    let name = created.metadata.name.clone().unwrap();
    assert!(
        name.starts_with("settings-") && name.len() == "settings-".len() + 5,
        "{name}"
    );

    let mut first = created.clone();
    first.data = Some([("k".to_string(), "2".to_string())].into());
    cms.replace(&name, &PostParams::default(), &first)
        .await
        .unwrap();
    let mut stale = created;
    stale.data = Some([("k".to_string(), "3".to_string())].into());
    let status = api_error(
        cms.replace(&name, &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert!(
        status.message.contains("the object has been modified"),
        "{}",
        status.message
    );

    let status = api_error(cms.get("missing").await.unwrap_err());
    assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));
    assert_eq!(status.message, "configmaps \"missing\" not found");
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn server_side_apply_tracks_owners_and_reports_conflicts() {
    let (emu, client) = start().await;
    let deploys: Api<Deployment> = Api::namespaced(client, "default");
    let ours = PatchParams::apply("ours");
    let applied = deploys
        .patch("web", &ours, &Patch::Apply(deployment("web", 2, "web:1")))
        .await
        .unwrap();
    let again = deploys
        .patch("web", &ours, &Patch::Apply(deployment("web", 2, "web:1")))
        .await
        .unwrap();
    assert_eq!(
        applied.metadata.resource_version,
        again.metadata.resource_version
    );
    let managers: Vec<_> = again
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .map(|m| (m.manager.unwrap(), m.operation.unwrap()))
        .collect();
    assert!(
        managers.contains(&("ours".into(), "Apply".into())),
        "{managers:?}"
    );

    let theirs = PatchParams::apply("theirs");
    let status = api_error(
        deploys
            .patch("web", &theirs, &Patch::Apply(deployment("web", 5, "web:1")))
            .await
            .unwrap_err(),
    );
    assert_eq!(status.code, 409);
    assert!(
        status
            .message
            .contains("conflict with \"ours\": .spec.replicas"),
        "{}",
        status.message
    );
    let causes = status.details.unwrap().causes;
    assert_eq!(causes[0].reason, "FieldManagerConflict");

    let forced = deploys
        .patch(
            "web",
            &theirs.clone().force(),
            &Patch::Apply(deployment("web", 5, "web:1")),
        )
        .await
        .unwrap();
    assert_eq!(forced.spec.unwrap().replicas, Some(5));

    // A field only `ours` sent goes away when `ours` stops sending it.
    // (`theirs` now owns replicas; sending the live value shares it without a conflict.)
    let mut labelled = deployment("web", 5, "web:1");
    labelled["metadata"]["labels"] = json!({ "team": "a" });
    deploys
        .patch("web", &ours, &Patch::Apply(labelled))
        .await
        .unwrap();
    let unlabelled = deploys
        .patch("web", &ours, &Patch::Apply(deployment("web", 5, "web:1")))
        .await
        .unwrap();
    assert!(
        !unlabelled
            .metadata
            .labels
            .unwrap_or_default()
            .contains_key("team")
    );

    let bad = json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "bad" },
        "spec": { "selector": { "matchLabels": { "a": "b" } }, "template": { "metadata": { "labels": { "a": "c" } },
        "spec": { "containers": [{ "name": "c", "image": "x" }] } } } });
    let status = api_error(
        deploys
            .patch("bad", &ours, &Patch::Apply(bad))
            .await
            .unwrap_err(),
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        status.details.unwrap().causes[0].field,
        "spec.template.metadata.labels"
    );
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_runs_change_nothing_and_selectors_filter_lists() {
    let (emu, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    cms.create(&dry, &config_map("ghost", json!({}), json!({})))
        .await
        .unwrap();
    assert!(cms.get_opt("ghost").await.unwrap().is_none());

    for (name, tier) in [("a", "front"), ("b", "back"), ("c", "front")] {
        cms.create(
            &PostParams::default(),
            &config_map(name, json!({ "tier": tier }), json!({})),
        )
        .await
        .unwrap();
    }
    let names = |l: kube::core::ObjectList<ConfigMap>| -> Vec<String> {
        l.items
            .into_iter()
            .filter_map(|c| c.metadata.name)
            .collect()
    };
    assert_eq!(
        names(
            cms.list(&ListParams::default().labels("tier=front"))
                .await
                .unwrap()
        ),
        ["a", "c"]
    );
    assert_eq!(
        names(
            cms.list(&ListParams::default().labels("tier notin (front)"))
                .await
                .unwrap()
        ),
        ["b"]
    );
    assert_eq!(
        names(
            cms.list(&ListParams::default().fields("metadata.name=c"))
                .await
                .unwrap()
        ),
        ["c"]
    );
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_with_propagation_collects_or_orphans_dependents() {
    let (emu, client) = start().await;
    kube_emulator::client::Client::new(&emu.url())
        .unwrap()
        .load_images(&["web:1".into()])
        .await
        .unwrap();
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let apply = PatchParams::apply("test");
    for name in ["fg", "orphan"] {
        deploys
            .patch(name, &apply, &Patch::Apply(deployment(name, 2, "web:1")))
            .await
            .unwrap();
    }
    let wait_for = |selector: &'static str, want: usize| {
        let pods = pods.clone();
        async move {
            for _ in 0..100 {
                if pods
                    .list(&ListParams::default().labels(selector))
                    .await
                    .unwrap()
                    .items
                    .len()
                    == want
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("{selector}: never {want} pods");
        }
    };
    wait_for("app=fg", 2).await;
    wait_for("app=orphan", 2).await;

    deploys
        .delete("fg", &DeleteParams::foreground())
        .await
        .unwrap();
    wait_for("app=fg", 0).await;
    assert!(
        replica_sets
            .list(&ListParams::default().labels("app=fg"))
            .await
            .unwrap()
            .items
            .is_empty()
    );

    deploys
        .delete("orphan", &DeleteParams::orphan())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let orphaned = replica_sets
        .list(&ListParams::default().labels("app=orphan"))
        .await
        .unwrap()
        .items;
    assert_eq!(orphaned.len(), 1);
    assert!(
        orphaned[0]
            .metadata
            .owner_references
            .as_ref()
            .is_none_or(|o| o.is_empty())
    );
    wait_for("app=orphan", 2).await;
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn injected_faults_fail_delay_and_close_watches() {
    let (emu, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    emu.faults().add(Fault {
        method: Some("GET".into()),
        path: Some("/configmaps".into()),
        // 500, not 503: kube-rs retries 503s on its own.
        code: Some(500),
        times: Some(2),
        ..Fault::default()
    });
    for _ in 0..2 {
        let status = api_error(cms.list(&ListParams::default()).await.unwrap_err());
        assert_eq!(status.code, 500);
    }
    cms.list(&ListParams::default()).await.unwrap();

    emu.faults().add(Fault {
        path: Some("/configmaps/slow".into()),
        latency_ms: Some(400),
        times: Some(1),
        ..Fault::default()
    });
    let started = std::time::Instant::now();
    assert!(cms.get_opt("slow").await.unwrap().is_none());
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "the injected latency was not applied"
    );

    emu.faults().add(Fault {
        path: Some("/configmaps".into()),
        watch_only: true,
        close_after_ms: Some(300),
        ..Fault::default()
    });
    let started = std::time::Instant::now();
    let events: Vec<_> = cms
        .watch(&WatchParams::default().timeout(30), "0")
        .await
        .unwrap()
        .collect()
        .await;
    assert!(events.is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the watch was not closed early"
    );
    emu.stop().await;
}
