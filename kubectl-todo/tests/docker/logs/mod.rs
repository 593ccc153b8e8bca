//! `kubectl todo logs`'s integration tests, in one binary: arguments,
//! scripted and real containers, following across restarts and rollouts,
//! and a terminal.

#[path = "support.rs"]
pub(crate) mod logs_support;

mod docker;
mod follow;
mod input;
mod scripted;
mod tty;
