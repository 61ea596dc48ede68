//! `terroir backup now|list|restore` (see `crate::backup`).

use serde_json::json;

use super::Outcome;
use crate::backup::ops;
use crate::blueprint::Catalog;
use crate::cli::BackupCmd;
use crate::reversibility::{Error, Site, human_bytes as human};

fn fail(e: &Error, json: bool) -> Outcome {
    if json {
        println!("{}", serde_json::to_string_pretty(&json!({ "ok": false, "error": e.to_string() })).unwrap_or_default());
    } else {
        eprintln!("error: {e}");
    }
    match e {
        Error::Input(_) => Outcome::Invalid,
        Error::Refused(_) | Error::Failed(_) => Outcome::CheckFailed,
    }
}

fn time(seconds: i64) -> String {
    crate::rfc3339(seconds)
}

pub fn run(cmd: BackupCmd, catalog: &Catalog, json: bool) -> Outcome {
    // progress goes to standard error, and only for people
    let shown = |line: &str| {
        if !json {
            eprintln!("  {line}");
        }
    };
    match cmd {
        BackupCmd::Now(args) => match Site::open(&args.file, catalog).and_then(|site| ops::now(&site, args.kind.as_str(), &shown)) {
            Ok(r) => {
                if json {
                    println!("{}", serde_json::to_string_pretty(&json!({"ok": true, "backup": r})).unwrap_or_default());
                } else {
                    println!(
                        "backup {} ({}) of {} on {}: database {}, {} stored, in {:.1} s",
                        r.backup.label,
                        r.backup.kind,
                        r.platform,
                        r.host,
                        human(r.backup.database_bytes),
                        human(r.backup.repository_bytes),
                        r.seconds
                    );
                }
                Outcome::Success
            }
            Err(e) => fail(&e, json),
        },
        BackupCmd::List(args) => match Site::open(&args.file, catalog).and_then(|site| ops::list(&site)) {
            Ok(inv) => {
                if json {
                    println!("{}", serde_json::to_string_pretty(&json!({"ok": true, "repository": inv})).unwrap_or_default());
                } else {
                    println!("stanza {} ({}, {}): {} backup{}", inv.stanza, inv.status, inv.cipher, inv.backups.len(), if inv.backups.len() == 1 { "" } else { "s" });
                    if !inv.backups.is_empty() {
                        println!("{:<36} {:<5} {:<21} {:<21} {:>10} {:>10}  WAL", "LABEL", "TYPE", "STARTED", "STOPPED", "DATABASE", "STORED");
                    }
                    for b in &inv.backups {
                        println!(
                            "{:<36} {:<5} {:<21} {:<21} {:>10} {:>10}  {}..{}",
                            b.label,
                            b.kind,
                            time(b.started),
                            time(b.stopped),
                            human(b.database_bytes),
                            human(b.repository_bytes),
                            b.wal_start,
                            b.wal_stop
                        );
                    }
                    if !inv.wal_min.is_empty() {
                        println!("archived WAL: {} to {}", inv.wal_min, inv.wal_max);
                    }
                    match (inv.recoverable_from, inv.recoverable_to) {
                        (Some(a), Some(b)) => println!("point-in-time restore reaches {} to {}", time(a), time(b)),
                        _ => println!("no backup yet: take one with `terroir backup now {} --type full`", args.file.display()),
                    }
                }
                Outcome::Success
            }
            Err(e) => fail(&e, json),
        },
        BackupCmd::Restore(args) => {
            let run = || -> Result<ops::RestoreReport, Error> {
                let from = Site::open(&args.file, catalog)?;
                let into = args.into.as_ref().map(|p| Site::open(p, catalog)).transpose()?;
                ops::restore(&from, into.as_ref(), &ops::RestoreOptions { to_time: args.to_time.clone(), dry_run: args.dry_run, replace: args.replace }, &shown)
            };
            match run() {
                Ok(r) => {
                    if json {
                        println!("{}", serde_json::to_string_pretty(&json!({"ok": true, "restored": !r.dry_run, "report": r})).unwrap_or_default());
                    } else {
                        println!("recoverable window of {}: {} to {}", r.source_platform, r.recoverable_from, r.recoverable_to);
                        let verb = if r.dry_run { "would" } else { "did" };
                        for s in &r.steps {
                            println!("  {verb}: {s}");
                        }
                        if r.dry_run {
                            println!("dry run: nothing was changed");
                        } else {
                            println!("restored {} as of {} into {} on {} (from backup {}) in {:.1} s", r.source_platform, r.target_time, r.platform, r.host, r.from_backup, r.seconds);
                            for n in &r.next_steps {
                                println!("next: {n}");
                            }
                        }
                    }
                    Outcome::Success
                }
                Err(e) => fail(&e, json),
            }
        }
    }
}
