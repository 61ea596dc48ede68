//! Why a backup command failed: the platform takes no backups, the repository refuses the
//! restore asked (nothing was changed), or a host or the cluster failed.

use std::path::PathBuf;

use crate::deploy::baremetal::site::SiteError;
use crate::deploy::kubernetes::ClusterError;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Site(#[from] SiteError),
    #[error(transparent)]
    Render(#[from] crate::pipeline::render::RenderError),
    #[error(
        "{}: platform {platform} takes no backups: `spec.components.backups.enabled: true` with a managed database and `spec.endpoints.backupS3` are needed",
        document.display()
    )]
    NoBackups { document: PathBuf, platform: String },
    #[error("{}: platform {platform} has no database managed by terroir", document.display())]
    NoManagedDatabase { document: PathBuf, platform: String },
    #[error("{}: no host has the `database` role", document.display())]
    NoDatabaseHost { document: PathBuf },
    #[error(
        "--to-time `{text}` is not a time with its offset; expected `YYYY-MM-DD HH:MM:SS+00`, such as `2026-11-23 14:05:00+00`"
    )]
    Time {
        text: String,
        source: k8s_openapi::jiff::Error,
    },
    #[error(
        "{from} runs PostgreSQL {from_version} and {into} PostgreSQL {into_version}: a physical backup restores into the same major version only"
    )]
    MajorVersion {
        from: String,
        from_version: u32,
        into: String,
        into_version: u32,
    },
    #[error("secret `{name}` of platform {platform} is not in its store {}: the backups cannot be read without it", store.display())]
    MissingSecret {
        name: &'static str,
        platform: String,
        store: PathBuf,
    },
    #[error("secret `{name}` of platform {platform}")]
    Secret {
        name: &'static str,
        platform: String,
        source: Box<crate::secrets::SecretError>,
    },
    #[error(
        "--into restores onto another platform's database host: it is for hosts; on Kubernetes a restore rewinds FILE's own database (with --replace)"
    )]
    IntoOnCluster,
    #[error(
        "platform {platform} runs PostgreSQL as {replicas} members under Patroni: `backup restore` on Kubernetes rewinds one pod's volume, which Patroni's other members and its store (the leader's ConfigMaps) would not follow; it is not done for a replicated database, and nothing was changed"
    )]
    ReplicatedOnCluster { platform: String, replicas: u32 },
    #[error("pgbackrest info printed no JSON: {output}")]
    InfoNotJson {
        output: String,
        source: serde_json::Error,
    },
    #[error("pgbackrest info does not list stanza {stanza}")]
    NoStanza { stanza: String },
    #[error("host {host}: the backup ran but pgbackrest info lists none")]
    NoneListed { host: String },
    // Refused: nothing was changed.
    #[error("the backup repository of {platform} holds no backup (status: {status}); nothing was changed. Take one with `terroir backup now {}`", document.display())]
    EmptyRepository {
        platform: String,
        status: String,
        document: PathBuf,
    },
    #[error(
        "{target} is outside the recoverable window of {platform}: {from} to {to}{}; nothing was changed",
        if *archive_end_known { "" } else { " (the end of the archived WAL is unknown: the source database did not answer)" }
    )]
    OutsideWindow {
        target: String,
        platform: String,
        from: String,
        to: String,
        archive_end_known: bool,
    },
    #[error(
        "restoring {platform} into its own database rewinds it to {target}: everything written since is lost. Pass --replace to do so; nothing was changed"
    )]
    WouldRewind { platform: String, target: String },
    #[error(
        "restoring rewinds {platform}'s own database to {target}: what was written after it is lost. Add --replace to do it, or --dry-run to see the steps; nothing was changed"
    )]
    WouldRewindCluster { platform: String, target: String },
    #[error("the database of {platform} on {host} holds data ({}); pass --replace to overwrite it; nothing was changed", held.join(", "))]
    HoldsData {
        platform: String,
        host: String,
        held: Vec<String>,
    },
    #[error("{object} is not on the cluster: run `terroir apply {}` first", document.display())]
    NotApplied { object: String, document: PathBuf },
    #[error(
        "PersistentVolumeClaim {object} (the database's volume) is not on the cluster: nothing to restore into"
    )]
    NoVolume { object: String },
    #[error("the check before the restore failed; PostgreSQL was not stopped, nothing was changed")]
    CheckFailed { source: Box<BackupError> },
    // Failed on the target.
    #[error(
        "host {host}: the restore stopped; PostgreSQL may be stopped with a partial data directory: fix the cause and run the restore again (with --replace)"
    )]
    RestoreFailed { host: String, source: SiteError },
    #[error("host {host}: PostgreSQL {} before the promotion; its log ends with:\n{log}", if *stopped { "stopped" } else { "was still recovering after 15 minutes" })]
    NotPromoted {
        host: String,
        stopped: bool,
        log: String,
    },
    /// The cluster could not be reached with the kubeconfig given.
    #[error("cannot connect to the cluster")]
    Connect { source: ClusterError },
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("CronJob {cronjob} has no {what}")]
    JobTemplate { cronjob: String, what: &'static str },
    #[error("the Job made from CronJob {cronjob} is not valid")]
    InvalidJob {
        cronjob: String,
        source: serde_json::Error,
    },
    #[error(
        "Job {namespace}/{name} failed ({reason}); its log: kubectl -n {namespace} logs job/{name}"
    )]
    JobFailed {
        namespace: String,
        name: String,
        reason: String,
    },
    #[error(
        "Job {namespace}/{name} did not finish within {seconds} s (it goes on; its log: kubectl -n {namespace} logs job/{name})"
    )]
    JobTimedOut {
        namespace: String,
        name: String,
        seconds: u64,
    },
    #[error("Job {namespace}/{name} has no pod")]
    NoPod { namespace: String, name: String },
    #[error("{object} was deleted before it finished")]
    Deleted { object: String },
    #[error("{object}: the watch ended{}", if reason.is_empty() { String::new() } else { format!(": {reason}") })]
    Watch { object: String, reason: String },
    #[error("pod {object} did not stop within {seconds} s")]
    NotStopped { object: String, seconds: u64 },
    #[error("PostgreSQL did not stop: nothing was restored, StatefulSet {statefulset} was scaled back to 1{}", scale_back.as_ref().map(|b| format!("; and it could not be scaled back to 1: {b}")).unwrap_or_default())]
    StopFailed {
        statefulset: String,
        scale_back: Option<String>,
        source: Box<BackupError>,
    },
    #[error(
        "the restore failed. PostgreSQL was started again on its volume: if the restore had begun writing to it, PostgreSQL may not start; run the same restore again"
    )]
    RestoreJob { source: Box<BackupError> },
    #[error("the volume was restored to {target}, but PostgreSQL did not come back")]
    NotRestarted {
        target: String,
        source: Box<BackupError>,
    },
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::error::{Error, ExitStatus};

    #[test]
    fn a_restore_refused_says_why_and_that_nothing_changed() {
        let e = BackupError::OutsideWindow {
            target: "2001-01-01 00:00:00+00".into(),
            platform: "acme".into(),
            from: "a".into(),
            to: "b".into(),
            archive_end_known: false,
        };
        assert_eq!(
            e.to_string(),
            "2001-01-01 00:00:00+00 is outside the recoverable window of acme: a to b (the end of the archived WAL is unknown: the source database did not answer); nothing was changed"
        );
        assert_eq!((e.exit_status(), e.kind()), (ExitStatus::Failed, "refused"));
        let e = BackupError::HoldsData {
            platform: "next".into(),
            host: "db2".into(),
            held: vec!["crm: 3 tables".into()],
        };
        assert!(
            e.to_string()
                .contains("holds data (crm: 3 tables); pass --replace"),
            "{e}"
        );
    }

    #[test]
    fn input_errors_exit_1_and_target_failures_exit_2() {
        let e = crate::backup::hosts::parse_time("yesterday").unwrap_err();
        assert_eq!(
            (e.exit_status(), e.kind()),
            (ExitStatus::Invalid, "invalid-input")
        );
        assert!(crate::text::error_chain(&e).contains("expected `YYYY-MM-DD HH:MM:SS+00`"));
        let remote = SiteError::Remote {
            host: "db1".into(),
            what: "pgbackrest restore".into(),
            status: 56,
            output: "ERROR: [056]: unable to find backup".into(),
        };
        let e = Error::from(BackupError::RestoreFailed {
            host: "db1".into(),
            source: remote,
        });
        assert_eq!(e.exit_status(), ExitStatus::Failed);
        let chain = crate::text::error_chain(&e);
        assert!(chain.starts_with("host db1: the restore stopped;") && chain.ends_with("host db1: pgbackrest restore failed (exit 56): ERROR: [056]: unable to find backup"), "{chain}");
        assert_eq!(
            e.details()["remote"],
            serde_json::json!({"host": "db1", "command": "pgbackrest restore", "status": 56, "output": "ERROR: [056]: unable to find backup"})
        );
        let e = BackupError::JobFailed {
            namespace: "ns".into(),
            name: "p-backup-incr-1".into(),
            reason: "BackoffLimitExceeded: pgbackrest exited with 56".into(),
        };
        assert_eq!(
            e.to_string(),
            "Job ns/p-backup-incr-1 failed (BackoffLimitExceeded: pgbackrest exited with 56); its log: kubectl -n ns logs job/p-backup-incr-1"
        );
        assert_eq!(e.exit_status(), ExitStatus::Failed);
    }
}
