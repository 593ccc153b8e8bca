//! Stand-ins for `minikube`, `kind` and `k3d`, which cannot run here: small
//! scripts that record their arguments and, for the image-loading commands,
//! put the image on the emulated node, so that a loader that shells out to
//! the real tools is tested end to end.
//!
//! Each call appends its arguments as one line to `<dir>/<tool>.calls`. The
//! scripts speak to the emulator with bash's `/dev/tcp`, so they need no
//! other program, and only work with an emulator serving plain HTTP.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The tools [`install`] writes.
pub const TOOLS: &[&str] = &["minikube", "kind", "k3d"];

fn script(tool: &str, host: &str, port: u16, calls: &Path) -> String {
    // Which argument holds the image, per tool: `minikube image load IMG`,
    // `kind load docker-image IMG`, `k3d image import IMG`.
    let (load_test, version) = match tool {
        "minikube" => (
            r#"[ "$1" = image ] && [ "$2" = load ]"#,
            "minikube version: v1.34.0",
        ),
        "kind" => (
            r#"[ "$1" = load ] && [ "$2" = docker-image ]"#,
            "kind v0.24.0 go1.22.6 linux/amd64",
        ),
        _ => (
            r#"[ "$1" = image ] && [ "$2" = import ]"#,
            "k3d version v5.7.4",
        ),
    };
    format!(
        r#"#!/usr/bin/env bash
# Stand-in for {tool}, written by kube-emulator's tests.
set -euo pipefail
printf '%s\n' "$*" >> '{calls}'
if [ "${{1:-}}" = version ] || [ "${{1:-}}" = --version ]; then
    echo '{version}'
    exit 0
fi
if [ "{tool}" = minikube ] && [ "${{1:-}}" = status ]; then
    printf 'minikube\ntype: Control Plane\nhost: Running\nkubelet: Running\napiserver: Running\nkubeconfig: Configured\n'
    exit 0
fi
if [ "{tool}" = minikube ] && [ "${{1:-}}" = ip ]; then
    echo 127.0.0.1
    exit 0
fi
if {load_test}; then
    shift 2
    images=()
    skip=0
    for arg in "$@"; do
        if [ "$skip" = 1 ]; then skip=0; continue; fi
        case "$arg" in
            # Boolean flags of the three tools; every other flag takes the next argument.
            --overwrite|--daemon|--remote|--pull|--keep-tarball|--keep-tools|-k|-t|--*=*) ;;
            -*) skip=1 ;;
            *) images+=("\"$arg\"") ;;
        esac
    done
    body="{{\"images\":[$(IFS=,; echo "${{images[*]}}")]}}"
    exec 3<>/dev/tcp/{host}/{port}
    printf 'POST /emulator/v1/images HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' "${{#body}}" "$body" >&3
    response=$(cat <&3)
    case "$response" in
        "HTTP/1.1 200"*) exit 0 ;;
        *) echo "{tool}: loading failed: ${{response##*$'\r\n\r\n'}}" >&2; exit 1 ;;
    esac
fi
exit 0
"#,
        calls = calls.display()
    )
}

/// Writes the stand-ins into `dir` for the emulator at `url` (`http://127.0.0.1:PORT`)
/// and returns `dir`, to be put first on `PATH`.
pub fn install(dir: &Path, url: &str) -> io::Result<PathBuf> {
    let authority = url.strip_prefix("http://").ok_or_else(|| {
        io::Error::other(format!("stand-ins need a plain-HTTP emulator, not {url}"))
    })?;
    let (host, port) = authority
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
        .ok_or_else(|| io::Error::other(format!("{url} has no port")))?;
    std::fs::create_dir_all(dir)?;
    for tool in TOOLS {
        let path = dir.join(tool);
        std::fs::write(
            &path,
            script(tool, host, port, &dir.join(format!("{tool}.calls"))),
        )?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(dir.to_path_buf())
}

/// The argument lines a stand-in recorded, oldest first.
pub fn calls(dir: &Path, tool: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(format!("{tool}.calls")))
        .map(|s| s.lines().map(String::from).collect())
        .unwrap_or_default()
}

/// `PATH` with `dir` in front.
pub fn path_with(dir: &Path) -> std::ffi::OsString {
    let mut paths = vec![dir.to_path_buf()];
    if let Some(existing) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&existing));
    }
    std::env::join_paths(paths).unwrap_or_default()
}
