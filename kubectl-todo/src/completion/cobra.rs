//! kubectl's plugin completion (kubectl 1.26+): for `kubectl todo WORDS<TAB>`
//! kubectl runs `kubectl_complete-todo WORDS`, the last word being the one
//! under the cursor (possibly empty), and reads what cobra's `__complete`
//! prints: one candidate a line, optionally `candidate<TAB>description`, then
//! `:<directive>`.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::Path;

use super::{BIN, candidates};

/// Cobra's ShellCompDirective bits that apply here.
const ERROR: u32 = 1;
const NO_SPACE: u32 = 2;
/// The engine lists files itself where an argument takes a path; the shell's
/// own file completion would offer them where none is wanted.
const NO_FILE_COMP: u32 = 4;

/// The answer to one request, as kubectl expects it on standard output.
pub fn complete(mut words: Vec<OsString>, cwd: Option<&Path>) -> String {
    if words.is_empty() {
        words.push(OsString::new());
    }
    let mut command = candidates::command(candidates::Given::from_words(&words));
    let mut args = vec![OsString::from(BIN)];
    args.extend(words);
    let index = args.len() - 1;
    // As kubectl's own commands do: flags only once a `-` is typed.
    let flags_wanted = args[index].to_string_lossy().starts_with('-');
    let mut out = String::new();
    let candidates = match clap_complete::engine::complete(&mut command, args, index, cwd) {
        Ok(candidates) => candidates,
        Err(_) => {
            let _ = writeln!(out, ":{ERROR}");
            return out;
        }
    };
    let mut directive = NO_FILE_COMP;
    for candidate in candidates.iter().filter(|c| !c.is_hide_set()) {
        let value = candidate.get_value().to_string_lossy();
        if value.starts_with('-') && !flags_wanted {
            continue;
        }
        // A name still to be followed by its value or a directory's entries.
        if value.ends_with('=') || value.ends_with('/') {
            directive |= NO_SPACE;
        }
        out.push_str(&value);
        if let Some(help) = candidate.get_help() {
            let help = help.to_string();
            if let Some(line) = help.lines().next().filter(|l| !l.is_empty()) {
                let _ = write!(out, "\t{line}");
            }
        }
        out.push('\n');
    }
    let _ = writeln!(out, ":{directive}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete_in(dir: &Path, words: &[&str]) -> String {
        complete(words.iter().map(OsString::from).collect(), Some(dir))
    }

    #[test]
    fn subcommands_components_and_keys() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap();
        let logs = complete_in(dir.path(), &["lo"]);
        assert!(logs.starts_with("logs\t"), "{logs}");
        assert!(logs.ends_with("\n:4\n"), "{logs}");
        let components = complete_in(dir.path(), &["--project", root, "logs", ""]);
        assert!(
            components.contains("frontend\tfrontend, port 3000\n"),
            "{components}"
        );
        assert!(components.contains("backend\t"), "{components}");
        let rotate = complete_in(dir.path(), &["--project", root, "secrets", "rotate", ""]);
        assert!(rotate.starts_with("BETTER_AUTH_SECRET\t"), "{rotate}");
        assert!(!rotate.contains("DATABASE_URL"), "{rotate}");
        let image = complete_in(dir.path(), &["--project", root, "render", "--image", "f"]);
        assert_eq!(image, "frontend=\tfrontend, port 3000\n:6\n");
    }

    #[test]
    fn an_unreadable_project_offers_no_names() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("todo.yaml"), "name: [").unwrap();
        let root = dir.path().to_str().unwrap();
        assert_eq!(
            complete_in(dir.path(), &["--project", root, "logs", ""]),
            ":4\n"
        );
    }
}
