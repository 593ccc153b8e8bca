//! A signal while a revision is being applied — Ctrl-C (SIGINT), SIGTERM
//! (what CI, `timeout` and `docker stop` send) or SIGHUP (the terminal
//! closed): stop at once, record the revision as interrupted (never as
//! applied, never left "applying"), and say that the next run converges.
//! The caller releases the lock on the way out. The exit status is the
//! shell's for a program ended by that signal: 130, 143, 129.

use std::future::Future;

use tokio::signal::unix::{SignalKind, signal};

use crate::history::store::Store;
use crate::project::Project;
use crate::report::Exit;
use crate::settings::Settings;

/// The signals that stop a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Interrupt,
    Terminate,
    HangUp,
}

impl Signal {
    /// How the user knows it, in messages and in the revision.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "Ctrl-C",
            Signal::Terminate => "SIGTERM",
            Signal::HangUp => "SIGHUP",
        }
    }

    pub fn exit(self) -> Exit {
        match self {
            Signal::Interrupt => Exit::Interrupted,
            Signal::Terminate => Exit::Terminated,
            Signal::HangUp => Exit::HungUp,
        }
    }
}

/// Resolves when the first of SIGINT, SIGTERM and SIGHUP arrives.
pub async fn signalled() -> Signal {
    let kinds = [
        (SignalKind::interrupt(), Signal::Interrupt),
        (SignalKind::terminate(), Signal::Terminate),
        (SignalKind::hangup(), Signal::HangUp),
    ];
    let waits = kinds.into_iter().filter_map(|(kind, which)| {
        // Installing a handler fails only without a signal driver, and then
        // the signal keeps its default action: ending the process.
        let mut stream = signal(kind).ok()?;
        Some(Box::pin(async move {
            stream.recv().await;
            which
        }))
    });
    futures::future::select_all(waits).await.0
}

#[derive(Debug, thiserror::Error)]
#[error("interrupted by {}{}", signal.name(), revision.map(|r| format!("; revision {r} is recorded as interrupted")).unwrap_or_default())]
pub struct Interrupted {
    pub signal: Signal,
    pub revision: Option<u32>,
}

impl crate::report::Hinted for Interrupted {
    fn hint(&self) -> Option<String> {
        Some("run the command again: it converges from wherever this run stopped".into())
    }
}
crate::report::hinted!(Interrupted);

/// Runs `work` unless a signal comes first; then `work` is dropped where it
/// is (the caller's lock is released on the way out) and the run ends as
/// [`Interrupted`]. For work that records no revision (`down`).
pub async fn unless_signalled<T>(
    work: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::select! {
        result = work => result,
        signal = signalled() => Err(Interrupted { signal, revision: None }.into()),
    }
}

/// For work that blocks a thread where no `select!` can stop it (a read
/// from the terminal): on a signal, `cleanup` runs, the end is reported
/// as every error is, and the process exits with the signal's status.
/// Abort the handle once the work is done.
pub fn exit_on_signal(cleanup: fn(), settings: Settings) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let signal = signalled().await;
        cleanup();
        let err = anyhow::Error::from(Interrupted {
            signal,
            revision: None,
        });
        eprint!("{}", crate::report::render(&err, &settings));
        std::process::exit(i32::from(signal.exit().code()));
    })
}

/// Runs `work` unless a signal comes first.
pub async fn unless_interrupted<T>(
    client: &kube::Client,
    project: &Project,
    work: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::select! {
        result = work => result,
        signal = signalled() => {
            let store = Store::new(client.clone(), &project.namespace, &project.name);
            let revision = store.mark_interrupted(signal.name()).await.ok().flatten();
            Err(Interrupted { signal, revision }.into())
        }
    }
}
