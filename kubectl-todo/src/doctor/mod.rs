//! The doctor's checks: what is wrong with the environment, the cluster and
//! the app, and the command that fixes each problem. Every line comes from
//! [`catalogue`], which also generates `docs/troubleshooting.md`; the
//! `doctor` command and `up`'s rollout watch both ask here.

use std::time::Duration;

use tokio::sync::OnceCell;

use crate::project::{self, Project};
use crate::settings::Settings;

mod app;
pub mod catalogue;
mod cluster;
mod environment;
mod images;
pub mod output;
mod pods;
pub(crate) mod quantity;
mod services;

pub use output::{Finding, Group, Status};
pub use pods::{FATAL_WAITING, container_images, fatal};

/// What every check shares.
pub struct Ctx {
    pub global: Settings,
    pub project: Project,
    /// The components selected by --component.
    pub components: Vec<project::Component>,
    pub timeout: Duration,
    engine: OnceCell<Result<image_builder::build::Engine, image_builder::Error>>,
}

impl Ctx {
    pub fn new(
        settings: &Settings,
        project: Project,
        components: Vec<project::Component>,
        timeout: Duration,
    ) -> Self {
        Ctx {
            global: settings.clone(),
            project,
            components,
            timeout,
            engine: OnceCell::new(),
        }
    }

    /// One connection to the Docker Engine for the environment and image checks.
    pub async fn engine(&self) -> &Result<image_builder::build::Engine, image_builder::Error> {
        self.engine
            .get_or_init(|| async {
                match tokio::time::timeout(self.timeout, image_builder::build::Engine::connect())
                    .await
                {
                    Ok(result) => result,
                    Err(_) => Err(image_builder::Error::Engine {
                        reason: format!(
                            "the Docker Engine did not answer within {:?}",
                            self.timeout
                        ),
                        fix: "check `docker info`".into(),
                    }),
                }
            })
            .await
    }
}

/// Runs the selected groups concurrently; the cluster connection is made once
/// and shared (the environment needs the server's version for the skew), and
/// the app checks start as soon as the API has answered.
pub async fn diagnose(ctx: &Ctx, only: Option<Group>) -> Vec<Finding> {
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
    pub fn new(global: &Settings, project: &Project, conn: crate::context::Connection) -> Self {
        let context = conn.context.clone();
        PodDoctor {
            ctx: Ctx::new(
                global,
                project.clone(),
                project.components.clone(),
                Duration::from_secs(5),
            ),
            live: cluster::Live {
                local: image_builder::load::Loader::of_context(&context),
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
