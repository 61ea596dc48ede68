//! Drivers that change real targets from a rendered tree: bare-metal hosts over SSH, Kubernetes
//! clusters through server-side apply, SecNumCloud clouds through Terraform or OpenTofu.

pub mod baremetal;
pub mod kubernetes;
pub mod secnumcloud;
