//! `terroir destroy`: the plan (what is stopped, removed and kept, and why), the rule that a
//! platform is not destroyed without a recent copy of its data, and the erasure record.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How long a final export or backup stays recent enough to destroy the platform after it.
pub const RECENT_SECONDS: i64 = 24 * 3600;

/// What the command line asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Options {
    /// Remove the data too: databases and their WAL, mailboxes, the TSDB, the application's data,
    /// volumes, and the backups under the platform's prefix.
    pub delete_data: bool,
    /// Purge the packages the platform installed (hosts).
    pub purge_packages: bool,
    /// Destroy without an export or backup younger than 24 hours.
    pub no_final_export: bool,
}

/// A kind of thing terroir put somewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Kind {
    /// A service (hosts): stopped and disabled.
    Service,
    /// A file terroir wrote (configuration, unit, cron entry...).
    File,
    /// A file holding a secret.
    Secret,
    /// A directory terroir made, with what is in it.
    Directory,
    /// An account terroir created.
    User,
    /// Firewall rules (an nftables table).
    Firewall,
    /// A Debian package.
    Package,
    /// Data: a database's files and WAL, mailboxes, the TSDB, the application's data.
    Data,
    /// Backups in the object storage, under the platform's prefix.
    Backups,
    /// A Kubernetes object (ApplySet member), `Kind namespace/name`.
    Object,
    /// A Kubernetes namespace.
    Namespace,
    /// A PersistentVolumeClaim and its volume, `namespace/name`.
    Volume,
    /// A cloud resource in the Terraform state (`terraform state list`'s address).
    CloudResource,
}

/// What happens to an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum Action {
    /// Stopped and disabled (services).
    Stop,
    /// Removed.
    Remove,
    /// Left in place, for this reason.
    Keep { why: String },
}

/// One thing in one place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    /// Where it is: a host's name, a cluster (`cluster`), the object storage (`s3://bucket/prefix`),
    /// the cloud (`terraform`).
    pub place: String,
    pub kind: Kind,
    /// Which: a path, a service's or account's name, an object's `Kind namespace/name`...
    pub what: String,
    #[serde(flatten)]
    pub action: Action,
}

impl Item {
    pub fn new(place: &str, kind: Kind, what: impl Into<String>, action: Action) -> Item {
        Item {
            place: place.to_owned(),
            kind,
            what: what.into(),
            action,
        }
    }

    pub fn kept(&self) -> bool {
        matches!(self.action, Action::Keep { .. })
    }
}

/// A copy of the platform's data the destruction follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinalCopy {
    /// `export` (a `terroir export` directory) or `backup` (in the backup repository).
    pub kind: String,
    /// The export's directory, or the backup's label.
    pub location: String,
    /// When it was finished, in Unix seconds.
    pub finished: i64,
    /// Its files' SHA-256 digests (an export: manifest.json and SHA256SUMS), by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digests: BTreeMap<String, String>,
}

impl FinalCopy {
    /// Whether it is recent enough, at `now` (Unix seconds), to destroy after.
    pub fn recent(&self, now: i64) -> bool {
        now - self.finished <= RECENT_SECONDS
    }
}

/// What `destroy` would do to a platform, before anything is done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub platform: String,
    /// `baremetal`, `kubernetes` or `secnumcloud`.
    pub target: String,
    pub options: Options,
    /// Everything found of the platform's, in the order it is handled.
    pub items: Vec<Item>,
    /// The newest backup the target holds, when it has any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup: Option<FinalCopy>,
}

impl Plan {
    /// Nothing of the platform is left to stop or remove.
    pub fn nothing_left(&self) -> bool {
        self.items.iter().all(Item::kept)
    }

    pub fn kept(&self) -> impl Iterator<Item = &Item> {
        self.items.iter().filter(|i| i.kept())
    }

    pub fn changed(&self) -> impl Iterator<Item = &Item> {
        self.items.iter().filter(|i| !i.kept())
    }
}

/// What was done to one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Done {
    #[serde(flatten)]
    pub item: Item,
    /// Why it could not be done; `None` when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// The record of a destruction: signed as an attestation's statement (predicate `erasure`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Erasure {
    pub platform: String,
    pub target: String,
    pub options: Options,
    /// RFC 3339, UTC.
    pub started: String,
    pub finished: String,
    /// What was stopped or removed, where.
    pub removed: Vec<Done>,
    /// What was left in place, and why.
    pub kept: Vec<Item>,
    /// What could not be removed, and why.
    pub failed: Vec<Done>,
    /// The export or backup the destruction follows; `None` with --no-final-export.
    pub follows: Option<FinalCopy>,
}

impl Erasure {
    /// The record of `done` against `plan`.
    pub fn new(
        plan: &Plan,
        done: Vec<Done>,
        follows: Option<FinalCopy>,
        started: String,
        finished: String,
    ) -> Erasure {
        let (failed, removed) = done.into_iter().partition(|d| d.failed.is_some());
        Erasure {
            platform: plan.platform.clone(),
            target: plan.target.clone(),
            options: plan.options,
            started,
            finished,
            removed,
            kept: plan.kept().cloned().collect(),
            failed,
            follows,
        }
    }

    pub fn complete(&self) -> bool {
        self.failed.is_empty()
    }
}

/// `.terroir/<platform>/exports.jsonl` beside the document: each `terroir export` of it.
pub fn exports_file(document: &Path, platform: &str) -> PathBuf {
    crate::deploy::lock::lock_file(document, platform).with_file_name("exports.jsonl")
}

/// The digests of an export directory's seal: its manifest and its SHA256SUMS.
fn seal(dir: &Path) -> std::io::Result<BTreeMap<String, String>> {
    ["manifest.json", "SHA256SUMS"]
        .iter()
        .map(|name| {
            std::fs::read(dir.join(name)).map(|b| ((*name).to_owned(), crate::text::sha256_hex(&b)))
        })
        .collect()
}

/// Record an export of the platform, finished now, for `destroy` to find.
pub fn record_export(document: &Path, platform: &str, dir: &Path, now: i64) -> std::io::Result<()> {
    let location = std::path::absolute(dir)?;
    let copy = FinalCopy {
        kind: "export".into(),
        location: location.display().to_string(),
        finished: now,
        digests: seal(&location)?,
    };
    let file = exports_file(document, platform);
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut line = serde_json::to_string(&copy).map_err(std::io::Error::other)?;
    line.push('\n');
    use std::io::Write;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)?
        .write_all(line.as_bytes())
}

/// The newest recorded export still there as it was written (its seal's digests unchanged).
pub fn last_export(document: &Path, platform: &str) -> Option<FinalCopy> {
    let text = std::fs::read_to_string(exports_file(document, platform)).ok()?;
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<FinalCopy>(l).ok())
        .find(|c| seal(Path::new(&c.location)).is_ok_and(|d| d == c.digests))
}

/// What was found, for the refusal: how old the newest export and backup are.
pub fn seen(
    document: Option<&Path>,
    platform: &str,
    backup: Option<&FinalCopy>,
    now: i64,
) -> String {
    let age = |c: &FinalCopy| {
        crate::text::duration(std::time::Duration::from_secs(
            (now - c.finished).max(0).unsigned_abs(),
        ))
    };
    let export = match document.and_then(|d| last_export(d, platform)) {
        Some(c) => format!("the newest export, {}, is {} old", c.location, age(&c)),
        None => "no export of it is recorded beside its document".to_owned(),
    };
    let backup = match backup {
        Some(c) => format!("the newest backup, {}, is {} old", c.location, age(c)),
        None => "its backup repository holds no backup".to_owned(),
    };
    format!("{export}; {backup}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn plan(items: Vec<Item>) -> Plan {
        Plan {
            platform: "crm".into(),
            target: "baremetal".into(),
            options: Options::default(),
            items,
            last_backup: None,
        }
    }

    #[test]
    fn a_copy_older_than_a_day_is_not_recent() {
        let copy = FinalCopy {
            kind: "backup".into(),
            location: "20261205-101010F".into(),
            finished: 1_000_000,
            digests: Default::default(),
        };
        assert!(copy.recent(1_000_000 + RECENT_SECONDS));
        assert!(!copy.recent(1_000_000 + RECENT_SECONDS + 1));
    }

    #[test]
    fn an_export_changed_since_it_was_recorded_is_not_one() {
        let tmp = tempfile::tempdir().unwrap();
        let doc = tmp.path().join("platform.yaml");
        let out = tmp.path().join("export");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("manifest.json"), "{}").unwrap();
        std::fs::write(out.join("SHA256SUMS"), "sums").unwrap();
        assert!(last_export(&doc, "crm").is_none());
        record_export(&doc, "crm", &out, 1000).unwrap();
        let found = last_export(&doc, "crm").unwrap();
        assert_eq!((found.kind.as_str(), found.finished), ("export", 1000));
        assert_eq!(found.digests.len(), 2);
        std::fs::write(out.join("SHA256SUMS"), "other sums").unwrap();
        assert!(last_export(&doc, "crm").is_none());
        assert!(seen(Some(&doc), "crm", None, 2000).contains("no export"));
    }

    #[test]
    fn a_plan_keeping_everything_leaves_nothing_to_do() {
        let keep = Action::Keep { why: "data".into() };
        assert!(
            plan(vec![Item::new(
                "db1",
                Kind::Data,
                "/var/lib/postgresql/15/main",
                keep.clone()
            )])
            .nothing_left()
        );
        assert!(
            !plan(vec![Item::new(
                "db1",
                Kind::Service,
                "postgresql",
                Action::Stop
            )])
            .nothing_left()
        );
    }

    #[test]
    fn the_record_splits_what_failed_from_what_was_removed() {
        let p = plan(vec![
            Item::new("db1", Kind::File, "/etc/a", Action::Remove),
            Item::new("db1", Kind::File, "/etc/b", Action::Remove),
            Item::new(
                "db1",
                Kind::Data,
                "/srv",
                Action::Keep {
                    why: "without --delete-data".into(),
                },
            ),
        ]);
        let done = vec![
            Done {
                item: p.items[0].clone(),
                failed: None,
            },
            Done {
                item: p.items[1].clone(),
                failed: Some("busy".into()),
            },
        ];
        let r = Erasure::new(&p, done, None, "a".into(), "b".into());
        assert_eq!((r.removed.len(), r.failed.len(), r.kept.len()), (1, 1, 1));
        assert!(!r.complete());
        let json = serde_json::to_value(&r.kept[0]).unwrap_or_default();
        assert_eq!(json["action"], "keep");
        assert_eq!(json["why"], "without --delete-data");
    }
}
