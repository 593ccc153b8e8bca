//! Follow mode: a pod watch per component, and one task per container that
//! keeps its output flowing across dropped connections, rotated logs and
//! restarts, resuming from the last line it read.

use std::collections::{HashMap, HashSet};
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::LogParams;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::Shared;
use super::format::Source;
use super::pods;
use super::stream::{End, Reader};

/// Follows every pod of one component until the task is dropped.
pub async fn component(shared: Arc<Shared>, component: String, selector: String) {
    let mut attached: HashMap<String, watch::Sender<Option<Pod>>> = HashMap::new();
    let mut tasks = JoinSet::new();
    // Pods of the first listing get --tail; pods that appear later are read from their start.
    let mut first_listing = true;
    let mut listing: HashSet<String> = HashSet::new();
    let mut failing = false;
    let config = crate::context::live_watcher().labels(&selector);
    let mut events = pin!(watcher(shared.api.clone(), config).default_backoff());
    while let Some(event) = events.next().await {
        while tasks.try_join_next().is_some() {}
        let event = match event {
            Ok(event) => {
                failing = false;
                event
            }
            Err(e) => {
                // A closed sink means the command is ending and dropping its connections.
                if !failing && !shared.sink.is_closed() {
                    eprintln!("warning: lost the watch on the pods of {component} ({e}); retrying");
                }
                failing = true;
                continue;
            }
        };
        match event {
            watcher::Event::Init => listing.clear(),
            watcher::Event::InitApply(pod) => {
                listing.insert(pods::uid(&pod).to_string());
                attach(
                    &shared,
                    &component,
                    &mut attached,
                    &mut tasks,
                    pod,
                    first_listing,
                );
            }
            watcher::Event::InitDone => {
                first_listing = false;
                // Pods deleted while the watch was down are missing from the new listing.
                attached.retain(|uid, pod| {
                    listing.contains(uid) || {
                        pod.send_replace(None);
                        false
                    }
                });
            }
            watcher::Event::Apply(pod) => {
                attach(&shared, &component, &mut attached, &mut tasks, pod, false);
            }
            watcher::Event::Delete(pod) => {
                if let Some(tx) = attached.remove(pods::uid(&pod)) {
                    tx.send_replace(None);
                }
            }
        }
    }
}

/// Hands a pod's new state to its container tasks, starting them for a new pod.
fn attach(
    shared: &Arc<Shared>,
    component: &str,
    attached: &mut HashMap<String, watch::Sender<Option<Pod>>>,
    tasks: &mut JoinSet<()>,
    pod: Pod,
    initial: bool,
) {
    if let Some(tx) = attached.get(pods::uid(&pod)) {
        tx.send_replace(Some(pod));
        return;
    }
    let colour = shared.next_colour();
    let containers: Vec<String> = pods::containers(&pod)
        .into_iter()
        .filter(|c| shared.container.as_deref().is_none_or(|want| want == *c))
        .map(String::from)
        .collect();
    let uid = pods::uid(&pod).to_string();
    let sources: Vec<Arc<Source>> = containers
        .iter()
        .map(|c| {
            Arc::new(Source::new(
                component,
                pods::name(&pod),
                pods::template_hash(&pod),
                c,
                colour,
            ))
        })
        .collect();
    let (tx, _) = watch::channel(Some(pod));
    for source in sources {
        tasks.spawn(container(shared.clone(), source, tx.subscribe(), initial));
    }
    attached.insert(uid, tx);
}

/// Waits between re-opens that bring nothing, so that a container whose
/// stream keeps ending is not polled in a tight loop.
struct Backoff(Duration);

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(2);

    fn next(&mut self) -> Duration {
        let now = self.0;
        self.0 = (now * 2).clamp(Self::FIRST, Self::MAX);
        now
    }

    fn reset(&mut self) {
        self.0 = Duration::ZERO;
    }
}

/// Follows one container of one pod until the pod is gone or output stops.
async fn container(
    shared: Arc<Shared>,
    source: Arc<Source>,
    mut pod: watch::Receiver<Option<Pod>>,
    initial: bool,
) {
    let reader = Reader {
        api: &shared.api,
        source: &source,
        filter: &shared.filter,
        sink: &shared.sink,
    };
    let mut cursor = shared.cursor();
    // The run being read, and the last run read to its end.
    let mut reading: Option<String> = None;
    let mut done: Option<String> = None;
    let mut held: Option<Vec<u8>> = None;
    let mut backoff = Backoff(Duration::ZERO);
    // Failures in a row; one is routine (a connection dropped), two are worth a warning.
    let mut failures = 0;
    loop {
        let instance = match &*pod.borrow_and_update() {
            None => break,
            Some(p) => pods::instance(p, &source.container),
        };
        let Some(instance) = instance.filter(|i| done.as_ref() != Some(&i.id)) else {
            if pod.changed().await.is_err() {
                break;
            }
            continue;
        };
        if let Some(old) = reading.take().filter(|old| *old != instance.id) {
            if done.as_ref() != Some(&old) {
                // The container restarted while its stream was down: the rest of the old run is its `previous` log.
                let params = LogParams {
                    previous: true,
                    since_time: cursor.since_time(),
                    ..LogParams::default()
                };
                match reader.read(params, &mut cursor).await {
                    End::Stopped => return,
                    End::Closed { partial, .. } => held = partial.or(held),
                    End::Failed { .. } => {}
                }
            }
            // The old run is over, so a last line without its newline is all there will be.
            if let Some(partial) = held.take()
                && !reader.finish(partial, &mut cursor).await
            {
                return;
            }
        }
        reading = Some(instance.id.clone());
        let end = reader
            .read(shared.params(true, &cursor, initial), &mut cursor)
            .await;
        let (ended, deleting) = match &*pod.borrow() {
            None => (true, true),
            Some(p) => (
                pods::ended(p, &source.container, &instance.id),
                p.metadata.deletion_timestamp.is_some(),
            ),
        };
        match end {
            End::Stopped => return,
            End::Closed { new_lines, partial } => {
                failures = 0;
                held = partial;
                if new_lines > 0 {
                    backoff.reset();
                    // A run that ended is read once more: a stream cut short looks like a clean end.
                    continue;
                }
                if ended {
                    if let Some(partial) = held.take()
                        && !reader.finish(partial, &mut cursor).await
                    {
                        return;
                    }
                    done = Some(instance.id);
                    continue;
                }
            }
            End::Failed { why, pod_gone } => {
                failures += 1;
                let expected = ended || deleting || pod_gone || shared.sink.is_closed();
                if failures == 2 && !expected {
                    eprintln!(
                        "warning: cannot read the logs of {}/{}/{} ({why}); retrying",
                        source.component, source.pod, source.container
                    );
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff.next()) => {}
            changed = pod.changed() => if changed.is_err() { break },
        }
    }
    if let Some(partial) = held {
        reader.finish(partial, &mut cursor).await;
    }
}
