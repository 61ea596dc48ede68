//! Field paths, field sets and the merges server-side apply and strategic merge patch need.
//!
//! Granularity (a simplification of structured-merge-diff, which uses the OpenAPI schema):
//! * maps are never owned themselves, only their leaves; an empty map is a leaf;
//! * a list whose items are all maps with a distinct string `name` is associative, keyed by
//!   `name` (containers, ports, env, volumes, volumeMounts...): each item is owned (`k:` entry)
//!   and its fields are tracked separately;
//! * `metadata.finalizers` is a set of strings (`v:` entries);
//! * every other list is atomic: a leaf, replaced as a whole.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum PathElement {
    Field(String),
    /// An item of an associative list, by its `name`.
    Key(String),
    /// A value of a set-typed list.
    Value(String),
}

pub(crate) type Path = Vec<PathElement>;
pub(crate) type FieldSet = BTreeSet<Path>;

/// `metadata` keys the server owns: never part of a field set, never taken from a request.
pub(crate) const SYSTEM_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
    "generateName",
];

/// Which part of an object a field set covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Everything but `apiVersion`, `kind`, system metadata, and `status` when `skip_status`.
    Main { skip_status: bool },
    /// Only `status`.
    Status,
}

fn top_level_included(key: &str, scope: Scope) -> bool {
    match scope {
        Scope::Main { skip_status } => {
            key != "apiVersion" && key != "kind" && !(skip_status && key == "status")
        }
        Scope::Status => key == "status",
    }
}

fn is_set_path(path: &[PathElement]) -> bool {
    matches!(path, [PathElement::Field(a), PathElement::Field(b)] if a == "metadata" && b == "finalizers")
}

fn item_name(v: &Value) -> Option<&str> {
    v.as_object()?.get("name")?.as_str()
}

/// A list is associative when every item is a map with a string `name`, all distinct.
pub(crate) fn is_keyed_list(items: &[Value]) -> bool {
    if items.is_empty() {
        return false;
    }
    let mut seen = BTreeSet::new();
    items
        .iter()
        .all(|i| item_name(i).is_some_and(|n| seen.insert(n)))
}

fn is_string_set(items: &[Value]) -> bool {
    let mut seen = BTreeSet::new();
    items
        .iter()
        .all(|i| i.as_str().is_some_and(|s| seen.insert(s)))
}

/// The leaf paths of `obj` within `scope`.
pub(crate) fn collect(obj: &Value, scope: Scope) -> FieldSet {
    let mut out = FieldSet::new();
    let Some(map) = obj.as_object() else {
        return out;
    };
    let mut path = Vec::new();
    for (k, v) in map {
        if !top_level_included(k, scope) {
            continue;
        }
        if k == "metadata" {
            if let Some(meta) = v.as_object() {
                for (mk, mv) in meta {
                    if SYSTEM_METADATA.contains(&mk.as_str()) {
                        continue;
                    }
                    path.push(PathElement::Field("metadata".into()));
                    path.push(PathElement::Field(mk.clone()));
                    collect_value(mv, &mut path, &mut out);
                    path.clear();
                }
            }
            continue;
        }
        path.push(PathElement::Field(k.clone()));
        collect_value(v, &mut path, &mut out);
        path.clear();
    }
    out
}

fn collect_value(v: &Value, path: &mut Path, out: &mut FieldSet) {
    match v {
        Value::Null => {}
        Value::Object(m) if !m.is_empty() => collect_map(m, path, out),
        Value::Array(items) if !items.is_empty() && is_set_path(path) && is_string_set(items) => {
            for s in items.iter().filter_map(Value::as_str) {
                path.push(PathElement::Value(s.to_owned()));
                out.insert(path.clone());
                path.pop();
            }
        }
        Value::Array(items) if is_keyed_list(items) => {
            for item in items {
                let (Some(name), Some(m)) = (item_name(item), item.as_object()) else {
                    continue;
                };
                path.push(PathElement::Key(name.to_owned()));
                out.insert(path.clone());
                collect_map(m, path, out);
                path.pop();
            }
        }
        _ => {
            out.insert(path.clone());
        }
    }
}

fn collect_map(m: &Map<String, Value>, path: &mut Path, out: &mut FieldSet) {
    for (k, c) in m {
        if c.is_null() {
            continue;
        }
        path.push(PathElement::Field(k.clone()));
        collect_value(c, path, out);
        path.pop();
    }
}

fn child<'a>(cur: &'a Value, pe: &PathElement) -> Option<&'a Value> {
    match pe {
        PathElement::Field(k) => cur.as_object()?.get(k),
        PathElement::Key(n) => cur
            .as_array()?
            .iter()
            .find(|i| item_name(i) == Some(n.as_str())),
        PathElement::Value(s) => cur
            .as_array()?
            .iter()
            .find(|i| i.as_str() == Some(s.as_str())),
    }
}

fn child_mut<'a>(cur: &'a mut Value, pe: &PathElement) -> Option<&'a mut Value> {
    match pe {
        PathElement::Field(k) => cur.as_object_mut()?.get_mut(k),
        PathElement::Key(n) => cur
            .as_array_mut()?
            .iter_mut()
            .find(|i| item_name(i) == Some(n.as_str())),
        PathElement::Value(s) => cur
            .as_array_mut()?
            .iter_mut()
            .find(|i| i.as_str() == Some(s.as_str())),
    }
}

pub(crate) fn get<'a>(obj: &'a Value, path: &[PathElement]) -> Option<&'a Value> {
    path.iter().try_fold(obj, |cur, pe| child(cur, pe))
}

/// Whether the field at `path` differs between two objects. List items and set values are
/// compared by presence only: their fields are paths of their own.
pub(crate) fn differs(a: &Value, b: &Value, path: &[PathElement]) -> bool {
    let (x, y) = (get(a, path), get(b, path));
    match path.last() {
        Some(PathElement::Key(_) | PathElement::Value(_)) => x.is_some() != y.is_some(),
        _ => x != y,
    }
}

fn is_empty_container(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Removes the field at `path`, and the maps and lists left empty by doing so.
pub(crate) fn remove(obj: &mut Value, path: &[PathElement]) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    if rest.is_empty() {
        return match first {
            PathElement::Field(k) => obj
                .as_object_mut()
                .and_then(|m| m.shift_remove(k))
                .is_some(),
            PathElement::Key(n) => remove_item(obj, |i| item_name(i) == Some(n.as_str())),
            PathElement::Value(s) => remove_item(obj, |i| i.as_str() == Some(s.as_str())),
        };
    }
    let Some(c) = child_mut(obj, first) else {
        return false;
    };
    let removed = remove(c, rest);
    if removed && is_empty_container(c) {
        match first {
            PathElement::Field(k) => {
                if let Some(m) = obj.as_object_mut() {
                    m.shift_remove(k);
                }
            }
            PathElement::Key(n) => {
                remove_item(obj, |i| item_name(i) == Some(n.as_str()));
            }
            PathElement::Value(_) => {}
        }
    }
    removed
}

fn remove_item(list: &mut Value, pred: impl Fn(&Value) -> bool) -> bool {
    let Some(items) = list.as_array_mut() else {
        return false;
    };
    let before = items.len();
    items.retain(|i| !pred(i));
    items.len() != before
}

/// Removes `null`s everywhere: the decoders of a real server drop them (built-in types) or prune
/// them (custom resources without `nullable`).
pub(crate) fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, c| !c.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Merges an apply configuration into an object: maps recursively, associative lists by name,
/// the finalizer set by value; everything else is replaced.
pub(crate) fn merge_apply(dst: &mut Value, src: &Value) {
    let mut path = Vec::new();
    merge_value(dst, src, &mut path);
}

fn merge_value(dst: &mut Value, src: &Value, path: &mut Path) {
    match (dst, src) {
        (Value::Object(d), Value::Object(s)) => {
            for (k, sv) in s {
                if sv.is_null() {
                    continue;
                }
                path.push(PathElement::Field(k.clone()));
                match d.get_mut(k) {
                    Some(dv) => merge_value(dv, sv, path),
                    None => {
                        d.insert(k.clone(), sv.clone());
                    }
                }
                path.pop();
            }
        }
        (Value::Array(d), Value::Array(s))
            if is_set_path(path) && is_string_set(s) && is_string_set(d) =>
        {
            for item in s {
                if !d.contains(item) {
                    d.push(item.clone());
                }
            }
        }
        (Value::Array(d), Value::Array(s)) if is_keyed_list(s) && is_keyed_list(d) => {
            for item in s {
                let name = item_name(item).unwrap_or_default();
                match d.iter_mut().find(|i| item_name(i) == Some(name)) {
                    Some(existing) => {
                        path.push(PathElement::Key(name.to_owned()));
                        merge_value(existing, item, path);
                        path.pop();
                    }
                    None => d.push(item.clone()),
                }
            }
        }
        (d, s) => *d = s.clone(),
    }
}

/// A strategic merge patch, approximated without the schema's patch strategies: a JSON merge
/// patch (`null` deletes) in which lists of maps keyed by `name` on both sides are merged by
/// name, items carrying `$patch: delete` are removed, maps carrying `$patch: replace` replace,
/// `metadata.finalizers` values are added (its real strategy), and
/// `$deleteFromPrimitiveList/<field>` removes values from a list of scalars.
/// `$setElementOrder` and `$retainKeys` are ignored.
pub(crate) fn strategic_merge(target: &mut Value, patch: &Value) {
    merge_strategic(target, patch, Level::Top);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Top,
    Metadata,
    Below,
}

fn merge_strategic(target: &mut Value, patch: &Value, level: Level) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replacement = patch.clone();
        drop_directives(&mut replacement);
        *target = replacement;
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Some(t) = target.as_object_mut() else {
        return;
    };
    for (k, v) in p {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Some(gone)) = (t.get_mut(field), v.as_array()) {
                list.retain(|x| !gone.contains(x));
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        match v {
            Value::Null => {
                t.shift_remove(k);
            }
            Value::Object(_) => {
                if v.get("$patch").and_then(Value::as_str) == Some("delete") {
                    t.shift_remove(k);
                } else {
                    let next = if level == Level::Top && k == "metadata" {
                        Level::Metadata
                    } else {
                        Level::Below
                    };
                    merge_strategic(t.entry(k.clone()).or_insert(Value::Null), v, next);
                }
            }
            // `metadata.finalizers` has patchStrategy merge: the patch's values are added.
            Value::Array(items)
                if level == Level::Metadata && k == "finalizers" && is_string_set(items) =>
            {
                match t.get_mut(k) {
                    Some(Value::Array(live)) => {
                        for item in items {
                            if !live.contains(item) {
                                live.push(item.clone());
                            }
                        }
                    }
                    _ => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
            Value::Array(items)
                if items.iter().all(|i| item_name(i).is_some()) && !items.is_empty() =>
            {
                match t.get_mut(k) {
                    Some(Value::Array(live)) if is_keyed_list(live) => {
                        for item in items {
                            let name = item_name(item).unwrap_or_default().to_owned();
                            let pos = live
                                .iter()
                                .position(|i| item_name(i) == Some(name.as_str()));
                            if item.get("$patch").and_then(Value::as_str) == Some("delete") {
                                if let Some(pos) = pos {
                                    live.remove(pos);
                                }
                            } else if let Some(pos) = pos {
                                merge_strategic(&mut live[pos], item, Level::Below);
                            } else {
                                let mut fresh = item.clone();
                                drop_directives(&mut fresh);
                                strip_nulls(&mut fresh);
                                live.push(fresh);
                            }
                        }
                    }
                    _ => {
                        let mut fresh = v.clone();
                        drop_directives(&mut fresh);
                        strip_nulls(&mut fresh);
                        t.insert(k.clone(), fresh);
                    }
                }
            }
            _ => {
                let mut fresh = v.clone();
                drop_directives(&mut fresh);
                strip_nulls(&mut fresh);
                t.insert(k.clone(), fresh);
            }
        }
    }
}

fn drop_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with('$'));
            m.values_mut().for_each(drop_directives);
        }
        Value::Array(a) => {
            a.retain(|i| i.get("$patch").and_then(Value::as_str) != Some("delete"));
            a.iter_mut().for_each(drop_directives);
        }
        _ => {}
    }
}

impl PathElement {
    fn fields_v1_key(&self) -> String {
        match self {
            PathElement::Field(k) => format!("f:{k}"),
            PathElement::Key(n) => format!("k:{}", serde_json::json!({ "name": n })),
            PathElement::Value(s) => format!("v:{}", Value::String(s.clone())),
        }
    }
}

/// structured-merge-diff's path notation: `.spec.template.spec.containers[name="app"].image`.
pub(crate) fn path_string(path: &[PathElement]) -> String {
    let mut s = String::new();
    for pe in path {
        match pe {
            PathElement::Field(k) => {
                s.push('.');
                s.push_str(k);
            }
            PathElement::Key(n) => s.push_str(&format!("[name={}]", Value::String(n.clone()))),
            PathElement::Value(v) => s.push_str(&format!("[={}]", Value::String(v.clone()))),
        }
    }
    s
}

#[derive(Default)]
struct Node {
    dot: bool,
    owned: bool,
    children: BTreeMap<String, Node>,
}

impl Node {
    fn into_value(self) -> Value {
        let mut m = Map::new();
        if self.dot {
            m.insert(".".into(), Value::Object(Map::new()));
        }
        for (k, c) in self.children {
            m.insert(k, c.into_value());
        }
        Value::Object(m)
    }
}

/// Renders a field set as `fieldsV1`.
pub(crate) fn fields_v1(set: &FieldSet) -> Value {
    let mut root = Node::default();
    for path in set {
        let mut node = &mut root;
        for pe in path {
            node = node.children.entry(pe.fields_v1_key()).or_default();
        }
        node.owned = true;
        if matches!(path.last(), Some(PathElement::Key(_))) {
            node.dot = true;
        }
    }
    // A leaf that also has children (an empty map someone later filled) is marked with ".".
    fn mark(node: &mut Node) {
        if node.owned && !node.children.is_empty() {
            node.dot = true;
        }
        node.children.values_mut().for_each(mark);
    }
    mark(&mut root);
    root.into_value()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(s: &str) -> PathElement {
        PathElement::Field(s.into())
    }

    #[test]
    fn collects_leaves_keyed_items_and_finalizers() {
        let obj = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "x", "labels": {"a": "1"}, "finalizers": ["f1"]},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "app", "image": "i"}]}}},
            "status": {"replicas": 1}
        });
        let set = collect(&obj, Scope::Main { skip_status: true });
        let expect: FieldSet = [
            vec![f("metadata"), f("labels"), f("a")],
            vec![
                f("metadata"),
                f("finalizers"),
                PathElement::Value("f1".into()),
            ],
            vec![f("spec"), f("replicas")],
            vec![
                f("spec"),
                f("template"),
                f("spec"),
                f("containers"),
                PathElement::Key("app".into()),
            ],
            vec![
                f("spec"),
                f("template"),
                f("spec"),
                f("containers"),
                PathElement::Key("app".into()),
                f("image"),
            ],
            vec![
                f("spec"),
                f("template"),
                f("spec"),
                f("containers"),
                PathElement::Key("app".into()),
                f("name"),
            ],
        ]
        .into_iter()
        .collect();
        assert_eq!(set, expect);
        let v1 = fields_v1(&set);
        assert_eq!(
            v1["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"app\"}"],
            json!({".": {}, "f:image": {}, "f:name": {}})
        );
        assert_eq!(
            path_string(&[
                f("spec"),
                f("containers"),
                PathElement::Key("app".into()),
                f("image")
            ]),
            ".spec.containers[name=\"app\"].image"
        );
    }

    #[test]
    fn remove_prunes_emptied_parents() {
        let mut obj = json!({"spec": {"a": {"b": 1}, "c": 2}});
        assert!(remove(&mut obj, &[f("spec"), f("a"), f("b")]));
        assert_eq!(obj, json!({"spec": {"c": 2}}));
    }

    #[test]
    fn strategic_merge_merges_named_lists() {
        let mut live =
            json!({"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]});
        strategic_merge(
            &mut live,
            &json!({"containers": [{"name": "b", "image": "3"}, {"name": "a", "$patch": "delete"}]}),
        );
        assert_eq!(live, json!({"containers": [{"name": "b", "image": "3"}]}));
    }
}
