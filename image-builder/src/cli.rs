//! Command-line definition and the commands behind it.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};

use crate::build::{self, BuildOptions, BuildResult, Engine};
use crate::check;
use crate::error::{Error, exit};
use crate::frontend_image;
use crate::load::{self, ClusterKind, LoadInto, Loader};
use crate::plan::{self, BuilderKind, Plan, PlanOptions};
use crate::push;
use crate::spec::{BaseImages, ComponentSpec, StackKind};
use crate::term::TermProgress;
use crate::via_frontend;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  unexpected internal error
  2  bad command line
  3  bad input: missing directory, unreadable file, malformed .dockerignore,
     unknown stack, invalid option value
  4  the Docker Engine is not reachable (not running, permission denied)
  5  the image build failed (Dockerfile error, failing step, disk full)
  6  a post-build check failed (root user, a user or group the image does not have, over --max-size)
  7  loading into the cluster or pushing to a registry failed";

const FRONTEND_HELP: &str = "\
BuildKit runs this command inside the frontend image when a build file starts with
`# syntax=<frontend image>`; it talks to BuildKit's gateway on stdin/stdout.

Examples:
  image-builder frontend-image --tag image-builder/frontend:dev
  printf '# syntax=image-builder/frontend:dev\\nname: web\\n' > web/todo.build.yaml
  docker buildx build -f web/todo.build.yaml -t web:dev web
  image-builder build --via frontend ./web";

const BUILD_HELP: &str = "\
Examples:
  image-builder build ./frontend ./backend --load minikube
  image-builder build ./backend --build-arg PIP_INDEX_URL=https://pypi.example.com/simple
  image-builder build ./backend --ca-cert /etc/ssl/certs/ca-certificates.crt   # behind a TLS-intercepting proxy
  image-builder build --push registry.example.com/team -o json";

/// Turn an app directory into a minimal, non-root image tagged by a hash of its inputs.
#[derive(Debug, Parser)]
#[command(name = "image-builder", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BuilderArg {
    /// BuildKit when the engine has it (DOCKER_BUILDKIT=0 forces classic)
    Auto,
    Buildkit,
    Classic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ViaArg {
    /// The generated Dockerfile, built by the engine's Dockerfile frontend
    Dockerfile,
    /// A generated build file, built by image-builder's own BuildKit frontend
    Frontend,
}

#[derive(Debug, Clone, clap::Args)]
pub struct PlanArgs {
    /// Component directories (default: ./frontend and ./backend if present, else .)
    pub dirs: Vec<PathBuf>,
    /// Override a stage's base image: builder=REF or runtime=REF (repeatable)
    #[arg(long = "base-image", value_name = "STAGE=REF", value_parser = base_image_arg)]
    pub base_images: Vec<String>,
    /// Skip detection and use this stack
    #[arg(long, value_name = "STACK")]
    pub stack: Option<String>,
    /// Port the app listens on (default: 3000 for Node, 8000 for Python, 8080 otherwise)
    #[arg(long)]
    pub port: Option<u16>,
    /// Project name used in the default image name `<project>-<component>`
    #[arg(long)]
    pub project: Option<String>,
    /// Which builder the Dockerfile is generated for
    #[arg(long, value_enum, default_value = "auto")]
    pub builder: BuilderArg,
    /// Do not use the per-file hash cache
    #[arg(long)]
    pub no_cache: bool,
    /// A build argument, declared where package managers run (repeatable; part of the digest, never in the image)
    #[arg(long = "build-arg", value_name = "NAME=VALUE")]
    pub build_args: Vec<String>,
    /// A PEM bundle of CAs that package downloads trust (a TLS-intercepting proxy's);
    /// mounted as a BuildKit secret, never in the image
    #[arg(long = "ca-cert", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show, per component, the stack, the Dockerfile, the input digest and the tag
    Plan {
        #[command(flatten)]
        args: PlanArgs,
        #[arg(short, long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Print the full input digest of a component directory
    Hash {
        #[command(flatten)]
        args: PlanArgs,
    },
    /// Build images (skipped when the content tag exists), check, load or push them
    #[command(after_help = BUILD_HELP)]
    Build {
        #[command(flatten)]
        args: PlanArgs,
        /// Load the images into a local cluster
        #[arg(long, value_enum, default_value = "none")]
        load: LoadInto,
        /// Minikube profile, kind cluster or k3d cluster name
        #[arg(long, value_name = "NAME")]
        cluster: Option<String>,
        /// Push to this registry (e.g. registry.example.com/team) for remote clusters
        #[arg(long, value_name = "REGISTRY")]
        push: Option<String>,
        /// Fail when an image is bigger than this (e.g. 200MB)
        #[arg(long, value_name = "SIZE")]
        max_size: Option<String>,
        /// Rebuild even when an image with the content tag exists
        #[arg(long)]
        force: bool,
        /// What BuildKit builds from: the generated Dockerfile, or image-builder's
        /// frontend image reading a generated build file (needs BuildKit)
        #[arg(long, value_enum, default_value = "dockerfile")]
        via: ViaArg,
        /// Frontend image for `--via frontend` (default: one made from this executable,
        /// built into the engine when missing)
        #[arg(long, value_name = "REF", value_parser = reference_arg)]
        frontend_image: Option<String>,
        /// kubeconfig used to see whether the node already has the image
        #[arg(long, env = "KUBECONFIG", value_name = "PATH")]
        kubeconfig: Option<PathBuf>,
        /// kubeconfig context
        #[arg(long)]
        context: Option<String>,
        #[arg(short, long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Run as a BuildKit gateway frontend (BuildKit starts this from the frontend image)
    #[command(after_help = FRONTEND_HELP)]
    Frontend,
    /// Build the frontend image (this executable and its libraries, user 1001) into the engine
    #[command(
        after_help = "Examples:\n  image-builder frontend-image\n  image-builder frontend-image --tag registry.example.com/team/image-builder-frontend:1\n  docker push registry.example.com/team/image-builder-frontend:1"
    )]
    FrontendImage {
        /// Image reference (default: image-builder/frontend:VERSION-ID, ID naming this executable)
        #[arg(long, value_name = "REF", value_parser = reference_arg)]
        tag: Option<String>,
        /// Rebuild even when the image exists
        #[arg(long)]
        force: bool,
    },
    /// Print a shell completion script (bash, zsh, fish or powershell)
    #[command(
        after_help = "Examples:\n  image-builder completion bash > /etc/bash_completion.d/image-builder\n  image-builder completion zsh > \"${fpath[1]}/_image-builder\""
    )]
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Load existing images into a local cluster
    Load {
        /// Image references (name:tag)
        #[arg(required = true, value_parser = reference_arg)]
        images: Vec<String>,
        #[arg(long, value_enum)]
        to: ClusterKind,
        /// Minikube profile, kind cluster or k3d cluster name
        #[arg(long, value_name = "NAME")]
        cluster: Option<String>,
        #[arg(long, env = "KUBECONFIG", value_name = "PATH")]
        kubeconfig: Option<PathBuf>,
        #[arg(long)]
        context: Option<String>,
    },
}

/// `--base-image STAGE=REF`, refused as a bad command line (exit 2) by the
/// rules [`BaseImages::parse_args`] holds.
fn base_image_arg(s: &str) -> Result<String, String> {
    match BaseImages::parse_args(&[s]) {
        Ok(_) => Ok(s.to_string()),
        Err(Error::Invalid { reason, fix, .. }) => Err(format!("{reason}\n  fix: {fix}")),
        Err(other) => Err(other.to_string()),
    }
}

/// An image reference on the command line, refused (exit 2) by the one rule.
fn reference_arg(s: &str) -> Result<String, String> {
    crate::reference::check(s)
        .map(|()| s.to_string())
        .map_err(|why| format!("`{s}` {why}"))
}

/// The completion script for one shell, as `image-builder completion SHELL` prints it.
pub fn completion_script(shell: clap_complete::Shell) -> String {
    let mut out = Vec::new();
    clap_complete::generate(
        shell,
        &mut <Cli as clap::CommandFactory>::command(),
        "image-builder",
        &mut out,
    );
    String::from_utf8_lossy(&out).into_owned()
}

/// Run a parsed command line; returns the process exit code.
pub fn main(cli: Cli) -> i32 {
    // The frontend waits on one connection: a single thread serves it, and a
    // container with a small thread budget can still run it.
    let mut builder = if matches!(cli.command, Command::Frontend) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(2);
        b
    };
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::INTERNAL;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            let code = e
                .chain()
                .find_map(|c| c.downcast_ref::<Error>())
                .map(Error::exit_code)
                .unwrap_or(exit::INTERNAL);
            eprintln!("error: {e:#}");
            code
        }
    }
}

fn default_dirs(dirs: &[PathBuf]) -> Vec<PathBuf> {
    if !dirs.is_empty() {
        return dirs.to_vec();
    }
    let fe = Path::new("frontend");
    let be = Path::new("backend");
    let v: Vec<PathBuf> = [fe, be]
        .iter()
        .filter(|p| p.is_dir())
        .map(|p| p.to_path_buf())
        .collect();
    if v.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        v
    }
}

fn specs(args: &PlanArgs) -> anyhow::Result<Vec<ComponentSpec>> {
    let stack = args
        .stack
        .as_deref()
        .map(str::parse::<StackKind>)
        .transpose()?;
    let build_args = crate::spec::parse_build_args(&args.build_args)?;
    Ok(default_dirs(&args.dirs)
        .into_iter()
        .map(|d| ComponentSpec {
            path: d,
            stack,
            port: args.port,
            project: args.project.clone(),
            build_args: build_args.clone(),
            ca_cert: args.ca_cert.clone(),
            ..Default::default()
        })
        .collect())
}

/// The builder to plan for, with the engine when one answered: `None` when
/// no engine did and none was chosen, for the planner to decide per component.
async fn resolve_builder(
    arg: BuilderArg,
    need_engine: bool,
) -> anyhow::Result<(Option<BuilderKind>, Option<Engine>)> {
    let forced = match arg {
        BuilderArg::Buildkit => Some(BuilderKind::BuildKit),
        BuilderArg::Classic => Some(BuilderKind::Classic),
        BuilderArg::Auto => None,
    };
    if need_engine {
        let engine = Engine::connect().await?;
        let engine = match forced {
            Some(b) => engine.with_builder(b),
            None => engine,
        };
        return Ok((Some(engine.builder), Some(engine)));
    }
    if forced.is_some() {
        return Ok((forced, None));
    }
    match plan::probe_engine().await {
        Some(e) => Ok((Some(e.builder), Some(e))),
        None => {
            eprintln!("{} (use --builder to choose)", plan::NO_ENGINE_NOTE);
            Ok((None, None))
        }
    }
}

async fn make_plans(args: &PlanArgs, builder: Option<BuilderKind>) -> anyhow::Result<Vec<Plan>> {
    let base = BaseImages::parse_args(&args.base_images)?;
    let opts = PlanOptions {
        builder,
        base_images: base,
        use_cache: !args.no_cache,
    };
    let specs = specs(args)?;
    let paths: Vec<PathBuf> = specs.iter().map(|s| s.path.clone()).collect();
    plan::plan_all(specs, &opts)
        .await
        .into_iter()
        .zip(paths)
        .map(|(planned, path)| planned.with_context(|| format!("planning {}", path.display())))
        .collect()
}

async fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Completion { shell } => {
            print!("{}", completion_script(shell));
            Ok(exit::OK)
        }
        Command::Plan { args, output } => {
            let (builder, _) = resolve_builder(args.builder, false).await?;
            let plans = make_plans(&args, builder).await?;
            match output {
                Output::Text => print!("{}", plan::render_text(&plans)),
                Output::Json => println!("{}", serde_json::to_string_pretty(&plans)?),
            }
            Ok(exit::OK)
        }
        Command::Hash { args } => {
            let (builder, _) = resolve_builder(args.builder, false).await?;
            for p in make_plans(&args, builder).await? {
                println!("sha256:{}", p.digest);
            }
            Ok(exit::OK)
        }
        Command::Build {
            args,
            load,
            cluster,
            push,
            max_size,
            force,
            via,
            frontend_image,
            kubeconfig,
            context,
            output,
        } => {
            let max_size = max_size.as_deref().map(check::parse_size).transpose()?;
            let loader = match load {
                LoadInto::Cluster(kind) => Some(Loader { kind, cluster }),
                LoadInto::Nowhere => None,
            };
            let (builder, engine) = resolve_builder(args.builder, true).await?;
            let engine = engine.expect("engine requested");
            let plans = make_plans(&args, builder).await?;
            let progress = TermProgress::new(true);
            let opts = BuildOptions { max_size, force };
            let results = match via {
                ViaArg::Dockerfile => build::build_all(&engine, &plans, &opts, &progress).await,
                ViaArg::Frontend => {
                    let frontend = match frontend_image {
                        Some(r) => r,
                        None => frontend_image::default_reference()?,
                    };
                    let classic_chosen = args.builder == BuilderArg::Classic;
                    if let Err(e) =
                        via_frontend::prepare(&engine, &frontend, classic_chosen, &progress).await
                    {
                        progress.finish();
                        return Err(e.into());
                    }
                    via_frontend::build_all(&engine, &plans, &frontend, &opts, &progress).await
                }
            };
            progress.finish();
            let client = match &loader {
                Some(_) => kube_client(kubeconfig.as_deref(), context.as_deref()).await,
                None => None,
            };
            let mut done: Vec<BuildResult> = Vec::new();
            let mut first_err: Option<anyhow::Error> = None;
            for r in results {
                match r {
                    Ok(mut res) => {
                        let delivered: anyhow::Result<()> = async {
                            if let Some(l) = &loader {
                                let out = load::load(&res.image, l, client.as_ref()).await?;
                                res.loaded_to = Some(out.target);
                            }
                            if let Some(reg) = &push {
                                res.pushed_ref = Some(push::push(&engine, &res.image, reg).await?);
                            }
                            Ok(())
                        }
                        .await;
                        if let Err(e) = delivered {
                            eprintln!("error: {e:#}");
                            first_err.get_or_insert(e);
                        }
                        done.push(res);
                    }
                    Err(e) => {
                        let e = anyhow::Error::new(e);
                        eprintln!("error: {e:#}");
                        first_err.get_or_insert(e);
                    }
                }
            }
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&done)?),
                Output::Text => {
                    for r in &done {
                        println!("{}", summary_line(r));
                    }
                }
            }
            Ok(match first_err {
                Some(e) => e
                    .chain()
                    .find_map(|c| c.downcast_ref::<Error>())
                    .map(Error::exit_code)
                    .unwrap_or(exit::INTERNAL),
                None => exit::OK,
            })
        }
        Command::Frontend => Ok(crate::frontend::serve().await),
        Command::FrontendImage { tag, force } => {
            let engine = Engine::connect().await?;
            let reference = match tag {
                Some(t) => t,
                None => frontend_image::default_reference()?,
            };
            let built = frontend_image::ensure(&engine, &reference, force).await?;
            eprintln!("{} {reference}", if built { "built" } else { "exists" });
            println!("{reference}");
            Ok(exit::OK)
        }
        Command::Load {
            images,
            to,
            cluster,
            kubeconfig,
            context,
        } => {
            let loader = Loader { kind: to, cluster };
            let client = kube_client(kubeconfig.as_deref(), context.as_deref()).await;
            for img in images {
                let out = load::load(&img, &loader, client.as_ref()).await?;
                println!("{} {} {}", out.image, out.action, out.target);
            }
            Ok(exit::OK)
        }
    }
}

fn summary_line(r: &BuildResult) -> String {
    let mut s = format!(
        "{}: {} {} ({}, {} layers, user {}{})",
        r.component,
        r.image,
        match r.status {
            build::Status::Built => "built",
            build::Status::Cached => "cached",
        },
        check::human(r.size_bytes),
        r.layers,
        r.user,
        // A name is shown with the numbers it resolved to, which the pod runs as.
        if check::names_someone(&r.user) {
            format!(" = {}:{}", r.run_as.uid, r.run_as.gid)
        } else {
            String::new()
        }
    );
    if let Some(l) = &r.loaded_to {
        s.push_str(&format!(", loaded into {l}"));
    }
    if let Some(p) = &r.pushed_ref {
        s.push_str(&format!(", pushed {p}"));
    }
    s
}

/// A kube client when a kubeconfig is available (used only to skip loads).
async fn kube_client(path: Option<&Path>, context: Option<&str>) -> Option<kube::Client> {
    let opts = kube::config::KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    let cfg = match path {
        Some(p) => {
            let kc = kube::config::Kubeconfig::read_from(p).ok()?;
            kube::Config::from_custom_kubeconfig(kc, &opts).await.ok()?
        }
        None => kube::Config::from_kubeconfig(&opts).await.ok()?,
    };
    kube::Client::try_from(cfg).ok()
}
