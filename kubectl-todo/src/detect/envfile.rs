//! Example environment files (`.env.example` and kin): the names an app
//! expects and, for settings, sample values. Never `.env` or `.env.local`:
//! those hold a developer's real values.

use std::path::Path;

use super::Evidence;

/// The names example files go by; a file not on this list is never read.
pub(super) const EXAMPLES: &[&str] = &[
    ".env.example",
    ".env.sample",
    ".env.template",
    ".env.local.example",
    ".env.dist",
    "example.env",
];

pub(super) struct Entry {
    pub name: String,
    pub value: String,
    pub from: Evidence,
}

pub(super) fn read(dir: &Path, rel: &Path) -> Vec<Entry> {
    let mut out = Vec::new();
    for file in EXAMPLES {
        let Ok(text) = std::fs::read_to_string(dir.join(file)) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            let line = line.strip_prefix("export ").unwrap_or(line);
            let Some((name, value)) = line.split_once('=') else {
                continue;
            };
            let name = name.trim();
            if line.starts_with('#') || !is_env_name(name) {
                continue;
            }
            out.push(Entry {
                name: name.to_string(),
                value: clean(value),
                from: Evidence {
                    file: rel.join(file),
                    line: i + 1,
                },
            });
        }
    }
    out
}

fn is_env_name(s: &str) -> bool {
    s.bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn clean(value: &str) -> String {
    let v = value.trim();
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner.to_string();
        }
    }
    v.split(" #").next().unwrap_or_default().trim().to_string()
}

/// Whether a variable holds a credential, by its name or, for URLs, by a
/// password in its sample value.
pub fn is_credential(name: &str, sample: Option<&str>) -> bool {
    let n = name.to_ascii_uppercase();
    const WORDS: &[&str] = &[
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "TOKEN",
        "CREDENTIAL",
        "PRIVATE",
        "API_KEY",
        "APIKEY",
    ];
    WORDS.iter().any(|w| n.contains(w))
        || n.ends_with("_KEY")
        || n == "KEY"
        || n.ends_with("DATABASE_URL")
        || n.ends_with("_DSN")
        || sample.is_some_and(url_has_password)
}

fn url_has_password(v: &str) -> bool {
    v.split_once("://")
        .and_then(|(_, rest)| rest.split(['/', '?']).next())
        .and_then(|authority| authority.split_once('@'))
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

/// Whether a value is a stand-in someone left to be replaced:
/// `change-me`, `your-…-here`, `sk-your-…`, `xxx`, `<…>`.
pub fn is_stand_in(value: &str) -> bool {
    let v = value.trim().to_ascii_lowercase();
    v.contains("change-me")
        || v.contains("changeme")
        || v.contains("change_me")
        || v.starts_with("your-")
        || v.starts_with("your_")
        || v.contains("-your-")
        || v.contains("_your_")
        || v.contains("xxx")
        || v.contains("replace")
        || v.contains("placeholder")
        || (v.starts_with('<') && v.ends_with('>'))
}

/// Whether a sample value is no value for a cluster: a stand-in, a word such
/// as `secret`, or a URL on the developer's own machine.
pub fn is_placeholder(value: &str) -> bool {
    let v = value.trim().to_ascii_lowercase();
    v.is_empty()
        || is_stand_in(&v)
        || v.contains("your")
        || v.contains("example")
        || v.contains("dummy")
        || v.contains("...")
        || v.contains("localhost")
        || v.contains("127.0.0.1")
        || matches!(
            v.as_str(),
            "secret" | "password" | "todo" | "none" | "null" | "test"
        )
}

/// Whether a credential's sample looks like a real one: long, random-looking
/// and not a stand-in. Such a value is warned about and never copied.
pub fn looks_real(value: &str) -> bool {
    let has = |f: fn(&char) -> bool| value.chars().any(|c| f(&c));
    !is_placeholder(value)
        && value.len() >= 16
        && has(char::is_ascii_digit)
        && has(char::is_ascii_alphabetic)
        && !value.contains(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_told_by_name_or_by_a_password_in_the_url() {
        assert!(is_credential("JWT_SECRET", None));
        assert!(is_credential("OPENAI_API_KEY", None));
        assert!(is_credential("DATABASE_URL", None));
        assert!(is_credential("REDIS_URL", Some("redis://:pw@cache:6379/0")));
        assert!(!is_credential("REDIS_URL", Some("redis://cache:6379/0")));
        assert!(!is_credential(
            "CORS_ORIGINS",
            Some("http://localhost:3000")
        ));
        assert!(!is_credential("ALGORITHM", Some("HS256")));
    }

    #[test]
    fn placeholders_and_real_looking_values() {
        for p in [
            "change-me",
            "your-random-jwt-signing-secret",
            "sk-your-openai-api-key-here",
            "xxx",
            "<token>",
            "",
        ] {
            assert!(is_placeholder(p), "{p}");
            assert!(!looks_real(p), "{p}");
        }
        for real in ["s3cr3t-9f8a7b", "postgres://app:pw@localhost/todo"] {
            assert!(!is_stand_in(real), "{real}");
        }
        assert!(looks_real("sk_live_9f8A7b6C5d4E3f2G1h0JkLmNoPqRsTuV"));
        assert!(!looks_real("HS256"));
    }
}
