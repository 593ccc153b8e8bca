//! `--push` against a real registry on loopback (Debian's `docker-registry`).

mod support;

use std::io::Write;
use std::process::{Child, Command, Stdio};

use image_builder::build::{self, BuildOptions, Engine, NoProgress};
use image_builder::plan::{self, BuilderKind, PlanOptions};
use image_builder::spec::ComponentSpec;
use support::*;

struct Registry(Child);
impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_registry(dir: &std::path::Path) -> Option<(Registry, String)> {
    let bin = which::which("docker-registry").ok()?;
    let port = free_port();
    let cfg = dir.join("config.yml");
    let mut f = std::fs::File::create(&cfg).unwrap();
    write!(
        f,
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
        dir.join("data").display()
    )
    .unwrap();
    let child = Command::new(bin)
        .arg("serve")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let reg = Registry(child);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((reg, format!("127.0.0.1:{port}")));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("docker-registry did not start");
}

#[tokio::test]
async fn push_to_a_loopback_registry_reports_the_digest() {
    let t = tempfile::tempdir().unwrap();
    let Some((_reg, addr)) = start_registry(t.path()) else {
        if std::env::var_os("CI").is_some() {
            panic!("docker-registry is not installed: `apt-get install -y docker-registry`");
        }
        eprintln!("SKIPPED: docker-registry not installed");
        return;
    };
    ensure_base_images();
    let app = t.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("Dockerfile"),
        format!("FROM {BUSYBOX_BASE}\nCOPY f /f\nUSER 1001:1001\n"),
    )
    .unwrap();
    std::fs::write(app.join("f"), "push me").unwrap();
    let image = unique("push");
    let p = plan::plan(
        &ComponentSpec {
            path: app,
            image: Some(image.clone()),
            ..Default::default()
        },
        &PlanOptions {
            builder: Some(BuilderKind::Classic),
            use_cache: false,
            ..Default::default()
        },
    )
    .unwrap();
    let remote = format!("{addr}/{image}:{}", p.tag);
    let _c = Cleanup::with_images(vec![p.reference(), remote.clone()]);
    let e = Engine::connect()
        .await
        .unwrap()
        .with_builder(BuilderKind::Classic);
    let r = build::build(&e, &p, &BuildOptions::default(), &NoProgress)
        .await
        .unwrap();
    let pushed = image_builder::push::push(&e, &r.image, &addr)
        .await
        .unwrap();
    assert!(pushed.starts_with(&format!("{remote}@sha256:")), "{pushed}");
    assert_eq!(
        pushed.len(),
        remote.len() + "@sha256:".len() + 64,
        "{pushed}"
    );

    // an unreachable registry: a clear error
    let dead = format!("127.0.0.1:{}", free_port());
    let err = image_builder::push::push(&e, &r.image, &dead)
        .await
        .unwrap_err();
    let _c2 = Cleanup::with_images(vec![format!("{dead}/{image}:{}", p.tag)]);
    assert!(err.to_string().contains("fix:"), "{err}");
    assert_eq!(err.exit_code(), image_builder::error::exit::DELIVER);
}
