//! The images `up` deploys: planned with image-builder (the tag is the hash
//! of the build inputs), built in parallel when the engine lacks them, then
//! put where the cluster can run them.

use std::collections::BTreeMap;

use image_builder::build::{self, BuildOptions, BuildResult, Engine, Progress};
use image_builder::check::{self, Accounts};
use image_builder::plan::Plan;
use image_builder::{load, own, push};

use super::target::Target;
use crate::render::Users;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot build the image of component `{component}`")]
    Build {
        component: String,
        #[source]
        source: image_builder::Error,
    },
    #[error("cannot get image {image} to {target}")]
    Deliver {
        image: String,
        target: String,
        #[source]
        source: image_builder::Error,
    },
}

impl crate::report::Hinted for Error {
    fn hint(&self) -> Option<String> {
        Some(match self {
            Error::Build { component, .. } => format!(
                "fix the component's sources (the cause says how), or deploy a prebuilt image with `--image {component}=REF`; nothing was changed in the cluster"
            ),
            Error::Deliver { .. } => {
                "check the cluster tool named above (or pass --load/--push); nothing was changed in the cluster".into()
            }
        })
    }
}
crate::report::hinted!(Error);

/// Whether the engine already has every planned image (then nothing is built).
pub async fn all_built(engine: &Engine, plans: &[Plan]) -> bool {
    let checks = plans
        .iter()
        .map(|p| async move { engine.image(&p.reference()).await });
    futures::future::join_all(checks)
        .await
        .into_iter()
        .all(|r| matches!(r, Ok(Some(_))))
}

/// What each planned image runs as, as far as it can be known now. An
/// image the engine has (`engine`: `None` when it is not reachable) runs as
/// image-builder resolves its `USER` (a name through the image's own account
/// files); one not built yet runs as the numbers its final `USER` writes, or,
/// when that is a name, as numbers known only once it is built. An image
/// refused is left out: building it says why.
pub async fn users(engine: Option<&Engine>, plans: &[Plan]) -> Users {
    let resolved = plans.iter().map(|p| async move {
        let reference = p.reference();
        let img = match engine {
            Some(engine) => engine.image(&reference).await.ok().flatten(),
            None => None,
        };
        let user = match (&img, engine) {
            (Some(img), Some(engine)) => {
                let user = check::user_of(img);
                return engine
                    .run_as(p, &reference, &user)
                    .await
                    .ok()
                    .map(|run_as| (p.component.clone(), Ok(run_as)));
            }
            _ => own::final_user(&p.dockerfile).user?,
        };
        if check::names_someone(&user) {
            return Some((p.component.clone(), Err(user)));
        }
        let run_as = check::resolve(&user, &Accounts::default()).ok()?;
        Some((p.component.clone(), Ok(run_as)))
    });
    let mut users = Users::default();
    for (component, user) in futures::future::join_all(resolved)
        .await
        .into_iter()
        .flatten()
    {
        match user {
            Ok(run_as) => {
                users.resolved.insert(component, run_as);
            }
            Err(name) => {
                users.after_build.insert(component, name);
            }
        }
    }
    users
}

/// What `plan` and `up --dry-run` say of a component whose `USER` is a name:
/// the numbers it resolved to, or that they are known after the build.
pub fn user_note(plan: &Plan, users: &Users) -> Option<String> {
    if let Some(name) = users.after_build.get(&plan.component) {
        return Some(format!(
            "runs as USER {name}: its UID and GID come from the image's /etc/passwd and /etc/group once it is built, and `up` deploys those numbers"
        ));
    }
    let user = own::final_user(&plan.dockerfile).user?;
    let run_as = users.resolved.get(&plan.component)?;
    check::names_someone(&user).then(|| {
        format!(
            "runs as USER {user}, which is {}:{} in the built image {}",
            run_as.uid,
            run_as.gid,
            plan.reference()
        )
    })
}

/// Builds what is missing, in parallel, and delivers each image to `target`;
/// returns the reference the cluster runs, per component.
pub async fn build_and_deliver(
    engine: &Engine,
    plans: &[Plan],
    target: &Target,
    client: &kube::Client,
    progress: &dyn Progress,
) -> Result<BTreeMap<String, String>, Error> {
    let built = build(engine, plans, progress).await?;
    deliver(engine, &built, target, client, progress).await
}

/// Builds what is missing into the engine, in parallel; nothing leaves
/// this machine. The first component that fails is the error.
pub async fn build(
    engine: &Engine,
    plans: &[Plan],
    progress: &dyn Progress,
) -> Result<Vec<BuildResult>, Error> {
    let results = build::build_all(engine, plans, &BuildOptions::default(), progress).await;
    let mut built = Vec::with_capacity(plans.len());
    for (plan, result) in plans.iter().zip(results) {
        built.push(result.map_err(|source| Error::Build {
            component: plan.component.clone(),
            source,
        })?);
    }
    Ok(built)
}

/// Puts built images where the cluster can run them, in parallel; returns
/// the reference the cluster runs, per component.
pub async fn deliver(
    engine: &Engine,
    built: &[BuildResult],
    target: &Target,
    client: &kube::Client,
    progress: &dyn Progress,
) -> Result<BTreeMap<String, String>, Error> {
    let deliveries = built.iter().map(|b| async move {
        let deployed = match target {
            Target::Nothing => b.image.clone(),
            Target::Load(loader) => {
                progress.event(
                    &b.component,
                    build::Event::Status(format!("loading into {}", loader.describe())),
                );
                let outcome = load::load(&b.image, loader, Some(client)).await;
                outcome.map_err(|source| Error::Deliver {
                    image: b.image.clone(),
                    target: loader.describe(),
                    source,
                })?;
                b.image.clone()
            }
            Target::Push(registry) => {
                progress.event(
                    &b.component,
                    build::Event::Status(format!("pushing to {registry}")),
                );
                push::push(engine, &b.image, registry)
                    .await
                    .map_err(|source| Error::Deliver {
                        image: b.image.clone(),
                        target: registry.clone(),
                        source,
                    })?
            }
        };
        progress.event(&b.component, build::Event::Done(deployed.clone()));
        Ok::<_, Error>((b.component.clone(), deployed))
    });
    futures::future::join_all(deliveries)
        .await
        .into_iter()
        .collect()
}

/// The reference the cluster would run for each plan without building or
/// delivering anything, when that can be known: the local tag, or for a
/// registry the pushed reference the last revision recorded for the same tag.
pub fn expected_references(
    plans: &[Plan],
    target: &Target,
    last: &BTreeMap<String, String>,
) -> Option<BTreeMap<String, String>> {
    plans
        .iter()
        .map(|p| {
            let local = p.reference();
            let deployed = match target {
                Target::Push(registry) => {
                    let prefix = format!("{registry}/{local}@");
                    last.get(&p.component)
                        .filter(|r| r.starts_with(&prefix))?
                        .clone()
                }
                _ => local,
            };
            Some((p.component.clone(), deployed))
        })
        .collect()
}
