//! `--grep` and `--exclude`: which lines reach the output.

use std::sync::Arc;

use regex::{Regex, RegexSet};

use super::redaction::Redactions;

/// Parses one `--grep`/`--exclude` value; the message shows where the pattern is wrong.
pub fn parse_regex(value: &str) -> Result<Regex, String> {
    Regex::new(value).map_err(|e| {
        format!(
            "not a valid regular expression (Rust regex syntax, as in `--grep 'error|warn'`):\n{e}"
        )
    })
}

/// A line is kept when it matches any `--grep` pattern (or there are none)
/// and no `--exclude` pattern, both tried on the line as shown: with every
/// form of the Secret's values redacted, so that `--grep` cannot confirm a
/// guess of one either.
#[derive(Debug, Clone)]
pub struct Filter {
    grep: Option<RegexSet>,
    exclude: Option<RegexSet>,
    redact: Arc<Redactions>,
}

impl Filter {
    pub fn new(grep: &[Regex], exclude: &[Regex], redact: Arc<Redactions>) -> Filter {
        let set = |patterns: &[Regex]| {
            (!patterns.is_empty()).then(|| {
                RegexSet::new(patterns.iter().map(Regex::as_str))
                    .expect("each pattern compiled on its own")
            })
        };
        Filter {
            grep: set(grep),
            exclude: set(exclude),
            redact,
        }
    }

    /// The line as shown, or `None` when the patterns leave it out.
    pub fn shown(&self, message: &str) -> Option<String> {
        let message = self.redact.current().redact(message);
        self.keeps(&message).then_some(message)
    }

    fn keeps(&self, message: &str) -> bool {
        self.grep.as_ref().is_none_or(|g| g.is_match(message))
            && !self.exclude.as_ref().is_some_and(|e| e.is_match(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(grep: &[&str], exclude: &[&str]) -> Filter {
        let compile = |p: &[&str]| {
            p.iter()
                .map(|p| parse_regex(p).unwrap())
                .collect::<Vec<_>>()
        };
        Filter::new(&compile(grep), &compile(exclude), Arc::default())
    }

    #[test]
    fn no_patterns_keep_everything() {
        assert!(filter(&[], &[]).keeps("anything"));
    }

    #[test]
    fn any_grep_pattern_admits_and_any_exclude_pattern_rejects() {
        let f = filter(&["ERROR", "WARN"], &["healthz"]);
        assert!(f.keeps("ERROR db down"));
        assert!(f.keeps("WARN slow"));
        assert!(!f.keeps("INFO ok"));
        assert!(!f.keeps("ERROR GET /healthz"));
    }

    #[test]
    fn secret_values_are_redacted_before_the_patterns_see_them() {
        let value = k8s_openapi::ByteString(b"sk-canary-0123456789".to_vec());
        let redact = Arc::new(Redactions::new(crate::secrets::redactions(
            &[("K".to_string(), value)].into(),
        )));
        let f = Filter::new(&[parse_regex("sk-canary").unwrap()], &[], redact.clone());
        assert_eq!(f.shown("key sk-canary-0123456789"), None);
        let f = Filter::new(&[], &[], redact);
        assert_eq!(
            f.shown("key sk-canary-0123456789").as_deref(),
            Some("key [redacted]")
        );
    }

    #[test]
    fn invalid_patterns_say_why() {
        let err = parse_regex("(unclosed").unwrap_err();
        assert!(err.contains("not a valid regular expression"), "{err}");
        assert!(err.contains("unclosed"), "{err}");
    }
}
