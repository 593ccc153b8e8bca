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
    if let Some(e) = err.downcast_ref::<crate::doctor::UnknownComponent>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<crate::render::images::Error>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<crate::apply::Error>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<crate::apply::run::MissingSecret>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<crate::secrets::Error>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<crate::logs::Error>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<crate::status::NotDeployed>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<crate::rollback::Error>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<crate::apply::interrupt::Interrupted>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<crate::lock::Error>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<crate::up::Error>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<crate::init::Error>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<crate::plan::UnknownComponent>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<crate::up::ImageError>() {
        return e.hint();
    }
    None
}

/// 130 when Ctrl-C stopped the command (as a shell reports SIGINT), else 1.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err
        .chain()
        .any(|e| e.is::<crate::apply::interrupt::Interrupted>())
    {
        130
    } else {
        1
    }
}

/// `error: …`, one `caused by: …` line per cause, then `hint: …`.
pub fn render(err: &anyhow::Error) -> String {
    let mut out = format!("error: {err}\n");
    for cause in err.chain().skip(1) {
        let _ = writeln!(out, "  caused by: {cause}");
    }
    if let Some(h) = hint(err) {
        let _ = writeln!(out, "hint: {h}");
    }
    out
}
