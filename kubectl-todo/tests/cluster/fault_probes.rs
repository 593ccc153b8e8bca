//! The catalogue of faults (the probes): every fault the emulator
//! can stage, each checked for the exit code, the message, the revision
//! state recorded (`history` and `status` agreeing), the lock released, and
//! nothing lost: a next `up` converges on an applied revision. Prints
//! `probes: faults: N tried, N survived` (`--no-capture`) and fails listing
//! every fault not survived.
//!
//! Left out, as they need the Docker Engine or a real file system: a full
//! disk under the image cache and `--max-size` on a cached image, in
//! image-builder's own catalogue (`image-builder/tests/fault_probes.rs`).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use kube_emulator::faults::{ContainerFailure, Denial, Fault};
use serde_json::Value;

use crate::harness::{App, Cluster, Run, Running, against, run_against};
use crate::pod_failures::{REFUSED, failed_and_recorded, up_while_the_node_fails_api};

const PROJECT: &str = "name: shop\nsecret:\n  keys:\n    - name: API_KEY\ncomponents:\n  - {name: web, port: 3000}\n  - {name: api, port: 8000, secretKeys: [API_KEY]}\n";

/// The images every run deploys; the fix of a failed revision deploys `api=shop-api:2`.
const IMAGES: [&str; 4] = ["--image", "web=shop-web:1", "--image", "api=shop-api:1"];

type Outcome = Result<(), String>;

/// One emulated cluster holding the app's namespace and Secret, with the
/// images on the node.
struct Stage {
    cluster: Cluster,
    app: App,
    kc: String,
}

impl Stage {
    async fn new(project: &str) -> Stage {
        let cluster = Cluster::start().await;
        let kc = cluster.kubeconfig().to_string();
        cluster.namespace("shop").await;
        cluster
            .secret(
                "shop",
                "shop-secrets",
                &[("API_KEY", "canary-fault-probe-key")],
            )
            .await;
        cluster
            .load(&["shop-web:1", "shop-api:1", "shop-api:2"])
            .await;
        Stage {
            cluster,
            app: App::with_file(project),
            kc,
        }
    }

    fn faults(&self) -> &kube_emulator::faults::Faults {
        self.cluster.emulator.faults()
    }

    /// `up --timeout 1m` of the stage's images, with `extra` arguments.
    fn up(&self, extra: &[&str]) -> Running {
        let mut args = vec!["up", "--timeout", "1m"];
        args.extend(IMAGES);
        args.extend(extra);
        Running::start(against(&self.app, &self.kc, &args))
    }

    async fn finish(&self, run: Running) -> Result<Run, String> {
        let limit = Duration::from_secs(60);
        match tokio::time::timeout(limit + Duration::from_secs(5), run.finish_within(limit)).await {
            Ok(run) => Ok(run),
            Err(_) => Err("still running after a minute".into()),
        }
    }

    async fn json(&self, args: &[&str]) -> Result<Value, String> {
        let run = run_against(&self.app, &self.kc, args).await;
        if !run.ok {
            return Err(format!("{args:?} failed:\n{}", run.all()));
        }
        serde_json::from_str(&run.stdout).map_err(|e| format!("{args:?}: {e}: {}", run.stdout))
    }

    /// The outcome of every revision, oldest first.
    async fn outcomes(&self) -> Result<Vec<String>, String> {
        let history = self.json(&["history", "-o", "json"]).await?;
        Ok(history
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| r["outcome"].as_str().unwrap_or_default().to_string())
            .collect())
    }

    /// `history` and `status` say the same of the last revision, and it is `want`.
    async fn recorded(&self, want: &[&str]) -> Outcome {
        let outcomes = self.outcomes().await?;
        if outcomes != want {
            return Err(format!("history: {outcomes:?}, want {want:?}"));
        }
        if let Some(last) = outcomes.last() {
            let status = self.json(&["status", "-o", "json"]).await?;
            if status["revision"]["outcome"] != last.as_str() {
                return Err(format!(
                    "history says {last}, status says {}",
                    status["revision"]["outcome"]
                ));
            }
        }
        Ok(())
    }

    async fn unlocked(&self) -> Outcome {
        let leases: Api<Lease> = Api::namespaced(self.cluster.client.clone(), "shop");
        match leases.get_opt("shop-lock").await {
            Ok(None) => Ok(()),
            Ok(Some(_)) => Err("the lock is still held".into()),
            Err(e) => Err(format!("reading the lock: {e}")),
        }
    }

    /// Nothing lost: with the faults gone, the next `up` applies a revision
    /// of its own and records it, and the one before is left as recorded.
    async fn converges(&self, before: &[&str]) -> Outcome {
        self.faults().clear();
        let run = self.finish(self.up(&["--wait-for-lock", "30"])).await?;
        check(run.ok, "the next up succeeds", &run)?;
        let mut want = before.to_vec();
        want.push("applied");
        self.recorded(&want).await?;
        self.unlocked().await
    }

    /// Returns once the run's revision `revision` is being applied.
    async fn applying(&self, revision: u32) -> Outcome {
        let maps: Api<ConfigMap> = Api::namespaced(self.cluster.client.clone(), "shop");
        for _ in 0..300 {
            if let Ok(Some(rev)) = maps.get_opt(&format!("shop-rev-{revision}")).await
                && rev
                    .metadata
                    .annotations
                    .unwrap_or_default()
                    .get("kubectl-todo/summary")
                    .is_some_and(|s| s.contains("\"applying\""))
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!("revision {revision} was never being applied"))
    }

    async fn locked(&self) -> Outcome {
        let leases: Api<Lease> = Api::namespaced(self.cluster.client.clone(), "shop");
        for _ in 0..300 {
            if leases.get_opt("shop-lock").await.is_ok_and(|l| l.is_some()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err("the lock was never taken".into())
    }

    /// Each Deployment patch (the dry run's and the apply's) takes `ms`.
    fn slow_apply(&self, ms: u64) {
        self.faults().add(Fault {
            method: Some("PATCH".into()),
            path: Some("/deployments/".into()),
            latency_ms: Some(ms),
            ..Fault::default()
        });
    }

    /// Ages the Lease a run left behind past its duration, as waiting would.
    async fn expire_lock(&self) -> Outcome {
        let leases: Api<Lease> = Api::namespaced(self.cluster.client.clone(), "shop");
        let mut lease = leases.get("shop-lock").await.map_err(|e| e.to_string())?;
        lease.spec.as_mut().unwrap().renew_time = Some(MicroTime(
            jiff::Timestamp::now() - jiff::SignedDuration::from_secs(60),
        ));
        leases
            .replace("shop-lock", &PostParams::default(), &lease)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn deployments(&self) -> usize {
        Api::<Deployment>::namespaced(self.cluster.client.clone(), "shop")
            .list(&Default::default())
            .await
            .map_or(usize::MAX, |l| l.items.len())
    }
}

fn check(ok: bool, what: &str, run: &Run) -> Outcome {
    if ok {
        Ok(())
    } else {
        Err(format!("{what}\n{}", run.all()))
    }
}

/// The run, unless it showed an error as a Rust debug dump instead of the server's message.
fn no_dump(run: Run) -> Result<Run, String> {
    for dump in ["Status {", "Output {", "ErrorResponse {"] {
        check(
            !run.all().contains(dump),
            &format!("no {dump:?} dump"),
            &run,
        )?;
    }
    Ok(run)
}

fn exit(run: &Run, code: i32) -> Outcome {
    check(run.code == Some(code), &format!("exit {code}"), run)
}

fn says(run: &Run, text: &str) -> Outcome {
    check(run.stderr.contains(text), &format!("says {text:?}"), run)
}

/// A run that succeeds through the fault, with revision 1 applied.
async fn survives(stage: &Stage, run: Running) -> Outcome {
    let run = stage.finish(run).await?;
    exit(&run, 0)?;
    says(&run, "applied revision 1 ")?;
    stage.recorded(&["applied"]).await?;
    stage.unlocked().await
}

async fn lease_get_500_during_renewal() -> Outcome {
    let stage = Stage::new(PROJECT).await;
    // Past the first renewal (every 5s).
    stage.slow_apply(2_500);
    let run = stage.up(&[]);
    stage.locked().await?;
    stage.faults().add(Fault {
        method: Some("GET".into()),
        path: Some("/leases/shop-lock".into()),
        code: Some(500),
        times: Some(1),
        ..Fault::default()
    });
    survives(&stage, run).await
}

async fn lease_renewal_refused_for_good() -> Outcome {
    let stage = Stage::new(PROJECT).await;
    stage.slow_apply(10_000);
    let run = stage.up(&[]);
    stage.applying(1).await?;
    stage.faults().add(Fault {
        path: Some("/leases/shop-lock".into()),
        code: Some(503),
        ..Fault::default()
    });
    let run = stage.finish(run).await?;
    exit(&run, 1)?;
    says(&run, "stopped before writing anything more")?;
    check(
        !run.stderr.contains("applied revision"),
        "no revision said applied",
        &run,
    )?;
    // The Lease it could not renew expires; the next run takes it over.
    stage.faults().clear();
    stage.expire_lock().await?;
    let outcomes = stage.outcomes().await?;
    if outcomes.len() != 1 || outcomes[0] == "applied" {
        return Err(format!("history: {outcomes:?}"));
    }
    stage.converges(&[&outcomes[0]]).await
}

async fn transient_500s_on_apply() -> Outcome {
    let stage = Stage::new(PROJECT).await;
    stage.faults().add(Fault {
        method: Some("PATCH".into()),
        path: Some("/deployments/".into()),
        code: Some(500),
        times: Some(2),
        ..Fault::default()
    });
    survives(&stage, stage.up(&[])).await
}

async fn persistent_500s_on_apply() -> Outcome {
    let stage = Stage::new(PROJECT).await;
    stage.faults().add(Fault {
        method: Some("PATCH".into()),
        path: Some("/deployments/".into()),
        code: Some(500),
        message: Some("etcdserver: request timed out".into()),
        ..Fault::default()
    });
    let run = stage.finish(stage.up(&[])).await?;
    exit(&run, 1)?;
    says(&run, "etcdserver: request timed out")?;
    stage.unlocked().await?;
    // Refused in the dry run before the apply: no revision, nothing applied.
    stage.recorded(&[]).await?;
    if stage.deployments().await != 0 {
        return Err("a Deployment was applied".into());
    }
    stage.converges(&[]).await
}

async fn forbidden_apply() -> Outcome {
    let stage = Stage::new(PROJECT).await;
    stage.faults().deny(Denial {
        verb: "patch".into(),
        group: "apps".into(),
        resource: "deployments".into(),
        namespace: None,
    });
    let run = stage.finish(stage.up(&[])).await?;
    exit(&run, 1)?;
    says(&run, "kubectl auth can-i patch deployments")?;
    stage.unlocked().await?;
    stage.recorded(&[]).await?;
    stage.converges(&[]).await
}

async fn latency_beyond_the_request_timeout() -> Outcome {
    let stage = Stage::new(PROJECT).await;
    stage.faults().add(Fault {
        path: Some("/configmaps".into()),
        latency_ms: Some(4_000),
        ..Fault::default()
    });
    let run = stage.finish(stage.up(&["--request-timeout", "1s"])).await?;
    exit(&run, 1)?;
    says(&run, "did not answer within 1s (--request-timeout")?;
    stage.faults().clear();
    stage.unlocked().await?;
    stage.recorded(&[]).await?;
    stage.converges(&[]).await
}

async fn a_silent_api_server() -> Outcome {
    let stage = Stage::new(PROJECT).await;
    stage.faults().add(Fault {
        silent: true,
        ..Fault::default()
    });
    let run = stage.finish(stage.up(&["--request-timeout", "2s"])).await?;
    exit(&run, 1)?;
    says(&run, "did not answer within 2s (--request-timeout")?;
    stage.faults().clear();
    stage.unlocked().await?;
    stage.recorded(&[]).await?;
    stage.converges(&[]).await
}

/// The API server goes away during the rollout wait: the run says so. With
/// the server gone, nothing can be recorded or read back.
async fn the_api_server_gone_mid_wait() -> Outcome {
    let stage = Stage::new(PROJECT).await;
    // The pods cannot be listed: the wait goes on, without a reason to stop.
    stage.faults().deny(Denial {
        verb: "list".into(),
        group: String::new(),
        resource: "pods".into(),
        namespace: None,
    });
    let run = stage.up(&[]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !run.stderr().contains("applied revision 1 ") {
        if tokio::time::Instant::now() > deadline {
            return Err(format!("never applied\n{}", run.all()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let Stage { cluster, .. } = stage;
    let Cluster { emulator, .. } = cluster;
    emulator.stop().await;
    let run = no_dump(run.finish_within(Duration::from_secs(60)).await)?;
    exit(&run, 1)?;
    // Said by the wait, or (when renewing the lock notices first) by the lock.
    let wait = "error: lost the connection to the cluster at 127.0.0.1 while waiting for the rollout of revision 1";
    let lock =
        "error: lost the lock shop-lock in namespace shop: lost the connection to the cluster (";
    check(
        run.stderr.contains(wait) || run.stderr.contains(lock),
        "says the connection was lost",
        &run,
    )?;
    check(
        !run.stderr.contains("the rollout of revision 1 failed") && !run.stderr.contains("fix:"),
        "not blamed on the app",
        &run,
    )
}

async fn a_signal_mid_apply(signal: libc::c_int, name: &str, code: i32) -> Outcome {
    let stage = Stage::new(PROJECT).await;
    stage.slow_apply(3_000);
    let run = stage.up(&[]);
    stage.applying(1).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    run.signal(signal);
    let run = stage.finish(run).await?;
    exit(&run, code)?;
    says(
        &run,
        &format!("interrupted by {name}; revision 1 is recorded as interrupted"),
    )?;
    stage.unlocked().await?;
    stage.faults().clear();
    stage.recorded(&["interrupted"]).await?;
    stage.converges(&["interrupted"]).await
}

/// `kill -9` mid-apply: nothing can be recorded by the run. While its Lease
/// lives, `history` and `status` both say `applying`; once it expired, both
/// say `interrupted`; the next run records that.
async fn kill_9_mid_apply() -> Outcome {
    let stage = Stage::new(PROJECT).await;
    stage.slow_apply(3_000);
    let run = stage.up(&[]);
    stage.applying(1).await?;
    run.signal(libc::SIGKILL);
    let run = stage.finish(run).await?;
    check(run.code.is_none(), "killed", &run)?;
    stage.faults().clear();
    stage.recorded(&["applying"]).await?;
    stage.expire_lock().await?;
    stage.recorded(&["interrupted"]).await?;
    stage.converges(&["interrupted"]).await
}

async fn a_held_lock() -> Outcome {
    let stage = Stage::new(PROJECT).await;
    let leases: Api<Lease> = Api::namespaced(stage.cluster.client.clone(), "shop");
    let held = Lease {
        metadata: ObjectMeta {
            name: Some("shop-lock".into()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("elsewhere/42".into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(jiff::Timestamp::now())),
            ..LeaseSpec::default()
        }),
    };
    leases
        .create(&PostParams::default(), &held)
        .await
        .map_err(|e| e.to_string())?;
    let run = stage.finish(stage.up(&[])).await?;
    exit(&run, 1)?;
    says(
        &run,
        "another operation on shop is in progress: elsewhere/42",
    )?;
    stage.recorded(&[]).await?;
    // An abandoned Lease (its holder killed a minute ago) is taken over.
    let mut stale = leases.get("shop-lock").await.map_err(|e| e.to_string())?;
    stale.spec.as_mut().unwrap().renew_time = Some(MicroTime(
        jiff::Timestamp::now() - jiff::SignedDuration::from_secs(60),
    ));
    leases
        .replace("shop-lock", &PostParams::default(), &stale)
        .await
        .map_err(|e| e.to_string())?;
    stage.converges(&[]).await
}

async fn two_ups_at_once() -> Outcome {
    let stage = Stage::new(PROJECT).await;
    stage.slow_apply(1_000);
    let first = stage.up(&["--wait-for-lock", "60"]);
    stage.locked().await?;
    let second = stage.up(&["--wait-for-lock", "60"]);
    let first = stage.finish(first).await?;
    let second = stage.finish(second).await?;
    exit(&first, 0)?;
    exit(&second, 0)?;
    says(
        &second,
        "nothing to apply: revision 1 holds these objects already",
    )?;
    stage.recorded(&["applied"]).await?;
    stage.unlocked().await
}

async fn watches_closed_by_the_server() -> Outcome {
    let stage = Stage::new(PROJECT).await;
    stage.faults().add(Fault {
        watch_only: true,
        close_after_ms: Some(300),
        ..Fault::default()
    });
    survives(&stage, stage.up(&[])).await
}

/// After a failed revision, the fix's rollout is judged by its own pods,
/// not by the failed ReplicaSet's pod on its way out.
async fn a_failed_revisions_pod_on_its_way_out() -> Outcome {
    let stage = Stage::new(PROJECT).await;
    stage
        .faults()
        .fail_containers(kube_emulator::faults::ContainerFault {
            image: "shop-api:1".into(),
            failure: ContainerFailure::CreateContainerError(REFUSED.into()),
        });
    let run = stage.finish(stage.up(&[])).await?;
    exit(&run, 1)?;
    let run = stage
        .finish(Running::start(against(
            &stage.app,
            &stage.kc,
            &[
                "up",
                "--timeout",
                "1m",
                "--image",
                "web=shop-web:1",
                "--image",
                "api=shop-api:2",
            ],
        )))
        .await?;
    exit(&run, 0)?;
    stage.recorded(&["failed", "applied"]).await?;
    stage.unlocked().await
}

async fn a_pod_the_node_fails(failure: ContainerFailure, says_what: &str) -> Outcome {
    let (cluster, app, run) = up_while_the_node_fails_api(failure).await;
    failed_and_recorded(&cluster, &app, &run).await?;
    says(&run, says_what)
}

async fn duplicate_node_ports() -> Outcome {
    let stage = Stage::new(
        &PROJECT
            .replace(
                "port: 3000}",
                "port: 3000, service: {type: NodePort, nodePort: 30080}}",
            )
            .replace(
                "port: 8000,",
                "port: 8000, service: {type: NodePort, nodePort: 30080},",
            ),
    )
    .await;
    let run = stage.finish(stage.up(&[])).await?;
    exit(&run, 1)?;
    says(
        &run,
        "is already the node port of component `web`: give each its own",
    )?;
    // The project does not load, so history cannot be asked: the cluster is.
    let maps: Api<ConfigMap> = Api::namespaced(stage.cluster.client.clone(), "shop");
    if maps
        .get_opt("shop-rev-1")
        .await
        .map_err(|e| e.to_string())?
        .is_some()
    {
        return Err("a revision was recorded".into());
    }
    if stage.deployments().await != 0 {
        return Err("a Deployment was applied".into());
    }
    stage.unlocked().await
}

type Probe = Pin<Box<dyn Future<Output = Outcome>>>;

#[tokio::test(flavor = "multi_thread")]
async fn every_fault_is_survived_with_nothing_lost() {
    let probes: Vec<(&str, Probe)> = vec![
        (
            "a 500 on the Lease's GET during renewal",
            Box::pin(lease_get_500_during_renewal()),
        ),
        (
            "the Lease cannot be renewed at all",
            Box::pin(lease_renewal_refused_for_good()),
        ),
        ("two 500s on the apply", Box::pin(transient_500s_on_apply())),
        ("500s on every apply", Box::pin(persistent_500s_on_apply())),
        ("the apply forbidden by RBAC", Box::pin(forbidden_apply())),
        (
            "latency beyond --request-timeout",
            Box::pin(latency_beyond_the_request_timeout()),
        ),
        ("a silent API server", Box::pin(a_silent_api_server())),
        (
            "the API server gone mid-wait",
            Box::pin(the_api_server_gone_mid_wait()),
        ),
        (
            "SIGTERM mid-apply",
            Box::pin(a_signal_mid_apply(libc::SIGTERM, "SIGTERM", 143)),
        ),
        (
            "SIGHUP mid-apply",
            Box::pin(a_signal_mid_apply(libc::SIGHUP, "SIGHUP", 129)),
        ),
        (
            "SIGINT mid-apply",
            Box::pin(a_signal_mid_apply(libc::SIGINT, "Ctrl-C", 130)),
        ),
        ("kill -9 mid-apply", Box::pin(kill_9_mid_apply())),
        ("a held, then abandoned lock", Box::pin(a_held_lock())),
        ("two ups at once", Box::pin(two_ups_at_once())),
        (
            "watches closed by the server",
            Box::pin(watches_closed_by_the_server()),
        ),
        (
            "a failed revision's pod on its way out",
            Box::pin(a_failed_revisions_pod_on_its_way_out()),
        ),
        (
            "CreateContainerError",
            Box::pin(a_pod_the_node_fails(
                ContainerFailure::CreateContainerError(REFUSED.into()),
                "CreateContainerError: ",
            )),
        ),
        (
            "InvalidImageName",
            Box::pin(a_pod_the_node_fails(
                ContainerFailure::InvalidImageName,
                "is not a valid image reference",
            )),
        ),
        ("duplicate nodePorts", Box::pin(duplicate_node_ports())),
    ];
    let tried = probes.len();
    let mut misses = Vec::new();
    for (name, probe) in probes {
        let started = std::time::Instant::now();
        let outcome = probe.await;
        println!(
            "probe {name}: {:?} in {:.1?}",
            outcome.is_ok(),
            started.elapsed()
        );
        if let Err(why) = outcome {
            misses.push(format!("{name}: {why}"));
        }
    }
    let survived = tried - misses.len();
    println!("probes: faults: {tried} tried, {survived} survived");
    assert!(misses.is_empty(), "not survived:\n{}", misses.join("\n\n"));
    assert_eq!(tried, 19);
}
