//! Ctrl-C while a revision is being applied: stop at once, record the
//! revision as interrupted (never as applied, never left "applying"), and say
//! that the next run converges. The exit status is 130, as for any program
//! stopped by SIGINT.

use std::future::Future;

use crate::history::store::Store;
use crate::project::Project;

#[derive(Debug, thiserror::Error)]
#[error("interrupted{}", revision.map(|r| format!("; revision {r} is recorded as interrupted")).unwrap_or_default())]
pub struct Interrupted {
    pub revision: Option<u32>,
}

impl Interrupted {
    pub fn hint(&self) -> Option<String> {
        Some("run the command again: it converges from wherever this run stopped".into())
    }
}

/// Runs `work` unless Ctrl-C comes first.
pub async fn unless_interrupted<T>(
    client: &kube::Client,
    project: &Project,
    work: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::select! {
        result = work => result,
        _ = tokio::signal::ctrl_c() => {
            let store = Store::new(client.clone(), &project.namespace, &project.name);
            let revision = store.mark_interrupted().await.ok().flatten();
            Err(Interrupted { revision }.into())
        }
    }
}
