//! Whether each component's current content-hash image, as image-builder
//! computes it from the sources on disk, is in the local engine and on the node.

use k8s_openapi::api::core::v1::Node;

use super::Ctx;
use super::catalogue as cat;
use super::cluster::Live;
use super::output::Finding;
use crate::project::Component;

/// The image reference `up` would deploy now for each selected component,
/// in order, or why it cannot be computed.
pub async fn current(ctx: &Ctx) -> Vec<Result<String, image_builder::Error>> {
    // The Dockerfile, and so the tag, depends on the builder the engine
    // offers; without an engine the planner chooses, as for `render`.
    let builder = ctx
        .engine()
        .await
        .as_ref()
        .ok()
        .map(|engine| engine.builder);
    crate::render::images::planned(&ctx.project, &ctx.components, builder)
        .await
        .into_iter()
        .map(|(_, planned)| planned.map(|plan| plan.reference()))
        .collect()
}

pub async fn check(
    ctx: &Ctx,
    live: &Live,
    c: &Component,
    nodes: Option<&[Node]>,
    reference: &Result<String, image_builder::Error>,
) -> Vec<Finding> {
    let reference = match reference {
        Ok(r) => r,
        // The sources say something image-builder refuses: `up` would stop
        // there too, so it is the app's failure, not a check doctor could not make.
        Err(e) if e.exit_code() == image_builder::error::exit::INPUT => {
            return vec![
                Finding::fail(
                    &cat::IMAGE_PLAN,
                    format!("{}: {}", c.name, e.problem().replace('\n', " ")),
                    e.fix(),
                )
                .of(&c.name),
            ];
        }
        Err(e) => {
            return vec![
                Finding::unknown(
                    &cat::IMAGE_LOCAL,
                    format!(
                        "{}: cannot compute the content-hash tag: {}",
                        c.name,
                        e.problem().replace('\n', " ")
                    ),
                    e.fix(),
                )
                .of(&c.name),
            ];
        }
    };
    let local = match ctx.engine().await {
        Err(_) => Finding::unknown(
            &cat::IMAGE_LOCAL,
            format!(
                "{}: cannot look for {reference}: the Docker Engine is not reachable",
                c.name
            ),
            "fix the Docker Engine first (see env.docker-engine)",
        ),
        Ok(engine) => match tokio::time::timeout(ctx.timeout, engine.image(reference)).await {
            Ok(Ok(Some(_))) => Finding::ok(
                &cat::IMAGE_LOCAL,
                format!("{}: {reference} is built", c.name),
            ),
            Ok(Ok(None)) => Finding::fail(
                &cat::IMAGE_LOCAL,
                format!(
                    "{}: {reference} (the current sources) is not in the local Docker Engine",
                    c.name
                ),
                format!(
                    "build it: `kubectl todo up` (or `image-builder build {}`)",
                    ctx.project.root.join(&c.path).display()
                ),
            ),
            Ok(Err(e)) => Finding::unknown(
                &cat::IMAGE_LOCAL,
                format!("{}: cannot look for {reference}: {e}", c.name),
                "check `docker info`",
            ),
            Err(_) => Finding::unknown(
                &cat::IMAGE_LOCAL,
                format!(
                    "{}: the Docker Engine did not answer within {:?}",
                    c.name, ctx.timeout
                ),
                "check `docker info`",
            ),
        },
    };
    let node = match nodes {
        None => Finding::unknown(
            &cat::IMAGE_NODE,
            format!(
                "{}: cannot see the nodes' images (see cluster.nodes)",
                c.name
            ),
            "fix the node listing first",
        ),
        Some(nodes) => {
            let missing: Vec<String> = nodes
                .iter()
                .filter(|n| !node_has(n, reference))
                .map(|n| n.metadata.name.clone().unwrap_or_default())
                .collect();
            if nodes.is_empty() || !missing.is_empty() {
                Finding::fail(
                    &cat::IMAGE_NODE,
                    format!(
                        "{}: {reference} is not on node {}",
                        c.name,
                        missing.join(", ")
                    ),
                    format!("load it: `{}`", live.load_command(reference)),
                )
            } else {
                Finding::ok(
                    &cat::IMAGE_NODE,
                    format!("{}: {reference} is on the node", c.name),
                )
            }
        }
    };
    vec![local.of(&c.name), node.of(&c.name)]
}

pub fn node_images(node: &Node) -> impl Iterator<Item = &String> {
    node.status
        .iter()
        .flat_map(|s| s.images.iter().flatten())
        .flat_map(|i| i.names.iter().flatten())
}

pub fn node_has(node: &Node, image: &str) -> bool {
    let want = image_builder::load::normalize(image);
    node_images(node).any(|n| image_builder::load::normalize(n) == want)
}
