use clap::Parser;
use kubectl_todo::cli::Cli;

fn main() {
    let _cli = Cli::parse();
}
