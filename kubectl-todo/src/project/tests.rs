use super::*;

fn load(text: &str) -> Result<Project, Error> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(FILE_NAME), text).unwrap();
    Project::load(dir.path())
}

fn load_err(text: &str) -> String {
    load(text).unwrap_err().to_string()
}

const MINIMAL: &str = "name: shop\ncomponents:\n  - name: web\n    stack: nextjs\n";

#[test]
fn without_a_project_file_the_original_layout_applies() {
    let dir = tempfile::tempdir().unwrap();
    let p = Project::load(dir.path()).unwrap();
    assert_eq!(p.namespace, "todo");
    assert_eq!(p.component_names(), ["frontend", "backend"]);
    let fe = p.component("frontend").unwrap();
    assert_eq!((fe.port, fe.service.node_port), (3000, Some(30000)));
    assert_eq!(fe.writable_paths, ["/tmp", NEXT_CACHE]);
    assert_eq!(
        p.component("backend").unwrap().resources.limits.memory,
        "1Gi"
    );
    assert_eq!(p.secret.name, "todo-secrets");
}

#[test]
fn a_minimal_file_gets_the_documented_defaults() {
    let p = load(MINIMAL).unwrap();
    assert_eq!((p.name.as_str(), p.namespace.as_str()), ("shop", "shop"));
    assert_eq!(p.secret.name, "shop-secrets");
    let web = p.component("web").unwrap();
    assert_eq!(web.path, PathBuf::from("web"));
    assert_eq!((web.port, web.replicas), (3000, 1));
    // Nothing says which path it serves: TCP probes, no made-up route.
    assert_eq!(
        (web.health_path.as_deref(), web.ready_path.as_deref()),
        (None, None)
    );
    assert_eq!(web.service.kind, ServiceKind::ClusterIP);
    assert_eq!(
        web.resources.limits,
        Quantities {
            cpu: "500m".into(),
            memory: "512Mi".into()
        }
    );
    assert_eq!(web.image, "shop-web");
    assert_eq!(web.writable_paths, ["/tmp", NEXT_CACHE]);
}

#[test]
fn unknown_keys_name_file_line_column_and_the_likely_key() {
    let err = load_err("name: shop\nnmespace: x\ncomponents: []\n");
    assert!(
        err.contains("todo.yaml:2:1: unknown key `nmespace` (did you mean `namespace`?)"),
        "{err}"
    );
    let err =
        load_err("name: shop\ncomponents:\n  - name: web\n    stack: nextjs\n    helthPath: /h\n");
    assert!(
        err.contains(":5:5: unknown key `helthPath` (did you mean `healthPath`?)"),
        "{err}"
    );
}

#[test]
fn unknown_values_suggest_the_nearest() {
    let err = load_err("name: shop\ncomponents:\n  - name: web\n    stack: nextj\n");
    assert!(
        err.contains(":4:12: unknown value `nextj` (did you mean `nextjs`?)"),
        "{err}"
    );
}

#[test]
fn undeclared_secret_keys_point_at_the_entry() {
    let text = "name: shop\nsecret:\n  keys:\n    - name: DATABASE_URL\ncomponents:\n  - name: api\n    port: 8000\n    secretKeys: [DATABSE_URL]\n";
    let err = load_err(text);
    assert!(err.contains(":8:18: secret key `DATABSE_URL` is not declared under `secret.keys` (did you mean `DATABASE_URL`?)"), "{err}");
}

#[test]
fn semantic_errors_carry_their_position() {
    let cases = [
        (
            "name: Shop\ncomponents: []\n",
            ":1:7: the project name `Shop`",
        ),
        (
            "name: shop\ncomponents: []\n",
            ":2:13: `components` is empty",
        ),
        (
            "name: shop\ncomponents:\n  - name: api\n",
            ":3:11: component `api` has neither `port` nor `stack`",
        ),
        (
            "name: shop\ncomponents:\n  - name: api\n    port: 80\n    service: {type: ClusterIP, nodePort: 30001}\n",
            ":5:14: `nodePort` needs `type: NodePort`",
        ),
        (
            "name: shop\ncomponents:\n  - name: api\n    port: 80\n    service:\n      type: NodePort\n      nodePort: 80\n",
            ":6:7: `nodePort` 80 is outside",
        ),
        (
            "name: shop\ncomponents:\n  - name: api\n    port: 80\n    resources:\n      limits: {memory: 1GB}\n",
            ":6:24: `1GB` is not a valid memory quantity",
        ),
        (
            "name: shop\ncomponents:\n  - {name: api, port: 80}\n  - {name: api, port: 81}\n",
            ":4:12: component `api` is declared twice",
        ),
    ];
    for (text, want) in cases {
        let err = load_err(text);
        assert!(err.contains(want), "want {want:?} in {err}");
    }
}

#[test]
fn the_dockerfile_key_implies_the_dockerfile_stack() {
    let p =
        load("name: shop\ncomponents:\n  - {name: api, port: 9000, dockerfile: Dockerfile.prod}\n")
            .unwrap();
    let api = p.component("api").unwrap();
    assert_eq!(api.stack, Some(Stack::Dockerfile));
    assert_eq!(
        api.build.dockerfile.as_deref(),
        Some(Path::new("Dockerfile.prod"))
    );
}

#[test]
fn the_published_schema_is_up_to_date() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/todo.schema.json");
    let fresh = schema::json_schema();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "docs/todo.schema.json is stale: run `UPDATE_SCHEMA=1 cargo test -p kubectl-todo --lib the_published_schema_is_up_to_date`"
    );
}

#[test]
fn suggestions_catch_a_swapped_letter_in_a_short_name() {
    assert_eq!(suggestion("wbe", ["web", "api"]), " (did you mean `web`?)");
    assert_eq!(
        suggestion("frontned", ["frontend", "backend"]),
        " (did you mean `frontend`?)"
    );
    assert_eq!(suggestion("xyz", ["web", "api"]), "");
}

/// A fixture app as if `todo` were its `todo.yaml`.
fn fixture_with(name: &str, todo: &str) -> Project {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/real-apps")
        .join(name);
    Project::from_text(&root, todo).unwrap()
}

#[test]
fn a_file_with_only_a_name_takes_everything_from_detection() {
    let p = fixture_with("api-health", "name: todo\n");
    assert_eq!(p.component_names(), ["backend", "frontend"]);
    let be = p.component("backend").unwrap();
    // The own Dockerfile runs as root: detection does not swap it silently
    // for the recipe (the plan refuses it with both ways out; init writes `stack:`).
    assert_eq!(be.stack, None);
    assert!(!p.sources.contains_key("components.backend.stack"));
    assert_eq!(be.port, 8080);
    assert_eq!(
        p.sources["components.backend.port"],
        "detected from backend/Dockerfile:6"
    );
    assert_eq!(
        (be.health_path.as_deref(), be.ready_path.as_deref()),
        (Some("/api/health"), Some("/api/health"))
    );
    assert_eq!(be.secret_keys, ["DATABASE_URL", "SECRET_KEY"]);
    let db = p
        .secret
        .keys
        .iter()
        .find(|k| k.name == "DATABASE_URL")
        .unwrap();
    // The settings field has a SQLite default: optional, and not held to PostgreSQL.
    assert_eq!((db.required, db.format), (false, KeyFormat::Opaque));
    let fe = p.component("frontend").unwrap();
    assert_eq!(fe.health_path.as_deref(), Some("/api/health"));
    assert_eq!(fe.service.kind, ServiceKind::NodePort);
}

#[test]
fn a_file_entry_overrides_one_key_and_keeps_the_rest() {
    let todo = "name: todo\ncomponents:\n  - name: frontend\n    healthPath: /api/health\n";
    let p = fixture_with("subfolder-pair/apps/phase4-todo-app", todo);
    let fe = p.component("frontend").unwrap();
    assert_eq!(
        (fe.health_path.as_deref(), fe.ready_path.as_deref()),
        (Some("/api/health"), Some("/api/health"))
    );
    assert_eq!(p.sources["components.frontend.healthPath"], "todo.yaml:3");
    assert_eq!(fe.port, 3000);
    assert_eq!(fe.env["BACKEND_URL"], "http://todo-backend:8000");
    // The component the file leaves out is still there, as detected.
    let be = p.component("backend").unwrap();
    assert_eq!(
        (be.port, be.health_path.as_deref()),
        (8000, Some("/health"))
    );
    assert_eq!(be.env["ALGORITHM"], "HS256");
    assert_eq!(p.component_names(), ["frontend", "backend"]);
}

#[test]
fn no_component_anywhere_says_what_was_looked_for() {
    let err = load_err("name: shop\n");
    assert!(err.contains("no components"), "{err}");
    assert!(
        err.contains("components: [{name: web, path: frontend, port: 3000}]"),
        "{err}"
    );
}

#[test]
fn build_ca_cert_reaches_every_components_build_relative_to_the_root() {
    let p = fixture_with(
        "api-health",
        "name: todo\nbuild:\n  caCert: certs/proxy-ca.pem\n",
    );
    for c in &p.components {
        assert_eq!(
            c.build_spec(&p).ca_cert,
            Some(p.root.join("certs/proxy-ca.pem")),
            "{}",
            c.name
        );
    }
    let none = fixture_with("api-health", "name: todo\n");
    assert!(
        none.components
            .iter()
            .all(|c| c.build_spec(&none).ca_cert.is_none())
    );
    assert!(
        Project::from_text(&none.root, "name: todo\nbuild:\n  caCerts: x.pem\n").is_err(),
        "a misspelt key is refused"
    );
}

#[test]
fn an_unknown_component_names_the_closest_and_the_commands_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let p = Project::load(dir.path()).unwrap();
    assert_eq!(
        p.require_component("backend", |_| unreachable!())
            .unwrap()
            .name,
        "backend"
    );
    let err = p
        .require_component("backnd", |known| {
            format!("pass one of: {}", known.join(", "))
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the project has no component `backnd` (did you mean `backend`?)"
    );
    assert_eq!(
        crate::report::hints(&err),
        ["pass one of: frontend, backend"]
    );
    let far = p.require_component("db", |_| String::new()).unwrap_err();
    assert_eq!(far.to_string(), "the project has no component `db`");
}
