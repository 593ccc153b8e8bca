//! The subcommands: thin drivers that read their settled arguments, call the
//! pipeline and library layers, and print. A command never imports another
//! command (`.ci/command-imports` fails the build if one does): a step two
//! commands share belongs in [`crate::pipeline`].

pub mod apply;
pub mod completion;
pub mod config;
pub mod dev;
pub mod doctor;
pub mod down;
pub mod history;
pub mod init;
pub mod logs;
pub mod plan;
pub mod render;
pub mod rollback;
pub mod secrets;
pub mod status;
pub mod up;

use std::process::ExitCode;

use crate::cli::Command;
use crate::settings::Settings;

/// Runs one subcommand; the exit code is the command's own (0 on success).
pub async fn run(settings: &Settings, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Up(args) => up::run(settings, args).await,
        Command::Doctor(args) => doctor::run(settings, args).await,
        Command::Render(args) => render::run(settings, args).await,
        Command::Apply(args) => apply::run(settings, args).await,
        Command::History(args) => history::run(settings, args).await,
        Command::Status(args) => status::run(settings, args).await,
        Command::Rollback(args) => rollback::run(settings, args).await,
        Command::Down(args) => down::run(settings, args).await,
        Command::Logs(args) => logs::run(settings, args).await,
        Command::Secrets(args) => secrets::run(settings, args).await,
        Command::Completion(args) => Ok(completion::run(args)),
        Command::Init(args) => init::run(settings, args),
        Command::Config(args) => config::run(settings, args),
        Command::Plan(args) => plan::run(settings, args).await,
        Command::Dev(args) => dev::run(settings, args).await,
    }
}
