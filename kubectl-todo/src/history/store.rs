//! Revisions live in the cluster, one ConfigMap each (`<project>-rev-<n>`):
//! the summary in annotations, the applied manifests gzipped in binaryData.
//! Only rendered objects go in, and those reference the Secret without
//! holding a value of it. The oldest are deleted beyond [`KEEP`].

use std::collections::BTreeMap;
use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams};
use serde::{Deserialize, Serialize};

use crate::labels;

/// How many revisions are kept.
pub const KEEP: usize = 10;
const REVISION_LABEL: &str = "kubectl-todo/revision";
const SUMMARY_ANNOTATION: &str = "kubectl-todo/summary";
const MANIFESTS_KEY: &str = "manifests.json.gz";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Being applied; if no run holds the lock, the run was interrupted.
    Applying,
    /// Every object applied and the stale ones pruned.
    Applied,
    Failed,
    /// Stopped by a signal part-way; the next `up` converges.
    Interrupted,
}

/// What `history` shows of a revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub revision: u32,
    /// RFC 3339.
    pub time: String,
    pub outcome: Outcome,
    /// `up`, `apply`, or `rollback to N`.
    pub origin: String,
    /// Image per component.
    pub images: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub struct Store {
    api: Api<ConfigMap>,
    project: String,
}

impl Store {
    pub fn new(client: kube::Client, namespace: &str, project: &str) -> Store {
        Store {
            api: Api::namespaced(client, namespace),
            project: project.to_string(),
        }
    }

    fn name(&self, revision: u32) -> String {
        format!("{}-rev-{revision}", self.project)
    }

    fn selector(&self) -> String {
        format!(
            "{},{REVISION_LABEL}",
            labels::project_selector(&self.project)
        )
    }

    /// All revisions, oldest first.
    pub async fn list(&self) -> Result<Vec<Summary>, kube::Error> {
        let maps = self
            .api
            .list(&ListParams::default().labels(&self.selector()))
            .await?;
        let mut out: Vec<Summary> = maps.items.iter().filter_map(summary_of).collect();
        out.sort_by_key(|s| s.revision);
        Ok(out)
    }

    /// The newest revision and the objects it applied, in one request.
    pub async fn latest(
        &self,
    ) -> Result<Option<(Summary, Option<Vec<serde_json::Value>>)>, kube::Error> {
        let maps = self
            .api
            .list(&ListParams::default().labels(&self.selector()))
            .await?;
        Ok(maps
            .items
            .iter()
            .filter_map(|m| Some((summary_of(m)?, m)))
            .max_by_key(|(s, _)| s.revision)
            .map(|(s, m)| (s, manifests_of(m))))
    }

    /// After a signal (`by`: its name): the revision still being applied is
    /// marked interrupted. Returns it, if there was one.
    pub async fn mark_interrupted(&self, by: &str) -> Result<Option<u32>, kube::Error> {
        let Some(mut last) = self.list().await?.pop() else {
            return Ok(None);
        };
        if last.outcome != Outcome::Applying {
            return Ok(None);
        }
        last.outcome = Outcome::Interrupted;
        last.error = Some(format!(
            "interrupted ({by}) before every object was applied"
        ));
        self.set_summary(&last).await?;
        Ok(Some(last.revision))
    }

    /// The objects a revision applied.
    pub async fn manifests(
        &self,
        revision: u32,
    ) -> Result<Option<Vec<serde_json::Value>>, kube::Error> {
        let Some(map) = self.api.get_opt(&self.name(revision)).await? else {
            return Ok(None);
        };
        Ok(manifests_of(&map))
    }

    /// Writes a revision (creating or updating it), then drops the oldest beyond [`KEEP`].
    pub async fn write(
        &self,
        summary: &Summary,
        manifests: &[serde_json::Value],
    ) -> Result<(), kube::Error> {
        let mut gz = GzEncoder::new(Vec::new(), Compression::best());
        gz.write_all(&serde_json::to_vec(manifests).expect("JSON values serialize"))
            .and_then(|_| gz.flush())
            .expect("writing to memory");
        let bytes = gz.finish().expect("writing to memory");
        let mut labels = labels::project(&self.project);
        labels.insert(REVISION_LABEL.into(), summary.revision.to_string());
        let map = ConfigMap {
            metadata: ObjectMeta {
                name: Some(self.name(summary.revision)),
                labels: Some(labels),
                annotations: Some(BTreeMap::from([(
                    SUMMARY_ANNOTATION.to_string(),
                    serde_json::to_string(summary).expect("a summary serializes"),
                )])),
                ..ObjectMeta::default()
            },
            binary_data: Some(BTreeMap::from([(
                MANIFESTS_KEY.to_string(),
                ByteString(bytes),
            )])),
            ..ConfigMap::default()
        };
        let params = PatchParams::apply(labels::FIELD_MANAGER).force();
        self.api
            .patch(&self.name(summary.revision), &params, &Patch::Apply(&map))
            .await?;
        let all = self.list().await?;
        for old in all.iter().take(all.len().saturating_sub(KEEP)) {
            self.api
                .delete(&self.name(old.revision), &DeleteParams::default())
                .await?;
        }
        Ok(())
    }

    /// Only the summary changes (the outcome once the apply ends).
    pub async fn set_summary(&self, summary: &Summary) -> Result<(), kube::Error> {
        let patch = serde_json::json!({"metadata": {"annotations": {
            SUMMARY_ANNOTATION: serde_json::to_string(summary).expect("a summary serializes")
        }}});
        self.api
            .patch(
                &self.name(summary.revision),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .map(|_| ())
    }

    pub async fn delete_all(&self) -> Result<(), kube::Error> {
        for s in self.list().await? {
            self.api
                .delete(&self.name(s.revision), &DeleteParams::default())
                .await?;
        }
        Ok(())
    }
}

fn manifests_of(map: &ConfigMap) -> Option<Vec<serde_json::Value>> {
    let bytes = map.binary_data.as_ref()?.get(MANIFESTS_KEY)?;
    let mut text = String::new();
    GzDecoder::new(&bytes.0[..])
        .read_to_string(&mut text)
        .ok()?;
    serde_json::from_str(&text).ok()
}

fn summary_of(map: &ConfigMap) -> Option<Summary> {
    let text = map.metadata.annotations.as_ref()?.get(SUMMARY_ANNOTATION)?;
    serde_json::from_str(text).ok()
}
