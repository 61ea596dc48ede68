//! What a plan or an apply did on each host, step by step: the JSON of `terroir plan|apply
//! --output json`, and the events a progress printer shows while hosts converge.

use serde::Serialize;

use crate::pipeline::render::plan::HostPlan;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum StepStatus {
    Unchanged,
    /// Changed (apply) or would change (plan).
    Changed,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepReport {
    pub id: String,
    pub status: StepStatus,
    /// What differs or what was done.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostReport {
    pub name: String,
    pub address: String,
    pub changed: usize,
    pub unchanged: usize,
    pub failed: usize,
    /// Why the host could not be converged at all (unreachable, host key, sudo...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: u64,
    pub steps: Vec<StepReport>,
}

impl HostReport {
    pub fn new(host: &HostPlan) -> Self {
        HostReport {
            name: host.name.clone(),
            address: host.address.clone(),
            changed: 0,
            unchanged: 0,
            failed: 0,
            error: None,
            duration_ms: 0,
            steps: Vec::new(),
        }
    }

    /// Record one step's outcome.
    pub fn push(&mut self, id: &str, status: StepStatus, detail: impl Into<String>) {
        match status {
            StepStatus::Unchanged => self.unchanged += 1,
            StepStatus::Changed => self.changed += 1,
            StepStatus::Failed => self.failed += 1,
        }
        self.steps.push(StepReport {
            id: id.to_owned(),
            status,
            detail: detail.into(),
        });
    }

    pub fn ok(&self) -> bool {
        self.error.is_none() && self.failed == 0
    }
}

/// Progress for people: one call per host event.
pub trait Progress: Sync {
    fn host_started(&self, host: &str);
    fn step(&self, host: &str, step: &StepReport);
    fn host_finished(&self, report: &HostReport);
}
