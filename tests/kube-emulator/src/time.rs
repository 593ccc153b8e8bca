//! Timestamps in the formats the API uses.

use jiff::{Timestamp, Unit};

/// `metav1.Time`: RFC 3339 with second precision.
pub fn now() -> String {
    format_time(Timestamp::now())
}

pub fn format_time(t: Timestamp) -> String {
    t.round(Unit::Second)
        .unwrap_or(t)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// `metav1.MicroTime`: RFC 3339 with microseconds.
pub fn now_micro() -> String {
    Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S.%6fZ")
        .to_string()
}

pub fn parse(s: &str) -> Option<Timestamp> {
    s.parse().ok()
}

/// Seconds elapsed since an RFC 3339 timestamp; `None` when it does not parse.
pub fn seconds_since(s: &str) -> Option<f64> {
    let t = parse(s)?;
    let d = Timestamp::now().duration_since(t);
    Some(d.as_secs_f64())
}
