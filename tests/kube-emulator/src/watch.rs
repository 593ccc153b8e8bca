//! Watches: a stream of JSON lines (`{"type":…,"object":…}`), replayed from
//! a resourceVersion, with bookmarks and timeouts as the real server sends them.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use crate::cluster::Cluster;
use crate::resources::ResourceDef;
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::{ApiError, ApiResult};
use crate::store::WatchEvent;
use crate::table;

pub struct WatchRequest {
    pub cluster: Arc<Cluster>,
    pub def: &'static ResourceDef,
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub resource_version: Option<String>,
    pub timeout: Option<Duration>,
    pub bookmarks: bool,
    pub send_initial_events: bool,
    pub table: bool,
    pub close_after: Option<Duration>,
}

/// How often a bookmark goes out on a quiet watch.
const BOOKMARK_EVERY: Duration = Duration::from_secs(5);

impl WatchRequest {
    fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }

    fn line(&self, kind: &str, obj: &Value, rv: u64) -> Bytes {
        let object = if self.table {
            table::table(self.def, std::slice::from_ref(obj), rv)
        } else {
            obj.clone()
        };
        let mut bytes =
            serde_json::to_vec(&json!({ "type": kind, "object": object })).unwrap_or_default();
        bytes.push(b'\n');
        Bytes::from(bytes)
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut metadata = json!({ "resourceVersion": rv.to_string() });
        if initial_end {
            metadata["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
        }
        let obj = json!({ "kind": self.def.kind, "apiVersion": self.def.api_version(), "metadata": metadata });
        let mut bytes =
            serde_json::to_vec(&json!({ "type": "BOOKMARK", "object": obj })).unwrap_or_default();
        bytes.push(b'\n');
        Bytes::from(bytes)
    }
}

pub fn serve(req: WatchRequest) -> ApiResult<Response> {
    let store = req.cluster.store.clone();
    let ns = req.namespace.as_deref();
    let from = match req.resource_version.as_deref() {
        None | Some("0") => None,
        Some(rv) => Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv:?}")))?,
        ),
    };
    let (initial, start) = match from {
        Some(rv) if !req.send_initial_events => match store.watch(req.def, ns, rv) {
            Ok(start) => (Vec::new(), start),
            // As the real server does: the watch opens, then ends with an ERROR event.
            Err(err) => return Ok(error_event(&err)),
        },
        _ => {
            let (items, start) = store.list_and_watch(req.def, ns);
            (items, start)
        }
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(256);
    tokio::spawn(pump(req, initial, start, tx));
    let mut resp = (StatusCode::OK, Body::from_stream(ReceiverStream::new(rx))).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(resp)
}

fn error_event(err: &ApiError) -> Response {
    let mut line = serde_json::to_vec(&json!({ "type": "ERROR", "object": err.to_status() }))
        .unwrap_or_default();
    line.push(b'\n');
    let mut resp = (StatusCode::OK, line).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

async fn pump(
    req: WatchRequest,
    initial: Vec<Value>,
    start: crate::store::WatchStart,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let send = |b: Bytes| {
        let tx = tx.clone();
        async move { tx.send(Ok(b)).await.is_ok() }
    };
    let mut last_rv = start.rv;
    for obj in initial.iter().filter(|o| req.matches(o)) {
        if !send(req.line("ADDED", obj, start.rv)).await {
            return;
        }
    }
    if req.send_initial_events && req.bookmarks && !send(req.bookmark(start.rv, true)).await {
        return;
    }
    let deliver = |e: &WatchEvent| -> Option<Bytes> {
        if e.def != req.def
            || req.namespace.as_ref().is_some_and(|n| *n != e.namespace)
            || !req.matches(&e.object)
        {
            return None;
        }
        Some(req.line(e.kind.as_str(), &e.object, e.rv))
    };
    for e in &start.backlog {
        last_rv = e.rv;
        if let Some(b) = deliver(e)
            && !send(b).await
        {
            return;
        }
    }
    let mut live = start.live;
    let mut shutdown = req.cluster.shutdown_signal();
    let limit = match (req.timeout, req.close_after) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let deadline = tokio::time::sleep(limit.unwrap_or(Duration::from_secs(24 * 3600)));
    tokio::pin!(deadline);
    let mut bookmark_tick = tokio::time::interval(BOOKMARK_EVERY);
    bookmark_tick.tick().await;
    loop {
        tokio::select! {
            _ = &mut deadline => return,
            _ = shutdown.changed() => return,
            _ = tx.closed() => return,
            _ = bookmark_tick.tick(), if req.bookmarks => {
                if !send(req.bookmark(last_rv, false)).await {
                    return;
                }
            }
            event = live.recv() => match event {
                Ok(e) => {
                    if e.rv <= last_rv {
                        continue;
                    }
                    last_rv = e.rv;
                    if let Some(b) = deliver(&e)
                        && !send(b).await
                    {
                        return;
                    }
                }
                // A watcher that fell behind is closed; its client re-lists, as with the real server.
                Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}
