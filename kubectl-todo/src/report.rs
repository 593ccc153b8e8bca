//! How errors reach the user: the message, what caused it, and a hint with
//! the command that fixes it.

use std::error::Error as StdError;
use std::fmt::Write as _;

/// The hint of the first error in the chain that has one.
pub fn hint(err: &anyhow::Error) -> Option<String> {
    err.chain().find_map(hint_of)
}

fn hint_of(err: &(dyn StdError + 'static)) -> Option<String> {
    if let Some(e) = err.downcast_ref::<crate::project::Error>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<crate::context::Error>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<crate::commands::doctor::UnknownComponent>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<crate::render::images::Error>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<crate::apply::Error>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<crate::pipeline::MissingSecret>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<crate::secrets::Error>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<crate::logs::Error>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<crate::commands::status::NotDeployed>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<crate::commands::rollback::Error>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<crate::apply::interrupt::Interrupted>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<crate::lock::Error>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<crate::pipeline::RolloutError>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<crate::commands::init::Error>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<crate::commands::plan::UnknownComponent>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<crate::pipeline::images::Error>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<crate::dev::Error>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<crate::dev::WatchError>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<crate::forward::Error>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<crate::forward::PortError>() {
        return e.hint();
    }
    None
}

/// How kubectl-todo ends: the one owner of its exit statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 1: the command failed, and said why.
    Failure,
    /// 2: the command could not run at all (no subcommand, or doctor
    /// could not start its checks).
    Unusable,
    /// 130: Ctrl-C stopped it, as a shell reports a program ended by SIGINT.
    Interrupted,
    /// 143: SIGTERM stopped it (128 + 15).
    Terminated,
    /// 129: SIGHUP stopped it (128 + 1).
    HungUp,
}

impl Exit {
    /// The number the process exits with.
    pub fn code(self) -> u8 {
        match self {
            Exit::Failure => 1,
            Exit::Unusable => 2,
            Exit::Interrupted => 130,
            Exit::Terminated => 143,
            Exit::HungUp => 129,
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit.code())
    }
}

/// The status a command that ended in `err` exits with.
pub fn exit_status(err: &anyhow::Error) -> Exit {
    err.chain()
        .find_map(|e| e.downcast_ref::<crate::apply::interrupt::Interrupted>())
        .map_or(Exit::Failure, |i| i.signal.exit())
}

/// `error: …`, one `caused by: …` line per cause, then `hint: …`.
pub fn render(err: &anyhow::Error) -> String {
    let causes = crate::context::causes(err.as_ref());
    let mut out = format!("error: {}\n", causes.first().cloned().unwrap_or_default());
    for cause in causes.iter().skip(1) {
        let _ = writeln!(out, "  caused by: {cause}");
    }
    if let Some(h) = hint(err) {
        let _ = writeln!(out, "hint: {h}");
    }
    out
}
