//! Pod volumes for the docker runtime: host directories under the system
//! temp dir, bind-mounted into the containers. emptyDir is shared by the
//! pod's containers; configMap and secret volumes are written once, when
//! the pod's sandbox is set up, and mounted read-only.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::cluster::Cluster;

use super::config;

fn instance_dir(instance: &str) -> PathBuf {
    std::env::temp_dir().join(format!("kube-emulator-{instance}"))
}

fn pod_dir(cluster: &Cluster, uid: &str) -> PathBuf {
    instance_dir(&cluster.instance).join(uid)
}

pub(super) fn remove_instance_dirs(instance: &str) {
    let _ = std::fs::remove_dir_all(instance_dir(instance));
}

pub(super) fn remove_pod(cluster: &Cluster, uid: &str) {
    let _ = std::fs::remove_dir_all(pod_dir(cluster, uid));
}

/// A volume on the host: where it is and whether containers may write it.
#[derive(Debug, Clone)]
pub(super) struct HostVolume {
    path: PathBuf,
    read_only: bool,
}

fn open_dir(path: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(path)?;
    // Containers run as any user (UID 1001 in the tests): the directory must let them write.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777))
}

fn write_files(
    dir: &Path,
    data: &std::collections::BTreeMap<String, Vec<u8>>,
    items: Option<&Vec<Value>>,
) -> std::io::Result<()> {
    open_dir(dir)?;
    let files: Vec<(String, &Vec<u8>)> = match items {
        Some(items) => items
            .iter()
            .filter_map(|i| {
                let key = i["key"].as_str()?;
                Some((
                    i["path"].as_str().unwrap_or(key).to_string(),
                    data.get(key)?,
                ))
            })
            .collect(),
        None => data.iter().map(|(k, v)| (k.clone(), v)).collect(),
    };
    for (path, bytes) in files {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, bytes)?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644))?;
    }
    Ok(())
}

/// Creates the pod's volumes. The error is the kubelet's FailedMount message.
pub(super) fn prepare(
    cluster: &Cluster,
    pod: &Value,
) -> Result<HashMap<String, HostVolume>, String> {
    let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let mut out = HashMap::new();
    for v in pod["spec"]["volumes"].as_array().into_iter().flatten() {
        let name = v["name"].as_str().unwrap_or_default();
        let dir = pod_dir(cluster, uid).join("volumes").join(name);
        let source = v
            .get("configMap")
            .map(|s| ("ConfigMap", s, s["name"].as_str()))
            .or_else(|| {
                v.get("secret")
                    .map(|s| ("Secret", s, s["secretName"].as_str()))
            });
        let (path, read_only) = if let Some(host) =
            v.pointer("/hostPath/path").and_then(Value::as_str)
        {
            (PathBuf::from(host), false)
        } else if let Some((kind, s, obj)) = source {
            let obj = obj.unwrap_or_default();
            let data = match config::data(cluster, kind, ns, obj) {
                Some(d) => d,
                None if s["optional"].as_bool() == Some(true) => Default::default(),
                None => {
                    return Err(format!(
                        "MountVolume.SetUp failed for volume \"{name}\" : {} \"{obj}\" not found",
                        kind.to_lowercase()
                    ));
                }
            };
            write_files(&dir, &data, s["items"].as_array())
                .map_err(|e| format!("MountVolume.SetUp failed for volume \"{name}\" : {e}"))?;
            (dir, true)
        } else {
            // emptyDir, and kinds the emulator has no content for, start empty.
            open_dir(&dir)
                .map_err(|e| format!("MountVolume.SetUp failed for volume \"{name}\" : {e}"))?;
            (dir, false)
        };
        out.insert(name.to_string(), HostVolume { path, read_only });
    }
    Ok(out)
}

/// The container's volumeMounts as Docker binds (`host:container[:ro]`).
pub(super) fn binds(container: &Value, volumes: &HashMap<String, HostVolume>) -> Vec<String> {
    container["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let v = volumes.get(m["name"].as_str()?)?;
            let mut host = v.path.clone();
            if let Some(sub) = m["subPath"].as_str().filter(|s| !s.is_empty()) {
                host = host.join(sub);
                if !host.exists() {
                    let _ = open_dir(&host);
                }
            }
            let ro = v.read_only || m["readOnly"].as_bool() == Some(true);
            Some(format!(
                "{}:{}{}",
                host.display(),
                m["mountPath"].as_str()?,
                if ro { ":ro" } else { "" }
            ))
        })
        .collect()
}
