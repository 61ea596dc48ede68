//! Whether the cluster's pods run the images the document pins: each container's `imageID`
//! (the digest the runtime pulled) compared with the pinned digest, for `terroir verify --live`.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::{Client, ResourceExt};

use super::locality::verify::{Finding, Verdict};
use crate::deploy::kubernetes::{ClusterError, Manifest};
use crate::document::image::running_sha256;
use crate::pipeline::images::ImageUse;

/// `registry/repo` of a reference: without its digest and its tag.
fn repository(reference: &str) -> &str {
    let name = reference.split_once('@').map_or(reference, |(n, _)| n);
    match name.rsplit_once(':') {
        // a colon after the last `/` starts a tag; before it, a registry's port
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => name,
    }
}

/// The pinned image a container runs: the one its reference names, else the one of the same
/// repository (a pod left from before the pin, running what a tag gave it).
fn pinned_for<'a>(image: &str, pinned: &'a [&'a ImageUse]) -> Option<&'a ImageUse> {
    pinned
        .iter()
        .find(|p| p.reference == image)
        .or_else(|| {
            pinned
                .iter()
                .find(|p| repository(&p.reference) == repository(image))
        })
        .copied()
}

/// One finding per container of `pods` that runs a pinned image (pure).
pub fn judge(pods: &[Pod], images: &[ImageUse]) -> Vec<Finding> {
    let pinned: Vec<&ImageUse> = images.iter().filter(|i| i.pinned).collect();
    let mut out = Vec::new();
    if pinned.is_empty() {
        return out;
    }
    for pod in pods {
        let name = match pod.namespace() {
            Some(ns) => format!("{ns}/{}", pod.name_any()),
            None => pod.name_any(),
        };
        let Some(spec) = &pod.spec else { continue };
        let status = pod.status.as_ref();
        let statuses: Vec<_> = status
            .into_iter()
            .flat_map(|s| {
                s.container_statuses
                    .iter()
                    .flatten()
                    .chain(s.init_container_statuses.iter().flatten())
            })
            .collect();
        for c in spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
        {
            let Some(image) = c.image.as_deref() else {
                continue;
            };
            let Some(want) = pinned_for(image, &pinned) else {
                continue;
            };
            let want_hex = want.sha256.as_deref().unwrap_or_default();
            let image_id = statuses
                .iter()
                .find(|s| s.name == c.name)
                .map(|s| s.image_id.as_str())
                .filter(|id| !id.is_empty());
            let subject = format!("pod {name} container {}: image digest", c.name);
            let expected = format!("sha256:{want_hex} (spec.images.{})", want.key);
            let finding = |verdict, observed: String, evidence: String| Finding {
                subject: subject.clone(),
                observed,
                expected: expected.clone(),
                verdict,
                basis: "live",
                evidence,
            };
            out.push(match image_id.map(|id| (id, running_sha256(id))) {
                None => finding(
                    Verdict::Warn,
                    "no digest reported yet (the container has not started)".into(),
                    format!("image {image}; pod status without imageID"),
                ),
                Some((id, None)) => finding(
                    Verdict::Warn,
                    format!("imageID `{id}` carries no SHA-256 digest"),
                    format!("image {image}"),
                ),
                Some((id, Some(hex))) if hex == want_hex => finding(
                    Verdict::Pass,
                    format!("sha256:{hex}"),
                    format!("image {image}; imageID {id}"),
                ),
                Some((id, Some(hex))) => finding(
                    Verdict::Fail,
                    format!("sha256:{hex}, not the pinned sha256:{want_hex}"),
                    format!("image {image}; imageID {id}"),
                ),
            });
        }
    }
    out
}

/// The namespaces where the rendered manifests run pods (the node exporters have their own).
pub fn workload_namespaces(manifests: &[Manifest]) -> BTreeSet<String> {
    manifests
        .iter()
        .filter(|m| {
            matches!(
                m.gvk.kind.as_str(),
                "Deployment" | "StatefulSet" | "DaemonSet" | "CronJob" | "Job" | "Pod"
            )
        })
        .filter_map(|m| m.namespace.clone())
        .collect()
}

/// The platform's pods in `namespaces`, judged against the pinned images.
pub async fn kubernetes(
    client: &Client,
    namespaces: &BTreeSet<String>,
    images: &[ImageUse],
) -> Result<Vec<Finding>, ClusterError> {
    if !images.iter().any(|i| i.pinned) {
        return Ok(Vec::new());
    }
    let mut pods = Vec::new();
    for ns in namespaces {
        pods.extend(
            super::locality::live::list(Api::<Pod>::namespaced(client.clone(), ns), "pods").await?,
        );
    }
    Ok(judge(&pods, images))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn pod(image: &str, image_id: Option<&str>) -> Pod {
        let status = image_id.map(|id| {
            serde_json::json!({"containerStatuses": [{"name": "postgres", "image": image, "imageID": id,
                "ready": true, "restartCount": 0}]})
        });
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "db-0"},
            "spec": {"containers": [{"name": "postgres", "image": image}, {"name": "other", "image": "r.example.fr/x:1"}]},
            "status": status,
        }))
        .unwrap()
    }

    fn pinned() -> Vec<ImageUse> {
        vec![ImageUse {
            key: "postgres".into(),
            reference: format!("r.example.fr:5000/terroir/postgres:16@sha256:{A}"),
            pinned: true,
            sha256: Some(A.into()),
        }]
    }

    #[test]
    fn the_running_digest_is_compared_with_the_pinned_one() {
        let image = format!("r.example.fr:5000/terroir/postgres:16@sha256:{A}");
        let same = judge(
            &[pod(
                &image,
                Some(&format!(
                    "docker-pullable://r.example.fr:5000/terroir/postgres@sha256:{A}"
                )),
            )],
            &pinned(),
        );
        assert_eq!(same.len(), 1, "only the pinned image's container");
        assert_eq!(same[0].verdict, Verdict::Pass);
        let other = judge(
            &[pod(
                &image,
                Some(&format!("r.example.fr:5000/terroir/postgres@sha256:{B}")),
            )],
            &pinned(),
        );
        assert_eq!(other[0].verdict, Verdict::Fail);
        assert!(
            other[0].subject.contains("pod db-0 container postgres"),
            "{}",
            other[0].subject
        );
        assert!(other[0].observed.contains(B) && other[0].observed.contains(A));
        // a pod left from before the pin, by tag, is judged on its repository
        let old = judge(
            &[pod(
                "r.example.fr:5000/terroir/postgres:16",
                Some(&format!("sha256:{B}")),
            )],
            &pinned(),
        );
        assert_eq!(old[0].verdict, Verdict::Fail);
        let pending = judge(&[pod(&image, None)], &pinned());
        assert_eq!(pending[0].verdict, Verdict::Warn);
    }

    #[test]
    fn repositories_lose_their_tag_and_digest_but_keep_a_port() {
        assert_eq!(repository("r:5000/a/b:1@sha256:x"), "r:5000/a/b");
        assert_eq!(repository("r:5000/a/b"), "r:5000/a/b");
        assert_eq!(repository("a/b:1"), "a/b");
    }
}
