//! The error a command ends with, and the one mapping of outcomes to exit statuses:
//! 0 success, 1 invalid input or usage, 2 a check or a target failed.
//!
//! Each domain keeps its own error type (with its sources); this enum only gathers them, so that
//! the printer can say any of them the same way.

use crate::attest::AttestError;
use crate::audit::AuditError;
use crate::backup::error::BackupError;
use crate::continuity::drill::ContinuityError;
use crate::deploy::DeployError;
use crate::deploy::baremetal::driver::HostsError;
use crate::deploy::baremetal::health::SwitchoverError;
use crate::deploy::baremetal::site::SiteError;
use crate::deploy::kubernetes::ClusterError;
use crate::deploy::secnumcloud::CloudError;
use crate::document::Diagnostic;
use crate::policy::assess::AssessError;
use crate::policy::locality::geodata::GeodataError;
use crate::policy::locality::locate::LocateError;
use crate::reversibility::{ExportDefect, ReversibilityError};

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Success,
    /// Invalid input or usage (exit 1).
    Invalid,
    /// A check or a target failed (exit 2).
    Failed,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Invalid => 1,
            ExitStatus::Failed => 2,
        }
    }

    /// Success when `ok`, else a failed check.
    pub fn checked(ok: bool) -> Self {
        if ok {
            ExitStatus::Success
        } else {
            ExitStatus::Failed
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Document(#[from] crate::document::Invalid),
    #[error(transparent)]
    Blueprint(#[from] crate::pipeline::blueprint::BlueprintError),
    #[error(transparent)]
    Render(#[from] crate::pipeline::render::RenderError),
    #[error(transparent)]
    Deploy(#[from] crate::deploy::DeployError),
    #[error(transparent)]
    Site(#[from] SiteError),
    #[error(transparent)]
    Switchover(#[from] crate::deploy::baremetal::health::SwitchoverError),
    #[error(transparent)]
    Continuity(#[from] crate::continuity::drill::ContinuityError),
    #[error(transparent)]
    Reversibility(#[from] ReversibilityError),
    #[error(transparent)]
    Backup(#[from] BackupError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretError),
    #[error(transparent)]
    ClusterSecrets(#[from] crate::secrets::kubernetes::ClusterSecretError),
    #[error(transparent)]
    Geodata(#[from] crate::policy::locality::geodata::GeodataError),
    #[error(transparent)]
    Smoke(#[from] crate::smoke::SmokeError),
    #[error(transparent)]
    Operator(#[from] crate::operator::OperatorError),
    #[error(transparent)]
    Key(#[from] crate::attest::keys::KeyError),
    #[error(transparent)]
    Attest(#[from] crate::attest::AttestError),
    #[error(transparent)]
    Assess(#[from] crate::policy::assess::AssessError),
    #[error(transparent)]
    Locate(#[from] crate::policy::locality::locate::LocateError),
    #[error(transparent)]
    Pin(#[from] crate::document::pin::ImagePinError),
    /// The command line asks for something that cannot be done as asked.
    #[error("{message}")]
    Usage { message: String },
    #[error("cannot write the output: {0}")]
    Output(#[source] std::io::Error),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

impl Error {
    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage {
            message: message.into(),
        }
    }

    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Error::Document(_) | Error::Blueprint(_) | Error::Usage { .. } | Error::Pin(_) => {
                ExitStatus::Invalid
            }
            // the document, its blueprint or the output directory: what the user gave
            Error::Render(_) => ExitStatus::Invalid,
            Error::Deploy(e) => e.exit_status(),
            Error::Site(e) => e.exit_status(),
            Error::Switchover(e) => match e {
                SwitchoverError::Site(e) => e.exit_status(),
                SwitchoverError::NotReplicated { .. }
                | SwitchoverError::UnknownMember { .. }
                | SwitchoverError::AlreadyPrimary { .. } => ExitStatus::Invalid,
                _ => ExitStatus::Failed,
            },
            Error::Continuity(e) => match e {
                ContinuityError::Site(e) => e.exit_status(),
                ContinuityError::Write { .. } => ExitStatus::Failed,
                _ => ExitStatus::Invalid,
            },
            Error::Reversibility(e) => e.exit_status(),
            Error::Backup(e) => e.exit_status(),
            Error::Audit(e) => e.exit_status(),
            // a refused rotation or an unreachable cluster alike: the user's to fix (as always)
            Error::Secrets(_) | Error::ClusterSecrets(_) => ExitStatus::Invalid,
            Error::Geodata(e) => e.exit_status(),
            Error::Attest(e) => e.exit_status(),
            Error::Assess(e) => e.exit_status(),
            Error::Locate(e) => e.exit_status(),
            Error::Smoke(_) | Error::Key(_) => ExitStatus::Invalid,
            Error::Operator(_) => ExitStatus::Failed,
            Error::Output(_) | Error::Runtime(_) => ExitStatus::Failed,
            Error::Write { .. } => ExitStatus::Invalid,
        }
    }

    /// A short name of the kind of failure, for scripts (`kind` in the JSON error).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Document(_) => "invalid-document",
            Error::Blueprint(_) => "blueprint",
            Error::Render(_) => "render",
            Error::Deploy(e) => e.kind(),
            Error::Site(e) => e.kind(),
            Error::Switchover(SwitchoverError::Site(e)) => e.kind(),
            Error::Switchover(_) => "switchover",
            Error::Continuity(ContinuityError::Site(e)) => e.kind(),
            Error::Continuity(_) => "continuity",
            Error::Reversibility(e) => e.kind(),
            Error::Backup(e) => e.kind(),
            Error::Audit(e) => e.kind(),
            Error::Secrets(_) | Error::ClusterSecrets(_) => "secrets",
            Error::Geodata(e) => e.kind(),
            Error::Attest(e) => e.kind(),
            Error::Assess(e) => e.kind(),
            Error::Locate(e) => e.kind(),
            Error::Smoke(_) => "smoke-app",
            Error::Pin(_) => "images",
            Error::Operator(_) => "operator",
            Error::Key(_) => "key",
            Error::Usage { .. } => "usage",
            Error::Output(_) | Error::Write { .. } => "output",
            Error::Runtime(_) => "runtime",
        }
    }

    /// The document's diagnostics and its text, when the error is an invalid document.
    pub fn diagnostics(&self) -> Option<(&[Diagnostic], Option<&str>)> {
        match self {
            Error::Document(e)
            | Error::Site(SiteError::Document(e))
            | Error::Assess(crate::policy::assess::AssessError::Document(e)) => {
                Some((&e.diagnostics, e.text.as_deref()))
            }
            Error::Render(crate::pipeline::render::RenderError::Invalid(d))
            | Error::Deploy(crate::deploy::DeployError::Render(
                crate::pipeline::render::RenderError::Invalid(d),
            ))
            | Error::Assess(crate::policy::assess::AssessError::Render(
                crate::pipeline::render::RenderError::Invalid(d),
            )) => Some((d, None)),
            _ => None,
        }
    }

    /// What to do next, when the error alone does not say it.
    pub fn hints(&self) -> Vec<String> {
        match self {
            Error::Deploy(e) => e.hints(),
            _ => Vec::new(),
        }
    }

    /// Facts particular to the failure, for scripts.
    pub fn details(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut details = match self {
            Error::Deploy(e) => e.details(),
            Error::Geodata(e) => e.details(),
            Error::Attest(e) => e.details(),
            Error::Locate(e) => e.details(),
            _ => serde_json::Map::new(),
        };
        // a failure on a host: which one, what ran there, and how it ended
        if let Some(SiteError::Remote {
            host,
            what,
            status,
            output,
        }) = self.site()
        {
            details.insert("remote".into(), serde_json::json!({ "host": host, "command": what, "status": status, "output": output }));
        } else if let Some(SiteError::Connect { host, .. } | SiteError::Ssh { host, .. }) =
            self.site()
        {
            details.insert("remote".into(), serde_json::json!({ "host": host }));
        }
        details
    }

    /// The bare-metal session's failure inside any domain's error.
    fn site(&self) -> Option<&SiteError> {
        match self {
            Error::Site(e)
            | Error::Switchover(SwitchoverError::Site(e))
            | Error::Reversibility(ReversibilityError::Site(e))
            | Error::Backup(BackupError::Site(e))
            | Error::Audit(AuditError::Site(e)) => Some(e),
            Error::Backup(BackupError::RestoreFailed { source, .. }) => Some(source),
            _ => None,
        }
    }
}

// What each domain's failures mean for the exit status and for scripts: said here, beside the one
// mapping, so that the domains need not know the command line's statuses.

impl SiteError {
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            SiteError::Document(_)
            | SiteError::Render(_)
            | SiteError::Read { .. }
            | SiteError::NotBareMetal { .. }
            | SiteError::Plan { .. }
            | SiteError::UnknownHost { .. } => ExitStatus::Invalid,
            SiteError::Connect { .. } | SiteError::Ssh { .. } | SiteError::Remote { .. } => {
                ExitStatus::Failed
            }
            // another run holds the platform: this one stops at once
            SiteError::Locked(_) => ExitStatus::Invalid,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            SiteError::Document(_) => "invalid-document",
            SiteError::Render(_) | SiteError::Plan { .. } => "render",
            SiteError::Read { .. } | SiteError::UnknownHost { .. } => "invalid-input",
            SiteError::NotBareMetal { .. } => "unsupported-target",
            SiteError::Connect { .. } | SiteError::Ssh { .. } => "unreachable",
            SiteError::Remote { .. } => "remote-command",
            SiteError::Locked(_) => "locked",
        }
    }
}

impl ReversibilityError {
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            ReversibilityError::Site(e) => e.exit_status(),
            ReversibilityError::Cluster(e) => e.exit_status(),
            ReversibilityError::Recipient { .. }
            | ReversibilityError::RecipientsLine { .. }
            | ReversibilityError::ExportExists { .. }
            | ReversibilityError::NoExport { .. }
            | ReversibilityError::NoIdentity { .. }
            | ReversibilityError::Decrypt { .. }
            | ReversibilityError::SharedHosts { .. }
            | ReversibilityError::NoHostWithRole { .. }
            | ReversibilityError::NoDatabase { .. }
            | ReversibilityError::NoTenant { .. }
            | ReversibilityError::Given { .. } => ExitStatus::Invalid,
            ReversibilityError::Defect(_) | ReversibilityError::HoldsData { .. } => {
                ExitStatus::Failed
            }
            ReversibilityError::Read { .. }
            | ReversibilityError::Write { .. }
            | ReversibilityError::Dump { .. }
            | ReversibilityError::Snapshot { .. }
            | ReversibilityError::Secrets(_)
            | ReversibilityError::Encrypt { .. }
            | ReversibilityError::Digests { .. }
            | ReversibilityError::Pod { .. }
            | ReversibilityError::Panicked { .. } => ExitStatus::Failed,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            ReversibilityError::Site(e) => e.kind(),
            ReversibilityError::Cluster(e) => e.kind(),
            ReversibilityError::Defect(ExportDefect::Altered { .. }) => "export-altered",
            ReversibilityError::Defect(ExportDefect::Missing { .. }) => "export-incomplete",
            ReversibilityError::Defect(_) | ReversibilityError::HoldsData { .. } => "refused",
            e if e.exit_status() == ExitStatus::Invalid => "invalid-input",
            _ => "failed",
        }
    }
}

impl crate::reversibility::cluster::ClusterPlatformError {
    pub fn exit_status(&self) -> ExitStatus {
        use crate::reversibility::cluster::ClusterPlatformError as E;
        match self {
            E::NoWorkload { .. } | E::SameNamespace { .. } => ExitStatus::Invalid,
            E::Connect { .. }
            | E::Runtime(_)
            | E::NoPod { .. }
            | E::ReplicasDown { .. }
            | E::Api { .. } => ExitStatus::Failed,
        }
    }

    pub fn kind(&self) -> &'static str {
        use crate::reversibility::cluster::ClusterPlatformError as E;
        match self {
            E::NoWorkload { .. } | E::SameNamespace { .. } => "invalid-input",
            E::Connect { .. } | E::Api { .. } => "unreachable",
            E::NoPod { .. } | E::ReplicasDown { .. } => "not-deployed",
            E::Runtime(_) => "failed",
        }
    }
}

impl BackupError {
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            BackupError::Site(e) => e.exit_status(),
            BackupError::Render(_)
            | BackupError::NoBackups { .. }
            | BackupError::NoManagedDatabase { .. }
            | BackupError::NoDatabaseHost { .. }
            | BackupError::Time { .. }
            | BackupError::MajorVersion { .. }
            | BackupError::MissingSecret { .. }
            | BackupError::Secret { .. }
            | BackupError::IntoOnCluster
            | BackupError::ReplicatedOnCluster { .. }
            | BackupError::Connect { .. } => ExitStatus::Invalid,
            _ => ExitStatus::Failed,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            BackupError::Site(e) => e.kind(),
            BackupError::Render(_) => "render",
            BackupError::Connect { .. } => "unreachable",
            BackupError::EmptyRepository { .. }
            | BackupError::OutsideWindow { .. }
            | BackupError::WouldRewind { .. }
            | BackupError::WouldRewindCluster { .. }
            | BackupError::HoldsData { .. }
            | BackupError::NotApplied { .. }
            | BackupError::NoVolume { .. }
            | BackupError::CheckFailed { .. } => "refused",
            e if e.exit_status() == ExitStatus::Invalid => "invalid-input",
            _ => "failed",
        }
    }
}

impl AuditError {
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            AuditError::Site(e) => e.exit_status(),
            AuditError::UnknownHost { .. } => ExitStatus::Invalid,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            AuditError::Site(e) => e.kind(),
            AuditError::UnknownHost { .. } => "invalid-input",
        }
    }
}

impl ClusterError {
    /// The cluster cannot be reached as configured, or what was rendered cannot be read: the
    /// input is at fault (exit 1). Everything else happened on the cluster (exit 2).
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            ClusterError::Kubeconfig { .. }
            | ClusterError::NoConfig(_)
            | ClusterError::Client(_)
            | ClusterError::Manifest { .. }
            | ClusterError::NotAClusterTarget
            | ClusterError::NotRotated { .. } => ExitStatus::Invalid,
            _ => ExitStatus::Failed,
        }
    }
}

impl DeployError {
    pub fn exit_status(&self) -> ExitStatus {
        use ExitStatus::{Failed, Invalid};
        match self {
            DeployError::Render(_)
            | DeployError::Locked(_)
            | DeployError::WrongTarget { .. }
            | DeployError::NotForTheOperator(_)
            | DeployError::Unsupported { .. }
            | DeployError::Release(_) => Invalid,
            DeployError::Policy { .. } | DeployError::Plan(_) | DeployError::NoFinalCopy { .. } => {
                Failed
            }
            DeployError::Hosts(e) => e.exit_status(),
            DeployError::Cluster(e) => e.exit_status(),
            DeployError::Cloud(e) => e.exit_status(),
        }
    }
}

impl HostsError {
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            // another run holds the platform: this one stops at once, as at the lock file
            HostsError::NoPlan(_)
            | HostsError::TreeMismatch { .. }
            | HostsError::NotHosts
            | HostsError::Locked(_) => ExitStatus::Invalid,
            HostsError::Certificates(_) | HostsError::RestorePoint { .. } => ExitStatus::Failed,
            HostsError::Site(e) => e.exit_status(),
        }
    }
}

impl CloudError {
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            CloudError::NoSuchTool(_)
            | CloudError::NotOnPath(_)
            | CloudError::NoTool
            | CloudError::Unrunnable { .. }
            | CloudError::NoModule { .. }
            | CloudError::NoShippedModule(_)
            | CloudError::NoSsh => ExitStatus::Invalid,
            _ => ExitStatus::Failed,
        }
    }
}

impl LocateError {
    pub fn exit_status(&self) -> ExitStatus {
        // a name or the geodata directory: what the user gave
        ExitStatus::Invalid
    }
}

impl GeodataError {
    /// A download that does not match its registry's integrity hash is a failed check; the rest
    /// is about what the user gave (a directory, a file, a registry).
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            GeodataError::Integrity { .. } => ExitStatus::Failed,
            GeodataError::Incomplete { source, .. }
            | GeodataError::UnusableTarball { source, .. } => source.exit_status(),
            _ => ExitStatus::Invalid,
        }
    }
}

impl AssessError {
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            AssessError::Geodata(e) => e.exit_status(),
            // what the user gave: the document, a flag, a file, a kubeconfig
            AssessError::Document(_)
            | AssessError::Pin(_)
            | AssessError::Render(_)
            | AssessError::PlanRead { .. }
            | AssessError::PlanSyntax { .. }
            | AssessError::NotAPlan { .. }
            | AssessError::LiveOnCloud
            | AssessError::Connect(_) => ExitStatus::Invalid,
            AssessError::Cluster(_) => ExitStatus::Failed,
        }
    }
}

impl AttestError {
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            // what the user gave cannot be read
            AttestError::EvidenceRead { .. }
            | AttestError::EvidenceSyntax { .. }
            | AttestError::NotEvidence { .. }
            | AttestError::AttestationRead { .. }
            | AttestError::NoTreeInAnErasure(_) => ExitStatus::Invalid,
            // the target, the output, or the attestation itself failed its check
            AttestError::NoRenderedPlan
            | AttestError::Hosts(_)
            | AttestError::Cluster(_)
            | AttestError::Encode(_)
            | AttestError::Write { .. }
            | AttestError::NotAnEnvelope { .. }
            | AttestError::Signature { .. }
            | AttestError::NotAStatement(_)
            | AttestError::NotAnAssessment { .. }
            | AttestError::NotAnErasureRecord(_) => ExitStatus::Failed,
        }
    }
}
