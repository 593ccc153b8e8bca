//! Just enough OpenAPI v3 for kubectl: it reads the documents to learn that
//! the server validates fields itself (`fieldValidation`), and then leaves
//! validation to the server instead of downloading full schemas.

use serde_json::{Map, Value, json};

use crate::resources::{RESOURCES, ResourceDef};

/// Changes whenever the documents change, so kubectl's disk cache refreshes.
const HASH: &str = concat!("emulator-", env!("CARGO_PKG_VERSION"));

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `GET /openapi/v3`
pub fn root() -> Value {
    let mut paths = Map::new();
    for r in RESOURCES {
        let gv = gv_path(r.group, r.version);
        paths.insert(
            gv.clone(),
            json!({ "serverRelativeURL": format!("/openapi/v3/{gv}?hash={HASH}") }),
        );
    }
    json!({ "paths": paths })
}

fn query_param(name: &str) -> Value {
    json!({ "name": name, "in": "query", "uniqueItems": true, "schema": { "type": "string" } })
}

fn operation(r: &ResourceDef, action: &str) -> Value {
    // kubectl looks for `fieldValidation` among the operation's own parameters.
    json!({
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": { "group": r.group, "version": r.version, "kind": r.kind },
        "parameters": [query_param("dryRun"), query_param("fieldManager"), query_param("fieldValidation")],
        "responses": {},
    })
}

fn operations(r: &ResourceDef) -> Value {
    let op = |action: &str| operation(r, action);
    json!({
        "get": op("get"),
        "put": op("put"),
        "patch": op("patch"),
        "delete": op("delete"),
    })
}

/// `GET /openapi/v3/apis/{group}/{version}` (or `api/v1`).
pub fn group_version(path: &str) -> Option<Value> {
    let members: Vec<&ResourceDef> = RESOURCES
        .iter()
        .filter(|r| gv_path(r.group, r.version) == path)
        .collect();
    if members.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    for r in members {
        let prefix = format!("/{path}");
        let item = if r.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("{prefix}/{}/{{name}}", r.plural)
        };
        let collection = item.trim_end_matches("/{name}").to_string();
        paths.insert(item, operations(r));
        paths.insert(collection, json!({ "post": operation(r, "post") }));
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": "v1.33.0" },
        "paths": paths,
        "components": { "schemas": {} },
    }))
}
