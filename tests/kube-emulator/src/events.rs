//! Events recorded the way the real components record them: one Event per
//! (object, reason, message), its count bumped when it happens again.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::resources;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{Store, WriteOptions, new_uid};
use crate::time;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Normal,
    Warning,
}

/// The component an event comes from: `kubelet`, `default-scheduler`, `deployment-controller`…
#[derive(Clone)]
pub struct Recorder {
    store: Arc<Store>,
    node: String,
}

impl Recorder {
    pub fn new(store: Arc<Store>, node: &str) -> Self {
        Self {
            store,
            node: node.to_string(),
        }
    }

    /// Records an event about `object` (any stored object). `field_path` is
    /// the container reference (`spec.containers{app}`) where there is one.
    pub fn record(
        &self,
        object: &Value,
        severity: Severity,
        reason: &str,
        message: &str,
        component: &str,
        field_path: Option<&str>,
    ) {
        let def = resources::get("v1", "Event");
        let ns = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string();
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let uid = object
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        let now = time::now();
        let selector = FieldSelector::parse(&format!("involvedObject.uid={uid},reason={reason}"))
            .expect("a well-formed selector");
        let (existing, _) = self
            .store
            .list(def, Some(&ns), &LabelSelector::default(), &selector);
        let opts = WriteOptions::manager(component);
        if let Some(e) = existing.iter().find(|e| {
            e["message"] == message
                && e.pointer("/involvedObject/fieldPath")
                    .and_then(Value::as_str)
                    == field_path
        }) {
            let ename = e["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let _ = self.store.modify(def, &ns, &ename, "", &opts, |ev| {
                let count = ev["count"].as_i64().unwrap_or(1);
                ev["count"] = json!(count + 1);
                ev["lastTimestamp"] = json!(now);
                Ok(())
            });
            return;
        }
        let mut involved = json!({
            "kind": kind,
            "namespace": ns,
            "name": name,
            "uid": uid,
            "apiVersion": object["apiVersion"],
            "resourceVersion": object.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null),
        });
        if let Some(fp) = field_path {
            involved["fieldPath"] = json!(fp);
        }
        let mut source = json!({ "component": component });
        if component == "kubelet" {
            source["host"] = json!(self.node);
        }
        let event = json!({
            "metadata": {
                "name": format!("{name}.{:x}", u64::from_str_radix(&new_uid().replace('-', "")[..15], 16).unwrap_or(0)),
                "namespace": ns,
            },
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "source": source,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "type": match severity { Severity::Normal => "Normal", Severity::Warning => "Warning" },
            "eventTime": null,
            "reportingComponent": component,
            "reportingInstance": if component == "kubelet" { self.node.clone() } else { String::new() },
        });
        let _ = self.store.create(def, &ns, event, &opts);
    }
}
