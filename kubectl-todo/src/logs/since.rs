//! `--since`: a duration back from now (`30s`, `5m`, `1h30m`) or an RFC 3339 time.

use jiff::{SignedDuration, Timestamp};

/// Where the log starts, in the form the API takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// Seconds back from now, rounded up so that a line from the edge is not lost.
    Seconds(i64),
    Time(Timestamp),
}

const EXPECTED: &str = "expected a duration such as 30s, 5m or 1h30m, or an RFC 3339 time such as 2025-05-01T12:00:00Z";

/// Parses the flag's value; the message says what a valid value looks like.
pub fn parse(value: &str) -> Result<Since, String> {
    let value = value.trim();
    if let Ok(time) = value.parse::<Timestamp>() {
        return Ok(Since::Time(time));
    }
    // A bare number is ambiguous (seconds? minutes?), so it is refused as kubectl refuses it.
    let duration = value
        .parse::<SignedDuration>()
        .ok()
        .filter(|_| !value.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| format!("{value:?} is neither a duration nor a time: {EXPECTED}"))?;
    if duration <= SignedDuration::ZERO {
        return Err(format!("{value:?} is not a positive duration: {EXPECTED}"));
    }
    let whole = duration.as_secs() + i64::from(duration.subsec_nanos() > 0);
    Ok(Since::Seconds(whole))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_kubectl_and_friendly_forms() {
        assert_eq!(parse("30s"), Ok(Since::Seconds(30)));
        assert_eq!(parse("5m"), Ok(Since::Seconds(300)));
        assert_eq!(parse("1h30m"), Ok(Since::Seconds(5400)));
        assert_eq!(parse("2 hours"), Ok(Since::Seconds(7200)));
        assert_eq!(parse("1.5s"), Ok(Since::Seconds(2)));
    }

    #[test]
    fn rfc3339_times_with_any_offset() {
        let Ok(Since::Time(t)) = parse("2025-05-01T14:00:00+02:00") else {
            panic!("not a time");
        };
        assert_eq!(t.to_string(), "2025-05-01T12:00:00Z");
    }

    #[test]
    fn nonsense_zero_and_bare_numbers_are_refused_with_the_expected_forms() {
        for bad in ["5x", "", "0s", "-5m", "300", "yesterday"] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("such as 30s"), "{bad}: {err}");
        }
    }
}
