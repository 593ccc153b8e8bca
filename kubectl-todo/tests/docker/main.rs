//! The tests that run real containers through the Docker Engine as well as
//! the emulated cluster, in one binary: `up`, `dev`, `logs`, `doctor`, the
//! forwarder, and every command the docs show.

#[path = "../harness/mod.rs"]
mod harness;
#[path = "../real_apps_support/mod.rs"]
mod real_apps_support;

mod dev;
mod docs_commands;
mod doctor;
mod forward_docker;
mod logs;
mod up;
