//! `kubectl todo doctor`: what is wrong with the environment, the cluster and
//! the app, and the command that fixes each problem. Every line comes from
//! [`catalogue`], which also generates `docs/troubleshooting.md`.

use std::process::ExitCode;
use std::time::Duration;

use tokio::sync::OnceCell;

use crate::cli::GlobalArgs;
use crate::project::{self, Project};

mod app;
pub mod catalogue;
mod cluster;
mod environment;
mod images;
pub mod output;
mod pods;
pub(crate) mod quantity;
mod services;

use output::{Finding, Format, Group, Status};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kubectl todo doctor\n  kubectl todo doctor --only app --component backend\n  kubectl todo doctor -o json --strict\n\nEvery finding's id has a section in docs/troubleshooting.md.\nExit status: 0 nothing failed, 1 something failed or could not be checked (--strict: warnings too), 2 doctor could not run."
)]
pub struct Args {
    /// Run one group of checks only.
    #[arg(long, value_enum, value_name = "GROUP")]
    pub only: Option<Group>,
    /// Check this component only (app checks).
    #[arg(long, value_name = "NAME")]
    pub component: Option<String>,
    /// Exit 1 on warnings too.
    #[arg(long)]
    pub strict: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
    pub output: Format,
    /// How long to wait for any one answer from the API server or the Docker Engine (5s, 500ms).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = crate::cli::parse_duration)]
    pub timeout: Duration,
}

/// What every check shares.
pub(crate) struct Ctx {
    pub global: GlobalArgs,
    pub project: Project,
    /// The components selected by --component.
    pub components: Vec<project::Component>,
    pub timeout: Duration,
    engine: OnceCell<Result<image_builder::build::Engine, String>>,
}

impl Ctx {
    /// One connection to the Docker Engine for the environment and image checks.
    pub async fn engine(&self) -> &Result<image_builder::build::Engine, String> {
        self.engine
            .get_or_init(|| async {
                match tokio::time::timeout(self.timeout, image_builder::build::Engine::connect())
                    .await
                {
                    Ok(Ok(engine)) => Ok(engine),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err(format!(
                        "the Docker Engine did not answer within {:?}\n  fix: check `docker info`",
                        self.timeout
                    )),
                }
            })
            .await
    }
}

#[derive(Debug, thiserror::Error)]
#[error("no component {name:?} in project {project}{suggestion}")]
pub struct UnknownComponent {
    name: String,
    project: String,
    suggestion: String,
    known: String,
}

impl UnknownComponent {
    pub fn hint(&self) -> Option<String> {
        Some(format!("pass one of: {}", self.known))
    }
}

pub async fn run(global: &GlobalArgs, args: Args) -> anyhow::Result<ExitCode> {
    let ctx = match context(global, &args) {
        Ok(ctx) => ctx,
        Err(e) => {
            eprint!("{}", crate::report::render(&e));
            return Ok(ExitCode::from(2));
        }
    };
    let findings = diagnose(&ctx, args.only).await;
    match args.output {
        Format::Json => print!("{}", output::json(&findings)),
        Format::Text => print!("{}", output::text(&findings, output::use_colour())),
    }
    let failed = findings.iter().any(|f| {
        matches!(f.status, Status::Fail | Status::Unknown)
            || (args.strict && f.status == Status::Warn)
    });
    Ok(ExitCode::from(u8::from(failed)))
}

fn context(global: &GlobalArgs, args: &Args) -> anyhow::Result<Ctx> {
    let project = Project::load(&global.project)?;
    let components = match &args.component {
        None => project.components.clone(),
        Some(name) => match project.component(name) {
            Some(c) => vec![c.clone()],
            None => {
                let names = project.component_names();
                return Err(UnknownComponent {
                    name: name.clone(),
                    project: project.name.clone(),
                    suggestion: project::suggestion(name, names.iter().copied()),
                    known: names.join(", "),
                }
                .into());
            }
        },
    };
    Ok(Ctx {
        global: global.clone(),
        project,
        components,
        timeout: args.timeout,
        engine: OnceCell::new(),
    })
}

/// Runs the selected groups concurrently; the cluster connection is made once
/// and shared (the environment needs the server's version for the skew), and
/// the app checks start as soon as the API has answered.
pub(crate) async fn diagnose(ctx: &Ctx, only: Option<Group>) -> Vec<Finding> {
    let wants = |g: Group| only.is_none_or(|o| o == g);
    let env = async {
        if wants(Group::Environment) {
            environment::check(ctx).await
        } else {
            (Vec::new(), None)
        }
    };
    let live = async {
        let (mut connect, live) = cluster::connect(ctx).await;
        let (rest, app) = match &live {
            Some(live) => {
                let rest = async {
                    if wants(Group::Cluster) {
                        cluster::check(ctx, live).await
                    } else {
                        Vec::new()
                    }
                };
                let app = async {
                    if wants(Group::App) {
                        app::check(ctx, live).await
                    } else {
                        Vec::new()
                    }
                };
                futures::join!(rest, app)
            }
            None if wants(Group::App) => (Vec::new(), vec![app::unchecked(&connect)]),
            None => (Vec::new(), Vec::new()),
        };
        if !wants(Group::Cluster) {
            connect.clear();
        }
        connect.extend(rest);
        let server = live.and_then(|l| l.server_version);
        (connect, app, server)
    };
    let ((mut env, client_version), (cluster, app, server_version)) = futures::join!(env, live);
    if wants(Group::Environment) {
        env.push(environment::skew(
            client_version.as_deref(),
            server_version.as_deref(),
        ));
    }
    env.into_iter().chain(cluster).chain(app).collect()
}

/// Pod diagnoses outside a doctor run: `up` asks for one when its rollout
/// display sees a pod in trouble, so both commands explain a failure alike.
pub struct PodDoctor {
    ctx: Ctx,
    live: cluster::Live,
}

impl PodDoctor {
    pub fn new(global: &GlobalArgs, project: &Project, conn: crate::context::Connection) -> Self {
        let context = conn.context.clone();
        PodDoctor {
            ctx: Ctx {
                global: global.clone(),
                project: project.clone(),
                components: project.components.clone(),
                timeout: Duration::from_secs(5),
                engine: OnceCell::new(),
            },
            live: cluster::Live {
                tool: cluster::LocalTool::of(&context),
                context,
                conn,
                server_version: None,
                timeout: Duration::from_secs(5),
            },
        }
    }

    /// What is wrong with `pod`, given the namespace's events and the nodes;
    /// `redact` holds the values no quoted log line may show.
    pub async fn diagnose(
        &self,
        component: &project::Component,
        deployment: &k8s_openapi::api::apps::v1::Deployment,
        pod: &k8s_openapi::api::core::v1::Pod,
        events: &[k8s_openapi::api::core::v1::Event],
        nodes: Option<&[k8s_openapi::api::core::v1::Node]>,
        redact: &[String],
    ) -> Vec<Finding> {
        let observed = pods::Observed {
            events,
            nodes,
            redact,
        };
        pods::diagnose(&self.ctx, &self.live, component, deployment, pod, &observed).await
    }
}
