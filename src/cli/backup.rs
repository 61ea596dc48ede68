//! `terroir backup now|list|restore` (clap types).

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

#[derive(Debug, Subcommand)]
pub enum BackupCmd {
    /// Take a backup now on the database host (pgBackRest, into the platform's S3 repository,
    /// encrypted), showing its progress, then print its label, size and duration.
    ///
    /// The same script the schedule runs (spec.components.backups: `fullSchedule` for full
    /// backups, `schedule` for incremental ones): it also publishes the time of this success to
    /// the node exporter (terroir_backup_last_success_timestamp_seconds), which the BackupTooOld
    /// alert watches.
    ///
    /// On Kubernetes: a Job made from the backup CronJob of that type (`<platform>-backup-full`
    /// or `-incr`), which runs pgBackRest against the database pod's pgBackRest server; the
    /// command waits for it and says where its log is. The exporter publishes the result to the
    /// BackupTooOld alert.
    ///
    /// Example: terroir backup now platform.yaml --type full
    Now(BackupNowArgs),
    /// List the backups in the platform's repository: label, type, start and stop, sizes, WAL
    /// range, and the window a point-in-time restore can reach.
    ///
    /// Example: terroir backup list platform.yaml
    List(BackupListArgs),
    /// Restore the platform's database as it was at a given time (point-in-time restore): the
    /// backup before that time, then the archived WAL replayed up to it.
    ///
    /// Without --into, FILE's own database is rewound (--replace required: what was written
    /// after the time is lost). With --into OTHER_FILE, FILE's backups are restored onto
    /// OTHER_FILE's database host (a replacement host, a rehearsal): its PostgreSQL is stopped,
    /// restored with a temporary pgBackRest configuration carrying FILE's repository and
    /// secrets (mode 0600, removed afterwards), started, and the roles of OTHER_FILE get their own
    /// passwords back so its application connects. WAL archiving stays off there, so the restored
    /// database never writes into FILE's repository; the output says what to do next.
    ///
    /// Refused, with nothing changed (exit 2): a time outside the recoverable window (see
    /// `terroir backup list`), an empty repository, or a destination holding data without
    /// --replace. --dry-run shows what would happen.
    ///
    /// On Kubernetes (FILE's own database only, --replace required): a Job from the backup
    /// CronJob's pod checks that every WAL segment is archived and that the time is inside the
    /// window (nothing is stopped if not); then PostgreSQL's StatefulSet is scaled to 0, a Job
    /// on its volume restores it (pgBackRest, --delta), and the StatefulSet is scaled back to 1:
    /// PostgreSQL replays the WAL up to the time and promotes itself.
    ///
    /// Example: terroir backup restore platform.yaml --to-time "2026-11-23 14:05:00+00" --into rehearsal.yaml --replace
    Restore(BackupRestoreArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackupType {
    /// Every file of the database.
    Full,
    /// Files changed since the last backup of any type.
    Incr,
    /// Files changed since the last full backup.
    Diff,
}

impl BackupType {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupType::Full => "full",
            BackupType::Incr => "incr",
            BackupType::Diff => "diff",
        }
    }
}

#[derive(Debug, Args)]
pub struct BackupNowArgs {
    /// Platform document (YAML).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// What to back up (an incremental backup without a full one before it is taken as full).
    #[arg(long = "type", value_enum, default_value_t = BackupType::Incr)]
    pub kind: BackupType,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Where the platform's cluster is, for a document whose target is Kubernetes.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// Kubernetes: kubeconfig file (default: the document's, else $KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "PATH", help_heading = "Kubernetes")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubernetes: kubeconfig context (default: the document's, else the current context).
    #[arg(long, value_name = "NAME", help_heading = "Kubernetes")]
    pub context: Option<String>,
    /// Kubernetes: seconds to wait for each Job (and for PostgreSQL to stop and start again).
    #[arg(
        long,
        default_value_t = 21600,
        value_name = "SECONDS",
        help_heading = "Kubernetes"
    )]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct BackupListArgs {
    /// Platform document (YAML).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Args)]
pub struct BackupRestoreArgs {
    /// Platform document (YAML) whose backups are restored.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The time to restore to, with its offset: `YYYY-MM-DD HH:MM:SS+00` (fractions of a second
    /// allowed). Transactions committed after it are not restored.
    #[arg(long, value_name = "TIME")]
    pub to_time: String,
    /// Platform document of another platform whose database host receives the restore.
    #[arg(long, value_name = "OTHER_FILE")]
    pub into: Option<PathBuf>,
    /// Run every check and show what would happen; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Overwrite the destination's data (always needed to rewind FILE's own database).
    #[arg(long)]
    pub replace: bool,
    /// Take the platform's lock even from a holder terroir cannot show to be gone.
    #[arg(long)]
    pub force_unlock: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}
