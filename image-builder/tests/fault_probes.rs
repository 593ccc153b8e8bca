//! The catalogue of faults that need the Docker Engine or a real file
//! system, the part kubectl-todo's emulator catalogue
//! (`kubectl-todo/tests/cluster/fault_probes.rs`) leaves out: a check failing
//! on an image already built and cached (`--max-size`, the user check),
//! and a full disk under the hash cache. Prints `probes: faults (docker): N tried, N survived`
//! (`--no-capture`) and fails listing every fault not survived.

// The image-builder binary is built only with the `frontend` feature.
#![cfg(feature = "frontend")]

mod support;

use std::fs;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::process::Command;

use image_builder::build::{self, BuildOptions, Engine, NoProgress, Status};
use image_builder::plan::{self, BuilderKind, PlanOptions};
use image_builder::spec::{BaseImages, ComponentSpec};
use support::*;

type Outcome = Result<(), String>;

/// A busybox component running as 1001, planned for the classic builder.
fn busybox_plan(dir: &Path, prefix: &str) -> Result<plan::Plan, String> {
    ensure_base_images();
    fs::write(
        dir.join("Dockerfile"),
        format!("FROM {BUSYBOX_BASE}\nUSER 1001:1001\n"),
    )
    .unwrap();
    let spec = ComponentSpec {
        path: dir.to_path_buf(),
        image: Some(unique(prefix)),
        ..Default::default()
    };
    let opts = PlanOptions {
        builder: Some(BuilderKind::Classic),
        base_images: BaseImages {
            builder: Some(BUSYBOX_BASE.into()),
            runtime: Some(BUSYBOX_BASE.into()),
        },
        use_cache: false,
    };
    plan::plan(&spec, &opts).map_err(|e| e.to_string())
}

async fn classic_engine() -> Result<Engine, String> {
    Ok(Engine::connect()
        .await
        .map_err(|e| e.to_string())?
        .with_builder(BuilderKind::Classic))
}

fn budget(max_size: Option<u64>) -> BuildOptions {
    BuildOptions {
        max_size,
        force: false,
    }
}

/// The id of the image `reference` names, if the engine has it.
async fn image_id(e: &Engine, reference: &str) -> Result<Option<String>, String> {
    Ok(e.image(reference)
        .await
        .map_err(|e| e.to_string())?
        .and_then(|i| i.id))
}

/// `--max-size` failing on an image already built refuses the build and
/// leaves the good image in place: no rebuild once the budget is raised.
async fn max_size_failing_on_a_cached_image() -> Outcome {
    let t = tempfile::tempdir().unwrap();
    let p = busybox_plan(t.path(), "cached-size")?;
    let _c = Cleanup::with_images(vec![p.reference()]);
    let e = classic_engine().await?;
    let first = build::build(&e, &p, &budget(None), &NoProgress)
        .await
        .map_err(|e| format!("the first build failed: {e}"))?;
    if first.status != Status::Built {
        return Err(format!("the first build was {:?}", first.status));
    }
    match build::build(&e, &p, &budget(Some(1000)), &NoProgress).await {
        Ok(_) => return Err("a 1000-byte budget was accepted".into()),
        Err(err) if !err.to_string().contains("--max-size") => {
            return Err(format!("refused for another reason: {err}"));
        }
        Err(_) => {}
    }
    if image_id(&e, &p.reference()).await? != Some(first.id.clone()) {
        return Err("the good image was removed".into());
    }
    let again = build::build(&e, &p, &budget(Some(100_000_000)), &NoProgress)
        .await
        .map_err(|e| e.to_string())?;
    if (again.status, &again.id) != (Status::Cached, &first.id) {
        return Err(format!("the image was rebuilt: {:?}", again.status));
    }
    Ok(())
}

/// The user check failing on an image found under the content tag (one
/// that runs as root, tagged by someone else) refuses it and deletes
/// nothing: the image is not this run's to remove.
async fn the_user_check_failing_on_a_cached_image() -> Outcome {
    let t = tempfile::tempdir().unwrap();
    let p = busybox_plan(t.path(), "cached-root")?;
    let _c = Cleanup::with_images(vec![p.reference()]);
    let tagged = Command::new("docker")
        .args(["tag", BUSYBOX_BASE, &p.reference()])
        .status()
        .expect("docker runs");
    assert!(tagged.success(), "docker tag {BUSYBOX_BASE} failed");
    let e = classic_engine().await?;
    let before = image_id(&e, &p.reference()).await?;
    match build::build(&e, &p, &budget(None), &NoProgress).await {
        Ok(r) => return Err(format!("a root image was accepted ({:?})", r.status)),
        Err(err) if !err.to_string().contains("root") => {
            return Err(format!("refused for another reason: {err}"));
        }
        Err(_) => {}
    }
    if image_id(&e, &p.reference()).await? != before {
        return Err("the cached image was removed".into());
    }
    Ok(())
}

struct Mounted<'a>(&'a Path);

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0).status();
    }
}

/// On a full disk the hash cache cannot be written: hashing goes on (the
/// cache only saves work) and no zero-byte `.tmp-*` file is left behind.
/// The full disk is a real one: a 16 KiB tmpfs, filled up.
fn a_full_disk_under_the_hash_cache() -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    fs::create_dir_all(&cache).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16k", "tmpfs"])
        .arg(&cache)
        .status()
        .expect("mount runs");
    assert!(
        mounted.success(),
        "this probe mounts a tmpfs: run it as root"
    );
    let _unmount = Mounted(&cache);
    fs::create_dir_all(cache.join("files")).unwrap();
    // Fill the file system to the last block.
    let fill = fs::write(cache.join("fill"), vec![0u8; 64 * 1024]);
    assert!(fill.is_err(), "the tmpfs is not full");
    let app = dir.path().join("app");
    fs::create_dir_all(&app).unwrap();
    for i in 0..20 {
        fs::write(app.join(format!("f{i}.txt")), format!("content {i}")).unwrap();
    }
    fs::write(
        app.join("Dockerfile"),
        "FROM scratch\nCOPY . /\nUSER 1001:1001\n",
    )
    .unwrap();
    for _ in 0..3 {
        let out = Command::new(env!("CARGO_BIN_EXE_image-builder"))
            .arg("hash")
            .arg(&app)
            .env("IMAGE_BUILDER_CACHE_DIR", &cache)
            .output()
            .unwrap();
        if !out.status.success() {
            return Err(format!(
                "`hash` failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    let left: Vec<String> = fs::read_dir(cache.join("files"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp-"))
        .collect();
    if left.is_empty() {
        Ok(())
    } else {
        Err(format!("temporary files left: {left:?}"))
    }
}

type Probe = Pin<Box<dyn Future<Output = Outcome>>>;

#[tokio::test(flavor = "multi_thread")]
async fn every_docker_fault_is_survived_with_nothing_lost() {
    let probes: Vec<(&str, Probe)> = vec![
        (
            "--max-size failing on a cached image",
            Box::pin(max_size_failing_on_a_cached_image()),
        ),
        (
            "the user check failing on a cached image",
            Box::pin(the_user_check_failing_on_a_cached_image()),
        ),
        (
            "a full disk under the hash cache",
            Box::pin(async { a_full_disk_under_the_hash_cache() }),
        ),
    ];
    let tried = probes.len();
    let mut misses = Vec::new();
    for (name, probe) in probes {
        let started = std::time::Instant::now();
        let outcome = probe.await;
        println!(
            "probe {name}: {:?} in {:.1?}",
            outcome.is_ok(),
            started.elapsed()
        );
        if let Err(why) = outcome {
            misses.push(format!("{name}: {why}"));
        }
    }
    let survived = tried - misses.len();
    println!("probes: faults (docker): {tried} tried, {survived} survived");
    assert!(misses.is_empty(), "not survived:\n{}", misses.join("\n\n"));
    assert_eq!(tried, 3);
}
