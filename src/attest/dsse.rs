//! DSSE envelopes (github.com/secure-systems-lab/dsse): the payload, its type, and Ed25519
//! signatures over the pre-authentication encoding
//! `DSSEv1 <len(type)> <type> <len(payload)> <payload>`.

use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Base64 (standard alphabet, padded) of the payload bytes.
    pub payload: String,
    pub payload_type: String,
    pub signatures: Vec<EnvelopeSignature>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub keyid: String,
    /// Base64 of the signature bytes.
    pub sig: String,
}

/// The pre-authentication encoding DSSE signs.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

pub fn sign(payload: &[u8], key: &SigningKey, keyid: &str) -> Envelope {
    let sig = key.sign(&pae(PAYLOAD_TYPE, payload));
    let b64 = base64::engine::general_purpose::STANDARD;
    Envelope {
        payload: b64.encode(payload),
        payload_type: PAYLOAD_TYPE.into(),
        signatures: vec![EnvelopeSignature {
            keyid: keyid.into(),
            sig: b64.encode(sig.to_bytes()),
        }],
    }
}

/// Why an envelope does not verify.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("payloadType is {found:?}, expected {PAYLOAD_TYPE:?}")]
    PayloadType { found: String },
    #[error("the payload is not valid base64")]
    Payload(#[source] base64::DecodeError),
    #[error("the envelope has no signature")]
    Unsigned,
    #[error(
        "the signature does not match: the payload or the signature was altered, or another key signed it ({})",
        problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    Mismatch { problems: Vec<SignatureProblem> },
}

/// Why one signature of an envelope was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SignatureProblem {
    #[error("signature {keyid:?} is not valid base64: {source}")]
    NotBase64 {
        keyid: String,
        #[source]
        source: base64::DecodeError,
    },
    #[error("signature {keyid:?} is not 64 bytes")]
    WrongLength { keyid: String },
    #[error("signature {keyid:?} does not verify with this public key")]
    OtherKeyOrAltered { keyid: String },
}

/// Check that one signature verifies with `key`; returns the payload bytes.
pub fn verify(env: &Envelope, key: &VerifyingKey) -> Result<Vec<u8>, EnvelopeError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    if env.payload_type != PAYLOAD_TYPE {
        return Err(EnvelopeError::PayloadType {
            found: env.payload_type.clone(),
        });
    }
    let payload = b64.decode(&env.payload).map_err(EnvelopeError::Payload)?;
    if env.signatures.is_empty() {
        return Err(EnvelopeError::Unsigned);
    }
    let message = pae(&env.payload_type, &payload);
    let mut problems = Vec::new();
    for s in &env.signatures {
        let keyid = s.keyid.clone();
        let bytes = match b64.decode(&s.sig) {
            Ok(b) => b,
            Err(source) => {
                problems.push(SignatureProblem::NotBase64 { keyid, source });
                continue;
            }
        };
        let Ok(sig) = Signature::from_slice(&bytes) else {
            problems.push(SignatureProblem::WrongLength { keyid });
            continue;
        };
        if key.verify(&message, &sig).is_ok() {
            return Ok(payload);
        }
        problems.push(SignatureProblem::OtherKeyOrAltered { keyid });
    }
    Err(EnvelopeError::Mismatch { problems })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_specification_example() {
        // From the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn a_signed_envelope_verifies_and_a_flipped_byte_does_not() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let env = sign(b"{\"a\":1}", &key, "k");
        assert_eq!(verify(&env, &key.verifying_key()).unwrap(), b"{\"a\":1}");
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut tampered = env.clone();
        tampered.payload = b64.encode(b"{\"a\":2}");
        let e = verify(&tampered, &key.verifying_key()).unwrap_err();
        assert!(
            matches!(&e, EnvelopeError::Mismatch { problems } if matches!(problems[..], [SignatureProblem::OtherKeyOrAltered { .. }])),
            "{e}"
        );
        assert!(e.to_string().contains("signature does not match"), "{e}");
        let other = SigningKey::from_bytes(&[8u8; 32]);
        assert!(verify(&env, &other.verifying_key()).is_err());
    }

    #[test]
    fn an_envelope_without_a_usable_signature_says_why() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let env = sign(b"{}", &key, "k");
        let unsigned = Envelope {
            signatures: Vec::new(),
            ..env.clone()
        };
        assert!(matches!(
            verify(&unsigned, &key.verifying_key()),
            Err(EnvelopeError::Unsigned)
        ));
        let other_type = Envelope {
            payload_type: "text/plain".into(),
            ..env.clone()
        };
        assert!(matches!(
            verify(&other_type, &key.verifying_key()),
            Err(EnvelopeError::PayloadType { .. })
        ));
        let short = Envelope {
            signatures: vec![EnvelopeSignature {
                keyid: "k".into(),
                sig: "AAAA".into(),
            }],
            ..env
        };
        let e = verify(&short, &key.verifying_key()).unwrap_err();
        assert!(e.to_string().contains("\"k\" is not 64 bytes"), "{e}");
    }
}
