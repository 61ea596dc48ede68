//! Live facts read from a Kubernetes cluster for `terroir verify --live`: where the nodes are
//! (`spec.providerID`, `topology.kubernetes.io/region`, external addresses), where persistent
//! volumes are pinned, which registries every container image comes from, and where load
//! balancers answer.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{Node, PersistentVolume, Pod, PodSpec, Service};
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};

use super::verify::{country_of_region, image_registry, Finding, Verdict, Verifier};
use crate::deploy::kubernetes::ClusterError;

/// The operator behind a node's `spec.providerID` scheme, as a catalog id.
fn provider_of(provider_id: &str) -> Option<&'static str> {
    let scheme = provider_id.split("://").next()?.to_ascii_lowercase();
    Some(match scheme.as_str() {
        "aws" => "amazon",
        "gce" => "google",
        "azure" => "microsoft",
        "digitalocean" => "digitalocean",
        "linode" => "akamai",
        "hcloud" => "hetzner",
        "scaleway" => "scaleway",
        "ovhcloud" | "ovh" => "ovhcloud",
        "outscale" | "osc" => "outscale",
        "oci" => "oracle",
        "ibm" => "ibm",
        "exoscale" => "exoscale",
        "upcloud" => "upcloud",
        _ => return None,
    })
}

async fn list<K>(api: Api<K>, what: &str) -> Result<Vec<K>, ClusterError>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    match api.list(&ListParams::default()).await {
        Ok(l) => Ok(l.items),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Vec::new()),
        Err(e) => Err(ClusterError::api(format!("listing {what}"), &e)),
    }
}

fn images_of(spec: Option<&PodSpec>, out: &mut BTreeSet<String>) {
    if let Some(spec) = spec {
        for c in spec.containers.iter().chain(spec.init_containers.iter().flatten()) {
            if let Some(i) = &c.image {
                out.insert(i.clone());
            }
        }
    }
}

/// Findings from the live cluster; `namespace` is the platform's.
pub async fn kubernetes(client: &Client, namespace: &str, declared_operator: Option<&str>, v: &Verifier<'_>) -> Result<Vec<Finding>, ClusterError> {
    let mut out = Vec::new();
    let nodes = list(Api::<Node>::all(client.clone()), "nodes").await?;
    let mut cluster_operator = declared_operator.and_then(|n| v.catalog.by_name(n)).map(|o| o.id.clone());
    for n in &nodes {
        let name = n.name_any();
        let provider_id = n.spec.as_ref().and_then(|s| s.provider_id.clone());
        let labels = n.labels();
        let region = labels.get("topology.kubernetes.io/region").or_else(|| labels.get("failure-domain.beta.kubernetes.io/region")).cloned();
        let zone = labels.get("topology.kubernetes.io/zone").cloned();
        let op_id = provider_id.as_deref().and_then(provider_of).map(str::to_owned).or_else(|| cluster_operator.clone());
        if cluster_operator.is_none() {
            cluster_operator.clone_from(&op_id);
        }
        let op = op_id.as_deref().and_then(|id| v.catalog.by_name(id));
        let country = match (&op_id, &region) {
            (Some(id), Some(r)) => country_of_region(v.catalog, id, r),
            _ => None,
        };
        let evidence = format!(
            "providerID {}, region {}, zone {}",
            provider_id.as_deref().unwrap_or("(none)"),
            region.as_deref().unwrap_or("(none)"),
            zone.as_deref().unwrap_or("(none)")
        );
        out.push(v.place(format!("node {name}"), country.as_deref(), op, op_id.as_deref(), region.as_deref(), "live", evidence));
        for a in n.status.as_ref().and_then(|s| s.addresses.as_ref()).into_iter().flatten() {
            if a.type_ == "ExternalIP"
                && let Ok(ip) = a.address.parse()
            {
                out.push(v.address(format!("node {name} external address"), ip, "live"));
            }
        }
    }
    if nodes.is_empty() {
        out.push(Finding {
            subject: "nodes".into(),
            observed: "none visible".into(),
            expected: v.expected(),
            verdict: Verdict::Warn,
            basis: "live",
            evidence: "no Node could be listed: the cluster's location is unverified".into(),
        });
    }

    for pv in list(Api::<PersistentVolume>::all(client.clone()), "persistent volumes").await? {
        let terms = pv.spec.as_ref().and_then(|s| s.node_affinity.as_ref()).and_then(|a| a.required.as_ref()).map(|r| r.node_selector_terms.clone()).unwrap_or_default();
        let region = terms.iter().flat_map(|t| t.match_expressions.iter().flatten()).find(|e| e.key.ends_with("/region")).and_then(|e| e.values.as_ref()?.first().cloned());
        let zone = terms.iter().flat_map(|t| t.match_expressions.iter().flatten()).find(|e| e.key.ends_with("/zone")).and_then(|e| e.values.as_ref()?.first().cloned());
        let op = cluster_operator.as_deref().and_then(|id| v.catalog.by_name(id));
        let place = region.clone().or(zone.clone());
        let country = match (&cluster_operator, &place) {
            (Some(id), Some(r)) => country_of_region(v.catalog, id, r),
            _ => None,
        };
        out.push(v.place(
            format!("volume {}", pv.name_any()),
            country.as_deref(),
            op,
            cluster_operator.as_deref(),
            place.as_deref(),
            "live",
            format!("node affinity region {}, zone {}", region.as_deref().unwrap_or("(none)"), zone.as_deref().unwrap_or("(none)")),
        ));
    }

    let mut images = BTreeSet::new();
    for p in list(Api::<Pod>::namespaced(client.clone(), namespace), "pods").await? {
        images_of(p.spec.as_ref(), &mut images);
    }
    for d in list(Api::<Deployment>::namespaced(client.clone(), namespace), "deployments").await? {
        images_of(d.spec.as_ref().and_then(|s| s.template.spec.as_ref()), &mut images);
    }
    for s in list(Api::<StatefulSet>::namespaced(client.clone(), namespace), "statefulsets").await? {
        images_of(s.spec.as_ref().and_then(|s| s.template.spec.as_ref()), &mut images);
    }
    for d in list(Api::<DaemonSet>::all(client.clone()), "daemonsets").await? {
        if d.labels().get("app.kubernetes.io/instance").is_some_and(|i| namespace.starts_with(i.as_str())) || d.namespace().as_deref() == Some(namespace) {
            images_of(d.spec.as_ref().and_then(|s| s.template.spec.as_ref()), &mut images);
        }
    }
    for c in list(Api::<CronJob>::namespaced(client.clone(), namespace), "cronjobs").await? {
        images_of(c.spec.as_ref().and_then(|s| s.job_template.spec.as_ref()).and_then(|j| j.template.spec.as_ref()), &mut images);
    }
    let registries: BTreeSet<String> = images.iter().filter_map(|i| image_registry(i)).collect();
    for r in registries {
        let used: Vec<&str> = images.iter().filter(|i| image_registry(i).as_deref() == Some(r.as_str())).map(String::as_str).collect();
        for mut f in v.host("image registry in use", &r, None, None) {
            f.basis = "live";
            f.evidence = format!("{}; images: {}", f.evidence, used.join(", "));
            out.push(f);
        }
    }

    for s in list(Api::<Service>::namespaced(client.clone(), namespace), "services").await? {
        if s.spec.as_ref().and_then(|s| s.type_.as_deref()) != Some("LoadBalancer") {
            continue;
        }
        for ing in s.status.as_ref().and_then(|s| s.load_balancer.as_ref()).and_then(|l| l.ingress.as_ref()).into_iter().flatten() {
            if let Some(ip) = ing.ip.as_deref().and_then(|i| i.parse().ok()) {
                out.push(v.address(format!("load balancer {}", s.name_any()), ip, "live"));
            } else if let Some(h) = &ing.hostname {
                out.extend(v.host(&format!("load balancer {}", s.name_any()), h, None, None));
            }
        }
    }
    Ok(out)
}

/// What a StorageClass says of encryption at rest: `encrypted` when one of its parameters turns
/// encryption on or names a key (AWS EBS `encrypted: "true"`, Ceph RBD `encrypted: "true"`, GCE
/// PD `disk-encryption-kms-key`, Azure Disk `diskEncryptionSetID`, a `kmsKeyId`...), `not
/// encrypted` when such a parameter says false, otherwise `unknown`: many providers encrypt
/// every volume without the class saying so, and the probe does not guess.
pub fn storage_class_encryption(sc: &k8s_openapi::api::storage::v1::StorageClass) -> serde_json::Value {
    let params = sc.parameters.clone().unwrap_or_default();
    let is_key = |k: &str| {
        let k = k.to_ascii_lowercase();
        k.contains("encrypt") || k.contains("kms")
    };
    let on: Vec<String> = params.iter().filter(|(k, v)| is_key(k) && !matches!(v.to_ascii_lowercase().as_str(), "false" | "no" | "0" | "")).map(|(k, v)| format!("{k}: {v}")).collect();
    let off: Vec<String> = params.iter().filter(|(k, v)| is_key(k) && matches!(v.to_ascii_lowercase().as_str(), "false" | "no" | "0")).map(|(k, v)| format!("{k}: {v}")).collect();
    let (state, evidence) = if !on.is_empty() {
        ("encrypted", format!("parameters {}", on.join(", ")))
    } else if !off.is_empty() {
        ("not encrypted", format!("parameters {}", off.join(", ")))
    } else {
        ("unknown", "no parameter of the class speaks of encryption; the provider may still encrypt its volumes".to_owned())
    };
    serde_json::json!({
        "storageClass": sc.name_any(),
        "provisioner": sc.provisioner,
        "state": state,
        "evidence": evidence,
    })
}

/// The storage class the platform's volumes use (`name`, else the cluster's default) and what it
/// says of encryption at rest; a class that cannot be found is reported as such.
pub async fn storage_encryption(client: &Client, name: Option<&str>) -> Result<serde_json::Value, ClusterError> {
    use k8s_openapi::api::storage::v1::StorageClass;
    let classes = list(Api::<StorageClass>::all(client.clone()), "storage classes").await?;
    let default = |sc: &&StorageClass| sc.annotations().get("storageclass.kubernetes.io/is-default-class").is_some_and(|v| v == "true");
    let found = match name {
        Some(n) => classes.iter().find(|sc| sc.name_any() == n),
        None => classes.iter().find(default),
    };
    Ok(match found {
        Some(sc) => storage_class_encryption(sc),
        None => serde_json::json!({
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
mod encryption_tests {
    use super::*;
    use k8s_openapi::api::storage::v1::StorageClass;

    fn class(params: &[(&str, &str)]) -> StorageClass {
        StorageClass {
            metadata: kube::api::ObjectMeta { name: Some("fast".into()), ..Default::default() },
            provisioner: "ebs.csi.aws.com".into(),
            parameters: Some(params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()),
            ..Default::default()
        }
    }

    /// Only what the class states is reported; silence is unknown, never "encrypted".
    #[test]
    fn storage_class_states_encryption_or_is_unknown() {
        assert_eq!(storage_class_encryption(&class(&[("type", "gp3"), ("encrypted", "true")]))["state"], "encrypted");
        assert_eq!(storage_class_encryption(&class(&[("disk-encryption-kms-key", "projects/p/keys/k")]))["state"], "encrypted");
        assert_eq!(storage_class_encryption(&class(&[("encrypted", "false")]))["state"], "not encrypted");
        assert_eq!(storage_class_encryption(&class(&[("type", "gp3")]))["state"], "unknown");
    }
}
