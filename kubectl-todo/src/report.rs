//! How errors reach the user: the message, what caused it, and a hint with
//! the command that fixes it.
//!
//! A hint writes the commands it names between backticks, as the user would
//! type them without global flags. [`commands`] adds the flags of the run
//! being reported (`--project`, `--kubeconfig`, `--context`, `-n`) when the
//! hint is printed, so that a pasted fix acts on the cluster, namespace and
//! folder the failed run did; no hint formats those flags itself.

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::path::Path;

use crate::settings::Settings;

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

/// `text` with every command it names between backticks completed with the
/// global flags of the run: a `kubectl todo …` command gets the ones the
/// user gave, a `kubectl …` command the kubeconfig and context (it names
/// its namespace itself). A flag the command already carries is kept as it
/// is; values are quoted for the shell. Both programs take global flags
/// anywhere, so they go last, where they change nothing the hint says.
pub fn commands(text: &str, settings: &Settings) -> String {
    text.split('`')
        .enumerate()
        .map(|(i, part)| {
            let flags = if i % 2 == 0 {
                return part.to_string();
            } else if runs(part, "kubectl todo") {
                todo_flags(settings)
            } else if runs(part, "kubectl") {
                cluster_flags(settings)
            } else {
                return part.to_string();
            };
            // Flags go before a `--`, after which words are another program's.
            let (words, after) = part.find(" -- ").map_or((part, ""), |at| part.split_at(at));
            let mut line = words.to_string();
            for (flag, value) in flags {
                if !carries(words, flag) {
                    let _ = write!(line, " {flag} {}", quoted(&value));
                }
            }
            line + after
        })
        .collect::<Vec<_>>()
        .join("`")
}

/// Whether `command` runs `program`.
fn runs(command: &str, program: &str) -> bool {
    command
        .strip_prefix(program)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
}

/// Whether `command` sets `flag` already (`--context X`, `--context=X`, or
/// `-n` for `--namespace`).
fn carries(command: &str, flag: &str) -> bool {
    command.split_whitespace().any(|word| {
        word == flag
            || word.starts_with(&format!("{flag}="))
            || (flag == "-n" && (word == "--namespace" || word.starts_with("--namespace=")))
    })
}

fn cluster_flags(settings: &Settings) -> Vec<(&'static str, String)> {
    let mut flags = Vec::new();
    if let Some(kubeconfig) = &settings.kubeconfig {
        flags.push(("--kubeconfig", kubeconfig.display().to_string()));
    }
    if let Some(context) = &settings.context {
        flags.push(("--context", context.clone()));
    }
    flags
}

fn todo_flags(settings: &Settings) -> Vec<(&'static str, String)> {
    let mut flags = Vec::new();
    // `.` is where a command looks without the flag: repeating it says nothing.
    if settings.project != Path::new(".") && settings.project != Path::new("") {
        flags.push(("--project", settings.project.display().to_string()));
    }
    flags.extend(cluster_flags(settings));
    if let Some(namespace) = &settings.namespace {
        flags.push(("-n", namespace.clone()));
    }
    flags
}

/// `value` as one shell word: as it is when nothing in it is special to a
/// shell, else single-quoted.
fn quoted(value: &str) -> String {
    shlex::try_quote(value).map_or_else(|_| value.to_string(), |q| q.into_owned())
}

/// `error: …`, one `caused by: …` line per cause, then `hint: …` with its
/// commands completed by [`commands`] from the run's `settings`.
pub fn render(err: &anyhow::Error, settings: &Settings) -> String {
    let causes = crate::context::causes(err.as_ref());
    let mut out = format!("error: {}\n", causes.first().cloned().unwrap_or_default());
    for cause in causes.iter().skip(1) {
        let _ = writeln!(out, "  caused by: {cause}");
    }
    for h in hints(err.as_ref()) {
        let _ = writeln!(out, "hint: {}", commands(&h, settings));
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
            render(&err, &Settings::default()),
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

    fn invoked() -> Settings {
        Settings {
            kubeconfig: Some("/home/me/my configs/kube".into()),
            context: Some("staging".into()),
            namespace: Some("shop".into()),
            project: "apps/web".into(),
            request_timeout: None,
        }
    }

    #[test]
    fn commands_in_a_hint_get_the_flags_of_the_run_quoted_for_the_shell() {
        assert_eq!(
            commands(
                "create it with `kubectl todo secrets create`, then see `kubectl get pods -n shop`",
                &invoked()
            ),
            "create it with `kubectl todo secrets create --project apps/web \
             --kubeconfig '/home/me/my configs/kube' --context staging -n shop`, then see \
             `kubectl get pods -n shop --kubeconfig '/home/me/my configs/kube' --context staging`"
        );
    }

    #[test]
    fn a_flag_the_command_carries_and_words_after_a_double_dash_stay_as_written() {
        assert_eq!(
            commands(
                "`kubectl todo init --project=apps/api --namespace other` or `kubectl exec -it p -- ls -n x` or `USER 1001:1001`",
                &invoked()
            ),
            "`kubectl todo init --project=apps/api --namespace other --kubeconfig '/home/me/my configs/kube' \
             --context staging` or `kubectl exec -it p --kubeconfig '/home/me/my configs/kube' \
             --context staging -- ls -n x` or `USER 1001:1001`"
        );
    }

    #[test]
    fn a_run_without_global_flags_prints_its_hints_as_written() {
        let hint = "run `kubectl todo up` in `kubectl-todo`'s folder";
        let settings = Settings {
            project: ".".into(),
            ..Settings::default()
        };
        assert_eq!(commands(hint, &settings), hint);
    }
}
