//! An API server that accepts connections and never answers, and one that is
//! not there at all: every request ends within `--request-timeout`, and the
//! error names the server and the limit; nothing claims a revision outcome
//! that was never recorded.

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use crate::harness::{App, Run, Running, against};

const PROJECT: &str = "name: shop\ncomponents:\n  - {name: web, port: 3000, service: {type: NodePort}}\n  - {name: api, port: 8000}\n";

/// A server on a local port that takes every connection and never says a word.
fn silent_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    address
}

/// A kubeconfig whose only cluster is `http://<address>`.
fn kubeconfig_for(dir: &Path, address: &str) -> String {
    let path = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: silent\nclusters:\n- name: silent\n  cluster:\n    server: http://{address}\ncontexts:\n- name: silent\n  context:\n    cluster: silent\n    user: me\nusers:\n- name: me\n  user:\n    token: not-a-secret\n"
    );
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// Runs the binary, killing it if it is still running after a minute (a
/// hang is a failure, not a stuck test).
async fn run(app: &App, kubeconfig: &str, args: &[&str]) -> Run {
    Running::start(against(app, kubeconfig, args))
        .finish_within(Duration::from_secs(60))
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn status_and_up_give_up_on_a_silent_api_server_naming_it_and_the_limit() {
    let address = silent_server();
    let app = App::with_file(PROJECT);
    let kubeconfig = kubeconfig_for(app.path(), &address);
    let expected = format!("the API server {address} did not answer within 2s (--request-timeout");
    for args in [
        &["status", "--request-timeout", "2s"][..],
        &[
            "up",
            "--request-timeout",
            "2s",
            "--image",
            "web=shop-web:1",
            "--image",
            "api=shop-api:1",
        ][..],
    ] {
        let out = run(&app, &kubeconfig, args).await.failed();
        assert_eq!(out.code, Some(1), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(&expected), "{args:?}: {}", out.stderr);
        assert!(!out.stderr.contains("ServiceError"), "{}", out.stderr);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_timeout_of_zero_waits_without_a_limit() {
    let address = silent_server();
    let app = App::with_file(PROJECT);
    let kubeconfig = kubeconfig_for(app.path(), &address);
    let mut child = Running::start(against(
        &app,
        &kubeconfig,
        &["status", "--request-timeout", "0"],
    ));
    // Well past the 1s a mistaken limit would round `0` to, and the
    // default of 30s is not in play: still waiting is the answer.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(child.is_running(), "status gave up\n{}", child.all());
}

#[tokio::test(flavor = "multi_thread")]
async fn status_on_an_unreachable_cluster_claims_no_recorded_outcome() {
    // A port nobody listens on: bound, then let go.
    let address = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let app = App::with_file(PROJECT);
    let kubeconfig = kubeconfig_for(app.path(), &address);
    let out = run(&app, &kubeconfig, &["status"]).await.failed();
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(!out.stderr.contains("recorded as failed"), "{}", out.stderr);
    assert!(!out.stderr.contains("revision"), "{}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stderr);
    assert!(
        lines[0].starts_with("error: cannot reach the cluster at 127.0.0.1 (context silent): "),
        "{}",
        out.stderr
    );
    assert!(lines[1].contains("kubectl todo doctor"), "{}", out.stderr);
}
