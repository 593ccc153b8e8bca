use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is larger than {limit} bytes; a project file is a few kilobytes", path.display())]
    TooLarge { path: PathBuf, limit: u64 },
    /// A project without a file whose default layout is refused.
    #[error("{}: {message}", root.display())]
    Refused { root: PathBuf, message: String },
    /// Points at the offending place as editors and compilers do: `file:line:column`.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: u64,
        column: u64,
        message: String,
    },
}

impl crate::report::Hinted for Error {
    fn hint(&self) -> Option<String> {
        Some(match self {
            Error::Read { .. } => {
                "check the directory given with --project (the app's root, holding todo.yaml)"
                    .into()
            }
            Error::TooLarge { path, .. } => format!(
                "check that {} is the project file (reference: docs/configuration.md)",
                path.display()
            ),
            Error::Refused { root, .. } => format!(
                "replace the symbolic link with the component's directory, or describe the components in {}",
                root.join(super::FILE_NAME).display()
            ),
            Error::Invalid { path, .. } => format!(
                "fix {} (reference: docs/configuration.md; JSON Schema: docs/todo.schema.json)",
                path.display()
            ),
        })
    }
}
crate::report::hinted!(Error);

/// The known word closest to `word`, if any is close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        // Jaro-Winkler favours shared prefixes; one swapped or missing letter
        // in a short name (`wbe` for `web`) is caught by the edit distance.
        .filter(|k| strsim::jaro_winkler(word, k) >= 0.8 || strsim::osa_distance(word, k) <= 1)
        .map(|k| (strsim::jaro_winkler(word, k), k))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// `` (did you mean `x`?)`` or nothing.
pub fn suggestion<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    did_you_mean(word, known)
        .map(|k| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

/// A component name given on the command line that the project does not have.
/// Every command that takes component names refuses one the same way; only
/// the way out differs, since it may name the command that was run.
#[derive(Debug, thiserror::Error)]
#[error("the project has no component `{name}`{}", suggestion(name, known.iter().map(String::as_str)))]
pub struct UnknownComponent {
    pub name: String,
    /// The project's components, in its order.
    pub known: Vec<String>,
    pub(super) hint: String,
}

impl crate::report::Hinted for UnknownComponent {
    fn hint(&self) -> Option<String> {
        Some(self.hint.clone())
    }
}
crate::report::hinted!(UnknownComponent);
