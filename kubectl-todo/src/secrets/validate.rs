//! Checks on key names and values. Reasons describe what is wrong in terms
//! of the format, never by quoting any part of the value.

use crate::project::{KeyFormat, SecretKey};

use super::value::Value;

/// A Secret holds at most 1 MiB of data in total.
pub const MAX_SECRET_BYTES: usize = 1024 * 1024;

/// Kubernetes' rule for Secret and ConfigMap keys.
pub fn key_name(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("it is empty".into());
    }
    if key.len() > 253 {
        return Err("it is longer than 253 characters".into());
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err("use only letters, digits, `-`, `_` and `.`".into());
    }
    if key == "." || key == ".." || key.starts_with("..") {
        return Err("it may not be `.` or `..` or start with `..`".into());
    }
    Ok(())
}

/// What validating a value found: an error stops everything, a warning is
/// printed and the value is written.
#[derive(Debug, Default)]
pub struct Verdict {
    pub error: Option<String>,
    pub warning: Option<String>,
}

/// Checks a value against its key's format and pattern (`spec` is `None`
/// for keys the project file does not declare).
pub fn value(spec: Option<&SecretKey>, value: &Value) -> Verdict {
    let fail = |reason: String| Verdict {
        error: Some(reason),
        warning: None,
    };
    if value.is_empty() {
        return fail("is empty".into());
    }
    if value.len() > MAX_SECRET_BYTES {
        return fail(format!(
            "is {} bytes, over the 1 MiB limit of a Secret",
            value.len()
        ));
    }
    if value.bytes().contains(&0) {
        return fail("contains a NUL byte, which an environment variable cannot hold".into());
    }
    let Some(spec) = spec else {
        return Verdict::default();
    };
    let mut verdict = match spec.format {
        KeyFormat::Opaque => Verdict::default(),
        KeyFormat::ApiKey => match api_key(value) {
            Ok(()) => Verdict::default(),
            Err(e) => return fail(e),
        },
        KeyFormat::PostgresUrl => match postgres_url(value) {
            Ok(warning) => Verdict {
                error: None,
                warning,
            },
            Err(e) => return fail(e),
        },
    };
    if let Some(pattern) = &spec.pattern {
        verdict.error = matches_pattern(pattern, value).err();
    }
    verdict
}

fn api_key(value: &Value) -> Result<(), String> {
    let text = value.text().ok_or("is not valid UTF-8")?;
    if text.chars().any(char::is_whitespace) {
        return Err("contains whitespace (a pasted space or newline?)".into());
    }
    if text.chars().any(char::is_control) {
        return Err("contains control characters".into());
    }
    Ok(())
}

/// A PostgreSQL URL with a host and a database; a warning when a remote
/// host is used without `sslmode`.
fn postgres_url(value: &Value) -> Result<Option<String>, String> {
    let text = value.text().ok_or("is not valid UTF-8")?;
    if text.chars().any(char::is_whitespace) {
        return Err("contains whitespace (a pasted space or newline?)".into());
    }
    // url's messages ("invalid port number", "empty host") never quote the input.
    let url = url::Url::parse(text).map_err(|e| format!("is not a valid URL: {e}"))?;
    // SQLAlchemy names the driver after a `+` (`postgresql+asyncpg://`).
    let dialect = url.scheme().split('+').next().unwrap_or_default();
    if !matches!(dialect, "postgres" | "postgresql") {
        return Err("must start with postgres:// or postgresql://".into());
    }
    let host = url.host_str().unwrap_or_default();
    if host.is_empty() {
        return Err("names no host (postgres://USER:PASSWORD@HOST:5432/DATABASE)".into());
    }
    if url.path().trim_matches('/').is_empty() {
        return Err("names no database (add /DATABASE after the host)".into());
    }
    let has_sslmode = url.query_pairs().any(|(k, _)| k == "sslmode");
    Ok((!has_sslmode && !is_local(host)).then(|| {
        "has no sslmode: hosted databases usually need `?sslmode=require` at the end".to_string()
    }))
}

/// Hosts inside the cluster or on this machine, where TLS is usually off.
fn is_local(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host == "::1"
        || host.starts_with("127.")
        || !host.contains('.')
        || host.ends_with(".svc")
        || host.ends_with(".svc.cluster.local")
        || host.ends_with(".local")
}

fn matches_pattern(pattern: &str, value: &Value) -> Result<(), String> {
    let re = regex::Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|_| format!("cannot be checked: its pattern `{pattern}` in todo.yaml is not a valid regular expression"))?;
    let text = value.text().ok_or("is not valid UTF-8")?;
    if re.is_match(text) {
        Ok(())
    } else {
        Err(format!(
            "does not match the pattern `{pattern}` from todo.yaml"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(format: KeyFormat, pattern: Option<&str>) -> SecretKey {
        SecretKey {
            name: "K".into(),
            required: true,
            format,
            generate_bytes: None,
            pattern: pattern.map(Into::into),
        }
    }

    fn check(format: KeyFormat, v: &str) -> Verdict {
        value(Some(&spec(format, None)), &Value::new(v.into()))
    }

    #[test]
    fn key_names_follow_kubernetes() {
        assert!(key_name("DATABASE_URL").is_ok());
        assert!(key_name("tls.crt").is_ok());
        for bad in ["", "A B", "A=B", "..x", ".", "é", &"a".repeat(254)] {
            assert!(key_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn postgres_urls_need_scheme_host_and_database() {
        let ok = check(
            KeyFormat::PostgresUrl,
            "postgres://app:pw@db.todo.svc:5432/todo",
        );
        assert!(ok.error.is_none() && ok.warning.is_none());
        for good in [
            "postgresql+asyncpg://app:pw@db:5432/todo",
            "postgresql+psycopg://app:pw@db/todo",
            "postgres://app:pw@db.example.com/todo?sslmode=require",
        ] {
            let v = check(KeyFormat::PostgresUrl, good);
            assert!(v.error.is_none() && v.warning.is_none(), "{good}: {v:?}");
        }
        for (bad, reason) in [
            ("mysql://u:p@h/db", "must start with"),
            ("postgres:///db", "names no host"),
            ("postgresql://u:p@host:5432", "names no database"),
            ("postgres://u:p@host:99999/db", "not a valid URL"),
            ("not a url", "whitespace"),
        ] {
            let v = check(KeyFormat::PostgresUrl, bad);
            let e = v.error.unwrap_or_else(|| panic!("{bad} passed"));
            assert!(e.contains(reason), "{bad}: {e}");
        }
    }

    #[test]
    fn hosted_databases_without_sslmode_get_a_warning() {
        let v = check(KeyFormat::PostgresUrl, "postgres://u:p@db.example.com/app");
        assert!(v.error.is_none());
        assert!(v.warning.unwrap().contains("sslmode=require"));
        let v = check(
            KeyFormat::PostgresUrl,
            "postgres://u:p@db.example.com/app?sslmode=require",
        );
        assert!(v.warning.is_none());
        assert!(
            check(KeyFormat::PostgresUrl, "postgres://u:p@postgres/app")
                .warning
                .is_none()
        );
    }

    #[test]
    fn api_keys_refuse_whitespace_and_empty() {
        assert!(check(KeyFormat::ApiKey, "sk-abc123").error.is_none());
        assert!(check(KeyFormat::ApiKey, "sk-abc 123").error.is_some());
        assert!(check(KeyFormat::ApiKey, "sk-abc123\n").error.is_some());
        assert!(
            check(KeyFormat::ApiKey, "")
                .error
                .unwrap()
                .contains("empty")
        );
    }

    #[test]
    fn values_over_a_mebibyte_are_refused() {
        let big = Value::new(vec![b'a'; MAX_SECRET_BYTES + 1]);
        assert!(value(None, &big).error.unwrap().contains("1 MiB"));
    }

    #[test]
    fn patterns_must_match_the_whole_value() {
        let s = spec(KeyFormat::Opaque, Some("sk-[a-z0-9]+"));
        assert!(
            value(Some(&s), &Value::new(b"sk-abc".to_vec()))
                .error
                .is_none()
        );
        assert!(
            value(Some(&s), &Value::new(b"xsk-abc".to_vec()))
                .error
                .is_some()
        );
        let bad = spec(KeyFormat::Opaque, Some("("));
        assert!(
            value(Some(&bad), &Value::new(b"x".to_vec()))
                .error
                .unwrap()
                .contains("not a valid regular expression")
        );
    }

    #[test]
    fn reasons_never_quote_the_value() {
        let canary = "postgres://u:canary-secret@:5432/db";
        let v = check(KeyFormat::PostgresUrl, canary);
        assert!(!v.error.unwrap().contains("canary"));
    }
}
