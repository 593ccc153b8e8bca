//! `kubectl todo config`: the effective project (todo.yaml over detection
//! over the defaults) and where each value came from.

use std::collections::BTreeMap;
use std::process::ExitCode;

use serde::Serialize;

use crate::format::{Format, offer};
use crate::project::Project;
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kubectl todo config\n  kubectl todo config -o json | jq '.sources'"
)]
pub struct Args {
    /// Output format.
    #[arg(short, long, value_parser = offer(&[(Format::Yaml, None), (Format::Json, None)]), default_value = "yaml")]
    pub output: Format,
}

#[derive(Serialize)]
struct Effective<'a> {
    project: &'a Project,
    /// `todo.yaml:LINE`, `detected from FILE:LINE` or a decision's reason, per value; every value not listed is a default.
    sources: &'a BTreeMap<String, String>,
}

pub fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let project = settings.load_project()?;
    let effective = Effective {
        project: &project,
        sources: &project.sources,
    };
    match args.output {
        Format::Json => println!("{}", serde_json::to_string_pretty(&effective)?),
        _ => print!("{}", serde_yaml_ng::to_string(&effective)?),
    }
    Ok(ExitCode::SUCCESS)
}
