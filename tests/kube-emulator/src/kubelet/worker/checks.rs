//! The checks a container passes before it starts: its image, as a
//! failed pull turns into ErrImagePull and ImagePullBackOff, and its config.

use std::time::{Duration, Instant};

use crate::cluster::NodeImage;
use crate::events::Severity;

use super::{Worker, doubled};
use crate::kubelet::images::{self, Decision};
use crate::kubelet::status::State;

impl Worker {
    /// The image check, pulling when the policy and the node's images say
    /// so; the image and whether it was just pulled, or `None` while it
    /// cannot be used.
    pub(super) async fn image(&mut self, i: usize) -> Option<(NodeImage, bool)> {
        let now = Instant::now();
        let backoff_ms = self.cluster.backoff_ms;
        let c = &mut self.containers[i];
        let image = c.spec["image"].as_str().unwrap_or_default().to_string();
        let name = c.name.clone();
        match images::check(&self.cluster, &c.spec) {
            Decision::Present(found) => {
                c.pull_backoff = None;
                c.show_pull_backoff = None;
                Some((found, false))
            }
            Decision::Invalid(msg) => {
                if c.state != State::waiting("InvalidImageName", Some(msg.clone()))
                    || now >= c.next_attempt
                {
                    c.state = State::waiting("InvalidImageName", Some(msg.clone()));
                    c.next_attempt = now + Duration::from_millis(backoff_ms.0);
                    self.event(Severity::Warning, "InspectFailed", &msg, Some(&name));
                    self.event(
                        Severity::Warning,
                        "Failed",
                        "Error: InvalidImageName",
                        Some(&name),
                    );
                }
                None
            }
            Decision::NeverPull(msg) => {
                if c.state != State::waiting("ErrImageNeverPull", Some(msg.clone()))
                    || now >= c.next_attempt
                {
                    c.state = State::waiting("ErrImageNeverPull", Some(msg.clone()));
                    c.next_attempt = now + Duration::from_millis(backoff_ms.0);
                    self.event(Severity::Warning, "ErrImageNeverPull", &msg, Some(&name));
                    self.event(
                        Severity::Warning,
                        "Failed",
                        "Error: ErrImageNeverPull",
                        Some(&name),
                    );
                }
                None
            }
            Decision::Pull if now >= c.next_attempt => {
                self.event(
                    Severity::Normal,
                    "Pulling",
                    &format!("Pulling image \"{image}\""),
                    Some(&name),
                );
                let started = Instant::now();
                let pulled = images::pull(&self.cluster, &image).await;
                let c = &mut self.containers[i];
                match pulled {
                    Ok(found) => {
                        c.pull_backoff = None;
                        c.show_pull_backoff = None;
                        self.event(
                            Severity::Normal,
                            "Pulled",
                            &format!(
                                "Successfully pulled image \"{image}\" in {}ms",
                                started.elapsed().as_millis()
                            ),
                            Some(&name),
                        );
                        Some((found, true))
                    }
                    Err(msg) => {
                        let now = Instant::now();
                        let delay = doubled(c.pull_backoff, backoff_ms);
                        c.pull_backoff = Some(delay);
                        c.next_attempt = now + delay;
                        c.show_pull_backoff = Some(now + (delay / 2).min(Duration::from_secs(1)));
                        c.state = State::waiting("ErrImagePull", Some(msg.clone()));
                        self.event(
                            Severity::Warning,
                            "Failed",
                            &format!("Failed to pull image \"{image}\": {msg}"),
                            Some(&name),
                        );
                        self.event(
                            Severity::Warning,
                            "Failed",
                            "Error: ErrImagePull",
                            Some(&name),
                        );
                        None
                    }
                }
            }
            Decision::Pull => {
                if c.show_pull_backoff.is_some_and(|t| now >= t) {
                    c.show_pull_backoff = None;
                    let msg = match &c.state {
                        State::Waiting { message, .. } => message.clone().unwrap_or_default(),
                        _ => String::new(),
                    };
                    c.state = State::waiting(
                        "ImagePullBackOff",
                        Some(format!(
                            "Back-off pulling image \"{image}\": ErrImagePull: {msg}"
                        )),
                    );
                    self.event(
                        Severity::Normal,
                        "BackOff",
                        &format!("Back-off pulling image \"{image}\""),
                        Some(&name),
                    );
                    self.event(
                        Severity::Warning,
                        "Failed",
                        "Error: ImagePullBackOff",
                        Some(&name),
                    );
                }
                None
            }
        }
    }

    pub(super) fn config_error(&mut self, i: usize, message: String) {
        let c = &mut self.containers[i];
        c.state = State::waiting("CreateContainerConfigError", Some(message.clone()));
        c.next_attempt = Instant::now() + Duration::from_secs(1);
        let name = c.name.clone();
        self.event(
            Severity::Warning,
            "Failed",
            &format!("Error: {message}"),
            Some(&name),
        );
    }
}
