//! `list` and `check`: what the Secret holds, described by lengths,
//! fingerprints and change times only.

use std::process::ExitCode;

use k8s_openapi::api::core::v1::Secret;
use serde::Serialize;

use crate::project::Project;
use crate::settings::Settings;

use super::connect;
use super::error::Error;
use super::store::{self, Store};
use super::validate;
use crate::format::Format;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Listing {
    secret: String,
    namespace: String,
    keys: Vec<KeyInfo>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KeyInfo {
    key: String,
    /// Whether todo.yaml declares it.
    declared: bool,
    required: bool,
    present: bool,
    length: Option<usize>,
    fingerprint: Option<String>,
    last_change: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    secret: String,
    namespace: String,
    exists: bool,
    ok: bool,
    keys: Vec<KeyCheck>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KeyCheck {
    key: String,
    required: bool,
    /// `ok`, `missing`, `empty`, `invalid`, or `absent` for an optional key.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

pub async fn list(
    global: &Settings,
    project: &Project,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let (store, secret) = fetch(global, project).await?;
    let secret = secret.ok_or_else(|| Error::NoSecret {
        secret: store.name.clone(),
        namespace: store.namespace.clone(),
    })?;
    let data = store::data(&secret);
    let keys = key_names(project, &secret)
        .into_iter()
        .map(|key| {
            let spec = project.secret.keys.iter().find(|k| k.name == key);
            let value = data.get(&key);
            KeyInfo {
                declared: spec.is_some(),
                required: spec.is_some_and(|s| s.required),
                present: value.is_some(),
                length: value.map(|v| v.len()),
                fingerprint: value.map(|v| v.fingerprint()),
                last_change: value.and_then(|_| store::last_change(&secret, &key)),
                key,
            }
        })
        .collect();
    let listing = Listing {
        secret: store.name,
        namespace: store.namespace,
        keys,
    };
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&listing)?),
        _ => print_listing(&listing),
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn check(
    global: &Settings,
    project: &Project,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let (store, secret) = fetch(global, project).await?;
    let data = secret.as_ref().map(store::data).unwrap_or_default();
    let names = match &secret {
        Some(s) => key_names(project, s),
        None => project.secret.keys.iter().map(|k| k.name.clone()).collect(),
    };
    let keys: Vec<KeyCheck> = names
        .into_iter()
        .map(|key| {
            let spec = project.secret.keys.iter().find(|k| k.name == key);
            let required = spec.is_some_and(|s| s.required);
            let (status, reason) = match data.get(&key) {
                None if required => ("missing", None),
                None => ("absent", None),
                Some(v) if v.is_empty() => ("empty", None),
                Some(v) => match validate::value(spec, v).error {
                    Some(reason) => ("invalid", Some(reason)),
                    None => ("ok", None),
                },
            };
            KeyCheck {
                key,
                required,
                status,
                reason,
            }
        })
        .collect();
    let ok = keys.iter().all(|k| matches!(k.status, "ok" | "absent"));
    let report = Report {
        secret: store.name,
        namespace: store.namespace,
        exists: secret.is_some(),
        ok,
        keys,
    };
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        _ => print_report(&report),
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn fetch(global: &Settings, project: &Project) -> anyhow::Result<(Store, Option<Secret>)> {
    let conn = connect(global, project).await?;
    let store = Store::new(conn.client, &conn.namespace, &project.secret.name);
    let secret = store.get().await?;
    Ok((store, secret))
}

/// The declared keys in their order, then any others the Secret holds.
fn key_names(project: &Project, secret: &Secret) -> Vec<String> {
    let mut names: Vec<String> = project.secret.keys.iter().map(|k| k.name.clone()).collect();
    for key in secret.data.iter().flat_map(|d| d.keys()) {
        if !names.contains(key) {
            names.push(key.clone());
        }
    }
    names
}

fn print_listing(listing: &Listing) {
    println!(
        "secret/{} in namespace {}",
        listing.secret, listing.namespace
    );
    let width = listing
        .keys
        .iter()
        .map(|k| k.key.len())
        .max()
        .unwrap_or(3)
        .max(3);
    println!(
        "{:width$}  {:>6}  {:15}  LAST CHANGE",
        "KEY", "LENGTH", "FINGERPRINT"
    );
    for k in &listing.keys {
        let (length, fingerprint) = match (k.length, &k.fingerprint) {
            (Some(l), Some(f)) => (l.to_string(), f.clone()),
            _ if k.required => ("-".into(), "<missing>".into()),
            _ => ("-".into(), "<not set>".into()),
        };
        let changed = k.last_change.as_deref().unwrap_or("-");
        println!("{:width$}  {length:>6}  {fingerprint:15}  {changed}", k.key);
    }
}

fn print_report(report: &Report) {
    if !report.exists {
        println!(
            "secret/{} does not exist in namespace {}",
            report.secret, report.namespace
        );
    }
    let width = report.keys.iter().map(|k| k.key.len()).max().unwrap_or(3);
    for k in &report.keys {
        let detail = match (&k.reason, k.required) {
            (Some(r), _) => format!(": {} {r}", k.key),
            (None, true) if k.status != "ok" => " (required)".into(),
            _ => String::new(),
        };
        println!("  {:width$}  {}{detail}", k.key, k.status);
    }
    if report.ok {
        println!("all required keys are set");
    } else {
        println!(
            "not ready: set the keys above with `kubectl todo secrets set KEY` or `kubectl todo secrets create`"
        );
    }
}
