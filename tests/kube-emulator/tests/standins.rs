//! The minikube, kind and k3d stand-ins record their calls and load images
//! onto the emulated node.

use std::process::Command;

use kube_emulator::standins;
use kube_emulator::testimage::busybox_image;
use kube_emulator::{Config, Emulator};

#[tokio::test(flavor = "multi_thread")]
async fn stand_ins_load_images_onto_the_node_and_record_their_arguments() {
    let image = busybox_image("standins").await.unwrap();
    // The docker runtime checks that a loaded image exists in the engine, as `minikube image load` does.
    let emu = Emulator::start(Config::docker()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bin = standins::install(dir.path(), &emu.url()).unwrap();

    let run = |tool: &str, args: &[&str]| {
        let out = Command::new(tool)
            .args(args)
            .env("PATH", standins::path_with(&bin))
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, _, err) = run("minikube", &["image", "load", &image, "--profile", "dev"]);
    assert!(ok, "{err}");
    assert!(
        emu.cluster().image(&image).is_some(),
        "the node has the image"
    );
    assert_eq!(
        standins::calls(&bin, "minikube"),
        [format!("image load {image} --profile dev")]
    );

    let (ok, _, err) = run(
        "kind",
        &["load", "docker-image", "never-built:1", "--name", "kind"],
    );
    assert!(!ok);
    assert!(err.contains("never-built:1"), "{err}");

    let (ok, out, _) = run("k3d", &["version"]);
    assert!(ok && out.contains("k3d version"));
    let (ok, out, _) = run("minikube", &["status"]);
    assert!(ok && out.contains("host: Running"));
    emu.stop().await;
}
