//! Builds against the real Docker Engine, with locally made base images.

// The image-builder binary is built only with the `frontend` feature.
#![cfg(feature = "frontend")]

mod support;

use std::fs;

use image_builder::Error;
use image_builder::build::{self, BuildOptions, Engine, NoProgress, Status};
use image_builder::plan::{self, BuilderKind, PlanOptions};
use image_builder::spec::{BaseImages, ComponentSpec};
use support::*;

fn opts(builder: BuilderKind, base: &str) -> PlanOptions {
    PlanOptions {
        builder: Some(builder),
        base_images: BaseImages {
            builder: Some(base.into()),
            runtime: Some(base.into()),
        },
        use_cache: false,
    }
}

async fn engine(b: BuilderKind) -> Engine {
    Engine::connect()
        .await
        .expect("docker engine")
        .with_builder(b)
}

fn spec(dir: &std::path::Path, image: &str) -> ComponentSpec {
    ComponentSpec {
        path: dir.to_path_buf(),
        image: Some(image.into()),
        ..Default::default()
    }
}

async fn build_example(component: &str, base: &str, builder: BuilderKind, port: u16) {
    ensure_base_images();
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join(component);
    copy_dir(&examples().join(component), &dir);
    // secrets and junk that must never reach the image
    fs::write(dir.join(".env"), "DATABASE_URL=postgres://secret\n").unwrap();
    fs::create_dir_all(dir.join("node_modules/junk")).unwrap();
    fs::write(dir.join("node_modules/junk/x.js"), "junk").unwrap();
    let image = unique(component);
    let mut cleanup = Cleanup::default();
    let p = plan::plan(&spec(&dir, &image), &opts(builder, base)).unwrap();
    cleanup.images.push(p.reference());
    let e = engine(builder).await;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let r = build::build(&e, &p, &BuildOptions::default(), &tx)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    drop(tx);
    drop(rx);
    assert_eq!(r.status, Status::Built);
    assert_eq!(r.user, "1001:1001");
    assert_eq!(r.image, format!("{image}:{}", p.tag));
    assert!(r.size_bytes > 0 && r.layers > 0);

    let (uid, body) = run_and_get(&r.image, port, "/health", &mut cleanup);
    assert_eq!(uid, "1001");
    assert!(body.contains("ok"), "{body}");

    // nothing secret or generated in the image
    let name = unique("ls");
    let out = std::process::Command::new("docker")
        .args([
            "run",
            "--rm",
            "--name",
            &name,
            "--network",
            "none",
            &r.image,
            "find",
            "/app",
        ])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!listing.contains(".env"), "{listing}");
    assert!(!listing.contains("node_modules/junk"), "{listing}");
    assert!(!listing.contains(".image-builder.Dockerfile"), "{listing}");

    // labels
    let img = e.image(&r.image).await.unwrap().unwrap();
    let labels = img.config.unwrap().labels.unwrap();
    assert_eq!(labels[build::DIGEST_LABEL], format!("sha256:{}", p.digest));
    assert!(labels.contains_key("org.opencontainers.image.source"));

    // unchanged inputs: cached, nothing built
    let p2 = plan::plan(&spec(&dir, &image), &opts(builder, base)).unwrap();
    assert_eq!(p2.digest, p.digest);
    let r2 = build::build(&e, &p2, &BuildOptions::default(), &NoProgress)
        .await
        .unwrap();
    assert_eq!(r2.status, Status::Cached);
    assert_eq!(r2.id, r.id);
}

#[tokio::test]
async fn nextjs_example_builds_with_classic_builder_runs_as_1001_and_answers() {
    build_example("frontend", NODE_BASE, BuilderKind::Classic, 3000).await;
}

#[tokio::test]
async fn nextjs_example_builds_with_buildkit() {
    build_example("frontend", NODE_BASE, BuilderKind::BuildKit, 3000).await;
}

#[tokio::test]
async fn fastapi_example_builds_with_classic_builder_runs_as_1001_and_answers() {
    build_example("backend", PYTHON_BASE, BuilderKind::Classic, 8000).await;
}

#[tokio::test]
async fn fastapi_example_builds_with_buildkit() {
    build_example("backend", PYTHON_BASE, BuilderKind::BuildKit, 8000).await;
}

async fn failing_step(builder: BuilderKind) {
    ensure_base_images();
    let t = tempfile::tempdir().unwrap();
    fs::write(
        t.path().join("requirements.txt"),
        "fastapi\nnonexistent-package==9.9\n",
    )
    .unwrap();
    fs::write(
        t.path().join("main.py"),
        "from fastapi import FastAPI\napp = FastAPI()\n",
    )
    .unwrap();
    let image = unique("fail");
    let p = plan::plan(&spec(t.path(), &image), &opts(builder, PYTHON_BASE)).unwrap();
    let _c = Cleanup::with_images(vec![p.reference()]);
    let e = engine(builder).await;
    let err = build::build(&e, &p, &BuildOptions::default(), &NoProgress)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Build(_)), "{text}");
    assert_eq!(err.exit_code(), image_builder::error::exit::BUILD);
    assert!(
        text.contains("pip --python /opt/venv/bin/python install"),
        "the step is shown: {text}"
    );
    assert!(
        text.contains("No matching distribution found for nonexistent-package"),
        "output shown: {text}"
    );
    assert!(text.contains("fix:"), "{text}");
    assert!(
        e.image(&p.reference()).await.unwrap().is_none(),
        "no half-tagged image"
    );
    assert!(
        e.image(PYTHON_BASE).await.unwrap().is_some(),
        "a failed build leaves its base image alone"
    );
}

#[tokio::test]
async fn failed_step_shows_step_command_and_output_classic() {
    failing_step(BuilderKind::Classic).await;
}

#[tokio::test]
async fn failed_step_shows_step_command_and_output_buildkit() {
    failing_step(BuilderKind::BuildKit).await;
}

/// A Dockerfile whose final stage runs as root is refused by the plan,
/// before anything is built, with both ways out.
#[test]
fn a_root_dockerfile_is_refused_before_the_build() {
    let t = tempfile::tempdir().unwrap();
    fs::write(
        t.path().join("Dockerfile"),
        format!("FROM {BUSYBOX_BASE}\nCOPY hello.txt /hello.txt\n"),
    )
    .unwrap();
    fs::write(t.path().join("hello.txt"), "hi").unwrap();
    let err = plan::plan(
        &spec(t.path(), &unique("root")),
        &opts(BuilderKind::Classic, BUSYBOX_BASE),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Invalid { .. }), "{text}");
    assert!(text.contains("would run as root"), "{text}");
    assert!(text.contains("USER 1001:1001"), "{text}");
    assert!(text.contains("`stack:`"), "{text}");
}

#[tokio::test]
async fn max_size_fails_a_build_over_budget() {
    ensure_base_images();
    let t = tempfile::tempdir().unwrap();
    fs::write(
        t.path().join("Dockerfile"),
        format!("FROM {BUSYBOX_BASE}\nUSER 1001:1001\n"),
    )
    .unwrap();
    let image = unique("size");
    let p = plan::plan(
        &spec(t.path(), &image),
        &opts(BuilderKind::Classic, BUSYBOX_BASE),
    )
    .unwrap();
    let _c = Cleanup::with_images(vec![p.reference()]);
    let e = engine(BuilderKind::Classic).await;
    let err = build::build(
        &e,
        &p,
        &BuildOptions {
            max_size: Some(1000),
            force: false,
        },
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("--max-size"), "{err}");
    let ok = build::build(
        &e,
        &p,
        &BuildOptions {
            max_size: Some(100_000_000),
            force: false,
        },
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(ok.user, "1001:1001");
}

#[tokio::test]
async fn several_components_build_concurrently() {
    ensure_base_images();
    let t = tempfile::tempdir().unwrap();
    let mut plans = Vec::new();
    let mut c = Cleanup::default();
    for i in 0..2 {
        let d = t.path().join(format!("c{i}"));
        fs::create_dir_all(&d).unwrap();
        fs::write(
            d.join("Dockerfile"),
            format!("FROM {BUSYBOX_BASE}\nCOPY f /f\nUSER 1001:1001\n"),
        )
        .unwrap();
        fs::write(d.join("f"), format!("{i}")).unwrap();
        let p = plan::plan(
            &spec(&d, &unique("multi")),
            &opts(BuilderKind::Classic, BUSYBOX_BASE),
        )
        .unwrap();
        c.images.push(p.reference());
        plans.push(p);
    }
    let e = engine(BuilderKind::Classic).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let results = build::build_all(&e, &plans, &BuildOptions::default(), &tx).await;
    drop(tx);
    for r in &results {
        assert_eq!(r.as_ref().unwrap().status, Status::Built);
    }
    let mut events = Vec::new();
    while let Some(ev) = rx.recv().await {
        events.push(ev);
    }
    for p in &plans {
        assert!(
            events
                .iter()
                .any(|(c, e)| c == &p.component
                    && matches!(e, build::Event::Done(s) if s == "built"))
        );
        assert!(
            events
                .iter()
                .any(|(c, e)| c == &p.component && matches!(e, build::Event::Step(_)))
        );
    }
}

/// Builds a Dockerfile ending in `USER {user}` whose image holds the given
/// account files; returns the plan and the outcome.
async fn build_as(
    user: &str,
    passwd: &str,
    group: &str,
) -> (plan::Plan, image_builder::Result<build::BuildResult>) {
    ensure_base_images();
    let t = tempfile::tempdir().unwrap();
    fs::write(
        t.path().join("Dockerfile"),
        format!(
            "FROM {BUSYBOX_BASE}\nCOPY passwd /etc/passwd\nCOPY group /etc/group\nUSER {user}\n"
        ),
    )
    .unwrap();
    fs::write(t.path().join("passwd"), passwd).unwrap();
    fs::write(t.path().join("group"), group).unwrap();
    let p = plan::plan(
        &spec(t.path(), &unique("named")),
        &opts(BuilderKind::Classic, BUSYBOX_BASE),
    )
    .unwrap();
    let e = engine(BuilderKind::Classic).await;
    let r = build::build(&e, &p, &BuildOptions::default(), &NoProgress).await;
    (p, r)
}

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnextjs:x:1001:65533::/home/nextjs:/sbin/nologin\nappuser:x:10001:10001::/app:/bin/sh\n";
const GROUP: &str = "root:x:0:\nnogroup:x:65533:\nappgroup:x:10002:appuser\n";

#[tokio::test]
async fn a_named_user_is_resolved_from_the_images_own_account_files() {
    let (p, r) = build_as("nextjs", PASSWD, GROUP).await;
    let _c = Cleanup::with_images(vec![p.reference()]);
    let r = r.unwrap();
    assert_eq!(r.user, "nextjs");
    assert_eq!((r.run_as.uid, r.run_as.gid), (1001, 65533));
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(
        (json["uid"].as_u64(), json["gid"].as_u64()),
        (Some(1001), Some(65533))
    );
    // Cached, it is resolved again, to the same numbers.
    let e = engine(BuilderKind::Classic).await;
    let again = build::build(&e, &p, &BuildOptions::default(), &NoProgress)
        .await
        .unwrap();
    assert_eq!(again.status, Status::Cached);
    assert_eq!(again.run_as, r.run_as);

    let (p, r) = build_as("appuser:appgroup", PASSWD, GROUP).await;
    let _c = Cleanup::with_images(vec![p.reference()]);
    let r = r.unwrap();
    assert_eq!((r.run_as.uid, r.run_as.gid), (10001, 10002));
}

#[tokio::test]
async fn a_user_the_image_does_not_have_or_root_by_name_is_refused_and_the_image_removed() {
    let (p, r) = build_as("nextjs", "root:x:0:0:root:/root:/bin/sh\n", GROUP).await;
    let _c = Cleanup::with_images(vec![p.reference()]);
    let err = r.unwrap_err();
    assert!(matches!(err, Error::Check { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(
            "USER `nextjs` names the user `nextjs`, which the image's /etc/passwd does not have"
        ),
        "{text}"
    );
    assert!(text.contains("`USER 1001:1001`"), "{text}");
    let e = engine(BuilderKind::Classic).await;
    assert!(e.image(&p.reference()).await.unwrap().is_none());

    let (p, r) = build_as("toor", "toor:x:0:0::/:/bin/sh\n", GROUP).await;
    let _c = Cleanup::with_images(vec![p.reference()]);
    let text = r.unwrap_err().to_string();
    assert!(text.contains("USER `toor` is root (UID 0)"), "{text}");
}
