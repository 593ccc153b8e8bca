//! `kubectl todo logs`: every pod of a component, merged and followed (the
//! streaming lives in [`crate::logs`]).

use std::process::ExitCode;

pub use crate::logs::Args;
use crate::pipeline;
use crate::settings::Settings;

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let project = settings.load_project()?;
    let conn = pipeline::connect(settings, &project).await?;
    crate::logs::run(&project, conn, args).await
}
