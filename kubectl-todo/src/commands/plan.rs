//! `kubectl todo plan`: the image plan of each component exactly as `up`
//! builds it (stack, port, Dockerfile, build arguments, tag, notes), offline.

use std::collections::BTreeMap;
use std::process::ExitCode;

use image_builder::plan::render_text;

use crate::format::{Format, offer};
use crate::pipeline;
use crate::render::images;
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kubectl todo plan\n  kubectl todo plan frontend\n  kubectl todo plan -o json | jq '.[].tag'"
)]
pub struct Args {
    /// Only these components (default: all).
    #[arg(value_name = "COMPONENT")]
    pub components: Vec<String>,
    /// Output format.
    #[arg(short, long, value_parser = offer(&[(Format::Text, None), (Format::Json, None)]), default_value = "text")]
    pub output: Format,
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let project = settings.load_project()?;
    for name in &args.components {
        project.require_component(name, |known| {
            format!("the components are: {}", known.join(", "))
        })?;
    }
    // Components left out are planned as if overridden: not at all.
    let skipped: BTreeMap<String, String> = project
        .components
        .iter()
        .filter(|c| !args.components.is_empty() && !args.components.contains(&c.name))
        .map(|c| (c.name.clone(), String::new()))
        .collect();
    let engine = images::engine().await;
    let builder = engine.as_ref().map(|e| e.builder);
    let mut plans = images::plans(&project, &skipped, builder).await?;
    let users = pipeline::images::users(engine.as_ref(), &plans).await;
    for plan in &mut plans {
        if let Some(note) = pipeline::images::user_note(plan, &users) {
            plan.notes.push(note);
        }
    }
    match args.output {
        Format::Json => println!("{}", serde_json::to_string_pretty(&plans)?),
        _ => print!("{}", render_text(&plans)),
    }
    Ok(ExitCode::SUCCESS)
}
