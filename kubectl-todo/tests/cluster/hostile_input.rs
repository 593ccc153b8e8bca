//! Bad and hostile input, each refused at once with the rule it breaks,
//! before anything reaches the cluster: `up` runs against the emulator, and
//! afterwards the cluster holds exactly what it held before.

use crate::harness;

use harness::{App, Cluster, run_against};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::api::ListParams;

const WEB: &str = "name: shop\ncomponents:\n  - name: web\n    port: 3000\n";

fn with(extra: &str) -> String {
    format!("{WEB}{extra}")
}

/// What the cluster holds, by name: namespaces and Secrets.
async fn contents(cluster: &Cluster) -> Vec<String> {
    let lp = ListParams::default();
    let namespaces = Api::<Namespace>::all(cluster.client.clone())
        .list(&lp)
        .await
        .unwrap();
    let secrets = Api::<Secret>::all(cluster.client.clone())
        .list(&lp)
        .await
        .unwrap();
    namespaces
        .items
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .chain(secrets.items.iter().filter_map(|s| s.metadata.name.clone()))
        .collect()
}

/// The files under `dir` with their sizes, symbolic links not followed.
fn on_disk(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.path().symlink_metadata().unwrap();
            if meta.is_dir() {
                pending.push(entry.path());
            }
            found.push(format!("{} {}", entry.path().display(), meta.len()));
        }
    }
    found.sort();
    found
}

/// The catalogue of bad inputs (the probes): each is refused with
/// the rule it breaks, with a non-zero exit, the cluster and the disk as
/// they were. Prints `probes: bad inputs: N tried, N refused cleanly`
/// (`--no-capture`) and fails listing every miss.
#[tokio::test(flavor = "multi_thread")]
async fn every_bad_input_is_refused_with_its_rule_and_nothing_changes() {
    let cluster = Cluster::start().await;
    let kubeconfig = cluster.kubeconfig().to_string();
    let before = contents(&cluster).await;
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("id_rsa"), "canary-private-key").unwrap();
    let outside_path = outside.path().display().to_string();
    let files: Vec<(String, &str)> = vec![
        (
            with("    path: ../..\n"),
            "leads outside the repository through `..`",
        ),
        (
            with(&format!("    path: {outside_path}\n")),
            "is outside the repository",
        ),
        (with("    path: linked\n"), "through a symbolic link"),
        (
            with(&format!("    dockerfile: {outside_path}/id_rsa\n")),
            "the dockerfile",
        ),
        (
            format!(
                "{WEB}    service: {{type: NodePort, nodePort: 30001}}\n  - name: api\n    port: 8000\n    service: {{type: NodePort, nodePort: 30001}}\n"
            ),
            "is already the node port of component `web`",
        ),
        (
            format!("{WEB}secret:\n  keys:\n    - name: K\n      generateBytes: 4000000000\n"),
            "above the limit of 1048576",
        ),
        (
            format!(
                "name: {}\ncomponents:\n  - name: w\n    port: 80\n",
                "a".repeat(63)
            ),
            "is 63 characters long",
        ),
        (
            format!(
                "name: {}\ncomponents:\n  - name: w\n    port: 80\n",
                "a".repeat(62)
            ),
            "may have at most 61",
        ),
        (with("    writablePaths: [/]\n"), "is the root directory"),
        (with("    writablePaths: [/var/../etc]\n"), "holds `..`"),
        (
            with("    healthPath: \"/a b\"\n"),
            "no whitespace or control characters",
        ),
        (
            with("    readyPath: \"/a\\u0007\"\n"),
            "no whitespace or control characters",
        ),
        (
            format!("{WEB}secret:\n  keys:\n    - name: K\n      pattern: \"(\"\n"),
            "not a valid regular expression",
        ),
        (
            with("    resources:\n      requests: {cpu: \"2\"}\n      limits: {cpu: 1}\n"),
            "is above its limit",
        ),
        (
            with("    resources:\n      requests: {memory: 2Gi}\n      limits: {memory: 1Gi}\n"),
            "is above its limit",
        ),
        (
            "name: Shop\ncomponents:\n  - {name: w, port: 80}\n".into(),
            "must be 1-63 lowercase letters",
        ),
        (
            "name: -shop\ncomponents:\n  - {name: w, port: 80}\n".into(),
            "must be 1-63 lowercase letters",
        ),
        (
            "name: ''\ncomponents:\n  - {name: w, port: 80}\n".into(),
            "must be 1-63 lowercase letters",
        ),
        (with("    writablePaths: [..]\n"), "must be absolute"),
        (
            with("    writablePaths: [relative/x]\n"),
            "must be absolute",
        ),
        (
            with("    healthPath: \"/a\\tb\"\n"),
            "no whitespace or control characters",
        ),
        (with("    healthPath: healthz\n"), "must start with `/`"),
        (
            format!("{WEB}secret:\n  keys:\n    - name: K\n      pattern: \"[a-\"\n"),
            "not a valid regular expression",
        ),
        (
            format!("{WEB}  - name: web\n    port: 3001\n"),
            "is declared twice",
        ),
        (
            with("    env: {\"1BAD\": x}\n"),
            "is not a valid environment variable name",
        ),
        (
            with("    port: 3001\n"),
            "todo.yaml:5:5: the key `port` is written twice in the same mapping (first at line 4, column 5): remove one of the two `port:` keys",
        ),
        (
            with("    writablePaths: [/var/x, /var//x]\n"),
            "todo.yaml:5:29: writable paths `/var/x` (line 5, column 21) and `/var//x` are both `/var/x`: keep one of the two",
        ),
        (
            with("    writablePaths: [/var/x, /var/x/]\n"),
            "todo.yaml:5:29: writable paths `/var/x` (line 5, column 21) and `/var/x/` are both `/var/x`: keep one of the two",
        ),
        (
            with("    baseImages: {runtime: \"node:20@sha256:abc\"}\n"),
            "`baseImages.runtime` `node:20@sha256:abc` of component `web` has the digest `sha256:abc`: a sha256 digest is 64 lowercase hex digits",
        ),
    ];
    // Every probe is tried; the misses are listed together at the end.
    let mut tried = 0;
    let mut misses: Vec<String> = Vec::new();
    let mut check = |what: String,
                     run: &crate::harness::Run,
                     said: &[&str],
                     code: i32,
                     files: (Vec<String>, Vec<String>)| {
        tried += 1;
        let mut wrong = Vec::new();
        if run.code != Some(code) {
            wrong.push(format!("exit {:?}, not {code}", run.code));
        }
        for rule in said {
            if !run.stderr.contains(rule) {
                wrong.push(format!("no {rule:?}"));
            }
        }
        if run.stderr.contains("canary-private-key") || run.stdout.contains("canary-private-key") {
            wrong.push("printed a file from outside the repository".into());
        }
        if files.0 != files.1 {
            wrong.push(format!("changed the disk: {:?} -> {:?}", files.0, files.1));
        }
        if !wrong.is_empty() {
            misses.push(format!("{what}: {}:\n{}", wrong.join(", "), run.stderr));
        }
    };
    for (text, rule) in &files {
        let app = App::with_file(text);
        std::os::unix::fs::symlink(outside.path(), app.path().join("linked")).unwrap();
        let disk = on_disk(app.path());
        let run = run_against(&app, &kubeconfig, &["up"]).await;
        // Located: the file, line and column of the value.
        let said = [*rule, "todo.yaml:"];
        check(text.clone(), &run, &said, 1, (disk, on_disk(app.path())));
    }
    // A huge file is refused by its size, unread (sparse: no disk, no memory).
    let app = App::with_file("");
    std::fs::File::create(app.path().join("todo.yaml"))
        .unwrap()
        .set_len(200 * 1024 * 1024)
        .unwrap();
    let disk = on_disk(app.path());
    let run = run_against(&app, &kubeconfig, &["up"]).await;
    check(
        "a 200 MB todo.yaml".into(),
        &run,
        &["is larger than 1048576 bytes"],
        1,
        (disk, on_disk(app.path())),
    );
    let app = App::with_file(WEB);
    let long_namespace = "a".repeat(64);
    let upper_digest = format!("web=shop:1@sha256:{}", "A".repeat(64));
    let short_sha512 = format!("web=shop@sha512:{}", "a".repeat(64));
    let md5 = format!("web=shop@md5:{}", "a".repeat(32));
    for (args, rule, code) in [
        (
            &["up", "--image", "web=UPPER:tag"][..],
            "uppercase letters",
            2,
        ),
        (&["up", "--image", "web="], "is not COMPONENT=REF", 2),
        (&["up", "--image", "=shop:1"], "is not COMPONENT=REF", 2),
        (
            &["up", "--image", "web=shop web:1"],
            "is not `[host[:port]/]name",
            2,
        ),
        (
            &["up", "--image", "nosuch=shop:1"],
            "names component `nosuch`, which the project does not have",
            1,
        ),
        (&["up", "--push", ""], "the registry is empty", 2),
        (
            &["up", "--push", "https://ghcr.io"],
            "without `https://`",
            2,
        ),
        (&["up", "--push", "GHCR.io/Me"], "is not a registry", 2),
        (&["up", "-n", ""], "is not a namespace name", 2),
        (&["up", "-n", "Prod"], "is not a namespace name", 2),
        (&["up", "-n", "a_b"], "is not a namespace name", 2),
        (&["up", "-n", &long_namespace], "is not a namespace name", 2),
        (
            &["up", "--image", "web=shop:1@sha256:abc"],
            "has the digest `sha256:abc`: a sha256 digest is 64 lowercase hex digits (this one has 3 characters)",
            2,
        ),
        (
            &["up", "--image", &upper_digest],
            "a sha256 digest is 64 lowercase hex digits (this one has 64 characters)",
            2,
        ),
        (
            &["up", "--image", &short_sha512],
            "a sha512 digest is 128 lowercase hex digits",
            2,
        ),
        (
            &["up", "--image", &md5],
            "whose algorithm is not sha256, sha384 or sha512",
            2,
        ),
    ] {
        let disk = on_disk(app.path());
        let run = run_against(&app, &kubeconfig, args).await;
        check(
            format!("{args:?}"),
            &run,
            &[rule],
            code,
            (disk, on_disk(app.path())),
        );
    }
    let refused = tried - misses.len();
    println!("probes: bad inputs: {tried} tried, {refused} refused cleanly");
    assert!(
        misses.is_empty(),
        "not refused cleanly:\n{}",
        misses.join("\n\n")
    );
    assert_eq!(tried, 46);
    assert_eq!(
        contents(&cluster).await,
        before,
        "a refused run changed the cluster"
    );
}
