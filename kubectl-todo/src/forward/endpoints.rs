//! Which pod a new connection goes to: a pure choice over the Service's
//! EndpointSlices, so it can be tested without a cluster.

use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};

/// One ready pod behind the Service and the container port to dial on it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Backend {
    pub pod: String,
    pub port: u16,
}

/// Ready means the endpoint receives new traffic: a terminating pod keeps
/// its open connections but gets no new ones.
pub fn is_ready(endpoint: &Endpoint) -> bool {
    endpoint
        .conditions
        .as_ref()
        .is_some_and(|c| c.ready.unwrap_or(false) && !c.terminating.unwrap_or(false))
}

/// The ready pods serving the Service port named `port_name` ("" for an
/// unnamed port), sorted and without duplicates so that picks are stable.
pub fn ready_backends<'a>(
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
    port_name: &str,
) -> Vec<Backend> {
    let mut backends: Vec<Backend> = slices
        .into_iter()
        .filter_map(|slice| {
            let port = slice.ports.as_ref()?.iter().find(|p| {
                p.name.as_deref().unwrap_or("") == port_name
                    && p.protocol.as_deref().unwrap_or("TCP") == "TCP"
            })?;
            let port = u16::try_from(port.port?).ok()?;
            Some((slice, port))
        })
        .flat_map(|(slice, port)| {
            slice
                .endpoints
                .iter()
                .filter(|e| is_ready(e))
                .filter_map(move |e| {
                    let target = e.target_ref.as_ref()?;
                    if target.kind.as_deref() != Some("Pod") {
                        return None;
                    }
                    Some(Backend {
                        pod: target.name.clone()?,
                        port,
                    })
                })
        })
        .collect();
    backends.sort();
    backends.dedup();
    backends
}

/// Which version of the app a pod runs, as far as the forward can tell:
/// the controller that owns it (a Deployment's ReplicaSet is one version)
/// and when the pod was created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub owner: Option<String>,
    pub created: Option<jiff::Timestamp>,
}

/// The backends of the newest version among them: the owner of the most
/// recently created pod. During a rollout, once a pod of the new version
/// is ready, new connections reach that version only and never flip back
/// to the old one, which keeps serving the connections it has. Pods whose
/// version is not known yet (the pod watch lags) count as the oldest.
pub fn newest(backends: Vec<Backend>, version: impl Fn(&str) -> Option<Version>) -> Vec<Backend> {
    let versions: Vec<Option<Version>> = backends.iter().map(|b| version(&b.pod)).collect();
    let Some(newest) = versions
        .iter()
        .flatten()
        .max_by_key(|v| v.created)
        .map(|v| v.owner.clone())
    else {
        return backends;
    };
    backends
        .into_iter()
        .zip(versions)
        .filter(|(_, v)| v.as_ref().is_some_and(|v| v.owner == newest))
        .map(|(b, _)| b)
        .collect()
}

/// The backend for the `turn`-th connection, skipping pods this connection
/// already failed to reach; turns rotate so load spreads over the pods.
pub fn pick<'a>(backends: &'a [Backend], turn: usize, tried: &[Backend]) -> Option<&'a Backend> {
    let fresh: Vec<&Backend> = backends.iter().filter(|b| !tried.contains(b)).collect();
    (!fresh.is_empty()).then(|| fresh[turn % fresh.len()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn slice(port_name: &str, port: i32, endpoints: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": {"name": "web-x", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
            "endpoints": endpoints,
        }))
        .unwrap()
    }

    fn endpoint(pod: &str, ready: bool, terminating: bool) -> serde_json::Value {
        json!({
            "addresses": ["10.0.0.1"],
            "conditions": {"ready": ready, "serving": ready, "terminating": terminating},
            "targetRef": {"kind": "Pod", "name": pod, "namespace": "todo"},
        })
    }

    fn backend(pod: &str, port: u16) -> Backend {
        Backend {
            pod: pod.into(),
            port,
        }
    }

    #[test]
    fn only_ready_and_not_terminating_pods_of_the_named_port_are_chosen() {
        let slices = [
            slice(
                "http",
                8080,
                json!([
                    endpoint("web-b", true, false),
                    endpoint("web-old", false, true),
                    endpoint("web-starting", false, false),
                    endpoint("web-a", true, false),
                ]),
            ),
            slice("metrics", 9090, json!([endpoint("web-c", true, false)])),
        ];
        assert_eq!(
            ready_backends(&slices, "http"),
            [backend("web-a", 8080), backend("web-b", 8080)]
        );
        assert_eq!(ready_backends(&slices, "metrics"), [backend("web-c", 9090)]);
        assert_eq!(ready_backends(&slices, "admin"), []);
    }

    #[test]
    fn endpoints_without_conditions_or_a_pod_are_skipped() {
        let slices = [slice(
            "",
            8000,
            json!([
                {"addresses": ["10.0.0.2"], "targetRef": {"kind": "Pod", "name": "no-conditions"}},
                {"addresses": ["10.0.0.3"], "conditions": {"ready": true}},
                {"addresses": ["10.0.0.4"], "conditions": {"ready": true},
                 "targetRef": {"kind": "Node", "name": "n1"}},
                {"addresses": ["10.0.0.5"], "conditions": {"ready": true},
                 "targetRef": {"kind": "Pod", "name": "api-1"}},
            ]),
        )];
        assert_eq!(ready_backends(&slices, ""), [backend("api-1", 8000)]);
    }

    #[test]
    fn the_same_pod_in_two_slices_counts_once() {
        let one = slice("http", 8080, json!([endpoint("web-a", true, false)]));
        assert_eq!(
            ready_backends([&one, &one.clone()], "http"),
            [backend("web-a", 8080)]
        );
    }

    fn version(owner: &str, created: &str) -> Option<Version> {
        Some(Version {
            owner: Some(owner.into()),
            created: Some(created.parse().unwrap()),
        })
    }

    #[test]
    fn new_connections_go_to_the_version_of_the_newest_pod() {
        let all = vec![
            backend("web-old-a", 1),
            backend("web-old-b", 1),
            backend("web-new-a", 1),
            backend("web-new-b", 1),
            backend("web-lagging", 1),
        ];
        let versions = |pod: &str| match pod {
            "web-old-a" => version("rs-old", "2026-01-01T10:00:00Z"),
            // Recreated after the new version's first pod, yet still the old version.
            "web-old-b" => version("rs-old", "2026-01-01T10:00:30Z"),
            "web-new-a" => version("rs-new", "2026-01-01T10:00:20Z"),
            "web-new-b" => version("rs-new", "2026-01-01T10:00:40Z"),
            _ => None,
        };
        assert_eq!(
            newest(all.clone(), versions),
            [backend("web-new-a", 1), backend("web-new-b", 1)]
        );
        // Until the new version's pods are ready, the old one serves.
        assert_eq!(
            newest(all[..2].to_vec(), versions),
            [backend("web-old-a", 1), backend("web-old-b", 1)]
        );
        // Nothing known yet: every ready pod.
        assert_eq!(newest(all.clone(), |_| None), all);
    }

    #[test]
    fn pods_without_an_owner_are_one_version() {
        let all = vec![backend("a", 1), backend("b", 1)];
        let bare = |pod: &str| {
            Some(Version {
                owner: None,
                created: Some(
                    if pod == "a" {
                        "2026-01-01T10:00:00Z"
                    } else {
                        "2026-01-01T11:00:00Z"
                    }
                    .parse()
                    .unwrap(),
                ),
            })
        };
        assert_eq!(newest(all.clone(), bare), all);
    }

    #[test]
    fn picks_rotate_and_skip_pods_that_failed() {
        let all = [backend("a", 1), backend("b", 1), backend("c", 1)];
        assert_eq!(pick(&all, 0, &[]), Some(&all[0]));
        assert_eq!(pick(&all, 4, &[]), Some(&all[1]));
        assert_eq!(pick(&all, 0, &[backend("a", 1)]), Some(&all[1]));
        assert_eq!(pick(&all, 1, &[backend("a", 1)]), Some(&all[2]));
        assert_eq!(pick(&all, 0, &all), None);
        assert_eq!(pick(&[], 0, &[]), None);
    }
}
