//! `kubectl todo rollback [REVISION]`: re-applies the objects a recorded
//! revision applied, as a new revision, under the app's lock. The history
//! holds no secret value, and a rollback must not undo a secret rotation, so
//! the pods' Secret checksum comes from the Secret as it is now.

use std::process::ExitCode;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::PodSpec;
use serde_json::Value;

use crate::apply::{self, Options};
use crate::cli::WaitArgs;
use crate::history::store::{KEEP, Outcome, Store, Summary};
use crate::labels::SECRET_CHECKSUM_ANNOTATION;
use crate::pipeline;
use crate::project::Project;
use crate::retry::retry;
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kubectl todo rollback            # to the last revision applied before the current one\n  kubectl todo rollback 3\n  kubectl todo history             # the revisions to choose from"
)]
pub struct Args {
    /// The revision to go back to (default: the last one applied successfully before the current one).
    #[arg(value_name = "REVISION")]
    pub revision: Option<u32>,
    /// Take over fields another field manager owns.
    #[arg(long)]
    pub force_conflicts: bool,
    /// Wait up to this many seconds for another run to release the app's lock.
    #[arg(long, value_name = "SECONDS")]
    pub wait_for_lock: Option<u64>,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{project} has no revision {revision}{}", recorded(.kept))]
    Unknown {
        project: String,
        revision: u32,
        kept: Vec<u32>,
    },
    #[error(
        "{project} has no revision to roll back to: none applied successfully before revision {current}"
    )]
    NoPrevious { project: String, current: u32 },
    #[error("{project} has no revision yet: nothing to roll back")]
    NoHistory { project: String },
    #[error(
        "the objects of revision {revision} are no longer stored (the history keeps the newest {KEEP} revisions)"
    )]
    Dropped { revision: u32 },
}

fn recorded(revisions: &[u32]) -> String {
    match revisions {
        [] => String::new(),
        [only] => format!(" (only revision {only} is recorded)"),
        [first, .., last] => format!(" (revisions {first} to {last} are recorded)"),
    }
}

impl crate::report::Hinted for Error {
    fn hint(&self) -> Option<String> {
        Some(match self {
            Error::NoHistory { .. } => "deploy it first with `kubectl todo up`".into(),
            Error::Unknown { .. } | Error::NoPrevious { .. } | Error::Dropped { .. } => {
                "list the revisions with `kubectl todo history` and pass one of them: `kubectl todo rollback N`; nothing was changed".into()
            }
        })
    }
}
crate::report::hinted!(Error);

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let project = settings.load_project()?;
    let conn = pipeline::connect(settings, &project).await?;
    // A revision that cannot be rolled back to is the first thing to say;
    // the choice is made again under the lock, where it counts.
    choose(
        &project.name,
        &revisions(&conn.client, &project).await?,
        args.revision,
    )?;
    // Refused before the lock, and checked again under it, where the
    // Secret may get the key of its checksum.
    pipeline::secret_data(&conn.client, &project).await?;
    let wait_for_lock = args.wait_for_lock.map(Duration::from_secs);
    // The lock is held through the rollout, as `up` holds it, so that a failed
    // rollout is recorded in this revision before another run starts.
    pipeline::under_lock(&conn, &project, wait_for_lock, async {
        let work = locked(&conn.client, &project, &args);
        let (target, manifests, done) =
            apply::interrupt::unless_interrupted(&conn.client, &project, work).await?;
        println!(
            "{}: rolled back to revision {target}",
            pipeline::applied_report(&done, &project)
        );
        pipeline::wait_for_revision(
            settings,
            &conn,
            &project,
            &manifests,
            done.revision,
            args.wait.settle(),
        )
        .await
    })
    .await
}

/// Chooses, checks and re-applies the revision; the caller holds the lock.
async fn locked(
    client: &kube::Client,
    project: &Project,
    args: &Args,
) -> anyhow::Result<(u32, Vec<Value>, apply::Applied)> {
    let store = Store::new(client.clone(), &project.namespace, &project.name);
    let secret_checksum = pipeline::secret_checksum(client, project).await?;
    let revisions = revisions(client, project).await?;
    let target = choose(&project.name, &revisions, args.revision)?;
    let mut manifests = retry(|| store.manifests(target.revision))
        .await
        .map_err(apply::Error::history)?
        .ok_or(Error::Dropped {
            revision: target.revision,
        })?;
    for object in &mut manifests {
        set_secret_checksum(object, &project.secret.name, secret_checksum.as_deref())
            .map_err(apply::Error::Manifest)?;
    }
    let options = Options {
        force_conflicts: args.force_conflicts,
        origin: format!("rollback to {}", target.revision),
    };
    let done = apply::apply(client, project, &manifests, target.images.clone(), &options).await?;
    Ok((target.revision, manifests, done))
}

async fn revisions(client: &kube::Client, project: &Project) -> Result<Vec<Summary>, apply::Error> {
    let store = Store::new(client.clone(), &project.namespace, &project.name);
    retry(|| store.list()).await.map_err(apply::Error::history)
}

/// The revision asked for, or the newest one applied successfully before the current one.
fn choose<'a>(
    project: &str,
    revisions: &'a [Summary],
    wanted: Option<u32>,
) -> Result<&'a Summary, Error> {
    let Some(current) = revisions.last() else {
        return Err(Error::NoHistory {
            project: project.to_string(),
        });
    };
    match wanted {
        Some(n) => revisions
            .iter()
            .find(|s| s.revision == n)
            .ok_or_else(|| Error::Unknown {
                project: project.to_string(),
                revision: n,
                kept: revisions.iter().map(|s| s.revision).collect(),
            }),
        None => revisions
            .iter()
            .rev()
            .find(|s| s.revision < current.revision && s.outcome == Outcome::Applied)
            .ok_or_else(|| Error::NoPrevious {
                project: project.to_string(),
                current: current.revision,
            }),
    }
}

/// Gives a recorded Deployment whose pods read `secret` the checksum of that
/// Secret as it is now (none if it no longer exists), as rendering would.
fn set_secret_checksum(
    object: &mut Value,
    secret: &str,
    checksum: Option<&str>,
) -> serde_json::Result<()> {
    if object["kind"] != "Deployment" {
        return Ok(());
    }
    let mut deployment: Deployment = serde_json::from_value(object.clone())?;
    let Some(spec) = deployment.spec.as_mut() else {
        return Ok(());
    };
    if !spec
        .template
        .spec
        .as_ref()
        .is_some_and(|pod| reads_secret(pod, secret))
    {
        return Ok(());
    }
    let annotations = spec
        .template
        .metadata
        .get_or_insert_default()
        .annotations
        .get_or_insert_default();
    match checksum {
        Some(sum) => annotations.insert(SECRET_CHECKSUM_ANNOTATION.into(), sum.into()),
        None => annotations.remove(SECRET_CHECKSUM_ANNOTATION),
    };
    *object = serde_json::to_value(&deployment)?;
    Ok(())
}

/// Whether any container of a pod takes a value from `secret`.
fn reads_secret(pod: &PodSpec, secret: &str) -> bool {
    pod.containers
        .iter()
        .chain(pod.init_containers.iter().flatten())
        .any(|c| {
            let env = c.env.iter().flatten().filter_map(|e| {
                e.value_from
                    .as_ref()?
                    .secret_key_ref
                    .as_ref()
                    .map(|r| &r.name)
            });
            let from = c
                .env_from
                .iter()
                .flatten()
                .filter_map(|e| e.secret_ref.as_ref().map(|r| &r.name));
            env.chain(from).any(|name| name == secret)
        })
}

#[cfg(test)]
mod tests {
    use crate::report::Hinted as _;
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    fn summary(revision: u32, outcome: Outcome) -> Summary {
        Summary {
            revision,
            time: "2026-11-24T00:00:00Z".into(),
            outcome,
            origin: "up".into(),
            images: BTreeMap::new(),
            error: None,
        }
    }

    #[test]
    fn the_default_is_the_last_successful_revision_before_the_current() {
        let revisions = [
            summary(3, Outcome::Applied),
            summary(4, Outcome::Applied),
            summary(5, Outcome::Failed),
            summary(6, Outcome::Failed),
        ];
        assert_eq!(choose("shop", &revisions, None).unwrap().revision, 4);
        assert_eq!(choose("shop", &revisions, Some(3)).unwrap().revision, 3);
        let err = choose("shop", &revisions, Some(2)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "shop has no revision 2 (revisions 3 to 6 are recorded)"
        );
        assert!(err.hint().unwrap().contains("kubectl todo history"));
        let only = [summary(1, Outcome::Applied)];
        assert!(matches!(
            choose("shop", &only, None),
            Err(Error::NoPrevious { current: 1, .. })
        ));
        assert!(matches!(
            choose("shop", &[], Some(1)),
            Err(Error::NoHistory { .. })
        ));
    }

    fn deployment(env: Value, annotations: Value) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "shop-api"},
            "spec": {
                "selector": {"matchLabels": {"app": "api"}},
                "template": {
                    "metadata": {"annotations": annotations},
                    "spec": {"containers": [{"name": "api", "env": env}]},
                },
            },
        })
    }

    #[test]
    fn the_secret_checksum_is_the_current_one() {
        let env = json!([{"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "shop-secrets", "key": "API_KEY"}}}]);
        let mut old = deployment(
            env.clone(),
            json!({SECRET_CHECKSUM_ANNOTATION: "old", "other": "kept"}),
        );
        set_secret_checksum(&mut old, "shop-secrets", Some("new")).unwrap();
        let annotations = &old["spec"]["template"]["metadata"]["annotations"];
        assert_eq!(annotations[SECRET_CHECKSUM_ANNOTATION], "new");
        assert_eq!(annotations["other"], "kept");

        // Recorded before the Secret existed: the pods gain the checksum now.
        let mut bare = deployment(env.clone(), json!({}));
        set_secret_checksum(&mut bare, "shop-secrets", Some("new")).unwrap();
        assert_eq!(
            bare["spec"]["template"]["metadata"]["annotations"][SECRET_CHECKSUM_ANNOTATION],
            "new"
        );

        let mut gone = deployment(env, json!({SECRET_CHECKSUM_ANNOTATION: "old"}));
        set_secret_checksum(&mut gone, "shop-secrets", None).unwrap();
        assert_eq!(
            gone["spec"]["template"]["metadata"]["annotations"],
            json!({})
        );

        // A component that reads no secret never carries the checksum.
        let mut web = deployment(json!([{"name": "PORT", "value": "3000"}]), json!({}));
        set_secret_checksum(&mut web, "shop-secrets", Some("new")).unwrap();
        assert_eq!(
            web["spec"]["template"]["metadata"]["annotations"],
            json!({})
        );
        let mut service = json!({"kind": "Service", "spec": {}});
        set_secret_checksum(&mut service, "shop-secrets", Some("new")).unwrap();
        assert_eq!(service, json!({"kind": "Service", "spec": {}}));
    }
}
