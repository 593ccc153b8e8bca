//! The node-image check against the Kubernetes API emulator: a load is skipped when
//! every node already reports the image in `status.images`.

// The image-builder binary is built only with the `frontend` feature.
#![cfg(feature = "frontend")]

use std::process::Command;

use image_builder::load::{self, ClusterKind, Loader};
use kube_emulator::{Config, Emulator};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_is_skipped_when_the_node_already_has_the_image() {
    let emu = Emulator::start(Config {
        preload: vec!["todo-app-frontend:0123456789abcdef".into()],
        ..Config::default()
    })
    .await
    .unwrap();
    let client = emu.client().await.unwrap();

    assert!(
        load::nodes_have_image(&client, "todo-app-frontend:0123456789abcdef")
            .await
            .unwrap()
    );
    assert!(
        load::nodes_have_image(
            &client,
            "docker.io/library/todo-app-frontend:0123456789abcdef"
        )
        .await
        .unwrap()
    );
    assert!(
        !load::nodes_have_image(&client, "todo-app-frontend:ffffffffffffffff")
            .await
            .unwrap()
    );

    // present: no tool is needed at all
    let out = load::load(
        "todo-app-frontend:0123456789abcdef",
        &Loader {
            kind: ClusterKind::Minikube,
            cluster: None,
        },
        Some(&client),
    )
    .await
    .unwrap();
    assert_eq!(out.action, "present");

    // the binary does the same through --kubeconfig, with no minikube on PATH
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    emu.write_kubeconfig(&kc).unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let bin = env!("CARGO_BIN_EXE_image-builder");
    let kc2 = kc.clone();
    let empty2 = empty.clone();
    let o = tokio::task::spawn_blocking(move || {
        Command::new(bin)
            .env("PATH", &empty2)
            .args([
                "load",
                "todo-app-frontend:0123456789abcdef",
                "--to",
                "minikube",
                "--kubeconfig",
            ])
            .arg(&kc2)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("present"));

    // absent: the tool is needed (and missing here)
    let o = tokio::task::spawn_blocking(move || {
        Command::new(bin)
            .env("PATH", &empty)
            .args([
                "load",
                "todo-app-frontend:ffffffffffffffff",
                "--to",
                "minikube",
                "--kubeconfig",
            ])
            .arg(&kc)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(o.status.code(), Some(7));
    emu.stop().await;
}
