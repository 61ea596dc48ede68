//! Attestations: signed, machine-verifiable evidence of what was rendered and deployed, where,
//! and how it scores against the sovereignty grids buyers use.
//!
//! - `keys`: Ed25519 keys in PKCS#8 / SubjectPublicKeyInfo PEM.
//! - `dsse`: DSSE envelopes signed over the pre-authentication encoding.
//! - `predicate`: the in-toto Statement v1 and its sovereignty-assessment predicate.
//! - `report`: the human report (Markdown, self-contained HTML).
//! - `oscal`: the same assessment as an OSCAL assessment-results document.
//! - `ropa`: a draft GDPR Art. 30 record of processing activities.

pub mod dsse;
pub mod keys;
pub mod oscal;
pub mod predicate;
pub mod report;
pub mod ropa;
