//! `terroir secrets`: the operator-side secret store.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::ApplyArgs;

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// List the secrets of FILE's platform: name, whether it is encrypted, when it last changed,
    /// whether a previous value is kept, and which hosts receive it. Never a value.
    ///
    /// The store is `.terroir/<platform>/secrets/` beside FILE. With `--output json`, an array
    /// of {name, encrypted, modified, previous, path, hosts}.
    ///
    /// Example: terroir secrets list platform.yaml
    List {
        /// Platform document (YAML).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Replace a secret with a new random value and deliver it: runs `terroir apply FILE`.
    ///
    /// The previous value is kept as `<NAME>.previous` (`.previous.age` when encrypted, mode
    /// 0600), so that it can be put back with `terroir secrets set`. The apply writes the new file
    /// to the hosts that receive it; PostgreSQL roles whose password no longer matches
    /// (database-password, tenant-*-password) are given the new one, and the services reading it
    /// restart. Certificates (`tls-*`) are removed with their key or certificate partner, so the
    /// apply issues new ones. stdout carries the apply's report.
    ///
    /// Example: terroir secrets rotate platform.yaml database-password
    Rotate(RotateArgs),
    /// Set a secret terroir cannot generate (S3 access keys, relay credentials) from stdin.
    ///
    /// One trailing newline is stripped; an empty value is refused. A value it replaces is kept
    /// as `<NAME>.previous`. Deliver it with `terroir apply FILE`.
    ///
    /// Example: printf '%s' "$RELAY_PASSWORD" | terroir secrets set platform.yaml smtp-relay-password
    Set {
        /// Platform document (YAML).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Secret name: letters, digits and `-`.
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Encrypt every clear-text file of the store to the document's age recipients
    /// (spec.secrets.recipients), then remove the clear files.
    ///
    /// Needed once after recipients are added to a document whose store already holds secrets:
    /// until then, terroir refuses to read a store mixing clear and encrypted values. Reading the
    /// sealed values later needs TERROIR_AGE_IDENTITY, the path of a matching identity file.
    ///
    /// Example: terroir secrets seal platform.yaml
    Seal {
        /// Platform document (YAML).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Write a new age identity to OUT (mode 0600, never overwritten) and print its recipient
    /// (public key), to list in spec.secrets.recipients.
    ///
    /// The file is what `age-keygen` writes; `age -d -i OUT` reads the store's `.age` files.
    /// Point TERROIR_AGE_IDENTITY at it to let terroir decrypt the store.
    ///
    /// Example: terroir secrets keygen ~/.config/terroir/acme-crm.key
    Keygen {
        /// Path of the identity file to create.
        #[arg(value_name = "OUT")]
        out: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub apply: ApplyArgs,
    /// Secret to rotate (`terroir secrets list FILE` shows them).
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Say what would change, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Only change the store; deliver the value later with `terroir apply FILE`.
    #[arg(long)]
    pub no_apply: bool,
}
