//! A [`Recipe`] as LLB, with the image configuration the Dockerfile would give.
//!
//! Steps follow the Dockerfile frontend's meaning: `WORKDIR` creates the directory,
//! `ENV` values expand `$NAME`, `COPY` copies directory contents and creates the
//! destination, `RUN` is `/bin/sh -c` with the stage's environment, working
//! directory and user, and `ENTRYPOINT` drops an inherited `CMD`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::llb::{CacheMount, Copy, Exec, Graph, SecretMount, State};
use crate::ca;
use crate::dockerfile::instruction;
use crate::error::{Error, Result};
use crate::recipe::{Recipe, Step};

/// `PATH` of an image built `FROM scratch`, as the Dockerfile frontend sets it (with
/// the working directory `/`).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What one stage has become.
#[derive(Debug, Clone)]
pub struct StageState {
    pub fs: State,
    env: Vec<(String, String)>,
    /// Build arguments declared so far (for `RUN`, not the image's configuration).
    args: Vec<(String, String)>,
    cwd: String,
    user: String,
    cmd_set: bool,
    /// The OCI image configuration (`{"architecture", "os", "config", …}`).
    pub image: Value,
}

/// The base image configuration of every `FROM`, fetched before conversion.
pub type BaseConfigs = BTreeMap<String, Value>;

/// The empty image's configuration on `platform`.
pub fn scratch_image(g: &Graph) -> Value {
    let p = g.platform();
    json!({
        "architecture": p.architecture,
        "os": p.os,
        "config": {"Env": [format!("PATH={DEFAULT_PATH}")], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": []},
    })
}

fn config_mut(image: &mut Value) -> &mut Map<String, Value> {
    if !image.get("config").is_some_and(Value::is_object) {
        image["config"] = json!({});
    }
    image["config"]
        .as_object_mut()
        .expect("config is an object")
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Expand `$NAME` and `${NAME}` from `env`.
pub fn expand(v: &str, env: &[(String, String)]) -> String {
    let lookup = |name: &str| {
        env.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let mut out = String::new();
    let mut rest = v;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(inner) = after.strip_prefix('{')
            && let Some(end) = inner.find('}')
        {
            out.push_str(&lookup(&inner[..end]));
            rest = &inner[end + 1..];
            continue;
        }
        let n = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if n == 0 {
            out.push('$');
        } else {
            out.push_str(&lookup(&after[..n]));
        }
        rest = &after[n..];
    }
    out.push_str(rest);
    out
}

/// `dest` of a step against the working directory; a trailing `/` (or `.`) means
/// "into this directory" and is kept.
fn resolve(cwd: &str, dest: &str) -> String {
    let into = dest.ends_with('/') || dest == "." || dest.ends_with("/.");
    let joined = if dest.starts_with('/') {
        dest.to_string()
    } else {
        format!("{}/{dest}", cwd.trim_end_matches('/'))
    };
    let mut parts: Vec<&str> = Vec::new();
    for p in joined.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut s = format!("/{}", parts.join("/"));
    if into && s != "/" {
        s.push('/');
    }
    s
}

fn start(g: &mut Graph, from: &str, stage: &str, bases: &BaseConfigs) -> StageState {
    let fs = g.image(from, &format!("[{stage}] FROM {from}"));
    let image = if from == "scratch" {
        scratch_image(g)
    } else {
        bases.get(from).cloned().unwrap_or_else(|| scratch_image(g))
    };
    let cfg = image.get("config");
    let env = strings(cfg.and_then(|c| c.get("Env")))
        .into_iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv, String::new()),
        })
        .collect();
    let cwd = cfg
        .and_then(|c| c.get("WorkingDir"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("/")
        .to_string();
    let user = cfg
        .and_then(|c| c.get("User"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    StageState {
        fs,
        env,
        args: Vec::new(),
        cwd,
        user,
        cmd_set: false,
        image,
    }
}

/// The environment of a `RUN`: build arguments, overridden by `ENV` of the same name.
fn run_env(args: &[(String, String)], env: &[(String, String)]) -> Vec<String> {
    let mut v: Vec<(String, String)> = args
        .iter()
        .filter(|(k, _)| !env.iter().any(|(e, _)| e == k))
        .cloned()
        .collect();
    v.extend(env.iter().cloned());
    env_strings(&v)
}

fn env_strings(env: &[(String, String)]) -> Vec<String> {
    env.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// Convert the stages up to `target` (the last one when `None`); returns the final
/// stage. `context` is the build context; `bases` holds every base image's
/// configuration; `build_args` the values of the build arguments.
pub fn convert(
    g: &mut Graph,
    r: &Recipe,
    context: &State,
    bases: &BaseConfigs,
    target: Option<&str>,
    build_args: &BTreeMap<String, String>,
) -> Result<StageState> {
    let last = match target {
        Some(t) => r
            .stages
            .iter()
            .position(|s| s.name == t)
            .ok_or_else(|| Error::Invalid {
                what: format!("target `{t}`"),
                reason: format!(
                    "the generated build has the stages {}",
                    r.stages
                        .iter()
                        .map(|s| s.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                fix: "pass one of those stages as the target, or none for the image".into(),
            })?,
        None => r.stages.len() - 1,
    };
    let mut done: BTreeMap<&str, StageState> = BTreeMap::new();
    let mut result = None;
    for stage in &r.stages[..=last] {
        let mut st = start(g, &stage.from, stage.name, bases);
        let n = stage.steps.len() + 1;
        for (i, step) in stage.steps.iter().enumerate() {
            let name = format!("[{} {}/{n}] {}", stage.name, i + 2, instruction(step));
            apply(g, &mut st, step, &name, context, &done, build_args)?;
        }
        let cfg = config_mut(&mut st.image);
        cfg.insert("Env".into(), json!(env_strings(&st.env)));
        if !st.user.is_empty() {
            cfg.insert("User".into(), json!(st.user));
        }
        done.insert(stage.name, st.clone());
        result = Some(st);
    }
    Ok(result.expect("a recipe has a stage"))
}

fn apply(
    g: &mut Graph,
    st: &mut StageState,
    step: &Step,
    name: &str,
    context: &State,
    done: &BTreeMap<&str, StageState>,
    build_args: &BTreeMap<String, String>,
) -> Result<()> {
    match step {
        Step::Arg(name) => {
            // Like the Dockerfile frontend: an argument without a value is unset.
            if let Some(v) = build_args.get(name) {
                st.args.retain(|(k, _)| k != name);
                st.args.push((name.clone(), v.clone()));
            }
        }
        Step::Workdir(d) => {
            st.cwd = resolve(&st.cwd, d).trim_end_matches('/').to_string();
            if st.cwd.is_empty() {
                st.cwd = "/".into();
            }
            st.fs = g.mkdir(&st.fs, &st.cwd, name);
            config_mut(&mut st.image).insert("WorkingDir".into(), json!(st.cwd));
        }
        Step::Env(pairs) => {
            for (k, v) in pairs {
                let v = expand(v, &st.env);
                match st.env.iter_mut().find(|(ek, _)| ek == k) {
                    Some(e) => e.1 = v,
                    None => st.env.push((k.clone(), v)),
                }
            }
        }
        Step::Copy { from, srcs, dest } => {
            let src_state = match from {
                None => context.clone(),
                Some(f) => done
                    .get(f)
                    .map(|s| s.fs.clone())
                    .ok_or_else(|| Error::Invalid {
                        what: format!("COPY --from={f}"),
                        reason: "no earlier stage has that name".into(),
                        fix: "report this bug: generated recipes only copy from earlier stages"
                            .into(),
                    })?,
            };
            let dest = resolve(&st.cwd, dest);
            for (i, src) in srcs.iter().enumerate() {
                let src = resolve("/", src);
                let src = if src.len() > 1 {
                    src.trim_end_matches('/').to_string()
                } else {
                    src
                };
                st.fs = g.copy(
                    &st.fs,
                    &src_state,
                    &Copy {
                        src,
                        dest: dest.clone(),
                        unpack: false,
                    },
                    (i + 1 == srcs.len()).then_some(name),
                );
            }
        }
        Step::Run {
            caches,
            cmd,
            ca_cert,
            ..
        } => {
            let mut env = run_env(&st.args, &st.env);
            let mut secrets = Vec::new();
            if *ca_cert {
                env.extend(ca::ENV.iter().map(|v| format!("{v}={}", ca::TARGET)));
                secrets.push(SecretMount {
                    target: ca::TARGET.into(),
                    id: ca::SECRET_ID.into(),
                });
            }
            st.fs = g.exec(
                &st.fs,
                &Exec {
                    args: vec!["/bin/sh".into(), "-c".into(), cmd.clone()],
                    env,
                    secrets,
                    cwd: st.cwd.clone(),
                    user: st.user.clone(),
                    caches: caches
                        .iter()
                        .map(|t| CacheMount {
                            target: t.to_string(),
                            id: t.to_string(),
                        })
                        .collect(),
                },
                name,
            );
        }
        Step::User(u) => st.user = u.to_string(),
        Step::Expose(p) => {
            let cfg = config_mut(&mut st.image);
            let ports = cfg.entry("ExposedPorts").or_insert_with(|| json!({}));
            if !ports.is_object() {
                *ports = json!({});
            }
            ports[format!("{p}/tcp")] = json!({});
        }
        Step::Cmd(args) => {
            config_mut(&mut st.image).insert("Cmd".into(), json!(args));
            st.cmd_set = true;
        }
        Step::Entrypoint(args) => {
            let cfg = config_mut(&mut st.image);
            cfg.insert("Entrypoint".into(), json!(args));
            if !st.cmd_set {
                cfg.insert("Cmd".into(), Value::Null);
            }
        }
    }
    Ok(())
}

/// Put `labels` on the image configuration (over the base image's).
pub fn set_labels(image: &mut Value, labels: &BTreeMap<String, String>) {
    let cfg = config_mut(image);
    let l = cfg.entry("Labels").or_insert_with(|| json!({}));
    if !l.is_object() {
        *l = json!({});
    }
    for (k, v) in labels {
        l[k] = json!(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_expand_earlier_variables() {
        let env = vec![("PATH".to_string(), "/bin".to_string())];
        assert_eq!(expand("/opt/venv/bin:$PATH", &env), "/opt/venv/bin:/bin");
        assert_eq!(expand("${PATH}:x", &env), "/bin:x");
        assert_eq!(expand("$NOPE-a", &env), "-a");
        assert_eq!(expand("cost $", &env), "cost $");
    }

    #[test]
    fn destinations_resolve_against_the_working_directory() {
        assert_eq!(resolve("/app", "./"), "/app/");
        assert_eq!(resolve("/app", "."), "/app/");
        assert_eq!(resolve("/app", "./public"), "/app/public");
        assert_eq!(resolve("/app", "/etc/ssl/certs/"), "/etc/ssl/certs/");
        assert_eq!(resolve("/", "."), "/");
        assert_eq!(resolve("/", "go.sum*"), "/go.sum*");
    }
}
