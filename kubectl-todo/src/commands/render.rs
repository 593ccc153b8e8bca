//! `kubectl todo render`: print what `up` applies.

use std::collections::BTreeMap;
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
    let images = images::references(&project, &args.images).await?;
    let secret_checksum = if args.offline {
        None
    } else {
        pipeline::secret_checksum_best_effort(pipeline::connect(settings, &project), &project).await
    };
    let rendered = objects(
        &project,
        &Inputs {
            images,
            secret_checksum,
            // Nothing is built offline: every component runs as the default user.
            users: BTreeMap::new(),
        },
    );
    print!("{}", to_text(&rendered, args.output));
    Ok(ExitCode::SUCCESS)
}
