//! The inotify limits, reached for real: they count per real UID, so a
//! holder process running as a UID of its own uses up that UID's watches
//! (or instances), and `kubectl todo dev` runs as the same UID. The
//! system-wide sysctls stay as they are: other tests run meanwhile.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use kube_emulator::Config;

use crate::up::support::{NS, Setup};

fn limit(name: &str) -> usize {
    std::fs::read_to_string(format!("/proc/sys/fs/inotify/{name}"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A UID no account and no process has, so that no one else's inotify use
/// counts against it; distinct per test of this run.
fn unused_uid(offset: u32) -> u32 {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let taken = |uid: u32| {
        passwd
            .lines()
            .any(|l| l.split(':').nth(2) == Some(&uid.to_string()))
            || std::fs::read_dir("/proc").unwrap().flatten().any(|p| {
                std::fs::read_to_string(p.path().join("status")).is_ok_and(|s| {
                    s.lines().any(|l| {
                        l.starts_with("Uid:")
                            && l.split_whitespace().nth(1) == Some(&uid.to_string())
                    })
                })
            })
    };
    (0..1000)
        .map(|i| 61_000 + (std::process::id() % 1000) * 20 + offset + i * 20_000)
        .find(|uid| !taken(*uid))
        .expect("an unused UID")
}

/// The group that may use the Docker Engine's socket.
fn docker_gid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/var/run/docker.sock")
        .expect("the Docker Engine's socket")
        .gid()
}

/// Runs the rest of the child's start as `uid` (and its own group), with
/// only `groups` as supplementary groups.
///
/// # Safety
/// Only for `pre_exec`: it makes system calls that change the process.
unsafe fn become_user(uid: u32, groups: &[libc::gid_t]) -> std::io::Result<()> {
    // SAFETY: setgroups/setgid/setuid read only the slice, which outlives the calls.
    unsafe {
        if libc::setgroups(groups.len(), groups.as_ptr()) != 0
            || libc::setgid(uid) != 0
            || libc::setuid(uid) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A process running as `uid` that holds `instances` inotify instances,
/// each watching `paths` (the same inodes count again in every instance),
/// for as long as the returned child lives.
fn hold(uid: u32, instances: usize, paths: &[CString]) -> tokio::process::Child {
    let paths = paths.to_vec();
    let mut cmd = tokio::process::Command::new("sleep");
    cmd.arg("600").kill_on_drop(true);
    // SAFETY: the closure makes system calls only, on memory made before the fork.
    unsafe {
        cmd.pre_exec(move || {
            become_user(uid, &[])?;
            for _ in 0..instances {
                // Without IN_CLOEXEC: the instances outlive the exec and `sleep` holds them.
                let fd = libc::inotify_init1(0);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                for path in &paths {
                    if libc::inotify_add_watch(fd, path.as_ptr(), libc::IN_MODIFY) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
            }
            Ok(())
        });
    }
    cmd.spawn()
        .expect("the holder starts with its inotify instances")
}

/// Gives `uid` the test's files (project, kubeconfig, stand-ins) and runs
/// `kubectl todo dev` as it, with the engine's group for the socket.
async fn dev_as(s: &Setup, uid: u32) -> crate::harness::Run {
    chown_tree(s.dir.path(), uid);
    let mut cmd = s.command(&["dev", "--no-logs"]);
    let groups = [docker_gid()];
    cmd.env("HOME", s.dir.path());
    // SAFETY: the closure makes system calls only, on memory made before the fork.
    unsafe {
        cmd.pre_exec(move || become_user(uid, &groups));
    }
    crate::harness::Run::from(cmd.output().await.expect("kubectl-todo runs"))
}

fn chown_tree(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid)).unwrap();
    if path.is_dir() && !path.is_symlink() {
        for entry in std::fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), uid);
        }
    }
}

/// Nothing of the app was applied: no Deployment, no revision.
async fn nothing_applied(s: &Setup) {
    let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(s.client.clone(), NS);
    assert!(
        deployments
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let maps: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(s.client.clone(), NS);
    let names: Vec<String> = maps
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|m| m.metadata.name)
        .filter(|n| n.starts_with("shop"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

fn must_be_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "these tests exhaust a spare UID's inotify limits and so run as root (setuid to that UID): run them as root"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_watch_limit_reached_names_the_sysctl_and_applies_nothing() {
    must_be_root();
    let s = Setup::start(Config::default()).await;
    s.secret("canary-dev-inotify-1").await;
    let uid = unused_uid(0);
    let (watches, instances) = (limit("max_user_watches"), limit("max_user_instances"));
    // All the watches, in all instances but one: `dev` gets its instance,
    // and no watch in it.
    let per_instance = watches.div_ceil(instances - 1);
    let inodes = tempfile::tempdir().unwrap();
    std::fs::set_permissions(inodes.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let paths: Vec<CString> = (0..per_instance)
        .map(|i| {
            let path = inodes.path().join(i.to_string());
            std::fs::write(&path, "").unwrap();
            CString::new(path.as_os_str().as_bytes()).unwrap()
        })
        .collect();
    let mut holders = Vec::new();
    let mut left = watches;
    while left > 0 {
        let n = left.min(per_instance);
        holders.push(hold(uid, 1, &paths[..n]));
        left -= n;
    }
    assert!(holders.len() < instances);

    let run = dev_as(&s, uid).await.failed();
    let app = std::fs::canonicalize(&s.app).unwrap();
    let raised = (watches * 4).max(524_288);
    assert!(
        run.stderr.contains(&format!(
            "error: cannot watch {}: the limit of inotify watches for this user is reached ({watches})",
            app.display()
        )) && run.stderr.contains(&format!(
            "hint: raise the limit: sudo sysctl fs.inotify.max_user_watches={raised} (add the line fs.inotify.max_user_watches={raised} to /etc/sysctl.d/90-inotify.conf to keep it)"
        )),
        "{}",
        run.all()
    );
    assert!(!run.stderr.contains("watching shop"), "{}", run.all());
    nothing_applied(&s).await;
    drop(holders);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_instance_limit_reached_names_the_sysctl_and_applies_nothing() {
    must_be_root();
    let s = Setup::start(Config::default()).await;
    s.secret("canary-dev-inotify-2").await;
    let uid = unused_uid(1);
    let instances = limit("max_user_instances");
    let holder = hold(uid, instances, &[]);

    let run = dev_as(&s, uid).await.failed();
    let raised = (instances * 4).max(1024);
    assert!(
        run.stderr.contains(&format!(
            "error: cannot watch files for changes: the limit of inotify instances for this user is reached ({instances})"
        )) && run.stderr.contains(&format!(
            "hint: raise the limit: sudo sysctl fs.inotify.max_user_instances={raised} (add the line fs.inotify.max_user_instances={raised} to /etc/sysctl.d/90-inotify.conf to keep it)"
        )),
        "{}",
        run.all()
    );
    nothing_applied(&s).await;
    drop(holder);
}
