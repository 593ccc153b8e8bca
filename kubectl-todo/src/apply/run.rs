//! `kubectl todo apply`: render and apply with images built elsewhere (no
//! build, no load), under the app's lock.

use std::process::ExitCode;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use super::{Options, apply};
use crate::cli::GlobalArgs;
use crate::render::{Inputs, images, objects};
use crate::{context, lock};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kubectl todo apply\n  kubectl todo apply --image backend=registry.example/todo-backend:1.2.3\n  kubectl todo apply --force-conflicts"
)]
pub struct Args {
    /// Use this image for a component instead of the one `up` would build (repeatable).
    #[arg(long = "image", value_name = "COMPONENT=REF", value_parser = images::parse_override)]
    pub images: Vec<(String, String)>,
    /// Take over fields another field manager owns.
    #[arg(long)]
    pub force_conflicts: bool,
    /// Wait up to this many seconds for another run to release the app's lock.
    #[arg(long, value_name = "SECONDS")]
    pub wait_for_lock: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
#[error("Secret {name} in namespace {namespace} {problem}")]
pub struct MissingSecret {
    name: String,
    namespace: String,
    problem: String,
}

impl MissingSecret {
    pub fn hint(&self) -> Option<String> {
        Some(format!(
            "create it with `kubectl todo secrets create -n {}`; nothing was changed",
            self.namespace
        ))
    }
}

pub async fn run(global: &GlobalArgs, args: Args) -> anyhow::Result<ExitCode> {
    let project = crate::render::run::project(global)?;
    let conn = context::connect(global, &project.namespace).await?;
    let images = images::references(&project, &args.images).await?;
    let secret_checksum = preflight_secret(&conn.client, &project).await?;
    let rendered = objects(
        &project,
        &Inputs {
            images: images.clone(),
            secret_checksum,
        },
    );
    let manifests: Vec<_> = rendered.iter().map(|o| o.to_json()).collect();
    let lock = lock::acquire(
        conn.client.clone(),
        &project.namespace,
        &project.name,
        args.wait_for_lock.map(Duration::from_secs),
    )
    .await?;
    let options = Options {
        force_conflicts: args.force_conflicts,
        origin: "apply".into(),
    };
    let work = async { Ok(apply(&conn.client, &project, &manifests, images, &options).await?) };
    let result = super::interrupt::unless_interrupted(&conn.client, &project, work).await;
    lock.release().await;
    let done = result?;
    for object in &done.applied {
        println!("applied {object}");
    }
    for object in &done.pruned {
        println!("pruned {object}");
    }
    println!(
        "revision {} of {} in namespace {}",
        done.revision, project.name, project.namespace
    );
    Ok(ExitCode::SUCCESS)
}

/// Stops before any change while a required key is missing, and returns the Secret's checksum.
pub async fn preflight_secret(
    client: &kube::Client,
    project: &crate::project::Project,
) -> anyhow::Result<Option<String>> {
    Ok(preflight_secret_data(client, project)
        .await?
        .and_then(|secret| crate::secrets::checksum(&secret)))
}

/// The Secret, after the checks of [`preflight_secret`], with the key of its checksum.
pub async fn preflight_secret_data(
    client: &kube::Client,
    project: &crate::project::Project,
) -> anyhow::Result<Option<Secret>> {
    let required: Vec<&str> = project
        .secret
        .keys
        .iter()
        .filter(|k| k.required)
        .map(|k| k.name.as_str())
        .collect();
    let api: Api<Secret> = Api::namespaced(client.clone(), &project.namespace);
    let secret = super::retry(|| api.get_opt(&project.secret.name))
        .await
        .map_err(|e| super::Error::api("get", "secrets", &project.secret.name, e))?;
    let missing = |problem: String| MissingSecret {
        name: project.secret.name.clone(),
        namespace: project.namespace.clone(),
        problem,
    };
    let Some(secret) = secret else {
        if required.is_empty() {
            return Ok(None);
        }
        return Err(missing("does not exist".into()).into());
    };
    let data = secret.data.clone().unwrap_or_default();
    let absent: Vec<&str> = required
        .into_iter()
        .filter(|k| data.get(*k).is_none_or(|v| v.0.is_empty()))
        .collect();
    if !absent.is_empty() {
        return Err(missing(format!("lacks the required keys {}", absent.join(", "))).into());
    }
    Ok(Some(
        crate::secrets::with_checksum_key(client, secret).await?,
    ))
}
