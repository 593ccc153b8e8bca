//! What a Python app needs to be built: which installer reads which files, which
//! Python version, whether the app is a package, and where its ASGI app lives.

use crate::detect::Tree;
use crate::error::{Error, Result};

/// The `python:3.X-slim` images that exist, oldest first.
pub const SLIM_MINORS: &[u32] = &[9, 10, 11, 12, 13];
/// The minor version used when the app says nothing.
pub const DEFAULT_MINOR: u32 = 11;

/// How the dependencies are installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PythonDeps {
    /// `pip install -r FILE`.
    Requirements(String),
    /// `uv sync` from `uv.lock`.
    Uv,
    /// `poetry install` from `poetry.lock`.
    Poetry,
    /// The `[project].dependencies` of a pyproject.toml without a lockfile.
    Listed(Vec<String>),
}

impl PythonDeps {
    /// The files the dependency layer is keyed by.
    pub fn manifests(&self) -> Vec<String> {
        match self {
            PythonDeps::Requirements(f) => vec![f.clone()],
            PythonDeps::Uv => vec!["pyproject.toml".into(), "uv.lock".into()],
            PythonDeps::Poetry => vec!["pyproject.toml".into(), "poetry.lock".into()],
            PythonDeps::Listed(_) => Vec::new(),
        }
    }
}

/// The Python version the image is built on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PythonVersion {
    /// Nothing says which: [`DEFAULT_MINOR`].
    Default,
    /// `3.minor`, chosen from what `source` (a file) says (`want`).
    Chosen {
        minor: u32,
        source: String,
        want: String,
    },
    /// No `python:3.X-slim` satisfies what `source` says.
    Unsatisfiable { source: String, want: String },
}

impl PythonVersion {
    /// The `python:3.X-slim` image, `None` when unsatisfiable.
    pub fn image(&self) -> Option<String> {
        match self {
            PythonVersion::Default => Some(format!("python:3.{DEFAULT_MINOR}-slim")),
            PythonVersion::Chosen { minor, .. } => Some(format!("python:3.{minor}-slim")),
            PythonVersion::Unsatisfiable { .. } => None,
        }
    }

    /// The error for an unsatisfiable version, with the versions that exist.
    pub fn error(&self) -> Option<Error> {
        let PythonVersion::Unsatisfiable { source, want } = self else {
            return None;
        };
        let exist: Vec<String> = SLIM_MINORS.iter().map(|m| format!("3.{m}")).collect();
        Some(Error::Invalid {
            what: format!("Python version `{want}` ({source})"),
            reason: format!(
                "no python:3.X-slim image satisfies it; the versions that exist are {}",
                exist.join(", ")
            ),
            fix: format!(
                "change {source} to one of those versions, or set both images yourself: `baseImages: {{builder: REF, runtime: REF}}` in todo.yaml (`base_images:` in a build file, `--base-image builder=REF --base-image runtime=REF` on the command line)"
            ),
        })
    }
}

/// What the Python recipe needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonInfo {
    pub deps: PythonDeps,
    /// Install the app itself (a pyproject.toml with `[build-system]` and a src layout).
    pub package: bool,
    /// FastAPI or uvicorn found among the dependencies.
    pub asgi: bool,
    /// `module:attribute` of the ASGI app, e.g. `main:app`.
    pub app_module: String,
    /// Script to run when the app is not ASGI.
    pub script: String,
    /// Directories (in /app) put on `PYTHONPATH`, e.g. `src` for flat imports.
    pub pythonpath: Vec<String>,
    /// The file that creates the app, relative to the component.
    pub app_file: Option<String>,
    pub version: PythonVersion,
}

/// The text of a requirements file, whatever its encoding (pip reads UTF-16 files
/// with a byte-order mark, as Windows' `pip freeze > requirements.txt` writes them).
pub fn decode(bytes: &[u8]) -> String {
    let utf16 = |le: bool| {
        let units: Vec<u16> = bytes[2..]
            .chunks_exact(2)
            .map(|c| {
                if le {
                    u16::from_le_bytes([c[0], c[1]])
                } else {
                    u16::from_be_bytes([c[0], c[1]])
                }
            })
            .collect();
        String::from_utf16_lossy(&units)
    };
    match bytes {
        [0xFF, 0xFE, ..] => utf16(true),
        [0xFE, 0xFF, ..] => utf16(false),
        [0xEF, 0xBB, 0xBF, rest @ ..] => String::from_utf8_lossy(rest).into_owned(),
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// The normalised project name of a requirement line (`Foo_Bar[x]>=1` → `foo-bar`).
fn req_name(line: &str) -> Option<String> {
    let line = line.split('#').next().unwrap_or("").trim();
    if line.is_empty() || line.starts_with('-') {
        return None;
    }
    let end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
        .unwrap_or(line.len());
    let name = line[..end].to_ascii_lowercase().replace(['_', '.'], "-");
    (!name.is_empty()).then_some(name)
}

fn toml_table(text: &str, file: &str) -> Result<toml::Table> {
    text.parse::<toml::Table>().map_err(|e| Error::Invalid {
        what: file.into(),
        reason: format!("it is not valid TOML: {}", e.message()),
        fix: format!("fix the syntax error in {file} (`python -c \"import tomllib; tomllib.load(open('{file}','rb'))\"` shows where)"),
    })
}

fn str_at<'a>(t: &'a toml::Table, path: &[&str]) -> Option<&'a toml::Value> {
    let (last, head) = path.split_last()?;
    let mut cur = t;
    for k in head {
        cur = cur.get(*k)?.as_table()?;
    }
    cur.get(*last)
}

/// Detect a Python app; `notes` receives what the user should know.
pub fn detect(dir: &dyn Tree, notes: &mut Vec<String>) -> Result<PythonInfo> {
    let req = dir.read_bytes("requirements.txt")?.map(|b| decode(&b));
    let pyproject = match dir.read("pyproject.toml")? {
        Some(t) => Some(toml_table(&t, &dir.display("pyproject.toml"))?),
        None => None,
    };
    let listed: Vec<String> = pyproject
        .as_ref()
        .and_then(|p| str_at(p, &["project", "dependencies"]))
        .and_then(|d| d.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let poetry_deps: Vec<String> = pyproject
        .as_ref()
        .and_then(|p| str_at(p, &["tool", "poetry", "dependencies"]))
        .and_then(|d| d.as_table())
        .map(|t| t.keys().filter(|k| *k != "python").cloned().collect())
        .unwrap_or_default();

    let deps = if pyproject.is_some() && dir.is_file("uv.lock") {
        PythonDeps::Uv
    } else if pyproject.is_some() && dir.is_file("poetry.lock") {
        PythonDeps::Poetry
    } else if req.is_some() {
        PythonDeps::Requirements("requirements.txt".into())
    } else {
        PythonDeps::Listed(listed.clone())
    };
    if let (Some(req_text), Some(_)) = (&req, &pyproject) {
        let from_req: std::collections::BTreeSet<String> =
            req_text.lines().filter_map(req_name).collect();
        let from_py: std::collections::BTreeSet<String> = listed
            .iter()
            .chain(poetry_deps.iter())
            .filter_map(|l| req_name(l))
            .collect();
        if !from_py.is_empty() && from_req != from_py {
            let used = match &deps {
                PythonDeps::Requirements(f) => f.clone(),
                PythonDeps::Uv => "uv.lock".into(),
                PythonDeps::Poetry => "poetry.lock".into(),
                PythonDeps::Listed(_) => "pyproject.toml".into(),
            };
            let only = |a: &std::collections::BTreeSet<String>,
                        b: &std::collections::BTreeSet<String>| {
                let v: Vec<&str> = a.difference(b).map(String::as_str).collect();
                if v.is_empty() {
                    "-".to_string()
                } else {
                    v.join(", ")
                }
            };
            notes.push(format!(
                "requirements.txt and pyproject.toml list different dependencies (only in requirements.txt: {}; only in pyproject.toml: {}): installing from {used}",
                only(&from_req, &from_py),
                only(&from_py, &from_req)
            ));
        }
    }

    let lock = match &deps {
        PythonDeps::Uv => dir.read("uv.lock")?,
        PythonDeps::Poetry => dir.read("poetry.lock")?,
        _ => None,
    }
    .unwrap_or_default();
    let all_deps = format!(
        "{}\n{}\n{}",
        req.as_deref().unwrap_or(""),
        listed.join("\n"),
        poetry_deps.join("\n"),
    )
    .to_ascii_lowercase();
    let asgi = all_deps.contains("fastapi")
        || all_deps.contains("uvicorn")
        || lock.contains("name = \"fastapi\"")
        || lock.contains("name = \"uvicorn\"");

    let has_build_system = pyproject
        .as_ref()
        .is_some_and(|p| p.contains_key("build-system"));
    let src_packages = src_packages(dir)?;
    let package = has_build_system && !src_packages.is_empty();

    // Candidate files, in the order real apps put the app: the first that creates
    // `FastAPI()` wins, so a launcher main.py beside app/main.py is passed over.
    let mut candidates: Vec<(String, String, Vec<String>)> = Vec::new();
    for (file, module) in [
        ("main.py", "main"),
        ("app.py", "app"),
        ("app/main.py", "app.main"),
        ("server.py", "server"),
    ] {
        candidates.push((file.into(), module.into(), Vec::new()));
    }
    for pkg in &src_packages {
        for m in ["main", "app", "server", "api"] {
            let file = format!("src/{pkg}/{m}.py");
            // An installed package is imported by name; otherwise from /app/src.
            let path = if package {
                Vec::new()
            } else {
                vec!["src".to_string()]
            };
            candidates.push((file, format!("{pkg}.{m}"), path));
        }
    }
    for (file, module) in [("src/main.py", "main"), ("src/app.py", "app")] {
        candidates.push((file.into(), module.into(), vec!["src".into()]));
    }
    let mut found: Option<(String, String, Vec<String>)> = None;
    let mut fallback: Option<(String, String, Vec<String>)> = None;
    for (file, module, path) in candidates {
        let Some(text) = dir.read(&file)? else {
            continue;
        };
        if let Some(c) = fastapi_re().captures(&text) {
            found = Some((file, format!("{module}:{}", &c[1]), path));
            break;
        }
        if fallback.is_none() {
            fallback = Some((file, format!("{module}:app"), path));
        }
    }
    let (app_file, app_module, mut pythonpath) = match (found, asgi) {
        (Some((f, m, p)), _) => (Some(f), m, p),
        (None, true) => {
            notes.push(
                "FastAPI/uvicorn is a dependency but no `app = FastAPI()` was found in main.py, app.py, app/main.py, src/main.py or src/PKG/main.py: assuming `main:app` (set `module:` to say where it is)".into(),
            );
            match fallback {
                Some((_, m, p)) => (None, m, p),
                None => (None, "main:app".into(), Vec::new()),
            }
        }
        (None, false) => (None, "main:app".into(), Vec::new()),
    };
    if let Some(f) = &app_file {
        notes.push(format!(
            "the ASGI app is in {f}: uvicorn runs `{app_module}`{}",
            if pythonpath.is_empty() {
                String::new()
            } else {
                format!(" with PYTHONPATH={}", pythonpath_value(&pythonpath))
            }
        ));
    }
    // `from src.x import y` beside flat imports needs the app directory too.
    if pythonpath == ["src"] {
        pythonpath.push(String::new());
    }
    let script = ["main.py", "app.py", "server.py", "src/main.py"]
        .iter()
        .find(|f| dir.is_file(f))
        .map(|s| s.to_string())
        .unwrap_or_else(|| "main.py".into());
    let version = version(dir, pyproject.as_ref())?;
    if let PythonVersion::Chosen {
        minor,
        source,
        want,
    } = &version
    {
        notes.push(format!(
            "Python 3.{minor} (python:3.{minor}-slim), the newest that satisfies `{want}` from {source}"
        ));
    }
    Ok(PythonInfo {
        deps,
        package,
        asgi,
        app_module,
        script,
        pythonpath,
        app_file,
        version,
    })
}

/// Use `module` (`MODULE:ATTR`) as the ASGI app, once its file is found in the app
/// directory, in `src/` or (for an installed package) in `src/`'s packages.
pub fn set_module(dir: &dyn Tree, info: &mut PythonInfo, module: &str) -> Result<()> {
    let bad = |reason: String| Error::Invalid {
        what: format!("module `{module}`"),
        reason,
        fix: format!(
            "set `module:` to `MODULE:ATTR` naming the file that creates the app, e.g. `{}`",
            info.app_module
        ),
    };
    let (m, attr) = module
        .split_once(':')
        .ok_or_else(|| bad("it has no `:ATTR` (uvicorn needs MODULE:ATTR)".into()))?;
    let ident = |p: &str| {
        !p.is_empty()
            && !p.starts_with(|c: char| c.is_ascii_digit())
            && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if !m.split('.').all(ident) || !attr.split('.').all(ident) {
        return Err(bad(
            "it is not a dotted Python name followed by `:ATTR`".into()
        ));
    }
    let rel = m.replace('.', "/");
    for (root, path) in [
        ("", Vec::new()),
        ("src/", vec!["src".to_string(), String::new()]),
    ] {
        for file in [
            format!("{root}{rel}.py"),
            format!("{root}{rel}/__init__.py"),
        ] {
            if dir.is_file(&file) {
                info.app_module = module.to_string();
                info.app_file = Some(file);
                info.asgi = true;
                info.pythonpath = if info.package && root == "src/" {
                    Vec::new()
                } else {
                    path
                };
                return Ok(());
            }
        }
    }
    Err(bad(format!(
        "neither {rel}.py nor {rel}/__init__.py exists in {} or its src/",
        dir.display("")
    )))
}

/// Where `module` (dotted) lives in the context, from the image's working
/// directory `/app` or its `src/`: the file, or `None`.
fn module_file(dir: &dyn Tree, module: &str) -> Option<String> {
    let rel = module.replace('.', "/");
    ["", "src/"].iter().find_map(|root| {
        [
            format!("{root}{rel}.py"),
            format!("{root}{rel}/__init__.py"),
            format!("{root}{rel}/__main__.py"),
        ]
        .into_iter()
        .find(|f| dir.is_file(f))
    })
}

/// A `command:` that names the app's code must name code that exists: the
/// `MODULE:ATTR` an ASGI/WSGI server runs, the script `python` runs, or the
/// submodule of a local package `python -m` runs. Checked when planning, since the
/// image would only fail when it starts. Modules that are not the app's own
/// (`python -m uvicorn`) are the installers' business and pass.
pub fn check_command(dir: &dyn Tree, command: &[String]) -> Result<()> {
    let shown = command.join(" ");
    let bad = |reason: String, fix: String| Error::Invalid {
        what: format!("command `{shown}`"),
        reason,
        fix,
    };
    let name = |a: &str| a.rsplit('/').next().unwrap_or(a).to_string();
    let program = command.first().map(|a| name(a)).unwrap_or_default();
    let python = program.starts_with("python");
    let servers = ["uvicorn", "gunicorn", "hypercorn"];
    let args = &command[1.min(command.len())..];
    let module_arg = args
        .iter()
        .position(|a| a == "-m")
        .and_then(|i| args.get(i + 1));
    let serves = servers.contains(&program.as_str())
        || (python && module_arg.is_some_and(|m| servers.contains(&m.as_str())));
    let dotted = |p: &str| {
        !p.is_empty()
            && p.split('.').all(|x| {
                !x.is_empty()
                    && !x.starts_with(|c: char| c.is_ascii_digit())
                    && x.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
    };
    if serves {
        let app = args.iter().find_map(|a| {
            let (m, attr) = a.split_once(':')?;
            let attr = attr.split('(').next().unwrap_or(attr);
            (!a.starts_with('-') && dotted(m) && dotted(attr)).then_some(m)
        });
        if let Some(m) = app
            && module_file(dir, m).is_none()
        {
            let rel = m.replace('.', "/");
            return Err(bad(
                format!(
                    "it serves the app of module `{m}`, and neither {rel}.py nor {rel}/__init__.py exists in {} or its src/",
                    dir.display("")
                ),
                "name the module of the file that creates the app (`MODULE:ATTR`, dots for folders, e.g. `app.main:app` for app/main.py)".into(),
            ));
        }
        return Ok(());
    }
    if !python {
        return Ok(());
    }
    if let Some(m) = module_arg {
        let top = m.split('.').next().unwrap_or(m);
        let local =
            module_file(dir, top).is_some() || dir.is_dir(top) || dir.is_dir(&format!("src/{top}"));
        if dotted(m) && local && module_file(dir, m).is_none() {
            let rel = m.replace('.', "/");
            return Err(bad(
                format!(
                    "`python -m {m}` runs a module of the app's package `{top}`, and none of {rel}.py, {rel}/__init__.py, {rel}/__main__.py exists in {} or its src/",
                    dir.display("")
                ),
                format!("name an existing module of `{top}`, or add {rel}.py"),
            ));
        }
        return Ok(());
    }
    if let Some(script) = args.iter().find(|a| !a.starts_with('-'))
        && script.ends_with(".py")
    {
        let rel = script.trim_start_matches("/app/").trim_start_matches("./");
        if (!script.starts_with('/') || script.starts_with("/app/")) && !dir.is_file(rel) {
            return Err(bad(
                format!(
                    "it runs the script {script}, and {} does not exist",
                    dir.display(rel)
                ),
                "name a script of the component, relative to its directory (the image's /app)"
                    .into(),
            ));
        }
    }
    Ok(())
}

/// `PYTHONPATH` for directories of /app (`""` is /app itself).
pub fn pythonpath_value(dirs: &[String]) -> String {
    dirs.iter()
        .map(|d| {
            if d.is_empty() {
                "/app".to_string()
            } else {
                format!("/app/{d}")
            }
        })
        .collect::<Vec<_>>()
        .join(":")
}

/// Packages of a src layout: `src/NAME/__init__.py`.
fn src_packages(dir: &dyn Tree) -> Result<Vec<String>> {
    if !dir.is_dir("src") {
        return Ok(Vec::new());
    }
    let mut v: Vec<String> = dir
        .list("src")?
        .into_iter()
        .filter(|e| e.is_dir && dir.is_file(&format!("src/{}/__init__.py", e.name)))
        .map(|e| e.name)
        .collect();
    v.sort();
    Ok(v)
}

fn fastapi_re() -> regex::Regex {
    regex::Regex::new(r"(?m)^([A-Za-z_][A-Za-z0-9_]*)\s*(?::[^=]*)?=\s*(?:fastapi\.)?FastAPI\(")
        .expect("valid regex")
}

/// The version from `.python-version`, `runtime.txt` or `requires-python`, in that
/// order (the first two name one version; the last is a range).
fn version(dir: &dyn Tree, pyproject: Option<&toml::Table>) -> Result<PythonVersion> {
    let pinned = |file: &str, text: &str, strip: &str| -> Option<PythonVersion> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))?;
        let v = line.strip_prefix(strip).unwrap_or(line);
        let want = v.to_string();
        let mut parts = v.split('.');
        let ok = parts.next() == Some("3");
        let minor = parts.next().and_then(|m| m.parse::<u32>().ok());
        Some(match minor {
            Some(minor) if ok && SLIM_MINORS.contains(&minor) => PythonVersion::Chosen {
                minor,
                source: file.into(),
                want,
            },
            _ => PythonVersion::Unsatisfiable {
                source: file.into(),
                want,
            },
        })
    };
    if let Some(t) = dir.read(".python-version")?
        && let Some(v) = pinned(".python-version", &t, "")
    {
        return Ok(v);
    }
    if let Some(t) = dir.read("runtime.txt")?
        && let Some(v) = pinned("runtime.txt", &t, "python-")
    {
        return Ok(v);
    }
    let want = pyproject
        .and_then(|p| str_at(p, &["project", "requires-python"]))
        .or_else(|| {
            pyproject.and_then(|p| str_at(p, &["tool", "poetry", "dependencies", "python"]))
        })
        .and_then(|v| v.as_str());
    let Some(want) = want else {
        return Ok(PythonVersion::Default);
    };
    let source = "pyproject.toml".to_string();
    let newest = SLIM_MINORS
        .iter()
        .rev()
        .find(|&&m| (0..=30).any(|patch| satisfies(want, [3, m, patch])));
    Ok(match newest {
        Some(&minor) => PythonVersion::Chosen {
            minor,
            source,
            want: want.into(),
        },
        None => PythonVersion::Unsatisfiable {
            source,
            want: want.into(),
        },
    })
}

/// Whether version `v` satisfies a PEP 440 specifier set (or Poetry's `^`/`~`).
fn satisfies(spec: &str, v: [u32; 3]) -> bool {
    spec.split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .all(|clause| {
            let op_end = clause
                .find(|c: char| c.is_ascii_digit() || c == '*')
                .unwrap_or(clause.len());
            let (op, ver) = (clause[..op_end].trim(), clause[op_end..].trim());
            let wildcard = ver.ends_with(".*");
            let parts: Vec<u32> = ver
                .trim_end_matches(".*")
                .split('.')
                .map(|p| p.parse().unwrap_or(0))
                .collect();
            let mut w = [0u32; 3];
            for (i, p) in parts.iter().take(3).enumerate() {
                w[i] = *p;
            }
            let prefix = |n: usize| v[..n] == w[..n];
            match op {
                ">=" => v >= w,
                ">" => v > w,
                "<=" => v <= w,
                "<" => v < w,
                "==" | "===" | "" if wildcard => prefix(parts.len()),
                "==" | "===" | "" => v == w,
                "!=" if wildcard => !prefix(parts.len()),
                "!=" => v != w,
                // ~=3.12 means >=3.12,==3.*; ~=3.12.1 means >=3.12.1,==3.12.*
                "~=" => v >= w && prefix(parts.len().saturating_sub(1).max(1)),
                // Poetry: ^3.12 means >=3.12,<4; ~3.12 means >=3.12,<3.13
                "^" => v >= w && v[0] == w[0],
                "~" => v >= w && prefix(parts.len().min(2)),
                _ => false,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specifiers() {
        assert!(satisfies(">=3.12", [3, 13, 0]));
        assert!(!satisfies(">=3.12", [3, 11, 9]));
        assert!(satisfies(">=3.10,<3.12", [3, 11, 2]));
        assert!(!satisfies(">=3.10,<3.12", [3, 12, 0]));
        assert!(satisfies("==3.12.*", [3, 12, 4]));
        assert!(!satisfies("==3.12.*", [3, 13, 0]));
        assert!(satisfies("~=3.11", [3, 13, 0]));
        assert!(satisfies("^3.11", [3, 12, 0]));
        assert!(!satisfies("~3.11", [3, 12, 0]));
        assert!(!satisfies(">=3.14", [3, 13, 30]));
    }

    #[test]
    fn utf16_requirements_are_read() {
        let text = "fastapi==0.115.2\r\nuvicorn\r\n";
        let mut bytes = vec![0xFF, 0xFE];
        for u in text.encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        assert_eq!(decode(&bytes), text);
        let names: Vec<String> = decode(&bytes).lines().filter_map(req_name).collect();
        assert_eq!(names, ["fastapi", "uvicorn"]);
    }
}
