//! Reversibility: export every piece of a platform's data, restore it into another platform, and
//! prove it with a timed drill (EU Data Act switching, GDPR portability).
//!
//! An export is a directory:
//!
//! ```text
//! manifest.json                     what, from where, sizes, row counts, checksums, tool versions
//! SHA256SUMS                        every other file's SHA-256 (sha256sum -c reads it)
//! database/<db>.sql                 pg_dump, plain format, --no-owner --no-privileges
//! database/tables/<schema>.<t>.csv  one CSV per table, with a header
//! tenants/<name>/<db>.sql, tables/  each tenant's database, the same way
//! mail/<host>/queue.tar             Postfix queue directories
//! mail/<host>/queue.json            postqueue -j
//! mail/<host>/mailboxes.tar         /var/mail
//! metrics/<host>/tsdb-snapshot.tar  a Prometheus TSDB snapshot
//! app/<host>/data.tar               the application's data directory
//! configuration/platform.yaml       the Platform document
//! configuration/rendered/…          the rendered tree
//! configuration/hosts/<h>/deployed.tar  the configuration files deployed on each host (no secret)
//! configuration/kubernetes/objects.yaml  Kubernetes: the platform's objects (no Secret)
//! configuration/kubernetes/silences.json Kubernetes: Alertmanager's silences
//! secrets/secrets.tar.age           secrets, encrypted to the age recipients given (only then):
//!                                   the secret store and DKIM keys on hosts, the platform's
//!                                   Secrets on Kubernetes
//! ```
//!
//! On Kubernetes targets the same files come through the API server: programs (pg_dump, psql,
//! postqueue, tar) run by exec in the platform's pods, Prometheus and Alertmanager are asked
//! through the service proxy; `<host>` is then the workload (`<platform>-prometheus`), or the pod
//! for an MTA of several replicas, each with its own queue (`mail/<platform>-postfix-0/`). Only
//! the source of each byte stream differs (`source::Source`): the pipeline that splits, hashes and
//! records is one.
//!
//! Every file is written while its SHA-256 is computed, from a stream: nothing is held whole in
//! memory. The export is built in `<DIR>.partial` and renamed when complete, so a directory named
//! like the export is never a half-made one.

pub mod cluster;
pub mod drill;
pub mod export;
pub mod inventory;
pub mod pgdump;
pub mod restore;
pub mod source;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::deploy::baremetal::site::SiteError;
use crate::text::hex;

pub const FORMAT: &str = "terroir-export/v1";

/// A platform an export is read from or restored into. The target kind is matched here, once:
/// on hosts over SSH, on a Kubernetes cluster through its API server.
pub enum Platform {
    Hosts(crate::deploy::baremetal::site::Site),
    Cluster(cluster::ClusterPlatform),
}

impl Platform {
    /// The platform of the document at `document`: loaded, checked, rendered, and for a
    /// cluster a client made.
    pub fn open(
        document: &Path,
        catalog: &crate::pipeline::blueprint::Catalog,
    ) -> Result<Platform, ReversibilityError> {
        let loaded = crate::pipeline::load(document, catalog).map_err(SiteError::from)?;
        if loaded.platform.spec.target.kubernetes().is_some() {
            return Ok(Platform::Cluster(cluster::ClusterPlatform::new(
                document, &loaded, catalog,
            )?));
        }
        Ok(Platform::Hosts(crate::deploy::baremetal::site::Site::new(
            document, &loaded, catalog,
        )?))
    }

    pub fn name(&self) -> &str {
        match self {
            Platform::Hosts(s) => s.name(),
            Platform::Cluster(c) => c.name(),
        }
    }

    pub fn document(&self) -> &Path {
        match self {
            Platform::Hosts(s) => &s.document,
            Platform::Cluster(c) => &c.document,
        }
    }

    pub fn resolved(&self) -> &crate::pipeline::resolve::ResolvedPlatform {
        match self {
            Platform::Hosts(s) => &s.resolved,
            Platform::Cluster(c) => &c.resolved,
        }
    }

    pub fn export(
        &self,
        opts: &export::Options,
        progress: &dyn export::Progress,
    ) -> Result<Manifest, ReversibilityError> {
        match self {
            Platform::Hosts(s) => export::export(s, opts, progress),
            Platform::Cluster(c) => cluster::export(c, opts, progress),
        }
    }

    pub fn restore(
        &self,
        opts: &restore::Options,
        progress: &dyn export::Progress,
    ) -> Result<restore::Report, ReversibilityError> {
        match self {
            Platform::Hosts(s) => restore::restore(s, opts, progress),
            Platform::Cluster(c) => cluster::restore(c, opts, progress),
        }
    }
}

/// Relative path → SHA-256, as SHA256SUMS lists them.
pub type Digests = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error)]
pub enum ReversibilityError {
    #[error(transparent)]
    Site(#[from] SiteError),
    #[error(transparent)]
    Defect(#[from] ExportDefect),
    #[error(
        "`{recipient}` is not an age recipient ({reason}); expected a public key like age1…, as `age-keygen` prints it"
    )]
    Recipient {
        recipient: String,
        reason: &'static str,
    },
    #[error("{}:{line}:1", path.display())]
    RecipientsLine {
        path: PathBuf,
        line: usize,
        source: Box<ReversibilityError>,
    },
    /// A file named on the command line (recipients, identity) cannot be read.
    #[error("cannot read {}", path.display())]
    Given {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: exists and is not empty; export into a new directory (nothing is overwritten)", path.display())]
    ExportExists { path: PathBuf },
    #[error("{}: no such export directory", path.display())]
    NoExport { path: PathBuf },
    #[error("{}: no age identity (a line AGE-SECRET-KEY-…, as age-keygen writes it)", path.display())]
    NoIdentity { path: PathBuf },
    #[error("{}: cannot decrypt with the identity given", path.display())]
    Decrypt {
        path: PathBuf,
        source: age::DecryptError,
    },
    #[error("{} and {} share hosts: a drill restores into another platform, on other hosts", from.display(), into.display())]
    SharedHosts { from: PathBuf, into: PathBuf },
    #[error("{}: the export holds {what} but this platform has no host with role `{role}`", document.display())]
    NoHostWithRole {
        document: PathBuf,
        what: &'static str,
        role: &'static str,
    },
    #[error("{}: the export holds a database but this platform does not manage one", document.display())]
    NoDatabase { document: PathBuf },
    #[error("{}: the export holds tenant `{tenant}`'s database but this platform has no such tenant (add it to spec.tenants and apply first)", document.display())]
    NoTenant { document: PathBuf, tenant: String },
    #[error("nothing restored: the destination already holds data ({}); pass --replace to replace it", conflicts.join("; "))]
    HoldsData { conflicts: Vec<String> },
    /// `host` is where pg_dump ran: `host db1`, `pod ns/db-0`.
    #[error("{host}: reading the dump of `{database}`")]
    Dump {
        host: String,
        database: String,
        source: pgdump::DumpError,
    },
    #[error(
        "host {host}: Prometheus refused a TSDB snapshot (is --web.enable-admin-api set?): {answer}"
    )]
    Snapshot { host: String, answer: String },
    #[error("the platform's secret store")]
    Secrets(#[source] Box<crate::secrets::SecretError>),
    #[error("{}: cannot encrypt to the recipients", path.display())]
    Encrypt {
        path: PathBuf,
        source: Box<age::EncryptError>,
    },
    #[error("host {host}: comparing the deployed files: {source}")]
    Digests {
        host: String,
        source: crate::policy::locality::hostfacts::ProbeError,
    },
    /// A program run in a pod failed, or could not be run.
    #[error("pod {namespace}/{pod}: {what}: {reason}")]
    Pod {
        namespace: String,
        pod: String,
        what: String,
        reason: String,
    },
    #[error(transparent)]
    Cluster(#[from] cluster::ClusterPlatformError),
    #[error("{what} panicked")]
    Panicked { what: &'static str },
}

/// Why an export is refused before anything is read from it: it is incomplete, altered, or not
/// an export. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum ExportDefect {
    #[error("{}: not a complete export", path.display())]
    NoSums {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: not a `SHA256  PATH` line", path.display())]
    SumsLine { path: PathBuf, line: usize },
    #[error("{}:{line}: path `{name}` leaves the export directory", path.display())]
    Escapes {
        path: PathBuf,
        line: usize,
        name: String,
    },
    #[error("{}: SHA256SUMS does not list manifest.json: not a terroir export", dir.display())]
    NoManifest { dir: PathBuf },
    #[error("{}: `{file}` is not listed in SHA256SUMS: refusing an export with unknown files", dir.display())]
    Unlisted { dir: PathBuf, file: String },
    #[error("{}: `{file}` is listed in SHA256SUMS but missing: the export is incomplete", dir.display())]
    Missing { dir: PathBuf, file: String },
    #[error("{}: `{file}` does not match SHA256SUMS (expected {expected}, found {found}): the export was altered", dir.display())]
    Altered {
        dir: PathBuf,
        file: String,
        expected: String,
        found: String,
    },
    #[error("{}/manifest.json is not a manifest", dir.display())]
    Manifest {
        dir: PathBuf,
        source: serde_json::Error,
    },
    #[error("{}/manifest.json: format `{found}`, expected `{FORMAT}`", dir.display())]
    Format { dir: PathBuf, found: String },
    #[error("{}: manifest.json and SHA256SUMS disagree on `{file}`", dir.display())]
    Disagree { dir: PathBuf, file: String },
    #[error("{}: `{file}` is in manifest.json but not in SHA256SUMS", dir.display())]
    NotSummed { dir: PathBuf, file: String },
    #[error("{}: the encrypted secrets are not a readable archive", path.display())]
    Secrets {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not an age file", path.display())]
    NotAge {
        path: PathBuf,
        source: age::DecryptError,
    },
}

impl From<crate::secrets::SecretError> for ReversibilityError {
    fn from(e: crate::secrets::SecretError) -> Self {
        ReversibilityError::Secrets(Box::new(e))
    }
}

fn read_error(path: &Path) -> impl FnOnce(std::io::Error) -> ReversibilityError {
    let path = path.to_owned();
    move |source| ReversibilityError::Read { path, source }
}

fn given_error(path: &Path) -> impl FnOnce(std::io::Error) -> ReversibilityError {
    let path = path.to_owned();
    move |source| ReversibilityError::Given { path, source }
}

fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> ReversibilityError {
    let path = path.to_owned();
    move |source| ReversibilityError::Write { path, source }
}

/// One file of an export.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    pub path: String,
    pub kind: String,
    pub component: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Where it came from: a path on a host, a database, the document.
    pub source: String,
    pub bytes: u64,
    pub sha256: String,
    /// Time spent producing it, in seconds.
    pub seconds: f64,
}

/// One table: its CSV file and the figures a restore is compared with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Table {
    /// The database it is in: the application's, or a tenant's.
    pub database: String,
    pub name: String,
    pub columns: Vec<String>,
    pub rows: u64,
    pub checksum: String,
    pub csv: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    pub what: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Mail {
    pub host: String,
    /// Messages in the queue (postqueue -j).
    pub queued: u64,
    /// Recipients of the queued messages, sorted.
    pub recipients: Vec<String>,
    /// Mailbox name → SHA-256 of its content.
    pub mailboxes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretsEntry {
    pub exported: bool,
    /// age recipients (public keys) the secrets are encrypted to.
    pub recipients: Vec<String>,
    /// Names only, never values.
    pub names: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub format: String,
    pub platform: String,
    pub blueprint: String,
    pub blueprint_version: String,
    pub target: String,
    pub started_at: String,
    pub finished_at: String,
    pub seconds: f64,
    pub terroir_version: String,
    /// `host/tool` → version.
    pub tools: BTreeMap<String, String>,
    pub items: Vec<Item>,
    pub tables: Vec<Table>,
    pub mail: Vec<Mail>,
    /// Prometheus TSDB blocks in the snapshot, per host.
    pub metrics_blocks: BTreeMap<String, Vec<String>>,
    pub secrets: SecretsEntry,
    pub skipped: Vec<Skipped>,
    pub total_bytes: u64,
}

/// A file being written while it is hashed and counted.
pub struct HashingFile {
    file: std::io::BufWriter<std::fs::File>,
    hasher: Sha256,
    bytes: u64,
}

impl HashingFile {
    pub fn create(path: &Path, mode: u32) -> std::io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)?;
        Ok(HashingFile {
            file: std::io::BufWriter::with_capacity(1 << 18, file),
            hasher: Sha256::new(),
            bytes: 0,
        })
    }

    /// Flush; returns (bytes, sha256 hex). Not synced one by one (that would stall the
    /// stream): an export is always checked against SHA256SUMS before it is used.
    pub fn finish(mut self) -> std::io::Result<(u64, String)> {
        self.file.flush()?;
        Ok((self.bytes, hex(&self.hasher.finalize())))
    }
}

impl Write for HashingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// The lines of a SHA256SUMS file: path → digest.
pub fn read_sums(dir: &Path) -> Result<Digests, ExportDefect> {
    let path = dir.join("SHA256SUMS");
    let text = std::fs::read_to_string(&path).map_err(|source| ExportDefect::NoSums {
        path: path.clone(),
        source,
    })?;
    let mut sums = Digests::new();
    for (i, line) in text.lines().enumerate() {
        let (digest, name) = line
            .split_once("  ")
            .filter(|(d, _)| d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| ExportDefect::SumsLine {
                path: path.clone(),
                line: i + 1,
            })?;
        let name = name.strip_prefix("./").unwrap_or(name);
        if name.starts_with('/') || name.split('/').any(|c| c == "..") {
            return Err(ExportDefect::Escapes {
                path,
                line: i + 1,
                name: name.to_owned(),
            });
        }
        sums.insert(name.to_owned(), digest.to_ascii_lowercase());
    }
    Ok(sums)
}

/// Write SHA256SUMS for the given digests (sorted, `sha256sum` format).
pub fn write_sums(dir: &Path, digests: &Digests) -> std::io::Result<()> {
    let mut text = String::new();
    for (path, digest) in digests {
        text.push_str(&format!("{digest}  {path}\n"));
    }
    std::fs::write(dir.join("SHA256SUMS"), text)
}

/// Every file below `dir`, relative, with `/` separators.
pub fn files_below(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let p = e.path();
            if e.file_type()?.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(dir) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Check an export before anything is read from it: SHA256SUMS lists every file, every listed file
/// is there with its digest, and the manifest is one of them. Returns the manifest.
pub fn check_export(
    dir: &Path,
    progress: &dyn Fn(&str, u64, u64),
) -> Result<Manifest, ReversibilityError> {
    if !dir.is_dir() {
        return Err(ReversibilityError::NoExport {
            path: dir.to_owned(),
        });
    }
    let defect = |d: ExportDefect| Err(ReversibilityError::Defect(d));
    let sums = read_sums(dir)?;
    if !sums.contains_key("manifest.json") {
        return defect(ExportDefect::NoManifest {
            dir: dir.to_owned(),
        });
    }
    let present = files_below(dir).map_err(read_error(dir))?;
    for f in &present {
        if f != "SHA256SUMS" && !sums.contains_key(f) {
            return defect(ExportDefect::Unlisted {
                dir: dir.to_owned(),
                file: f.clone(),
            });
        }
    }
    let total: u64 = sums
        .keys()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum();
    let mut done = 0u64;
    for (name, want) in &sums {
        let path = dir.join(name);
        let Ok(mut file) = std::fs::File::open(&path) else {
            return defect(ExportDefect::Missing {
                dir: dir.to_owned(),
                file: name.clone(),
            });
        };
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 18];
        loop {
            let n = std::io::Read::read(&mut file, &mut buf).map_err(read_error(&path))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            done += n as u64;
            progress(name, done, total);
        }
        let got = hex(&hasher.finalize());
        if &got != want {
            return defect(ExportDefect::Altered {
                dir: dir.to_owned(),
                file: name.clone(),
                expected: want.clone(),
                found: got,
            });
        }
    }
    let manifest_path = dir.join("manifest.json");
    let bytes = std::fs::read(&manifest_path).map_err(read_error(&manifest_path))?;
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|source| ExportDefect::Manifest {
            dir: dir.to_owned(),
            source,
        })?;
    if manifest.format != FORMAT {
        return defect(ExportDefect::Format {
            dir: dir.to_owned(),
            found: manifest.format,
        });
    }
    for item in &manifest.items {
        match sums.get(&item.path) {
            Some(d) if *d == item.sha256 => {}
            Some(_) => {
                return defect(ExportDefect::Disagree {
                    dir: dir.to_owned(),
                    file: item.path.clone(),
                });
            }
            None => {
                return defect(ExportDefect::NotSummed {
                    dir: dir.to_owned(),
                    file: item.path.clone(),
                });
            }
        }
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn export_dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("database")).unwrap();
        std::fs::write(d.path().join("database/crm.sql"), "select 1;\n").unwrap();
        let m = Manifest {
            format: FORMAT.into(),
            platform: "p".into(),
            blueprint: "b".into(),
            blueprint_version: "1".into(),
            target: "baremetal".into(),
            started_at: String::new(),
            finished_at: String::new(),
            seconds: 0.0,
            terroir_version: String::new(),
            tools: BTreeMap::new(),
            items: vec![Item {
                path: "database/crm.sql".into(),
                kind: "database-dump".into(),
                component: "database".into(),
                host: None,
                source: String::new(),
                bytes: 10,
                sha256: hex(&Sha256::digest(b"select 1;\n")),
                seconds: 0.0,
            }],
            tables: vec![],
            mail: vec![],
            metrics_blocks: BTreeMap::new(),
            secrets: SecretsEntry {
                exported: false,
                recipients: vec![],
                names: vec![],
            },
            skipped: vec![],
            total_bytes: 10,
        };
        std::fs::write(
            d.path().join("manifest.json"),
            serde_json::to_vec_pretty(&m).unwrap(),
        )
        .unwrap();
        let mut sums = BTreeMap::new();
        for f in ["database/crm.sql", "manifest.json"] {
            sums.insert(
                f.to_owned(),
                hex(&Sha256::digest(std::fs::read(d.path().join(f)).unwrap())),
            );
        }
        write_sums(d.path(), &sums).unwrap();
        d
    }

    #[test]
    fn an_intact_export_passes_and_each_alteration_is_named() {
        let d = export_dir();
        check_export(d.path(), &|_, _, _| {}).unwrap();
        std::fs::write(d.path().join("database/crm.sql"), "select 2;\n").unwrap();
        let e = check_export(d.path(), &|_, _, _| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains("`database/crm.sql` does not match"), "{e}");
        std::fs::remove_file(d.path().join("database/crm.sql")).unwrap();
        let e = check_export(d.path(), &|_, _, _| {})
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`database/crm.sql` is listed in SHA256SUMS but missing"),
            "{e}"
        );
        std::fs::write(d.path().join("extra"), "x").unwrap();
        let e = check_export(d.path(), &|_, _, _| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains("`extra` is not listed"), "{e}");
    }

    /// The document's target chooses where the bytes come from: hosts over SSH, or a cluster's
    /// API server (no connection is made before a request).
    #[test]
    fn the_target_chooses_hosts_or_cluster() {
        let catalog = crate::pipeline::blueprint::Catalog::new(Vec::new());
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("kubeconfig"),
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:9\nusers:\n- name: c\n  user: {}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: c\ncurrent-context: c\n",
        )
        .unwrap();
        let doc = d.path().join("k.yaml");
        let text = std::fs::read_to_string(examples.join("kubernetes.yaml"))
            .unwrap()
            .replace(
                "      context: prod-paris\n",
                "      kubeconfig: kubeconfig\n      context: c\n",
            );
        std::fs::write(&doc, text).unwrap();
        match Platform::open(&doc, &catalog) {
            Ok(Platform::Cluster(c)) => {
                assert_eq!(c.namespace, "mutuelle-crm");
                assert_eq!(c.server, "http://127.0.0.1:9/");
            }
            Ok(Platform::Hosts(_)) => panic!("a Kubernetes document is a cluster"),
            Err(e) => panic!("{e}"),
        }
        match Platform::open(&examples.join("baremetal.yaml"), &catalog) {
            Ok(Platform::Hosts(s)) => assert!(!s.targets.is_empty()),
            Ok(Platform::Cluster(_)) => panic!("a bare-metal document is hosts"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn sums_cannot_point_outside_the_export() {
        let d = export_dir();
        std::fs::write(
            d.path().join("SHA256SUMS"),
            format!("{}  ../etc/passwd\n", "0".repeat(64)),
        )
        .unwrap();
        let e = check_export(d.path(), &|_, _, _| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains("leaves the export directory"), "{e}");
    }
}
