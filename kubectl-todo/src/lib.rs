//! kubectl-todo: build, deploy and diagnose a two-tier app on Kubernetes.
//!
//! The binary only parses arguments; everything it does lives here so that it
//! can be tested without a terminal.

pub mod apply;
pub mod cli;
pub mod commands;
pub mod completion;
pub mod context;
pub mod detect;
pub mod dev;
pub mod doctor;
pub mod format;
pub mod forward;
pub mod history;
pub mod labels;
pub mod lock;
pub mod logs;
pub mod pipeline;
pub mod project;
pub mod render;
pub mod report;
pub mod retry;
pub mod secrets;
pub mod settings;
pub mod urls;
