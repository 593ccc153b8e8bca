//! What detection found, as `init` prints it: per component each fact with
//! its evidence, then what it could not decide.

use std::fmt::Write;

use super::{App, Component};

pub fn summary(app: &App) -> String {
    let mut out = String::new();
    for c in &app.components {
        component(&mut out, c);
    }
    if !app.declared_keys.is_empty() {
        out.push_str("secret keys declared by the repository:\n");
        for k in &app.declared_keys {
            let _ = writeln!(out, "  {:<28} {}", k.name, k.from);
        }
    }
    for w in &app.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    out
}

fn component(out: &mut String, c: &Component) {
    let _ = writeln!(out, "{} ({}/)", c.name, c.path.display());
    let mut line = |what: &str, value: String, from: String| {
        let _ = writeln!(out, "  {what:<10} {value:<28} {from}");
    };
    line(
        "stack",
        c.stack.value.as_str().into(),
        c.stack.from.to_string(),
    );
    match &c.port {
        Some(p) => line("port", p.value.to_string(), p.from.to_string()),
        None => line("port", "-".into(), "not found: the stack's default".into()),
    }
    match (&c.health, &c.root_route) {
        (Some(h), _) => line("health", h.path.clone(), h.from.to_string()),
        (None, Some(r)) => line(
            "health",
            "/".into(),
            format!("{} (no health route: `/` is what it serves)", r.from),
        ),
        (None, None) => line(
            "health",
            "-".into(),
            "not found: no route the app serves".into(),
        ),
    }
    if let Some(r) = &c.ready {
        line("ready", r.path.clone(), r.from.to_string());
    }
    if let Some(n) = &c.node_port {
        line("nodePort", n.value.to_string(), n.from.to_string());
    }
    if let Some(d) = &c.dockerfile {
        let user = match (&d.user, d.uid) {
            (Some((u, _)), Some(uid)) => format!("{u} (uid {uid})"),
            (Some((u, _)), None) => u.clone(),
            (None, _) => "root".into(),
        };
        let at = d
            .user
            .as_ref()
            .map_or(d.from.to_string(), |(_, at)| at.to_string());
        line("user", user, at);
    }
    for k in &c.secret_keys {
        let need = if k.required { "required" } else { "optional" };
        line("secret", format!("{} ({need})", k.name), k.from.to_string());
    }
    for s in &c.settings {
        let value = s
            .value
            .1
            .as_deref()
            .map_or(String::new(), |v| format!("={v}"));
        line(
            "setting",
            format!("{}{value}", s.value.0),
            s.from.to_string(),
        );
    }
    for p in &c.public {
        line(
            "build",
            p.name.clone(),
            format!("{} (inlined by `next build`)", p.from),
        );
    }
    for h in &c.hosts {
        line(
            "calls",
            format!("{}:{}", h.host, h.port),
            h.from.to_string(),
        );
    }
    for n in &c.notes {
        let _ = writeln!(out, "  note: {n}");
    }
}
