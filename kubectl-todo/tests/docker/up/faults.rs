//! `kubectl todo up` when things go wrong: pods that cannot run, a busy or
//! abandoned lock, Ctrl-C during the apply, refused and failing requests,
//! dropped watches; and `--dry-run`. Scripted runtime, real builds.

use super::support;

use std::time::Duration;

use crate::harness::Running;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use kube_emulator::Config;
use kube_emulator::faults::{Denial, Fault};
use support::{NS, Setup};

fn emulator(s: &Setup) -> kube_emulator::client::Client {
    kube_emulator::client::Client::new(&s.emu.url()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_the_node_cannot_get_stops_the_rollout_with_doctors_diagnosis() {
    let s = Setup::start(Config::default()).await;
    s.secret("canary-faults-1").await;
    let run = s
        .run(&[
            "up",
            "--image",
            "api=shop-api:never-built",
            "--timeout",
            "10m",
        ])
        .await
        .failed();
    assert!(
        run.stderr
            .contains("shop-api:never-built is not on the node")
            && run
                .stderr
                .contains("minikube image load shop-api:never-built"),
        "{}",
        run.all()
    );
    assert!(
        run.stderr.contains("the rollout of revision 1 failed"),
        "{}",
        run.all()
    );
    let history = s.history().await;
    assert_eq!(history[0]["outcome"], "failed");
    assert!(!run.all().contains("canary-faults-1"));
    s.remove_built_images().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unschedulable_pod_stops_the_rollout() {
    let s = Setup::start(Config::default()).await;
    s.secret("canary-faults-2").await;
    let project = support::PROJECT.replace(
        "    secretKeys: [API_KEY]\n",
        "    secretKeys: [API_KEY]\n    resources: {requests: {cpu: '64', memory: 128Mi}, limits: {cpu: '64', memory: 512Mi}}\n",
    );
    s.write("todo.yaml", &project);
    let run = s.run(&["up", "--timeout", "10m"]).await.failed();
    assert!(
        run.stderr.contains("api:") && run.stderr.to_lowercase().contains("cpu"),
        "{}",
        run.all()
    );
    assert!(
        run.stderr.contains("the rollout of revision 1 failed"),
        "{}",
        run.all()
    );
    s.remove_built_images().await;
}

/// After a failed revision, the fix's rollout is judged by its own pods: the
/// failed revision's pod (same images, same checksums, still unschedulable
/// until its ReplicaSet is scaled down) is not blamed for it.
#[tokio::test(flavor = "multi_thread")]
async fn the_rollout_after_a_failed_one_is_judged_by_its_own_pods() {
    let s = Setup::start(Config::default()).await;
    s.secret("canary-faults-10").await;
    let project = support::PROJECT.replace(
        "    secretKeys: [API_KEY]\n",
        "    secretKeys: [API_KEY]\n    resources: {requests: {cpu: '64', memory: 128Mi}, limits: {cpu: '64', memory: 512Mi}}\n",
    );
    s.write("todo.yaml", &project);
    s.run(&["up", "--timeout", "2m"]).await.failed();
    assert_eq!(s.history().await[0]["outcome"], "failed");

    s.write("todo.yaml", support::PROJECT);
    let run = s.run(&["up", "--timeout", "2m"]).await;
    assert!(run.ok, "{}", run.all());
    assert_eq!(s.history().await[1]["outcome"], "applied");
    s.remove_built_images().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_lock_refuses_and_an_abandoned_one_expires() {
    let s = Setup::start(Config::default()).await;
    s.secret("canary-faults-3").await;
    let leases: Api<Lease> = Api::namespaced(s.client.clone(), NS);
    let lease = |renewed: jiff::Timestamp| Lease {
        metadata: ObjectMeta {
            name: Some("shop-lock".into()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("elsewhere/42".into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(renewed)),
            ..LeaseSpec::default()
        }),
    };
    leases
        .create(&PostParams::default(), &lease(jiff::Timestamp::now()))
        .await
        .unwrap();
    let run = s.run(&["up"]).await.failed();
    assert!(
        run.stderr
            .contains("another operation on shop is in progress: elsewhere/42"),
        "{}",
        run.all()
    );
    assert!(run.stderr.contains("--wait-for-lock"), "{}", run.all());
    assert!(
        s.history().await.as_array().unwrap().is_empty(),
        "nothing applied"
    );

    // The holder was killed a minute ago: its lease has expired, and up takes it over.
    let mut stale = leases.get("shop-lock").await.unwrap();
    stale.spec = lease(jiff::Timestamp::now() - jiff::SignedDuration::from_secs(60)).spec;
    leases
        .replace("shop-lock", &PostParams::default(), &stale)
        .await
        .unwrap();
    s.run(&["up", "--timeout", "2m"]).await.ok();
    assert!(
        leases.get_opt("shop-lock").await.unwrap().is_none(),
        "released"
    );
    s.remove_built_images().await;
}

/// `--wait-for-lock`: the images are built while another run holds the
/// lock (the wait is shorter for it), the wait is said with its holder and
/// since when, nothing is written to the app before the lock is had, and a
/// released lock lets the run go on.
#[tokio::test(flavor = "multi_thread")]
async fn waiting_for_the_lock_says_whose_and_writes_nothing_until_it_is_had() {
    use tokio::io::AsyncBufReadExt;

    let s = Setup::start(Config::default()).await;
    s.secret("canary-faults-12").await;
    let leases: Api<Lease> = Api::namespaced(s.client.clone(), NS);
    let acquired = jiff::Timestamp::from_second(1_790_000_000).unwrap();
    let held = Lease {
        metadata: ObjectMeta {
            name: Some("shop-lock".into()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("elsewhere/42".into()),
            lease_duration_seconds: Some(15),
            acquire_time: Some(MicroTime(acquired)),
            renew_time: Some(MicroTime(jiff::Timestamp::now())),
            ..LeaseSpec::default()
        }),
    };
    leases.create(&PostParams::default(), &held).await.unwrap();
    // The other holder stays alive however long the builds take.
    let renewer = tokio::spawn({
        let leases = leases.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                let Ok(mut lease) = leases.get("shop-lock").await else {
                    continue;
                };
                lease.spec.as_mut().unwrap().renew_time = Some(MicroTime(jiff::Timestamp::now()));
                let _ = leases
                    .replace("shop-lock", &PostParams::default(), &lease)
                    .await;
            }
        }
    });
    let maps: Api<ConfigMap> = Api::namespaced(s.client.clone(), NS);
    let before = maps.list(&Default::default()).await.unwrap().items.len();

    let run = s.run(&["up", "--wait-for-lock", "3"]).await.failed();
    assert!(
        run.stderr.contains(
            "waiting for the lock held by elsewhere/42 since 2026-09-21T14:13:20Z (--wait-for-lock 3s,"
        ) && run.stderr.contains("nothing is written until it is released"),
        "{}",
        run.all()
    );
    assert!(
        run.stderr
            .contains("another operation on shop is in progress: elsewhere/42"),
        "{}",
        run.all()
    );
    assert!(
        s.history().await.as_array().unwrap().is_empty(),
        "nothing applied"
    );
    assert_eq!(
        maps.list(&Default::default()).await.unwrap().items.len(),
        before,
        "nothing written"
    );
    assert!(
        !s.minikube_calls().is_empty(),
        "the images were built and loaded onto the node before the wait"
    );

    // The holder finishes while this run waits: it goes on.
    let mut child = s
        .command(&["up", "--timeout", "2m", "--wait-for-lock", "60"])
        .spawn()
        .unwrap();
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut said = Vec::new();
    while let Some(line) = stderr.next_line().await.unwrap() {
        said.push(line.clone());
        if line.starts_with("waiting for the lock held by elsewhere/42") {
            break;
        }
    }
    renewer.abort();
    leases
        .delete("shop-lock", &Default::default())
        .await
        .unwrap();
    while let Some(line) = stderr.next_line().await.unwrap() {
        said.push(line);
    }
    let status = child.wait().await.unwrap();
    let said = said.join("\n");
    assert!(status.success(), "{said}");
    let waiting = said
        .find("waiting for the lock held by elsewhere/42")
        .unwrap_or_else(|| panic!("{said}"));
    let applied = said
        .find("applied revision 1")
        .unwrap_or_else(|| panic!("{said}"));
    assert!(waiting < applied, "{said}");
    assert_eq!(
        said.matches("waiting for the lock").count(),
        1,
        "said once: {said}"
    );
    s.remove_built_images().await;
}

/// A holder whose Lease the API server stops renewing gives up before the
/// Lease expires for others: `up` stops part-way through the apply, says
/// why, and writes nothing more.
#[tokio::test(flavor = "multi_thread")]
async fn up_stops_when_it_cannot_renew_its_lock() {
    let s = Setup::start(Config::default()).await;
    s.secret("canary-faults-11").await;
    // Longer, for the two Deployments, than the lock survives unrenewed.
    let child = up_in_the_apply(&s, 10_000, 1).await;
    emulator(&s)
        .add_fault(&Fault {
            path: Some("/leases/shop-lock".into()),
            code: Some(503),
            ..Fault::default()
        })
        .await
        .unwrap();
    let run = child.finish_within(Duration::from_secs(40)).await;
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        run.stderr
            .contains("error: lost the lock shop-lock in namespace shop: could not renew it for")
            && run.stderr.contains("stopped before writing anything more")
            && run
                .stderr
                .contains("hint: another run may be changing the app now"),
        "{}",
        run.all()
    );
    assert!(!run.stderr.contains("applied revision"), "{}", run.all());
    s.emu.faults().clear();
    s.remove_built_images().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_ups_at_once_take_turns() {
    let s = Setup::start(Config::default()).await;
    s.secret("canary-faults-4").await;
    s.run(&["up", "--timeout", "2m"]).await.ok();
    s.write("api/www/index.html", "api v2\n");
    let (a, b) = tokio::join!(
        s.run(&["up", "--timeout", "2m", "--wait-for-lock", "120"]),
        s.run(&["up", "--timeout", "2m", "--wait-for-lock", "120"]),
    );
    let (a, b) = (a.ok(), b.ok());
    let history = s.history().await;
    let outcomes: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    // The second to take the lock looks again under it and finds the first's
    // revision applied: nothing to do, however early it looked before.
    assert_eq!(outcomes, ["applied", "applied"], "{}\n{}", a.all(), b.all());
    assert!(
        [&a, &b].iter().any(|r| r
            .stderr
            .contains("nothing to apply: revision 2 holds these objects already")
            || r.stderr.contains("no build, no load, no apply")),
        "{}\n{}",
        a.all(),
        b.all()
    );
    s.remove_built_images().await;
}

/// Starts `up` with Deployment patches that each take `latency_ms`, and
/// returns it once revision `revision` is being applied.
async fn up_in_the_apply(s: &Setup, latency_ms: u64, revision: u32) -> Running {
    emulator(s)
        .add_fault(&Fault {
            method: Some("PATCH".into()),
            path: Some("/deployments/".into()),
            // Each of the dry run's and the apply's Deployment patches.
            latency_ms: Some(latency_ms),
            ..Fault::default()
        })
        .await
        .unwrap();
    let child = Running::start(s.command(&["up", "--timeout", "2m"]));
    let maps: Api<ConfigMap> = Api::namespaced(s.client.clone(), NS);
    let mut applying = false;
    for _ in 0..600 {
        if let Some(rev) = maps.get_opt(&format!("shop-rev-{revision}")).await.unwrap() {
            applying =
                rev.metadata.annotations.unwrap()["kubectl-todo/summary"].contains("\"applying\"");
            if applying {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(applying, "the run reached the apply");
    child
}

/// Sends `signal` to an `up` in the middle of applying revision `revision`,
/// and returns how the run ended, checked for canaries as every run is.
async fn signal_during_the_apply(s: &Setup, signal: libc::c_int, revision: u32) -> support::Run {
    let child = up_in_the_apply(s, 3_000, revision).await;
    // Give it time to reach the slow Deployment patch.
    tokio::time::sleep(Duration::from_millis(500)).await;
    child.signal(signal);
    let run = child.finish().await;
    s.emu.faults().clear();
    run
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_during_the_apply_records_the_revision_as_interrupted_and_the_next_up_converges() {
    let s = Setup::start(Config::default()).await;
    s.secret("canary-faults-5").await;
    let out = signal_during_the_apply(&s, libc::SIGINT, 1).await;
    let stderr = &out.stderr;
    assert_eq!(out.code, Some(130), "{stderr}");
    assert!(
        stderr.contains("revision 1 is recorded as interrupted"),
        "{stderr}"
    );
    assert_eq!(s.history().await[0]["outcome"], "interrupted");

    let run = s.run(&["up", "--timeout", "2m"]).await.ok();
    let history = s.history().await;
    assert_eq!(history[1]["outcome"], "applied", "{}", run.all());
    s.remove_built_images().await;
}

/// SIGTERM (CI, `timeout`, `docker stop`) and SIGHUP (a closed terminal)
/// end a run as Ctrl-C does: the revision recorded as interrupted, the lock
/// released at once, the shell's exit status for the signal.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_and_sighup_during_the_apply_are_handled_like_ctrl_c() {
    let s = Setup::start(Config::default()).await;
    s.secret("canary-faults-8").await;
    let leases: Api<Lease> = Api::namespaced(s.client.clone(), NS);
    for (signal, name, code, revision) in [
        (libc::SIGTERM, "SIGTERM", 143, 1),
        (libc::SIGHUP, "SIGHUP", 129, 2),
    ] {
        let out = signal_during_the_apply(&s, signal, revision).await;
        let stderr = &out.stderr;
        assert_eq!(out.code, Some(code), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "interrupted by {name}; revision {revision} is recorded as interrupted"
            )),
            "{stderr}"
        );
        assert!(
            leases.get_opt("shop-lock").await.unwrap().is_none(),
            "{name}: the lock is released"
        );
        let history = s.history().await;
        let recorded = &history[revision as usize - 1];
        assert_eq!(recorded["outcome"], "interrupted", "{name}");
        assert_eq!(
            recorded["error"],
            format!("interrupted ({name}) before every object was applied")
        );
    }
    let run = s.run(&["up", "--timeout", "2m"]).await.ok();
    assert_eq!(s.history().await[2]["outcome"], "applied", "{}", run.all());
    s.remove_built_images().await;
}

/// A run killed (`kill -9`) part-way cannot record anything: once its lock
/// has expired, `history` (table and JSON) and `status` all call its
/// revision interrupted, and the next run records that outcome.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_runs_revision_is_interrupted_everywhere_and_recorded_so_by_the_next_run() {
    let s = Setup::start(Config::default()).await;
    s.secret("canary-faults-9").await;
    let out = signal_during_the_apply(&s, libc::SIGKILL, 1).await;
    assert_eq!(out.code, None, "killed");
    assert_eq!(
        s.history().await[0]["outcome"],
        "applying",
        "the lock is held"
    );
    // The Lease expires on its own; time it out now rather than wait.
    let leases: Api<Lease> = Api::namespaced(s.client.clone(), NS);
    let mut lease = leases.get("shop-lock").await.unwrap();
    lease.spec.as_mut().unwrap().renew_time = Some(MicroTime(
        jiff::Timestamp::now() - jiff::SignedDuration::from_secs(60),
    ));
    leases
        .replace("shop-lock", &PostParams::default(), &lease)
        .await
        .unwrap();

    assert_eq!(s.history().await[0]["outcome"], "interrupted");
    let table = s.run(&["history"]).await.ok().stdout;
    let row = table.lines().nth(1).unwrap();
    assert!(
        row.split_whitespace().nth(2) == Some("interrupted"),
        "{table}"
    );
    let status = s.run(&["status", "-o", "json"]).await.ok().stdout;
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["revision"]["outcome"], "interrupted");

    let run = s.run(&["up", "--timeout", "2m"]).await.ok();
    let maps: Api<ConfigMap> = Api::namespaced(s.client.clone(), NS);
    let recorded = maps
        .get("shop-rev-1")
        .await
        .unwrap()
        .metadata
        .annotations
        .unwrap()["kubectl-todo/summary"]
        .clone();
    assert!(recorded.contains("\"interrupted\""), "{recorded}");
    assert_eq!(s.history().await[1]["outcome"], "applied", "{}", run.all());
    s.remove_built_images().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_and_failing_requests() {
    let s = Setup::start(Config::default()).await;
    s.secret("canary-faults-6").await;
    // Two 500s on the Deployments and two 429s on the ConfigMaps are retried with backoff.
    for (path, code) in [("/deployments/", 500), ("/configmaps/shop-web", 429)] {
        emulator(&s)
            .add_fault(&Fault {
                method: Some("PATCH".into()),
                path: Some(path.into()),
                code: Some(code),
                times: Some(2),
                ..Fault::default()
            })
            .await
            .unwrap();
    }
    // Pod watches drop every second: the display resumes them.
    emulator(&s)
        .add_fault(&Fault {
            path: Some("/pods".into()),
            watch_only: true,
            close_after_ms: Some(1000),
            ..Fault::default()
        })
        .await
        .unwrap();
    s.run(&["up", "--timeout", "2m"]).await.ok();
    let web_image = s.image_of("shop-web").await;

    // A refused verb is named, and the revision is not reported as a success.
    s.write("web/www/index.html", "web v3\n");
    emulator(&s)
        .deny(&Denial {
            verb: "patch".into(),
            group: "apps".into(),
            resource: "deployments".into(),
            namespace: None,
        })
        .await
        .unwrap();
    let run = s.run(&["up", "--timeout", "2m"]).await.failed();
    assert!(
        run.stderr.contains("refuses to let you patch deployments")
            && run.stderr.contains("kubectl auth can-i patch deployments"),
        "{}",
        run.all()
    );
    // Refused in the dry run that precedes every apply: nothing was changed.
    assert_eq!(s.history().await.as_array().unwrap().len(), 1);
    assert_eq!(s.image_of("shop-web").await, web_image);
    s.remove_built_images().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_prints_the_diff_and_changes_nothing() {
    let s = Setup::start(Config::default()).await;
    s.secret("canary-faults-7").await;
    s.run(&["up", "--timeout", "2m"]).await.ok();
    let run = s.run(&["up", "--dry-run"]).await.ok();
    assert!(run.stdout.contains("no changes"), "{}", run.all());

    s.write(
        "todo.yaml",
        &support::PROJECT.replace("GREETING: hello", "GREETING: bonjour"),
    );
    s.write("web/www/index.html", "web v4\n");
    let run = s.run(&["up", "--dry-run"]).await.ok();
    assert!(
        run.stdout.contains("-  GREETING: hello") && run.stdout.contains("+  GREETING: bonjour"),
        "{}",
        run.all()
    );
    assert!(
        run.stdout.contains("+++ up/Deployment/shop-web"),
        "{}",
        run.all()
    );
    assert!(run.stderr.contains("would be built"), "{}", run.all());
    assert!(
        run.stderr.contains("0 to create, 2 to change, 0 to prune"),
        "{}",
        run.all()
    );
    let maps: Api<ConfigMap> = Api::namespaced(s.client.clone(), NS);
    let config = maps.get("shop-web").await.unwrap();
    assert_eq!(config.data.unwrap()["GREETING"], "hello");
    assert_eq!(s.history().await.as_array().unwrap().len(), 1);
    assert!(!run.all().contains("canary-faults-7"));
    s.remove_built_images().await;
}

/// A build that fails changes nothing in the cluster, as its hint says:
/// the namespace `up` would create is not there afterwards either.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_build_leaves_the_cluster_as_it_was_namespace_included() {
    let s = Setup::start(Config::default()).await;
    // No required key: nothing else needs the namespace before `up` runs.
    s.write(
        "todo.yaml",
        "name: shop\ncomponents:\n  - {name: web, port: 8080, healthPath: /healthz}\n  - {name: api, port: 8080, healthPath: /healthz}\n",
    );
    let dockerfile = std::fs::read_to_string(s.app.join("api/Dockerfile")).unwrap();
    let (from, rest) = dockerfile.split_once('\n').unwrap();
    s.write("api/Dockerfile", &format!("{from}\nRUN exit 3\n{rest}"));
    let run = s.run(&["up", "--timeout", "2m"]).await.failed();
    assert!(
        run.stderr
            .contains("error: cannot build the image of component `api`")
            && run.stderr.contains("nothing was changed in the cluster"),
        "{}",
        run.all()
    );
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(s.client.clone());
    assert!(
        namespaces.get_opt(NS).await.unwrap().is_none(),
        "the namespace was created: {}",
        run.all()
    );
    s.remove_built_images().await;
}
