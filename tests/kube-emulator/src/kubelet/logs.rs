//! `pods/log`: which container's output to serve, decided as the API server
//! and the kubelet decide it (with their error messages), and the output
//! itself from the runtime.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use crate::cluster::Cluster;
use crate::resources;
use crate::status::{ApiError, ApiResult};

use super::{docker, scripted};

#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub container: Option<String>,
    pub follow: bool,
    pub tail_lines: Option<i64>,
    pub since_seconds: Option<i64>,
    pub since_time: Option<String>,
    pub timestamps: bool,
    pub previous: bool,
    pub limit_bytes: Option<i64>,
}

impl LogOptions {
    /// The earliest time of a line to serve, from sinceSeconds or sinceTime.
    pub(super) fn since(&self) -> Option<Timestamp> {
        match (self.since_seconds, &self.since_time) {
            (Some(s), _) => Some(Timestamp::now() - SignedDuration::from_secs(s)),
            (None, Some(t)) => crate::time::parse(t),
            _ => None,
        }
    }
}

/// The kubelet's log timestamp: RFC 3339 with exactly nine fractional digits.
pub(super) fn rfc3339_nano(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S.%9fZ").to_string()
}

/// Picks the container, and which of its instances, the request is about.
fn container_id(pod: &Value, name: &str, container: &str, previous: bool) -> ApiResult<String> {
    let status = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|s| s["name"] == container));
    let waiting = |reason: &str| {
        let why = match reason {
            "ErrImagePull" => "image can't be pulled",
            "ImagePullBackOff" => "trying and failing to pull image",
            other => other,
        };
        ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: {why}"
        ))
    };
    let Some(status) = status else {
        return Err(waiting("ContainerCreating"));
    };
    let last = status
        .pointer("/lastState/terminated/containerID")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let state = &status["state"];
    let id = if previous {
        last.ok_or_else(|| {
            ApiError::bad_request(format!(
                "previous terminated container \"{container}\" in pod \"{name}\" not found"
            ))
        })?
    } else if state.get("running").is_some() {
        status["containerID"].as_str().unwrap_or_default()
    } else if let Some(t) = state.get("terminated") {
        t["containerID"]
            .as_str()
            .filter(|s| !s.is_empty())
            .or(last)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "container \"{container}\" in pod \"{name}\" is terminated"
                ))
            })?
    } else if let Some(last) = last {
        last
    } else {
        return Err(waiting(
            state
                .pointer("/waiting/reason")
                .and_then(Value::as_str)
                .unwrap_or("ContainerCreating"),
        ));
    };
    Ok(id.to_string())
}

/// The API server's choice of container when the request names none.
fn container_name(pod: &Value, name: &str, requested: Option<&str>) -> ApiResult<String> {
    let names: Vec<&str> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    match requested.filter(|c| !c.is_empty()) {
        Some(c) if names.contains(&c) => Ok(c.to_string()),
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None if names.len() == 1 => Ok(names[0].to_string()),
        None if names.is_empty() => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}"
        ))),
        None => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}, choose one of: [{}]",
            names.join(" ")
        ))),
    }
}

/// The log of one of a pod's containers.
pub async fn logs(
    cluster: Arc<Cluster>,
    ns: &str,
    pod: &str,
    opts: LogOptions,
) -> ApiResult<BoxStream<'static, Result<Bytes, std::io::Error>>> {
    let object = cluster.store.get(resources::pods(), ns, pod)?;
    let container = container_name(&object, pod, opts.container.as_deref())?;
    let id = container_id(&object, pod, &container, opts.previous)?;
    let output = match id.split_once("://") {
        Some(("docker", id)) => docker_logs(id, &opts).await?,
        Some((_, id)) => scripted::logs(id, &opts),
        None => stream::empty().boxed(),
    };
    Ok(match opts.limit_bytes {
        Some(limit) if limit >= 0 => limit_bytes(output, limit as usize),
        _ => output,
    })
}

fn limit_bytes(
    output: BoxStream<'static, Result<Bytes, std::io::Error>>,
    limit: usize,
) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    output
        .scan(limit, |left, chunk| {
            let out = match chunk {
                _ if *left == 0 => return futures::future::ready(None),
                Ok(mut b) => {
                    b.truncate(*left);
                    *left -= b.len();
                    Ok(b)
                }
                Err(e) => Err(e),
            };
            futures::future::ready(Some(out))
        })
        .boxed()
}

/// Docker's output always carries timestamps, so that sinceTime is exact;
/// they are dropped again unless asked for.
async fn docker_logs(
    id: &str,
    opts: &LogOptions,
) -> ApiResult<BoxStream<'static, Result<Bytes, std::io::Error>>> {
    let engine = docker::client().await?;
    let since = opts.since();
    let query = bollard::query_parameters::LogsOptions {
        follow: opts.follow,
        stdout: true,
        stderr: true,
        since: since.map(|t| t.as_second() as i32).unwrap_or(0),
        until: 0,
        timestamps: true,
        tail: opts
            .tail_lines
            .filter(|t| *t >= 0)
            .map(|t| t.to_string())
            .unwrap_or_else(|| "all".into()),
    };
    let timestamps = opts.timestamps;
    let output = engine.logs(id, Some(query)).filter_map(move |item| {
        let out = match item {
            Err(e) => Some(Err(std::io::Error::other(e.to_string()))),
            Ok(frame) => {
                let bytes = frame.into_bytes();
                let (stamp, line) = match bytes.iter().position(|b| *b == b' ') {
                    Some(i) => (
                        std::str::from_utf8(&bytes[..i])
                            .ok()
                            .and_then(|s| s.parse::<Timestamp>().ok()),
                        bytes.slice(i + 1..),
                    ),
                    None => (None, bytes.clone()),
                };
                match stamp {
                    Some(t) if since.is_some_and(|s| t < s) => None,
                    _ if timestamps => Some(Ok(bytes)),
                    _ => Some(Ok(line)),
                }
            }
        };
        futures::future::ready(out)
    });
    Ok(output.boxed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_pick_containers_like_the_api_server() {
        let pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        assert_eq!(
            container_name(&pod, "p", None).unwrap_err().message,
            "a container name must be specified for pod p, choose one of: [a b]"
        );
        assert_eq!(
            container_name(&pod, "p", Some("c")).unwrap_err().message,
            "container c is not valid for pod p"
        );
        assert_eq!(container_name(&pod, "p", Some("b")).unwrap(), "b");
    }

    #[test]
    fn waiting_containers_have_no_logs_yet() {
        let pod = json!({"status": {"containerStatuses": [{"name": "a", "state": {"waiting": {"reason": "ErrImagePull"}}, "lastState": {}}]}});
        assert_eq!(
            container_id(&pod, "p", "a", false).unwrap_err().message,
            "container \"a\" in pod \"p\" is waiting to start: image can't be pulled"
        );
        assert_eq!(
            container_id(&pod, "p", "a", true).unwrap_err().message,
            "previous terminated container \"a\" in pod \"p\" not found"
        );
    }
}
