//! `kubectl todo completion`: a shell's completion script (written by
//! [`crate::completion`]).

use std::process::ExitCode;

pub use crate::completion::Args;

pub fn run(args: Args) -> ExitCode {
    crate::completion::run(args)
}
