//! Stack detection: what kind of app a component directory holds.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::spec::{ComponentSpec, StackKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageManager {
    /// npm with a package-lock.json (`npm ci`)
    NpmCi,
    /// npm without a lockfile (`npm install`)
    NpmInstall,
    Pnpm,
    Yarn,
}

impl PackageManager {
    pub fn lockfile(self) -> Option<&'static str> {
        match self {
            PackageManager::NpmCi => Some("package-lock.json"),
            PackageManager::NpmInstall => None,
            PackageManager::Pnpm => Some("pnpm-lock.yaml"),
            PackageManager::Yarn => Some("yarn.lock"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub package_manager: PackageManager,
    pub has_build_script: bool,
    pub has_start_script: bool,
    /// `main` of package.json, else the first of server.js/index.js/app.js found.
    pub main: Option<String>,
    pub has_public: bool,
    /// Next.js only: does `next.config.*` set `output: 'standalone'`?
    pub standalone: bool,
    pub next_config: Option<String>,
    /// Next.js only: the `NEXT_PUBLIC_*` variables the code reads (`next build`
    /// inlines them, so they are build arguments).
    pub public_env: Vec<String>,
}

pub use crate::python::{PythonDeps, PythonInfo, PythonVersion};

/// What detection found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    pub stack: StackKind,
    /// The app's own Dockerfile, relative to the component directory.
    pub dockerfile_path: Option<PathBuf>,
    pub node: Option<NodeInfo>,
    pub python: Option<PythonInfo>,
    /// Go: the module's main package path; Binary: the executable's file name.
    pub binary: Option<String>,
    /// Things the user should know (e.g. a missing `output: 'standalone'`).
    pub notes: Vec<String>,
}

impl Detected {
    fn new(stack: StackKind) -> Self {
        Detected {
            stack,
            dockerfile_path: None,
            node: None,
            python: None,
            binary: None,
            notes: Vec::new(),
        }
    }
}

/// A directory detection can look at: the component on disk, or a build context
/// BuildKit holds (read through the frontend gateway).
pub trait Tree {
    /// The bytes of the file at `rel`, `None` when there is none.
    fn read_bytes(&self, rel: &str) -> Result<Option<Vec<u8>>>;
    /// The text of the file at `rel` (UTF-8, or UTF-16 with a byte-order mark).
    fn read(&self, rel: &str) -> Result<Option<String>> {
        Ok(self.read_bytes(rel)?.map(|b| crate::python::decode(&b)))
    }
    fn is_file(&self, rel: &str) -> bool;
    fn is_dir(&self, rel: &str) -> bool;
    /// Entries directly in directory `rel` ("" is the top).
    fn list(&self, rel: &str) -> Result<Vec<TreeEntry>>;
    /// The first bytes of the file at `rel` (up to 4).
    fn magic(&self, rel: &str) -> Option<[u8; 4]>;
    /// How to name `rel` in messages.
    fn display(&self, rel: &str) -> String;
}

/// An entry of [`Tree::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    pub name: String,
    pub is_dir: bool,
    pub is_file: bool,
    pub executable: bool,
}

/// A component directory on disk.
pub struct FsTree<'a>(pub &'a Path);

impl Tree for FsTree<'_> {
    fn read_bytes(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        let p = self.0.join(rel);
        match fs::read(&p) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(p, e)),
        }
    }
    fn is_file(&self, rel: &str) -> bool {
        self.0.join(rel).is_file()
    }
    fn is_dir(&self, rel: &str) -> bool {
        self.0.join(rel).is_dir()
    }
    fn list(&self, rel: &str) -> Result<Vec<TreeEntry>> {
        let dir = self.0.join(rel);
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let e = e.map_err(|e| Error::io(&dir, e))?;
            // A directory may be a link to one; a prebuilt binary must be a real file.
            let Ok(m) = e.metadata() else { continue };
            out.push(TreeEntry {
                name: e.file_name().to_string_lossy().into_owned(),
                is_dir: e.path().is_dir(),
                is_file: m.is_file(),
                executable: m.permissions().mode() & 0o111 != 0,
            });
        }
        Ok(out)
    }
    fn magic(&self, rel: &str) -> Option<[u8; 4]> {
        use std::io::Read;
        let mut magic = [0u8; 4];
        let mut f = fs::File::open(self.0.join(rel)).ok()?;
        f.read_exact(&mut magic).ok()?;
        Some(magic)
    }
    fn display(&self, rel: &str) -> String {
        if rel.is_empty() {
            self.0.display().to_string()
        } else {
            self.0.join(rel).display().to_string()
        }
    }
}

/// Detect the stack of the component `dir` (absolute), honouring the spec's
/// overrides.
pub fn detect(dir: &Path, spec: &ComponentSpec) -> Result<Detected> {
    detect_in(&FsTree(dir), spec)
}

/// Detect the stack of the component `dir` holds, honouring the spec's overrides.
pub fn detect_in(dir: &dyn Tree, spec: &ComponentSpec) -> Result<Detected> {
    if let Some(df) = &spec.dockerfile {
        let rel = df.to_string_lossy();
        if !dir.is_file(&rel) {
            return Err(Error::Invalid {
                what: format!("dockerfile `{}`", df.display()),
                reason: format!("{} does not exist", dir.display(&rel)),
                fix: "correct `dockerfile:` in the project file (it is relative to the component directory)".into(),
            });
        }
        let mut d = Detected::new(StackKind::Dockerfile);
        d.dockerfile_path = Some(df.clone());
        return Ok(d);
    }
    let want = spec.stack;
    if (want.is_none() || want == Some(StackKind::Dockerfile)) && dir.is_file("Dockerfile") {
        let mut d = Detected::new(StackKind::Dockerfile);
        d.dockerfile_path = Some(PathBuf::from("Dockerfile"));
        return Ok(d);
    }
    if want == Some(StackKind::Dockerfile) {
        return Err(Error::Invalid {
            what: "stack `dockerfile`".into(),
            reason: format!("{} has no Dockerfile", dir.display("")),
            fix: "add a Dockerfile or set `dockerfile:` to its path in the project file".into(),
        });
    }
    let python = dir.is_file("requirements.txt") || dir.is_file("pyproject.toml");
    if let Some(pkg) = dir.read("package.json")?
        && matches!(want, None | Some(StackKind::Nextjs) | Some(StackKind::Node))
        // Monorepo tooling leaves a scripts-only package.json beside Python code.
        && !(want.is_none() && python && !has_dependencies(&pkg))
    {
        return detect_node(dir, &pkg, want, spec);
    }
    if python && matches!(want, None | Some(StackKind::Python)) {
        return detect_python(dir, spec);
    }
    if dir.is_file("go.mod") && matches!(want, None | Some(StackKind::Go)) {
        let mut d = Detected::new(StackKind::Go);
        d.binary = Some(if dir.is_dir("cmd") && !dir.is_file("main.go") {
            first_cmd(dir).unwrap_or_else(|| ".".into())
        } else {
            ".".into()
        });
        return Ok(d);
    }
    if matches!(want, None | Some(StackKind::Binary))
        && let Some(bin) = find_executable(dir)?
    {
        let mut d = Detected::new(StackKind::Binary);
        d.binary = Some(bin);
        return Ok(d);
    }
    match want {
        Some(kind) => Err(Error::Invalid {
            what: format!("stack `{}`", kind.as_str()),
            reason: format!(
                "{} has none of the files that stack needs (package.json, requirements.txt/pyproject.toml, go.mod or an executable)",
                dir.display("")
            ),
            fix: "point the component at the right directory or change `stack:`".into(),
        }),
        None => Err(Error::UnknownStack {
            path: PathBuf::from(dir.display("")),
        }),
    }
}

/// Whether a package.json lists any dependency (unreadable JSON counts as
/// yes, so that the Node detection reports it).
fn has_dependencies(pkg: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(pkg).map_or(true, |pkg| {
        ["dependencies", "devDependencies"].iter().any(|k| {
            pkg.get(k)
                .and_then(|d| d.as_object())
                .is_some_and(|d| !d.is_empty())
        })
    })
}

/// What a generated recipe builds for the component `dir` holds, as if it
/// had no Dockerfile: the stack `stack:` would choose instead of the app's own.
pub fn recipe_in(dir: &dyn Tree, spec: &ComponentSpec) -> Result<Detected> {
    let spec = ComponentSpec {
        dockerfile: None,
        stack: spec.stack.filter(|s| *s != StackKind::Dockerfile),
        ..spec.clone()
    };
    detect_in(&WithoutDockerfile(dir), &spec)
}

/// A tree whose `Dockerfile` is not there.
struct WithoutDockerfile<'a>(&'a dyn Tree);

impl Tree for WithoutDockerfile<'_> {
    fn read_bytes(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        if rel == "Dockerfile" {
            return Ok(None);
        }
        self.0.read_bytes(rel)
    }
    fn is_file(&self, rel: &str) -> bool {
        rel != "Dockerfile" && self.0.is_file(rel)
    }
    fn is_dir(&self, rel: &str) -> bool {
        self.0.is_dir(rel)
    }
    fn list(&self, rel: &str) -> Result<Vec<TreeEntry>> {
        let mut entries = self.0.list(rel)?;
        if rel.is_empty() {
            entries.retain(|e| e.name != "Dockerfile");
        }
        Ok(entries)
    }
    fn magic(&self, rel: &str) -> Option<[u8; 4]> {
        self.0.magic(rel)
    }
    fn display(&self, rel: &str) -> String {
        self.0.display(rel)
    }
}

fn detect_node(
    dir: &dyn Tree,
    pkg_text: &str,
    want: Option<StackKind>,
    spec: &ComponentSpec,
) -> Result<Detected> {
    let pkg: serde_json::Value = serde_json::from_str(pkg_text).map_err(|e| Error::Invalid {
        what: dir.display("package.json"),
        reason: format!("it is not valid JSON: {e}"),
        fix: "fix the syntax error in package.json (`npm pkg get name` shows whether npm can read it)".into(),
    })?;
    let has_dep = |name: &str| {
        ["dependencies", "devDependencies"]
            .iter()
            .any(|k| pkg.get(k).and_then(|d| d.get(name)).is_some())
    };
    let is_next = match want {
        Some(StackKind::Nextjs) => true,
        Some(StackKind::Node) => false,
        _ => has_dep("next"),
    };
    let scripts = pkg.get("scripts");
    let has_script = |s: &str| scripts.and_then(|v| v.get(s)).is_some();
    let package_manager = if dir.is_file("pnpm-lock.yaml") {
        PackageManager::Pnpm
    } else if dir.is_file("yarn.lock") {
        PackageManager::Yarn
    } else if dir.is_file("package-lock.json") {
        PackageManager::NpmCi
    } else {
        PackageManager::NpmInstall
    };
    let main = pkg
        .get("main")
        .and_then(|m| m.as_str())
        .map(str::to_string)
        .or_else(|| {
            ["server.js", "index.js", "app.js", "main.js"]
                .iter()
                .find(|f| dir.is_file(f))
                .map(|f| f.to_string())
        });
    let mut d = Detected::new(if is_next {
        StackKind::Nextjs
    } else {
        StackKind::Node
    });
    let mut info = NodeInfo {
        package_manager,
        has_build_script: has_script("build"),
        has_start_script: has_script("start"),
        main,
        has_public: dir.is_dir("public"),
        standalone: false,
        next_config: None,
        public_env: Vec::new(),
    };
    if package_manager == PackageManager::NpmInstall {
        d.notes.push(
            "no lockfile (package-lock.json, pnpm-lock.yaml or yarn.lock): dependencies are resolved at build time; run `npm install` and commit package-lock.json for repeatable images".into(),
        );
    }
    if is_next {
        for name in [
            "next.config.js",
            "next.config.mjs",
            "next.config.ts",
            "next.config.cjs",
        ] {
            if let Some(text) = dir.read(name)? {
                info.next_config = Some(name.to_string());
                info.standalone = standalone_re().is_match(&text);
                break;
            }
        }
        if !info.standalone {
            d.notes.push(format!(
                "{} does not set `output: 'standalone'`: the image runs `next start` from a pruned production install (the whole production node_modules); standalone output copies only the files the server uses, usually several times smaller: add `output: 'standalone'` to the config object in {}",
                info.next_config.as_deref().unwrap_or("no next.config.* exists and so it"),
                info.next_config.as_deref().unwrap_or("a new next.config.mjs (`export default { output: 'standalone' }`)")
            ));
        }
        info.public_env = public_env(dir)?;
        if !info.public_env.is_empty() {
            let (set, unset): (Vec<&String>, Vec<&String>) = info
                .public_env
                .iter()
                .partition(|n| spec.build_args.contains_key(*n));
            let list = |v: &[&String]| {
                if v.is_empty() {
                    "-".to_string()
                } else {
                    v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                }
            };
            d.notes.push(format!(
                "`next build` inlines the NEXT_PUBLIC_* variables the code reads; set from build arguments: {}; not set (the code's fallback applies): {}",
                list(&set),
                list(&unset)
            ));
        }
    } else if info.main.is_none() && !info.has_start_script {
        d.notes.push(
            "package.json has no `main` and no `start` script, and no server.js/index.js exists: set `main` so the image knows what to run".into(),
        );
    }
    d.node = Some(info);
    Ok(d)
}

/// The `NEXT_PUBLIC_*` names the sources read, sorted.
fn public_env(dir: &dyn Tree) -> Result<Vec<String>> {
    let re = regex::Regex::new(r"\bNEXT_PUBLIC_[A-Z0-9_]+").expect("valid regex");
    let mut found = std::collections::BTreeSet::new();
    let mut todo = vec![String::new()];
    let mut files = 0;
    while let Some(d) = todo.pop() {
        for e in dir.list(&d)? {
            let rel = if d.is_empty() {
                e.name.clone()
            } else {
                format!("{d}/{}", e.name)
            };
            if e.is_dir {
                if !matches!(
                    e.name.as_str(),
                    "node_modules" | ".next" | ".git" | "public" | "out"
                ) {
                    todo.push(rel);
                }
            } else if e.is_file
                && [".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs"]
                    .iter()
                    .any(|x| e.name.ends_with(x))
                && files < 5000
            {
                files += 1;
                if let Some(text) = dir.read(&rel)? {
                    found.extend(re.find_iter(&text).map(|m| m.as_str().to_string()));
                }
            }
        }
    }
    Ok(found.into_iter().collect())
}

fn standalone_re() -> regex::Regex {
    regex::Regex::new(r#"output\s*:\s*["'`]standalone["'`]"#).expect("valid regex")
}

fn detect_python(dir: &dyn Tree, spec: &ComponentSpec) -> Result<Detected> {
    let mut d = Detected::new(StackKind::Python);
    let mut info = crate::python::detect(dir, &mut d.notes)?;
    if let Some(m) = &spec.module {
        crate::python::set_module(dir, &mut info, m)?;
        d.notes.retain(|n| {
            !n.starts_with("the ASGI app is in")
                && !n.starts_with("FastAPI/uvicorn is a dependency")
        });
        d.notes
            .push(format!("the ASGI app is `{m}`, as `module:` says"));
    }
    if let Some(c) = &spec.command {
        crate::python::check_command(dir, c)?;
    }
    d.python = Some(info);
    Ok(d)
}

fn first_cmd(dir: &dyn Tree) -> Option<String> {
    let mut names: Vec<String> = dir
        .list("cmd")
        .ok()?
        .into_iter()
        .filter(|e| e.is_dir)
        .map(|e| e.name)
        .collect();
    names.sort();
    names.first().map(|n| format!("./cmd/{n}"))
}

/// An executable ELF file at the top of `dir` (a prebuilt binary).
fn find_executable(dir: &dyn Tree) -> Result<Option<String>> {
    let mut found: Vec<String> = dir
        .list("")?
        .into_iter()
        .filter(|e| e.is_file && e.executable)
        .filter(|e| dir.magic(&e.name) == Some(*b"\x7fELF"))
        .map(|e| e.name)
        .collect();
    found.sort();
    Ok(found.into_iter().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        let p = dir.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    #[test]
    fn detects_each_stack() {
        let t = tempfile::tempdir().unwrap();
        let spec = ComponentSpec::default();

        let next = t.path().join("next");
        write(
            &next,
            "package.json",
            r#"{"dependencies":{"next":"14"},"scripts":{"build":"next build"}}"#,
        );
        write(&next, "package-lock.json", "{}");
        write(
            &next,
            "next.config.mjs",
            "export default { output: 'standalone' }",
        );
        let d = detect(&next, &spec).unwrap();
        assert_eq!(d.stack, StackKind::Nextjs);
        let n = d.node.unwrap();
        assert_eq!(n.package_manager, PackageManager::NpmCi);
        assert!(n.standalone);
        assert!(d.notes.is_empty());

        let next2 = t.path().join("next2");
        write(&next2, "package.json", r#"{"dependencies":{"next":"14"}}"#);
        write(&next2, "yarn.lock", "");
        let d = detect(&next2, &spec).unwrap();
        assert_eq!(d.node.unwrap().package_manager, PackageManager::Yarn);
        assert!(d.notes.iter().any(|n| n.contains("output: 'standalone'")));

        let node = t.path().join("node");
        write(&node, "package.json", r#"{"main":"srv.js"}"#);
        let d = detect(&node, &spec).unwrap();
        assert_eq!(d.stack, StackKind::Node);
        assert_eq!(d.node.unwrap().main.as_deref(), Some("srv.js"));

        let py = t.path().join("py");
        write(&py, "requirements.txt", "fastapi==0.110\nuvicorn\n");
        write(
            &py,
            "app/main.py",
            "from fastapi import FastAPI\napi = FastAPI()\n",
        );
        let d = detect(&py, &spec).unwrap();
        assert_eq!(d.stack, StackKind::Python);
        let p = d.python.unwrap();
        assert!(p.asgi);
        assert_eq!(p.app_module, "app.main:api");

        let go = t.path().join("go");
        write(&go, "go.mod", "module x\n");
        write(&go, "main.go", "package main\n");
        assert_eq!(detect(&go, &spec).unwrap().stack, StackKind::Go);

        let own = t.path().join("own");
        write(&own, "Dockerfile", "FROM scratch\n");
        write(&own, "package.json", "{}");
        let d = detect(&own, &spec).unwrap();
        assert_eq!(d.stack, StackKind::Dockerfile);
        // What `stack:` would build instead of the app's own Dockerfile.
        let d = recipe_in(&FsTree(&own), &spec).unwrap();
        assert_eq!(d.stack, StackKind::Node);

        // Monorepo tooling: a scripts-only package.json beside a Python app.
        let mono = t.path().join("mono");
        write(
            &mono,
            "package.json",
            r#"{"scripts":{"dev":"uvicorn main:app"}}"#,
        );
        write(&mono, "requirements.txt", "fastapi\n");
        write(
            &mono,
            "main.py",
            "from fastapi import FastAPI\napp = FastAPI()\n",
        );
        assert_eq!(detect(&mono, &spec).unwrap().stack, StackKind::Python);
        write(&mono, "package.json", r#"{"dependencies":{"express":"4"}}"#);
        assert_eq!(detect(&mono, &spec).unwrap().stack, StackKind::Node);

        let bin = t.path().join("bin");
        write(&bin, "server", "\x7fELF....");
        fs::set_permissions(bin.join("server"), fs::Permissions::from_mode(0o755)).unwrap();
        let d = detect(&bin, &spec).unwrap();
        assert_eq!(d.stack, StackKind::Binary);
        assert_eq!(d.binary.as_deref(), Some("server"));

        let empty = t.path().join("empty");
        fs::create_dir_all(&empty).unwrap();
        let err = detect(&empty, &spec).unwrap_err().to_string();
        assert!(err.contains("stack:"), "{err}");
        assert!(err.contains("package.json"), "{err}");
    }

    #[test]
    fn stack_override_wins() {
        let t = tempfile::tempdir().unwrap();
        write(
            t.path(),
            "package.json",
            r#"{"dependencies":{"next":"14"}}"#,
        );
        let spec = ComponentSpec {
            stack: Some(StackKind::Node),
            ..Default::default()
        };
        assert_eq!(detect(t.path(), &spec).unwrap().stack, StackKind::Node);
    }
}
