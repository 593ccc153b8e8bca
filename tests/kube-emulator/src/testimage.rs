//! Test images without a registry: [`busybox_image`] imports a root file
//! system made of the host's static `/bin/busybox` (Debian's
//! `busybox-static`) into the Docker Engine.
//!
//! The image holds `/bin/busybox` with a symlink for every applet (`sh`,
//! `httpd`, `sleep`, `echo`, `cat`, …), `/etc/passwd` and `/etc/group` with
//! `root` (0) and `app` (1001), a writable `/tmp` and `/home/app`. Its
//! configured user is unset, so it runs as root unless the pod says
//! otherwise (`runAsUser: 1001`). The image still has to be loaded onto
//! the emulator's node (`kubelet::load_image` or `kube-emulator load`).

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bollard::Docker;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures::StreamExt;

const BUSYBOX: &str = "/bin/busybox";
const REPOSITORY: &str = "kube-emulator/busybox";

/// One tar entry: path, mode, kind and content.
enum Entry {
    Dir(&'static str, u32),
    File(String, u32, Vec<u8>),
    Link(String, &'static str),
}

fn octal(field: &mut [u8], value: u64) {
    let digits = format!("{value:0width$o}", width = field.len() - 1);
    field[..digits.len()].copy_from_slice(digits.as_bytes());
}

/// A ustar header; owners are root except under `/home/app`.
fn header(
    path: &str,
    mode: u32,
    size: u64,
    kind: u8,
    link: &str,
    owner: u64,
    mtime: u64,
) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..path.len()].copy_from_slice(path.as_bytes());
    octal(&mut h[100..108], mode as u64);
    octal(&mut h[108..116], owner);
    octal(&mut h[116..124], owner);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], mtime);
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|b| *b as u64).sum();
    let digits = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(digits.as_bytes());
    h
}

fn tar(entries: &[Entry]) -> Vec<u8> {
    let mtime = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut out = Vec::new();
    for e in entries {
        match e {
            Entry::Dir(path, mode) => {
                let owner = if path.starts_with("home/app") {
                    1001
                } else {
                    0
                };
                out.extend_from_slice(&header(path, *mode, 0, b'5', "", owner, mtime));
            }
            Entry::Link(path, target) => {
                out.extend_from_slice(&header(path, 0o777, 0, b'2', target, 0, mtime))
            }
            Entry::File(path, mode, data) => {
                out.extend_from_slice(&header(path, *mode, data.len() as u64, b'0', "", 0, mtime));
                out.extend_from_slice(data);
                out.resize(out.len().next_multiple_of(512), 0);
            }
        }
    }
    out.resize(out.len() + 1024, 0);
    out
}

fn rootfs() -> anyhow::Result<Vec<u8>> {
    let busybox =
        std::fs::read(BUSYBOX).with_context(|| format!("{BUSYBOX} (install busybox-static)"))?;
    let list = std::process::Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .context("busybox --list")?;
    let mut entries = vec![
        Entry::Dir("bin/", 0o755),
        Entry::Dir("etc/", 0o755),
        Entry::Dir("tmp/", 0o1777),
        Entry::Dir("home/", 0o755),
        Entry::Dir("home/app/", 0o755),
        Entry::Dir("root/", 0o700),
        Entry::Dir("var/", 0o755),
        Entry::Dir("www/", 0o755),
        Entry::File("bin/busybox".into(), 0o755, busybox),
        Entry::File(
            "etc/passwd".into(),
            0o644,
            b"root:x:0:0:root:/root:/bin/sh\napp:x:1001:1001:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n".to_vec(),
        ),
        Entry::File("etc/group".into(), 0o644, b"root:x:0:\napp:x:1001:\nnogroup:x:65534:\n".to_vec()),
    ];
    for applet in String::from_utf8_lossy(&list.stdout).split_whitespace() {
        if applet != "busybox" {
            entries.push(Entry::Link(format!("bin/{applet}"), "busybox"));
        }
    }
    Ok(tar(&entries))
}

/// Builds `kube-emulator/busybox:<tag>` unless the engine has it; returns
/// the reference. Concurrent callers (tests in parallel, several
/// processes) may both import: the result is the same image content.
pub async fn busybox_image(tag: &str) -> anyhow::Result<String> {
    // Tests of one process share the import instead of racing to make dangling copies.
    static IMPORTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one_at_a_time = IMPORTING.lock().await;
    let reference = format!("{REPOSITORY}:{tag}");
    let docker = Docker::connect_with_local_defaults()?
        .negotiate_version()
        .await?;
    if docker.inspect_image(&reference).await.is_ok() {
        return Ok(reference);
    }
    let opts = CreateImageOptionsBuilder::default()
        .from_src("-")
        .repo(REPOSITORY)
        .tag(tag)
        .changes(vec!["CMD [\"sh\"]".into()])
        .build();
    let body = bollard::body_full(rootfs()?.into());
    let mut progress = docker.create_image(Some(opts), Some(body), None);
    while let Some(step) = progress.next().await {
        step.context("importing the busybox image")?;
    }
    if docker.inspect_image(&reference).await.is_err() {
        bail!("the engine did not keep {reference} after importing it");
    }
    Ok(reference)
}
