//! What stops the bare-metal driver as a whole (a host's own failure is in its report).

use crate::pipeline::render::plan::NoPlan;

#[derive(Debug, thiserror::Error)]
pub enum HostsError {
    #[error(transparent)]
    NoPlan(#[from] NoPlan),
    #[error("rendered file {key} does not match its SHA-256 in the plan; refusing to apply")]
    TreeMismatch { key: String },
    #[error("the platform's certificates: {0}")]
    Certificates(#[from] crate::pki::PkiError),
    #[error("this document's target is not bare-metal hosts")]
    NotHosts,
    #[error(transparent)]
    Locked(#[from] super::HostLocked),
    #[error(
        "the restore point before release {release} could not be taken, so no release was switched: {why}"
    )]
    RestorePoint { release: String, why: String },
    #[error(transparent)]
    Site(Box<super::site::SiteError>),
}
