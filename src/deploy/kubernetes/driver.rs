//! The Kubernetes driver: the Secrets terroir generates first, then server-side apply of the
//! rendered objects as one ApplySet (pruning what is no longer rendered), then the rollouts.
//! The CLI and the operator both drive clusters through it; they differ only in their settings.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::secrets::{Ensured, SecretAction, SecretState};
use super::{
    Action, Applier, ApplyOptions, ApplyReport, ApplySet, ClusterError, ObjectChange, wait,
};
use crate::deploy::{DeployError, Driven, Driver, Mode, Outcome, Status, Work};

/// How the CLI names the field manager of what it applies.
pub const FIELD_MANAGER: &str = "terroir";

/// How to reach the cluster.
#[derive(Default)]
pub enum Connect<'a> {
    /// A kubeconfig: the flags' path and context, else the document's, else the defaults.
    #[default]
    Kubeconfig,
    /// A client already connected (the operator's, with its discovery cache).
    Applier {
        applier: &'a Applier,
        context: String,
    },
}

pub use super::{Parent, Rollouts};

/// The CLI's flags, or the operator's settings.
pub struct Settings<'a> {
    pub connect: Connect<'a>,
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub field_manager: String,
    pub parent: Parent,
    pub force_conflicts: bool,
    pub prune: bool,
    pub manage_namespaces: bool,
    pub rollouts: Rollouts,
    /// Take the platform's Lease for the length of an apply (the CLI; the operator has its own
    /// leader election).
    pub lease: bool,
}

impl Default for Settings<'_> {
    fn default() -> Self {
        Settings {
            connect: Connect::Kubeconfig,
            kubeconfig: None,
            context: None,
            field_manager: FIELD_MANAGER.to_owned(),
            parent: Parent::ConfigMap,
            force_conflicts: false,
            prune: true,
            manage_namespaces: true,
            rollouts: Rollouts::default(),
            lease: true,
        }
    }
}

/// What a run did on the cluster.
#[derive(Debug)]
pub struct ClusterReport {
    pub mode: Mode,
    /// Objects rendered for the cluster.
    pub rendered: usize,
    pub context: String,
    pub report: ApplyReport,
    pub secrets: Ensured,
    /// Workloads seen rolled out, by label.
    pub rolled_out: Vec<String>,
    /// Workloads not ready yet, with why (only looked at, see `Rollouts::Check`).
    pub pending: Vec<String>,
    pub took: Duration,
}

impl ClusterReport {
    /// An apply is incomplete while Secrets the client gives are missing.
    pub fn ok(&self) -> bool {
        self.mode == Mode::Plan || self.secrets.missing().is_empty()
    }

    pub fn count(&self, action: Action) -> usize {
        self.report.count(action)
    }
}

#[derive(Serialize)]
struct Summary {
    create: usize,
    update: usize,
    unchanged: usize,
    prune: usize,
    skipped: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClusterJson<'a> {
    target: &'static str,
    mode: Mode,
    context: &'a str,
    applyset: &'a str,
    field_manager: &'a str,
    summary: Summary,
    objects: &'a [ObjectChange],
    rolled_out: &'a [String],
    secrets: &'a [SecretState],
    missing_secrets: Vec<String>,
}

impl Serialize for ClusterReport {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = &self.report;
        ClusterJson {
            target: "kubernetes",
            mode: self.mode,
            context: &self.context,
            applyset: &r.applyset,
            field_manager: &r.field_manager,
            summary: Summary {
                create: r.count(Action::Create),
                update: r.count(Action::Update),
                unchanged: r.count(Action::Unchanged),
                prune: r.count(Action::Prune),
                skipped: r.count(Action::Skipped),
            },
            objects: &r.objects,
            rolled_out: &self.rolled_out,
            secrets: &self.secrets.secrets,
            missing_secrets: self.secrets.missing().iter().map(|s| s.label()).collect(),
        }
        .serialize(s)
    }
}

/// Kubernetes clusters.
pub struct Cluster;

impl Driver for Cluster {
    async fn plan(&self, work: &Work<'_>) -> Result<Driven, DeployError> {
        converge(work)
            .await
            .map(|r| Driven::Done(Outcome::Cluster(r)))
    }

    async fn apply(&self, work: &Work<'_>) -> Result<Driven, DeployError> {
        converge(work)
            .await
            .map(|r| Driven::Done(Outcome::Cluster(r)))
    }

    async fn status(&self, work: &Work<'_>) -> Result<Status, DeployError> {
        let manifests = super::manifests(work.tree)?;
        let cluster = Session::open(work).await?;
        let pending = pending(cluster.applier(), &manifests).await?;
        Ok(Status {
            ready: pending.is_empty(),
            pending,
        })
    }
}

/// A connection for one run: made here from a kubeconfig, or the operator's.
pub(super) enum Session<'a> {
    Own {
        applier: Applier,
        context: String,
        server: String,
    },
    Shared {
        applier: &'a Applier,
        context: String,
    },
}

impl<'a> Session<'a> {
    pub(super) async fn open(work: &Work<'a>) -> Result<Session<'a>, ClusterError> {
        let settings = &work.settings.cluster;
        match &settings.connect {
            Connect::Applier { applier, context } => Ok(Session::Shared {
                applier,
                context: context.clone(),
            }),
            Connect::Kubeconfig => {
                let target = work
                    .loaded
                    .platform
                    .spec
                    .target
                    .kubernetes()
                    .ok_or(ClusterError::NotAClusterTarget)?;
                let document = work
                    .document
                    .unwrap_or(std::path::Path::new("platform.yaml"));
                let (kubeconfig, context) = super::connection_settings(
                    settings.kubeconfig.as_ref(),
                    settings.context.as_ref(),
                    target,
                    document,
                );
                let conn = super::connect(kubeconfig.as_deref(), context.as_deref()).await?;
                Ok(Session::Own {
                    applier: Applier::new(conn.client, &settings.field_manager),
                    context: conn.context,
                    server: conn.server,
                })
            }
        }
    }

    pub(super) fn applier(&self) -> &Applier {
        match self {
            Session::Own { applier, .. } => applier,
            Session::Shared { applier, .. } => applier,
        }
    }

    pub(super) fn context(&self) -> &str {
        match self {
            Session::Own { context, .. } | Session::Shared { context, .. } => context,
        }
    }

    fn server(&self) -> &str {
        match self {
            Session::Own { server, .. } => server,
            Session::Shared { .. } => "",
        }
    }
}

async fn converge(work: &Work<'_>) -> Result<ClusterReport, DeployError> {
    let started = Instant::now();
    let settings = &work.settings.cluster;
    let apply = work.mode == Mode::Apply;
    let platform = &work.resolved.platform.name;
    let mut manifests = super::manifests(work.tree)?;
    let set = match &settings.parent {
        Parent::ConfigMap => ApplySet::for_cli(platform, &work.resolved.platform.namespace),
        Parent::Platform { namespace } => ApplySet::for_resource(platform, namespace),
    };
    let session = Session::open(work).await?;
    let applier = session.applier();
    work.events.note(&format!(
        "{} {platform} on context {} ({}), {} objects",
        if apply { "applying" } else { "planning" },
        if session.context().is_empty() {
            "(current)"
        } else {
            session.context()
        },
        session.server().trim_end_matches('/'),
        manifests.len()
    ));
    // One change at a time: the Lease beside the ApplySet parent, held until the run ends.
    let mut lease_namespace = None;
    let lease = match (apply, settings.lease) {
        (true, true) => {
            // on a first apply the Lease's namespace is the first thing made, as a member of the set
            if settings.manage_namespaces
                && namespace_to_make(applier, &manifests, set.parent_namespace()).await?
                && let Some(m) = manifests
                    .iter()
                    .find(|m| m.wave() == 1 && m.name == set.parent_namespace())
            {
                applier
                    .apply_namespace(m, &set, settings.force_conflicts)
                    .await?;
                lease_namespace = Some(m.name.clone());
            }
            Some(
                crate::deploy::lock::Lease::take(
                    applier.client(),
                    set.parent_namespace(),
                    platform,
                    work.holder,
                    work.settings.force_unlock,
                    work.events,
                )
                .await?,
            )
        }
        (false, true) => {
            crate::deploy::lock::Lease::report_holder(
                applier.client(),
                set.parent_namespace(),
                platform,
                work.events,
            )
            .await;
            None
        }
        (_, false) => None,
    };
    let done = apply_set(work, applier, &mut manifests, &set, session.context()).await;
    if let Some(lease) = lease {
        lease.release(work.events).await;
    }
    let mut done = done?;
    if let Some(ns) = lease_namespace {
        done.report.mark_created_namespaces(&[ns].into());
    }
    done.took = started.elapsed();
    Ok(done)
}

/// The Secrets first, then the objects, then the rollouts.
async fn apply_set(
    work: &Work<'_>,
    applier: &Applier,
    manifests: &mut [super::Manifest],
    set: &ApplySet,
    context: &str,
) -> Result<ClusterReport, DeployError> {
    let settings = &work.settings.cluster;
    let apply = work.mode == Mode::Apply;
    // Generated Secrets are created before anything reads them, and every workload is marked
    // with the versions of those it reads.
    let secrets = super::secrets::prepare(
        applier,
        work.resolved,
        manifests,
        set,
        !apply,
        settings.manage_namespaces,
        settings.force_conflicts,
    )
    .await?;
    work.events.cluster_secrets(&secrets, work.mode);
    let opts = ApplyOptions {
        force_conflicts: settings.force_conflicts,
        prune: settings.prune,
        dry_run: !apply,
        manage_namespaces: settings.manage_namespaces,
        diffs: !apply,
    };
    // A new image of the application: a restore point of the database first, the switch
    // recorded on its Deployment once applied (what `terroir rollback` reads).
    let release = super::release::before_release(work, applier.client(), manifests).await?;
    let mut report = applier.apply(manifests, set, opts).await?;
    if let Some(release) = release {
        super::release::record_release(work, applier.client(), release).await?;
    }
    report.mark_created_namespaces(&secrets.created_namespaces);
    let mut done = ClusterReport {
        mode: work.mode,
        rendered: manifests.len(),
        context: context.to_owned(),
        report,
        secrets,
        rolled_out: Vec::new(),
        pending: Vec::new(),
        took: Duration::ZERO,
    };
    // As on hosts, a secret given by the client is never invented: the apply is incomplete,
    // having applied all it could, until it exists.
    if apply && done.ok() {
        match settings.rollouts {
            Rollouts::Wait(deadline) => {
                done.rolled_out = wait_rollouts(applier, manifests, deadline, work).await?
            }
            Rollouts::Check => done.pending = pending(applier, manifests).await?,
            Rollouts::Skip => {}
        }
    }
    Ok(done)
}

/// Whether `namespace` is rendered and not on the cluster yet.
async fn namespace_to_make(
    applier: &Applier,
    manifests: &[super::Manifest],
    namespace: &str,
) -> Result<bool, ClusterError> {
    if !manifests
        .iter()
        .any(|m| m.wave() == 1 && m.name == namespace)
    {
        return Ok(false);
    }
    let api: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(applier.client().clone());
    match api.get_opt(namespace).await {
        Ok(found) => Ok(found.is_none()),
        Err(e) => Err(ClusterError::api(format!("Namespace {namespace}"), &e)),
    }
}

/// Wait for every workload to roll out, each on a watch, all at once.
async fn wait_rollouts(
    applier: &Applier,
    manifests: &[super::Manifest],
    deadline: Duration,
    work: &Work<'_>,
) -> Result<Vec<String>, ClusterError> {
    let workloads: Vec<_> = manifests.iter().filter(|m| wait::is_workload(m)).collect();
    if !workloads.is_empty() {
        work.events.note(&format!(
            "waiting for {} rollouts (timeout {} s)",
            workloads.len(),
            deadline.as_secs()
        ));
    }
    let waits = workloads.iter().map(|m| async move {
        let (ar, _) = applier.resource(&m.gvk).await?;
        let api = kube::Api::namespaced_with(
            applier.client().clone(),
            m.namespace.as_deref().unwrap_or_default(),
            &ar,
        );
        let t = Instant::now();
        wait::wait_rollout(api, &m.gvk.kind, &m.name, deadline).await?;
        work.events.note(&format!(
            "  rolled out  {} ({:.1} s)",
            m.label(),
            t.elapsed().as_secs_f64()
        ));
        Ok::<_, ClusterError>(m.label())
    });
    futures::future::join_all(waits).await.into_iter().collect()
}

/// The workloads not rolled out yet, each with why: read once, no waiting.
async fn pending(
    applier: &Applier,
    manifests: &[super::Manifest],
) -> Result<Vec<String>, ClusterError> {
    let mut waiting = Vec::new();
    for m in manifests.iter().filter(|m| wait::is_workload(m)) {
        let (ar, _) = applier.resource(&m.gvk).await?;
        let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
            applier.client().clone(),
            m.namespace.as_deref().unwrap_or_default(),
            &ar,
        );
        match api.get_opt(&m.name).await {
            Ok(Some(o)) => {
                if let Some(why) = wait::pending(&m.gvk.kind, &o) {
                    waiting.push(format!("{}: {why}", m.label()));
                }
            }
            Ok(None) => waiting.push(format!("{}: not found", m.label())),
            Err(e) => return Err(ClusterError::api(m.label(), &e)),
        }
    }
    Ok(waiting)
}

/// Secrets worth a line for people: those generated now (or that a plan would generate).
pub fn generated_lines(secrets: &Ensured, mode: Mode) -> Vec<String> {
    secrets
        .secrets
        .iter()
        .filter(|s| matches!(s.action, SecretAction::Create | SecretAction::AddKeys))
        .map(|s| {
            let (verb, keys) = match (s.action, mode) {
                (SecretAction::Create, Mode::Apply) => ("generated", &s.keys),
                (SecretAction::Create, Mode::Plan) => ("would generate", &s.keys),
                (_, Mode::Apply) => ("added generated keys to", &s.missing_keys),
                (_, Mode::Plan) => ("would add generated keys to", &s.missing_keys),
            };
            format!("{verb} Secret {} ({})", s.label(), keys.join(", "))
        })
        .collect()
}
