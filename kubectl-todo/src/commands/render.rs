//! `kubectl todo render`: print what `up` applies.

use std::process::ExitCode;

use crate::format::{Format, offer};
use crate::pipeline;
use crate::render::{Inputs, images, objects, to_text};
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kubectl todo render\n  kubectl todo render -o json | jq '.items[].kind'\n  kubectl todo render --offline --image backend=todo-backend:dev\n  kubectl todo render | kubectl apply --server-side --dry-run=server -f -"
)]
pub struct Args {
    /// Output format: YAML documents, or a JSON List.
    #[arg(short, long, value_parser = offer(&[(Format::Yaml, None), (Format::Json, None)]), default_value = "yaml")]
    pub output: Format,
    /// Use this image for a component instead of the one `up` would build (repeatable).
    #[arg(long = "image", value_name = "COMPONENT=REF", value_parser = images::parse_override)]
    pub images: Vec<(String, String)>,
    /// Do not read the Secret's checksum from the cluster (pods then lack it).
    #[arg(long)]
    pub offline: bool,
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let project = settings.load_project()?;
    let mut images = images::validate_overrides(&project, &args.images)?;
    // Planned as `up` plans them, and resolved from the engine's images where
    // it has them, so that the users rendered are those `up` deploys.
    let (plans, engine) = if images.len() < project.components.len() {
        let engine = images::engine().await;
        let builder = engine.as_ref().map(|e| e.builder);
        (images::plans(&project, &images, builder).await?, engine)
    } else {
        (Vec::new(), None)
    };
    images.extend(plans.iter().map(|p| (p.component.clone(), p.reference())));
    let users = pipeline::images::users(engine.as_ref(), &plans).await;
    let secret_checksum = if args.offline {
        None
    } else {
        pipeline::secret_checksum_best_effort(
            pipeline::connect(settings, &project),
            &project,
            settings,
        )
        .await
    };
    let rendered = objects(
        &project,
        &Inputs {
            images,
            secret_checksum,
            users: users.clone(),
        },
    );
    print!("{}", to_text(&rendered, args.output, &users));
    Ok(ExitCode::SUCCESS)
}
