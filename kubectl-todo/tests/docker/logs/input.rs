//! Bad input to `kubectl todo logs`: each mistake gets a message that says
//! what is wrong and how to fix it, and a non-zero exit.

use super::logs_support;

use logs_support::{Env, scripted};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_component_lists_the_known_ones_and_suggests_the_closest() {
    let env = Env::scripted().await;
    let err = env.run(&["backedn"]).await.failed().stderr;
    assert!(
        err.contains(
            "unknown component `backedn`; the project's components are: frontend, backend"
        ),
        "{err}"
    );
    assert!(
        err.contains("hint: did you mean `kubectl todo logs backend --project "),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_pods_yet_is_said_plainly() {
    let env = Env::scripted().await;
    let run = env.run(&["backend"]).await;
    assert_eq!(run.code, Some(1));
    let err = run.stderr;
    assert!(
        err.contains("error: no pods of component backend in namespace todo"),
        "{err}"
    );
    assert!(err.contains("kubectl todo up"), "{err}");
    assert!(err.contains("-f"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_container_lists_the_pods_containers() {
    let env = Env::scripted().await;
    env.deploy("backend", 1, scripted(1, 0, &["api", "sidecar"], None))
        .await;
    env.wait_running("backend", 1).await;
    let err = env.run(&["-c", "apx"]).await.failed().stderr;
    assert!(
        err.contains("no pod has a container named `apx`; the pods' containers are: api, sidecar"),
        "{err}"
    );
    assert!(
        err.contains("hint: name one of those containers with -c"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_durations_regexes_and_combinations_are_refused_before_connecting() {
    let env = Env::scripted().await;
    let cases: [(&[&str], &str); 5] = [
        (&["--since", "5 fortnights"], "such as 30s, 5m or 1h30m"),
        (&["--since", "300"], "such as 30s"),
        (&["--grep", "(unclosed"], "not a valid regular expression"),
        (&["--tail", "-2"], "--tail"),
        (&["-f", "--previous"], "cannot be used with"),
    ];
    for (args, expected) in cases {
        let run = env.run(args).await;
        assert_eq!(run.code, Some(2), "{args:?}");
        assert!(run.stderr.contains(expected), "{args:?}: {}", run.stderr);
    }
}
