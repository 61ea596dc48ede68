//! The HTTP face: routing Kubernetes API paths onto the store, and streaming watches.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::RecordedRequest;
use crate::registry::{self, ResourceType};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::store::{
    DeleteOpts, Event, EventType, ListOpts, PatchKind, Propagation, Store, WatchOpts, WatchStart,
    WriteCtx, render_for,
};

const MAX_BODY: usize = 256 << 20;
/// Watch output is flushed in chunks of about this size while replaying.
const CHUNK: usize = 256 << 10;
/// A watch without `timeoutSeconds` ends after this long (a real server picks 30–60 minutes).
const DEFAULT_WATCH_TIMEOUT: u64 = 1800;

pub(crate) struct Shared {
    pub store: Mutex<Store>,
    pub requests: Mutex<Vec<RecordedRequest>>,
    pub shutdown: tokio::sync::watch::Sender<bool>,
    pub server_address: String,
    pub exec_hook: Mutex<Option<crate::exec::ExecHook>>,
    pub proxy_hook: Mutex<Option<crate::exec::ProxyHook>>,
}

impl Shared {
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn requests(&self) -> MutexGuard<'_, Vec<RecordedRequest>> {
        self.requests.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn proxy_hook(&self) -> Option<crate::exec::ProxyHook> {
        self.proxy_hook
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn exec_hook(&self) -> Option<crate::exec::ExecHook> {
        self.exec_hook
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

fn respond(code: u16, content_type: &'static str, body: Body) -> Response {
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn json_bytes(code: u16, body: Bytes) -> Response {
    respond(code, "application/json", Body::from(body))
}

fn json_value(code: u16, v: &Value) -> Response {
    json_bytes(code, Bytes::from(serde_json::to_vec(v).unwrap_or_default()))
}

fn error_response(e: &ApiError) -> Response {
    json_value(e.code, &e.to_value())
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(h) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(h);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct Query(Vec<(String, String)>);

impl Query {
    fn parse(s: &str) -> Self {
        Query(form_urlencoded::parse(s.as_bytes()).into_owned().collect())
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    fn non_empty(&self, k: &str) -> Option<&str> {
        self.get(k).filter(|v| !v.is_empty())
    }

    /// Go's `strconv.ParseBool`, as the apiserver decodes boolean query parameters.
    fn bool(&self, k: &str) -> Result<Option<bool>, ApiError> {
        match self.get(k) {
            None | Some("") => Ok(None),
            Some("1" | "t" | "T" | "TRUE" | "true" | "True") => Ok(Some(true)),
            Some("0" | "f" | "F" | "FALSE" | "false" | "False") => Ok(Some(false)),
            Some(v) => Err(ApiError::bad_request(format!(
                "invalid boolean value for {k}: {v:?}"
            ))),
        }
    }
}

fn invalid_options(kind: &str, field: &str, message: &str) -> ApiError {
    ApiError::new(
        422,
        "Invalid",
        format!("{kind}.meta.k8s.io \"\" is invalid: {field}: {message}"),
    )
}

pub(crate) async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    shared.requests().push(RecordedRequest {
        method: parts.method.to_string(),
        path: path.clone(),
        query: query.clone(),
        content_type: content_type.clone(),
    });
    // exec upgrades the connection: the request has no body to read
    if let Some((ns, pod)) = exec_target(&path) {
        let q = Query::parse(&query);
        let stored = {
            let store = shared.store();
            store
                .find_type("", "v1", "pods")
                .ok_or_else(ApiError::not_found_path)
                .and_then(|ty| store.get(&ty, "v1", Some(&ns), &pod))
                .map(|(_, body)| serde_json::from_slice::<Value>(&body).unwrap_or_default())
        };
        let served = match stored {
            Ok(stored) => {
                crate::exec::serve(stored, shared.exec_hook(), parts, &ns, &pod, &q.0).await
            }
            Err(e) => Err(e),
        };
        return served.unwrap_or_else(|e| error_response(&e));
    }
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => {
            return error_response(&ApiError::bad_request(format!(
                "reading the request body: {e}"
            )));
        }
    };
    if let Some((ns, target, rest)) = proxy_target(&path) {
        return proxy(&shared, &parts.method, &ns, &target, &rest, &query, &body)
            .unwrap_or_else(|e| error_response(&e));
    }
    let q = Query::parse(&query);
    match route(
        &shared,
        &parts.method,
        &path,
        &q,
        content_type.as_deref(),
        &body,
    ) {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

/// `/api/v1/namespaces/{ns}/pods/{name}/exec`: the namespace and the pod.
fn exec_target(path: &str) -> Option<(String, String)> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["api", "v1", "namespaces", ns, "pods", pod, "exec"] => {
            Some((percent_decode(ns), percent_decode(pod)))
        }
        _ => None,
    }
}

/// `/api/v1/namespaces/{ns}/services/{target}/proxy[/rest]`: the namespace, the target and the
/// path below the proxy.
fn proxy_target(path: &str) -> Option<(String, String, String)> {
    let rest = path.strip_prefix("/api/v1/namespaces/")?;
    let (ns, rest) = rest.split_once('/')?;
    let rest = rest.strip_prefix("services/")?;
    let (target, rest) = rest.split_once('/')?;
    let below = rest.strip_prefix("proxy")?;
    if !(below.is_empty() || below.starts_with('/')) {
        return None;
    }
    let below = if below.is_empty() { "/" } else { below };
    Some((percent_decode(ns), percent_decode(target), below.to_owned()))
}

fn proxy(
    shared: &Arc<Shared>,
    method: &Method,
    ns: &str,
    target: &str,
    path: &str,
    query: &str,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let (scheme, service, port) = crate::exec::proxy_target(target);
    {
        let store = shared.store();
        let ty = store
            .find_type("", "v1", "services")
            .ok_or_else(ApiError::not_found_path)?;
        store.get(&ty, "v1", Some(ns), &service)?;
    }
    let request = crate::exec::ProxyRequest {
        namespace: ns.to_owned(),
        service: service.clone(),
        scheme,
        port,
        method: method.to_string(),
        path: path.to_owned(),
        query: query.to_owned(),
        body: body.to_vec(),
    };
    match shared.proxy_hook().and_then(|h| h(&request)) {
        Some((code, ct, answer)) => {
            let mut r = Response::new(Body::from(answer));
            *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
            if let Ok(v) = HeaderValue::from_str(&ct) {
                r.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            Ok(r)
        }
        None => Err(ApiError::new(
            503,
            "ServiceUnavailable",
            format!("no endpoints available for service \"{service}\""),
        )),
    }
}

fn route(
    shared: &Arc<Shared>,
    method: &Method,
    path: &str,
    q: &Query,
    ct: Option<&str>,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let discovery = |v: Option<Value>| -> Result<Response, ApiError> {
        if method != Method::GET {
            return Err(ApiError::method_not_allowed(method.as_str()));
        }
        v.map(|v| json_value(200, &v))
            .ok_or_else(ApiError::not_found_path)
    };
    match segs.as_slice() {
        ["version"] => discovery(Some(registry::version_info())),
        ["healthz" | "livez" | "readyz", ..] => {
            Ok(respond(200, "text/plain; charset=utf-8", Body::from("ok")))
        }
        ["api"] => discovery(Some(registry::api_versions(&shared.server_address))),
        ["api", v] => {
            let store = shared.store();
            discovery(registry::api_resource_list(store.types(), "", v))
        }
        ["apis"] => {
            let store = shared.store();
            discovery(Some(registry::api_group_list(store.types())))
        }
        ["apis", g] => {
            let store = shared.store();
            discovery(registry::api_group(store.types(), g))
        }
        ["apis", g, v] => {
            let store = shared.store();
            discovery(registry::api_resource_list(store.types(), g, v))
        }
        ["api", v, rest @ ..] => resource(shared, method, "", v, rest, q, ct, body),
        ["apis", g, v, rest @ ..] => resource(shared, method, g, v, rest, q, ct, body),
        _ => Err(ApiError::not_found_path()),
    }
}

struct Target {
    ty: Arc<ResourceType>,
    ns: Option<String>,
    name: Option<String>,
    status: bool,
    /// `pods/{name}/log`: the text of the pod's LOG_ANNOTATION.
    log: bool,
}

/// The annotation whose text the double serves as a pod's log (`GET .../pods/{name}/log`): no
/// container runs here, so a test writes the log its pod would have printed.
pub const LOG_ANNOTATION: &str = "kube-double.terroir.eu/log";

fn resolve(store: &Store, group: &str, version: &str, rest: &[&str]) -> Option<Target> {
    let finish =
        |ty: Arc<ResourceType>, ns: Option<&str>, name: Option<&&str>, sub: Option<&&str>| {
            let (status, log) = match sub {
                None => (false, false),
                Some(&"status") if ty.has_status(version) => (true, false),
                Some(&"log") if ty.gr.group.is_empty() && ty.gr.resource == "pods" => (false, true),
                Some(_) => return None,
            };
            Some(Target {
                ty,
                ns: ns.map(str::to_owned),
                name: name.map(|n| (*n).to_owned()),
                status,
                log,
            })
        };
    if rest.len() >= 3
        && rest[0] == "namespaces"
        && let Some(ty) = store
            .find_type(group, version, rest[2])
            .filter(|t| t.namespaced)
    {
        if rest.len() > 5 {
            return None;
        }
        return finish(ty, Some(rest[1]), rest.get(3), rest.get(4));
    }
    let ty = store.find_type(group, version, rest.first()?)?;
    if rest.len() > 3 || (ty.namespaced && rest.len() > 1) {
        return None;
    }
    finish(ty, None, rest.get(1), rest.get(2))
}

/// Parses a POST or PUT body: JSON, or YAML when the content type says so.
fn parse_body(ct: Option<&str>, body: &[u8]) -> Result<Value, ApiError> {
    let yaml = ct.is_some_and(|c| c.contains("yaml"));
    if !yaml {
        return serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("the request body is not valid JSON: {e}"))
        });
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("the request body is not UTF-8"))?;
    serde_saphyr::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
}

#[allow(clippy::too_many_arguments)]
fn resource(
    shared: &Arc<Shared>,
    method: &Method,
    group: &str,
    version: &str,
    rest: &[&str],
    q: &Query,
    ct: Option<&str>,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let t = {
        let store = shared.store();
        resolve(&store, group, version, rest)
    }
    .ok_or_else(ApiError::not_found_path)?;
    let ctx = || -> Result<WriteCtx, ApiError> {
        let dry_run = match q.get("dryRun") {
            None | Some("") => false,
            Some("All") => true,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "unsupported dry run value: {other:?}"
                )));
            }
        };
        Ok(WriteCtx {
            dry_run,
            manager: q.non_empty("fieldManager").map(str::to_owned),
            force: q.bool("force")?.unwrap_or(false),
            version: version.to_owned(),
            status: t.status,
        })
    };
    let ty = &t.ty;
    let ns = t.ns.as_deref();
    let done = |(code, b): (u16, Bytes)| json_bytes(code, b);
    if t.log {
        let (Some(name), &Method::GET) = (t.name.as_deref(), method) else {
            return Err(ApiError::method_not_allowed(method.as_str()));
        };
        let (_, body) = shared.store().get(ty, version, ns, name)?;
        let pod: Value = serde_json::from_slice(&body).unwrap_or_default();
        let text = pod["metadata"]["annotations"][LOG_ANNOTATION]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        return Ok(respond(200, "text/plain", Body::from(text)));
    }
    match (t.name.as_deref(), method) {
        (None, &Method::GET) => {
            if q.bool("watch")?.unwrap_or(false) {
                return watch(shared, &t, version, q);
            }
            let opts = list_opts(&t, q)?;
            let page = shared.store().list(ty, version, &opts)?;
            Ok(json_bytes(200, page.body()))
        }
        (None, &Method::POST) => {
            if ty.namespaced && ns.is_none() {
                return Err(ApiError::method_not_allowed("POST"));
            }
            let ctx = ctx()?;
            let v = parse_body(ct, body)?;
            shared.store().create(ty, ns, v, &ctx).map(done)
        }
        (None, &Method::DELETE) => {
            let opts = delete_opts(q, body)?;
            let mut list = list_opts(&t, q)?;
            list.limit = None;
            list.continue_token = None;
            shared
                .store()
                .delete_collection(ty, version, &list, &opts)
                .map(done)
        }
        (Some(name), &Method::GET) => shared.store().get(ty, version, ns, name).map(done),
        (Some(name), &Method::PUT) => {
            let ctx = ctx()?;
            let v = parse_body(ct, body)?;
            shared.store().replace(ty, ns, name, v, &ctx).map(done)
        }
        (Some(name), &Method::PATCH) => {
            let ctx = ctx()?;
            let media = ct
                .unwrap_or_default()
                .split(';')
                .next()
                .unwrap_or_default()
                .trim();
            let kind = match media {
                "application/json-patch+json" => PatchKind::Json,
                "application/merge-patch+json" => PatchKind::Merge,
                "application/strategic-merge-patch+json" => PatchKind::Strategic,
                "application/apply-patch+yaml" => PatchKind::Apply,
                other => return Err(ApiError::unsupported_media_type(other)),
            };
            if ctx.force && kind != PatchKind::Apply {
                return Err(invalid_options(
                    "PatchOptions",
                    "force",
                    "Forbidden: may not be specified for non-apply patch",
                ));
            }
            shared
                .store()
                .patch(ty, ns, name, kind, body, &ctx)
                .map(done)
        }
        (Some(name), &Method::DELETE) if !t.status => {
            let opts = delete_opts(q, body)?;
            shared
                .store()
                .delete(ty, version, ns, name, &opts)
                .map(done)
        }
        (_, m) => Err(ApiError::method_not_allowed(m.as_str())),
    }
}

fn list_opts(t: &Target, q: &Query) -> Result<ListOpts, ApiError> {
    if let Some(m) = q.non_empty("resourceVersionMatch") {
        let rv = q.get("resourceVersion").unwrap_or_default();
        if rv.is_empty() {
            return Err(invalid_options(
                "ListOptions",
                "resourceVersionMatch",
                "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        if q.non_empty("continue").is_some() {
            return Err(invalid_options(
                "ListOptions",
                "resourceVersionMatch",
                "Forbidden: resourceVersionMatch is forbidden when continue is provided",
            ));
        }
        match m {
            "NotOlderThan" => {}
            "Exact" if rv == "0" => {
                return Err(invalid_options(
                    "ListOptions",
                    "resourceVersionMatch",
                    "Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                ));
            }
            "Exact" => {}
            other => {
                return Err(invalid_options(
                    "ListOptions",
                    "resourceVersionMatch",
                    &format!(
                        "Unsupported value: {other:?}: supported values: \"Exact\", \"NotOlderThan\""
                    ),
                ));
            }
        }
    }
    Ok(ListOpts {
        ns: t.ns.clone(),
        labels: q
            .get("labelSelector")
            .map(LabelSelector::parse)
            .transpose()?
            .unwrap_or_default(),
        fields: q
            .get("fieldSelector")
            .map(FieldSelector::parse)
            .transpose()?
            .unwrap_or_default(),
        limit: match q.non_empty("limit") {
            Some(l) => Some(
                l.parse::<usize>()
                    .map_err(|_| ApiError::bad_request(format!("invalid limit: {l:?}")))?,
            )
            .filter(|l| *l > 0),
            None => None,
        },
        continue_token: q.non_empty("continue").map(str::to_owned),
    })
}

fn delete_opts(q: &Query, body: &[u8]) -> Result<DeleteOpts, ApiError> {
    let b: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("the DeleteOptions body is not valid JSON: {e}"))
        })?
    };
    let policy = q
        .non_empty("propagationPolicy")
        .or_else(|| b.get("propagationPolicy").and_then(Value::as_str))
        .map(|p| match p {
            "Orphan" => Ok(Propagation::Orphan),
            "Background" => Ok(Propagation::Background),
            "Foreground" => Ok(Propagation::Foreground),
            other => Err(invalid_options(
                "DeleteOptions",
                "propagationPolicy",
                &format!("Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""),
            )),
        })
        .transpose()?;
    let policy = match (policy, b.get("orphanDependents").and_then(Value::as_bool)) {
        (Some(p), _) => Some(p),
        (None, Some(true)) => Some(Propagation::Orphan),
        (None, Some(false)) => Some(Propagation::Background),
        (None, None) => None,
    };
    let dry_run = q.get("dryRun") == Some("All")
        || b.get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    let pre = b.get("preconditions");
    Ok(DeleteOpts {
        dry_run,
        propagation: policy,
        uid: pre
            .and_then(|p| p.get("uid"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        resource_version: pre
            .and_then(|p| p.get("resourceVersion"))
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// Decides which watch events one watch sees, and how.
struct Filter {
    ns: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    api_version: String,
    kind: String,
}

fn push_line(buf: &mut Vec<u8>, etype: &str, object: &[u8]) {
    buf.extend_from_slice(b"{\"type\":\"");
    buf.extend_from_slice(etype.as_bytes());
    buf.extend_from_slice(b"\",\"object\":");
    buf.extend_from_slice(object);
    buf.extend_from_slice(b"}\n");
}

impl Filter {
    fn push(&self, buf: &mut Vec<u8>, ev: &Event) {
        if self.ns.as_ref().is_some_and(|ns| *ns != ev.ns) || !self.fields.matches(&ev.ns, &ev.name)
        {
            return;
        }
        let now = self.labels.is_empty() || self.labels.matches(&ev.labels);
        let etype = match ev.etype {
            EventType::Added => now.then_some("ADDED"),
            EventType::Deleted => now.then_some("DELETED"),
            EventType::Modified => {
                let before = self.labels.is_empty()
                    || ev
                        .old_labels
                        .as_ref()
                        .is_none_or(|l| self.labels.matches(l));
                match (before, now) {
                    (true, true) => Some("MODIFIED"),
                    (false, true) => Some("ADDED"),
                    (true, false) => Some("DELETED"),
                    (false, false) => None,
                }
            }
        };
        if let Some(etype) = etype {
            push_line(
                buf,
                etype,
                &render_for(&ev.json, &ev.api_version, &self.api_version),
            );
        }
    }

    fn bookmark(&self, buf: &mut Vec<u8>, rv: u64, initial_end: bool) {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj = json!({"kind": self.kind, "apiVersion": self.api_version, "metadata": metadata});
        push_line(buf, "BOOKMARK", obj.to_string().as_bytes());
    }
}

fn watch(shared: &Arc<Shared>, t: &Target, version: &str, q: &Query) -> Result<Response, ApiError> {
    let bookmarks = q.bool("allowWatchBookmarks")?.unwrap_or(false);
    let send_initial_events = q.bool("sendInitialEvents")?;
    if send_initial_events.is_some() {
        if q.get("resourceVersionMatch") != Some("NotOlderThan") {
            return Err(invalid_options(
                "ListOptions",
                "resourceVersionMatch",
                "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        if !bookmarks {
            return Err(invalid_options(
                "ListOptions",
                "allowWatchBookmarks",
                "Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true",
            ));
        }
    } else if q.non_empty("resourceVersionMatch").is_some() {
        return Err(invalid_options(
            "ListOptions",
            "resourceVersionMatch",
            "Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
        ));
    }
    let timeout = match q.non_empty("timeoutSeconds") {
        Some(s) => s
            .parse::<u64>()
            .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds: {s:?}")))?,
        None => DEFAULT_WATCH_TIMEOUT,
    };
    let opts = WatchOpts {
        ns: t.ns.clone(),
        labels: q
            .get("labelSelector")
            .map(LabelSelector::parse)
            .transpose()?
            .unwrap_or_default(),
        fields: q
            .get("fieldSelector")
            .map(FieldSelector::parse)
            .transpose()?
            .unwrap_or_default(),
        resource_version: q.get("resourceVersion").map(str::to_owned),
        send_initial_events,
    };
    let start = shared.store().start_watch(&t.ty, version, &opts)?;
    let filter = Filter {
        ns: opts.ns.filter(|_| t.ty.namespaced),
        labels: opts.labels,
        fields: opts.fields,
        api_version: t.ty.api_version(version),
        kind: t.ty.kind.clone(),
    };
    let (initial, replay, initial_end, mut rx) = match start {
        WatchStart::Gone(err) => {
            let mut buf = Vec::new();
            push_line(
                &mut buf,
                "ERROR",
                &serde_json::to_vec(&err.to_value()).unwrap_or_default(),
            );
            return Ok(respond(200, "application/json", Body::from(buf)));
        }
        WatchStart::Started {
            initial,
            replay,
            initial_end,
            rx,
        } => (initial, replay, initial_end, rx),
    };
    let shared = shared.clone();
    let mut shutdown = shared.shutdown.subscribe();
    let stream = async_stream::stream! {
        let mut buf: Vec<u8> = Vec::new();
        for obj in &initial {
            push_line(&mut buf, "ADDED", obj);
            if buf.len() >= CHUNK {
                yield Ok::<Bytes, Infallible>(Bytes::from(std::mem::take(&mut buf)));
            }
        }
        drop(initial);
        for ev in &replay {
            filter.push(&mut buf, ev);
            if buf.len() >= CHUNK {
                yield Ok(Bytes::from(std::mem::take(&mut buf)));
            }
        }
        drop(replay);
        if let Some(rv) = initial_end {
            filter.bookmark(&mut buf, rv, true);
        }
        if !buf.is_empty() {
            yield Ok(Bytes::from(std::mem::take(&mut buf)));
        }
        let deadline = tokio::time::sleep(Duration::from_secs(timeout));
        tokio::pin!(deadline);
        let mut batch: Vec<Arc<Event>> = Vec::with_capacity(256);
        loop {
            if *shutdown.borrow_and_update() {
                break;
            }
            tokio::select! {
                n = rx.recv_many(&mut batch, 256) => {
                    if n == 0 {
                        // The store dropped this watch (it fell too far behind, or its type is
                        // gone): end the stream; the client resumes from what it has seen.
                        break;
                    }
                    for ev in batch.drain(..) {
                        filter.push(&mut buf, &ev);
                    }
                    if !buf.is_empty() {
                        yield Ok(Bytes::from(std::mem::take(&mut buf)));
                    }
                }
                () = &mut deadline => {
                    if bookmarks {
                        // Everything up to the current resourceVersion has been queued for us
                        // (events are queued under the store lock), so after draining the queue
                        // under that lock, a bookmark at that version is truthful.
                        let (pending, rv) = {
                            let store = shared.store();
                            let mut pending = Vec::new();
                            while let Ok(ev) = rx.try_recv() {
                                pending.push(ev);
                            }
                            let rv = (!rx.is_closed()).then(|| store.resource_version());
                            (pending, rv)
                        };
                        for ev in &pending {
                            filter.push(&mut buf, ev);
                        }
                        if let Some(rv) = rv {
                            filter.bookmark(&mut buf, rv, false);
                        }
                        if !buf.is_empty() {
                            yield Ok(Bytes::from(std::mem::take(&mut buf)));
                        }
                    }
                    break;
                }
                _ = shutdown.changed() => break,
            }
        }
    };
    Ok(respond(200, "application/json", Body::from_stream(stream)))
}
