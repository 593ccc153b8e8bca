//! `kubectl todo status`: what runs now, per component (image, replicas,
//! restarts, URLs), and which revision put it there. An app that is not
//! deployed is an error (exit 1, nothing on stdout), as `kubectl get` treats
//! an object that does not exist.

use std::collections::BTreeMap;
use std::process::ExitCode;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use serde::Serialize;

use crate::apply::Error;
use crate::format::{Format, offer};
use crate::history::{self, store::Summary};
use crate::project::Project;
use crate::render::object_name;
use crate::retry::retry;
use crate::settings::Settings;
use crate::{context, pipeline, urls};

/// The `apiVersion` of `status -o json`; a breaking change to the document bumps it.
pub const API_VERSION: &str = "kubectl-todo/v1";
const COMPONENT_LABEL: &str = "app.kubernetes.io/component";

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exits 1, printing nothing on stdout, when the app is not deployed.\n\nExamples:\n  kubectl todo status\n  kubectl todo status -o json | jq -r '.components[].urls[]'\n  kubectl todo status -n staging"
)]
pub struct Args {
    /// Output format.
    #[arg(short, long, value_parser = offer(&[(Format::Table, None), (Format::Json, None)]), default_value = "table")]
    pub output: Format,
}

#[derive(Debug, thiserror::Error)]
#[error("{project} is not deployed in namespace {namespace}")]
pub struct NotDeployed {
    project: String,
    namespace: String,
}

impl crate::report::Hinted for NotDeployed {
    fn hint(&self) -> Option<String> {
        Some(format!(
            "deploy it with `kubectl todo up -n {}`, or pick the namespace it runs in with -n",
            self.namespace
        ))
    }
}
crate::report::hinted!(NotDeployed);

/// The document `status -o json` prints.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub project: String,
    pub namespace: String,
    /// The newest recorded revision; `None` if the objects were applied without kubectl-todo.
    pub revision: Option<Revision>,
    pub components: Vec<ComponentStatus>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    pub number: u32,
    /// `applying` (a run is applying it now), `applied`, `failed`, `interrupted`.
    pub outcome: serde_json::Value,
    pub origin: String,
    pub time: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    pub name: String,
    /// The Deployment's name; `None` when it does not exist.
    pub deployment: Option<String>,
    pub image: Option<String>,
    pub replicas: Replicas,
    /// Container restarts, summed over the component's pods.
    pub restarts: i32,
    pub urls: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Replicas {
    pub desired: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let project = settings.load_project()?;
    let conn = pipeline::connect(settings, &project).await?;
    let status = observe(&conn, &project)
        .await
        .map_err(|e| context::unreachable(e, &conn))?;
    match args.output {
        Format::Json => println!("{}", serde_json::to_string_pretty(&status)?),
        _ => print!("{}", table(&status)),
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads the app's state; [`NotDeployed`] when it has neither a revision nor a Deployment.
pub async fn observe(conn: &context::Connection, project: &Project) -> anyhow::Result<Status> {
    let ns = &project.namespace;
    let deployments: Api<Deployment> = Api::namespaced(conn.client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(conn.client.clone(), ns);
    let pod_params =
        ListParams::default().labels(&format!("app.kubernetes.io/instance={}", project.name));
    let (revisions, pods, urls) = futures::join!(
        history::revisions(&conn.client, ns, &project.name),
        retry(|| pods.list(&pod_params)),
        urls::app_urls(conn, project),
    );
    let revision = revisions
        .map_err(Error::history)?
        .pop()
        .map(revision_of)
        .transpose()?;
    let pods = pods.map_err(|e| Error::api("list", "pods", ns, e))?.items;
    let urls = urls?;
    let mut components = Vec::new();
    for c in &project.components {
        let name = object_name(project, c);
        let deployment = retry(|| deployments.get_opt(&name))
            .await
            .map_err(|e| Error::api("get", "deployments", &name, e))?;
        let own_pods = pods.iter().filter(|p| {
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(COMPONENT_LABEL))
                == Some(&c.name)
        });
        components.push(ComponentStatus {
            name: c.name.clone(),
            image: deployment.as_ref().and_then(|d| image_of(d, &c.name)),
            replicas: deployment.as_ref().map(replicas_of).unwrap_or_default(),
            deployment: deployment.map(|_| name),
            restarts: own_pods.map(restarts_of).sum(),
            urls: urls
                .iter()
                .filter(|u| u.component == c.name)
                .map(|u| u.url.clone())
                .collect(),
        });
    }
    if revision.is_none() && components.iter().all(|c| c.deployment.is_none()) {
        return Err(NotDeployed {
            project: project.name.clone(),
            namespace: ns.clone(),
        }
        .into());
    }
    Ok(Status {
        api_version: API_VERSION,
        kind: "Status",
        project: project.name.clone(),
        namespace: ns.clone(),
        revision,
        components,
    })
}

fn revision_of(s: Summary) -> serde_json::Result<Revision> {
    Ok(Revision {
        number: s.revision,
        outcome: serde_json::to_value(s.outcome)?,
        origin: s.origin,
        time: s.time,
    })
}

/// The image of the component's own container (the pod may gain sidecars).
fn image_of(d: &Deployment, container: &str) -> Option<String> {
    let containers = &d.spec.as_ref()?.template.spec.as_ref()?.containers;
    containers
        .iter()
        .find(|c| c.name == container)
        .or(containers.first())?
        .image
        .clone()
}

fn replicas_of(d: &Deployment) -> Replicas {
    let status = d.status.clone().unwrap_or_default();
    Replicas {
        // The API defaults an unset spec.replicas to 1.
        desired: d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
        updated: status.updated_replicas.unwrap_or(0),
        ready: status.ready_replicas.unwrap_or(0),
        available: status.available_replicas.unwrap_or(0),
    }
}

fn restarts_of(pod: &Pod) -> i32 {
    let Some(status) = &pod.status else {
        return 0;
    };
    status
        .init_container_statuses
        .iter()
        .chain(&status.container_statuses)
        .flatten()
        .map(|c| c.restart_count)
        .sum()
}

/// Columns as `kubectl get deployments` names them, plus the image, restarts and URLs.
pub fn table(status: &Status) -> String {
    let mut out = match &status.revision {
        Some(r) => format!(
            "{} in namespace {}: revision {} ({}, {}, {})\n",
            status.project,
            status.namespace,
            r.number,
            r.outcome.as_str().unwrap_or_default(),
            r.origin,
            r.time
        ),
        None => format!(
            "{} in namespace {}: no revision recorded\n",
            status.project, status.namespace
        ),
    };
    let mut rows = vec![[
        "COMPONENT".to_string(),
        "READY".into(),
        "UP-TO-DATE".into(),
        "AVAILABLE".into(),
        "RESTARTS".into(),
        "IMAGE".into(),
        "URL".into(),
    ]];
    for c in &status.components {
        let r = &c.replicas;
        rows.push(match &c.deployment {
            Some(_) => [
                c.name.clone(),
                format!("{}/{}", r.ready, r.desired),
                r.updated.to_string(),
                r.available.to_string(),
                c.restarts.to_string(),
                c.image.clone().unwrap_or_else(|| "-".into()),
                if c.urls.is_empty() {
                    "-".into()
                } else {
                    c.urls.join(",")
                },
            ],
            None => [
                c.name.clone(),
                "-".into(),
                "-".into(),
                "-".into(),
                c.restarts.to_string(),
                "(no Deployment)".into(),
                "-".into(),
            ],
        });
    }
    let mut widths: BTreeMap<usize, usize> = BTreeMap::new();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            let w = widths.entry(i).or_default();
            *w = (*w).max(cell.len());
        }
    }
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, cell)| format!("{cell:<w$}", w = widths[&i]))
            .collect();
        out.push_str(line.join("   ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> Status {
        Status {
            api_version: API_VERSION,
            kind: "Status",
            project: "shop".into(),
            namespace: "shop".into(),
            revision: Some(Revision {
                number: 3,
                outcome: "applied".into(),
                origin: "rollback to 1".into(),
                time: "2026-11-24T00:00:00Z".into(),
            }),
            components: vec![
                ComponentStatus {
                    name: "web".into(),
                    deployment: Some("shop-web".into()),
                    image: Some("shop-web:1".into()),
                    replicas: Replicas {
                        desired: 2,
                        updated: 2,
                        ready: 1,
                        available: 1,
                    },
                    restarts: 4,
                    urls: vec!["http://192.168.49.2:30000".into()],
                },
                ComponentStatus {
                    name: "api".into(),
                    deployment: None,
                    image: None,
                    replicas: Replicas::default(),
                    restarts: 0,
                    urls: vec![],
                },
            ],
        }
    }

    #[test]
    fn the_table_aligns_columns_and_marks_missing_deployments() {
        let text = table(&status());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "shop in namespace shop: revision 3 (applied, rollback to 1, 2026-11-24T00:00:00Z)"
        );
        assert!(
            lines[1].starts_with("COMPONENT   READY   UP-TO-DATE"),
            "{text}"
        );
        assert!(
            lines[2].contains("1/2") && lines[2].ends_with("http://192.168.49.2:30000"),
            "{text}"
        );
        assert!(lines[3].contains("(no Deployment)"), "{text}");
        let image_column = lines[1].find("IMAGE").unwrap();
        assert_eq!(lines[2].find("shop-web:1"), Some(image_column));
    }

    #[test]
    fn restarts_count_every_container_and_the_image_is_the_components_own() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "status": {
                "initContainerStatuses": [{"name": "init", "image": "i", "imageID": "", "ready": true, "restartCount": 1}],
                "containerStatuses": [
                    {"name": "api", "image": "a", "imageID": "", "ready": true, "restartCount": 2},
                    {"name": "sidecar", "image": "s", "imageID": "", "ready": true, "restartCount": 3},
                ],
            }
        }))
        .unwrap();
        assert_eq!(restarts_of(&pod), 6);
        assert_eq!(restarts_of(&Pod::default()), 0);
        let deployment: Deployment = serde_json::from_value(serde_json::json!({
            "spec": {
                "selector": {},
                "template": {"spec": {"containers": [
                    {"name": "sidecar", "image": "proxy:1"},
                    {"name": "api", "image": "shop-api:2"},
                ]}},
            },
            "status": {"readyReplicas": 1},
        }))
        .unwrap();
        assert_eq!(image_of(&deployment, "api").unwrap(), "shop-api:2");
        assert_eq!(image_of(&deployment, "renamed").unwrap(), "proxy:1");
        let replicas = replicas_of(&deployment);
        assert_eq!(
            (replicas.desired, replicas.ready, replicas.available),
            (1, 1, 0)
        );
    }

    #[test]
    fn the_json_document_is_versioned_and_camel_cased() {
        let json = serde_json::to_value(status()).unwrap();
        assert_eq!(json["apiVersion"], API_VERSION);
        assert_eq!(json["kind"], "Status");
        assert_eq!(json["revision"]["number"], 3);
        assert_eq!(json["components"][0]["replicas"]["desired"], 2);
        assert_eq!(json["components"][1]["deployment"], serde_json::Value::Null);
    }
}
