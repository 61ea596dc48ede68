//! Drivers that change real targets from a rendered tree: bare-metal hosts over SSH, Kubernetes
//! clusters through server-side apply, SecNumCloud clouds through Terraform or OpenTofu.

pub mod baremetal;
pub mod kubernetes;
pub mod lock;
pub mod secnumcloud;

/// What a run does to the target: `plan` changes nothing and says what `apply` would change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Plan,
    Apply,
}
