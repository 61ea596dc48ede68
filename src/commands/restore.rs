//! `terroir restore FILE --from DIR`: check an export, then restore it into the platform FILE
//! describes (see `crate::reversibility::restore`).

use std::io::Write;

use serde::Serialize;

use super::Context;
use super::export::Shown;
use crate::cli::RestoreArgs;
use crate::error::{Error, ExitStatus};
use crate::printer::{Report, Text};
use crate::reversibility::Platform;
use crate::reversibility::restore::{Options, Report as Restore};

#[derive(Serialize)]
struct Restored {
    restored: bool,
    report: Restore,
    #[serde(skip)]
    from: String,
}

impl Report for Restored {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        let r = &self.report;
        writeln!(
            out,
            "export {} verified: every file matches SHA256SUMS ({:.1} s)",
            self.from, r.verify_seconds
        )?;
        let verb = if r.dry_run {
            "would restore"
        } else {
            "restored"
        };
        for a in &r.actions {
            writeln!(
                out,
                "  {verb} {} on {}: {}{}",
                a.what,
                a.host,
                a.detail,
                a.conflict
                    .as_ref()
                    .map(|c| format!(" [replaces: {c}]"))
                    .unwrap_or_default()
            )?;
        }
        for s in &r.skipped {
            writeln!(out, "  not restored: {}: {}", s.what, s.reason)?;
        }
        if r.dry_run {
            writeln!(out, "dry run: nothing was changed")
        } else {
            writeln!(
                out,
                "restored {} into {} in {:.1} s",
                r.source_platform, r.platform, r.restore_seconds
            )
        }
    }
}

pub fn run(args: &RestoreArgs, cx: &Context) -> Result<ExitStatus, Error> {
    let mut platform = Platform::open(&args.file, &cx.catalog)?;
    // a dry run changes nothing and takes no lock
    let _lock = if args.dry_run {
        None
    } else {
        if let Platform::Hosts(site) = platform {
            platform =
                Platform::Hosts(site.changing(crate::deploy::lock::Holder::current("restore")));
        }
        super::lock(
            &args.file,
            platform.name(),
            "restore",
            args.force_unlock,
            cx,
        )?
    };
    let shown = Shown::new(cx);
    let opts = Options {
        from: args.from.clone(),
        identity: args.identity.clone(),
        dry_run: args.dry_run,
        replace: args.replace,
    };
    let restored = platform.restore(&opts, &shown);
    shown.done();
    let report = restored?;
    cx.printer.report(&Restored {
        restored: !report.dry_run,
        report,
        from: args.from.display().to_string(),
    })?;
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::reversibility::restore::Action;

    #[test]
    fn a_dry_run_shows_what_it_would_replace() {
        let action = Action {
            what: "database".into(),
            from: "database/crm.sql".into(),
            host: "db2".into(),
            detail: "load into `crm` as `crm` in one transaction (2 tables, 5 rows)".into(),
            conflict: Some("database `crm` on db2 already holds 3 relations".into()),
            done: false,
            seconds: 0.0,
            database: None,
        };
        let report = Restore {
            platform: "b".into(),
            source_platform: "a".into(),
            dry_run: true,
            verify_seconds: 1.25,
            restore_seconds: 0.0,
            actions: vec![action],
            skipped: vec![],
        };
        let r = Restored {
            restored: false,
            report,
            from: "export".into(),
        };
        assert_eq!(
            Text::of(&r),
            "export export verified: every file matches SHA256SUMS (1.2 s)\n  would restore database on db2: load into `crm` as `crm` in one transaction (2 tables, 5 rows) [replaces: database `crm` on db2 already holds 3 relations]\ndry run: nothing was changed\n"
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["restored"], false);
        assert!(json["report"]["actions"][0]["conflict"].is_string());
    }
}
