//! Command-line definition.

use clap::Parser;

/// Turn an app directory into a minimal, non-root image tagged by a hash of its inputs.
#[derive(Debug, Parser)]
#[command(name = "image-builder", version, about)]
pub struct Cli {}
