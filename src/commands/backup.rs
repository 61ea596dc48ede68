//! `terroir backup now|list|restore` (see `crate::backup`): over SSH on bare metal, through Jobs
//! on a cluster.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use super::Context;
use crate::backup::error::BackupError;
use crate::backup::hosts::{self, BackupRun, Inventory};
use crate::backup::kubernetes::{Access, ClusterPlatform, NowReport};
use crate::backup::{RestoreReport, RestoredInto};
use crate::cli::{BackupCmd, ClusterArgs};
use crate::deploy::baremetal::site::Site;
use crate::document::{KubernetesTarget, Target};
use crate::error::{Error, ExitStatus};
use crate::printer::{Report, Text};
use crate::text::{human_bytes, plural, rfc3339};

/// A backup just taken: on a database host, or by a Job on the cluster.
#[derive(Serialize)]
#[serde(untagged)]
enum Taken {
    Host(BackupRun),
    Cluster(NowReport),
}

#[derive(Serialize)]
struct Now {
    ok: bool,
    backup: Taken,
}

impl Report for Now {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        match &self.backup {
            Taken::Host(r) => writeln!(
                out,
                "backup {} ({}) of {} on {}: database {}, {} stored, in {:.1} s",
                r.backup.label,
                r.backup.kind,
                r.platform,
                r.host,
                human_bytes(r.backup.database_bytes),
                human_bytes(r.backup.repository_bytes),
                r.seconds
            ),
            Taken::Cluster(r) => writeln!(
                out,
                "{} backup of {} done by Job {}/{} in {:.1} s; its log: {}",
                r.kind, r.platform, r.namespace, r.job, r.seconds, r.log
            ),
        }
    }
}

#[derive(Serialize)]
struct Listed<'a> {
    ok: bool,
    repository: Inventory,
    #[serde(skip)]
    document: &'a Path,
}

impl Report for Listed<'_> {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        let inv = &self.repository;
        writeln!(
            out,
            "stanza {} ({}, {}): {} backup{}",
            inv.stanza,
            inv.status,
            inv.cipher,
            inv.backups.len(),
            plural(inv.backups.len())
        )?;
        if !inv.backups.is_empty() {
            writeln!(
                out,
                "{:<36} {:<5} {:<21} {:<21} {:>10} {:>10}  WAL",
                "LABEL", "TYPE", "STARTED", "STOPPED", "DATABASE", "STORED"
            )?;
        }
        for b in &inv.backups {
            writeln!(
                out,
                "{:<36} {:<5} {:<21} {:<21} {:>10} {:>10}  {}..{}",
                b.label,
                b.kind,
                rfc3339(b.started),
                rfc3339(b.stopped),
                human_bytes(b.database_bytes),
                human_bytes(b.repository_bytes),
                b.wal_start,
                b.wal_stop
            )?;
        }
        if !inv.wal_min.is_empty() {
            writeln!(out, "archived WAL: {} to {}", inv.wal_min, inv.wal_max)?;
        }
        match (inv.recoverable_from, inv.recoverable_to) {
            (Some(a), Some(b)) => writeln!(
                out,
                "point-in-time restore reaches {} to {}",
                rfc3339(a),
                rfc3339(b)
            ),
            _ => writeln!(
                out,
                "no backup yet: take one with `terroir backup now {} --type full`",
                self.document.display()
            ),
        }
    }
}

#[derive(Serialize)]
struct Restored {
    ok: bool,
    restored: bool,
    report: RestoreReport,
}

impl Report for Restored {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        let r = &self.report;
        let done = match &r.into {
            RestoredInto::Host {
                source_platform,
                host,
                recoverable_from,
                recoverable_to,
                from_backup,
                ..
            } => {
                writeln!(
                    out,
                    "recoverable window of {source_platform}: {recoverable_from} to {recoverable_to}"
                )?;
                format!(
                    "restored {source_platform} as of {} into {} on {host} (from backup {from_backup}) in {:.1} s",
                    r.target_time, r.platform, r.seconds
                )
            }
            RestoredInto::Namespace { namespace } => format!(
                "restored {} as of {} in namespace {namespace} in {:.1} s",
                r.platform, r.target_time, r.seconds
            ),
        };
        let verb = if r.dry_run { "would" } else { "did" };
        for s in &r.steps {
            writeln!(out, "  {verb}: {s}")?;
        }
        if r.dry_run {
            return writeln!(out, "dry run: nothing was changed");
        }
        writeln!(out, "{done}")?;
        for n in &r.next_steps {
            writeln!(out, "next: {n}")?;
        }
        Ok(())
    }
}

/// The platform's cluster, for a document whose target is Kubernetes.
fn on_cluster<'r>(
    runtime: &'r tokio::runtime::Runtime,
    file: &Path,
    loaded: &crate::document::Loaded,
    target: &KubernetesTarget,
    cluster: &ClusterArgs,
    cx: &Context,
) -> Result<ClusterPlatform<'r>, BackupError> {
    let access = Access {
        kubeconfig: cluster.kubeconfig.as_ref(),
        context: cluster.context.as_ref(),
        timeout: std::time::Duration::from_secs(cluster.timeout),
    };
    ClusterPlatform::open(runtime, file, loaded, target, &cx.catalog, &access)
}

pub fn run(cmd: BackupCmd, cx: &Context) -> Result<ExitStatus, Error> {
    // pgBackRest's and the Jobs' progress, for people
    let shown = |line: &str| cx.printer.note(format!("  {line}"));
    match cmd {
        BackupCmd::Now(args) => {
            let loaded = crate::pipeline::load(&args.file, &cx.catalog)?;
            let backup = match &loaded.platform.spec.target {
                Target::Kubernetes(target) => {
                    let runtime = crate::runtime()?;
                    Taken::Cluster(
                        on_cluster(&runtime, &args.file, &loaded, target, &args.cluster, cx)?
                            .now(args.kind.as_str(), &shown)?,
                    )
                }
                _ => Taken::Host(hosts::now(
                    &Site::new(&args.file, &loaded, &cx.catalog)?,
                    args.kind.as_str(),
                    &shown,
                )?),
            };
            cx.printer.report(&Now { ok: true, backup })?;
        }
        BackupCmd::List(args) => {
            let loaded = crate::pipeline::load(&args.file, &cx.catalog)?;
            let repository = match &loaded.platform.spec.target {
                Target::Kubernetes(target) => {
                    let runtime = crate::runtime()?;
                    on_cluster(&runtime, &args.file, &loaded, target, &args.cluster, cx)?.list()?
                }
                _ => hosts::list(&Site::new(&args.file, &loaded, &cx.catalog)?)?,
            };
            cx.printer.report(&Listed {
                ok: true,
                repository,
                document: &args.file,
            })?;
        }
        BackupCmd::Restore(args) => {
            let loaded = crate::pipeline::load(&args.file, &cx.catalog)?;
            let report = match &loaded.platform.spec.target {
                Target::Kubernetes(target) => {
                    let opts = crate::backup::kubernetes::RestoreOptions::new(
                        &args.to_time,
                        args.dry_run,
                        args.replace,
                        args.into.is_some(),
                    )?;
                    let runtime = crate::runtime()?;
                    let platform =
                        on_cluster(&runtime, &args.file, &loaded, target, &args.cluster, cx)?;
                    // one change at a time: the platform's Lease, as `apply` takes it (not for a dry run)
                    let events = cx.printer.deploy_events(crate::deploy::Mode::Apply);
                    let _file = if args.dry_run {
                        None
                    } else {
                        super::lock(
                            &args.file,
                            &loaded.platform.metadata.name,
                            "backup restore",
                            args.force_unlock,
                            cx,
                        )?
                    };
                    let lease = if args.dry_run {
                        None
                    } else {
                        let holder = crate::deploy::lock::Holder::current("backup restore");
                        Some(
                            platform
                                .lock(&holder, args.force_unlock, &events)
                                .map_err(|e| Error::from(crate::deploy::DeployError::from(e)))?,
                        )
                    };
                    let restored = platform.restore(&opts, &shown);
                    if let Some(lease) = lease {
                        platform.unlock(lease, &events);
                    }
                    restored?
                }
                _ => {
                    let from = Site::new(&args.file, &loaded, &cx.catalog)?;
                    let into = match &args.into {
                        Some(p) => Some(Site::open(p, &cx.catalog)?),
                        None => None,
                    };
                    // the platform restored into is the one changed: it is locked (not for a dry run)
                    let holder = crate::deploy::lock::Holder::current("backup restore");
                    let (from, into, _lock) = match (args.dry_run, into) {
                        (true, into) => (from, into, None),
                        (false, Some(into)) => {
                            let lock = super::lock(
                                &into.document,
                                into.name(),
                                "backup restore",
                                args.force_unlock,
                                cx,
                            )?;
                            (from, Some(into.changing(holder)), lock)
                        }
                        (false, None) => {
                            let lock = super::lock(
                                &args.file,
                                from.name(),
                                "backup restore",
                                args.force_unlock,
                                cx,
                            )?;
                            (from.changing(holder), None, lock)
                        }
                    };
                    let opts = hosts::RestoreOptions {
                        target: hosts::RestoreTarget::Time(args.to_time.clone()),
                        dry_run: args.dry_run,
                        replace: args.replace,
                    };
                    hosts::restore(&from, into.as_ref(), &opts, &shown)?
                }
            };
            cx.printer.report(&Restored {
                ok: true,
                restored: !report.dry_run,
                report,
            })?;
        }
    }
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn text(report: &impl Report) -> String {
        Text::of(report)
    }

    fn restore_report(into: RestoredInto, dry_run: bool) -> RestoreReport {
        RestoreReport {
            platform: "acme-next".into(),
            target_time: "2026-11-23 14:05:00+00".into(),
            dry_run,
            steps: vec!["stop PostgreSQL on db2".into()],
            next_steps: vec!["take a full backup".into()],
            seconds: 12.34,
            into,
        }
    }

    fn on_host() -> RestoredInto {
        RestoredInto::Host {
            source_platform: "acme".into(),
            host: "db2".into(),
            recoverable_from: "2026-11-23 10:00:00+00".into(),
            recoverable_to: "2026-11-23 15:00:00+00".into(),
            from_backup: "20261123-100000F".into(),
            archiving_off: true,
        }
    }

    #[test]
    fn a_restore_on_a_host_says_its_window_steps_result_and_next_steps() {
        let r = Restored {
            ok: true,
            restored: true,
            report: restore_report(on_host(), false),
        };
        assert_eq!(
            text(&r),
            "recoverable window of acme: 2026-11-23 10:00:00+00 to 2026-11-23 15:00:00+00\n  did: stop PostgreSQL on db2\n\
             restored acme as of 2026-11-23 14:05:00+00 into acme-next on db2 (from backup 20261123-100000F) in 12.3 s\nnext: take a full backup\n"
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            (
                json["restored"].clone(),
                json["report"]["sourcePlatform"].clone(),
                json["report"]["archivingOff"].clone()
            ),
            (true.into(), "acme".into(), true.into())
        );
    }

    #[test]
    fn a_dry_run_on_a_cluster_says_what_it_would_do() {
        let r = Restored {
            ok: true,
            restored: false,
            report: restore_report(
                RestoredInto::Namespace {
                    namespace: "acme".into(),
                },
                true,
            ),
        };
        assert_eq!(
            text(&r),
            "  would: stop PostgreSQL on db2\ndry run: nothing was changed\n"
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["report"]["namespace"], "acme");
        assert_eq!(json["report"]["steps"].as_array().unwrap().len(), 1);
        assert!(json["report"].get("host").is_none());
    }

    #[test]
    fn an_empty_repository_says_how_to_take_a_backup() {
        let inv = Inventory {
            stanza: "acme".into(),
            status: "ok".into(),
            cipher: "aes-256-cbc".into(),
            backups: vec![],
            wal_min: String::new(),
            wal_max: String::new(),
            recoverable_from: None,
            recoverable_to: None,
        };
        let listed = Listed {
            ok: true,
            repository: inv,
            document: Path::new("p.yaml"),
        };
        assert_eq!(
            text(&listed),
            "stanza acme (ok, aes-256-cbc): 0 backups\nno backup yet: take one with `terroir backup now p.yaml --type full`\n"
        );
    }
}
