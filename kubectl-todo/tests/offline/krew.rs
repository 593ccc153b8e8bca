//! The krew manifest (`plugin.yaml`) is valid by krew's rules, and
//! `packaging/krew` makes archives that hold what it names and writes their
//! digests into it.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use sha2::{Digest, Sha256};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Plugin {
    api_version: String,
    kind: String,
    metadata: Metadata,
    spec: Spec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Metadata {
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Spec {
    version: String,
    short_description: String,
    description: String,
    caveats: String,
    platforms: Vec<Platform>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Platform {
    selector: Selector,
    uri: String,
    sha256: String,
    bin: String,
    files: Vec<FileOperation>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Selector {
    match_labels: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileOperation {
    from: String,
    to: String,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn load(path: &Path) -> Plugin {
    serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// krew's own checks (`validate-krew-manifest`) and the index's conventions.
fn validate(plugin: &Plugin) {
    assert_eq!(
        plugin.api_version,
        "krew.googlecontainertools.github.com/v1alpha2"
    );
    assert_eq!(plugin.kind, "Plugin");
    // The plugin is `kubectl todo`: krew links `kubectl-<name>`.
    assert_eq!(plugin.metadata.name, "todo");
    let spec = &plugin.spec;
    assert_eq!(spec.version, format!("v{}", env!("CARGO_PKG_VERSION")));
    assert!(!spec.short_description.is_empty() && spec.short_description.len() <= 50);
    assert!(!spec.short_description.ends_with('.'));
    assert!(spec.description.len() > spec.short_description.len());
    assert!(spec.caveats.contains(&format!(
        "store/todo/{}/kubectl_complete-todo",
        spec.version
    )));
    assert!(!spec.platforms.is_empty());
    for p in &spec.platforms {
        let labels = &p.selector.match_labels;
        assert!(
            ["linux", "darwin", "windows"].contains(&labels["os"].as_str()),
            "{p:?}"
        );
        assert!(
            ["amd64", "arm64"].contains(&labels["arch"].as_str()),
            "{p:?}"
        );
        assert!(!p.uri.is_empty(), "{p:?}");
        assert!(
            p.sha256.len() == 64 && p.sha256.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')),
            "{p:?}"
        );
        assert_eq!(p.bin, "kubectl-todo");
        for from in ["kubectl-todo", "kubectl_complete-todo", "LICENSE"] {
            assert!(
                p.files.iter().any(|f| f.from == from && f.to == "."),
                "{from}: {p:?}"
            );
        }
    }
}

#[test]
fn the_committed_manifest_is_valid() {
    validate(&load(&root().join("plugin.yaml")));
}

#[test]
fn packaging_makes_the_archive_the_manifest_describes() {
    let out = tempfile::tempdir().unwrap();
    let manifest = out.path().join("plugin.yaml");
    std::fs::copy(root().join("plugin.yaml"), &manifest).unwrap();
    let bins = Path::new(env!("CARGO_BIN_EXE_kubectl-todo"))
        .parent()
        .unwrap();
    let run = Command::new(root().join("packaging/krew"))
        .args(["--url-base", "https://downloads.test/v1/"])
        .arg("--out")
        .arg(out.path())
        .arg("--manifest")
        .arg(&manifest)
        .arg("--bin-dir")
        .arg(bins)
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    let plugin = load(&manifest);
    validate(&plugin);
    let linux = plugin
        .spec
        .platforms
        .iter()
        .find(|p| {
            p.selector.match_labels["os"] == "linux" && p.selector.match_labels["arch"] == "amd64"
        })
        .expect("a linux/amd64 platform");
    let archive_name = format!("kubectl-todo_{}_linux_amd64.tar.gz", plugin.spec.version);
    assert_eq!(
        linux.uri,
        format!("https://downloads.test/v1/{archive_name}")
    );
    let archive = out.path().join(&archive_name);
    let digest = hex(&Sha256::digest(std::fs::read(&archive).unwrap()));
    assert_eq!(linux.sha256, digest);

    // What krew unpacks: every `from`, the bin executable, the licence text.
    let listing = Command::new("tar")
        .arg("-tvzf")
        .arg(&archive)
        .output()
        .unwrap();
    let listing = String::from_utf8(listing.stdout).unwrap();
    for file in &linux.files {
        assert!(
            listing
                .lines()
                .any(|l| l.ends_with(&format!(" {}", file.from))),
            "{listing}"
        );
    }
    let bin_line = listing
        .lines()
        .find(|l| l.ends_with(" kubectl-todo"))
        .unwrap();
    assert!(bin_line.starts_with("-rwxr-xr-x "), "{listing}");

    // Reproducible: packaging the same binaries again gives the same digest.
    let again = Command::new(root().join("packaging/krew"))
        .arg("--out")
        .arg(out.path())
        .arg("--manifest")
        .arg(&manifest)
        .arg("--bin-dir")
        .arg(bins)
        .output()
        .unwrap();
    assert!(again.status.success(), "{again:?}");
    let plugin = load(&manifest);
    assert_eq!(plugin.spec.platforms[0].sha256, digest);
    assert_eq!(
        plugin.spec.platforms[0].uri, archive_name,
        "without --url-base, the file name"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
