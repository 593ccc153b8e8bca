//! `kubectl todo history`: the revisions recorded in the cluster.

use std::process::ExitCode;

use crate::format::{Format, offer};
use crate::history;
use crate::pipeline;
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kubectl todo history\n  kubectl todo history -o json | jq '.[-1].images'"
)]
pub struct Args {
    /// Output format.
    #[arg(short, long, value_parser = offer(&[(Format::Table, None), (Format::Json, None)]), default_value = "table")]
    pub output: Format,
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let project = settings.load_project()?;
    let conn = pipeline::connect(settings, &project).await?;
    let revisions = history::revisions(&conn.client, &project.namespace, &project.name)
        .await
        .map_err(crate::apply::Error::history)?;
    match args.output {
        Format::Json => println!("{}", serde_json::to_string_pretty(&revisions)?),
        _ => {
            println!(
                "{:<9} {:<28} {:<9} {:<16} IMAGES",
                "REVISION", "TIME", "OUTCOME", "ORIGIN"
            );
            for r in &revisions {
                let outcome = serde_json::to_value(r.outcome)?;
                let images: Vec<&str> = r.images.values().map(String::as_str).collect();
                println!(
                    "{:<9} {:<28} {:<9} {:<16} {}",
                    r.revision,
                    r.time,
                    outcome.as_str().unwrap_or_default(),
                    r.origin,
                    images.join(",")
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
