//! The whole lifecycle with real containers: the emulator's docker runtime
//! runs the images `up` builds, and the kubelet probes their health paths.

use super::support;

use crate::harness::Running;
use k8s_openapi::api::core::v1::Pod;
use kube_emulator::Config;
use support::{NS, Setup};

fn template_annotation(pod: &Pod, key: &str) -> Option<String> {
    pod.metadata.annotations.as_ref()?.get(key).cloned()
}

/// The api component becomes busybox's `sh -c SCRIPT`, as UID 1001, its
/// `www` in `/www`.
async fn api_runs(s: &Setup, script: &str) {
    let base = kube_emulator::testimage::busybox_image(support::BASE_TAG)
        .await
        .unwrap();
    s.write(
        "api/Dockerfile",
        &format!(
            "FROM {base}\nCOPY www /www\nUSER 1001:1001\nCMD [\"busybox\", \"sh\", \"-c\", \"{script}\"]\n"
        ),
    );
}

async fn ready_pods(s: &Setup, component: &str) -> Vec<Pod> {
    s.pods(component)
        .await
        .into_iter()
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|st| st.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn up_code_change_config_change_rollback_down() {
    let s = Setup::start(Config::docker()).await;
    s.secret("canary-docker-1").await;

    // 1. up: built, loaded, rolled out, answering its health checks.
    let run = s.run(&["up", "--timeout", "3m"]).await.ok();
    assert!(run.stdout.contains("web: http://"), "{}", run.all());
    let v1 = s.image_of("shop-web").await;
    let pods = ready_pods(&s, "web").await;
    assert_eq!(pods.len(), 1, "{}", run.all());
    let config_v1 = template_annotation(&pods[0], "kubectl-todo/config-checksum").unwrap();

    // 2. A code change: a new tag and new pods running it.
    s.write("web/www/index.html", "web v2\n");
    let run = s.run(&["up", "--timeout", "3m"]).await.ok();
    let v2 = s.image_of("shop-web").await;
    assert_ne!(v1, v2, "{}", run.all());
    let pods = ready_pods(&s, "web").await;
    assert!(
        pods.iter()
            .all(|p| p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some(v2.as_str())),
        "the ready web pods run the new image"
    );

    // 3. A config change: same image, pods rolled by the checksum.
    s.write(
        "todo.yaml",
        &support::PROJECT.replace("GREETING: hello", "GREETING: bonjour"),
    );
    let before: Vec<String> = ready_pods(&s, "web")
        .await
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let run = s.run(&["up", "--timeout", "3m"]).await.ok();
    assert_eq!(s.image_of("shop-web").await, v2, "{}", run.all());
    let pods = ready_pods(&s, "web").await;
    assert!(
        pods.iter()
            .all(|p| !before.contains(p.metadata.name.as_ref().unwrap())),
        "rolled"
    );
    let config_v3 = template_annotation(&pods[0], "kubectl-todo/config-checksum").unwrap();
    assert_ne!(config_v1, config_v3);

    // 4. rollback: revision 2 again (image v2, the old config), as revision 4.
    let run = s.run(&["rollback", "--timeout", "3m"]).await.ok();
    // It waited for the rollout, as up does, then printed the URLs.
    assert!(
        run.stderr.contains("web: 1/1 ready") && run.stdout.contains("web: http://"),
        "{}",
        run.all()
    );
    let pods = ready_pods(&s, "web").await;
    assert!(
        pods.iter().all(
            |p| template_annotation(p, "kubectl-todo/config-checksum").as_ref() == Some(&config_v1)
        ),
        "the ready web pods have the rolled-back config"
    );
    let history = s.history().await;
    assert_eq!(history[3]["origin"], "rollback to 2", "{}", run.all());
    let deployment = s.deployment("shop-web").await;
    let annotations = deployment
        .spec
        .unwrap()
        .template
        .metadata
        .unwrap()
        .annotations
        .unwrap();
    assert_eq!(annotations["kubectl-todo/config-checksum"], config_v1);

    // 5. down: everything the app owns is gone; the Secret stays.
    let run = s.run(&["down"]).await.ok();
    assert!(
        s.pods("web").await.is_empty() && s.pods("api").await.is_empty(),
        "{}",
        run.all()
    );
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(s.client.clone(), NS);
    assert!(secrets.get_opt("shop-secrets").await.unwrap().is_some());
    s.remove_built_images().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crashing_container_stops_up_with_its_last_log_lines() {
    let s = Setup::start(Config::docker()).await;
    s.secret("canary-docker-2").await;
    api_runs(&s, "echo cannot open database with key $API_KEY; exit 3").await;
    let run = s.run(&["up", "--timeout", "10m"]).await.failed();
    assert!(
        run.stderr.contains("keeps exiting with code 3")
            && run.stderr.contains("cannot open database"),
        "{}",
        run.all()
    );
    assert!(
        run.stderr.contains("kubectl todo logs api --previous"),
        "{}",
        run.all()
    );
    assert!(
        run.stderr.contains("the rollout of revision 1 failed"),
        "{}",
        run.all()
    );
    // The log line quoted in the diagnosis had the Secret's value in it.
    assert!(
        run.stderr.contains("with key [redacted]") && !run.all().contains("canary-docker-2"),
        "{}",
        run.all()
    );
    s.remove_built_images().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_health_check_stops_up() {
    let s = Setup::start(Config::docker()).await;
    s.secret("canary-docker-3").await;
    std::fs::remove_file(s.app.join("api/www/healthz")).unwrap();
    let run = s.run(&["up", "--timeout", "10m"]).await.failed();
    assert!(
        run.stderr.contains("api:") && run.stderr.contains("/healthz"),
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

/// The API server goes away while `up` waits for a pod that is still
/// starting: that is what `up` reports, not the app's probes, which it can
/// no longer see.
#[tokio::test(flavor = "multi_thread")]
async fn an_api_server_gone_during_the_wait_is_a_lost_connection_not_a_failing_app() {
    let s = Setup::start(Config::docker()).await;
    s.secret("canary-docker-4").await;
    // Starts slowly: not ready for the whole test, through no fault of its own.
    api_runs(&s, "sleep 600; exec busybox httpd -f -p 8080 -h /www").await;
    let child = Running::start(s.command(&["up", "--timeout", "10m"]));
    let mut started = false;
    for _ in 0..600 {
        if !s.pods("api").await.is_empty() {
            started = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(started, "up reached the rollout");
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let emu = s.emu;
    emu.stop().await;
    let run = child
        .finish_within(std::time::Duration::from_secs(120))
        .await;
    assert_eq!(run.code, Some(1), "{}", run.all());
    // Said by the wait, or (when renewing the lock notices first) by the lock.
    assert!(
        run.stderr.contains(
            "error: lost the connection to the cluster at 127.0.0.1 while waiting for the rollout of revision 1"
        ) || run.stderr.contains(
            "error: lost the lock shop-lock in namespace shop: lost the connection to the cluster ("
        ),
        "{}",
        run.all()
    );
    assert!(!run.stderr.contains("fix:"), "{}", run.all());
    support::remove_images_built_for(&s.app).await;
}

/// A server (or a proxy in front of it) that stops sending on the open
/// watches without closing them, while plain requests still get answers
/// (so the lock renews): the wait notices the silence within the watches'
/// bound and says the connection is lost, instead of waiting out
/// `--timeout`.
#[tokio::test(flavor = "multi_thread")]
async fn watches_that_fall_silent_end_the_wait_as_a_lost_connection() {
    let s = Setup::start(Config::docker()).await;
    s.secret("canary-docker-6").await;
    api_runs(&s, "sleep 600; exec busybox httpd -f -p 8080 -h /www").await;
    let child = s.command(&["up", "--timeout", "10m"]).spawn().unwrap();
    let mut started = false;
    for _ in 0..600 {
        if !s.pods("api").await.is_empty() {
            started = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(started, "up reached the rollout");
    s.emu.faults().add(kube_emulator::faults::Fault {
        watch_only: true,
        silent: true,
        ..Default::default()
    });
    // The bound is 15 s of promised watch and 5 s of grace, then 4 s of
    // not getting through: a minute is far past it and far short of 10m.
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("up ends within a minute of its watches falling silent")
        .unwrap();
    let run = support::Run::from(out);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        run.stderr.contains(
            "error: lost the connection to the cluster at 127.0.0.1 while waiting for the rollout of revision 1"
        ) && run.stderr.contains("a watch it was to end within 15s sent nothing for 20s"),
        "{}",
        run.all()
    );
    assert!(!run.stderr.contains("fix:"), "{}", run.all());
    support::remove_images_built_for(&s.app).await;
}
