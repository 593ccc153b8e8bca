//! Waiting for a rollout after an apply, as `up` and `rollback` do it.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;

use super::{display, rollout};
use crate::context::Connection;
use crate::doctor::PodDoctor;
use crate::doctor::output::Finding;
use crate::history::store::{Outcome, Store};
use crate::project::Project;
use crate::settings::Settings;

/// How to wait for a rollout.
#[derive(Debug, Clone, Copy)]
pub struct Wait {
    pub timeout: Duration,
    /// Return once applied, without waiting.
    pub no_wait: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the rollout of revision {revision} failed")]
    RolloutFailed { revision: u32 },
    #[error("the rollout of revision {revision} did not finish within {timeout:?}")]
    TimedOut { revision: u32, timeout: Duration },
    #[error(
        "lost the connection to the cluster at {server} while waiting for the rollout of revision {revision}: {cause}"
    )]
    ConnectionLost {
        revision: u32,
        server: String,
        cause: String,
    },
}

impl crate::report::Hinted for Error {
    fn hint(&self) -> Option<String> {
        Some(match self {
            Error::ConnectionLost { .. } => "the revision is applied and rolls out without this run; once the cluster answers again, `kubectl todo status` shows how it went (`kubectl todo doctor` checks the connection)".into(),
            _ => "fix the cause above and run `kubectl todo up` again, or go back with `kubectl todo rollback`".into(),
        })
    }
}
crate::report::hinted!(Error);

/// A rollout watch: the pods' doctor and the values no quoted log line may show.
pub struct Watch<'a> {
    conn: &'a Connection,
    project: &'a Project,
    doctor: PodDoctor,
    redact: Vec<String>,
    wait: Wait,
}

impl<'a> Watch<'a> {
    pub fn new(
        settings: &Settings,
        conn: &'a Connection,
        project: &'a Project,
        redact: Vec<String>,
        wait: Wait,
    ) -> Self {
        Watch {
            conn,
            project,
            doctor: PodDoctor::new(settings, project, conn.clone()),
            redact,
            wait,
        }
    }

    /// Waits for the rollout of `revision` (unless told not to), records its
    /// failure in the revision when `record` (the run made the revision),
    /// and prints the URLs.
    pub async fn finish(
        &self,
        manifests: &[Value],
        revision: u32,
        record: bool,
    ) -> anyhow::Result<ExitCode> {
        let (conn, project) = (self.conn, self.project);
        if !self.wait.no_wait {
            let display = display::for_stderr();
            tokio::select! {
                outcome = self.rollout(manifests, revision, record, display.as_ref()) => outcome?,
                signal = crate::apply::interrupt::signalled() => {
                    eprintln!("stopped waiting ({}); revision {revision} is applied and rolling out (see `kubectl todo status`)", signal.name());
                    return Ok(signal.exit().into());
                }
            }
        }
        let urls = crate::urls::app_urls(conn, project).await?;
        if urls.is_empty() {
            println!("{} is up in namespace {}", project.name, project.namespace);
        }
        for u in urls {
            println!("{}: {}", u.component, u.url);
        }
        Ok(ExitCode::SUCCESS)
    }

    /// Waits for the rollout of `revision` through `display`, printing
    /// doctor's findings and recording a failure in the revision when
    /// `record`; `dev` calls it once per change, `finish` once.
    pub async fn rollout(
        &self,
        manifests: &[Value],
        revision: u32,
        record: bool,
        display: &dyn display::Display,
    ) -> anyhow::Result<()> {
        let (conn, project) = (self.conn, self.project);
        let rollout = rollout::Rollout {
            client: conn.client.clone(),
            project,
            doctor: &self.doctor,
            redact: &self.redact,
            timeout: self.wait.timeout,
        };
        let deployments = rollout::deployments_of(manifests);
        let failure = match rollout.wait(&deployments, display).await {
            rollout::Outcome::Ready => None,
            rollout::Outcome::Failed(findings) => {
                report_findings(&findings);
                Some(Error::RolloutFailed { revision })
            }
            // Nothing can be recorded in a cluster that does not answer.
            rollout::Outcome::Lost(cause) => {
                return Err(Error::ConnectionLost {
                    revision,
                    server: conn.server_host.clone(),
                    cause,
                }
                .into());
            }
            rollout::Outcome::TimedOut(pending, findings) => {
                for line in pending {
                    eprintln!("still waiting: {line}");
                }
                report_findings(&findings);
                Some(Error::TimedOut {
                    revision,
                    timeout: self.wait.timeout,
                })
            }
        };
        let Some(failure) = failure else {
            return Ok(());
        };
        if record {
            let store = Store::new(conn.client.clone(), &project.namespace, &project.name);
            if let Ok(list) = store.list().await
                && let Some(mut summary) = list.into_iter().find(|s| s.revision == revision)
            {
                summary.outcome = Outcome::Failed;
                summary.error = Some(failure.to_string());
                let _ = store.set_summary(&summary).await;
            }
        }
        Err(failure.into())
    }
}

/// After an apply made `revision`: waits for its rollout as `up` does,
/// records a failure in it, and prints the URLs.
pub async fn wait_for_revision(
    settings: &Settings,
    conn: &Connection,
    project: &Project,
    manifests: &[Value],
    revision: u32,
    wait: Wait,
) -> anyhow::Result<ExitCode> {
    let secret = super::secret_data(&conn.client, project).await?;
    let redact = secret
        .as_ref()
        .and_then(|s| s.data.as_ref())
        .map(crate::secrets::redactions)
        .unwrap_or_default();
    Watch::new(settings, conn, project, redact, wait)
        .finish(manifests, revision, true)
        .await
}

fn report_findings(findings: &[Finding]) {
    for f in findings {
        eprintln!("✗ {}", f.message);
        if let Some(hint) = &f.hint {
            eprintln!("  fix: {hint}");
        }
    }
}
