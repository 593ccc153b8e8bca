//! The docker runtime's calls to the Docker Engine (through bollard).

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, ListContainersOptions,
    RemoveContainerOptions, RemoveImageOptions, StopContainerOptions,
};
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::cluster::{Cluster, NodeImage};
use crate::status::{ApiError, ApiResult};
use crate::time;

use super::config;
use super::worker::Exit;

pub(super) const INSTANCE_LABEL: &str = "kube-emulator.instance";
const POD_UID_LABEL: &str = "io.kubernetes.pod.uid";
/// The host's static busybox, mounted into sandboxes so that they run whatever the pod's image holds.
const HOST_BUSYBOX: &str = "/bin/busybox";

static CLIENT: OnceCell<Docker> = OnceCell::const_new();

fn engine_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("docker engine: {e}"))
}

/// The engine's client, its API version negotiated down to what Docker 20.10 speaks.
pub(super) async fn client() -> ApiResult<Docker> {
    CLIENT
        .get_or_try_init(|| async {
            let docker = Docker::connect_with_local_defaults().map_err(engine_error)?;
            docker.negotiate_version().await.map_err(engine_error)
        })
        .await
        .cloned()
}

fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

pub(super) async fn inspect_image(reference: &str) -> ApiResult<NodeImage> {
    let docker = client().await?;
    match docker.inspect_image(reference).await {
        Ok(i) => Ok(NodeImage {
            names: i
                .repo_tags
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| vec![reference.to_string()]),
            size_bytes: i.size.unwrap_or(0),
            user: Some(i.config.and_then(|c| c.user).unwrap_or_default()),
            id: i.id,
        }),
        Err(e) if is_not_found(&e) => Err(ApiError {
            code: 404,
            reason: "NotFound",
            message: format!(
                "image \"{reference}\" is not in the Docker Engine: build or tag it there before loading it"
            ),
            details: None,
        }),
        Err(e) => Err(engine_error(e)),
    }
}

/// Pulls `reference` into the engine, as a node's runtime does; the
/// engine's own message when it cannot. `Ok(true)` when the engine did not
/// hold the reference before, so that the emulator removes it at the end.
pub(super) async fn pull(reference: &str) -> Result<bool, String> {
    let docker = client().await.map_err(|e| e.message)?;
    let new = docker.inspect_image(reference).await.is_err();
    let opts = CreateImageOptionsBuilder::default()
        .from_image(reference)
        .build();
    let mut progress = docker.create_image(Some(opts), None, None);
    while let Some(step) = progress.next().await {
        match step {
            Ok(info) => {
                if let Some(message) = info.error_detail.and_then(|d| d.message) {
                    return Err(message);
                }
            }
            Err(bollard::errors::Error::DockerResponseServerError { message, .. }) => {
                return Err(format!("Error response from daemon: {message}"));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(new)
}

/// Removes a reference the emulator pulled (the image goes with its last name).
pub(super) async fn remove_image(reference: &str) {
    if let Ok(docker) = client().await {
        let _ = docker
            .remove_image(reference, None::<RemoveImageOptions>, None)
            .await;
    }
}

fn labels(cluster: &Cluster, pod: &Value, container: &str) -> HashMap<String, String> {
    let meta = &pod["metadata"];
    HashMap::from([
        (INSTANCE_LABEL.to_string(), cluster.instance.clone()),
        (
            POD_UID_LABEL.to_string(),
            meta["uid"].as_str().unwrap_or_default().to_string(),
        ),
        (
            "io.kubernetes.pod.name".to_string(),
            meta["name"].as_str().unwrap_or_default().to_string(),
        ),
        (
            "io.kubernetes.pod.namespace".to_string(),
            meta["namespace"].as_str().unwrap_or_default().to_string(),
        ),
        (
            "io.kubernetes.container.name".to_string(),
            container.to_string(),
        ),
    ])
}

/// cri-dockerd's naming: `k8s_<container>_<pod>_<namespace>_<uid>_<attempt>`.
fn container_name(pod: &Value, container: &str, attempt: i64) -> String {
    let m = &pod["metadata"];
    format!(
        "k8s_{container}_{}_{}_{}_{attempt}",
        m["name"].as_str().unwrap_or_default(),
        m["namespace"].as_str().unwrap_or_default(),
        m["uid"].as_str().unwrap_or_default()
    )
}

async fn create_and_start(
    docker: &Docker,
    name: &str,
    body: ContainerCreateBody,
) -> ApiResult<String> {
    let id = create_named(docker, name, body).await?;
    start(&id).await?;
    Ok(id)
}

async fn create_named(docker: &Docker, name: &str, body: ContainerCreateBody) -> ApiResult<String> {
    let opts = CreateContainerOptionsBuilder::default().name(name).build();
    let created = docker
        .create_container(Some(opts), body)
        .await
        .map_err(engine_error)?;
    Ok(created.id)
}

/// Starts a created container; one that will not start is removed.
pub(super) async fn start(id: &str) -> ApiResult<()> {
    let docker = client().await?;
    if let Err(e) = docker.start_container(id, None).await {
        remove(id).await;
        return Err(engine_error(e));
    }
    Ok(())
}

/// Starts the pod's sandbox, whose network namespace the containers join; returns its id and IP.
pub(super) async fn create_sandbox(
    cluster: &Cluster,
    pod: &Value,
    image: &NodeImage,
    image_ref: &str,
) -> ApiResult<(String, String)> {
    let docker = client().await?;
    let (entrypoint, binds) = if std::path::Path::new(HOST_BUSYBOX).exists() {
        (
            vec![
                "/.kube-emulator/busybox".to_string(),
                "sleep".into(),
                "2147483647".into(),
            ],
            Some(vec![format!("{HOST_BUSYBOX}:/.kube-emulator/busybox:ro")]),
        )
    } else {
        (vec!["sleep".to_string(), "2147483647".into()], None)
    };
    let hostname: String = pod["metadata"]["name"]
        .as_str()
        .unwrap_or("pod")
        .chars()
        .take(63)
        .collect();
    let body = ContainerCreateBody {
        image: Some(image.id.clone().unwrap_or_else(|| image_ref.to_string())),
        entrypoint: Some(entrypoint),
        cmd: Some(Vec::new()),
        user: Some("0".into()),
        hostname: Some(hostname),
        labels: Some(labels(cluster, pod, "POD")),
        host_config: Some(HostConfig {
            binds,
            ..Default::default()
        }),
        ..Default::default()
    };
    let id = create_and_start(&docker, &container_name(pod, "POD", 0), body).await?;
    let inspected = docker
        .inspect_container(&id, None)
        .await
        .map_err(engine_error)?;
    let ip = inspected
        .network_settings
        .and_then(|n| n.networks)
        .and_then(|n| n.get("bridge").and_then(|b| b.ip_address.clone()))
        .unwrap_or_default();
    Ok((id, ip))
}

fn user(pod: &Value, container: &Value, image: &NodeImage) -> Option<String> {
    let uid = config::security(pod, container, "runAsUser").and_then(Value::as_i64);
    let gid = config::security(pod, container, "runAsGroup").and_then(Value::as_i64);
    let image_user = image.user.clone().unwrap_or_default();
    let image_uid = image_user
        .split(':')
        .next()
        .filter(|u| !u.is_empty())
        .unwrap_or("0")
        .to_string();
    match (uid, gid) {
        (Some(u), Some(g)) => Some(format!("{u}:{g}")),
        (Some(u), None) => Some(u.to_string()),
        (None, Some(g)) => Some(format!("{image_uid}:{g}")),
        (None, None) => None,
    }
}

fn string_list(v: Option<&Value>) -> Option<Vec<String>> {
    v.and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(|s| {
                s.as_str()
                    .map(String::from)
                    .or_else(|| s.as_i64().map(|n| n.to_string()))
            })
            .collect()
    })
}

/// What one container is started with, resolved by the worker.
pub(super) struct Launch<'a> {
    pub pod: &'a Value,
    pub container: &'a Value,
    pub image: &'a NodeImage,
    pub env: Vec<String>,
    pub binds: Vec<String>,
    pub sandbox: &'a str,
    pub attempt: i64,
}

/// Creates a container in the pod's sandbox; returns its id.
pub(super) async fn create(cluster: &Cluster, l: Launch<'_>) -> ApiResult<String> {
    let docker = client().await?;
    let c = l.container;
    let expand = |v: Option<&Value>| {
        let vars: Vec<(String, String)> = l
            .env
            .iter()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        string_list(v).map(|list| {
            list.iter()
                .map(|s| config::expand(s, &vars))
                .collect::<Vec<_>>()
        })
    };
    let memory = c
        .pointer("/resources/limits/memory")
        .and_then(|q| {
            q.as_str()
                .map(String::from)
                .or_else(|| q.as_i64().map(|n| n.to_string()))
        })
        .and_then(|q| crate::quantity::parse(&q).map(|v| v.value()));
    let mut groups =
        string_list(l.pod.pointer("/spec/securityContext/supplementalGroups")).unwrap_or_default();
    if let Some(g) = l
        .pod
        .pointer("/spec/securityContext/fsGroup")
        .and_then(Value::as_i64)
    {
        groups.push(g.to_string());
    }
    let no_new_privs = config::security(l.pod, c, "allowPrivilegeEscalation")
        .and_then(Value::as_bool)
        == Some(false);
    let host_config = HostConfig {
        network_mode: Some(format!("container:{}", l.sandbox)),
        memory,
        memory_swap: memory,
        readonly_rootfs: c
            .pointer("/securityContext/readOnlyRootFilesystem")
            .and_then(Value::as_bool),
        privileged: c
            .pointer("/securityContext/privileged")
            .and_then(Value::as_bool),
        cap_add: string_list(c.pointer("/securityContext/capabilities/add")),
        cap_drop: string_list(c.pointer("/securityContext/capabilities/drop")),
        security_opt: no_new_privs.then(|| vec!["no-new-privileges".to_string()]),
        group_add: (!groups.is_empty()).then_some(groups),
        binds: Some(l.binds),
        ..Default::default()
    };
    let name = c["name"].as_str().unwrap_or_default();
    let body = ContainerCreateBody {
        image: Some(
            l.image
                .id
                .clone()
                .unwrap_or_else(|| c["image"].as_str().unwrap_or_default().to_string()),
        ),
        entrypoint: expand(c.get("command")),
        cmd: expand(c.get("args")),
        env: Some(l.env.clone()),
        user: user(l.pod, c, l.image),
        working_dir: c["workingDir"].as_str().map(String::from),
        tty: c["tty"].as_bool(),
        open_stdin: c["stdin"].as_bool(),
        labels: Some(labels(cluster, l.pod, name)),
        host_config: Some(host_config),
        ..Default::default()
    };
    create_named(&docker, &container_name(l.pod, name, l.attempt), body).await
}

fn api_time(docker_time: Option<String>) -> String {
    docker_time
        .as_deref()
        .and_then(time::parse)
        .map(time::format_time)
        .unwrap_or_else(time::now)
}

/// When the container started, and how it ended if it has.
pub(super) async fn state(id: &str) -> ApiResult<(String, Option<Exit>)> {
    let docker = client().await?;
    let s = match docker.inspect_container(id, None).await {
        Ok(i) => i.state.unwrap_or_default(),
        // A container removed behind the kubelet's back ended with an unknown status.
        Err(e) if is_not_found(&e) => {
            let now = time::now();
            let exit = Exit {
                code: 137,
                reason: "Error".into(),
                started_at: now.clone(),
                finished_at: now.clone(),
            };
            return Ok((now, Some(exit)));
        }
        Err(e) => return Err(engine_error(e)),
    };
    let started_at = api_time(s.started_at.clone());
    if s.running == Some(true) {
        return Ok((started_at, None));
    }
    let code = s.exit_code.unwrap_or(0);
    let reason = if s.oom_killed == Some(true) {
        "OOMKilled"
    } else if code == 0 {
        "Completed"
    } else {
        "Error"
    };
    let exit = Exit {
        code,
        reason: reason.into(),
        started_at: started_at.clone(),
        finished_at: api_time(s.finished_at),
    };
    Ok((started_at, Some(exit)))
}

/// Stops a container, giving it `grace` seconds after SIGTERM.
pub(super) async fn stop(id: &str, grace: i64) {
    if let Ok(docker) = client().await {
        let opts = StopContainerOptions {
            t: Some(grace.clamp(0, i32::MAX as i64) as i32),
            signal: None,
        };
        let _ = docker.stop_container(id, Some(opts)).await;
    }
}

pub(super) async fn remove(id: &str) {
    if let Ok(docker) = client().await {
        let opts = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        let _ = docker.remove_container(id, Some(opts)).await;
    }
}

async fn remove_labelled(label: String) {
    let Ok(docker) = client().await else { return };
    let opts = ListContainersOptions {
        all: true,
        filters: Some(HashMap::from([("label".to_string(), vec![label])])),
        ..Default::default()
    };
    let ids: Vec<String> = docker
        .list_containers(Some(opts))
        .await
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| c.id)
        .collect();
    futures::future::join_all(ids.iter().map(|id| remove(id))).await;
}

/// The host PID of a pod's running sandbox, whose network namespace its containers share.
pub(super) async fn sandbox_pid(pod_uid: &str) -> Result<i64, String> {
    let docker = client().await.map_err(|e| e.message)?;
    let opts = ListContainersOptions {
        filters: Some(HashMap::from([(
            "label".to_string(),
            vec![
                format!("{POD_UID_LABEL}={pod_uid}"),
                "io.kubernetes.container.name=POD".to_string(),
            ],
        )])),
        ..Default::default()
    };
    let sandbox = docker
        .list_containers(Some(opts))
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .find_map(|c| c.id)
        .ok_or("the pod's sandbox is not running")?;
    docker
        .inspect_container(&sandbox, None)
        .await
        .map_err(|e| e.to_string())?
        .state
        .and_then(|s| s.pid)
        .filter(|pid| *pid > 0)
        .ok_or_else(|| "the pod's sandbox is not running".to_string())
}

pub(super) async fn remove_pod(uid: &str) {
    remove_labelled(format!("{POD_UID_LABEL}={uid}")).await;
}

pub(super) async fn remove_instance(instance: &str) {
    remove_labelled(format!("{INSTANCE_LABEL}={instance}")).await;
}

/// Runs a probe's command in the container: its exit code and output.
pub(super) async fn exec(
    id: &str,
    cmd: Vec<String>,
    timeout: Duration,
) -> Result<(i64, String), String> {
    let docker = client().await.map_err(|e| e.message)?;
    let opts = CreateExecOptions {
        cmd: Some(cmd),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    let exec = docker
        .create_exec(id, opts)
        .await
        .map_err(|e| e.to_string())?;
    let run = async {
        let mut output = Vec::new();
        if let Ok(StartExecResults::Attached {
            output: mut out, ..
        }) = docker.start_exec(&exec.id, None).await
        {
            while let Some(Ok(chunk)) = out.next().await {
                output.extend_from_slice(chunk.as_ref());
            }
        }
        output
    };
    let output = tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| format!("command timed out after {}s", timeout.as_secs()))?;
    let code = docker
        .inspect_exec(&exec.id)
        .await
        .ok()
        .and_then(|i| i.exit_code)
        .unwrap_or(-1);
    Ok((code, String::from_utf8_lossy(&output).into_owned()))
}
