//! The SecNumCloud driver: Terraform or OpenTofu behind the policy gate, then the hand-over.

use std::path::PathBuf;

use super::terraform::{self, Runner};
use super::workdir::{initialised, parse, target};
use super::{Change, CloudReport, PLAN_FILE};
use crate::deploy::{DeployError, Driven, Driver, Mode, Outcome, Status, Work};

use crate::policy::gate::{Evidence, TerraformPlan};

/// The command line's flags for clouds.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The Terraform or OpenTofu binary (default: `tofu`, else `terraform`, on PATH).
    pub tf_binary: Option<PathBuf>,
    /// Provider modules to use instead of the shipped ones (`DIR/<provider>`).
    pub modules: Option<PathBuf>,
    /// `init -backend-config=` values.
    pub backend_config: Vec<String>,
}

/// SecNumCloud-qualified clouds.
pub struct Cloud;

impl Driver for Cloud {
    async fn plan(&self, work: &Work<'_>) -> Result<Driven, DeployError> {
        tokio::task::block_in_place(|| provision(work))
            .map(|(report, _)| Driven::Done(Outcome::Cloud(report)))
    }

    async fn apply(&self, work: &Work<'_>) -> Result<Driven, DeployError> {
        let (report, next) = tokio::task::block_in_place(|| provision(work))?;
        match next {
            Some(next) => Ok(Driven::HandOver {
                cloud: report,
                next: Box::new(next),
            }),
            None => Ok(Driven::Done(Outcome::Cloud(report))),
        }
    }

    async fn status(&self, work: &Work<'_>) -> Result<Status, DeployError> {
        // what Terraform would still change; the platform on top is the next driver's
        let (report, _) = tokio::task::block_in_place(|| {
            provision(&Work {
                mode: Mode::Plan,
                ..*work
            })
        })?;
        let pending: Vec<String> = report
            .changes
            .iter()
            .map(|c| format!("{} ({})", c.address, c.actions))
            .collect();
        Ok(Status {
            ready: pending.is_empty(),
            pending,
        })
    }
}

/// init, plan, show, the gate; in apply mode, apply exactly the saved plan and read the outputs
/// into the document the next driver deploys.
fn provision(
    work: &Work<'_>,
) -> Result<(CloudReport, Option<crate::document::Loaded>), DeployError> {
    let sc = target(work)?;
    let doc = work.document_path();
    let (tool, dir) = initialised(work, sc)?;
    let runner = Runner {
        tool: &tool,
        dir: &dir,
        events: work.events,
    };
    let plan_args: Vec<String> = [
        "plan",
        "-input=false",
        "-no-color",
        "-lock-timeout=60s",
        &format!("-out={PLAN_FILE}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    runner.run(&plan_args, false)?;
    let shown = runner.run(&["show".into(), "-json".into(), PLAN_FILE.into()], true)?;
    let plan = parse(&tool, "show -json", "a plan", &shown)?;

    // The gate: the declarations, every resource the plan creates or changes, and the backend
    // init configured.
    let images: Vec<String> = work.resolved.images.values().cloned().collect();
    let geo = crate::policy::locality::geodata::GeoDb::open(None).ok();
    let evidence = Evidence {
        geo: geo.as_ref(),
        terraform: Some(TerraformPlan {
            plan: &plan,
            backend: terraform::configured_backend(&dir),
        }),
    };
    let gate = crate::policy::gate::gate(&work.loaded.platform, &images, &evidence)?;
    let changes = terraform::changes(&plan)
        .into_iter()
        .map(|(address, actions)| Change { address, actions })
        .collect::<Vec<_>>();
    work.events.gate(&gate);
    if gate.blocks() {
        // what was refused, for people, before the error that says why
        work.events.note(&format!(
            "{} change{} in the plan, none applied:",
            changes.len(),
            crate::text::plural(changes.len())
        ));
        for c in &changes {
            work.events
                .note(&format!("  {} ({})", c.address, c.actions));
        }
        return Err(DeployError::Policy {
            report: Box::new(gate),
            document: doc.display().to_string(),
        });
    }
    let mut report = CloudReport {
        platform: work.resolved.platform.name.clone(),
        applied: false,
        plan: dir.join(PLAN_FILE),
        changes,
        findings: gate.findings.clone(),
        gate,
        document: doc.display().to_string(),
    };
    if work.mode == Mode::Plan {
        return Ok((report, None));
    }

    // Apply exactly the saved plan, then hand the outputs to the next stage.
    runner.run(
        &[
            "apply".into(),
            "-input=false".into(),
            "-no-color".into(),
            "-lock-timeout=60s".into(),
            PLAN_FILE.into(),
        ],
        false,
    )?;
    let outputs = parse(
        &tool,
        "output -json",
        "the outputs",
        &runner.run(&["output".into(), "-json".into()], true)?,
    )?;
    report.applied = true;
    let next = super::handover::handover(work.loaded, sc, &outputs, &dir)?;
    Ok((report, Some(next)))
}
