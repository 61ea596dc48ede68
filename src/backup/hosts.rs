//! `terroir backup now|list|restore`: pgBackRest driven over SSH on the database host, as the
//! `postgres` account. Secrets travel only through standard input into files of mode 0600, never
//! on a command line.

use std::io::Write;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use super::error::BackupError;
use super::{
    BackupContext, CIPHER_PASS, RestoreReport, RestoredInto, S3_ACCESS_KEY, S3_SECRET_KEY, context,
    data_directory,
};
use crate::deploy::baremetal::site::{Site, SiteError, run, why};
use crate::deploy::baremetal::ssh::{Connection, shell_quote};
use crate::reversibility::export::SVC;
use crate::text::last_lines;

/// The platform's backup settings and its database host.
fn backed_up(site: &Site) -> Result<(BackupContext, String), BackupError> {
    let ctx = context(&site.resolved).ok_or_else(|| BackupError::NoBackups {
        document: site.document.clone(),
        platform: site.name().to_owned(),
    })?;
    Ok((ctx, database_host(site)?))
}

fn database_host(site: &Site) -> Result<String, BackupError> {
    let db = &site.resolved.components.database;
    if !db.enabled || !db.managed {
        return Err(BackupError::NoManagedDatabase {
            document: site.document.clone(),
            platform: site.name().to_owned(),
        });
    }
    // a replicated database is backed up from its primary, wherever Patroni elected it
    crate::deploy::baremetal::health::primary(site).ok_or_else(|| BackupError::NoDatabaseHost {
        document: site.document.clone(),
    })
}

/// One backup in the repository.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Backup {
    pub label: String,
    /// `full`, `diff` or `incr`.
    pub kind: String,
    /// Unix seconds.
    pub started: i64,
    pub stopped: i64,
    /// Size of the database it holds, and what it takes in the repository (compressed, only the
    /// files it stores itself).
    pub database_bytes: u64,
    pub repository_bytes: u64,
    pub wal_start: String,
    pub wal_stop: String,
}

/// What the repository holds for a stanza.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    pub stanza: String,
    pub status: String,
    pub cipher: String,
    pub backups: Vec<Backup>,
    /// Oldest and newest WAL segment archived.
    pub wal_min: String,
    pub wal_max: String,
    /// A point-in-time restore can reach any time in this window (Unix seconds): from the end
    /// of the oldest backup to the last archived WAL segment (or the newest backup's end when the
    /// database cannot tell).
    pub recoverable_from: Option<i64>,
    pub recoverable_to: Option<i64>,
}

pub fn parse_info(text: &str, stanza: &str) -> Result<Inventory, BackupError> {
    let v: Value =
        serde_json::from_str(text.trim()).map_err(|source| BackupError::InfoNotJson {
            output: last_lines(text, 3),
            source,
        })?;
    let s = v
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == stanza))
        .ok_or_else(|| BackupError::NoStanza {
            stanza: stanza.to_owned(),
        })?;
    let str_of = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let backups: Vec<Backup> = s["backup"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|b| Backup {
                    label: str_of(&b["label"]),
                    kind: str_of(&b["type"]),
                    started: b["timestamp"]["start"].as_i64().unwrap_or_default(),
                    stopped: b["timestamp"]["stop"].as_i64().unwrap_or_default(),
                    database_bytes: b["info"]["size"].as_u64().unwrap_or_default(),
                    repository_bytes: b["info"]["repository"]["delta"]
                        .as_u64()
                        .unwrap_or_default(),
                    wal_start: str_of(&b["archive"]["start"]),
                    wal_stop: str_of(&b["archive"]["stop"]),
                })
                .collect()
        })
        .unwrap_or_default();
    let archive = s["archive"]
        .as_array()
        .and_then(|a| a.last())
        .cloned()
        .unwrap_or(Value::Null);
    Ok(Inventory {
        stanza: stanza.to_owned(),
        status: str_of(&s["status"]["message"]),
        cipher: str_of(&s["cipher"]),
        recoverable_from: backups.iter().map(|b| b.stopped).min(),
        recoverable_to: backups.iter().map(|b| b.stopped).max(),
        backups,
        wal_min: str_of(&archive["min"]),
        wal_max: str_of(&archive["max"]),
    })
}

/// `pgbackrest info` of the platform's stanza, run on its database host.
fn info(conn: &Connection, host: &str, ctx: &BackupContext) -> Result<Inventory, BackupError> {
    let out = run(
        conn,
        host,
        "pgbackrest info",
        &format!(
            "runuser -u postgres -- pgbackrest --stanza={} --output=json info",
            shell_quote(&ctx.stanza)
        ),
    )?;
    parse_info(&out, &ctx.stanza)
}

/// When the last WAL segment was archived (Unix seconds), if the database can say.
fn last_archived(conn: &Connection, port: u32) -> Option<i64> {
    let out = conn.sudo(&format!("runuser -u postgres -- psql -p {port} -XAtc 'select extract(epoch from last_archived_time)::bigint from pg_stat_archiver'"), None).ok()?;
    if !out.ok() {
        return None;
    }
    out.stdout_str().trim().parse().ok()
}

pub fn list(site: &Site) -> Result<Inventory, BackupError> {
    let (ctx, host) = backed_up(site)?;
    let conn = site.connect(&host)?;
    let mut inv = info(&conn, &host, &ctx)?;
    if let (Some(to), Some(archived)) = (
        inv.recoverable_to,
        last_archived(&conn, site.resolved.components.database.port),
    ) {
        inv.recoverable_to = Some(to.max(archived));
    }
    Ok(inv)
}

/// A line-by-line view of a stream, for progress.
struct Lines<'a> {
    pending: Vec<u8>,
    tail: Vec<String>,
    each: &'a dyn Fn(&str),
}

impl Write for Lines<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        while let Some(i) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=i).collect();
            let line = String::from_utf8_lossy(&line).trim_end().to_owned();
            (self.each)(&line);
            self.tail.push(line);
            if self.tail.len() > 8 {
                self.tail.remove(0);
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupRun {
    pub platform: String,
    pub host: String,
    pub seconds: f64,
    pub backup: Backup,
}

/// Run one backup now on the database host (`full`, `incr` or `diff`), showing pgBackRest's
/// progress lines through `progress`.
pub fn now(site: &Site, kind: &str, progress: &dyn Fn(&str)) -> Result<BackupRun, BackupError> {
    let (ctx, host) = backed_up(site)?;
    let conn = site.connect(&host)?;
    let started = Instant::now();
    let mut lines = Lines {
        pending: Vec::new(),
        tail: Vec::new(),
        each: progress,
    };
    let what = "the backup";
    let out = conn
        .sudo_to(&format!("[ -x {0} ] || {{ echo 'backups are not set up on this host yet: run terroir apply first' >&2; exit 3; }}; {0} {1} 2>&1", shell_quote(&ctx.script), shell_quote(kind)), &mut lines)
        .map_err(SiteError::ssh(&host, what))?;
    if !out.ok() {
        // its output went to standard output (2>&1): the streamed lines say why
        return Err(SiteError::Remote {
            host,
            what: what.into(),
            status: out.status,
            output: why(&out.stderr_str(), &lines.tail.join("\n")),
        }
        .into());
    }
    let inv = info(&conn, &host, &ctx)?;
    let backup = inv
        .backups
        .last()
        .cloned()
        .ok_or_else(|| BackupError::NoneListed { host: host.clone() })?;
    Ok(BackupRun {
        platform: site.name().to_owned(),
        host,
        seconds: started.elapsed().as_secs_f64(),
        backup,
    })
}

pub struct RestoreOptions {
    pub target: RestoreTarget,
    pub dry_run: bool,
    pub replace: bool,
}

/// What a restore replays the archived WAL up to.
pub enum RestoreTarget {
    /// `YYYY-MM-DD HH:MM:SS+00` (any offset; fractions of a second allowed).
    Time(String),
    /// A named restore point (`pg_create_restore_point`), taken at `unix` (Unix seconds).
    Point { name: String, unix: i64 },
}

impl RestoreTarget {
    /// How people read it, its time in Unix seconds, and pgBackRest's --type and --target.
    fn resolve(&self) -> Result<(String, i64, &'static str, String), BackupError> {
        match self {
            RestoreTarget::Time(text) => {
                let (t, s) = parse_time(text)?;
                Ok((t.clone(), s, "time", t))
            }
            RestoreTarget::Point { name, unix } => Ok((
                format!("the restore point {name} ({})", utc(*unix)),
                *unix,
                "name",
                name.clone(),
            )),
        }
    }
}

/// Parse a target time into the UTC form pgBackRest takes and Unix seconds.
pub fn parse_time(text: &str) -> Result<(String, i64), BackupError> {
    use k8s_openapi::jiff::{Timestamp, tz::TimeZone};
    let t: Timestamp = text.trim().parse().map_err(|source| BackupError::Time {
        text: text.to_owned(),
        source,
    })?;
    let formatted = t
        .to_zoned(TimeZone::UTC)
        .strftime("%Y-%m-%d %H:%M:%S%.f")
        .to_string();
    Ok((format!("{formatted}+00"), t.as_second()))
}

fn utc(seconds: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(seconds)
        .map(|t| {
            t.to_zoned(k8s_openapi::jiff::tz::TimeZone::UTC)
                .strftime("%Y-%m-%d %H:%M:%S+00")
                .to_string()
        })
        .unwrap_or_default()
}

/// The source platform's repository as a pgBackRest configuration for another host: its
/// settings, its secrets and the destination's cluster. Held in memory, sent through standard
/// input only.
fn repository_conf(
    from: &Site,
    ctx: &BackupContext,
    dir: &str,
    version: u32,
    port: u32,
) -> Result<String, BackupError> {
    let s3 = from
        .resolved
        .endpoints
        .backup_s3
        .as_ref()
        .ok_or_else(|| BackupError::NoBackups {
            document: from.document.clone(),
            platform: from.name().to_owned(),
        })?;
    let secret = |name: &'static str| -> Result<String, BackupError> {
        match from.secrets.get(name) {
            Ok(Some(v)) => Ok(v.trim().to_owned()),
            Ok(None) => Err(BackupError::MissingSecret {
                name,
                platform: from.name().to_owned(),
                store: from.secrets.dir().to_owned(),
            }),
            Err(source) => Err(BackupError::Secret {
                name,
                platform: from.name().to_owned(),
                source: Box::new(source),
            }),
        }
    };
    let mut conf = format!(
        "[global]\nrepo1-type=s3\nrepo1-s3-endpoint={}\nrepo1-storage-port={}\nrepo1-s3-bucket={}\nrepo1-s3-region={}\nrepo1-s3-uri-style={}\nrepo1-path={}\nrepo1-cipher-type=aes-256-cbc\n",
        ctx.s3_host, ctx.s3_port, s3.bucket, s3.region, ctx.s3_uri_style, ctx.repo_path
    );
    if s3.ca_certificate.is_some() {
        conf.push_str(&format!("repo1-storage-ca-file={dir}/ca.pem\n"));
    }
    conf.push_str(&format!(
        "repo1-s3-key={}\nrepo1-s3-key-secret={}\nrepo1-cipher-pass={}\n",
        secret(S3_ACCESS_KEY)?,
        secret(S3_SECRET_KEY)?,
        secret(CIPHER_PASS)?
    ));
    conf.push_str(&format!("log-path=/var/log/pgbackrest\nprocess-max=2\n\n[{}]\npg1-path={}\npg1-port={port}\npg1-socket-path=/var/run/postgresql\n", ctx.stanza, data_directory(version)));
    Ok(conf)
}

/// Shell that installs the temporary configuration directory `dir` (mode 0700, postgres) from
/// standard input: the configuration (its byte count first), then the CA certificate.
fn install_conf(dir: &str) -> String {
    let d = shell_quote(dir);
    format!(
        "set -e; umask 077; rm -rf {d}; install -d -m 0700 -o postgres -g postgres {d} {d}/conf.d; \
         IFS= read -r n; head -c \"$n\" > {d}/pgbackrest.conf; cat > {d}/ca.pem; chown postgres:postgres {d}/pgbackrest.conf {d}/ca.pem; "
    )
}

fn conf_input(conf: &str, ca: Option<&str>) -> Vec<u8> {
    let mut input = format!("{}\n", conf.len()).into_bytes();
    input.extend_from_slice(conf.as_bytes());
    input.extend_from_slice(ca.unwrap_or_default().as_bytes());
    input
}

/// Roles and their password files on `site`'s database host (the application's and each
/// tenant's): the copies the plan gives PostgreSQL there (group `postgres`).
fn role_passwords(site: &Site, host: &str) -> Vec<(String, String)> {
    use crate::pipeline::render::plan::Step;
    let r = &site.resolved;
    let files: std::collections::BTreeMap<&str, &str> = site
        .plan
        .hosts
        .iter()
        .filter(|h| h.name == host)
        .flat_map(|h| &h.steps)
        .filter_map(|s| match s {
            Step::Secret { secret, .. } if secret.group == "postgres" => {
                Some((secret.secret.as_str(), secret.dest.as_str()))
            }
            _ => None,
        })
        .collect();
    std::iter::once((&r.components.database.user, "database-password"))
        .chain(r.tenants.iter().map(|t| (&t.user, t.secret.as_str())))
        .filter_map(|(role, secret)| {
            files
                .get(secret)
                .map(|dest| (role.clone(), (*dest).to_owned()))
        })
        .collect()
}

/// Restore `from`'s backups as of a time into `into`'s database host (`from`'s own when `into`
/// is `None`). Every check runs before anything changes.
pub fn restore(
    from: &Site,
    into: Option<&Site>,
    opts: &RestoreOptions,
    progress: &dyn Fn(&str),
) -> Result<RestoreReport, BackupError> {
    let started = Instant::now();
    let (ctx, source_host) = backed_up(from)?;
    let dest = into.unwrap_or(from);
    let other = into.is_some();
    let host = database_host(dest)?;
    let (sv, dv) = (
        &from.resolved.components.database.version,
        &dest.resolved.components.database.version,
    );
    if sv != dv {
        return Err(BackupError::MajorVersion {
            from: from.name().to_owned(),
            from_version: *sv,
            into: dest.name().to_owned(),
            into_version: *dv,
        });
    }
    let (target, target_s, target_type, target_arg) = opts.target.resolve()?;
    let port = dest.resolved.components.database.port;
    let dir = format!("/var/lib/postgresql/.terroir-restore-{}", ctx.stanza);
    let conf = repository_conf(from, &ctx, &dir, *dv, port)?;
    let ca = from
        .resolved
        .endpoints
        .backup_s3
        .as_ref()
        .and_then(|s| s.ca_certificate.clone());
    let input = conf_input(&conf, ca.as_deref());

    progress(&format!(
        "checking {}'s repository from {host}",
        from.name()
    ));
    let conn = dest.connect(&host)?;
    let q = |s: &str| shell_quote(s);
    let base = format!(
        "runuser -u postgres -- pgbackrest --config={0}/pgbackrest.conf --config-include-path={0}/conf.d --stanza={1}",
        q(&dir),
        q(&ctx.stanza)
    );
    let what = format!("reading {}'s backup repository", from.name());
    let out = conn
        .sudo(&format!("command -v pgbackrest >/dev/null || {{ echo 'pgbackrest is not installed on this host (enable backups in its document and apply it)' >&2; exit 3; }}; {} trap 'rm -rf {}' EXIT; {base} --output=json info", install_conf(&dir), q(&dir)), Some(&input))
        .map_err(SiteError::ssh(&host, &what))?;
    if !out.ok() {
        return Err(SiteError::remote(&host, what, &out).into());
    }
    let inv = parse_info(&out.stdout_str(), &ctx.stanza)?;
    let Some(first) = inv.recoverable_from else {
        return Err(BackupError::EmptyRepository {
            platform: from.name().to_owned(),
            status: inv.status,
            document: from.document.clone(),
        });
    };
    // the end of the archived WAL, from the source database when it answers
    let archived = if source_host == host && !other {
        last_archived(&conn, port)
    } else {
        from.connect(&source_host)
            .ok()
            .and_then(|c| last_archived(&c, from.resolved.components.database.port))
    };
    let last = inv
        .recoverable_to
        .unwrap_or(first)
        .max(archived.unwrap_or(0));
    if target_s < first || target_s > last {
        return Err(BackupError::OutsideWindow {
            target,
            platform: from.name().to_owned(),
            from: utc(first),
            to: utc(last),
            archive_end_known: archived.is_some(),
        });
    }
    let from_backup = inv
        .backups
        .iter()
        .rfind(|b| b.stopped <= target_s)
        .map(|b| b.label.clone())
        .unwrap_or_default();

    // the destination's data
    let tables = run(
        &conn,
        &host,
        "count the destination's tables",
        &format!(
            "for d in $(runuser -u postgres -- psql -p {port} -XAtc \"select datname from pg_database where not datistemplate and datname <> 'postgres'\"); do \
             n=$(runuser -u postgres -- psql -p {port} -d \"$d\" -XAtc \"select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.relkind in ('r','p') and n.nspname not in ('pg_catalog','information_schema') and n.nspname not like 'pg_toast%'\"); \
             [ \"$n\" = 0 ] || echo \"$d $n\"; done"
        ),
    )?;
    let held: Vec<String> = tables
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.replacen(' ', ": ", 1) + " tables")
        .collect();
    if !opts.replace {
        if !other {
            return Err(BackupError::WouldRewind {
                platform: from.name().to_owned(),
                target,
            });
        }
        if !held.is_empty() {
            return Err(BackupError::HoldsData {
                platform: dest.name().to_owned(),
                host,
                held,
            });
        }
    }

    let mut steps = vec![
        format!("stop PostgreSQL on {host}"),
        format!(
            "restore {}'s backup {from_backup} and replay its archived WAL up to {target} into {} (pgbackrest restore --type={target_type} --delta)",
            from.name(),
            data_directory(*dv)
        ),
        format!("start PostgreSQL and wait for the promotion at {target}"),
    ];
    if other {
        steps.push(format!(
            "leave WAL archiving off: {}'s stanza must not receive this database's WAL",
            from.name()
        ));
    }
    steps.push(format!(
        "set the passwords of {}'s roles ({}) from its own secrets",
        dest.name(),
        role_passwords(dest, &host)
            .iter()
            .map(|(r, _)| r.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let next_steps = if other {
        vec![format!(
            "archiving is off on {host}; to back this database up as {}: remove `archive_mode` from postgresql.auto.conf (ALTER SYSTEM RESET archive_mode), delete and recreate its stanza (runuser -u postgres -- pgbackrest --stanza={} stanza-delete --force, then terroir apply {}), and take a full backup (terroir backup now {} --type full)",
            dest.name(),
            dest.name(),
            dest.document.display(),
            dest.document.display()
        )]
    } else {
        vec![format!(
            "take a full backup now: the restored database starts a new timeline (terroir backup now {} --type full)",
            from.document.display()
        )]
    };
    let mut report = RestoreReport {
        platform: dest.name().to_owned(),
        target_time: target.clone(),
        dry_run: opts.dry_run,
        steps,
        next_steps,
        seconds: 0.0,
        into: RestoredInto::Host {
            source_platform: from.name().to_owned(),
            host: host.clone(),
            recoverable_from: utc(first),
            recoverable_to: utc(last),
            from_backup,
            archiving_off: other,
        },
    };
    if opts.dry_run {
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }

    progress(&format!(
        "stopping PostgreSQL on {host} and restoring (up to {target})"
    ));
    // the configuration stays until the promotion: recovery fetches WAL with it
    let what = "writing the temporary pgBackRest configuration";
    let out = conn
        .sudo(&install_conf(&dir), Some(&input))
        .map_err(SiteError::ssh(&host, what))?;
    if !out.ok() {
        return Err(SiteError::remote(&host, what, &out).into());
    }
    let archive = if other { " --archive-mode=off" } else { "" };
    let script = format!(
        "{SVC} svc postgresql stop >/dev/null; \
         {base} --type={target_type} --target={} --target-action=promote --delta{archive} --log-level-console=info restore 2>&1 || {{ rc=$?; rm -rf {}; exit $rc; }}; \
         svc postgresql start >/dev/null",
        q(&target_arg),
        q(&dir)
    );
    let mut lines = Lines {
        pending: Vec::new(),
        tail: Vec::new(),
        each: progress,
    };
    let what = "pgbackrest restore";
    let out = conn
        .sudo_to(&script, &mut lines)
        .map_err(SiteError::ssh(&host, what))?;
    if !out.ok() {
        // pgBackRest's own lines were streamed (2>&1); the shell's errors are on standard error
        let output = why(
            &format!("{}\n{}", lines.tail.join("\n"), out.stderr_str()),
            "",
        );
        let source = SiteError::Remote {
            host: host.clone(),
            what: what.into(),
            status: out.status,
            output,
        };
        return Err(BackupError::RestoreFailed { host, source });
    }

    progress("waiting for the recovery to reach the target time and promote");
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let o = conn
            .sudo(
                &format!(
                    "runuser -u postgres -- psql -p {port} -XAtc 'select pg_is_in_recovery()'"
                ),
                None,
            )
            .map_err(SiteError::ssh(&host, "waiting for the promotion"))?;
        if o.ok() && o.stdout_str().trim() == "f" {
            break;
        }
        let down = conn
            .sudo(
                &format!("{SVC} svc postgresql status >/dev/null 2>&1"),
                None,
            )
            .map(|o| !o.ok())
            .unwrap_or(false);
        if down || Instant::now() > deadline {
            let log = conn
                .sudo(
                    &format!("tail -n 8 /var/log/postgresql/postgresql-{dv}-main.log"),
                    None,
                )
                .map(|o| o.stdout_str())
                .unwrap_or_default();
            let _ = conn.sudo(&format!("rm -rf {}", q(&dir)), None);
            return Err(BackupError::NotPromoted {
                host,
                stopped: down,
                log,
            });
        }
        std::thread::sleep(Duration::from_millis(500));
    }

    progress("promoted; removing the temporary configuration and setting the roles' passwords");
    let mut finish = format!(
        "set -e; rm -rf {0}; printf '%s\\n' 'alter system reset restore_command;' 'alter system reset recovery_target_time;' 'alter system reset recovery_target_name;' 'alter system reset recovery_target_action;' 'select pg_reload_conf();' | runuser -u postgres -- psql -p {port} -Xq -v ON_ERROR_STOP=1 >/dev/null; ",
        q(&dir)
    );
    for (role, file) in role_passwords(dest, &host) {
        let ident = format!("\"{}\"", role.replace('"', "\"\""));
        finish.push_str(&format!(
            "runuser -u postgres -- psql -p {port} -XAtc \"select 1 from pg_roles where rolname = '{r}'\" | grep -qx 1 || runuser -u postgres -- psql -p {port} -Xqc {create}; \
             printf '%s\\n' \"\\\\set pw \\`cat {f}\\`\" {quiet} {alter} | runuser -u postgres -- psql -p {port} -Xq -v ON_ERROR_STOP=1; ",
            r = role.replace('\'', "''"),
            create = q(&format!("create role {ident} login")),
            f = shell_quote(&file),
            alter = q(&format!("alter role {ident} password :'pw';")),
            // the statement carrying the password is written to no log (as the plan does)
            quiet = q("set pgaudit.log = 'none'; set log_statement = 'none'; set log_min_duration_statement = -1; set log_min_error_statement = panic;"),
        ));
    }
    run(&conn, &host, "finish the restore", &finish)?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn target_times_are_read_with_their_offset_and_given_in_utc() {
        assert_eq!(
            parse_time("2026-11-23 14:05:00+00").unwrap(),
            ("2026-11-23 14:05:00+00".into(), 1_795_442_700)
        );
        assert_eq!(
            parse_time("2026-11-23 15:05:00+01").unwrap().0,
            "2026-11-23 14:05:00+00"
        );
        assert_eq!(
            parse_time("2026-11-23T14:05:00.25Z").unwrap().0,
            "2026-11-23 14:05:00.25+00"
        );
        let e = parse_time("yesterday").unwrap_err().to_string();
        assert!(e.contains("expected `YYYY-MM-DD HH:MM:SS+00`"), "{e}");
        // a time without its offset is ambiguous
        assert!(parse_time("2026-11-23 14:05:00").is_err());
    }

    #[test]
    fn pgbackrest_info_is_summarised() {
        let text = r#"[{"archive":[{"database":{"id":1,"repo-key":1},"id":"15-1","max":"000000010000000000000007","min":"000000010000000000000002"}],
            "backup":[{"archive":{"start":"000000010000000000000002","stop":"000000010000000000000002"},"info":{"delta":100,"repository":{"delta":40,"size":40},"size":100},"label":"20261123-140000F","timestamp":{"start":1795442400,"stop":1795442410},"type":"full"},
                      {"archive":{"start":"000000010000000000000005","stop":"000000010000000000000005"},"info":{"delta":10,"repository":{"delta":4,"size":4},"size":100},"label":"20261123-140000F_20261123-150000I","timestamp":{"start":1795446000,"stop":1795446005},"type":"incr"}],
            "cipher":"aes-256-cbc","name":"acme-crm","status":{"code":0,"message":"ok"}}]"#;
        let inv = parse_info(text, "acme-crm").unwrap();
        assert_eq!(inv.backups.len(), 2);
        assert_eq!(inv.backups[1].kind, "incr");
        assert_eq!(inv.backups[0].repository_bytes, 40);
        assert_eq!(
            (inv.recoverable_from, inv.recoverable_to),
            (Some(1_795_442_410), Some(1_795_446_005))
        );
        assert_eq!(
            (inv.wal_min.as_str(), inv.cipher.as_str()),
            ("000000010000000000000002", "aes-256-cbc")
        );
        assert!(parse_info(text, "other").is_err());
    }
}
