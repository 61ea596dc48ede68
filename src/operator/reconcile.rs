//! One reconciliation of a `Platform` resource: resolve, render, policy gate, apply, verify.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder};
use kube::runtime::finalizer::{Event, finalizer};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;

use super::metrics::Metrics;
use crate::deploy::kubernetes::driver::{Connect, Parent, Rollouts, Settings as ClusterSettings};
use crate::deploy::kubernetes::secrets::{Ensured, SecretAction};
use crate::deploy::kubernetes::{self, Applier, ApplySet, ClusterError, wait};
use crate::deploy::{self, DeployError, Events, Mode, Outcome};
use crate::document::{
    self, Condition, Metadata, Platform, PlatformResource, PlatformStatus, Target,
};
use crate::pipeline::blueprint::Catalog;
use crate::pipeline::render::{RenderError, Renderer};
use crate::policy::gate::GateReport;

pub const FINALIZER: &str = "terroir.eu/prune";
pub const FIELD_MANAGER: &str = "terroir-operator";
/// How soon a Platform whose workloads are still rolling out is looked at again.
pub const ROLLOUT_RECHECK: Duration = Duration::from_secs(10);

pub struct Context {
    pub client: Client,
    pub applier: Applier,
    pub catalog: Catalog,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub manage_namespaces: bool,
    pub requeue: Duration,
    renderers: Mutex<HashMap<String, Arc<Renderer>>>,
    done: Mutex<HashMap<String, Done>>,
}

/// The last complete reconciliation of one resource (by uid).
#[derive(Debug, Clone, Copy)]
struct Done {
    generation: i64,
    at: Instant,
    ready: bool,
}

impl Context {
    pub fn new(
        client: Client,
        catalog: Catalog,
        recorder: Recorder,
        metrics: Arc<Metrics>,
        manage_namespaces: bool,
        requeue: Duration,
    ) -> Self {
        Context {
            applier: Applier::new(client.clone(), FIELD_MANAGER),
            client,
            catalog,
            recorder,
            metrics,
            manage_namespaces,
            requeue,
            renderers: Mutex::new(HashMap::new()),
            done: Mutex::new(HashMap::new()),
        }
    }

    /// Blueprints are compiled once and shared by every Platform that uses them.
    fn renderer(&self, name: &str) -> Result<Arc<Renderer>, RenderError> {
        if let Some(r) = self
            .renderers
            .lock()
            .ok()
            .and_then(|m| m.get(name).cloned())
        {
            return Ok(r);
        }
        let bp = self.catalog.load(name)?;
        let r = Arc::new(Renderer::new(bp)?);
        if let Ok(mut m) = self.renderers.lock() {
            m.insert(name.to_owned(), r.clone());
        }
        Ok(r)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Deploy(Box<DeployError>),
    #[error("cannot write the status of {platform}: {message}")]
    Status { platform: String, message: String },
    #[error("finalizer {FINALIZER}: {0}")]
    Finalizer(String),
}

pub async fn reconcile(
    p: Arc<PlatformResource>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    let ns = p.namespace().unwrap_or_else(|| "default".into());
    let api: Api<PlatformResource> = Api::namespaced(ctx.client.clone(), &ns);
    let result = finalizer(&api, FINALIZER, p, |event| async {
        match event {
            Event::Apply(p) => converge(&p, &ctx).await,
            Event::Cleanup(p) => cleanup(&p, &ctx).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e)
        | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => ReconcileError::Finalizer(other.to_string()),
    });
    ctx.metrics
        .duration
        .observe(started.elapsed().as_secs_f64());
    result
}

pub fn error_policy(p: Arc<PlatformResource>, error: &ReconcileError, ctx: Arc<Context>) -> Action {
    ctx.metrics.count("error");
    tracing::warn!(platform = %format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any()), error = %error, "reconcile failed; retrying in 15 s");
    Action::requeue(Duration::from_secs(15))
}

/// Conditions being written, keeping each one's transition time when its status did not change.
struct Conditions<'a> {
    old: &'a [Condition],
    new: Vec<Condition>,
    generation: i64,
    now: String,
}

impl<'a> Conditions<'a> {
    fn new(old: &'a [Condition], generation: i64) -> Self {
        Conditions {
            old,
            new: Vec::new(),
            generation,
            now: crate::text::now_rfc3339(),
        }
    }

    fn set(&mut self, type_: &str, ok: Option<bool>, reason: &str, message: impl Into<String>) {
        let status = match ok {
            Some(true) => "True",
            Some(false) => "False",
            None => "Unknown",
        };
        let since = self
            .old
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| self.now.clone());
        self.new.push(Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: message.into(),
            last_transition_time: since,
            observed_generation: Some(self.generation),
        });
    }
}

fn key(p: &PlatformResource) -> String {
    p.uid()
        .unwrap_or_else(|| format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any()))
}

/// What a run told the operator as it went: the gate's verdict and the Secrets, which become
/// conditions and Events whatever happens after them.
#[derive(Default)]
struct Heard {
    gate: Mutex<Option<GateReport>>,
    secrets: Mutex<Option<Ensured>>,
}

impl Events for Heard {
    fn gate(&self, report: &GateReport) {
        if let Ok(mut g) = self.gate.lock() {
            *g = Some(report.clone());
        }
    }

    fn cluster_secrets(&self, secrets: &Ensured, _mode: Mode) {
        if let Ok(mut s) = self.secrets.lock() {
            *s = Some(secrets.clone());
        }
    }
}

fn diagnostics_text(diags: &[crate::document::Diagnostic]) -> String {
    diags
        .iter()
        .map(|d| format!("{}: {}; expected {}", d.path, d.message, d.expected))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn converge(p: &PlatformResource, ctx: &Context) -> Result<Action, ReconcileError> {
    let name = p.name_any();
    let ns = p.namespace().unwrap_or_else(|| "default".into());
    let generation = p.metadata.generation.unwrap_or(0);
    // Writing the status or the ApplySet annotations triggers a watch event; a resource reconciled
    // moments ago at the same generation is not reconciled again before it is due.
    if let Some(done) = ctx.done.lock().ok().and_then(|m| m.get(&key(p)).copied()) {
        let due = if done.ready {
            ctx.requeue
        } else {
            ROLLOUT_RECHECK
        };
        if done.generation == generation && done.at.elapsed() < due {
            return Ok(Action::requeue(due - done.at.elapsed()));
        }
    }
    let old_status = p.status.clone().unwrap_or_default();
    let mut conds = Conditions::new(&old_status.conditions, generation);
    let set = ApplySet::for_resource(&name, &ns);
    let mut status = PlatformStatus {
        observed_generation: Some(generation),
        applyset: Some(set.id.clone()),
        ..old_status.clone()
    };

    // The document exactly as `terroir render` would read it, then its blueprint.
    let doc = Platform {
        api_version: document::API_VERSION.into(),
        kind: document::KIND.into(),
        metadata: Metadata {
            name: name.clone(),
            namespace: Some(ns.clone()),
            labels: p
                .labels()
                .iter()
                .filter(|(k, _)| !k.starts_with("applyset.kubernetes.io/"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        },
        spec: p.spec.clone(),
    };
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    let prepared = match document::load_str(&format!("platforms/{ns}/{name}"), &text) {
        Err(diags) => Err(("InvalidSpec", diagnostics_text(&diags))),
        Ok(loaded) if !matches!(loaded.platform.spec.target, Target::Kubernetes(_)) => Err((
            "UnsupportedTarget",
            DeployError::NotForTheOperator(loaded.platform.spec.target.kind()).to_string(),
        )),
        Ok(loaded) => ctx
            .renderer(&loaded.platform.spec.blueprint.name)
            .map(|r| (loaded, r))
            .map_err(|e| ("BlueprintNotFound", crate::text::error_chain(&e))),
    };
    let (loaded, renderer) = match prepared {
        Ok(x) => x,
        Err((reason, message)) => {
            return not_rendered(ctx, p, &ns, &name, conds, status, reason, message).await;
        }
    };

    // Render, gate, Secrets, apply, a look at the rollouts: the pipeline of `terroir apply`, with
    // the Platform as the ApplySet's parent and no waiting.
    let mut settings = deploy::Settings {
        skip_geodata: true,
        ..Default::default()
    };
    settings.cluster = ClusterSettings {
        connect: Connect::Applier {
            applier: &ctx.applier,
            context: String::new(),
        },
        field_manager: FIELD_MANAGER.to_owned(),
        parent: Parent::Platform {
            namespace: ns.clone(),
        },
        manage_namespaces: ctx.manage_namespaces,
        rollouts: Rollouts::Check,
        lease: false,
        ..Default::default()
    };
    let heard = Heard::default();
    let result = deploy::run(deploy::Request {
        loaded,
        document: None,
        renderer: &renderer,
        mode: Mode::Apply,
        settings: &settings,
        events: &heard,
        command: "operator",
    })
    .await;
    let gate = heard.gate.lock().ok().and_then(|mut g| g.take());
    let secrets = heard.secrets.lock().ok().and_then(|mut s| s.take());
    let deployed = match result {
        Err(DeployError::Render(RenderError::Invalid(diags))) => {
            return not_rendered(
                ctx,
                p,
                &ns,
                &name,
                conds,
                status,
                "InvalidSpec",
                diagnostics_text(&diags),
            )
            .await;
        }
        Err(DeployError::Render(e)) => {
            return not_rendered(
                ctx,
                p,
                &ns,
                &name,
                conds,
                status,
                "RenderFailed",
                crate::text::error_chain(&e),
            )
            .await;
        }
        Err(DeployError::Cluster(e @ ClusterError::Manifest { .. })) => {
            return not_rendered(
                ctx,
                p,
                &ns,
                &name,
                conds,
                status,
                "RenderFailed",
                e.to_string(),
            )
            .await;
        }
        other => other,
    };
    // Rendered: everything after the render got this far.
    let rendered = match &deployed {
        Ok(d) => match &d.outcome {
            Outcome::Cluster(r) => r.rendered,
            _ => 0,
        },
        Err(_) => 0,
    };
    conds.set(
        "Rendered",
        Some(true),
        "Rendered",
        if rendered > 0 {
            format!(
                "{rendered} objects from blueprint {}",
                p.spec.blueprint.name
            )
        } else {
            format!("rendered from blueprint {}", p.spec.blueprint.name)
        },
    );

    // Policy gate: the declared checks of `terroir verify` (provider catalog, no DNS, no geodata
    // inside the cluster). With `enforcement: enforce` a violation is not applied.
    match gate.as_ref().map(|g| {
        g.failures()
            .map(|f| format!("{}: {} ({})", f.subject, f.observed, f.evidence))
            .collect::<Vec<_>>()
    }) {
        Some(failing) if !failing.is_empty() => {
            let message = format!(
                "{} check(s) fail the sovereignty policy: {}",
                failing.len(),
                failing.join("; ")
            );
            conds.set(
                "PolicyCompliant",
                Some(false),
                "PolicyViolation",
                message.clone(),
            );
            publish(
                ctx,
                p,
                EventType::Warning,
                "PolicyViolation",
                "Gate",
                &message,
            )
            .await;
            if let Err(DeployError::Policy { .. }) = &deployed {
                conds.set("Applied", Some(false), "PolicyViolation", "not applied until the policy is met; objects already deployed are left as they are");
                conds.set("Ready", Some(false), "PolicyViolation", message.clone());
                status.conditions = conds.new;
                write_status(ctx, &ns, &name, &status).await?;
                ctx.metrics.count("policy");
                return Ok(Action::requeue(ctx.requeue));
            }
        }
        _ => conds.set(
            "PolicyCompliant",
            Some(true),
            "PolicyMet",
            "declared facts meet the policy (provider catalog)",
        ),
    }

    // Secrets: generated ones created before anything reads them; given ones reported.
    let Some(secrets) = secrets else {
        let message = match &deployed {
            Err(e) => crate::text::error_chain(e),
            Ok(_) => "the Secrets were not prepared".to_owned(),
        };
        conds.set(
            "SecretsReady",
            Some(false),
            "SecretsFailed",
            message.clone(),
        );
        conds.set(
            "Applied",
            Some(false),
            "SecretsFailed",
            "nothing was applied",
        );
        conds.set("Ready", Some(false), "SecretsFailed", message.clone());
        status.conditions = conds.new;
        publish(
            ctx,
            p,
            EventType::Warning,
            "SecretsFailed",
            "Secrets",
            &message,
        )
        .await;
        write_status(ctx, &ns, &name, &status).await?;
        return match deployed {
            Err(DeployError::Cluster(e)) => Err(e.into()),
            _ => Ok(Action::requeue(ctx.requeue)),
        };
    };
    let created: Vec<String> = secrets
        .secrets
        .iter()
        .filter(|s| s.action == SecretAction::Create)
        .map(|s| s.label())
        .collect();
    if !created.is_empty() {
        publish(
            ctx,
            p,
            EventType::Normal,
            "SecretsGenerated",
            "Secrets",
            &format!("generated {}", created.join(", ")),
        )
        .await;
    }
    let missing = secrets.missing_lines();
    if missing.is_empty() {
        conds.set(
            "SecretsReady",
            Some(true),
            "SecretsPresent",
            format!(
                "{} Secret(s) present ({} generated now)",
                secrets.secrets.len(),
                created.len()
            ),
        );
    } else {
        // Applied all the same: what does not read them can run.
        let message = missing.join("\n");
        conds.set(
            "SecretsReady",
            Some(false),
            "SecretMissing",
            message.clone(),
        );
        publish(
            ctx,
            p,
            EventType::Warning,
            "SecretMissing",
            "Secrets",
            &message,
        )
        .await;
    }

    // Apply.
    let report = match deployed {
        Ok(d) => match d.outcome {
            Outcome::Cluster(r) => (r, d.tree),
            // a Kubernetes target is driven by the Kubernetes driver only
            _ => return Ok(Action::requeue(ctx.requeue)),
        },
        Err(e) => {
            let reason = match &e {
                DeployError::Cluster(ClusterError::Conflicts(_)) => "Conflict",
                DeployError::Cluster(ClusterError::Refused(_)) => "Refused",
                DeployError::Cluster(ClusterError::NotServed(_)) => "KindNotServed",
                _ => "ApplyFailed",
            };
            let message = crate::text::error_chain(&e);
            conds.set("Applied", Some(false), reason, message.clone());
            conds.set("Ready", Some(false), reason, message.clone());
            status.conditions = conds.new;
            publish(ctx, p, EventType::Warning, reason, "Apply", &message).await;
            write_status(ctx, &ns, &name, &status).await?;
            if reason == "ApplyFailed" {
                return Err(match e {
                    DeployError::Cluster(e) => e.into(),
                    other => ReconcileError::Deploy(Box::new(other)),
                });
            }
            ctx.metrics.count(if reason == "Conflict" {
                "conflict"
            } else {
                "error"
            });
            return Ok(Action::requeue(ctx.requeue));
        }
    };
    let (r, tree) = report;
    let digest = crate::text::sha256_hex(
        &tree
            .files
            .iter()
            .filter(|(f, _)| f.starts_with("kubernetes/"))
            .flat_map(|(f, b)| [f.as_bytes(), b.as_slice()].concat())
            .collect::<Vec<u8>>(),
    );
    use crate::deploy::kubernetes::Action as A;
    let (created, updated, pruned) = (r.count(A::Create), r.count(A::Update), r.count(A::Prune));
    ctx.metrics
        .objects_applied
        .inc_by((created + updated) as u64);
    ctx.metrics.objects_pruned.inc_by(pruned as u64);
    let skipped = r.count(A::Skipped);
    conds.set(
        "Applied",
        Some(true),
        "Applied",
        format!(
            "{} objects applied ({created} created, {updated} configured, {pruned} pruned){}",
            r.report.applied_objects(),
            if skipped > 0 {
                format!("; {skipped} namespace(s) left to the cluster administrator")
            } else {
                String::new()
            }
        ),
    );
    if r.report.changed() {
        publish(
            ctx,
            p,
            EventType::Normal,
            "Applied",
            "Apply",
            &format!("{created} created, {updated} configured, {pruned} pruned"),
        )
        .await;
    }

    // Verify: every workload rolled out.
    let mut waiting = r.pending.clone();
    if !missing.is_empty() {
        waiting.push(format!(
            "{} Secret(s) you give are missing (see condition SecretsReady)",
            missing.len()
        ));
    }
    let ready = waiting.is_empty();
    if ready {
        let workloads = crate::deploy::kubernetes::manifests(&tree)
            .map(|m| m.iter().filter(|m| wait::is_workload(m)).count())
            .unwrap_or_default();
        conds.set(
            "Ready",
            Some(true),
            "RolledOut",
            format!("{workloads} workloads rolled out"),
        );
    } else {
        conds.set(
            "Ready",
            Some(false),
            "RolloutInProgress",
            waiting.join("; "),
        );
    }
    status.conditions = conds.new;
    status.applied_objects = Some(r.report.applied_objects() as i64);
    status.rendered_digest = Some(digest);
    if status != old_status {
        write_status(ctx, &ns, &name, &status).await?;
    }
    if let Ok(mut m) = ctx.done.lock() {
        m.insert(
            key(p),
            Done {
                generation,
                at: Instant::now(),
                ready,
            },
        );
    }
    ctx.metrics.count("ok");
    Ok(Action::requeue(if ready {
        ctx.requeue
    } else {
        ROLLOUT_RECHECK
    }))
}

/// Nothing could be rendered: say why on every condition, and try again later.
#[allow(clippy::too_many_arguments)]
async fn not_rendered(
    ctx: &Context,
    p: &PlatformResource,
    ns: &str,
    name: &str,
    mut conds: Conditions<'_>,
    mut status: PlatformStatus,
    reason: &str,
    message: String,
) -> Result<Action, ReconcileError> {
    conds.set("Rendered", Some(false), reason, message.clone());
    conds.set("PolicyCompliant", None, "NotRendered", "");
    conds.set("Applied", None, "NotRendered", "nothing was changed");
    conds.set("Ready", Some(false), reason, message.clone());
    status.conditions = conds.new;
    publish(ctx, p, EventType::Warning, reason, "Render", &message).await;
    write_status(ctx, ns, name, &status).await?;
    ctx.metrics.count("invalid");
    Ok(Action::requeue(ctx.requeue))
}

async fn cleanup(p: &PlatformResource, ctx: &Context) -> Result<Action, ReconcileError> {
    let name = p.name_any();
    let ns = p.namespace().unwrap_or_else(|| "default".into());
    let set = ApplySet::for_resource(&name, &ns);
    // Kinds and namespaces recorded in the parent, plus what the spec would render now (in case
    // the resource is deleted before its first apply completed).
    let mut kinds = BTreeSet::new();
    let mut namespaces = BTreeSet::new();
    if let Some(k) = p.spec.target.kubernetes() {
        namespaces.insert(k.namespace.clone());
    }
    for k in [
        "ConfigMap",
        "Service",
        "ServiceAccount",
        "PersistentVolumeClaim",
        "Deployment.apps",
        "StatefulSet.apps",
        "DaemonSet.apps",
        "CronJob.batch",
        "NetworkPolicy.networking.k8s.io",
        "PodDisruptionBudget.policy",
    ] {
        kinds.insert(k.to_owned());
    }
    if ctx.manage_namespaces {
        kinds.insert("Namespace".to_owned());
    }
    let deleted = ctx.applier.delete_set(&set, &kinds, &namespaces).await?;
    ctx.metrics.objects_pruned.inc_by(deleted.len() as u64);
    ctx.metrics.count("deleted");
    if let Ok(mut m) = ctx.done.lock() {
        m.remove(&key(p));
    }
    publish(
        ctx,
        p,
        EventType::Normal,
        "Deleted",
        "Prune",
        &format!("{} objects deleted with the Platform", deleted.len()),
    )
    .await;
    Ok(Action::await_change())
}

async fn write_status(
    ctx: &Context,
    ns: &str,
    name: &str,
    status: &PlatformStatus,
) -> Result<(), ReconcileError> {
    let api: Api<PlatformResource> = Api::namespaced(ctx.client.clone(), ns);
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .map(|_| ())
    .map_err(|e| ReconcileError::Status {
        platform: format!("{ns}/{name}"),
        message: kubernetes::describe(&e),
    })
}

/// Record an Event on the Platform; failing to record one never fails the reconcile.
async fn publish(
    ctx: &Context,
    p: &PlatformResource,
    type_: EventType,
    reason: &str,
    action: &str,
    note: &str,
) {
    // Event notes are limited to 1 kB by the API server.
    let note: String = note.chars().take(1000).collect();
    let ev = KubeEvent {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: action.into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&ev, &p.object_ref(&())).await {
        tracing::debug!(error = %e, "cannot record an event");
    }
}
