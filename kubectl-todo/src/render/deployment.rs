//! The Deployment of a component, hardened so that it passes the usual
//! Kubernetes checks (Pod Security "restricted", kube-score, Polaris).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapEnvSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvFromSource, EnvVar, EnvVarSource, HTTPGetAction, Lifecycle, LifecycleHandler,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile,
    SecretKeySelector, SecurityContext, SleepAction, TCPSocketAction, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{CONFIG_CHECKSUM_ANNOTATION, Inputs, Users, meta, object_name, selector};
use crate::labels::SECRET_CHECKSUM_ANNOTATION;
use crate::project::{Component, Project, Quantities};

/// The numeric user and group image-builder's generated images run as, and
/// what a component runs as before its image is built.
pub const APP_USER: i64 = 1001;

/// How long a terminating pod keeps serving before SIGTERM. Its removal
/// from the endpoints travels to kube-proxy, ingress controllers and
/// port-forwards meanwhile, and the requests it has in flight finish: many
/// servers (Next.js' standalone one among them) exit at once on SIGTERM.
const PRE_STOP_SLEEP_SECONDS: i64 = 5;

pub(super) fn deployment(
    project: &Project,
    c: &Component,
    inputs: &Inputs,
    config_checksum: &str,
) -> Deployment {
    let image = inputs.images.get(&c.name).cloned().unwrap_or_default();
    let version = version_of(&image);
    let mut template_meta = meta(project, c, version);
    template_meta.name = None;
    template_meta.namespace = None;
    let mut annotations = BTreeMap::from([(
        CONFIG_CHECKSUM_ANNOTATION.to_string(),
        config_checksum.to_string(),
    )]);
    if let (false, Some(sum)) = (c.secret_keys.is_empty(), &inputs.secret_checksum) {
        annotations.insert(SECRET_CHECKSUM_ANNOTATION.to_string(), sum.clone());
    }
    template_meta.annotations = Some(annotations);
    Deployment {
        metadata: meta(project, c, version),
        spec: Some(DeploymentSpec {
            replicas: Some(c.replicas),
            revision_history_limit: Some(5),
            selector: LabelSelector {
                match_labels: Some(selector(project, c)),
                ..LabelSelector::default()
            },
            // A new pod must be ready before an old one goes: no capacity is lost during a rollout.
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_unavailable: Some(IntOrString::Int(0)),
                    max_surge: Some(IntOrString::Int(1)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(template_meta),
                spec: Some(pod(project, c, image, &inputs.users)),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

/// The tag of an image reference, used as `app.kubernetes.io/version`; a
/// pushed image is deployed by digest (`repo:tag@sha256:…`), which is no label value.
fn version_of(image: &str) -> Option<&str> {
    let without_digest = image.split('@').next()?;
    let (_, tag) = without_digest.rsplit_once(':')?;
    (!tag.contains('/')).then_some(tag)
}

fn pod(project: &Project, c: &Component, image: String, users: &Users) -> PodSpec {
    // A named user's numbers are unknown until its image is built: none is
    // better than a wrong one (runAsNonRoot still holds the line).
    let (uid, gid) = match users.resolved.get(&c.name) {
        _ if users.after_build.contains_key(&c.name) => (None, None),
        Some(r) => (Some(i64::from(r.uid)), Some(i64::from(r.gid))),
        None => (Some(APP_USER), Some(APP_USER)),
    };
    let names = volume_names(&c.writable_paths);
    let (volumes, mounts): (Vec<_>, Vec<_>) = c
        .writable_paths
        .iter()
        .zip(names)
        .map(|(path, name)| {
            let volume = Volume {
                name: name.clone(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Volume::default()
            };
            let mount = VolumeMount {
                name,
                mount_path: path.clone(),
                ..VolumeMount::default()
            };
            (volume, mount)
        })
        .unzip();
    PodSpec {
        service_account_name: Some(object_name(project, c)),
        automount_service_account_token: Some(false),
        // Service links put every Service of the namespace into the environment; the apps use DNS.
        enable_service_links: Some(false),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: uid,
            run_as_group: gid,
            fs_group: gid,
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..SeccompProfile::default()
            }),
            ..PodSecurityContext::default()
        }),
        containers: vec![container(project, c, image, mounts)],
        volumes: Some(volumes),
        ..PodSpec::default()
    }
}

fn container(
    project: &Project,
    c: &Component,
    image: String,
    mounts: Vec<VolumeMount>,
) -> Container {
    let env: Vec<EnvVar> = c
        .secret_keys
        .iter()
        .map(|key| EnvVar {
            name: key.clone(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: project.secret.name.clone(),
                    key: key.clone(),
                    optional: Some(
                        !project
                            .secret
                            .keys
                            .iter()
                            .any(|k| &k.name == key && k.required),
                    ),
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        })
        .collect();
    Container {
        name: c.name.clone(),
        image: Some(image),
        image_pull_policy: Some("IfNotPresent".into()),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: c.port.into(),
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        env_from: Some(vec![EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: object_name(project, c),
                optional: Some(false),
            }),
            ..EnvFromSource::default()
        }]),
        env: (!env.is_empty()).then_some(env),
        resources: Some(ResourceRequirements {
            requests: Some(quantities(&c.resources.requests)),
            limits: Some(quantities(&c.resources.limits)),
            ..ResourceRequirements::default()
        }),
        // Slow first starts (Next.js warming up) get a minute before liveness counts.
        startup_probe: Some(probe(c.health_path.as_deref(), 2, 30)),
        liveness_probe: Some(probe(c.health_path.as_deref(), 10, 3)),
        readiness_probe: Some(probe(c.ready_path.as_deref(), 5, 3)),
        // A `sleep` hook needs no shell or binary in the image (distroless and scratch images have none).
        lifecycle: Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                sleep: Some(SleepAction {
                    seconds: PRE_STOP_SLEEP_SECONDS,
                }),
                ..LifecycleHandler::default()
            }),
            ..Lifecycle::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            privileged: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(mounts),
        ..Container::default()
    }
}

fn quantities(q: &Quantities) -> BTreeMap<String, Quantity> {
    BTreeMap::from([
        ("cpu".to_string(), Quantity(q.cpu.clone())),
        ("memory".to_string(), Quantity(q.memory.clone())),
    ])
}

/// An HTTP probe on `path`; without one, a TCP connection to the port, as
/// nothing says which path the app answers.
fn probe(path: Option<&str>, period: i32, failures: i32) -> Probe {
    let port = IntOrString::String("http".into());
    Probe {
        http_get: path.map(|path| HTTPGetAction {
            path: Some(path.to_string()),
            port: port.clone(),
            scheme: Some("HTTP".into()),
            ..HTTPGetAction::default()
        }),
        tcp_socket: path.is_none().then(|| TCPSocketAction {
            port,
            ..TCPSocketAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(2),
        ..Probe::default()
    }
}

/// One volume name per path, distinct even where two paths spell the same
/// name (`/var/x-y` and `/var/x/y`): a later one gets `-2`, `-3`, ….
fn volume_names(paths: &[String]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for path in paths {
        let base = volume_name(path);
        let mut name = base.clone();
        let mut n = 2;
        while names.contains(&name) {
            let suffix = format!("-{n}");
            let keep = base.len().min(63 - suffix.len());
            name = format!("{}{suffix}", base[..keep].trim_end_matches('-'));
            n += 1;
        }
        names.push(name);
    }
    names
}

/// A DNS-label volume name from a path: `/app/.next/cache` → `app-next-cache`.
fn volume_name(path: &str) -> String {
    let mut name = String::new();
    for ch in path.chars() {
        if ch.is_ascii_alphanumeric() {
            name.push(ch.to_ascii_lowercase());
        } else if !name.is_empty() && !name.ends_with('-') {
            name.push('-');
        }
    }
    let name = name.trim_end_matches('-');
    let name = if name.is_empty() { "root" } else { name };
    name.chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_names_are_dns_labels() {
        assert_eq!(volume_name("/tmp"), "tmp");
        assert_eq!(volume_name("/app/.next/cache"), "app-next-cache");
        assert_eq!(volume_name("/"), "root");
    }

    #[test]
    fn paths_that_spell_the_same_name_get_distinct_volumes() {
        let paths = ["/var/x-y", "/var/x/y", "/var/x.y"].map(String::from);
        assert_eq!(volume_names(&paths), ["var-x-y", "var-x-y-2", "var-x-y-3"]);
        let long = ["/a".repeat(40), "/a".repeat(41)];
        let names = volume_names(&long);
        assert_ne!(names[0], names[1]);
        assert!(names.iter().all(|n| n.len() <= 63), "{names:?}");
    }

    #[test]
    fn the_version_is_the_tag() {
        assert_eq!(
            version_of("todo-frontend:0123456789abcdef"),
            Some("0123456789abcdef")
        );
        assert_eq!(version_of("localhost:5000/todo-frontend"), None);
        assert_eq!(
            version_of("localhost:5000/todo-frontend:0123456789abcdef@sha256:6905a4ec"),
            Some("0123456789abcdef")
        );
    }
}
