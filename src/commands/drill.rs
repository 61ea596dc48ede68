//! `terroir drill FILE --into OTHER --report DIR`: export, restore into another platform,
//! compare, and write the report (see `crate::reversibility::drill`).

use std::io::Write;

use serde::Serialize;

use super::Context;
use super::export::Shown;
use crate::cli::DrillArgs;
use crate::error::{Error, ExitStatus};
use crate::printer::{Report, Text};
use crate::reversibility::Platform;
use crate::reversibility::drill::{DrillReport, Options};

#[derive(Serialize)]
#[serde(transparent)]
struct Drilled {
    report: DrillReport,
    #[serde(skip)]
    written: String,
}

impl Report for Drilled {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        let r = &self.report;
        for p in &r.phases {
            writeln!(out, "{:<8} {:>8.1} s", p.name, p.seconds)?;
        }
        let all: Vec<_> = r
            .tables
            .iter()
            .chain(&r.mail)
            .chain(&r.metrics)
            .chain(&r.application)
            .collect();
        let bad: Vec<_> = all.iter().filter(|c| !c.matches).collect();
        for c in &bad {
            writeln!(
                out,
                "MISMATCH {}: source {} destination {}",
                c.subject, c.source, c.destination
            )?;
        }
        writeln!(
            out,
            "drill {}: {} of {} checks match ({} tables, {} rows); report {}",
            if r.passed { "passed" } else { "FAILED" },
            all.len() - bad.len(),
            all.len(),
            r.tables.len() / 2,
            r.export.rows,
            self.written
        )
    }
}

pub fn run(args: &DrillArgs, cx: &Context) -> Result<ExitStatus, Error> {
    let recipients = crate::reversibility::export::recipients(
        &args.recipients.recipient,
        args.recipients.recipients_file.as_deref(),
    )?;
    let from = Platform::open(&args.file, &cx.catalog)?;
    let into = Platform::open(&args.into, &cx.catalog)?;
    let shown = Shown::new(cx);
    let opts = Options {
        report: args.report.clone(),
        recipients,
        identity: args.identity.clone(),
        replace: args.replace,
        discard_export: args.discard_export,
    };
    let drilled = crate::reversibility::drill::drill(&from, &into, &opts, &shown);
    shown.done();
    let report = drilled?;
    let passed = report.passed;
    cx.printer.report(&Drilled {
        report,
        written: args.report.join("drill-report.md").display().to_string(),
    })?;
    Ok(ExitStatus::checked(passed))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::reversibility::drill::{Check, ExportSummary, Phase};

    fn check(subject: &str, source: &str, destination: &str) -> Check {
        Check {
            subject: subject.into(),
            source: source.into(),
            destination: destination.into(),
            matches: source == destination,
        }
    }

    #[test]
    fn a_failed_drill_names_each_mismatch() {
        let restore = crate::reversibility::restore::Report {
            platform: "b".into(),
            source_platform: "a".into(),
            dry_run: false,
            verify_seconds: 0.5,
            restore_seconds: 2.0,
            actions: vec![],
            skipped: vec![],
        };
        let report = DrillReport {
            kind: "terroir-drill-report/v1",
            source_platform: "a".into(),
            source_document: "a.yaml".into(),
            destination_platform: "b".into(),
            destination_document: "b.yaml".into(),
            started_at: String::new(),
            finished_at: String::new(),
            passed: false,
            phases: vec![Phase {
                name: "export".into(),
                seconds: 1.5,
                bytes: None,
                bytes_per_second: None,
            }],
            total_seconds: 4.0,
            export: ExportSummary {
                directory: "r/export".into(),
                kept: true,
                files: 3,
                bytes: 10,
                rows: 7,
                manifest_sha256: String::new(),
                sha256sums_sha256: String::new(),
            },
            tables: vec![
                check("table public.t rows", "7", "7"),
                check("table public.t content", "x", "y"),
            ],
            mail: vec![check("queued messages", "1", "1")],
            metrics: vec![],
            application: vec![],
            configuration: vec![check("/etc/x (a1 → b1)", "p", "q")],
            skipped: vec![],
            restore,
        };
        let drilled = Drilled {
            report,
            written: "r/drill-report.md".into(),
        };
        assert_eq!(
            Text::of(&drilled),
            "export        1.5 s\nMISMATCH table public.t content: source x destination y\ndrill FAILED: 2 of 3 checks match (1 tables, 7 rows); report r/drill-report.md\n"
        );
        let json = serde_json::to_value(&drilled).unwrap();
        assert_eq!(
            (json["passed"].clone(), json["kind"].clone()),
            (false.into(), "terroir-drill-report/v1".into())
        );
    }
}
