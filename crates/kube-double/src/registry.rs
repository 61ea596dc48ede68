//! The resource types the double serves: the built-in ones, and those CustomResourceDefinitions add.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::cause::{Cause, cause};

/// Where objects of a type are stored: one map per group and resource, whatever the version asked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct GroupResource {
    pub group: String,
    pub resource: String,
}

impl GroupResource {
    pub(crate) fn new(group: &str, resource: &str) -> Self {
        GroupResource {
            group: group.to_owned(),
            resource: resource.to_owned(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct VersionInfo {
    pub name: String,
    pub status: bool,
}

/// How object names of a type are validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameRule {
    /// RFC 1123 subdomain: most types.
    Subdomain,
    /// RFC 1123 label: namespaces, services.
    Label,
    /// Anything usable as a path segment: RBAC types (`system:controller:x`).
    PathSegment,
}

#[derive(Debug, Clone)]
pub(crate) struct ResourceType {
    pub gr: GroupResource,
    pub kind: String,
    pub singular: String,
    pub list_kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// Served versions, highest priority (preferred) first.
    pub versions: Vec<VersionInfo>,
    pub storage_version: String,
    pub name_rule: NameRule,
    /// The CustomResourceDefinition that defines the type, if any.
    pub crd: Option<String>,
}

pub(crate) const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const SUB_VERBS: &[&str] = &["get", "patch", "update"];

impl ResourceType {
    pub(crate) fn api_version(&self, version: &str) -> String {
        if self.gr.group.is_empty() {
            version.to_owned()
        } else {
            format!("{}/{version}", self.gr.group)
        }
    }

    pub(crate) fn storage_api_version(&self) -> String {
        self.api_version(&self.storage_version)
    }

    pub(crate) fn serves(&self, version: &str) -> bool {
        self.versions.iter().any(|v| v.name == version)
    }

    pub(crate) fn has_status(&self, version: &str) -> bool {
        self.versions.iter().any(|v| v.name == version && v.status)
    }

    /// `deployments.apps`, or `configmaps` for the core group.
    pub(crate) fn qualified(&self) -> String {
        if self.gr.group.is_empty() {
            self.gr.resource.clone()
        } else {
            format!("{}.{}", self.gr.resource, self.gr.group)
        }
    }

    /// `Deployment.apps`, or `ConfigMap` for the core group.
    pub(crate) fn qualified_kind(&self) -> String {
        if self.gr.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.gr.group)
        }
    }

    pub(crate) fn is(&self, group: &str, resource: &str) -> bool {
        self.gr.group == group && self.gr.resource == resource
    }
}

struct Builtin {
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    status: bool,
    short: &'static [&'static str],
    all: bool,
}

#[allow(clippy::too_many_arguments)]
const fn b(
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    status: bool,
    short: &'static [&'static str],
    all: bool,
) -> Builtin {
    Builtin {
        group,
        version,
        resource,
        singular,
        kind,
        namespaced,
        status,
        short,
        all,
    }
}

const BUILTINS: &[Builtin] = &[
    b(
        "",
        "v1",
        "namespaces",
        "namespace",
        "Namespace",
        false,
        true,
        &["ns"],
        false,
    ),
    b(
        "",
        "v1",
        "configmaps",
        "configmap",
        "ConfigMap",
        true,
        false,
        &["cm"],
        false,
    ),
    b(
        "",
        "v1",
        "secrets",
        "secret",
        "Secret",
        true,
        false,
        &[],
        false,
    ),
    b(
        "",
        "v1",
        "services",
        "service",
        "Service",
        true,
        true,
        &["svc"],
        true,
    ),
    b(
        "",
        "v1",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
        false,
        &["sa"],
        false,
    ),
    b(
        "",
        "v1",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "PersistentVolumeClaim",
        true,
        true,
        &["pvc"],
        false,
    ),
    b("", "v1", "pods", "pod", "Pod", true, true, &["po"], true),
    // Cluster-scoped: where the cluster runs (read by `terroir verify --live`).
    b(
        "",
        "v1",
        "nodes",
        "node",
        "Node",
        false,
        true,
        &["no"],
        false,
    ),
    b(
        "",
        "v1",
        "persistentvolumes",
        "persistentvolume",
        "PersistentVolume",
        false,
        true,
        &["pv"],
        false,
    ),
    // where volumes are made, and what their class says of encryption at rest (`attest --live`)
    b(
        "storage.k8s.io",
        "v1",
        "storageclasses",
        "storageclass",
        "StorageClass",
        false,
        false,
        &["sc"],
        false,
    ),
    b(
        "",
        "v1",
        "events",
        "event",
        "Event",
        true,
        false,
        &["ev"],
        false,
    ),
    b(
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        true,
        true,
        &["deploy"],
        true,
    ),
    b(
        "apps",
        "v1",
        "statefulsets",
        "statefulset",
        "StatefulSet",
        true,
        true,
        &["sts"],
        true,
    ),
    b(
        "apps",
        "v1",
        "daemonsets",
        "daemonset",
        "DaemonSet",
        true,
        true,
        &["ds"],
        true,
    ),
    b(
        "apps",
        "v1",
        "replicasets",
        "replicaset",
        "ReplicaSet",
        true,
        true,
        &["rs"],
        true,
    ),
    b(
        "batch",
        "v1",
        "cronjobs",
        "cronjob",
        "CronJob",
        true,
        true,
        &["cj"],
        true,
    ),
    b("batch", "v1", "jobs", "job", "Job", true, true, &[], true),
    b(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "networkpolicy",
        "NetworkPolicy",
        true,
        false,
        &["netpol"],
        false,
    ),
    b(
        "networking.k8s.io",
        "v1",
        "ingresses",
        "ingress",
        "Ingress",
        true,
        true,
        &["ing"],
        false,
    ),
    b(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        "PodDisruptionBudget",
        true,
        true,
        &["pdb"],
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "role",
        "Role",
        true,
        false,
        &[],
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "rolebinding",
        "RoleBinding",
        true,
        false,
        &[],
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "clusterrole",
        "ClusterRole",
        false,
        false,
        &[],
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        false,
        false,
        &[],
        false,
    ),
    b(
        "coordination.k8s.io",
        "v1",
        "leases",
        "lease",
        "Lease",
        true,
        false,
        &[],
        false,
    ),
    b(
        "events.k8s.io",
        "v1",
        "events",
        "event",
        "Event",
        true,
        false,
        &["ev"],
        false,
    ),
    b(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "customresourcedefinition",
        "CustomResourceDefinition",
        false,
        true,
        &["crd", "crds"],
        false,
    ),
];

pub(crate) fn builtin_types() -> Vec<ResourceType> {
    BUILTINS
        .iter()
        .map(|b| ResourceType {
            gr: GroupResource::new(b.group, b.resource),
            kind: b.kind.to_owned(),
            singular: b.singular.to_owned(),
            list_kind: format!("{}List", b.kind),
            namespaced: b.namespaced,
            short_names: b.short.iter().map(|s| (*s).to_owned()).collect(),
            categories: if b.all {
                vec!["all".to_owned()]
            } else {
                Vec::new()
            },
            versions: vec![VersionInfo {
                name: b.version.to_owned(),
                status: b.status,
            }],
            storage_version: b.version.to_owned(),
            name_rule: if b.group == "rbac.authorization.k8s.io" {
                NameRule::PathSegment
            } else if b.resource == "namespaces" || b.resource == "services" {
                NameRule::Label
            } else {
                NameRule::Subdomain
            },
            crd: None,
        })
        .collect()
}

/// Kubernetes version priority: GA > beta > alpha, higher numbers first; anything else last, by name.
pub(crate) fn version_priority(a: &str, b: &str) -> Ordering {
    fn parse(v: &str) -> Option<(u8, u64, u64)> {
        let rest = v.strip_prefix('v')?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() {
            return None;
        }
        let major: u64 = digits.parse().ok()?;
        let tail = &rest[digits.len()..];
        if tail.is_empty() {
            return Some((3, major, 0));
        }
        for (prefix, rank) in [("beta", 2u8), ("alpha", 1u8)] {
            if let Some(n) = tail.strip_prefix(prefix)
                && !n.is_empty()
                && n.chars().all(|c| c.is_ascii_digit())
            {
                return Some((rank, major, n.parse().ok()?));
            }
        }
        None
    }
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => y.0.cmp(&x.0).then(y.1.cmp(&x.1)).then(y.2.cmp(&x.2)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

fn str_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Checks a CustomResourceDefinition the way the apiextensions validation does, for the parts the
/// double relies on.
pub(crate) fn validate_crd(crd: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let group = str_at(crd, &["spec", "group"]).unwrap_or_default();
    let plural = str_at(crd, &["spec", "names", "plural"]).unwrap_or_default();
    let kind = str_at(crd, &["spec", "names", "kind"]).unwrap_or_default();
    let name = str_at(crd, &["metadata", "name"]).unwrap_or_default();
    if group.is_empty() {
        causes.push(cause("FieldValueRequired", "spec.group", "Required value"));
    } else if !group.contains('.') {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.group",
            format!("Invalid value: {group:?}: should be a domain with at least one dot"),
        ));
    }
    if plural.is_empty() {
        causes.push(cause(
            "FieldValueRequired",
            "spec.names.plural",
            "Required value",
        ));
    }
    if kind.is_empty() {
        causes.push(cause(
            "FieldValueRequired",
            "spec.names.kind",
            "Required value",
        ));
    }
    if !plural.is_empty() && !group.is_empty() && name != format!("{plural}.{group}") {
        causes.push(cause(
            "FieldValueInvalid",
            "metadata.name",
            format!("Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    match str_at(crd, &["spec", "scope"]) {
        Some("Namespaced" | "Cluster") => {}
        Some(other) => causes.push(cause(
            "FieldValueNotSupported",
            "spec.scope",
            format!("Unsupported value: {other:?}: supported values: \"Cluster\", \"Namespaced\""),
        )),
        None => causes.push(cause("FieldValueRequired", "spec.scope", "Required value")),
    }
    let versions = crd.pointer("/spec/versions").and_then(Value::as_array);
    match versions {
        None => causes.push(cause(
            "FieldValueRequired",
            "spec.versions",
            "Required value: must have at least one version",
        )),
        Some(vs) if vs.is_empty() => causes.push(cause(
            "FieldValueRequired",
            "spec.versions",
            "Required value: must have at least one version",
        )),
        Some(vs) => {
            let storage = vs
                .iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .count();
            if storage != 1 {
                causes.push(cause(
                    "FieldValueInvalid",
                    "spec.versions",
                    format!("Invalid value: must have exactly one version marked as storage version (found {storage})"),
                ));
            }
            for (i, v) in vs.iter().enumerate() {
                if v.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .is_empty()
                {
                    causes.push(cause(
                        "FieldValueRequired",
                        &format!("spec.versions[{i}].name"),
                        "Required value",
                    ));
                }
            }
        }
    }
    causes
}

/// The type a (valid) CRD defines, or `None` if it serves no version.
pub(crate) fn type_from_crd(crd: &Value) -> Option<ResourceType> {
    let group = str_at(crd, &["spec", "group"])?;
    let plural = str_at(crd, &["spec", "names", "plural"])?;
    let kind = str_at(crd, &["spec", "names", "kind"])?;
    let names = crd.pointer("/spec/names");
    let singular = str_at(crd, &["spec", "names", "singular"])
        .map_or_else(|| kind.to_lowercase(), str::to_owned);
    let list_kind = str_at(crd, &["spec", "names", "listKind"])
        .map_or_else(|| format!("{kind}List"), str::to_owned);
    let mut versions: Vec<VersionInfo> = Vec::new();
    let mut storage = None;
    for v in crd.pointer("/spec/versions").and_then(Value::as_array)? {
        let name = v.get("name").and_then(Value::as_str)?.to_owned();
        if v.get("storage").and_then(Value::as_bool) == Some(true) {
            storage = Some(name.clone());
        }
        if v.get("served").and_then(Value::as_bool) == Some(true) {
            let status = v
                .pointer("/subresources/status")
                .is_some_and(|s| !s.is_null());
            versions.push(VersionInfo { name, status });
        }
    }
    if versions.is_empty() {
        return None;
    }
    versions.sort_by(|a, b| version_priority(&a.name, &b.name));
    Some(ResourceType {
        gr: GroupResource::new(group, plural),
        kind: kind.to_owned(),
        singular,
        list_kind,
        namespaced: str_at(crd, &["spec", "scope"]) != Some("Cluster"),
        short_names: str_list(names.and_then(|n| n.get("shortNames"))),
        categories: str_list(names.and_then(|n| n.get("categories"))),
        storage_version: storage.unwrap_or_else(|| versions[0].name.clone()),
        versions,
        name_rule: NameRule::Subdomain,
        crd: str_at(crd, &["metadata", "name"]).map(str::to_owned),
    })
}

pub(crate) type Types = BTreeMap<GroupResource, Arc<ResourceType>>;

/// All group names (except the core group) and their served versions, preferred first.
fn groups(types: &Types) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in types.values() {
        if t.gr.group.is_empty() {
            continue;
        }
        let versions = out.entry(t.gr.group.clone()).or_default();
        for v in &t.versions {
            if !versions.contains(&v.name) {
                versions.push(v.name.clone());
            }
        }
    }
    for versions in out.values_mut() {
        versions.sort_by(|a, b| version_priority(a, b));
    }
    out
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    let preferred = vs.first().cloned().unwrap_or(Value::Null);
    json!({"name": name, "versions": vs, "preferredVersion": preferred})
}

pub(crate) fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

pub(crate) fn api_group_list(types: &Types) -> Value {
    let groups: Vec<Value> = groups(types)
        .iter()
        .map(|(name, vs)| group_json(name, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub(crate) fn api_group(types: &Types, group: &str) -> Option<Value> {
    let groups = groups(types);
    let versions = groups.get(group)?;
    let mut v = group_json(group, versions);
    let obj = v.as_object_mut()?;
    let mut out = serde_json::Map::new();
    out.insert("kind".into(), json!("APIGroup"));
    out.insert("apiVersion".into(), json!("v1"));
    out.extend(std::mem::take(obj));
    Some(Value::Object(out))
}

/// The `APIResourceList` for one group version, or `None` if nothing serves it.
pub(crate) fn api_resource_list(types: &Types, group: &str, version: &str) -> Option<Value> {
    let mut served: Vec<&Arc<ResourceType>> = types
        .values()
        .filter(|t| t.gr.group == group && t.serves(version))
        .collect();
    if served.is_empty() {
        return None;
    }
    served.sort_by(|a, b| a.gr.resource.cmp(&b.gr.resource));
    let mut resources = Vec::new();
    for t in served {
        let mut r = json!({
            "name": t.gr.resource,
            "singularName": t.singular,
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": VERBS,
        });
        if !t.short_names.is_empty() {
            r["shortNames"] = json!(t.short_names);
        }
        if !t.categories.is_empty() {
            r["categories"] = json!(t.categories);
        }
        resources.push(r);
        if t.has_status(version) {
            resources.push(json!({
                "name": format!("{}/status", t.gr.resource),
                "singularName": "",
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": SUB_VERBS,
            }));
        }
    }
    let gv = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

pub(crate) fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "emulationMajor": "1",
        "emulationMinor": "33",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32",
        "gitVersion": "v1.33.0",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T00:00:00Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_priority_orders_like_kubernetes() {
        let mut v = vec!["v1alpha1", "foo", "v2", "v1beta2", "v1", "v1beta1", "v10"];
        v.sort_by(|a, b| version_priority(a, b));
        assert_eq!(
            v,
            ["v10", "v2", "v1", "v1beta2", "v1beta1", "v1alpha1", "foo"]
        );
    }
}
