//! What to build: one component of a project.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

// The one list of stacks: image-builder's `--stack` and the project file's
// `stack:` (whose JSON Schema is derived from this, under the name `Stack`).
/// The kind of app in a component directory, which decides how it is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "Stack")
)]
#[serde(rename_all = "lowercase")]
pub enum StackKind {
    /// The component's own Dockerfile, used as it is.
    Dockerfile,
    /// Next.js with standalone output.
    Nextjs,
    /// Any other Node.js app.
    Node,
    /// Python (requirements.txt or pyproject.toml), FastAPI/uvicorn.
    Python,
    /// A Go module, compiled statically.
    Go,
    /// A prebuilt static executable.
    Binary,
}

impl StackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StackKind::Dockerfile => "dockerfile",
            StackKind::Nextjs => "nextjs",
            StackKind::Node => "node",
            StackKind::Python => "python",
            StackKind::Go => "go",
            StackKind::Binary => "binary",
        }
    }

    /// Port the app listens on unless told otherwise.
    pub fn default_port(self) -> u16 {
        match self {
            StackKind::Nextjs | StackKind::Node => 3000,
            StackKind::Python => 8000,
            _ => 8080,
        }
    }
}

impl std::str::FromStr for StackKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "dockerfile" => StackKind::Dockerfile,
            "nextjs" | "next" | "next.js" => StackKind::Nextjs,
            "node" | "nodejs" => StackKind::Node,
            "python" | "fastapi" => StackKind::Python,
            "go" | "golang" => StackKind::Go,
            "binary" | "static" => StackKind::Binary,
            other => {
                return Err(Error::Invalid {
                    what: "stack".into(),
                    reason: format!("`{other}` is not a known stack"),
                    fix: "use one of: dockerfile, nextjs, node, python, go, binary".into(),
                });
            }
        })
    }
}

/// Base image overrides per stage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BaseImages {
    /// Image for the build/dependency stages (`--base-image builder=REF`).
    pub builder: Option<String>,
    /// Image for the final stage (`--base-image runtime=REF`).
    pub runtime: Option<String>,
}

impl BaseImages {
    /// Parse `builder=REF` / `runtime=REF` arguments.
    pub fn parse_args<S: AsRef<str>>(args: &[S]) -> Result<Self> {
        let mut b = BaseImages::default();
        for a in args {
            let a = a.as_ref();
            let (k, v) = a.split_once('=').ok_or_else(|| Error::Invalid {
                what: format!("--base-image `{a}`"),
                reason: "expected STAGE=REF".into(),
                fix: "write e.g. `--base-image builder=node:20-alpine --base-image runtime=node:20-alpine`".into(),
            })?;
            if v.is_empty() {
                return Err(Error::Invalid {
                    what: format!("--base-image `{a}`"),
                    reason: "the image reference is empty".into(),
                    fix: "give an image reference after `=`".into(),
                });
            }
            crate::reference::check(v).map_err(|why| Error::Invalid {
                what: format!("--base-image `{a}`"),
                reason: format!("`{v}` {why}"),
                fix: "write the reference as `docker pull` takes it, e.g. `--base-image runtime=node:20-alpine`".into(),
            })?;
            match k {
                "builder" | "build" => b.builder = Some(v.to_string()),
                "runtime" | "run" => b.runtime = Some(v.to_string()),
                other => {
                    return Err(Error::Invalid {
                        what: format!("--base-image stage `{other}`"),
                        reason: "only `builder` and `runtime` stages can be overridden".into(),
                        fix: "use `builder=REF` or `runtime=REF`".into(),
                    });
                }
            }
        }
        Ok(b)
    }

    /// Overlay `other`'s set values on top of `self`.
    pub fn merged(&self, other: &BaseImages) -> BaseImages {
        BaseImages {
            builder: other.builder.clone().or_else(|| self.builder.clone()),
            runtime: other.runtime.clone().or_else(|| self.runtime.clone()),
        }
    }
}

/// Parse `NAME=VALUE` build arguments (`--build-arg`).
pub fn parse_build_args<S: AsRef<str>>(args: &[S]) -> Result<BTreeMap<String, String>> {
    let mut m = BTreeMap::new();
    for a in args {
        let a = a.as_ref();
        let (k, v) = a.split_once('=').ok_or_else(|| Error::Invalid {
            what: format!("--build-arg `{}`", a.split(' ').next().unwrap_or(a)),
            reason: "expected NAME=VALUE".into(),
            fix: "write e.g. `--build-arg PIP_INDEX_URL=https://pypi.example.com/simple`".into(),
        })?;
        m.insert(k.to_string(), v.to_string());
    }
    check_build_arg_names(&m)?;
    Ok(m)
}

/// Build argument names are identifiers: the Dockerfile's `ARG` and the shell
/// that reads them accept nothing else.
pub fn check_build_arg_names(args: &BTreeMap<String, String>) -> Result<()> {
    for k in args.keys() {
        let ok = k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(Error::Invalid {
                what: format!("build argument `{k}`"),
                reason: "a build argument's name must be letters, digits and `_`, not starting with a digit".into(),
                fix: format!(
                    "rename it, e.g. `{}`",
                    {
                        let mut n: String = k
                            .chars()
                            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' })
                            .collect();
                        if n.is_empty() || n.starts_with(|c: char| c.is_ascii_digit()) {
                            n.insert(0, '_');
                        }
                        n
                    }
                ),
            });
        }
    }
    Ok(())
}

/// One component to build. Also the shape of a component in a project file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComponentSpec {
    /// Directory of the component (the build context).
    pub path: PathBuf,
    /// Component name; defaults to the directory's name.
    pub name: Option<String>,
    /// Project name, the first half of the default image name; defaults to the name
    /// of the directory holding the component.
    pub project: Option<String>,
    /// Image repository name; defaults to `<project>-<component>`.
    pub image: Option<String>,
    /// Stack override (skips detection).
    pub stack: Option<StackKind>,
    /// Port the app listens on.
    pub port: Option<u16>,
    /// Base image overrides.
    pub base_images: BaseImages,
    /// The app's own Dockerfile, relative to `path`.
    pub dockerfile: Option<PathBuf>,
    /// Build arguments (part of the digest).
    pub build_args: BTreeMap<String, String>,
    /// Target stage (part of the digest).
    pub target: Option<String>,
    /// Platform, e.g. `linux/amd64` (part of the digest).
    pub platform: Option<String>,
    /// Python: the ASGI app uvicorn runs, `MODULE:ATTR` (instead of the detected one).
    pub module: Option<String>,
    /// The command the image runs (instead of the detected one).
    pub command: Option<Vec<String>>,
    /// A PEM bundle of CAs the package downloads trust (needs BuildKit; mounted as a
    /// secret, never in the image). In a build file read by the frontend, any value
    /// turns the mounts on: the bundle itself comes from the build's session.
    pub ca_cert: Option<PathBuf>,
}

impl ComponentSpec {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ComponentSpec {
            path: path.into(),
            ..Default::default()
        }
    }

    /// The component directory, made absolute, checked to exist.
    pub fn dir(&self) -> Result<PathBuf> {
        let p = &self.path;
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => std::fs::canonicalize(p).map_err(|e| Error::io(p, e)),
            Ok(_) => Err(Error::MissingDir {
                path: p.clone(),
                reason: "it is a file, not a directory".into(),
            }),
            Err(e) => Err(Error::MissingDir {
                path: p.clone(),
                reason: e.to_string(),
            }),
        }
    }

    pub fn component_name(&self, dir: &Path) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| sanitize(&file_name(dir)))
    }

    pub fn project_name(&self, dir: &Path) -> String {
        self.project.clone().unwrap_or_else(|| {
            dir.parent()
                .map(|p| sanitize(&file_name(p)))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "app".into())
        })
    }

    /// Image repository name: `image`, else `<project>-<component>`.
    pub fn image_name(&self, dir: &Path) -> String {
        self.image
            .clone()
            .unwrap_or_else(|| format!("{}-{}", self.project_name(dir), self.component_name(dir)))
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Lowercase and replace what image names do not allow.
pub fn sanitize(s: &str) -> String {
    let mut out: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    while out.starts_with(['-', '.', '_']) {
        out.remove(0);
    }
    while out.ends_with(['-', '.', '_']) {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_image_args() {
        let b = BaseImages::parse_args(&["builder=a:1", "runtime=b:2"]).unwrap();
        assert_eq!(b.builder.as_deref(), Some("a:1"));
        assert_eq!(b.runtime.as_deref(), Some("b:2"));
        assert!(BaseImages::parse_args(&["x=y"]).is_err());
        assert!(BaseImages::parse_args(&["builder"]).is_err());
        let upper = BaseImages::parse_args(&["runtime=Node:20"]).unwrap_err();
        assert!(
            upper.to_string().contains("`Node:20` has uppercase"),
            "{upper}"
        );
    }

    #[test]
    fn names() {
        let s = ComponentSpec::new("/x/Todo App/frontend");
        let d = Path::new("/x/Todo App/frontend");
        assert_eq!(s.image_name(d), "todo-app-frontend");
    }
}
