//! The erasure record `terroir destroy` writes: an in-toto Statement whose predicate says what
//! was removed, where and when, what was kept and why, and the export or backup it follows,
//! signed in a DSSE envelope as attestations are.

use ed25519_dalek::SigningKey;
use serde_json::{Value, json};

use super::{dsse, keys, predicate};
use crate::lifecycle::destroy::Erasure;

pub const PREDICATE_TYPE: &str = "https://terroir.eu/attestation/erasure/v1";

/// The statement's subjects: the sealing files of the export the erasure follows (by digest),
/// else the platform itself, named by the digest of the record.
pub fn subjects(record: &Erasure, predicate: &Value) -> Vec<Value> {
    match &record.follows {
        Some(copy) if !copy.digests.is_empty() => copy
            .digests
            .iter()
            .map(|(name, sha)| {
                json!({"name": format!("{}://{}/{name}", copy.kind, copy.location), "digest": {"sha256": sha}})
            })
            .collect(),
        _ => {
            let bytes = serde_json::to_vec(predicate).unwrap_or_default();
            vec![json!({
                "name": format!("platform://{}", record.platform),
                "digest": {"sha256": crate::text::sha256_hex(&bytes)},
            })]
        }
    }
}

/// The record, signed with `key`.
pub fn sign(record: &Erasure, key: &SigningKey) -> Result<dsse::Envelope, serde_json::Error> {
    let predicate = serde_json::to_value(record)?;
    let mut statement = predicate::statement(subjects(record, &predicate), predicate);
    statement["predicateType"] = PREDICATE_TYPE.into();
    let payload = serde_json::to_vec(&statement)?;
    Ok(dsse::sign(
        &payload,
        key,
        &keys::key_id(&key.verifying_key()),
    ))
}
