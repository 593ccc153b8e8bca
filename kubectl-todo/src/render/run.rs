//! `kubectl todo render`: print what `up` applies.

use std::process::ExitCode;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use super::{Format, Inputs, images, objects, to_text};
use crate::cli::GlobalArgs;
use crate::context;
use crate::project::Project;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kubectl todo render\n  kubectl todo render -o json | jq '.items[].kind'\n  kubectl todo render --offline --image backend=todo-backend:dev\n  kubectl todo render | kubectl apply --server-side --dry-run=server -f -"
)]
pub struct Args {
    /// Output format: YAML documents, or a JSON List.
    #[arg(short, long, value_enum, default_value = "yaml")]
    pub output: Format,
    /// Use this image for a component instead of the one `up` would build (repeatable).
    #[arg(long = "image", value_name = "COMPONENT=REF", value_parser = images::parse_override)]
    pub images: Vec<(String, String)>,
    /// Do not read the Secret's checksum from the cluster (pods then lack it).
    #[arg(long)]
    pub offline: bool,
}

/// The project as the command line adjusts it (`-n` wins over the file).
pub fn project(global: &GlobalArgs) -> anyhow::Result<Project> {
    let mut project = Project::load(&global.project)?;
    if let Some(ns) = &global.namespace {
        project.namespace = ns.clone();
    }
    Ok(project)
}

pub async fn run(global: &GlobalArgs, args: Args) -> anyhow::Result<ExitCode> {
    let project = project(global)?;
    let images = images::references(&project, &args.images).await?;
    let secret_checksum = if args.offline {
        None
    } else {
        cluster_secret_checksum(global, &project).await
    };
    let rendered = objects(
        &project,
        &Inputs {
            images,
            secret_checksum,
        },
    );
    print!("{}", to_text(&rendered, args.output));
    Ok(ExitCode::SUCCESS)
}

/// Best effort: rendering must work without a cluster, and says what it left out.
async fn cluster_secret_checksum(global: &GlobalArgs, project: &Project) -> Option<String> {
    let lookup = async {
        let conn = context::connect(global, &project.namespace).await?;
        let api: Api<Secret> = Api::namespaced(conn.client, &project.namespace);
        anyhow::Ok(api.get_opt(&project.secret.name).await?)
    };
    match tokio::time::timeout(Duration::from_secs(5), lookup).await {
        Ok(Ok(Some(secret))) => {
            let sum = crate::secrets::checksum(&secret);
            if sum.is_none() {
                // Rendering only reads: the key is added by the next `up` or `secrets` write.
                eprintln!(
                    "note: Secret {} has no checksum key yet (the next `kubectl todo up` adds it); the pods carry no secret checksum",
                    project.secret.name
                );
            }
            sum
        }
        Ok(Ok(None)) => {
            eprintln!(
                "note: Secret {} does not exist in namespace {}; the pods carry no secret checksum (create it with `kubectl todo secrets create`)",
                project.secret.name, project.namespace
            );
            None
        }
        Ok(Err(e)) => {
            eprintln!(
                "note: cannot read Secret {} ({e:#}); rendered without its checksum",
                project.secret.name
            );
            None
        }
        Err(_) => {
            eprintln!(
                "note: the cluster did not answer in 5s; rendered without the Secret's checksum"
            );
            None
        }
    }
}
