//! `kubectl todo render`: the manifests `up` applies, checked as snapshots,
//! property by property for the hardening, and by the API server itself.

use crate::harness::{App, BACKEND_IMAGE, Cluster, FRONTEND_IMAGE, Run, binary, run_against};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use std::process::Command;

use image_builder::plan::{self, BuilderKind, PlanOptions};
use kubectl_todo::project::Project;
use serde_json::Value;

const CUSTOM: &str = r#"name: shop
namespace: shop-dev
secret:
  name: shop-keys
  keys:
    - name: STRIPE_KEY
      format: api-key
    - name: SENTRY_DSN
      required: false
components:
  - name: web
    path: apps/web
    stack: nextjs
    replicas: 2
    service: {type: NodePort, nodePort: 30080}
    env: {API_URL: "http://shop-api:9000", NODE_ENV: production}
    resources:
      requests: {cpu: 100m, memory: 128Mi}
      limits: {cpu: "1", memory: 1Gi}
  - name: api
    path: apps/api
    port: 9000
    healthPath: /healthz
    readyPath: /readyz
    secretKeys: [STRIPE_KEY, SENTRY_DSN]
    writablePaths: [/var/cache/api]
  - name: worker
    stack: python
    secretKeys: [STRIPE_KEY]
"#;

fn custom_images() -> [&'static str; 6] {
    [
        "--image",
        "web=shop-web:1111111111111111",
        "--image",
        "api=registry.example:5000/shop-api:2222222222222222",
        "--image",
        "worker=shop-worker:3333333333333333",
    ]
}

#[test]
fn the_original_layout_renders_as_the_snapshot() {
    let app = App::original_layout();
    let out = app.run(&["render", "--offline"]).ok();
    // Tags come from image-builder's content hash, which changes whenever its
    // Dockerfile generator does; this snapshot is about the manifests.
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\b[0-9a-f]{16}\b", "[tag]");
    settings.bind(|| insta::assert_snapshot!("render_defaults", out.stdout));
}

#[test]
fn a_custom_project_renders_as_the_snapshot() {
    let app = App::with_file(CUSTOM);
    let mut args = vec!["render", "--offline"];
    args.extend(custom_images());
    let out = app.run(&args).ok();
    insta::assert_snapshot!("render_custom", out.stdout);
}

#[test]
fn rendering_is_deterministic_and_json_lists_the_same_objects() {
    let app = App::original_layout();
    let first = app.run(&["render", "--offline"]).ok().stdout;
    let second = app.run(&["render", "--offline"]).ok().stdout;
    assert_eq!(first, second);
    let json: Value =
        serde_json::from_str(&app.run(&["render", "--offline", "-o", "json"]).ok().stdout).unwrap();
    assert_eq!(json["kind"], "List");
    let kinds: Vec<String> = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "ServiceAccount/todo-frontend",
            "ServiceAccount/todo-backend",
            "ConfigMap/todo-frontend",
            "ConfigMap/todo-backend",
            "Service/todo-frontend",
            "Service/todo-backend",
            "Deployment/todo-frontend",
            "Deployment/todo-backend",
            "NetworkPolicy/todo-frontend",
            "NetworkPolicy/todo-backend",
        ]
    );
    let yaml_docs: Vec<Value> = first
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_yaml_ng::from_str(d).unwrap())
        .collect();
    assert_eq!(yaml_docs, json["items"].as_array().unwrap().clone());
}

fn items(app: &App, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["render", "--offline", "-o", "json"];
    args.extend(extra);
    let json: Value = serde_json::from_str(&app.run(&args).ok().stdout).unwrap();
    json["items"].as_array().unwrap().clone()
}

fn find<'a>(items: &'a [Value], kind: &str, name: &str) -> &'a Value {
    items
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind}/{name}"))
}

#[test]
fn every_pod_is_hardened() {
    let app = App::with_file(CUSTOM);
    let items = items(&app, &custom_images());
    for name in ["shop-web", "shop-api", "shop-worker"] {
        let d = find(&items, "Deployment", name);
        let spec = &d["spec"];
        assert_eq!(
            spec["strategy"]["rollingUpdate"]["maxUnavailable"], 0,
            "{name}"
        );
        let pod = &spec["template"]["spec"];
        assert_eq!(pod["automountServiceAccountToken"], false);
        assert_eq!(pod["serviceAccountName"], name);
        let psc = &pod["securityContext"];
        assert_eq!(psc["runAsNonRoot"], true);
        assert_eq!(
            (
                psc["runAsUser"].as_i64(),
                psc["runAsGroup"].as_i64(),
                psc["fsGroup"].as_i64()
            ),
            (Some(1001), Some(1001), Some(1001))
        );
        assert_eq!(psc["seccompProfile"]["type"], "RuntimeDefault");
        let c = &pod["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        let sc = &c["securityContext"];
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["readOnlyRootFilesystem"], true);
        assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
        for kind in ["requests", "limits"] {
            assert!(
                c["resources"][kind]["cpu"].is_string()
                    && c["resources"][kind]["memory"].is_string(),
                "{name} {kind}"
            );
        }
        for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
            // HTTP on a route the app serves, else TCP on its port.
            let port = match c[probe].get("httpGet") {
                Some(get) => &get["port"],
                None => &c[probe]["tcpSocket"]["port"],
            };
            assert_eq!(port, "http", "{name} {probe}");
        }
        let mounts: Vec<&str> = c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["mountPath"].as_str().unwrap())
            .collect();
        assert!(mounts.contains(&"/tmp"), "{name}: {mounts:?}");
        let labels = &spec["template"]["metadata"]["labels"];
        for key in [
            "name",
            "instance",
            "component",
            "part-of",
            "managed-by",
            "version",
        ] {
            assert!(
                labels[format!("app.kubernetes.io/{key}")].is_string(),
                "{name} lacks {key}"
            );
        }
        assert!(
            spec["template"]["metadata"]["annotations"]["kubectl-todo/config-checksum"].is_string()
        );
    }
    let web = &find(&items, "Deployment", "shop-web")["spec"]["template"]["spec"]["containers"][0];
    let web_mounts: Vec<&str> = web["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    assert_eq!(web_mounts, ["/tmp", "/app/.next/cache"]);
    let api = &find(&items, "Deployment", "shop-api")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(api["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(api["startupProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(api["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(
        api["image"],
        "registry.example:5000/shop-api:2222222222222222"
    );
    assert_eq!(
        api["env"][1]["valueFrom"]["secretKeyRef"],
        serde_json::json!({"name": "shop-keys", "key": "SENTRY_DSN", "optional": true})
    );
    for sa in ["shop-web", "shop-api", "shop-worker"] {
        assert_eq!(
            find(&items, "ServiceAccount", sa)["automountServiceAccountToken"],
            false
        );
    }
}

#[test]
fn only_the_other_components_reach_an_internal_one() {
    let app = App::original_layout();
    let items = items(
        &app,
        &[
            "--image",
            &format!("frontend={FRONTEND_IMAGE}"),
            "--image",
            &format!("backend={BACKEND_IMAGE}"),
        ],
    );
    let policies: Vec<&Value> = items
        .iter()
        .filter(|o| o["kind"] == "NetworkPolicy")
        .collect();
    assert_eq!(policies.len(), 2, "every component's pods have one");
    // The NodePort frontend: from anywhere (the browser), on its port alone.
    let spec = &policies[0]["spec"];
    assert_eq!(
        spec["podSelector"]["matchLabels"]["app.kubernetes.io/component"],
        "frontend"
    );
    assert_eq!(
        spec["ingress"],
        serde_json::json!([{"ports": [{"port": 3000, "protocol": "TCP"}]}])
    );
    let spec = &policies[1]["spec"];
    assert_eq!(
        spec["podSelector"]["matchLabels"]["app.kubernetes.io/component"],
        "backend"
    );
    assert_eq!(spec["policyTypes"], serde_json::json!(["Ingress"]));
    let from = &spec["ingress"][0]["from"][0]["podSelector"];
    assert_eq!(from["matchLabels"]["app.kubernetes.io/instance"], "todo");
    assert_eq!(
        from["matchExpressions"][0]["values"],
        serde_json::json!(["frontend"])
    );
    assert_eq!(spec["ingress"][0]["ports"][0]["port"], 8000);
}

#[test]
fn a_changed_setting_changes_the_config_checksum_only_where_it_is_used() {
    let app = App::with_file(CUSTOM);
    let before = items(&app, &custom_images());
    app.write(
        "todo.yaml",
        &CUSTOM.replace("NODE_ENV: production", "NODE_ENV: staging"),
    );
    let after = items(&app, &custom_images());
    let sum = |items: &[Value], name: &str| {
        find(items, "Deployment", name)["spec"]["template"]["metadata"]["annotations"]["kubectl-todo/config-checksum"].clone()
    };
    assert_ne!(sum(&before, "shop-web"), sum(&after, "shop-web"));
    assert_eq!(sum(&before, "shop-api"), sum(&after, "shop-api"));
}

#[test]
fn the_image_tag_is_image_builders_content_hash() {
    let app = App::original_layout();
    let tag = |items: &[Value]| {
        find(items, "Deployment", "todo-backend")["metadata"]["labels"]["app.kubernetes.io/version"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let before = items(&app, &[]);
    let image = find(&before, "Deployment", "todo-backend")["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap().to_string();
    assert_eq!(image, format!("todo-backend:{}", tag(&before)));
    assert_eq!(tag(&before).len(), 16);
    let unchanged_frontend = find(&before, "Deployment", "todo-frontend")["spec"]["template"]["spec"]["containers"][0]["image"].clone();
    app.write("backend/app/extra.py", "VALUE = 1\n");
    let after = items(&app, &[]);
    assert_ne!(tag(&before), tag(&after), "a source change gives a new tag");
    assert_eq!(
        find(&after, "Deployment", "todo-frontend")["spec"]["template"]["spec"]["containers"][0]["image"],
        unchanged_frontend
    );
}

/// With no engine to ask, a project whose builds trust a CA bundle (only
/// BuildKit can build it) is planned for BuildKit: `render` names the tag
/// `up` builds instead of refusing the bundle as if the builder were classic.
#[test]
fn with_a_ca_bundle_and_no_engine_the_tag_is_the_buildkit_one() {
    let app = App::original_layout();
    std::fs::copy(
        "/etc/ssl/certs/ca-certificates.crt",
        app.path().join("proxy-ca.pem"),
    )
    .unwrap();
    app.write("todo.yaml", "name: todo\nbuild:\n  caCert: proxy-ca.pem\n");
    let run = Run::from(
        Command::new(binary())
            .arg("--project")
            .arg(app.path())
            .args(["render", "--offline", "-o", "json"])
            .env("KUBECONFIG", app.path().join("no-kubeconfig"))
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .output()
            .unwrap(),
    )
    .ok();
    assert!(run.stderr.contains(plan::NO_ENGINE_NOTE), "{}", run.stderr);
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    let project = Project::load(app.path()).unwrap();
    for component in &project.components {
        let planned = plan::plan(
            &component.build_spec(&project),
            &PlanOptions {
                builder: Some(BuilderKind::BuildKit),
                use_cache: false,
                ..PlanOptions::default()
            },
        )
        .unwrap();
        let name = format!("todo-{}", component.name);
        assert_eq!(
            find(json["items"].as_array().unwrap(), "Deployment", &name)["spec"]["template"]["spec"]
                ["containers"][0]["image"],
            planned.reference()
        );
    }
}

#[test]
fn bad_input_is_explained() {
    let app = App::original_layout();
    let out = app
        .run(&["render", "--offline", "--image", "bakend=x:1"])
        .failed();
    assert!(
        out.stderr.contains("component `bakend`") && out.stderr.contains("did you mean `backend`?"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("hint:"), "{}", out.stderr);
    let out = app
        .run(&["render", "--offline", "--image", "backend"])
        .failed();
    assert!(out.stderr.contains("COMPONENT=REF"), "{}", out.stderr);

    let app = App::with_file(
        "name: shop\ncomponents:\n  - name: web\n    stack: nextjs\n    replica: 2\n",
    );
    let out = app.run(&["render", "--offline"]).failed();
    assert!(
        out.stderr
            .contains("todo.yaml:5:5: unknown key `replica` (did you mean `replicas`?)"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("hint: fix"), "{}", out.stderr);

    let app = App::with_file("name: shop\ncomponents:\n  - name: web\n    stack: nextjs\n");
    let out = app.run(&["render", "--offline"]).failed();
    assert!(
        out.stderr.contains("apps/web") || out.stderr.contains("web"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--image web=REF"), "{}", out.stderr);
}

/// The API server accepts every rendered object (server-side apply, dry run),
/// and the pods carry the checksum of the Secret found in the cluster.
#[tokio::test(flavor = "multi_thread")]
async fn the_api_server_accepts_every_rendered_object() {
    let cluster = Cluster::start().await;
    cluster.namespace("todo").await;
    let secret = cluster
        .secret(
            "todo",
            "todo-secrets",
            &[
                ("DATABASE_URL", "postgresql://u:p@db/todo"),
                ("BETTER_AUTH_SECRET", "s"),
                ("OPENAI_API_KEY", "k"),
            ],
        )
        .await;
    let app = App::original_layout();
    let out = run_against(&app, cluster.kubeconfig(), &["render", "-o", "json"])
        .await
        .ok();
    assert!(
        out.stderr
            .contains("Secret todo-secrets has no checksum key yet")
            && !out.stdout.contains("kubectl-todo/secret-checksum"),
        "without a key, no checksum: {}",
        out.stderr
    );
    // A Secret made by another tool gets its checksum key from `up` or a
    // `secrets` write; `render` only reads, so the test adds it.
    let secret = kubectl_todo::secrets::with_checksum_key(&cluster.client, secret)
        .await
        .unwrap();
    let expected_sum = kubectl_todo::secrets::checksum(&secret).unwrap();
    let out = run_against(&app, cluster.kubeconfig(), &["render", "-o", "json"])
        .await
        .ok();
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    for item in list["items"].as_array().unwrap() {
        let obj: DynamicObject = serde_json::from_value(item.clone()).unwrap();
        let types = obj.types.clone().unwrap();
        let (group, version) = types
            .api_version
            .split_once('/')
            .unwrap_or(("", &types.api_version));
        let plural = format!("{}s", types.kind.to_ascii_lowercase()).replace("policys", "policies");
        let resource = ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: types.api_version.clone(),
            kind: types.kind.clone(),
            plural,
        };
        let api: Api<DynamicObject> =
            Api::namespaced_with(cluster.client.clone(), "todo", &resource);
        let params = PatchParams::apply("kubectl-todo").dry_run();
        let name = obj.metadata.name.clone().unwrap();
        api.patch(&name, &params, &Patch::Apply(&obj))
            .await
            .unwrap_or_else(|e| panic!("{}/{name} rejected: {e}", types.kind));
        if types.kind == "Deployment" {
            assert_eq!(
                item["spec"]["template"]["metadata"]["annotations"]["kubectl-todo/secret-checksum"],
                expected_sum.as_str(),
                "{name}"
            );
        }
    }
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), "todo");
    assert!(
        deployments
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "a dry run writes nothing"
    );
    cluster.emulator.stop().await;
}

/// Against a cluster that refuses connections, `render` says so in one line
/// (which server, why) and renders what `--offline` renders.
#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_cluster_is_one_note_and_render_goes_on() {
    let app = App::with_file(CUSTOM);
    // A port nothing listens on: bound, then freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let kubeconfig = app.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: gone\n  cluster: {{server: \"https://127.0.0.1:{port}\"}}\nusers:\n- name: me\n  user: {{token: t}}\ncontexts:\n- name: gone\n  context: {{cluster: gone, user: me}}\ncurrent-context: gone\n"
        ),
    )
    .unwrap();
    let mut args = vec!["render"];
    args.extend(custom_images());
    let run = run_against(&app, kubeconfig.to_str().unwrap(), &args).await;
    let mut offline = vec!["render", "--offline"];
    offline.extend(custom_images());
    assert_eq!(run.ok_stdout(), app.run(&offline).ok().stdout);
    insta::assert_snapshot!("render_unreachable", run.stderr);
}
