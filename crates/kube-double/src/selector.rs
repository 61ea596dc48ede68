//! Label and field selectors, as the query parameters spell them.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::status::ApiError;

pub(crate) type Labels = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Eq(String, String),
    NotEq(String, String),
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// A parsed `labelSelector`: every requirement must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LabelSelector(Vec<Requirement>);

/// Splits on commas outside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn parse_set(s: &str) -> Option<Vec<String>> {
    let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(
        inner
            .split(',')
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect(),
    )
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

impl LabelSelector {
    pub(crate) fn parse(s: &str) -> Result<Self, ApiError> {
        let bad = |part: &str| {
            ApiError::bad_request(format!(
                "unable to parse requirement: {part:?}: invalid label selector"
            ))
        };
        let mut reqs = Vec::new();
        for part in split_top(s) {
            let p = part.trim();
            if p.is_empty() {
                continue;
            }
            let req = if let Some(k) = p.strip_prefix('!') {
                Requirement::NotExists(k.trim().to_owned())
            } else if let Some((k, v)) = p.split_once("!=") {
                Requirement::NotEq(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some((k, v)) = p.split_once("==") {
                Requirement::Eq(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some((k, v)) = p.split_once('=') {
                Requirement::Eq(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some((k, set)) = p.split_once(" notin ") {
                Requirement::NotIn(k.trim().to_owned(), parse_set(set).ok_or_else(|| bad(p))?)
            } else if let Some((k, set)) = p.split_once(" in ") {
                Requirement::In(k.trim().to_owned(), parse_set(set).ok_or_else(|| bad(p))?)
            } else {
                Requirement::Exists(p.to_owned())
            };
            let key = match &req {
                Requirement::Eq(k, _)
                | Requirement::NotEq(k, _)
                | Requirement::Exists(k)
                | Requirement::NotExists(k)
                | Requirement::In(k, _)
                | Requirement::NotIn(k, _) => k,
            };
            if !valid_key(key) {
                return Err(bad(p));
            }
            reqs.push(req);
        }
        Ok(LabelSelector(reqs))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn matches(&self, labels: &Labels) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Eq(k, v) => labels.get(k) == Some(v),
            Requirement::NotEq(k, v) => labels.get(k) != Some(v),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
            Requirement::In(k, set) => labels.get(k).is_some_and(|v| set.contains(v)),
            Requirement::NotIn(k, set) => labels.get(k).is_none_or(|v| !set.contains(v)),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::enum_variant_names)]
enum FieldReq {
    NameEq(String),
    NameNotEq(String),
    NamespaceEq(String),
    NamespaceNotEq(String),
}

/// A parsed `fieldSelector`: only `metadata.name` and `metadata.namespace` are supported, as
/// for custom resources on a real server; anything else is refused with 400.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FieldSelector(Vec<FieldReq>);

impl FieldSelector {
    pub(crate) fn parse(s: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for part in s.split(',') {
            let p = part.trim();
            if p.is_empty() {
                continue;
            }
            let (field, value, negate) = if let Some((f, v)) = p.split_once("!=") {
                (f, v, true)
            } else if let Some((f, v)) = p.split_once("==") {
                (f, v, false)
            } else if let Some((f, v)) = p.split_once('=') {
                (f, v, false)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: {p:?}; can't understand it"
                )));
            };
            let value = value.trim().to_owned();
            let req = match (field.trim(), negate) {
                ("metadata.name", false) => FieldReq::NameEq(value),
                ("metadata.name", true) => FieldReq::NameNotEq(value),
                ("metadata.namespace", false) => FieldReq::NamespaceEq(value),
                ("metadata.namespace", true) => FieldReq::NamespaceNotEq(value),
                (other, _) => {
                    return Err(ApiError::bad_request(format!(
                        "field label not supported: {other} (the double supports metadata.name and metadata.namespace)"
                    )));
                }
            };
            reqs.push(req);
        }
        Ok(FieldSelector(reqs))
    }

    pub(crate) fn matches(&self, namespace: &str, name: &str) -> bool {
        self.0.iter().all(|r| match r {
            FieldReq::NameEq(v) => name == v,
            FieldReq::NameNotEq(v) => name != v,
            FieldReq::NamespaceEq(v) => namespace == v,
            FieldReq::NamespaceNotEq(v) => namespace != v,
        })
    }
}

/// The labels of an object.
pub(crate) fn labels_of(obj: &Value) -> Labels {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(labels_from_map)
        .unwrap_or_default()
}

fn labels_from_map(m: &Map<String, Value>) -> Labels {
    m.iter()
        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn label_selector_forms() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        for (sel, want) in [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("app in (web, api)", true),
            ("app notin (web)", false),
            ("tier notin (back),app=web", true),
            ("missing notin (x)", true),
            ("", true),
        ] {
            assert_eq!(
                LabelSelector::parse(sel).unwrap().matches(&l),
                want,
                "{sel}"
            );
        }
        assert!(LabelSelector::parse("a in x").is_err());
    }

    #[test]
    fn field_selector_forms() {
        let s = FieldSelector::parse("metadata.name=a,metadata.namespace!=kube-system").unwrap();
        assert!(s.matches("default", "a"));
        assert!(!s.matches("kube-system", "a"));
        assert!(FieldSelector::parse("spec.nodeName=x").is_err());
    }
}
