//! The deployment controller, after kube-controller-manager's: one replica
//! set per pod template, rolling or recreating between them, and the
//! deployment's status and conditions as `kubectl rollout status` reads them.

use serde_json::{Value, json};

use super::deployment_util::*;
use super::{
    CONTROLLER_MANAGER, adopt, controller_ref, controller_uid, deleting, int, name, namespace,
    opts, terminal, uid, write,
};
use crate::cluster::Cluster;
use crate::events::Severity;
use crate::resources::{self, ResourceDef};
use crate::selector::LabelSelector;
use crate::store::DeleteOptions;
use crate::time;

const COMPONENT: &str = "deployment-controller";

fn deployments() -> &'static ResourceDef {
    resources::get("apps/v1", "Deployment")
}

fn replica_sets() -> &'static ResourceDef {
    resources::get("apps/v1", "ReplicaSet")
}

pub fn reconcile(cluster: &Cluster) {
    for d in cluster.store.all(deployments(), None) {
        Sync { cluster, d }.run();
    }
}

fn total_replicas(rss: &[Value]) -> i64 {
    rss.iter().map(replicas).sum()
}

fn status_sum(rss: &[Value], field: &str) -> i64 {
    rss.iter()
        .map(|rs| int(rs, &format!("/status/{field}")))
        .sum()
}

/// Available replicas, never more than the replica set is scaled to: its
/// status may not yet have caught up with a scale-down we just made.
fn available(rs: &Value) -> i64 {
    int(rs, "/status/availableReplicas").min(replicas(rs))
}

fn active(rss: &[Value]) -> Vec<Value> {
    rss.iter().filter(|rs| replicas(rs) > 0).cloned().collect()
}

fn has_progress_deadline(d: &Value) -> bool {
    d.pointer("/spec/progressDeadlineSeconds")
        .and_then(Value::as_i64)
        .is_some_and(|s| s != i64::from(i32::MAX))
}

struct Sync<'a> {
    cluster: &'a Cluster,
    d: Value,
}

impl Sync<'_> {
    fn run(mut self) {
        let rss = self.owned_replica_sets();
        if deleting(&self.d) {
            let (new, old) = self.new_and_old(&rss, false);
            return self.sync_status(&all(&new, &old), new.as_ref());
        }
        self.check_paused_conditions();
        if self.d.pointer("/spec/paused") == Some(&json!(true)) || self.is_scaling_event(&rss) {
            return self.sync(&rss);
        }
        if rolling(&self.d) {
            self.rollout_rolling(&rss);
        } else {
            self.rollout_recreate(&rss);
        }
    }

    fn owned_replica_sets(&self) -> Vec<Value> {
        let d = &self.d;
        let selector =
            LabelSelector::from_object(d.pointer("/spec/selector").unwrap_or(&Value::Null));
        let mut out = Vec::new();
        for rs in self.cluster.store.all(replica_sets(), Some(namespace(d))) {
            match controller_uid(&rs) {
                Some(u) if u == uid(d) => out.push(rs),
                None if !deleting(d)
                    && !deleting(&rs)
                    && !selector.is_empty()
                    && selector.matches(&rs) =>
                {
                    out.extend(adopt(&self.cluster.store, replica_sets(), &rs, d));
                }
                _ => {}
            }
        }
        out.sort_by(by_creation);
        out
    }

    fn event(&self, message: String) {
        let r = &self.cluster.recorder;
        r.record(
            &self.d,
            Severity::Normal,
            "ScalingReplicaSet",
            &message,
            COMPONENT,
            None,
        );
    }

    fn write_status(&mut self, status: Value) {
        if self.d.get("status") == Some(&status) {
            return;
        }
        let written = write(
            &self.cluster.store,
            deployments(),
            &self.d,
            "status",
            CONTROLLER_MANAGER,
            |o| {
                o["status"] = status.clone();
            },
        );
        if written.is_some() {
            self.d["status"] = status;
        }
    }

    fn status(&self) -> Value {
        self.d
            .get("status")
            .filter(|s| s.is_object())
            .cloned()
            .unwrap_or(json!({}))
    }

    /// `checkPausedConditions`: pausing and resuming reset the progress clock.
    fn check_paused_conditions(&mut self) {
        if !has_progress_deadline(&self.d) {
            return;
        }
        let mut status = self.status();
        let reason = get_condition(&status, "Progressing").map(|c| c["reason"].clone());
        if reason == Some(json!("ProgressDeadlineExceeded")) {
            return;
        }
        let paused_reported = reason == Some(json!("DeploymentPaused"));
        let paused = self.d.pointer("/spec/paused") == Some(&json!(true));
        if paused && !paused_reported {
            set_condition(
                &mut status,
                new_condition(
                    "Progressing",
                    "Unknown",
                    "DeploymentPaused",
                    "Deployment is paused",
                ),
            );
        } else if !paused && paused_reported {
            set_condition(
                &mut status,
                new_condition(
                    "Progressing",
                    "Unknown",
                    "DeploymentResumed",
                    "Deployment is resumed",
                ),
            );
        } else {
            return;
        }
        self.write_status(status);
    }

    fn is_scaling_event(&mut self, rss: &[Value]) -> bool {
        let (new, old) = self.new_and_old(rss, false);
        active(&all(&new, &old)).iter().any(|rs| {
            annotation(rs, DESIRED_REPLICAS)
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|desired| desired != replicas(&self.d))
        })
    }

    /// `getAllReplicaSetsAndSyncRevision`: the replica set of the current
    /// template (created when asked and missing) and all the others.
    fn new_and_old(&mut self, rss: &[Value], create: bool) -> (Option<Value>, Vec<Value>) {
        let template = self
            .d
            .pointer("/spec/template")
            .cloned()
            .unwrap_or(Value::Null);
        let existing = rss.iter().find(|rs| {
            same_template(
                rs.pointer("/spec/template").unwrap_or(&Value::Null),
                &template,
            )
        });
        let old: Vec<Value> = rss
            .iter()
            .filter(|rs| existing.is_none_or(|e| uid(e) != uid(rs)))
            .cloned()
            .collect();
        let new_revision = old.iter().map(revision).max().unwrap_or(0) + 1;
        let new = match existing {
            Some(rs) => Some(self.sync_existing_new(rs, new_revision)),
            None if create => self.create_new(&template, &old, new_revision),
            None => None,
        };
        (new, old)
    }

    fn sync_existing_new(&mut self, rs: &Value, new_revision: i64) -> Value {
        let mut copy = rs.clone();
        let annotations_changed = set_new_rs_annotations(&self.d, &mut copy, new_revision, true);
        let min_ready = self.d.pointer("/spec/minReadySeconds").cloned();
        if annotations_changed || copy.pointer("/spec/minReadySeconds") != min_ready.as_ref() {
            let annotations = copy["metadata"]["annotations"].clone();
            let written = write(
                &self.cluster.store,
                replica_sets(),
                rs,
                "",
                CONTROLLER_MANAGER,
                |o| {
                    o["metadata"]["annotations"] = annotations;
                    match &min_ready {
                        Some(m) => o["spec"]["minReadySeconds"] = m.clone(),
                        None => {
                            if let Some(spec) = o["spec"].as_object_mut() {
                                spec.remove("minReadySeconds");
                            }
                        }
                    }
                },
            );
            return written.unwrap_or(copy);
        }
        if let Some(r) = annotation(&copy, REVISION) {
            self.set_deployment_revision(r);
        }
        let mut status = self.status();
        if has_progress_deadline(&self.d) && get_condition(&status, "Progressing").is_none() {
            let message = format!("Found new replica set \"{}\"", name(&copy));
            set_condition(
                &mut status,
                new_condition("Progressing", "True", "FoundNewReplicaSet", &message),
            );
            self.write_status(status);
        }
        copy
    }

    fn set_deployment_revision(&mut self, revision: &str) {
        if annotation(&self.d, REVISION) == Some(revision) {
            return;
        }
        let written = write(
            &self.cluster.store,
            deployments(),
            &self.d,
            "",
            CONTROLLER_MANAGER,
            |o| {
                if !o["metadata"]["annotations"].is_object() {
                    o["metadata"]["annotations"] = json!({});
                }
                o["metadata"]["annotations"][REVISION] = json!(revision);
            },
        );
        if written.is_some() {
            if !self.d["metadata"]["annotations"].is_object() {
                self.d["metadata"]["annotations"] = json!({});
            }
            self.d["metadata"]["annotations"][REVISION] = json!(revision);
        }
    }

    fn create_new(&mut self, template: &Value, old: &[Value], new_revision: i64) -> Option<Value> {
        let d = &self.d;
        let collisions = d.pointer("/status/collisionCount").and_then(Value::as_i64);
        let hash = template_hash(template, collisions);
        let rs_name = format!("{}-{hash}", name(d));
        let template = with_hash_label(template, "/metadata/labels", &hash);
        let mut rs = json!({
            "metadata": {
                "name": rs_name,
                "namespace": namespace(d),
                "ownerReferences": [controller_ref(d)],
                "labels": template["metadata"]["labels"],
            },
            "spec": {
                "replicas": 0,
                "selector": with_hash_label(&d["spec"]["selector"], "/matchLabels", &hash),
                "template": template,
            }
        });
        if let Some(m) = d.pointer("/spec/minReadySeconds") {
            rs["spec"]["minReadySeconds"] = m.clone();
        }
        let count = self.new_rs_replicas(&all(&Some(rs.clone()), old), &rs);
        rs["spec"]["replicas"] = json!(count);
        set_new_rs_annotations(d, &mut rs, new_revision, false);
        let created = match self
            .cluster
            .store
            .create(replica_sets(), namespace(d), rs, &opts())
        {
            Ok(created) => {
                if count > 0 {
                    self.event(format!("Scaled up replica set {rs_name} from 0 to {count}"));
                }
                created
            }
            Err(e) if e.reason == "AlreadyExists" => {
                let existing =
                    self.cluster
                        .store
                        .try_get(replica_sets(), namespace(d), &rs_name)?;
                let ours = controller_uid(&existing) == Some(uid(d));
                if ours && same_template(&existing["spec"]["template"], &d["spec"]["template"]) {
                    return Some(existing);
                }
                // A hash collision: the next sync hashes with a bumped count.
                let mut status = self.status();
                status["collisionCount"] = json!(collisions.unwrap_or(0) + 1);
                self.write_status(status);
                return None;
            }
            Err(e) if e.code == 403 => return None,
            Err(e) => {
                if has_progress_deadline(d) {
                    let message = format!(
                        "Failed to create new replica set \"{rs_name}\": {}",
                        e.message
                    );
                    let mut status = self.status();
                    set_condition(
                        &mut status,
                        new_condition("Progressing", "False", "ReplicaSetCreateError", &message),
                    );
                    self.write_status(status);
                }
                return None;
            }
        };
        self.set_deployment_revision(&new_revision.to_string());
        if has_progress_deadline(&self.d) {
            let message = format!("Created new replica set \"{rs_name}\"");
            let mut status = self.status();
            set_condition(
                &mut status,
                new_condition("Progressing", "True", "NewReplicaSetCreated", &message),
            );
            self.write_status(status);
        }
        Some(created)
    }

    /// `NewRSNewReplicas`: how far the new replica set may grow now.
    fn new_rs_replicas(&self, all_rss: &[Value], new: &Value) -> i64 {
        let desired = replicas(&self.d);
        if !rolling(&self.d) {
            return desired;
        }
        let max_total = desired + max_surge(&self.d);
        let current = total_replicas(all_rss);
        if current >= max_total {
            return replicas(new);
        }
        replicas(new) + (max_total - current).min(desired - replicas(new))
    }

    /// `scaleReplicaSet`: the size and the desired/max annotations together.
    fn scale(&self, rs: &Value, size: i64, operation: &str) -> (bool, Value) {
        let desired = replicas(&self.d);
        let max = desired + max_surge(&self.d);
        let mut copy = rs.clone();
        let size_changed = replicas(rs) != size;
        if !set_replicas_annotations(&mut copy, desired, max) && !size_changed {
            return (false, rs.clone());
        }
        let annotations = copy["metadata"]["annotations"].clone();
        let written = write(
            &self.cluster.store,
            replica_sets(),
            rs,
            "",
            CONTROLLER_MANAGER,
            |o| {
                o["spec"]["replicas"] = json!(size);
                o["metadata"]["annotations"] = annotations;
            },
        );
        match written {
            Some(updated) => {
                if size_changed {
                    self.event(format!(
                        "Scaled {operation} replica set {} from {} to {size}",
                        name(rs),
                        replicas(rs)
                    ));
                }
                (size_changed, updated)
            }
            None => (false, rs.clone()),
        }
    }

    fn scale_and_record(&self, rs: &Value, size: i64) -> (bool, Value) {
        if replicas(rs) == size {
            return (false, rs.clone());
        }
        self.scale(rs, size, if replicas(rs) > size { "down" } else { "up" })
    }

    /// `sync`: scaling only, for paused deployments and changes of `spec.replicas`.
    fn sync(&mut self, rss: &[Value]) {
        let (new, old) = self.new_and_old(rss, false);
        self.proportional_scale(new.as_ref(), &old);
        let (new, old) = self.new_and_old(&self.owned_replica_sets(), false);
        if self.d.pointer("/spec/paused") == Some(&json!(true)) {
            self.cleanup(&old);
        }
        self.sync_status(&all(&new, &old), new.as_ref());
    }

    /// `scale`: one active replica set takes the whole size; several share a
    /// change in proportion to their sizes.
    fn proportional_scale(&self, new: Option<&Value>, old: &[Value]) {
        let desired = replicas(&self.d);
        let mut old_newest_first = old.to_vec();
        old_newest_first.sort_by(|a, b| by_creation(b, a));
        let everything = all(&new.cloned(), &old_newest_first);
        let act = active(&everything);
        let only = match act.len() {
            0 => new.cloned().or_else(|| old_newest_first.first().cloned()),
            1 => act.first().cloned(),
            _ => None,
        };
        if let Some(rs) = only {
            if replicas(&rs) != desired {
                self.scale_and_record(&rs, desired);
            }
            return;
        }
        let saturated = new.is_some_and(|n| {
            annotation(n, DESIRED_REPLICAS) == Some(&desired.to_string())
                && replicas(n) == desired
                && int(n, "/status/availableReplicas") == desired
        });
        if saturated {
            for rs in active(old) {
                self.scale_and_record(&rs, 0);
            }
            return;
        }
        if !rolling(&self.d) {
            return;
        }
        let mut act = act;
        let allowed = if desired > 0 {
            desired + max_surge(&self.d)
        } else {
            0
        };
        let to_add = allowed - total_replicas(&act);
        let operation = if to_add > 0 {
            act.sort_by(|a, b| {
                replicas(b)
                    .cmp(&replicas(a))
                    .then_with(|| by_creation(b, a))
            });
            "up"
        } else {
            act.sort_by(|a, b| {
                replicas(b)
                    .cmp(&replicas(a))
                    .then_with(|| by_creation(a, b))
            });
            "down"
        };
        let mut added = 0;
        let mut sizes: Vec<i64> = Vec::new();
        for rs in &act {
            let proportion = self.proportion(rs, to_add, added);
            sizes.push(replicas(rs) + proportion);
            added += proportion;
        }
        for (i, rs) in act.iter().enumerate() {
            let mut size = sizes[i];
            if i == 0 && to_add != 0 {
                size = (size + to_add - added).max(0);
            }
            self.scale(rs, size, operation);
        }
    }

    /// `GetReplicaSetProportion`: this replica set's share of a change in size.
    fn proportion(&self, rs: &Value, to_add: i64, added: i64) -> i64 {
        if replicas(rs) == 0 || to_add == 0 || to_add == added {
            return 0;
        }
        let desired = replicas(&self.d);
        let fraction = if desired == 0 {
            -replicas(rs)
        } else {
            let max_now = desired + max_surge(&self.d);
            let max_before = annotation(rs, MAX_REPLICAS)
                .and_then(|m| m.parse::<i64>().ok())
                .filter(|m| *m != 0)
                .unwrap_or_else(|| int(&self.d, "/status/replicas"));
            if max_before == 0 {
                0
            } else {
                ((replicas(rs) * max_now) as f64 / max_before as f64).round() as i64 - replicas(rs)
            }
        };
        let allowed = to_add - added;
        if to_add > 0 {
            fraction.min(allowed)
        } else {
            fraction.max(allowed)
        }
    }

    fn rollout_rolling(&mut self, rss: &[Value]) {
        let (new, old) = self.new_and_old(rss, true);
        // Creating the new replica set failed; its condition says why.
        let Some(new) = new else {
            return;
        };
        let everything = all(&Some(new.clone()), &old);
        let (scaled_up, new) = self.reconcile_new(&everything, &new);
        if scaled_up {
            return self.sync_rollout_status(&all(&Some(new.clone()), &old), Some(&new));
        }
        let (scaled_down, old) = self.reconcile_old(&new, old);
        let everything = all(&Some(new.clone()), &old);
        if !scaled_down && complete(&self.d, &self.d.get("status").cloned().unwrap_or(json!({}))) {
            self.cleanup(&old);
        }
        self.sync_rollout_status(&everything, Some(&new));
    }

    fn reconcile_new(&self, everything: &[Value], new: &Value) -> (bool, Value) {
        let desired = replicas(&self.d);
        if replicas(new) == desired {
            return (false, new.clone());
        }
        if replicas(new) > desired {
            return self.scale_and_record(new, desired);
        }
        let count = self.new_rs_replicas(everything, new);
        self.scale_and_record(new, count)
    }

    fn reconcile_old(&self, new: &Value, mut old: Vec<Value>) -> (bool, Vec<Value>) {
        if total_replicas(&old) == 0 {
            return (false, old);
        }
        let all_pods = total_replicas(&old) + replicas(new);
        let min_available = replicas(&self.d) - max_unavailable(&self.d);
        let new_unavailable = replicas(new) - available(new);
        let max_scaled_down = all_pods - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return (false, old);
        }
        old.sort_by(by_creation);
        // Unhealthy old replicas go first: removing them costs no availability.
        let mut cleaned = 0;
        for rs in old.iter_mut() {
            if cleaned >= max_scaled_down {
                break;
            }
            let unhealthy = replicas(rs) - available(rs);
            if replicas(rs) == 0 || unhealthy == 0 {
                continue;
            }
            let count = (max_scaled_down - cleaned).min(unhealthy);
            let (_, updated) = self.scale_and_record(rs, replicas(rs) - count);
            *rs = updated;
            cleaned += count;
        }
        let available_now: i64 = old.iter().map(available).sum::<i64>() + available(new);
        let mut scaled = 0;
        if available_now > min_available {
            let budget = available_now - min_available;
            for rs in old.iter_mut() {
                if scaled >= budget {
                    break;
                }
                if replicas(rs) == 0 {
                    continue;
                }
                let count = replicas(rs).min(budget - scaled);
                let (_, updated) = self.scale_and_record(rs, replicas(rs) - count);
                *rs = updated;
                scaled += count;
            }
        }
        (cleaned + scaled > 0, old)
    }

    fn rollout_recreate(&mut self, rss: &[Value]) {
        let (mut new, mut old) = self.new_and_old(rss, false);
        let mut scaled_down = false;
        for rs in active(&old) {
            scaled_down |= self.scale_and_record(&rs, 0).0;
        }
        if scaled_down {
            let refreshed = self.owned_replica_sets();
            let (new, old) = self.new_and_old(&refreshed, false);
            return self.sync_rollout_status(&all(&new, &old), new.as_ref());
        }
        if self.old_pods_running(new.as_ref(), &old) {
            return self.sync_rollout_status(&all(&new, &old), new.as_ref());
        }
        if new.is_none() {
            (new, old) = self.new_and_old(rss, true);
        }
        if let Some(rs) = &new {
            let (_, updated) = self.scale_and_record(rs, replicas(&self.d));
            new = Some(updated);
        }
        if complete(&self.d, &self.status()) {
            self.cleanup(&old);
        }
        self.sync_rollout_status(&all(&new, &old), new.as_ref());
    }

    fn old_pods_running(&self, new: Option<&Value>, old: &[Value]) -> bool {
        if status_sum(old, "replicas") > 0 {
            return true;
        }
        let old_uids: Vec<&str> = old.iter().map(uid).collect();
        self.cluster
            .store
            .all(resources::pods(), Some(namespace(&self.d)))
            .iter()
            .filter(|p| {
                controller_uid(p)
                    .is_some_and(|u| old_uids.contains(&u) && new.is_none_or(|n| uid(n) != u))
            })
            .any(|p| !terminal(p))
    }

    /// `cleanupDeployment`: old, empty replica sets beyond revisionHistoryLimit go.
    fn cleanup(&self, old: &[Value]) {
        let Some(limit) = self
            .d
            .pointer("/spec/revisionHistoryLimit")
            .and_then(Value::as_i64)
        else {
            return;
        };
        let mut cleanable: Vec<&Value> = old.iter().filter(|rs| !deleting(rs)).collect();
        let excess = cleanable.len() as i64 - limit;
        if excess <= 0 {
            return;
        }
        cleanable.sort_by(|a, b| {
            revision(a)
                .cmp(&revision(b))
                .then_with(|| by_creation(a, b))
        });
        for rs in cleanable.into_iter().take(excess as usize) {
            let settled = int(rs, "/metadata/generation") <= int(rs, "/status/observedGeneration");
            if int(rs, "/status/replicas") == 0 && replicas(rs) == 0 && settled {
                let _ = self.cluster.store.delete(
                    replica_sets(),
                    namespace(rs),
                    name(rs),
                    &DeleteOptions::default(),
                );
            }
        }
    }

    /// `calculateStatus`: the counts from the replica sets, and Available.
    fn calculate_status(&self, everything: &[Value], new: Option<&Value>) -> Value {
        let d = &self.d;
        let available = status_sum(everything, "availableReplicas");
        let mut status = json!({});
        let counts = [
            ("observedGeneration", int(d, "/metadata/generation")),
            ("replicas", status_sum(everything, "replicas")),
            (
                "updatedReplicas",
                new.map_or(0, |n| int(n, "/status/replicas")),
            ),
            ("readyReplicas", status_sum(everything, "readyReplicas")),
            ("availableReplicas", available),
            (
                "unavailableReplicas",
                (total_replicas(everything) - available).max(0),
            ),
        ];
        for (k, v) in counts {
            // The real status omits zero counts.
            if v != 0 {
                status[k] = json!(v);
            }
        }
        if let Some(c) = d.pointer("/status/collisionCount") {
            status["collisionCount"] = c.clone();
        }
        if let Some(c) = d.pointer("/status/conditions") {
            status["conditions"] = c.clone();
        }
        if available >= replicas(d) - max_unavailable(d) {
            let c = new_condition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
            );
            set_condition(&mut status, c);
        } else {
            let c = new_condition(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            );
            set_condition(&mut status, c);
        }
        status
    }

    fn sync_status(&mut self, everything: &[Value], new: Option<&Value>) {
        let status = self.calculate_status(everything, new);
        self.write_status(status);
    }

    /// `syncRolloutStatus`: the counts, and Progressing as the rollout moves,
    /// completes or stalls past its deadline.
    fn sync_rollout_status(&mut self, everything: &[Value], new: Option<&Value>) {
        let d = &self.d;
        let old_status = self.status();
        let mut status = self.calculate_status(everything, new);
        if !has_progress_deadline(d) {
            remove_condition(&mut status, "Progressing");
        }
        let current = get_condition(&old_status, "Progressing").cloned();
        let settled = int(&status, "/replicas") == int(&status, "/updatedReplicas")
            && current
                .as_ref()
                .is_some_and(|c| c["reason"] == "NewReplicaSetAvailable");
        let subject = match new {
            Some(rs) => format!("ReplicaSet \"{}\"", name(rs)),
            None => format!("Deployment \"{}\"", name(d)),
        };
        if has_progress_deadline(d) && !settled {
            if complete(d, &status) {
                let message = format!("{subject} has successfully progressed.");
                set_condition(
                    &mut status,
                    new_condition("Progressing", "True", "NewReplicaSetAvailable", &message),
                );
            } else if progressing(&old_status, &status) {
                let message = format!("{subject} is progressing.");
                let mut c = new_condition("Progressing", "True", "ReplicaSetUpdated", &message);
                // Progress moves lastUpdateTime, even when the reason stays the same.
                if let Some(cur) = current.as_ref() {
                    if cur["status"] == "True" {
                        c["lastTransitionTime"] = cur["lastTransitionTime"].clone();
                    }
                    remove_condition(&mut status, "Progressing");
                }
                set_condition(&mut status, c);
            } else if timed_out(d, &status) {
                let message = format!("{subject} has timed out progressing.");
                set_condition(
                    &mut status,
                    new_condition("Progressing", "False", "ProgressDeadlineExceeded", &message),
                );
            }
        }
        remove_condition(&mut status, "ReplicaFailure");
        self.write_status(status);
    }
}

fn all(new: &Option<Value>, old: &[Value]) -> Vec<Value> {
    old.iter().cloned().chain(new.iter().cloned()).collect()
}

/// `DeploymentComplete`
fn complete(d: &Value, status: &Value) -> bool {
    let desired = replicas(d);
    int(status, "/updatedReplicas") == desired
        && int(status, "/replicas") == desired
        && int(status, "/availableReplicas") == desired
        && int(status, "/observedGeneration") >= int(d, "/metadata/generation")
}

/// `DeploymentProgressing`: more updated, ready or available replicas, or fewer old ones.
fn progressing(old: &Value, new: &Value) -> bool {
    let old_replicas = int(old, "/replicas") - int(old, "/updatedReplicas");
    let new_old_replicas = int(new, "/replicas") - int(new, "/updatedReplicas");
    int(new, "/updatedReplicas") > int(old, "/updatedReplicas")
        || new_old_replicas < old_replicas
        || int(new, "/readyReplicas") > int(old, "/readyReplicas")
        || int(new, "/availableReplicas") > int(old, "/availableReplicas")
}

/// `DeploymentTimedOut`: no progress for progressDeadlineSeconds since the
/// Progressing condition last moved.
fn timed_out(d: &Value, status: &Value) -> bool {
    let Some(c) = get_condition(status, "Progressing") else {
        return false;
    };
    match c["reason"].as_str() {
        Some("NewReplicaSetAvailable") => false,
        Some("ProgressDeadlineExceeded") => true,
        _ => {
            let deadline = int(d, "/spec/progressDeadlineSeconds") as f64;
            c["lastUpdateTime"]
                .as_str()
                .and_then(time::seconds_since)
                .is_some_and(|s| s > deadline)
        }
    }
}
