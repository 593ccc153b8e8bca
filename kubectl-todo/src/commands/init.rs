//! `kubectl todo init`: look at the repository, say what it holds with the
//! evidence, and write a `todo.yaml` holding only what `up` would not work
//! out by itself, each line commented with where it came from.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::detect;
use crate::project::detected::{self, Layer};
use crate::project::{FILE_NAME, Project};
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kubectl todo init\n  kubectl todo init --dry-run\n  kubectl todo init --project apps/shop --yes\n  kubectl todo init --force"
)]
pub struct Args {
    /// With several candidate app folders, take the first listed instead of stopping.
    #[arg(long)]
    pub yes: bool,
    /// Overwrite an existing todo.yaml (without it, init shows the difference and stops).
    #[arg(long)]
    pub force: bool,
    /// Print the todo.yaml init would write, and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no component found under {}", start.display())]
    NothingFound { start: PathBuf },
    #[error("{} folders hold an app: {}", found.len(), list(found))]
    Ambiguous { found: Vec<PathBuf> },
    #[error("{} exists and differs from what init would write:\n{diff}", path.display())]
    Exists { path: PathBuf, diff: String },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn list(found: &[PathBuf]) -> String {
    found
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl crate::report::Hinted for Error {
    fn hint(&self) -> Option<String> {
        Some(match self {
            Error::NothingFound { .. } => "init looks for folders holding package.json (with dependencies), requirements.txt, pyproject.toml or Pipfile, beside each other or under apps/*, up to four levels down; point --project at the app, or write todo.yaml by hand: `name: shop` and `components: [{name: web, path: frontend, port: 3000}, {name: api, path: backend, port: 8000}]` (docs/configuration.md)".into(),
            Error::Ambiguous { found } => format!(
                "pick one: `kubectl todo init --project {}`, or pass --yes to take the first",
                found[0].display()
            ),
            Error::Exists { .. } => {
                "keep your file, or pass --force to replace it (--dry-run prints the new one)".into()
            }
            Error::Write { .. } => "check the folder's permissions".into(),
        })
    }
}
crate::report::hinted!(Error);

pub fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let start = &settings.project;
    let found = detect::candidates(start);
    let root = match found.as_slice() {
        [] => {
            return Err(Error::NothingFound {
                start: start.clone(),
            }
            .into());
        }
        [one] => one.clone(),
        [first, ..] if args.yes => first.clone(),
        _ => return Err(Error::Ambiguous { found }.into()),
    };
    if root != *start {
        println!("the app is in {}: todo.yaml goes there", root.display());
    }
    let app = detect::app(&root);
    print!("{}", detect::summary(&app));
    let name = detected::project_name(&app);
    let layer = detected::from_app(&app, &name.value);
    let text = file_text(&name, &layer);
    // Never write a file `up` would refuse.
    Project::from_text(&root, &text)?;
    let notes: Vec<&String> = layer.components.iter().flat_map(|c| &c.notes).collect();
    if !notes.is_empty() {
        println!("what init could not decide:");
        for n in notes {
            println!("  - {n}");
        }
    }
    let path = root.join(FILE_NAME);
    if args.dry_run {
        print!("--- {} (not written: --dry-run)\n{text}", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    if let Ok(old) = std::fs::read_to_string(&path) {
        if old == text {
            println!("{} is up to date", path.display());
            return Ok(ExitCode::SUCCESS);
        }
        if !args.force {
            return Err(Error::Exists {
                diff: diff(&old, &text),
                path,
            }
            .into());
        }
    }
    std::fs::write(&path, &text).map_err(|source| Error::Write {
        path: path.clone(),
        source,
    })?;
    println!(
        "wrote {}; `kubectl todo config` shows every value and its source",
        display(&path)
    );
    Ok(ExitCode::SUCCESS)
}

fn display(p: &Path) -> String {
    p.display().to_string()
}

/// The file: the name, and per component only the choices made for it
/// (the recipe instead of the own Dockerfile), each with its reason.
fn file_text(name: &detected::Sourced<String>, layer: &Layer) -> String {
    let mut out = String::from(
        "# Written by `kubectl todo init`. What this file leaves out, kubectl todo\n# reads from the repository each time: `kubectl todo config` shows it all.\n",
    );
    let _ = writeln!(out, "name: {}  # {}", name.value, name.source);
    let chosen: Vec<_> = layer
        .components
        .iter()
        .filter_map(|c| Some((c, c.recipe_instead.as_ref()?)))
        .collect();
    if !chosen.is_empty() {
        out.push_str("components:\n");
        for (c, stack) in chosen {
            let _ = writeln!(out, "  - name: {}", c.name);
            let _ = writeln!(
                out,
                "    stack: {}  # {}",
                stack.value.as_str(),
                stack.source
            );
        }
    }
    out
}

fn diff(old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .header(FILE_NAME, "new")
        .to_string()
}
