//! The shell completion scripts under `shell-completions/` and the man pages
//! under `docs/man/` are generated from the CLI definition; this test fails
//! when a committed file is out of date, or when one is left over from a
//! command that no longer exists.
//! `UPDATE_GENERATED=1 cargo nextest run -p kubectl-todo --test offline generated::`
//! rewrites them.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use kubectl_todo::cli::Cli;
use kubectl_todo::completion::{Shell, script};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn updating() -> bool {
    std::env::var_os("UPDATE_GENERATED").is_some()
}

fn check(path: PathBuf, expected: &[u8], stale: &mut Vec<String>) {
    if updating() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, expected).unwrap();
        return;
    }
    if std::fs::read(&path).ok().as_deref() != Some(expected) {
        stale.push(path.display().to_string());
    }
}

/// A page for the command and one for each subcommand, nested ones too
/// (`kubectl-todo-secrets-create.1`).
fn man_pages(cmd: &clap::Command, name: &str, out: &mut Vec<(String, Vec<u8>)>) {
    let mut page = Vec::new();
    // clap names are 'static; each page needs its own (`kubectl-todo-logs`).
    let static_name: &'static str = Box::leak(name.to_string().into_boxed_str());
    clap_mangen::Man::new(cmd.clone().name(static_name))
        .render(&mut page)
        .unwrap();
    out.push((format!("{name}.1"), page));
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        man_pages(sub, &format!("{name}-{}", sub.get_name()), out);
    }
}

fn pages() -> Vec<(String, Vec<u8>)> {
    let mut cmd = Cli::command();
    cmd.build();
    let mut pages = Vec::new();
    man_pages(&cmd, "kubectl-todo", &mut pages);
    pages
}

#[test]
fn completions_and_man_pages_are_up_to_date() {
    let mut stale = Vec::new();
    for (shell, file) in [
        (Shell::Bash, "kubectl-todo.bash"),
        (Shell::Zsh, "_kubectl-todo"),
        (Shell::Fish, "kubectl-todo.fish"),
        (Shell::Powershell, "kubectl-todo.ps1"),
    ] {
        check(
            root().join("shell-completions").join(file),
            script(shell).as_bytes(),
            &mut stale,
        );
    }
    let pages = pages();
    let names: Vec<&str> = pages.iter().map(|(name, _)| name.as_str()).collect();
    for (file, page) in &pages {
        check(root().join("docs/man").join(file), page, &mut stale);
    }
    // Pages of commands that were removed or renamed.
    for entry in std::fs::read_dir(root().join("docs/man")).unwrap() {
        let file = entry.unwrap().file_name().to_string_lossy().into_owned();
        if file.starts_with("kubectl-todo") && !names.contains(&file.as_str()) {
            if updating() {
                std::fs::remove_file(root().join("docs/man").join(&file)).unwrap();
            } else {
                stale.push(format!("docs/man/{file} (no such command)"));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "out of date (run UPDATE_GENERATED=1 cargo nextest run -p kubectl-todo --test offline generated::): {stale:?}"
    );
}

#[test]
fn every_command_has_a_man_page_with_its_examples() {
    let pages = pages();
    for name in [
        "kubectl-todo.1",
        "kubectl-todo-logs.1",
        "kubectl-todo-secrets.1",
        "kubectl-todo-secrets-create.1",
        "kubectl-todo-secrets-rotate.1",
        "kubectl-todo-completion.1",
    ] {
        assert!(pages.iter().any(|(n, _)| n == name), "no {name}");
    }
    let (_, create) = pages
        .iter()
        .find(|(n, _)| n == "kubectl-todo-secrets-create.1")
        .unwrap();
    let create = String::from_utf8_lossy(create);
    assert!(create.contains("from\\-env\\-file"), "{create}");
    assert!(create.contains("Examples:"), "{create}");
}
