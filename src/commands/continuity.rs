//! `terroir continuity FILE`: the drill of every degraded mode the platform claims (see
//! `crate::continuity`), under the platform's lock.

use std::io::Write;

use serde::Serialize;

use super::Context;
use crate::cli::ContinuityArgs;
use crate::continuity::drill::{ContinuityError, Options};
use crate::continuity::report::ContinuityReport;
use crate::continuity::{Claim, claims};
use crate::deploy::baremetal::site::Site;
use crate::error::{Error, ExitStatus};
use crate::printer::{Report, Text};

#[derive(Serialize)]
#[serde(transparent)]
struct Drilled {
    report: ContinuityReport,
    #[serde(skip)]
    written: String,
}

impl Report for Drilled {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        let r = &self.report;
        for c in &r.claims {
            let time =
                |s: Option<f64>| s.map(|s| format!("{s:.1} s")).unwrap_or_else(|| "-".into());
            writeln!(
                out,
                "{:<24} {:<7} detect {:>8}  recover {:>8}",
                c.name,
                if c.passed { "passed" } else { "FAILED" },
                time(c.detect_seconds),
                time(c.recover_seconds)
            )?;
            if let Some(why) = &c.reason {
                writeln!(out, "  {why}")?;
            }
            if r.mode != "claims" {
                use crate::continuity::probe::Outcome;
                for (word, o) in [
                    ("works", Outcome::Works),
                    ("queues", Outcome::Queues),
                    ("stops", Outcome::Stops),
                ] {
                    let list = c.outcomes(o);
                    if !list.is_empty() {
                        writeln!(out, "  {word:<7} {}", list.join(", "))?;
                    }
                }
            }
        }
        writeln!(
            out,
            "continuity {}: {} of {} claims held in {:.1} s; report {}",
            if r.passed { "passed" } else { "FAILED" },
            r.claims.iter().filter(|c| c.passed).count(),
            r.claims.len(),
            r.total_seconds,
            self.written
        )
    }
}

/// `--dry-run`: the claims, and nothing touched.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Listed {
    platform: String,
    claims: Vec<Claim>,
}

impl Report for Listed {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        writeln!(
            out,
            "{}: {} claim(s); nothing was changed",
            self.platform,
            self.claims.len()
        )?;
        for c in &self.claims {
            writeln!(out, "\n{} ({})", c.name, c.what)?;
            writeln!(out, "  declared: {}", c.declared)?;
            writeln!(out, "  fault:    {}", c.fault.describe())?;
            let names = |p: &[crate::continuity::Probe]| {
                p.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
            };
            writeln!(out, "  probes:   {}", names(&c.probes))?;
            if !c.nominal.is_empty() {
                writeln!(out, "  nominal:  {}", names(&c.nominal))?;
            }
        }
        Ok(())
    }
}

pub fn run(args: &ContinuityArgs, cx: &Context) -> Result<ExitStatus, Error> {
    let loaded = crate::pipeline::load(&args.file, &cx.catalog)?;
    if let Some(target) = match &loaded.platform.spec.target {
        crate::document::Target::Baremetal(_) => None,
        crate::document::Target::Kubernetes(_) => Some("kubernetes"),
        crate::document::Target::Secnumcloud(_) => Some("secnumcloud"),
    } {
        return Err(ContinuityError::NotBareMetal {
            document: args.file.display().to_string(),
            target,
        }
        .into());
    }
    let blueprint = cx.catalog.load(&loaded.platform.spec.blueprint.name)?;
    let site = Site::new(&args.file, &loaded, &cx.catalog)?;
    let all = claims::applicable(&site.resolved, &blueprint.continuity);
    if args.dry_run {
        cx.printer.report(&Listed {
            platform: site.name().to_owned(),
            claims: all,
        })?;
        return Ok(ExitStatus::Success);
    }
    let opts = Options {
        only: args.only.clone(),
        cut_off: args.cut_off,
        max_fault_seconds: args.max_fault_seconds,
        report_dir: args.report.clone(),
        mail_to: args.mail_to.clone(),
    };
    let chosen = crate::continuity::drill::check(&all, &opts)?;
    let environment = site
        .resolved
        .blueprint
        .parameters
        .get("environment")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned();
    if environment == "production" && !args.yes {
        return Err(ContinuityError::Production {
            document: args.file.display().to_string(),
        }
        .into());
    }
    let site = site.changing(crate::deploy::lock::Holder::current("continuity"));
    let _lock = super::lock(&args.file, site.name(), "continuity", args.force_unlock, cx)?;
    let report = crate::continuity::drill::drill(&site, &all, &chosen, &opts, &|line| {
        cx.printer.note(line)
    })?;
    let passed = report.passed;
    cx.printer.report(&Drilled {
        report,
        written: args
            .report
            .join("continuity-report.md")
            .display()
            .to_string(),
    })?;
    Ok(if passed {
        ExitStatus::Success
    } else {
        ExitStatus::Failed
    })
}
