//! The dotenv syntax of `--from-env-file`: `KEY=value` lines, `export`,
//! `#` comments, single quotes (literal), double quotes (with `\n`, `\t`,
//! `\r`, `\"`, `\\` and `\$` escapes), both of which may span lines.
//! There is no `${VAR}` interpolation: a `$` is kept as it is.
//!
//! Errors carry a line number and a reason, never any text of the line,
//! which may be a value.

use std::collections::BTreeMap;

use super::validate;
use super::value::Value;

#[derive(Debug)]
pub struct Entry {
    pub key: String,
    pub value: Value,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub reason: String,
}

/// All entries, or every malformed line at once.
pub fn parse(text: &str) -> Result<Vec<Entry>, Vec<LineError>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.lines().collect();
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut i = 0;
    while i < lines.len() {
        let line = i + 1;
        let start = lines[i].trim_start();
        i += 1;
        if start.is_empty() || start.starts_with('#') {
            continue;
        }
        let fail = |reason: &str| LineError {
            line,
            reason: reason.into(),
        };
        let body = strip_export(start);
        let Some((key, rest)) = body.split_once('=') else {
            errors.push(fail("expected KEY=VALUE"));
            continue;
        };
        let key = key.trim();
        if let Err(reason) = validate::key_name(key) {
            // The key is not printed: a malformed line may be a pasted value.
            errors.push(fail(&format!("the key name is not valid: {reason}")));
            continue;
        }
        let rest = rest.trim_start();
        let value = match rest.chars().next() {
            Some(quote @ ('"' | '\'')) => match quoted(&rest[1..], quote, &lines, &mut i) {
                Ok(v) => v,
                Err(reason) => {
                    errors.push(fail(reason));
                    continue;
                }
            },
            _ => unquoted(rest).to_string(),
        };
        if let Some(first) = seen.insert(key.to_string(), line) {
            errors.push(fail(&format!("{key} is already set on line {first}")));
            continue;
        }
        entries.push(Entry {
            key: key.to_string(),
            value: Value::new(value.into_bytes()),
            line,
        });
    }
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(errors)
    }
}

fn strip_export(line: &str) -> &str {
    match line.strip_prefix("export") {
        Some(rest) if rest.starts_with([' ', '\t']) => rest.trim_start(),
        _ => line,
    }
}

/// An unquoted value ends at a `#` that follows whitespace.
fn unquoted(rest: &str) -> &str {
    let mut prev_blank = true;
    for (at, c) in rest.char_indices() {
        if c == '#' && prev_blank {
            return rest[..at].trim_end();
        }
        prev_blank = c == ' ' || c == '\t';
    }
    rest.trim_end()
}

/// Reads up to the closing quote, continuing onto the following lines
/// (`next` is the index of the next unread line).
fn quoted(
    first: &str,
    quote: char,
    lines: &[&str],
    next: &mut usize,
) -> Result<String, &'static str> {
    let mut out = String::new();
    let mut current = first;
    loop {
        let mut chars = current.char_indices();
        while let Some((at, c)) = chars.next() {
            if c == quote {
                let after = current[at + 1..].trim_start();
                if after.is_empty() || after.starts_with('#') {
                    return Ok(out);
                }
                return Err("unexpected text after the closing quote");
            }
            if c == '\\' && quote == '"' {
                match chars.next().map(|(_, e)| e) {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some(e @ ('"' | '\\' | '$')) => out.push(e),
                    Some(other) => {
                        out.push('\\');
                        out.push(other);
                    }
                    None => out.push('\\'),
                }
                continue;
            }
            out.push(c);
        }
        let Some(line) = lines.get(*next) else {
            return Err("the quote that opens the value is never closed");
        };
        *next += 1;
        out.push('\n');
        current = line;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Vec<(String, String, usize)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.value.text().unwrap().to_string(), e.line))
            .collect()
    }

    fn errs(text: &str) -> Vec<(usize, String)> {
        parse(text)
            .unwrap_err()
            .into_iter()
            .map(|e| (e.line, e.reason))
            .collect()
    }

    fn kv(k: &str, v: &str, line: usize) -> (String, String, usize) {
        (k.into(), v.into(), line)
    }

    #[test]
    fn plain_lines_comments_and_export() {
        let text = "# database\n\nexport DATABASE_URL=postgres://u@h/db\nOPENAI_API_KEY = sk-1 # the key\nEMPTY=\n";
        assert_eq!(
            ok(text),
            [
                kv("DATABASE_URL", "postgres://u@h/db", 3),
                kv("OPENAI_API_KEY", "sk-1", 4),
                kv("EMPTY", "", 5),
            ]
        );
    }

    #[test]
    fn a_hash_inside_an_unquoted_value_is_kept() {
        assert_eq!(ok("A=abc#def\n"), [kv("A", "abc#def", 1)]);
    }

    #[test]
    fn single_quotes_are_literal() {
        assert_eq!(ok(r"A='a\nb $X # c'"), [kv("A", r"a\nb $X # c", 1)]);
    }

    #[test]
    fn double_quotes_process_escapes() {
        assert_eq!(
            ok(r#"A="l1\nl2\t\"q\" \\ \$HOME \x" # note"#),
            [kv("A", "l1\nl2\t\"q\" \\ $HOME \\x", 1)]
        );
    }

    #[test]
    fn quoted_values_span_lines() {
        let text = "KEY=\"-----BEGIN-----\nabc\n-----END-----\"\nNEXT=1\n";
        assert_eq!(
            ok(text),
            [
                kv("KEY", "-----BEGIN-----\nabc\n-----END-----", 1),
                kv("NEXT", "1", 4)
            ]
        );
    }

    #[test]
    fn crlf_and_bom_are_accepted() {
        assert_eq!(
            ok("\u{feff}A=1\r\nB='2'\r\n"),
            [kv("A", "1", 1), kv("B", "2", 2)]
        );
    }

    #[test]
    fn malformed_lines_report_their_number_and_never_their_text() {
        let text = "A=1\nsk-canary-no-equals\nB='unterminated\n";
        let e = errs(text);
        assert_eq!(
            e,
            [
                (2, "expected KEY=VALUE".to_string()),
                (
                    3,
                    "the quote that opens the value is never closed".to_string()
                ),
            ]
        );
        assert!(!format!("{e:?}").contains("canary"));
    }

    #[test]
    fn text_after_a_closing_quote_is_an_error() {
        assert_eq!(errs("A=\"x\"y\n")[0].0, 1);
    }

    #[test]
    fn invalid_key_names_are_not_echoed() {
        let e = errs("my key=canary\n");
        assert_eq!(e[0].0, 1);
        assert!(!e[0].1.contains("my key"), "{}", e[0].1);
    }

    #[test]
    fn duplicates_name_both_lines() {
        assert_eq!(
            errs("A=1\n\nA=2\n"),
            [(3, "A is already set on line 1".to_string())]
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Env files come from outside: never a panic, and each refusal
        /// names a line of the file.
        #[test]
        fn any_text_is_parsed_or_refused_by_line(
            text in proptest::prop_oneof![
                proptest::prelude::any::<String>(),
                "([A-Z_]{1,4}=[\"'a-z\\\\ #\n=]{0,12}\n?){0,6}",
                "(export |# )?[A-Za-z_ 0-9]{0,5}=?[\"']?[ -~]{0,10}(\r?\n)?",
            ]
        ) {
            let lines = text.strip_prefix('\u{feff}').unwrap_or(&text).lines().count();
            if let Err(errors) = parse(&text) {
                proptest::prop_assert!(!errors.is_empty());
                for e in errors {
                    proptest::prop_assert!(e.line >= 1 && e.line <= lines, "line {} of {lines}", e.line);
                }
            }
        }
    }
}
