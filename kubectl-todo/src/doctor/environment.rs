//! The machine: the tools on PATH and their versions, the Docker Engine and
//! its free space, and kubectl's version against the server's.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::Ctx;
use super::catalogue as cat;
use super::cluster;
use super::output::Finding;

/// The findings, and kubectl's client version for the skew check.
pub async fn check(ctx: &Ctx) -> (Vec<Finding>, Option<String>) {
    let tool = cluster::target(&ctx.global)
        .ok()
        .and_then(|t| image_builder::load::Loader::of_context(&t.context))
        .map(|local| local.kind);
    let kubectl = async {
        match which::which("kubectl") {
            Ok(path) => {
                let out = run(ctx, &path, &["version", "--client", "-o", "json"]).await;
                let version = out
                    .as_deref()
                    .and_then(|o| serde_json::from_str::<serde_json::Value>(o).ok())
                    .and_then(|v| {
                        v["clientVersion"]["gitVersion"]
                            .as_str()
                            .map(str::to_string)
                    });
                let shown = version.clone().unwrap_or_else(|| "version unknown".into());
                (
                    Finding::ok(
                        &cat::KUBECTL,
                        format!("kubectl {shown} ({})", path.display()),
                    ),
                    version,
                )
            }
            Err(_) => (
                Finding::fail(
                    &cat::KUBECTL,
                    "kubectl is not on PATH",
                    "install kubectl: https://kubernetes.io/docs/tasks/tools/ (then `kubectl version --client`)",
                ),
                None,
            ),
        }
    };
    let docker_cli = version_of(ctx, "docker", &["--version"], |path, v| {
        Finding::ok(&cat::DOCKER_CLI, format!("{v} ({})", path.display()))
    });
    let cluster_tool = async {
        let tool = tool?;
        let found = version_of(ctx, tool.tool(), tool.version_args(), |path, v| {
            Finding::ok(
                &cat::CLUSTER_TOOL,
                format!("{} {v} ({})", tool.tool(), path.display()),
            )
        })
        .await;
        Some(found.unwrap_or_else(|| {
            Finding::fail(
                &cat::CLUSTER_TOOL,
                format!("the context needs {} and it is not on PATH", tool.tool()),
                format!("install it: {}", tool.install_url()),
            )
        }))
    };
    let helm = version_of(ctx, "helm", &["version", "--short"], |path, v| {
        Finding::ok(
            &cat::HELM,
            format!("helm {v} ({}, optional)", path.display()),
        )
    });
    let engine = engine(ctx);
    let ((kubectl, client_version), docker_cli, cluster_tool, helm, engine) =
        futures::join!(kubectl, docker_cli, cluster_tool, helm, engine);
    let docker_cli = docker_cli.unwrap_or_else(|| {
        Finding::warn(
            &cat::DOCKER_CLI,
            "the docker CLI is not on PATH (kubectl-todo uses the engine's API, so only a warning)",
            "install it: https://docs.docker.com/engine/install/ (then `docker --version`)",
        )
    });
    let helm = helm.unwrap_or_else(|| Finding::ok(&cat::HELM, "helm is not installed (optional)"));
    let mut findings = vec![kubectl, docker_cli];
    findings.extend(cluster_tool);
    findings.push(helm);
    findings.extend(engine);
    (findings, client_version)
}

/// `Some(finding)` when `tool` is on PATH, with the first line its version command prints.
async fn version_of(
    ctx: &Ctx,
    tool: &str,
    args: &[&str],
    found: impl FnOnce(&Path, &str) -> Finding,
) -> Option<Finding> {
    let path = which::which(tool).ok()?;
    let out = run(ctx, &path, args).await;
    let line = out
        .as_deref()
        .and_then(|o| o.lines().next())
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .unwrap_or("(version unknown)")
        .to_string();
    Some(found(&path, &line))
}

async fn run(ctx: &Ctx, path: &PathBuf, args: &[&str]) -> Option<String> {
    let child = tokio::process::Command::new(path)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(ctx.timeout, child).await.ok()?.ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn engine(ctx: &Ctx) -> Vec<Finding> {
    let engine = match ctx.engine().await {
        Ok(engine) => engine,
        Err(e) => {
            let reason = match e {
                image_builder::Error::Engine { reason, .. } => reason.clone(),
                other => other.problem(),
            };
            let why = if reason.to_ascii_lowercase().contains("permission denied") {
                "the socket exists but this user may not open it"
            } else {
                "no engine answers on the socket"
            };
            return vec![Finding::fail(
                &cat::DOCKER_ENGINE,
                format!(
                    "cannot reach the Docker Engine at {}: {why} ({reason})",
                    docker_host()
                ),
                e.fix(),
            )];
        }
    };
    let info = tokio::time::timeout(ctx.timeout, engine.docker.info()).await;
    let root = match info {
        Ok(Ok(info)) => info.docker_root_dir,
        _ => None,
    };
    let mut findings = vec![Finding::ok(
        &cat::DOCKER_ENGINE,
        format!(
            "Docker Engine {} at {} ({} builder)",
            engine.version,
            docker_host(),
            match engine.builder {
                image_builder::plan::BuilderKind::BuildKit => "BuildKit",
                image_builder::plan::BuilderKind::Classic => "classic",
            }
        ),
    )];
    findings.push(disk(root.as_deref(), engine.remote));
    findings
}

fn docker_host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

const GIB: u64 = 1 << 30;

fn disk(root: Option<&str>, remote: bool) -> Finding {
    let Some(root) = root else {
        return Finding::unknown(
            &cat::DOCKER_DISK,
            "the engine did not say where its data root is",
            "check `docker info --format '{{.DockerRootDir}}'` and `df -h` there",
        );
    };
    let free = if remote {
        None
    } else {
        free_bytes(Path::new(root))
    };
    let Some(free) = free else {
        return Finding::unknown(
            &cat::DOCKER_DISK,
            format!(
                "cannot measure free space under {root} (the engine runs in a VM or on another machine)"
            ),
            "check `docker system df` and the free space inside the engine's machine",
        );
    };
    let message = format!("{:.1} GiB free under {root}", free as f64 / GIB as f64);
    let fix = "free space with `docker system prune` (`docker system prune --all` removes unused images too)";
    match free {
        f if f < 2 * GIB => Finding::fail(&cat::DOCKER_DISK, message, fix),
        f if f < 10 * GIB => Finding::warn(&cat::DOCKER_DISK, message, fix),
        _ => Finding::ok(&cat::DOCKER_DISK, message),
    }
}

/// Space available to unprivileged users on the filesystem holding `path`.
fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is a valid NUL-terminated string and `stat` is written by
    // statvfs before it is read, which happens only when the call succeeds.
    let stat = unsafe {
        if libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) != 0 {
            return None;
        }
        stat.assume_init()
    };
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    Some(stat.f_bavail as u64 * stat.f_frsize as u64)
}

/// kubectl supports servers one minor version either side of its own.
pub fn skew(client: Option<&str>, server: Option<&str>) -> Finding {
    let (Some(client), Some(server)) = (client, server) else {
        return Finding::unknown(
            &cat::VERSION_SKEW,
            format!(
                "cannot compare versions: {} unknown",
                if client.is_none() {
                    "kubectl's"
                } else {
                    "the server's"
                }
            ),
            "check `kubectl version` once kubectl is installed and the API server answers",
        );
    };
    let message = format!("kubectl {client}, server {server}");
    match (minor(client), minor(server)) {
        (Some(c), Some(s)) if c.0 != s.0 || c.1.abs_diff(s.1) > 1 => Finding::warn(
            &cat::VERSION_SKEW,
            format!("{message}: more than one minor version apart"),
            format!(
                "install kubectl v{}.{} (https://kubernetes.io/docs/tasks/tools/)",
                s.0, s.1
            ),
        ),
        (Some(_), Some(_)) => Finding::ok(&cat::VERSION_SKEW, message),
        _ => Finding::unknown(
            &cat::VERSION_SKEW,
            format!("{message}: cannot parse the versions"),
            "compare them yourself with `kubectl version`",
        ),
    }
}

/// `v1.32.4-dispatcher` → (1, 32).
fn minor(version: &str) -> Option<(u64, u64)> {
    let mut parts = version.trim_start_matches('v').split('.');
    let major = parts.next()?.parse().ok()?;
    let minor: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some((major, minor.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_of_more_than_one_minor_is_a_warning() {
        use super::super::output::Status;
        assert_eq!(skew(Some("v1.32.4"), Some("v1.33.0")).status, Status::Ok);
        assert_eq!(
            skew(Some("v1.30.0-x"), Some("v1.33.1")).status,
            Status::Warn
        );
        assert_eq!(skew(None, Some("v1.33.1")).status, Status::Unknown);
        assert_eq!(minor("v1.32.4-dispatcher"), Some((1, 32)));
    }
}
