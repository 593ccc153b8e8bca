//! `kubectl todo down`: deletes everything the app owns (the ApplySet's
//! members, its parent, the revision history) and waits until it is gone.
//! The Secret stays unless `--purge`: it holds what cannot be rebuilt.

use std::process::ExitCode;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;

use crate::apply::{self, Error};
use crate::pipeline;
use crate::retry::retry;
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  kubectl todo down\n  kubectl todo down --purge")]
pub struct Args {
    /// Delete the app's Secret too.
    #[arg(long)]
    pub purge: bool,
    /// Give up waiting for the objects to disappear after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value = "120")]
    pub timeout: u64,
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let project = settings.load_project()?;
    let conn = pipeline::connect(settings, &project).await?;
    let namespaces: Api<Namespace> = Api::all(conn.client.clone());
    let exists = retry(|| namespaces.get_opt(&project.namespace))
        .await
        .map_err(|e| Error::api("get", "namespaces", &project.namespace, e))?
        .is_some();
    if !exists {
        eprintln!(
            "nothing to delete: namespace {} does not exist",
            project.namespace
        );
        return Ok(ExitCode::SUCCESS);
    }
    let work = apply::interrupt::unless_signalled(pipeline::delete_app(
        &conn,
        &project,
        args.purge,
        Duration::from_secs(args.timeout),
    ));
    let done = pipeline::under_lock(&conn, &project, None, work).await?;
    for object in &done.deleted {
        println!("deleted {object}");
    }
    if done.kept_secret {
        println!(
            "kept Secret/{} (delete it with `kubectl todo down --purge`)",
            project.secret.name
        );
    } else if done.deleted.is_empty() {
        eprintln!(
            "nothing to delete: {} has nothing in namespace {}",
            project.name, project.namespace
        );
    }
    Ok(ExitCode::SUCCESS)
}
