use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use kubectl_todo::cli::Cli;
use kubectl_todo::report::Exit;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(command) = cli.command else {
        let _ = Cli::command().print_help();
        return Exit::Unusable.into();
    };
    let settings = cli.global.settle();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprint!("{}", kubectl_todo::report::render(&e.into(), &settings));
            return Exit::Unusable.into();
        }
    };
    match runtime.block_on(kubectl_todo::commands::run(&settings, command)) {
        Ok(code) => code,
        Err(err) => {
            eprint!("{}", kubectl_todo::report::render(&err, &settings));
            kubectl_todo::report::exit_status(&err).into()
        }
    }
}
