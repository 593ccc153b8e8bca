//! The catalogue of ways a Secret value could reach the user (the issue's
//! "canary paths"): every form a value travels in, through every output
//! that quotes something from outside (a crashing app's log in `up`'s
//! diagnosis, `doctor` and `logs`; a server message; a failing credential
//! plugin) and every output that describes the deployment (`status`,
//! `history`, `render`). Each (output, form) pair is one probe: a probe
//! that did not show the line carrying the form would prove nothing, so
//! each also checks that its marker is there.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::harness::{self, App, Cluster, Run, against, run_against};

/// Its base64 holds `+` and `/`, so the URL-safe forms differ; 31 bytes,
/// so both it and it with a newline are padded.
const KEY: &str = "sk-canary>>>???~~~redaction-key";
const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCcanarypem1\nBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKjcanarypem2\n-----END PRIVATE KEY-----";
const TOKEN: &str = "canary-exec-token-0123456789";
/// The value `secrets set` sends, echoed back by a failing server.
const NEW: &str = "canary-new-value>>>???-0123";

const COMPONENTS: [&str; 4] = ["web", "api", "worker", "jobs"];

fn project() -> String {
    let mut text = String::from(
        "name: shop\nsecret:\n  keys:\n    - name: API_KEY\n    - name: TLS_KEY\ncomponents:\n",
    );
    for c in COMPONENTS {
        text.push_str(&format!(
            "  - name: {c}\n    port: 3000\n    secretKeys: [API_KEY, TLS_KEY]\n"
        ));
    }
    text
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn url_encoded(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn json_escaped(s: &str) -> String {
    let quoted = serde_json::to_string(s).unwrap();
    quoted[1..quoted.len() - 1].to_string()
}

/// A form of a value: what it is, the text that must not be shown, and
/// the marker of the line that carries it.
struct Form {
    what: String,
    text: String,
    marker: String,
}

/// The forms the crashing app prints, and the log text of each component
/// (at most 5 lines each: the diagnosis quotes the last 5). `$(VAR)` is the
/// container's own environment, as the emulator expands it.
fn crash_script() -> (Vec<Form>, Vec<String>) {
    let pem: Vec<&str> = PEM.lines().collect();
    let nl = format!("{KEY}\n");
    let form = |what: &str, text: String, marker: &str| Form {
        what: what.into(),
        text,
        marker: marker.into(),
    };
    let forms = vec![
        form("each line of a PEM value (2)", pem[1].into(), "f01"),
        form("each line of a PEM value (3)", pem[2].into(), "f01"),
        form("the value as it is", KEY.into(), "f02"),
        form("base64", STANDARD.encode(KEY), "f03"),
        form("base64 unpadded", STANDARD_NO_PAD.encode(KEY), "f04"),
        form("base64url", URL_SAFE.encode(KEY), "f05"),
        form("base64url unpadded", URL_SAFE_NO_PAD.encode(KEY), "f06"),
        form("base64 with a newline", STANDARD.encode(&nl), "f07"),
        form(
            "base64 unpadded with a newline",
            STANDARD_NO_PAD.encode(&nl),
            "f08",
        ),
        form("base64url with a newline", URL_SAFE.encode(&nl), "f09"),
        form(
            "base64url unpadded with a newline",
            URL_SAFE_NO_PAD.encode(&nl),
            "f10",
        ),
        form("hex", hex(KEY), "f11"),
        form("HEX", hex(KEY).to_uppercase(), "f12"),
        form("JSON-escaped", json_escaped(PEM), "f13"),
        form("URL-encoded", url_encoded(KEY), "f14"),
        form("a prefix of 14 characters", KEY[..14].into(), "f15"),
    ];
    let line = |marker: &str| {
        let f = forms.iter().find(|f| f.marker == marker).unwrap();
        format!("{marker} {}", f.text)
    };
    let texts = vec![
        // The PEM and the value from the environment, as the app has them.
        "f01 $(TLS_KEY)\nf02 $(API_KEY)".to_string(),
        ["f03", "f04", "f05", "f06"].map(line).join("\n"),
        ["f07", "f08", "f09", "f10"].map(line).join("\n"),
        format!(
            "{}\n{}\n{}\n{}\nf15 {}... (truncated)",
            line("f11"),
            line("f12"),
            line("f13"),
            line("f14"),
            &KEY[..14]
        ),
    ];
    (forms, texts)
}

/// One output checked for every form: a leak is a form shown; a probe whose
/// marker is not in the output is reported as not tried.
#[derive(Default)]
struct Catalogue {
    tried: usize,
    leaks: Vec<String>,
    unshown: Vec<String>,
}

impl Catalogue {
    fn check(&mut self, path: &str, run: &Run, forms: &[Form]) {
        let all = run.all();
        for f in forms {
            self.tried += 1;
            if !all.contains(&f.marker) {
                self.unshown
                    .push(format!("{path}: {} (no {:?}):\n{all}", f.what, f.marker));
            }
            if all.contains(&f.text) {
                self.leaks.push(format!("{path}: {}:\n{all}", f.what));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_value_reaches_the_user_in_any_form() {
    let cluster = Cluster::start().await;
    let kc = cluster.kubeconfig().to_string();
    cluster.namespace("shop").await;
    cluster
        .secret(
            "shop",
            "shop-secrets",
            &[("API_KEY", KEY), ("TLS_KEY", PEM)],
        )
        .await;
    harness::canaries([TOKEN.to_string(), NEW.to_string()]);
    let images: Vec<String> = ["1", "2"]
        .iter()
        .flat_map(|t| COMPONENTS.map(|c| format!("shop-{c}:{t}")))
        .collect();
    cluster
        .load(&images.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    let app = App::with_file(&project());
    // Prebuilt images: nothing to build, the same for `up` and `render`.
    let with_images = |command: &[&str], tag: &str| {
        let mut args: Vec<String> = command.iter().map(|a| a.to_string()).collect();
        for c in COMPONENTS {
            args.extend(["--image".into(), format!("{c}=shop-{c}:{tag}")]);
        }
        args
    };
    let up = |tag: &str| with_images(&["up", "--timeout", "60s"], tag);
    let args = up("1");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_against(&app, &kc, &args).await.ok();

    // Another manager makes every component's app print its values and exit.
    let (forms, texts) = crash_script();
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), "shop");
    for (c, text) in COMPONENTS.iter().zip(&texts) {
        let crash = json!({"spec": {"template": {"metadata": {"annotations": {
            "kube-emulator.dev/log-text": text,
            "kube-emulator.dev/exit-code": "1",
        }}}}});
        deployments
            .patch(
                &format!("shop-{c}"),
                &PatchParams::default(),
                &Patch::Strategic(&crash),
            )
            .await
            .unwrap();
    }
    let mut catalogue = Catalogue::default();
    // `up` rolls out new images on the crashing template and diagnoses it.
    let args = up("2");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = run_against(&app, &kc, &args).await;
    catalogue.check("up's diagnosis", &run, &forms);
    for args in [
        &["doctor"][..],
        &["doctor", "-o", "json"],
        &["logs"],
        &["logs", "--previous"],
    ] {
        let run = run_against(&app, &kc, args).await;
        catalogue.check(&args.join(" "), &run, &forms);
    }
    // `--grep` sees lines as shown: it cannot confirm a guess of a value.
    let run = run_against(&app, &kc, &["logs", "--previous", "--grep", &KEY[..12]]).await;
    catalogue.tried += 1;
    if !run.stdout.is_empty() {
        catalogue
            .leaks
            .push(format!("logs --grep matches a value:\n{}", run.all()));
    }
    // What describes the deployment quotes no value, whatever the form.
    let quiet: Vec<Form> = forms
        .iter()
        .map(|f| Form {
            what: f.what.clone(),
            text: f.text.clone(),
            marker: String::new(),
        })
        .collect();
    for args in [
        &["status"][..],
        &["status", "-o", "json"],
        &["history"],
        &["history", "-o", "json"],
        &["secrets", "list"],
        &["secrets", "list", "-o", "json"],
        &["render", "-o", "yaml"],
    ] {
        let args = match args[0] {
            "render" => with_images(args, "2"),
            _ => args.iter().map(|a| a.to_string()).collect(),
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = run_against(&app, &kc, &args).await;
        catalogue.check(&args[..args.len().min(3)].join(" "), &run, &quiet);
    }

    // The pod template's checksum is keyed: the same data under another key
    // gives another checksum, so it cannot confirm a guess of a value.
    let checksum = |run: &Run| {
        run.stdout
            .lines()
            .find(|l| l.contains(kubectl_todo::labels::SECRET_CHECKSUM_ANNOTATION))
            .map(str::to_string)
    };
    let render = with_images(&["render"], "2");
    let render: Vec<&str> = render.iter().map(String::as_str).collect();
    let before = checksum(&run_against(&app, &kc, &render).await.ok());
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "shop");
    let rekey = json!({"metadata": {"annotations": {
        kubectl_todo::secrets::CHECKSUM_KEY_ANNOTATION: "another-key-0123456789",
    }}});
    secrets
        .patch(
            "shop-secrets",
            &PatchParams::default(),
            &Patch::Merge(&rekey),
        )
        .await
        .unwrap();
    let after = checksum(&run_against(&app, &kc, &render).await.ok());
    catalogue.tried += 1;
    if before.is_none() || before == after {
        catalogue.leaks.push(format!(
            "the checksum is not keyed: {before:?} then {after:?}"
        ));
    }

    // A server message echoing the value `secrets set` sent.
    let echoed = [
        ("as sent", NEW.to_string()),
        ("JSON-escaped", json_escaped(NEW)),
        ("base64", STANDARD.encode(NEW)),
        ("a prefix of 14 characters", NEW[..14].to_string()),
    ];
    cluster.emulator.faults().add(kube_emulator::faults::Fault {
        method: Some("PATCH".into()),
        path: Some("/secrets/shop-secrets".into()),
        code: Some(422),
        message: Some(format!(
            "server-echo: {}",
            echoed
                .iter()
                .map(|(_, t)| t.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        )),
        ..Default::default()
    });
    let mut set = against(&app, &kc, &["secrets", "set", "API_KEY", "--stdin"]);
    set.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = set.spawn().unwrap();
    {
        use tokio::io::AsyncWriteExt as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(NEW.as_bytes()).await.unwrap();
    }
    let run = Run::from(child.wait_with_output().await.unwrap());
    let sent: Vec<Form> = echoed
        .iter()
        .map(|(what, text)| Form {
            what: format!("a server message echoing the value {what}"),
            text: text.clone(),
            marker: "server-echo".into(),
        })
        .collect();
    catalogue.check("secrets set (server error)", &run, &sent);

    // A credential plugin that prints a token and fails.
    let plugin = app.path().join("plugin");
    let credential = format!(
        r#"{{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{{"token":"{TOKEN}"}}}}"#
    );
    std::fs::write(
        &plugin,
        format!("#!/bin/sh\necho '{credential}'\necho 'plugin: the session expired' >&2\nexit 1\n"),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut config = kube::config::Kubeconfig::read_from(&kc).unwrap();
    *config.auth_infos[0].auth_info.as_mut().unwrap() = serde_json::from_value(json!({"exec": {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": plugin,
        "interactiveMode": "Never",
    }}))
    .unwrap();
    let plugin_kc = app.path().join("plugin-kubeconfig");
    std::fs::write(&plugin_kc, serde_json::to_string(&config).unwrap()).unwrap();
    let token: Vec<Form> = [
        ("as printed", TOKEN.to_string()),
        ("JSON-escaped", json_escaped(&credential)),
        ("a prefix of 14 characters", TOKEN[..14].to_string()),
    ]
    .into_iter()
    .map(|(what, text)| Form {
        what: format!("the plugin's token {what}"),
        text,
        marker: "plugin: the session expired".into(),
    })
    .collect();
    for args in [&["status"][..], &["secrets", "list"], &["doctor"]] {
        let run = run_against(&app, plugin_kc.to_str().unwrap(), args).await;
        catalogue.check(
            &format!("{} (credential plugin)", args.join(" ")),
            &run,
            &token,
        );
    }

    let leaks = catalogue.leaks.len();
    println!(
        "probes: secret paths: {} tried, {leaks} leaks",
        catalogue.tried
    );
    assert!(
        catalogue.unshown.is_empty(),
        "probes that did not show their line (they prove nothing):\n{}",
        catalogue.unshown.join("\n\n")
    );
    assert!(
        catalogue.leaks.is_empty(),
        "leaks:\n{}",
        catalogue.leaks.join("\n\n")
    );
    assert_eq!(catalogue.tried, 207);
}
