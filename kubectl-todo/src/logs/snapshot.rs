//! Without `--follow`: the log each container has now, read all at once.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use tokio::task::JoinSet;

use super::Shared;
use super::format::Source;
use super::pods;
use super::stream::{End, Reader};

/// Reads every container of the pods; returns the streams that failed, as
/// `component/pod/container: why`.
pub async fn read_all(
    shared: Arc<Shared>,
    found: Vec<(String, Vec<Pod>)>,
    previous: bool,
) -> Vec<String> {
    let mut tasks = JoinSet::new();
    for (component, pods) in &found {
        for pod in pods {
            let colour = shared.next_colour();
            for container in pods::containers(pod) {
                if shared.container.as_deref().is_some_and(|c| c != container) {
                    continue;
                }
                let label = format!("{component}/{}/{container}", pods::name(pod));
                if !has_output(pod, container, previous) {
                    let why = if previous {
                        "has not restarted, so it has no previous log".to_string()
                    } else {
                        format!(
                            "has not started yet ({})",
                            pods::waiting_reason(pod, container)
                        )
                    };
                    eprintln!("note: {label} {why}");
                    continue;
                }
                let source = Arc::new(Source::new(
                    component,
                    pods::name(pod),
                    pods::template_hash(pod),
                    container,
                    colour,
                ));
                let shared = shared.clone();
                tasks.spawn(async move {
                    let reader = Reader {
                        api: &shared.api,
                        source: &source,
                        filter: &shared.filter,
                        sink: &shared.sink,
                    };
                    let mut cursor = shared.cursor();
                    let mut params = shared.params(false, &cursor, true);
                    params.previous = previous;
                    match reader.read(params, &mut cursor).await {
                        End::Closed {
                            partial: Some(partial),
                            ..
                        } => {
                            reader.finish(partial, &mut cursor).await;
                            None
                        }
                        End::Failed { why, .. } => Some(format!("{label}: {why}")),
                        _ => None,
                    }
                });
            }
        }
    }
    drop(shared);
    tasks.join_all().await.into_iter().flatten().collect()
}

fn has_output(pod: &Pod, container: &str, previous: bool) -> bool {
    if previous {
        restarted(pod, container)
    } else {
        pods::instance(pod, container).is_some()
    }
}

fn restarted(pod: &Pod, container: &str) -> bool {
    pod.status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .any(|s| s.name == container && s.restart_count > 0)
}
