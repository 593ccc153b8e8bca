//! One `up` (or `rollback`, `down`) at a time per app: a Lease in the app's
//! namespace. The holder renews it while it works; a holder that was killed
//! stops renewing, and the Lease expires on its own, so an interrupted run
//! never leaves the app locked (Helm's "another operation is in progress").
//!
//! Renewal retries through failed requests; a holder that has not renewed
//! for [`GIVE_UP_AFTER`] (less than the Lease's life) counts the lock as
//! lost before anyone else can take it, and [`Lock::lost`] tells it to stop.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams, Preconditions};
use tokio::task::JoinHandle;

use crate::retry::retry;

/// How long a Lease lives without renewal.
pub const LEASE_SECONDS: i32 = 15;
const RENEW_EVERY: Duration = Duration::from_secs(5);
/// How soon a failed renewal is tried again.
const RETRY_EVERY: Duration = Duration::from_millis(500);
/// A holder that has not renewed for this long stops: the margin to
/// [`LEASE_SECONDS`] covers a request in flight and clocks that disagree a little.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(LEASE_SECONDS as u64 - 4);
const POLL_EVERY: Duration = Duration::from_millis(500);
const RELEASE_WITHIN: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "another operation on {app} is in progress: {holder} holds the lock (renewed {age}s ago)"
    )]
    Busy {
        app: String,
        holder: String,
        age: i64,
    },
    #[error("cannot take the lock {name} in namespace {namespace}")]
    Api {
        name: String,
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "lost the lock {name} in namespace {namespace}: {why}; stopped before writing anything more"
    )]
    Lost {
        name: String,
        namespace: String,
        why: String,
    },
}

impl crate::report::Hinted for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::Busy { .. } => Some(format!(
                "wait for it to finish (or pass --wait-for-lock); a run that was killed releases the lock within {LEASE_SECONDS}s"
            )),
            Error::Api { .. } => None,
            Error::Lost { .. } => Some(
                "another run may be changing the app now: see `kubectl todo status`, then run the command again".into(),
            ),
        }
    }
}
crate::report::hinted!(Error);

/// A held lock; renewed in the background until [`Lock::release`].
pub struct Lock {
    api: Api<Lease>,
    name: String,
    namespace: String,
    renewer: JoinHandle<()>,
    /// Why the lock was lost, once it is.
    lost: tokio::sync::watch::Receiver<Option<Arc<str>>>,
    /// The holder identity this lock was taken as.
    me: String,
}

/// Who takes the lock: this host and process, and which of the process's
/// acquisitions (the first is unnumbered), so that a Lease this holder
/// finds after a retried write is known to be its own and no other's.
fn identity() -> String {
    static TAKEN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    match TAKEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed) {
        0 => format!("{host}/{}", std::process::id()),
        n => format!("{host}/{}#{}", std::process::id(), n + 1),
    }
}

fn now() -> MicroTime {
    MicroTime(Timestamp::now())
}

/// The Lease's name for an app.
pub fn name(app: &str) -> String {
    format!("{app}-lock")
}

fn holder_of(lease: &Lease) -> Option<&str> {
    lease.spec.as_ref()?.holder_identity.as_deref()
}

/// Whether a run holds the Lease now (it has a holder and has not expired).
pub fn is_held(lease: &Lease) -> bool {
    live_age(lease).is_some()
}

/// The refusal a live holder of `lease` means for another run on `app`.
pub fn busy(lease: &Lease, app: &str) -> Option<Error> {
    let age = live_age(lease)?;
    Some(Error::Busy {
        app: app.to_string(),
        holder: holder_of(lease).unwrap_or_default().to_string(),
        age,
    })
}

/// Seconds since the holder last renewed, when the Lease has not expired.
fn live_age(lease: &Lease) -> Option<i64> {
    let spec = lease.spec.as_ref()?;
    spec.holder_identity.as_ref().filter(|h| !h.is_empty())?;
    let renewed = spec.renew_time.as_ref()?.0;
    let age = Timestamp::now().duration_since(renewed).as_secs();
    let ttl = i64::from(spec.lease_duration_seconds.unwrap_or(LEASE_SECONDS));
    (age < ttl).then_some(age)
}

fn held_by(me: &str, previous: Option<&Lease>) -> LeaseSpec {
    let transitions = previous
        .and_then(|l| l.spec.as_ref())
        .and_then(|s| s.lease_transitions)
        .unwrap_or(0);
    LeaseSpec {
        holder_identity: Some(me.to_string()),
        lease_duration_seconds: Some(LEASE_SECONDS),
        acquire_time: Some(now()),
        renew_time: Some(now()),
        lease_transitions: Some(transitions + previous.map_or(0, |_| 1)),
        ..LeaseSpec::default()
    }
}

/// Takes the app's lock. With `wait`, waits up to that long for a live holder
/// to finish; without, a live holder is an error at once.
pub async fn acquire(
    client: kube::Client,
    namespace: &str,
    app: &str,
    wait: Option<Duration>,
) -> Result<Lock, Error> {
    let api: Api<Lease> = Api::namespaced(client, namespace);
    let name = name(app);
    let me = identity();
    let api_err = |source| Error::Api {
        name: name.clone(),
        namespace: namespace.to_string(),
        source,
    };
    let deadline = wait.map(|w| tokio::time::Instant::now() + w);
    let post = PostParams::default();
    // The holder last said to be waited for: said again only when it changes.
    let mut waiting_for: Option<String> = None;
    loop {
        let current = retry(|| api.get_opt(&name)).await.map_err(api_err)?;
        let attempt = match &current {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        labels: Some(crate::labels::project(app)),
                        ..ObjectMeta::default()
                    },
                    spec: Some(held_by(&me, None)),
                };
                retry(|| api.create(&post, &lease)).await.map(|_| ())
            }
            Some(lease) => match busy(lease, app) {
                // A retried write that had reached the server the first time.
                Some(_) if holder_of(lease) == Some(me.as_str()) => break,
                Some(refusal) => {
                    let (Some(deadline), Some(wait)) = (deadline, wait) else {
                        return Err(refusal);
                    };
                    let now = tokio::time::Instant::now();
                    if now >= deadline {
                        return Err(refusal);
                    }
                    let holder = holder_of(lease).unwrap_or_default().to_string();
                    if waiting_for.as_deref() != Some(holder.as_str()) {
                        eprintln!("{}", waiting_line(lease, wait, deadline - now));
                        waiting_for = Some(holder);
                    }
                    tokio::time::sleep(POLL_EVERY).await;
                    continue;
                }
                None => {
                    // Expired or released: take it over, guarded by its resourceVersion.
                    let mut taken = lease.clone();
                    taken.spec = Some(held_by(&me, Some(lease)));
                    retry(|| api.replace(&name, &post, &taken))
                        .await
                        .map(|_| ())
                }
            },
        };
        match attempt {
            Ok(()) => break,
            // Someone else won the race; look again.
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(api_err(e)),
        }
    }
    let (tell, lost) = tokio::sync::watch::channel(None);
    let renewer = tokio::spawn(renew(api.clone(), name.clone(), me.clone(), tell));
    Ok(Lock {
        api,
        name,
        namespace: namespace.to_string(),
        renewer,
        lost,
        me,
    })
}

/// The progress line of a run waiting for `lease`'s holder: who, since
/// when, and how much longer this run waits.
fn waiting_line(lease: &Lease, wait: Duration, left: Duration) -> String {
    let spec = lease.spec.as_ref();
    let holder = spec
        .and_then(|s| s.holder_identity.as_deref())
        .unwrap_or_default();
    let since = spec
        .and_then(|s| s.acquire_time.as_ref().or(s.renew_time.as_ref()))
        .map(|t| t.0.round(jiff::Unit::Second).unwrap_or(t.0).to_string())
        .unwrap_or_else(|| "an unknown time".into());
    format!(
        "waiting for the lock held by {holder} since {since} (--wait-for-lock {}s, {}s left); nothing is written until it is released",
        wait.as_secs(),
        left.as_secs()
    )
}

/// What one renewal found.
enum Renewal {
    Renewed,
    /// Someone else holds the Lease, or it is gone: retrying cannot help.
    Taken(String),
    /// The request failed; the next try may succeed.
    Failed(Failure),
}

struct Failure {
    cause: String,
    /// No answer from the API server at all (as opposed to an error it sent).
    unreachable: bool,
}

impl From<kube::Error> for Failure {
    fn from(e: kube::Error) -> Self {
        let unreachable = !matches!(e, kube::Error::Api(_));
        let cause = if unreachable {
            std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source())
                .last()
                .map(ToString::to_string)
                .unwrap_or_default()
        } else {
            e.to_string()
        };
        Failure { cause, unreachable }
    }
}

async fn renew_once(api: &Api<Lease>, name: &str, me: &str) -> Renewal {
    let mut lease = match api.get_opt(name).await {
        Ok(Some(lease)) => lease,
        Ok(None) => return Renewal::Taken("the Lease was deleted".into()),
        Err(e) => return Renewal::Failed(e.into()),
    };
    let spec = lease.spec.get_or_insert_default();
    if spec.holder_identity.as_deref() != Some(me) {
        return Renewal::Taken(format!(
            "{} holds it now",
            spec.holder_identity.as_deref().unwrap_or("nobody")
        ));
    }
    spec.renew_time = Some(now());
    match api.replace(name, &PostParams::default(), &lease).await {
        Ok(_) => Renewal::Renewed,
        Err(e) => Renewal::Failed(e.into()),
    }
}

async fn renew(
    api: Api<Lease>,
    name: String,
    me: String,
    lost: tokio::sync::watch::Sender<Option<Arc<str>>>,
) {
    // Measured from before the request, so that the Lease as the server has
    // it never lives longer than this holder believes.
    let mut renewed = tokio::time::Instant::now();
    let mut wait = RENEW_EVERY;
    let mut last_failure: Option<Failure> = None;
    loop {
        tokio::time::sleep(wait).await;
        let started = tokio::time::Instant::now();
        // The client retries some statuses (503, 429) on its own, for
        // minutes: an attempt may take only the time left.
        let left = GIVE_UP_AFTER.saturating_sub(renewed.elapsed());
        let attempt = tokio::time::timeout(left, renew_once(&api, &name, &me)).await;
        let why = match attempt {
            Ok(Renewal::Renewed) => {
                renewed = started;
                wait = RENEW_EVERY;
                last_failure = None;
                continue;
            }
            Ok(Renewal::Taken(why)) => why,
            Ok(Renewal::Failed(failure)) if renewed.elapsed() < GIVE_UP_AFTER => {
                last_failure = Some(failure);
                wait = RETRY_EVERY.min(GIVE_UP_AFTER.saturating_sub(renewed.elapsed()));
                continue;
            }
            Ok(Renewal::Failed(failure)) => lost_because(failure, renewed),
            // Cut short for lack of time: the previous failure says more.
            Err(_) => lost_because(
                last_failure.take().unwrap_or(Failure {
                    cause: "the API server did not answer in time".into(),
                    unreachable: false,
                }),
                renewed,
            ),
        };
        let _ = lost.send(Some(why.into()));
        return;
    }
}

/// Why renewal gave up, last renewed at `renewed`.
fn lost_because(failure: Failure, renewed: tokio::time::Instant) -> String {
    let secs = renewed.elapsed().as_secs();
    if failure.unreachable {
        format!(
            "lost the connection to the cluster ({}) and could not renew it for {secs}s",
            failure.cause
        )
    } else {
        format!("could not renew it for {secs}s ({})", failure.cause)
    }
}

impl Lock {
    /// Resolves once the lock is lost (never, while it is held): the holder
    /// must stop writing then.
    pub async fn lost(&self) -> Error {
        let mut lost = self.lost.clone();
        let why = match lost.wait_for(Option::is_some).await {
            Ok(why) => why.as_deref().unwrap_or_default().to_string(),
            // The renewer ended without saying why: it was stopped by release.
            Err(_) => std::future::pending().await,
        };
        Error::Lost {
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            why,
        }
    }

    /// Gives the lock up at once, so that the next run need not wait for it
    /// to expire. Bounded: against a server that does not answer (the client
    /// retries a 503 for minutes), the run ends anyway and the Lease expires.
    pub async fn release(self) {
        self.renewer.abort();
        let release = async {
            if let Ok(Some(lease)) = self.api.get_opt(&self.name).await
                && lease
                    .spec
                    .as_ref()
                    .and_then(|s| s.holder_identity.as_deref())
                    == Some(self.me.as_str())
            {
                let params = DeleteParams {
                    preconditions: Some(Preconditions {
                        uid: lease.metadata.uid.clone(),
                        resource_version: lease.metadata.resource_version.clone(),
                    }),
                    ..DeleteParams::default()
                };
                let _ = self.api.delete(&self.name, &params).await;
            }
        };
        let _ = tokio::time::timeout(RELEASE_WITHIN, release).await;
    }
}
