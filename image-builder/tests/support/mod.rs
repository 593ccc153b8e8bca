//! Test support: base images made locally (no registry can be reached), unique
//! names, cleanup.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const NODE_BASE: &str = "ib-test/node:20-alpine";
pub const PYTHON_BASE: &str = "ib-test/python:3.11-slim";
pub const BUSYBOX_BASE: &str = "ib-test/busybox:1";

const NPM: &str = r#"#!/bin/sh
# stand-in npm for image-builder tests
case "$1" in
  ci|install) mkdir -p node_modules/.bin && echo "$*" > node_modules/.installed ;;
  prune) echo pruned > node_modules/.pruned ;;
  cache) ;;
  run)
    if [ "$2" = build ]; then
      if [ -f fail-build ]; then echo "Type error: Property 'x' does not exist" >&2; exit 1; fi
      mkdir -p .next/standalone/www .next/static
      echo 'console.log("standalone")' > .next/standalone/server.js
      echo '{"status":"ok"}' > .next/standalone/www/health
      echo '{"status":"ready"}' > .next/standalone/www/ready
      echo 'chunk' > .next/static/chunk.js
    fi ;;
  start) [ -d .next/standalone ] && cd .next/standalone; exec node server.js ;;
  *) echo "npm stand-in: unsupported: $*" >&2; exit 1 ;;
esac
"#;

const NODE: &str = r#"#!/bin/sh
# stand-in node: answers on $PORT from ./www
dir="$PWD/www"; [ -d "$dir" ] || dir="$PWD"
exec /bin/busybox httpd -f -p "0.0.0.0:${PORT:-3000}" -h "$dir"
"#;

const PYTHON: &str = r#"#!/bin/sh
# stand-in python: `-m venv DIR` makes a venv with the stand-in pip
if [ "$1" = -m ] && [ "$2" = venv ]; then
  shift 2; pip=1; [ "$1" = --without-pip ] && { pip=; shift; }
  mkdir -p "$1/bin" "$1/lib"
  [ -n "$pip" ] && cp /usr/local/bin/pip "$1/bin/pip"
  ln -s /usr/local/bin/python "$1/bin/python"
  exit 0
fi
exec /usr/local/bin/uvicorn app --port "${PORT:-8000}"
"#;

const PIP: &str = r#"#!/bin/sh
# stand-in pip: "installs" requirements into the venv next to it (or --python's)
venv="$(dirname "$(dirname "$0")")"
[ "$1" = --python ] && { venv="$(dirname "$(dirname "$2")")"; shift 2; }
[ "$1" = install ] || { echo "pip stand-in: unsupported: $*" >&2; exit 1; }
req=""
while [ $# -gt 0 ]; do [ "$1" = -r ] && req="$2"; shift; done
if [ -n "$req" ] && grep -q nonexistent-package "$req"; then
  echo "ERROR: Could not find a version that satisfies the requirement nonexistent-package" >&2
  echo "ERROR: No matching distribution found for nonexistent-package" >&2
  exit 1
fi
mkdir -p "$venv/lib"; [ -n "$req" ] && cp "$req" "$venv/lib/installed.txt"
# What a build argument set, so that builds can be compared.
echo "index=${PIP_INDEX_URL:-}" > "$venv/lib/index.txt"
# How many certificates the CA bundle it was given holds (--ca-cert).
echo "ca=$(grep -c 'BEGIN CERTIFICATE' "${PIP_CERT:-/dev/null}")" >> "$venv/lib/index.txt"
cp /usr/local/bin/uvicorn "$venv/bin/uvicorn"
exit 0
"#;

const UVICORN: &str = r#"#!/bin/sh
# stand-in uvicorn: answers /health and /ready on --port
port=8000
while [ $# -gt 0 ]; do [ "$1" = --port ] && port="$2"; shift; done
mkdir -p /tmp/www
echo '{"status":"ok"}' > /tmp/www/health
echo '{"status":"ready"}' > /tmp/www/ready
exec /bin/busybox httpd -f -p "0.0.0.0:$port" -h /tmp/www
"#;

const APPLETS: &[&str] = &[
    "sh", "ls", "cat", "mkdir", "cp", "echo", "httpd", "wget", "env", "id", "sleep", "chmod", "rm",
    "test", "[", "printf", "sed", "mv", "touch", "grep", "dirname", "ln", "find", "true", "false",
    "stat", "du", "head", "tail",
];

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI runs")
}

/// The label holding the hash a test base was made from.
pub const BASE_KEY_LABEL: &str = "dev.kubectl-todo.test-base-key";

pub fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The value of label `label` on image `r`, `None` when the image does not exist.
pub fn label_of(r: &str, label: &str) -> Option<String> {
    let o = docker(&[
        "image",
        "inspect",
        "-f",
        &format!("{{{{index .Config.Labels \"{label}\"}}}}"),
        r,
    ]);
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

pub fn image_exists(r: &str) -> bool {
    docker(&["image", "inspect", r]).status.success()
}

/// Make (once, across processes) the busybox-based stand-ins for the default base
/// images. Needs Debian's busybox-static (`/bin/busybox`).
pub fn ensure_base_images() {
    let lock_path = std::env::temp_dir().join("image-builder-test-bases.lock");
    let lock = fs::File::create(&lock_path).expect("lock file");
    lock.lock().expect("flock");
    for (name, with_tools) in [
        (NODE_BASE, true),
        (PYTHON_BASE, true),
        (BUSYBOX_BASE, false),
    ] {
        let tar = rootfs_tar(with_tools);
        // Keyed by the content, so a changed stand-in replaces a stale image.
        let key = hex_sha256(&tar);
        if label_of(name, BASE_KEY_LABEL).as_deref() == Some(key.as_str()) {
            continue;
        }
        let mut child = Command::new("docker")
            .args([
                "import",
                "--change",
                "ENV PATH=/usr/local/bin:/usr/bin:/bin",
                "--change",
                "LABEL dev.kubectl-todo.test-base=1",
                "--change",
                &format!("LABEL {BASE_KEY_LABEL}={key}"),
                "-",
                name,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("docker import");
        child.stdin.take().unwrap().write_all(&tar).unwrap();
        assert!(child.wait().unwrap().success(), "docker import {name}");
    }
    drop(lock);
}

fn busybox_path() -> PathBuf {
    for p in ["/bin/busybox", "/usr/bin/busybox"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!(
        "busybox not found: install Debian's busybox-static (`apt-get install -y busybox-static`)"
    );
}

fn rootfs_tar(with_tools: bool) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let dir = |b: &mut tar::Builder<Vec<u8>>, p: &str, mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_size(0);
        b.append_data(&mut h, p, std::io::empty()).unwrap();
    };
    for d in [
        "bin",
        "usr",
        "usr/bin",
        "usr/local",
        "usr/local/bin",
        "etc",
        "opt",
        "app",
        "root",
    ] {
        dir(&mut b, d, 0o755);
    }
    dir(&mut b, "tmp", 0o1777);
    let bb = fs::read(busybox_path()).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o755);
    h.set_size(bb.len() as u64);
    b.append_data(&mut h, "bin/busybox", &bb[..]).unwrap();
    for a in APPLETS {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        b.append_link(&mut h, format!("bin/{a}"), "busybox")
            .unwrap();
    }
    let file = |b: &mut tar::Builder<Vec<u8>>, p: &str, text: &str, mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_mode(mode);
        h.set_size(text.len() as u64);
        b.append_data(&mut h, p, text.as_bytes()).unwrap();
    };
    file(
        &mut b,
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\n",
        0o644,
    );
    file(&mut b, "etc/group", "root:x:0:\n", 0o644);
    if with_tools {
        for (n, t) in [
            ("npm", NPM),
            ("node", NODE),
            ("python", PYTHON),
            ("pip", PIP),
            ("uvicorn", UVICORN),
        ] {
            file(&mut b, &format!("usr/local/bin/{n}"), t, 0o755);
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        b.append_link(&mut h, "usr/local/bin/python3", "python")
            .unwrap();
    }
    b.into_inner().unwrap()
}

/// A unique lowercase name for this test's images.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "ib-test-{prefix}-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        t % 100_000
    )
}

/// Removes listed images (and containers) when dropped.
#[derive(Default)]
pub struct Cleanup {
    pub images: Vec<String>,
    pub containers: Vec<String>,
}

impl Cleanup {
    pub fn with_images(images: Vec<String>) -> Self {
        Cleanup {
            images,
            containers: Vec::new(),
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = docker(&["rm", "-f", c]);
        }
        // --no-prune: the parent layers may be the cache of a build in another test.
        for i in &self.images {
            let _ = docker(&["rmi", "-f", "--no-prune", i]);
        }
    }
}

/// Copy a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            fs::copy(e.path(), &dst).unwrap();
        }
    }
}

pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/todo-app")
}

/// Run `image`, then fetch `path` on `port` from inside the container (loopback)
/// with busybox's wget.
pub fn run_and_get(image: &str, port: u16, path: &str, cleanup: &mut Cleanup) -> (String, String) {
    run_and_fetch(image, port, path, cleanup, |url| {
        vec!["wget".into(), "-qO-".into(), url.into()]
    })
}

/// Run `image` (as its own user), then fetch `path` on `port` from inside the
/// container with the command `fetch` makes of the URL, until it answers; returns
/// (uid, body).
pub fn run_and_fetch(
    image: &str,
    port: u16,
    path: &str,
    cleanup: &mut Cleanup,
    fetch: impl Fn(&str) -> Vec<String>,
) -> (String, String) {
    let name = unique("run");
    let out = docker(&["run", "-d", "--name", &name, "--network", "none", image]);
    assert!(
        out.status.success(),
        "docker run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    cleanup.containers.push(name.clone());
    let user = String::from_utf8_lossy(&docker(&["exec", &name, "id", "-u"]).stdout)
        .trim()
        .to_string();
    let url = format!("http://127.0.0.1:{port}{path}");
    let mut args = vec!["exec".to_string(), name.clone()];
    args.extend(fetch(&url));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    for _ in 0..100 {
        let o = docker(&args);
        if o.status.success() {
            return (user, String::from_utf8_lossy(&o.stdout).trim().to_string());
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let logs = docker(&["logs", &name]);
    panic!(
        "{image} did not answer {url}: {}",
        String::from_utf8_lossy(&logs.stderr)
    );
}

/// A real `python:3.11-slim`-compatible base made from Debian bookworm's packages
/// (its Python is 3.11): python3, venv and pip, with `/usr/local/bin` links as the
/// official image has them, and Debian's CAs only.
pub const DEBIAN_PYTHON_BASE: &str = "ib-test/debian-python:3.11-slim-debian-cas";

const MMDEBSTRAP_ARGS: &[&str] = &[
    "--variant=minbase",
    "--include=python3,python3-venv,python3-pip,ca-certificates",
    "--customize-hook=for n in python python3; do ln -sf /usr/bin/python3 \"$1/usr/local/bin/$n\"; done; ln -sf /usr/bin/pip3 \"$1/usr/local/bin/pip\"",
    // The official image's pip installs system-wide (the naive build the bench compares with).
    "--customize-hook=rm -f \"$1\"/usr/lib/python3*/EXTERNALLY-MANAGED",
    "--customize-hook=rm -rf \"$1\"/var/lib/apt/lists/* \"$1\"/var/cache/apt/* \"$1\"/usr/share/doc/* \"$1\"/usr/share/man/*",
    "bookworm",
    "-",
];

/// The host's CA bundle. PyPI is reached here through a TLS-intercepting proxy
/// whose CA only this bundle holds: builds that download packages pass it with
/// `--ca-cert`, as users behind such a proxy do; the base keeps Debian's CAs.
pub const HOST_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Make (once, across processes; again when the recipe changes)
/// [`DEBIAN_PYTHON_BASE`] with `mmdebstrap` (Debian's mirror must be reachable).
pub fn ensure_debian_python_base() -> &'static str {
    let key = hex_sha256(format!("{MMDEBSTRAP_ARGS:?}").as_bytes());
    let lock_path = std::env::temp_dir().join("image-builder-test-debian-python.lock");
    let lock = fs::File::create(&lock_path).expect("lock file");
    lock.lock().expect("flock");
    if label_of(DEBIAN_PYTHON_BASE, BASE_KEY_LABEL).as_deref() == Some(key.as_str()) {
        return DEBIAN_PYTHON_BASE;
    }
    let mmdebstrap = which::which("mmdebstrap")
        .expect("mmdebstrap not found: `apt-get install -y mmdebstrap` (.ci/run installs it)");
    let mut strap = Command::new(mmdebstrap)
        .args(["--quiet"])
        .args(MMDEBSTRAP_ARGS)
        .stdout(Stdio::piped())
        .spawn()
        .expect("mmdebstrap runs");
    let import = Command::new("docker")
        .args([
            "import",
            "--change",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--change",
            "ENV LANG=C.UTF-8",
            "--change",
            "CMD [\"python3\"]",
            "--change",
            "LABEL dev.kubectl-todo.test-base=1",
            "--change",
            &format!("LABEL {BASE_KEY_LABEL}={key}"),
            "-",
            DEBIAN_PYTHON_BASE,
        ])
        .stdin(strap.stdout.take().unwrap())
        .stdout(Stdio::null())
        .status()
        .expect("docker import");
    assert!(strap.wait().unwrap().success(), "mmdebstrap failed");
    assert!(import.success(), "docker import {DEBIAN_PYTHON_BASE}");
    drop(lock);
    DEBIAN_PYTHON_BASE
}

/// The size of image `r` in bytes.
pub fn image_size(r: &str) -> u64 {
    let o = docker(&["image", "inspect", "-f", "{{.Size}}", r]);
    assert!(o.status.success(), "inspect {r}");
    String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
}

/// [`run_and_fetch`] with the image's Python (the Debian base has no wget).
pub fn run_and_get_python(
    image: &str,
    port: u16,
    path: &str,
    cleanup: &mut Cleanup,
) -> (String, String) {
    run_and_fetch(image, port, path, cleanup, |url| {
        vec![
            "python3".into(),
            "-c".into(),
            format!(
                "import urllib.request; print(urllib.request.urlopen('{url}').read().decode())"
            ),
        ]
    })
}

/// `docker run --rm --entrypoint sh IMAGE -c SCRIPT`, its stdout.
pub fn sh_in(image: &str, script: &str) -> String {
    let o = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "sh",
        image,
        "-c",
        script,
    ]);
    String::from_utf8_lossy(&o.stdout).to_string()
}
