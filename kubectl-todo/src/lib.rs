//! kubectl-todo: build, deploy and diagnose a two-tier app on Kubernetes.
//!
//! The binary only parses arguments; everything it does lives here so that it
//! can be tested without a terminal.

pub mod cli;
