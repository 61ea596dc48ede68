//! Attestations: signed, machine-verifiable evidence of what was rendered and deployed, where,
//! and how it scores against the sovereignty grids buyers use.
//!
//! - `keys`: Ed25519 keys in PKCS#8 / SubjectPublicKeyInfo PEM.
//! - `dsse`: DSSE envelopes signed over the pre-authentication encoding.
//! - `predicate`: the in-toto Statement v1 and its sovereignty-assessment predicate.
//! - `live`: what the running target shows, read back (deployed files or objects, encryption at
//!   rest).
//! - `sign`: the statement signed and written with its reports; `verify` checks it offline.
//! - `report`: the human report (Markdown, self-contained HTML).
//! - `oscal`: the same assessment as an OSCAL assessment-results document.
//! - `ropa`: a draft GDPR Art. 30 record of processing activities.

pub mod dsse;
pub mod erasure;
pub mod keys;
pub mod live;
pub mod oscal;
pub mod predicate;
pub mod report;
pub mod ropa;
pub mod sign;
pub mod verify;

use std::path::PathBuf;

/// Why an attestation could not be made, or does not verify.
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    #[error("{}: cannot read the {what}", path.display())]
    EvidenceRead {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a {what}", path.display())]
    EvidenceSyntax {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: not a {what} (expected kind {kind}, as `terroir {command}` writes it)", path.display())]
    NotEvidence {
        path: PathBuf,
        what: &'static str,
        kind: &'static str,
        command: &'static str,
    },
    #[error("the rendered tree has no valid baremetal/plan.json")]
    NoRenderedPlan,
    #[error("cannot read the deployed files back from the hosts")]
    Hosts(#[source] crate::policy::locality::hostfacts::ProbeError),
    #[error("cannot read the deployed objects back from the cluster")]
    Cluster(#[source] crate::deploy::kubernetes::ClusterError),
    #[error("cannot encode the statement")]
    Encode(#[source] serde_json::Error),
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {}", path.display())]
    AttestationRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: not a DSSE envelope", path.display())]
    NotAnEnvelope {
        path: PathBuf,
        line: usize,
        column: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}", path.display())]
    Signature {
        path: PathBuf,
        #[source]
        source: dsse::EnvelopeError,
    },
    #[error("the signed payload is not an in-toto Statement")]
    NotAStatement(#[source] serde_json::Error),
    #[error(
        "the payload is neither a terroir sovereignty assessment nor an erasure record (predicateType {predicate_type})"
    )]
    NotAnAssessment { predicate_type: String },
    #[error("the payload's predicate is not an erasure record as `terroir destroy` writes it")]
    NotAnErasureRecord(#[source] serde_json::Error),
    #[error(
        "--against {}: an erasure record attests no rendered tree (only an assessment by `terroir attest` does)", .0.display()
    )]
    NoTreeInAnErasure(PathBuf),
}

impl AttestError {
    pub fn kind(&self) -> &'static str {
        match self {
            AttestError::EvidenceRead { .. }
            | AttestError::EvidenceSyntax { .. }
            | AttestError::NotEvidence { .. } => "evidence",
            AttestError::NoRenderedPlan | AttestError::Hosts(_) | AttestError::Cluster(_) => "live",
            AttestError::Encode(_)
            | AttestError::Write { .. }
            | AttestError::AttestationRead { .. } => "attestation",
            AttestError::NotAnEnvelope { .. }
            | AttestError::Signature { .. }
            | AttestError::NotAStatement(_)
            | AttestError::NotAnAssessment { .. }
            | AttestError::NotAnErasureRecord(_) => "invalid-attestation",
            AttestError::NoTreeInAnErasure(_) => "usage",
        }
    }

    /// An attestation that does not verify is `valid: false` for scripts, as a verified one is
    /// `valid: true`.
    pub fn details(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut details = serde_json::Map::new();
        if self.kind() == "invalid-attestation" {
            details.insert("valid".into(), false.into());
        }
        details
    }
}
