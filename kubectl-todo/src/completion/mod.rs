//! Shell completion for `kubectl-todo`, through two doors into one engine
//! (clap_complete's dynamic completer, fed with the project's component
//! names and secret keys):
//!
//! - `kubectl todo completion SHELL` prints a script that registers
//!   completion for the `kubectl-todo` command; the shell calls
//!   `kubectl_complete-todo` with `KUBECTL_TODO_COMPLETE=<shell>` on each TAB.
//! - kubectl 1.26+ completes `kubectl todo …` by calling
//!   `kubectl_complete-todo` with the words typed so far (cobra's `__complete`
//!   protocol, see [`cobra`]).
//!
//! Both run in a separate, small executable so that completing never starts
//! the plugin's runtime, and so that kubectl finds it by name beside the plugin.

mod candidates;
mod cobra;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::ValueEnum;
use clap_complete::env::EnvCompleter;

pub use candidates::{Given, command};
pub use cobra::complete as cobra_complete;

/// The command the scripts complete.
pub const BIN: &str = "kubectl-todo";
/// The executable that answers, named as kubectl looks for it (`kubectl_complete-<plugin>`).
pub const COMPLETER: &str = "kubectl_complete-todo";
/// Set by the scripts (to the shell's name) when they call [`COMPLETER`];
/// without it, the completer speaks kubectl's protocol.
pub const VAR: &str = "KUBECTL_TODO_COMPLETE";

const EXAMPLES: &str = "Examples:
  # Bash: load now, and in every new shell
  source <(kubectl todo completion bash)
  kubectl todo completion bash > ~/.local/share/bash-completion/completions/kubectl-todo

  # Zsh (a directory on $fpath), fish, PowerShell
  kubectl todo completion zsh > \"${fpath[1]}/_kubectl-todo\"
  kubectl todo completion fish > ~/.config/fish/completions/kubectl-todo.fish
  kubectl todo completion powershell >> $PROFILE

The scripts complete the `kubectl-todo` command; `kubectl todo <TAB>` completes
through kubectl's own completion, which calls `kubectl_complete-todo` (installed
beside `kubectl-todo`). Component names and secret keys come from the project
(--project, else the current directory), contexts from the kubeconfig.";

/// Print a shell completion script for `kubectl-todo`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// The shell to print the script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

impl Shell {
    fn completer(self) -> &'static dyn EnvCompleter {
        match self {
            Shell::Bash => &clap_complete::env::Bash,
            Shell::Zsh => &clap_complete::env::Zsh,
            Shell::Fish => &clap_complete::env::Fish,
            Shell::Powershell => &clap_complete::env::Powershell,
        }
    }
}

/// The script `kubectl todo completion SHELL` prints.
pub fn script(shell: Shell) -> String {
    let mut out = Vec::new();
    shell
        .completer()
        .write_registration(VAR, BIN, BIN, COMPLETER, &mut out)
        .expect("writing to memory cannot fail");
    String::from_utf8(out).expect("the registration scripts are UTF-8")
}

pub fn run(args: Args) -> ExitCode {
    print!("{}", script(args.shell));
    ExitCode::SUCCESS
}

/// `kubectl_complete-todo`: a shell script's request when [`VAR`] is set,
/// otherwise kubectl's.
pub fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let cwd = std::env::current_dir().ok();
    if std::env::var_os(VAR).is_some_and(|v| !v.is_empty() && v != "0") {
        // The scripts pass `-- kubectl-todo WORDS…`.
        let words: Vec<OsString> = args
            .iter()
            .skip_while(|a| *a != "--")
            .skip(2)
            .cloned()
            .collect();
        let given = Given::from_words(&words);
        let env = clap_complete::CompleteEnv::with_factory(move || command(given.clone()))
            .var(VAR)
            .bin(BIN)
            .completer(COMPLETER);
        return match env.try_complete(args, cwd.as_deref()) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                let _ = e.print();
                ExitCode::FAILURE
            }
        };
    }
    print!(
        "{}",
        cobra_complete(args.into_iter().skip(1).collect(), cwd.as_deref())
    );
    ExitCode::SUCCESS
}
