//! `image-builder frontend`: a BuildKit gateway frontend.
//!
//! BuildKit runs the frontend image when a build file starts with
//! `# syntax=<frontend image>`. The frontend reads the build file (the component
//! section of the project file, in YAML) and the context, detects the stack, turns
//! the shared [`crate::recipe`] into LLB and returns the solved result with its image
//! configuration. A component with its own Dockerfile is handed to BuildKit's
//! Dockerfile frontend.

pub mod context;
pub mod convert;
pub mod gateway;
pub mod llb;

use std::collections::{BTreeMap, HashMap};

use bollard_buildkit_proto::google::rpc::Status as RpcStatus;
use tonic::Status;

use self::context::{ContextTree, Scope};
use self::gateway::{
    Bridge, GatewayResult, ResolveImageConfigRequest, ReturnRequest, SolveRequest,
};
use self::llb::{Graph, State};
use crate::build::DIGEST_LABEL;
use crate::detect;
use crate::digest::{self, DigestInputs};
use crate::dockerfile;
use crate::error::Error;
use crate::ignore::{self, DEFAULT_EXCLUDES, Matcher};
use crate::recipe::{self, GenOptions};
use crate::spec::{ComponentSpec, StackKind};

/// The build file's usual name in a component.
pub const BUILD_FILE: &str = "todo.build.yaml";
/// Result metadata key BuildKit's image exporter reads the configuration from.
const CONFIG_KEY: &str = "containerimage.config";
/// Component name when the build file does not give one.
const DEFAULT_COMPONENT: &str = "app";

/// What BuildKit passes in the frontend's environment.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    pub opts: HashMap<String, String>,
    pub session: String,
}

impl Invocation {
    /// `BUILDKIT_FRONTEND_OPT_<n>=key=value` and `BUILDKIT_SESSION_ID`.
    pub fn from_env(vars: impl Iterator<Item = (String, String)>) -> Self {
        let mut inv = Invocation::default();
        for (k, v) in vars {
            if k.starts_with("BUILDKIT_FRONTEND_OPT_") {
                let (key, value) = v.split_once('=').unwrap_or((v.as_str(), ""));
                inv.opts.insert(key.to_string(), value.to_string());
            } else if k == "BUILDKIT_SESSION_ID" {
                inv.session = v;
            }
        }
        inv
    }

    fn opt(&self, k: &str) -> Option<&str> {
        self.opts
            .get(k)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// Options with a prefix (`build-arg:`, `label:`), prefix removed.
    fn prefixed(&self, prefix: &str) -> BTreeMap<String, String> {
        self.opts
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_string(), v.clone())))
            .collect()
    }
}

/// Run as a frontend: answer BuildKit on stdin/stdout. Returns the exit code.
pub async fn serve() -> i32 {
    if std::env::var_os("BUILDKIT_SESSION_ID").is_none() {
        eprintln!(
            "error: `image-builder frontend` is run by BuildKit, not by hand\n  fix: build the frontend image (`image-builder frontend-image`) and start a build file with `# syntax=<that image>`, or use `image-builder build --via frontend`"
        );
        return crate::error::exit::USAGE;
    }
    if let Err(e) = drop_root() {
        eprintln!("error: cannot give up root: {e}");
        return crate::error::exit::INTERNAL;
    }
    let inv = Invocation::from_env(std::env::vars());
    let mut bridge = match Bridge::over_stdio().await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot talk to BuildKit on stdin/stdout: {e}");
            return crate::error::exit::ENGINE;
        }
    };
    let req = match build(&mut bridge, &inv).await {
        Ok(result) => ReturnRequest {
            result: Some(result),
            error: None,
        },
        Err(s) => ReturnRequest {
            result: None,
            error: Some(RpcStatus {
                code: s.code() as i32,
                message: s.message().to_string(),
                details: Vec::new(),
            }),
        },
    };
    match bridge.ret(req).await {
        Ok(_) => crate::error::exit::OK,
        Err(e) => {
            eprintln!("error: BuildKit did not take the result: {}", e.message());
            crate::error::exit::INTERNAL
        }
    }
}

/// BuildKit (Docker 20.10's, at least) starts the frontend as root whatever user
/// the image names; the frontend needs nothing but its open stdin and stdout, so it
/// continues as the image's numeric user.
fn drop_root() -> std::io::Result<()> {
    // SAFETY: plain system calls on this process's credentials, made before any
    // other thread of ours exists.
    unsafe {
        if libc::geteuid() != 0 {
            return Ok(());
        }
        if libc::setgroups(0, std::ptr::null()) != 0
            || libc::setgid(1001) != 0
            || libc::setuid(1001) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn ours(e: Error) -> Status {
    Status::invalid_argument(e.to_string())
}

async fn solve(b: &mut Bridge, g: &Graph, out: &State) -> Result<GatewayResult, Status> {
    Ok(b.solve(SolveRequest {
        definition: Some(g.definition(out)),
        allow_result_return: true,
        ..Default::default()
    })
    .await?
    .into_result())
}

async fn read_opt(b: &mut Bridge, r#ref: &str, path: &str) -> Option<Vec<u8>> {
    b.read_file(r#ref, path, None).await.ok()
}

/// Where the context and the build file are.
struct Inputs {
    context: State,
    context_ref: String,
    build_file: Vec<u8>,
    dockerignore: String,
}

fn local(g: &mut Graph, name: &str, session: &str, attrs: &[(&str, String)], label: &str) -> State {
    let mut a: HashMap<String, String> = HashMap::from([
        ("local.session".to_string(), session.to_string()),
        ("local.sharedkeyhint".to_string(), name.to_string()),
    ]);
    for (k, v) in attrs {
        a.insert(k.to_string(), v.clone());
    }
    g.source(&format!("local://{name}"), a, Some(label))
}

/// `digest_given`: the client sent the input digest, so (for an upload, which the
/// client filtered already) the `.dockerignore` is not needed.
async fn inputs(
    b: &mut Bridge,
    g: &mut Graph,
    inv: &Invocation,
    digest_given: bool,
) -> Result<Inputs, Status> {
    let filename = inv.opt("filename").unwrap_or("Dockerfile").to_string();
    let missing = |what: &str| {
        ours(Error::Invalid {
            what: format!("build file `{filename}`"),
            reason: format!("it is not in the {what}"),
            fix: format!(
                "pass the build file as the Dockerfile, e.g. `docker build -f app/{BUILD_FILE} app`"
            ),
        })
    };
    if let Some(url) = inv
        .opt("context")
        .filter(|c| c.starts_with("http://") || c.starts_with("https://"))
    {
        // An uploaded context (the Engine API's tar): the same source the Dockerfile
        // frontend fetched, unpacked into an empty filesystem.
        let http = g.source(
            url,
            HashMap::from([("http.filename".to_string(), "context".to_string())]),
            None,
        );
        let context = g.copy(
            &State::Scratch,
            &http,
            &llb::Copy {
                src: "/context".into(),
                dest: "/".into(),
                unpack: true,
            },
            Some("[internal] load build context"),
        );
        let r = solve(b, g, &context).await?;
        let context_ref = r.ref_id().to_string();
        let build_file = read_opt(b, &context_ref, &filename)
            .await
            .ok_or_else(|| missing("uploaded context"))?;
        let dockerignore = if digest_given {
            Vec::new()
        } else {
            read_opt(b, &context_ref, ".dockerignore")
                .await
                .unwrap_or_default()
        };
        return Ok(Inputs {
            context,
            context_ref,
            build_file,
            dockerignore: String::from_utf8_lossy(&dockerignore).into_owned(),
        });
    }
    // Local directories synced from the client's session (docker buildx, buildctl).
    let ctx_name = inv.opt("contextkey").unwrap_or("context").to_string();
    let df_name = inv.opt("dockerfilekey").unwrap_or("dockerfile").to_string();
    let df = local(
        g,
        &df_name,
        &inv.session,
        &[(
            "local.includepattern",
            serde_json::json!([filename]).to_string(),
        )],
        "[internal] load build file",
    );
    let r = solve(b, g, &df).await?;
    let build_file = read_opt(b, r.ref_id(), &filename)
        .await
        .ok_or_else(|| missing("build file directory"))?;
    let di = local(
        g,
        &ctx_name,
        &inv.session,
        &[("local.includepattern", r#"[".dockerignore"]"#.to_string())],
        "[internal] load .dockerignore",
    );
    let r = solve(b, g, &di).await?;
    let dockerignore = read_opt(b, r.ref_id(), ".dockerignore")
        .await
        .unwrap_or_default();
    let dockerignore = String::from_utf8_lossy(&dockerignore).into_owned();
    let mut excludes: Vec<String> = DEFAULT_EXCLUDES.iter().map(|s| s.to_string()).collect();
    excludes.extend(ignore::read_all(&dockerignore));
    let context = local(
        g,
        &ctx_name,
        &inv.session,
        &[(
            "local.excludepatterns",
            serde_json::to_string(&excludes).expect("strings serialise"),
        )],
        "[internal] load build context",
    );
    let r = solve(b, g, &context).await?;
    Ok(Inputs {
        context,
        context_ref: r.ref_id().to_string(),
        build_file,
        dockerignore,
    })
}

/// Parse a build file: the component section of the project file, in YAML.
pub fn parse_build_file(text: &str) -> Result<ComponentSpec, Error> {
    if text
        .trim()
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Ok(ComponentSpec::default());
    }
    let spec: ComponentSpec = serde_yaml_ng::from_str(text).map_err(|e| Error::Invalid {
        what: "build file".into(),
        reason: format!("it is not a component section: {e}"),
        fix: "write the component's settings (stack, port, base_images, build_args, …) as in the project file; see docs/frontend.md".into(),
    })?;
    for (key, image) in [
        ("base_images.builder", &spec.base_images.builder),
        ("base_images.runtime", &spec.base_images.runtime),
    ] {
        if let Some(image) = image
            && let Err(why) = crate::reference::check(image)
        {
            return Err(Error::Invalid {
                what: "build file".into(),
                reason: format!("`{key}` `{image}` {why}"),
                fix: format!("write `{key}` as `docker pull` takes it, e.g. `node:20-alpine`"),
            });
        }
    }
    Ok(spec)
}

async fn build(b: &mut Bridge, inv: &Invocation) -> Result<GatewayResult, Status> {
    let platform_opt = inv.opt("platform").map(str::to_string);
    let mut g = Graph::new(
        platform_opt
            .as_deref()
            .map(llb::platform)
            .unwrap_or_else(llb::host_platform),
    );
    // A client that computed the input digest (image-builder does) sends it as the
    // label; then only what detection reads is fetched.
    let digest_given = inv.opts.contains_key(&format!("label:{DIGEST_LABEL}"));
    let inp = inputs(b, &mut g, inv, digest_given).await?;
    let spec = parse_build_file(&String::from_utf8_lossy(&inp.build_file)).map_err(ours)?;
    let matcher = Matcher::from_dockerignore(&inp.dockerignore, true).map_err(ours)?;
    let scope = if digest_given {
        Scope::Detection
    } else {
        Scope::Full
    };
    let mut tree = ContextTree::load(b, &inp.context_ref, &matcher, scope)
        .await
        .map_err(ours)?;
    // Python and Node detection read the app's sources (entry points, NEXT_PUBLIC_*
    // names), not only the top-level files: they see the whole context.
    if scope == Scope::Detection
        && ["package.json", "requirements.txt", "pyproject.toml"]
            .iter()
            .any(|f| detect::Tree::is_file(&tree, f))
    {
        tree = ContextTree::load(b, &inp.context_ref, &matcher, Scope::Full)
            .await
            .map_err(ours)?;
    }
    let detected = detect::detect_in(&tree, &spec).map_err(ours)?;
    // What the stack keeps out of the context is out of its digest and its copies,
    // as on the Dockerfile path.
    let stack_excludes = ignore::stack_excludes(detected.stack);
    if !stack_excludes.is_empty() {
        let matcher = Matcher::for_stack(&inp.dockerignore, true, stack_excludes).map_err(ours)?;
        tree = ContextTree::load(b, &inp.context_ref, &matcher, Scope::Full)
            .await
            .map_err(ours)?;
    }
    crate::plan::python_version_check(&detected, &spec.base_images).map_err(ours)?;
    for n in &detected.notes {
        eprintln!("note: {n}");
    }
    let mut build_args = spec.build_args.clone();
    build_args.extend(inv.prefixed("build-arg:"));
    crate::spec::check_build_arg_names(&build_args).map_err(ours)?;
    let target = inv
        .opt("target")
        .map(str::to_string)
        .or(spec.target.clone());
    let platform = platform_opt.or(spec.platform.clone());
    let mut labels = BTreeMap::new();

    if detected.stack == StackKind::Dockerfile {
        let rel = detected
            .dockerfile_path
            .clone()
            .unwrap_or_else(|| "Dockerfile".into())
            .to_string_lossy()
            .into_owned();
        let mut opts = inv.opts.clone();
        if !digest_given {
            let text = detect::Tree::read(&tree, &rel)
                .map_err(ours)?
                .unwrap_or_default();
            let d = digest::input_digest(
                &tree.hashed(),
                &DigestInputs {
                    dockerfile: &text,
                    build_args: &build_args,
                    target: target.as_deref(),
                    platform: platform.as_deref(),
                    ca_cert: None,
                },
            );
            opts.insert(format!("label:{DIGEST_LABEL}"), format!("sha256:{d}"));
        }
        opts.remove("source");
        opts.remove("cmdline");
        opts.insert("filename".into(), rel);
        return Ok(b
            .solve(SolveRequest {
                frontend: "dockerfile.v0".into(),
                frontend_opt: opts,
                allow_result_return: true,
                ..Default::default()
            })
            .await?
            .into_result());
    }

    let component = spec
        .name
        .clone()
        .unwrap_or_else(|| DEFAULT_COMPONENT.into());
    let port = spec.port.unwrap_or_else(|| detected.stack.default_port());
    let r = recipe::recipe(
        &detected,
        &GenOptions {
            component: &component,
            port,
            base: &spec.base_images,
            cache_mounts: true,
            ca_cert: spec.ca_cert.is_some(),
            command: spec.command.as_deref(),
            build_args: build_args.keys().cloned().collect(),
            // The build file travels in the uploaded context under the synthetic name.
            top_level: recipe::top_level(
                tree.paths()
                    .filter(|(p, _)| !recipe::SYNTHETIC.split(' ').any(|x| x == *p)),
            ),
        },
    )
    .expect("a generated stack has a recipe");
    if !digest_given {
        let d = digest::input_digest(
            &tree.hashed(),
            &DigestInputs {
                dockerfile: &dockerfile::render(&r),
                build_args: &build_args,
                target: target.as_deref(),
                platform: platform.as_deref(),
                ca_cert: None,
            },
        );
        labels.insert(DIGEST_LABEL.to_string(), format!("sha256:{d}"));
    }
    labels.extend(inv.prefixed("label:"));

    let mut bases = convert::BaseConfigs::new();
    for st in &r.stages {
        if st.from == "scratch" || bases.contains_key(&st.from) {
            continue;
        }
        let resp = b
            .resolve_image_config(ResolveImageConfigRequest {
                r#ref: llb::normalize_image(&st.from),
                platform: Some(g.platform().clone()),
                resolve_mode: "default".into(),
                log_name: format!("[internal] load metadata for {}", st.from),
            })
            .await?;
        let cfg: serde_json::Value = serde_json::from_slice(&resp.config).map_err(|e| {
            Status::internal(format!("the configuration of {} is not JSON: {e}", st.from))
        })?;
        bases.insert(st.from.clone(), cfg);
    }
    let mut fin = convert::convert(
        &mut g,
        &r,
        &inp.context,
        &bases,
        target.as_deref(),
        &build_args,
    )
    .map_err(ours)?;
    convert::set_labels(&mut fin.image, &labels);
    let mut result = solve(b, &g, &fin.fs).await?;
    result.metadata.insert(
        CONFIG_KEY.into(),
        serde_json::to_vec(&fin.image).expect("JSON serialises"),
    );
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_come_from_the_environment() {
        let inv = Invocation::from_env(
            [
                ("BUILDKIT_FRONTEND_OPT_0", "filename=todo.build.yaml"),
                ("BUILDKIT_FRONTEND_OPT_1", "build-arg:A=b=c"),
                ("BUILDKIT_FRONTEND_OPT_2", "label:x=y"),
                ("BUILDKIT_SESSION_ID", "s1"),
                ("HOME", "/"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        assert_eq!(inv.opt("filename"), Some("todo.build.yaml"));
        assert_eq!(inv.prefixed("build-arg:")["A"], "b=c");
        assert_eq!(inv.prefixed("label:")["x"], "y");
        assert_eq!(inv.session, "s1");
    }

    #[test]
    fn build_files_are_component_sections() {
        let s =
            parse_build_file("# syntax=image-builder/frontend:x\nname: web\nport: 3001\n").unwrap();
        assert_eq!(s.name.as_deref(), Some("web"));
        assert_eq!(s.port, Some(3001));
        assert_eq!(
            parse_build_file("# syntax=x\n").unwrap(),
            ComponentSpec::default()
        );
        let e = parse_build_file("nmae: web\n").unwrap_err().to_string();
        assert!(e.contains("nmae"), "{e}");
        let e = parse_build_file("base_images: {runtime: \"node@sha256:abc\"}\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`base_images.runtime` `node@sha256:abc` has the digest"),
            "{e}"
        );
    }
}
