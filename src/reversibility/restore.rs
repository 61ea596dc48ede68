//! `terroir restore`: check an export completely, check the destination, then restore into the
//! platform the document describes. Nothing is changed before both checks pass.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::export::{Progress, SVC, TSDB_DIR, secs};
use super::{ExportDefect, Manifest, ReversibilityError, given_error, read_error};
use crate::deploy::baremetal::site::{Site, SiteError};
use crate::deploy::baremetal::ssh::{Connection, shell_quote};
use crate::document::Role;

pub struct Options {
    pub from: PathBuf,
    /// age identity file to decrypt the secrets (DKIM keys are then installed).
    pub identity: Option<PathBuf>,
    pub dry_run: bool,
    /// Replace data already in the destination (its tables, same-named mailboxes, the app's data).
    pub replace: bool,
}

/// One restore action, planned then done.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    pub what: String,
    pub from: String,
    pub host: String,
    pub detail: String,
    /// Data already there that the action would replace (refused without --replace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conflict: Option<String>,
    pub done: bool,
    pub seconds: f64,
    /// For a database: the destination database and the role that owns what is loaded.
    #[serde(skip)]
    pub database: Option<(String, String)>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub platform: String,
    pub source_platform: String,
    pub dry_run: bool,
    pub verify_seconds: f64,
    pub restore_seconds: f64,
    pub actions: Vec<Action>,
    pub skipped: Vec<super::Skipped>,
}

impl Report {
    /// What a restore is about to do, checked against the destination: refused when it already
    /// holds data and `--replace` was not given (a dry run reports the conflicts instead). Nothing
    /// on the destination has changed before this.
    pub(super) fn planned(
        platform: String,
        manifest: &Manifest,
        opts: &Options,
        verify_seconds: f64,
        actions: Vec<Action>,
        skipped: Vec<super::Skipped>,
    ) -> Result<Report, ReversibilityError> {
        let conflicts: Vec<String> = actions.iter().filter_map(|a| a.conflict.clone()).collect();
        if !opts.dry_run && !conflicts.is_empty() && !opts.replace {
            return Err(ReversibilityError::HoldsData { conflicts });
        }
        Ok(Report {
            platform,
            source_platform: manifest.platform.clone(),
            dry_run: opts.dry_run,
            verify_seconds,
            restore_seconds: 0.0,
            actions,
            skipped,
        })
    }
}

fn item_path(m: &Manifest, kind: &str, host: &str) -> Option<String> {
    m.items
        .iter()
        .find(|i| i.kind == kind && i.host.as_deref() == Some(host))
        .map(|i| i.path.clone())
}

fn open(dir: &Path, rel: &str) -> Result<std::fs::File, ReversibilityError> {
    let path = dir.join(rel);
    std::fs::File::open(&path).map_err(read_error(&path))
}

/// Counts bytes read, for progress.
struct Reading<'a, R: Read> {
    inner: R,
    n: u64,
    last: u64,
    progress: &'a dyn Progress,
}

impl<'a, R: Read> Reading<'a, R> {
    fn new(inner: R, progress: &'a dyn Progress) -> Self {
        Reading {
            inner,
            n: 0,
            last: 0,
            progress,
        }
    }
}

/// The age identities of an identity file (lines AGE-SECRET-KEY-…).
pub(super) fn identities(p: &Path) -> Result<Vec<age::x25519::Identity>, ReversibilityError> {
    let text = std::fs::read_to_string(p).map_err(given_error(p))?;
    let ids: Vec<age::x25519::Identity> = text
        .lines()
        .filter(|l| l.starts_with("AGE-SECRET-KEY-"))
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    if ids.is_empty() {
        return Err(ReversibilityError::NoIdentity { path: p.to_owned() });
    }
    Ok(ids)
}

/// Where a dumped database goes: the application's into this platform's, each tenant's into the
/// same tenant's. Returns the database and the role that owns what is loaded.
pub(super) fn destination(
    document: &Path,
    r: &crate::pipeline::resolve::ResolvedPlatform,
    component: &str,
) -> Result<(String, String), ReversibilityError> {
    Ok(match component.strip_prefix("tenant:") {
        None => (
            r.components.database.name.clone(),
            r.components.database.user.clone(),
        ),
        Some(t) => {
            let tenant = r.tenants.iter().find(|x| x.name == t).ok_or_else(|| {
                ReversibilityError::NoTenant {
                    document: document.to_owned(),
                    tenant: t.to_owned(),
                }
            })?;
            (tenant.database.clone(), tenant.user.clone())
        }
    })
}

impl<R: Read> Read for Reading<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        if self.n - self.last >= 1 << 22 {
            self.last = self.n;
            self.progress.bytes(self.n);
        }
        Ok(n)
    }
}

/// Loads the exported dump `rel` into `db` as `role`, in one transaction, where `at` runs
/// PostgreSQL's programs (a host, a pod), then analyses it. With `replace`, what the role owns
/// goes first, with the schema public it may own since the database was made: made again for it.
pub(super) fn load_database(
    at: &dyn super::source::Source,
    dir: &Path,
    rel: &str,
    db: &str,
    role: &str,
    replace: bool,
    progress: &dyn Progress,
) -> Result<(), ReversibilityError> {
    let psql = |args: &[&str]| -> Vec<String> {
        ["psql", "--username=postgres", "-X", "-q", "-d", db]
            .iter()
            .chain(args)
            .map(|a| (*a).to_owned())
            .collect()
    };
    let drop_owned = format!("DROP OWNED BY \"{role}\"");
    let public = format!("CREATE SCHEMA IF NOT EXISTS public AUTHORIZATION \"{role}\"");
    let set_role = format!("SET ROLE \"{role}\"");
    let mut args = vec!["-v", "ON_ERROR_STOP=1", "--single-transaction"];
    if replace {
        args.extend(["-c", &drop_owned, "-c", &public]);
    }
    args.extend(["-c", &set_role, "-f", "-"]);
    progress.start(rel);
    let mut input = Reading::new(
        std::io::BufReader::with_capacity(1 << 18, open(dir, rel)?),
        progress,
    );
    at.run_from("loading the database", &psql(&args), &mut input)?;
    at.output("analysing the database", &psql(&["-c", "ANALYZE"]))?;
    Ok(())
}

fn stream_in(
    conn: &Connection,
    host: &str,
    dir: &Path,
    rel: &str,
    script: &str,
    what: &str,
    progress: &dyn Progress,
) -> Result<(), ReversibilityError> {
    progress.start(rel);
    let mut r = Reading::new(
        std::io::BufReader::with_capacity(1 << 18, open(dir, rel)?),
        progress,
    );
    let out = conn
        .sudo_from(script, &mut r)
        .map_err(SiteError::ssh(host, what))?;
    if !out.ok() {
        return Err(SiteError::remote(host, what, &out).into());
    }
    Ok(())
}

/// Relations (tables, views, sequences…) outside the system schemas: a database holding any
/// already holds data.
const RELATIONS: &str = "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%' and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')";

/// Loading one exported database into `db` as `role` where `at` runs PostgreSQL's programs (a
/// host, a pod), with the conflict when that database already holds relations.
pub(super) fn database_load(
    manifest: &Manifest,
    dump: &super::Item,
    db: String,
    role: String,
    at: &dyn super::source::Source,
) -> Result<Action, ReversibilityError> {
    let n: u64 = at
        .output(
            "checking the database",
            &[
                "psql",
                "--username=postgres",
                "-XAtq",
                "-d",
                &db,
                "-c",
                RELATIONS,
            ]
            .map(str::to_owned),
        )?
        .trim()
        .parse()
        .unwrap_or(0);
    let source_db = dump.source.rsplit('/').next().unwrap_or_default();
    let tables: Vec<&super::Table> = manifest
        .tables
        .iter()
        .filter(|t| t.database == source_db)
        .collect();
    Ok(Action {
        what: if dump.component == "database" {
            "database".into()
        } else {
            format!("database of {}", dump.component.replace(':', " "))
        },
        from: dump.path.clone(),
        host: at.place().to_owned(),
        detail: format!(
            "load into `{db}` as `{role}` in one transaction ({} tables, {} rows)",
            tables.len(),
            tables.iter().map(|t| t.rows).sum::<u64>()
        ),
        conflict: (n > 0).then(|| {
            format!(
                "database `{db}` on {} already holds {n} relations",
                at.label()
            )
        }),
        done: false,
        seconds: 0.0,
        database: Some((db, role)),
    })
}

/// Every file of the export checked against SHA256SUMS and the manifest, and how long it took:
/// the first step of a restore on any target, before the destination is read.
pub(super) fn verified(
    opts: &Options,
    progress: &dyn Progress,
) -> Result<(Manifest, f64), ReversibilityError> {
    let verify_start = Instant::now();
    progress.note(&format!(
        "checking every file of {} against SHA256SUMS",
        opts.from.display()
    ));
    let manifest = super::check_export(&opts.from, &|_, done, _| progress.bytes(done))?;
    Ok((manifest, secs(verify_start)))
}

/// Verify the export, plan against the destination, and (unless a dry run) restore.
pub fn restore(
    site: &Site,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Report, ReversibilityError> {
    let dir = &opts.from;
    let (manifest, verify_seconds) = verified(opts, progress)?;
    let identity = match &opts.identity {
        Some(p) => Some(identities(p)?),
        None => None,
    };
    let r = &site.resolved;
    let name = site.name().to_owned();
    let mut actions = Vec::new();
    let mut skipped = manifest.skipped.clone();
    let first = |role: Role, what: &'static str| -> Result<String, ReversibilityError> {
        site.hosts_with(role)
            .first()
            .cloned()
            .ok_or_else(|| ReversibilityError::NoHostWithRole {
                document: site.document.clone(),
                what,
                role: role.as_str(),
            })
    };

    // plan, reading the destination only
    let mut conns: std::collections::BTreeMap<String, Connection> = Default::default();
    fn ensure(
        conns: &mut std::collections::BTreeMap<String, Connection>,
        site: &Site,
        host: &str,
    ) -> Result<(), SiteError> {
        if !conns.contains_key(host) {
            conns.insert(host.to_owned(), site.connect(host)?);
        }
        Ok(())
    }
    for dump in manifest.items.iter().filter(|i| i.kind == "database-dump") {
        if !r.components.database.managed {
            return Err(ReversibilityError::NoDatabase {
                document: site.document.clone(),
            });
        }
        // the application's database into this platform's, each tenant's into the same tenant's
        let (db, role) = destination(&site.document, r, &dump.component)?;
        // into the primary, when the database is replicated: the standbys follow it
        let host = match crate::deploy::baremetal::health::primary(site) {
            Some(h) => h,
            None => first(Role::Database, "a database")?,
        };
        ensure(&mut conns, site, &host)?;
        let at = super::source::HostPostgres {
            conn: &conns[&host],
            host: host.clone(),
        };
        actions.push(database_load(&manifest, dump, db, role, &at)?);
    }
    let mta_src: Vec<&super::Mail> = manifest.mail.iter().collect();
    if !mta_src.is_empty() {
        let host = first(Role::Mta, "mail")?;
        ensure(&mut conns, site, &host)?;
        for m in &mta_src {
            let there = super::export::mail_figures(&conns[&host], &host)?.0;
            let clash: Vec<&String> = m
                .mailboxes
                .keys()
                .filter(|k| {
                    there.mailboxes.get(*k).is_some_and(|d| {
                        *d != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                    })
                })
                .collect();
            if let Some(q) = item_path(&manifest, "mail-queue", &m.host) {
                actions.push(Action {
                    what: "mail queue".into(),
                    from: q,
                    host: host.clone(),
                    detail: format!("{} queued messages added to the queue", m.queued),
                    conflict: None,
                    done: false,
                    seconds: 0.0,
                    database: None,
                });
            }
            if let Some(b) = item_path(&manifest, "mailboxes", &m.host) {
                actions.push(Action {
                    what: "mailboxes".into(),
                    from: b,
                    host: host.clone(),
                    detail: format!("{} mailboxes into /var/mail", m.mailboxes.len()),
                    conflict: (!clash.is_empty()).then(|| {
                        format!(
                            "mailboxes {} already hold mail on {host}",
                            clash
                                .iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    }),
                    done: false,
                    seconds: 0.0,
                    database: None,
                });
            }
        }
    }
    for (src, blocks) in &manifest.metrics_blocks {
        let host = first(Role::Monitoring, "metrics")?;
        ensure(&mut conns, site, &host)?;
        if let Some(p) = item_path(&manifest, "metrics-snapshot", src) {
            actions.push(Action {
                what: "metrics".into(),
                from: p,
                host: host.clone(),
                detail: format!("{} TSDB blocks into {TSDB_DIR}", blocks.len()),
                conflict: None,
                done: false,
                seconds: 0.0,
                database: None,
            });
        }
    }
    let app_items: Vec<&super::Item> = manifest
        .items
        .iter()
        .filter(|i| i.kind == "app-data")
        .collect();
    if !app_items.is_empty() {
        let hosts = site.hosts_with(Role::App);
        if hosts.is_empty() {
            return Err(ReversibilityError::NoHostWithRole {
                document: site.document.clone(),
                what: "application data",
                role: Role::App.as_str(),
            });
        }
        for (i, item) in app_items.iter().enumerate() {
            let host = hosts[i % hosts.len()].clone();
            ensure(&mut conns, site, &host)?;
            let data = format!("/var/lib/{name}");
            // the account's home: the files useradd copied from /etc/skel are not data
            let mut there = super::export::dir_digests(&conns[&host], &host, &data)?;
            let skel = super::export::dir_digests(&conns[&host], &host, "/etc/skel")?;
            there.retain(|path, digest| skel.get(path) != Some(digest));
            actions.push(Action {
                what: "application data".into(),
                from: item.path.clone(),
                host: host.clone(),
                detail: format!("into {data}, then the application restarts"),
                conflict: (!there.is_empty())
                    .then(|| format!("{data} on {host} already holds {} files", there.len())),
                done: false,
                seconds: 0.0,
                database: None,
            });
        }
    }
    if manifest.secrets.exported {
        match (
            &identity,
            manifest.items.iter().find(|i| i.kind == "secrets"),
        ) {
            (Some(_), Some(item)) if r.components.mta.enabled => {
                let host = first(Role::Mta, "DKIM keys")?;
                ensure(&mut conns, site, &host)?;
                actions.push(Action {
                    what: "DKIM keys".into(),
                    from: item.path.clone(),
                    host,
                    detail: "decrypted with the identity given, installed in /etc/opendkim/keys (the published DNS record stays valid)".into(),
                    conflict: None,
                    done: false,
                    seconds: 0.0,
                    database: None,
                });
            }
            (None, Some(_)) => skipped.push(super::Skipped {
                what: "secrets".into(),
                reason: "no --identity given: the encrypted secrets stay in the export".into(),
            }),
            _ => {}
        }
    }
    let mut report = Report::planned(
        name.clone(),
        &manifest,
        opts,
        verify_seconds,
        actions,
        skipped,
    )?;
    if opts.dry_run {
        return Ok(report);
    }

    let restore_start = Instant::now();
    for a in report.actions.iter_mut() {
        let start = Instant::now();
        let conn = &conns[&a.host];
        let host = a.host.clone();
        match a.what.as_str() {
            _ if a.database.is_some() => {
                let (db, role) = a.database.clone().unwrap_or_default();
                let at = super::source::HostPostgres {
                    conn,
                    host: host.clone(),
                };
                load_database(
                    &at,
                    dir,
                    &a.from,
                    &db,
                    &role,
                    a.conflict.is_some(),
                    progress,
                )?;
            }
            "mail queue" => {
                // Postfix keeps running. The messages go on hold first; postsuper renames them
                // to match their new inodes (queue files are named after them), then releases
                // them to the deferred queue. Their per-message delivery logs are not kept.
                let script = "set -e; spool=/var/spool/postfix; tmp=$(mktemp -d $spool/.terroir-restore.XXXXXX); trap 'rm -rf \"$tmp\"' EXIT; \
                     tar -C \"$tmp\" --warning=no-timestamp -xpf -; \
                     for q in incoming active deferred hold; do if [ -d \"$tmp/$q\" ]; then find \"$tmp/$q\" -type f -exec mv -n -t $spool/hold {} +; fi; done; \
                     if [ -d \"$tmp/maildrop\" ]; then find \"$tmp/maildrop\" -type f -exec mv -n -t $spool/maildrop {} +; fi; \
                     postsuper -s && postsuper -H ALL"
                    .to_owned();
                stream_in(
                    conn,
                    &host,
                    dir,
                    &a.from,
                    &script,
                    "restoring the mail queue",
                    progress,
                )?;
            }
            "mailboxes" => {
                stream_in(
                    conn,
                    &host,
                    dir,
                    &a.from,
                    "mkdir -p /var/mail && tar -C /var/mail -xpf -",
                    "restoring the mailboxes",
                    progress,
                )?;
            }
            "metrics" => {
                let script = format!(
                    "{SVC}svc prometheus stop >/dev/null; mkdir -p {TSDB_DIR} && tar -C {TSDB_DIR} -xpf - && chown -R prometheus:prometheus {TSDB_DIR} && svc prometheus start >/dev/null"
                );
                stream_in(
                    conn,
                    &host,
                    dir,
                    &a.from,
                    &script,
                    "restoring the metrics",
                    progress,
                )?;
            }
            "application data" => {
                let data = shell_quote(&format!("/var/lib/{name}"));
                let wipe = if a.conflict.is_some() {
                    format!("find {data} -mindepth 1 -delete && ")
                } else {
                    String::new()
                };
                let script = format!(
                    "{SVC}mkdir -p {data} && {wipe}tar -C {data} -xpf - --no-same-owner && chown -R terroir-app:terroir-app {data} && svc {} restart >/dev/null",
                    shell_quote(&format!("{name}-app"))
                );
                stream_in(
                    conn,
                    &host,
                    dir,
                    &a.from,
                    &script,
                    "restoring the application data",
                    progress,
                )?;
            }
            // planned only when an identity was given
            "DKIM keys" => {
                let keys = match identity.as_ref() {
                    Some(ids) => decrypt_dkim(&dir.join(&a.from), ids)?,
                    None => Vec::new(),
                };
                for (_, tarball) in keys.into_iter().take(1) {
                    let what = "installing the DKIM keys";
                    let script = format!(
                        "{SVC}mkdir -p /etc/opendkim/keys && tar -C /etc/opendkim/keys -xpf - --no-same-owner && chown -R opendkim:opendkim /etc/opendkim/keys && chmod 0600 /etc/opendkim/keys/*.private && svc opendkim restart >/dev/null"
                    );
                    let out = conn
                        .sudo_from(&script, &mut tarball.as_slice())
                        .map_err(SiteError::ssh(&host, what))?;
                    if !out.ok() {
                        return Err(SiteError::remote(&host, what, &out).into());
                    }
                }
            }
            _ => {}
        }
        a.done = true;
        a.seconds = secs(start);
        progress.note(&format!(
            "restored {} on {host} ({:.1} s)",
            a.what, a.seconds
        ));
    }
    report.restore_seconds = secs(restore_start);
    Ok(report)
}

/// The DKIM key archives inside the encrypted secrets, by source host.
fn decrypt_dkim(
    path: &Path,
    ids: &[age::x25519::Identity],
) -> Result<Vec<(String, Vec<u8>)>, ReversibilityError> {
    let file = std::fs::File::open(path).map_err(read_error(path))?;
    let decryptor = age::Decryptor::new(std::io::BufReader::new(file)).map_err(|source| {
        ExportDefect::NotAge {
            path: path.to_owned(),
            source,
        }
    })?;
    let mut reader = decryptor
        .decrypt(ids.iter().map(|i| i as &dyn age::Identity))
        .map_err(|source| ReversibilityError::Decrypt {
            path: path.to_owned(),
            source,
        })?;
    let unreadable = |source| ExportDefect::Secrets {
        path: path.to_owned(),
        source,
    };
    let mut plain = Vec::new();
    reader.read_to_end(&mut plain).map_err(unreadable)?;
    let mut archive = tar::Archive::new(plain.as_slice());
    let mut out = Vec::new();
    for entry in archive.entries().map_err(unreadable)? {
        let mut entry = entry.map_err(unreadable)?;
        let p = entry
            .path()
            .map_err(unreadable)?
            .to_string_lossy()
            .into_owned();
        if let Some(h) = p.strip_prefix("dkim/").and_then(|h| h.strip_suffix(".tar")) {
            let mut data = Vec::new();
            entry.read_to_end(&mut data).map_err(unreadable)?;
            out.push((h.to_owned(), data));
        }
    }
    Ok(out)
}
