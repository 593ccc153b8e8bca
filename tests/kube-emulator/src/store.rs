//! The object store: every object as JSON, one resourceVersion counter for
//! the whole cluster, and a history of changes that watches replay from.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};

use crate::admission;
use crate::fields;
use crate::resources::{self, ResourceDef};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::{ApiError, ApiResult};
use crate::time;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

#[derive(Debug)]
pub struct WatchEvent {
    pub rv: u64,
    pub def: &'static ResourceDef,
    pub namespace: String,
    pub kind: EventType,
    pub object: Value,
}

/// Who writes, and whether the write is only a dry run.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    pub manager: String,
    pub dry_run: bool,
}

impl WriteOptions {
    pub fn manager(manager: &str) -> Self {
        Self {
            manager: manager.into(),
            dry_run: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub propagation: Option<Propagation>,
    pub grace_period: Option<i64>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    pub fn now() -> Self {
        Self {
            grace_period: Some(0),
            ..Self::default()
        }
    }
}

type Table = BTreeMap<(String, String), Value>;

struct Inner {
    rv: u64,
    tables: HashMap<&'static str, Table>,
    history: VecDeque<Arc<WatchEvent>>,
    history_limit: usize,
    next_ip: u32,
}

pub struct Store {
    inner: Mutex<Inner>,
    events: broadcast::Sender<Arc<WatchEvent>>,
    changed: watch::Sender<u64>,
}

/// What a watch starts from: the events after its resourceVersion, then live ones.
pub struct WatchStart {
    pub backlog: Vec<Arc<WatchEvent>>,
    pub live: broadcast::Receiver<Arc<WatchEvent>>,
    pub rv: u64,
}

fn key(def: &ResourceDef) -> &'static str {
    resources::RESOURCES
        .iter()
        .find(|r| *r == def)
        .map(|r| r.plural)
        .expect("every definition comes from RESOURCES")
}

fn random_suffix(len: usize) -> String {
    // The alphabet the real server uses for generated names: no vowels, no look-alikes.
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

pub fn new_uid() -> String {
    let b: [u8; 16] = rand::rng().random();
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-4{:01x}{:02x}-{:01x}{:01x}{:02x}-{}",
        b[0],
        b[1],
        b[2],
        b[3],
        b[4],
        b[5],
        b[6] & 0x0f,
        b[7],
        8 | (b[8] & 0x3),
        b[8] >> 4,
        b[9],
        b[10..16]
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
    )
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The parts of an object that a change to bumps `metadata.generation`.
fn generation_relevant(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    v
}

impl Store {
    pub fn new() -> Arc<Store> {
        let (events, _) = broadcast::channel(65536);
        let (changed, _) = watch::channel(0);
        Arc::new(Store {
            inner: Mutex::new(Inner {
                rv: 1,
                tables: HashMap::new(),
                history: VecDeque::new(),
                history_limit: 50_000,
                next_ip: 1,
            }),
            events,
            changed,
        })
    }

    /// How many changes watches can replay; older resourceVersions get 410 Gone.
    pub fn set_history_limit(&self, limit: usize) {
        let mut inner = self.lock();
        inner.history_limit = limit.max(1);
        while inner.history.len() > inner.history_limit {
            inner.history.pop_front();
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes whenever anything is written; controllers wait on it.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    pub fn get(&self, def: &'static ResourceDef, ns: &str, name: &str) -> ApiResult<Value> {
        self.lock()
            .tables
            .get(key(def))
            .and_then(|t| t.get(&(ns.to_string(), name.to_string())))
            .cloned()
            .ok_or_else(|| ApiError::not_found(def, name))
    }

    pub fn try_get(&self, def: &'static ResourceDef, ns: &str, name: &str) -> Option<Value> {
        self.get(def, ns, name).ok()
    }

    pub fn list(
        &self,
        def: &'static ResourceDef,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> (Vec<Value>, u64) {
        let inner = self.lock();
        let items = inner
            .tables
            .get(key(def))
            .map(|t| {
                t.iter()
                    .filter(|((ons, _), _)| ns.is_none_or(|n| n == ons))
                    .filter(|(_, o)| labels.matches(o) && fields.matches(o))
                    .map(|(_, o)| o.clone())
                    .collect()
            })
            .unwrap_or_default();
        (items, inner.rv)
    }

    /// Everything of one kind, in one namespace or all.
    pub fn all(&self, def: &'static ResourceDef, ns: Option<&str>) -> Vec<Value> {
        self.list(
            def,
            ns,
            &LabelSelector::default(),
            &FieldSelector::default(),
        )
        .0
    }

    pub fn watch(
        &self,
        def: &'static ResourceDef,
        ns: Option<&str>,
        from: u64,
    ) -> ApiResult<WatchStart> {
        let inner = self.lock();
        if let Some(oldest) = inner.history.front()
            && from + 1 < oldest.rv
            && inner.history.len() >= inner.history_limit
        {
            return Err(ApiError::gone(format!(
                "too old resource version: {from} ({})",
                oldest.rv - 1
            )));
        }
        let backlog = inner
            .history
            .iter()
            .filter(|e| e.rv > from && e.def == def && ns.is_none_or(|n| n == e.namespace))
            .cloned()
            .collect();
        Ok(WatchStart {
            backlog,
            live: self.events.subscribe(),
            rv: inner.rv,
        })
    }

    /// Lists and subscribes under one lock, so that no change falls between the two.
    pub fn list_and_watch(
        &self,
        def: &'static ResourceDef,
        ns: Option<&str>,
    ) -> (Vec<Value>, WatchStart) {
        let inner = self.lock();
        let items = inner
            .tables
            .get(key(def))
            .map(|t| {
                t.iter()
                    .filter(|((ons, _), _)| ns.is_none_or(|n| n == ons))
                    .map(|(_, o)| o.clone())
                    .collect()
            })
            .unwrap_or_default();
        let start = WatchStart {
            backlog: Vec::new(),
            live: self.events.subscribe(),
            rv: inner.rv,
        };
        (items, start)
    }

    fn check_namespace(inner: &Inner, def: &ResourceDef, ns: &str) -> ApiResult<()> {
        if !def.namespaced {
            return Ok(());
        }
        let nsdef = resources::get("v1", "Namespace");
        match inner
            .tables
            .get(key(nsdef))
            .and_then(|t| t.get(&(String::new(), ns.to_string())))
        {
            None => Err(ApiError::not_found(nsdef, ns)),
            Some(n) if n.pointer("/metadata/deletionTimestamp").is_some() => {
                Err(ApiError::forbidden(format!(
                    "{} is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                    def.qualified()
                )))
            }
            Some(_) => Ok(()),
        }
    }

    pub fn create(
        &self,
        def: &'static ResourceDef,
        ns: &str,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Value> {
        let mut inner = self.lock();
        Self::check_namespace(&inner, def, ns)?;
        if !obj.get("metadata").is_some_and(Value::is_object) {
            obj["metadata"] = json!({});
        }
        let table = inner.tables.entry(key(def)).or_default();
        let mut name = meta_str(&obj, "name").unwrap_or_default().to_string();
        if name.is_empty()
            && let Some(prefix) = meta_str(&obj, "generateName").map(String::from)
        {
            loop {
                name = format!("{prefix}{}", random_suffix(5));
                if !table.contains_key(&(ns.to_string(), name.clone())) {
                    break;
                }
            }
        }
        if !name.is_empty() && table.contains_key(&(ns.to_string(), name.clone())) {
            return Err(ApiError::already_exists(def, &name));
        }
        let meta = obj["metadata"]
            .as_object_mut()
            .expect("made an object above");
        meta.insert("name".into(), json!(name));
        if def.namespaced {
            meta.insert("namespace".into(), json!(ns));
        } else {
            meta.remove("namespace");
        }
        meta.insert("uid".into(), json!(new_uid()));
        meta.insert("creationTimestamp".into(), json!(time::now()));
        meta.insert("generation".into(), json!(1));
        for f in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            meta.remove(f);
        }
        obj["apiVersion"] = json!(def.api_version());
        obj["kind"] = json!(def.kind);
        if def.has_status() && def.kind != "Namespace" {
            obj.as_object_mut().expect("object").remove("status");
        }
        if def.kind == "Pod" {
            obj["status"] = json!({ "phase": "Pending", "qosClass": qos_class(&obj) });
        }
        if obj.pointer("/metadata/managedFields").is_none() {
            fields::record_update(
                None,
                &mut obj,
                &opts.manager,
                &def.api_version(),
                "",
                &time::now(),
            );
        }
        self.admit(&mut inner, def, ns, &mut obj, None)?;
        if opts.dry_run {
            return Ok(obj);
        }
        Ok(self.put(&mut inner, def, ns, obj, EventType::Added))
    }

    /// Defaulting, allocation and validation shared by every write.
    fn admit(
        &self,
        inner: &mut Inner,
        def: &'static ResourceDef,
        ns: &str,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> ApiResult<()> {
        admission::default(def, obj);
        let mut causes = Vec::new();
        if def.kind == "Service" {
            let name = meta_str(obj, "name").unwrap_or_default().to_string();
            let taken: Vec<i64> = inner
                .tables
                .get(key(def))
                .map(|t| {
                    t.iter()
                        .filter(|((ons, oname), _)| !(ons == ns && *oname == name))
                        .flat_map(|(_, s)| {
                            s.pointer("/spec/ports")
                                .and_then(Value::as_array)
                                .into_iter()
                                .flatten()
                                .filter_map(|p| p["nodePort"].as_i64())
                        })
                        .collect()
                })
                .unwrap_or_default();
            if old.is_none() {
                inner.next_ip += 1;
            }
            causes.extend(admission::allocate_service(obj, old, &taken, inner.next_ip));
        }
        causes.extend(admission::validate(def, obj, old));
        if causes.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(
                def,
                meta_str(obj, "name").unwrap_or_default(),
                causes,
            ))
        }
    }

    /// Stores an object under a new resourceVersion and tells the watchers.
    fn put(
        &self,
        inner: &mut Inner,
        def: &'static ResourceDef,
        ns: &str,
        mut obj: Value,
        kind: EventType,
    ) -> Value {
        inner.rv += 1;
        let rv = inner.rv;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let name = meta_str(&obj, "name").unwrap_or_default().to_string();
        let table = inner.tables.entry(key(def)).or_default();
        if kind == EventType::Deleted {
            table.remove(&(ns.to_string(), name));
        } else {
            table.insert((ns.to_string(), name), obj.clone());
        }
        let event = Arc::new(WatchEvent {
            rv,
            def,
            namespace: ns.to_string(),
            kind,
            object: obj.clone(),
        });
        inner.history.push_back(event.clone());
        while inner.history.len() > inner.history_limit {
            inner.history.pop_front();
        }
        let _ = self.events.send(event);
        self.changed.send_replace(rv);
        obj
    }

    /// Replaces an object (PUT). `subresource` is "" or "status".
    pub fn update(
        &self,
        def: &'static ResourceDef,
        ns: &str,
        name: &str,
        obj: Value,
        subresource: &str,
        opts: &WriteOptions,
    ) -> ApiResult<Value> {
        let mut inner = self.lock();
        let old = inner
            .tables
            .get(key(def))
            .and_then(|t| t.get(&(ns.to_string(), name.to_string())))
            .cloned()
            .ok_or_else(|| ApiError::not_found(def, name))?;
        if let Some(rv) = meta_str(&obj, "resourceVersion").filter(|s| !s.is_empty())
            && Some(rv) != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::conflict(def, name));
        }
        if let Some(body_name) = meta_str(&obj, "name")
            && body_name != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        self.commit(&mut inner, def, ns, old, obj, subresource, opts, true)
    }

    /// Read-modify-write under the store's lock: the patches and the controllers use it.
    pub fn modify(
        &self,
        def: &'static ResourceDef,
        ns: &str,
        name: &str,
        subresource: &str,
        opts: &WriteOptions,
        f: impl FnOnce(&mut Value) -> ApiResult<()>,
    ) -> ApiResult<Value> {
        let mut inner = self.lock();
        let old = inner
            .tables
            .get(key(def))
            .and_then(|t| t.get(&(ns.to_string(), name.to_string())))
            .cloned()
            .ok_or_else(|| ApiError::not_found(def, name))?;
        let mut new = old.clone();
        f(&mut new)?;
        if let Some(rv) = meta_str(&new, "resourceVersion").filter(|s| !s.is_empty())
            && Some(rv) != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::conflict(def, name));
        }
        self.commit(&mut inner, def, ns, old, new, subresource, opts, true)
    }

    /// Server-side apply; creates the object when it does not exist.
    #[allow(clippy::too_many_arguments)]
    pub fn apply(
        &self,
        def: &'static ResourceDef,
        ns: &str,
        name: &str,
        config: &Value,
        subresource: &str,
        force: bool,
        opts: &WriteOptions,
    ) -> ApiResult<Value> {
        if config.get("kind").and_then(Value::as_str) != Some(def.kind)
            || config.get("apiVersion").and_then(Value::as_str) != Some(&def.api_version())
        {
            return Err(ApiError::bad_request(format!(
                "apiVersion and kind in the applied object must be {} {}",
                def.api_version(),
                def.kind
            )));
        }
        if let Some(body_name) = meta_str(config, "name")
            && body_name != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let now = time::now();
        let mut inner = self.lock();
        let live = inner
            .tables
            .get(key(def))
            .and_then(|t| t.get(&(ns.to_string(), name.to_string())))
            .cloned();
        let applied = fields::apply(
            live.as_ref(),
            config,
            &opts.manager,
            force,
            subresource,
            &now,
        )
        .map_err(|conflicts| ApiError::apply_conflict(def, name, &conflicts))?;
        match live {
            Some(old) => self.commit(
                &mut inner,
                def,
                ns,
                old,
                applied.object,
                subresource,
                opts,
                false,
            ),
            None => {
                if subresource == "status" {
                    return Err(ApiError::not_found(def, name));
                }
                drop(inner);
                let mut obj = applied.object;
                obj["metadata"]["name"] = json!(name);
                self.create(def, ns, obj, opts)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn commit(
        &self,
        inner: &mut Inner,
        def: &'static ResourceDef,
        ns: &str,
        old: Value,
        mut new: Value,
        subresource: &str,
        opts: &WriteOptions,
        record: bool,
    ) -> ApiResult<Value> {
        if subresource == "status" {
            let status = new.get("status").cloned();
            let managed = new.pointer("/metadata/managedFields").cloned();
            new = old.clone();
            match status {
                Some(s) => new["status"] = s,
                None => {
                    new.as_object_mut().expect("object").remove("status");
                }
            }
            if let Some(m) = managed {
                new["metadata"]["managedFields"] = m;
            }
        } else if def.has_status() && def.kind != "Namespace" {
            match old.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    new.as_object_mut().expect("object").remove("status");
                }
            }
        }
        // Server-owned metadata survives whatever the client sent.
        for f in [
            "uid",
            "creationTimestamp",
            "generation",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "namespace",
            "name",
        ] {
            match old["metadata"].get(f) {
                Some(v) => new["metadata"][f] = v.clone(),
                None => {
                    if let Some(m) = new["metadata"].as_object_mut() {
                        m.remove(f);
                    }
                }
            }
        }
        new["apiVersion"] = json!(def.api_version());
        new["kind"] = json!(def.kind);
        if old.pointer("/metadata/deletionTimestamp").is_some() {
            let added: Vec<String> = finalizers(&new)
                .into_iter()
                .filter(|f| !finalizers(&old).contains(f))
                .collect();
            if !added.is_empty() {
                return Err(ApiError::forbidden(format!(
                    "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
                )));
            }
        }
        self.admit(inner, def, ns, &mut new, Some(&old))?;
        if subresource.is_empty() && generation_relevant(&old) != generation_relevant(&new) {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(1);
            new["metadata"]["generation"] = json!(g + 1);
        }
        if record {
            fields::record_update(
                Some(&old),
                &mut new,
                &opts.manager,
                &def.api_version(),
                subresource,
                &time::now(),
            );
        }
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        if new == old {
            return Ok(old);
        }
        if opts.dry_run {
            return Ok(new);
        }
        let finished = new.pointer("/metadata/deletionTimestamp").is_some()
            && finalizers(&new).is_empty()
            && (def.kind != "Pod"
                || new.pointer("/metadata/deletionGracePeriodSeconds") == Some(&json!(0)));
        let kind = if finished {
            EventType::Deleted
        } else {
            EventType::Modified
        };
        Ok(self.put(inner, def, ns, new, kind))
    }

    pub fn delete(
        &self,
        def: &'static ResourceDef,
        ns: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> ApiResult<Value> {
        let mut inner = self.lock();
        let mut obj = inner
            .tables
            .get(key(def))
            .and_then(|t| t.get(&(ns.to_string(), name.to_string())))
            .cloned()
            .ok_or_else(|| ApiError::not_found(def, name))?;
        if let Some(uid) = &opts.precondition_uid
            && Some(uid.as_str()) != meta_str(&obj, "uid")
        {
            return Err(ApiError {
                code: 409,
                reason: "Conflict",
                message: format!(
                    "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    def.qualified(),
                    meta_str(&obj, "uid").unwrap_or_default()
                ),
                details: None,
            });
        }
        if let Some(rv) = &opts.precondition_rv
            && Some(rv.as_str()) != meta_str(&obj, "resourceVersion")
        {
            return Err(ApiError::conflict(def, name));
        }
        if opts.dry_run {
            return Ok(obj);
        }
        if def.kind == "Namespace" {
            if obj.pointer("/metadata/deletionTimestamp").is_none() {
                obj["metadata"]["deletionTimestamp"] = json!(time::now());
                obj["status"]["phase"] = json!("Terminating");
                return Ok(self.put(&mut inner, def, ns, obj, EventType::Modified));
            }
            return Ok(obj);
        }
        let grace = opts.grace_period.unwrap_or_else(|| {
            if def.kind == "Pod" {
                obj.pointer("/spec/terminationGracePeriodSeconds")
                    .and_then(Value::as_i64)
                    .unwrap_or(30)
            } else {
                0
            }
        });
        let mut fins = finalizers(&obj);
        match opts.propagation {
            Some(Propagation::Foreground) if !fins.iter().any(|f| f == "foregroundDeletion") => {
                fins.push("foregroundDeletion".into())
            }
            Some(Propagation::Orphan) if !fins.iter().any(|f| f == "orphan") => {
                fins.push("orphan".into())
            }
            _ => {}
        }
        let bound_pod = def.kind == "Pod"
            && obj
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty())
            && !matches!(
                obj.pointer("/status/phase").and_then(Value::as_str),
                Some("Succeeded" | "Failed")
            );
        let deleting = obj.pointer("/metadata/deletionTimestamp").is_some();
        if !fins.is_empty() || (bound_pod && grace > 0) {
            if deleting && !(def.kind == "Pod" && grace == 0) {
                return Ok(obj);
            }
            let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(grace);
            if !deleting {
                obj["metadata"]["deletionTimestamp"] = json!(time::format_time(at));
            }
            obj["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
            if !fins.is_empty() {
                obj["metadata"]["finalizers"] = json!(fins);
                return Ok(self.put(&mut inner, def, ns, obj, EventType::Modified));
            }
            if grace > 0 {
                return Ok(self.put(&mut inner, def, ns, obj, EventType::Modified));
            }
        }
        Ok(self.put(&mut inner, def, ns, obj, EventType::Deleted))
    }

    /// Removes a namespace once its contents are gone (the namespace controller's last step).
    pub fn finalize_namespace(&self, name: &str) {
        let def = resources::get("v1", "Namespace");
        let mut inner = self.lock();
        let Some(obj) = inner
            .tables
            .get(key(def))
            .and_then(|t| t.get(&(String::new(), name.to_string())))
            .cloned()
        else {
            return;
        };
        self.put(&mut inner, def, "", obj, EventType::Deleted);
    }
}

/// The pod's QoS class from its containers' requests and limits.
pub fn qos_class(pod: &Value) -> &'static str {
    let containers: Vec<&Value> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in &containers {
        let limits = c.pointer("/resources/limits");
        let requests = c.pointer("/resources/requests");
        if limits.is_some() || requests.is_some() {
            any = true;
        }
        let full = ["cpu", "memory"].iter().all(|r| {
            let l = limits.and_then(|l| l.get(*r));
            l.is_some()
                && requests
                    .and_then(|q| q.get(*r))
                    .is_none_or(|q| Some(q) == l)
        });
        guaranteed &= full;
    }
    if guaranteed {
        "Guaranteed"
    } else if any {
        "Burstable"
    } else {
        "BestEffort"
    }
}
