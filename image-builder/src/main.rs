use clap::Parser;
use image_builder::cli::Cli;

fn main() {
    std::process::exit(image_builder::cli::main(Cli::parse()));
}
