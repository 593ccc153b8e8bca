//! The forms of the app's Secret values that no printed line may show, kept
//! current while logs are followed: a value set or rotated meanwhile is
//! hidden from the pods that start with it, and the value it replaced stays
//! hidden (a pod still running may print it).

use std::pin::pin;
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use regex::Regex;

use crate::context::Connection;
use crate::project::Project;
use crate::secrets::MIN_PREFIX;

/// Every form of every value the Secret has held since the command started.
#[derive(Debug, Default)]
pub struct Redactions(RwLock<Arc<Forms>>);

/// The forms, longest first (see [`crate::secrets::redactions`]), and a
/// pattern that every line they change matches: most lines hold no value,
/// and one scan for it costs far less than trying each form at each place.
#[derive(Debug, Default)]
pub struct Forms {
    forms: Vec<String>,
    starts: Option<Regex>,
}

impl Forms {
    fn new(forms: Vec<String>) -> Forms {
        // A form, or a run of MIN_PREFIX bytes or more that starts one,
        // holds the form's first MIN_PREFIX bytes (fewer on a character
        // boundary, or the whole of a shorter form).
        let starts = (!forms.is_empty()).then(|| {
            let alternatives: Vec<String> = forms
                .iter()
                .map(|f| {
                    let end = (0..=MIN_PREFIX.min(f.len()))
                        .rev()
                        .find(|&i| f.is_char_boundary(i))
                        .unwrap_or(0);
                    regex::escape(&f[..end])
                })
                .collect();
            Regex::new(&alternatives.join("|")).expect("escaped literals form a valid pattern")
        });
        Forms { forms, starts }
    }

    /// The line with every form redacted.
    pub fn redact(&self, line: &str) -> String {
        match &self.starts {
            Some(starts) if starts.is_match(line) => {
                crate::secrets::redact_forms(line, &self.forms)
            }
            _ => line.to_string(),
        }
    }
}

impl Redactions {
    #[cfg(test)]
    pub fn new(forms: Vec<String>) -> Redactions {
        Redactions(RwLock::new(Arc::new(Forms::new(forms))))
    }

    /// The forms as they are now: a line is redacted with one snapshot.
    pub fn current(&self) -> Arc<Forms> {
        self.0.read().expect("never poisoned").clone()
    }

    /// Adds the forms of the Secret's values, keeping those already there.
    fn add(&self, secret: &Secret) {
        let Some(data) = &secret.data else { return };
        let mut current = self.0.write().expect("never poisoned");
        let known = |f: &String| current.forms.contains(f);
        let new: Vec<String> = crate::secrets::redactions(data)
            .into_iter()
            .filter(|f| !known(f))
            .collect();
        if new.is_empty() {
            return;
        }
        let mut all: Vec<String> = current.forms.iter().cloned().chain(new).collect();
        // Longest first, as `secrets::redactions` orders one Secret's forms.
        all.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        *current = Arc::new(Forms::new(all));
    }
}

/// The forms of the Secret's values as they are at the start. Without the
/// Secret there is nothing to hide; a Secret that cannot be read is said, as
/// its values stay visible. The second value says whether it was read.
pub async fn initial(project: &Project, connection: &Connection) -> (Redactions, bool) {
    let api: Api<Secret> = Api::namespaced(connection.client.clone(), &connection.namespace);
    let redactions = Redactions::default();
    match api.get_opt(&project.secret.name).await {
        Ok(secret) => {
            if let Some(secret) = secret {
                redactions.add(&secret);
            }
            (redactions, true)
        }
        Err(e) => {
            eprintln!(
                "note: cannot read Secret {} ({}): its values are not hidden from these logs",
                project.secret.name,
                crate::context::describe(&e)
            );
            (redactions, false)
        }
    }
}

/// Adds every value the Secret takes from now on, until the task is dropped.
///
/// The guarantee: pods read a Secret's values when they start, and a new
/// value reaches a pod only after it is written (`secrets set` writes the
/// Secret, then rolls the Deployments; the pods, their containers and their
/// first lines come later still). The server sends this watch the write as
/// it commits it, so the value is here long before a line can carry it. It
/// is an ordering in practice, not a lock: the windows are the watch's
/// first listing (a change since [`initial`] read the Secret arrives with
/// it) and a re-open (every 15 s, or after a dropped connection), which
/// resumes from the last version seen, so no change is lost, only delayed
/// by a round trip; a line of a pod that started within that delay of the
/// write could come first. A Secret mounted as a volume reaches running
/// pods without a restart, but the kubelet's sync is far slower than this
/// watch. A failing watch is said once, unless
/// the Secret could not be read at all (already said).
pub async fn follow(
    project: Project,
    connection: Connection,
    redactions: Arc<Redactions>,
    read: bool,
    ending: impl Fn() -> bool,
) {
    let api: Api<Secret> = Api::namespaced(connection.client, &connection.namespace);
    let name = project.secret.name;
    let config = crate::context::live_watcher().fields(&format!("metadata.name={name}"));
    let mut events = pin!(watcher(api, config).default_backoff());
    let mut said = !read;
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Apply(secret) | watcher::Event::InitApply(secret)) => {
                redactions.add(&secret);
            }
            // A deleted Secret's values may still be printed by pods that have them.
            Ok(_) => {}
            Err(e) => {
                if !said && !ending() {
                    eprintln!(
                        "warning: cannot watch Secret {name} ({}): a value set from now on is not hidden from these logs; retrying",
                        crate::context::describe(&e)
                    );
                    said = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret(value: &str) -> Secret {
        Secret {
            data: Some([("K".to_string(), ByteString(value.as_bytes().to_vec()))].into()),
            ..Secret::default()
        }
    }

    #[test]
    fn a_new_value_is_added_and_the_old_one_kept() {
        let redactions = Redactions::default();
        redactions.add(&secret("old-value-0123456789"));
        redactions.add(&secret("new-value-9876543210"));
        let line = redactions
            .current()
            .redact("old-value-0123456789 new-value-9876543210");
        assert_eq!(line, "[redacted] [redacted]");
        let forms = &redactions.current().forms;
        assert!(forms.windows(2).all(|w| w[0].len() >= w[1].len()));
    }

    /// The shortcut leaves out only lines the forms would not change: every
    /// form, its prefixes from MIN_PREFIX bytes on (multi-byte characters
    /// included), short forms, and lines that hold none.
    #[test]
    fn the_shortcut_never_skips_a_line_redaction_would_change() {
        let values = [
            "sk-canary>>>???~~~redaction-key",
            "pässwörd-ünïcode-välue",
            "abcd",
        ];
        let data = values
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("K{i}"), ByteString(v.as_bytes().to_vec())))
            .collect();
        let forms = Forms::new(crate::secrets::redactions(&data));
        let mut lines = vec!["nothing secret here".to_string(), String::new()];
        for f in &forms.forms {
            lines.push(format!("x {f} y"));
            for end in (MIN_PREFIX..f.len()).filter(|&i| f.is_char_boundary(i)) {
                lines.push(format!("truncated: {}…", &f[..end]));
            }
        }
        for line in lines {
            assert_eq!(
                forms.redact(&line),
                crate::secrets::redact_forms(&line, &forms.forms),
                "{line}"
            );
        }
    }
}
