//! The revisions recorded in the cluster, and the one rule for what a
//! revision's outcome is now.

pub mod store;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;

use crate::retry::retry;
use store::{Outcome, Store, Summary};

/// The app's revisions, oldest first, as `history` and `status` show them:
/// a revision still `applying` while no run holds the app's lock was left
/// so by a run that was killed (or lost the lock), and is `interrupted`.
pub async fn revisions(
    client: &kube::Client,
    namespace: &str,
    project: &str,
) -> Result<Vec<Summary>, kube::Error> {
    let store = Store::new(client.clone(), namespace, project);
    let leases: Api<Lease> = Api::namespaced(client.clone(), namespace);
    let lock = crate::lock::name(project);
    let (revisions, lease) =
        futures::join!(retry(|| store.list()), retry(|| leases.get_opt(&lock)));
    let held = lease?.is_some_and(|l| crate::lock::is_held(&l));
    let mut revisions = revisions?;
    let newest = revisions.last().map(|s| s.revision);
    for s in &mut revisions {
        // Only the newest revision can be the one a live holder is applying.
        if s.outcome == Outcome::Applying && !(held && Some(s.revision) == newest) {
            s.outcome = Outcome::Interrupted;
        }
    }
    Ok(revisions)
}
