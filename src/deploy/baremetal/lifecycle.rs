//! The platform's life on hosts after its first apply: the restore point taken before a new
//! release, the release switch and its history, `terroir rollback`, and `terroir destroy`.
//!
//! A release lives in `<dir>/releases/<sha256>`; `<dir>/current` points at the running one and
//! `<dir>/releases/history.jsonl` records each switch (`lifecycle::release::Switch`), with the
//! restore point of the database taken before it.

use std::collections::{BTreeMap, BTreeSet};

use super::error::HostsError;
use super::release::{HEALTH_DEADLINE, healthy, on, psql, releases, switch_script};
use super::site::{Site, SiteError, run};
use super::ssh::{Connection, shell_quote};
use crate::backup::hosts::{RestoreOptions, RestoreTarget};
use crate::deploy::{DeployError, Lifecycle, Work};
use crate::document::Role;
use crate::lifecycle::destroy::{self, Action, Done, Item, Kind};
use crate::lifecycle::release::{self, History, Loss, RestorePoint, Switch, short};
use crate::lifecycle::rollback::{self, Report, Step as RollbackStep};
use crate::pipeline::render::plan::{ArtifactStep, HostPlan, Rollout, Step};
use crate::reversibility::export::SVC;

/// One application host's releases: its history, the releases kept, and where it runs them.
struct AppHost<'a> {
    host: &'a HostPlan,
    dir: String,
    keep: u32,
    rollout: Rollout,
    history: History,
    kept: Vec<String>,
    current: String,
}

/// The rollout settings of an application host (rendered for each one with a release).
fn rollout_of(host: &HostPlan) -> Result<Rollout, DeployError> {
    host.rollout.clone().ok_or_else(|| DeployError::Unsupported {
        what: "rollback",
        target: "baremetal",
        why: format!(
            "{} carries the application without a health check to switch releases by (render the document with this version of terroir and apply it)",
            host.name
        ),
    })
}

fn read_app_host<'a>(
    site: &Site,
    host: &'a HostPlan,
    artifact: &ArtifactStep,
) -> Result<AppHost<'a>, DeployError> {
    let conn = site.connect(&host.name).map_err(site_error)?;
    let out = run(
        &conn,
        &host.name,
        "reading the releases",
        &format!(
            "cd {} 2>/dev/null || exit 0; readlink current || true; echo --; ls -1 releases 2>/dev/null | grep -E '^[0-9a-f]{{64}}$' || true; echo --; cat releases/history.jsonl 2>/dev/null || true",
            shell_quote(&artifact.dir)
        ),
    )
    .map_err(site_error)?;
    let mut parts = out.splitn(3, "--\n");
    let current = parts
        .next()
        .unwrap_or_default()
        .trim()
        .trim_start_matches("releases/")
        .to_owned();
    let kept = parts
        .next()
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    let history = History::parse(parts.next().unwrap_or_default());
    Ok(AppHost {
        host,
        dir: artifact.dir.clone(),
        keep: artifact.keep,
        rollout: rollout_of(host)?,
        history,
        kept,
        current,
    })
}

fn site_error(e: SiteError) -> DeployError {
    DeployError::Hosts(HostsError::Site(Box::new(e)))
}

/// Switch `host` to `release`, record it, restart the service and check its health: what was
/// done, or why it failed.
fn switch(
    conn: &Connection,
    app: &AppHost<'_>,
    release: &str,
    from: &str,
    by: &str,
    restore_point: Option<RestorePoint>,
) -> Result<String, String> {
    let record = Switch {
        at: k8s_openapi::jiff::Timestamp::now().as_second(),
        release: release.to_owned(),
        from: Some(from.to_owned()).filter(|f| !f.is_empty()),
        restore_point,
        by: by.to_owned(),
    };
    let name = &app.host.name;
    on(
        conn,
        name,
        &format!("switching to release {}", short(release)),
        &format!(
            "set -e; cd {}; [ -d releases/{} ] || {{ echo 'release {} is not kept here' >&2; exit 3; }}; {}; {SVC} svc {} restart >/dev/null",
            shell_quote(&app.dir),
            shell_quote(release),
            short(release),
            switch_script(&record, app.keep),
            shell_quote(&app.rollout.service)
        ),
    )?;
    let check = format!(
        "GET http://127.0.0.1:{}{} on the host",
        app.rollout.health_port, app.rollout.health_path
    );
    let took = healthy(conn, &app.rollout, HEALTH_DEADLINE).map_err(|why| {
        format!(
            "release {} failed its health check ({check}): {why}",
            short(release)
        )
    })?;
    Ok(format!(
        "release {} runs, healthy after {:.1} s ({check})",
        short(release),
        took.as_secs_f64()
    ))
}

/// The count of rows written since `point` in the application's database, and now.
fn loss(site: &Site, point: &RestorePoint) -> Result<Loss, DeployError> {
    let db = &site.resolved.components.database;
    let primary = super::health::primary(site).unwrap_or_default();
    let conn = site.connect(&primary).map_err(site_error)?;
    let failed = |why: String| DeployError::Unsupported {
        what: "rollback --with-data",
        target: "baremetal",
        why: format!("counting what the restore would lose on {primary}: {why}"),
    };
    let now = psql(
        &conn,
        &primary,
        db.port,
        "postgres",
        "select extract(epoch from now())::bigint, to_char(now() at time zone 'utc', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
    )
    .map_err(failed)?;
    let (unix, time) = now.trim().split_once('|').unwrap_or(("0", ""));
    let rows = psql(
        &conn,
        &primary,
        db.port,
        &db.name,
        &release::rows_since_sql(point.txid),
    )
    .map_err(failed)?;
    Ok(Loss {
        database: db.name.clone(),
        restore_point: point.clone(),
        now: time.to_owned(),
        seconds: unix.parse::<i64>().unwrap_or_default() - point.unix,
        tables: release::parse_rows(&rows),
    })
}

impl Lifecycle for super::driver::Hosts {
    async fn inventory(
        &self,
        work: &Work<'_>,
        options: &destroy::Options,
    ) -> Result<destroy::Plan, DeployError> {
        tokio::task::block_in_place(|| plan_destroy(work, options))
    }

    async fn destroy(
        &self,
        work: &Work<'_>,
        plan: &destroy::Plan,
    ) -> Result<Vec<Done>, DeployError> {
        tokio::task::block_in_place(|| carry_out(work, plan))
    }

    async fn rollback(
        &self,
        work: &Work<'_>,
        request: &rollback::Request,
    ) -> Result<Report, DeployError> {
        tokio::task::block_in_place(|| roll_back(work, request))
    }
}

fn roll_back(work: &Work<'_>, request: &rollback::Request) -> Result<Report, DeployError> {
    let site = Site::from_work(work)
        .map_err(site_error)?
        .changing(work.holder.clone());
    let Some((artifact, hosts)) = releases(&site.plan) else {
        return Err(DeployError::Unsupported {
            what: "rollback",
            target: "baremetal",
            why: "the document installs no release (components.app.artifact)".into(),
        });
    };
    let apps: Vec<AppHost<'_>> = hosts
        .iter()
        .map(|h| read_app_host(&site, h, artifact))
        .collect::<Result<_, _>>()?;
    let first = &apps[0];
    let target = first.history.target(&first.kept, request.to.as_deref())?;
    let from = first.current.clone();
    for app in &apps {
        if !app.kept.contains(&target) {
            return Err(DeployError::Release(release::ReleaseError::Unknown(
                format!("{} on {}", short(&target), app.host.name),
                app.kept
                    .iter()
                    .map(|k| short(k).to_owned())
                    .collect::<Vec<_>>()
                    .join(", "),
            )));
        }
    }
    let document = crate::deploy::document_name(work.document);
    let mut report = Report {
        platform: site.name().to_owned(),
        from: from.clone(),
        to: target.clone(),
        with_data: request.with_data,
        loss: None,
        changed: false,
        steps: Vec::new(),
        next_steps: Vec::new(),
    };
    let point = if request.with_data {
        if site.resolved.components.database.highly_available {
            return Err(DeployError::Unsupported {
                what: "rollback --with-data",
                target: "baremetal",
                why: "the database is replicated (Patroni): restoring it to a restore point is done member by member, which terroir does not do yet; roll back the release alone, then restore with pgBackRest by hand (the runbook's restore section)".into(),
            });
        }
        let point = first.history.restore_point(&target)?;
        let lost = loss(&site, &point)?;
        for line in lost.statement() {
            work.events.warn(&line);
        }
        report.loss = Some(lost);
        if !request.yes {
            report.next_steps.push(format!(
                "terroir rollback {document} --with-data --yes{} restores the database and goes back to release {}",
                request.to.as_deref().map(|t| format!(" --to {t}")).unwrap_or_default(),
                short(&target)
            ));
            return Ok(report);
        }
        Some(point)
    } else {
        None
    };
    report.changed = true;
    if let Some(point) = &point {
        // nothing writes while the database goes back
        for app in &apps {
            let conn = site.connect(&app.host.name).map_err(site_error)?;
            let r = on(
                &conn,
                &app.host.name,
                "stopping the application",
                &format!(
                    "{SVC} svc {} stop >/dev/null",
                    shell_quote(&app.rollout.service)
                ),
            );
            report.steps.push(RollbackStep {
                place: app.host.name.clone(),
                detail: r.as_ref().map_or_else(Clone::clone, |_| {
                    format!("application stopped (release {})", short(&from))
                }),
                ok: r.is_ok(),
            });
            if r.is_err() {
                return Ok(report);
            }
        }
        work.events.note(&format!(
            "restoring the database to {} ({})",
            point.name, point.time
        ));
        let restored = crate::backup::hosts::restore(
            &site,
            None,
            &RestoreOptions {
                target: RestoreTarget::Point {
                    name: point.name.clone(),
                    unix: point.unix,
                },
                dry_run: false,
                replace: true,
            },
            &|line| work.events.note(line),
        );
        let primary = super::health::primary(&site).unwrap_or_default();
        match restored {
            Ok(r) => report.steps.push(RollbackStep {
                place: primary,
                detail: format!(
                    "database restored to the restore point {} ({}) in {:.1} s",
                    point.name, point.time, r.seconds
                ),
                ok: true,
            }),
            Err(e) => {
                report.steps.push(RollbackStep {
                    place: primary,
                    detail: format!(
                        "restoring the database failed: {}; the application stays stopped",
                        crate::text::error_chain(&e)
                    ),
                    ok: false,
                });
                return Ok(report);
            }
        }
    }
    // one host at a time, each healthy before the next; a failed host goes back to what it ran
    for app in &apps {
        let name = app.host.name.clone();
        let conn = site.connect(&name).map_err(site_error)?;
        if app.current == target && point.is_none() {
            report.steps.push(RollbackStep {
                place: name,
                detail: format!("runs release {} already", short(&target)),
                ok: true,
            });
            continue;
        }
        match switch(&conn, app, &target, &app.current, "rollback", None) {
            Ok(detail) => report.steps.push(RollbackStep {
                place: name,
                detail,
                ok: true,
            }),
            Err(why) => {
                let back = if point.is_some() {
                    "the database is restored; the hosts after it were not switched".to_owned()
                } else {
                    match switch(&conn, app, &app.current, &target, "switch-back", None) {
                        Ok(_) => format!(
                            "switched back to release {}, which answers",
                            short(&app.current)
                        ),
                        Err(again) => format!(
                            "switching back to release {} failed too: {again}",
                            short(&app.current)
                        ),
                    }
                };
                report.steps.push(RollbackStep {
                    place: name,
                    detail: format!("{why}; {back}"),
                    ok: false,
                });
                return Ok(report);
            }
        }
    }
    report.next_steps.push(format!(
        "{document} still names release {} (components.app.artifact): set it to release {}'s archive, or the next `terroir apply` installs {} again",
        short(&from),
        short(&target),
        short(&from)
    ));
    if point.is_some() {
        report.next_steps.push(format!(
            "take a full backup now: the restored database starts a new timeline (terroir backup now {document} --type full)"
        ));
    }
    Ok(report)
}

// ---------------------------------------------------------------------------------------------
// destroy

/// A candidate item on a host, with the check saying whether it is there and the script
/// carrying its action out.
#[derive(Debug, Clone)]
struct Candidate {
    item: Item,
    /// Exits 0 when the item is there (and for a service: running or enabled).
    present: String,
    /// Carries the action out (nothing for a kept item).
    act: String,
}

/// The places of a host terroir writes that hold data, whatever step made them.
fn data_places(site: &Site, host: &str) -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    for read in crate::reversibility::inventory::export_reads(&site.resolved) {
        if read.host != host {
            continue;
        }
        use crate::reversibility::inventory::ReadKind;
        let what = match read.kind {
            ReadKind::Database => "PostgreSQL's data and WAL",
            ReadKind::MailQueue => "mail in Postfix's queue",
            ReadKind::Mailboxes => "mailboxes",
            ReadKind::Metrics => "the Prometheus TSDB",
            ReadKind::AppData => "the application's data",
            ReadKind::DkimKeys | ReadKind::PlatformCa => continue,
        };
        out.push((read.path, what));
    }
    let db = &site.resolved.components.database;
    if db.managed
        && db.highly_available
        && site.hosts_with(Role::Consensus).iter().any(|h| h == host)
    {
        out.push((
            format!("/var/lib/etcd/{}", site.name()),
            "the database cluster's consensus state (etcd)",
        ));
    }
    out
}

fn under(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    path.trim_end_matches('/') == dir || path.starts_with(&format!("{dir}/"))
}

/// Services of the host itself that the platform's plan starts but other uses rely on.
const SYSTEM_SERVICES: [&str; 3] = ["rsyslog", "cron", "nftables"];

const WITHOUT_DELETE_DATA: &str = "data: kept without --delete-data";

/// Every candidate item of one host, in the order destroy handles them.
fn candidates(site: &Site, host: &HostPlan, options: &destroy::Options) -> Vec<Candidate> {
    let place = host.name.as_str();
    let keep = |why: &str| Action::Keep {
        why: why.to_owned(),
    };
    let q = shell_quote;
    let data = data_places(site, &host.name);
    let is_data = |path: &str| data.iter().any(|(d, _)| under(path, d) || under(d, path));
    let db = &site.resolved.components.database;
    let mut out = Vec::new();
    let mut push = |item: Item, present: String, act: String| {
        out.push(Candidate { item, present, act });
    };

    // backups first, while pgBackRest's configuration is there
    if let Some(ctx) = crate::backup::context(&site.resolved)
        && site.hosts_with(Role::Database).first().map(String::as_str) == Some(place)
    {
        let s3 = site.resolved.endpoints.backup_s3.as_ref();
        let bucket = s3.map(|s| s.bucket.clone()).unwrap_or_default();
        let what = format!("s3://{bucket}{} (stanza {})", ctx.repo_path, ctx.stanza);
        let base = format!(
            "runuser -u postgres -- pgbackrest --stanza={}",
            q(&ctx.stanza)
        );
        if options.delete_data {
            push(
                Item::new(place, Kind::Backups, what, Action::Remove),
                format!(
                    "command -v pgbackrest >/dev/null && [ -r {} ] && {base} --output=json info | grep -q '\"label\"'",
                    q(&ctx.secrets_conf)
                ),
                format!("{base} stop >/dev/null 2>&1 || true; {base} --force stanza-delete"),
            );
        } else {
            push(
                Item::new(
                    place,
                    Kind::Backups,
                    what,
                    keep("backups: kept without --delete-data"),
                ),
                "true".into(),
                String::new(),
            );
        }
    }
    // what the backup script publishes to the node exporter
    if let Some(ctx) = crate::backup::context(&site.resolved)
        && site.hosts_with(Role::Database).iter().any(|h| h == place)
    {
        let glob = format!("{}/terroir-backup*-{}.prom", ctx.textfile_dir, ctx.stanza);
        push(
            Item::new(place, Kind::File, &glob, Action::Remove),
            format!("ls {glob} >/dev/null 2>&1"),
            format!("rm -f {glob}"),
        );
    }
    // services stopped and disabled
    for step in &host.steps {
        if let Step::Service { service, .. } = step {
            let s = q(&service.name);
            let action = if SYSTEM_SERVICES.contains(&service.name.as_str()) {
                keep(
                    "a service of the host itself (its logs, its scheduled jobs), which other uses of the host rely on",
                )
            } else {
                Action::Stop
            };
            push(
                Item::new(place, Kind::Service, &service.name, action),
                // without systemd, enabled means started at boot (an init script's status is no
                // proof: Postfix's says running once its configuration is gone)
                format!(
                    "if [ -d /run/systemd/system ]; then systemctl is-active -q {s} || systemctl is-enabled -q {s}; else ls /etc/rc2.d/S??{s} >/dev/null 2>&1; fi"
                ),
                format!(
                    "if [ -d /run/systemd/system ]; then systemctl disable --now {s}; else /etc/init.d/{s} stop >/dev/null 2>&1 || true; if [ -x /etc/init.d/{s} ]; then update-rc.d -f {s} remove >/dev/null 2>&1 || true; fi; fi"
                ),
            );
        }
    }
    // data
    for (path, what) in &data {
        let p = q(path);
        let pg = db.managed
            && !db.highly_available
            && *path == crate::reversibility::inventory::postgres_data_dir(db.version);
        let (label, act) = if pg {
            // the package's cluster goes, and an empty one as the package makes it comes back:
            // the next apply configures it as on a host just installed
            (
                format!(
                    "{path} ({what}; an empty cluster is made in its place, as the postgresql-{} package makes it)",
                    db.version
                ),
                format!(
                    "pg_dropcluster --stop {v} main; pg_createcluster {v} main >/dev/null",
                    v = db.version
                ),
            )
        } else if path.starts_with(&format!("/var/lib/{}", site.name())) {
            (format!("{path} ({what})"), format!("rm -rf {p}"))
        } else {
            // a package's directory: what is in it goes
            (
                format!("{path} ({what})"),
                format!("find {p} -mindepth 1 -delete"),
            )
        };
        let present = if pg {
            // a cluster as the package makes it holds three databases (template0, template1,
            // postgres): one directory each under base/
            format!("[ \"$(ls {p}/base 2>/dev/null | wc -l)\" -gt 3 ]")
        } else {
            format!("[ -n \"$(ls -A {p} 2>/dev/null)\" ]")
        };
        let action = if options.delete_data {
            Action::Remove
        } else {
            keep(WITHOUT_DELETE_DATA)
        };
        push(Item::new(place, Kind::Data, label, action), present, act);
    }
    // files and secrets
    let pg_config = |path: &str| {
        db.managed
            && !db.highly_available
            && under(path, &format!("/etc/postgresql/{}/main", db.version))
    };
    // PostgreSQL's configuration stays with the data it serves
    let kept_config = |path: &str| !options.delete_data && pg_config(path);
    for step in &host.steps {
        let (kind, dest) = match step {
            Step::File { file, .. } => (Kind::File, file.dest.as_str()),
            Step::Secret { secret, .. } => (Kind::Secret, secret.dest.as_str()),
            _ => continue,
        };
        if dest == "/etc/resolv.conf" {
            push(
                Item::new(
                    place,
                    kind,
                    dest,
                    keep(
                        "the host's resolver configuration: removing it would leave the host without name resolution",
                    ),
                ),
                format!("[ -e {} ]", q(dest)),
                String::new(),
            );
            continue;
        }
        if pg_config(dest) && options.delete_data {
            // goes with the cluster (the data item)
            continue;
        }
        let action = if kept_config(dest) {
            keep("PostgreSQL's configuration, kept with its data")
        } else if is_data(dest) && !options.delete_data {
            keep(WITHOUT_DELETE_DATA)
        } else {
            Action::Remove
        };
        // a package's configuration file terroir replaced is put back as the package ships it
        // (unless the packages are purged)
        let act = if options.purge_packages {
            format!("rm -f {0}; prune_up {0}", q(dest))
        } else {
            format!("put_back {0} && prune_up {0}", q(dest))
        };
        push(
            Item::new(place, kind, dest, action),
            format!("ours {}", q(dest)),
            act,
        );
    }
    // the files commands made (keys that never left the host)
    for step in &host.steps {
        if let Step::Command { command, .. } = step
            && let Some(path) = &command.creates
            && !is_data(path)
            && !kept_config(path)
        {
            push(
                Item::new(place, Kind::File, path, Action::Remove),
                format!("[ -e {} ]", q(path)),
                format!("rm -rf {}", q(path)),
            );
        }
    }
    // the release directory, then the directories terroir made, deepest first
    let mut dirs: Vec<&str> = host
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Directory { directory, .. } => Some(directory.path.as_str()),
            Step::Artifact { artifact, .. } => Some(artifact.dir.as_str()),
            _ => None,
        })
        .collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.matches('/').count()));
    dirs.dedup();
    for dir in dirs {
        let action = if is_data(dir) && !options.delete_data {
            keep(WITHOUT_DELETE_DATA)
        } else if dirs_keeping(dir, &data, options) {
            keep("holds data kept without --delete-data")
        } else {
            Action::Remove
        };
        push(
            Item::new(place, Kind::Directory, dir, action),
            format!("[ -d {} ]", q(dir)),
            format!("rm -rf {0}; prune_up {0}", q(dir)),
        );
        // /opt/<platform> once its app directory is gone
        if let Some(parent) = dir.strip_suffix("/app").filter(|p| p.starts_with("/opt/")) {
            push(
                Item::new(place, Kind::Directory, parent, Action::Remove),
                format!("[ -d {} ]", q(parent)),
                format!("rmdir {} 2>/dev/null || rm -rf {}", q(parent), q(parent)),
            );
        }
    }
    // accounts
    for step in &host.steps {
        if let Step::User { user, .. } = step {
            let owns_kept = !options.delete_data
                && data
                    .iter()
                    .any(|(d, _)| user.home.as_deref().is_some_and(|h| under(d, h)));
            let action = if owns_kept {
                keep("owns the application's data, kept without --delete-data")
            } else {
                Action::Remove
            };
            push(
                Item::new(place, Kind::User, &user.name, action),
                format!("id -u {} >/dev/null 2>&1", q(&user.name)),
                format!("userdel {}", q(&user.name)),
            );
        }
    }
    // firewall rules
    if host
        .steps
        .iter()
        .any(|s| matches!(s, Step::Firewall { .. }))
    {
        push(
            Item::new(
                place,
                Kind::Firewall,
                "nftables table inet terroir",
                Action::Remove,
            ),
            "nft list table inet terroir >/dev/null 2>&1".into(),
            "nft delete table inet terroir".into(),
        );
    }
    // packages
    for step in &host.steps {
        if let Step::Packages { names, .. } = step {
            for name in names {
                let action = if options.purge_packages {
                    Action::Remove
                } else {
                    keep("packages are kept without --purge-packages (stopped and disabled above)")
                };
                push(
                    Item::new(place, Kind::Package, name, action),
                    format!(
                        "dpkg-query -W -f='${{Status}}' {} 2>/dev/null | grep -q 'ok installed'",
                        q(name)
                    ),
                    format!(
                        "DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq {} >/dev/null",
                        q(name)
                    ),
                );
            }
        }
    }
    // the package mirror terroir set, once nothing needs it
    push(
        Item::new(place, Kind::File, super::probe::MIRROR_LIST, Action::Remove),
        format!("[ -e {} ]", super::probe::MIRROR_LIST),
        format!("rm -f {}", super::probe::MIRROR_LIST),
    );
    out
}

/// Whether `dir` holds a data place kept without --delete-data (it cannot go then).
fn dirs_keeping(dir: &str, data: &[(String, &str)], options: &destroy::Options) -> bool {
    !options.delete_data && data.iter().any(|(d, _)| under(d, dir) && d != dir)
}

/// Shell functions the checks and actions use: `ours P` holds when P is there and is not a
/// package's configuration file as the package ships it; `prune_up P` removes the directories
/// above P that are left empty and belong to no package; `put_back P` removes P and, when it is
/// a package's configuration file, puts the package's own version back, taken from the
/// installed version's archive (no maintainer script runs: nothing is started again).
const FUNCTIONS: &str = r#"owner() { dpkg-query -S "$1" 2>/dev/null | head -n 1 | cut -d: -f1; }
shipped() { p=$(owner "$1"); [ -n "$p" ] && dpkg-query -W -f='${Conffiles}\n' "$p" 2>/dev/null | awk -v f="$1" '$1 == f { print $2 }'; }
ours() { [ -e "$1" ] || [ -L "$1" ] || return 1; s=$(shipped "$1"); [ -z "$s" ] || [ "$(md5sum < "$1" | cut -d' ' -f1)" != "$s" ]; }
prune_up() { d=$(dirname "$1"); while [ "$d" != / ] && [ -d "$d" ] && [ -z "$(ls -A "$d")" ] && [ -z "$(owner "$d")" ]; do rmdir "$d"; d=$(dirname "$d"); done; }
put_back() { s=$(shipped "$1"); rm -f "$1"; [ -n "$s" ] || return 0; v=$(dpkg-query -W -f='${Package}=${Version}' "$(owner "$1")"); d=$(mktemp -d); (cd "$d" && apt-get download -qq -o APT::Sandbox::User=root "$v" >/dev/null) && dpkg-deb --fsys-tarfile "$d"/*.deb | tar -x -C / ".$1"; r=$?; rm -rf "$d"; return $r; }
"#;

/// Which candidates are there, with one command per host.
fn present(conn: &Connection, host: &str, candidates: &[Candidate]) -> Result<Vec<bool>, String> {
    let mut script = FUNCTIONS.to_owned();
    for (i, c) in candidates.iter().enumerate() {
        script.push_str(&format!(
            "if ( {} ) >/dev/null 2>&1; then echo {i}; fi\n",
            c.present
        ));
    }
    let out = on(conn, host, "looking for what the platform left", &script)?;
    let found: BTreeSet<usize> = out.lines().filter_map(|l| l.trim().parse().ok()).collect();
    Ok((0..candidates.len()).map(|i| found.contains(&i)).collect())
}

/// What is there of the platform on every host, as candidates.
fn found(
    site: &Site,
    options: &destroy::Options,
) -> Result<Vec<(String, Vec<Candidate>)>, DeployError> {
    let results = crate::parallel::in_parallel(&site.plan.hosts, 8, |host| {
        let all = candidates(site, host, options);
        let conn = site
            .connect(&host.name)
            .map_err(|e| (host.name.clone(), crate::text::error_chain(&e)))?;
        let there = present(&conn, &host.name, &all).map_err(|e| (host.name.clone(), e))?;
        Ok((
            host.name.clone(),
            all.into_iter()
                .zip(there)
                .filter(|(_, p)| *p)
                .map(|(c, _)| c)
                .collect(),
        ))
    });
    results
        .into_iter()
        .map(|r: Result<(String, Vec<Candidate>), (String, String)>| {
            r.map_err(|(host, why)| DeployError::Unsupported {
                what: "destroy",
                target: "baremetal",
                why: format!("{host} cannot be inspected, so nothing was changed: {why}"),
            })
        })
        .collect()
}

/// The newest backup of the platform, when it keeps backups and its repository answers.
fn last_backup(site: &Site) -> Option<destroy::FinalCopy> {
    crate::backup::context(&site.resolved)?;
    let inventory = crate::backup::hosts::list(site).ok()?;
    let b = inventory.backups.last()?;
    Some(destroy::FinalCopy {
        kind: "backup".into(),
        location: format!("{} ({})", b.label, inventory.stanza),
        finished: b.stopped,
        digests: BTreeMap::new(),
    })
}

fn plan_destroy(work: &Work<'_>, options: &destroy::Options) -> Result<destroy::Plan, DeployError> {
    {
        let site = Site::from_work(work).map_err(site_error)?;
        let items = found(&site, options)?
            .into_iter()
            .flat_map(|(_, c)| c.into_iter().map(|c| c.item))
            .collect();
        Ok(destroy::Plan {
            platform: site.name().to_owned(),
            target: "baremetal".into(),
            options: *options,
            items,
            last_backup: last_backup(&site),
        })
    }
}

fn carry_out(work: &Work<'_>, plan: &destroy::Plan) -> Result<Vec<Done>, DeployError> {
    {
        let site = Site::from_work(work)
            .map_err(site_error)?
            .changing(work.holder.clone());
        // the plan's items again from the hosts, with their scripts: what is carried out is what
        // the plan shown said, found again under the lock
        let found = found(&site, &plan.options)?;
        let results = crate::parallel::in_parallel(&found, 8, |(host, candidates)| {
            let mut done = Vec::new();
            let conn = match site.connect(host) {
                Ok(c) => c,
                Err(e) => {
                    let why = crate::text::error_chain(&e);
                    return candidates
                        .iter()
                        .filter(|c| !c.item.kept())
                        .map(|c| Done {
                            item: c.item.clone(),
                            failed: Some(why.clone()),
                        })
                        .collect();
                }
            };
            for c in candidates.iter().filter(|c| !c.item.kept()) {
                if !plan.items.contains(&c.item) {
                    // appeared since the plan was shown: not in what was confirmed
                    continue;
                }
                let r = on(
                    &conn,
                    host,
                    &describe(&c.item),
                    &format!("{FUNCTIONS}{}", c.act),
                );
                work.events.note(&format!(
                    "[{host}] {}: {}",
                    if r.is_ok() { "done" } else { "FAILED" },
                    describe(&c.item)
                ));
                done.push(Done {
                    item: c.item.clone(),
                    failed: r.err(),
                });
            }
            done
        });
        // in the plan's order
        let mut all: Vec<Done> = results.into_iter().flatten().collect();
        all.sort_by_key(|d| {
            plan.items
                .iter()
                .position(|i| *i == d.item)
                .unwrap_or(usize::MAX)
        });
        Ok(all)
    }
}

fn describe(item: &Item) -> String {
    match item.action {
        Action::Stop => format!("stop and disable {}", item.what),
        _ => format!("remove {}", item.what),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_under_another_is_under_it() {
        assert!(under("/var/lib/crm/x", "/var/lib/crm"));
        assert!(under("/var/lib/crm", "/var/lib/crm/"));
        assert!(!under("/var/lib/crm2", "/var/lib/crm"));
    }
}
