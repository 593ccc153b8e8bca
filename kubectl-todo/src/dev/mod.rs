//! `kubectl todo dev`: the inner loop. `up`'s pipeline once, then a turn of
//! it after every change to the watched components' build contexts,
//! `todo.yaml` or the Secret: only images whose input digest changed are
//! built, and a change that alters no digest and no setting does nothing.
//! Meanwhile every watched component is forwarded to a stable local port
//! (per connection, to a ready pod, so rollouts do not break it) and its
//! logs stream to stdout. A failed turn (a build error, a crash loop) is
//! reported and the loop goes on, the last good revision still serving.

mod cycle;
mod watch;

use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use image_builder::build::Engine;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::{mpsc, watch as signal_watch};

use crate::apply::interrupt::{self, Signal};
use crate::forward::{self, Forward, PortChoice};
use crate::pipeline::{self, target::Target};
use crate::project::{Project, UnknownComponent};
use crate::settings::Settings;
use cycle::{Early, Outcome, State, Stopped, Turn};
use image_builder::load::LoadInto;

pub use watch::Error as WatchError;

/// The session, as the command line settles it.
#[derive(Debug, Clone)]
pub struct Options {
    /// Components to watch, forward and follow (empty: all).
    pub components: Vec<String>,
    /// Where the forwards listen.
    pub address: IpAddr,
    pub logs: bool,
    pub down_on_exit: bool,
    pub load: Option<LoadInto>,
    pub push: Option<String>,
    /// Each rollout's limit.
    pub timeout: Duration,
    /// How long the files must be quiet before a turn starts.
    pub debounce: Duration,
}

/// What makes the loop take a turn.
enum Trigger {
    Files(Vec<watch::Touched>),
    Secret,
    /// The file watcher failed (the inotify limit, a directory that cannot be read).
    Broken(anyhow::Error),
}

pub async fn run(settings: &Settings, options: Options) -> anyhow::Result<ExitCode> {
    let project = settings.load_project()?;
    let watched = select(&project, &options.components)?;
    check_pinned_ports(&project, &watched, options.address)?;
    let (conn, engine) = tokio::join!(pipeline::connect(settings, &project), Engine::connect());
    let conn = conn?;
    let engine = engine?;
    let target = Target::choose(options.push.as_deref(), options.load, &conn.context);

    let (stop_tx, stop) = signal_watch::channel(None);
    tokio::spawn(async move {
        let signal = interrupt::signalled().await;
        let _ = stop_tx.send(Some(signal));
    });

    let (events_tx, mut triggers) = mpsc::unbounded_channel();
    let mut files = watch::Files::start(&project.root, events_tx.clone())?;
    let secret_watch = tokio::spawn(watch_secret(
        Api::namespaced(conn.client.clone(), &project.namespace),
        project.secret.name.clone(),
        events_tx,
    ));

    let mut state = State::default();
    let mut forwards: Vec<(String, Forward)> = Vec::new();
    let mut logs: Option<tokio::task::JoinHandle<()>> = None;
    let mut project = project;
    let mut first = true;
    let mut pending: Vec<watch::Touched> = Vec::new();
    let mut early = None;
    let stopped = loop {
        if !first {
            // Wait for a change (or the end), then for the files to be quiet.
            let mut secret_changed = false;
            let mut stop_wait = stop.clone();
            let trigger = tokio::select! {
                signal = stop_wait.wait_for(Option::is_some) => {
                    break signal.ok().and_then(|s| *s);
                }
                trigger = next_trigger(&mut triggers, &mut files) => trigger,
            };
            match trigger {
                Some(Trigger::Files(touched)) => pending.extend(touched),
                Some(Trigger::Secret) => secret_changed = true,
                Some(Trigger::Broken(e)) => {
                    eprint!("{}", crate::report::render(&e, settings));
                    continue;
                }
                None => break None,
            }
            let (quiet, started) =
                quiet_period(&mut triggers, &mut files, options.debounce, || {
                    Early::start(settings, &engine, &watched, &state)
                })
                .await;
            early = started;
            for t in quiet {
                match t {
                    Trigger::Files(touched) => pending.extend(touched),
                    Trigger::Secret => secret_changed = true,
                    Trigger::Broken(e) => eprint!("{}", crate::report::render(&e, settings)),
                }
            }
            if pending.is_empty() && !secret_changed {
                continue;
            }
            if secret_changed {
                // A rotated Secret changes its checksum, which the next apply
                // puts in the pod templates: the pods using it roll.
                state.running = None;
            }
            match settings.load_project() {
                Ok(p) => project = p,
                Err(e) => {
                    eprint!("{}", crate::report::render(&e.into(), settings));
                    eprintln!("still watching; the running revision is unchanged");
                    pending.clear();
                    continue;
                }
            }
            if let Err(e) = select(&project, &watched) {
                eprint!("{}", crate::report::render(&e.into(), settings));
                eprintln!("still watching; the running revision is unchanged");
                pending.clear();
                continue;
            }
        }
        let turn = Turn {
            settings,
            conn: &conn,
            engine: &engine,
            target: &target,
            watched: &watched,
            wait: pipeline::Wait {
                timeout: options.timeout,
                no_wait: false,
            },
            first,
            stop: stop.clone(),
        };
        let touched = std::mem::take(&mut pending);
        let outcome = turn
            .run(&project, &mut state, &mut files, early.take())
            .await;
        match outcome {
            Ok(Outcome::Same) => {}
            Ok(Outcome::Unchanged { revision }) => {
                if first {
                    eprintln!("revision {revision} already runs this code and configuration");
                }
            }
            Ok(Outcome::Applied { revision, took }) => {
                let why = if first {
                    String::new()
                } else {
                    format!(" after {}", describe(&touched))
                };
                eprintln!(
                    "revision {revision} is running ({:.1}s{why})",
                    took.as_secs_f64()
                );
            }
            Err(e) => {
                if let Some(Stopped(signal)) = e.downcast_ref::<Stopped>() {
                    break Some(*signal);
                }
                if first && !keeps_watching(&e) {
                    return Err(e);
                }
                eprint!("{}", crate::report::render(&e, settings));
                eprintln!(
                    "still watching; {}",
                    if state.deployed.is_empty() {
                        "nothing is deployed yet: the next change tries again"
                    } else {
                        "the last good revision keeps serving; the next change tries again"
                    }
                );
            }
        }
        if !state.deployed.is_empty() {
            start_forwards(
                settings,
                &conn,
                &project,
                &watched,
                options.address,
                &mut forwards,
            )
            .await;
            if options.logs && logs.is_none() {
                logs = Some(follow_logs(settings, &project, &conn, &watched));
            }
        }
        if first {
            // Said once the first turn is over: a run that cannot start
            // (no cluster, no Secret) never claims to be watching.
            eprintln!(
                "watching {} in namespace {} for changes (Ctrl-C to stop)",
                watched.join(", "),
                project.namespace
            );
        }
        first = false;
        if stop.borrow().is_some() {
            break *stop.borrow();
        }
    };

    if let Some(logs) = logs {
        logs.abort();
    }
    drop(forwards);
    secret_watch.abort();
    let signal = stopped.unwrap_or(Signal::Interrupt);
    if options.down_on_exit {
        eprintln!(
            "stopped ({}); removing the app (--down-on-exit)",
            signal.name()
        );
        let removed = pipeline::under_lock(
            &conn,
            &project,
            None,
            pipeline::delete_app(&conn, &project, false, Duration::from_secs(120)),
        )
        .await?;
        let kept = if removed.kept_secret {
            format!(
                "; kept Secret/{} (`kubectl todo down --purge` deletes it)",
                project.secret.name
            )
        } else {
            String::new()
        };
        eprintln!(
            "removed {} objects of {} from namespace {}{kept}",
            removed.deleted.len(),
            project.name,
            project.namespace,
        );
    } else {
        eprintln!(
            "stopped ({}); {} keeps running in namespace {} (`kubectl todo down` removes it)",
            signal.name(),
            project.name,
            project.namespace
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The components asked for, or all; an unknown name stops before anything happens.
fn select(project: &Project, asked: &[String]) -> Result<Vec<String>, UnknownComponent> {
    if asked.is_empty() {
        return Ok(project
            .component_names()
            .into_iter()
            .map(String::from)
            .collect());
    }
    let mut out: Vec<String> = Vec::new();
    for name in asked {
        project.require_component(name, |known| {
            format!(
                "name one of {} (or none, to watch them all): `kubectl todo dev {}`; nothing was changed",
                known.join(", "),
                known.first().map(String::as_str).unwrap_or_default()
            )
        })?;
        if !out.contains(name) {
            out.push(name.clone());
        }
    }
    Ok(out)
}

/// A `devPort` that another process holds is an error before anything is
/// built or applied, naming the holder when /proc shows it.
fn check_pinned_ports(
    project: &Project,
    watched: &[String],
    address: IpAddr,
) -> Result<(), forward::PortError> {
    for component in project
        .components
        .iter()
        .filter(|c| watched.contains(&c.name) && c.dev_port.is_some())
    {
        forward::port::bind(&choice(project, component, address))?;
    }
    Ok(())
}

fn choice(project: &Project, component: &crate::project::Component, address: IpAddr) -> PortChoice {
    PortChoice {
        address,
        pinned: component.dev_port,
        own: component.port,
        project: project.name.clone(),
        component: component.name.clone(),
    }
}

/// Failures of a turn that the next change may fix; anything else (no
/// cluster, no Secret) on the first turn ends the session.
fn keeps_watching(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.is::<pipeline::images::Error>()
            || e.is::<pipeline::RolloutError>()
            || e.is::<crate::render::images::Error>()
            || e.is::<image_builder::Error>()
    })
}

/// Starts the forwards of watched components that have none yet (their
/// Service exists once a turn applied it); each URL is printed once.
async fn start_forwards(
    settings: &Settings,
    conn: &crate::context::Connection,
    project: &Project,
    watched: &[String],
    address: IpAddr,
    forwards: &mut Vec<(String, Forward)>,
) {
    for component in project
        .components
        .iter()
        .filter(|c| watched.contains(&c.name))
    {
        if forwards.iter().any(|(name, _)| *name == component.name) {
            continue;
        }
        let target = forward::Target {
            namespace: project.namespace.clone(),
            service: crate::render::object_name(project, component),
            port: component.port,
        };
        let service = target.to_string();
        let name = component.name.clone();
        let sink: forward::Sink = Arc::new(move |event| match event {
            forward::Event::Retrying { .. } => {}
            other => eprintln!("{name}: forward: {other}"),
        });
        match Forward::start(
            conn.client.clone(),
            target,
            &choice(project, component, address),
            forward::Options::default(),
            sink,
        )
        .await
        {
            Ok(forward) => {
                eprintln!("{}: {} → {service}", component.name, forward.url());
                forwards.push((component.name.clone(), forward));
            }
            Err(e) => eprint!("{}", crate::report::render(&e.into(), settings)),
        }
    }
}

/// The logs of the watched components from now on, through every rollout.
fn follow_logs(
    settings: &Settings,
    project: &Project,
    conn: &crate::context::Connection,
    watched: &[String],
) -> tokio::task::JoinHandle<()> {
    let args = crate::logs::Args {
        components: watched.to_vec(),
        follow: true,
        since: None,
        // The pods running now have said what they had to say; new pods are read from their start.
        tail: 0,
        timestamps: false,
        previous: false,
        container: None,
        grep: Vec::new(),
        exclude: Vec::new(),
        output: crate::format::Format::Text,
    };
    let (settings, project, conn) = (settings.clone(), project.clone(), conn.clone());
    tokio::spawn(async move {
        if let Err(e) = crate::logs::run(&project, conn, args).await {
            eprint!("{}", crate::report::render(&e, &settings));
        }
    })
}

/// Follows the Secret; new data (rotated, edited, deleted) is a trigger.
/// Its metadata is not: the first turn itself annotates it with its
/// checksum key.
async fn watch_secret(
    api: Api<Secret>,
    name: String,
    triggers: mpsc::UnboundedSender<notify::Result<notify::Event>>,
) {
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut seen = None;
    let mut events = std::pin::pin!(watcher(api, config).default_backoff());
    while let Some(event) = events.next().await {
        let data = match event {
            Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s)) => Some(s.data),
            Ok(watcher::Event::Delete(_)) => None,
            _ => continue,
        };
        if seen.as_ref().is_some_and(|old| *old != data) {
            let _ = triggers.send(Ok(secret_event()));
        }
        seen = Some(data);
    }
}

/// The Secret's changes travel with the file events, marked by an event kind files never have.
fn secret_event() -> notify::Event {
    notify::Event::new(notify::EventKind::Other).set_info(SECRET_MARK)
}

const SECRET_MARK: &str = "kubectl-todo/secret";

/// The next thing that asks for a turn; `None` when no source is left.
async fn next_trigger(
    events: &mut mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
    files: &mut watch::Files,
) -> Option<Trigger> {
    loop {
        let event = events.recv().await?;
        if let Some(trigger) = classify(event, files) {
            return Some(trigger);
        }
    }
}

fn classify(event: notify::Result<notify::Event>, files: &mut watch::Files) -> Option<Trigger> {
    match event {
        Ok(e) if e.info() == Some(SECRET_MARK) => Some(Trigger::Secret),
        Ok(e) => {
            if matches!(e.kind, notify::EventKind::Remove(_)) {
                files.forget_removed();
            }
            let touched = files.relevant(&e);
            (!touched.is_empty()).then_some(Trigger::Files(touched))
        }
        Err(e) => Some(Trigger::Broken(
            anyhow::Error::new(e).context("the file watcher failed"),
        )),
    }
}

/// Gathers what arrives until `debounce` passes with nothing relevant (a
/// `git checkout` is one turn, not hundreds); files that never stop
/// changing (a log written into a context) get a turn after 5 s, or four
/// debounces when that is longer. Once the
/// files have been quiet for a third of it, the images the turn will need
/// start building (`start_early`); any later change drops that build, and
/// the next third of quiet starts another.
async fn quiet_period<F, Fut, E>(
    events: &mut mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
    files: &mut watch::Files,
    debounce: Duration,
    start_early: F,
) -> (Vec<Trigger>, Option<E>)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<E>>,
{
    let mut out = Vec::new();
    let mut early = None;
    let mut tried = false;
    let mut last = tokio::time::Instant::now();
    let until = last + (debounce * 4).max(Duration::from_secs(5));
    loop {
        let deadline = (last + debounce).min(until);
        tokio::select! {
            event = tokio::time::timeout_at(deadline, events.recv()) => match event {
                Ok(Some(event)) => {
                    if let Some(trigger) = classify(event, files) {
                        out.push(trigger);
                        last = tokio::time::Instant::now();
                        early = None;
                        tried = false;
                    }
                }
                Ok(None) | Err(_) => return (out, early),
            },
            () = tokio::time::sleep_until(last + debounce / 3), if !tried => {
                tried = true;
                early = start_early().await;
            }
        }
    }
}

/// `backend/app/main.py`, or `3 files in backend, todo.yaml`.
fn describe(touched: &[watch::Touched]) -> String {
    if touched.is_empty() {
        return "a change to the Secret".into();
    }
    let mut paths: Vec<&std::path::Path> = touched.iter().map(|t| t.path.as_path()).collect();
    paths.sort();
    paths.dedup();
    let first = paths[0].display().to_string();
    match paths.len() {
        1 => format!("a change to {first}"),
        n => format!("changes to {first} and {} more", n - 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// An early build that records when it started and whether it was dropped.
    struct Token {
        at: Duration,
        dropped: Arc<Mutex<Vec<Duration>>>,
    }

    impl Drop for Token {
        fn drop(&mut self) {
            self.dropped.lock().unwrap().push(self.at);
        }
    }

    fn project_event(root: &std::path::Path) -> notify::Result<notify::Event> {
        Ok(
            notify::Event::new(notify::EventKind::Modify(notify::event::ModifyKind::Any))
                .add_path(root.join(crate::project::FILE_NAME)),
        )
    }

    /// Changes at `at` (after the one that began the period); returns the
    /// triggers, when each early build started, which were dropped, and
    /// the one handed to the turn.
    async fn period(
        debounce: Duration,
        at: &[u64],
    ) -> (usize, Vec<Duration>, Vec<Duration>, Option<Duration>) {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut files = watch::Files::start(&root, tx.clone()).unwrap();
        let begun = tokio::time::Instant::now();
        for &ms in at {
            let (tx, event) = (tx.clone(), project_event(&root));
            tokio::spawn(async move {
                tokio::time::sleep_until(begun + Duration::from_millis(ms)).await;
                tx.send(event).unwrap();
            });
        }
        let dropped = Arc::new(Mutex::new(Vec::new()));
        let starts = Arc::new(Mutex::new(Vec::new()));
        let (out, early) = quiet_period(&mut rx, &mut files, debounce, || {
            let at = begun.elapsed();
            starts.lock().unwrap().push(at);
            let dropped = dropped.clone();
            async move { Some(Token { at, dropped }) }
        })
        .await;
        let handed = early.as_ref().map(|t| t.at);
        std::mem::forget(early);
        let starts = starts.lock().unwrap().clone();
        let dropped = dropped.lock().unwrap().clone();
        (out.len(), starts, dropped, handed)
    }

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[tokio::test(start_paused = true)]
    async fn the_early_build_starts_after_a_third_of_the_quiet_and_goes_to_the_turn() {
        let (triggers, starts, dropped, handed) = period(MS(150), &[]).await;
        assert_eq!(triggers, 0);
        assert_eq!(starts, [MS(50)]);
        assert!(dropped.is_empty(), "{dropped:?}");
        assert_eq!(handed, Some(MS(50)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_after_it_started_drops_it_and_the_next_quiet_starts_another() {
        let (triggers, starts, dropped, handed) = period(MS(150), &[60, 100]).await;
        assert_eq!(triggers, 2);
        // Started at 50 ms, dropped by the change at 60; none until 100 +
        // 50 (the change at 100 came first); the turn gets that one.
        assert_eq!(starts, [MS(50), MS(150)]);
        assert_eq!(dropped, [MS(50)]);
        assert_eq!(handed, Some(MS(150)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_faster_than_the_settling_starts_nothing_until_it_ends() {
        let burst: Vec<u64> = (1..=20).map(|i| i * 30).collect();
        let (triggers, starts, dropped, handed) = period(MS(150), &burst).await;
        assert_eq!(triggers, 20);
        assert_eq!(starts, [MS(650)]);
        assert!(dropped.is_empty(), "{dropped:?}");
        assert_eq!(handed, Some(MS(650)));
    }

    #[tokio::test(start_paused = true)]
    async fn changes_that_never_stop_end_the_period_after_5s_with_the_last_early_build() {
        let steady: Vec<u64> = (1..=100).map(|i| i * 100).collect();
        let (triggers, starts, dropped, handed) = period(MS(150), &steady).await;
        assert_eq!(triggers, 49);
        assert_eq!(starts.len(), 50);
        assert_eq!(dropped.len(), 49);
        assert_eq!(handed, Some(MS(4950)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_debounce_is_waited_for_in_full() {
        let (triggers, starts, dropped, handed) =
            period(Duration::from_secs(3), &[1500, 3000, 4500, 6000]).await;
        assert_eq!(triggers, 4);
        assert_eq!(starts, [MS(1000), MS(2500), MS(4000), MS(5500), MS(7000)]);
        assert_eq!(dropped.len(), 4);
        assert_eq!(handed, Some(MS(7000)));
    }
}
