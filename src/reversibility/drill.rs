//! `terroir drill`: export one platform, restore it into another, compare, and write a report with
//! the measured time of each phase: evidence a client can hand to an auditor.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use super::export::{Progress, TSDB_DIR, secs};
use super::source::Source;
use super::{Manifest, Platform, ReversibilityError, write_error};
use crate::deploy::baremetal::site::Site;
use crate::document::Role;
use crate::pipeline::resolve::ResolvedPlatform;
use crate::text::human_bytes;

pub struct Options {
    pub report: PathBuf,
    pub recipients: Vec<String>,
    pub identity: Option<PathBuf>,
    pub replace: bool,
    /// Delete the export once compared (the report keeps its digests).
    pub discard_export: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Phase {
    pub name: String,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_per_second: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    pub subject: String,
    pub source: String,
    pub destination: String,
    pub matches: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DrillReport {
    pub kind: &'static str,
    pub source_platform: String,
    pub source_document: String,
    pub destination_platform: String,
    pub destination_document: String,
    pub started_at: String,
    pub finished_at: String,
    pub passed: bool,
    pub phases: Vec<Phase>,
    pub total_seconds: f64,
    pub export: ExportSummary,
    pub tables: Vec<Check>,
    pub mail: Vec<Check>,
    pub metrics: Vec<Check>,
    pub application: Vec<Check>,
    pub configuration: Vec<Check>,
    pub skipped: Vec<super::Skipped>,
    pub restore: super::restore::Report,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportSummary {
    pub directory: String,
    pub kept: bool,
    pub files: usize,
    pub bytes: u64,
    pub rows: u64,
    pub manifest_sha256: String,
    pub sha256sums_sha256: String,
}

fn check(
    subject: impl Into<String>,
    source: impl Into<String>,
    destination: impl Into<String>,
) -> Check {
    let (source, destination) = (source.into(), destination.into());
    Check {
        subject: subject.into(),
        matches: source == destination,
        source,
        destination,
    }
}

fn digest_file(p: &std::path::Path) -> String {
    std::fs::read(p)
        .map(|b| crate::text::sha256_hex(&b))
        .unwrap_or_default()
}

pub fn drill(
    from: &Platform,
    into: &Platform,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<DrillReport, ReversibilityError> {
    let shared = |a: &Site, b: &Site| {
        a.targets
            .values()
            .any(|x| b.targets.values().any(|y| x.address == y.address))
    };
    match (from, into) {
        (Platform::Cluster(a), Platform::Cluster(b))
            if a.document == b.document || (a.server == b.server && a.namespace == b.namespace) =>
        {
            return Err(super::cluster::ClusterPlatformError::SameNamespace {
                from: a.document.clone(),
                into: b.document.clone(),
                namespace: a.namespace.clone(),
            }
            .into());
        }
        (Platform::Hosts(a), Platform::Hosts(b)) if a.document == b.document || shared(a, b) => {
            return Err(ReversibilityError::SharedHosts {
                from: a.document.clone(),
                into: b.document.clone(),
            });
        }
        _ => {}
    }
    let report_dir = &opts.report;
    std::fs::create_dir_all(report_dir).map_err(write_error(report_dir))?;
    let export_dir = report_dir.join("export");
    let started_at = crate::text::now_rfc3339();
    let start = Instant::now();
    let mut phases = Vec::new();

    // 1. export
    progress.note(&format!(
        "phase 1/4: export {} into {}",
        from.name(),
        export_dir.display()
    ));
    let t = Instant::now();
    let manifest = from.export(
        &super::export::Options {
            to: export_dir.clone(),
            recipients: opts.recipients.clone(),
        },
        progress,
    )?;
    let secs_export = secs(t);
    phases.push(Phase {
        name: "export".into(),
        seconds: secs_export,
        bytes: Some(manifest.total_bytes),
        bytes_per_second: rate(manifest.total_bytes, secs_export),
    });

    // 2 and 3. verify and restore (restore verifies every digest first; its time is split out)
    progress.note(&format!(
        "phase 2-3/4: verify the export, restore into {}",
        into.name()
    ));
    let restore = into.restore(
        &super::restore::Options {
            from: export_dir.clone(),
            identity: opts.identity.clone(),
            dry_run: false,
            replace: opts.replace,
        },
        progress,
    )?;
    phases.push(Phase {
        name: "verify".into(),
        seconds: restore.verify_seconds,
        bytes: Some(manifest.total_bytes),
        bytes_per_second: rate(manifest.total_bytes, restore.verify_seconds),
    });
    phases.push(Phase {
        name: "restore".into(),
        seconds: restore.restore_seconds,
        bytes: Some(manifest.total_bytes),
        bytes_per_second: rate(manifest.total_bytes, restore.restore_seconds),
    });

    // 4. compare
    progress.note("phase 4/4: compare the destination with the export");
    let t = Instant::now();
    let (tables, mail, metrics, application, configuration) = match (from, into) {
        (Platform::Hosts(a), Platform::Hosts(b)) => compare(a, b, &manifest)?,
        _ => (
            compare_tables(from, into, &manifest)?,
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        ),
    };
    phases.push(Phase {
        name: "compare".into(),
        seconds: secs(t),
        bytes: None,
        bytes_per_second: None,
    });

    let files = manifest.items.len() + 2;
    let manifest_sha256 = digest_file(&export_dir.join("manifest.json"));
    let sha256sums_sha256 = digest_file(&export_dir.join("SHA256SUMS"));
    if opts.discard_export {
        std::fs::remove_dir_all(&export_dir).map_err(write_error(&export_dir))?;
    }
    let passed = tables
        .iter()
        .chain(&mail)
        .chain(&metrics)
        .chain(&application)
        .all(|c| c.matches)
        && (manifest.tables.is_empty() || !tables.is_empty());
    let report = DrillReport {
        kind: "terroir-drill-report/v1",
        source_platform: from.name().into(),
        source_document: from.document().display().to_string(),
        destination_platform: into.name().into(),
        destination_document: into.document().display().to_string(),
        started_at,
        finished_at: crate::text::now_rfc3339(),
        passed,
        phases,
        total_seconds: secs(start),
        export: ExportSummary {
            directory: export_dir.display().to_string(),
            kept: !opts.discard_export,
            files,
            bytes: manifest.total_bytes,
            rows: manifest.tables.iter().map(|t| t.rows).sum(),
            manifest_sha256,
            sha256sums_sha256,
        },
        tables,
        mail,
        metrics,
        application,
        configuration,
        skipped: restore.skipped.clone(),
        restore,
    };
    let (json_path, md_path) = (
        report_dir.join("drill-report.json"),
        report_dir.join("drill-report.md"),
    );
    let json = serde_json::to_vec_pretty(&report).map_err(|e| write_error(&json_path)(e.into()))?;
    std::fs::write(&json_path, json).map_err(write_error(&json_path))?;
    std::fs::write(&md_path, markdown(&report)).map_err(write_error(&md_path))?;
    Ok(report)
}

fn rate(bytes: u64, seconds: f64) -> Option<f64> {
    (seconds > 0.0).then(|| (bytes as f64 / seconds).round())
}

type Compared = (Vec<Check>, Vec<Check>, Vec<Check>, Vec<Check>, Vec<Check>);

/// Each source database with its destination and a label: the application's, then each
/// tenant's into the same tenant's (empty when the destination has no such tenant).
pub fn database_pairs(
    from: &ResolvedPlatform,
    into: &ResolvedPlatform,
) -> Vec<(String, String, String)> {
    let mut pairs = vec![(
        from.components.database.name.clone(),
        into.components.database.name.clone(),
        String::new(),
    )];
    for t in &from.tenants {
        let dest = into
            .tenants
            .iter()
            .find(|x| x.name == t.name)
            .map(|x| x.database.clone())
            .unwrap_or_default();
        pairs.push((t.database.clone(), dest, format!("tenant {} ", t.name)));
    }
    pairs
}

/// Every exported table's row count and checksum against the destination's, read back by
/// pg_dump wherever the destination's database runs (`source`).
pub fn table_checks(
    source: &dyn Source,
    pairs: &[(String, String, String)],
    manifest: &Manifest,
) -> Result<Vec<Check>, ReversibilityError> {
    let mut tables = Vec::new();
    for (src, dest, label) in pairs {
        let wanted: Vec<&super::Table> = manifest
            .tables
            .iter()
            .filter(|t| &t.database == src)
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let there: BTreeMap<String, super::pgdump::TableStats> = if dest.is_empty() {
            BTreeMap::new()
        } else {
            super::export::table_figures(source, dest)?
                .into_iter()
                .map(|t| (t.name.clone(), t))
                .collect()
        };
        for t in wanted {
            let got = there.get(&t.name);
            tables.push(check(
                format!("{label}table {} rows", t.name),
                t.rows.to_string(),
                got.map(|g| g.rows.to_string())
                    .unwrap_or_else(|| "missing".into()),
            ));
            tables.push(check(
                format!("{label}table {} content", t.name),
                t.checksum.clone(),
                got.map(|g| g.checksum.clone())
                    .unwrap_or_else(|| "missing".into()),
            ));
        }
    }
    Ok(tables)
}

/// Only the tables, when either side is not on hosts: what both kinds of target hold alike.
fn compare_tables(
    from: &Platform,
    into: &Platform,
    manifest: &Manifest,
) -> Result<Vec<Check>, ReversibilityError> {
    if manifest.tables.is_empty() {
        return Ok(Vec::new());
    }
    let pairs = database_pairs(from.resolved(), into.resolved());
    match into {
        Platform::Cluster(c) => table_checks(&c.postgres()?, &pairs, manifest),
        Platform::Hosts(site) => {
            let Some(h) = crate::deploy::baremetal::health::primary(site) else {
                return Ok(Vec::new());
            };
            let conn = site.connect(&h)?;
            table_checks(
                &super::source::HostPostgres {
                    conn: &conn,
                    host: h,
                },
                &pairs,
                manifest,
            )
        }
    }
}

/// Read the destination back and compare it with what the export recorded.
pub fn compare(
    from: &Site,
    into: &Site,
    manifest: &Manifest,
) -> Result<Compared, ReversibilityError> {
    let mut tables = Vec::new();
    let mut mail = Vec::new();
    let mut metrics = Vec::new();
    let mut application = Vec::new();
    let mut configuration = Vec::new();
    let mut conns: BTreeMap<String, crate::deploy::baremetal::ssh::Connection> = BTreeMap::new();
    for h in into.targets.keys() {
        conns.insert(h.clone(), into.connect(h)?);
    }
    if !manifest.tables.is_empty()
        && let Some(h) = &crate::deploy::baremetal::health::primary(into)
    {
        let pg = super::source::HostPostgres {
            conn: &conns[h],
            host: h.clone(),
        };
        tables = table_checks(
            &pg,
            &database_pairs(&from.resolved, &into.resolved),
            manifest,
        )?;
    }
    if !manifest.mail.is_empty()
        && let Some(h) = into.hosts_with(Role::Mta).first()
    {
        let there = super::export::mail_figures(&conns[h], h)?.0;
        let queued: u64 = manifest.mail.iter().map(|m| m.queued).sum();
        let mut recipients: Vec<String> = manifest
            .mail
            .iter()
            .flat_map(|m| m.recipients.clone())
            .collect();
        recipients.sort();
        mail.push(check(
            "queued messages",
            queued.to_string(),
            there.queued.to_string(),
        ));
        mail.push(check(
            "queued recipients",
            recipients.join(", "),
            there.recipients.join(", "),
        ));
        for m in &manifest.mail {
            for (mbox, digest) in &m.mailboxes {
                mail.push(check(
                    format!("mailbox {mbox}"),
                    digest.clone(),
                    there
                        .mailboxes
                        .get(mbox)
                        .cloned()
                        .unwrap_or_else(|| "missing".into()),
                ));
            }
        }
    }
    if let Some(h) = into.hosts_with(Role::Monitoring).first() {
        let there = super::export::tsdb_blocks(&conns[h], h, TSDB_DIR)?;
        for blocks in manifest.metrics_blocks.values() {
            for b in blocks {
                metrics.push(check(
                    format!("TSDB block {b}"),
                    "present",
                    if there.contains(b) {
                        "present"
                    } else {
                        "missing"
                    },
                ));
            }
        }
    }
    // the application's data: every file's digest, source (read now) against destination
    let src_app = from.hosts_with(Role::App);
    let dst_app = into.hosts_with(Role::App);
    if !src_app.is_empty() && !dst_app.is_empty() {
        let src_conn = from.connect(&src_app[0])?;
        let a = super::export::dir_digests(
            &src_conn,
            &src_app[0],
            &format!("/var/lib/{}", from.name()),
        )?;
        let b = super::export::dir_digests(
            &conns[&dst_app[0]],
            &dst_app[0],
            &format!("/var/lib/{}", into.name()),
        )?;
        for (path, d) in &a {
            application.push(check(
                format!("application file {path}"),
                d.clone(),
                b.get(path).cloned().unwrap_or_else(|| "missing".into()),
            ));
        }
        application.push(check(
            "application files",
            a.len().to_string(),
            b.len().to_string(),
        ));
        // the application answers on the destination
        let app = &into.resolved.components.app;
        let addr = into.address(&dst_app[0]);
        application.push(check(
            format!(
                "application health {}:{}{}",
                addr, app.port, app.health_path
            ),
            "200",
            http_status(&addr, app.port, &app.health_path),
        ));
    }
    // configuration: informational (each platform's configuration comes from its own document)
    for (h, conn) in &conns {
        let src_host = from
            .plan
            .hosts
            .iter()
            .find(|s| {
                into.plan
                    .hosts
                    .iter()
                    .find(|d| &d.name == h)
                    .is_some_and(|d| d.roles == s.roles)
            })
            .map(|s| s.name.clone());
        let Some(src_host) = src_host else { continue };
        let src_conn = from.connect(&src_host)?;
        let files = into.deployed_files(h);
        let digests = |c: &crate::deploy::baremetal::ssh::Connection,
                       host: &str|
         -> Result<super::Digests, ReversibilityError> {
            crate::policy::locality::hostfacts::file_digests(c, host, &files)
                .map(|v| v.into_iter().collect())
                .map_err(|source| ReversibilityError::Digests {
                    host: host.to_owned(),
                    source,
                })
        };
        let (src, dst) = (digests(&src_conn, &src_host)?, digests(conn, h)?);
        for f in &files {
            configuration.push(check(
                format!("{f} ({src_host} → {h})"),
                src.get(f).cloned().unwrap_or_default(),
                dst.get(f).cloned().unwrap_or_default(),
            ));
        }
    }
    Ok((tables, mail, metrics, application, configuration))
}

fn http_status(address: &str, port: u32, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(sock) = format!("{address}:{port}").parse::<std::net::SocketAddr>() else {
        return "unreachable".into();
    };
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let answer = (|| -> std::io::Result<String> {
            let mut s =
                std::net::TcpStream::connect_timeout(&sock, std::time::Duration::from_secs(5))?;
            s.set_read_timeout(Some(std::time::Duration::from_secs(15)))?;
            write!(s, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n")?;
            let mut r = String::new();
            s.read_to_string(&mut r)?;
            Ok(r.split_whitespace()
                .nth(1)
                .unwrap_or("no answer")
                .to_owned())
        })()
        .unwrap_or_else(|e| format!("unreachable ({e})"));
        // the application restarts after its data is restored: give it until the deadline
        if answer == "200" || Instant::now() > deadline {
            return answer;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

pub fn markdown(r: &DrillReport) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "# Reversibility drill: {} → {}\n\n",
        r.source_platform, r.destination_platform
    ));
    s.push_str(&format!(
        "**Result: {}.** Started {}, finished {}, {:.1} s in all.\n\nSource document `{}`, destination document `{}`.\n\n",
        if r.passed { "PASSED, every table, message and file matches" } else { "FAILED, see the mismatches below" },
        r.started_at,
        r.finished_at,
        r.total_seconds,
        r.source_document,
        r.destination_document
    ));
    s.push_str("## Phases\n\n| phase | time | data | throughput |\n| --- | ---: | ---: | ---: |\n");
    for p in &r.phases {
        s.push_str(&format!(
            "| {} | {:.1} s | {} | {} |\n",
            p.name,
            p.seconds,
            p.bytes.map(human_bytes).unwrap_or_default(),
            p.bytes_per_second
                .map(|b| format!("{}/s", human_bytes(b as u64)))
                .unwrap_or_default()
        ));
    }
    s.push_str(&format!(
        "\n## Export\n\n{} files, {}, {} rows. `manifest.json` SHA-256 `{}`; `SHA256SUMS` SHA-256 `{}`{}.\n",
        r.export.files,
        human_bytes(r.export.bytes),
        r.export.rows,
        r.export.manifest_sha256,
        r.export.sha256sums_sha256,
        if r.export.kept { format!(" (kept in `{}`)", r.export.directory) } else { " (deleted after the drill)".into() }
    ));
    let section = |s: &mut String, title: &str, checks: &[Check], note: &str| {
        if checks.is_empty() {
            return;
        }
        let ok = checks.iter().filter(|c| c.matches).count();
        let verb = if note.is_empty() {
            "match"
        } else {
            "are identical"
        };
        s.push_str(&format!("\n## {title}\n\n{ok} of {} {verb}.{note}\n\n| | subject | source | destination |\n| --- | --- | --- | --- |\n", checks.len()));
        let mut sorted: Vec<&Check> = checks.iter().collect();
        sorted.sort_by_key(|c| c.matches);
        let informational = !note.is_empty();
        for c in sorted {
            let mark = match (informational, c.matches) {
                (true, true) => "same",
                (true, false) => "differs",
                (false, true) => "✓",
                (false, false) => "✗",
            };
            s.push_str(&format!(
                "| {} | {} | `{}` | `{}` |\n",
                mark,
                c.subject.replace('|', "\\|"),
                c.source.replace('|', "\\|"),
                c.destination.replace('|', "\\|")
            ));
        }
    };
    section(
        &mut s,
        "Tables (row count and content checksum)",
        &r.tables,
        "",
    );
    section(&mut s, "Mail", &r.mail, "");
    section(&mut s, "Metrics", &r.metrics, "");
    section(&mut s, "Application", &r.application, "");
    section(
        &mut s,
        "Configuration",
        &r.configuration,
        " Informational: each platform's configuration comes from its own document, so files naming hosts or addresses differ.",
    );
    if !r.skipped.is_empty() {
        s.push_str("\n## Not restored\n\n");
        for k in &r.skipped {
            s.push_str(&format!("- **{}**: {}\n", k.what, k.reason));
        }
    }
    s
}
