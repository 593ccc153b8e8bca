//! One `up` (or `rollback`, `down`) at a time per app: a Lease in the app's
//! namespace. The holder renews it while it works; a holder that was killed
//! stops renewing, and the Lease expires on its own, so an interrupted run
//! never leaves the app locked (Helm's "another operation is in progress").

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams, Preconditions};
use tokio::task::JoinHandle;

/// How long a Lease lives without renewal.
pub const LEASE_SECONDS: i32 = 15;
const RENEW_EVERY: Duration = Duration::from_secs(5);
const POLL_EVERY: Duration = Duration::from_millis(500);

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
}

impl Error {
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Busy { .. } => Some(format!(
                "wait for it to finish (or pass --wait-for-lock); a run that was killed releases the lock within {LEASE_SECONDS}s"
            )),
            Error::Api { .. } => None,
        }
    }
}

/// A held lock; renewed in the background until [`Lock::release`].
pub struct Lock {
    api: Api<Lease>,
    name: String,
    renewer: JoinHandle<()>,
}

fn identity() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host}/{}", std::process::id())
}

fn now() -> MicroTime {
    MicroTime(Timestamp::now())
}

/// The Lease's name for an app.
pub fn name(app: &str) -> String {
    format!("{app}-lock")
}

/// Whether a run holds the Lease now (it has a holder and has not expired).
pub fn is_held(lease: &Lease) -> bool {
    live_age(lease).is_some()
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
    loop {
        let current = api.get_opt(&name).await.map_err(api_err)?;
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
                api.create(&PostParams::default(), &lease).await.map(|_| ())
            }
            Some(lease) => match live_age(lease) {
                Some(age) => {
                    let holder = lease
                        .spec
                        .as_ref()
                        .and_then(|s| s.holder_identity.clone())
                        .unwrap_or_default();
                    if deadline.is_none_or(|d| tokio::time::Instant::now() >= d) {
                        return Err(Error::Busy {
                            app: app.to_string(),
                            holder,
                            age,
                        });
                    }
                    tokio::time::sleep(POLL_EVERY).await;
                    continue;
                }
                None => {
                    // Expired or released: take it over, guarded by its resourceVersion.
                    let mut taken = lease.clone();
                    taken.spec = Some(held_by(&me, Some(lease)));
                    api.replace(&name, &PostParams::default(), &taken)
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
    let renewer = tokio::spawn(renew(api.clone(), name.clone(), me));
    Ok(Lock { api, name, renewer })
}

async fn renew(api: Api<Lease>, name: String, me: String) {
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        let Ok(Some(mut lease)) = api.get_opt(&name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(&me) {
            return;
        }
        spec.renew_time = Some(now());
        let _ = api.replace(&name, &PostParams::default(), &lease).await;
    }
}

impl Lock {
    /// Gives the lock up at once, so that the next run need not wait for it to expire.
    pub async fn release(self) {
        self.renewer.abort();
        if let Ok(Some(lease)) = self.api.get_opt(&self.name).await
            && lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref())
                == Some(identity().as_str())
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
    }
}
