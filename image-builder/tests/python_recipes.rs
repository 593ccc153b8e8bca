//! Python recipes at plan time: what the notes say, and the errors found before
//! anything is built.

use std::fs;
use std::path::Path;

use image_builder::plan::{self, PlanOptions};
use image_builder::spec::{BaseImages, ComponentSpec};

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn spec(dir: &Path) -> ComponentSpec {
    ComponentSpec {
        path: dir.to_path_buf(),
        name: Some("api".into()),
        project: Some("demo".into()),
        ..Default::default()
    }
}

fn opts() -> PlanOptions {
    PlanOptions {
        use_cache: false,
        ..Default::default()
    }
}

const APP: &str = "from fastapi import FastAPI\napp = FastAPI()\n";

#[test]
fn an_unsatisfiable_requires_python_names_the_versions_and_the_fix() {
    let t = tempfile::tempdir().unwrap();
    write(
        t.path(),
        "pyproject.toml",
        "[project]\nname='x'\nversion='1'\nrequires-python='>=3.14'\ndependencies=['fastapi']\n",
    );
    write(t.path(), "main.py", APP);
    let err = plan::plan(&spec(t.path()), &opts())
        .unwrap_err()
        .to_string();
    insta::assert_snapshot!(err);
    // Both images set by hand: the user has chosen.
    let mut s = spec(t.path());
    s.base_images = BaseImages {
        builder: Some("python:3.14-slim".into()),
        runtime: Some("python:3.14-slim".into()),
    };
    let p = plan::plan(&s, &opts()).unwrap();
    assert!(p.dockerfile.contains("FROM python:3.14-slim AS runtime"));
}

#[test]
fn a_module_that_does_not_exist_is_found_at_plan_time() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "requirements.txt", "fastapi\nuvicorn\n");
    write(t.path(), "app/main.py", APP);
    let mut s = spec(t.path());
    s.module = Some("api.main:app".into());
    let err = plan::plan(&s, &opts()).unwrap_err().to_string();
    insta::assert_snapshot!(err.replace(&t.path().display().to_string(), "DIR"));
    s.module = Some("app.main".into());
    let err = plan::plan(&s, &opts()).unwrap_err().to_string();
    assert!(err.contains("MODULE:ATTR"), "{err}");
}

#[test]
fn module_and_command_keys_set_what_the_image_runs() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "requirements.txt", "fastapi\nuvicorn\n");
    write(t.path(), "main.py", "import uvicorn\n");
    write(t.path(), "service/api.py", APP);
    let mut s = spec(t.path());
    s.module = Some("service.api:app".into());
    let p = plan::plan(&s, &opts()).unwrap();
    assert!(
        p.dockerfile
            .contains("CMD [\"uvicorn\", \"service.api:app\", \"--host\""),
        "{}",
        p.dockerfile
    );
    assert!(
        p.notes.iter().any(|n| n.contains("service.api:app")),
        "{:?}",
        p.notes
    );
    s.command = Some(vec!["python".into(), "-m".into(), "service.api".into()]);
    let p = plan::plan(&s, &opts()).unwrap();
    assert!(
        p.dockerfile
            .contains("CMD [\"python\", \"-m\", \"service.api\"]"),
        "{}",
        p.dockerfile
    );
}

#[test]
fn notes_say_where_the_version_and_the_app_come_from_and_which_dependencies_are_used() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), ".python-version", "3.12\n");
    write(
        t.path(),
        "requirements.txt",
        "fastapi==0.115.2\nuvicorn\nhttpx\n",
    );
    write(
        t.path(),
        "pyproject.toml",
        "[project]\nname='x'\nversion='1'\ndependencies=['fastapi', 'uvicorn', 'sqlmodel']\n",
    );
    write(t.path(), "main.py", "import uvicorn\n");
    write(t.path(), "app/main.py", APP);
    let p = plan::plan(&spec(t.path()), &opts()).unwrap();
    insta::assert_debug_snapshot!(p.notes);
    assert!(p.dockerfile.contains("FROM python:3.12-slim AS builder"));
}

#[test]
fn a_python_version_file_naming_a_version_without_an_image_is_an_error() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "runtime.txt", "python-2.7.18\n");
    write(t.path(), "requirements.txt", "flask\n");
    write(t.path(), "main.py", "print(1)\n");
    let err = plan::plan(&spec(t.path()), &opts())
        .unwrap_err()
        .to_string();
    assert!(err.contains("runtime.txt"), "{err}");
    assert!(err.contains("3.9, 3.10, 3.11, 3.12, 3.13"), "{err}");
}

#[test]
fn build_arguments_are_declared_where_installers_run_and_not_in_the_runtime_stage() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "requirements.txt", "fastapi\nuvicorn\n");
    write(t.path(), "main.py", APP);
    let mut s = spec(t.path());
    let plain = plan::plan(&s, &opts()).unwrap();
    s.build_args = image_builder::spec::parse_build_args(&[
        "PIP_INDEX_URL=https://pypi.example.com/simple",
        "PIP_RETRIES=0",
    ])
    .unwrap();
    let p = plan::plan(&s, &opts()).unwrap();
    let (builder, runtime) = p.dockerfile.split_once("AS runtime").unwrap();
    assert!(
        builder.contains("WORKDIR /app\nARG PIP_INDEX_URL\nARG PIP_RETRIES\n"),
        "{builder}"
    );
    assert!(!runtime.contains("ARG"), "{runtime}");
    assert!(
        !p.dockerfile.contains("pypi.example.com"),
        "values stay out of the text"
    );
    assert_ne!(plain.digest, p.digest);
    s.build_args.insert(
        "PIP_INDEX_URL".into(),
        "https://other.example.com/simple".into(),
    );
    assert_ne!(
        plan::plan(&s, &opts()).unwrap().digest,
        p.digest,
        "values are part of the digest"
    );
}

#[test]
fn a_build_argument_that_is_not_an_identifier_is_refused() {
    let err = image_builder::spec::parse_build_args(&["NEXT-PUBLIC-URL=x"])
        .unwrap_err()
        .to_string();
    insta::assert_snapshot!(err);
    assert!(image_builder::spec::parse_build_args(&["NOVALUE"]).is_err());
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "requirements.txt", "flask\n");
    let mut s = spec(t.path());
    s.build_args.insert("1ST".into(), "x".into());
    assert!(plan::plan(&s, &opts()).is_err());
}

#[test]
fn tests_and_build_leftovers_stay_out_of_the_context_and_the_digest() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "requirements.txt", "fastapi\nuvicorn\n");
    write(t.path(), "main.py", APP);
    let before = plan::plan(&spec(t.path()), &opts()).unwrap();
    for f in [
        "tests/test_main.py",
        "build/lib/main.py",
        "dist/x-1.tar.gz",
        "x.egg-info/PKG-INFO",
        "venv/bin/python",
    ] {
        write(t.path(), f, "x");
    }
    // A `!` exception does not bring them back.
    write(t.path(), ".dockerignore", "!tests\n");
    let after = plan::plan(&spec(t.path()), &opts()).unwrap();
    assert_eq!(after.digest, before.digest);
    assert_eq!(after.dockerfile, before.dockerfile);
    assert!(
        after
            .dockerfile
            .contains("COPY main.py requirements.txt ./\n")
            && !after.dockerfile.contains("COPY . ."),
        "{}",
        after.dockerfile
    );

    // The code is copied by name; names with blanks in the JSON form.
    write(t.path(), "my notes.txt", "x");
    let p = plan::plan(&spec(t.path()), &opts()).unwrap();
    assert!(
        p.dockerfile
            .contains("COPY [\"main.py\",\"my notes.txt\",\"requirements.txt\",\"./\"]\n"),
        "{}",
        p.dockerfile
    );
}

/// A `command:` naming the app's code that does not exist fails when planning,
/// with what it looked for; commands naming other things pass.
#[test]
fn a_command_naming_code_that_does_not_exist_is_found_at_plan_time() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "requirements.txt", "fastapi\nuvicorn\ngunicorn\n");
    write(t.path(), "app/__init__.py", "");
    write(t.path(), "app/main.py", APP);
    write(t.path(), "manage.py", "print('hi')\n");
    let plan_with = |cmd: &[&str]| {
        let mut s = spec(t.path());
        s.command = Some(cmd.iter().map(|x| x.to_string()).collect());
        plan::plan(&s, &opts())
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    for (cmd, why) in [
        (
            &["uvicorn", "api.main:app", "--port", "8000"][..],
            "neither api/main.py nor api/main/__init__.py exists",
        ),
        (
            &[
                "gunicorn",
                "-k",
                "uvicorn.workers.UvicornWorker",
                "-b",
                "0.0.0.0:8000",
                "app.server:app",
            ][..],
            "neither app/server.py",
        ),
        (
            &["python", "-m", "uvicorn", "main:app"][..],
            "neither main.py",
        ),
        (
            &["python", "-m", "app.worker"][..],
            "app/worker/__main__.py",
        ),
        (&["python3", "serve.py"][..], "serve.py does not exist"),
    ] {
        let err = plan_with(cmd).unwrap_err();
        assert!(err.contains(why), "{cmd:?}: {err}");
        assert!(err.contains("fix:"), "{err}");
    }
    for cmd in [
        &["uvicorn", "app.main:app", "--host", "0.0.0.0"][..],
        &[
            "gunicorn",
            "-b",
            "0.0.0.0:8000",
            "-k",
            "uvicorn.workers.UvicornWorker",
            "app.main:app",
        ][..],
        &["python", "-m", "uvicorn", "app.main:app"][..],
        &["python", "-m", "app.main"][..],
        &["python", "-m", "celery", "-A", "app.tasks", "worker"][..],
        &["python", "manage.py", "runserver"][..],
        &["sh", "-c", "exec python missing.py"][..],
    ] {
        assert_eq!(plan_with(cmd), Ok(()), "{cmd:?}");
    }
}
