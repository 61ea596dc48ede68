//! `terroir verify FILE [--live] [--plan-json PLAN.json]`: the platform judged against its own
//! sovereignty policy; exit 2 when a check fails.

use std::io::Write;

use serde::Serialize;

use super::Context;
use crate::cli::{CheckArgs, VerifyArgs};
use crate::error::{Error, ExitStatus};
use crate::policy::assess::{self, AssessError, Checks, Live};
use crate::policy::locality::verify::{Report, Verdict};
use crate::printer::Text;

pub fn run(args: &VerifyArgs, cx: &Context) -> Result<ExitStatus, Error> {
    let checks = checks(&args.check)?;
    let assessed = assess::assess(&args.file, &cx.catalog, &checks)?;
    cx.printer.report(&Verified(&assessed.report))?;
    Ok(ExitStatus::checked(
        assessed.report.verdict != Verdict::Fail,
    ))
}

/// What `verify` and `attest` judge beyond the declarations, from their shared flags. With
/// `--live`, the command's one async runtime is built here.
pub(super) fn checks(args: &CheckArgs) -> Result<Checks, Error> {
    let live = if args.live {
        Some(Live {
            kubeconfig: args.kubeconfig.clone(),
            context: args.context.clone(),
            runtime: crate::runtime()?,
        })
    } else {
        None
    };
    Ok(Checks {
        pins: assess::parse_pins(&args.resolve).map_err(AssessError::Pin)?,
        geodata: args.data.geodata.clone(),
        dns: !args.no_dns,
        plan_json: args.plan_json.clone(),
        live,
    })
}

/// The verdict on every check: a table for people; the report as it is for scripts.
#[derive(Serialize)]
#[serde(transparent)]
struct Verified<'a>(&'a Report);

impl crate::printer::Report for Verified<'_> {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        let report = self.0;
        let w = report
            .findings
            .iter()
            .map(|f| f.subject.chars().count())
            .max()
            .unwrap_or(7)
            .clamp(7, 48);
        writeln!(
            out,
            "{:<6} {:<8} {:<w$} OBSERVED",
            "VERDICT", "BASIS", "SUBJECT"
        )?;
        for f in &report.findings {
            let (label, code) = match f.verdict {
                Verdict::Pass => ("pass", "32"),
                Verdict::Warn => ("warn", "33"),
                Verdict::Fail => ("FAIL", "31"),
            };
            let label = out.paint(code, &format!("{label:<7}"));
            writeln!(
                out,
                "{label} {:<8} {:<w$} {}",
                f.basis, f.subject, f.observed
            )?;
            if f.verdict != Verdict::Pass && !f.evidence.is_empty() {
                writeln!(out, "{:16}{:w$} {}", "", "", f.evidence)?;
            }
        }
        let count = |v: Verdict| report.findings.iter().filter(|f| f.verdict == v).count();
        writeln!(
            out,
            "\n{}: {} pass, {} warn, {} fail; expected {}",
            report.platform,
            count(Verdict::Pass),
            count(Verdict::Warn),
            count(Verdict::Fail),
            report
                .findings
                .first()
                .map(|f| f.expected.as_str())
                .unwrap_or("")
        )?;
        writeln!(out, "{}", report.attribution)
    }
}
