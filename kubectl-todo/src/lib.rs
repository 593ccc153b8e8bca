//! kubectl-todo: build, deploy and diagnose a two-tier app on Kubernetes.
//!
//! The binary only parses arguments; everything it does lives here so that it
//! can be tested without a terminal.

pub mod apply;
pub mod cli;
pub mod completion;
pub mod context;
pub mod doctor;
pub mod down;
pub mod forward;
pub mod history;
pub mod labels;
pub mod lock;
pub mod logs;
pub mod project;
pub mod render;
pub mod report;
pub mod rollback;
pub mod secrets;
pub mod status;
pub mod up;
pub mod urls;

use std::process::ExitCode;

use cli::{Command, GlobalArgs};

/// Runs one subcommand; the exit code is the command's own (0 on success).
pub async fn run(global: GlobalArgs, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Up(args) => up::run(&global, args).await,
        Command::Doctor(args) => doctor::run(&global, args).await,
        Command::Render(args) => render::run::run(&global, args).await,
        Command::Apply(args) => apply::run::run(&global, args).await,
        Command::History(args) => history::run(&global, args).await,
        Command::Status(args) => status::run(&global, args).await,
        Command::Rollback(args) => rollback::run(&global, args).await,
        Command::Down(args) => down::run(&global, args).await,
        Command::Logs(args) => logs::run(&global, args).await,
        Command::Secrets(args) => secrets::run(global, args).await,
        Command::Completion(args) => Ok(completion::run(args)),
    }
}
