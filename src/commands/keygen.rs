//! `terroir keygen --out KEY`: an Ed25519 key pair for signing attestations.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use super::Context;
use crate::error::{Error, ExitStatus};
use crate::printer::{Report, Text};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KeyPair<'a> {
    private_key: &'a Path,
    public_key: std::path::PathBuf,
    key_id: String,
}

impl Report for KeyPair<'_> {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        writeln!(
            out,
            "private key {} (mode 0600, PKCS#8 PEM)",
            self.private_key.display()
        )?;
        writeln!(
            out,
            "public key  {} (SubjectPublicKeyInfo PEM)",
            self.public_key.display()
        )?;
        writeln!(out, "key id      {}", self.key_id)
    }
}

pub fn run(out: &Path, cx: &Context) -> Result<ExitStatus, Error> {
    let (public_key, key_id) = crate::attest::keys::generate(out)?;
    cx.printer.report(&KeyPair {
        private_key: out,
        public_key,
        key_id,
    })?;
    Ok(ExitStatus::Success)
}
