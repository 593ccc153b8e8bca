//! `kubectl todo apply`: render and apply with images built elsewhere (no
//! build, no load), under the app's lock.

use std::process::ExitCode;
use std::time::Duration;

use crate::apply::{Options, apply, interrupt};
use crate::pipeline;
use crate::render::{Inputs, Users, images, objects};
use crate::settings::Settings;

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

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let project = settings.load_project()?;
    let conn = pipeline::connect(settings, &project).await?;
    let images = images::references(&project, &args.images).await?;
    // Refused before the lock, and checked again under it, where the
    // Secret may get the key of its checksum.
    pipeline::secret_data(&conn.client, &project).await?;
    let options = Options {
        force_conflicts: args.force_conflicts,
        origin: "apply".into(),
    };
    let work = async {
        let secret_checksum = pipeline::secret_checksum(&conn.client, &project).await?;
        let rendered = objects(
            &project,
            &Inputs {
                images: images.clone(),
                secret_checksum,
                // Images given by reference were not built here: their users are not known.
                users: Users::default(),
            },
        );
        let manifests: Vec<_> = rendered.iter().map(|o| o.to_json()).collect();
        Ok(apply(&conn.client, &project, &manifests, images, &options).await?)
    };
    let wait_for_lock = args.wait_for_lock.map(Duration::from_secs);
    let done = pipeline::under_lock(&conn, &project, wait_for_lock, async {
        interrupt::unless_interrupted(&conn.client, &project, work).await
    })
    .await?;
    println!("{}", pipeline::applied_report(&done, &project));
    Ok(ExitCode::SUCCESS)
}
