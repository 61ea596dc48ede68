//! What `terroir export` reads on the hosts, as a list: the runbook names these places, and its
//! tests check the runbook against this list, so that the export and the runbook cannot drift
//! apart. Pure: from the resolved platform alone.
//!
//! The configuration files the export reads (`configuration/hosts/<host>/deployed.tar`) are the
//! plan's file steps; they are listed by the plan, not here.

use serde::Serialize;

use crate::document::Role;
use crate::pipeline::resolve::ResolvedPlatform;

/// Where Debian's Prometheus keeps its TSDB.
pub const TSDB_DIR: &str = "/var/lib/prometheus/metrics2";
/// Where Postfix keeps its queue, on a host and in the Postfix container.
pub const SPOOL_DIR: &str = "/var/spool/postfix";
pub const QUEUE_DIRS: &str = "incoming active deferred hold maildrop bounce defer trace";

/// A path component from a name.
pub fn safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// One place on one host that the export reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportRead {
    pub host: String,
    pub kind: ReadKind,
    /// Absolute path on the host; a directory is read with everything below it.
    pub path: String,
    /// Where it goes in the export, relative to the export directory; empty when it is only
    /// used to read something else (the platform CA's certificate, to reach Prometheus).
    pub into: String,
}

/// What a place the export reads holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadKind {
    /// The database cluster, read through `pg_dump` (on the primary).
    Database,
    /// One of Postfix's queue directories.
    MailQueue,
    Mailboxes,
    DkimKeys,
    /// The Prometheus TSDB, read as a snapshot.
    Metrics,
    /// The platform CA's certificate, to reach Prometheus's admin API.
    PlatformCa,
    AppData,
}

/// PostgreSQL's data directory on a database host (Debian's cluster `main`, also Patroni's).
pub fn postgres_data_dir(version: u32) -> String {
    format!("/var/lib/postgresql/{version}/main")
}

/// Every place the export reads on the hosts of a hosts target (none on Kubernetes), host by
/// host in the order of the platform's roles.
pub fn export_reads(resolved: &ResolvedPlatform) -> Vec<ExportRead> {
    if !resolved.platform.namespace.is_empty() {
        return Vec::new();
    }
    let c = &resolved.components;
    let hosts = |role: Role| {
        resolved
            .roles
            .get(role.as_str())
            .cloned()
            .unwrap_or_default()
    };
    let mut reads = Vec::new();
    let mut read = |host: &str, kind, path: String, into: String| {
        reads.push(ExportRead {
            host: host.to_owned(),
            kind,
            path,
            into,
        });
    };
    if c.database.managed {
        // pg_dump reads the cluster through the server, on the primary
        for h in hosts(Role::Database) {
            read(
                &h,
                ReadKind::Database,
                postgres_data_dir(c.database.version),
                format!("database/{}.sql", safe(&c.database.name)),
            );
        }
    }
    if c.mta.enabled {
        for h in hosts(Role::Mta) {
            for dir in QUEUE_DIRS.split_whitespace() {
                read(
                    &h,
                    ReadKind::MailQueue,
                    format!("/var/spool/postfix/{dir}"),
                    format!("mail/{h}/queue.tar"),
                );
            }
            read(
                &h,
                ReadKind::Mailboxes,
                "/var/mail".into(),
                format!("mail/{h}/mailboxes.tar"),
            );
            read(
                &h,
                ReadKind::DkimKeys,
                "/etc/opendkim/keys".into(),
                "secrets/secrets.tar.age".into(),
            );
        }
    }
    if c.monitoring.enabled {
        for h in hosts(Role::Monitoring) {
            read(
                &h,
                ReadKind::PlatformCa,
                format!("/etc/{}/tls/ca.crt", resolved.platform.name),
                String::new(),
            );
            read(
                &h,
                ReadKind::Metrics,
                TSDB_DIR.into(),
                format!("metrics/{h}/tsdb-snapshot.tar"),
            );
        }
    }
    if c.app.enabled {
        for h in hosts(Role::App) {
            read(
                &h,
                ReadKind::AppData,
                format!("/var/lib/{}", resolved.platform.name),
                format!("app/{h}/data.tar"),
            );
        }
    }
    reads
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::continuity::claims::tests::example;

    fn places(reads: &[ExportRead], host: &str, kind: ReadKind) -> Vec<String> {
        reads
            .iter()
            .filter(|r| r.host == host && r.kind == kind)
            .map(|r| r.path.clone())
            .collect()
    }

    #[test]
    fn the_export_reads_each_role_on_its_hosts() {
        let (resolved, _) = example("baremetal.yaml", |t| t);
        let reads = export_reads(&resolved);
        assert_eq!(
            places(&reads, "db1", ReadKind::Database),
            ["/var/lib/postgresql/15/main"]
        );
        assert_eq!(
            places(&reads, "ops1", ReadKind::MailQueue).len(),
            QUEUE_DIRS.split_whitespace().count()
        );
        assert_eq!(places(&reads, "ops1", ReadKind::Mailboxes), ["/var/mail"]);
        assert_eq!(places(&reads, "ops1", ReadKind::Metrics), [TSDB_DIR]);
        assert_eq!(
            places(&reads, "app1", ReadKind::AppData),
            ["/var/lib/acme-crm"]
        );
        assert!(
            reads
                .iter()
                .all(|r| r.host != "db1" || r.kind == ReadKind::Database)
        );
    }

    #[test]
    fn the_export_reads_every_database_member_and_nothing_on_a_cluster() {
        let (ha, _) = example("baremetal-ha.yaml", |t| t);
        let members: Vec<String> = export_reads(&ha)
            .into_iter()
            .filter(|r| r.kind == ReadKind::Database)
            .map(|r| r.host)
            .collect();
        assert_eq!(members, ["db1", "db2", "db3"]);
        let (cluster, _) = example("kubernetes.yaml", |t| t);
        assert!(export_reads(&cluster).is_empty());
    }
}
