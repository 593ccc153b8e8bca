//! `kubectl todo logs` without --follow, against the emulator's scripted
//! runtime: every pod's lines, the prefixes, the options that select lines.

use super::logs_support;

use std::collections::BTreeMap;

use logs_support::{Env, assert_complete, numbers_by_stream, parse_json, scripted};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_line_of_ten_pods_arrives_once_in_order_with_its_prefix() {
    let env = Env::scripted().await;
    env.deploy("backend", 10, scripted(10_000, 0, &["api"], None))
        .await;
    let pods = env.wait_running("backend", 10).await;

    let json = env.run(&["-o", "json"]).await.ok().stdout;
    let lines: Vec<String> = json.lines().map(String::from).collect();
    assert_eq!(lines.len(), 100_000);
    let by_stream = numbers_by_stream(&lines);
    assert_eq!(by_stream.len(), 10);
    for ((pod, _), numbers) in &by_stream {
        assert_complete(pod, numbers, 10_000);
    }

    // Plain text: `component/<template hash>-<suffix>/container message`.
    let text = env.run(&["backend", "--tail", "1"]).await.ok().stdout;
    let mut expected: Vec<String> = pods
        .iter()
        .map(|p| {
            let name = p.metadata.name.as_deref().unwrap();
            let short = name.strip_prefix("backend-").unwrap();
            format!("backend/{short}/api line 10000")
        })
        .collect();
    expected.sort();
    let mut got: Vec<&str> = text.lines().collect();
    got.sort();
    assert_eq!(got, expected);
    assert!(!text.contains('\x1b'), "no colour when piped: {text:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn timestamps_merge_the_pods_in_time_order() {
    let env = Env::scripted().await;
    env.deploy("backend", 3, scripted(40, 10, &["api"], None))
        .await;
    env.wait_running("backend", 3).await;
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;

    let out = env.run(&["--timestamps"]).await.ok().stdout;
    let times: Vec<jiff::Timestamp> = out
        .lines()
        .map(|l| {
            let stamp = l
                .split(' ')
                .nth(1)
                .unwrap_or_else(|| panic!("no timestamp in {l:?}"));
            assert_eq!(stamp.len(), "2025-01-01T00:00:00.123456789Z".len(), "{l}");
            stamp.parse().unwrap()
        })
        .collect();
    assert_eq!(times.len(), 120);
    assert!(
        times.is_sorted(),
        "lines of different pods interleave by time:\n{out}"
    );
    let pods: std::collections::HashSet<&str> =
        out.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(pods.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tail_since_grep_exclude_and_container_choose_the_lines() {
    let env = Env::scripted().await;
    env.deploy("backend", 1, scripted(100, 0, &["api", "sidecar"], None))
        .await;
    env.deploy("frontend", 1, scripted(3, 0, &["web"], None))
        .await;
    env.wait_running("backend", 1).await;
    env.wait_running("frontend", 1).await;

    let messages = |out: String| -> BTreeMap<String, Vec<String>> {
        let mut by = BTreeMap::<String, Vec<String>>::new();
        for line in out.lines() {
            let (_, container, message) = parse_json(line);
            by.entry(container).or_default().push(message);
        }
        by
    };
    let strings =
        |r: std::ops::RangeInclusive<u32>| r.map(|n| format!("line {n}")).collect::<Vec<_>>();

    let tail = messages(
        env.run(&["backend", "-c", "sidecar", "--tail", "3", "-o", "json"])
            .await
            .ok()
            .stdout,
    );
    assert_eq!(
        tail,
        BTreeMap::from([("sidecar".into(), strings(98..=100))])
    );

    let grep = messages(
        env.run(&[
            "backend",
            "--grep",
            r"^line 1\d$",
            "--exclude",
            "3",
            "-o",
            "json",
        ])
        .await
        .ok()
        .stdout,
    );
    let expected: Vec<String> = strings(10..=19)
        .into_iter()
        .filter(|l| !l.contains('3'))
        .collect();
    assert_eq!(
        grep,
        BTreeMap::from([
            ("api".into(), expected.clone()),
            ("sidecar".into(), expected)
        ])
    );

    // Every component by default; a time in the future leaves nothing.
    let all = messages(env.run(&["--since", "1h", "-o", "json"]).await.ok().stdout);
    assert_eq!(all.keys().collect::<Vec<_>>(), ["api", "sidecar", "web"]);
    assert_eq!(all["web"], strings(1..=3));
    let future = env
        .run(&["--since", "2999-01-01T00:00:00Z"])
        .await
        .ok()
        .stdout;
    assert_eq!(future, "");

    // A time inside a second: the API takes whole seconds, the cut is exact anyway.
    let api = env
        .run(&["backend", "-c", "api", "-o", "json"])
        .await
        .ok()
        .stdout;
    let line_50: serde_json::Value = serde_json::from_str(api.lines().nth(49).unwrap()).unwrap();
    let since = line_50["time"].as_str().unwrap();
    let from = messages(
        env.run(&["backend", "-c", "api", "--since", since, "-o", "json"])
            .await
            .ok()
            .stdout,
    );
    assert_eq!(from["api"], strings(50..=100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn previous_shows_the_run_before_the_last_restart() {
    let env = Env::scripted().await;
    env.deploy("backend", 1, scripted(3, 0, &["api"], Some(1)))
        .await;
    let selector = kubectl_todo::labels::component_selector("todo", "backend");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let pods = env
            .pods()
            .list(&kube::api::ListParams::default().labels(&selector))
            .await
            .unwrap();
        let restarts = pods
            .items
            .iter()
            .flat_map(|p| p.status.iter())
            .flat_map(|s| s.container_statuses.iter().flatten())
            .map(|s| s.restart_count)
            .max();
        if restarts.unwrap_or(0) >= 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the container never restarted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let out = env.run(&["--previous", "-o", "json"]).await.ok().stdout;
    let messages: Vec<String> = out.lines().map(|l| parse_json(l).2).collect();
    assert_eq!(messages, ["line 1", "line 2", "line 3"]);
}
