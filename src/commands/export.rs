//! `terroir export FILE --to DIR`: every piece of a platform's data (on hosts, or on a
//! Kubernetes cluster) into an export directory (see `crate::reversibility`).

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use super::Context;
use crate::cli::ExportArgs;
use crate::error::{Error, ExitStatus};
use crate::printer::{Bar, Report, Text};
use crate::reversibility::{Item, Manifest, Platform};
use crate::text::human_bytes;

/// What an export, a restore or a drill shows while it runs: the file being written with its size
/// and rate, and a line per file done.
pub(super) struct Shown {
    bar: Bar,
}

impl Shown {
    pub(super) fn new(cx: &Context) -> Self {
        Shown {
            bar: cx.printer.progress().bytes("", None),
        }
    }

    pub(super) fn done(&self) {
        self.bar.clear();
    }
}

impl crate::reversibility::export::Progress for Shown {
    fn start(&self, what: &str) {
        self.bar.restart(what);
    }
    fn bytes(&self, n: u64) {
        self.bar.set_position(n);
    }
    fn item(&self, item: &Item) {
        if item.kind == "rendered-configuration" {
            return; // dozens of small files: the rendered tree is summed up at the end
        }
        self.bar.println(format!(
            "{:<48} {:>12}  {:.1} s",
            item.path,
            human_bytes(item.bytes),
            item.seconds
        ));
    }
    fn note(&self, message: &str) {
        self.bar.println(message);
    }
}

#[derive(Serialize)]
struct Exported<'a> {
    exported: bool,
    directory: String,
    manifest: Manifest,
    #[serde(skip)]
    to: &'a Path,
}

impl Report for Exported<'_> {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        let m = &self.manifest;
        let rows: u64 = m.tables.iter().map(|t| t.rows).sum();
        writeln!(
            out,
            "exported {} into {}: {} files, {}, {} tables ({rows} rows), in {:.1} s",
            m.platform,
            self.directory,
            m.items.len() + 2,
            human_bytes(m.total_bytes),
            m.tables.len(),
            m.seconds
        )?;
        for s in &m.skipped {
            writeln!(out, "  not exported: {}: {}", s.what, s.reason)?;
        }
        writeln!(
            out,
            "check it anywhere with: (cd {} && sha256sum -c SHA256SUMS)",
            self.to.display()
        )
    }
}

pub fn run(args: &ExportArgs, cx: &Context) -> Result<ExitStatus, Error> {
    let recipients = crate::reversibility::export::recipients(
        &args.recipients.recipient,
        args.recipients.recipients_file.as_deref(),
    )?;
    let platform = Platform::open(&args.file, &cx.catalog)?;
    let shown = Shown::new(cx);
    if recipients.is_empty() {
        crate::reversibility::export::Progress::note(
            &shown,
            "note: no --recipient given: secrets are not exported (they are exported only encrypted)",
        );
    }
    let exported = platform.export(
        &crate::reversibility::export::Options {
            to: args.to.clone(),
            recipients,
        },
        &shown,
    );
    shown.done();
    let manifest = exported?;
    if let Err(e) = crate::lifecycle::destroy::record_export(
        &args.file,
        &manifest.platform,
        &args.to,
        k8s_openapi::jiff::Timestamp::now().as_second(),
    ) {
        cx.printer.problem(format!(
            "the export is complete, but could not be recorded beside {} for `terroir destroy` to find: {e}",
            args.file.display()
        ));
    }
    cx.printer.report(&Exported {
        exported: true,
        directory: args.to.display().to_string(),
        manifest,
        to: &args.to,
    })?;
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::reversibility::{SecretsEntry, Skipped, Table};

    #[test]
    fn an_export_sums_itself_up_and_says_how_to_check_it() {
        let table = |name: &str, rows| Table {
            database: "crm".into(),
            name: name.into(),
            columns: vec![],
            rows,
            checksum: String::new(),
            csv: String::new(),
        };
        let manifest = Manifest {
            format: crate::reversibility::FORMAT.into(),
            platform: "acme".into(),
            blueprint: "b".into(),
            blueprint_version: "1".into(),
            target: "baremetal".into(),
            started_at: String::new(),
            finished_at: String::new(),
            seconds: 3.25,
            terroir_version: String::new(),
            tools: Default::default(),
            items: vec![],
            tables: vec![table("public.a", 2), table("public.b", 3)],
            mail: vec![],
            metrics_blocks: Default::default(),
            secrets: SecretsEntry {
                exported: false,
                recipients: vec![],
                names: vec![],
            },
            skipped: vec![Skipped {
                what: "secrets".into(),
                reason: "no --recipient given".into(),
            }],
            total_bytes: 3 << 20,
        };
        let exported = Exported {
            exported: true,
            directory: "out".into(),
            manifest,
            to: Path::new("out"),
        };
        assert_eq!(
            Text::of(&exported),
            "exported acme into out: 2 files, 3 MiB, 2 tables (5 rows), in 3.2 s\n  not exported: secrets: no --recipient given\ncheck it anywhere with: (cd out && sha256sum -c SHA256SUMS)\n"
        );
        let json = serde_json::to_value(&exported).unwrap();
        assert_eq!(
            (
                json["exported"].clone(),
                json["directory"].clone(),
                json["manifest"]["platform"].clone()
            ),
            (true.into(), "out".into(), "acme".into())
        );
    }
}
