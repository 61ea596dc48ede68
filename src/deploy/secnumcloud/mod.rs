//! SecNumCloud targets: provision with Terraform or OpenTofu behind the policy gate, then hand
//! the created VMs to the bare-metal driver, or the cluster's kubeconfig to the Kubernetes one.
//!
//! `terraform.rs` runs the tool in the platform's working directory; `driver.rs` is the driver
//! (init, plan, show, the gate on the plan and the backend, apply of exactly the saved plan,
//! outputs); `handover.rs` turns the outputs into the document the next driver deploys;
//! `lifecycle.rs` destroys (the platform handed over, then the cloud's resources) and rolls back.

pub mod driver;
pub mod handover;
pub mod lifecycle;
pub mod terraform;
mod workdir;

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use crate::policy::gate::GateReport;

/// The saved plan's file name in the working directory.
pub const PLAN_FILE: &str = "terroir.tfplan";

#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error("--tf-binary {}: no such file", .0.display())]
    NoSuchTool(PathBuf),
    #[error("--tf-binary {}: not found on PATH", .0.display())]
    NotOnPath(PathBuf),
    #[error(
        "neither `tofu` nor `terraform` is on PATH: install OpenTofu (https://opentofu.org) or Terraform, or name one with --tf-binary"
    )]
    NoTool,
    #[error("{}: cannot run it: {source}", path.display())]
    Unrunnable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Encode {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("--modules {}: no `{provider}` module directory in it", dir.display())]
    NoModule { dir: PathBuf, provider: String },
    #[error("no Terraform module for provider `{0}` in the rendered tree")]
    NoShippedModule(String),
    #[error("`{tool} {what}` failed ({status}):\n{tail}")]
    Run {
        tool: String,
        what: String,
        status: String,
        tail: String,
    },
    #[error("`{tool} {what}` did not print {expected}: {source}")]
    Unreadable {
        tool: String,
        what: &'static str,
        expected: &'static str,
        source: serde_json::Error,
    },
    #[error(
        "the Terraform outputs have no `hosts` map: the provider module must output every VM with its address and roles"
    )]
    NoHostsOutput,
    #[error("output hosts[\"{0}\"] has no address")]
    HostWithoutAddress(String),
    #[error("output hosts[\"{name}\"]: unknown role `{role}`")]
    UnknownRole { name: String, role: String },
    #[error(
        "the Terraform outputs have no `kubeconfig`: the provider module must output the cluster's kubeconfig"
    )]
    NoKubeconfig,
    #[error("`deploy: vms` needs `ssh` settings")]
    NoSsh,
    #[error(
        "the cloud's Terraform state hands no platform over for {platform} (no resources, or outputs naming no host or cluster): there is nothing to reach on it; `terroir apply` provisions and deploys it"
    )]
    NothingHandedOver { platform: String },
}

/// One resource the plan creates, changes or deletes.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub address: String,
    /// `create`, `update`, `delete`, `delete+create`...
    pub actions: String,
}

/// What provisioning did, or would do.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CloudReport {
    pub platform: String,
    /// Whether the plan was applied (a plan never is).
    pub applied: bool,
    /// The saved plan `apply` applies.
    pub plan: PathBuf,
    pub changes: Vec<Change>,
    #[serde(skip)]
    pub gate: GateReport,
    /// Every check of the gate.
    pub findings: Vec<crate::policy::locality::verify::Finding>,
    #[serde(skip)]
    pub document: String,
}

impl CloudReport {
    /// A plan whose gate found a failing check (with `enforcement: warn`) is not clean.
    pub fn ok(&self) -> bool {
        self.gate.failures().next().is_none()
    }

    /// The plan's changes and the gate's summary, for people.
    pub fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(
            out,
            "{} change{} in the plan:",
            self.changes.len(),
            crate::text::plural(self.changes.len())
        )?;
        for c in &self.changes {
            let mark = match c.actions.as_str() {
                "create" => "+",
                "delete" => "-",
                "update" => "~",
                _ => "±",
            };
            writeln!(out, "  {mark} {} ({})", c.address, c.actions)?;
        }
        let passed = self
            .findings
            .iter()
            .filter(|f| f.verdict == crate::policy::locality::verify::Verdict::Pass)
            .count();
        let warns = self.gate.warnings();
        let failed = self.gate.failures().count();
        writeln!(
            out,
            "policy gate: {passed} check{} passed, {warns} warning{}, {failed} failed",
            crate::text::plural(self.findings.len()),
            crate::text::plural(warns)
        )?;
        if !self.applied {
            writeln!(
                out,
                "plan saved in {}; `terroir apply {}` applies exactly this plan once the gate passes",
                self.plan.display(),
                self.document
            )?;
        }
        Ok(())
    }
}
