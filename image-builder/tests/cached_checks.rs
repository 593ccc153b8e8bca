//! A check that fails on an image already built refuses the build and
//! leaves the good image in place: no rebuild once the budget is raised.

mod support;

use std::fs;

use image_builder::build::{self, BuildOptions, Engine, NoProgress, Status};
use image_builder::plan::{self, BuilderKind, PlanOptions};
use image_builder::spec::{BaseImages, ComponentSpec};
use support::*;

#[tokio::test]
async fn max_size_failing_on_a_cached_image_refuses_and_keeps_it() {
    ensure_base_images();
    let t = tempfile::tempdir().unwrap();
    fs::write(
        t.path().join("Dockerfile"),
        format!("FROM {BUSYBOX_BASE}\nUSER 1001:1001\n"),
    )
    .unwrap();
    let spec = ComponentSpec {
        path: t.path().to_path_buf(),
        image: Some(unique("cached-size")),
        ..Default::default()
    };
    let options = PlanOptions {
        builder: BuilderKind::Classic,
        base_images: BaseImages {
            builder: Some(BUSYBOX_BASE.into()),
            runtime: Some(BUSYBOX_BASE.into()),
        },
        use_cache: false,
    };
    let p = plan::plan(&spec, &options).unwrap();
    let _c = Cleanup::with_images(vec![p.reference()]);
    let e = Engine::connect()
        .await
        .expect("docker engine")
        .with_builder(BuilderKind::Classic);
    let budget = |max_size| BuildOptions {
        max_size,
        force: false,
    };
    let first = build::build(&e, &p, &budget(None), &NoProgress)
        .await
        .unwrap();
    assert_eq!(first.status, Status::Built);
    let err = build::build(&e, &p, &budget(Some(1000)), &NoProgress)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("--max-size"), "{err}");
    let kept = e.image(&p.reference()).await.unwrap();
    assert_eq!(
        kept.and_then(|i| i.id),
        Some(first.id.clone()),
        "the good image was removed"
    );
    let again = build::build(&e, &p, &budget(Some(100_000_000)), &NoProgress)
        .await
        .unwrap();
    assert_eq!((again.status, again.id), (Status::Cached, first.id));
}
