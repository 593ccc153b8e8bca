use clap::Parser;
use image_builder::cli::Cli;

fn main() {
    let _cli = Cli::parse();
}
