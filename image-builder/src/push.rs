//! Pushing to a registry for remote clusters.

use bollard::auth::DockerCredentials;
use bollard::query_parameters::{PushImageOptions, TagImageOptions};
use futures::StreamExt;

use crate::build::{Engine, engine_error};
use crate::error::{Error, Result};

/// Tag `local` (`repo:tag`) as `REGISTRY/repo:tag`, push it, and return the pushed
/// reference with its digest (`REGISTRY/repo:tag@sha256:...`).
pub async fn push(engine: &Engine, local: &str, registry: &str) -> Result<String> {
    let registry = registry.trim_end_matches('/');
    let (repo, tag) = local.rsplit_once(':').ok_or_else(|| Error::Invalid {
        what: format!("image reference `{local}`"),
        reason: "it has no tag".into(),
        fix: "push a `name:tag` reference".into(),
    })?;
    let target_repo = format!("{registry}/{repo}");
    let remote = format!("{target_repo}:{tag}");
    engine
        .docker
        .tag_image(
            local,
            Some(TagImageOptions {
                repo: Some(target_repo.clone()),
                tag: Some(tag.to_string()),
            }),
        )
        .await
        .map_err(|e| engine_error(&e))?;
    let creds = DockerCredentials {
        serveraddress: Some(registry.to_string()),
        ..Default::default()
    };
    let mut stream = engine.docker.push_image(
        &target_repo,
        Some(PushImageOptions {
            tag: Some(tag.to_string()),
            platform: None,
        }),
        Some(creds),
    );
    let mut digest = None;
    let mut failure = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(msg) = info.error_detail.and_then(|d| d.message) {
                    failure = Some(msg);
                    break;
                }
                if let Some(status) = info.status
                    && let Some(i) = status.find("digest: sha256:")
                {
                    let d = &status[i + 8..];
                    digest = Some(d.split_whitespace().next().unwrap_or(d).to_string());
                }
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                failure = Some(error);
                break;
            }
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        }
    }
    if let Some(reason) = failure {
        let lower = reason.to_ascii_lowercase();
        let fix = if lower.contains("unauthorized")
            || lower.contains("denied")
            || lower.contains("authentication")
        {
            format!("log in first: `docker login {registry}`")
        } else if lower.contains("connection refused")
            || lower.contains("no such host")
            || lower.contains("timeout")
        {
            format!("check that the registry {registry} is reachable from the Docker Engine")
        } else if lower.contains("http response to https") || lower.contains("server gave http") {
            format!(
                "the registry speaks plain HTTP: add {registry} to `insecure-registries` in the engine's daemon.json, or serve it over TLS"
            )
        } else {
            format!("check the registry {registry} and `docker push {remote}` by hand")
        };
        return Err(Error::Push {
            image: remote,
            reason,
            fix,
        });
    }
    let digest = digest.ok_or_else(|| Error::Push {
        image: remote.clone(),
        reason: "the registry did not report a digest".into(),
        fix: "check the registry's logs".into(),
    })?;
    Ok(format!("{remote}@{digest}"))
}
