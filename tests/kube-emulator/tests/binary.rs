//! The `kube-emulator` binary: prints `ready <url>`, writes a kubeconfig that
//! real kubectl uses, loads images with `kube-emulator load`, and removes its
//! containers when it receives SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use kube_emulator::testimage::busybox_image;

fn kubectl(kubeconfig: &Path, args: &[&str]) -> std::process::Output {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(kubeconfig.with_extension("cache"))
        .args(args)
        .output()
        .expect("kubectl runs")
}

fn start(kubeconfig: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-emulator"))
        .args([
            "--runtime",
            "docker",
            "--port",
            "0",
            "--node-cpu",
            "2",
            "--node-memory",
            "4Gi",
            "--kubeconfig",
        ])
        .arg(kubeconfig)
        .stdout(Stdio::piped())
        .spawn()
        .expect("kube-emulator starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("ready ")
        .expect("first line is `ready <url>`")
        .to_string();
    (child, url)
}

fn container_exists(id: &str) -> bool {
    Command::new("docker")
        .args(["inspect", "--format", "{{.Id}}", id])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_loads_images_and_cleans_up_on_sigterm() {
    let image = busybox_image("binary").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let (mut child, url) = start(&kubeconfig);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let config = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(
        config.contains("current-context: emulator") && config.contains(&url),
        "{config}"
    );
    let node = kubectl(
        &kubeconfig,
        &[
            "get",
            "node",
            "emulator",
            "-o",
            "jsonpath={.status.allocatable.cpu} {.status.allocatable.memory}",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&node.stdout), "2 4194304Ki");

    let load = Command::new(env!("CARGO_BIN_EXE_kube-emulator"))
        .args(["load", "--kubeconfig"])
        .arg(&kubeconfig)
        .arg(&image)
        .output()
        .unwrap();
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    let images = kubectl(
        &kubeconfig,
        &[
            "get",
            "node",
            "emulator",
            "-o",
            "jsonpath={.status.images[*].names}",
        ],
    );
    assert!(String::from_utf8_lossy(&images.stdout).contains(&image));

    let missing = Command::new(env!("CARGO_BIN_EXE_kube-emulator"))
        .args(["load", "--kubeconfig"])
        .arg(&kubeconfig)
        .arg("not-built-here:1")
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not-built-here:1"));

    let run = kubectl(
        &kubeconfig,
        &[
            "run",
            "sleeper",
            "--image",
            &image,
            "--image-pull-policy=IfNotPresent",
            "--command",
            "--",
            "sleep",
            "3600",
        ],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let wait = kubectl(
        &kubeconfig,
        &[
            "wait",
            "--for=condition=Ready",
            "pod/sleeper",
            "--timeout=60s",
        ],
    );
    assert!(
        wait.status.success(),
        "{}",
        String::from_utf8_lossy(&wait.stderr)
    );
    let id = kubectl(
        &kubeconfig,
        &[
            "get",
            "pod",
            "sleeper",
            "-o",
            "jsonpath={.status.containerStatuses[0].containerID}",
        ],
    );
    let id = String::from_utf8_lossy(&id.stdout)
        .trim_start_matches("docker://")
        .to_string();
    assert!(
        container_exists(&id),
        "the pod's container {id} runs on the engine"
    );

    send_sigterm(child.id());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    assert!(
        !container_exists(&id),
        "SIGTERM must remove the emulator's containers"
    );
    let refused = kubectl(&kubeconfig, &["get", "ns", "--request-timeout=2s"]);
    assert!(!refused.status.success());
}

fn send_sigterm(pid: u32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}
