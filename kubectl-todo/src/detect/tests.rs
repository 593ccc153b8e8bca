use super::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/real-apps")
        .join(name)
}

fn detect(name: &str) -> App {
    let roots = candidates(&fixture(name));
    assert_eq!(roots.len(), 1, "{roots:?}");
    app(&roots[0])
}

fn component<'a>(app: &'a App, name: &str) -> &'a Component {
    app.components.iter().find(|c| c.name == name).unwrap()
}

#[test]
fn a_pair_in_a_subfolder_is_found_from_the_repository_root() {
    let roots = candidates(&fixture("subfolder-pair"));
    assert_eq!(roots, [fixture("subfolder-pair/apps/phase4-todo-app")]);
    let app = app(&roots[0]);
    let fe = component(&app, "frontend");
    let d = fe.dockerfile.as_ref().unwrap();
    assert_eq!(
        (d.user.as_ref().unwrap().0.as_str(), d.uid),
        ("nextjs", Some(1001))
    );
    assert_eq!(fe.hosts[0].host, "todo-backend");
    let be = component(&app, "backend");
    assert_eq!(be.health.as_ref().unwrap().path, "/health");
    let keys: Vec<(&str, bool)> = be
        .secret_keys
        .iter()
        .map(|k| (k.name.as_str(), k.required))
        .collect();
    assert_eq!(keys, [("DATABASE_URL", true), ("JWT_SECRET", true)]);
    insta::assert_snapshot!(summary(&app));
}

#[test]
fn a_python_backend_with_a_scripts_only_package_json_is_python() {
    let app = detect("apps-layout");
    let be = component(&app, "backend");
    assert_eq!(be.path, Path::new("apps/backend"));
    assert_eq!(be.stack.value, Stack::Python);
    assert!(be.notes[0].contains("scripts only"), "{:?}", be.notes);
    insta::assert_snapshot!(summary(&app));
}

#[test]
fn health_routes_come_from_router_prefixes_and_route_handlers() {
    let app = detect("api-health");
    let be = component(&app, "backend");
    // `APIRouter(prefix="/health")` with `@health_router.get("")`, included under `/api`.
    assert_eq!(be.health.as_ref().unwrap().path, "/api/health");
    let d = be.dockerfile.as_ref().unwrap();
    assert!(d.runs_as_root());
    assert_eq!(d.missing[0].0, "uv.lock");
    // A settings field with a default is optional.
    let db = be
        .secret_keys
        .iter()
        .find(|k| k.name == "DATABASE_URL")
        .unwrap();
    assert!(!db.required);
    let fe = component(&app, "frontend");
    assert_eq!(fe.health.as_ref().unwrap().path, "/api/health");
    insta::assert_snapshot!(summary(&app));
}

#[test]
fn compose_and_helm_give_ports_node_ports_and_secret_names() {
    let app = detect("helm-compose");
    let fe = component(&app, "frontend");
    assert_eq!(fe.node_port.as_ref().map(|n| n.value), Some(30080));
    assert_eq!(fe.hosts[0].host, "backend-service");
    let be = component(&app, "backend");
    assert_eq!(
        be.port.as_ref().unwrap().from.file,
        Path::new("docker-compose.yml")
    );
    assert!(be.secret_keys.iter().any(|k| k.name == "DATABASE_URL"));
    insta::assert_snapshot!(summary(&app));
}

#[test]
fn a_third_node_component_and_a_real_looking_credential() {
    let app = detect("three-components");
    assert_eq!(
        app.components
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["api", "auth", "web"]
    );
    assert_eq!(component(&app, "auth").port.as_ref().unwrap().value, 4000);
    assert!(
        app.warnings[0].contains("auth/.env.example:1"),
        "{:?}",
        app.warnings
    );
    let text = summary(&app);
    assert!(!text.contains("sk_live"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn build_output_and_dependencies_are_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web");
    std::fs::create_dir_all(web.join("node_modules/x/app/api/health")).unwrap();
    std::fs::create_dir_all(web.join("generated/app/api/live")).unwrap();
    std::fs::write(
        web.join("package.json"),
        r#"{"dependencies":{"next":"15"}}"#,
    )
    .unwrap();
    std::fs::write(web.join("node_modules/x/app/api/health/route.ts"), "").unwrap();
    std::fs::write(web.join(".gitignore"), "generated/\n").unwrap();
    std::fs::write(web.join("generated/app/api/live/route.ts"), "").unwrap();
    let app = app(dir.path());
    assert_eq!(app.components[0].health, None);
    assert!(candidates(&dir.path().join("empty")).is_empty());
}
