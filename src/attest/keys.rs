//! Ed25519 signing keys in the formats standard tools read: the private key as PKCS#8 PEM
//! (written with mode 0600), the public key as SubjectPublicKeyInfo PEM.

use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{path}: not an Ed25519 {what} in PEM ({message})")]
    Format { path: PathBuf, what: &'static str, message: String },
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
    getrandom::fill(&mut seed).map_err(|e| KeyError::Io { path: out.to_owned(), message: format!("no randomness: {e}") })?;
    let key = SigningKey::from_bytes(&seed);
    let private_pem = pkcs8_v1_pem(&key);
    let public_pem = key.verifying_key().to_public_key_pem(LineEnding::LF).map_err(|e| KeyError::Io { path: public.clone(), message: e.to_string() })?;
    {
        use std::os::unix::fs::OpenOptionsExt;
        let err = |e: std::io::Error| KeyError::Io { path: out.to_owned(), message: e.to_string() };
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(out).map_err(err)?;
        f.write_all(private_pem.as_bytes()).map_err(err)?;
    }
    std::fs::write(&public, public_pem.as_bytes()).map_err(|e| KeyError::Io { path: public.clone(), message: e.to_string() })?;
    Ok((public, key_id(&key.verifying_key())))
}

/// PKCS#8 v1 (RFC 8410, no embedded public key): what OpenSSL, Python's cryptography and Go read.
/// (The v2 form with the public key is refused by several of them.)
fn pkcs8_v1_pem(key: &SigningKey) -> String {
    use base64::Engine as _;
    // SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING seed } }
    let mut der = vec![0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
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
    format!("ed25519:{}", d.iter().take(8).map(|b| format!("{b:02x}")).collect::<String>())
}

pub fn read_private(path: &Path) -> Result<SigningKey, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|e| KeyError::Io { path: path.to_owned(), message: e.to_string() })?;
    SigningKey::from_pkcs8_pem(&text).map_err(|e| KeyError::Format { path: path.to_owned(), what: "private key (PKCS#8)", message: e.to_string() })
}

pub fn read_public(path: &Path) -> Result<VerifyingKey, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|e| KeyError::Io { path: path.to_owned(), message: e.to_string() })?;
    VerifyingKey::from_public_key_pem(&text).map_err(|e| KeyError::Format { path: path.to_owned(), what: "public key (SubjectPublicKeyInfo)", message: e.to_string() })
}
