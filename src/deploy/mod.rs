//! The deploy seam: one pipeline for `terroir plan`, `terroir apply`, the SecNumCloud hand-over
//! and the operator.
//!
//! ```text
//! render -> gate -> lock -> drive (one driver per kind of target) -> report
//!                              \_ secnumcloud: Terraform, then hand the created hosts or
//!                                 cluster over: render the handed-over document, drive again
//! ```
//!
//! Rendering is pure (`pipeline`); the gate is `policy::gate`; each driver implements [`Driver`]
//! and is chosen in one place, by the target's kind. Drivers never build documents: they apply
//! what was rendered.

pub mod baremetal;
pub mod kubernetes;
pub mod lock;
pub mod secnumcloud;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::document::{Loaded, Target};
use crate::lifecycle::{destroy, rollback};
use crate::pipeline::render::{RenderError, RenderedTree, Renderer};
use crate::pipeline::resolve::ResolvedPlatform;
use crate::policy::gate::GateReport;

/// What a run does to the target: `plan` changes nothing and says what `apply` would change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Plan,
    Apply,
}

/// How each kind of target is driven: the command line's flags, or the operator's settings.
#[derive(Default)]
pub struct Settings<'a> {
    pub hosts: baremetal::driver::Settings,
    pub cluster: kubernetes::driver::Settings<'a>,
    pub cloud: secnumcloud::driver::Settings,
    /// Take the platform's lock even when its holder cannot be shown to be gone.
    pub force_unlock: bool,
    /// Judge addresses by the provider catalog and the declarations only, even where geodata is
    /// installed (the operator: no geodata in the cluster, and no disk read per reconcile).
    pub skip_geodata: bool,
}

/// What happens during a run, told as it happens: to a person at a terminal, or nowhere.
pub trait Events: Sync {
    /// A step worth telling a person.
    fn note(&self, _line: &str) {}
    /// Something a person and a script should both know, that does not stop the run.
    fn warn(&self, _line: &str) {}
    /// A problem that does not stop the run.
    fn problem(&self, _line: &str) {}
    /// The policy gate's verdict, before anything is changed.
    fn gate(&self, _report: &GateReport) {}
    /// The Secrets a cluster needs, once they are made or found.
    fn cluster_secrets(&self, _secrets: &kubernetes::secrets::Ensured, _mode: Mode) {}
    /// Progress of the bare-metal driver, host by host.
    fn hosts(&self) -> &dyn baremetal::Progress {
        &baremetal::driver::Quiet
    }
}

/// Nothing told (the operator records what matters as conditions and Events instead).
pub struct Silent;

impl Events for Silent {}

/// A document on its way to its target.
pub struct Request<'a> {
    /// The checked document.
    pub loaded: Loaded,
    /// Its file: relative paths, the secret store and the lock live beside it. `None` for a
    /// Platform resource read from a cluster.
    pub document: Option<&'a Path>,
    /// The document's blueprint, compiled.
    pub renderer: &'a Renderer,
    pub mode: Mode,
    pub settings: &'a Settings<'a>,
    pub events: &'a dyn Events,
    /// The command, for whoever finds the platform locked (`apply`, `secrets rotate`...).
    pub command: &'a str,
}

/// One run's work as a driver sees it: the document rendered, where it came from, how to drive.
pub struct Work<'a> {
    pub loaded: &'a Loaded,
    pub resolved: &'a ResolvedPlatform,
    pub tree: &'a RenderedTree,
    /// The document's blueprint, compiled: a cloud's driver renders with it the platform it hands
    /// over, when it must reach that platform itself (destroy, rollback).
    pub renderer: &'a Renderer,
    pub document: Option<&'a Path>,
    pub mode: Mode,
    pub settings: &'a Settings<'a>,
    pub events: &'a dyn Events,
    pub holder: &'a lock::Holder,
}

impl Work<'_> {
    /// The document's path; `platform.yaml` for a Platform resource read from a cluster, so that
    /// what lives beside a document (the secret store, the lock) has a place.
    pub fn document_path(&self) -> PathBuf {
        self.document
            .unwrap_or(Path::new("platform.yaml"))
            .to_owned()
    }

    /// Paths in the document are relative to the document's directory.
    pub fn beside_document(&self, raw: &str) -> PathBuf {
        baremetal::resolve_path(raw, &self.document_path())
    }
}

/// A kind of place terroir deploys to. Each kind implements it once; `run` picks the driver from
/// the target's kind, in one match.
pub trait Driver {
    /// What `apply` would change, changing nothing.
    fn plan(&self, work: &Work<'_>) -> impl Future<Output = Result<Driven, DeployError>> + Send;
    /// Converge the target to the rendered tree.
    fn apply(&self, work: &Work<'_>) -> impl Future<Output = Result<Driven, DeployError>> + Send;
    /// Whether what runs is what was rendered, and ready; changes nothing.
    fn status(&self, work: &Work<'_>) -> impl Future<Output = Result<Status, DeployError>> + Send;
}

/// A kind of place whose platform can be rolled back and taken down (`terroir rollback`,
/// `terroir destroy`): each driver implements it in its own `lifecycle.rs`.
pub trait Lifecycle {
    /// What `destroy` would stop, remove and keep, found on the target; changes nothing.
    fn inventory(
        &self,
        work: &Work<'_>,
        options: &destroy::Options,
    ) -> impl Future<Output = Result<destroy::Plan, DeployError>> + Send;
    /// Carry `plan` out: each item's outcome, in the plan's order.
    fn destroy(
        &self,
        work: &Work<'_>,
        plan: &destroy::Plan,
    ) -> impl Future<Output = Result<Vec<destroy::Done>, DeployError>> + Send;
    /// Go back to an earlier release of the application (and with its data, when asked).
    fn rollback(
        &self,
        work: &Work<'_>,
        request: &rollback::Request,
    ) -> impl Future<Output = Result<rollback::Report, DeployError>> + Send;
}

/// What a driver did, or handed over to the next one.
pub enum Driven {
    Done(Outcome),
    /// Provisioned: the same platform, now on the created hosts or cluster.
    HandOver {
        cloud: secnumcloud::CloudReport,
        next: Box<Loaded>,
    },
}

/// Each driver's report.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Outcome {
    Hosts(baremetal::driver::HostsReport),
    Cluster(kubernetes::driver::ClusterReport),
    Cloud(secnumcloud::CloudReport),
}

impl Outcome {
    /// Whether everything the run was asked to do succeeded.
    pub fn ok(&self) -> bool {
        match self {
            Outcome::Hosts(r) => r.ok(),
            Outcome::Cluster(r) => r.ok(),
            Outcome::Cloud(r) => r.ok(),
        }
    }
}

/// Whether the deployed platform is what was rendered, and running.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Everything is as rendered and ready.
    pub ready: bool,
    /// What is not, one line each.
    pub pending: Vec<String>,
}

/// The result of a run. Scripts read the last driver's report.
#[derive(Debug)]
pub struct Deployed {
    pub platform: String,
    pub mode: Mode,
    /// The gate's verdict, when the run asked it.
    pub gate: Option<GateReport>,
    /// What provisioning did before handing over (SecNumCloud).
    pub provisioned: Option<secnumcloud::CloudReport>,
    pub outcome: Outcome,
    /// The tree the last driver applied.
    pub tree: RenderedTree,
}

impl Serialize for Deployed {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.outcome.serialize(s)
    }
}

impl Deployed {
    pub fn ok(&self) -> bool {
        self.outcome.ok()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("{} violates its sovereignty policy ({} failing check{}); nothing was changed", report.platform, report.failures().count(), crate::text::plural(report.failures().count()))]
    Policy {
        report: Box<GateReport>,
        document: String,
    },
    #[error(transparent)]
    Plan(#[from] crate::policy::locality::verify::NotAPlan),
    #[error(transparent)]
    Locked(#[from] lock::LockError),
    #[error(transparent)]
    Hosts(#[from] baremetal::driver::HostsError),
    #[error(transparent)]
    Cluster(#[from] kubernetes::ClusterError),
    #[error(transparent)]
    Cloud(#[from] secnumcloud::CloudError),
    #[error("the {driver} driver cannot deploy a `{kind}` target")]
    WrongTarget {
        driver: &'static str,
        kind: &'static str,
    },
    #[error(transparent)]
    Release(#[from] crate::lifecycle::release::ReleaseError),
    #[error("{what} is not possible on a `{target}` target: {why}")]
    Unsupported {
        what: &'static str,
        target: &'static str,
        why: String,
    },
    #[error(
        "no export or backup of {platform} younger than 24 hours exists ({seen}): destroying it now would leave no copy of its data; take one (`terroir export {document} --out DIR` or `terroir backup now {document}`), or pass --no-final-export"
    )]
    NoFinalCopy {
        platform: String,
        document: String,
        seen: String,
    },
    #[error(
        "the operator deploys Platforms whose target is `kubernetes`; this one's is `{0}` (deploy it with `terroir apply`)"
    )]
    NotForTheOperator(&'static str),
}

impl DeployError {
    /// What to do next, when the error alone does not say it.
    pub fn hints(&self) -> Vec<String> {
        match self {
            DeployError::Policy { document, .. } => vec![format!(
                "`terroir verify {document}` shows every check; `enforcement: warn` reports without stopping"
            )],
            DeployError::Locked(e) => e.hints(),
            _ => Vec::new(),
        }
    }

    /// Facts for scripts: the failing checks, the lock's holder.
    pub fn details(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut out = serde_json::Map::new();
        match self {
            DeployError::Policy { report, .. } => {
                let failures: Vec<_> = report.failures().collect();
                out.insert(
                    "findings".into(),
                    serde_json::to_value(failures).unwrap_or_default(),
                );
            }
            DeployError::Locked(e) => {
                if let Some(h) = e.holder() {
                    out.insert("holder".into(), serde_json::to_value(h).unwrap_or_default());
                }
            }
            DeployError::Hosts(baremetal::driver::HostsError::Locked(baremetal::HostLocked(e))) => {
                if let baremetal::ssh::SshError::PlatformLocked {
                    holder, address, ..
                } = e.as_ref()
                {
                    out.insert(
                        "holder".into(),
                        serde_json::to_value(holder).unwrap_or_default(),
                    );
                    out.insert("host".into(), serde_json::Value::String(address.clone()));
                }
            }
            _ => {}
        }
        out
    }

    pub fn kind(&self) -> &'static str {
        match self {
            DeployError::Render(_) => "render",
            DeployError::Policy { .. } => "policy",
            DeployError::Plan(_) => "terraform-plan",
            DeployError::Locked(_) => "locked",
            DeployError::Hosts(baremetal::driver::HostsError::Locked(_)) => "locked",
            DeployError::Hosts(_) => "hosts",
            DeployError::Cluster(_) => "kubernetes",
            DeployError::Cloud(_) => "secnumcloud",
            DeployError::WrongTarget { .. }
            | DeployError::NotForTheOperator(_)
            | DeployError::Unsupported { .. } => "target",
            DeployError::Release(_) => "release",
            DeployError::NoFinalCopy { .. } => "no-final-copy",
        }
    }
}

/// Take a document to its target: render, gate, lock, drive, and when a cloud hands the platform
/// over, render the handed-over document and drive again.
pub async fn run(request: Request<'_>) -> Result<Deployed, DeployError> {
    let Request {
        loaded,
        document,
        renderer,
        mode,
        settings,
        events,
        command,
    } = request;
    let holder = lock::Holder::current(command);
    let platform = loaded.platform.metadata.name.clone();
    let mut current = loaded;
    let mut gate = None;
    let mut provisioned = None;
    let mut lock = None;
    loop {
        let (resolved, tree) = renderer.render(&current)?;
        // The declared checks come first: nothing is touched for a document that breaks its own
        // policy. A cloud's driver gates again with its Terraform plan; a hand-over is the same
        // platform in the same place, already judged.
        if gate.is_none()
            && mode == Mode::Apply
            && !matches!(current.platform.spec.target, Target::Secnumcloud(_))
        {
            let images: Vec<String> = resolved.images.values().cloned().collect();
            let geo = if settings.skip_geodata {
                None
            } else {
                crate::policy::locality::geodata::GeoDb::open(None).ok()
            };
            let report = crate::policy::gate::gate(
                &current.platform,
                &images,
                &crate::policy::gate::Evidence {
                    geo: geo.as_ref(),
                    terraform: None,
                },
            )?;
            events.gate(&report);
            if report.blocks() {
                return Err(DeployError::Policy {
                    report: Box::new(report),
                    document: document_name(document),
                });
            }
            gate = Some(report);
        }
        if lock.is_none() {
            lock = Some(lock::Platform::take(
                document,
                &current.platform.metadata.name,
                mode,
                settings.force_unlock,
                &holder,
                events,
            )?);
        }
        let work = Work {
            loaded: &current,
            resolved: &resolved,
            tree: &tree,
            renderer,
            document,
            mode,
            settings,
            events,
            holder: &holder,
        };
        let driven = match &current.platform.spec.target {
            Target::Baremetal(_) => drive(&baremetal::driver::Hosts, &work).await?,
            Target::Kubernetes(_) => drive(&kubernetes::driver::Cluster, &work).await?,
            Target::Secnumcloud(_) => drive(&secnumcloud::driver::Cloud, &work).await?,
        };
        match driven {
            Driven::Done(outcome) => {
                return Ok(Deployed {
                    platform,
                    mode,
                    gate,
                    provisioned,
                    outcome,
                    tree,
                });
            }
            Driven::HandOver { cloud, next } => {
                events.note("provisioned; deploying the platform on it");
                provisioned = Some(cloud);
                current = *next;
            }
        }
    }
}

/// Whether the deployed platform is what `request` renders, and ready: the target's driver looks,
/// changing nothing and taking no lock.
pub async fn status(request: Request<'_>) -> Result<Status, DeployError> {
    let Request {
        loaded,
        document,
        renderer,
        settings,
        events,
        command,
        ..
    } = request;
    let holder = lock::Holder::current(command);
    let (resolved, tree) = renderer.render(&loaded)?;
    let work = Work {
        loaded: &loaded,
        resolved: &resolved,
        tree: &tree,
        renderer,
        document,
        mode: Mode::Plan,
        settings,
        events,
        holder: &holder,
    };
    match &loaded.platform.spec.target {
        Target::Baremetal(_) => baremetal::driver::Hosts.status(&work).await,
        Target::Kubernetes(_) => kubernetes::driver::Cluster.status(&work).await,
        Target::Secnumcloud(_) => secnumcloud::driver::Cloud.status(&work).await,
    }
}

/// What `destroy` found, and did when it was asked to.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Destroyed {
    pub plan: destroy::Plan,
    /// Each item's outcome; `None` when only the plan was asked for (or nothing was left).
    pub done: Option<Vec<destroy::Done>>,
    /// The export or backup the destruction follows.
    pub follows: Option<destroy::FinalCopy>,
    pub started: String,
    pub finished: String,
}

impl Destroyed {
    pub fn ok(&self) -> bool {
        self.done
            .as_ref()
            .is_none_or(|d| d.iter().all(|d| d.failed.is_none()))
    }
}

/// `terroir destroy`: render, lock, the driver's inventory; with `go`, the rule that a recent
/// copy of the data exists, then the driver's destruction. `now` is Unix seconds.
pub async fn destroy(
    request: Request<'_>,
    options: destroy::Options,
    go: bool,
    now: i64,
) -> Result<Destroyed, DeployError> {
    let started = crate::text::now_rfc3339();
    let (loaded, resolved, tree, holder, _lock) = prepare(&request, go)?;
    let work = Work {
        loaded: &loaded,
        resolved: &resolved,
        tree: &tree,
        renderer: request.renderer,
        document: request.document,
        mode: if go { Mode::Apply } else { Mode::Plan },
        settings: request.settings,
        events: request.events,
        holder: &holder,
    };
    let plan = match &loaded.platform.spec.target {
        Target::Baremetal(_) => baremetal::driver::Hosts.inventory(&work, &options).await?,
        Target::Kubernetes(_) => {
            kubernetes::driver::Cluster
                .inventory(&work, &options)
                .await?
        }
        Target::Secnumcloud(_) => {
            secnumcloud::driver::Cloud
                .inventory(&work, &options)
                .await?
        }
    };
    let export = request
        .document
        .and_then(|d| crate::lifecycle::destroy::last_export(d, &loaded.platform.metadata.name));
    let follows = [export, plan.last_backup.clone()]
        .into_iter()
        .flatten()
        .filter(|c| c.recent(now))
        .max_by_key(|c| c.finished);
    if !go || plan.nothing_left() {
        return Ok(Destroyed {
            plan,
            done: None,
            follows,
            started,
            finished: crate::text::now_rfc3339(),
        });
    }
    if follows.is_none() && !options.no_final_export {
        return Err(DeployError::NoFinalCopy {
            platform: loaded.platform.metadata.name.clone(),
            document: document_name(request.document),
            seen: crate::lifecycle::destroy::seen(
                request.document,
                &loaded.platform.metadata.name,
                plan.last_backup.as_ref(),
                now,
            ),
        });
    }
    let done = match &loaded.platform.spec.target {
        Target::Baremetal(_) => baremetal::driver::Hosts.destroy(&work, &plan).await?,
        Target::Kubernetes(_) => kubernetes::driver::Cluster.destroy(&work, &plan).await?,
        Target::Secnumcloud(_) => secnumcloud::driver::Cloud.destroy(&work, &plan).await?,
    };
    Ok(Destroyed {
        plan,
        done: Some(done),
        follows,
        started,
        finished: crate::text::now_rfc3339(),
    })
}

/// `terroir rollback`: render, lock, the target's driver.
pub async fn rollback(
    request: Request<'_>,
    rb: &rollback::Request,
) -> Result<rollback::Report, DeployError> {
    let (loaded, resolved, tree, holder, _lock) = prepare(&request, true)?;
    let work = Work {
        loaded: &loaded,
        resolved: &resolved,
        tree: &tree,
        renderer: request.renderer,
        document: request.document,
        mode: Mode::Apply,
        settings: request.settings,
        events: request.events,
        holder: &holder,
    };
    match &loaded.platform.spec.target {
        Target::Baremetal(_) => baremetal::driver::Hosts.rollback(&work, rb).await,
        Target::Kubernetes(_) => kubernetes::driver::Cluster.rollback(&work, rb).await,
        Target::Secnumcloud(_) => secnumcloud::driver::Cloud.rollback(&work, rb).await,
    }
}

/// The document rendered, and the platform's lock when the run changes anything.
#[allow(clippy::type_complexity)]
fn prepare(
    request: &Request<'_>,
    changes: bool,
) -> Result<
    (
        Loaded,
        ResolvedPlatform,
        RenderedTree,
        lock::Holder,
        Option<lock::Platform>,
    ),
    DeployError,
> {
    let holder = lock::Holder::current(request.command);
    let loaded = request.loaded.clone();
    let (resolved, tree) = request.renderer.render(&loaded)?;
    let lock = if changes {
        lock::Platform::take(
            request.document,
            &loaded.platform.metadata.name,
            Mode::Apply,
            request.settings.force_unlock,
            &holder,
            request.events,
        )?
    } else {
        None
    };
    Ok((loaded, resolved, tree, holder, lock))
}

/// The document as messages name it.
pub fn document_name(document: Option<&Path>) -> String {
    document
        .map(|d| d.display().to_string())
        .unwrap_or_else(|| "the Platform".to_owned())
}

async fn drive(driver: &impl Driver, work: &Work<'_>) -> Result<Driven, DeployError> {
    match work.mode {
        Mode::Plan => driver.plan(work).await,
        Mode::Apply => driver.apply(work).await,
    }
}
