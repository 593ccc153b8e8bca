//! docs/troubleshooting.md is generated from doctor's catalogue; this test
//! fails when they differ. Regenerate with
//! `UPDATE_DOCS=1 cargo test -p kubectl-todo --test offline doctor_docs::`.

use std::collections::BTreeSet;
use std::path::Path;

use kubectl_todo::doctor::catalogue;

#[test]
fn troubleshooting_guide_matches_the_catalogue() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/troubleshooting.md");
    let want = catalogue::markdown();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &want).expect("docs/troubleshooting.md written");
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/troubleshooting.md differs from the catalogue in kubectl-todo/src/doctor/catalogue.rs; \
         regenerate it with `UPDATE_DOCS=1 cargo test -p kubectl-todo --test offline doctor_docs::`"
    );
}

#[test]
fn ids_are_unique_and_every_entry_has_a_section() {
    let ids: BTreeSet<_> = catalogue::ALL.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), catalogue::ALL.len(), "duplicate ids");
    let guide = catalogue::markdown();
    for e in catalogue::ALL {
        assert!(
            guide.contains(&format!("### `{}`", e.id)),
            "{} has no section",
            e.id
        );
        assert!(
            !e.fix.is_empty() && !e.cause.is_empty(),
            "{} lacks a cause or fix",
            e.id
        );
    }
    // The eight failures of the original troubleshooting guide all have a diagnosis.
    for id in [
        "pod.image-not-loaded",
        "pod.crash-loop",
        "pod.unschedulable",
        "pod.config-missing",
        "pod.probe-failing",
        "service.selector-mismatch",
        "app.nodeport",
        "env.docker-engine",
    ] {
        assert!(catalogue::find(id).is_some(), "{id} missing");
    }
}
