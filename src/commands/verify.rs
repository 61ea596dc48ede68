//! `terroir verify FILE [--live] [--plan-json PLAN.json]`: the platform judged against its own
//! sovereignty policy; exit 2 when a check fails.

use std::collections::HashMap;
use std::io::Write;

use serde::Serialize;

use super::{Context, Outcome};
use crate::cli::{CheckArgs, VerifyArgs};
use crate::error::{Error, ExitStatus};
use crate::policy::assess::{self, AssessError, Checks, Live};
use crate::policy::locality::catalog::Catalog as Providers;
use crate::policy::locality::geodata::GeoDb;
use crate::policy::locality::verify::{self, Finding, Report, Verdict, Verifier};
use crate::printer::Text;

pub fn run(args: &VerifyArgs, cx: &Context) -> Result<ExitStatus, Error> {
    let checks = checks(&args.check)?;
    let assessed = assess::assess(&args.file, &cx.catalog, &checks)?;
    cx.printer.report(&Verified(&assessed.report))?;
    Ok(ExitStatus::checked(assessed.report.verdict != Verdict::Fail))
}

/// What `verify` and `attest` judge beyond the declarations, from their shared flags. With
/// `--live`, the command's one async runtime is built here.
pub(super) fn checks(args: &CheckArgs) -> Result<Checks, Error> {
    let live = if args.live { Some(Live { kubeconfig: args.kubeconfig.clone(), context: args.context.clone(), runtime: crate::runtime()? }) } else { None };
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
        let w = report.findings.iter().map(|f| f.subject.chars().count()).max().unwrap_or(7).clamp(7, 48);
        writeln!(out, "{:<6} {:<8} {:<w$} OBSERVED", "VERDICT", "BASIS", "SUBJECT")?;
        for f in &report.findings {
            let (label, code) = match f.verdict {
                Verdict::Pass => ("pass", "32"),
                Verdict::Warn => ("warn", "33"),
                Verdict::Fail => ("FAIL", "31"),
            };
            let label = out.paint(code, &format!("{label:<7}"));
            writeln!(out, "{label} {:<8} {:<w$} {}", f.basis, f.subject, f.observed)?;
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
            report.findings.first().map(|f| f.expected.as_str()).unwrap_or("")
        )?;
        writeln!(out, "{}", report.attribution)
    }
}

/// Each failing check of a gate, as an error when the policy is enforced, else a warning.
pub(super) fn print_policy_failures(failures: &[&Finding], enforce: bool) {
    let word = if enforce { "error" } else { "warning" };
    for f in failures {
        eprintln!("{word}: policy: {}: {} (expected {}): {}", f.subject, f.observed, f.expected, f.evidence);
    }
}

/// The policy gate of `terroir apply`: the declared checks (names judged by the provider catalog
/// and the declaration, no DNS), before anything is changed. With `enforcement: enforce` a
/// failing check stops the run; with `warn` it is reported and the run goes on.
pub(super) fn gate(loaded: &crate::document::Loaded, images: &[String], json: bool) -> Result<(), Outcome> {
    let p = &loaded.platform;
    // Addresses are judged only when geodata is there; the gate never downloads anything.
    let geo = GeoDb::open(None).ok();
    let v = Verifier { policy: &p.spec.sovereignty.policy, geo: geo.as_ref(), catalog: Providers::builtin(), pins: HashMap::new(), dns: false };
    let report = Report::new(&p.metadata.name, verify::declared(p, images, &v));
    let failures: Vec<&Finding> = report.failures().collect();
    if failures.is_empty() {
        return Ok(());
    }
    let enforce = p.spec.sovereignty.policy.enforcement == crate::document::Enforcement::Enforce;
    print_policy_failures(&failures, enforce);
    if enforce {
        eprintln!(
            "error: {} violates its sovereignty policy ({} failing check{}); nothing was changed. `terroir verify {}` shows every check; `enforcement: warn` reports without stopping",
            p.metadata.name,
            failures.len(),
            if failures.len() == 1 { "" } else { "s" },
            loaded.file
        );
        if json {
            println!("{}", serde_json::to_string_pretty(&serde_json::json!({"error": "policy violation", "findings": failures})).unwrap_or_default());
        }
        return Err(Outcome::CheckFailed);
    }
    Ok(())
}
