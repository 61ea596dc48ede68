//! ApplySet inventory (KEP-3659, as `kubectl apply --applyset` writes it): a parent object names
//! the set; every member carries `applyset.kubernetes.io/part-of: <id>`. The parent records which
//! group-kinds and namespaces the set spans, so that members removed from the blueprint can be
//! found and pruned without listing the whole cluster.

use std::collections::BTreeSet;

use base64::Engine as _;
use sha2::{Digest, Sha256};

pub const LABEL_ID: &str = "applyset.kubernetes.io/id";
pub const LABEL_PART_OF: &str = "applyset.kubernetes.io/part-of";
pub const ANNOTATION_TOOLING: &str = "applyset.kubernetes.io/tooling";
pub const ANNOTATION_GROUP_KINDS: &str = "applyset.kubernetes.io/contains-group-kinds";
pub const ANNOTATION_NAMESPACES: &str = "applyset.kubernetes.io/additional-namespaces";

/// What is the parent of the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parent {
    /// `terroir apply`: a ConfigMap in the platform's namespace.
    ConfigMap { namespace: String, name: String },
    /// `terroir operator`: the Platform resource itself.
    Platform { namespace: String, name: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplySet {
    pub parent: Parent,
    pub id: String,
}

impl ApplySet {
    /// The set `terroir apply` keeps for a platform deployed into `namespace`.
    pub fn for_cli(platform: &str, namespace: &str) -> Self {
        let name = format!("terroir-{platform}");
        let id = applyset_id(&name, namespace, "ConfigMap", "");
        ApplySet {
            parent: Parent::ConfigMap {
                namespace: namespace.to_owned(),
                name,
            },
            id,
        }
    }

    /// The set the operator keeps for a Platform resource.
    pub fn for_resource(name: &str, namespace: &str) -> Self {
        let id = applyset_id(name, namespace, "Platform", "terroir.eu");
        ApplySet {
            parent: Parent::Platform {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            },
            id,
        }
    }

    pub fn parent_namespace(&self) -> &str {
        match &self.parent {
            Parent::ConfigMap { namespace, .. } | Parent::Platform { namespace, .. } => namespace,
        }
    }

    pub fn selector(&self) -> String {
        format!("{LABEL_PART_OF}={}", self.id)
    }

    pub fn tooling() -> String {
        format!("terroir/v{}", env!("CARGO_PKG_VERSION"))
    }
}

/// `applyset-<base64url(sha256(name.namespace.kind.group))>-v1`, as the specification defines.
pub fn applyset_id(name: &str, namespace: &str, kind: &str, group: &str) -> String {
    let digest = Sha256::digest(format!("{name}.{namespace}.{kind}.{group}").as_bytes());
    format!(
        "applyset-{}-v1",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    )
}

/// A comma-separated annotation value as a sorted set.
pub fn parse_list(value: Option<&String>) -> BTreeSet<String> {
    value
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

pub fn join(set: &BTreeSet<String>) -> String {
    set.iter().cloned().collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_matches_the_specification_example_shape() {
        // kubectl computes the same hash for the same parent; the id is 64 chars of base64url + affixes.
        let id = applyset_id("terroir-crm", "crm", "ConfigMap", "");
        assert!(id.starts_with("applyset-") && id.ends_with("-v1"), "{id}");
        assert_eq!(id.len(), "applyset-".len() + 43 + "-v1".len());
        assert_ne!(id, applyset_id("terroir-crm", "other", "ConfigMap", ""));
        assert!(id.len() <= 63, "a label value has at most 63 characters");
    }

    #[test]
    fn lists_round_trip_sorted() {
        let set = parse_list(Some(&"Service, Deployment.apps,,ConfigMap".to_owned()));
        assert_eq!(join(&set), "ConfigMap,Deployment.apps,Service");
    }
}
