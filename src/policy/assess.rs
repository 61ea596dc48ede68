//! What `terroir verify` establishes about a platform, and `terroir attest` signs: the document
//! loaded and rendered, then judged against its own sovereignty policy on its declarations, on
//! the addresses its names resolve to, on a Terraform plan when one is given, and with live
//! checks on what the running target shows (hosts over SSH, or the cluster's API).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::locality::catalog::Catalog as Providers;
use super::locality::geodata::{GeoDb, GeodataError};
use super::locality::verify::{self, Finding, NotAPlan, Report, Verifier};
use super::locality::{hostfacts, live};
use crate::deploy::kubernetes::{ClusterError, Connection};
use crate::document::{KubernetesTarget, Loaded, Platform, Target};
use crate::pipeline::blueprint::Catalog;
use crate::pipeline::render::{RenderError, RenderedTree};
use crate::pipeline::resolve::ResolvedPlatform;

/// Host names pinned to addresses (`--resolve HOST=ADDRESS`), lowercase, consulted before DNS.
pub type Pins = HashMap<String, Vec<IpAddr>>;

/// A `--resolve` pin that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("--resolve {given}: expected HOST=ADDRESS")]
    NotAPin { given: String },
    #[error("--resolve {given}: `{address}` is not an IP address; expected HOST=ADDRESS")]
    NotAnAddress {
        given: String,
        address: String,
        #[source]
        source: std::net::AddrParseError,
    },
}

/// `HOST=ADDRESS` pins, as given on the command line (IPv6 addresses may be bracketed).
pub fn parse_pins(pins: &[String]) -> Result<Pins, PinError> {
    let mut out = Pins::new();
    for given in pins {
        let (host, address) = given.split_once('=').ok_or_else(|| PinError::NotAPin {
            given: given.clone(),
        })?;
        let ip: IpAddr =
            address
                .trim_matches(['[', ']'])
                .parse()
                .map_err(|source| PinError::NotAnAddress {
                    given: given.clone(),
                    address: address.to_owned(),
                    source,
                })?;
        out.entry(host.to_ascii_lowercase()).or_default().push(ip);
    }
    Ok(out)
}

/// How the running target is reached for live checks.
pub struct Live {
    /// A kubeconfig and context given on the command line; they win over the document's.
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// The command's one async runtime, for a cluster's API.
    pub runtime: tokio::runtime::Runtime,
}

impl Live {
    /// Connect to the cluster a Kubernetes document names.
    pub async fn connect(
        &self,
        target: &KubernetesTarget,
        document: &Path,
    ) -> Result<Connection, ClusterError> {
        let (kubeconfig, context) = crate::deploy::kubernetes::connection_settings(
            self.kubeconfig.as_ref(),
            self.context.as_ref(),
            target,
            document,
        );
        crate::deploy::kubernetes::connect(kubeconfig.as_deref(), context.as_deref()).await
    }
}

/// What to judge beyond the document's declarations, and how.
pub struct Checks {
    pub pins: Pins,
    /// The geodata directory (None: the default one).
    pub geodata: Option<PathBuf>,
    /// Resolve names through DNS; without it names are judged by the catalog and the declaration.
    pub dns: bool,
    /// A Terraform plan in JSON (`terraform show -json`).
    pub plan_json: Option<PathBuf>,
    /// Read the running target too.
    pub live: Option<Live>,
}

/// A platform judged: the document, what was rendered from it and the verdict on every check.
pub struct Assessed {
    pub loaded: Loaded,
    pub resolved: ResolvedPlatform,
    pub tree: RenderedTree,
    pub report: Report,
}

/// Why a platform could not be judged.
#[derive(Debug, thiserror::Error)]
pub enum AssessError {
    #[error(transparent)]
    Document(#[from] crate::document::Invalid),
    #[error(transparent)]
    Pin(#[from] PinError),
    #[error(transparent)]
    Geodata(#[from] GeodataError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("cannot read {}", path.display())]
    PlanRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: not JSON; expected the JSON `terraform show -json PLAN` writes", path.display())]
    PlanSyntax {
        path: PathBuf,
        line: usize,
        column: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}", path.display())]
    NotAPlan {
        path: PathBuf,
        #[source]
        source: NotAPlan,
    },
    #[error(
        "--live reads a running target: bare-metal hosts or a Kubernetes cluster; for a SecNumCloud target, judge its Terraform plan with --plan-json"
    )]
    LiveOnCloud,
    #[error("cannot connect to the Kubernetes cluster")]
    Connect(#[source] ClusterError),
    #[error("cannot read the cluster's live facts")]
    Cluster(#[source] ClusterError),
}

impl AssessError {
    pub fn kind(&self) -> &'static str {
        match self {
            AssessError::Document(_) => "invalid-document",
            AssessError::Pin(_) | AssessError::LiveOnCloud => "usage",
            AssessError::Geodata(_) => "geodata",
            AssessError::Render(_) => "render",
            AssessError::PlanRead { .. }
            | AssessError::PlanSyntax { .. }
            | AssessError::NotAPlan { .. } => "plan",
            AssessError::Connect(_) => "cluster-unreachable",
            AssessError::Cluster(_) => "live",
        }
    }
}

/// Load, render and judge the platform `document` describes.
pub fn assess(
    document: &Path,
    catalog: &Catalog,
    checks: &Checks,
) -> Result<Assessed, AssessError> {
    let loaded = crate::pipeline::load(document, catalog)?;
    let geo = GeoDb::open(checks.geodata.as_deref())?;
    let (resolved, tree) = crate::pipeline::render::render(&loaded, catalog)?;
    let p = &loaded.platform;
    let v = Verifier {
        policy: &p.spec.sovereignty.policy,
        geo: Some(&geo),
        catalog: Providers::builtin(),
        pins: checks.pins.clone(),
        dns: checks.dns,
    };
    let images: Vec<String> = resolved.images.values().cloned().collect();
    let mut findings = verify::declared(p, &images, &v);
    if let Some(path) = &checks.plan_json {
        findings.extend(plan(path, &v)?);
    }
    if let Some(live) = &checks.live {
        let pinned = Pinned {
            images: crate::pipeline::images::inventory(&resolved),
            tree: &tree,
        };
        findings.extend(live_findings(document, p, &v, live, &pinned)?);
    }
    let report = Report::new(&p.metadata.name, findings);
    Ok(Assessed {
        loaded,
        resolved,
        tree,
        report,
    })
}

/// The resources a saved Terraform plan would create or change, judged.
fn plan(path: &Path, v: &Verifier) -> Result<Vec<Finding>, AssessError> {
    let text = std::fs::read_to_string(path).map_err(|source| AssessError::PlanRead {
        path: path.to_owned(),
        source,
    })?;
    let plan: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| AssessError::PlanSyntax {
            path: path.to_owned(),
            line: source.line(),
            column: source.column(),
            source,
        })?;
    verify::plan(&plan, v).map_err(|source| AssessError::NotAPlan {
        path: path.to_owned(),
        source,
    })
}

/// The images the platform runs and the tree that says where its pods run.
struct Pinned<'a> {
    images: Vec<crate::pipeline::images::ImageUse>,
    tree: &'a RenderedTree,
}

/// What the running target shows, judged.
fn live_findings(
    document: &Path,
    p: &Platform,
    v: &Verifier,
    live: &Live,
    pinned: &Pinned,
) -> Result<Vec<Finding>, AssessError> {
    match &p.spec.target {
        Target::Kubernetes(k) => live.runtime.block_on(async {
            let conn = live
                .connect(k, document)
                .await
                .map_err(AssessError::Connect)?;
            let declared_operator = k.location.as_ref().and_then(|l| l.operator.as_deref());
            let mut findings = live::kubernetes(&conn.client, &k.namespace, declared_operator, v)
                .await
                .map_err(AssessError::Cluster)?;
            let manifests =
                crate::deploy::kubernetes::manifests(pinned.tree).map_err(AssessError::Cluster)?;
            let mut namespaces = super::digests::workload_namespaces(&manifests);
            namespaces.insert(k.namespace.clone());
            findings.extend(
                super::digests::kubernetes(&conn.client, &namespaces, &pinned.images)
                    .await
                    .map_err(AssessError::Cluster)?,
            );
            Ok(findings)
        }),
        Target::Baremetal(b) => Ok(hostfacts::verify_hosts(document, b, p, v)),
        Target::Secnumcloud(_) => Err(AssessError::LiveOnCloud),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn pins_map_lowercase_names_to_every_address_given() {
        let pins = parse_pins(&[
            "Registry.example.fr=192.0.2.1".into(),
            "registry.example.fr=[2001:db8::1]".into(),
        ])
        .unwrap();
        assert_eq!(
            pins["registry.example.fr"],
            [
                "192.0.2.1".parse::<IpAddr>().unwrap(),
                "2001:db8::1".parse().unwrap()
            ]
        );
        assert!(parse_pins(&[]).unwrap().is_empty());
    }

    #[test]
    fn a_bad_pin_says_which_and_what_is_expected() {
        let e = parse_pins(&["registry.example.fr".into()]).unwrap_err();
        assert!(matches!(&e, PinError::NotAPin { given } if given == "registry.example.fr"));
        assert!(e.to_string().contains("HOST=ADDRESS"));
        let e = parse_pins(&["registry.example.fr=not-an-ip".into()]).unwrap_err();
        assert!(matches!(&e, PinError::NotAnAddress { address, .. } if address == "not-an-ip"));
        let message = e.to_string();
        assert!(
            message.contains("not-an-ip") && message.contains("HOST=ADDRESS"),
            "{message}"
        );
    }

    #[test]
    fn what_the_user_gave_is_invalid_and_a_failing_cluster_is_a_failure() {
        use crate::error::ExitStatus;
        assert_eq!(AssessError::LiveOnCloud.exit_status(), ExitStatus::Invalid);
        assert_eq!(
            AssessError::Connect(ClusterError::NotAClusterTarget).exit_status(),
            ExitStatus::Invalid
        );
        assert_eq!(
            AssessError::Cluster(ClusterError::Timeout {
                seconds: 1,
                what: "nodes".into()
            })
            .exit_status(),
            ExitStatus::Failed
        );
        assert_eq!(
            AssessError::Geodata(GeodataError::NoData {
                dir: PathBuf::from("/nowhere")
            })
            .exit_status(),
            ExitStatus::Invalid
        );
    }

    #[test]
    fn a_plan_that_is_not_json_is_reported_at_its_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        std::fs::write(&path, "{\n  \"format_version\": \"1.2\",\n  oops\n}\n").unwrap();
        let policy = crate::document::Policy {
            allowed_countries: vec!["EU".into()],
            forbidden_jurisdictions: vec![],
            required_qualifications: vec![],
            enforcement: crate::document::Enforcement::Enforce,
        };
        let v = Verifier {
            policy: &policy,
            geo: None,
            catalog: Providers::builtin(),
            pins: Pins::new(),
            dns: false,
        };
        let e = plan(&path, &v).unwrap_err();
        assert!(
            matches!(
                e,
                AssessError::PlanSyntax {
                    line: 3,
                    column: 3,
                    ..
                }
            ),
            "{e}"
        );
        assert!(
            e.to_string().contains("bad.json:3:3")
                && e.to_string().contains("terraform show -json")
        );
        std::fs::write(&path, "{\"resource_changes\": []}").unwrap();
        let e = plan(&path, &v).unwrap_err();
        assert!(
            crate::text::error_chain(&e).contains("format_version"),
            "{e}"
        );
        assert!(matches!(
            plan(&dir.path().join("absent.json"), &v),
            Err(AssessError::PlanRead { .. })
        ));
    }
}
