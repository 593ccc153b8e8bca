//! `kubectl todo dev` end to end: the real binary as a long-running child
//! against the emulator's docker runtime, real image builds (busybox httpd
//! components), requests through the session's own port-forward, and the
//! session ended by a signal as a terminal would.

use crate::up::support;

mod inotify;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{self, Run, Running};
use kube_emulator::Config;
use support::{NS, Setup};

/// A running `kubectl todo dev`, its output gathered as it comes.
struct Session {
    run: Running,
}

impl Session {
    fn start(s: &Setup, args: &[&str]) -> Session {
        let mut all = vec!["dev", "--timeout", "3m"];
        all.extend_from_slice(args);
        Session {
            run: Running::start(s.command(&all)),
        }
    }

    fn stderr(&self) -> String {
        self.run.stderr()
    }

    fn all(&self) -> String {
        self.run.all()
    }

    /// Waits until stderr holds `text` `times` times, failing with the
    /// output if the session ends or time runs out.
    async fn wait_for(&mut self, text: &str, times: usize) {
        let deadline = Instant::now() + Duration::from_secs(240);
        while self.stderr().matches(text).count() < times {
            if !self.run.is_running() {
                tokio::time::sleep(Duration::from_millis(200)).await;
                panic!("dev ended before {text:?}\n{}", self.all());
            }
            assert!(
                Instant::now() < deadline,
                "no {text:?} (x{times}) within 240s\n{}",
                self.all()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The local address of a component's forward, from the line that announced it.
    fn forward_of(&self, component: &str) -> SocketAddr {
        let prefix = format!("{component}: http://");
        let stderr = self.stderr();
        let line = stderr
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no forward for {component}\n{}", self.all()));
        line[prefix.len()..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Sends `signal` and waits for the session to end; returns how it ended.
    async fn stop(self, signal: i32) -> Run {
        self.run.signal(signal);
        self.run.finish_within(Duration::from_secs(150)).await
    }
}

/// The body of `GET path`, through a new connection.
async fn get(at: SocketAddr, path: &str) -> Result<String, String> {
    let mut socket = TcpStream::connect(at).await.map_err(|e| e.to_string())?;
    socket
        .write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(40), socket.read_to_end(&mut response))
        .await
        .map_err(|_| "no answer within 40s".to_string())?
        .map_err(|e| e.to_string())?;
    let response = String::from_utf8_lossy(&response);
    match response.split_once("\r\n\r\n") {
        Some((head, body)) if head.contains(" 200 ") => Ok(body.to_string()),
        _ => Err(format!("not a 200 response: {response:?}")),
    }
}

async fn revisions(s: &Setup) -> usize {
    s.history().await.as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edit_is_served_through_the_forward_a_touch_is_not_and_a_build_error_keeps_the_old_version()
 {
    let s = Setup::start(Config::docker()).await;
    s.secret("canary-dev-session-1").await;
    // httpd -v logs each response, for the session's log stream.
    let dockerfile = std::fs::read_to_string(s.app.join("web/Dockerfile")).unwrap();
    s.write(
        "web/Dockerfile",
        &dockerfile.replace(r#""/www"]"#, r#""/www", "-v"]"#),
    );
    let mut dev = Session::start(&s, &["web"]);
    dev.wait_for("revision 1 is running", 1).await;
    dev.wait_for("web: http://", 1).await;
    let web = dev.forward_of("web");
    // A client asking every 20 ms through every redeploy below.
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let record = outcomes.clone();
    let client = tokio::spawn(async move {
        loop {
            let outcome = get(web, "/").await;
            record.lock().unwrap().push(outcome);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    assert_eq!(
        get(web, "/").await.as_deref(),
        Ok("web v1\n"),
        "{}",
        dev.all()
    );

    // An editor's swap file (there and gone), a touched file and an .env
    // file change no digest: no turn, no line.
    s.write("web/www/.index.html.swp", "vim\n");
    tokio::time::sleep(Duration::from_secs(1)).await;
    std::fs::remove_file(s.app.join("web/www/.index.html.swp")).unwrap();
    let index = s.app.join("web/www/index.html");
    let file = std::fs::File::options().append(true).open(&index).unwrap();
    file.set_modified(std::time::SystemTime::now()).unwrap();
    drop(file);
    s.write("web/.env", "TOKEN=local\n");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let quiet = dev.stderr();
    assert!(
        !quiet.contains("revision 2") && quiet.matches("web: building").count() == 1,
        "{}",
        dev.all()
    );
    assert_eq!(revisions(&s).await, 1);

    // An edit in a burst longer than the debounce (a `git checkout`: files
    // arriving 30 ms apart for over half a second) is one turn: only web is
    // rebuilt, once, and the forward serves the new version.
    for i in 0..20 {
        s.write(&format!("web/www/page-{i}.html"), "page\n");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    s.write("web/www/index.html", "web v2\n");
    dev.wait_for("revision 2 is running", 1).await;
    assert!(
        dev.stderr()
            .contains("after changes to web/www/index.html and 20 more"),
        "{}",
        dev.all()
    );
    assert_eq!(
        dev.stderr().matches("web: building").count(),
        2,
        "{}",
        dev.all()
    );
    assert_eq!(revisions(&s).await, 2);
    assert_eq!(
        get(web, "/").await.as_deref(),
        Ok("web v2\n"),
        "{}",
        dev.all()
    );
    // The new pod's log streams to stdout.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dev.run.stdout().contains("response:200") {
        assert!(Instant::now() < deadline, "no log line\n{}", dev.all());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A build error: reported, nothing applied, v2 still answers, the loop goes on.
    s.write(
        "web/Dockerfile",
        &std::fs::read_to_string(s.app.join("web/Dockerfile"))
            .unwrap()
            .replace("COPY www /www", "COPY www /www\nRUN exit 3"),
    );
    dev.wait_for("still watching", 1).await;
    assert!(
        dev.stderr()
            .contains("cannot build the image of component `web`"),
        "{}",
        dev.all()
    );
    assert_eq!(revisions(&s).await, 2);
    assert_eq!(
        get(web, "/").await.as_deref(),
        Ok("web v2\n"),
        "{}",
        dev.all()
    );

    // Fixed: the next change retries.
    s.write(
        "web/Dockerfile",
        &std::fs::read_to_string(s.app.join("web/Dockerfile"))
            .unwrap()
            .replace("RUN exit 3\n", ""),
    );
    s.write("web/www/index.html", "web v3\n");
    dev.wait_for("revision 3 is running", 1).await;
    assert_eq!(
        get(web, "/").await.as_deref(),
        Ok("web v3\n"),
        "{}",
        dev.all()
    );

    // A setting in todo.yaml: applied without building anything.
    let builds = dev.stderr().matches(": building").count();
    s.write(
        "todo.yaml",
        &support::PROJECT.replace("GREETING: hello", "GREETING: bonjour"),
    );
    dev.wait_for("revision 4 is running", 1).await;
    assert!(
        dev.stderr().contains("after a change to todo.yaml"),
        "{}",
        dev.all()
    );
    assert_eq!(dev.stderr().matches(": building").count(), builds);

    // A rotated Secret: the pods using it roll, nothing is built.
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(s.client.clone(), NS);
    harness::canaries(["canary-dev-rotated-1".to_string()]);
    let patch = serde_json::json!({"stringData": {"API_KEY": "canary-dev-rotated-1"}});
    secrets
        .patch(
            "shop-secrets",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .unwrap();
    dev.wait_for("revision 5 is running", 1).await;
    assert!(
        dev.stderr().contains("after a change to the Secret"),
        "{}",
        dev.all()
    );
    assert_eq!(dev.stderr().matches(": building").count(), builds);

    client.abort();
    let outcomes = outcomes.lock().unwrap().clone();
    let failed: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert!(
        outcomes.len() > 100 && failed.is_empty(),
        "{} of {} requests failed through 4 redeploys: {failed:?}\n{}",
        failed.len(),
        outcomes.len(),
        dev.all()
    );

    // Ctrl-C: exit 0, the app keeps running.
    let run = dev.stop(libc::SIGINT).await;
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(
        run.stderr
            .contains("keeps running in namespace shop (`kubectl todo down` removes it)"),
        "{}",
        run.all()
    );
    assert!(!s.pods("web").await.is_empty());
    s.remove_built_images().await;
}

/// How many images the engine holds that were built from the component's directory.
async fn images_of(s: &Setup, component: &str) -> usize {
    support::images_built_for(&s.app, component).await.len()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_next_image_is_built_while_the_files_settle_and_a_later_edit_drops_it() {
    let s = Setup::start(Config::docker()).await;
    s.secret("canary-dev-early-1").await;
    let mut dev = Session::start(&s, &["web", "--debounce", "20s"]);
    dev.wait_for("revision 1 is running", 1).await;
    dev.wait_for("web: http://", 1).await;
    let web = dev.forward_of("web");
    let before = images_of(&s, "web").await;

    // The new image is in the engine while the files are still settling:
    // before the turn has begun, which would say "web: building" first.
    s.write("web/www/index.html", "web v2\n");
    let deadline = Instant::now() + Duration::from_secs(60);
    while images_of(&s, "web").await == before {
        assert!(
            dev.stderr().matches("web: building").count() == 1 && Instant::now() < deadline,
            "no image was built before the turn began\n{}",
            dev.all()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        dev.stderr().matches("web: building").count(),
        1,
        "{}",
        dev.all()
    );
    assert_eq!(revisions(&s).await, 1);

    // Another edit while they settle: that build is dropped and never
    // shown; one turn builds and deploys the files as they end up.
    s.write("web/www/index.html", "web v3\n");
    dev.wait_for("revision 2 is running", 1).await;
    assert_eq!(
        get(web, "/").await.as_deref(),
        Ok("web v3\n"),
        "{}",
        dev.all()
    );
    assert_eq!(revisions(&s).await, 2);
    let stderr = dev.stderr();
    assert_eq!(stderr.matches("web: building").count(), 2, "{}", dev.all());
    assert!(
        stderr.contains("revision 2 is running")
            && stderr.contains("after a change to web/www/index.html"),
        "{}",
        dev.all()
    );
    assert_eq!(images_of(&s, "web").await, before + 2);

    let run = dev.stop(libc::SIGINT).await;
    assert_eq!(run.code, Some(0), "{}", run.all());
    s.remove_built_images().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn once_the_new_version_answers_through_the_forward_the_old_one_never_does_again() {
    let s = Setup::start(Config::docker()).await;
    s.secret("canary-dev-newest-1").await;
    // Two pods roll one at a time: for a while an old pod and a new one are
    // both ready behind the Service.
    s.write(
        "todo.yaml",
        &support::PROJECT.replace(
            "    env: {GREETING: hello}\n",
            "    env: {GREETING: hello}\n    replicas: 2\n",
        ),
    );
    let mut dev = Session::start(&s, &["web", "--no-logs"]);
    dev.wait_for("revision 1 is running", 1).await;
    dev.wait_for("web: http://", 1).await;
    let web = dev.forward_of("web");
    assert_eq!(s.pods("web").await.len(), 2);

    let answers = Arc::new(Mutex::new(Vec::new()));
    let record = answers.clone();
    let client = tokio::spawn(async move {
        loop {
            let answer = get(web, "/").await;
            record.lock().unwrap().push(answer);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    s.write("web/www/index.html", "web v2\n");
    dev.wait_for("revision 2 is running", 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    client.abort();
    let answers = answers.lock().unwrap().clone();
    let first_new = answers
        .iter()
        .position(|a| a.as_deref() == Ok("web v2\n"))
        .unwrap_or_else(|| panic!("v2 never answered: {answers:?}\n{}", dev.all()));
    let after: Vec<_> = answers[first_new..]
        .iter()
        .filter(|a| a.as_deref() != Ok("web v2\n"))
        .collect();
    assert!(
        first_new > 0 && after.is_empty(),
        "after the first v2 answer ({first_new} of {}): {after:?}\n{}",
        answers.len(),
        dev.all()
    );
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");

    let run = dev.stop(libc::SIGINT).await;
    assert_eq!(run.code, Some(0), "{}", run.all());
    s.remove_built_images().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_loop_is_diagnosed_the_old_version_serves_and_down_on_exit_removes_the_app() {
    let s = Setup::start(Config::docker()).await;
    s.secret("canary-dev-session-2").await;
    let mut dev = Session::start(&s, &["--down-on-exit", "--no-logs"]);
    dev.wait_for("revision 1 is running", 1).await;
    dev.wait_for("api: http://", 1).await;
    let api = dev.forward_of("api");
    assert_eq!(
        get(api, "/").await.as_deref(),
        Ok("api v1\n"),
        "{}",
        dev.all()
    );

    // A version that crashes: doctor's diagnosis, and v1 keeps answering.
    let base = kube_emulator::testimage::busybox_image(support::BASE_TAG)
        .await
        .unwrap();
    s.write(
        "api/Dockerfile",
        &format!(
            "FROM {base}\nCOPY www /www\nUSER 1001:1001\nCMD [\"busybox\", \"sh\", \"-c\", \"echo cannot start; exit 3\"]\n"
        ),
    );
    dev.wait_for("still watching", 1).await;
    let stderr = dev.stderr();
    assert!(
        stderr.contains("the rollout of revision 2 failed")
            && stderr.contains("keeps exiting with code 3")
            && stderr.contains("the last good revision keeps serving"),
        "{}",
        dev.all()
    );
    assert_eq!(
        get(api, "/").await.as_deref(),
        Ok("api v1\n"),
        "{}",
        dev.all()
    );

    let run = dev.stop(libc::SIGTERM).await;
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(
        run.stderr.contains("removing the app (--down-on-exit)")
            && run.stderr.contains("kept Secret/shop-secrets"),
        "{}",
        run.all()
    );
    assert!(s.pods("web").await.is_empty() && s.pods("api").await.is_empty());
    s.remove_built_images().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_component_is_an_error_before_anything_is_applied() {
    let s = Setup::start(Config::default()).await;
    s.secret("canary-dev-session-3").await;
    let run = s.run(&["dev", "wbe"]).await.failed();
    assert!(
        run.stderr
            .contains("error: the project has no component `wbe` (did you mean `web`?)")
            && run.stderr.contains("kubectl todo dev web"),
        "{}",
        run.all()
    );
    let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(s.client.clone(), NS);
    assert!(
        deployments
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pinned_dev_port_that_is_taken_names_its_holder_before_anything_is_applied() {
    let s = Setup::start(Config::default()).await;
    s.secret("canary-dev-session-4").await;
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    s.write(
        "todo.yaml",
        &support::PROJECT.replacen(
            "    port: 8080\n",
            &format!("    port: 8080\n    devPort: {port}\n"),
            1,
        ),
    );
    let run = s.run(&["dev", "web"]).await.failed();
    let pid = std::process::id();
    assert!(
        run.stderr.contains(&format!(
            "error: local port {port} on 127.0.0.1 (devPort of web) is taken by "
        )) && run.stderr.contains(&format!("(pid {pid})"))
            && run.stderr.contains(&format!("hint: stop it (kill {pid})")),
        "{}",
        run.all()
    );
    let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(s.client.clone(), NS);
    assert!(
        deployments
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    drop(held);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_build_context_that_vanishes_is_reported_and_watched_again_when_it_is_back() {
    let s = Setup::start(Config::default()).await;
    s.secret("canary-dev-session-5").await;
    let mut dev = Session::start(&s, &["web", "--no-logs"]);
    dev.wait_for("revision 1 is running", 1).await;

    std::fs::remove_dir_all(s.app.join("web")).unwrap();
    dev.wait_for("still watching", 1).await;
    assert!(
        dev.stderr()
            .contains("cannot compute the image tag of component `web`"),
        "{}",
        dev.all()
    );

    let base = kube_emulator::testimage::busybox_image(support::BASE_TAG)
        .await
        .unwrap();
    support::write_component(&s.app.join("web"), &base, "web");
    dev.wait_for("revision 2 is running", 1).await;
    // Its directories are watched again: an edit inside is the next turn.
    s.write("web/www/index.html", "web v2\n");
    dev.wait_for("revision 3 is running", 1).await;

    let run = dev.stop(libc::SIGINT).await;
    assert_eq!(run.code, Some(0), "{}", run.all());
    s.remove_built_images().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_and_no_cluster_are_errors_before_anything_is_applied() {
    let s = Setup::start(Config::default()).await;
    let run = s.run(&["dev"]).await.failed();
    assert!(
        run.stderr
            .contains("error: Secret shop-secrets in namespace shop")
            && run.stderr.contains("kubectl todo secrets create"),
        "{}",
        run.all()
    );
    let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::all(s.client.clone());
    assert!(
        deployments
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // The same kubeconfig, its server a port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("https://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let text = std::fs::read_to_string(&s.kubeconfig).unwrap();
    let server = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .expect("the kubeconfig names a server")
        .to_string();
    std::fs::write(&s.kubeconfig, text.replace(&server, &dead)).unwrap();
    let run = s.run(&["dev"]).await.failed();
    assert!(
        run.stderr.contains("error: cannot reach the cluster at")
            && run.stderr.contains("kubectl todo doctor"),
        "{}",
        run.all()
    );
    assert!(!run.stderr.contains("watching"), "{}", run.all());
    // The first run built the images while it read the cluster; the engine is left as it was.
    s.remove_built_images().await;
}

/// `GET path` through a new connection, reporting the whole response as a
/// result: the body, or what cut it short.
async fn get_slow(at: SocketAddr, path: &str) -> Result<String, String> {
    let mut socket = TcpStream::connect(at).await.map_err(|e| e.to_string())?;
    socket
        .write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(40), socket.read_to_end(&mut response))
        .await
        .map_err(|_| "no end within 40s".to_string())?;
    let response = String::from_utf8_lossy(&response).into_owned();
    read.map_err(|e| format!("{e} after {response:?}"))?;
    match response.split_once("\r\n\r\n") {
        Some((head, body)) if head.contains(" 200 ") => Ok(body.to_string()),
        _ => Err(format!("not a 200 response: {response:?}")),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_open_while_their_pod_terminates_are_drained_not_cut() {
    let s = Setup::start(Config::docker()).await;
    s.secret("canary-dev-session-6").await;
    // An app that dies at once on SIGTERM, as many do (Next.js' standalone
    // server among them): what it has in flight then is lost unless the pod
    // is out of the endpoints and its connections done before the signal.
    let dockerfile = std::fs::read_to_string(s.app.join("web/Dockerfile")).unwrap();
    let cmd = r#"CMD ["busybox", "sh", "-c", "trap 'exit 0' TERM; busybox httpd -f -p 8080 -h /www & wait"]"#;
    s.write(
        "web/Dockerfile",
        &dockerfile
            .lines()
            .map(|l| if l.starts_with("CMD ") { cmd } else { l })
            .collect::<Vec<_>>()
            .join("\n"),
    );
    // A slow route: its first line at once, the rest 3 s later.
    s.write(
        "web/www/cgi-bin/slow",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\necho \"begin $(cat /www/index.html)\"\nsleep 3\necho end\n",
    );
    let script = s.app.join("web/www/cgi-bin/slow");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let mut dev = Session::start(&s, &["web", "--no-logs"]);
    dev.wait_for("revision 1 is running", 1).await;
    dev.wait_for("web: http://", 1).await;
    let web = dev.forward_of("web");
    assert_eq!(
        get_slow(web, "/cgi-bin/slow").await.as_deref(),
        Ok("begin web v1\nend\n"),
        "{}",
        dev.all()
    );
    let old: Vec<String> = s
        .pods("web")
        .await
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    assert_eq!(old.len(), 1, "{old:?}");

    // Slow requests, a new one every 250 ms, through the redeploy: some are
    // in flight on the old pod when it is deleted.
    let started = Instant::now();
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let record = outcomes.clone();
    let client = tokio::spawn(async move {
        let mut requests = tokio::task::JoinSet::new();
        loop {
            let record = record.clone();
            requests.spawn(async move {
                let from = started.elapsed();
                let outcome = get_slow(web, "/cgi-bin/slow").await;
                record
                    .lock()
                    .unwrap()
                    .push((from, started.elapsed(), outcome));
            });
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    s.write("web/www/index.html", "web v2\n");
    // When the old pod is marked for deletion, as the API server has it.
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(s.client.clone(), NS);
    let deleted_at = loop {
        match pods.get_opt(&old[0]).await.unwrap() {
            Some(p) if p.metadata.deletion_timestamp.is_none() => {}
            _ => break started.elapsed(),
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "the old pod was never deleted\n{}",
            dev.all()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    dev.wait_for("revision 2 is running", 1).await;
    // Until the old pod is gone and the requests begun before are over.
    while pods.get_opt(&old[0]).await.unwrap().is_some() {
        assert!(
            started.elapsed() < deleted_at + Duration::from_secs(60),
            "the old pod outlived its grace period\n{}",
            dev.all()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    client.abort();

    let outcomes = outcomes.lock().unwrap().clone();
    // Whole: its first line and its last, from one version or the other.
    let whole = |o: &Result<String, String>| {
        matches!(
            o.as_deref(),
            Ok("begin web v1\nend\n" | "begin web v2\nend\n")
        )
    };
    let failed: Vec<_> = outcomes.iter().filter(|(_, _, o)| !whole(o)).collect();
    assert!(
        failed.is_empty(),
        "{} of {} slow requests failed (the old pod was deleted at {deleted_at:?}): {failed:?}\n{}",
        failed.len(),
        outcomes.len(),
        dev.all()
    );
    // Some of them were served by the old pod across its deletion, in full.
    let drained = outcomes
        .iter()
        .filter(|(from, to, o)| {
            *from < deleted_at && *to > deleted_at && o.as_deref() == Ok("begin web v1\nend\n")
        })
        .count();
    assert!(
        drained > 0,
        "no request spanned the deletion at {deleted_at:?}: {outcomes:?}"
    );
    // And a new one reaches the new version.
    assert_eq!(
        get_slow(web, "/cgi-bin/slow").await.as_deref(),
        Ok("begin web v2\nend\n"),
        "{}",
        dev.all()
    );
    let run = dev.stop(libc::SIGINT).await;
    assert_eq!(run.code, Some(0), "{}", run.all());
    s.remove_built_images().await;
}
