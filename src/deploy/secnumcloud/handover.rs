//! The hand-over: Terraform's outputs turned into the document the next driver deploys, a
//! bare-metal target on the created VMs or a Kubernetes target on the created cluster, declared
//! in the place the cloud's region is.

use std::path::Path;

use serde_json::Value;

use super::CloudError;
use crate::document::{self, CloudDeploy, Loaded};
use crate::policy::locality::catalog::Catalog as Providers;
use crate::policy::locality::verify;

/// The document as the next stage sees it: a bare-metal target on the created VMs, or a
/// Kubernetes target on the created cluster (its kubeconfig written beside the working directory,
/// mode 0600).
pub fn handover(
    loaded: &Loaded,
    sc: &document::SecNumCloudTarget,
    outputs: &Value,
    dir: &Path,
) -> Result<Loaded, CloudError> {
    let mut next = loaded.clone();
    let operator = verify::cloud_operator_id(sc.provider);
    let country =
        verify::country_of_region(Providers::builtin(), operator, &sc.region).unwrap_or_default();
    let location = document::DeclaredLocation {
        country,
        operator: Providers::builtin()
            .by_name(operator)
            .map(|o| o.name.clone()),
        site: Some(sc.region.clone()),
    };
    match sc.deploy {
        CloudDeploy::Vms => {
            let ssh = sc.ssh.clone().ok_or(CloudError::NoSsh)?;
            let mut hosts = Vec::new();
            for (name, address, roles) in super::terraform::hosts_output(outputs)? {
                let roles = roles
                    .iter()
                    .map(|r| {
                        serde_json::from_value::<document::Role>(Value::String(r.clone())).map_err(
                            |_| CloudError::UnknownRole {
                                name: name.clone(),
                                role: r.clone(),
                            },
                        )
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                hosts.push(document::Host {
                    name,
                    address,
                    roles,
                    location: None,
                });
            }
            next.platform.spec.target = document::Target::Baremetal(document::BaremetalTarget {
                ssh,
                package_mirror: document::platform::default_debian_mirror(),
                hosts,
                location: Some(location),
            });
        }
        CloudDeploy::Kubernetes => {
            let config = outputs
                .pointer("/kubeconfig/value")
                .and_then(Value::as_str)
                .filter(|k| !k.is_empty())
                .ok_or(CloudError::NoKubeconfig)?;
            let path = dir.parent().unwrap_or(dir).join("kubeconfig");
            write_private(&path, config.as_bytes())?;
            next.platform.spec.target = document::Target::Kubernetes(document::KubernetesTarget {
                namespace: loaded.platform.metadata.name.clone(),
                kubeconfig: Some(path.display().to_string()),
                context: None,
                storage_class: None,
                ingress_class_name: None,
                location: Some(location),
            });
        }
    }
    Ok(next)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CloudError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| CloudError::Io {
            path: path.to_owned(),
            source,
        })?;
    f.write_all(bytes).map_err(|source| CloudError::Io {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn loaded(dir: &Path, kubernetes: bool) -> Loaded {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/secnumcloud-outscale.yaml"
        ))
        .unwrap();
        let text = if kubernetes {
            let start = text.find("      deploy: vms").unwrap();
            let end = text.find("      stateBackend:\n").unwrap();
            let mut t = text.clone();
            t.replace_range(start..end, "      deploy: kubernetes\n      kubernetes:\n        version: \"1.33\"\n        nodeCount: 3\n        nodeType: tinav6.c4r8p2\n");
            t
        } else {
            text
        };
        let path = dir.join("platform.yaml");
        std::fs::write(&path, text).unwrap();
        document::load_file(&path).unwrap()
    }

    #[test]
    fn created_vms_become_a_bare_metal_target_in_the_same_place() {
        let dir = tempfile::tempdir().unwrap();
        let l = loaded(dir.path(), false);
        let sc = l.platform.spec.target.secnumcloud().cloned().unwrap();
        let outputs = json!({"hosts": {"value": {
            "db1": {"address": "10.42.1.10", "private_address": "10.42.1.10", "roles": ["database"]},
            "app1": {"address": "203.0.113.7", "private_address": "10.42.0.10", "roles": ["app"]}}}});
        let next = handover(&l, &sc, &outputs, dir.path()).unwrap();
        let b = next.platform.spec.target.baremetal().cloned().unwrap();
        assert!(next.platform.spec.target.secnumcloud().is_none());
        assert_eq!(
            b.hosts
                .iter()
                .map(|h| (h.name.as_str(), h.address.as_str()))
                .collect::<Vec<_>>(),
            [("app1", "203.0.113.7"), ("db1", "10.42.1.10")]
        );
        assert_eq!(b.ssh.user, "deploy");
        let loc = b.location.unwrap();
        assert_eq!(
            (loc.country.as_str(), loc.site.as_deref()),
            ("FR", Some("cloudgouv-eu-west-1"))
        );
        // an unknown role in the outputs is an error, not a silent skip
        let bad = json!({"hosts": {"value": {"x": {"address": "10.0.0.1", "roles": ["dba"]}}}});
        assert!(
            handover(&l, &sc, &bad, dir.path())
                .unwrap_err()
                .to_string()
                .contains("unknown role `dba`")
        );
    }

    #[test]
    fn a_created_cluster_hands_over_its_kubeconfig_privately() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let l = loaded(dir.path(), true);
        let sc = l.platform.spec.target.secnumcloud().cloned().unwrap();
        let work = dir.path().join(".terroir/collectivite-grc/terraform");
        std::fs::create_dir_all(&work).unwrap();
        let outputs =
            json!({"kubeconfig": {"sensitive": true, "value": "apiVersion: v1\nkind: Config\n"}});
        let next = handover(&l, &sc, &outputs, &work).unwrap();
        let k = next.platform.spec.target.kubernetes().cloned().unwrap();
        let path = std::path::PathBuf::from(k.kubeconfig.unwrap());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "apiVersion: v1\nkind: Config\n"
        );
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(k.namespace, "collectivite-grc");
        assert!(
            handover(&l, &sc, &json!({}), &work)
                .unwrap_err()
                .to_string()
                .contains("no `kubeconfig`")
        );
    }
}
