//! `kubectl todo logs` on real containers: the emulator's docker runtime
//! runs the busybox test image on the machine's Docker Engine.

use super::logs_support;

use std::collections::BTreeMap;

use logs_support::{Env, parse_json};
use serde_json::json;

/// Prints `tick 1` … `tick 30` (the last one on stderr), then stays up.
const SCRIPT: &str = "i=1; while [ $i -lt 30 ]; do echo \"tick $i\"; i=$((i+1)); sleep 0.05; done; echo \"tick 30\" >&2; exec sleep 3600";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn real_container_output_is_merged_and_followed_onto_replacement_pods() {
    let image = kube_emulator::testimage::busybox_image("logs-tests")
        .await
        .expect("busybox test image");
    let env = Env::docker(&image).await;
    let template = json!({
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "app", "image": image, "command": ["sh", "-c", SCRIPT]}],
        },
    });
    env.deploy("backend", 2, template).await;
    let pods = env.wait_running("backend", 2).await;

    let follower = env.spawn(&["backend", "-f", "-o", "json"]);
    let ticks = |lines: &[String]| {
        let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for line in lines {
            let (pod, _, message) = parse_json(line);
            by.entry(pod).or_default().push(message);
        }
        by
    };
    let complete = |messages: &Vec<String>| {
        *messages == (1..=30).map(|i| format!("tick {i}")).collect::<Vec<_>>()
    };
    follower
        .wait_for("30 ticks from both pods", 60, |l| {
            let by = ticks(l);
            by.len() == 2 && by.values().all(complete)
        })
        .await;

    // A deleted pod is replaced; the follower picks the new one up from its first line.
    let gone = pods[0].metadata.name.clone().unwrap();
    env.pods().delete(&gone, &Default::default()).await.unwrap();
    follower
        .wait_for("30 ticks from the replacement", 60, |l| {
            let by = ticks(l);
            by.len() == 3 && by.values().all(complete)
        })
        .await;

    let snapshot = env.run(&["backend", "--timestamps"]).await.ok().stdout;
    let survivors: Vec<&str> = snapshot
        .lines()
        .filter(|l| l.ends_with(" tick 30"))
        .collect();
    assert_eq!(survivors.len(), 2, "{snapshot}");
    let short = gone.strip_prefix("backend-").unwrap();
    assert!(!snapshot.contains(&format!("/{short}/")), "{snapshot}");

    let run = follower.interrupt().await;
    assert!(run.ok, "{:?}", run.code);
    assert!(run.stderr.is_empty(), "{:?}", run.stderr);
    env.emulator.stop().await;
}
