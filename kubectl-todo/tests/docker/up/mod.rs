//! `kubectl todo up`'s integration tests, in one binary: against the
//! emulator with its scripted runtime, with real containers, with faults
//! injected, and on a terminal.

pub(crate) mod support;

mod docker;
mod faults;
mod init_then_up;
mod scripted;
mod tty;
