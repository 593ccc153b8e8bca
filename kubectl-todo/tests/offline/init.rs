//! `kubectl todo init` on fixtures shaped like real apps, then `config` and
//! `render --offline` on what it wrote: ports, probes, users, keys and URLs
//! come out right with no hand edit.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::real_apps_support as real_apps;

use real_apps::{copy, fixture_dir};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn todo(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-todo"))
        .args(args)
        .arg("--project")
        .arg(dir)
        .env("KUBECONFIG", dir.join("no-kubeconfig"))
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// A fresh copy of a fixture (init writes into it).
fn fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join(name);
    copy(&fixture_dir(name), &app);
    (dir, app)
}

fn filtered(dir: &Path, text: &str) -> String {
    text.replace(&dir.display().to_string(), "[TMP]")
}

/// `init --yes`, then the effective project and the rendered objects.
fn init(app: &Path, root: &Path) -> (Run, Value, Vec<Value>) {
    let run = todo(app, &["init", "--yes"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let config = todo(root, &["config", "-o", "json"]);
    assert_eq!(config.code, 0, "{}", config.stderr);
    let render = todo(root, &["render", "--offline", "-o", "json"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    let list: Value = serde_json::from_str(&render.stdout).unwrap();
    (
        run,
        serde_json::from_str(&config.stdout).unwrap(),
        list["items"].as_array().unwrap().clone(),
    )
}

fn deployment<'a>(items: &'a [Value], name: &str) -> &'a Value {
    items
        .iter()
        .find(|i| i["kind"] == "Deployment" && i["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no Deployment {name}"))
}

/// Port, and the paths of the startup, liveness and readiness probes.
fn probes(items: &[Value], name: &str) -> (u64, [String; 3]) {
    let c = &deployment(items, name)["spec"]["template"]["spec"]["containers"][0];
    let path = |p: &str| c[p]["httpGet"]["path"].as_str().unwrap_or("-").to_string();
    (
        c["ports"][0]["containerPort"].as_u64().unwrap(),
        [
            path("startupProbe"),
            path("livenessProbe"),
            path("readinessProbe"),
        ],
    )
}

fn env_names(items: &[Value], name: &str) -> Vec<String> {
    deployment(items, name)["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["name"].as_str().map(str::to_string))
        .collect()
}

fn config_map<'a>(items: &'a [Value], name: &str) -> &'a Value {
    &items
        .iter()
        .find(|i| i["kind"] == "ConfigMap" && i["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no ConfigMap {name}"))["data"]
}

fn all(p: &str) -> [String; 3] {
    [p.to_string(), p.to_string(), p.to_string()]
}

#[test]
fn a_pair_in_a_subfolder_from_the_repository_root() {
    let (dir, repo) = fixture("subfolder-pair");
    let app = repo.join("apps/phase4-todo-app");
    let (run, config, items) = init(&repo, &app);
    insta::assert_snapshot!("subfolder_pair_output", filtered(dir.path(), &run.stdout));
    insta::assert_snapshot!(
        "subfolder_pair_todo_yaml",
        std::fs::read_to_string(app.join("todo.yaml")).unwrap()
    );
    assert!(!repo.join("todo.yaml").exists());
    // The frontend's rewrite calls `todo-backend:8000`: that is the backend's Service.
    assert_eq!(config["project"]["name"], "todo");
    assert_eq!(probes(&items, "todo-backend"), (8000, all("/health")));
    assert_eq!(probes(&items, "todo-frontend"), (3000, all("/")));
    assert_eq!(
        config_map(&items, "todo-frontend")["BACKEND_URL"],
        "http://todo-backend:8000"
    );
    assert_eq!(config_map(&items, "todo-backend")["ALGORITHM"], "HS256");
    assert!(env_names(&items, "todo-backend").contains(&"JWT_SECRET".to_string()));
    assert_eq!(
        config["sources"]["components.backend.healthPath"],
        "detected from backend/app/routers/health.py:6"
    );
    // Run again: nothing changes.
    let again = todo(&repo, &["init"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.contains("is up to date"), "{}", again.stdout);
}

#[test]
fn apps_layout_with_a_scripts_only_package_json() {
    let (_dir, app) = fixture("apps-layout");
    let (_, config, items) = init(&app, &app);
    let be = &config["project"]["components"][0];
    assert_eq!(
        (be["name"].as_str(), be["stack"].as_str()),
        (Some("backend"), Some("python"))
    );
    assert_eq!(be["path"], "apps/backend");
    assert_eq!(
        probes(&items, "apps-layout-backend"),
        (8000, all("/health"))
    );
    assert_eq!(probes(&items, "apps-layout-frontend"), (3000, all("/")));
    let fe = env_names(&items, "apps-layout-frontend");
    assert!(
        fe.contains(&"BETTER_AUTH_SECRET".into()) && fe.contains(&"DATABASE_URL".into()),
        "{fe:?}"
    );
    assert_eq!(
        config_map(&items, "apps-layout-backend")["LOG_LEVEL"],
        "info"
    );
    // OPENAI_API_KEY is read with os.getenv: optional.
    let keys = config["project"]["secret"]["keys"].as_array().unwrap();
    let openai = keys.iter().find(|k| k["name"] == "OPENAI_API_KEY").unwrap();
    assert_eq!(
        (openai["required"].as_bool(), openai["format"].as_str()),
        (Some(false), Some("api-key"))
    );
}

#[test]
fn an_api_health_route_and_a_root_dockerfile() {
    let (_dir, app) = fixture("api-health");
    let (run, config, items) = init(&app, &app);
    let text = std::fs::read_to_string(app.join("todo.yaml")).unwrap();
    assert!(
        text.contains(
            "stack: python  # generated recipe: backend/Dockerfile runs its final stage as root"
        ),
        "{text}"
    );
    assert_eq!(
        probes(&items, "api-health-backend"),
        (8080, all("/api/health"))
    );
    assert_eq!(
        probes(&items, "api-health-frontend"),
        (3000, all("/api/health"))
    );
    assert!(
        run.stdout.contains("NEXT_PUBLIC_BACKEND_URL"),
        "{}",
        run.stdout
    );
    assert_eq!(
        config["sources"]["components.backend.port"],
        "detected from backend/Dockerfile:6"
    );
}

#[test]
fn helm_and_compose_give_node_ports() {
    let (_dir, app) = fixture("helm-compose");
    let (run, config, items) = init(&app, &app);
    let svc = |name: &str| {
        items
            .iter()
            .find(|i| i["kind"] == "Service" && i["metadata"]["name"] == name)
            .unwrap()["spec"]
            .clone()
    };
    assert_eq!(svc("helm-compose-frontend")["ports"][0]["nodePort"], 30080);
    assert_eq!(svc("helm-compose-backend")["ports"][0]["nodePort"], 30081);
    assert_eq!(probes(&items, "helm-compose-backend"), (8000, all("/")));
    // The browser reaches the backend on its node port: the address goes into `next build`.
    assert_eq!(
        config["project"]["components"][1]["build"]["args"]["NEXT_PUBLIC_API_URL"],
        "http://localhost:30081"
    );
    assert!(
        config["sources"]["components.frontend.buildArgs.NEXT_PUBLIC_API_URL"]
            .as_str()
            .unwrap()
            .contains("helm/todo/values.yaml:14")
    );
    // The middleware's hard-coded `backend-service:8000` resolves: a Service of that name fronts the backend.
    let alias = svc("backend-service");
    assert_eq!(alias["type"], "ClusterIP");
    assert_eq!(alias["ports"][0]["port"], 8000);
    assert_eq!(alias["selector"], svc("helm-compose-backend")["selector"]);
    assert!(
        run.stdout.contains("calls      backend-service:8000"),
        "{}",
        run.stdout
    );
}

#[test]
fn three_components_and_a_real_looking_credential() {
    let (_dir, app) = fixture("three-components");
    let (run, _config, items) = init(&app, &app);
    assert_eq!(
        probes(&items, "three-components-auth"),
        (4000, all("/health"))
    );
    assert_eq!(
        probes(&items, "three-components-api"),
        (8000, all("/api/health"))
    );
    assert_eq!(
        probes(&items, "three-components-web"),
        (3000, all("/api/healthz"))
    );
    assert_eq!(
        config_map(&items, "three-components-web")["API_URL"],
        "http://three-components-api:8000"
    );
    assert!(
        run.stdout
            .contains("looks like a real credential for `JWT_SECRET`"),
        "{}",
        run.stdout
    );
    let written = std::fs::read_to_string(app.join("todo.yaml")).unwrap();
    assert!(!written.contains("sk_live") && !run.stdout.contains("sk_live"));
}

#[test]
fn bad_input_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let run = todo(dir.path(), &["init"]);
    assert_eq!(run.code, 1);
    insta::assert_snapshot!("nothing_found", filtered(dir.path(), &run.stderr));

    // Two apps side by side: none is chosen without --yes.
    let (tmp, _) = fixture("api-health");
    copy(&tmp.path().join("api-health"), &tmp.path().join("three"));
    let run = todo(tmp.path(), &["init"]);
    assert_eq!(run.code, 1);
    insta::assert_snapshot!("two_candidates", filtered(tmp.path(), &run.stderr));
    assert!(!tmp.path().join("api-health/todo.yaml").exists());

    // An existing, different todo.yaml: the difference, and it stays.
    let (_d, app) = fixture("three-components");
    std::fs::write(app.join("todo.yaml"), "name: mine\n").unwrap();
    let run = todo(&app, &["init"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("-name: mine") && run.stderr.contains("--force"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(app.join("todo.yaml")).unwrap(),
        "name: mine\n"
    );
    let run = todo(&app, &["init", "--dry-run"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("name: three-components"));
    assert_eq!(
        std::fs::read_to_string(app.join("todo.yaml")).unwrap(),
        "name: mine\n"
    );
    assert_eq!(todo(&app, &["init", "--force"]).code, 0);
    assert!(
        std::fs::read_to_string(app.join("todo.yaml"))
            .unwrap()
            .contains("three-components")
    );
}

#[test]
fn the_default_layout_keeps_working_without_init() {
    let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/todo-app");
    let config = todo(&app, &["config", "-o", "json"]);
    assert_eq!(config.code, 0, "{}", config.stderr);
    let config: Value = serde_json::from_str(&config.stdout).unwrap();
    let fe = &config["project"]["components"][0];
    assert_eq!(
        (fe["name"].as_str(), fe["healthPath"].as_str()),
        (Some("frontend"), Some("/health"))
    );
    // The original layout's numbers where detection says nothing.
    assert_eq!(fe["service"]["nodePort"], 30000);
    assert_eq!(
        config["project"]["components"][1]["resources"]["limits"]["memory"],
        "1Gi"
    );
    // What the code says, over the defaults: the example reads no key it cannot do without.
    assert_eq!(
        config["sources"]["components.backend.readyPath"],
        "detected from backend/main.py:64"
    );
    let keys = config["project"]["secret"]["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert!(keys.iter().all(|k| k["required"] == false), "{keys:?}");
    // A fallback URL the setting replaces needs no Service of its own.
    let render = todo(&app, &["render", "--offline", "-o", "json"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    let list: Value = serde_json::from_str(&render.stdout).unwrap();
    let services: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "Service")
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    assert_eq!(services, ["todo-frontend", "todo-backend"]);
}

#[test]
fn no_health_route_means_tcp_probes() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path();
    std::fs::create_dir_all(app.join("worker")).unwrap();
    std::fs::write(app.join("worker/requirements.txt"), "fastapi\n").unwrap();
    std::fs::write(
        app.join("worker/main.py"),
        "from fastapi import FastAPI\napp = FastAPI()\n\n@app.post(\"/jobs\")\ndef jobs():\n    return {}\n",
    )
    .unwrap();
    let render = todo(app, &["render", "--offline", "-o", "json"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    let list: Value = serde_json::from_str(&render.stdout).unwrap();
    let items = list["items"].as_array().unwrap();
    let c = &deployment(items, "todo-worker")["spec"]["template"]["spec"]["containers"][0];
    for p in ["startupProbe", "livenessProbe", "readinessProbe"] {
        assert_eq!(c[p]["tcpSocket"]["port"], "http", "{p}: {}", c[p]);
        assert!(c[p].get("httpGet").is_none(), "{p}: {}", c[p]);
    }
    // A todo.yaml naming a component detection does not know: no path is made up either.
    std::fs::write(
        app.join("todo.yaml"),
        "name: shop\ncomponents:\n  - {name: cache, port: 6379}\n  - {name: web, port: 3000, healthPath: /healthz}\n",
    )
    .unwrap();
    let render = todo(
        app,
        &[
            "render",
            "--offline",
            "-o",
            "json",
            "--image",
            "cache=cache:1",
            "--image",
            "web=web:1",
        ],
    );
    assert_eq!(render.code, 0, "{}", render.stderr);
    let list: Value = serde_json::from_str(&render.stdout).unwrap();
    let items = list["items"].as_array().unwrap();
    let cache = &deployment(items, "shop-cache")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(cache["readinessProbe"]["tcpSocket"]["port"], "http");
    // One health route serves every probe.
    assert_eq!(probes(items, "shop-web"), (3000, all("/healthz")));
}

#[test]
fn plan_shows_what_up_builds_after_init() {
    let (_dir, app) = fixture("api-health");
    init(&app, &app);
    let run = todo(&app, &["plan", "-o", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let plans: Value = serde_json::from_str(&run.stdout).unwrap();
    let be = &plans[0];
    assert_eq!(
        (
            be["component"].as_str(),
            be["stack"].as_str(),
            be["port"].as_u64()
        ),
        (Some("backend"), Some("python"), Some(8080))
    );
    assert!(
        be["dockerfile"]
            .as_str()
            .unwrap()
            .contains("USER 1001:1001")
    );
    let fe = &plans[1];
    assert!(
        fe["notes"].to_string().contains("output: 'standalone'"),
        "{fe}"
    );
    let one = todo(&app, &["plan", "frontend"]);
    assert!(
        one.stdout.contains("component: frontend") && !one.stdout.contains("component: backend")
    );
    let bad = todo(&app, &["plan", "frontnd"]);
    assert_eq!(bad.code, 1);
    assert_eq!(
        bad.stderr,
        "error: the project has no component `frontnd` (did you mean `frontend`?)\nhint: the components are: backend, frontend\n"
    );
}

#[test]
fn a_backend_the_browser_calls_gets_a_fixed_node_port_and_its_address_is_built_in() {
    let (_dir, repo) = fixture("nested-phase");
    let app = repo.join("calm-orbit-todo/phase2-3-fullstack");
    let (run, config, items) = init(&repo, &app);
    assert!(
        run.stdout.contains("the app is in") && app.join("todo.yaml").is_file(),
        "{}",
        run.stdout
    );
    // requirements.txt is UTF-16LE with a BOM: still Python.
    let be = &config["project"]["components"][0];
    assert_eq!(
        (be["name"].as_str(), be["stack"].as_str()),
        (Some("backend"), Some("python"))
    );
    let svc = items
        .iter()
        .find(|i| i["kind"] == "Service" && i["metadata"]["name"] == "phase2-3-fullstack-backend")
        .unwrap();
    assert_eq!(svc["spec"]["type"], "NodePort");
    assert_eq!(svc["spec"]["ports"][0]["nodePort"], 30800);
    assert_eq!(
        config["project"]["components"][1]["build"]["args"]["NEXT_PUBLIC_API_URL"],
        "http://localhost:30800"
    );
    assert!(
        !run.stdout.contains("what init could not decide"),
        "{}",
        run.stdout
    );
}
