//! Reading one `pods/log` stream into lines, skipping what an earlier stream
//! of the same container already delivered.

use std::pin::pin;
use std::sync::Arc;

use futures::AsyncBufReadExt;
use jiff::{RoundMode, Timestamp, TimestampRound, Unit};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};
use tokio::sync::mpsc;

use super::filter::Filter;
use super::format::{Line, Source};

/// Where the output goes: batches of lines, in order per container.
pub type Sink = mpsc::Sender<Vec<Line>>;

/// How far a container's output has been read, so that a re-opened stream
/// resumes there without repeating a line.
///
/// The API's `sinceTime` has whole seconds, so a re-opened stream replays the
/// start of that second; lines up to the cursor are dropped again, and for
/// lines sharing the cursor's exact timestamp, as many as were already read.
#[derive(Debug, Default, Clone)]
pub struct Cursor {
    last: Option<Timestamp>,
    read_at_last: usize,
    seen_at_last: usize,
}

impl Cursor {
    /// A cursor for `--since TIME`: lines before it count as read, so the
    /// whole-second `sinceTime` the API takes does not let earlier ones through.
    pub fn starting_at(t: Timestamp) -> Cursor {
        Cursor {
            last: Some(t),
            ..Cursor::default()
        }
    }

    /// Whether any line was read, so a new stream resumes rather than starts.
    pub fn has_read(&self) -> bool {
        self.read_at_last > 0
    }

    /// The `sinceTime` to resume from, rounded down (kube-rs rounds to the
    /// nearest second, which could skip the rest of the last second).
    pub fn since_time(&self) -> Option<Timestamp> {
        let down = TimestampRound::new()
            .smallest(Unit::Second)
            .mode(RoundMode::Trunc);
        self.last
            .map(|t| t.round(down).expect("rounding to seconds is valid"))
    }

    /// A new stream replays from the start of the cursor's second.
    fn reopen(&mut self) {
        self.seen_at_last = 0;
    }

    /// Whether a line with this timestamp is new, advancing the cursor if so.
    fn admit(&mut self, time: Option<Timestamp>) -> bool {
        let Some(t) = time else { return true };
        match self.last {
            Some(last) if t < last => false,
            Some(last) if t == last => {
                self.seen_at_last += 1;
                let new = self.seen_at_last > self.read_at_last;
                self.read_at_last += usize::from(new);
                new
            }
            _ => {
                self.last = Some(t);
                self.read_at_last = 1;
                self.seen_at_last = 1;
                true
            }
        }
    }
}

/// How a stream ended.
#[derive(Debug)]
pub enum End {
    /// The server closed it; `partial` is a last line without its newline,
    /// held back because a re-opened stream would deliver it whole.
    Closed {
        new_lines: usize,
        partial: Option<Vec<u8>>,
    },
    /// Opening or reading failed: why, in the API's words, and whether
    /// because the pod is gone (which the pod watch reports on its own).
    Failed { why: String, pod_gone: bool },
    /// Nobody prints any more (Ctrl-C, or stdout closed).
    Stopped,
}

/// What every reader of one container shares.
pub struct Reader<'a> {
    pub api: &'a Api<Pod>,
    pub source: &'a Arc<Source>,
    pub filter: &'a Filter,
    pub sink: &'a Sink,
}

impl Reader<'_> {
    /// Streams one request to its end. Timestamps are always requested: the
    /// cursor needs them, and the printer drops them unless asked for.
    pub async fn read(&self, mut params: LogParams, cursor: &mut Cursor) -> End {
        params.timestamps = true;
        params.container = Some(self.source.container.clone());
        let stream = match self.api.log_stream(&self.source.pod, &params).await {
            Ok(s) => s,
            Err(kube::Error::Api(status)) => {
                return End::Failed {
                    why: status.message.clone(),
                    pod_gone: status.is_not_found(),
                };
            }
            Err(e) => {
                return End::Failed {
                    why: format!("{:#}", anyhow::Error::from(e)),
                    pod_gone: false,
                };
            }
        };
        let mut stream = pin!(stream);
        cursor.reopen();
        let mut carry: Vec<u8> = Vec::new();
        let mut new_lines = 0;
        loop {
            let chunk = match stream.fill_buf().await {
                Ok([]) => break,
                Ok(chunk) => chunk,
                Err(e) => {
                    return End::Failed {
                        why: e.to_string(),
                        pod_gone: false,
                    };
                }
            };
            let consumed = chunk.len();
            let mut batch = Vec::new();
            let mut rest = chunk;
            while let Some(n) = rest.iter().position(|b| *b == b'\n') {
                let line = if carry.is_empty() {
                    &rest[..n]
                } else {
                    carry.extend_from_slice(&rest[..n]);
                    carry.as_slice()
                };
                if let Some(line) = self.line(line, cursor) {
                    new_lines += 1;
                    batch.extend(line);
                }
                carry.clear();
                rest = &rest[n + 1..];
            }
            carry.extend_from_slice(rest);
            stream.consume_unpin(consumed);
            if !batch.is_empty() && self.sink.send(batch).await.is_err() {
                return End::Stopped;
            }
        }
        End::Closed {
            new_lines,
            partial: (!carry.is_empty()).then_some(carry),
        }
    }

    /// Prints a last line that came without a newline, once no stream will
    /// deliver it whole.
    pub async fn finish(&self, partial: Vec<u8>, cursor: &mut Cursor) -> bool {
        match self.line(&partial, cursor) {
            Some(Some(line)) => self.sink.send(vec![line]).await.is_ok(),
            _ => true,
        }
    }

    /// `None` for a line already read; `Some(None)` for a new line the filter drops.
    fn line(&self, raw: &[u8], cursor: &mut Cursor) -> Option<Option<Line>> {
        let (time, message) = split_timestamp(raw);
        if !cursor.admit(time) {
            return None;
        }
        let message = String::from_utf8_lossy(message);
        let message = message.strip_suffix('\r').unwrap_or(&message);
        Some(self.filter.shown(message).map(|message| Line {
            source: self.source.clone(),
            time,
            message,
        }))
    }
}

/// `2025-05-01T12:00:00.123456789Z message` → the time and the message.
fn split_timestamp(raw: &[u8]) -> (Option<Timestamp>, &[u8]) {
    let Some(space) = raw.iter().position(|b| *b == b' ') else {
        return (None, raw);
    };
    match std::str::from_utf8(&raw[..space])
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(t) => (Some(t), &raw[space + 1..]),
        None => (None, raw),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Option<Timestamp> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn a_reopened_stream_skips_what_was_read_including_ties() {
        let mut c = Cursor::default();
        let (a, b) = (ts("2025-01-01T00:00:00.1Z"), ts("2025-01-01T00:00:00.2Z"));
        assert!(c.admit(a));
        assert!(c.admit(b));
        assert!(c.admit(b));
        c.reopen();
        assert!(!c.admit(a));
        assert!(!c.admit(b));
        assert!(!c.admit(b));
        assert!(c.admit(b), "a third line at the same instant is new");
        assert!(c.admit(ts("2025-01-01T00:00:00.3Z")));
        c.reopen();
        assert!(!c.admit(b));
    }

    #[test]
    fn a_since_time_admits_lines_from_that_instant_on() {
        let mut c = Cursor::starting_at("2025-01-01T00:00:07.5Z".parse().unwrap());
        assert!(!c.has_read());
        assert_eq!(c.since_time(), ts("2025-01-01T00:00:07Z"));
        assert!(!c.admit(ts("2025-01-01T00:00:07.4Z")));
        assert!(c.admit(ts("2025-01-01T00:00:07.5Z")));
        assert!(c.admit(ts("2025-01-01T00:00:07.6Z")));
        assert!(c.has_read());
    }

    #[test]
    fn resuming_asks_for_the_start_of_the_last_second() {
        let mut c = Cursor::default();
        assert_eq!(c.since_time(), None);
        c.admit(ts("2025-01-01T00:00:07.9Z"));
        assert_eq!(c.since_time(), ts("2025-01-01T00:00:07Z"));
    }

    #[test]
    fn lines_without_a_timestamp_pass_whole() {
        assert_eq!(split_timestamp(b"hello world"), (None, &b"hello world"[..]));
        let (t, m) = split_timestamp(b"2025-01-01T00:00:00.000000001Z line 1");
        assert_eq!(
            (t, m),
            (ts("2025-01-01T00:00:00.000000001Z"), &b"line 1"[..])
        );
    }
}
