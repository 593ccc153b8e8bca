//! A crashing app that prints its Secret's values in every form a value
//! travels in (each line of a PEM key, base64, hex, JSON-escaped,
//! URL-encoded, cut short): doctor quotes its log with all of them redacted.
//! `up` quotes the same diagnosis (`doctor::pods`) while it waits.

use super::doctor_support;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use doctor_support::{NS, start};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::api::PostParams;
use kube_emulator::Config;
use kubectl_todo::labels;
use serde_json::json;

const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCcanarypem1\nBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKjcanarypem2\n-----END PRIVATE KEY-----";
/// Its base64 holds `+` and `/`, so the URL-safe form differs.
const KEY: &str = "sk-canary>>>???~~~redaction-key";

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crashing_app_printing_encoded_values_is_quoted_redacted() {
    let s = start(Config::docker()).await;
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap();
    Api::<Namespace>::all(s.client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "todo-secrets", "labels": labels::project("todo")},
        "stringData": {"DATABASE_URL": PEM, "BETTER_AUTH_SECRET": "canary-auth-0123456789", "OPENAI_API_KEY": KEY},
    }))
    .unwrap();
    Api::<Secret>::namespaced(s.client.clone(), NS)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let image = kube_emulator::testimage::busybox_image("doctor-tests")
        .await
        .expect("busybox");
    s.load(&image).await;
    let url_encoded: String = KEY
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    // The PEM's two middle lines come from the environment, line by line.
    let script = format!(
        "echo \"$DATABASE_URL\" | sed -n 2,3p; \
         printf '%s\\n' 'b64 {} url {} nl {}' 'hex {} json {}' 'url {} cut {}...'; exit 1",
        STANDARD.encode(KEY),
        URL_SAFE_NO_PAD.encode(KEY),
        STANDARD.encode(format!("{KEY}\n")),
        hex(KEY),
        serde_json::to_string(PEM).unwrap(),
        url_encoded,
        &KEY[..14],
    );
    let env = ["DATABASE_URL", "OPENAI_API_KEY"].map(
        |k| json!({"name": k, "valueFrom": {"secretKeyRef": {"name": "todo-secrets", "key": k}}}),
    );
    s.deployment(
        "backend",
        &image,
        json!({"command": ["sh", "-c", script], "env": env}),
        json!({}),
    )
    .await;
    let (run, f) = s
        .wait_for("pod.crash-loop", &["--component", "backend"])
        .await;
    let message = f["message"].as_str().unwrap_or_default();
    assert!(message.contains("last lines: [redacted] | [redacted] | b64 [redacted] url [redacted] nl [redacted] | hex [redacted] json "), "{message}");
    assert!(
        message.contains("| url [redacted] cut [redacted]..."),
        "{message}"
    );
    let human = s.doctor(&["--component", "backend"]).await;
    for out in [&run.stdout, &run.stderr, &human.stdout, &human.stderr] {
        for canary in [
            "canary",
            "Y2FuYXJ5",
            "63616e617279",
            "MIIEvQIBADANBgkqhkiG9w0B",
        ] {
            assert!(!out.contains(canary), "{canary} leaked:\n{out}");
        }
    }
}
