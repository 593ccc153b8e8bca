//! The BuildKit frontend against the machine's Docker Engine: its image, builds
//! through `# syntax=`, parity with the generated Dockerfile for every stack, errors
//! through BuildKit and cached rebuilds.

// The frontend is built only with the `frontend` feature.
#![cfg(feature = "frontend")]

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use image_builder::build::DIGEST_LABEL;
use image_builder::plan::{self, BuilderKind, PlanOptions};
use image_builder::spec::{BaseImages, ComponentSpec};
use support::*;

const GO_BASE: &str = "ib-test/go-standin:1";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_image-builder")
}

fn ib(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("DOCKER_BUILDKIT")
        .output()
        .expect("image-builder runs")
}

fn docker_out(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The frontend image of the image-builder binary under test (built once).
fn frontend_image() -> String {
    let o = ib(&["frontend-image"]);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// A stand-in Go toolchain: `go build` "compiles" by copying busybox, and the CA
/// bundle the Go recipe copies exists.
fn ensure_go_base() {
    ensure_base_images();
    let lock = fs::File::create(std::env::temp_dir().join("image-builder-test-go.lock")).unwrap();
    lock.lock().unwrap();
    if image_exists(GO_BASE) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    fs::write(
        t.path().join("go"),
        "#!/bin/sh\n# stand-in go\ncase \"$1\" in\n  mod) mkdir -p /go/pkg/mod ;;\n  build) mkdir -p /out && cp /bin/busybox /out/app ;;\n  *) echo \"go stand-in: $*\" >&2; exit 1 ;;\nesac\n",
    )
    .unwrap();
    fs::write(
        t.path().join("Dockerfile"),
        format!(
            "FROM {BUSYBOX_BASE}\nCOPY go /usr/local/bin/go\nRUN chmod 755 /usr/local/bin/go && mkdir -p /etc/ssl/certs && echo cert > /etc/ssl/certs/ca-certificates.crt\n"
        ),
    )
    .unwrap();
    let o = Command::new("docker")
        .args(["build", "-q", "-t", GO_BASE])
        .arg(t.path())
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

/// One fixture per stack: (name, directory, base-image arguments, port).
/// A PEM bundle every machine has.
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

fn fixtures(root: &Path) -> Vec<(&'static str, std::path::PathBuf, Vec<String>)> {
    let mut v = Vec::new();
    let bases = |b: &str, r: &str| {
        vec![
            "--base-image".to_string(),
            format!("builder={b}"),
            "--base-image".to_string(),
            format!("runtime={r}"),
        ]
    };
    for (name, base) in [("frontend", NODE_BASE), ("backend", PYTHON_BASE)] {
        let d = root.join(name);
        copy_dir(&examples().join(name), &d);
        fs::write(d.join(".env"), "DATABASE_URL=postgres://secret\n").unwrap();
        v.push((name, d, bases(base, base)));
    }
    // Build arguments reach the installer in both paths (the stand-in pip records
    // PIP_INDEX_URL), and a src/ app gets the same PYTHONPATH.
    let args = root.join("backend-args");
    copy_dir(&examples().join("backend"), &args);
    let mut extra = bases(PYTHON_BASE, PYTHON_BASE);
    extra.extend([
        "--build-arg".to_string(),
        "PIP_INDEX_URL=https://pypi.example.com/simple".to_string(),
    ]);
    v.push(("backend-args", args, extra));
    // The CA bundle reaches the installer in both paths (the stand-in pip counts
    // its certificates).
    let ca = root.join("backend-ca");
    copy_dir(&examples().join("backend"), &ca);
    let mut extra = bases(PYTHON_BASE, PYTHON_BASE);
    extra.extend(["--ca-cert".to_string(), CA_BUNDLE.to_string()]);
    v.push(("backend-ca", ca, extra));
    let src = root.join("backend-src");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/py-src-flat"),
        &src,
    );
    v.push(("backend-src", src, bases(PYTHON_BASE, PYTHON_BASE)));

    let node = root.join("node");
    fs::create_dir_all(&node).unwrap();
    fs::write(node.join("package.json"), r#"{"main":"server.js"}"#).unwrap();
    fs::write(node.join("package-lock.json"), "{}").unwrap();
    fs::write(node.join("server.js"), "console.log('hi')\n").unwrap();
    v.push(("node", node, bases(NODE_BASE, NODE_BASE)));

    let go = root.join("go");
    fs::create_dir_all(&go).unwrap();
    fs::write(go.join("go.mod"), "module example.com/app\n").unwrap();
    fs::write(go.join("main.go"), "package main\nfunc main() {}\n").unwrap();
    v.push(("go", go, bases(GO_BASE, BUSYBOX_BASE)));

    let binary = root.join("binary");
    fs::create_dir_all(&binary).unwrap();
    fs::copy("/bin/busybox", binary.join("server")).unwrap();
    v.push(("binary", binary, Vec::new()));

    let own = root.join("own");
    fs::create_dir_all(&own).unwrap();
    fs::write(
        own.join("Dockerfile"),
        format!("FROM {BUSYBOX_BASE}\nWORKDIR /srv\nCOPY hello.txt ./\nUSER 1001:1001\nEXPOSE 9000\nCMD [\"cat\", \"hello.txt\"]\n"),
    )
    .unwrap();
    fs::write(own.join("hello.txt"), "hello").unwrap();
    v.push(("dockerfile", own, Vec::new()));
    v
}

/// `image-builder build` of `dir` as project `project`; returns the image reference.
fn build(dir: &Path, project: &str, extra: &[String], via_frontend: bool) -> (String, String) {
    let mut args: Vec<String> = vec![
        "build".into(),
        "--project".into(),
        project.into(),
        "--force".into(),
        "-o".into(),
        "json".into(),
    ];
    if via_frontend {
        args.extend(["--via".into(), "frontend".into()]);
    }
    args.extend(extra.iter().cloned());
    args.push(dir.to_string_lossy().into_owned());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = ib(&argv);
    assert!(o.status.success(), "build {}: {}", dir.display(), text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    (
        v[0]["image"].as_str().unwrap().to_string(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// What the parity test compares of an image's configuration.
fn config_facts(image: &str) -> BTreeMap<&'static str, serde_json::Value> {
    let o = docker_out(&["image", "inspect", image, "--format", "{{json .Config}}"]);
    assert!(o.status.success(), "{}", text(&o));
    let c: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut m = BTreeMap::new();
    for k in [
        "User",
        "Env",
        "Entrypoint",
        "Cmd",
        "ExposedPorts",
        "Labels",
        "WorkingDir",
    ] {
        m.insert(k, c.get(k).cloned().unwrap_or(serde_json::Value::Null));
    }
    m
}

/// Every path of the image's file system with its type, mode, owner, size and link.
fn file_tree(image: &str, cleanup: &mut Cleanup) -> BTreeMap<String, String> {
    let name = unique("tree");
    let o = docker_out(&["create", "--name", &name, image, "/nonexistent"]);
    assert!(o.status.success(), "{}", text(&o));
    cleanup.containers.push(name.clone());
    let o = docker_out(&["export", &name]);
    assert!(o.status.success(), "{}", text(&o));
    let mut a = tar::Archive::new(&o.stdout[..]);
    let mut tree = BTreeMap::new();
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        tree.insert(
            path.trim_end_matches('/').to_string(),
            format!(
                "{:?} {:o} {}:{} {} {:?}",
                h.entry_type(),
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                h.size().unwrap(),
                h.link_name()
                    .unwrap()
                    .map(|l| l.to_string_lossy().into_owned())
            ),
        );
    }
    tree
}

#[test]
fn frontend_image_holds_only_the_executable_and_its_libraries_and_runs_as_1001() {
    let reference = format!("ib-test/frontend-image:{}", unique("fi"));
    let mut c = Cleanup::with_images(vec![reference.clone()]);
    let o = ib(&["frontend-image", "--tag", &reference]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), reference);
    let facts = config_facts(&reference);
    assert_eq!(facts["User"], "1001:1001");
    assert_eq!(
        facts["Entrypoint"],
        serde_json::json!(["/image-builder", "frontend"])
    );
    let tree = file_tree(&reference, &mut c);
    // Files the engine adds to every container are not the image's.
    let engine_made = [
        ".dockerenv",
        "etc/hostname",
        "etc/hosts",
        "etc/resolv.conf",
        "etc/mtab",
    ];
    let mut paths: Vec<&String> = tree
        .keys()
        .filter(|p| !tree[*p].starts_with("Directory") && !engine_made.contains(&p.as_str()))
        .filter(|p| !p.starts_with("dev/") && !p.starts_with("proc/") && !p.starts_with("sys/"))
        .collect();
    paths.sort();
    assert!(paths.iter().any(|p| *p == "image-builder"), "{paths:?}");
    assert!(paths.iter().any(|p| p.contains("libc.so")), "{paths:?}");
    assert!(paths.iter().any(|p| p.contains("ld-linux")), "{paths:?}");
    for p in &paths {
        assert!(
            *p == "image-builder" || p.contains(".so"),
            "only the executable and shared libraries: {p}"
        );
    }
    // Started by hand (no BuildKit session), it says what it is for, as user 1001.
    let o = docker_out(&["run", "--rm", "--network", "none", &reference]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("run by BuildKit"), "{}", text(&o));
    // Unchanged: found again, not rebuilt.
    let o = ib(&["frontend-image", "--tag", &reference]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("exists"),
        "{}",
        text(&o)
    );
}

#[test]
fn every_stack_builds_the_same_image_through_the_frontend_as_from_the_dockerfile() {
    ensure_go_base();
    let frontend = frontend_image();
    let t = tempfile::tempdir().unwrap();
    let mut c = Cleanup::default();
    for (name, dir, bases) in fixtures(t.path()) {
        let df_project = unique("df");
        let fe_project = unique("fe");
        let (df, _) = build(&dir, &df_project, &bases, false);
        c.images.push(df.clone());
        let (fe, log) = build(&dir, &fe_project, &bases, true);
        c.images.push(fe.clone());
        assert!(
            log.contains(&format!("docker-image://docker.io/{frontend}")),
            "{name}: built through the frontend image: {log}"
        );
        let (a, b) = (config_facts(&df), config_facts(&fe));
        assert_eq!(a, b, "{name}: configuration differs");
        assert_eq!(b["User"], "1001:1001", "{name}");
        assert!(
            b["Labels"][DIGEST_LABEL]
                .as_str()
                .unwrap()
                .starts_with("sha256:"),
            "{name}"
        );
        if name == "backend-ca" {
            let certs = fs::read_to_string(CA_BUNDLE)
                .unwrap()
                .matches("BEGIN CERTIFICATE")
                .count();
            for image in [&df, &fe] {
                let recorded = sh_in(image, "cat /opt/venv/lib/index.txt");
                assert!(
                    recorded.contains(&format!("ca={certs}\n")),
                    "{image}: {recorded}"
                );
            }
        }
        let (ta, tb) = (file_tree(&df, &mut c), file_tree(&fe, &mut c));
        assert!(!ta.is_empty(), "{name}");
        assert_eq!(ta, tb, "{name}: file trees differ");
        assert!(
            !tb.keys()
                .any(|p| p.contains(".env") || p.contains(".image-builder")),
            "{name}: nothing secret or synthetic: {:?}",
            tb.keys()
        );
    }
}

/// Build `dir` through the Engine API (`POST /build` with BuildKit, the context as a
/// tar, a session as BuildKit wants) with `dockerfile` as the build file, the way
/// `docker build -f` sends it; returns the error text on failure.
fn api_build(dir: &Path, dockerfile: &str, tag: &str) -> Result<(), String> {
    use futures::StreamExt;
    use image_builder::{context, digest};
    let matcher = context::load_matcher(dir, &[]).unwrap();
    let entries = context::walk(dir, &matcher).unwrap();
    let hashed = digest::hash_entries(dir, &entries, &digest::HashCache::disabled()).unwrap();
    let tar = context::write_tar(dir, &hashed, &[], Vec::new()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let engine = image_builder::build::Engine::connect().await.unwrap();
        let opts = bollard::query_parameters::BuildImageOptions {
            dockerfile: dockerfile.into(),
            t: Some(tag.into()),
            rm: true,
            forcerm: true,
            version: bollard::query_parameters::BuilderVersion::BuilderBuildKit,
            session: Some(unique("session")),
            ..Default::default()
        };
        let mut s = engine
            .docker
            .build_image(opts, None, Some(bollard::body_full(tar.into())));
        // The stream stays open with the session after an error: stop at the first.
        while let Some(item) = s.next().await {
            match item {
                Ok(info) => {
                    if let Some(m) = info.error_detail.and_then(|d| d.message) {
                        return Err(m);
                    }
                }
                Err(bollard::errors::Error::DockerStreamError { error }) => return Err(error),
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(())
    })
}

#[test]
fn a_build_file_passed_as_the_dockerfile_builds_the_app_with_the_cli_digest() {
    ensure_base_images();
    let frontend = frontend_image();
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("backend");
    copy_dir(&examples().join("backend"), &dir);
    fs::write(
        dir.join("todo.build.yaml"),
        format!(
            "# syntax={frontend}\nname: backend\nbase_images:\n  builder: {PYTHON_BASE}\n  runtime: {PYTHON_BASE}\n"
        ),
    )
    .unwrap();
    let tag = format!("{}:1", unique("api"));
    let mut c = Cleanup::with_images(vec![tag.clone()]);
    api_build(&dir, "todo.build.yaml", &tag).unwrap();
    // The frontend's own input digest is the CLI's for the same directory.
    let p = plan::plan(
        &ComponentSpec::new(&dir),
        &PlanOptions {
            builder: Some(BuilderKind::BuildKit),
            base_images: BaseImages {
                builder: Some(PYTHON_BASE.into()),
                runtime: Some(PYTHON_BASE.into()),
            },
            use_cache: false,
        },
    )
    .unwrap();
    let facts = config_facts(&tag);
    assert_eq!(
        facts["Labels"][DIGEST_LABEL],
        format!("sha256:{}", p.digest)
    );
    let (uid, body) = run_and_get(&tag, 8000, "/health", &mut c);
    assert_eq!(uid, "1001");
    assert!(body.contains("ok"), "{body}");
}

#[test]
fn an_unknown_stack_comes_back_through_buildkit_with_our_message() {
    let frontend = frontend_image();
    let t = tempfile::tempdir().unwrap();
    fs::write(t.path().join("README.md"), "nothing to build").unwrap();
    fs::write(
        t.path().join("todo.build.yaml"),
        format!("# syntax={frontend}\n"),
    )
    .unwrap();
    let tag = format!("{}:1", unique("unknown"));
    let _c = Cleanup::with_images(vec![tag.clone()]);
    let err = api_build(t.path(), "todo.build.yaml", &tag).unwrap_err();
    assert!(
        err.contains("cannot tell which stack the build context uses"),
        "{err}"
    );
    assert!(
        err.contains("fix: add one of those, or set `stack:`"),
        "{err}"
    );

    // A misspelt setting is named, too.
    fs::write(
        t.path().join("todo.build.yaml"),
        format!("# syntax={frontend}\nprot: 80\n"),
    )
    .unwrap();
    let err = api_build(t.path(), "todo.build.yaml", &tag).unwrap_err();
    assert!(err.contains("prot"), "{err}");
    assert!(!image_exists(&tag));
}

#[test]
fn a_second_frontend_build_of_an_unchanged_app_comes_from_the_cache() {
    ensure_base_images();
    frontend_image();
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("frontend");
    copy_dir(&examples().join("frontend"), &dir);
    let bases = vec![
        "--base-image".to_string(),
        format!("builder={NODE_BASE}"),
        "--base-image".to_string(),
        format!("runtime={NODE_BASE}"),
    ];
    let project = unique("cache");
    let (first, _) = build(&dir, &project, &bases, true);
    let _c = Cleanup::with_images(vec![first.clone()]);
    let (second, log) = build(&dir, &project, &bases, true);
    assert_eq!(first, second);
    let steps: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("RUN ") || l.contains("COPY "))
        .collect();
    assert!(steps.len() >= 5, "{log}");
    for s in &steps {
        assert!(s.ends_with("(cached)"), "step ran again: {s}\n{log}");
    }
    // A change to the app is built, not served from the cache. The change is
    // new to this engine too: the same text written by an earlier run of this
    // test would be in BuildKit's cache already.
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    fs::write(
        dir.join("app/page.tsx"),
        format!(
            "// {nonce} {}\nexport default function P() {{ return null }}\n",
            std::process::id()
        ),
    )
    .unwrap();
    let (third, log) = build(&dir, &project, &bases, true);
    let _c3 = Cleanup::with_images(vec![third.clone()]);
    assert_ne!(third, first);
    assert!(
        log.lines()
            .any(|l| l.contains("RUN npm run build") && !l.ends_with("(cached)")),
        "{log}"
    );
}

#[test]
fn via_frontend_says_clearly_when_buildkit_is_off() {
    let t = tempfile::tempdir().unwrap();
    fs::copy("/bin/busybox", t.path().join("server")).unwrap();
    let o = Command::new(bin())
        .args(["build", "--via", "frontend"])
        .arg(t.path())
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("needs BuildKit"), "{e}");
    assert!(e.contains("DOCKER_BUILDKIT=0"), "{e}");
    assert!(e.contains("fix:"), "{e}");

    let o = Command::new(bin())
        .args(["build", "--via", "frontend", "--builder", "classic"])
        .arg(t.path())
        .env_remove("DOCKER_BUILDKIT")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("`--builder classic` chooses"),
        "{}",
        text(&o)
    );
}

#[test]
fn the_frontend_started_by_hand_says_what_it_is_for() {
    let o = Command::new(bin())
        .arg("frontend")
        .env_remove("BUILDKIT_SESSION_ID")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("run by BuildKit"), "{e}");
    assert!(e.contains("frontend-image"), "{e}");
    assert!(o.stdout.is_empty(), "stdout is BuildKit's channel");
}
