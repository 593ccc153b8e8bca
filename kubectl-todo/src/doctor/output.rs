//! Findings and how they are shown: one ✓ / ⚠ / ✗ / ? line per check with
//! its fix, coloured only on a terminal without NO_COLOR, or JSON whose
//! schema scripts can rely on.

use std::fmt::Write as _;

use serde::Serialize;

use super::catalogue::Entry;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    Environment,
    Cluster,
    App,
}

impl Group {
    pub fn title(self) -> &'static str {
        match self {
            Group::Environment => "Environment",
            Group::Cluster => "Cluster",
            Group::App => "App",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
    /// The check could not run (forbidden, timed out): never counted as healthy.
    Unknown,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub id: &'static str,
    pub group: Group,
    pub status: Status,
    pub message: String,
    pub hint: Option<String>,
    pub component: Option<String>,
}

impl Finding {
    fn new(entry: &Entry, status: Status, message: String, hint: Option<String>) -> Finding {
        Finding {
            id: entry.id,
            group: entry.group,
            status,
            message,
            hint,
            component: None,
        }
    }

    pub fn ok(entry: &Entry, message: impl Into<String>) -> Finding {
        Finding::new(entry, Status::Ok, message.into(), None)
    }

    pub fn warn(entry: &Entry, message: impl Into<String>, hint: impl Into<String>) -> Finding {
        Finding::new(entry, Status::Warn, message.into(), Some(hint.into()))
    }

    pub fn fail(entry: &Entry, message: impl Into<String>, hint: impl Into<String>) -> Finding {
        Finding::new(entry, Status::Fail, message.into(), Some(hint.into()))
    }

    pub fn unknown(entry: &Entry, message: impl Into<String>, hint: impl Into<String>) -> Finding {
        Finding::new(entry, Status::Unknown, message.into(), Some(hint.into()))
    }

    pub fn of(mut self, component: &str) -> Finding {
        self.component = Some(component.to_string());
        self
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub ok: usize,
    pub warn: usize,
    pub fail: usize,
    pub unknown: usize,
}

pub fn summary(findings: &[Finding]) -> Summary {
    let mut s = Summary::default();
    for f in findings {
        *match f.status {
            Status::Ok => &mut s.ok,
            Status::Warn => &mut s.warn,
            Status::Fail => &mut s.fail,
            Status::Unknown => &mut s.unknown,
        } += 1;
    }
    s
}

/// Version 1 of the JSON schema: add fields, never rename or remove them.
pub fn json(findings: &[Finding]) -> String {
    let doc = serde_json::json!({
        "version": 1,
        "checks": findings,
        "summary": summary(findings),
    });
    format!("{doc:#}\n")
}

pub fn text(findings: &[Finding], colour: bool) -> String {
    let paint = |code: &str, s: &str| {
        if colour {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    let mut out = String::new();
    let mut current = None;
    for f in findings {
        if current != Some(f.group) {
            current = Some(f.group);
            let _ = writeln!(out, "{}", paint("1", f.group.title()));
        }
        let mark = match f.status {
            Status::Ok => paint("32", "✓"),
            Status::Warn => paint("33", "⚠"),
            Status::Fail => paint("31", "✗"),
            Status::Unknown => paint("35", "?"),
        };
        let _ = writeln!(
            out,
            "  {mark} {} {}",
            f.message,
            paint("2", &format!("[{}]", f.id))
        );
        if let Some(hint) = &f.hint {
            let _ = writeln!(out, "      fix: {hint}");
        }
    }
    let s = summary(findings);
    let _ = writeln!(
        out,
        "\n{} ok, {} warning{}, {} failed, {} could not run",
        s.ok,
        s.warn,
        if s.warn == 1 { "" } else { "s" },
        s.fail,
        s.unknown
    );
    out
}
