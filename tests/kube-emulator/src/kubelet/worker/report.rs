//! What the worker reports and how it ends: the pod's status, and the
//! teardown of its containers when the pod is deleted or gone.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::cluster::Runtime;
use crate::events::Severity;
use crate::resources;
use crate::store::{DeleteOptions, WriteOptions};

use super::Worker;
use crate::kubelet::status::{self, ContainerView, State};
use crate::kubelet::{Stop, docker, scripted, volumes};

impl Worker {
    pub(super) fn write_status(&self) {
        let scheme = self.scheme();
        let views: Vec<ContainerView> = self
            .containers
            .iter()
            .map(|c| ContainerView {
                name: &c.name,
                image: c.spec["image"].as_str().unwrap_or_default(),
                image_id: &c.image_id,
                container_id: c.id.as_ref().map(|id| format!("{scheme}://{id}")),
                state: &c.state,
                last: c.last.as_ref(),
                ready: c.probes.ready && matches!(c.state, State::Running { .. }),
                started: c.probes.started && matches!(c.state, State::Running { .. }),
                restarts: c.restarts,
            })
            .collect();
        let old = self.pod.get("status").cloned().unwrap_or_else(|| json!({}));
        let policy = self.pod["spec"]["restartPolicy"]
            .as_str()
            .unwrap_or("Always");
        let ip = self.sandbox.as_ref().map(|s| s.ip.as_str());
        let new = status::pod_status(&old, &views, ip, &self.start_time, policy);
        if new == old {
            return;
        }
        let uid = self.uid.clone();
        let _ = self.cluster.store.modify(
            resources::pods(),
            &self.ns,
            &self.name,
            "status",
            &WriteOptions::manager("kubelet"),
            |pod| {
                if pod["metadata"]["uid"] == uid.as_str() {
                    pod["status"] = new;
                }
                Ok(())
            },
        );
    }

    pub(super) async fn teardown(&mut self, how: Stop, stop: watch::Receiver<Stop>) {
        let mut grace = self
            .pod
            .pointer("/metadata/deletionGracePeriodSeconds")
            .or_else(|| self.pod.pointer("/spec/terminationGracePeriodSeconds"))
            .and_then(Value::as_i64)
            .unwrap_or(30);
        let running: Vec<(String, String)> = self
            .containers
            .iter()
            .filter(|c| matches!(c.state, State::Running { .. }))
            .filter_map(|c| Some((c.name.clone(), c.id.clone()?)))
            .collect();
        if how == Stop::Delete {
            for (name, _) in &running {
                self.event(
                    Severity::Normal,
                    "Killing",
                    &format!("Stopping container {name}"),
                    Some(name),
                );
            }
            // As the kubelet does: the preStop hooks first, out of the grace
            // period, and what is left of it (2 s at the least) after SIGTERM.
            let took = self.pre_stop(&running, grace, stop).await;
            if let Some(took) = took {
                grace = (grace - took.as_secs() as i64).max(2);
            }
        }
        match self.cluster.runtime {
            Runtime::Docker => {
                // Only a deletion waits for the grace period; a vanished pod's containers just go.
                if how == Stop::Delete {
                    futures::future::join_all(
                        running.iter().map(|(_, id)| docker::stop(id, grace)),
                    )
                    .await;
                }
                docker::remove_pod(&self.uid).await;
                volumes::remove_pod(&self.cluster, &self.uid);
            }
            Runtime::Scripted => {
                for c in &self.containers {
                    for id in c.id.iter().chain(c.previous.iter()) {
                        scripted::stop(id);
                        scripted::remove(id);
                    }
                }
            }
        }
        if how == Stop::Delete {
            let opts = DeleteOptions {
                precondition_uid: Some(self.uid.clone()),
                ..DeleteOptions::now()
            };
            let _ = self
                .cluster
                .store
                .delete(resources::pods(), &self.ns, &self.name, &opts);
        }
    }

    /// Runs the preStop hooks of the running containers side by side, each
    /// up to the grace period; `None` when no container has one. The pod
    /// is out of its Service's endpoints meanwhile (it is terminating), so
    /// a `sleep` hook lets clients move on before SIGTERM. Only `sleep`
    /// hooks run here; another kind is reported and skipped, as a failed
    /// hook is. The emulator stopping ends the wait.
    async fn pre_stop(
        &self,
        running: &[(String, String)],
        grace: i64,
        mut stop: watch::Receiver<Stop>,
    ) -> Option<Duration> {
        let mut sleeps = Vec::new();
        for (name, _) in running {
            let spec = self
                .containers
                .iter()
                .find(|c| &c.name == name)
                .map(|c| &c.spec);
            let Some(hook) = spec.and_then(|s| s.pointer("/lifecycle/preStop")) else {
                continue;
            };
            match hook.pointer("/sleep/seconds").and_then(Value::as_i64) {
                Some(seconds) => sleeps.push(seconds.clamp(0, grace.max(0))),
                None => self.event(
                    Severity::Warning,
                    "FailedPreStopHook",
                    &format!(
                        "PreStopHook of container {name} was not run: the emulator runs only sleep hooks (lifecycle.preStop.sleep)"
                    ),
                    Some(name),
                ),
            }
        }
        let longest = sleeps.into_iter().max()?;
        let started = Instant::now();
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(longest.unsigned_abs())) => {}
            _ = stop.wait_for(|s| *s == Stop::Vanished) => {}
        }
        Some(started.elapsed())
    }
}
