//! The build recipe: the stages and steps that turn a detected app into its image.
//!
//! One recipe has two renderings: Dockerfile text ([`crate::dockerfile`]) for builds
//! through the Engine API, and LLB ([`crate::frontend::llb`]) for builds through the
//! BuildKit frontend. Both come from [`recipe`], so the two paths cannot drift apart.

use crate::detect::{Detected, PackageManager, PythonDeps};
use crate::python::pythonpath_value;
use crate::spec::{BaseImages, StackKind};

/// The numeric user every generated image runs as.
pub const USER: &str = "1001:1001";

pub const NODE_IMAGE: &str = "node:20-alpine";
pub const PYTHON_IMAGE: &str = "python:3.11-slim";
pub const GO_IMAGE: &str = "golang:1.23-alpine";
pub const STATIC_RUNTIME: &str = "scratch";

/// Files image-builder adds to the context (the generated Dockerfile or build file
/// and a `.dockerignore` naming it). The classic builder drops them itself; BuildKit
/// does not apply `.dockerignore` to an uploaded context, so stages that copy the
/// whole context remove them before the runtime stage copies from there (Python
/// copies the context's own entries by name instead, see [`GenOptions::top_level`]).
pub const SYNTHETIC: &str = ".image-builder.Dockerfile .dockerignore";

/// Options for generation.
#[derive(Debug, Clone)]
pub struct GenOptions<'a> {
    pub component: &'a str,
    pub port: u16,
    pub base: &'a BaseImages,
    /// Use BuildKit cache mounts for package downloads.
    pub cache_mounts: bool,
    /// The command the image runs, instead of the one the recipe would choose.
    pub command: Option<&'a [String]>,
    /// Names of the build arguments, declared where package managers and builds run.
    pub build_args: Vec<String>,
    /// Every command trusts the CA bundle of [`crate::ca`] (BuildKit only). Only
    /// builder stages run commands, so the bundle never reaches a final stage.
    pub ca_cert: bool,
    /// The context's top-level entries (name, whether a directory), from
    /// [`top_level`]. The Python recipe copies these by name: with no `COPY
    /// --exclude` and no `.dockerignore` for an uploaded context, that is how the
    /// synthetic files stay out of the image without a `RUN` on every code change.
    pub top_level: Vec<(String, bool)>,
}

/// The top-level entries of a context, from its paths (relative, `/` separated) and
/// whether each is a directory; sorted, each once.
pub fn top_level<'a>(paths: impl Iterator<Item = (&'a str, bool)>) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = Vec::new();
    for (rel, dir) in paths {
        let (name, dir) = match rel.split_once('/') {
            Some((first, _)) => (first, true),
            None => (rel, dir),
        };
        match out.iter_mut().find(|(n, _)| n == name) {
            Some(e) => e.1 |= dir,
            None => out.push((name.to_string(), dir)),
        }
    }
    out.sort();
    out
}

fn args(o: &GenOptions<'_>) -> impl Iterator<Item = Step> {
    o.build_args.iter().cloned().map(Step::Arg)
}

/// One step of a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Workdir(String),
    /// A build argument: its value is in the environment of the stage's later `RUN`
    /// steps, never in the image's configuration.
    Arg(String),
    /// Variables set in order; a value may refer to earlier ones as `$NAME`.
    Env(Vec<(String, String)>),
    /// Copy `srcs` (relative to the context, or absolute in stage `from`) to `dest`
    /// (relative to the working directory; a trailing `/` means "into").
    Copy {
        from: Option<&'static str>,
        srcs: Vec<String>,
        dest: String,
    },
    /// A shell command, with cache mounts at `caches` and a linter note above it;
    /// with `ca_cert`, the CA bundle mounted as a secret and named by
    /// [`crate::ca::ENV`] for this command only.
    Run {
        caches: Vec<&'static str>,
        cmd: String,
        lint_note: Option<&'static str>,
        ca_cert: bool,
    },
    User(&'static str),
    Expose(u16),
    Cmd(Vec<String>),
    Entrypoint(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub name: &'static str,
    /// Base image reference (`scratch` for an empty one).
    pub from: String,
    pub steps: Vec<Step>,
}

/// The stages of an image; the last one is the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    pub component: String,
    pub stack: StackKind,
    pub stages: Vec<Stage>,
}

/// Default (builder, runtime) base images of a stack.
pub fn default_bases(stack: StackKind) -> (&'static str, &'static str) {
    match stack {
        StackKind::Nextjs | StackKind::Node => (NODE_IMAGE, NODE_IMAGE),
        StackKind::Python => (PYTHON_IMAGE, PYTHON_IMAGE),
        StackKind::Go => (GO_IMAGE, STATIC_RUNTIME),
        StackKind::Binary | StackKind::Dockerfile => (STATIC_RUNTIME, STATIC_RUNTIME),
    }
}

/// The recipe for a detected stack (`None` for [`StackKind::Dockerfile`]: the app's
/// own Dockerfile is its recipe).
pub fn recipe(d: &Detected, o: &GenOptions<'_>) -> Option<Recipe> {
    let (db, dr) = default_bases(d.stack);
    let py_image = d.python.as_ref().and_then(|p| p.version.image());
    let (db, dr) = match &py_image {
        Some(i) => (i.as_str(), i.as_str()),
        None => (db, dr),
    };
    let builder = o.base.builder.as_deref().unwrap_or(db);
    let runtime = o.base.runtime.as_deref().unwrap_or(dr);
    let mut stages = match d.stack {
        StackKind::Dockerfile => return None,
        StackKind::Nextjs | StackKind::Node => node(d, o, builder, runtime),
        StackKind::Python => python(d, o, builder, runtime),
        StackKind::Go => go(d, o, builder, runtime),
        StackKind::Binary => binary(d, o, runtime),
    };
    if o.ca_cert {
        for step in stages.iter_mut().flat_map(|st| st.steps.iter_mut()) {
            if let Step::Run { ca_cert, .. } = step {
                *ca_cert = true;
            }
        }
    }
    if let Some(command) = o.command
        && let Some(last) = stages.last_mut()
    {
        last.steps
            .retain(|st| !matches!(st, Step::Cmd(_) | Step::Entrypoint(_)));
        last.steps.push(Step::Cmd(command.to_vec()));
    }
    Some(Recipe {
        component: o.component.to_string(),
        stack: d.stack,
        stages,
    })
}

fn s(v: &str) -> String {
    v.to_string()
}

fn env(pairs: &[(&str, String)]) -> Step {
    Step::Env(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

fn copy(srcs: &[&str], dest: &str) -> Step {
    Step::Copy {
        from: None,
        srcs: srcs.iter().map(|x| x.to_string()).collect(),
        dest: s(dest),
    }
}

fn copy_from(from: &'static str, src: &str, dest: &str) -> Step {
    Step::Copy {
        from: Some(from),
        srcs: vec![s(src)],
        dest: s(dest),
    }
}

fn run(cmd: impl Into<String>) -> Step {
    Step::Run {
        caches: Vec::new(),
        cmd: cmd.into(),
        lint_note: None,
        ca_cert: false,
    }
}

fn tail(steps: &mut Vec<Step>, port: u16) {
    steps.push(Step::User(USER));
    steps.push(Step::Expose(port));
}

/// The files an install needs first and the install step.
fn install_step(pm: PackageManager, cache: bool) -> (Vec<&'static str>, Step) {
    let (files, cached, target, plain): (&[&str], &str, &str, &str) = match pm {
        PackageManager::NpmCi => (
            &["package.json", "package-lock.json"],
            "npm ci --no-audit --no-fund",
            "/root/.npm",
            "npm ci --no-audit --no-fund && npm cache clean --force",
        ),
        PackageManager::NpmInstall => (
            &["package.json"],
            "npm install --no-audit --no-fund",
            "/root/.npm",
            "npm install --no-audit --no-fund && npm cache clean --force",
        ),
        PackageManager::Pnpm => (
            &["package.json", "pnpm-lock.yaml"],
            "corepack enable pnpm && pnpm install --frozen-lockfile",
            "/root/.local/share/pnpm/store",
            "corepack enable pnpm && pnpm install --frozen-lockfile && pnpm store prune",
        ),
        PackageManager::Yarn => (
            &["package.json", "yarn.lock"],
            "yarn install --frozen-lockfile",
            "/usr/local/share/.cache/yarn",
            "yarn install --frozen-lockfile && yarn cache clean",
        ),
    };
    let step = if cache {
        Step::Run {
            caches: vec![target],
            cmd: s(cached),
            // hadolint wants `yarn cache clean`, which a cache mount makes pointless.
            lint_note: (pm == PackageManager::Yarn).then_some("hadolint ignore=DL3060"),
            ca_cert: false,
        }
    } else {
        run(plain)
    };
    (files.to_vec(), step)
}

fn prune_cmd(pm: PackageManager) -> &'static str {
    match pm {
        PackageManager::NpmCi | PackageManager::NpmInstall => "npm prune --omit=dev",
        PackageManager::Pnpm => "pnpm prune --prod",
        PackageManager::Yarn => {
            "yarn install --frozen-lockfile --production --ignore-scripts --prefer-offline"
        }
    }
}

fn run_script(pm: PackageManager, script: &str) -> String {
    match pm {
        PackageManager::NpmCi | PackageManager::NpmInstall => format!("npm run {script}"),
        PackageManager::Pnpm => format!("pnpm run {script}"),
        PackageManager::Yarn => format!("yarn run {script}"),
    }
}

fn node(d: &Detected, o: &GenOptions<'_>, builder: &str, runtime: &str) -> Vec<Stage> {
    let info = d.node.clone().expect("node info for a node stack");
    let next = d.stack == StackKind::Nextjs;
    let pm = info.package_manager;
    let (files, install) = install_step(pm, o.cache_mounts);

    let mut deps = vec![Step::Workdir(s("/app"))];
    deps.extend(args(o));
    if next {
        deps.push(env(&[("NEXT_TELEMETRY_DISABLED", s("1"))]));
    }
    deps.push(copy(&files, "./"));
    deps.push(install);

    let mut build = vec![Step::Workdir(s("/app"))];
    // `next build` inlines NEXT_PUBLIC_* values: the code's are build arguments too.
    let mut build_args: Vec<String> = o.build_args.clone();
    build_args.extend(info.public_env.iter().cloned());
    build_args.sort();
    build_args.dedup();
    build.extend(build_args.into_iter().map(Step::Arg));
    if next {
        build.push(env(&[
            ("NEXT_TELEMETRY_DISABLED", s("1")),
            ("NODE_ENV", s("production")),
        ]));
    }
    build.push(copy_from("deps", "/app/node_modules", "./node_modules"));
    build.push(copy(&["."], "."));
    if next {
        let next_build = if info.has_build_script {
            run_script(pm, "build")
        } else {
            s("npx --no-install next build")
        };
        build.push(run(if info.standalone {
            next_build
        } else {
            // `next start` runs from the whole app: keep production dependencies only.
            format!(
                "{next_build} && {} && rm -rf {SYNTHETIC} .next/cache",
                prune_cmd(pm)
            )
        }));
    } else if info.has_build_script {
        build.push(run(format!(
            "{} && {} && rm -f {SYNTHETIC}",
            run_script(pm, "build"),
            prune_cmd(pm)
        )));
    } else {
        build.push(run(format!("{} && rm -f {SYNTHETIC}", prune_cmd(pm))));
    }

    let mut rt = vec![Step::Workdir(s("/app"))];
    if next && !info.standalone {
        rt.push(env(&[
            ("NODE_ENV", s("production")),
            ("NEXT_TELEMETRY_DISABLED", s("1")),
            ("PORT", o.port.to_string()),
        ]));
        rt.push(copy_from("build", "/app", "./"));
        tail(&mut rt, o.port);
        rt.push(Step::Cmd(if info.has_start_script {
            vec![s("npm"), s("start")]
        } else {
            vec![s("node_modules/.bin/next"), s("start")]
        }));
    } else if next {
        rt.push(env(&[
            ("NODE_ENV", s("production")),
            ("NEXT_TELEMETRY_DISABLED", s("1")),
            ("PORT", o.port.to_string()),
            ("HOSTNAME", s("0.0.0.0")),
        ]));
        if info.has_public {
            rt.push(copy_from("build", "/app/public", "./public"));
        }
        rt.push(copy_from("build", "/app/.next/standalone", "./"));
        rt.push(copy_from("build", "/app/.next/static", "./.next/static"));
        tail(&mut rt, o.port);
        rt.push(Step::Cmd(vec![s("node"), s("server.js")]));
    } else {
        rt.push(env(&[
            ("NODE_ENV", s("production")),
            ("PORT", o.port.to_string()),
        ]));
        rt.push(copy_from("build", "/app", "./"));
        tail(&mut rt, o.port);
        rt.push(Step::Cmd(match &info.main {
            Some(main) => vec![s("node"), main.clone()],
            None => vec![s("npm"), s("start")],
        }));
    }
    vec![
        Stage {
            name: "deps",
            from: s(builder),
            steps: deps,
        },
        Stage {
            name: "build",
            from: s(builder),
            steps: build,
        },
        Stage {
            name: "runtime",
            from: s(runtime),
            steps: rt,
        },
    ]
}

/// The installers the Python recipe puts in the builder's `/opt/tools` (pinned, so
/// the step that installs them is cached once and for all).
pub const UV_PIN: &str = "uv==0.13.9";
pub const POETRY_PIN: &str = "poetry==2.5.1";

/// What installing the app as a package leaves in /app (the context holds none of
/// it: [`crate::ignore::PYTHON_EXCLUDES`]).
const PY_BUILD_LEFTOVERS: &str = "build ./*.egg-info ./src/*.egg-info";

/// Shell scripts a virtualenv carries that an image never runs.
const VENV_SCRIPTS: &str = "rm -f /opt/venv/bin/activate* /opt/venv/bin/Activate.ps1";

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn python(d: &Detected, o: &GenOptions<'_>, builder: &str, runtime: &str) -> Vec<Stage> {
    let info = d.python.clone().expect("python info for a python stack");
    // The pip that installs into /opt/venv lives in /opt/tools, so the runtime's
    // virtualenv holds neither pip nor setuptools nor wheel.
    let pip = "/opt/tools/bin/pip --python /opt/venv/bin/python install";
    // With a cache mount, or (classic builder) `plain`: the command without a cache.
    let mounted = |cache: &'static str, cmd: String, plain: String| {
        if o.cache_mounts {
            Step::Run {
                caches: vec![cache],
                cmd,
                lint_note: None,
                ca_cert: false,
            }
        } else {
            run(plain)
        }
    };
    let cached = |cache: &'static str, cmd: String, no_cache: &str| {
        let plain = cmd.replacen(" install", &format!(" install {no_cache}"), 1);
        mounted(cache, cmd, plain)
    };
    let mut vars = vec![
        ("PIP_DISABLE_PIP_VERSION_CHECK", s("1")),
        ("PYTHONDONTWRITEBYTECODE", s("1")),
    ];
    let tool = match &info.deps {
        PythonDeps::Uv => {
            vars.extend([
                ("UV_PROJECT_ENVIRONMENT", s("/opt/venv")),
                ("UV_PYTHON_DOWNLOADS", s("never")),
                // uv trusts the image's CA store, and `SSL_CERT_FILE` when set
                // (`--ca-cert`).
                ("UV_NATIVE_TLS", s("1")),
                ("UV_LINK_MODE", s("copy")),
            ]);
            Some(UV_PIN)
        }
        PythonDeps::Poetry => {
            vars.extend([
                ("POETRY_NO_INTERACTION", s("1")),
                ("VIRTUAL_ENV", s("/opt/venv")),
            ]);
            Some(POETRY_PIN)
        }
        _ => None,
    };
    let mut b = vec![Step::Workdir(s("/app"))];
    b.extend(args(o));
    b.push(env(&vars));
    b.push(match tool {
        Some(t) => cached(
            "/root/.cache/pip",
            format!("python -m venv /opt/tools && /opt/tools/bin/pip install {t}"),
            "--no-cache-dir",
        ),
        None => run("python -m venv /opt/tools"),
    });
    let manifests = info.deps.manifests();
    if !manifests.is_empty() {
        let m: Vec<&str> = manifests.iter().map(String::as_str).collect();
        b.push(copy(&m, "./"));
    }
    let venv = "python -m venv --without-pip /opt/venv";
    b.push(match &info.deps {
        PythonDeps::Requirements(f) => cached(
            "/root/.cache/pip",
            format!("{venv} && {pip} -r {f} && {VENV_SCRIPTS}"),
            "--no-cache-dir",
        ),
        PythonDeps::Uv => {
            let cmd = "/opt/tools/bin/uv sync --locked --no-dev --no-install-project";
            mounted(
                "/root/.cache/uv",
                format!("{cmd} && {VENV_SCRIPTS}"),
                format!("{cmd} --no-cache && {VENV_SCRIPTS}"),
            )
        }
        PythonDeps::Poetry => {
            let cmd = format!("{venv} && /opt/tools/bin/poetry install --only main --no-root");
            mounted(
                "/root/.cache/pypoetry",
                format!("{cmd} && {VENV_SCRIPTS}"),
                format!("{cmd} --no-cache && {VENV_SCRIPTS}"),
            )
        }
        PythonDeps::Listed(deps) if deps.is_empty() => run(format!("{venv} && {VENV_SCRIPTS}")),
        PythonDeps::Listed(deps) => {
            let quoted: Vec<String> = deps.iter().map(|x| shell_quote(x)).collect();
            cached(
                "/root/.cache/pip",
                format!("{venv} && {pip} {} && {VENV_SCRIPTS}", quoted.join(" ")),
                "--no-cache-dir",
            )
        }
    });
    // The code, entry by entry: neither the synthetic files nor anything excluded.
    // `skip`: files already copied.
    let code = |skip: &[String]| -> Vec<Step> {
        let files: Vec<&str> = o
            .top_level
            .iter()
            .filter(|(n, dir)| !dir && !skip.contains(n))
            .map(|(n, _)| n.as_str())
            .collect();
        let mut steps = Vec::new();
        if !files.is_empty() {
            steps.push(copy(&files, "./"));
        }
        for (name, _) in o.top_level.iter().filter(|(_, dir)| *dir) {
            steps.push(copy(&[name.as_str()], &format!("./{name}/")));
        }
        steps
    };
    if info.package {
        b.extend(code(&manifests));
        b.push(cached(
            "/root/.cache/pip",
            format!("{pip} --no-deps . && rm -rf {PY_BUILD_LEFTOVERS}"),
            "--no-cache-dir",
        ));
    }

    let mut vars = vec![
        ("PYTHONDONTWRITEBYTECODE", s("1")),
        ("PYTHONUNBUFFERED", s("1")),
        ("PATH", s("/opt/venv/bin:$PATH")),
        ("PORT", o.port.to_string()),
    ];
    if !info.pythonpath.is_empty() {
        vars.push(("PYTHONPATH", pythonpath_value(&info.pythonpath)));
    }
    let mut rt = vec![
        Step::Workdir(s("/app")),
        env(&vars),
        copy_from("builder", "/opt/venv", "/opt/venv"),
    ];
    if info.package {
        rt.push(copy_from("builder", "/app", "./"));
    } else {
        // Straight from the context: a code change leaves the builder stage
        // untouched, and the rebuild is this copy alone.
        rt.extend(code(&[]));
    }
    tail(&mut rt, o.port);
    rt.push(Step::Cmd(if info.asgi {
        vec![
            s("uvicorn"),
            info.app_module.clone(),
            s("--host"),
            s("0.0.0.0"),
            s("--port"),
            o.port.to_string(),
        ]
    } else {
        vec![s("python"), info.script.clone()]
    }));
    vec![
        Stage {
            name: "builder",
            from: s(builder),
            steps: b,
        },
        Stage {
            name: "runtime",
            from: s(runtime),
            steps: rt,
        },
    ]
}

fn go(d: &Detected, o: &GenOptions<'_>, builder: &str, runtime: &str) -> Vec<Stage> {
    let pkg = d.binary.clone().unwrap_or_else(|| ".".into());
    let (dl_caches, build_caches) = if o.cache_mounts {
        (
            vec!["/go/pkg/mod"],
            vec!["/go/pkg/mod", "/root/.cache/go-build"],
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let mut b = vec![Step::Workdir(s("/src"))];
    b.extend(args(o));
    b.extend([
        env(&[("CGO_ENABLED", s("0"))]),
        copy(&["go.mod", "go.sum*"], "./"),
        Step::Run {
            caches: dl_caches,
            cmd: s("go mod download"),
            lint_note: None,
            ca_cert: false,
        },
        copy(&["."], "."),
        Step::Run {
            caches: build_caches,
            cmd: format!("go build -trimpath -ldflags=\"-s -w\" -o /out/app {pkg}"),
            lint_note: None,
            ca_cert: false,
        },
    ]);
    let mut rt = vec![
        copy_from(
            "builder",
            "/etc/ssl/certs/ca-certificates.crt",
            "/etc/ssl/certs/",
        ),
        copy_from("builder", "/out/app", "/app"),
    ];
    tail(&mut rt, o.port);
    rt.push(Step::Entrypoint(vec![s("/app")]));
    vec![
        Stage {
            name: "builder",
            from: s(builder),
            steps: b,
        },
        Stage {
            name: "runtime",
            from: s(runtime),
            steps: rt,
        },
    ]
}

fn binary(d: &Detected, o: &GenOptions<'_>, runtime: &str) -> Vec<Stage> {
    let bin = d.binary.clone().unwrap_or_else(|| "app".into());
    let mut rt = vec![copy(&[bin.as_str()], &format!("/app/{bin}"))];
    tail(&mut rt, o.port);
    rt.push(Step::Entrypoint(vec![format!("/app/{bin}")]));
    vec![Stage {
        name: "runtime",
        from: s(runtime),
        steps: rt,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_names_each_entry_once_and_dirs_by_their_children() {
        let paths = [
            ("main.py", false),
            ("app", true),
            ("app/x.py", false),
            // an excluded directory whose child a `!` exception brought back
            ("docs/keep.md", false),
            ("requirements.txt", false),
        ];
        assert_eq!(
            top_level(paths.into_iter()),
            vec![
                ("app".to_string(), true),
                ("docs".to_string(), true),
                ("main.py".to_string(), false),
                ("requirements.txt".to_string(), false),
            ]
        );
    }
}
