//! `terroir backup now|list|restore` (see `crate::backup`).

use std::path::Path;

use serde_json::json;

use super::Outcome;
use crate::backup::hosts as ops;
use crate::pipeline::blueprint::Catalog;
use crate::cli::BackupCmd;
use crate::reversibility::{Error, Site};
use crate::text::human_bytes as human;

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
    crate::text::rfc3339(seconds)
}

fn print_inventory(inv: &ops::Inventory, file: &Path, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(&json!({"ok": true, "repository": inv})).unwrap_or_default());
        return;
    }
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
        _ => println!("no backup yet: take one with `terroir backup now {} --type full`", file.display()),
    }
}

/// A restore's steps (done, or what a dry run would do), then its result and what comes next.
fn print_restore(dry_run: bool, steps: &[String], done: &str, next_steps: &[String]) {
    let verb = if dry_run { "would" } else { "did" };
    for s in steps {
        println!("  {verb}: {s}");
    }
    if dry_run {
        println!("dry run: nothing was changed");
        return;
    }
    println!("{done}");
    for n in next_steps {
        println!("next: {n}");
    }
}

pub fn run(cmd: BackupCmd, catalog: &Catalog, json: bool) -> Outcome {
    // progress goes to standard error, and only for people
    let shown = |line: &str| {
        if !json {
            eprintln!("  {line}");
        }
    };
    match cmd {
        BackupCmd::Now(args) if super::targets_a_cluster(&args.file) => match crate::backup::kubernetes::now(&args.file, args.kind.as_str(), &args.cluster, catalog, &shown) {
            Ok(r) => {
                if json {
                    println!("{}", serde_json::to_string_pretty(&json!({"ok": true, "backup": r})).unwrap_or_default());
                } else {
                    println!("{} backup of {} done by Job {}/{} in {:.1} s; its log: {}", r.kind, r.platform, r.namespace, r.job, r.seconds, r.log);
                }
                Outcome::Success
            }
            Err(e) => fail(&e, json),
        },
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
        BackupCmd::List(args) => {
            let listed = if super::targets_a_cluster(&args.file) { crate::backup::kubernetes::list(&args.file, &args.cluster, catalog) } else { Site::open(&args.file, catalog).and_then(|site| ops::list(&site)) };
            match listed {
                Ok(inv) => {
                    print_inventory(&inv, &args.file, json);
                    Outcome::Success
                }
                Err(e) => fail(&e, json),
            }
        }
        BackupCmd::Restore(args) if super::targets_a_cluster(&args.file) => {
            let opts = crate::backup::kubernetes::RestoreOptions { to_time: &args.to_time, dry_run: args.dry_run, replace: args.replace, into: args.into.is_some() };
            match crate::backup::kubernetes::restore(&args.file, &opts, &args.cluster, catalog, &shown) {
                Ok(r) => {
                    if json {
                        println!("{}", serde_json::to_string_pretty(&json!({"ok": true, "restored": !r.dry_run, "report": r})).unwrap_or_default());
                    } else {
                        let done = format!("restored {} as of {} in namespace {} in {:.1} s", r.platform, r.target_time, r.namespace, r.seconds);
                        print_restore(r.dry_run, &r.steps, &done, &r.next_steps);
                    }
                    Outcome::Success
                }
                Err(e) => fail(&e, json),
            }
        }
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
                        let done = format!("restored {} as of {} into {} on {} (from backup {}) in {:.1} s", r.source_platform, r.target_time, r.platform, r.host, r.from_backup, r.seconds);
                        print_restore(r.dry_run, &r.steps, &done, &r.next_steps);
                    }
                    Outcome::Success
                }
                Err(e) => fail(&e, json),
            }
        }
    }
}
