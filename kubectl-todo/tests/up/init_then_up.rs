//! `init`, then `up`, on a fixture shaped like a real app, with the
//! emulator's docker runtime: the kubelet probes the paths detection found.
//! No base image can be pulled here, so each component is built from a
//! stand-in Dockerfile (busybox httpd) that answers only the app's real
//! routes; ports, probes, keys and names all come from `init` and detection.

#[path = "../real_apps_support/mod.rs"]
mod fixtures;

use crate::support;

use std::path::Path;

use fixtures::{copy, fixture_dir};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use kube_emulator::Config;
use support::Setup;

/// A stand-in serving only `route` on `port`, as a numeric non-root user.
fn stand_in(dir: &Path, base: &str, port: u16, route: &str) {
    let file = dir.join("standin/www").join(route.trim_start_matches('/'));
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "ok\n").unwrap();
    // Outside what the image serves, but in its content hash: this run's own tags.
    let nonce = format!("{:?} {}", std::time::SystemTime::now(), dir.display());
    std::fs::write(dir.join("standin/nonce"), nonce).unwrap();
    std::fs::write(
        dir.join("standin.Dockerfile"),
        format!(
            "FROM {base}\nCOPY standin/www /www\nUSER 1001:1001\nCMD [\"busybox\", \"httpd\", \"-f\", \"-p\", \"{port}\", \"-h\", \"/www\"]\n"
        ),
    )
    .unwrap();
}

async fn ready(s: &Setup, ns: &str, instance: &str, component: &str) -> bool {
    let selector =
        format!("app.kubernetes.io/instance={instance},app.kubernetes.io/component={component}");
    Api::<Pod>::namespaced(s.client.clone(), ns)
        .list(&ListParams::default().labels(&selector))
        .await
        .unwrap()
        .items
        .iter()
        .any(|p| {
            p.status
                .as_ref()
                .and_then(|st| st.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn init_then_up_reaches_ready_on_the_routes_the_app_serves() {
    let s = Setup::start(Config::docker()).await;
    let base = kube_emulator::testimage::busybox_image(support::BASE_TAG)
        .await
        .unwrap();
    // The harness's own app goes; the fixture takes its folders' names
    // (`web`, `api`), so that the harness removes the images `up` builds.
    std::fs::remove_file(s.app.join("todo.yaml")).unwrap();
    for (ours, theirs) in [("web", "frontend"), ("api", "backend")] {
        std::fs::remove_dir_all(s.app.join(ours)).unwrap();
        copy(&fixture_dir("api-health").join(theirs), &s.app.join(ours));
    }
    let run = s.run(&["init", "--yes"]).await.ok();
    assert!(run.stdout.contains("/api/health"), "{}", run.all());
    // Detection says: api (the backend) on 8080 and web on 3000, both /api/health.
    stand_in(&s.app.join("api"), &base, 8080, "/api/health");
    stand_in(&s.app.join("web"), &base, 3000, "/api/health");
    let todo = std::fs::read_to_string(s.app.join("todo.yaml")).unwrap();
    let todo = todo.replace("    stack: python", "    dockerfile: standin.Dockerfile")
        + "  - name: web\n    dockerfile: standin.Dockerfile\n";
    std::fs::write(s.app.join("todo.yaml"), todo).unwrap();
    // The one required key detection found (SECRET_KEY); DATABASE_URL has a default.
    let env = s.dir.path().join("app.env");
    std::fs::write(&env, "SECRET_KEY=k9-Lq2vX7tRw\n").unwrap();
    let env = env.to_str().unwrap();
    s.run(&[
        "secrets",
        "create",
        "--from-env-file",
        env,
        "--create-namespace",
    ])
    .await
    .ok();
    let run = s.run(&["up", "--timeout", "3m"]).await.ok();
    assert!(ready(&s, "app", "app", "api").await, "{}", run.all());
    assert!(ready(&s, "app", "app", "web").await, "{}", run.all());
    s.remove_built_images().await;
}

/// The app's own Dockerfile runs as root: `plan`, `up --dry-run`, `up` and
/// `doctor` all refuse it before anything is built, each naming both ways
/// out, and each way out, applied as printed, is accepted.
#[tokio::test(flavor = "multi_thread")]
async fn a_root_dockerfile_is_refused_before_the_build_with_both_ways_out() {
    let s = Setup::start(Config::default()).await;
    // No todo.yaml: the original layout's folders, read by detection.
    std::fs::remove_file(s.app.join("todo.yaml")).unwrap();
    for (ours, theirs) in [("web", "frontend"), ("api", "backend")] {
        std::fs::remove_dir_all(s.app.join(ours)).unwrap();
        copy(&fixture_dir("api-health").join(theirs), &s.app.join(theirs));
    }
    let dockerfile = s.app.join("backend/Dockerfile");
    let refused = |run: &support::Run| {
        let err = &run.stderr;
        assert!(
            err.contains("backend/Dockerfile: its final stage")
                && err.contains("has no `USER`: the image would run as root")
                && err.contains("add `USER 1001:1001` as the last instruction of")
                && err.contains("set `stack: python` for this component"),
            "{}",
            run.all()
        );
    };
    for args in [&["plan"][..], &["up", "--dry-run"], &["up"]] {
        let run = s.run(args).await.failed();
        refused(&run);
        assert!(!run.stdout.contains("building"), "{args:?}: {}", run.all());
    }
    let doctor = s.run(&["doctor", "--only", "app"]).await;
    assert!(
        doctor.stdout.contains("has no `USER`: the image would run as root")
            && doctor.stdout.contains("USER 1001:1001"),
        "{}",
        doctor.all()
    );
    // Nothing was applied.
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(s.client.clone(), "todo");
    assert!(
        deployments
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    // Way out 1: the generated recipe, as the message says.
    s.write("todo.yaml", "name: todo\ncomponents:\n  - name: backend\n    stack: python\n");
    let plan = s.run(&["plan", "backend", "-o", "json"]).await.ok();
    assert!(plan.stdout.contains("\"stack\": \"python\""), "{}", plan.all());
    // Way out 2: a numeric user in the app's own Dockerfile (and the lock
    // file it copies, without which detection picks the recipe anyway).
    std::fs::remove_file(s.app.join("todo.yaml")).unwrap();
    std::fs::write(s.app.join("backend/uv.lock"), "version = 1\n").unwrap();
    let mut text = std::fs::read_to_string(&dockerfile).unwrap();
    text.push_str("USER 1001:1001\n");
    std::fs::write(&dockerfile, text).unwrap();
    let plan = s.run(&["plan", "backend", "-o", "json"]).await.ok();
    assert!(plan.stdout.contains("\"stack\": \"dockerfile\""), "{}", plan.all());
}
