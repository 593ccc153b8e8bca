//! The images `up` deploys: planned with image-builder (the tag is the hash
//! of the build inputs), built in parallel when the engine lacks them, then
//! put where the cluster can run them.

use std::collections::BTreeMap;

use image_builder::build::{self, BuildOptions, Engine, Progress};
use image_builder::check::{self, RunAs};
use image_builder::plan::Plan;
use image_builder::{load, push};

use super::target::Target;

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

/// The numbers each image the engine has runs as: its `USER` as
/// image-builder resolves it (a name through the image's own account files).
/// An image missing or refused is left out: building it says why.
pub async fn users(engine: &Engine, plans: &[Plan]) -> BTreeMap<String, RunAs> {
    let resolved = plans.iter().map(|p| async move {
        let reference = p.reference();
        let img = engine.image(&reference).await.ok()??;
        let run_as = engine
            .run_as(p, &reference, &check::user_of(&img))
            .await
            .ok()?;
        Some((p.component.clone(), run_as))
    });
    futures::future::join_all(resolved)
        .await
        .into_iter()
        .flatten()
        .collect()
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
    let results = build::build_all(engine, plans, &BuildOptions::default(), progress).await;
    let mut built = Vec::new();
    for (plan, result) in plans.iter().zip(results) {
        built.push(result.map_err(|source| Error::Build {
            component: plan.component.clone(),
            source,
        })?);
    }
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
