//! Real Python builds: FastAPI and uvicorn from PyPI on a base made from Debian's
//! packages, one image per app shape of real repositories, each started and asked
//! for `/health` as the non-root numeric user.
//!
//! PyPI is reached here through a TLS-intercepting proxy whose CA only the host's
//! bundle holds, and the base trusts Debian's CAs only: every build passes the
//! host's bundle with `--ca-cert`, the feature users behind such a proxy use.
//!
//! The base is Debian bookworm's Python 3.11 (the only real one that can be made
//! here). Fixtures that the recipe would put on 3.12/3.13 are covered by the
//! Dockerfile snapshots; the builds here pass the base with `--base-image`, which
//! is also what users do to pick their own image.

// The image-builder binary is built only with the `frontend` feature.
#![cfg(feature = "frontend")]

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Copy `src` into a fresh directory named `component` (the image name's second half).
fn staged(src: &Path, component: &str) -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join(component);
    copy_dir(src, &dir);
    (t, dir)
}

/// `image-builder build DIR -o json --ca-cert HOST_BUNDLE` on the Debian base, with
/// `extra` arguments.
fn build_with(dir: &Path, project: &str, base: &str, extra: &[&str]) -> std::process::Output {
    build_trusting(dir, project, base, HOST_CA_BUNDLE, extra)
}

fn build_trusting(
    dir: &Path,
    project: &str,
    base: &str,
    ca: &str,
    extra: &[&str],
) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_image-builder"))
        .arg("build")
        .arg(dir)
        .args(["--project", project, "-o", "json", "--ca-cert", ca])
        .args(["--base-image", &format!("builder={base}")])
        .args(["--base-image", &format!("runtime={base}")])
        .args(extra)
        .output()
        .unwrap()
}

/// `image-builder build DIR` on the Debian base; returns the image reference.
fn build(dir: &Path, project: &str, base: &str, extra: &[&str]) -> String {
    let out = build_with(dir, project, base, extra);
    assert!(
        out.status.success(),
        "build failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v[0]["image"].as_str().unwrap().to_string()
}

/// Build, run, ask `/health`; check the user and that no installer is left.
fn builds_and_answers(src: &Path, layout: &str) -> (String, String, Cleanup) {
    let base = ensure_debian_python_base();
    let (_t, dir) = staged(src, "backend");
    let project = unique(layout);
    let image = build(&dir, &project, base, &[]);
    let mut cleanup = Cleanup::with_images(vec![image.clone()]);
    let (uid, body) = run_and_get_python(&image, 8000, "/health", &mut cleanup);
    assert_eq!(uid, "1001", "{layout}: runs as the numeric non-root user");
    assert!(body.contains("\"status\":\"ok\""), "{layout}: {body}");
    // Globs that match nothing stay as they are and fail the test.
    let leftovers = sh_in(
        &image,
        "for p in /opt/venv/bin/pip* /opt/venv/lib/python3*/site-packages/pip /opt/venv/lib/python3*/site-packages/setuptools /opt/venv/lib/python3*/site-packages/wheel /app/tests /app/.image-builder.Dockerfile /app/.dockerignore /opt/tools; do [ -e \"$p\" ] && echo \"left: $p\"; done; echo end",
    );
    assert_eq!(leftovers, "end\n", "{layout}: build leftovers in the image");
    (image, body, cleanup)
}

#[test]
fn fastapi_example_with_requirements_is_small_and_lean() {
    let (image, _, _cleanup) = builds_and_answers(&examples().join("backend"), "req");
    let base = image_size(DEBIAN_PYTHON_BASE);
    let size = image_size(&image);
    let added = size - base;
    eprintln!("INFO base {base} B, image {size} B, added {added} B");
    assert!(
        added <= 18_000_000,
        "the image adds {added} bytes to the base"
    );
}

#[test]
fn src_app_with_flat_imports_starts() {
    let (_, body, _cleanup) = builds_and_answers(&fixture("py-src-flat"), "srcflat");
    assert!(body.contains("src-flat"), "{body}");
}

#[test]
fn launcher_main_py_beside_the_real_app_starts_the_real_app() {
    let (_, body, _cleanup) = builds_and_answers(&fixture("py-launcher"), "launcher");
    assert!(body.contains("launcher"), "{body}");
}

#[test]
fn uv_project_without_build_system_installs_from_the_lock_without_dev_dependencies() {
    let (image, body, _cleanup) = builds_and_answers(&fixture("py-uv-flat"), "uvflat");
    assert!(body.contains("uv-flat"), "{body}");
    let installed = sh_in(&image, "ls /opt/venv/lib/python3*/site-packages");
    assert!(installed.contains("fastapi"), "{installed}");
    assert!(
        !installed.contains("iniconfig"),
        "a dev dependency is installed:\n{installed}"
    );
    assert!(
        sh_in(&image, "ls /app").contains("alembic"),
        "alembic/ is copied with the code"
    );
}

#[test]
fn src_layout_package_is_installed_and_run_by_its_name() {
    let (_, body, _cleanup) = builds_and_answers(&fixture("py-src-package"), "srcpkg");
    assert!(body.contains("src-package"), "{body}");
}

#[test]
fn utf16_requirements_with_a_bom_are_read() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("app");
    copy_dir(&fixture("py-launcher"), &src);
    let text = fs::read_to_string(src.join("requirements.txt")).unwrap();
    let mut bytes = vec![0xFF, 0xFE];
    for u in text.replace('\n', "\r\n").encode_utf16() {
        bytes.extend_from_slice(&u.to_le_bytes());
    }
    fs::write(src.join("requirements.txt"), bytes).unwrap();
    let (_, body, _cleanup) = builds_and_answers(&src, "utf16");
    assert!(body.contains("launcher"), "{body}");
}

#[test]
fn build_arguments_reach_pip_and_stay_out_of_the_image() {
    let base = ensure_debian_python_base();
    let (_t, dir) = staged(&fixture("py-src-flat"), "backend");
    // An index that cannot answer: pip uses it, so the build fails.
    let out = build_with(
        &dir,
        &unique("argsbad"),
        base,
        &[
            "--build-arg",
            "PIP_INDEX_URL=http://127.0.0.1:9/simple",
            "--build-arg",
            "PIP_RETRIES=0",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("127.0.0.1"),
        "pip did not use the index:\n{err}"
    );

    let image = build(
        &dir,
        &unique("args"),
        base,
        &["--build-arg", "PIP_INDEX_URL=https://pypi.org/simple"],
    );
    let _cleanup = Cleanup::with_images(vec![image.clone()]);
    let inspect = Command::new("docker")
        .args(["image", "inspect", &image])
        .output()
        .unwrap();
    let history = Command::new("docker")
        .args(["history", "--no-trunc", &image])
        .output()
        .unwrap();
    for text in [inspect.stdout, history.stdout] {
        let text = String::from_utf8_lossy(&text);
        assert!(!text.contains("PIP_INDEX_URL"), "{text}");
    }
}

#[test]
fn a_uv_lock_out_of_date_with_its_manifest_fails_with_uvs_message_and_fix() {
    let base = ensure_debian_python_base();
    let (_t, dir) = staged(&fixture("py-uv-flat"), "backend");
    let manifest = dir.join("pyproject.toml");
    let text = fs::read_to_string(&manifest).unwrap();
    fs::write(
        &manifest,
        text.replace("\"uvicorn==0.32.0\"]", "\"uvicorn==0.32.0\", \"idna\"]"),
    )
    .unwrap();
    let project = unique("uvstale");
    let out = build_with(&dir, &project, base, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("uv lock"), "uv's fix is shown:\n{err}");
    let o = Command::new("docker")
        .args(["images", "-q", &format!("{project}-backend")])
        .output()
        .unwrap();
    assert!(o.stdout.is_empty(), "nothing is left behind");
}

/// A CA of this test's own, so that finding it proves a leak: the base's bundle
/// cannot hold it.
fn own_ca(dir: &Path) -> (PathBuf, Vec<u8>) {
    let key = dir.join("own-ca.key");
    let pem = dir.join("own-ca.pem");
    let o = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            &format!("/CN=image-builder test CA {}", unique("ca")),
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&pem)
        .output()
        .expect("openssl runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = fs::read_to_string(&pem).unwrap();
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    use base64::Engine as _;
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    (pem, der)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn the_ca_bundle_lets_pip_through_the_proxy_and_leaves_no_trace_in_the_image() {
    let base = ensure_debian_python_base();
    let t = tempfile::tempdir().unwrap();
    let (own_pem, own_der) = own_ca(t.path());
    // The host's bundle (the proxy's CA among the public roots) plus our own CA.
    let bundle = t.path().join("bundle.pem");
    let mut text = fs::read(HOST_CA_BUNDLE).unwrap();
    text.extend(fs::read(&own_pem).unwrap());
    fs::write(&bundle, &text).unwrap();

    let (_s, dir) = staged(&examples().join("backend"), "backend");
    let project = unique("ca");
    let out = build_trusting(&dir, &project, base, bundle.to_str().unwrap(), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let image = v[0]["image"].as_str().unwrap().to_string();
    let mut cleanup = Cleanup::with_images(vec![image.clone()]);
    let (uid, body) = run_and_get_python(&image, 8000, "/health", &mut cleanup);
    assert_eq!(uid, "1001");
    assert!(body.contains("\"status\":\"ok\""), "{body}");

    // Every layer and the configuration, as `docker save` writes them (uncompressed).
    let saved = Command::new("docker")
        .args(["save", &image])
        .output()
        .unwrap();
    assert!(saved.status.success());
    let tar = saved.stdout;
    assert!(tar.len() > 1_000_000, "the saved image holds its layers");
    let own_line = fs::read_to_string(&own_pem)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    for (what, needle) in [
        ("our CA (PEM)", own_line.as_bytes()),
        ("our CA (DER)", &own_der[..64]),
        ("the mount's path", b"image-builder-ca".as_slice()),
    ] {
        assert!(!contains(&tar, needle), "{what} is in the image");
    }

    // A changed bundle is a new input: a new tag, not the cached image.
    let again = build_with(&dir, &project, base, &[]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    let other = v[0]["image"].as_str().unwrap().to_string();
    cleanup.images.push(other.clone());
    assert_ne!(other, image);
}

#[test]
fn without_the_proxys_ca_pip_cannot_reach_pypi() {
    // What the test above proves only holds if the base alone cannot download:
    // Debian's own CAs do not include the proxy's.
    let base = ensure_debian_python_base();
    let (_t, dir) = staged(&examples().join("backend"), "backend");
    let t = tempfile::tempdir().unwrap();
    let debian_only = t.path().join("debian.pem");
    let o = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            base,
            "cat",
            "/etc/ssl/certs/ca-certificates.crt",
        ])
        .output()
        .unwrap();
    fs::write(&debian_only, &o.stdout).unwrap();
    if fs::read(HOST_CA_BUNDLE).unwrap() == o.stdout {
        eprintln!("INFO the host trusts Debian's CAs only: no proxy here");
        return;
    }
    let out = build_trusting(
        &dir,
        &unique("noca"),
        base,
        debian_only.to_str().unwrap(),
        &["--build-arg", "PIP_RETRIES=0"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.to_ascii_lowercase().contains("certificate"), "{err}");
}
