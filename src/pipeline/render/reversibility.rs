//! The figures of the reversibility runbook: for each piece of data whose size the document
//! declares, how many bytes that is and how long exporting and restoring it is estimated to take;
//! the total, and where it falls in the EU Data Act's switching timeline. Inserted into the
//! template context as `reversibility`.
//!
//! Every estimate divides a declared volume size by a throughput. Declared sizes are capacities
//! (what a volume may hold), not what it holds, so every duration here is an upper bound; a drill
//! (`terroir drill`) measures the real figures of a deployment. The throughputs are defined once,
//! below, and nowhere else.

use std::path::Path;

use serde::Serialize;

use crate::document::Target;
use crate::pipeline::resolve::ResolvedPlatform;

/// Bytes of database (`pg_database_size`) per second that an export produces: `pg_dump` in plain
/// format, streamed over SSH, with every table split into its CSV file, row count and content
/// checksum in the same pass. Measured by `benches/export.sh` on a 1.17 GB database: 216 MB/s
/// on a 2-core machine that also ran the database (the database host's own CPU and a gigabit
/// link, about 125 MB/s, are the usual limits); rounded down.
pub const EXPORT_DATABASE_BYTES_PER_SEC: u64 = 200_000_000;

/// Bytes of database per second that a restore loads: `psql --single-transaction` replaying a
/// plain dump as the application's role, rebuilding indexes and checking constraints. Measured by
/// `benches/export.sh` (`terroir restore` of the same 1.17 GB database into a second host):
/// 84.7 MB/s; rounded down.
pub const RESTORE_DATABASE_BYTES_PER_SEC: u64 = 80_000_000;

/// Bytes per second of a `tar` of files streamed over SSH and unpacked at the other end: the mail
/// queue, mailboxes, the Prometheus snapshot, the application's data directory; also the rate at
/// which `sha256sum -c` reads an export back. Not measured on its own: the export benchmark's
/// archives are small; an assumption of SSD storage and a link faster than a gigabit.
pub const ARCHIVE_BYTES_PER_SEC: u64 = 200_000_000;

/// Size of the Postfix queue volume the blueprint requests on Kubernetes
/// (`kubernetes/postfix.yaml`, PersistentVolumeClaim `<platform>-postfix-spool`).
pub const KUBERNETES_MAIL_SPOOL_VOLUME: &str = "2Gi";

/// Size of the Grafana volume the blueprint requests on Kubernetes (`kubernetes/grafana.yaml`,
/// PersistentVolumeClaim `<platform>-grafana`).
pub const KUBERNETES_GRAFANA_VOLUME: &str = "1Gi";

/// Data Act Art. 25(2)(a): the transitional period, at most 30 calendar days.
pub const TRANSITION_DAYS: u64 = 30;

/// Data Act Art. 25(2)(g): the data retrieval period after the transition, at least 30 days.
pub const RETRIEVAL_DAYS: u64 = 30;

const DAY: u64 = 86_400;

/// The `reversibility` object of the template context.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reversibility {
    /// File name of the Platform document, as the runbook's commands name it.
    pub document: String,
    pub throughput: Throughput,
    /// Volume sizes the blueprint itself requests (Kubernetes), as declared quantities.
    pub volumes: Volumes,
    /// One estimate per piece of data of declared size, in the order of the inventory.
    pub estimates: Vec<Estimate>,
    pub total: Total,
    /// Time to archive 100 GiB of files whose size the document does not declare.
    pub archive_per_100_gib: String,
    pub timeline: Timeline,
    /// How the hosts are reached over SSH (hosts targets only; empty on Kubernetes).
    pub hosts: Vec<HostAccess>,
    /// Whether some host has no address yet (cloud VMs before provisioning).
    pub addresses_pending: bool,
    /// How terroir reaches the hosts; absent on Kubernetes.
    pub ssh: Option<SshView>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throughput {
    pub export_database: String,
    pub restore_database: String,
    pub archive: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Volumes {
    pub mail_spool: String,
    pub grafana: String,
}

/// One piece of data of declared size.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Estimate {
    /// `database`, `metrics`, `mail` or `dashboards`.
    pub key: &'static str,
    /// What it is, for the runbook.
    pub what: String,
    /// The quantity as declared, for example `200Gi`.
    pub declared: String,
    /// Where the quantity comes from.
    pub source: String,
    pub bytes: u64,
    /// `bytes`, readable: `200 GiB`.
    pub size: String,
    pub export_seconds: u64,
    pub restore_seconds: u64,
    pub export: String,
    pub restore: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Total {
    pub bytes: u64,
    pub size: String,
    pub export_seconds: u64,
    pub restore_seconds: u64,
    /// Reading the export back (`sha256sum -c`) and the database's row counts and checksums.
    pub verify_seconds: u64,
    /// Export, restore and verification: one complete switch.
    pub switch_seconds: u64,
    pub export: String,
    pub restore: String,
    pub verify: String,
    pub switch: String,
}

/// Days of the transitional period, counted from its first day (day 1).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeline {
    pub transition_days: u64,
    pub retrieval_days: u64,
    /// The rehearsal (`terroir drill`).
    pub drill_first_day: u64,
    pub drill_last_day: u64,
    /// The final export, restore and verification.
    pub switch_first_day: u64,
    pub switch_last_day: u64,
    /// Days left in the transitional period after the switch.
    pub margin_days: u64,
    /// Whether the drill and the switch fit in the transitional period.
    pub fits: bool,
    /// Retrieval window and erasure, when the transition takes its full 30 days.
    pub retrieval_first_day: u64,
    pub retrieval_last_day: u64,
    pub erasure_day: u64,
}

/// How one host is reached for the manual commands.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostAccess {
    pub name: String,
    /// Declared address; empty for VMs not yet provisioned.
    pub address: String,
    /// The address in commands: the address, or a shell variable holding it (`$DB1_ADDRESS`).
    pub target: String,
    /// The shell variable to set when the address is not known yet (`DB1_ADDRESS`), else empty.
    pub variable: String,
    /// The shell variable holding the address of the host that takes its place on the
    /// destination platform (`NEW_DB1`).
    pub new_variable: String,
    /// SSH options from the document: `-p 22`, and `-J user@bastion:port` with a jump host.
    pub options: String,
    /// `deploy@198.18.0.11`.
    pub login: String,
    /// `ssh -p 22 deploy@198.18.0.11`.
    pub ssh: String,
    /// The same for the host that takes its place: `ssh -p 22 deploy@$NEW_DB1`.
    pub new_ssh: String,
    pub roles: Vec<String>,
}

/// The document's SSH settings (hosts targets).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SshView {
    pub user: String,
    pub port: u32,
    pub identity_file: String,
    pub known_hosts_file: String,
}

/// Bytes in a Kubernetes quantity (`200Gi`, `500Mi`, `1T`, `1.5Gi`), or `None` when it is not one.
pub fn declared_bytes(quantity: &str) -> Option<u64> {
    crate::document::validate::parse_size(quantity.trim())
        .ok()
        .and_then(|b| u64::try_from(b).ok())
}

/// Seconds to move `bytes` at `rate` bytes per second, rounded up.
pub fn seconds_for(bytes: u64, rate: u64) -> u64 {
    bytes.div_ceil(rate.max(1))
}

/// A duration for people, rounded up (the estimates are upper bounds): "under a minute",
/// "about 25 min", "about 1 h 10 min", "about 2 days 5 h".
pub fn human_duration(seconds: u64) -> String {
    if seconds < 60 {
        return "under a minute".into();
    }
    let minutes = seconds.div_ceil(60);
    if minutes < 60 {
        return format!("about {minutes} min");
    }
    if seconds < DAY {
        // to the next ten minutes
        let minutes = minutes.div_ceil(10) * 10;
        let (h, m) = (minutes / 60, minutes % 60);
        if h < 24 {
            return if m == 0 {
                format!("about {h} h")
            } else {
                format!("about {h} h {m} min")
            };
        }
    }
    let hours = seconds.div_ceil(3600);
    let (d, h) = (hours / 24, hours % 24);
    let days = if d == 1 {
        "1 day".to_owned()
    } else {
        format!("{d} days")
    };
    if h == 0 {
        format!("about {days}")
    } else {
        format!("about {days} {h} h")
    }
}

/// A throughput for people: `120 MB/s`.
pub fn human_rate(bytes_per_sec: u64) -> String {
    if bytes_per_sec >= 1_000_000 && bytes_per_sec.is_multiple_of(1_000_000) {
        format!("{} MB/s", bytes_per_sec / 1_000_000)
    } else {
        format!("{bytes_per_sec} bytes/s")
    }
}

/// The document's file name as the runbook's commands use it: the name of a YAML or JSON file,
/// else `platform.yaml` (a Platform read from the cluster has no file).
pub fn document_name(file: &str) -> String {
    let name = Path::new(file)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if [".yaml", ".yml", ".json"]
        .iter()
        .any(|ext| name.len() > ext.len() && name.ends_with(ext))
    {
        name
    } else {
        "platform.yaml".into()
    }
}

fn estimate(
    key: &'static str,
    what: String,
    declared: &str,
    source: String,
    export_rate: u64,
    restore_rate: u64,
) -> Option<Estimate> {
    let bytes = declared_bytes(declared)?;
    let export_seconds = seconds_for(bytes, export_rate);
    let restore_seconds = seconds_for(bytes, restore_rate);
    Some(Estimate {
        key,
        what,
        declared: declared.to_owned(),
        source,
        bytes,
        size: crate::text::human_bytes(bytes),
        export_seconds,
        restore_seconds,
        export: human_duration(export_seconds),
        restore: human_duration(restore_seconds),
    })
}

/// Days a phase of `seconds` occupies, counting a started day as a whole one.
fn days_for(seconds: u64) -> u64 {
    seconds.div_ceil(DAY).max(1)
}

/// The figures of the runbook for a resolved platform whose document is `file`.
pub fn context(resolved: &ResolvedPlatform, file: &str) -> Reversibility {
    let c = &resolved.components;
    let on_kubernetes = !resolved.platform.namespace.is_empty();
    let mut estimates = Vec::new();
    if c.database.enabled {
        let what = format!("PostgreSQL database `{}`", c.database.name);
        let source = if c.database.managed {
            "spec.components.database.storage".to_owned()
        } else {
            "spec.components.database.storage (the external server's own size is not declared)"
                .to_owned()
        };
        estimates.extend(estimate(
            "database",
            what,
            &c.database.storage,
            source,
            EXPORT_DATABASE_BYTES_PER_SEC,
            RESTORE_DATABASE_BYTES_PER_SEC,
        ));
    }
    if c.mta.enabled && on_kubernetes {
        let source = format!(
            "PersistentVolumeClaim `{}-spool` of the blueprint",
            c.mta.service_name
        );
        estimates.extend(estimate(
            "mail",
            "Postfix queue".into(),
            KUBERNETES_MAIL_SPOOL_VOLUME,
            source,
            ARCHIVE_BYTES_PER_SEC,
            ARCHIVE_BYTES_PER_SEC,
        ));
    }
    if c.monitoring.enabled {
        let what = format!("Prometheus TSDB (retention {})", c.monitoring.retention);
        estimates.extend(estimate(
            "metrics",
            what,
            &c.monitoring.storage,
            "spec.components.monitoring.storage".into(),
            ARCHIVE_BYTES_PER_SEC,
            ARCHIVE_BYTES_PER_SEC,
        ));
        if c.monitoring.grafana && on_kubernetes {
            let source = format!(
                "PersistentVolumeClaim `{}-grafana` of the blueprint",
                resolved.platform.name
            );
            estimates.extend(estimate(
                "dashboards",
                "Grafana".into(),
                KUBERNETES_GRAFANA_VOLUME,
                source,
                ARCHIVE_BYTES_PER_SEC,
                ARCHIVE_BYTES_PER_SEC,
            ));
        }
    }

    let bytes: u64 = estimates.iter().map(|e| e.bytes).sum();
    let database_bytes: u64 = estimates
        .iter()
        .filter(|e| e.key == "database")
        .map(|e| e.bytes)
        .sum();
    let export_seconds: u64 = estimates.iter().map(|e| e.export_seconds).sum();
    let restore_seconds: u64 = estimates.iter().map(|e| e.restore_seconds).sum();
    // the export read back once, and every table of the new database counted and checksummed
    let verify_seconds = seconds_for(bytes, ARCHIVE_BYTES_PER_SEC)
        + seconds_for(database_bytes, EXPORT_DATABASE_BYTES_PER_SEC);
    let switch_seconds = export_seconds + restore_seconds + verify_seconds;
    let total = Total {
        bytes,
        size: crate::text::human_bytes(bytes),
        export_seconds,
        restore_seconds,
        verify_seconds,
        switch_seconds,
        export: human_duration(export_seconds),
        restore: human_duration(restore_seconds),
        verify: human_duration(verify_seconds),
        switch: human_duration(switch_seconds),
    };

    // day 1: the drill rehearses the whole switch; then the switch itself
    let drill_last_day = days_for(switch_seconds);
    let switch_first_day = drill_last_day + 1;
    let switch_last_day = drill_last_day + days_for(switch_seconds);
    let timeline = Timeline {
        transition_days: TRANSITION_DAYS,
        retrieval_days: RETRIEVAL_DAYS,
        drill_first_day: 1,
        drill_last_day,
        switch_first_day,
        switch_last_day,
        margin_days: TRANSITION_DAYS.saturating_sub(switch_last_day),
        fits: switch_last_day <= TRANSITION_DAYS,
        retrieval_first_day: TRANSITION_DAYS + 1,
        retrieval_last_day: TRANSITION_DAYS + RETRIEVAL_DAYS,
        erasure_day: TRANSITION_DAYS + RETRIEVAL_DAYS + 1,
    };

    let ssh = match &resolved.target {
        Target::Baremetal(b) => Some(&b.ssh),
        Target::Secnumcloud(s) => s.ssh.as_ref(),
        Target::Kubernetes(_) => None,
    };
    let hosts: Vec<HostAccess> = if on_kubernetes {
        Vec::new()
    } else {
        resolved
            .hosts
            .iter()
            .map(|h| {
                let stem = h.name.to_ascii_uppercase().replace('-', "_");
                let variable = if h.address.is_empty() {
                    format!("{stem}_ADDRESS")
                } else {
                    String::new()
                };
                let target = if h.address.is_empty() {
                    format!("${variable}")
                } else {
                    h.address.clone()
                };
                let new_variable = format!("NEW_{stem}");
                let (options, login, new_login) = match ssh {
                    Some(s) => {
                        let jump = s
                            .jump_host
                            .as_ref()
                            .map(|j| {
                                format!(
                                    " -J {}@{}:{}",
                                    j.user.as_deref().unwrap_or(&s.user),
                                    j.address,
                                    j.port
                                )
                            })
                            .unwrap_or_default();
                        (
                            format!("-p {}{jump}", s.port),
                            format!("{}@{target}", s.user),
                            format!("{}@${new_variable}", s.user),
                        )
                    }
                    None => (
                        "-p 22".to_owned(),
                        target.clone(),
                        format!("${new_variable}"),
                    ),
                };
                HostAccess {
                    name: h.name.clone(),
                    address: h.address.clone(),
                    ssh: format!("ssh {options} {login}"),
                    new_ssh: format!("ssh {options} {new_login}"),
                    target,
                    variable,
                    new_variable,
                    options,
                    login,
                    roles: h.roles.iter().map(|r| r.as_str().to_owned()).collect(),
                }
            })
            .collect()
    };
    let addresses_pending = hosts.iter().any(|h| h.address.is_empty());

    Reversibility {
        document: document_name(file),
        throughput: Throughput {
            export_database: human_rate(EXPORT_DATABASE_BYTES_PER_SEC),
            restore_database: human_rate(RESTORE_DATABASE_BYTES_PER_SEC),
            archive: human_rate(ARCHIVE_BYTES_PER_SEC),
        },
        volumes: Volumes {
            mail_spool: KUBERNETES_MAIL_SPOOL_VOLUME.into(),
            grafana: KUBERNETES_GRAFANA_VOLUME.into(),
        },
        estimates,
        total,
        archive_per_100_gib: human_duration(seconds_for(100 << 30, ARCHIVE_BYTES_PER_SEC)),
        timeline,
        hosts,
        addresses_pending,
        ssh: if on_kubernetes {
            None
        } else {
            ssh.map(|s| SshView {
                user: s.user.clone(),
                port: s.port,
                identity_file: s.identity_file.clone(),
                known_hosts_file: s.known_hosts_file.clone(),
            })
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_parsed_in_binary_and_decimal_units() {
        assert_eq!(declared_bytes("200Gi"), Some(200 << 30));
        assert_eq!(declared_bytes("50Gi"), Some(50 << 30));
        assert_eq!(declared_bytes("500Mi"), Some(500 << 20));
        assert_eq!(declared_bytes("1T"), Some(1_000_000_000_000));
        assert_eq!(declared_bytes("1.5Gi"), Some(3 << 29));
        assert_eq!(declared_bytes("2000Gi"), Some(2000 << 30));
        assert_eq!(declared_bytes("1024"), Some(1024));
        assert_eq!(declared_bytes("20GB"), None);
        assert_eq!(declared_bytes("lots"), None);
        assert_eq!(declared_bytes(""), None);
        assert_eq!(declared_bytes("-1Gi"), None);
    }

    #[test]
    fn durations_read_as_rounded_up_upper_bounds() {
        assert_eq!(human_duration(0), "under a minute");
        assert_eq!(human_duration(59), "under a minute");
        assert_eq!(human_duration(60), "about 1 min");
        assert_eq!(human_duration(61), "about 2 min");
        assert_eq!(human_duration(1790), "about 30 min");
        assert_eq!(human_duration(3540), "about 59 min");
        assert_eq!(human_duration(3541), "about 1 h");
        assert_eq!(human_duration(3601), "about 1 h 10 min");
        assert_eq!(human_duration(4200), "about 1 h 10 min");
        assert_eq!(human_duration(5369), "about 1 h 30 min");
        assert_eq!(human_duration(23 * 3600 + 55 * 60), "about 1 day");
        assert_eq!(human_duration(DAY), "about 1 day");
        assert_eq!(human_duration(DAY + 1), "about 1 day 1 h");
        assert_eq!(human_duration(2 * DAY + 5 * 3600), "about 2 days 5 h");
    }

    #[test]
    fn rates_read_in_their_units() {
        assert_eq!(human_rate(120_000_000), "120 MB/s");
        assert_eq!(human_rate(1500), "1500 bytes/s");
    }

    #[test]
    fn estimates_divide_the_declared_size_by_the_throughput() {
        // 200 GiB at 120 MB/s: 1790 s; at 40 MB/s: 5369 s
        assert_eq!(seconds_for(200 << 30, 120_000_000), 1790);
        assert_eq!(seconds_for(200 << 30, 40_000_000), 5369);
        let e = estimate(
            "database",
            "db".into(),
            "200Gi",
            "s".into(),
            120_000_000,
            40_000_000,
        )
        .expect("a quantity");
        assert_eq!(
            (e.export.as_str(), e.restore.as_str()),
            ("about 30 min", "about 1 h 30 min")
        );
        assert!(estimate("database", "db".into(), "big", "s".into(), 1, 1).is_none());
    }

    #[test]
    fn document_names_are_file_names() {
        assert_eq!(document_name("examples/baremetal.yaml"), "baremetal.yaml");
        assert_eq!(document_name("/srv/platforms/acme.yml"), "acme.yml");
        assert_eq!(document_name("platforms/crm/acme-crm"), "platform.yaml");
        assert_eq!(document_name(""), "platform.yaml");
    }

    #[test]
    fn a_phase_takes_at_least_a_day() {
        assert_eq!(days_for(0), 1);
        assert_eq!(days_for(DAY), 1);
        assert_eq!(days_for(DAY + 1), 2);
    }
}
