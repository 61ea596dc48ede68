//! Kubernetes clusters: connecting, reading rendered manifests, server-side apply with an
//! ApplySet inventory, pruning, dry-run diffs and waiting for rollouts.
//!
//! Shared by `terroir apply`/`plan` (target `kubernetes`) and `terroir operator`.

pub mod apply;
pub mod applyset;
pub mod driver;
pub mod lifecycle;
pub mod release;
pub mod secrets;
pub mod wait;

use std::path::Path;
use std::time::Duration;

use kube::api::{DynamicObject, GroupVersionKind};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::Value;

use crate::pipeline::render::RenderedTree;

pub use apply::{Action, Applier, ApplyOptions, ApplyReport, ObjectChange};
pub use applyset::ApplySet;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{what}: {source}")]
    Kubeconfig {
        what: String,
        source: Box<kube::config::KubeconfigError>,
    },
    #[error(
        "no kubeconfig ($KUBECONFIG, ~/.kube/config or --kubeconfig) and not running in a pod: {0}"
    )]
    NoConfig(#[source] kube::config::InClusterError),
    #[error("cannot build a client: {0}")]
    Client(String),
    #[error("cannot generate Secret {secret}: {source}")]
    Generate {
        secret: String,
        source: Box<GenerateError>,
    },
    #[error("Secret {secret}: {reason}")]
    NotRotated { secret: String, reason: String },
    #[error("rendered manifest {file}: {source}")]
    Manifest {
        file: String,
        source: Box<ManifestError>,
    },
    #[error("the cluster does not serve {0}; is its CustomResourceDefinition installed?")]
    NotServed(String),
    #[error(
        "{} object(s) conflict with fields another manager owns; nothing was changed:\n{}\nrerun with --force-conflicts to take those fields over",
        .0.len(), .0.iter().map(|c| format!("  {c}")).collect::<Vec<_>>().join("\n")
    )]
    Conflicts(Vec<String>),
    #[error("the cluster refused {} object(s); nothing was changed:\n{}", .0.len(), .0.iter().map(|c| format!("  {c}")).collect::<Vec<_>>().join("\n"))]
    Refused(Vec<String>),
    #[error("{object}: {message}")]
    Api { object: String, message: String },
    #[error("timed out after {seconds} s waiting for {what}")]
    Timeout { seconds: u64, what: String },
    #[error("this document's target is not a Kubernetes cluster")]
    NotAClusterTarget,
}

impl ClusterError {
    pub(crate) fn api(object: impl Into<String>, e: &kube::Error) -> Self {
        ClusterError::Api {
            object: object.into(),
            message: describe(e),
        }
    }
}

/// A kube error in one line, without Rust debug noise.
pub fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({} {})", s.message, s.code, s.reason),
        other => crate::text::error_chain(other),
    }
}

/// Where the client connects, for messages.
#[derive(Clone)]
pub struct Connection {
    pub client: Client,
    pub context: String,
    pub server: String,
}

/// Connect with a kubeconfig: `kubeconfig` (else `$KUBECONFIG`, else `~/.kube/config`) and
/// `context` (else the current context). Inside a pod with no kubeconfig, the service account.
pub async fn connect(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<Connection, ClusterError> {
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..Default::default()
    };
    let (config, ctx_name) = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path).map_err(|source| ClusterError::Kubeconfig {
                what: format!("cannot read kubeconfig {}", path.display()),
                source: Box::new(source),
            })?;
            let name = context
                .map(str::to_owned)
                .or_else(|| kc.current_context.clone())
                .unwrap_or_default();
            let cfg = Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|source| ClusterError::Kubeconfig {
                    what: format!("kubeconfig {}", path.display()),
                    source: Box::new(source),
                })?;
            (cfg, name)
        }
        None => {
            let have_file = std::env::var_os("KUBECONFIG").is_some()
                || std::env::var_os("HOME")
                    .is_some_and(|h| Path::new(&h).join(".kube/config").exists());
            if have_file || context.is_some() {
                let kc = Kubeconfig::read().map_err(|source| ClusterError::Kubeconfig {
                    what: "cannot read kubeconfig".into(),
                    source: Box::new(source),
                })?;
                let name = context
                    .map(str::to_owned)
                    .or_else(|| kc.current_context.clone())
                    .unwrap_or_default();
                let cfg = Config::from_kubeconfig(&options).await.map_err(|source| {
                    ClusterError::Kubeconfig {
                        what: "kubeconfig".into(),
                        source: Box::new(source),
                    }
                })?;
                (cfg, name)
            } else {
                let cfg = Config::incluster().map_err(ClusterError::NoConfig)?;
                (cfg, "in-cluster".to_owned())
            }
        }
    };
    let server = config.cluster_url.to_string();
    let client = Client::try_from(config).map_err(|e| ClusterError::Client(describe(&e)))?;
    Ok(Connection {
        client,
        context: ctx_name,
        server,
    })
}

/// One object of the rendered manifests.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub gvk: GroupVersionKind,
    pub namespace: Option<String>,
    pub name: String,
    pub object: DynamicObject,
    /// The rendered file it came from (for messages).
    pub file: String,
}

impl Manifest {
    /// `Kind namespace/name` or `Kind name`.
    pub fn label(&self) -> String {
        object_label(&self.gvk.kind, self.namespace.as_deref(), &self.name)
    }

    /// Apply order: CRDs, then namespaces, then everything else.
    pub fn wave(&self) -> u8 {
        match (self.gvk.group.as_str(), self.gvk.kind.as_str()) {
            ("apiextensions.k8s.io", "CustomResourceDefinition") => 0,
            ("", "Namespace") => 1,
            _ => 2,
        }
    }
}

pub fn object_label(kind: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// `Kind.group` as ApplySet annotations write group-kinds (`Kind` alone for the core group).
pub fn group_kind(gvk: &GroupVersionKind) -> String {
    if gvk.group.is_empty() {
        gvk.kind.clone()
    } else {
        format!("{}.{}", gvk.kind, gvk.group)
    }
}

/// The objects of the tree's `kubernetes/` section, in file order.
pub fn manifests(tree: &RenderedTree) -> Result<Vec<Manifest>, ClusterError> {
    let mut out = Vec::new();
    for (file, bytes) in tree
        .files
        .iter()
        .filter(|(f, _)| f.starts_with("kubernetes/"))
    {
        let err = |source: ManifestError| ClusterError::Manifest {
            file: file.clone(),
            source: Box::new(source),
        };
        let text = std::str::from_utf8(bytes).map_err(|e| err(e.into()))?;
        let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| err(e.into()))?;
        for doc in docs.into_iter().filter(|d| !d.is_null()) {
            out.push(manifest_from_value(doc, file).map_err(err)?);
        }
    }
    Ok(out)
}

/// Why a Secret's values could not be made.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("RSA key: {0}")]
    Rsa(#[from] rsa::Error),
    #[error("RSA key as PKCS#1: {0}")]
    Pkcs1(#[from] rsa::pkcs1::Error),
    #[error("RSA public key: {0}")]
    Spki(#[from] rsa::pkcs8::spki::Error),
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
    #[error(transparent)]
    Random(#[from] crate::secrets::SecretError),
    #[error("the platform CA is not there to sign it")]
    NoCa,
    #[error("key {key} of Secret {namespace}/{name}, which it copies, is not there")]
    NoCopy {
        namespace: String,
        name: String,
        key: String,
    },
    #[error("not a Secret: {0}")]
    Object(#[from] serde_json::Error),
}

/// Why a rendered file does not hold Kubernetes objects terroir can apply.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("not UTF-8: {0}")]
    Utf8(#[from] std::str::Utf8Error),
    #[error("not YAML: {0}")]
    Yaml(#[from] serde_saphyr::Error),
    #[error("an object without apiVersion")]
    NoApiVersion,
    #[error("an object without kind")]
    NoKind,
    #[error("{kind}: {source}")]
    Invalid {
        kind: String,
        source: serde_json::Error,
    },
    #[error("a {0} without metadata.name")]
    NoName(String),
    #[error("{kind} {name} has no namespace")]
    NoNamespace { kind: String, name: String },
}

pub fn manifest_from_value(doc: Value, file: &str) -> Result<Manifest, ManifestError> {
    let api_version = doc
        .get("apiVersion")
        .and_then(Value::as_str)
        .ok_or(ManifestError::NoApiVersion)?
        .to_owned();
    let kind = doc
        .get("kind")
        .and_then(Value::as_str)
        .ok_or(ManifestError::NoKind)?
        .to_owned();
    let object: DynamicObject =
        serde_json::from_value(doc).map_err(|source| ManifestError::Invalid {
            kind: kind.clone(),
            source,
        })?;
    let name = object
        .metadata
        .name
        .clone()
        .ok_or_else(|| ManifestError::NoName(kind.clone()))?;
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g.to_owned(), v.to_owned()),
        None => (String::new(), api_version.clone()),
    };
    Ok(Manifest {
        gvk: GroupVersionKind::gvk(&group, &version, &kind),
        namespace: object.metadata.namespace.clone(),
        name,
        object,
        file: file.to_owned(),
    })
}

/// Secrets the manifests read (`secretKeyRef`, `secretRef`, `secret` volumes), by namespace and
/// name. Terroir never renders their values; they must exist before the pods can start.
pub fn referenced_secrets(manifests: &[Manifest]) -> std::collections::BTreeSet<(String, String)> {
    secrets::referenced_keys(manifests).into_keys().collect()
}

/// The kubeconfig and context to use: the flags, else the document's (a kubeconfig path in the
/// document is relative to the document), else the defaults `connect` applies.
pub fn connection_settings(
    flag_kubeconfig: Option<&std::path::PathBuf>,
    flag_context: Option<&String>,
    target: &crate::document::KubernetesTarget,
    document: &std::path::Path,
) -> (Option<std::path::PathBuf>, Option<String>) {
    let kubeconfig = flag_kubeconfig.cloned().or_else(|| {
        target.kubeconfig.as_ref().map(|k| {
            let p = std::path::PathBuf::from(k);
            if p.is_absolute() {
                p
            } else {
                document.parent().map(|d| d.join(&p)).unwrap_or(p)
            }
        })
    });
    (
        kubeconfig,
        flag_context.cloned().or_else(|| target.context.clone()),
    )
}

/// What holds the ApplySet's inventory.
#[derive(Debug, Clone, Default)]
pub enum Parent {
    /// A ConfigMap `terroir-<platform>` in the target namespace (the CLI).
    #[default]
    ConfigMap,
    /// The Platform resource itself, in its namespace (the operator).
    Platform { namespace: String },
}

/// After applying: wait for the workloads to roll out, only look at them, or neither.
#[derive(Debug, Clone, Copy)]
pub enum Rollouts {
    Wait(Duration),
    Check,
    Skip,
}

impl Default for Rollouts {
    fn default() -> Self {
        Rollouts::Wait(Duration::from_secs(600))
    }
}
