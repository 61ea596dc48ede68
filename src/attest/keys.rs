//! Ed25519 signing keys in the formats standard tools read: the private key as PKCS#8 PEM
//! (written with mode 0600), the public key as SubjectPublicKeyInfo PEM.

use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{}: cannot read the key", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: cannot write the key", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: no randomness to generate a key from", path.display())]
    Randomness {
        path: PathBuf,
        #[source]
        source: getrandom::Error,
    },
    #[error("{}: cannot encode the public key", path.display())]
    Encode {
        path: PathBuf,
        #[source]
        source: ed25519_dalek::pkcs8::spki::Error,
    },
    #[error("{}: not an Ed25519 private key (PKCS#8) in PEM", path.display())]
    PrivateFormat {
        path: PathBuf,
        #[source]
        source: ed25519_dalek::pkcs8::Error,
    },
    #[error("{}: not an Ed25519 public key (SubjectPublicKeyInfo) in PEM", path.display())]
    PublicFormat {
        path: PathBuf,
        #[source]
        source: ed25519_dalek::pkcs8::spki::Error,
    },
    #[error("{0} exists; remove it or choose another --out (keys are never overwritten)")]
    Exists(PathBuf),
}

/// `KEY.pub` beside `KEY`.
pub fn public_path(private: &Path) -> PathBuf {
    let mut s = private.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

/// Generate a key pair; refuses to overwrite either file.
pub fn generate(out: &Path) -> Result<(PathBuf, String), KeyError> {
    let public = public_path(out);
    for p in [out, public.as_path()] {
        if p.exists() {
            return Err(KeyError::Exists(p.to_owned()));
        }
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|source| KeyError::Randomness {
        path: out.to_owned(),
        source,
    })?;
    let key = SigningKey::from_bytes(&seed);
    let private_pem = pkcs8_v1_pem(&key);
    let public_pem = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|source| KeyError::Encode {
            path: public.clone(),
            source,
        })?;
    {
        use std::os::unix::fs::OpenOptionsExt;
        let err = |source: std::io::Error| KeyError::Write {
            path: out.to_owned(),
            source,
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(out)
            .map_err(err)?;
        f.write_all(private_pem.as_bytes()).map_err(err)?;
    }
    std::fs::write(&public, public_pem.as_bytes()).map_err(|source| KeyError::Write {
        path: public.clone(),
        source,
    })?;
    Ok((public, key_id(&key.verifying_key())))
}

/// PKCS#8 v1 (RFC 8410, no embedded public key): what OpenSSL, Python's cryptography and Go read.
/// (The v2 form with the public key is refused by several of them.)
fn pkcs8_v1_pem(key: &SigningKey) -> String {
    use base64::Engine as _;
    // SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING seed } }
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&key.to_bytes());
    let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(chunk));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    pem
}

/// A short stable identifier of a public key: `ed25519:` and the first 16 hex digits of the
/// SHA-256 of its raw bytes.
pub fn key_id(key: &VerifyingKey) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(key.as_bytes());
    format!("ed25519:{}", crate::text::hex(&d[..8]))
}

pub fn read_private(path: &Path) -> Result<SigningKey, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_owned(),
        source,
    })?;
    SigningKey::from_pkcs8_pem(&text).map_err(|source| KeyError::PrivateFormat {
        path: path.to_owned(),
        source,
    })
}

pub fn read_public(path: &Path) -> Result<VerifyingKey, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_owned(),
        source,
    })?;
    VerifyingKey::from_public_key_pem(&text).map_err(|source| KeyError::PublicFormat {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_generated_pair_reads_back_and_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("key");
        let (public, id) = generate(&out).unwrap();
        assert_eq!(public, dir.path().join("key.pub"));
        let private = read_private(&out).unwrap();
        assert_eq!(read_public(&public).unwrap(), private.verifying_key());
        assert_eq!(id, key_id(&private.verifying_key()));
        assert!(
            id.starts_with("ed25519:") && id.len() == "ed25519:".len() + 16,
            "{id}"
        );
        assert!(matches!(generate(&out), Err(KeyError::Exists(p)) if p == out));
    }

    #[test]
    fn a_key_of_the_wrong_kind_says_which_file_and_what_was_expected() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("key");
        generate(&out).unwrap();
        let e = read_private(&dir.path().join("key.pub")).unwrap_err();
        assert!(matches!(e, KeyError::PrivateFormat { .. }));
        assert!(
            e.to_string().contains("key.pub") && e.to_string().contains("PKCS#8"),
            "{e}"
        );
        assert!(matches!(
            read_public(&out),
            Err(KeyError::PublicFormat { .. })
        ));
        assert!(matches!(
            read_public(&dir.path().join("absent")),
            Err(KeyError::Read { .. })
        ));
    }
}
