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

use super::verify::{Finding, Verdict, Verifier, country_of_region, image_registry};
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

/// Every object `api` lists; none when the cluster does not serve the kind.
pub(crate) async fn list<K>(api: Api<K>, what: &str) -> Result<Vec<K>, ClusterError>
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
        for c in spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
        {
            if let Some(i) = &c.image {
                out.insert(i.clone());
            }
        }
    }
}

/// Findings from the live cluster; `namespace` is the platform's.
pub async fn kubernetes(
    client: &Client,
    namespace: &str,
    declared_operator: Option<&str>,
    v: &Verifier<'_>,
) -> Result<Vec<Finding>, ClusterError> {
    let mut out = Vec::new();
    let nodes = list(Api::<Node>::all(client.clone()), "nodes").await?;
    let mut cluster_operator = declared_operator
        .and_then(|n| v.catalog.by_name(n))
        .map(|o| o.id.clone());
    for n in &nodes {
        let name = n.name_any();
        let provider_id = n.spec.as_ref().and_then(|s| s.provider_id.clone());
        let labels = n.labels();
        let region = labels
            .get("topology.kubernetes.io/region")
            .or_else(|| labels.get("failure-domain.beta.kubernetes.io/region"))
            .cloned();
        let zone = labels.get("topology.kubernetes.io/zone").cloned();
        let op_id = provider_id
            .as_deref()
            .and_then(provider_of)
            .map(str::to_owned)
            .or_else(|| cluster_operator.clone());
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
        out.push(v.place(
            format!("node {name}"),
            country.as_deref(),
            op,
            op_id.as_deref(),
            region.as_deref(),
            "live",
            evidence,
        ));
        for a in n
            .status
            .as_ref()
            .and_then(|s| s.addresses.as_ref())
            .into_iter()
            .flatten()
        {
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

    for pv in list(
        Api::<PersistentVolume>::all(client.clone()),
        "persistent volumes",
    )
    .await?
    {
        let terms = pv
            .spec
            .as_ref()
            .and_then(|s| s.node_affinity.as_ref())
            .and_then(|a| a.required.as_ref())
            .map(|r| r.node_selector_terms.clone())
            .unwrap_or_default();
        let region = terms
            .iter()
            .flat_map(|t| t.match_expressions.iter().flatten())
            .find(|e| e.key.ends_with("/region"))
            .and_then(|e| e.values.as_ref()?.first().cloned());
        let zone = terms
            .iter()
            .flat_map(|t| t.match_expressions.iter().flatten())
            .find(|e| e.key.ends_with("/zone"))
            .and_then(|e| e.values.as_ref()?.first().cloned());
        let op = cluster_operator
            .as_deref()
            .and_then(|id| v.catalog.by_name(id));
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
            format!(
                "node affinity region {}, zone {}",
                region.as_deref().unwrap_or("(none)"),
                zone.as_deref().unwrap_or("(none)")
            ),
        ));
    }

    let mut images = BTreeSet::new();
    for p in list(Api::<Pod>::namespaced(client.clone(), namespace), "pods").await? {
        images_of(p.spec.as_ref(), &mut images);
    }
    for d in list(
        Api::<Deployment>::namespaced(client.clone(), namespace),
        "deployments",
    )
    .await?
    {
        images_of(
            d.spec.as_ref().and_then(|s| s.template.spec.as_ref()),
            &mut images,
        );
    }
    for s in list(
        Api::<StatefulSet>::namespaced(client.clone(), namespace),
        "statefulsets",
    )
    .await?
    {
        images_of(
            s.spec.as_ref().and_then(|s| s.template.spec.as_ref()),
            &mut images,
        );
    }
    for d in list(Api::<DaemonSet>::all(client.clone()), "daemonsets").await? {
        if d.labels()
            .get("app.kubernetes.io/instance")
            .is_some_and(|i| namespace.starts_with(i.as_str()))
            || d.namespace().as_deref() == Some(namespace)
        {
            images_of(
                d.spec.as_ref().and_then(|s| s.template.spec.as_ref()),
                &mut images,
            );
        }
    }
    for c in list(
        Api::<CronJob>::namespaced(client.clone(), namespace),
        "cronjobs",
    )
    .await?
    {
        images_of(
            c.spec
                .as_ref()
                .and_then(|s| s.job_template.spec.as_ref())
                .and_then(|j| j.template.spec.as_ref()),
            &mut images,
        );
    }
    let registries: BTreeSet<String> = images.iter().filter_map(|i| image_registry(i)).collect();
    for r in registries {
        let used: Vec<&str> = images
            .iter()
            .filter(|i| image_registry(i).as_deref() == Some(r.as_str()))
            .map(String::as_str)
            .collect();
        for mut f in v.host("image registry in use", &r, None, None) {
            f.basis = "live";
            f.evidence = format!("{}; images: {}", f.evidence, used.join(", "));
            out.push(f);
        }
    }

    for s in list(
        Api::<Service>::namespaced(client.clone(), namespace),
        "services",
    )
    .await?
    {
        if s.spec.as_ref().and_then(|s| s.type_.as_deref()) != Some("LoadBalancer") {
            continue;
        }
        for ing in s
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|l| l.ingress.as_ref())
            .into_iter()
            .flatten()
        {
            if let Some(ip) = ing.ip.as_deref().and_then(|i| i.parse().ok()) {
                out.push(v.address(format!("load balancer {}", s.name_any()), ip, "live"));
            } else if let Some(h) = &ing.hostname {
                out.extend(v.host(&format!("load balancer {}", s.name_any()), h, None, None));
            }
        }
    }
    Ok(out)
}
