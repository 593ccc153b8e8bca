//! The scripted runtime: containers that exist only as a script of log
//! lines and an optional exit, driven by the pod's annotations (see the
//! module documentation of [`super`]).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use crate::time;

use super::logs::{LogOptions, rfc3339_nano};
use super::worker::Exit;

const LINES: &str = "kube-emulator.dev/log-lines";
const INTERVAL: &str = "kube-emulator.dev/log-interval-ms";
const EXIT_CODE: &str = "kube-emulator.dev/exit-code";
const TEXT: &str = "kube-emulator.dev/log-text";

#[derive(Debug, Clone)]
struct Script {
    start: Timestamp,
    lines: u64,
    interval_ms: u64,
    exit_code: Option<i64>,
    stopped: bool,
    /// The lines written instead of `line N`, when the pod scripts them.
    text: Option<std::sync::Arc<Vec<String>>>,
}

impl Script {
    /// When line `i` (1-based) is written; lines written at once keep their order.
    fn line_time(&self, i: u64) -> Timestamp {
        let offset = if self.interval_ms == 0 {
            SignedDuration::from_nanos(i as i64)
        } else {
            SignedDuration::from_millis((i * self.interval_ms) as i64)
        };
        self.start + offset
    }

    fn written_by(&self, t: Timestamp) -> u64 {
        if self.interval_ms == 0 {
            return self.lines;
        }
        let ms = t.duration_since(self.start).as_millis().max(0) as u64;
        (ms / self.interval_ms).min(self.lines)
    }
}

static SCRIPTS: LazyLock<Mutex<HashMap<String, Script>>> = LazyLock::new(Default::default);

fn scripts() -> std::sync::MutexGuard<'static, HashMap<String, Script>> {
    SCRIPTS.lock().unwrap_or_else(|e| e.into_inner())
}

fn annotation<T: std::str::FromStr>(pod: &Value, key: &str) -> Option<T> {
    pod.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
        .and_then(|s| s.trim().parse().ok())
}

/// Creates a container of `pod` with the environment `env` (`K=V`), its
/// script read from the pod's annotations; returns its id.
pub(super) fn create(pod: &Value, env: &[String]) -> String {
    let id = crate::store::new_uid().replace('-', "");
    let vars: Vec<(String, String)> = env
        .iter()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    // `$(VAR)` as the kubelet expands it in `env`: a script can print what
    // the container was given (its Secret's values).
    let text: Option<Vec<String>> = annotation::<String>(pod, TEXT).map(|t| {
        super::config::expand(&t, &vars)
            .lines()
            .map(str::to_string)
            .collect()
    });
    let script = Script {
        start: Timestamp::now(),
        lines: text
            .as_ref()
            .map_or_else(|| annotation(pod, LINES).unwrap_or(0), |t| t.len() as u64),
        interval_ms: annotation(pod, INTERVAL).unwrap_or(0),
        exit_code: annotation(pod, EXIT_CODE),
        stopped: false,
        text: text.map(std::sync::Arc::new),
    };
    scripts().insert(id.clone(), script);
    id
}

/// Starts a created container: its script runs from now.
pub(super) fn start(id: &str) {
    if let Some(s) = scripts().get_mut(id) {
        s.start = Timestamp::now();
    }
}

/// When the container started, and how it ended if it has.
pub(super) fn state(id: &str) -> (String, Option<Exit>) {
    let Some(s) = scripts().get(id).cloned() else {
        let now = time::now();
        return (
            now.clone(),
            Some(Exit {
                code: 137,
                reason: "Error".into(),
                started_at: now.clone(),
                finished_at: now,
            }),
        );
    };
    let started_at = time::format_time(s.start);
    let end = s.line_time(s.lines);
    let exit = match s.exit_code {
        Some(code) if Timestamp::now() >= end => Some(Exit {
            code,
            reason: if code == 0 { "Completed" } else { "Error" }.into(),
            started_at: started_at.clone(),
            finished_at: time::format_time(end),
        }),
        _ => None,
    };
    (started_at, exit)
}

/// Stops a container: its output ends where it is.
pub(super) fn stop(id: &str) {
    if let Some(s) = scripts().get_mut(id) {
        s.stopped = true;
    }
}

pub(super) fn remove(id: &str) {
    scripts().remove(id);
}

/// Whether a following reader should wait for more output.
fn alive(id: &str) -> bool {
    scripts().get(id).is_some_and(|s| !s.stopped)
}

/// The container's output with the same options the docker runtime honours.
pub(super) fn logs(
    id: &str,
    opts: &LogOptions,
) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    let Some(script) = scripts().get(id).cloned() else {
        return stream::empty().boxed();
    };
    let written = script.written_by(Timestamp::now());
    let first = match opts.tail_lines {
        Some(t) if t >= 0 => written.saturating_sub(t as u64) + 1,
        _ => 1,
    };
    let since = opts.since();
    let timestamps = opts.timestamps;
    let last = if opts.follow { script.lines } else { written };
    let id = id.to_string();
    // Without an exit the container runs until stopped, and a follower waits as long.
    let wait_id = (opts.follow && script.exit_code.is_none()).then(|| id.clone());
    let lines = stream::unfold(first, move |i| {
        let script = script.clone();
        let id = id.clone();
        async move {
            if i > last {
                return None;
            }
            let now = Timestamp::now();
            let due = script.line_time(i);
            if due > now {
                let mut wait = now.duration_until(due).unsigned_abs();
                while !wait.is_zero() {
                    if !alive(&id) {
                        return None;
                    }
                    let step = wait.min(Duration::from_millis(100));
                    tokio::time::sleep(step).await;
                    wait -= step;
                }
            }
            // Lines due by now go out together, so that large logs stream fast.
            let upto = script
                .written_by(Timestamp::now())
                .max(i)
                .min(last)
                .min(i + 4095);
            let mut chunk = String::new();
            for n in i..=upto {
                let t = script.line_time(n);
                if since.is_some_and(|s| t < s) {
                    continue;
                }
                if timestamps {
                    chunk.push_str(&rfc3339_nano(t));
                    chunk.push(' ');
                }
                match &script.text {
                    Some(text) => chunk.push_str(&text[(n - 1) as usize]),
                    None => chunk.push_str(&format!("line {n}")),
                }
                chunk.push('\n');
            }
            Some((Ok(Bytes::from(chunk)), upto + 1))
        }
    })
    .filter(|c: &Result<Bytes, std::io::Error>| {
        futures::future::ready(c.as_ref().map_or(true, |b| !b.is_empty()))
    });
    let tail = stream::unfold(wait_id, |id| async move {
        let id = id?;
        while alive(&id) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None::<(Result<Bytes, std::io::Error>, Option<String>)>
    });
    lines.chain(tail).boxed()
}
