//! `terroir secrets list|rotate` on a Kubernetes target: the platform's Secrets on the cluster
//! (`crate::deploy::kubernetes::secrets`). Values are never read out.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};

use super::SecretError;
use crate::deploy::kubernetes::secrets::{self, Listed, Needed, Origin};
use crate::deploy::kubernetes::{self, ClusterError, Connection};
use crate::document::{KubernetesTarget, Loaded};
use crate::pipeline::blueprint::Catalog;
use crate::pipeline::render::RenderError;

/// Why the platform's Secrets on its cluster cannot be listed or rotated.
#[derive(Debug, thiserror::Error)]
pub enum ClusterSecretError {
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Refused(#[from] SecretError),
    #[error("`{name}` is not a Secret this platform reads; expected one terroir generates: {}", generated.join(", "))]
    NotGenerated {
        name: String,
        generated: Vec<String>,
    },
    #[error("Secret {secret} does not exist yet: `terroir apply {}` generates it; only a Secret that exists can be rotated", document.display())]
    NotCreated { secret: String, document: PathBuf },
    #[error("Secret {secret} was not rotated")]
    NotRotated {
        secret: String,
        source: ClusterError,
    },
}

/// A platform's Secrets on its cluster: those its rendered objects need, the namespaces they live
/// in, and a connection to the cluster.
pub struct ClusterSecrets<'r> {
    pub platform: String,
    pub needed: Vec<Needed>,
    namespaces: BTreeSet<String>,
    runtime: &'r tokio::runtime::Runtime,
    conn: Connection,
}

/// A Secret's new values, computed from the live Secret and not yet written.
pub struct Rotation {
    /// `namespace/name`.
    pub secret: String,
    /// The keys given new values (each old value is kept as `<key>.previous`).
    pub keys: Vec<String>,
    name: String,
    namespace: String,
    patch: serde_json::Value,
}

impl<'r> ClusterSecrets<'r> {
    /// `kubeconfig` and `context` from the command line win over the document's.
    pub fn open(
        runtime: &'r tokio::runtime::Runtime,
        document: &Path,
        loaded: &Loaded,
        target: &KubernetesTarget,
        catalog: &Catalog,
        access: (Option<&PathBuf>, Option<&String>),
    ) -> Result<Self, ClusterSecretError> {
        let (resolved, tree) = crate::pipeline::render::render(loaded, catalog)?;
        let manifests = kubernetes::manifests(&tree)?;
        let needed = secrets::needed(&resolved, &manifests);
        let mut namespaces: BTreeSet<String> = manifests
            .iter()
            .filter_map(|m| m.namespace.clone())
            .collect();
        namespaces.insert(target.namespace.clone());
        let (kubeconfig, context) =
            kubernetes::connection_settings(access.0, access.1, target, document);
        let conn = runtime.block_on(kubernetes::connect(
            kubeconfig.as_deref(),
            context.as_deref(),
        ))?;
        Ok(ClusterSecrets {
            platform: resolved.platform.name.clone(),
            needed,
            namespaces,
            runtime,
            conn,
        })
    }

    /// The kubeconfig context used (empty for the current one).
    pub fn context(&self) -> &str {
        &self.conn.context
    }

    /// Every Secret the platform needs or generated, with its keys and dates, never a value.
    pub fn list(&self) -> Result<Vec<Listed>, ClusterSecretError> {
        Ok(self.runtime.block_on(secrets::list(
            &self.conn.client,
            &self.platform,
            &self.needed,
            &self.namespaces,
        ))?)
    }

    /// New values for the generated Secret `name`, checked against what is on the cluster.
    pub fn rotation(&self, name: &str, document: &Path) -> Result<Rotation, ClusterSecretError> {
        let Some(n) = self.needed.iter().find(|n| n.name == name) else {
            let generated = self
                .needed
                .iter()
                .filter(|n| n.origin == Origin::Generated)
                .map(|n| n.name.clone())
                .collect();
            return Err(ClusterSecretError::NotGenerated {
                name: name.to_owned(),
                generated,
            });
        };
        if n.name == format!("{}-backup-cipher", self.platform) {
            return Err(SecretError::BackupKey {
                secret: format!("Secret {}", n.label()),
            }
            .into());
        }
        let api: Api<Secret> = Api::namespaced(self.conn.client.clone(), &n.namespace);
        let live = match self.runtime.block_on(api.get_opt(&n.name)) {
            Ok(Some(s)) => s,
            Ok(None) => {
                return Err(ClusterSecretError::NotCreated {
                    secret: n.label(),
                    document: document.to_owned(),
                });
            }
            Err(e) => return Err(ClusterError::api(format!("Secret {}", n.label()), &e).into()),
        };
        let patch = secrets::rotation(n, &live, &self.platform)?;
        let keys = patch["data"]
            .as_object()
            .map(|d| {
                d.keys()
                    .filter(|k| !k.ends_with(secrets::PREVIOUS))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        Ok(Rotation {
            secret: n.label(),
            keys,
            name: n.name.clone(),
            namespace: n.namespace.clone(),
            patch,
        })
    }

    /// Write the new values, under the resourceVersion read: a concurrent change makes this fail
    /// rather than lose a value.
    pub fn rotate(&self, rotation: &Rotation) -> Result<(), ClusterSecretError> {
        let api: Api<Secret> = Api::namespaced(self.conn.client.clone(), &rotation.namespace);
        match self.runtime.block_on(api.patch(
            &rotation.name,
            &PatchParams::default(),
            &Patch::Merge(&rotation.patch),
        )) {
            Ok(_) => Ok(()),
            Err(e) => Err(ClusterSecretError::NotRotated {
                secret: rotation.secret.clone(),
                source: ClusterError::api("patch", &e),
            }),
        }
    }
}
