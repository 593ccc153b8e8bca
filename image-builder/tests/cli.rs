//! The binary: plan output snapshots, hash, error messages and exit codes, load.

// The image-builder binary is built only with the `frontend` feature.
#![cfg(feature = "frontend")]

mod support;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_image-builder"));
    let cache = std::env::temp_dir().join(format!("ib-cli-cache-{}", std::process::id()));
    c.env("IMAGE_BUILDER_CACHE_DIR", cache);
    c.env_remove("KUBECONFIG");
    c
}

fn run(c: &mut Command) -> (i32, String, String) {
    let o: Output = c.output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn example(c: &str) -> String {
    support::examples()
        .join(c)
        .canonicalize()
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn plan_of_the_example_app_text_classic() {
    let (code, out, err) = run(bin()
        .args(["plan", "--builder", "classic", "--project", "todo-app"])
        .arg(example("frontend"))
        .arg(example("backend")));
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!(out);
}

#[test]
fn plan_of_the_example_app_json_buildkit() {
    let (code, out, err) = run(bin()
        .args([
            "plan",
            "-o",
            "json",
            "--builder",
            "buildkit",
            "--project",
            "todo-app",
        ])
        .arg(example("frontend"))
        .arg(example("backend")));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    for obj in v.as_array().unwrap() {
        for k in ["component", "stack", "dockerfile", "digest", "tag"] {
            assert!(obj.get(k).is_some(), "missing {k}");
        }
    }
    insta::assert_snapshot!(out);
}

#[test]
fn hash_prints_the_plan_digest_and_is_stable() {
    let fe = example("frontend");
    let (c1, h1, e1) = run(bin().args(["hash", "--builder", "classic", &fe]));
    assert_eq!(c1, 0, "{e1}");
    let (_, h2, _) = run(bin().args(["hash", "--builder", "classic", &fe]));
    assert_eq!(h1, h2);
    let (_, plan, _) = run(bin().args(["plan", "-o", "json", "--builder", "classic", &fe]));
    let v: serde_json::Value = serde_json::from_str(&plan).unwrap();
    assert_eq!(
        h1.trim(),
        format!("sha256:{}", v[0]["digest"].as_str().unwrap())
    );
}

#[test]
fn hash_changes_with_content_not_with_mtime() {
    let t = tempfile::tempdir().unwrap();
    support::copy_dir(Path::new(&example("backend")), t.path());
    let d = t.path().display().to_string();
    let (_, h1, _) = run(bin().args(["hash", "--builder", "classic", &d]));
    let f = fs::File::options()
        .write(true)
        .open(t.path().join("main.py"))
        .unwrap();
    f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
        .unwrap();
    drop(f);
    let (_, h2, _) = run(bin().args(["hash", "--builder", "classic", &d]));
    assert_eq!(h1, h2);
    fs::write(t.path().join("main.py"), "print('changed')\n").unwrap();
    let (_, h3, _) = run(bin().args(["hash", "--builder", "classic", &d]));
    assert_ne!(h1, h3);
    // a .env file never enters the context, so it does not change the digest
    fs::write(t.path().join(".env"), "SECRET=1\n").unwrap();
    let (_, h4, _) = run(bin().args(["hash", "--builder", "classic", &d]));
    assert_eq!(h3, h4);
}

#[test]
fn bad_input_gives_clear_errors_and_exit_code_3() {
    let (code, _, err) = run(bin().args(["plan", "--builder", "classic", "/nonexistent/app"]));
    assert_eq!(code, 3);
    assert!(
        err.contains("does not exist") && err.contains("fix:"),
        "{err}"
    );

    let t = tempfile::tempdir().unwrap();
    fs::write(t.path().join("README.md"), "hi").unwrap();
    let (code, _, err) = run(bin().args(["plan", "--builder", "classic"]).arg(t.path()));
    assert_eq!(code, 3);
    assert!(err.contains("cannot tell which stack"), "{err}");
    assert!(
        err.contains("requirements.txt") && err.contains("stack:"),
        "{err}"
    );

    fs::write(t.path().join("requirements.txt"), "fastapi\n").unwrap();
    fs::write(t.path().join(".dockerignore"), "[unclosed\n").unwrap();
    let (code, _, err) = run(bin().args(["plan", "--builder", "classic"]).arg(t.path()));
    assert_eq!(code, 3);
    assert!(
        err.contains(".dockerignore") && err.contains("[unclosed"),
        "{err}"
    );
}

/// Every reference given on the command line is checked by the one rule
/// kubectl-todo uses, before anything is planned: a bad command line, exit 2.
#[test]
fn bad_image_references_are_refused_by_the_reference_rule_with_exit_2() {
    let t = tempfile::tempdir().unwrap();
    fs::write(t.path().join("requirements.txt"), "fastapi\n").unwrap();
    let dir = t.path().to_str().unwrap();
    let short_digest = format!("runtime=node@sha256:{}", "a".repeat(32));
    for (args, rule) in [
        (
            vec!["plan", dir, "--base-image", "nope"],
            "expected STAGE=REF",
        ),
        (
            vec!["plan", dir, "--base-image", "builder=Node:20"],
            "`Node:20` has uppercase letters in its repository name (only the tag may have them)",
        ),
        (
            vec!["plan", dir, "--base-image", &short_digest],
            "a sha256 digest is 64 lowercase hex digits (this one has 32 characters)",
        ),
        (
            vec!["hash", dir, "--base-image", "runtime=node:20 alpine"],
            "is not `[host[:port]/]name[:tag][@sha256:digest]` (lowercase name)",
        ),
        (
            vec!["load", "--to", "kind", "Web:1"],
            "`Web:1` has uppercase letters",
        ),
        (
            vec!["frontend-image", "--tag", "x@md5:0"],
            "is not sha256, sha384 or sha512",
        ),
    ] {
        let (code, out, err) = run(bin().args(&args));
        assert_eq!((code, out.as_str()), (2, ""), "{args:?}: {err}");
        assert!(err.contains(rule), "{args:?}: {err}");
    }
}

#[test]
fn unreachable_engine_exits_4_with_a_hint() {
    let t = tempfile::tempdir().unwrap();
    fs::write(t.path().join("requirements.txt"), "fastapi\n").unwrap();
    let (code, _, err) = run(bin()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["build"])
        .arg(t.path()));
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("Docker Engine") && err.contains("fix:"),
        "{err}"
    );
}

#[test]
fn a_socket_the_user_may_not_open_exits_4_with_the_docker_group_hint() {
    // Root ignores the socket's permissions, so the binary runs as `nobody`.
    let t = tempfile::tempdir().unwrap();
    fs::write(t.path().join("requirements.txt"), "fastapi\n").unwrap();
    let world = |p: &Path, mode| {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    };
    world(t.path(), 0o755);
    world(&t.path().join("requirements.txt"), 0o644);
    let cache = tempfile::tempdir().unwrap();
    world(cache.path(), 0o777);
    let (code, _, err) = run(Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_image-builder"))
        .env("IMAGE_BUILDER_CACHE_DIR", cache.path())
        .env("DOCKER_HOST", "unix:///var/run/docker.sock")
        .args(["build"])
        .arg(t.path()));
    assert_eq!(code, 4, "{err}");
    assert!(
        err.to_ascii_lowercase().contains("permission denied"),
        "{err}"
    );
    assert!(err.contains("docker` group"), "{err}");
}

#[test]
fn an_unreadable_file_exits_3_naming_it() {
    // Root reads anything, so the binary runs as `nobody` against a file only root may read.
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(t.path().join("requirements.txt"), "fastapi\n").unwrap();
    fs::set_permissions(
        t.path().join("requirements.txt"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    fs::write(t.path().join("secret.py"), "x = 1\n").unwrap();
    fs::set_permissions(
        t.path().join("secret.py"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let (code, _, err) = run(Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_image-builder"))
        .args(["hash", "--no-cache", "--builder", "classic"])
        .arg(t.path()));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("secret.py") && err.contains("fix:"), "{err}");
}

#[test]
fn help_documents_exit_codes() {
    let (code, out, _) = run(bin().arg("--help"));
    assert_eq!(code, 0);
    assert!(
        out.contains("Exit codes:") && out.contains("7  loading"),
        "{out}"
    );
}

fn stand_in(dir: &Path, tool: &str, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(tool);
    fs::write(&p, script).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn load_runs_the_cluster_tool_and_explains_failures() {
    let t = tempfile::tempdir().unwrap();
    let bin_dir = t.path().join("bin");
    fs::create_dir_all(&bin_dir).unwrap();
    let log = t.path().join("args.log");
    for tool in ["minikube", "kind", "k3d"] {
        stand_in(
            &bin_dir,
            tool,
            &format!("#!/bin/sh\necho \"{tool} $*\" >> {}\n", log.display()),
        );
    }
    let path = format!("{}:/usr/bin:/bin", bin_dir.display());
    for (to, extra) in [
        ("minikube", vec!["--cluster", "dev"]),
        ("kind", vec![]),
        ("k3d", vec!["--cluster", "c1"]),
    ] {
        let (code, out, err) = run(bin()
            .env("PATH", &path)
            .args(["load", "app:1234", "--to", to])
            .args(extra));
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("loaded"), "{out}");
    }
    let recorded = fs::read_to_string(&log).unwrap();
    assert_eq!(
        recorded,
        "minikube image load app:1234 --profile dev\nkind load docker-image app:1234 --name kind\nk3d image import app:1234 --cluster c1\n"
    );

    // the tool is missing
    let empty = t.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    let (code, _, err) = run(bin()
        .env("PATH", &empty)
        .args(["load", "app:1", "--to", "kind"]));
    assert_eq!(code, 7);
    assert!(
        err.contains("`kind` was not found on PATH") && err.contains("install kind"),
        "{err}"
    );

    // the cluster is stopped
    stand_in(
        &bin_dir,
        "minikube",
        "#!/bin/sh\necho '* The control plane node must be running for this command' >&2\necho '  - To start a cluster, run: \"minikube start\"' >&2\necho 'host is not running' >&2\nexit 80\n",
    );
    let (code, _, err) = run(bin()
        .env("PATH", &path)
        .args(["load", "app:1", "--to", "minikube"]));
    assert_eq!(code, 7);
    assert!(err.contains("minikube start --profile minikube"), "{err}");
}

#[test]
fn build_json_reports_built_then_cached() {
    support::ensure_base_images();
    let t = tempfile::tempdir().unwrap();
    let app = t.path().join("svc");
    fs::create_dir_all(&app).unwrap();
    fs::write(
        app.join("Dockerfile"),
        format!(
            "FROM {}\nCOPY f /f\nUSER 1001:1001\n",
            support::BUSYBOX_BASE
        ),
    )
    .unwrap();
    fs::write(app.join("f"), "x").unwrap();
    let project = support::unique("cli");
    let mut c = support::Cleanup::default();
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let (code, out, err) = run(bin()
            .args([
                "build",
                "--builder",
                "classic",
                "-o",
                "json",
                "--project",
                &project,
            ])
            .arg(&app));
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let o = &v[0];
        for k in [
            "component",
            "image",
            "tag",
            "digest",
            "id",
            "size_bytes",
            "user",
            "status",
            "loaded_to",
            "pushed_ref",
        ] {
            assert!(o.get(k).is_some(), "missing {k} in {o}");
        }
        assert_eq!(o["user"], "1001:1001");
        assert_eq!(o["component"], "svc");
        c.images.push(o["image"].as_str().unwrap().to_string());
        statuses.push(o["status"].as_str().unwrap().to_string());
        assert!(
            err.contains("[svc]"),
            "plain progress lines when not a terminal: {err}"
        );
    }
    assert_eq!(statuses, ["built", "cached"]);
}

/// With no engine to ask, a component only BuildKit can build (a CA bundle)
/// is planned for BuildKit instead of being refused as if the builder were
/// classic; one without a bundle is still planned for the classic builder.
#[test]
fn without_an_engine_a_ca_bundle_is_planned_for_buildkit() {
    let t = tempfile::tempdir().unwrap();
    let app = t.path().join("api");
    fs::create_dir_all(&app).unwrap();
    fs::write(app.join("requirements.txt"), "fastapi\n").unwrap();
    fs::write(
        app.join("main.py"),
        "from fastapi import FastAPI\napp = FastAPI()\n",
    )
    .unwrap();
    let pem = t.path().join("ca.pem");
    fs::copy("/etc/ssl/certs/ca-certificates.crt", &pem).unwrap();
    let plan = |args: &[&str]| {
        let (code, out, err) = run(bin()
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .arg("plan")
            .args(args)
            .arg(&app));
        assert_eq!(code, 0, "{err}");
        (out, err)
    };
    let ca = ["--ca-cert", pem.to_str().unwrap()];
    let (unseen, err) = plan(&ca);
    assert!(err.contains(image_builder::plan::NO_ENGINE_NOTE), "{err}");
    assert_eq!(
        unseen,
        plan(&[&ca[..], &["--builder", "buildkit"]].concat()).0
    );
    assert!(unseen.contains("mounted as a BuildKit secret"), "{unseen}");
    assert_eq!(plan(&[]).0, plan(&["--builder", "classic"]).0);
}

/// `--ca-cert` is checked before anything is built: a file that is not a PEM
/// bundle, and the classic builder (no secrets), each fail with the fix and exit 3,
/// and no image is made.
#[test]
fn a_ca_cert_that_cannot_work_is_refused_before_the_build() {
    let t = tempfile::tempdir().unwrap();
    let app = t.path().join("api");
    fs::create_dir_all(&app).unwrap();
    fs::write(app.join("requirements.txt"), "fastapi\n").unwrap();
    fs::write(
        app.join("main.py"),
        "from fastapi import FastAPI\napp = FastAPI()\n",
    )
    .unwrap();
    let der = t.path().join("proxy-ca.der");
    fs::write(&der, b"\x30\x82\x03\x0b\x30\x82\x01\xf3\xa0\x03").unwrap();
    let project = support::unique("badca");
    let (code, out, err) = run(bin()
        .args([
            "build",
            "--builder",
            "buildkit",
            "--project",
            &project,
            "--ca-cert",
        ])
        .arg(&der)
        .arg(&app));
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        err.contains("proxy-ca.der") && err.contains("not text"),
        "{err}"
    );
    assert!(err.contains("openssl x509 -inform der -in"), "{err}");
    let images = Command::new("docker")
        .args(["images", "-q", &format!("{project}-api")])
        .output()
        .unwrap();
    assert!(images.stdout.is_empty(), "nothing is built");

    let pem = t.path().join("ca.pem");
    fs::copy("/etc/ssl/certs/ca-certificates.crt", &pem).unwrap();
    let (code, _, err) = run(bin()
        .args(["plan", "--builder", "classic", "--ca-cert"])
        .arg(&pem)
        .arg(&app));
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("classic builder has no secrets") && err.contains("--builder buildkit"),
        "{err}"
    );

    // BuildKit: the plan says where the bundle goes, and the tag follows its content.
    let plan = |ca: &Path| {
        let (code, out, err) = run(bin()
            .args(["plan", "--builder", "buildkit", "--ca-cert"])
            .arg(ca)
            .arg(&app));
        assert_eq!(code, 0, "{err}");
        out
    };
    let first = plan(&pem);
    assert!(first.contains("mounted as a BuildKit secret"), "{first}");
    assert!(
        first.contains("RUN --mount=type=secret,id=image-builder-ca,"),
        "{first}"
    );
    let mut more = fs::read(&pem).unwrap();
    more.extend_from_slice(b"# a comment changes the bundle\n");
    fs::write(&pem, more).unwrap();
    let second = plan(&pem);
    let image = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("image:"))
            .unwrap()
            .to_string()
    };
    assert_ne!(
        image(&first),
        image(&second),
        "a changed bundle is a new tag"
    );
}

/// An app's own Dockerfile gets the bundle as the build secret the plan's note
/// names: image-builder's session serves it to BuildKit.
#[test]
fn an_own_dockerfile_reads_the_ca_bundle_as_a_build_secret() {
    support::ensure_base_images();
    let t = tempfile::tempdir().unwrap();
    let app = t.path().join("svc");
    fs::create_dir_all(&app).unwrap();
    fs::write(
        app.join("Dockerfile"),
        format!(
            "FROM {}\nRUN --mount=type=secret,id=image-builder-ca,target=/run/secrets/image-builder-ca.pem grep -c 'BEGIN CERTIFICATE' /run/secrets/image-builder-ca.pem > /certs\nUSER 1001:1001\n",
            support::BUSYBOX_BASE
        ),
    )
    .unwrap();
    let cert = "-----BEGIN CERTIFICATE-----\nTUlJQg==\n-----END CERTIFICATE-----\n";
    let ca = t.path().join("ca.pem");
    fs::write(&ca, format!("{cert}{cert}{cert}")).unwrap();
    let project = support::unique("owndf-ca");
    let (code, out, err) = run(bin()
        .args([
            "build",
            "--builder",
            "buildkit",
            "-o",
            "json",
            "--project",
            &project,
            "--ca-cert",
        ])
        .arg(&ca)
        .arg(&app));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let image = v[0]["image"].as_str().unwrap().to_string();
    let _c = support::Cleanup::with_images(vec![image.clone()]);
    let o = Command::new("docker")
        .args(["run", "--rm", "--network", "none", &image, "cat", "/certs"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "3");
}
