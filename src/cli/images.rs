//! `terroir images`: the platform's container images and their digests.

use std::path::PathBuf;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// List each image of FILE's platform: its key, the reference pulled (registry included),
    /// and whether it is pinned by digest or referenced by tag only.
    ///
    /// With `--output json`, an array of {key, reference, sha256?}.
    ///
    /// Example: terroir images list platform.yaml
    List {
        /// Platform document (YAML).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Write image references pinned by digest into FILE's `spec.images`, in place.
    ///
    /// KEY is one of the blueprint's image keys (postgres, postgresExporter, postfix,
    /// postfixExporter, prometheus, alertmanager, grafana, nodeExporter, backupExporter);
    /// REFERENCE is relative to `endpoints.imageRegistry`, or starts with a registry host. Only
    /// the `spec.images` entries change (the mapping is added at the end of `spec` when
    /// missing); the rest of the file, comments included, is kept byte for byte. The edited
    /// document is checked before it replaces the file.
    ///
    /// Example: terroir images pin platform.yaml postgres=terroir/postgres:16-bookworm@sha256:<64 hex>
    Pin {
        /// Platform document (YAML), edited in place.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// KEY=REFERENCE@sha256:DIGEST, one or more.
        #[arg(value_name = "KEY=REFERENCE@sha256:DIGEST", required = true)]
        pins: Vec<String>,
        /// Print the change as a diff and leave the file as it is.
        #[arg(long)]
        dry_run: bool,
    },
}
