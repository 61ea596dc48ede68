//! `terroir drill FILE --into OTHER --report DIR`: export, restore into another platform,
//! compare, and write the report (see `crate::reversibility::drill`).

use std::io::Write;

use serde::Serialize;

use super::Context;
use super::export::Shown;
use crate::deploy::baremetal::site::Site;
use crate::cli::DrillArgs;
use crate::error::{Error, ExitStatus};
use crate::printer::{Report, Text};
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
        let all: Vec<_> = r.tables.iter().chain(&r.mail).chain(&r.metrics).chain(&r.application).collect();
        let bad: Vec<_> = all.iter().filter(|c| !c.matches).collect();
        for c in &bad {
            writeln!(out, "MISMATCH {}: source {} destination {}", c.subject, c.source, c.destination)?;
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
    let recipients = crate::reversibility::export::recipients(&args.recipients.recipient, args.recipients.recipients_file.as_deref())?;
    let from = Site::open(&args.file, &cx.catalog)?;
    let into = Site::open(&args.into, &cx.catalog)?;
    let shown = Shown::new(cx);
    let opts = Options { report: args.report.clone(), recipients, identity: args.identity.clone(), replace: args.replace, discard_export: args.discard_export };
    let drilled = crate::reversibility::drill::drill(&from, &into, &opts, &shown);
    shown.done();
    let report = drilled?;
    let passed = report.passed;
    cx.printer.report(&Drilled { report, written: args.report.join("drill-report.md").display().to_string() })?;
    Ok(ExitStatus::checked(passed))
}
