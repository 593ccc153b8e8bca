//! `kubectl todo down`: deletes everything the app owns (the ApplySet's
//! members, its parent, the revision history) and waits until it is gone.
//! The Secret stays unless `--purge`: it holds what cannot be rebuilt.

use std::process::ExitCode;
use std::time::Duration;

use crate::pipeline;
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
    let deleted = pipeline::under_lock(
        &conn,
        &project,
        None,
        pipeline::delete_app(
            &conn,
            &project,
            args.purge,
            Duration::from_secs(args.timeout),
        ),
    )
    .await?;
    for object in &deleted {
        println!("deleted {object}");
    }
    if !args.purge {
        println!(
            "kept Secret/{} (delete it with `kubectl todo down --purge`)",
            project.secret.name
        );
    }
    Ok(ExitCode::SUCCESS)
}
