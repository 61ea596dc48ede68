//! What `terroir attest --live` reads back from the running target: what is deployed, as
//! subjects beside the rendered files (each configuration file on the hosts, or each object in
//! the cluster), and what the target shows of encryption at rest.
//!
//! Secrets are never read: a digest of a short secret is as good as the secret.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Value, json};

use super::AttestError;
use crate::deploy::baremetal::ssh::Connection;
use crate::document::{BaremetalTarget, KubernetesTarget, Target};
use crate::pipeline::render::RenderedTree;
use crate::pipeline::render::plan::{Plan, Step};
use crate::policy::assess::{Assessed, Live};
use crate::policy::locality::hostfacts::{self, ProbeError};

/// The target, read back.
pub struct LiveFacts {
    /// in-toto subjects: `host://HOST/PATH` or `kubernetes://API_VERSION/KIND/NAMESPACE/NAME`.
    pub subjects: Vec<Value>,
    /// Encryption at rest as observed: per host and path on bare metal, the storage class on a
    /// cluster.
    pub encryption_at_rest: Vec<Value>,
}

/// Read the target `document` describes; nothing for a target that is not running yet (a cloud
/// before its hand-over).
pub fn read(
    document: &Path,
    assessed: &Assessed,
    live: &Live,
) -> Result<Option<LiveFacts>, AttestError> {
    match &assessed.loaded.platform.spec.target {
        Target::Baremetal(b) => on_hosts(document, b, &assessed.tree).map(Some),
        Target::Kubernetes(k) => live
            .runtime
            .block_on(on_cluster(document, k, &assessed.tree, live))
            .map(Some),
        Target::Secnumcloud(_) => Ok(None),
    }
}

fn on_hosts(
    document: &Path,
    b: &BaremetalTarget,
    tree: &RenderedTree,
) -> Result<LiveFacts, AttestError> {
    let plan = Plan::from_tree(tree).map_err(|_| AttestError::NoRenderedPlan)?;
    let subjects = deployed_files(document, b, &plan).map_err(AttestError::Hosts)?;
    let encryption_at_rest = hosts_encryption_at_rest(document, b).map_err(AttestError::Hosts)?;
    Ok(LiveFacts {
        subjects,
        encryption_at_rest,
    })
}

/// What is deployed, read back: the SHA-256 of every configuration file the plan installs, on
/// each host (with sudo: some are root-only). Secret files are never hashed. Files not present
/// are left out.
fn deployed_files(
    document: &Path,
    b: &BaremetalTarget,
    plan: &Plan,
) -> Result<Vec<Value>, ProbeError> {
    let files: HashMap<String, Vec<(String, String)>> = plan
        .hosts
        .iter()
        .map(|h| {
            let f = h
                .steps
                .iter()
                .filter_map(|s| {
                    if let Step::File { file, .. } = s {
                        Some((file.dest.clone(), file.source.clone()))
                    } else {
                        None
                    }
                })
                .collect();
            (h.name.clone(), f)
        })
        .collect();
    let results = hostfacts::on_hosts(hostfacts::targets(document, b), |name, conn| {
        let wanted = files.get(name).cloned().unwrap_or_default();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let dests: Vec<String> = wanted.iter().map(|(d, _)| d.clone()).collect();
        let digests = hostfacts::file_digests(conn, name, &dests)?;
        Ok(digests
            .into_iter()
            .map(|(path, hex)| {
                let source = wanted
                    .iter()
                    .find(|(d, _)| *d == path)
                    .map(|(_, s)| s.clone())
                    .unwrap_or_default();
                json!({
                    "name": format!("host://{name}{path}"),
                    "digest": {"sha256": hex},
                    "annotations": {"rendered": format!("baremetal/hosts/{name}/{source}")},
                })
            })
            .collect::<Vec<_>>())
    });
    let mut out = Vec::new();
    for r in results {
        out.extend(r?.1);
    }
    Ok(out)
}

/// Where each host keeps the platform's data, and whether a probe can see it encrypted: the
/// block devices under /var/lib (PostgreSQL, Prometheus, the application) and /var/spool (mail).
const AT_REST_SCRIPT: &str = r#"
for p in /var/lib /var/spool; do
  src=$(findmnt -no SOURCE -T "$p" 2>/dev/null | head -n1)
  fs=$(findmnt -no FSTYPE -T "$p" 2>/dev/null | head -n1)
  types=$( [ -b "$src" ] && lsblk -rnso TYPE "$src" 2>/dev/null | tr '
' ' ')
  echo "$p|$src|$fs|$types"
done
"#;

/// One line of `AT_REST_SCRIPT`: encrypted when a `crypt` device (dm-crypt, LUKS) is under the
/// filesystem, not when it is a block device chain without one, unknown when it is not a block
/// device at all (overlay, tmpfs, a network filesystem): the probe cannot see through it.
pub fn at_rest_line(host: &str, line: &str) -> Option<Value> {
    let mut f = line.split('|');
    let (path, source, fstype, types) = (
        f.next()?,
        f.next()?,
        f.next()?,
        f.next().unwrap_or_default(),
    );
    let types: Vec<&str> = types.split_whitespace().collect();
    let (encrypted, evidence) = if types.contains(&"crypt") {
        (
            Some(true),
            format!(
                "{source} ({fstype}) is on a dm-crypt device ({})",
                types.join(" < ")
            ),
        )
    } else if !types.is_empty() {
        (
            Some(false),
            format!(
                "{source} ({fstype}) is on {} without dm-crypt",
                types.join(" < ")
            ),
        )
    } else {
        (
            None,
            format!(
                "{source} ({fstype}) is not a block device: the probe cannot see whether what is under it is encrypted"
            ),
        )
    };
    Some(
        json!({"host": host, "path": path, "filesystem": fstype, "source": source, "encrypted": encrypted, "evidence": evidence}),
    )
}

/// Encryption at rest as the hosts show it (read-only, no sudo).
fn hosts_encryption_at_rest(
    document: &Path,
    b: &BaremetalTarget,
) -> Result<Vec<Value>, ProbeError> {
    let results = hostfacts::on_hosts(
        hostfacts::targets(document, b),
        |name, conn: &Connection| {
            let out = conn
                .exec(AT_REST_SCRIPT, None)
                .map_err(|source| ProbeError::Command {
                    host: name.to_owned(),
                    source: Box::new(source),
                })?;
            Ok(out
                .stdout_str()
                .lines()
                .filter_map(|l| at_rest_line(name, l))
                .collect::<Vec<_>>())
        },
    );
    let mut out = Vec::new();
    for r in results {
        out.extend(r?.1);
    }
    Ok(out)
}

/// Each rendered object as the cluster has it: its identity (uid, resourceVersion) and the
/// SHA-256 of its live state without server-managed fields; and the volumes' storage class, read
/// over the same connection. Secrets are never rendered, so never read.
async fn on_cluster(
    document: &Path,
    k: &KubernetesTarget,
    tree: &RenderedTree,
    live: &Live,
) -> Result<LiveFacts, AttestError> {
    use crate::deploy::kubernetes::{self, ClusterError};
    let manifests = kubernetes::manifests(tree).map_err(AttestError::Cluster)?;
    let conn = live
        .connect(k, document)
        .await
        .map_err(AttestError::Cluster)?;
    let applier = kubernetes::Applier::new(conn.client.clone(), "terroir");
    let mut subjects = Vec::new();
    for m in manifests.iter().filter(|m| m.gvk.kind != "Secret") {
        let (ar, scope) = applier
            .resource(&m.gvk)
            .await
            .map_err(AttestError::Cluster)?;
        let api: kube::Api<kube::api::DynamicObject> = match (scope, &m.namespace) {
            (kube::discovery::Scope::Namespaced, Some(ns)) => {
                kube::Api::namespaced_with(conn.client.clone(), ns, &ar)
            }
            _ => kube::Api::all_with(conn.client.clone(), &ar),
        };
        let Some(object) = api
            .get_opt(&m.name)
            .await
            .map_err(|e| AttestError::Cluster(ClusterError::api(m.label(), &e)))?
        else {
            continue;
        };
        let state = serde_json::to_vec(&kubernetes::apply::normalize(&object))
            .map_err(AttestError::Encode)?;
        subjects.push(json!({
            "name": format!("kubernetes://{}/{}/{}/{}", m.gvk.api_version(), m.gvk.kind, m.namespace.as_deref().unwrap_or("_cluster"), m.name),
            "digest": {"sha256": crate::text::sha256_hex(&state)},
            "annotations": {"uid": object.metadata.uid, "resourceVersion": object.metadata.resource_version, "context": conn.context},
        }));
    }
    let observed = storage_encryption(&conn.client, k.storage_class.as_deref())
        .await
        .map_err(AttestError::Cluster)?;
    Ok(LiveFacts {
        subjects,
        encryption_at_rest: vec![observed],
    })
}

/// What a StorageClass says of encryption at rest: `encrypted` when one of its parameters turns
/// encryption on or names a key (AWS EBS `encrypted: "true"`, Ceph RBD `encrypted: "true"`, GCE
/// PD `disk-encryption-kms-key`, Azure Disk `diskEncryptionSetID`, a `kmsKeyId`...), `not
/// encrypted` when such a parameter says false, otherwise `unknown`: many providers encrypt
/// every volume without the class saying so, and the probe does not guess.
pub fn storage_class_encryption(sc: &k8s_openapi::api::storage::v1::StorageClass) -> Value {
    use kube::ResourceExt;
    let params = sc.parameters.clone().unwrap_or_default();
    let is_key = |k: &str| {
        let k = k.to_ascii_lowercase();
        k.contains("encrypt") || k.contains("kms")
    };
    let on: Vec<String> = params
        .iter()
        .filter(|(k, v)| {
            is_key(k) && !matches!(v.to_ascii_lowercase().as_str(), "false" | "no" | "0" | "")
        })
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    let off: Vec<String> = params
        .iter()
        .filter(|(k, v)| {
            is_key(k) && matches!(v.to_ascii_lowercase().as_str(), "false" | "no" | "0")
        })
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    let (state, evidence) = if !on.is_empty() {
        ("encrypted", format!("parameters {}", on.join(", ")))
    } else if !off.is_empty() {
        ("not encrypted", format!("parameters {}", off.join(", ")))
    } else {
        ("unknown", "no parameter of the class speaks of encryption; the provider may still encrypt its volumes".to_owned())
    };
    json!({
        "storageClass": sc.name_any(),
        "provisioner": sc.provisioner,
        "state": state,
        "evidence": evidence,
    })
}

/// The storage class the platform's volumes use (`name`, else the cluster's default) and what it
/// says of encryption at rest; a class that cannot be found is reported as such.
async fn storage_encryption(
    client: &kube::Client,
    name: Option<&str>,
) -> Result<Value, crate::deploy::kubernetes::ClusterError> {
    use k8s_openapi::api::storage::v1::StorageClass;
    use kube::ResourceExt;
    let classes = crate::policy::locality::live::list(
        kube::Api::<StorageClass>::all(client.clone()),
        "storage classes",
    )
    .await?;
    let default = |sc: &&StorageClass| {
        sc.annotations()
            .get("storageclass.kubernetes.io/is-default-class")
            .is_some_and(|v| v == "true")
    };
    let found = match name {
        Some(n) => classes.iter().find(|sc| sc.name_any() == n),
        None => classes.iter().find(default),
    };
    Ok(match found {
        Some(sc) => storage_class_encryption(sc),
        None => json!({
            "storageClass": name,
            "state": "unknown",
            "evidence": match name {
                Some(n) => format!("storage class `{n}` is not in the cluster"),
                None => "the cluster has no default storage class".to_owned(),
            },
        }),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use k8s_openapi::api::storage::v1::StorageClass;

    #[test]
    fn encryption_at_rest_is_read_from_the_device_chain() {
        let luks = at_rest_line("db1", "/var/lib|/dev/mapper/data|ext4|crypt part disk ").unwrap();
        assert_eq!(luks["encrypted"], true);
        let plain = at_rest_line("db1", "/var/lib|/dev/sda2|ext4|part disk ").unwrap();
        assert_eq!(plain["encrypted"], false);
        let overlay = at_rest_line("h1", "/var/spool|overlay|overlay|").unwrap();
        assert!(
            overlay["encrypted"].is_null()
                && overlay["evidence"]
                    .as_str()
                    .unwrap()
                    .contains("not a block device")
        );
        assert_eq!(at_rest_line("h1", "not the script's output"), None);
    }

    fn class(params: &[(&str, &str)]) -> StorageClass {
        StorageClass {
            metadata: kube::api::ObjectMeta {
                name: Some("fast".into()),
                ..Default::default()
            },
            provisioner: "ebs.csi.aws.com".into(),
            parameters: Some(
                params
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    /// Only what the class states is reported; silence is unknown, never "encrypted".
    #[test]
    fn storage_class_states_encryption_or_is_unknown() {
        assert_eq!(
            storage_class_encryption(&class(&[("type", "gp3"), ("encrypted", "true")]))["state"],
            "encrypted"
        );
        assert_eq!(
            storage_class_encryption(&class(&[("disk-encryption-kms-key", "projects/p/keys/k")]))["state"],
            "encrypted"
        );
        assert_eq!(
            storage_class_encryption(&class(&[("encrypted", "false")]))["state"],
            "not encrypted"
        );
        assert_eq!(
            storage_class_encryption(&class(&[("type", "gp3")]))["state"],
            "unknown"
        );
    }
}
