//! The deploy pipeline: the steps `up`, `apply`, `rollback`, `render`,
//! `down` and the rest drive, owned by none of them. Each step exists once:
//! connecting (to the project's namespace, which `-n` has overridden in
//! [`Settings::load_project`], the one place that decides it), reading the
//! Secret, building and delivering images, applying
//! under the app's lock, waiting for a rollout.

pub mod display;
pub mod images;
mod remove;
pub mod rollout;
mod secret;
pub mod target;
pub mod unchanged;
mod wait;

use std::future::Future;
use std::time::Duration;

pub use remove::{Removed, delete_app};
pub use secret::{MissingSecret, secret_checksum, secret_checksum_best_effort, secret_data};
pub use wait::{Error as RolloutError, Wait, Watch, wait_for_revision};

use crate::context::{self, Connection};
use crate::project::Project;
use crate::settings::Settings;

/// Connects to the cluster the settings select, in the project's namespace.
pub async fn connect(settings: &Settings, project: &Project) -> anyhow::Result<Connection> {
    Ok(context::connect(settings, &project.namespace).await?)
}

/// What an apply did, as `apply` and `rollback` print it: a line per object
/// applied and pruned, then the revision (without a newline, for the caller
/// to say more on that line).
pub fn applied_report(done: &crate::apply::Applied, project: &Project) -> String {
    let mut out = String::new();
    for object in &done.applied {
        out.push_str(&format!("applied {object}\n"));
    }
    for object in &done.pruned {
        out.push_str(&format!("pruned {object}\n"));
    }
    out.push_str(&format!(
        "revision {} of {} in namespace {}",
        done.revision, project.name, project.namespace
    ));
    out
}

/// Runs `work` holding the app's lock (waiting up to `wait_for_lock` for
/// another run to release it). The lock is released when `work` ends, however
/// it ends; a run killed before then stops renewing it, and it expires. A
/// lock lost part-way (renewal failed for too long) stops `work` where it
/// is, before the Lease expires for others: nothing more is written.
pub async fn under_lock<T>(
    conn: &Connection,
    project: &Project,
    wait_for_lock: Option<Duration>,
    work: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let lock = crate::lock::acquire(
        conn.client.clone(),
        &project.namespace,
        &project.name,
        wait_for_lock,
    )
    .await?;
    let result = tokio::select! {
        result = work => result,
        lost = lock.lost() => Err(lost.into()),
    };
    lock.release().await;
    result
}
