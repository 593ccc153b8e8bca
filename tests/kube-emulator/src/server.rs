//! The HTTP front: routes the Kubernetes REST paths to the store, the
//! kubelet's logs and the emulator's own test endpoints.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::faults::{Denial, Fault, Faults};
use crate::kubelet;
use crate::merge;
use crate::openapi;
use crate::portforward;
use crate::protobuf;
use crate::resources::{self, ResourceDef};
use crate::schema;
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::{ApiError, ApiResult};
use crate::store::{DeleteOptions, Propagation, WriteOptions};
use crate::table;
use crate::watch;

pub struct ServerState {
    pub cluster: Arc<Cluster>,
    pub faults: Arc<Faults>,
}

pub fn router(state: Arc<ServerState>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

/// Decoded query parameters; repeated keys keep the last value.
pub struct Query(HashMap<String, String>);

impl Query {
    fn parse(raw: Option<&str>) -> Self {
        let mut map = HashMap::new();
        for pair in raw.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            map.insert(decode(k), decode(v));
        }
        Self(map)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    pub fn int(&self, key: &str) -> ApiResult<Option<i64>> {
        self.get(key)
            .map(|v| {
                v.parse()
                    .map_err(|_| ApiError::bad_request(format!("invalid value for {key}: {v:?}")))
            })
            .transpose()
    }
}

pub fn json_response(code: StatusCode, value: &Value) -> Response {
    let mut resp = (code, serde_json::to_vec(value).unwrap_or_default()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

pub fn error_response(err: &ApiError) -> Response {
    json_response(err.status_code(), &err.to_status())
}

/// The resource a path names.
struct Target {
    def: &'static ResourceDef,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

fn parse_target(group: &str, version: &str, rest: &[&str]) -> Option<Target> {
    let lookup = |plural: &str| resources::lookup(group, version, plural);
    let target = |def, ns: Option<&str>, name: Option<&&str>, sub: Option<&&str>| Target {
        def,
        namespace: ns.map(String::from),
        name: name.map(|s| s.to_string()),
        subresource: sub.map(|s| s.to_string()),
    };
    match rest {
        ["namespaces", ns, plural, tail @ ..] if group.is_empty() || lookup(plural).is_some() => {
            if let Some(def) = lookup(plural).filter(|d| d.namespaced) {
                if tail.len() > 2 {
                    return None;
                }
                return Some(target(def, Some(ns), tail.first(), tail.get(1)));
            }
            // `/api/v1/namespaces/{name}/status` and `/finalize`.
            let def = lookup("namespaces")?;
            (tail.is_empty() && def.subresources.contains(plural))
                .then(|| target(def, None, Some(ns), Some(plural)))
        }
        [plural, tail @ ..] => {
            let def = lookup(plural)?;
            if tail.len() > 2 || (def.namespaced && !tail.is_empty()) {
                return None;
            }
            Some(target(def, None, tail.first(), tail.get(1)))
        }
        [] => None,
    }
}

async fn handle(State(st): State<Arc<ServerState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let query = Query::parse(parts.uri.query());
    let path = parts.uri.path().trim_end_matches('/').to_string();
    let method = parts.method.clone();
    let is_watch = query.flag("watch");
    let effect = st.faults.effect(method.as_str(), &path, is_watch);
    if let Some(latency) = effect.latency {
        tokio::time::sleep(latency).await;
    }
    if let Some(err) = effect.error {
        return error_response(&err);
    }
    if effect.silent {
        return std::future::pending().await;
    }
    // An upgrade needs the connection itself, not a body.
    if let Some((ns, name)) = portforward::pod_of(&path) {
        return portforward::serve(&st, parts, ns, name, effect.close_after)
            .await
            .unwrap_or_else(|err| error_response(&err));
    }
    let body = match axum::body::to_bytes(body, 64 * 1024 * 1024).await {
        Ok(b) => b,
        Err(e) => {
            return error_response(&ApiError::bad_request(format!(
                "reading the request body: {e}"
            )));
        }
    };
    let ctx = RequestContext {
        st: st.clone(),
        method,
        headers: parts.headers,
        query,
        body,
        close_after: effect.close_after,
    };
    let streams = is_watch || ctx.query.flag("follow");
    let resp = match route(&ctx, &path).await {
        Ok(resp) => resp,
        Err(err) => error_response(&err),
    };
    if !streams {
        return resp;
    }
    // A stream falls silent when a `silent` rule arrives: it sends nothing
    // more and never ends.
    let silenced = {
        let st = st.clone();
        let method = ctx.method.clone();
        async move { st.faults.silenced(method.as_str(), &path, is_watch).await }
    };
    resp.map(|body| {
        let state = (body.into_data_stream(), Box::pin(silenced));
        Body::from_stream(futures::stream::unfold(
            state,
            |(mut data, mut silenced)| async move {
                use futures::StreamExt;
                tokio::select! {
                    biased;
                    () = &mut silenced => std::future::pending().await,
                    item = data.next() => item.map(|item| (item, (data, silenced))),
                }
            },
        ))
    })
}

struct RequestContext {
    st: Arc<ServerState>,
    method: Method,
    headers: HeaderMap,
    query: Query,
    body: Bytes,
    close_after: Option<Duration>,
}

impl RequestContext {
    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn manager(&self) -> String {
        self.query
            .get("fieldManager")
            .map(String::from)
            .unwrap_or_else(|| {
                let agent = self.header(header::USER_AGENT);
                let program = agent.split('/').next().unwrap_or_default();
                if program.is_empty() {
                    "unknown".into()
                } else {
                    program.into()
                }
            })
    }

    fn write_options(&self) -> WriteOptions {
        WriteOptions {
            manager: self.manager(),
            dry_run: self.query.get("dryRun") == Some("All"),
        }
    }

    /// `fieldValidation=Strict`, which kubectl sends once it has read the OpenAPI documents.
    fn strict(&self) -> bool {
        self.query.get("fieldValidation") == Some("Strict")
    }

    fn body_json(&self) -> ApiResult<Value> {
        let content_type = self.header(header::CONTENT_TYPE);
        if content_type.starts_with(protobuf::CONTENT_TYPE) {
            protobuf::decode(&self.body)
        } else if content_type.contains("yaml") {
            serde_yaml_ng::from_slice(&self.body)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
        } else {
            serde_json::from_slice(&self.body).map_err(|e| {
                ApiError::bad_request(format!(
                    "the object provided is unrecognized or invalid JSON: {e}"
                ))
            })
        }
    }
}

fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0-emulator",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

async fn route(ctx: &RequestContext, path: &str) -> ApiResult<Response> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let ok = |v: Value| Ok(json_response(StatusCode::OK, &v));
    match segments.as_slice() {
        ["version"] => ok(version_info()),
        ["healthz" | "livez" | "readyz", ..] => Ok((StatusCode::OK, "ok").into_response()),
        ["api"] => ok(resources::api_versions()),
        ["apis"] => ok(resources::api_group_list()),
        ["api", "v1"] => ok(resources::api_resource_list("", "v1").expect("core group is served")),
        ["apis", group] => resources::api_group(group)
            .map(|v| json_response(StatusCode::OK, &v))
            .ok_or_else(|| ApiError::not_found_path(path)),
        ["apis", group, version] => resources::api_resource_list(group, version)
            .map(|v| json_response(StatusCode::OK, &v))
            .ok_or_else(|| ApiError::not_found_path(path)),
        ["openapi", "v3"] => ok(openapi::root()),
        ["openapi", "v3", rest @ ..] => openapi::group_version(&rest.join("/"))
            .map(|v| json_response(StatusCode::OK, &v))
            .ok_or_else(|| ApiError::not_found_path(path)),
        ["emulator", "v1", rest @ ..] => emulator_endpoint(ctx, rest).await,
        ["api", "v1", rest @ ..] => match parse_target("", "v1", rest) {
            Some(t) => serve_resource(ctx, t).await,
            None => Err(ApiError::not_found_path(path)),
        },
        ["apis", group, version, rest @ ..] => match parse_target(group, version, rest) {
            Some(t) => serve_resource(ctx, t).await,
            None => Err(ApiError::not_found_path(path)),
        },
        _ => Err(ApiError::not_found_path(path)),
    }
}

/// The emulator's own endpoints: loading images onto the node, and faults.
async fn emulator_endpoint(ctx: &RequestContext, rest: &[&str]) -> ApiResult<Response> {
    let cluster = &ctx.st.cluster;
    match (&ctx.method, rest) {
        (&Method::GET, ["images"]) => {
            Ok(json_response(StatusCode::OK, &cluster.node_images_json()))
        }
        (&Method::POST, ["images"]) => {
            let body = ctx.body_json()?;
            let images: Vec<String> = body["images"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            let mut loaded = Vec::new();
            for image in &images {
                let info = kubelet::load_image(cluster, image).await?;
                loaded.push(
                    json!({ "image": image, "names": info.names, "sizeBytes": info.size_bytes }),
                );
            }
            Ok(json_response(StatusCode::OK, &json!({ "loaded": loaded })))
        }
        (&Method::POST, ["faults"]) => {
            let fault: Fault = serde_json::from_value(ctx.body_json()?)
                .map_err(|e| ApiError::bad_request(format!("invalid fault: {e}")))?;
            ctx.st.faults.add(fault);
            Ok(json_response(StatusCode::CREATED, &json!({})))
        }
        (&Method::POST, ["denials"]) => {
            let denial: Denial = serde_json::from_value(ctx.body_json()?)
                .map_err(|e| ApiError::bad_request(format!("invalid denial: {e}")))?;
            ctx.st.faults.deny(denial);
            Ok(json_response(StatusCode::CREATED, &json!({})))
        }
        (&Method::DELETE, ["faults"]) => {
            ctx.st.faults.clear();
            Ok(json_response(StatusCode::OK, &json!({})))
        }
        _ => Err(ApiError::not_found_path(&format!(
            "/emulator/v1/{}",
            rest.join("/")
        ))),
    }
}

fn verb(method: &Method, has_name: bool, is_watch: bool) -> &'static str {
    match (method.as_str(), has_name) {
        ("GET", true) => "get",
        ("GET", false) if is_watch => "watch",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        _ => "deletecollection",
    }
}

async fn serve_resource(ctx: &RequestContext, t: Target) -> ApiResult<Response> {
    let def = t.def;
    let store = &ctx.st.cluster.store;
    let ns = t.namespace.clone().unwrap_or_default();
    let scoped_ns = t.namespace.as_deref();
    let verb = verb(&ctx.method, t.name.is_some(), ctx.query.flag("watch"));
    let rbac_resource = match &t.subresource {
        Some(sub) => format!("{}/{sub}", def.plural),
        None => def.plural.to_string(),
    };
    if !ctx
        .st
        .faults
        .allowed(verb, def.group, &rbac_resource, scoped_ns)
        && !def.create_only
    {
        return Err(Faults::forbidden(
            verb,
            def.group,
            &rbac_resource,
            t.name.as_deref(),
            scoped_ns,
        ));
    }
    if def.namespaced && t.namespace.is_none() && !(ctx.method == Method::GET && t.name.is_none()) {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({})",
            def.plural
        )));
    }
    let sub = t.subresource.as_deref().unwrap_or_default();
    let ok = |v: Value| Ok(json_response(StatusCode::OK, &v));
    match (&ctx.method, t.name.as_deref()) {
        (&Method::GET, None) if ctx.query.flag("watch") => {
            watch::serve(ctx_watch(ctx, def, scoped_ns)?)
        }
        (&Method::GET, None) => {
            let labels = LabelSelector::parse(ctx.query.get("labelSelector").unwrap_or_default())?;
            let fields = FieldSelector::parse(ctx.query.get("fieldSelector").unwrap_or_default())?;
            let (mut items, rv) = store.list(def, scoped_ns, &labels, &fields);
            if let Some(limit) = ctx.query.int("limit")?.filter(|l| *l > 0) {
                items.truncate(limit as usize);
            }
            if table::wants_table(ctx.header(header::ACCEPT)) {
                return ok(table::table(def, &items, rv));
            }
            ok(json!({
                "kind": format!("{}List", def.kind),
                "apiVersion": def.api_version(),
                "metadata": { "resourceVersion": rv.to_string() },
                "items": items,
            }))
        }
        (&Method::GET, Some(name)) => match sub {
            "log" => serve_logs(ctx, &ns, name).await,
            "scale" => ok(scale_of(&store.get(def, &ns, name)?)),
            _ => {
                let obj = store.get(def, &ns, name)?;
                if table::wants_table(ctx.header(header::ACCEPT)) {
                    return ok(table::table(def, &[obj], store.resource_version()));
                }
                ok(obj)
            }
        },
        (&Method::POST, None) if def.create_only => ok(review(ctx, def)?),
        (&Method::POST, None) => {
            let obj = ctx.body_json()?;
            check_body_namespace(&obj, scoped_ns)?;
            schema::check(def, &obj, ctx.strict())?;
            let created = store.create(def, &ns, obj, &ctx.write_options())?;
            Ok(json_response(StatusCode::CREATED, &created))
        }
        (&Method::POST, Some(name)) if sub == "eviction" => {
            store.delete(def, &ns, name, &DeleteOptions::default())?;
            Ok(json_response(
                StatusCode::CREATED,
                &json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success" }),
            ))
        }
        (&Method::PUT, Some(name)) => {
            let obj = ctx.body_json()?;
            check_body_namespace(&obj, scoped_ns)?;
            if sub == "scale" {
                let replicas = obj.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
                let updated = store.modify(def, &ns, name, "", &ctx.write_options(), |o| {
                    o["spec"]["replicas"] = replicas;
                    Ok(())
                })?;
                return ok(scale_of(&updated));
            }
            schema::check(def, &obj, ctx.strict())?;
            ok(store.update(def, &ns, name, obj, status_sub(sub), &ctx.write_options())?)
        }
        (&Method::PATCH, Some(name)) => patch(ctx, def, &ns, name, sub),
        (&Method::DELETE, Some(name)) => {
            let opts = delete_options(ctx)?;
            let obj = store.delete(def, &ns, name, &opts)?;
            if store.try_get(def, &ns, name).is_some() && !opts.dry_run {
                return ok(obj);
            }
            ok(json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": { "name": name, "group": def.group, "kind": def.plural, "uid": obj["metadata"]["uid"] },
            }))
        }
        (&Method::DELETE, None) => {
            let labels = LabelSelector::parse(ctx.query.get("labelSelector").unwrap_or_default())?;
            let fields = FieldSelector::parse(ctx.query.get("fieldSelector").unwrap_or_default())?;
            let opts = delete_options(ctx)?;
            let (items, rv) = store.list(def, scoped_ns, &labels, &fields);
            let mut deleted = Vec::new();
            for item in items {
                let name = item["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let item_ns = item["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if let Ok(d) = store.delete(def, &item_ns, &name, &opts) {
                    deleted.push(d);
                }
            }
            ok(json!({
                "kind": format!("{}List", def.kind),
                "apiVersion": def.api_version(),
                "metadata": { "resourceVersion": rv.to_string() },
                "items": deleted,
            }))
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({})",
            def.plural
        ))),
    }
}

fn status_sub(sub: &str) -> &str {
    if sub == "status" { "status" } else { "" }
}

fn check_body_namespace(obj: &Value, ns: Option<&str>) -> ApiResult<()> {
    match (
        obj.pointer("/metadata/namespace").and_then(Value::as_str),
        ns,
    ) {
        (Some(body), Some(url)) if !body.is_empty() && body != url => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => Ok(()),
    }
}

fn ctx_watch(
    ctx: &RequestContext,
    def: &'static ResourceDef,
    ns: Option<&str>,
) -> ApiResult<watch::WatchRequest> {
    Ok(watch::WatchRequest {
        cluster: ctx.st.cluster.clone(),
        def,
        namespace: ns.map(String::from),
        labels: LabelSelector::parse(ctx.query.get("labelSelector").unwrap_or_default())?,
        fields: FieldSelector::parse(ctx.query.get("fieldSelector").unwrap_or_default())?,
        resource_version: ctx.query.get("resourceVersion").map(String::from),
        timeout: ctx
            .query
            .int("timeoutSeconds")?
            .map(|s| Duration::from_secs(s.max(0) as u64)),
        bookmarks: ctx.query.flag("allowWatchBookmarks"),
        send_initial_events: ctx.query.flag("sendInitialEvents"),
        table: table::wants_table(ctx.header(header::ACCEPT)),
        close_after: ctx.close_after,
    })
}

fn scale_of(obj: &Value) -> Value {
    let selector = LabelSelectorString::of(obj.pointer("/spec/selector"));
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": obj["metadata"]["name"],
            "namespace": obj["metadata"]["namespace"],
            "uid": obj["metadata"]["uid"],
            "resourceVersion": obj["metadata"]["resourceVersion"],
            "creationTimestamp": obj["metadata"]["creationTimestamp"],
        },
        "spec": { "replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(0)) },
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector.0,
        },
    })
}

/// A label selector in its string form, as Scale's `status.selector` carries it.
struct LabelSelectorString(String);

impl LabelSelectorString {
    fn of(sel: Option<&Value>) -> Self {
        let mut parts = Vec::new();
        if let Some(m) = sel
            .and_then(|s| s.get("matchLabels"))
            .and_then(Value::as_object)
        {
            for (k, v) in m {
                parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
            }
        }
        Self(parts.join(","))
    }
}

fn patch(
    ctx: &RequestContext,
    def: &'static ResourceDef,
    ns: &str,
    name: &str,
    sub: &str,
) -> ApiResult<Response> {
    let store = &ctx.st.cluster.store;
    let content_type = ctx
        .header(header::CONTENT_TYPE)
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let opts = ctx.write_options();
    if content_type == "application/apply-patch+yaml" {
        if ctx.query.get("fieldManager").is_none() {
            return Err(ApiError::invalid_patch_options());
        }
        let config = ctx.body_json()?;
        schema::check(def, &config, true)?;
        let applied = store.apply(
            def,
            ns,
            name,
            &config,
            status_sub(sub),
            ctx.query.flag("force"),
            &opts,
        )?;
        return Ok(json_response(StatusCode::OK, &applied));
    }
    let body = ctx.body_json()?;
    if sub == "scale" {
        let updated = store.modify(def, ns, name, "", &opts, |o| {
            let mut scale = scale_of(o);
            apply_patch_body(def, name, &content_type, &body, &mut scale)?;
            o["spec"]["replicas"] = scale.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
            Ok(())
        })?;
        return Ok(json_response(StatusCode::OK, &scale_of(&updated)));
    }
    let strict = ctx.strict();
    let updated = store.modify(def, ns, name, status_sub(sub), &opts, |target| {
        apply_patch_body(def, name, &content_type, &body, target)?;
        schema::check(def, target, strict)
    })?;
    Ok(json_response(StatusCode::OK, &updated))
}

fn apply_patch_body(
    def: &ResourceDef,
    name: &str,
    content_type: &str,
    body: &Value,
    target: &mut Value,
) -> ApiResult<()> {
    match content_type {
        "application/json-patch+json" => {
            let p: json_patch::Patch = serde_json::from_value(body.clone())
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(target, &p).map_err(|e| {
                ApiError::invalid(
                    def,
                    name,
                    vec![crate::status::Cause {
                        reason: "FieldValueInvalid".into(),
                        message: e.to_string(),
                        field: "patch".into(),
                    }],
                )
            })
        }
        "application/merge-patch+json" => {
            merge::json_merge_patch(target, body);
            Ok(())
        }
        "application/strategic-merge-patch+json" => {
            merge::strategic_merge_patch(target, body);
            Ok(())
        }
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

fn delete_options(ctx: &RequestContext) -> ApiResult<DeleteOptions> {
    let body: Value = if ctx.body.is_empty() {
        json!({})
    } else {
        ctx.body_json()?
    };
    let propagation = body["propagationPolicy"]
        .as_str()
        .or(ctx.query.get("propagationPolicy"))
        .map(|p| match p {
            "Foreground" => Ok(Propagation::Foreground),
            "Background" => Ok(Propagation::Background),
            "Orphan" => Ok(Propagation::Orphan),
            other => Err(ApiError::bad_request(format!(
                "unsupported propagationPolicy {other:?}"
            ))),
        })
        .transpose()?
        .or_else(|| (body["orphanDependents"] == true).then_some(Propagation::Orphan));
    let dry_run = ctx.query.get("dryRun") == Some("All")
        || body["dryRun"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    Ok(DeleteOptions {
        propagation,
        grace_period: body["gracePeriodSeconds"]
            .as_i64()
            .or(ctx.query.int("gracePeriodSeconds")?),
        precondition_uid: body
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(String::from),
        precondition_rv: body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(String::from),
        dry_run,
    })
}

/// SelfSubjectAccessReview and SelfSubjectRulesReview, answered from the denial list.
fn review(ctx: &RequestContext, def: &ResourceDef) -> ApiResult<Value> {
    let mut obj = ctx.body_json()?;
    obj["apiVersion"] = json!(def.api_version());
    obj["kind"] = json!(def.kind);
    if obj.get("metadata").is_none() {
        obj["metadata"] = json!({});
    }
    if def.kind == "SelfSubjectRulesReview" {
        obj["status"] = json!({
            "resourceRules": [{ "verbs": ["*"], "apiGroups": ["*"], "resources": ["*"] }],
            "nonResourceRules": [{ "verbs": ["*"], "nonResourceURLs": ["*"] }],
            "incomplete": false,
        });
        return Ok(obj);
    }
    let attrs = obj
        .pointer("/spec/resourceAttributes")
        .cloned()
        .unwrap_or(json!({}));
    let attr = |k: &str| attrs[k].as_str().unwrap_or_default().to_string();
    let mut resource = attr("resource");
    if !attr("subresource").is_empty() {
        resource = format!("{resource}/{}", attr("subresource"));
    }
    let ns = attr("namespace");
    let allowed = ctx.st.faults.allowed(
        &attr("verb"),
        &attr("group"),
        &resource,
        (!ns.is_empty()).then_some(ns.as_str()),
    );
    obj["status"] = if allowed {
        json!({ "allowed": true, "reason": "the emulator's user is a cluster administrator" })
    } else {
        json!({ "allowed": false })
    };
    Ok(obj)
}

async fn serve_logs(ctx: &RequestContext, ns: &str, name: &str) -> ApiResult<Response> {
    let q = &ctx.query;
    let opts = kubelet::LogOptions {
        container: q.get("container").map(String::from),
        follow: q.flag("follow"),
        tail_lines: q.int("tailLines")?,
        since_seconds: q.int("sinceSeconds")?,
        since_time: q.get("sinceTime").map(String::from),
        timestamps: q.flag("timestamps"),
        previous: q.flag("previous"),
        limit_bytes: q.int("limitBytes")?,
    };
    let stream = kubelet::logs(ctx.st.cluster.clone(), ns, name, opts).await?;
    let body = match ctx.close_after {
        Some(after) => {
            use futures::StreamExt;
            let deadline = tokio::time::sleep(after);
            Body::from_stream(stream.take_until(deadline))
        }
        None => Body::from_stream(stream),
    };
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_to_resources() {
        let t = parse_target("", "v1", &["namespaces", "todo", "pods", "web-1", "log"]).unwrap();
        assert_eq!(
            (
                t.def.plural,
                t.namespace.as_deref(),
                t.name.as_deref(),
                t.subresource.as_deref()
            ),
            ("pods", Some("todo"), Some("web-1"), Some("log"))
        );
        let t = parse_target("", "v1", &["namespaces", "todo"]).unwrap();
        assert_eq!(
            (t.def.plural, t.name.as_deref()),
            ("namespaces", Some("todo"))
        );
        let t = parse_target("", "v1", &["namespaces", "todo", "finalize"]).unwrap();
        assert_eq!(
            (t.def.plural, t.subresource.as_deref()),
            ("namespaces", Some("finalize"))
        );
        let t = parse_target("apps", "v1", &["deployments"]).unwrap();
        assert_eq!((t.def.plural, t.namespace), ("deployments", None));
        assert!(parse_target("", "v1", &["pods", "x"]).is_none());
        assert!(parse_target("", "v1", &["widgets"]).is_none());
    }

    #[test]
    fn queries_decode() {
        let q = Query::parse(Some("labelSelector=app%3Dweb%2Ctier+in+(a)&watch=1&limit="));
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a)"));
        assert!(q.flag("watch"));
        assert_eq!(q.get("limit"), None);
    }
}
