use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use kubectl_todo::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(command) = cli.command else {
        let _ = Cli::command().print_help();
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprint!("{}", kubectl_todo::report::render(&e.into()));
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(kubectl_todo::commands::run(&cli.global.settle(), command)) {
        Ok(code) => code,
        Err(err) => {
            eprint!("{}", kubectl_todo::report::render(&err));
            ExitCode::from(kubectl_todo::report::exit_code(&err))
        }
    }
}
