//! The object store: objects, their field managers, resource versions, watch events and the
//! behaviour of the controllers the double stands in for (garbage collector, namespace
//! lifecycle, CRD establishment, workload rollouts).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::cause::cause;
use crate::fields::{self, FieldSet, PathElement, Scope};
use crate::registry::{self, GroupResource, NameRule, ResourceType, Types};
use crate::selector::{FieldSelector, LabelSelector, Labels, labels_of};
use crate::status::{ApiError, Cause};
use crate::time::now_rfc3339;

/// How many events a watch may have queued before the double gives up on it and ends its stream
/// (the client then resumes from the last resourceVersion it saw, from the history).
const WATCH_QUEUE: usize = 16_384;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    Apply,
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One `managedFields` entry, with its field set kept as paths.
#[derive(Debug, Clone)]
pub(crate) struct Managed {
    pub manager: String,
    pub operation: Operation,
    pub subresource: String,
    pub api_version: String,
    pub time: String,
    pub fields: FieldSet,
}

impl Managed {
    fn same_key(&self, manager: &str, operation: Operation, subresource: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource == subresource
    }

    fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), json!(self.manager));
        m.insert("operation".into(), json!(self.operation.as_str()));
        m.insert("apiVersion".into(), json!(self.api_version));
        m.insert("time".into(), json!(self.time));
        m.insert("fieldsType".into(), json!("FieldsV1"));
        m.insert("fieldsV1".into(), fields::fields_v1(&self.fields));
        if !self.subresource.is_empty() {
            m.insert("subresource".into(), json!(self.subresource));
        }
        Value::Object(m)
    }

    /// How a conflict message names the manager (`printManager` in the apiserver).
    fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        s.push_str(&format!(" using {}", self.api_version));
        if self.operation == Operation::Update {
            s.push_str(&format!(" at {}", self.time));
        }
        s
    }
}

/// A stored object: its full JSON form (kind, apiVersion, metadata with managedFields), the
/// same serialised once, and its managers.
#[derive(Debug)]
pub(crate) struct Stored {
    pub value: Value,
    pub json: Bytes,
    pub managers: Vec<Managed>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

#[derive(Debug)]
pub(crate) struct Event {
    pub rv: u64,
    pub gr: GroupResource,
    pub ns: String,
    pub name: String,
    pub etype: EventType,
    pub api_version: String,
    pub json: Bytes,
    pub labels: Labels,
    /// For MODIFIED: the labels before, so label-selected watches see objects enter and leave.
    pub old_labels: Option<Labels>,
}

struct WatchSlot {
    ns: Option<String>,
    tx: mpsc::Sender<Arc<Event>>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ObjRef {
    pub gr: GroupResource,
    pub ns: String,
    pub name: String,
}

/// The request-level knobs of a write.
#[derive(Debug, Clone, Default)]
pub(crate) struct WriteCtx {
    pub dry_run: bool,
    pub manager: Option<String>,
    pub force: bool,
    /// The version of the URL the write came in on.
    pub version: String,
    /// A write to the `/status` subresource.
    pub status: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchKind {
    Json,
    Merge,
    Strategic,
    Apply,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Propagation {
    Orphan,
    Background,
    Foreground,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct DeleteOpts {
    pub dry_run: bool,
    pub propagation: Option<Propagation>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct ListOpts {
    pub ns: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct WatchOpts {
    pub ns: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub resource_version: Option<String>,
    pub send_initial_events: Option<bool>,
}

pub(crate) enum WatchStart {
    /// The requested resourceVersion is older than the history kept.
    Gone(ApiError),
    Started {
        /// Objects to announce with synthetic ADDED events (already filtered).
        initial: Vec<Bytes>,
        /// Events to replay (not yet filtered by selectors).
        replay: Vec<Arc<Event>>,
        /// resourceVersion for the `k8s.io/initial-events-end` bookmark, if asked.
        initial_end: Option<u64>,
        rx: mpsc::Receiver<Arc<Event>>,
    },
}

pub(crate) struct Store {
    pub simulate_rollouts: bool,
    watch_history: usize,
    rv: u64,
    uid_seq: u64,
    uid_prefix: u32,
    name_seq: u64,
    types: Types,
    objects: HashMap<GroupResource, BTreeMap<(String, String), Arc<Stored>>>,
    uids: HashMap<String, ObjRef>,
    /// owner uid → objects whose ownerReferences name it.
    dependents: HashMap<String, BTreeSet<ObjRef>>,
    history: VecDeque<Arc<Event>>,
    /// The newest resourceVersion whose event has left the history.
    dropped_through: u64,
    watchers: HashMap<GroupResource, Vec<WatchSlot>>,
}

type Outcome = Result<(u16, Bytes), ApiError>;

fn meta(v: &Value) -> Option<&Map<String, Value>> {
    v.get("metadata")?.as_object()
}

fn meta_mut(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    let Some(top) = v.as_object_mut() else {
        unreachable!("just made an object")
    };
    let m = top
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !m.is_object() {
        *m = Value::Object(Map::new());
    }
    let Some(m) = m.as_object_mut() else {
        unreachable!("just made an object")
    };
    m
}

fn meta_str<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    meta(v)?.get(key)?.as_str()
}

fn finalizers(v: &Value) -> Vec<String> {
    meta(v)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn owner_uids(v: &Value) -> Vec<String> {
    meta(v)
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.get("uid")?.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn generation(v: &Value) -> i64 {
    meta(v)
        .and_then(|m| m.get("generation"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

fn is_empty_container(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Go's `omitempty` on ObjectMeta: empty labels, annotations, finalizers and ownerReferences
/// are not there at all.
fn normalize_metadata(v: &mut Value) {
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in ["labels", "annotations", "finalizers", "ownerReferences"] {
            if m.get(k).is_some_and(is_empty_container) {
                m.shift_remove(k);
            }
        }
    }
}

/// Whether anything outside metadata (and status, when it has its own subresource) differs.
fn spec_differs(a: &Value, b: &Value, skip_status: bool) -> bool {
    let skip = |k: &str| {
        k == "metadata" || k == "apiVersion" || k == "kind" || (skip_status && k == "status")
    };
    let (Some(x), Some(y)) = (a.as_object(), b.as_object()) else {
        return a != b;
    };
    let xs = x.iter().filter(|(k, _)| !skip(k));
    let ys = y.iter().filter(|(k, _)| !skip(k));
    if xs.clone().count() != ys.count() {
        return true;
    }
    xs.into_iter().any(|(k, v)| y.get(k) != Some(v))
}

/// Equal but for resourceVersion and managedFields.
fn same_content(a: &Value, b: &Value) -> bool {
    let (Some(x), Some(y)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    let volatile = |k: &str| k == "resourceVersion" || k == "managedFields";
    let metas_equal = match (meta(a), meta(b)) {
        (Some(ma), Some(mb)) => {
            let ca = ma.iter().filter(|(k, _)| !volatile(k)).count();
            let cb = mb.iter().filter(|(k, _)| !volatile(k)).count();
            ca == cb
                && ma
                    .iter()
                    .filter(|(k, _)| !volatile(k))
                    .all(|(k, v)| mb.get(k) == Some(v))
        }
        (None, None) => true,
        _ => false,
    };
    metas_equal
        && !spec_differs(a, b, false)
        && x.get("apiVersion") == y.get("apiVersion")
        && x.get("kind") == y.get("kind")
}

fn managers_equal(a: &[Managed], b: &[Managed]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.same_key(&y.manager, y.operation, &y.subresource)
                && x.api_version == y.api_version
                && x.fields == y.fields
        })
}

const META_ORDER: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
];

/// apiVersion, kind, metadata (in the order the apiserver writes it, managedFields last), rest.
fn canonicalize(v: Value, api_version: &str, kind: &str, managers: &[Managed]) -> Value {
    let mut top = match v {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let mut meta = match top.shift_remove("metadata") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let mut out = Map::new();
    out.insert("apiVersion".into(), json!(api_version));
    out.insert("kind".into(), json!(kind));
    let mut m2 = Map::new();
    for k in META_ORDER {
        if let Some(x) = meta.shift_remove(*k) {
            m2.insert((*k).to_owned(), x);
        }
    }
    meta.shift_remove("managedFields");
    m2.extend(meta);
    if !managers.is_empty() {
        m2.insert(
            "managedFields".into(),
            Value::Array(managers.iter().map(Managed::to_value).collect()),
        );
    }
    out.insert("metadata".into(), Value::Object(m2));
    for (k, x) in top {
        if k != "apiVersion" && k != "kind" {
            out.insert(k, x);
        }
    }
    Value::Object(out)
}

fn to_bytes(v: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}

/// The stored JSON, with apiVersion rewritten when another served version is asked for
/// (versions are not converted otherwise).
pub(crate) fn render_for(json: &Bytes, stored_api_version: &str, want: &str) -> Bytes {
    if stored_api_version == want {
        return json.clone();
    }
    match serde_json::from_slice::<Value>(json) {
        Ok(mut v) => {
            v["apiVersion"] = json!(want);
            to_bytes(&v)
        }
        Err(_) => json.clone(),
    }
}

fn stored_api_version(s: &Stored) -> &str {
    s.value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Like `rand.SafeEncodeString(fmt.Sprint(fnv32a(x)))`: the shape of a pod-template-hash.
fn template_hash(v: Option<&Value>) -> String {
    let text = v.map(|v| v.to_string()).unwrap_or_default();
    let mut h: u32 = 0x811c_9dc5;
    for b in text.as_bytes() {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h.to_string()
        .bytes()
        .map(|b| char::from(SAFE_ALPHABET[usize::from(b) % SAFE_ALPHABET.len()]))
        .collect()
}

/// `v` with the keys of every object in sorted order.
fn sorted_keys(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted_keys(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted_keys).collect()),
        other => other.clone(),
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

fn is_qualified_name_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
        && s.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric)
        && s.as_bytes().last().is_some_and(u8::is_ascii_alphanumeric)
}

fn is_qualified_name(s: &str) -> bool {
    match s.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_qualified_name_part(name),
        None => is_qualified_name_part(s),
    }
}

fn is_label_value(s: &str) -> bool {
    s.is_empty() || is_qualified_name_part(s)
}

const LABEL_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const KEY_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')";

fn validate_name(rule: NameRule, name: &str, field: &str, causes: &mut Vec<Cause>) {
    let (ok, msg) = match rule {
        NameRule::Subdomain => (
            is_dns_subdomain(name),
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ),
        NameRule::Label => (
            is_dns_label(name),
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        ),
        NameRule::PathSegment => (
            !name.is_empty()
                && name != "."
                && name != ".."
                && !name.contains('/')
                && !name.contains('%'),
            "may not be '.' or '..' and may not contain '/' or '%'",
        ),
    };
    if !ok {
        causes.push(cause(
            "FieldValueInvalid",
            field,
            format!("Invalid value: {name:?}: {msg}"),
        ));
    }
}

impl Store {
    pub(crate) fn new(simulate_rollouts: bool, watch_history: usize) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
            .unwrap_or_default()
            ^ std::process::id().rotate_left(16);
        let types = registry::builtin_types()
            .into_iter()
            .map(|t| (t.gr.clone(), Arc::new(t)))
            .collect();
        Store {
            simulate_rollouts,
            watch_history,
            rv: 0,
            uid_seq: 0,
            uid_prefix: seed,
            name_seq: u64::from(seed),
            types,
            objects: HashMap::new(),
            uids: HashMap::new(),
            dependents: HashMap::new(),
            history: VecDeque::new(),
            dropped_through: 0,
            watchers: HashMap::new(),
        }
    }

    pub(crate) fn types(&self) -> &Types {
        &self.types
    }

    pub(crate) fn resource_version(&self) -> u64 {
        self.rv
    }

    pub(crate) fn find_type(
        &self,
        group: &str,
        version: &str,
        resource: &str,
    ) -> Option<Arc<ResourceType>> {
        self.types
            .get(&GroupResource::new(group, resource))
            .filter(|t| t.serves(version))
            .cloned()
    }

    pub(crate) fn find_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        self.types
            .values()
            .find(|t| t.gr.group == group && t.kind == kind)
            .cloned()
    }

    pub(crate) fn object_count(&self) -> usize {
        self.objects.values().map(BTreeMap::len).sum()
    }

    pub(crate) fn lookup(&self, gr: &GroupResource, ns: &str, name: &str) -> Option<Arc<Stored>> {
        self.objects
            .get(gr)?
            .get(&(ns.to_owned(), name.to_owned()))
            .cloned()
    }

    /// All objects of a type in storage order (namespace, name).
    pub(crate) fn all_of(&self, gr: &GroupResource) -> Vec<Arc<Stored>> {
        self.objects
            .get(gr)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn new_uid(&mut self) -> String {
        self.uid_seq += 1;
        let n = self.uid_seq;
        format!(
            "{:08x}-{:04x}-4000-8000-{:012x}",
            self.uid_prefix,
            (n >> 48) & 0xffff,
            n & 0xffff_ffff_ffff
        )
    }

    fn generated_name(&mut self, gr: &GroupResource, ns: &str, prefix: &str) -> String {
        loop {
            self.name_seq = self
                .name_seq
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let mut x = self.name_seq >> 20;
            let mut suffix = String::new();
            for _ in 0..5 {
                suffix.push(char::from(SAFE_ALPHABET[(x % 27) as usize]));
                x /= 27;
            }
            let name = format!("{prefix}{suffix}");
            if self.lookup(gr, ns, &name).is_none() {
                return name;
            }
        }
    }

    fn ns_key(ty: &ResourceType, ns: Option<&str>) -> String {
        if ty.namespaced {
            ns.unwrap_or_default().to_owned()
        } else {
            String::new()
        }
    }

    fn namespace_terminating(&self, ns: &str) -> bool {
        !ns.is_empty()
            && self
                .lookup(&GroupResource::new("", "namespaces"), "", ns)
                .is_some_and(|n| {
                    meta(&n.value).is_some_and(|m| m.contains_key("deletionTimestamp"))
                })
    }

    fn count_in_namespace(&self, ns: &str) -> usize {
        let start = (ns.to_owned(), String::new());
        self.objects
            .iter()
            .filter(|(gr, _)| self.types.get(*gr).is_some_and(|t| t.namespaced))
            .map(|(_, m)| {
                m.range(start.clone()..)
                    .take_while(|((n, _), _)| n == ns)
                    .count()
            })
            .sum()
    }

    // ---------------------------------------------------------------- reads

    pub(crate) fn get(
        &self,
        ty: &ResourceType,
        version: &str,
        ns: Option<&str>,
        name: &str,
    ) -> Outcome {
        let ns = Self::ns_key(ty, ns);
        let s = self
            .lookup(&ty.gr, &ns, name)
            .ok_or_else(|| ApiError::not_found(ty, name))?;
        Ok((
            200,
            render_for(&s.json, stored_api_version(&s), &ty.api_version(version)),
        ))
    }

    /// One page of a list; the caller renders it (outside the store lock) with `ListPage::body`.
    pub(crate) fn list(
        &self,
        ty: &ResourceType,
        version: &str,
        opts: &ListOpts,
    ) -> Result<ListPage, ApiError> {
        let want = ty.api_version(version);
        let ns_filter = opts.ns.as_deref().filter(|_| ty.namespaced);
        let (list_rv, start) = match &opts.continue_token {
            Some(t) => {
                let (rv, ns, name) = decode_continue(t)?;
                (rv, Bound::Excluded((ns, name)))
            }
            None => (
                self.rv,
                ns_filter.map_or(Bound::Unbounded, |ns| {
                    Bound::Included((ns.to_owned(), String::new()))
                }),
            ),
        };
        let mut items: Vec<Bytes> = Vec::new();
        let mut last_key: Option<(&str, &str)> = None;
        let mut more = false;
        if let Some(map) = self.objects.get(&ty.gr) {
            for ((ns, name), s) in map.range((start, Bound::Unbounded)) {
                if ns_filter.is_some_and(|w| w != ns) {
                    break;
                }
                if !opts.fields.matches(ns, name)
                    || (!opts.labels.is_empty() && !opts.labels.matches(&labels_of(&s.value)))
                {
                    continue;
                }
                if opts.limit.is_some_and(|l| items.len() >= l) {
                    more = true;
                    break;
                }
                items.push(render_for(&s.json, stored_api_version(s), &want));
                last_key = Some((ns, name));
            }
        }
        let cont = if more {
            last_key.map(|(ns, name)| encode_continue(list_rv, ns, name))
        } else {
            None
        };
        Ok(ListPage {
            list_kind: ty.list_kind.clone(),
            api_version: want,
            rv: list_rv,
            cont,
            items,
        })
    }
}

pub(crate) struct ListPage {
    list_kind: String,
    api_version: String,
    rv: u64,
    cont: Option<String>,
    items: Vec<Bytes>,
}

impl ListPage {
    pub(crate) fn body(&self) -> Bytes {
        list_body(
            &self.list_kind,
            &self.api_version,
            self.rv,
            self.cont.as_deref(),
            &self.items,
        )
    }
}

pub(crate) fn list_body(
    list_kind: &str,
    api_version: &str,
    rv: u64,
    cont: Option<&str>,
    items: &[Bytes],
) -> Bytes {
    let mut buf =
        Vec::with_capacity(items.iter().map(Bytes::len).sum::<usize>() + items.len() + 160);
    buf.extend_from_slice(b"{\"kind\":");
    buf.extend_from_slice(Value::String(list_kind.to_owned()).to_string().as_bytes());
    buf.extend_from_slice(b",\"apiVersion\":");
    buf.extend_from_slice(Value::String(api_version.to_owned()).to_string().as_bytes());
    buf.extend_from_slice(format!(",\"metadata\":{{\"resourceVersion\":\"{rv}\"").as_bytes());
    if let Some(c) = cont {
        buf.extend_from_slice(format!(",\"continue\":\"{c}\"").as_bytes());
    }
    buf.extend_from_slice(b"},\"items\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(item);
    }
    buf.extend_from_slice(b"]}");
    Bytes::from(buf)
}

fn decode_continue(token: &str) -> Result<(u64, String, String), ApiError> {
    let bad = || ApiError::bad_request("continue key is not valid: the double could not decode it");
    if !token.len().is_multiple_of(2) {
        return Err(bad());
    }
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok())
        .collect();
    let v: Value = serde_json::from_slice(&bytes.ok_or_else(bad)?).map_err(|_| bad())?;
    let rv = v.get(0).and_then(Value::as_u64).ok_or_else(bad)?;
    let ns = v.get(1).and_then(Value::as_str).ok_or_else(bad)?.to_owned();
    let name = v.get(2).and_then(Value::as_str).ok_or_else(bad)?.to_owned();
    Ok((rv, ns, name))
}

pub(crate) fn encode_continue(rv: u64, ns: &str, name: &str) -> String {
    json!([rv, ns, name])
        .to_string()
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn bad_request(msg: impl Into<String>) -> ApiError {
    ApiError::bad_request(msg)
}

/// Parses a server-side apply body: JSON, or YAML.
fn parse_apply_body(body: &[u8]) -> Result<Value, ApiError> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| bad_request("the apply body is neither JSON nor UTF-8 YAML"))?;
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| bad_request(format!("error decoding YAML: {e}")))
}

/// RFC 6902, with the apiserver's leniency: `test` for `null` passes on a missing path (which is
/// how kube-runtime's finalizer helper checks that there are no finalizers yet).
fn apply_json_patch(doc: &mut Value, ops: &[json_patch::PatchOperation]) -> Result<(), ApiError> {
    for op in ops {
        if let json_patch::PatchOperation::Test(t) = op
            && t.value.is_null()
            && doc.pointer(t.path.as_str()).is_none()
        {
            continue;
        }
        json_patch::patch(doc, std::slice::from_ref(op))
            .map_err(|e| ApiError::unprocessable(e.to_string()))?;
    }
    Ok(())
}

fn is_item_name(p: &[PathElement]) -> bool {
    matches!(p, [.., PathElement::Key(_), PathElement::Field(f)] if f == "name")
}

fn has_owned_descendant(set: &FieldSet, p: &fields::Path) -> bool {
    set.range::<fields::Path, _>((Bound::Excluded(p.clone()), Bound::Unbounded))
        .next()
        .is_some_and(|q| q.starts_with(p))
}

fn mark_deleting(v: &mut Value) {
    let gen_now = generation(v);
    let m = meta_mut(v);
    m.insert("deletionTimestamp".into(), json!(now_rfc3339()));
    m.insert("deletionGracePeriodSeconds".into(), json!(0));
    if gen_now > 0 {
        m.insert("generation".into(), json!(gen_now + 1));
    }
}

/// A condition, keeping the timestamps of the existing one of the same type when it says the same.
fn condition(
    old_status: Option<&Value>,
    ctype: &str,
    reason: &str,
    message: &str,
    with_update_time: bool,
) -> Value {
    let now = now_rfc3339();
    let prev = old_status
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some(ctype))
        });
    let prev_str = |k: &str| prev.and_then(|p| p.get(k)).and_then(Value::as_str);
    let same_status = prev_str("status") == Some("True");
    let unchanged =
        same_status && prev_str("reason") == Some(reason) && prev_str("message") == Some(message);
    let transition = if same_status {
        prev_str("lastTransitionTime").unwrap_or(&now).to_owned()
    } else {
        now.clone()
    };
    let update = if unchanged {
        prev_str("lastUpdateTime").unwrap_or(&now).to_owned()
    } else {
        now.clone()
    };
    let mut c = Map::new();
    c.insert("type".into(), json!(ctype));
    c.insert("status".into(), json!("True"));
    if with_update_time {
        c.insert("lastUpdateTime".into(), json!(update));
    }
    c.insert("lastTransitionTime".into(), json!(transition));
    c.insert("reason".into(), json!(reason));
    c.insert("message".into(), json!(message));
    Value::Object(c)
}

/// The status the workload controllers would write once the rollout is done.
fn rollout_status(resource: &str, obj: &Value) -> Option<Value> {
    let gen_now = generation(obj);
    let name = meta_str(obj, "name").unwrap_or_default();
    let replicas = obj
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let old = obj.get("status");
    let hash = template_hash(obj.pointer("/spec/template").map(sorted_keys).as_ref());
    let mut s = Map::new();
    let mut put = |k: &str, v: i64, omit_zero: bool| {
        if !(omit_zero && v == 0) {
            s.insert(k.to_owned(), json!(v));
        }
    };
    match resource {
        "deployments" => {
            put("observedGeneration", gen_now, true);
            put("replicas", replicas, true);
            put("updatedReplicas", replicas, true);
            put("readyReplicas", replicas, true);
            put("availableReplicas", replicas, true);
            s.insert(
                "conditions".into(),
                json!([
                    condition(
                        old,
                        "Available",
                        "MinimumReplicasAvailable",
                        "Deployment has minimum availability.",
                        true
                    ),
                    condition(
                        old,
                        "Progressing",
                        "NewReplicaSetAvailable",
                        &format!("ReplicaSet \"{name}-{hash}\" has successfully progressed."),
                        true
                    ),
                ]),
            );
        }
        "statefulsets" => {
            put("observedGeneration", gen_now, true);
            put("replicas", replicas, false);
            put("readyReplicas", replicas, true);
            put("currentReplicas", replicas, true);
            put("updatedReplicas", replicas, true);
            s.insert("currentRevision".into(), json!(format!("{name}-{hash}")));
            s.insert("updateRevision".into(), json!(format!("{name}-{hash}")));
            s.insert("collisionCount".into(), json!(0));
            s.insert("availableReplicas".into(), json!(replicas));
        }
        "daemonsets" => {
            s.insert("currentNumberScheduled".into(), json!(1));
            s.insert("numberMisscheduled".into(), json!(0));
            s.insert("desiredNumberScheduled".into(), json!(1));
            s.insert("numberReady".into(), json!(1));
            s.insert("observedGeneration".into(), json!(gen_now));
            s.insert("updatedNumberScheduled".into(), json!(1));
            s.insert("numberAvailable".into(), json!(1));
        }
        _ => return None,
    }
    Some(Value::Object(s))
}

/// The status the apiextensions controllers give an accepted CRD.
fn crd_status(crd: &Value) -> Value {
    let old = crd.get("status");
    let names = crd
        .pointer("/spec/names")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut accepted = Map::new();
    for k in [
        "plural",
        "singular",
        "shortNames",
        "kind",
        "listKind",
        "categories",
    ] {
        if let Some(v) = names.get(k) {
            accepted.insert(k.to_owned(), v.clone());
        }
    }
    if !accepted.contains_key("singular")
        && let Some(kind) = names.get("kind").and_then(Value::as_str)
    {
        accepted.insert("singular".into(), json!(kind.to_lowercase()));
    }
    if !accepted.contains_key("listKind")
        && let Some(kind) = names.get("kind").and_then(Value::as_str)
    {
        accepted.insert("listKind".into(), json!(format!("{kind}List")));
    }
    let mut stored: Vec<Value> = old
        .and_then(|s| s.get("storedVersions"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(storage) = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .and_then(|vs| {
            vs.iter()
                .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        })
        .and_then(|v| v.get("name"))
        && !stored.contains(storage)
    {
        stored.push(storage.clone());
    }
    json!({
        "conditions": [
            condition(old, "NamesAccepted", "NoConflicts", "no conflicts found", false),
            condition(old, "Established", "InitialNamesAccepted", "the initial names have been accepted", false),
        ],
        "acceptedNames": accepted,
        "storedVersions": stored,
    })
}

impl Store {
    fn check_type_meta(ty: &ResourceType, body: &Value, required: bool) -> Result<(), ApiError> {
        match body.get("apiVersion").and_then(Value::as_str) {
            Some(av) if !ty.versions.iter().any(|v| ty.api_version(&v.name) == av) => {
                return Err(bad_request(format!(
                    "the API version in the data ({av}) does not match the expected API version ({})",
                    ty.storage_api_version()
                )));
            }
            None if required => {
                return Err(bad_request(format!(
                    "Object 'apiVersion' is missing in the {} apply configuration",
                    ty.kind
                )));
            }
            _ => {}
        }
        match body.get("kind").and_then(Value::as_str) {
            Some(k) if k != ty.kind => Err(bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                ty.kind
            ))),
            None if required => Err(bad_request(format!(
                "Object 'Kind' is missing in the {} apply configuration",
                ty.kind
            ))),
            _ => Ok(()),
        }
    }

    fn body_namespace(
        ty: &ResourceType,
        url_ns: Option<&str>,
        body: &Value,
    ) -> Result<String, ApiError> {
        if !ty.namespaced {
            return Ok(String::new());
        }
        let url_ns = url_ns.unwrap_or_default();
        if let Some(bns) = meta_str(body, "namespace")
            && !bns.is_empty()
            && bns != url_ns
        {
            return Err(bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        Ok(url_ns.to_owned())
    }

    fn check_body_name(body: &Value, name: &str) -> Result<(), ApiError> {
        match meta_str(body, "name") {
            Some(n) if !n.is_empty() && n != name => Err(bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            ))),
            _ => Ok(()),
        }
    }

    fn subresource(ctx: &WriteCtx) -> &'static str {
        if ctx.status { "status" } else { "" }
    }

    fn scope(ty: &ResourceType, ctx: &WriteCtx) -> Scope {
        if ctx.status {
            Scope::Status
        } else {
            Scope::Main {
                skip_status: ty.has_status(&ctx.version),
            }
        }
    }

    /// Gives the changed fields to the request's manager (an Update entry).
    fn record_update(
        ty: &ResourceType,
        mut managers: Vec<Managed>,
        changed: FieldSet,
        ctx: &WriteCtx,
    ) -> Vec<Managed> {
        if !changed.is_empty() {
            let manager = ctx
                .manager
                .clone()
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "unknown".to_owned());
            let sub = Self::subresource(ctx);
            let av = ty.api_version(&ctx.version);
            match managers
                .iter_mut()
                .find(|e| e.same_key(&manager, Operation::Update, sub))
            {
                Some(e) => {
                    e.fields.extend(changed);
                    e.api_version = av;
                }
                None => managers.push(Managed {
                    manager,
                    operation: Operation::Update,
                    subresource: sub.to_owned(),
                    api_version: av,
                    time: String::new(),
                    fields: changed,
                }),
            }
        }
        managers.retain(|e| !e.fields.is_empty());
        managers
    }

    /// Field ownership after an update (PUT, patch): the changed fields move to the request's
    /// manager; fields that no longer exist are owned by no one.
    fn update_managers(
        ty: &ResourceType,
        old: &Stored,
        candidate: &Value,
        ctx: &WriteCtx,
    ) -> Vec<Managed> {
        let changed: FieldSet = fields::collect(candidate, Self::scope(ty, ctx))
            .into_iter()
            .filter(|p| fields::differs(&old.value, candidate, p))
            .collect();
        let all = fields::collect(candidate, Scope::Main { skip_status: false });
        let mut managers = old.managers.clone();
        for e in &mut managers {
            e.fields.retain(|p| all.contains(p) && !changed.contains(p));
        }
        Self::record_update(ty, managers, changed, ctx)
    }

    /// Status isolation: `/status` writes change only `.status`; main-resource writes leave it
    /// alone when the type has the subresource.
    fn isolate(ty: &ResourceType, ctx: &WriteCtx, old: &Value, new: Value) -> Value {
        let (mut v, from) = if ctx.status {
            (old.clone(), new)
        } else if ty.has_status(&ctx.version) {
            (new, old.clone())
        } else {
            return new;
        };
        if let Some(m) = v.as_object_mut() {
            match from.get("status") {
                Some(s) => {
                    m.insert("status".into(), s.clone());
                }
                None => {
                    m.shift_remove("status");
                }
            }
        }
        v
    }

    fn stamp_times(old: Option<&Stored>, mut managers: Vec<Managed>) -> Vec<Managed> {
        let mut now = None;
        for e in &mut managers {
            let prev = old.and_then(|o| {
                o.managers.iter().find(|p| {
                    p.same_key(&e.manager, e.operation, &e.subresource)
                        && p.fields == e.fields
                        && p.api_version == e.api_version
                })
            });
            e.time = match prev {
                Some(p) => p.time.clone(),
                None => now.get_or_insert_with(now_rfc3339).clone(),
            };
        }
        managers
    }

    fn validate(
        &self,
        ty: &ResourceType,
        ns: &str,
        name: &str,
        v: &Value,
        old: Option<&Stored>,
    ) -> Result<(), ApiError> {
        let mut causes = Vec::new();
        validate_name(ty.name_rule, name, "metadata.name", &mut causes);
        if ty.namespaced && old.is_none() {
            validate_name(NameRule::Label, ns, "metadata.namespace", &mut causes);
        }
        let m = meta(v);
        if let Some(labels) = m.and_then(|m| m.get("labels")) {
            match labels.as_object() {
                Some(labels) => {
                    for (k, val) in labels {
                        if !is_qualified_name(k) {
                            causes.push(cause(
                                "FieldValueInvalid",
                                "metadata.labels",
                                format!("Invalid value: {k:?}: {KEY_MSG}"),
                            ));
                        }
                        match val.as_str() {
                            Some(s) if is_label_value(s) => {}
                            _ => causes.push(cause(
                                "FieldValueInvalid",
                                "metadata.labels",
                                format!("Invalid value: {val}: {LABEL_MSG}"),
                            )),
                        }
                    }
                }
                None => causes.push(cause(
                    "FieldValueTypeInvalid",
                    "metadata.labels",
                    "Invalid value: must be a map of strings",
                )),
            }
        }
        if let Some(ann) = m.and_then(|m| m.get("annotations")) {
            match ann.as_object() {
                Some(ann) => {
                    for (k, val) in ann {
                        if !is_qualified_name(k) {
                            causes.push(cause(
                                "FieldValueInvalid",
                                "metadata.annotations",
                                format!("Invalid value: {k:?}: {KEY_MSG}"),
                            ));
                        }
                        if !val.is_string() {
                            causes.push(cause(
                                "FieldValueTypeInvalid",
                                &format!("metadata.annotations.{k}"),
                                "Invalid value: must be a string",
                            ));
                        }
                    }
                }
                None => causes.push(cause(
                    "FieldValueTypeInvalid",
                    "metadata.annotations",
                    "Invalid value: must be a map of strings",
                )),
            }
        }
        if let Some(refs) = m
            .and_then(|m| m.get("ownerReferences"))
            .and_then(Value::as_array)
        {
            for (i, r) in refs.iter().enumerate() {
                for k in ["apiVersion", "kind", "name", "uid"] {
                    if r.get(k).and_then(Value::as_str).is_none_or(str::is_empty) {
                        causes.push(cause(
                            "FieldValueInvalid",
                            &format!("metadata.ownerReferences[{i}].{k}"),
                            "Invalid value: \"\": must not be empty",
                        ));
                    }
                }
            }
        }
        if let Some(old) = old
            && meta(&old.value).is_some_and(|m| m.contains_key("deletionTimestamp"))
        {
            let before = finalizers(&old.value);
            let added: Vec<String> = finalizers(v)
                .into_iter()
                .filter(|f| !before.contains(f))
                .collect();
            if !added.is_empty() {
                let list = added
                    .iter()
                    .map(|f| format!("{f:?}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                causes.push(cause(
                    "FieldValueForbidden",
                    "metadata.finalizers",
                    format!("Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{{list}}}"),
                ));
            }
        }
        if ty.is("apiextensions.k8s.io", "customresourcedefinitions") {
            causes.extend(registry::validate_crd(v));
        }
        if causes.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(ty, name, causes))
        }
    }

    // ---------------------------------------------------------------- writes

    pub(crate) fn create(
        &mut self,
        ty: &Arc<ResourceType>,
        url_ns: Option<&str>,
        mut body: Value,
        ctx: &WriteCtx,
    ) -> Outcome {
        if !body.is_object() {
            return Err(bad_request("the request body must be a JSON object"));
        }
        Self::check_type_meta(ty, &body, false)?;
        fields::strip_nulls(&mut body);
        normalize_metadata(&mut body);
        let ns = Self::body_namespace(ty, url_ns, &body)?;
        let name = match meta_str(&body, "name").filter(|n| !n.is_empty()) {
            Some(n) => n.to_owned(),
            None => match meta_str(&body, "generateName")
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
            {
                Some(prefix) => self.generated_name(&ty.gr, &ns, &prefix),
                None => {
                    return Err(ApiError::invalid(
                        ty,
                        "",
                        vec![cause(
                            "FieldValueRequired",
                            "metadata.name",
                            "Required value: name or generateName is required",
                        )],
                    ));
                }
            },
        };
        if self.lookup(&ty.gr, &ns, &name).is_some() {
            return Err(ApiError::already_exists(ty, &name));
        }
        if self.namespace_terminating(&ns) {
            return Err(ApiError::forbidden(
                ty,
                &name,
                &format!(
                    "unable to create new content in namespace {ns} because it is being terminated"
                ),
            ));
        }
        if ty.has_status(&ctx.version)
            && let Some(m) = body.as_object_mut()
        {
            m.shift_remove("status");
        }
        let changed = fields::collect(&body, Self::scope(ty, ctx));
        let managers = Self::record_update(ty, Vec::new(), changed, ctx);
        self.finish_write(ty, &ns, &name, None, body, managers, ctx)
            .map(|(_, b)| (201, b))
    }

    pub(crate) fn replace(
        &mut self,
        ty: &Arc<ResourceType>,
        url_ns: Option<&str>,
        name: &str,
        mut body: Value,
        ctx: &WriteCtx,
    ) -> Outcome {
        if !body.is_object() {
            return Err(bad_request("the request body must be a JSON object"));
        }
        Self::check_type_meta(ty, &body, false)?;
        let ns = Self::body_namespace(ty, url_ns, &body)?;
        Self::check_body_name(&body, name)?;
        let old = self
            .lookup(&ty.gr, &ns, name)
            .ok_or_else(|| ApiError::not_found(ty, name))?;
        if let Some(rv) = meta_str(&body, "resourceVersion").filter(|rv| !rv.is_empty())
            && Some(rv) != meta_str(&old.value, "resourceVersion")
        {
            return Err(ApiError::modified(ty, name));
        }
        fields::strip_nulls(&mut body);
        normalize_metadata(&mut body);
        let candidate = Self::isolate(ty, ctx, &old.value, body);
        let managers = Self::update_managers(ty, &old, &candidate, ctx);
        self.finish_write(ty, &ns, name, Some(old), candidate, managers, ctx)
    }

    pub(crate) fn patch(
        &mut self,
        ty: &Arc<ResourceType>,
        url_ns: Option<&str>,
        name: &str,
        kind: PatchKind,
        body: &[u8],
        ctx: &WriteCtx,
    ) -> Outcome {
        if kind == PatchKind::Apply {
            return self.apply(ty, url_ns, name, body, ctx);
        }
        let ns = Self::ns_key(ty, url_ns);
        let old = self
            .lookup(&ty.gr, &ns, name)
            .ok_or_else(|| ApiError::not_found(ty, name))?;
        let mut doc = old.value.clone();
        meta_mut(&mut doc).shift_remove("managedFields");
        let parse = || -> Result<Value, ApiError> {
            serde_json::from_slice(body)
                .map_err(|e| bad_request(format!("the patch is not valid JSON: {e}")))
        };
        match kind {
            PatchKind::Json => {
                let ops: Vec<json_patch::PatchOperation> =
                    serde_json::from_slice(body).map_err(|e| {
                        bad_request(format!("the request body is not a JSON patch: {e}"))
                    })?;
                apply_json_patch(&mut doc, &ops)?;
            }
            PatchKind::Merge => json_patch::merge(&mut doc, &parse()?),
            PatchKind::Strategic => {
                let p = parse()?;
                if !p.is_object() {
                    return Err(bad_request("a strategic merge patch must be a JSON object"));
                }
                fields::strategic_merge(&mut doc, &p);
            }
            PatchKind::Apply => unreachable!("handled above"),
        }
        fields::strip_nulls(&mut doc);
        normalize_metadata(&mut doc);
        if !doc.is_object() {
            return Err(bad_request("the patched object is not a JSON object"));
        }
        Self::check_body_name(&doc, name)?;
        if ty.namespaced && meta_str(&doc, "namespace").is_some_and(|n| n != ns) {
            return Err(bad_request(
                "the namespace of the object does not match the namespace on the URL",
            ));
        }
        if let Some(rv) = meta_str(&doc, "resourceVersion").filter(|rv| !rv.is_empty())
            && Some(rv) != meta_str(&old.value, "resourceVersion")
        {
            return Err(ApiError::modified(ty, name));
        }
        Self::check_type_meta(ty, &doc, false)?;
        let candidate = Self::isolate(ty, ctx, &old.value, doc);
        let managers = Self::update_managers(ty, &old, &candidate, ctx);
        self.finish_write(ty, &ns, name, Some(old), candidate, managers, ctx)
    }

    fn apply(
        &mut self,
        ty: &Arc<ResourceType>,
        url_ns: Option<&str>,
        name: &str,
        body: &[u8],
        ctx: &WriteCtx,
    ) -> Outcome {
        let Some(manager) = ctx.manager.clone().filter(|m| !m.is_empty()) else {
            return Err(ApiError::new(
                422,
                "Invalid",
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
            ));
        };
        let mut cfg = parse_apply_body(body)?;
        if !cfg.is_object() {
            return Err(bad_request("the apply configuration must be an object"));
        }
        Self::check_type_meta(ty, &cfg, true)?;
        let ns = Self::body_namespace(ty, url_ns, &cfg)?;
        Self::check_body_name(&cfg, name)?;
        let old = self.lookup(&ty.gr, &ns, name);
        if let (Some(rv), Some(o)) = (
            meta_str(&cfg, "resourceVersion").filter(|rv| !rv.is_empty()),
            &old,
        ) && Some(rv) != meta_str(&o.value, "resourceVersion")
        {
            return Err(ApiError::modified(ty, name));
        }
        if old.is_none() {
            if ctx.status {
                return Err(ApiError::not_found(ty, name));
            }
            if self.namespace_terminating(&ns) {
                return Err(ApiError::forbidden(
                    ty,
                    name,
                    &format!(
                        "unable to create new content in namespace {ns} because it is being terminated"
                    ),
                ));
            }
        }
        fields::strip_nulls(&mut cfg);
        if let Some(m) = cfg.get_mut("metadata").and_then(Value::as_object_mut) {
            for k in fields::SYSTEM_METADATA {
                m.shift_remove(*k);
            }
        }
        normalize_metadata(&mut cfg);
        let has_status = ty.has_status(&ctx.version);
        if let Some(m) = cfg.as_object_mut() {
            if ctx.status {
                m.retain(|k, _| k == "apiVersion" || k == "kind" || k == "status");
            } else if has_status {
                m.shift_remove("status");
            }
        }
        let fc = fields::collect(&cfg, Self::scope(ty, ctx));
        let base = match &old {
            Some(o) => {
                let mut v = o.value.clone();
                meta_mut(&mut v).shift_remove("managedFields");
                v
            }
            None => {
                json!({"apiVersion": ty.api_version(&ctx.version), "kind": ty.kind, "metadata": {"name": name}})
            }
        };
        let mut merged = base.clone();
        fields::merge_apply(&mut merged, &cfg);

        let sub = Self::subresource(ctx);
        let is_me = |e: &Managed| e.same_key(&manager, Operation::Apply, sub);
        let mut managers = old.as_ref().map(|o| o.managers.clone()).unwrap_or_default();
        let mut conflicts: Vec<(usize, fields::Path)> = Vec::new();
        for (i, e) in managers.iter().enumerate() {
            if is_me(e) {
                continue;
            }
            for p in &e.fields {
                if fields::differs(&base, &merged, p) {
                    conflicts.push((i, p.clone()));
                }
            }
        }
        if !conflicts.is_empty() && !ctx.force {
            return Err(conflict_error(ty, name, &managers, &conflicts));
        }
        for (i, p) in &conflicts {
            managers[*i].fields.remove(p);
        }
        let previous = managers
            .iter()
            .find(|e| is_me(e))
            .map(|e| e.fields.clone())
            .unwrap_or_default();
        let others: FieldSet = managers
            .iter()
            .filter(|e| !is_me(e))
            .flat_map(|e| e.fields.iter().cloned())
            .collect();
        let mut gone: Vec<&fields::Path> = previous
            .iter()
            .filter(|p| {
                !fc.contains(*p)
                    && !others.contains(*p)
                    && !has_owned_descendant(&others, p)
                    && !is_item_name(p)
            })
            .collect();
        gone.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in gone {
            fields::remove(&mut merged, p);
        }
        let av = ty.api_version(&ctx.version);
        match managers.iter_mut().find(|e| is_me(e)) {
            Some(e) => {
                e.fields = fc;
                e.api_version = av;
            }
            None => managers.push(Managed {
                manager: manager.clone(),
                operation: Operation::Apply,
                subresource: sub.to_owned(),
                api_version: av,
                time: String::new(),
                fields: fc,
            }),
        }
        normalize_metadata(&mut merged);
        let all = fields::collect(&merged, Scope::Main { skip_status: false });
        for e in &mut managers {
            e.fields.retain(|p| all.contains(p));
        }
        managers.retain(|e| !e.fields.is_empty());
        let created = old.is_none();
        self.finish_write(ty, &ns, name, old, merged, managers, ctx)
            .map(|(code, b)| (if created { 201 } else { code }, b))
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_write(
        &mut self,
        ty: &Arc<ResourceType>,
        ns: &str,
        name: &str,
        old: Option<Arc<Stored>>,
        mut value: Value,
        managers: Vec<Managed>,
        ctx: &WriteCtx,
    ) -> Outcome {
        let want = ty.api_version(&ctx.version);
        let uid = if old.is_none() {
            Some(self.new_uid())
        } else {
            None
        };
        {
            let m = meta_mut(&mut value);
            m.insert("name".into(), json!(name));
            if ty.namespaced {
                m.insert("namespace".into(), json!(ns));
            } else {
                m.shift_remove("namespace");
            }
            for k in ["managedFields", "resourceVersion", "selfLink"] {
                m.shift_remove(k);
            }
            match (&old, uid) {
                (Some(o), _) => {
                    let om = meta(&o.value);
                    for k in [
                        "uid",
                        "creationTimestamp",
                        "generation",
                        "deletionTimestamp",
                        "deletionGracePeriodSeconds",
                        "generateName",
                    ] {
                        match om.and_then(|om| om.get(k)) {
                            Some(x) => {
                                m.insert(k.to_owned(), x.clone());
                            }
                            None => {
                                m.shift_remove(k);
                            }
                        }
                    }
                }
                (None, uid) => {
                    m.insert("uid".into(), json!(uid.unwrap_or_default()));
                    m.insert("creationTimestamp".into(), json!(now_rfc3339()));
                    m.insert("generation".into(), json!(1));
                    m.shift_remove("deletionTimestamp");
                    m.shift_remove("deletionGracePeriodSeconds");
                }
            }
        }
        normalize_metadata(&mut value);
        if ty.is("", "namespaces") {
            let m = meta_mut(&mut value);
            let labels = m.entry("labels").or_insert_with(|| json!({}));
            if let Some(l) = labels.as_object_mut() {
                l.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
            if old.is_none() {
                value["status"] = json!({"phase": "Active"});
            }
        }
        self.validate(ty, ns, name, &value, old.as_deref())?;
        if let Some(o) = &old
            && spec_differs(&o.value, &value, ty.has_status(&ctx.version))
        {
            let g = generation(&o.value) + 1;
            meta_mut(&mut value).insert("generation".into(), json!(g));
        }
        if let Some(o) = &old
            && same_content(&o.value, &value)
            && managers_equal(&o.managers, &managers)
        {
            return Ok((200, render_for(&o.json, stored_api_version(o), &want)));
        }
        if ctx.dry_run {
            if let Some(rv) = old
                .as_ref()
                .and_then(|o| meta_str(&o.value, "resourceVersion"))
            {
                let rv = rv.to_owned();
                meta_mut(&mut value).insert("resourceVersion".into(), json!(rv));
            }
            let managers = Self::stamp_times(old.as_deref(), managers);
            let v = canonicalize(value, &want, &ty.kind, &managers);
            return Ok((200, to_bytes(&v)));
        }
        let stored = self.commit(ty, ns, name, old, value, managers);
        self.after_write(ty, ns, name, ctx.status);
        Ok((
            200,
            render_for(&stored.json, stored_api_version(&stored), &want),
        ))
    }

    /// Stores a new state (new resourceVersion, event), or removes the object if it was being
    /// deleted and has no finalizers left.
    fn commit(
        &mut self,
        ty: &Arc<ResourceType>,
        ns: &str,
        name: &str,
        old: Option<Arc<Stored>>,
        mut value: Value,
        managers: Vec<Managed>,
    ) -> Arc<Stored> {
        let managers = Self::stamp_times(old.as_deref(), managers);
        let rv = self.next_rv();
        meta_mut(&mut value).insert("resourceVersion".into(), json!(rv.to_string()));
        let value = canonicalize(value, &ty.storage_api_version(), &ty.kind, &managers);
        let deleting = meta(&value).is_some_and(|m| m.contains_key("deletionTimestamp"));
        if deleting && finalizers(&value).is_empty() && !ty.is("", "namespaces") {
            return self.remove_stored(ty, ns, name, value, managers, rv);
        }
        self.store_object(ty, ns, name, old, value, managers, rv)
    }

    #[allow(clippy::too_many_arguments)]
    fn store_object(
        &mut self,
        ty: &ResourceType,
        ns: &str,
        name: &str,
        old: Option<Arc<Stored>>,
        value: Value,
        managers: Vec<Managed>,
        rv: u64,
    ) -> Arc<Stored> {
        let json = to_bytes(&value);
        let key = ObjRef {
            gr: ty.gr.clone(),
            ns: ns.to_owned(),
            name: name.to_owned(),
        };
        let old_owners = old
            .as_ref()
            .map(|o| owner_uids(&o.value))
            .unwrap_or_default();
        let new_owners = owner_uids(&value);
        for u in old_owners.iter().filter(|u| !new_owners.contains(u)) {
            if let Some(set) = self.dependents.get_mut(u) {
                set.remove(&key);
                if set.is_empty() {
                    self.dependents.remove(u);
                }
            }
        }
        for u in new_owners {
            self.dependents.entry(u).or_default().insert(key.clone());
        }
        if let Some(uid) = meta_str(&value, "uid") {
            self.uids.insert(uid.to_owned(), key.clone());
        }
        let event = Event {
            rv,
            gr: ty.gr.clone(),
            ns: ns.to_owned(),
            name: name.to_owned(),
            etype: if old.is_some() {
                EventType::Modified
            } else {
                EventType::Added
            },
            api_version: stored_api_version_of(&value),
            json: json.clone(),
            labels: labels_of(&value),
            old_labels: old.as_ref().map(|o| labels_of(&o.value)),
        };
        let stored = Arc::new(Stored {
            value,
            json,
            managers,
        });
        self.objects
            .entry(ty.gr.clone())
            .or_default()
            .insert((ns.to_owned(), name.to_owned()), stored.clone());
        self.emit(event);
        stored
    }

    fn remove_stored(
        &mut self,
        ty: &Arc<ResourceType>,
        ns: &str,
        name: &str,
        value: Value,
        managers: Vec<Managed>,
        rv: u64,
    ) -> Arc<Stored> {
        let json = to_bytes(&value);
        if let Some(m) = self.objects.get_mut(&ty.gr) {
            m.remove(&(ns.to_owned(), name.to_owned()));
        }
        let key = ObjRef {
            gr: ty.gr.clone(),
            ns: ns.to_owned(),
            name: name.to_owned(),
        };
        if let Some(uid) = meta_str(&value, "uid") {
            self.uids.remove(uid);
        }
        for u in owner_uids(&value) {
            if let Some(set) = self.dependents.get_mut(&u) {
                set.remove(&key);
                if set.is_empty() {
                    self.dependents.remove(&u);
                }
            }
        }
        self.emit(Event {
            rv,
            gr: ty.gr.clone(),
            ns: ns.to_owned(),
            name: name.to_owned(),
            etype: EventType::Deleted,
            api_version: stored_api_version_of(&value),
            json: json.clone(),
            labels: labels_of(&value),
            old_labels: None,
        });
        let stored = Arc::new(Stored {
            value,
            json,
            managers,
        });
        self.after_remove(ty, ns, name, &stored);
        stored
    }

    /// Removes an object now, whatever its finalizers.
    fn remove_object(
        &mut self,
        ty: &Arc<ResourceType>,
        ns: &str,
        name: &str,
    ) -> Option<Arc<Stored>> {
        let old = self.lookup(&ty.gr, ns, name)?;
        let rv = self.next_rv();
        let mut v = old.value.clone();
        meta_mut(&mut v).insert("resourceVersion".into(), json!(rv.to_string()));
        Some(self.remove_stored(ty, ns, name, v, old.managers.clone(), rv))
    }

    fn emit(&mut self, ev: Event) {
        let ev = Arc::new(ev);
        if let Some(slots) = self.watchers.get_mut(&ev.gr) {
            slots.retain(|s| {
                if s.ns.as_ref().is_some_and(|ns| *ns != ev.ns) {
                    return !s.tx.is_closed();
                }
                // A full queue ends the watch; the client resumes from the history.
                s.tx.try_send(ev.clone()).is_ok()
            });
        }
        if self.watch_history == 0 {
            self.dropped_through = ev.rv;
            return;
        }
        self.history.push_back(ev);
        while self.history.len() > self.watch_history {
            if let Some(old) = self.history.pop_front() {
                self.dropped_through = old.rv;
            }
        }
    }

    /// A write the server (a controller) makes itself. `manager`: the manager it records, on the
    /// status subresource when the flag is set.
    fn system_update(
        &mut self,
        ty: &Arc<ResourceType>,
        ns: &str,
        name: &str,
        manager: Option<(&str, bool)>,
        f: impl FnOnce(&mut Value),
    ) -> Option<Arc<Stored>> {
        let old = self.lookup(&ty.gr, ns, name)?;
        let mut v = old.value.clone();
        meta_mut(&mut v).shift_remove("managedFields");
        f(&mut v);
        normalize_metadata(&mut v);
        if spec_differs(&old.value, &v, ty.versions.iter().any(|x| x.status)) {
            let g = generation(&v) + 1;
            meta_mut(&mut v).insert("generation".into(), json!(g));
        }
        let managers = match manager {
            Some((m, status)) => {
                let ctx = WriteCtx {
                    manager: Some(m.to_owned()),
                    version: ty.storage_version.clone(),
                    status,
                    ..WriteCtx::default()
                };
                Self::update_managers(ty, &old, &v, &ctx)
            }
            None => {
                let all = fields::collect(&v, Scope::Main { skip_status: false });
                let mut ms = old.managers.clone();
                for e in &mut ms {
                    e.fields.retain(|p| all.contains(p));
                }
                ms.retain(|e| !e.fields.is_empty());
                ms
            }
        };
        if same_content(&old.value, &v) && managers_equal(&old.managers, &managers) {
            return Some(old);
        }
        Some(self.commit(ty, ns, name, Some(old), v, managers))
    }

    /// What the controllers do after a write from a client. Rollouts follow main-resource
    /// writes only, so that a test can set a workload's status by hand.
    fn after_write(&mut self, ty: &Arc<ResourceType>, ns: &str, name: &str, status_write: bool) {
        if ty.is("apiextensions.k8s.io", "customresourcedefinitions") {
            self.crd_changed(name);
        } else if ty.is("", "namespaces") {
            self.maybe_finish_namespace(name);
        } else if ty.gr.group == "apps" && !status_write {
            self.simulate_rollout(ty, ns, name);
        }
    }

    fn after_remove(&mut self, ty: &Arc<ResourceType>, ns: &str, name: &str, removed: &Stored) {
        if ty.is("apiextensions.k8s.io", "customresourcedefinitions") {
            self.crd_removed(name);
        }
        if let Some(uid) = meta_str(&removed.value, "uid")
            && let Some(deps) = self.dependents.remove(uid)
        {
            // Background garbage collection: dependents left without a living owner go too.
            for d in deps {
                let Some(dty) = self.types.get(&d.gr).cloned() else {
                    continue;
                };
                let Some(ds) = self.lookup(&d.gr, &d.ns, &d.name) else {
                    continue;
                };
                if owner_uids(&ds.value)
                    .iter()
                    .any(|u| self.uids.contains_key(u))
                {
                    continue;
                }
                self.delete_internal(&dty, &d.ns, &d.name, Propagation::Background);
            }
        }
        if ty.namespaced && !ns.is_empty() {
            self.maybe_finish_namespace(ns);
        }
    }

    fn maybe_finish_namespace(&mut self, ns: &str) -> Option<Arc<Stored>> {
        let gr = GroupResource::new("", "namespaces");
        let n = self.lookup(&gr, "", ns)?;
        let deleting = meta(&n.value).is_some_and(|m| m.contains_key("deletionTimestamp"));
        if !deleting || !finalizers(&n.value).is_empty() || self.count_in_namespace(ns) > 0 {
            return None;
        }
        let ty = self.types.get(&gr).cloned()?;
        self.remove_object(&ty, "", ns)
    }

    fn orphan_dependents(&mut self, uid: &str) {
        let deps = self.dependents.get(uid).cloned().unwrap_or_default();
        for d in deps {
            let Some(t) = self.types.get(&d.gr).cloned() else {
                continue;
            };
            self.system_update(&t, &d.ns, &d.name, None, |v| {
                if let Some(refs) = meta_mut(v)
                    .get_mut("ownerReferences")
                    .and_then(Value::as_array_mut)
                {
                    refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
                }
            });
        }
    }

    /// Deletes as the apiserver does: objects with finalizers (and namespaces) are marked,
    /// the rest removed. Returns the resulting state.
    fn delete_internal(
        &mut self,
        ty: &Arc<ResourceType>,
        ns: &str,
        name: &str,
        policy: Propagation,
    ) -> Option<Arc<Stored>> {
        let old = self.lookup(&ty.gr, ns, name)?;
        if meta(&old.value).is_some_and(|m| m.contains_key("deletionTimestamp")) {
            return Some(old);
        }
        if policy == Propagation::Orphan
            && let Some(uid) = meta_str(&old.value, "uid")
        {
            let uid = uid.to_owned();
            self.orphan_dependents(&uid);
        }
        if ty.is("", "namespaces") {
            let marked = self.system_update(ty, "", name, None, |v| {
                mark_deleting(v);
                v["status"] = json!({"phase": "Terminating"});
            });
            let doomed: Vec<(Arc<ResourceType>, String)> = self
                .types
                .values()
                .filter(|t| t.namespaced)
                .flat_map(|t| {
                    self.objects
                        .get(&t.gr)
                        .map(|m| {
                            m.range((name.to_owned(), String::new())..)
                                .take_while(|((n, _), _)| n == name)
                                .map(|((_, obj), _)| (t.clone(), obj.clone()))
                                .collect::<Vec<_>>()
                        })
                        .unwrap_or_default()
                })
                .collect();
            for (t, obj) in doomed {
                self.delete_internal(&t, name, &obj, Propagation::Background);
            }
            self.maybe_finish_namespace(name);
            return self.lookup(&ty.gr, "", name).or(marked);
        }
        if !finalizers(&old.value).is_empty() {
            return self.system_update(ty, ns, name, None, mark_deleting);
        }
        self.remove_object(ty, ns, name)
    }

    pub(crate) fn delete(
        &mut self,
        ty: &Arc<ResourceType>,
        version: &str,
        url_ns: Option<&str>,
        name: &str,
        opts: &DeleteOpts,
    ) -> Outcome {
        let ns = Self::ns_key(ty, url_ns);
        let want = ty.api_version(version);
        let old = self
            .lookup(&ty.gr, &ns, name)
            .ok_or_else(|| ApiError::not_found(ty, name))?;
        if let Some(uid) = &opts.uid
            && meta_str(&old.value, "uid") != Some(uid.as_str())
        {
            let have = meta_str(&old.value, "uid").unwrap_or_default();
            return Err(ApiError::conflict(
                ty,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {have}"
                ),
            ));
        }
        if let Some(rv) = &opts.resource_version
            && meta_str(&old.value, "resourceVersion") != Some(rv.as_str())
        {
            let have = meta_str(&old.value, "resourceVersion").unwrap_or_default();
            return Err(ApiError::conflict(
                ty,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {have}"
                ),
            ));
        }
        if opts.dry_run {
            return Ok((200, render_for(&old.json, stored_api_version(&old), &want)));
        }
        let result = self
            .delete_internal(
                ty,
                &ns,
                name,
                opts.propagation.unwrap_or(Propagation::Background),
            )
            .unwrap_or(old);
        Ok((
            200,
            render_for(&result.json, stored_api_version(&result), &want),
        ))
    }

    pub(crate) fn delete_collection(
        &mut self,
        ty: &Arc<ResourceType>,
        version: &str,
        list: &ListOpts,
        opts: &DeleteOpts,
    ) -> Outcome {
        let want = ty.api_version(version);
        let ns_filter = list.ns.as_deref().filter(|_| ty.namespaced);
        let keys: Vec<(String, String)> = self
            .objects
            .get(&ty.gr)
            .map(|m| {
                m.iter()
                    .filter(|((ns, name), s)| {
                        ns_filter.is_none_or(|w| w == ns)
                            && list.fields.matches(ns, name)
                            && (list.labels.is_empty() || list.labels.matches(&labels_of(&s.value)))
                    })
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default();
        let mut items = Vec::new();
        for (ns, name) in keys {
            let result = if opts.dry_run {
                self.lookup(&ty.gr, &ns, &name)
            } else {
                self.delete_internal(
                    ty,
                    &ns,
                    &name,
                    opts.propagation.unwrap_or(Propagation::Background),
                )
            };
            if let Some(s) = result {
                items.push(render_for(&s.json, stored_api_version(&s), &want));
            }
        }
        Ok((200, list_body(&ty.list_kind, &want, self.rv, None, &items)))
    }

    // ---------------------------------------------------------------- controllers

    fn crd_changed(&mut self, name: &str) {
        let crd_gr = GroupResource::new("apiextensions.k8s.io", "customresourcedefinitions");
        let Some(crd) = self.lookup(&crd_gr, "", name) else {
            return;
        };
        self.types.retain(|_, t| t.crd.as_deref() != Some(name));
        if let Some(t) = registry::type_from_crd(&crd.value)
            && !self.types.contains_key(&t.gr)
        {
            self.types.insert(t.gr.clone(), Arc::new(t));
        }
        let desired = crd_status(&crd.value);
        if crd.value.get("status") != Some(&desired)
            && let Some(crd_ty) = self.types.get(&crd_gr).cloned()
        {
            self.system_update(&crd_ty, "", name, Some(("kube-apiserver", true)), |v| {
                v["status"] = desired
            });
        }
    }

    fn crd_removed(&mut self, name: &str) {
        let doomed: Vec<Arc<ResourceType>> = self
            .types
            .values()
            .filter(|t| t.crd.as_deref() == Some(name))
            .cloned()
            .collect();
        for ty in doomed {
            self.types.remove(&ty.gr);
            let keys: Vec<(String, String)> = self
                .objects
                .get(&ty.gr)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            for (ns, n) in keys {
                self.remove_object(&ty, &ns, &n);
            }
            self.objects.remove(&ty.gr);
            // watches of a type no longer served end
            self.watchers.remove(&ty.gr);
        }
    }

    fn simulate_rollout(&mut self, ty: &Arc<ResourceType>, ns: &str, name: &str) {
        if !self.simulate_rollouts {
            return;
        }
        if ty.is("apps", "deployments") {
            self.sync_replica_sets(ty, ns, name);
        }
        let Some(s) = self.lookup(&ty.gr, ns, name) else {
            return;
        };
        let Some(desired) = rollout_status(&ty.gr.resource, &s.value) else {
            return;
        };
        if s.value.get("status") == Some(&desired) {
            return;
        }
        self.system_update(ty, ns, name, Some(("kube-controller-manager", true)), |v| {
            v["status"] = desired
        });
    }

    /// The Deployment controller's ReplicaSets: one per pod template, named after the
    /// template's hash and owned by the Deployment. A template seen before gets its ReplicaSet
    /// back with the next revision (as `kubectl rollout undo` sees it); the current one has the
    /// Deployment's replicas, the others none; the oldest beyond `revisionHistoryLimit` (10 by
    /// default) are removed. The Deployment's `deployment.kubernetes.io/revision` says the
    /// current revision.
    fn sync_replica_sets(&mut self, ty: &Arc<ResourceType>, ns: &str, name: &str) {
        let Some(rs_ty) = self
            .types
            .get(&GroupResource::new("apps", "replicasets"))
            .cloned()
        else {
            return;
        };
        let Some(dep) = self.lookup(&ty.gr, ns, name) else {
            return;
        };
        if meta(&dep.value).is_some_and(|m| m.contains_key("deletionTimestamp")) {
            return;
        }
        let Some(uid) = meta_str(&dep.value, "uid").map(str::to_owned) else {
            return;
        };
        let template = dep
            .value
            .pointer("/spec/template")
            .cloned()
            .unwrap_or_else(|| json!({}));
        // a template's hash is that of its content, whatever the order of its keys
        let hash = template_hash(Some(&sorted_keys(&template)));
        let replicas = dep
            .value
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let history = dep
            .value
            .pointer("/spec/revisionHistoryLimit")
            .and_then(Value::as_u64)
            .unwrap_or(10) as usize;
        let revision = |v: &Value| -> i64 {
            v.pointer("/metadata/annotations/deployment.kubernetes.io~1revision")
                .and_then(Value::as_str)
                .and_then(|r| r.parse().ok())
                .unwrap_or(0)
        };
        let owned: Vec<Arc<Stored>> = self
            .all_of(&rs_ty.gr)
            .into_iter()
            .filter(|s| {
                meta_str(&s.value, "namespace") == Some(ns) && owner_uids(&s.value).contains(&uid)
            })
            .collect();
        let newest = owned.iter().map(|s| revision(&s.value)).max().unwrap_or(0);
        // the controller compares templates without its hash label
        let current = owned.iter().find(|s| {
            let mut t = s
                .value
                .pointer("/spec/template")
                .cloned()
                .unwrap_or_else(|| json!({}));
            if let Some(labels) = t
                .pointer_mut("/metadata/labels")
                .and_then(Value::as_object_mut)
            {
                labels.shift_remove("pod-template-hash");
            }
            t == template
        });
        let current_name = match current {
            Some(s) => meta_str(&s.value, "name").unwrap_or_default().to_owned(),
            None => format!("{name}-{hash}"),
        };
        let rev = match current {
            Some(s) if revision(&s.value) == newest => newest,
            _ => newest + 1,
        };
        let mut pod_template = template.clone();
        pod_template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
        let mut selector = dep
            .value
            .pointer("/spec/selector")
            .cloned()
            .unwrap_or_else(|| json!({}));
        selector["matchLabels"]["pod-template-hash"] = json!(hash);
        let desired = json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": current_name,
                "namespace": ns,
                "labels": pod_template["metadata"]["labels"],
                "annotations": {
                    "deployment.kubernetes.io/revision": rev.to_string(),
                    "deployment.kubernetes.io/desired-replicas": replicas.to_string(),
                },
                "ownerReferences": [{
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": name,
                    "uid": uid,
                    "controller": true,
                    "blockOwnerDeletion": true,
                }],
            },
            "spec": {"replicas": replicas, "selector": selector, "template": pod_template},
        });
        match current {
            Some(_) => {
                self.system_update(
                    &rs_ty,
                    ns,
                    &current_name,
                    Some(("kube-controller-manager", false)),
                    |v| {
                        v["metadata"]["annotations"] = desired["metadata"]["annotations"].clone();
                        v["spec"]["replicas"] = json!(replicas);
                    },
                );
            }
            None => {
                let managers = Self::record_update(
                    &rs_ty,
                    Vec::new(),
                    fields::collect(&desired, Scope::Main { skip_status: true }),
                    &WriteCtx {
                        manager: Some("kube-controller-manager".into()),
                        version: rs_ty.storage_version.clone(),
                        ..WriteCtx::default()
                    },
                );
                let mut v = desired;
                let m = meta_mut(&mut v);
                m.insert("uid".into(), json!(self.new_uid()));
                m.insert("creationTimestamp".into(), json!(now_rfc3339()));
                m.insert("generation".into(), json!(1));
                self.commit(&rs_ty, ns, &current_name, None, v, managers);
            }
        }
        // the others scaled down, and the oldest beyond the history forgotten
        let mut old: Vec<(i64, String)> = owned
            .iter()
            .filter_map(|s| meta_str(&s.value, "name").map(|n| (revision(&s.value), n.to_owned())))
            .filter(|(_, n)| *n != current_name)
            .collect();
        old.sort();
        for (_, rs) in &old {
            self.system_update(
                &rs_ty,
                ns,
                rs,
                Some(("kube-controller-manager", false)),
                |v| {
                    v["spec"]["replicas"] = json!(0);
                },
            );
        }
        let excess = old.len().saturating_sub(history);
        for (_, rs) in old.iter().take(excess) {
            self.remove_object(&rs_ty, ns, rs);
        }
        let rev = rev.to_string();
        if dep
            .value
            .pointer("/metadata/annotations/deployment.kubernetes.io~1revision")
            .and_then(Value::as_str)
            != Some(rev.as_str())
        {
            self.system_update(
                ty,
                ns,
                name,
                Some(("kube-controller-manager", false)),
                |v| {
                    v["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!(rev);
                },
            );
        }
    }

    pub(crate) fn set_simulate_rollouts(&mut self, on: bool) {
        self.simulate_rollouts = on;
        if !on {
            return;
        }
        for resource in ["deployments", "statefulsets", "daemonsets"] {
            let gr = GroupResource::new("apps", resource);
            let Some(ty) = self.types.get(&gr).cloned() else {
                continue;
            };
            let keys: Vec<(String, String)> = self
                .objects
                .get(&gr)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            for (ns, name) in keys {
                self.simulate_rollout(&ty, &ns, &name);
            }
        }
    }

    // ---------------------------------------------------------------- watches

    pub(crate) fn start_watch(
        &mut self,
        ty: &ResourceType,
        version: &str,
        opts: &WatchOpts,
    ) -> Result<WatchStart, ApiError> {
        let rv = match opts.resource_version.as_deref() {
            None | Some("" | "0") => None,
            Some(s) => Some(
                s.parse::<u64>()
                    .map_err(|_| bad_request(format!("invalid resource version: {s:?}")))?,
            ),
        };
        let synthetic = opts.send_initial_events.unwrap_or(rv.is_none());
        let want = ty.api_version(version);
        let ns_filter = opts.ns.as_deref().filter(|_| ty.namespaced);
        let mut initial = Vec::new();
        let mut replay = Vec::new();
        if synthetic {
            if let Some(map) = self.objects.get(&ty.gr) {
                let start = ns_filter.map_or(Bound::Unbounded, |ns| {
                    Bound::Included((ns.to_owned(), String::new()))
                });
                for ((ns, name), s) in map.range((start, Bound::Unbounded)) {
                    if ns_filter.is_some_and(|w| w != ns) {
                        break;
                    }
                    if opts.fields.matches(ns, name)
                        && (opts.labels.is_empty() || opts.labels.matches(&labels_of(&s.value)))
                    {
                        initial.push(render_for(&s.json, stored_api_version(s), &want));
                    }
                }
            }
        } else if let Some(n) = rv {
            if n < self.dropped_through {
                return Ok(WatchStart::Gone(ApiError::expired(format!(
                    "too old resource version: {n} ({})",
                    self.dropped_through + 1
                ))));
            }
            let idx = self.history.partition_point(|e| e.rv <= n);
            replay = self
                .history
                .range(idx..)
                .filter(|e| e.gr == ty.gr && ns_filter.is_none_or(|w| w == e.ns))
                .cloned()
                .collect();
        }
        let initial_end = (opts.send_initial_events == Some(true)).then_some(self.rv);
        let (tx, rx) = mpsc::channel(WATCH_QUEUE);
        self.watchers
            .entry(ty.gr.clone())
            .or_default()
            .push(WatchSlot {
                ns: ns_filter.map(str::to_owned),
                tx,
            });
        Ok(WatchStart::Started {
            initial,
            replay,
            initial_end,
            rx,
        })
    }
}

fn stored_api_version_of(v: &Value) -> String {
    v.get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn conflict_error(
    ty: &ResourceType,
    name: &str,
    managers: &[Managed],
    conflicts: &[(usize, fields::Path)],
) -> ApiError {
    let causes: Vec<Cause> = conflicts
        .iter()
        .map(|(i, p)| {
            cause(
                "FieldManagerConflict",
                &fields::path_string(p),
                format!("conflict with {}", managers[*i].describe()),
            )
        })
        .collect();
    let message = if let [(i, p)] = conflicts {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            managers[*i].describe(),
            fields::path_string(p)
        )
    } else {
        let mut by_manager: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (i, p) in conflicts {
            by_manager
                .entry(managers[*i].describe())
                .or_default()
                .push(fields::path_string(p));
        }
        let mut lines = Vec::new();
        for (m, paths) in by_manager {
            lines.push(format!("conflicts with {m}:"));
            lines.extend(paths.into_iter().map(|p| format!("- {p}")));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    ApiError::apply_conflict(ty, name, message, causes)
}
