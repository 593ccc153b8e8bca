//! How errors reach the user: the message, what caused it, and a hint with
//! the command that fixes it.

use std::error::Error as StdError;
use std::fmt::Write as _;

/// An error that knows what the user can do about it. Implement it beside
/// the error type and register the type with [`hinted!`]; [`hints`] then
/// finds it at any depth of a chain without this module naming it. An
/// `impl Hinted` without `hinted!` does not compile: [`Registered`] is a
/// supertrait that only `hinted!` implements, so no hint can be dropped
/// by a forgotten registration.
pub trait Hinted: Registered + StdError + 'static {
    /// The next step, printed as `hint: …`; `None` when the error has no
    /// advice of its own (its causes may still have some).
    fn hint(&self) -> Option<String>;
}

/// How [`hints`] recognises one [`Hinted`] type in a chain of `dyn Error`s:
/// stable Rust cannot ask a trait object whether it implements another
/// trait, so each type hands in its own downcast.
pub struct Registration(for<'e> fn(&'e (dyn StdError + 'static)) -> Option<&'e dyn Hinted>);

impl Registration {
    pub const fn of<T: Hinted>() -> Self {
        Registration(downcast::<T>)
    }
}

fn downcast<'e, T: Hinted>(err: &'e (dyn StdError + 'static)) -> Option<&'e dyn Hinted> {
    err.downcast_ref::<T>().map(|e| e as &dyn Hinted)
}

inventory::collect!(Registration);

/// That a type is registered with [`hinted!`], which implements it together
/// with the registration; implementing it by hand would defeat [`Hinted`]'s
/// guarantee that every hint is found.
pub trait Registered {}

/// Registers a [`Hinted`] error type, next to its `impl Hinted`.
macro_rules! hinted {
    ($t:ty) => {
        impl $crate::report::Registered for $t {}
        ::inventory::submit! { $crate::report::Registration::of::<$t>() }
    };
}
pub(crate) use hinted;

/// Every hint of the chain, outermost first, each once: an error and the
/// causes it wraps may each say what to do about their part.
pub fn hints(err: &(dyn StdError + 'static)) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut level = Some(err);
    while let Some(e) = level {
        let found = inventory::iter::<Registration>
            .into_iter()
            .find_map(|r| (r.0)(e))
            .and_then(Hinted::hint);
        if let Some(h) = found
            && !out.contains(&h)
        {
            out.push(h);
        }
        level = e.source();
    }
    out
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
    for h in hints(err.as_ref()) {
        let _ = writeln!(out, "hint: {h}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("the cause")]
    struct Inner;

    impl Hinted for Inner {
        fn hint(&self) -> Option<String> {
            Some("fix the cause".into())
        }
    }
    hinted!(Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("the outcome")]
    struct Outer(#[source] Inner);

    impl Hinted for Outer {
        fn hint(&self) -> Option<String> {
            Some("run it again".into())
        }
    }
    hinted!(Outer);

    #[test]
    fn every_hint_of_the_chain_is_printed_outermost_first() {
        let err = anyhow::Error::new(Outer(Inner)).context("while deploying");
        assert_eq!(
            render(&err),
            "error: while deploying\n  caused by: the outcome\n  caused by: the cause\n\
             hint: run it again\nhint: fix the cause\n"
        );
    }

    #[test]
    fn a_hint_two_levels_repeat_is_printed_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("the same")]
        struct Same(#[source] Option<Box<Same>>);
        impl Hinted for Same {
            fn hint(&self) -> Option<String> {
                Some("one step".into())
            }
        }
        hinted!(Same);

        let err = anyhow::Error::new(Same(Some(Box::new(Same(None)))));
        assert_eq!(hints(err.as_ref()), ["one step"]);
    }

    /// The compiler makes every `impl Hinted` come with `hinted!`, as long
    /// as nothing else implements [`Registered`]: a hand-written impl would
    /// satisfy it while registering nothing.
    #[test]
    fn only_hinted_implements_registered() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut dirs = vec![src.clone()];
        let mut by_hand = Vec::new();
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs")
                    && path != src.join("report.rs")
                    && std::fs::read_to_string(&path)
                        .unwrap()
                        .contains("Registered for")
                {
                    by_hand.push(path);
                }
            }
        }
        assert!(
            by_hand.is_empty(),
            "implement Registered only through hinted!: {by_hand:?}"
        );
    }
}
