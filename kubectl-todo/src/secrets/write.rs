//! The commands that change the Secret. Each gathers and validates every
//! value first, then makes one write, then rolls the Deployments.

use std::collections::BTreeMap;
use std::process::ExitCode;

use k8s_openapi::api::core::v1::Secret;

use crate::labels;
use crate::project::{KeyFormat, Project, SecretKey};
use crate::settings::Settings;

use super::error::{Error, Problem};
use super::prompt::{Answer, Terminal};
use super::sources::{self, Entry, Sources};
use super::store::{self, Desired, Store};
use super::validate::{self, MAX_SECRET_BYTES};
use super::value::{Value, checksum};
use super::{
    CreateArgs, DeleteArgs, RestartArgs, RotateArgs, SetArgs, WriteArgs, connect, restart,
};

pub async fn create(
    global: &Settings,
    project: &Project,
    args: CreateArgs,
) -> anyhow::Result<ExitCode> {
    let keys = &project.secret.keys;
    let given = Sources {
        env_file: args.from_env_file.as_deref(),
        files: &args.from_file,
        stdin: args.stdin.as_deref(),
        generate: &args.generate,
        literals: &args.from_literal,
        allow_literal: args.allow_insecure_literal,
        allow_placeholders: args.allow_placeholders,
    };
    let terminal = if given.is_empty() {
        Some(Terminal::detect().ok_or(Error::NoInput { key: None })?)
    } else {
        None
    };
    let (mut entries, warnings) = sources::gather(&given, keys)?;
    warn(&warnings);
    let conn = connect(global, project).await?;
    let store = Store::new(conn.client.clone(), &conn.namespace, &project.secret.name);
    let existing = store.get().await?;
    let current = existing.as_ref().map(store::data).unwrap_or_default();
    if let Some(mut tty) = terminal {
        tty.say(&format!(
            "Creating secret/{} in namespace {} (context {}). Values are never shown.",
            store.name, store.namespace, conn.context
        ));
        for spec in keys {
            let answer = tty.ask(
                spec,
                current.get(&spec.name).filter(|v| !v.is_empty()),
                true,
            )?;
            entries.extend(entry_of(answer, &spec.name));
        }
    } else {
        let missing: Vec<String> = keys
            .iter()
            .filter(|k| k.required)
            .filter(|k| !entries.iter().any(|e| e.key == k.name))
            .filter(|k| current.get(&k.name).is_none_or(Value::is_empty))
            .map(|k| k.name.clone())
            .collect();
        if !missing.is_empty() {
            return Err(Error::Missing(missing).into());
        }
    }
    commit(
        &store,
        project,
        existing.as_ref(),
        entries,
        Vec::new(),
        &args.write,
    )
    .await
}

pub async fn set(global: &Settings, project: &Project, args: SetArgs) -> anyhow::Result<ExitCode> {
    let key = &args.key;
    if let Some((name, _)) = key.split_once('=') {
        // `set KEY=VALUE`: a literal too, and the only part that may be shown is a valid key name.
        let name = validate::key_name(name).map_or("KEY", |()| name);
        return Err(Error::Literal {
            key: name.to_string(),
        }
        .into());
    }
    if args.literal.is_some() && !args.allow_insecure_literal {
        return Err(Error::Literal { key: key.clone() }.into());
    }
    if let Err(reason) = validate::key_name(key) {
        return Err(invalid_key(reason).into());
    }
    let keys = &project.secret.keys;
    let spec = keys
        .iter()
        .find(|k| &k.name == key)
        .cloned()
        .unwrap_or_else(|| SecretKey {
            name: key.clone(),
            required: true,
            format: KeyFormat::Opaque,
            generate_bytes: None,
            pattern: None,
        });
    let literal = args.literal.map(|v| format!("{key}={v}"));
    let files: Vec<String> = args
        .from_file
        .iter()
        .map(|p| format!("{key}={}", p.display()))
        .collect();
    let generate: Vec<String> = args.generate.then(|| key.clone()).into_iter().collect();
    let given = Sources {
        env_file: None,
        files: &files,
        stdin: args.stdin.then_some(key.as_str()),
        generate: &generate,
        literals: literal.as_slice(),
        allow_literal: args.allow_insecure_literal,
        allow_placeholders: false,
    };
    let entries = if given.is_empty() {
        let mut tty = Terminal::detect().ok_or(Error::NoInput {
            key: Some(key.clone()),
        })?;
        entry_of(tty.ask(&spec, None, false)?, key)
            .into_iter()
            .collect()
    } else {
        let (entries, warnings) = sources::gather(&given, keys)?;
        warn(&warnings);
        entries
    };
    let conn = connect(global, project).await?;
    let store = Store::new(conn.client.clone(), &conn.namespace, &project.secret.name);
    let existing = store.get().await?;
    commit(
        &store,
        project,
        existing.as_ref(),
        entries,
        Vec::new(),
        &args.write,
    )
    .await
}

pub async fn rotate(
    global: &Settings,
    project: &Project,
    args: RotateArgs,
) -> anyhow::Result<ExitCode> {
    let entry = sources::generated(&args.key, &project.secret.keys, "rotate")?;
    let conn = connect(global, project).await?;
    let store = Store::new(conn.client.clone(), &conn.namespace, &project.secret.name);
    let existing = store.get().await?.ok_or_else(|| no_secret(&store))?;
    let write = WriteArgs {
        create_namespace: false,
        restart: args.restart,
    };
    commit(
        &store,
        project,
        Some(&existing),
        vec![entry],
        Vec::new(),
        &write,
    )
    .await
}

pub async fn delete(
    global: &Settings,
    project: &Project,
    args: DeleteArgs,
) -> anyhow::Result<ExitCode> {
    let conn = connect(global, project).await?;
    let store = Store::new(conn.client.clone(), &conn.namespace, &project.secret.name);
    let Some(key) = args.key else {
        store.delete().await?;
        println!(
            "secret/{} deleted from namespace {}",
            store.name, store.namespace
        );
        // Listing is only for the warning: the deletion itself has succeeded.
        if let Ok(users) = restart::users(&conn.client, &store.namespace, &store.name).await {
            for d in users {
                let name = d.metadata.name.unwrap_or_default();
                eprintln!(
                    "warning: deployment/{name} uses the Secret; its new pods will not start until the Secret exists again"
                );
            }
        }
        return Ok(ExitCode::SUCCESS);
    };
    let existing = store.get().await?.ok_or_else(|| no_secret(&store))?;
    if !existing.data.as_ref().is_some_and(|d| d.contains_key(&key)) {
        return Err(Error::NoSuchKey {
            secret: store.name.clone(),
            key,
        }
        .into());
    }
    if project
        .secret
        .keys
        .iter()
        .any(|k| k.name == key && k.required)
    {
        eprintln!(
            "warning: {key} is required: `kubectl todo up` refuses to deploy until it is set again"
        );
    }
    let write = WriteArgs {
        create_namespace: false,
        restart: args.restart,
    };
    commit(
        &store,
        project,
        Some(&existing),
        Vec::new(),
        vec![key],
        &write,
    )
    .await
}

/// Merges the changes into the current data, writes it once, reports, and
/// rolls the Deployments.
async fn commit(
    store: &Store,
    project: &Project,
    existing: Option<&Secret>,
    entries: Vec<Entry>,
    removed: Vec<String>,
    write: &WriteArgs,
) -> anyhow::Result<ExitCode> {
    let mut data = existing.map(store::data).unwrap_or_default();
    let mut set = Vec::new();
    let mut generated = Vec::new();
    for entry in entries {
        if data.get(&entry.key) == Some(&entry.value) {
            continue;
        }
        if entry.generated {
            generated.push(entry.key.clone());
        } else {
            set.push(entry.key.clone());
        }
        data.insert(entry.key, entry.value);
    }
    for key in &removed {
        data.remove(key);
    }
    let target = format!("secret/{} in namespace {}", store.name, store.namespace);
    if set.is_empty() && generated.is_empty() && removed.is_empty() {
        println!("{target} unchanged");
        return Ok(ExitCode::SUCCESS);
    }
    check_size(&data, &target)?;
    let changed: Vec<String> = set.iter().chain(&generated).cloned().collect();
    let desired = Desired {
        data,
        changed,
        removed: removed.clone(),
        labels: labels::project(&project.name),
        existing,
    };
    let applied = store.write(&desired, write.create_namespace).await?;
    let mut parts = Vec::new();
    for (verb, keys) in [
        ("set", &set),
        ("generated", &generated),
        ("removed", &removed),
    ] {
        if !keys.is_empty() {
            parts.push(format!("{verb} {}", keys.join(", ")));
        }
    }
    println!("{target}: {}", parts.join("; "));
    roll(store, &applied, &write.restart).await?;
    Ok(ExitCode::SUCCESS)
}

async fn roll(store: &Store, applied: &Secret, args: &RestartArgs) -> Result<(), Error> {
    if args.no_restart {
        println!(
            "not restarting (--no-restart): running pods keep the old values until they restart"
        );
        return Ok(());
    }
    // Every write keeps or adds the checksum's key, so an applied Secret has one.
    let sum = checksum(applied).unwrap_or_default();
    let rolled = restart::roll(store.client(), &store.namespace, &store.name, &sum).await?;
    if rolled.users == 0 {
        println!("no Deployment uses secret/{} yet", store.name);
    } else if rolled.restarted.is_empty() {
        println!(
            "the Deployments that use secret/{} already run with these values",
            store.name
        );
    } else {
        let names: Vec<String> = rolled
            .restarted
            .iter()
            .map(|n| format!("deployment/{n}"))
            .collect();
        println!("restarted {}", names.join(", "));
    }
    Ok(())
}

fn check_size(data: &BTreeMap<String, Value>, target: &str) -> Result<(), Error> {
    let total: usize = data.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total <= MAX_SECRET_BYTES {
        return Ok(());
    }
    Err(Error::Invalid(vec![Problem {
        key: None,
        origin: target.to_string(),
        reason: format!("the data would be {total} bytes, over the 1 MiB limit of a Secret"),
    }]))
}

fn entry_of(answer: Answer, key: &str) -> Option<Entry> {
    let (value, generated) = match answer {
        Answer::Keep | Answer::Skip => return None,
        Answer::Typed(v) => (v, false),
        Answer::Generated(v) => (v, true),
    };
    Some(Entry {
        key: key.to_string(),
        value,
        origin: "terminal".into(),
        generated,
    })
}

fn invalid_key(reason: String) -> Error {
    Error::Invalid(vec![Problem {
        key: None,
        origin: "KEY".into(),
        reason: format!("the key name is not valid: {reason}"),
    }])
}

fn no_secret(store: &Store) -> Error {
    Error::NoSecret {
        secret: store.name.clone(),
        namespace: store.namespace.clone(),
    }
}

fn warn(warnings: &[String]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}
