//! `terroir export`, `terroir restore` and `terroir drill`.

use std::io::IsTerminal;

use serde_json::json;

use super::Outcome;
use crate::pipeline::blueprint::Catalog;
use crate::cli::{DrillArgs, ExportArgs, RecipientArgs, RestoreArgs};
use crate::reversibility::export::Progress;
use crate::reversibility::{Error, Item, Site};
use crate::text::human_bytes as human;

/// On a terminal: a live line with the file being written and its size and rate; otherwise one
/// line per file. Nothing at all for JSON output.
struct Shown {
    bar: Option<indicatif::ProgressBar>,
    lines: bool,
}

impl Shown {
    fn new(json: bool) -> Self {
        if json {
            return Shown { bar: None, lines: false };
        }
        if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(indicatif::ProgressStyle::with_template("{spinner} {prefix} {bytes} ({bytes_per_sec}) {msg}").unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()));
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            return Shown { bar: Some(bar), lines: false };
        }
        Shown { bar: None, lines: true }
    }
    fn done(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Progress for Shown {
    fn start(&self, what: &str) {
        if let Some(b) = &self.bar {
            b.set_prefix(what.to_owned());
            b.set_position(0);
            b.reset_elapsed();
        }
    }
    fn bytes(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.set_position(n);
        }
    }
    fn item(&self, item: &Item) {
        if item.kind == "rendered-configuration" {
            return; // dozens of small files: the rendered tree is summed up at the end
        }
        let line = format!("{:<48} {:>12}  {:.1} s", item.path, human(item.bytes), item.seconds);
        if let Some(b) = &self.bar {
            b.println(line);
        } else if self.lines {
            eprintln!("{line}");
        }
    }
    fn note(&self, message: &str) {
        if let Some(b) = &self.bar {
            b.println(message);
        } else if self.lines {
            eprintln!("{message}");
        }
    }
}


fn fail(e: &Error, json: bool, what: &str) -> Outcome {
    if json {
        println!("{}", serde_json::to_string_pretty(&json!({ what: false, "error": e.to_string() })).unwrap_or_default());
    } else {
        eprintln!("error: {e}");
    }
    match e {
        Error::Input(_) => Outcome::Invalid,
        Error::Refused(_) | Error::Failed(_) => Outcome::CheckFailed,
    }
}

fn recipients(args: &RecipientArgs) -> Result<Vec<String>, Error> {
    let mut out = args.recipient.clone();
    if let Some(p) = &args.recipients_file {
        let text = std::fs::read_to_string(p).map_err(|e| Error::Input(format!("{}: {e}", p.display())))?;
        for (i, line) in text.lines().enumerate() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            crate::reversibility::export::parse_recipients(&[l.to_owned()]).map_err(|e| Error::Input(format!("{}:{}:1: {e}", p.display(), i + 1)))?;
            out.push(l.to_owned());
        }
    }
    crate::reversibility::export::parse_recipients(&out)?;
    Ok(out)
}

pub fn export(args: &ExportArgs, catalog: &Catalog, json: bool) -> Outcome {
    let run = || -> Result<crate::reversibility::Manifest, Error> {
        let recipients = recipients(&args.recipients)?;
        let site = Site::open(&args.file, catalog)?;
        let shown = Shown::new(json);
        if recipients.is_empty() && !json {
            shown.note("note: no --recipient given: secrets are not exported (they are exported only encrypted)");
        }
        let r = crate::reversibility::export::export(&site, &crate::reversibility::export::Options { to: args.to.clone(), recipients }, &shown);
        shown.done();
        r
    };
    match run() {
        Ok(m) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&json!({"exported": true, "directory": args.to.display().to_string(), "manifest": m})).unwrap_or_default());
            } else {
                let rows: u64 = m.tables.iter().map(|t| t.rows).sum();
                println!(
                    "exported {} into {}: {} files, {}, {} tables ({rows} rows), in {:.1} s",
                    m.platform,
                    args.to.display(),
                    m.items.len() + 2,
                    human(m.total_bytes),
                    m.tables.len(),
                    m.seconds
                );
                for s in &m.skipped {
                    println!("  not exported: {}: {}", s.what, s.reason);
                }
                println!("check it anywhere with: (cd {} && sha256sum -c SHA256SUMS)", args.to.display());
            }
            Outcome::Success
        }
        Err(e) => fail(&e, json, "exported"),
    }
}

pub fn restore(args: &RestoreArgs, catalog: &Catalog, json: bool) -> Outcome {
    let run = || -> Result<crate::reversibility::restore::Report, Error> {
        let site = Site::open(&args.file, catalog)?;
        let shown = Shown::new(json);
        let r = crate::reversibility::restore::restore(
            &site,
            &crate::reversibility::restore::Options { from: args.from.clone(), identity: args.identity.clone(), dry_run: args.dry_run, replace: args.replace },
            &shown,
        );
        shown.done();
        r
    };
    match run() {
        Ok(r) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&json!({"restored": !r.dry_run, "report": r})).unwrap_or_default());
            } else {
                println!("export {} verified: every file matches SHA256SUMS ({:.1} s)", args.from.display(), r.verify_seconds);
                for a in &r.actions {
                    let verb = if r.dry_run { "would restore" } else { "restored" };
                    println!("  {verb} {} on {}: {}{}", a.what, a.host, a.detail, a.conflict.as_ref().map(|c| format!(" [replaces: {c}]")).unwrap_or_default());
                }
                for s in &r.skipped {
                    println!("  not restored: {}: {}", s.what, s.reason);
                }
                if r.dry_run {
                    println!("dry run: nothing was changed");
                } else {
                    println!("restored {} into {} in {:.1} s", r.source_platform, r.platform, r.restore_seconds);
                }
            }
            Outcome::Success
        }
        Err(e) => fail(&e, json, "restored"),
    }
}

pub fn drill(args: &DrillArgs, catalog: &Catalog, json: bool) -> Outcome {
    let run = || -> Result<crate::reversibility::drill::DrillReport, Error> {
        let recipients = recipients(&args.recipients)?;
        let from = Site::open(&args.file, catalog)?;
        let into = Site::open(&args.into, catalog)?;
        let shown = Shown::new(json);
        let r = crate::reversibility::drill::drill(
            &from,
            &into,
            &crate::reversibility::drill::Options { report: args.report.clone(), recipients, identity: args.identity.clone(), replace: args.replace, discard_export: args.discard_export },
            &shown,
        );
        shown.done();
        r
    };
    match run() {
        Ok(r) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
            } else {
                for p in &r.phases {
                    println!("{:<8} {:>8.1} s", p.name, p.seconds);
                }
                let all: Vec<_> = r.tables.iter().chain(&r.mail).chain(&r.metrics).chain(&r.application).collect();
                let bad: Vec<_> = all.iter().filter(|c| !c.matches).collect();
                for c in &bad {
                    println!("MISMATCH {}: source {} destination {}", c.subject, c.source, c.destination);
                }
                println!(
                    "drill {}: {} of {} checks match ({} tables, {} rows); report {}",
                    if r.passed { "passed" } else { "FAILED" },
                    all.len() - bad.len(),
                    all.len(),
                    r.tables.len() / 2,
                    r.export.rows,
                    args.report.join("drill-report.md").display()
                );
            }
            if r.passed { Outcome::Success } else { Outcome::CheckFailed }
        }
        Err(e) => fail(&e, json, "passed"),
    }
}
