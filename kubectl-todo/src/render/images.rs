//! Image references: `<project>-<component>:<tag>`, the tag being
//! image-builder's hash of the build inputs, so that `render` names exactly
//! the images `up` builds. `--image COMPONENT=REF` replaces one (an image
//! built elsewhere, or a registry reference).

use image_builder::build::Engine;
use image_builder::plan::{self, BuilderKind, Plan, PlanOptions};
use std::collections::BTreeMap;

use crate::project::{Component, Project, suggestion};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("--image names component `{name}`, which the project does not have{suggestion}")]
    UnknownComponent { name: String, suggestion: String },
    #[error("--image `{0}` is not COMPONENT=REF")]
    Syntax(String),
    #[error("--image reference `{reference}` {why}")]
    Reference {
        reference: String,
        why: image_builder::reference::BadReference,
    },
    #[error("cannot compute the image tag of component `{component}`")]
    Plan {
        component: String,
        #[source]
        source: image_builder::Error,
    },
}

impl crate::report::Hinted for Error {
    fn hint(&self) -> Option<String> {
        Some(match self {
            Error::UnknownComponent { .. } => {
                "list the components with `kubectl todo status`, or see todo.yaml".into()
            }
            Error::Syntax(_) | Error::Reference { .. } => {
                "write e.g. `--image backend=registry.example/todo-backend:1.2.3`".into()
            }
            // The app's own files are fine; what they say is refused, with the fix above.
            Error::Plan {
                component,
                source: image_builder::Error::Invalid { .. },
            } => format!(
                "the component is `{component}` (`kubectl todo config` shows where each of its values comes from); or name a prebuilt image with `--image {component}=REF`"
            ),
            Error::Plan { component, .. } => {
                format!(
                    "fix the component's directory, or name a prebuilt image with `--image {component}=REF`"
                )
            }
        })
    }
}
crate::report::hinted!(Error);

/// Parses `COMPONENT=REF`.
pub fn parse_override(arg: &str) -> Result<(String, String), Error> {
    match arg.split_once('=') {
        Some((c, r)) if !c.is_empty() && !r.is_empty() => {
            match image_builder::reference::check(r) {
                Ok(()) => Ok((c.to_string(), r.to_string())),
                Err(why) => Err(Error::Reference {
                    reference: r.to_string(),
                    why,
                }),
            }
        }
        _ => Err(Error::Syntax(arg.to_string())),
    }
}

/// The image reference of every component: the override if given, else the planned tag.
pub async fn references(
    project: &Project,
    overrides: &[(String, String)],
) -> Result<BTreeMap<String, String>, Error> {
    let mut refs = validate_overrides(project, overrides)?;
    if refs.len() == project.components.len() {
        return Ok(refs);
    }
    for planned in plans(project, &refs, builder_kind().await).await? {
        refs.insert(planned.component.clone(), planned.reference());
    }
    Ok(refs)
}

/// `--image` overrides by component, each naming one the project has.
pub fn validate_overrides(
    project: &Project,
    overrides: &[(String, String)],
) -> Result<BTreeMap<String, String>, Error> {
    overrides
        .iter()
        .map(|(name, reference)| {
            if project.component(name).is_none() {
                return Err(Error::UnknownComponent {
                    suggestion: suggestion(name, project.component_names()),
                    name: name.clone(),
                });
            }
            Ok((name.clone(), reference.clone()))
        })
        .collect()
}

/// The plan of every component without an override, for `builder`.
pub async fn plans(
    project: &Project,
    overrides: &BTreeMap<String, String>,
    builder: Option<BuilderKind>,
) -> Result<Vec<Plan>, Error> {
    let components = project
        .components
        .iter()
        .filter(|c| !overrides.contains_key(&c.name));
    planned(project, components, builder)
        .await
        .into_iter()
        .map(|(component, planned)| planned.map_err(|source| Error::Plan { component, source }))
        .collect()
}

/// The plan of each of `components` for `builder`, by name, or why it
/// cannot be made: what `up` deploys, and what doctor compares with the
/// cluster component by component.
pub async fn planned<'a>(
    project: &Project,
    components: impl IntoIterator<Item = &'a Component>,
    builder: Option<BuilderKind>,
) -> Vec<(String, Result<Plan, image_builder::Error>)> {
    let options = PlanOptions {
        builder,
        ..PlanOptions::default()
    };
    let (names, specs): (Vec<String>, Vec<_>) = components
        .into_iter()
        .map(|c| (c.name.clone(), c.build_spec(project)))
        .unzip();
    names
        .into_iter()
        .zip(plan::plan_all(specs, &options).await)
        .collect()
}

/// The tag depends on the Dockerfile, which depends on the builder, so ask
/// the engine `up` will build with, as `image-builder plan` does; `None`
/// when none answers, for the planner to choose per component.
pub async fn builder_kind() -> Option<BuilderKind> {
    engine().await.map(|e| e.builder)
}

/// The engine `up` builds with, when it answers (it says which builder
/// makes the tags, and which images are built already).
pub async fn engine() -> Option<Engine> {
    let engine = plan::probe_engine().await;
    if engine.is_none() {
        eprintln!("{}", plan::NO_ENGINE_NOTE);
    }
    engine
}
