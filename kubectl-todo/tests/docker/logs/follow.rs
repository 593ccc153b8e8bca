//! `kubectl todo logs -f` against the emulator: rollouts, dropped streams,
//! restarts, pods that appear later, and Ctrl-C.

use super::logs_support;

use std::time::Duration;

use kube_emulator::faults::Fault;
use logs_support::{Env, assert_complete, numbers_by_stream, scripted};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rollout_mid_stream_shows_every_line_of_old_and_new_pods_once() {
    let env = Env::scripted().await;
    // Old pods are still printing when the rollout replaces them.
    env.deploy("backend", 2, scripted(1000, 5, &["api"], None))
        .await;
    let old = env.wait_running("backend", 2).await;
    let name = |p: &k8s_openapi::api::core::v1::Pod| p.metadata.name.clone().unwrap();
    let old_names: Vec<String> = old.iter().map(name).collect();
    let follower = env.spawn(&["backend", "-f", "-o", "json"]);
    follower
        .wait_for("the old pods' first lines", 20, |l| {
            numbers_by_stream(l).len() == 2
        })
        .await;

    env.roll(
        "backend",
        json!({"kube-emulator.dev/log-lines": "200", "kube-emulator.dev/log-interval-ms": "5", "rollout": "2"}),
    )
    .await;
    let new = loop {
        let pods = env.wait_running("backend", 2).await;
        if pods.iter().all(|p| !old_names.contains(&name(p)))
            && env
                .pods()
                .list(&Default::default())
                .await
                .unwrap()
                .items
                .len()
                == 2
        {
            break pods;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    follower
        .wait_for("every line of the new pods", 30, |lines| {
            let by = numbers_by_stream(lines);
            new.iter().all(|p| {
                by.get(&(name(p), "api".into()))
                    .is_some_and(|n| n.len() >= 200)
            })
        })
        .await;
    // Anything repeated late would show up now.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let by = numbers_by_stream(&follower.lines());
    assert_eq!(by.len(), 4, "two old and two new pods: {:?}", by.keys());
    for p in &new {
        assert_complete(&name(p), &by[&(name(p), "api".into())], 200);
    }
    for p in &old {
        let numbers = &by[&(name(p), "api".into())];
        // Killed mid-script: every line up to where it stopped, once each.
        assert!(
            numbers.len() < 1000,
            "{} was not cut short by the rollout",
            name(p)
        );
        assert_complete(&name(p), numbers, numbers.len() as u32);
    }
    let run = follower.interrupt().await;
    assert!(run.ok, "{:?}", run.code);
    assert!(run.stderr.is_empty(), "{:?}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dropped_log_stream_resumes_without_loss_or_duplicates() {
    let env = Env::scripted().await;
    // Every log stream is cut after 300 ms while the containers print for 3 s.
    env.emulator.faults().add(Fault {
        path: Some("/log".into()),
        close_after_ms: Some(300),
        ..Fault::default()
    });
    env.deploy("backend", 3, scripted(600, 5, &["api", "worker"], None))
        .await;
    env.wait_running("backend", 3).await;
    let follower = env.spawn(&["backend", "-f", "-o", "json"]);
    follower
        .wait_for("every line of every container", 30, |lines| {
            let by = numbers_by_stream(lines);
            by.len() == 6 && by.values().all(|n| n.len() >= 600)
        })
        .await;
    // A few more re-opens that must not repeat anything.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for ((pod, container), numbers) in numbers_by_stream(&follower.lines()) {
        assert_complete(&format!("{pod}/{container}"), &numbers, 600);
    }
    let run = follower.interrupt().await;
    let stderr: Vec<&str> = run.stderr.lines().collect();
    assert!(run.ok, "{:?}", run.code);
    assert!(
        stderr.is_empty(),
        "dropped streams are routine, not worth a warning: {stderr:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_run_of_a_restarting_container_is_shown_once() {
    let env = Env::scripted().await;
    env.deploy("backend", 1, scripted(5, 20, &["api"], Some(1)))
        .await;
    let follower = env.spawn(&["backend", "-f", "-o", "json"]);
    follower
        .wait_for("three runs", 30, |lines| {
            numbers_by_stream(lines).values().all(|n| n.len() >= 15) && !lines.is_empty()
        })
        .await;
    let by = numbers_by_stream(&follower.lines());
    let numbers = by.values().next().unwrap();
    let runs = numbers.len() / 5;
    let expected: Vec<u32> = (0..runs).flat_map(|_| 1..=5).collect();
    assert_eq!(numbers[..runs * 5], expected[..], "each run whole and once");
    follower.interrupt().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn follow_waits_for_pods_and_attaches_to_scale_ups() {
    let env = Env::scripted().await;
    let follower = env.spawn(&["backend", "-f", "-o", "json", "--tail", "2"]);
    follower
        .wait_for("the note that it waits", 10, |_| {
            follower
                .stderr_lines()
                .iter()
                .any(|l| l.contains("no pods in namespace todo yet; waiting"))
        })
        .await;
    env.deploy("backend", 1, scripted(50, 0, &["api"], None))
        .await;
    follower
        .wait_for("the first pod's lines", 20, |l| {
            numbers_by_stream(l).values().any(|n| n.len() == 50)
        })
        .await;
    env.deployments()
        .patch_scale(
            "backend",
            &Default::default(),
            &kube::api::Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    follower
        .wait_for("lines of three pods", 20, |l| {
            numbers_by_stream(l)
                .values()
                .filter(|n| n.len() == 50)
                .count()
                == 3
        })
        .await;
    // Pods that appear later are read from their start: --tail is for what was there before.
    for (pod, numbers) in numbers_by_stream(&follower.lines()) {
        assert_complete(&pod.0, &numbers, 50);
    }
    let run = follower.interrupt().await;
    let stderr: Vec<&str> = run.stderr.lines().collect();
    assert!(run.ok);
    assert_eq!(stderr.len(), 1, "only the note: {stderr:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ctrl_c_ends_following_with_success_and_no_error() {
    let env = Env::scripted().await;
    env.deploy("backend", 2, scripted(100_000, 1, &["api"], None))
        .await;
    env.wait_running("backend", 2).await;
    let follower = env.spawn(&["backend", "-f"]);
    follower.wait_for("some lines", 20, |l| l.len() > 10).await;
    let run = follower.interrupt().await;
    assert_eq!(run.code, Some(0), "{:?}", run.code);
    assert!(run.stderr.is_empty(), "{:?}", run.stderr);
}

/// SIGTERM (`timeout`, CI, `docker stop`) and SIGHUP (a closed terminal) end
/// following as Ctrl-C does, with what was read printed, but exit with the
/// shell's status for the signal: 143 and 129.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_and_sighup_end_following_cleanly_with_their_exit_status() {
    let env = Env::scripted().await;
    env.deploy("backend", 1, scripted(100_000, 1, &["api"], None))
        .await;
    env.wait_running("backend", 1).await;
    for (signal, name, code) in [
        (libc::SIGTERM, "SIGTERM", 143),
        (libc::SIGHUP, "SIGHUP", 129),
    ] {
        let follower = env.spawn(&["backend", "-f"]);
        follower.wait_for("some lines", 20, |l| l.len() > 10).await;
        let run = follower.stop(signal).await;
        assert_eq!(run.code, Some(code), "{name}: {:?}", run.code);
        assert!(run.stderr.is_empty(), "{name}: {:?}", run.stderr);
    }
}

/// The pod watch falls silent without closing (a proxy that keeps the TCP
/// connection alive for a server gone): within the watch's bound, following
/// says it lost the connection and keeps the streams it has.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pod_watch_that_falls_silent_is_reported_as_a_lost_connection() {
    let env = Env::scripted().await;
    env.deploy("backend", 1, scripted(100_000, 50, &["api"], None))
        .await;
    env.wait_running("backend", 1).await;
    let follower = env.spawn(&["backend", "-f"]);
    follower.wait_for("some lines", 20, |l| l.len() > 3).await;
    env.emulator.faults().add(Fault {
        path: Some("/pods".into()),
        watch_only: true,
        silent: true,
        ..Fault::default()
    });
    // 15 s promised by the server, 5 s of grace: 40 s is far past it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    let said = |stderr: &[String]| {
        stderr.iter().any(|l| {
            l.starts_with("warning: lost the watch on the pods of backend")
                && l.contains("lost the connection to the API server")
                && l.contains("a watch it was to end within 15s sent nothing for 20s")
        })
    };
    while !said(&follower.stderr_lines()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no lost connection reported: {:?}",
            follower.stderr_lines()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The log stream itself still flows.
    let before = follower.lines().len();
    follower
        .wait_for("more lines", 10, |l| l.len() > before + 3)
        .await;
    let run = follower.interrupt().await;
    assert_eq!(run.code, Some(0), "{}", run.all());
}
