//! One pod's worker: starts its containers once their image and config
//! checks pass, watches them, restarts them with back-off, runs probes,
//! reports the pod's status, and tears everything down at the end.

mod checks;
mod report;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::cluster::{Cluster, NodeImage, Runtime};
use crate::events::Severity;
use crate::faults::ContainerFailure;
use crate::resources;
use crate::time;

use super::probes::{Probes, Target, Verdict};
use super::status::{State, go_duration};
use super::volumes::{self, HostVolume};
use super::{Stop, config, docker, scripted};

/// How a container ended, as the runtime reports it.
#[derive(Debug, Clone)]
pub(super) struct Exit {
    pub code: i64,
    pub reason: String,
    pub started_at: String,
    pub finished_at: String,
}

struct Container {
    spec: Value,
    name: String,
    state: State,
    last: Option<Value>,
    restarts: i64,
    /// The running (or last) instance's runtime id, without the scheme.
    id: Option<String>,
    /// The instance before that, kept for `logs --previous`.
    previous: Option<String>,
    image_id: String,
    probes: Probes,
    killing: bool,
    next_attempt: Instant,
    crash_backoff: Option<Duration>,
    pull_backoff: Option<Duration>,
    /// When a failed pull turns from ErrImagePull into ImagePullBackOff.
    show_pull_backoff: Option<Instant>,
}

struct Sandbox {
    docker_id: Option<String>,
    ip: String,
    volumes: HashMap<String, HostVolume>,
}

struct Worker {
    cluster: Arc<Cluster>,
    pod: Value,
    ns: String,
    name: String,
    uid: String,
    containers: Vec<Container>,
    sandbox: Option<Sandbox>,
    start_time: String,
}

fn doubled(current: Option<Duration>, (first, cap): (u64, u64)) -> Duration {
    match current {
        None => Duration::from_millis(first),
        Some(d) => (d * 2).min(Duration::from_millis(cap)),
    }
}

pub(super) async fn run(cluster: Arc<Cluster>, pod: Value, mut stop: watch::Receiver<Stop>) {
    let meta = &pod["metadata"];
    let containers = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| Container {
            name: c["name"].as_str().unwrap_or_default().to_string(),
            state: State::waiting("ContainerCreating", None),
            last: None,
            restarts: 0,
            id: None,
            previous: None,
            image_id: String::new(),
            probes: Probes::new(c),
            killing: false,
            next_attempt: Instant::now(),
            crash_backoff: None,
            pull_backoff: None,
            show_pull_backoff: None,
            spec: c.clone(),
        })
        .collect();
    let mut w = Worker {
        ns: meta["namespace"].as_str().unwrap_or_default().to_string(),
        name: meta["name"].as_str().unwrap_or_default().to_string(),
        uid: meta["uid"].as_str().unwrap_or_default().to_string(),
        containers,
        sandbox: None,
        start_time: time::now(),
        pod,
        cluster,
    };
    let how = loop {
        let mode = *stop.borrow();
        if mode != Stop::Running {
            break mode;
        }
        match w.cluster.store.try_get(resources::pods(), &w.ns, &w.name) {
            Some(p) if p["metadata"]["uid"] == w.uid.as_str() => w.pod = p,
            _ => break Stop::Vanished,
        }
        if w.pod.pointer("/metadata/deletionTimestamp").is_some() {
            break Stop::Delete;
        }
        w.sync().await;
        w.write_status();
        tokio::select! {
            _ = stop.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    };
    w.teardown(how, stop).await;
}

impl Worker {
    fn event(&self, severity: Severity, reason: &str, message: &str, container: Option<&str>) {
        let field_path = container.map(|c| format!("spec.containers{{{c}}}"));
        self.cluster.recorder.record(
            &self.pod,
            severity,
            reason,
            message,
            "kubelet",
            field_path.as_deref(),
        );
    }

    fn pod_id(&self) -> String {
        format!("{}_{}({})", self.name, self.ns, self.uid)
    }

    fn scheme(&self) -> &'static str {
        match self.cluster.runtime {
            Runtime::Docker => "docker",
            Runtime::Scripted => "scripted",
        }
    }

    async fn sync(&mut self) {
        for i in 0..self.containers.len() {
            match &self.containers[i].state {
                State::Running { .. } => self.watch_running(i).await,
                State::Terminated(_) => {}
                State::Waiting { .. } => self.try_start(i).await,
            }
        }
    }

    async fn watch_running(&mut self, i: usize) {
        let Some(id) = self.containers[i].id.clone() else {
            return;
        };
        let (_, exit) = match self.cluster.runtime {
            Runtime::Docker => match docker::state(&id).await {
                Ok(s) => s,
                Err(_) => return,
            },
            Runtime::Scripted => scripted::state(&id),
        };
        if let Some(exit) = exit {
            return self.exited(i, &id, exit);
        }
        if self.cluster.runtime == Runtime::Scripted || self.containers[i].killing {
            return;
        }
        let ip = self
            .sandbox
            .as_ref()
            .map(|s| s.ip.clone())
            .unwrap_or_default();
        let c = &mut self.containers[i];
        let target = Target {
            ip: &ip,
            container_id: &id,
            container: &c.spec,
        };
        let mut failures = Vec::new();
        let verdict = c.probes.run(&target, |m| failures.push(m)).await;
        let name = c.name.clone();
        for m in failures {
            self.event(Severity::Warning, "Unhealthy", &m, Some(&name));
        }
        if let Verdict::Kill(probe) = verdict {
            self.event(
                Severity::Normal,
                "Killing",
                &format!("Container {name} failed {probe} probe, will be restarted"),
                Some(&name),
            );
            self.containers[i].killing = true;
            let grace = self.pod["spec"]["terminationGracePeriodSeconds"]
                .as_i64()
                .unwrap_or(30);
            tokio::spawn(async move { docker::stop(&id, grace).await });
        }
    }

    fn exited(&mut self, i: usize, id: &str, exit: Exit) {
        let policy = self.pod["spec"]["restartPolicy"]
            .as_str()
            .unwrap_or("Always")
            .to_string();
        let backoff_ms = self.cluster.backoff_ms;
        let pod_id = self.pod_id();
        let scheme = self.scheme();
        let c = &mut self.containers[i];
        let terminated = json!({
            "exitCode": exit.code,
            "reason": exit.reason,
            "startedAt": exit.started_at,
            "finishedAt": exit.finished_at,
            "containerID": format!("{scheme}://{id}"),
        });
        c.probes = Probes::new(&c.spec);
        c.probes.started = false;
        c.probes.ready = false;
        c.killing = false;
        let restart = match policy.as_str() {
            "Never" => false,
            "OnFailure" => exit.code != 0,
            _ => true,
        };
        if !restart {
            c.state = State::Terminated(terminated);
            return;
        }
        c.last = Some(terminated);
        c.restarts += 1;
        let older = c.previous.replace(id.to_string());
        let delay = doubled(c.crash_backoff, backoff_ms);
        c.crash_backoff = Some(delay);
        c.next_attempt = Instant::now() + delay;
        let name = c.name.clone();
        c.state = State::waiting(
            "CrashLoopBackOff",
            Some(format!(
                "back-off {} restarting failed container={name} pod={pod_id}",
                go_duration(delay)
            )),
        );
        if let Some(older) = older {
            self.remove_instance(older);
        }
        self.event(
            Severity::Warning,
            "BackOff",
            &format!("Back-off restarting failed container {name} in pod {pod_id}"),
            Some(&name),
        );
    }

    /// A container the runtime would not create or start (`reason`): tried
    /// again after the crash back-off.
    fn failed_to_run(&mut self, i: usize, reason: &str, message: String) {
        let backoff = self.cluster.backoff_ms;
        let c = &mut self.containers[i];
        c.state = State::waiting(reason, Some(message.clone()));
        c.crash_backoff = Some(doubled(c.crash_backoff, backoff));
        c.next_attempt = Instant::now() + c.crash_backoff.unwrap_or_default();
        let name = c.name.clone();
        self.event(
            Severity::Warning,
            "Failed",
            &format!("Error: {message}"),
            Some(&name),
        );
    }

    fn remove_instance(&self, id: String) {
        match self.cluster.runtime {
            Runtime::Docker => {
                tokio::spawn(async move { docker::remove(&id).await });
            }
            Runtime::Scripted => scripted::remove(&id),
        }
    }

    /// Creates the pod-level parts the containers share: network and volumes.
    async fn ensure_sandbox(&mut self, image: &NodeImage, image_ref: &str) -> Result<(), String> {
        if self.sandbox.is_some() {
            return Ok(());
        }
        let sandbox = match self.cluster.runtime {
            Runtime::Scripted => Sandbox {
                docker_id: None,
                ip: super::scripted_pod_ip(&self.cluster),
                volumes: HashMap::new(),
            },
            Runtime::Docker => {
                let volumes = volumes::prepare(&self.cluster, &self.pod).inspect_err(|m| {
                    self.event(Severity::Warning, "FailedMount", m, None);
                })?;
                let (id, ip) = docker::create_sandbox(&self.cluster, &self.pod, image, image_ref)
                    .await
                    .map_err(|e| e.message)?;
                Sandbox {
                    docker_id: Some(id),
                    ip,
                    volumes,
                }
            }
        };
        self.sandbox = Some(sandbox);
        Ok(())
    }

    async fn try_start(&mut self, i: usize) {
        // A restart waits for its back-off before the image is looked at
        // (with `imagePullPolicy: Always`, pulled again).
        let c = &self.containers[i];
        let retrying = matches!(&c.state, State::Waiting { reason, .. } if reason != "ContainerCreating" && !reason.starts_with("ErrImage") && reason != "ImagePullBackOff");
        if retrying && Instant::now() < c.next_attempt {
            return;
        }
        let Some((image, just_pulled)) = self.image(i).await else {
            return;
        };
        let c = &self.containers[i];
        let (spec, name) = (c.spec.clone(), c.name.clone());
        let image_ref = spec["image"].as_str().unwrap_or_default().to_string();
        if let Err(m) = config::verify_non_root(&self.pod, &spec, image.user.as_deref()) {
            return self.config_error(i, m);
        }
        if let Err(m) = self.ensure_sandbox(&image, &image_ref).await {
            let c = &mut self.containers[i];
            c.state = State::waiting("ContainerCreating", None);
            c.next_attempt = Instant::now() + Duration::from_secs(1);
            tracing::warn!(pod = %self.name, "pod sandbox: {m}");
            return;
        }
        let sandbox = self.sandbox.as_ref().expect("ensured above");
        let env = match config::environment(&self.cluster, &self.pod, &spec, &sandbox.ip) {
            Ok(env) => env,
            Err(m) => return self.config_error(i, m),
        };
        if !just_pulled {
            self.event(
                Severity::Normal,
                "Pulled",
                &format!("Container image \"{image_ref}\" already present on machine"),
                Some(&name),
            );
        }
        let attempt = self.containers[i].restarts;
        let created = match self.cluster.faults.container_failure(&image_ref) {
            Some(ContainerFailure::CreateContainerError(m)) => Err(m),
            _ => match (self.cluster.runtime, &sandbox.docker_id) {
                (Runtime::Docker, Some(sandbox_id)) => {
                    let launch = docker::Launch {
                        pod: &self.pod,
                        container: &spec,
                        image: &image,
                        env,
                        binds: volumes::binds(&spec, &sandbox.volumes),
                        sandbox: sandbox_id,
                        attempt,
                    };
                    docker::create(&self.cluster, launch)
                        .await
                        .map_err(|e| e.message)
                }
                _ => Ok(scripted::create(&self.pod, &env)),
            },
        };
        let id = match created {
            Ok(id) => id,
            Err(m) => return self.failed_to_run(i, "CreateContainerError", m),
        };
        self.event(
            Severity::Normal,
            "Created",
            &format!("Created container {name}"),
            Some(&name),
        );
        let started = match self.cluster.runtime {
            Runtime::Docker => docker::start(&id).await.map_err(|e| e.message),
            Runtime::Scripted => {
                scripted::start(&id);
                Ok(())
            }
        };
        if let Err(m) = started {
            return self.failed_to_run(i, "RunContainerError", m);
        }
        self.event(
            Severity::Normal,
            "Started",
            &format!("Started container {name}"),
            Some(&name),
        );
        let started_at = match self.cluster.runtime {
            Runtime::Docker => docker::state(&id)
                .await
                .map(|s| s.0)
                .unwrap_or_else(|_| time::now()),
            Runtime::Scripted => scripted::state(&id).0,
        };
        let scripted = self.cluster.runtime == Runtime::Scripted;
        let c = &mut self.containers[i];
        c.image_id = match &image.id {
            Some(id) => format!("docker://{id}"),
            None => String::new(),
        };
        c.id = Some(id);
        c.probes = Probes::new(&c.spec);
        if scripted {
            c.probes.started = true;
            c.probes.ready = true;
        }
        c.state = State::Running { started_at };
    }
}
