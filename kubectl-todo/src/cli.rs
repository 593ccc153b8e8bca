//! Command-line definition, kept in the library so that completions and man
//! pages can be generated from the same source.

use clap::Parser;

/// Take a two-tier app from source to a healthy deployment on Kubernetes.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl-todo",
    bin_name = "kubectl todo",
    version,
    about,
    after_help = "Examples:\n  kubectl todo --help\n  kubectl todo --version"
)]
pub struct Cli {}
