//! Shell completions under `shell-completions/` and man pages under
//! `docs/man/` are generated from the CLI definition; this test fails when a
//! committed file is out of date. `UPDATE_GENERATED=1 cargo test -p
//! image-builder --test generated` rewrites them.

// The command line is built only with the `frontend` feature.
#![cfg(feature = "frontend")]

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;
use image_builder::cli::{Cli, completion_script};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn check(path: PathBuf, expected: &[u8], stale: &mut Vec<String>) {
    if std::env::var_os("UPDATE_GENERATED").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, expected).unwrap();
        return;
    }
    if std::fs::read(&path).ok().as_deref() != Some(expected) {
        stale.push(path.display().to_string());
    }
}

fn man_pages(cmd: &clap::Command, name: &str, out: &mut Vec<(String, Vec<u8>)>) {
    let mut page = Vec::new();
    // clap names are 'static; a page per subcommand needs its own (`image-builder-plan`).
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

#[test]
fn completions_and_man_pages_are_up_to_date() {
    let mut stale = Vec::new();
    for (shell, file) in [
        (Shell::Bash, "image-builder.bash"),
        (Shell::Zsh, "_image-builder"),
        (Shell::Fish, "image-builder.fish"),
        (Shell::PowerShell, "image-builder.ps1"),
    ] {
        check(
            root().join("shell-completions").join(file),
            completion_script(shell).as_bytes(),
            &mut stale,
        );
    }
    let mut cmd = Cli::command();
    cmd.build();
    let mut pages = Vec::new();
    man_pages(&cmd, "image-builder", &mut pages);
    for (file, page) in pages {
        check(root().join("docs/man").join(file), &page, &mut stale);
    }
    assert!(
        stale.is_empty(),
        "out of date (run UPDATE_GENERATED=1 cargo test -p image-builder --test generated): {stale:?}"
    );
}

#[test]
fn completion_subcommand_prints_the_script() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_image-builder"))
        .args(["completion", "bash"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        completion_script(Shell::Bash)
    );
    assert!(completion_script(Shell::Bash).contains("plan"));
}
