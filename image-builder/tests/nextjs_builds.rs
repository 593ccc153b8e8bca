//! Next.js without standalone output and with NEXT_PUBLIC_* values, built on the
//! stand-in Node base (npm cannot be reached here): the build stage declares the
//! variables the code reads, the plan lists them, and the image runs `next start`
//! (the stand-in npm's `start`) from the pruned install.

// The image-builder binary is built only with the `frontend` feature.
#![cfg(feature = "frontend")]

mod support;

use std::fs;
use std::process::Command;

use support::*;

fn app(dir: &std::path::Path) {
    for (f, t) in [
        (
            "package.json",
            r#"{"dependencies":{"next":"15.0.0"},"scripts":{"build":"next build","start":"next start"}}"#,
        ),
        ("package-lock.json", "{}"),
        ("next.config.mjs", "export default {};\n"),
        (
            "app/page.tsx",
            "const api = process.env.NEXT_PUBLIC_API_URL ?? 'http://localhost:8000';\nconst auth = process.env.NEXT_PUBLIC_AUTH_URL;\n",
        ),
    ] {
        let p = dir.join(f);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, t).unwrap();
    }
}

fn ib(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_image-builder"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn next_without_standalone_runs_next_start_and_gets_its_public_values_at_build_time() {
    ensure_base_images();
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("frontend");
    app(&dir);
    let d = dir.to_str().unwrap();
    let base = [
        "--base-image",
        &format!("builder={NODE_BASE}"),
        "--base-image",
        &format!("runtime={NODE_BASE}"),
    ]
    .map(|s| s.to_string());
    let project = unique("nextstart");
    let mut args: Vec<&str> = vec!["plan", d, "--project", &project];
    args.extend(base.iter().map(String::as_str));
    args.extend(["--build-arg", "NEXT_PUBLIC_API_URL=http://localhost:30800"]);
    let o = ib(&args);
    let plan = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{plan}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        plan.contains("set from build arguments: NEXT_PUBLIC_API_URL; not set (the code's fallback applies): NEXT_PUBLIC_AUTH_URL"),
        "{plan}"
    );
    assert!(plan.contains("`next start`"), "{plan}");
    assert!(plan.contains("ARG NEXT_PUBLIC_API_URL\n"), "{plan}");
    assert!(plan.contains("ARG NEXT_PUBLIC_AUTH_URL\n"), "{plan}");

    args[0] = "build";
    args.extend(["-o", "json"]);
    let o = ib(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let image = v[0]["image"].as_str().unwrap().to_string();
    let mut cleanup = Cleanup::with_images(vec![image.clone()]);
    let (uid, body) = run_and_get(&image, 3000, "/health", &mut cleanup);
    assert_eq!(uid, "1001");
    assert!(body.contains("ok"), "{body}");
    // Pruned to production dependencies, and the value is not in the image's config.
    let o = Command::new("docker")
        .args(["image", "inspect", &image])
        .output()
        .unwrap();
    let inspect = String::from_utf8_lossy(&o.stdout);
    assert!(!inspect.contains("30800"), "{inspect}");
    let o = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--entrypoint",
            "cat",
            &image,
            "/app/node_modules/.pruned",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "the install was not pruned");
}
