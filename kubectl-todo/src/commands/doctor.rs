//! `kubectl todo doctor`: what is wrong with the environment, the cluster and
//! the app, and the command that fixes each problem (the checks live in
//! [`crate::doctor`]).

use std::process::ExitCode;
use std::time::Duration;

use image_builder::term::{Stream, styled};

use crate::doctor::{self, Ctx, Group, Status, output};
use crate::format::{Format, offer};
use crate::report::Exit;
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kubectl todo doctor\n  kubectl todo doctor --only app --component backend\n  kubectl todo doctor -o json --strict\n\nEvery finding's id has a section in docs/troubleshooting.md.\nExit status: 0 nothing failed, 1 something failed or could not be checked (--strict: warnings too), 2 doctor could not run."
)]
pub struct Args {
    /// Run one group of checks only.
    #[arg(long, value_enum, value_name = "GROUP")]
    pub only: Option<Group>,
    /// Check this component only (app checks).
    #[arg(long, value_name = "NAME")]
    pub component: Option<String>,
    /// Exit 1 on warnings too.
    #[arg(long)]
    pub strict: bool,
    /// Output format.
    #[arg(short = 'o', long, value_parser = offer(&[(Format::Text, None), (Format::Json, None)]), default_value = "text")]
    pub output: Format,
    /// How long to wait for any one answer from the API server or the Docker Engine (5s, 500ms).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = crate::cli::parse_duration)]
    pub timeout: Duration,
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let ctx = match context(settings, &args) {
        Ok(ctx) => ctx,
        Err(e) => {
            eprint!("{}", crate::report::render(&e, settings));
            return Ok(Exit::Unusable.into());
        }
    };
    let mut findings = doctor::diagnose(&ctx, args.only).await;
    for f in &mut findings {
        f.hint = f.hint.take().map(|h| crate::report::commands(&h, settings));
    }
    match args.output {
        Format::Json => print!("{}", output::json(&findings)),
        _ => print!("{}", output::text(&findings, styled(Stream::Stdout))),
    }
    let failed = findings.iter().any(|f| {
        matches!(f.status, Status::Fail | Status::Unknown)
            || (args.strict && f.status == Status::Warn)
    });
    Ok(if failed {
        Exit::Failure.into()
    } else {
        ExitCode::SUCCESS
    })
}

fn context(settings: &Settings, args: &Args) -> anyhow::Result<Ctx> {
    let project = settings.load_project()?;
    let components = match &args.component {
        None => project.components.clone(),
        Some(name) => vec![
            project
                .require_component(name, |known| format!("pass one of: {}", known.join(", ")))?
                .clone(),
        ],
    };
    Ok(Ctx::new(settings, project, components, args.timeout))
}
