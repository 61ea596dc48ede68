//! `terroir export`: read every piece of a bare-metal platform's data over SSH into an export
//! directory, streaming each file to disk while it is hashed.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::pgdump::{CsvSink, DumpSplitter};
use super::source::{HostPostgres, Source};
use super::{
    HashingFile, Item, Mail, Manifest, ReversibilityError, SecretsEntry, Skipped, Table,
    given_error, write_error,
};
use crate::deploy::baremetal::site::{Site, SiteError, run};
use crate::deploy::baremetal::ssh::{Connection, shell_quote};
use crate::document::Role;

/// Shell function that drives a service whatever the init system.
pub const SVC: &str = "svc() { if [ -d /run/systemd/system ]; then systemctl \"$2\" \"$1\"; else /etc/init.d/\"$1\" \"$2\"; fi; }; ";

pub use super::inventory::{QUEUE_DIRS, SPOOL_DIR, TSDB_DIR, safe};

/// The shell script writing a tar of the queue directories there are to its stdout. tar exits 1
/// when a file changed or went while it was read (Postfix moves queue files as it works): the
/// archive then still holds every other file whole.
pub fn queue_tar_script() -> String {
    format!(
        "cd {SPOOL_DIR} || exit 2; tar -cf - --ignore-failed-read $(for d in {QUEUE_DIRS}; do [ -d $d ] && echo $d; done)"
    )
}

/// The figures of a queue as `postqueue -j` lists it (one JSON object per message) on `place`:
/// the messages and their recipients; no mailbox.
pub fn queue_figures(place: &str, queue: &str) -> Mail {
    let mut recipients = Vec::new();
    let mut queued = 0;
    for line in queue.lines().filter(|l| !l.trim().is_empty()) {
        queued += 1;
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
            for r in v["recipients"].as_array().into_iter().flatten() {
                recipients.push(r["address"].as_str().unwrap_or_default().to_owned());
            }
        }
    }
    recipients.sort();
    Mail {
        host: place.into(),
        queued,
        recipients,
        mailboxes: BTreeMap::new(),
    }
}

pub struct Options {
    pub to: PathBuf,
    /// age recipients (`age1…`); without any, secrets are not exported.
    pub recipients: Vec<String>,
}

/// What a long export shows while it runs.
pub trait Progress: Sync {
    /// A file begins.
    fn start(&self, what: &str);
    /// Bytes written so far to the current file.
    fn bytes(&self, n: u64);
    fn item(&self, item: &Item);
    fn note(&self, message: &str);
}

pub struct Quiet;
impl Progress for Quiet {
    fn start(&self, _: &str) {}
    fn bytes(&self, _: u64) {}
    fn item(&self, _: &Item) {}
    fn note(&self, _: &str) {}
}

/// A writer that reports its running total.
struct Counting<'a, W: Write> {
    inner: W,
    n: u64,
    last: u64,
    progress: &'a dyn Progress,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        if self.n - self.last >= 1 << 22 {
            self.last = self.n;
            self.progress.bytes(self.n);
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

pub fn parse_recipients(
    values: &[String],
) -> Result<Vec<age::x25519::Recipient>, ReversibilityError> {
    values
        .iter()
        .map(|r| {
            r.trim()
                .parse::<age::x25519::Recipient>()
                .map_err(|reason| ReversibilityError::Recipient {
                    recipient: r.clone(),
                    reason,
                })
        })
        .collect()
}

/// The age recipients given on the command line and in a file of them (one per line, `#`
/// comments), each checked.
pub fn recipients(
    given: &[String],
    file: Option<&Path>,
) -> Result<Vec<String>, ReversibilityError> {
    let mut out = given.to_vec();
    if let Some(p) = file {
        let text = std::fs::read_to_string(p).map_err(given_error(p))?;
        for (i, line) in text.lines().enumerate() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            parse_recipients(&[l.to_owned()]).map_err(|e| ReversibilityError::RecipientsLine {
                path: p.to_owned(),
                line: i + 1,
                source: Box::new(e),
            })?;
            out.push(l.to_owned());
        }
    }
    parse_recipients(&out)?;
    Ok(out)
}

pub(super) struct Exporter<'a> {
    pub(super) dir: PathBuf,
    pub(super) progress: &'a dyn Progress,
    pub(super) items: Vec<Item>,
}

impl Exporter<'_> {
    pub(super) fn file(&self, rel: &str, mode: u32) -> Result<HashingFile, ReversibilityError> {
        let path = self.dir.join(rel);
        HashingFile::create(&path, mode).map_err(write_error(&path))
    }

    pub(super) fn push(&mut self, item: Item) {
        self.progress.item(&item);
        self.items.push(item);
    }

    /// Stream a remote command's output into `rel`; `ok` says which exit statuses are success.
    fn stream(
        &mut self,
        conn: &Connection,
        host: &str,
        rel: &str,
        script: &str,
        meta: (&str, &str, &str),
        ok: &[i32],
    ) -> Result<(), ReversibilityError> {
        let progress = self.progress;
        self.stream_into(rel, meta, host, |w| {
            let out = conn
                .sudo_to(script, w)
                .map_err(SiteError::ssh(host, meta.0))?;
            if !ok.contains(&out.status) {
                return Err(SiteError::remote(host, meta.0, &out).into());
            }
            if out.status != 0 {
                progress.note(&format!(
                    "host {host}: {}: {}",
                    meta.0,
                    crate::text::last_lines(&out.stderr_str(), 2)
                ));
            }
            Ok(())
        })
    }

    /// Stream a program's output, wherever it runs, into `rel`.
    pub(super) fn stream_from(
        &mut self,
        source: &dyn Source,
        rel: &str,
        argv: &[String],
        meta: (&str, &str, &str),
    ) -> Result<(), ReversibilityError> {
        self.stream_into(rel, meta, source.place(), |w| {
            source.run_to(meta.0, argv, w)
        })
    }

    /// `rel`, written from what `run` writes, hashed as it goes, and listed as read at `place`.
    fn stream_into(
        &mut self,
        rel: &str,
        meta: (&str, &str, &str),
        place: &str,
        run: impl FnOnce(&mut dyn Write) -> Result<(), ReversibilityError>,
    ) -> Result<(), ReversibilityError> {
        let start = Instant::now();
        self.progress.start(rel);
        let file = self.file(rel, 0o600)?;
        let mut w = Counting {
            inner: file,
            n: 0,
            last: 0,
            progress: self.progress,
        };
        run(&mut w)?;
        let (bytes, sha256) = w.inner.finish().map_err(write_error(&self.dir.join(rel)))?;
        self.push(Item {
            path: rel.into(),
            kind: meta.0.into(),
            component: meta.1.into(),
            host: Some(place.into()),
            source: meta.2.into(),
            bytes,
            sha256,
            seconds: secs(start),
        });
        Ok(())
    }

    pub(super) fn bytes_file(
        &mut self,
        rel: &str,
        content: &[u8],
        meta: (&str, &str, Option<&str>, &str),
    ) -> Result<(), ReversibilityError> {
        let start = Instant::now();
        let mut f = self.file(rel, 0o600)?;
        let path = self.dir.join(rel);
        f.write_all(content).map_err(write_error(&path))?;
        let (bytes, sha256) = f.finish().map_err(write_error(&path))?;
        self.push(Item {
            path: rel.into(),
            kind: meta.0.into(),
            component: meta.1.into(),
            host: meta.2.map(str::to_owned),
            source: meta.3.into(),
            bytes,
            sha256,
            seconds: secs(start),
        });
        Ok(())
    }

    /// The Platform document and the rendered tree, under `configuration/`, on every target.
    pub(super) fn configuration(
        &mut self,
        document: &Path,
        text: &[u8],
        tree: &crate::pipeline::render::RenderedTree,
    ) -> Result<(), ReversibilityError> {
        self.bytes_file(
            "configuration/platform.yaml",
            text,
            (
                "configuration",
                "configuration",
                None,
                &document.display().to_string(),
            ),
        )?;
        for (path, content) in &tree.files {
            self.bytes_file(
                &format!("configuration/rendered/{path}"),
                content,
                (
                    "rendered-configuration",
                    "configuration",
                    None,
                    "terroir render",
                ),
            )?;
        }
        Ok(())
    }
}

/// The backups stay in their bucket: the export says where, on every target.
pub(super) fn backups_left_out(r: &crate::pipeline::resolve::ResolvedPlatform) -> Option<Skipped> {
    let b = r.endpoints.backup_s3.as_ref()?;
    r.components.backups.enabled.then(|| Skipped {
        what: "backups".into(),
        reason: format!(
            "kept in bucket `{}` at {} ({}): not copied by the export; retrieve them through the provider's S3 API, then empty and delete the bucket",
            b.bucket,
            b.url,
            b.operator.clone().unwrap_or_else(|| "operator not declared".into())
        ),
    })
}

pub fn secs(start: Instant) -> f64 {
    (start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
}

/// CSV files of the tables, in `database/tables/`, one at a time.
struct TableFiles {
    dir: PathBuf,
    /// Where the CSV files go, relative to the export: `database/tables`.
    prefix: String,
    current: Option<(String, HashingFile, Instant)>,
    done: Vec<(String, String, u64, String, f64)>,
    used: std::collections::BTreeSet<String>,
}

impl TableFiles {
    fn file_name(&mut self, table: &str) -> String {
        let base = safe(table);
        let mut name = format!("{base}.csv");
        let mut n = 2;
        while !self.used.insert(name.clone()) {
            name = format!("{base}-{n}.csv");
            n += 1;
        }
        name
    }
}

impl CsvSink for TableFiles {
    fn begin(&mut self, table: &str) -> std::io::Result<bool> {
        let name = self.file_name(table);
        let rel = format!("{}/{name}", self.prefix);
        let f = HashingFile::create(&self.dir.join(&rel), 0o600)?;
        self.current = Some((rel, f, Instant::now()));
        Ok(true)
    }
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self.current.as_mut() {
            Some((_, f, _)) => f.write_all(bytes),
            None => Ok(()),
        }
    }
    fn end(&mut self, table: &str) -> std::io::Result<()> {
        if let Some((rel, f, start)) = self.current.take() {
            let (bytes, sha) = f.finish()?;
            self.done
                .push((table.to_owned(), rel, bytes, sha, secs(start)));
        }
        Ok(())
    }
}

/// The dump file and the CSV splitter, fed by one SSH stream: the splitter runs on its own
/// thread so that hashing the dump and parsing it use both cores.
struct DumpTee<'a> {
    file: Counting<'a, HashingFile>,
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    /// The platform's audit plumbing stays out of the export.
    filter: super::pgdump::PlumbingFilter,
}

impl DumpTee<'_> {
    fn pass(&mut self, bytes: Vec<u8>) -> std::io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.file.write_all(&bytes)?;
        if let Some(tx) = &self.tx
            && tx.send(bytes).is_err()
        {
            // the splitter stopped on an error; it is reported when joined
            self.tx = None;
        }
        Ok(())
    }

    /// The dump's last bytes, held back by the filter until the end.
    fn finish(&mut self) -> std::io::Result<()> {
        let rest = self.filter.finish();
        self.pass(rest)
    }
}

impl Write for DumpTee<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bytes = self.filter.feed(buf);
        self.pass(bytes)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Where a database goes in an export: the application's under `database/`, each tenant's under
/// `tenants/<name>/`.
#[derive(Debug, Clone)]
pub struct DumpTarget {
    pub database: String,
    /// `None` for the application's database.
    pub tenant: Option<String>,
}

impl DumpTarget {
    fn base(&self) -> String {
        match &self.tenant {
            None => "database".into(),
            Some(t) => format!("tenants/{}", safe(t)),
        }
    }
    fn component(&self) -> String {
        self.tenant
            .as_ref()
            .map(|t| format!("tenant:{t}"))
            .unwrap_or_else(|| "database".into())
    }
}

/// pg_dump's arguments for `db`: plain SQL, without owners or privileges (the destination's
/// roles own what is loaded), as the `postgres` superuser.
pub fn pg_dump_argv(db: &str, data_only: bool) -> Vec<String> {
    let mut v = vec!["pg_dump".to_owned(), "--username=postgres".to_owned()];
    if data_only {
        v.push("--data-only".into());
    }
    v.extend([
        "--no-owner".to_owned(),
        "--no-privileges".to_owned(),
        "--format=plain".to_owned(),
        format!("--dbname={db}"),
    ]);
    v
}

/// A consistent logical dump (pg_dump takes one snapshot), its CSV files, counts and checksums,
/// from one read of the database, wherever pg_dump runs (`source`).
pub fn dump_database(
    source: &dyn Source,
    target: &DumpTarget,
    dir: &Path,
    progress: &dyn Progress,
) -> Result<(Item, Vec<(Item, Table)>), ReversibilityError> {
    let host = source.place();
    let db = target.database.as_str();
    let rel = format!("{}/{}.sql", target.base(), safe(db));
    let prefix = format!("{}/tables", target.base());
    let start = Instant::now();
    progress.start(&rel);
    let path = dir.join(&rel);
    let file = HashingFile::create(&path, 0o600).map_err(write_error(&path))?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(16);
    let tables_dir = dir.to_owned();
    let splitter = std::thread::spawn(move || -> Result<(Vec<super::pgdump::TableStats>, TableFiles), super::pgdump::DumpError> {
        let mut s = DumpSplitter::new(TableFiles { dir: tables_dir, prefix, current: None, done: Vec::new(), used: Default::default() });
        for chunk in rx {
            s.feed(&chunk)?;
        }
        s.finish_with_sink()
    });
    let mut tee = DumpTee {
        file: Counting {
            inner: file,
            n: 0,
            last: 0,
            progress,
        },
        tx: Some(tx),
        filter: Default::default(),
    };
    let what = format!("pg_dump of `{db}`");
    let out = source.run_to(&what, &pg_dump_argv(db, false), &mut tee);
    let finished = tee.finish();
    let DumpTee { file, tx, .. } = tee;
    drop(tx);
    let split = splitter.join().map_err(|_| ReversibilityError::Panicked {
        what: "the dump splitter",
    })?;
    out?;
    finished.map_err(write_error(&path))?;
    let (bytes, sha256) = file.inner.finish().map_err(write_error(&path))?;
    let (stats, files) = split.map_err(|source_error| ReversibilityError::Dump {
        host: source.label(),
        database: db.to_owned(),
        source: source_error,
    })?;
    let component = target.component();
    let dump = Item {
        path: rel,
        kind: "database-dump".into(),
        component: component.clone(),
        host: Some(host.into()),
        source: format!("postgresql://{host}/{db}"),
        bytes,
        sha256,
        seconds: secs(start),
    };
    let mut tables = Vec::new();
    for (st, (name, csv, bytes, sha, seconds)) in stats.into_iter().zip(files.done) {
        debug_assert_eq!(st.name, name);
        let item = Item {
            path: csv.clone(),
            kind: "table-csv".into(),
            component: component.clone(),
            host: Some(host.into()),
            source: format!("postgresql://{host}/{db}#{name}"),
            bytes,
            sha256: sha,
            seconds,
        };
        tables.push((
            item,
            Table {
                database: db.to_owned(),
                name,
                columns: st.columns,
                rows: st.rows,
                checksum: st.checksum,
                csv,
            },
        ));
    }
    Ok((dump, tables))
}

/// Figures read from a database without writing anything: every table's rows and checksum.
pub fn table_figures(
    source: &dyn Source,
    db: &str,
) -> Result<Vec<super::pgdump::TableStats>, ReversibilityError> {
    struct Feed(
        DumpSplitter<super::pgdump::NoCsv>,
        Option<super::pgdump::DumpError>,
    );
    impl Write for Feed {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.1.is_none()
                && let Err(e) = self.0.feed(buf)
            {
                self.1 = Some(e);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut feed = Feed(DumpSplitter::new(super::pgdump::NoCsv), None);
    source.run_to(
        &format!("pg_dump of `{db}`"),
        &pg_dump_argv(db, true),
        &mut feed,
    )?;
    let dump = |source_error| ReversibilityError::Dump {
        host: source.label(),
        database: db.to_owned(),
        source: source_error,
    };
    if let Some(e) = feed.1 {
        return Err(dump(e));
    }
    feed.0.finish().map_err(dump)
}

/// The queue (postqueue -j: one JSON object per message) and mailbox digests of an MTA host.
pub fn mail_figures(conn: &Connection, host: &str) -> Result<(Mail, String), SiteError> {
    let queue = run(conn, host, "postqueue -j", "postqueue -j")?;
    let mut figures = queue_figures(host, &queue);
    let sums = run(
        conn,
        host,
        "mailbox digests",
        "cd /var/mail 2>/dev/null && find . -maxdepth 1 -type f -exec sha256sum {} + || true",
    )?;
    figures.mailboxes = sums
        .lines()
        .filter_map(|l| {
            let (d, n) = l.split_once("  ")?;
            Some((n.trim_start_matches("./").to_owned(), d.to_owned()))
        })
        .collect();
    Ok((figures, queue))
}

/// Digests of every file below a directory on a host (relative path → SHA-256).
pub fn dir_digests(conn: &Connection, host: &str, dir: &str) -> Result<super::Digests, SiteError> {
    let q = shell_quote(dir);
    let out = run(
        conn,
        host,
        &format!("digests of {dir}"),
        &format!("[ -d {q} ] || exit 0; cd {q} && find . -type f -exec sha256sum {{}} +"),
    )?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let (d, n) = l.split_once("  ")?;
            Some((n.trim_start_matches("./").to_owned(), d.to_owned()))
        })
        .collect())
}

/// Blocks of a Prometheus TSDB directory (or snapshot).
pub fn tsdb_blocks(conn: &Connection, host: &str, dir: &str) -> Result<Vec<String>, SiteError> {
    let out = run(
        conn,
        host,
        "TSDB blocks",
        &format!(
            "cd {} 2>/dev/null && for d in */meta.json; do [ -f \"$d\" ] && echo \"${{d%/meta.json}}\"; done; true",
            shell_quote(dir)
        ),
    )?;
    let mut v: Vec<String> = out
        .lines()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .collect();
    v.sort();
    Ok(v)
}

/// The directory an export is built in (`<DIR>.partial`, renamed by `seal`): refused when DIR
/// already holds something; what an interrupted export left is removed.
pub fn begin(to: &Path, progress: &dyn Progress) -> Result<PathBuf, ReversibilityError> {
    if to.exists()
        && std::fs::read_dir(to)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(ReversibilityError::ExportExists {
            path: to.to_owned(),
        });
    }
    let partial = PathBuf::from(format!("{}.partial", to.display()));
    if partial.exists() {
        progress.note(&format!(
            "removing {} left by an interrupted export",
            partial.display()
        ));
        std::fs::remove_dir_all(&partial).map_err(write_error(&partial))?;
    }
    std::fs::create_dir_all(&partial).map_err(write_error(&partial))?;
    Ok(partial)
}

/// What every export's manifest says besides its items and tables.
pub struct Sealing {
    pub platform: String,
    pub blueprint: String,
    pub blueprint_version: String,
    pub target: String,
    pub started_at: String,
    pub start: Instant,
    pub tools: BTreeMap<String, String>,
    pub mail: Vec<Mail>,
    pub metrics_blocks: BTreeMap<String, Vec<String>>,
    pub secrets: SecretsEntry,
    pub skipped: Vec<Skipped>,
}

/// Write manifest.json and SHA256SUMS into `partial`, then rename it to `to`.
pub fn seal(
    partial: &Path,
    to: &Path,
    mut items: Vec<Item>,
    mut tables: Vec<Table>,
    s: Sealing,
) -> Result<Manifest, ReversibilityError> {
    items.sort_by(|a, b| a.path.cmp(&b.path));
    tables.sort_by(|a: &Table, b: &Table| (&a.database, &a.name).cmp(&(&b.database, &b.name)));
    let total_bytes = items.iter().map(|i| i.bytes).sum();
    let manifest = Manifest {
        format: super::FORMAT.into(),
        platform: s.platform,
        blueprint: s.blueprint,
        blueprint_version: s.blueprint_version,
        target: s.target,
        started_at: s.started_at,
        finished_at: crate::text::now_rfc3339(),
        seconds: secs(s.start),
        terroir_version: env!("CARGO_PKG_VERSION").into(),
        tools: s.tools,
        items,
        tables,
        mail: s.mail,
        metrics_blocks: s.metrics_blocks,
        secrets: s.secrets,
        skipped: s.skipped,
        total_bytes,
    };
    let manifest_path = partial.join("manifest.json");
    let json =
        serde_json::to_vec_pretty(&manifest).map_err(|e| write_error(&manifest_path)(e.into()))?;
    std::fs::write(&manifest_path, &json).map_err(write_error(&manifest_path))?;
    let mut sums: super::Digests = manifest
        .items
        .iter()
        .map(|i| (i.path.clone(), i.sha256.clone()))
        .collect();
    sums.insert("manifest.json".into(), crate::text::sha256_hex(&json));
    super::write_sums(partial, &sums).map_err(write_error(&partial.join("SHA256SUMS")))?;
    if to.exists() {
        std::fs::remove_dir(to).map_err(write_error(to))?;
    }
    std::fs::rename(partial, to).map_err(write_error(to))?;
    Ok(manifest)
}

/// The secrets, as a tar of `entries` (path in the archive, content) encrypted to `recipients`,
/// into `rel` of the export: never written in clear.
pub(super) fn encrypt_secrets(
    ex: &mut Exporter<'_>,
    rel: &str,
    entries: &[(String, Vec<u8>)],
    recipients: &[age::x25519::Recipient],
    source: &str,
) -> Result<(), ReversibilityError> {
    let start = Instant::now();
    let secrets_path = ex.dir.join(rel);
    let mut archive = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o600);
        h.set_cksum();
        archive
            .append_data(&mut h, path, data.as_slice())
            .map_err(write_error(&secrets_path))?;
    }
    let plain = archive.into_inner().map_err(write_error(&secrets_path))?;
    let file = ex.file(rel, 0o600)?;
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|source| ReversibilityError::Encrypt {
                path: secrets_path.clone(),
                source: Box::new(source),
            })?;
    let mut w = encryptor
        .wrap_output(file)
        .map_err(write_error(&secrets_path))?;
    w.write_all(&plain).map_err(write_error(&secrets_path))?;
    let file = w.finish().map_err(write_error(&secrets_path))?;
    let (bytes, sha256) = file.finish().map_err(write_error(&secrets_path))?;
    ex.push(Item {
        path: rel.into(),
        kind: "secrets".into(),
        component: "secrets".into(),
        host: None,
        source: source.into(),
        bytes,
        sha256,
        seconds: secs(start),
    });
    Ok(())
}

pub fn export(
    site: &Site,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Manifest, ReversibilityError> {
    let recipients = parse_recipients(&opts.recipients)?;
    let to = &opts.to;
    let partial = begin(to, progress)?;
    let started_at = crate::text::now_rfc3339();
    let start = Instant::now();
    let mut ex = Exporter {
        dir: partial.clone(),
        progress,
        items: Vec::new(),
    };
    let mut tables = Vec::new();
    let mut mail = Vec::new();
    let mut metrics_blocks = BTreeMap::new();
    let mut skipped = Vec::new();
    let mut tools = BTreeMap::new();
    let r = &site.resolved;
    let platform = site.name().to_owned();

    let mut conns: BTreeMap<String, Connection> = BTreeMap::new();
    for host in site.targets.keys() {
        progress.note(&format!("connecting to {host} ({})", site.address(host)));
        conns.insert(host.clone(), site.connect(host)?);
    }
    for (host, conn) in &conns {
        let v = run(
            conn,
            host,
            "tool versions",
            "for t in 'pg_dump --version' 'postconf -h mail_version' 'prometheus --version' 'tar --version'; do \
               set -- $t; command -v $1 >/dev/null 2>&1 && printf '%s\\t%s\\n' \"$1\" \"$($t 2>&1 | head -n1)\"; done; true",
        )?;
        for l in v.lines() {
            if let Some((t, ver)) = l.split_once('\t') {
                tools.insert(format!("{host}/{t}"), ver.to_owned());
            }
        }
    }

    // The database, the bulk of the data, streams on its own connection and thread while the
    // rest is read.
    let db = &r.components.database;
    // a replicated database is exported from its primary
    let db_host = if db.managed {
        crate::deploy::baremetal::health::primary(site)
    } else {
        None
    };
    if !db.managed && db.enabled {
        skipped.push(Skipped {
            what: format!("database `{}`", db.name),
            reason: format!(
                "external PostgreSQL at {}:{}: export it where it is operated",
                db.host, db.port
            ),
        });
    }
    let mut secrets_entry = None;
    let partial_dir = &partial;
    std::thread::scope(|scope| -> Result<(), ReversibilityError> {
        let dump = db_host.map(|host| {
            scope.spawn(move || -> Result<_, ReversibilityError> {
                let conn = site.connect(&host)?;
                let version = run(
                    &conn,
                    &host,
                    "server version",
                    "runuser -u postgres -- psql -XAtc 'show server_version'",
                )
                .ok()
                .map(|v| v.trim().to_owned());
                let pg = HostPostgres {
                    conn: &conn,
                    host: host.clone(),
                };
                let mut out = vec![dump_database(
                    &pg,
                    &DumpTarget {
                        database: db.name.clone(),
                        tenant: None,
                    },
                    partial_dir,
                    progress,
                )?];
                for t in &r.tenants {
                    out.push(dump_database(
                        &pg,
                        &DumpTarget {
                            database: t.database.clone(),
                            tenant: Some(t.name.clone()),
                        },
                        partial_dir,
                        progress,
                    )?);
                }
                Ok((host, version, out))
            })
        });
        // mail
        if r.components.mta.enabled {
            for host in site.hosts_with(Role::Mta) {
                let conn = &conns[&host];
                let (figures, queue) = mail_figures(conn, &host)?;
                ex.bytes_file(
                    &format!("mail/{host}/queue.json"),
                    queue.as_bytes(),
                    ("mail-queue-list", "mta", Some(&host), "postqueue -j"),
                )?;
                ex.stream(
                    conn,
                    &host,
                    &format!("mail/{host}/queue.tar"),
                    &queue_tar_script(),
                    ("mail-queue", "mta", SPOOL_DIR),
                    &[0, 1],
                )?;
                ex.stream(
                    conn,
                    &host,
                    &format!("mail/{host}/mailboxes.tar"),
                    "mkdir -p /var/mail && tar -C /var/mail -cf - .",
                    ("mailboxes", "mta", "/var/mail"),
                    &[0, 1],
                )?;
                mail.push(figures);
            }
        }

        // metrics
        if r.components.monitoring.enabled {
            for host in site.hosts_with(Role::Monitoring) {
                let conn = &conns[&host];
                let answer = run(
                    conn,
                    &host,
                    "the Prometheus TSDB snapshot",
                    // Prometheus serves HTTPS only, with the host's certificate from the platform's CA
                    &format!(
                        "curl -sS --max-time 600 --cacert /etc/{}/tls/ca.crt -X POST https://127.0.0.1:9090/api/v1/admin/tsdb/snapshot",
                        site.name()
                    ),
                )?;
                let name = serde_json::from_str::<serde_json::Value>(answer.trim())
                    .ok()
                    .and_then(|v| v["data"]["name"].as_str().map(str::to_owned))
                    .filter(|n| {
                        !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    })
                    .ok_or_else(|| ReversibilityError::Snapshot {
                        host: host.clone(),
                        answer: crate::text::last_lines(&answer, 3),
                    })?;
                let snap = format!("{TSDB_DIR}/snapshots/{name}");
                let blocks = tsdb_blocks(conn, &host, &snap)?;
                let result = ex.stream(
                    conn,
                    &host,
                    &format!("metrics/{host}/tsdb-snapshot.tar"),
                    &format!("tar -C {} -cf - .", shell_quote(&snap)),
                    ("metrics-snapshot", "monitoring", TSDB_DIR),
                    &[0],
                );
                // the snapshot is a copy (hard links) on the host: removed whatever happened
                let _ = run(
                    conn,
                    &host,
                    "removing the snapshot",
                    &format!("rm -rf {}", shell_quote(&snap)),
                );
                result?;
                metrics_blocks.insert(host.clone(), blocks);
            }
            if r.components.monitoring.grafana {
                skipped.push(Skipped { what: "dashboards".into(), reason: "Grafana is not deployed on bare-metal targets (dashboards are Prometheus's own web UI)".into() });
            }
        }

        // the application's data directory
        if r.components.app.enabled {
            for host in site.hosts_with(Role::App) {
                let conn = &conns[&host];
                let data = format!("/var/lib/{platform}");
                ex.stream(
                    conn,
                    &host,
                    &format!("app/{host}/data.tar"),
                    &format!("mkdir -p {q} && tar -C {q} -cf - .", q = shell_quote(&data)),
                    ("app-data", "app", &data),
                    &[0, 1],
                )?;
            }
        }

        // configuration: the document, the rendered tree, what is deployed on each host
        ex.configuration(&site.document, &site.document_text, &site.tree)?;
        for (host, conn) in &conns {
            let files = site.deployed_files(host);
            if files.is_empty() {
                continue;
            }
            let list = files
                .iter()
                .map(|f| shell_quote(f.trim_start_matches('/')))
                .collect::<Vec<_>>()
                .join(" ");
            ex.stream(
                conn,
                host,
                &format!("configuration/hosts/{host}/deployed.tar"),
                &format!("cd / && for f in {list}; do [ -f \"$f\" ] && echo \"$f\"; done | tar -cf - -T -"),
                ("deployed-configuration", "configuration", "deployed configuration files"),
                &[0],
            )?;
        }

        // secrets: only encrypted
        // by name, as stored; an encrypted store's values are decrypted below (TERROIR_AGE_IDENTITY)
        let mut names: Vec<String> = site.secrets.names()?;
        let mta_hosts = if r.components.mta.enabled {
            site.hosts_with(Role::Mta)
        } else {
            Vec::new()
        };
        for h in &mta_hosts {
            names.push(format!("dkim/{h}"));
        }
        secrets_entry = Some(if recipients.is_empty() {
            skipped.push(Skipped {
                what: "secrets".into(),
                reason:
                    "no --recipient given: secrets are exported only encrypted to age recipients"
                        .into(),
            });
            SecretsEntry {
                exported: false,
                recipients: Vec::new(),
                names,
            }
        } else {
            let mut entries = Vec::new();
            for n in names.iter().filter(|n| !n.starts_with("dkim/")) {
                let value = site.secrets.get(n)?.unwrap_or_default();
                entries.push((format!("store/{n}"), value.into_bytes()));
            }
            for h in &mta_hosts {
                let mut keys = Vec::new();
                let what = "reading the DKIM keys";
                let out = conns[h]
                    .sudo_to(
                        "mkdir -p /etc/opendkim/keys && tar -C /etc/opendkim/keys -cf - .",
                        &mut keys,
                    )
                    .map_err(SiteError::ssh(h, what))?;
                if !out.ok() {
                    return Err(SiteError::remote(h, what, &out).into());
                }
                entries.push((format!("dkim/{h}.tar"), keys));
            }
            encrypt_secrets(
                &mut ex,
                "secrets/secrets.tar.age",
                &entries,
                &recipients,
                "secret store and DKIM keys",
            )?;
            SecretsEntry {
                exported: true,
                recipients: opts
                    .recipients
                    .iter()
                    .map(|s| s.trim().to_owned())
                    .collect(),
                names,
            }
        });

        if let Some(handle) = dump {
            let (host, version, dumps) =
                handle.join().map_err(|_| ReversibilityError::Panicked {
                    what: "the database export",
                })??;
            if let Some(v) = version {
                tools.insert(format!("{host}/postgresql"), v);
            }
            for (dump, tbls) in dumps {
                ex.push(dump);
                for (item, table) in tbls {
                    ex.push(item);
                    tables.push(table);
                }
            }
        }
        Ok(())
    })?;
    let secrets = secrets_entry.unwrap_or(SecretsEntry {
        exported: false,
        recipients: Vec::new(),
        names: Vec::new(),
    });

    skipped.extend(backups_left_out(r));

    let items = std::mem::take(&mut ex.items);
    seal(
        &partial,
        to,
        items,
        tables,
        Sealing {
            platform,
            blueprint: r.blueprint.name.clone(),
            blueprint_version: r.blueprint.version.clone(),
            target: r.target_kind.into(),
            started_at,
            start,
            tools,
            mail,
            metrics_blocks,
            secrets,
            skipped,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_is_counted_from_postqueue_j_lines() {
        let queue = concat!(
            r#"{"queue_name": "deferred", "queue_id": "4Q2kLm0Xyz", "arrival_time": 1764935000, "message_size": 912, "forced_expire": false, "sender": "crm@example.fr", "recipients": [{"address": "b@example.org", "delay_reason": "connect to mx.example.org[192.0.2.1]:25: Connection timed out"}, {"address": "a@example.org", "delay_reason": "connect to mx.example.org[192.0.2.1]:25: Connection timed out"}]}"#,
            "\n\n",
            r#"{"queue_name": "hold", "queue_id": "4Q2kLn1Abc", "arrival_time": 1764935100, "message_size": 640, "forced_expire": false, "sender": "crm@example.fr", "recipients": [{"address": "c@example.org"}]}"#,
            "\n"
        );
        let m = queue_figures("mta", queue);
        assert_eq!(m.host, "mta");
        assert_eq!(m.queued, 2);
        assert_eq!(
            m.recipients,
            ["a@example.org", "b@example.org", "c@example.org"]
        );
        assert!(m.mailboxes.is_empty());
        assert_eq!(queue_figures("mta", "").queued, 0, "an empty queue");
    }
}
