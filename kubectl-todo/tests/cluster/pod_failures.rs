//! Pod states more waiting will not fix, made by the emulated node, end
//! `up`'s rollout wait at once with doctor's diagnosis: the run exits 1
//! long before `--timeout`, the revision is recorded failed, and the lock
//! is released.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube_emulator::faults::{ContainerFailure, ContainerFault};

use crate::harness::{App, Cluster, Run, Running, against, run_against};

const PROJECT: &str =
    "name: shop\ncomponents:\n  - {name: web, port: 3000}\n  - {name: api, port: 8000}\n";

/// What a runtime says when a volume's subPath does not exist.
pub const REFUSED: &str = "failed to generate container spec: failed to apply OCI options: failed to mkdir \"/var/lib/kubelet/pods/7f/volume-subpaths/data/api/0\": file exists";

/// Runs `up --timeout 5m` of images on the node while the node fails the
/// api's container as `failure` says, and returns how it ended: within 30
/// seconds, or the test fails.
pub async fn up_while_the_node_fails_api(failure: ContainerFailure) -> (Cluster, App, Run) {
    let cluster = Cluster::start().await;
    let app = App::with_file(PROJECT);
    cluster.load(&["shop-web:1", "shop-api:1"]).await;
    cluster.emulator.faults().fail_containers(ContainerFault {
        image: "shop-api:1".into(),
        failure,
    });
    let run = Running::start(against(
        &app,
        cluster.kubeconfig(),
        &[
            "up",
            "--timeout",
            "5m",
            "--image",
            "web=shop-web:1",
            "--image",
            "api=shop-api:1",
        ],
    ))
    .finish_within(Duration::from_secs(30))
    .await;
    (cluster, app, run)
}

/// What every such run must leave: exit 1, the rollout said failed,
/// revision 1 recorded failed, the lock released.
pub async fn failed_and_recorded(cluster: &Cluster, app: &App, run: &Run) -> Result<(), String> {
    if run.code != Some(1) || !run.stderr.contains("the rollout of revision 1 failed") {
        return Err(format!("exit {:?}\n{}", run.code, run.all()));
    }
    let history = run_against(app, cluster.kubeconfig(), &["history", "-o", "json"]).await;
    let history: serde_json::Value = serde_json::from_str(&history.ok().stdout).unwrap();
    if history[0]["outcome"] != "failed" || history.as_array().map(Vec::len) != Some(1) {
        return Err(format!("history: {history}"));
    }
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), "shop");
    if leases.get_opt("shop-lock").await.unwrap().is_some() {
        return Err("the lock is still held".into());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn create_container_error_ends_the_wait_at_once_with_the_runtimes_message() {
    let (cluster, app, run) =
        up_while_the_node_fails_api(ContainerFailure::CreateContainerError(REFUSED.into())).await;
    failed_and_recorded(&cluster, &app, &run).await.unwrap();
    assert!(
        run.stderr.contains("CreateContainerError: ")
            && run.stderr.contains(REFUSED)
            && run.stderr.contains("kubectl describe pod shop-api-"),
        "{}",
        run.all()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_image_name_ends_the_wait_at_once_with_the_fix() {
    let (cluster, app, run) = up_while_the_node_fails_api(ContainerFailure::InvalidImageName).await;
    failed_and_recorded(&cluster, &app, &run).await.unwrap();
    assert!(
        run.stderr
            .contains("InvalidImageName: \"shop-api:1\" is not a valid image reference (")
            && run.stderr.contains("invalid reference format")
            && run
                .stderr
                .contains("kubectl todo up --image api=REPOSITORY:TAG"),
        "{}",
        run.all()
    );
}
