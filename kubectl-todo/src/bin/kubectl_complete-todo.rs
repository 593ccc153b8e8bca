//! Completion for `kubectl todo` through kubectl (kubectl 1.26+ looks for
//! `kubectl_complete-todo` on PATH) and for the `kubectl-todo` command through
//! the scripts `kubectl todo completion SHELL` prints.

fn main() -> std::process::ExitCode {
    kubectl_todo::completion::main()
}
