//! Image references: `<project>-<component>:<tag>`, the tag being
//! image-builder's hash of the build inputs, so that `render` names exactly
//! the images `up` builds. `--image COMPONENT=REF` replaces one (an image
//! built elsewhere, or a registry reference).

use std::collections::BTreeMap;
use std::time::Duration;

use image_builder::build::Engine;
use image_builder::plan::{self, BuilderKind, PlanOptions};

use crate::project::{Project, suggestion};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("--image names component `{name}`, which the project does not have{suggestion}")]
    UnknownComponent { name: String, suggestion: String },
    #[error("--image `{0}` is not COMPONENT=REF")]
    Syntax(String),
    #[error("cannot compute the image tag of component `{component}`")]
    Plan {
        component: String,
        #[source]
        source: image_builder::Error,
    },
}

impl Error {
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Error::UnknownComponent { .. } => {
                "list the components with `kubectl todo status`, or see todo.yaml".into()
            }
            Error::Syntax(_) => {
                "write e.g. `--image backend=registry.example/todo-backend:1.2.3`".into()
            }
            Error::Plan { component, .. } => {
                format!(
                    "fix the component's directory, or name a prebuilt image with `--image {component}=REF`"
                )
            }
        })
    }
}

/// Parses `COMPONENT=REF`.
pub fn parse_override(arg: &str) -> Result<(String, String), Error> {
    match arg.split_once('=') {
        Some((c, r)) if !c.is_empty() && !r.is_empty() => Ok((c.to_string(), r.to_string())),
        _ => Err(Error::Syntax(arg.to_string())),
    }
}

/// The image reference of every component: the override if given, else the planned tag.
pub async fn references(
    project: &Project,
    overrides: &[(String, String)],
) -> Result<BTreeMap<String, String>, Error> {
    let mut refs = BTreeMap::new();
    for (name, reference) in overrides {
        if project.component(name).is_none() {
            return Err(Error::UnknownComponent {
                suggestion: suggestion(name, project.component_names()),
                name: name.clone(),
            });
        }
        refs.insert(name.clone(), reference.clone());
    }
    let missing: Vec<_> = project
        .components
        .iter()
        .filter(|c| !refs.contains_key(&c.name))
        .collect();
    if missing.is_empty() {
        return Ok(refs);
    }
    let options = PlanOptions {
        builder: builder_kind().await,
        ..PlanOptions::default()
    };
    let plans = missing.iter().map(|c| {
        let spec = c.build_spec(project);
        let options = options.clone();
        let name = c.name.clone();
        tokio::task::spawn_blocking(move || (name, plan::plan(&spec, &options)))
    });
    for joined in futures::future::join_all(plans).await {
        let (component, planned) = joined.expect("planning does not panic");
        let planned = planned.map_err(|source| Error::Plan {
            component: component.clone(),
            source,
        })?;
        refs.insert(component, planned.reference());
    }
    Ok(refs)
}

/// The tag depends on the Dockerfile, which depends on the builder, so ask
/// the engine `up` will build with, as `image-builder plan` does.
async fn builder_kind() -> BuilderKind {
    match tokio::time::timeout(Duration::from_secs(3), Engine::connect()).await {
        Ok(Ok(engine)) => engine.builder,
        _ => {
            eprintln!(
                "note: the Docker Engine is not reachable; image tags are computed for the classic builder"
            );
            BuilderKind::Classic
        }
    }
}
