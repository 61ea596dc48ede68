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
//! secrets/secrets.tar.age           secrets, encrypted to the age recipients given (only then)
//! ```
//!
//! Every file is written while its SHA-256 is computed, from a stream: nothing is held whole in
//! memory. The export is built in `<DIR>.partial` and renamed when complete, so a directory named
//! like the export is never a half-made one.

pub mod drill;
pub mod export;
pub mod pgdump;
pub mod restore;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::text::{hex, last_lines};

use crate::pipeline::blueprint::Catalog;
use crate::document::Role;
use crate::pipeline::render::plan::Plan;
use crate::pipeline::resolve::ResolvedPlatform;
use crate::deploy::baremetal::ssh::{Connection, Target};

pub const FORMAT: &str = "terroir-export/v1";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command or document cannot be used (exit 1).
    #[error("{0}")]
    Input(String),
    /// The export is not intact: nothing was changed (exit 2).
    #[error("{0}")]
    Refused(String),
    /// Something failed while running (exit 2).
    #[error("{0}")]
    Failed(String),
}

impl Error {
    pub fn exit_status(&self) -> crate::error::ExitStatus {
        match self {
            Error::Input(_) => crate::error::ExitStatus::Invalid,
            Error::Refused(_) | Error::Failed(_) => crate::error::ExitStatus::Failed,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Error::Input(_) => "invalid-input",
            Error::Refused(_) => "refused",
            Error::Failed(_) => "failed",
        }
    }
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
        let file = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path)?;
        Ok(HashingFile { file: std::io::BufWriter::with_capacity(1 << 18, file), hasher: Sha256::new(), bytes: 0 })
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

/// A bare-metal platform, ready to be reached: its document rendered, its plan, its hosts.
pub struct Site {
    pub document: PathBuf,
    pub document_text: Vec<u8>,
    pub resolved: ResolvedPlatform,
    pub tree: crate::pipeline::render::RenderedTree,
    pub plan: Plan,
    pub targets: BTreeMap<String, Target>,
    pub secrets: crate::secrets::SecretStore,
}

/// The document read, checked and rendered, its errors as one input error: its text, what was
/// loaded, the resolved platform and the rendered tree. What `Site::open` and the backup commands
/// on a cluster start from.
pub fn rendered(document: &Path, catalog: &Catalog) -> Result<(String, crate::document::Loaded, ResolvedPlatform, crate::pipeline::render::RenderedTree), Error> {
    let text = std::fs::read_to_string(document).map_err(|e| Error::Input(format!("{}: {e}", document.display())))?;
    let loaded = crate::document::load_str(&document.display().to_string(), &text).map_err(|diags| Error::Input(diags.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n")))?;
    let (resolved, tree) = crate::pipeline::render::render(&loaded, catalog).map_err(|e| match e {
        crate::pipeline::render::RenderError::Invalid(diags) => Error::Input(diags.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n")),
        other => Error::Input(other.to_string()),
    })?;
    Ok((text, loaded, resolved, tree))
}

impl Site {
    pub fn open(document: &Path, catalog: &Catalog) -> Result<Site, Error> {
        let (text, loaded, resolved, tree) = rendered(document, catalog)?;
        let p = &loaded.platform;
        if p.spec.target.baremetal().is_none() {
            return Err(Error::Input(format!(
                "{}: target `{}`: this command reaches the platform's hosts over SSH, so it runs on bare-metal targets only (export, restore and drill: the rendered runbooks/reversibility.md gives the steps for this target)",
                document.display(),
                resolved.target_kind
            )));
        }
        let plan = Plan::from_tree(&tree).map_err(|e| Error::Input(e.to_string()))?;
        let targets = p.spec.target.baremetal().map(|b| crate::policy::locality::hostfacts::targets(document, b)).unwrap_or_default().into_iter().collect();
        let secrets = crate::secrets::SecretStore::for_platform(document, p);
        Ok(Site { document: document.to_owned(), document_text: text.into_bytes(), resolved, tree, plan, targets, secrets })
    }

    pub fn name(&self) -> &str {
        &self.resolved.platform.name
    }

    /// Hosts holding `role`, in document order (sorted by name).
    pub fn hosts_with(&self, role: Role) -> Vec<String> {
        self.resolved.roles.get(role.as_str()).cloned().unwrap_or_default()
    }

    pub fn address(&self, host: &str) -> String {
        self.targets.get(host).map(|t| t.address.clone()).unwrap_or_default()
    }

    pub fn connect(&self, host: &str) -> Result<Connection, Error> {
        let target = self.targets.get(host).ok_or_else(|| Error::Input(format!("no host {host} in {}", self.document.display())))?;
        let conn = Connection::open(target).map_err(|e| Error::Failed(format!("host {host}: {e}")))?;
        conn.require_sudo().map_err(|e| Error::Failed(format!("host {host}: {e}")))?;
        Ok(conn)
    }

    /// Destinations of the non-secret configuration files the plan installs on `host`.
    pub fn deployed_files(&self, host: &str) -> Vec<String> {
        use crate::pipeline::render::plan::Step;
        self.plan
            .hosts
            .iter()
            .filter(|h| h.name == host)
            .flat_map(|h| h.steps.iter())
            .filter_map(|s| if let Step::File { file, .. } = s { Some(file.dest.clone()) } else { None })
            .collect()
    }
}

/// Run a root script on a host and return its standard output, or fail with its standard error.
pub fn run(conn: &Connection, host: &str, what: &str, script: &str) -> Result<String, Error> {
    let out = conn.sudo(script, None).map_err(|e| Error::Failed(format!("host {host}: {what}: {e}")))?;
    if !out.ok() {
        return Err(Error::Failed(format!("host {host}: {what} failed (exit {}): {}", out.status, last_lines(&out.stderr_str(), 6))));
    }
    Ok(out.stdout_str())
}

/// The lines of a SHA256SUMS file: path → digest.
pub fn read_sums(dir: &Path) -> Result<BTreeMap<String, String>, Error> {
    let path = dir.join("SHA256SUMS");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::Refused(format!("{}: {e}: not a complete export", path.display())))?;
    let mut sums = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let (digest, name) = line
            .split_once("  ")
            .filter(|(d, _)| d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| Error::Refused(format!("{}:{}: not a `SHA256  PATH` line", path.display(), i + 1)))?;
        let name = name.strip_prefix("./").unwrap_or(name);
        if name.starts_with('/') || name.split('/').any(|c| c == "..") {
            return Err(Error::Refused(format!("{}:{}: path `{name}` leaves the export directory", path.display(), i + 1)));
        }
        sums.insert(name.to_owned(), digest.to_ascii_lowercase());
    }
    Ok(sums)
}

/// Write SHA256SUMS for the given digests (sorted, `sha256sum` format).
pub fn write_sums(dir: &Path, digests: &BTreeMap<String, String>) -> std::io::Result<()> {
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
pub fn check_export(dir: &Path, progress: &dyn Fn(&str, u64, u64)) -> Result<Manifest, Error> {
    if !dir.is_dir() {
        return Err(Error::Input(format!("{}: no such export directory", dir.display())));
    }
    let sums = read_sums(dir)?;
    if !sums.contains_key("manifest.json") {
        return Err(Error::Refused(format!("{}: SHA256SUMS does not list manifest.json: not a terroir export", dir.display())));
    }
    let present = files_below(dir).map_err(|e| Error::Failed(format!("{}: {e}", dir.display())))?;
    for f in &present {
        if f != "SHA256SUMS" && !sums.contains_key(f) {
            return Err(Error::Refused(format!("{}: `{f}` is not listed in SHA256SUMS: refusing an export with unknown files", dir.display())));
        }
    }
    let total: u64 = sums.keys().filter_map(|f| std::fs::metadata(dir.join(f)).ok()).map(|m| m.len()).sum();
    let mut done = 0u64;
    for (name, want) in &sums {
        let path = dir.join(name);
        let mut file = std::fs::File::open(&path).map_err(|_| Error::Refused(format!("{}: `{name}` is listed in SHA256SUMS but missing: the export is incomplete", dir.display())))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 18];
        loop {
            let n = std::io::Read::read(&mut file, &mut buf).map_err(|e| Error::Failed(format!("{}: {e}", path.display())))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            done += n as u64;
            progress(name, done, total);
        }
        let got = hex(&hasher.finalize());
        if &got != want {
            return Err(Error::Refused(format!("{}: `{name}` does not match SHA256SUMS (expected {want}, found {got}): the export was altered", dir.display())));
        }
    }
    let manifest: Manifest = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).map_err(|e| Error::Failed(e.to_string()))?)
        .map_err(|e| Error::Refused(format!("{}/manifest.json: {e}", dir.display())))?;
    if manifest.format != FORMAT {
        return Err(Error::Refused(format!("{}/manifest.json: format `{}`, expected `{FORMAT}`", dir.display(), manifest.format)));
    }
    for item in &manifest.items {
        match sums.get(&item.path) {
            Some(d) if *d == item.sha256 => {}
            Some(_) => return Err(Error::Refused(format!("{}: manifest.json and SHA256SUMS disagree on `{}`", dir.display(), item.path))),
            None => return Err(Error::Refused(format!("{}: `{}` is in manifest.json but not in SHA256SUMS", dir.display(), item.path))),
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
            secrets: SecretsEntry { exported: false, recipients: vec![], names: vec![] },
            skipped: vec![],
            total_bytes: 10,
        };
        std::fs::write(d.path().join("manifest.json"), serde_json::to_vec_pretty(&m).unwrap()).unwrap();
        let mut sums = BTreeMap::new();
        for f in ["database/crm.sql", "manifest.json"] {
            sums.insert(f.to_owned(), hex(&Sha256::digest(std::fs::read(d.path().join(f)).unwrap())));
        }
        write_sums(d.path(), &sums).unwrap();
        d
    }

    #[test]
    fn an_intact_export_passes_and_each_alteration_is_named() {
        let d = export_dir();
        check_export(d.path(), &|_, _, _| {}).unwrap();
        std::fs::write(d.path().join("database/crm.sql"), "select 2;\n").unwrap();
        let e = check_export(d.path(), &|_, _, _| {}).unwrap_err().to_string();
        assert!(e.contains("`database/crm.sql` does not match"), "{e}");
        std::fs::remove_file(d.path().join("database/crm.sql")).unwrap();
        let e = check_export(d.path(), &|_, _, _| {}).unwrap_err().to_string();
        assert!(e.contains("`database/crm.sql` is listed in SHA256SUMS but missing"), "{e}");
        std::fs::write(d.path().join("extra"), "x").unwrap();
        let e = check_export(d.path(), &|_, _, _| {}).unwrap_err().to_string();
        assert!(e.contains("`extra` is not listed"), "{e}");
    }

    #[test]
    fn sums_cannot_point_outside_the_export() {
        let d = export_dir();
        std::fs::write(d.path().join("SHA256SUMS"), format!("{}  ../etc/passwd\n", "0".repeat(64))).unwrap();
        let e = check_export(d.path(), &|_, _, _| {}).unwrap_err().to_string();
        assert!(e.contains("leaves the export directory"), "{e}");
    }
}
