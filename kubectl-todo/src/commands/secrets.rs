//! `kubectl todo secrets`: the app's Secret, values never shown (the
//! subcommands live in [`crate::secrets`]).

use std::process::ExitCode;

pub use crate::secrets::Args;
use crate::settings::Settings;

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    crate::secrets::run(settings.clone(), args).await
}
