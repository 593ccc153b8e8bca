//! Every relative link in README.md and docs/*.md points at a file that
//! exists, and a `#fragment` at a heading of that file (GitHub's anchors), so
//! moving or renaming a page or a section cannot leave dangling links.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn documents() -> Vec<PathBuf> {
    let mut docs = vec![root().join("README.md")];
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            docs.push(path);
        }
    }
    docs
}

/// Text outside fenced code blocks (links in code are not links).
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(path: &Path) -> Vec<String> {
    prose(&std::fs::read_to_string(path).unwrap())
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect()
}

/// `(target, fragment)` of every `[text](target)` link that is not a URL.
fn links(text: &str) -> Vec<(String, Option<String>)> {
    let pattern = regex::Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    pattern
        .captures_iter(&prose(text))
        .map(|c| c[1].to_string())
        .filter(|t| !t.contains("://") && !t.starts_with("mailto:"))
        .map(|t| match t.split_once('#') {
            Some((file, fragment)) => (file.to_string(), Some(fragment.to_string())),
            None => (t, None),
        })
        .collect()
}

#[test]
fn every_relative_link_resolves() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        for (file, fragment) in links(&text) {
            checked += 1;
            let target = if file.is_empty() {
                doc.clone()
            } else {
                doc.parent().unwrap().join(&file)
            };
            if !target.exists() {
                broken.push(format!("{}: {file} does not exist", doc.display()));
                continue;
            }
            if let Some(fragment) = fragment
                && target.extension().is_some_and(|e| e == "md")
                && !anchors(&target).contains(&fragment)
            {
                broken.push(format!(
                    "{}: {file}#{fragment}: no such heading",
                    doc.display()
                ));
            }
        }
    }
    assert!(checked > 20, "only {checked} links found");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn anchors_and_links_are_read_as_github_does() {
    assert_eq!(
        anchor(" `env.kubectl`: kubectl is installed"),
        "envkubectl-kubectl-is-installed"
    );
    assert_eq!(anchor("Without a project file"), "without-a-project-file");
    assert_eq!(
        links(
            "see [a](b.md#c-d), [web](https://x.test/y) and\n```\n[no](code.md)\n```\n[self](#top)"
        ),
        [
            ("b.md".to_string(), Some("c-d".to_string())),
            (String::new(), Some("top".to_string())),
        ]
    );
}
