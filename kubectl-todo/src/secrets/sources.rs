//! Values given without a terminal: an env file, files, stdin, generation
//! and (only when explicitly allowed) literals. Everything is read and
//! validated here, before the cluster is contacted.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use crate::project::SecretKey;

use super::dotenv;
use super::error::{Error, Problem};
use super::validate;
use super::value::Value;

/// One value and where it came from, for messages.
#[derive(Debug)]
pub struct Entry {
    pub key: String,
    pub value: Value,
    pub origin: String,
    pub generated: bool,
}

#[derive(Debug, Default)]
pub struct Sources<'a> {
    pub env_file: Option<&'a Path>,
    /// `KEY=PATH`
    pub files: &'a [String],
    pub stdin: Option<&'a str>,
    pub generate: &'a [String],
    /// `KEY=VALUE`
    pub literals: &'a [String],
    pub allow_literal: bool,
    /// Accept stand-in values (`change-me`, `your-…-here`) from the env file.
    pub allow_placeholders: bool,
}

impl Sources<'_> {
    pub fn is_empty(&self) -> bool {
        self.env_file.is_none()
            && self.files.is_empty()
            && self.stdin.is_none()
            && self.generate.is_empty()
            && self.literals.is_empty()
    }
}

/// Valid entries and warnings, or every problem found.
pub fn gather(
    sources: &Sources<'_>,
    keys: &[SecretKey],
) -> Result<(Vec<Entry>, Vec<String>), Error> {
    if let Some(first) = sources.literals.first()
        && !sources.allow_literal
    {
        return Err(Error::Literal {
            key: key_part(first).unwrap_or("a key").to_string(),
        });
    }
    let mut problems = Vec::new();
    let mut entries = Vec::new();
    if let Some(path) = sources.env_file {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        match dotenv::parse(&text) {
            Ok(parsed) => {
                for e in parsed {
                    let origin = format!("{} line {}", path.display(), e.line);
                    if !sources.allow_placeholders
                        && e.value.text().is_some_and(crate::detect::is_stand_in)
                    {
                        problems.push(Problem {
                            key: Some(e.key),
                            origin,
                            reason: "holds a placeholder (such as `change-me` or `your-…-here`), not a value: put the real value in the file, or pass --allow-placeholders".into(),
                        });
                        continue;
                    }
                    entries.push(Entry {
                        origin,
                        key: e.key,
                        value: e.value,
                        generated: false,
                    });
                }
            }
            Err(errors) => problems.extend(errors.into_iter().map(|e| Problem {
                key: None,
                origin: format!("{} line {}", path.display(), e.line),
                reason: e.reason,
            })),
        }
    }
    for spec in sources.files {
        let Some((key, path)) = spec.split_once('=') else {
            problems.push(flag_problem("--from-file", "expected KEY=PATH"));
            continue;
        };
        let path = PathBuf::from(path);
        let bytes = std::fs::read(&path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        entries.push(Entry {
            key: key.to_string(),
            value: Value::without_final_newline(bytes),
            origin: format!("--from-file {}", path.display()),
            generated: false,
        });
    }
    if let Some(key) = sources.stdin {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|source| Error::Read {
                path: "stdin".into(),
                source,
            })?;
        entries.push(Entry {
            key: key.to_string(),
            value: Value::without_final_newline(bytes),
            origin: "--stdin".into(),
            generated: false,
        });
    }
    for key in sources.generate {
        entries.push(generated(key, keys, "--generate")?);
    }
    for literal in sources.literals {
        let Some((key, value)) = literal.split_once('=') else {
            problems.push(flag_problem("--from-literal", "expected KEY=VALUE"));
            continue;
        };
        entries.push(Entry {
            key: key.to_string(),
            value: Value::new(value.as_bytes().to_vec()),
            origin: "--from-literal".into(),
            generated: false,
        });
    }
    let warnings = check(&entries, keys, &mut problems);
    if problems.is_empty() {
        Ok((entries, warnings))
    } else {
        Err(Error::Invalid(problems))
    }
}

/// A freshly generated value for a key the project says may be generated.
pub fn generated(key: &str, keys: &[SecretKey], origin: &str) -> Result<Entry, Error> {
    let bytes = keys
        .iter()
        .find(|k| k.name == key)
        .and_then(|k| k.generate_bytes)
        .ok_or_else(|| Error::NotGeneratable {
            key: key.to_string(),
        })?;
    let value = Value::generate(bytes).map_err(|source| Error::Read {
        path: "the operating system's random source".into(),
        source,
    })?;
    Ok(Entry {
        key: key.to_string(),
        value,
        origin: origin.into(),
        generated: true,
    })
}

/// Validates names, values and duplicates; returns the warnings.
pub fn check(entries: &[Entry], keys: &[SecretKey], problems: &mut Vec<Problem>) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for entry in entries {
        if let Err(reason) = validate::key_name(&entry.key) {
            problems.push(Problem {
                key: None,
                origin: entry.origin.clone(),
                reason: format!("the key name is not valid: {reason}"),
            });
            continue;
        }
        let problem = |reason: String| Problem {
            key: Some(entry.key.clone()),
            origin: entry.origin.clone(),
            reason,
        };
        if let Some(first) = seen.insert(&entry.key, &entry.origin) {
            problems.push(problem(format!("is also given by {first}")));
            continue;
        }
        let spec = keys.iter().find(|k| k.name == entry.key);
        if spec.is_none() {
            warnings.push(format!(
                "{} is not declared in todo.yaml, so no component receives it",
                entry.key
            ));
        }
        let verdict = validate::value(spec, &entry.value);
        if let Some(reason) = verdict.error {
            problems.push(problem(reason));
        }
        if let Some(w) = verdict.warning {
            warnings.push(format!("{} {w}", entry.key));
        }
    }
    warnings
}

fn flag_problem(flag: &str, reason: &str) -> Problem {
    Problem {
        key: None,
        origin: flag.into(),
        reason: reason.into(),
    }
}

/// The key of `KEY=VALUE` when it is a valid name (else it may be a value).
fn key_part(spec: &str) -> Option<&str> {
    spec.split_once('=')
        .map(|(k, _)| k)
        .filter(|k| validate::key_name(k).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_in_an_env_file_are_refused_with_their_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(
            &path,
            "JWT_SECRET=change-me\nOPENAI_API_KEY=sk-your-openai-api-key-here\nDATABASE_URL=postgres://app:pw@db/todo\n",
        )
        .unwrap();
        let given = Sources {
            env_file: Some(&path),
            ..Sources::default()
        };
        let err = gather(&given, &[]).unwrap_err().to_string();
        assert!(
            err.contains("JWT_SECRET") && err.contains("OPENAI_API_KEY"),
            "{err}"
        );
        assert!(
            !err.contains("DATABASE_URL") && err.contains("--allow-placeholders"),
            "{err}"
        );
        let allowed = Sources {
            allow_placeholders: true,
            ..given
        };
        assert_eq!(gather(&allowed, &[]).unwrap().0.len(), 3);
    }
}
