//! `init`, then `up`, on a fixture shaped like a real app, with the
//! emulator's docker runtime: the kubelet probes the paths detection found.
//! No base image can be pulled here, so each component is built from a
//! stand-in Dockerfile (busybox httpd) that answers only the app's real
//! routes; ports, probes, keys and names all come from `init` and detection.

use super::support;
use crate::real_apps_support as fixtures;

use std::path::Path;

use fixtures::{copy, fixture_dir};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use kube_emulator::Config;
use support::Setup;

/// A stand-in serving only `route` on `port`, as a numeric non-root user.
fn stand_in(dir: &Path, base: &str, port: u16, route: &str) {
    let file = dir.join("standin/www").join(route.trim_start_matches('/'));
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "ok\n").unwrap();
    // Outside what the image serves, but in its content hash: this run's own tags.
    let nonce = format!("{:?} {}", std::time::SystemTime::now(), dir.display());
    std::fs::write(dir.join("standin/nonce"), nonce).unwrap();
    std::fs::write(
        dir.join("standin.Dockerfile"),
        format!(
            "FROM {base}\nCOPY standin/www /www\nUSER 1001:1001\nCMD [\"busybox\", \"httpd\", \"-f\", \"-p\", \"{port}\", \"-h\", \"/www\"]\n"
        ),
    )
    .unwrap();
}

async fn ready(s: &Setup, ns: &str, instance: &str, component: &str) -> bool {
    let selector =
        format!("app.kubernetes.io/instance={instance},app.kubernetes.io/component={component}");
    Api::<Pod>::namespaced(s.client.clone(), ns)
        .list(&ListParams::default().labels(&selector))
        .await
        .unwrap()
        .items
        .iter()
        .any(|p| {
            p.status
                .as_ref()
                .and_then(|st| st.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn init_then_up_reaches_ready_on_the_routes_the_app_serves() {
    let s = Setup::start(Config::docker()).await;
    let base = kube_emulator::testimage::busybox_image(support::BASE_TAG)
        .await
        .unwrap();
    // The harness's own app goes; the fixture takes its folders' names
    // (`web`, `api`), so that the harness removes the images `up` builds.
    std::fs::remove_file(s.app.join("todo.yaml")).unwrap();
    for (ours, theirs) in [("web", "frontend"), ("api", "backend")] {
        std::fs::remove_dir_all(s.app.join(ours)).unwrap();
        copy(&fixture_dir("api-health").join(theirs), &s.app.join(ours));
    }
    let run = s.run(&["init", "--yes"]).await.ok();
    assert!(run.stdout.contains("/api/health"), "{}", run.all());
    // Detection says: api (the backend) on 8080 and web on 3000, both /api/health.
    stand_in(&s.app.join("api"), &base, 8080, "/api/health");
    stand_in(&s.app.join("web"), &base, 3000, "/api/health");
    let todo = std::fs::read_to_string(s.app.join("todo.yaml")).unwrap();
    let todo = todo.replace("    stack: python", "    dockerfile: standin.Dockerfile")
        + "  - name: web\n    dockerfile: standin.Dockerfile\n";
    std::fs::write(s.app.join("todo.yaml"), todo).unwrap();
    // The one required key detection found (SECRET_KEY); DATABASE_URL has a default.
    let env = s.dir.path().join("app.env");
    std::fs::write(&env, "SECRET_KEY=k9-Lq2vX7tRw\n").unwrap();
    let env = env.to_str().unwrap();
    s.run(&[
        "secrets",
        "create",
        "--from-env-file",
        env,
        "--create-namespace",
    ])
    .await
    .ok();
    let run = s.run(&["up", "--timeout", "3m"]).await.ok();
    assert!(ready(&s, "app", "app", "api").await, "{}", run.all());
    assert!(ready(&s, "app", "app", "web").await, "{}", run.all());
    s.remove_built_images().await;
}

/// The named-users pair with its own Dockerfiles kept in shape (named
/// users from the image's own account files, `EXPOSE`) but built on the
/// busybox stand-in: each serves only the app's real routes.
fn named_user_component(dir: &Path, base: &str, spec: NamedUser) {
    let www = dir.join("www");
    for route in spec.routes {
        let file = match route.trim_start_matches('/') {
            "" => "index.html".to_string(),
            r => r.to_string(),
        };
        let file = www.join(file);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "ok\n").unwrap();
    }
    // In the content hash, not served: this run's own tags.
    let nonce = format!("{:?} {}", std::time::SystemTime::now(), dir.display());
    std::fs::write(dir.join("nonce"), nonce).unwrap();
    std::fs::write(dir.join("passwd"), spec.passwd).unwrap();
    std::fs::write(dir.join("group"), spec.group).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM {base}\nCOPY passwd /etc/passwd\nCOPY group /etc/group\nCOPY nonce /nonce\nCOPY www /www\nUSER {}\nEXPOSE {port}\nCMD [\"busybox\", \"httpd\", \"-f\", \"-p\", \"{port}\", \"-h\", \"/www\"]\n",
            spec.user,
            port = spec.port,
        ),
    )
    .unwrap();
}

#[derive(Clone, Copy)]
struct NamedUser {
    user: &'static str,
    port: u16,
    routes: &'static [&'static str],
    passwd: &'static str,
    group: &'static str,
}

/// The security context of the app's Deployment of `component`.
async fn pod_security(
    s: &Setup,
    component: &str,
) -> k8s_openapi::api::core::v1::PodSecurityContext {
    Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(s.client.clone(), "app")
        .get(&format!("app-{component}"))
        .await
        .unwrap()
        .spec
        .unwrap()
        .template
        .spec
        .unwrap()
        .security_context
        .unwrap()
}

/// What `render --offline`, `plan` and `up --dry-run` say of the users the
/// components run as: the rendered numbers and the comment above them, the
/// plans' notes, the dry run's lines on users (image tags as `[TAG]`).
async fn offline_users(s: &Setup) -> String {
    let plans = s.run(&["plan", "-o", "json"]).await.json();
    let tags: Vec<String> = plans
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["tag"].as_str().unwrap().to_string())
        .collect();
    let untagged = |text: &str| {
        tags.iter()
            .fold(text.to_string(), |t, tag| t.replace(tag.as_str(), "[TAG]"))
    };
    let mut out = String::from("render --offline:\n");
    let render = s.run(&["render", "--offline"]).await.ok();
    for doc in render.stdout.split("---\n") {
        if !doc.contains("\nkind: Deployment\n") {
            continue;
        }
        // The pod's security context (its fields are indented 8 spaces).
        for line in doc.lines().filter(|l| {
            l.starts_with("# ")
                || l.starts_with("  name: ")
                || ["runAs", "fsGroup"]
                    .iter()
                    .any(|w| l.strip_prefix("        ").is_some_and(|f| f.starts_with(w)))
        }) {
            out += &format!("{line}\n");
        }
    }
    out += "plan:\n";
    let plan = s.run(&["plan"]).await.ok();
    for line in plan
        .stdout
        .lines()
        .filter(|l| l.starts_with("component:") || l.contains("USER"))
    {
        out += &format!("{}\n", untagged(line));
    }
    out += "up --dry-run:\n";
    let dry = s.run(&["up", "--dry-run"]).await.ok();
    for line in format!("{}{}", dry.stderr, dry.stdout)
        .lines()
        .filter(|l| l.contains("runs as") || l.starts_with("no changes"))
    {
        out += &format!("{}\n", untagged(line));
    }
    out
}

/// The app's own Dockerfiles end in named users (`USER appuser`, `USER
/// nextjs`): `init` keeps them (no `stack:`), `up` builds them as they are
/// and the Deployments run as the numbers the images' own /etc/passwd and
/// /etc/group give those names, with `runAsNonRoot`; the pods get ready.
#[tokio::test(flavor = "multi_thread")]
async fn named_user_dockerfiles_are_built_as_they_are_and_run_as_their_numbers() {
    let s = Setup::start(Config::docker()).await;
    let base = kube_emulator::testimage::busybox_image(support::BASE_TAG)
        .await
        .unwrap();
    std::fs::remove_file(s.app.join("todo.yaml")).unwrap();
    let api = NamedUser {
        user: "appuser",
        port: 8000,
        routes: &["/health"],
        passwd: "root:x:0:0:root:/root:/bin/sh\nappuser:x:1000:1000::/home/appuser:/bin/sh\n",
        group: "root:x:0:\nappuser:x:1000:\n",
    };
    let web = NamedUser {
        user: "nextjs",
        port: 3000,
        routes: &["/", "/api/health"],
        passwd: "root:x:0:0:root:/root:/bin/sh\nnextjs:x:1001:65533::/home/nextjs:/sbin/nologin\n",
        group: "root:x:0:\nnogroup:x:65533:\nnodejs:x:1001:nextjs\n",
    };
    for (ours, theirs, spec) in [("api", "backend", api), ("web", "frontend", web)] {
        std::fs::remove_dir_all(s.app.join(ours)).unwrap();
        copy(&fixture_dir("named-users").join(theirs), &s.app.join(ours));
        named_user_component(&s.app.join(ours), &base, spec);
    }
    let init = s.run(&["init", "--yes"]).await.ok();
    let todo = std::fs::read_to_string(s.app.join("todo.yaml")).unwrap();
    assert!(!todo.contains("stack:"), "{todo}\n{}", init.all());
    // Not built yet: the offline views name the users and say their numbers
    // come with the build, rather than print numbers `up` would not deploy.
    insta::assert_snapshot!("named_users_before_the_build", offline_users(&s).await);
    let up = s.run(&["up", "--timeout", "3m"]).await.ok();
    for (component, uid, gid) in [("api", 1000, 1000), ("web", 1001, 65533)] {
        let sc = pod_security(&s, component).await;
        assert_eq!(
            (sc.run_as_user, sc.run_as_group, sc.run_as_non_root),
            (Some(uid), Some(gid), Some(true)),
            "{component}: {}",
            up.all()
        );
        assert!(
            ready(&s, "app", "app", component).await,
            "{component}: {}",
            up.all()
        );
    }
    // A second run finds nothing changed: the numbers of the images it has
    // are what the cluster runs.
    let again = s.run(&["up"]).await.ok();
    assert!(again.stderr.contains("nothing changed"), "{}", again.all());
    // Built: the offline views resolve the names from the engine's images,
    // to the numbers the cluster runs.
    insta::assert_snapshot!("named_users_once_built", offline_users(&s).await);

    // A name the image does not have: the build's check says which and how.
    std::fs::write(s.app.join("web/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    let run = s.run(&["up"]).await.failed();
    assert!(
        run.stderr.contains(
            "USER `nextjs` names the user `nextjs`, which the image's /etc/passwd does not have"
        ) && run.stderr.contains("`USER 1001:1001`"),
        "{}",
        run.all()
    );
    // Nothing was applied: the Deployment runs the numbers of before.
    assert_eq!(pod_security(&s, "web").await.run_as_user, Some(1001));
    s.remove_built_images().await;
}

/// The app's own Dockerfile runs as root: `plan`, `up --dry-run`, `up` and
/// `doctor` all refuse it before anything is built, each naming both ways
/// out, and each way out, applied as printed, is accepted.
#[tokio::test(flavor = "multi_thread")]
async fn a_root_dockerfile_is_refused_before_the_build_with_both_ways_out() {
    let s = Setup::start(Config::default()).await;
    // No todo.yaml: the original layout's folders, read by detection.
    std::fs::remove_file(s.app.join("todo.yaml")).unwrap();
    for (ours, theirs) in [("web", "frontend"), ("api", "backend")] {
        std::fs::remove_dir_all(s.app.join(ours)).unwrap();
        copy(&fixture_dir("api-health").join(theirs), &s.app.join(theirs));
    }
    let dockerfile = s.app.join("backend/Dockerfile");
    let refused = |run: &support::Run| {
        let err = &run.stderr;
        assert!(
            err.contains("backend/Dockerfile: its final stage")
                && err.contains("has no `USER`: the image would run as root")
                && err.contains("add `USER 1001:1001` as the last instruction of")
                && err.contains("set `stack: python` for this component"),
            "{}",
            run.all()
        );
    };
    for args in [&["plan"][..], &["up", "--dry-run"], &["up"]] {
        let run = s.run(args).await.failed();
        refused(&run);
        assert!(!run.stdout.contains("building"), "{args:?}: {}", run.all());
    }
    let doctor = s.run(&["doctor", "--only", "app"]).await;
    assert!(
        doctor
            .stdout
            .contains("has no `USER`: the image would run as root")
            && doctor.stdout.contains("USER 1001:1001"),
        "{}",
        doctor.all()
    );
    // Nothing was applied.
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(s.client.clone(), "todo");
    assert!(
        deployments
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    // Way out 1: the generated recipe, as the message says.
    s.write(
        "todo.yaml",
        "name: todo\ncomponents:\n  - name: backend\n    stack: python\n",
    );
    let plan = s.run(&["plan", "backend", "-o", "json"]).await.ok();
    assert!(
        plan.stdout.contains("\"stack\": \"python\""),
        "{}",
        plan.all()
    );
    // Way out 2: a numeric user in the app's own Dockerfile (and the lock
    // file it copies, without which detection picks the recipe anyway).
    std::fs::remove_file(s.app.join("todo.yaml")).unwrap();
    std::fs::write(s.app.join("backend/uv.lock"), "version = 1\n").unwrap();
    let mut text = std::fs::read_to_string(&dockerfile).unwrap();
    text.push_str("USER 1001:1001\n");
    std::fs::write(&dockerfile, text).unwrap();
    let plan = s.run(&["plan", "backend", "-o", "json"]).await.ok();
    assert!(
        plan.stdout.contains("\"stack\": \"dockerfile\""),
        "{}",
        plan.all()
    );
}

/// One shape from real-apps.md: the fixture, the folder `init` must choose
/// (relative to the fixture), and per component what its code really serves:
/// the port it listens on and its routes. The stand-ins answer those routes
/// only, so `up` reaches ready only where detection found a real one (or
/// fell back to TCP on the right port).
struct Shape {
    fixture: &'static str,
    app: &'static str,
    components: &'static [(&'static str, u16, &'static [&'static str])],
}

const SHAPES: &[Shape] = &[
    Shape {
        fixture: "subfolder-pair",
        app: "apps/phase4-todo-app",
        components: &[
            ("backend", 8000, &["/health", "/api/tasks"]),
            ("frontend", 3000, &["/", "/tasks"]),
        ],
    },
    Shape {
        fixture: "apps-layout",
        app: "",
        components: &[
            ("backend", 8000, &["/health", "/"]),
            ("frontend", 3000, &["/"]),
        ],
    },
    Shape {
        fixture: "api-health",
        app: "",
        components: &[
            ("backend", 8080, &["/api/health"]),
            ("frontend", 3000, &["/", "/api/health", "/todos"]),
        ],
    },
    Shape {
        fixture: "helm-compose",
        app: "",
        components: &[("backend", 8000, &["/"]), ("frontend", 3000, &["/"])],
    },
    Shape {
        fixture: "three-components",
        app: "",
        components: &[
            ("api", 8000, &["/api/health"]),
            ("auth", 4000, &["/health"]),
            ("web", 3000, &["/", "/api/healthz"]),
        ],
    },
    Shape {
        fixture: "client-server",
        app: "",
        components: &[
            ("server", 8000, &["/api/health", "/api/todos"]),
            ("client", 3000, &["/", "/api/health"]),
        ],
    },
    Shape {
        fixture: "no-health",
        app: "",
        // Nothing the probes could use: TCP on the right port is what works.
        components: &[("api", 8000, &["/todos"]), ("web", 3000, &[])],
    },
    Shape {
        fixture: "poetry-helm",
        app: "",
        // `/health/with-db` too, which a file server cannot serve beside `/health`.
        components: &[
            ("backend", 8000, &["/health"]),
            ("frontend", 3000, &["/", "/api/health"]),
        ],
    },
    Shape {
        fixture: "named-users",
        app: "",
        components: &[
            ("backend", 8000, &["/health"]),
            ("frontend", 3000, &["/", "/api/health"]),
        ],
    },
    Shape {
        fixture: "nested-phase",
        app: "calm-orbit-todo/phase2-3-fullstack",
        components: &[
            ("backend", 8000, &["/health", "/todos"]),
            ("frontend", 3000, &["/", "/healthz"]),
        ],
    },
];

/// A stand-in image of one component: busybox httpd on `port` serving
/// exactly `routes`, as a numeric non-root user. Its reference.
async fn stand_in_image(base: &str, dir: &Path, tag: &str, port: u16, routes: &[&str]) -> String {
    std::fs::create_dir_all(dir.join("www")).unwrap();
    for route in routes {
        let file = match route.trim_start_matches('/') {
            "" => "index.html".to_string(),
            r => r.to_string(),
        };
        let file = dir.join("www").join(file);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "ok\n").unwrap();
    }
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM {base}\nCOPY www /www\nUSER 1001:1001\nCMD [\"busybox\", \"httpd\", \"-f\", \"-p\", \"{port}\", \"-h\", \"/www\"]\n"
        ),
    )
    .unwrap();
    let out = tokio::process::Command::new("docker")
        .args(["build", "-q", "-t", tag])
        .arg(dir)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tag.to_string()
}

/// A value `secrets create` accepts for a key of this format.
fn sample(format: &str) -> &'static str {
    match format {
        "postgres-url" => "postgresql+asyncpg://app:Zq81-sample@db.internal:5432/app",
        "api-key" => "sk-sample-Zq81x7Lm2",
        _ => "Zq81-sample-x7Lm2",
    }
}

/// `init --yes` from the fixture's root, then (with the Secret's required
/// keys set, the one step no file can do) `up` in the folder init chose,
/// with each component's image replaced by its stand-in: every pod must be
/// ready on the probes init's project gives it, with no edit of todo.yaml.
async fn init_then_up_with_no_hand_edit(shape: &Shape) {
    let s = Setup::start(Config::docker()).await;
    let base = kube_emulator::testimage::busybox_image(support::BASE_TAG)
        .await
        .unwrap();
    let repo = s.dir.path().join(shape.fixture);
    copy(&fixture_dir(shape.fixture), &repo);
    let app = repo.join(shape.app);
    let todo = |dir: &Path, args: &[&str]| {
        let mut cmd = tokio::process::Command::new(crate::harness::binary());
        cmd.arg("--project")
            .arg(dir)
            .arg("--kubeconfig")
            .arg(&s.kubeconfig)
            .args(args)
            .env("PATH", kube_emulator::standins::path_with(&s.bin))
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null());
        cmd
    };
    let run = |mut cmd: tokio::process::Command| async move {
        support::Run::from(cmd.output().await.expect("kubectl-todo runs"))
    };
    run(todo(&repo, &["init", "--yes"])).await.ok();
    assert!(
        app.join("todo.yaml").is_file(),
        "{}: init chose another folder",
        shape.fixture
    );
    let config = run(todo(&app, &["config", "-o", "json"])).await.ok();
    let config: serde_json::Value = serde_json::from_str(&config.stdout).unwrap();
    let project = &config["project"];
    let (name, ns) = (
        project["name"].as_str().unwrap().to_string(),
        project["namespace"].as_str().unwrap().to_string(),
    );
    let required: String = project["secret"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["required"] == true)
        .map(|k| {
            format!(
                "{}={}\n",
                k["name"].as_str().unwrap(),
                sample(k["format"].as_str().unwrap_or("opaque"))
            )
        })
        .collect();
    if !required.is_empty() {
        let env = s.dir.path().join("app.env");
        std::fs::write(&env, required).unwrap();
        run(todo(
            &app,
            &[
                "secrets",
                "create",
                "--from-env-file",
                env.to_str().unwrap(),
                "--create-namespace",
            ],
        ))
        .await
        .ok();
    }
    let mut args: Vec<String> = vec!["up".into(), "--timeout".into(), "2m".into()];
    let mut images = Vec::new();
    for (component, port, routes) in shape.components {
        let dir = s.dir.path().join("standins").join(component);
        let tag = format!(
            "standin-{}-{component}:{}",
            shape.fixture,
            std::process::id()
        );
        images.push(stand_in_image(&base, &dir, &tag, *port, routes).await);
        // Built elsewhere, as `--image` says: on the node before `up`.
        let load = tokio::process::Command::new("minikube")
            .args(["image", "load", &tag])
            .env("PATH", kube_emulator::standins::path_with(&s.bin))
            .output()
            .await
            .unwrap();
        assert!(
            load.status.success(),
            "{}",
            String::from_utf8_lossy(&load.stderr)
        );
        args.push("--image".into());
        args.push(format!("{component}={tag}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let up = run(todo(&app, &args)).await;
    for (component, ..) in shape.components {
        assert!(
            ready(&s, &ns, &name, component).await,
            "{}: {component} is not ready\n{}",
            shape.fixture,
            up.all()
        );
    }
    up.ok();
    s.emu.stop().await;
    for image in images {
        let _ = tokio::process::Command::new("docker")
            .args(["rmi", "-f", &image])
            .output()
            .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_hand_edit_subfolder_pair() {
    init_then_up_with_no_hand_edit(&SHAPES[0]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_hand_edit_apps_layout() {
    init_then_up_with_no_hand_edit(&SHAPES[1]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_hand_edit_api_health() {
    init_then_up_with_no_hand_edit(&SHAPES[2]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_hand_edit_helm_compose() {
    init_then_up_with_no_hand_edit(&SHAPES[3]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_hand_edit_three_components() {
    init_then_up_with_no_hand_edit(&SHAPES[4]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_hand_edit_client_server() {
    init_then_up_with_no_hand_edit(&SHAPES[5]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_hand_edit_no_health() {
    init_then_up_with_no_hand_edit(&SHAPES[6]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_hand_edit_poetry_helm() {
    init_then_up_with_no_hand_edit(&SHAPES[7]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_hand_edit_named_users() {
    init_then_up_with_no_hand_edit(&SHAPES[8]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_hand_edit_nested_phase() {
    init_then_up_with_no_hand_edit(&SHAPES[9]).await;
}
