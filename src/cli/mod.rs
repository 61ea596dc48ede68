//! Command-line types (clap). Behaviour lives in `crate::commands`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod secrets;
pub use secrets::{RotateArgs, SecretsCommand};
mod audit;
mod backup;
mod images;
pub use audit::{AuditArgs, AuditSource};
pub use backup::{
    BackupCmd, BackupListArgs, BackupNowArgs, BackupRestoreArgs, BackupType, ClusterArgs,
};
pub use images::ImagesCommand;

#[derive(Debug, Parser)]
#[command(
    name = "terroir",
    version,
    about = "Deploy a customer-engagement platform where its data must stay, and prove where it runs.",
    long_about = "Terroir renders and applies blueprints that deploy a complete customer-engagement platform \
(application, PostgreSQL, Postfix, monitoring, backups) to bare-metal hosts over SSH, to \
SecNumCloud-qualified clouds through Terraform/OpenTofu, or to your own Kubernetes cluster.\n\n\
You describe the platform once, in a Platform document (see `terroir schema`). Start with:\n\n  \
terroir validate examples/baremetal.yaml\n  \
terroir render examples/baremetal.yaml --out rendered/",
    after_help = "Exit status: 0 success, 1 invalid input or usage, 2 a check failed (policy, verification)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Output format: `text` for people, `json` for scripts (printed on stdout).
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = OutputFormat::Text, env = "TERROIR_OUTPUT")]
    pub output: OutputFormat,
    /// Extra directory of blueprints, searched before the ones built into terroir.
    #[arg(long, global = true, value_name = "DIR", env = "TERROIR_BLUEPRINTS")]
    pub blueprints: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check Platform documents: YAML syntax, types, unknown keys, and semantic rules.
    ///
    /// Every problem is reported at once as FILE:LINE:COLUMN: what is wrong; what was expected.
    /// Exits 1 when any document is invalid.
    Validate(ValidateArgs),
    /// Render a Platform document into a directory of files for its target.
    ///
    /// Writes the target's files (Kubernetes manifests, per-host configuration and plan, or a
    /// Terraform root module), the runbooks, a sovereignty pre-assessment and SHA256SUMS
    /// (`sha256sum -c SHA256SUMS` checks it). The same document always renders byte-identical files.
    /// Nothing is deployed.
    Render(RenderArgs),
    /// Show what `apply` would change, changing nothing.
    ///
    /// Bare metal: connects to every host over SSH (strict host key checking against the
    /// document's knownHostsFile) and compares packages, users, directories, files (by SHA-256,
    /// owner and mode) and services with the plan.
    ///
    /// Kubernetes: a server-side dry run of every object (so admission and conflicts are checked
    /// by the cluster itself) compared with the live objects, printed as a diff, plus the objects
    /// that apply would prune.
    Plan(ApplyArgs),
    /// Render the document and converge its target to it.
    ///
    /// Bare metal: only what differs is changed over SSH: files are uploaded beside their
    /// destination, checked against their SHA-256 and renamed into place; a service restarts only
    /// when one of its files changed. Hosts are converged in parallel; a host that fails does not
    /// stop the others unless --fail-fast. With `components.app.publicHost` and
    /// `endpoints.acmeCa`, the public name's certificate is then obtained from that CA (HTTP-01,
    /// served by nginx on the application hosts) and delivered; renewed 30 days before its end.
    ///
    /// Kubernetes: Secrets terroir generates (passwords, DKIM key, the platform CA and server
    /// certificates) are created first and never overwritten; then server-side apply with field manager `terroir`, namespaces first. Every object
    /// is dry-run first, so a conflict or a refused object changes nothing. Objects are labelled
    /// as one ApplySet (parent: ConfigMap terroir-<platform>), and objects the document no longer
    /// renders are pruned. Then waits for rollouts (--timeout).
    ///
    /// Running it again changes nothing. Exit 2 when a host or the cluster failed.
    Apply(ApplyArgs),
    /// Whether what runs is what the document renders, and ready; changes nothing.
    ///
    /// Bare metal: every host probed, every step that would change listed (as `plan` would),
    /// unreachable hosts named. Kubernetes: every workload's rollout (ready replicas, updated
    /// pods). SecNumCloud: what Terraform would still change. Exit 2 when anything is pending.
    ///
    /// Bare metal also asks each host's components how they are: Patroni's role (leader, sync
    /// standby, replica), state and lag, each etcd member, each Alertmanager's cluster, the
    /// application's health endpoint.
    Status(ApplyArgs),
    /// Move the database's primary to another member, through Patroni (bare metal, with
    /// `replicas` of 2 or more): planned maintenance of the primary's host.
    ///
    /// Without --to, the synchronous standby takes over (else the standby least behind).
    /// Writes pause while the primary changes; clients with every member in their connection
    /// string (target_session_attrs=read-write) find the new one. Takes the platform's lock.
    Switchover(SwitchoverArgs),
    /// Go back to the application's previous release (or the one --to names), one host or pod
    /// at a time, each health checked before the next.
    ///
    /// Every release switch is recorded with the database's restore point taken just before it
    /// (on hosts in the release directory's history.jsonl; on Kubernetes on the Deployment,
    /// annotation terroir.eu/releases, beside its ReplicaSets' revisions). With --with-data the database goes back to that restore point too
    /// (point-in-time restore through pgBackRest): the command first states what is lost (the
    /// time span, and the rows written since, per table), and acts only with --yes. The
    /// application is stopped while the database is restored, then started on the old release.
    ///
    /// The document still names the newer release: change it, or the next `apply` installs that
    /// release again.
    ///
    /// Example: terroir rollback platform.yaml --with-data --yes
    Rollback(RollbackArgs),
    /// Take the platform down: the plan first (what is stopped, removed and kept, and why), then,
    /// with --yes, carried out, and recorded in a signed erasure record.
    ///
    /// Hosts: services stopped and disabled; terroir's files, units, accounts, firewall rules and
    /// secrets removed; packages kept (--purge-packages purges them); data (PostgreSQL's data and
    /// WAL, mailboxes, the TSDB, the application's data, the backups under the platform's prefix)
    /// kept unless --delete-data. Kubernetes: every ApplySet member, then the platform's
    /// namespaces; volumes only with --delete-data. SecNumCloud: the hosts or cluster the cloud
    /// handed over first, then `tofu|terraform destroy` of the saved state; without
    /// --delete-data the resources holding data (VMs and their disks, volumes, buckets, clusters)
    /// are kept, with what they depend on.
    ///
    /// Refused while no export (`terroir export`) or backup younger than 24 hours exists, unless
    /// --no-final-export. The record (erasure-record.json, a DSSE envelope signed with --key,
    /// checked by `terroir attest verify`) says what was removed, where and when, what was kept
    /// and why, and the digests of the export it follows. Takes the platform's lock; a second
    /// destroy finds nothing left to do.
    ///
    /// Example: terroir destroy platform.yaml --delete-data --key attest.key --yes
    Destroy(DestroyArgs),
    /// Prove every degraded mode the platform claims, on the platform itself (bare metal).
    ///
    /// For each claim of the blueprint (an external dependency the document declares: SMTP
    /// relay, fallback relay, backup storage, DNS resolvers, package mirror, ACME CA, AI
    /// endpoint, CDN; or one member of a role on two hosts or more: the database's primary, an
    /// MTA, a Prometheus, an application host), in turn: the fault is placed on the platform's
    /// hosts (nftables rules rejecting the traffic to that dependency, or the member stopped),
    /// the probes of its declared degraded mode run, the fault is removed, and the platform must
    /// be back to nominal (queue drained, alert resolved, member back).
    ///
    /// Each fault removes itself on the host after --max-fault-seconds, even if terroir is
    /// killed. Takes the platform's lock. Refused without --yes when the blueprint's
    /// `environment` is `production`. Writes continuity-report.json and .md into --report;
    /// exit 2 when a claim fails. --dry-run lists the claims and changes nothing.
    ///
    /// Example: terroir continuity platform.yaml --only smtpRelay --mail-to ops@example.fr
    Continuity(ContinuityArgs),
    /// Print the JSON Schema of the Platform document (for editors and CI checks).
    Schema,
    /// Run the Kubernetes operator: keep every `Platform` resource rendered, checked and applied.
    ///
    /// For each Platform (group terroir.eu, version v1alpha1; see `terroir crd`): resolve and
    /// render it, gate it on its sovereignty policy, server-side apply its objects as an ApplySet
    /// whose parent is the Platform itself (pruning what is no longer rendered), and check that
    /// its workloads rolled out. Conditions Rendered, PolicyCompliant, Applied and Ready are
    /// written to its status with observedGeneration, and Events are recorded. A finalizer
    /// deletes everything the Platform created when it is deleted. Serves /metrics, /healthz and
    /// /readyz. With leader election (default), only the replica holding the Lease reconciles.
    Operator(OperatorArgs),
    /// Print the CustomResourceDefinition of `platforms.terroir.eu` (YAML; JSON with --output json).
    ///
    /// Generated from the same Rust types as the Platform document, so the operator's custom
    /// resource accepts exactly what `terroir validate` accepts structurally. The Helm chart ships
    /// this output in charts/terroir/crds/.
    Crd,
    /// Where addresses and host names really are: country, autonomous system, organisation,
    /// operator, jurisdiction and CLOUD Act exposure, with the reason.
    ///
    /// Host names are resolved through the system resolver first. Country data: DB-IP
    /// (CC-BY-4.0) through ip-location-db; ASN data: RouteViews and DB-IP (CC-BY-4.0).
    Locate(LocateArgs),
    /// Judge a Platform against its sovereignty policy: declared facts, and with --live the
    /// target's real hosts, nodes and images, or a Terraform plan. Exit 2 when any check fails.
    Verify(VerifyArgs),
    /// Generate an Ed25519 key pair for signing attestations: KEY (PKCS#8 PEM, mode 0600) and
    /// KEY.pub (SubjectPublicKeyInfo PEM), readable by standard tools (openssl, Python's
    /// cryptography). Existing files are never overwritten.
    Keygen {
        /// Path of the private key; the public key is written to PATH.pub.
        #[arg(long, value_name = "KEY")]
        out: PathBuf,
    },
    /// Sign what was rendered, and where it runs: a DSSE envelope holding an in-toto Statement.
    ///
    /// `terroir attest FILE --key KEY --out ATTESTATION` renders FILE, runs the checks of
    /// `terroir verify` (with --live, against the running target) and signs an in-toto Statement
    /// whose subjects are every rendered file (name, SHA-256) and whose predicate is the
    /// sovereignty assessment: findings with evidence, the 100-point grid criterion by criterion
    /// (verified, declared or unknown), the customer-engagement-platform criteria and the verdict.
    /// Beside ATTESTATION it writes the human report (.report.md, .report.html) and a draft GDPR
    /// Art. 30 record of processing activities (.ropa.md).
    ///
    /// `terroir attest verify ATTESTATION --pubkey KEY.pub [--against DIR]` checks the signature
    /// and, with --against, that every subject matches the files of a rendered DIR.
    Attest(AttestArgs),
    /// Export every piece of a platform's data, ready to leave: the database as a pg_dump and one
    /// CSV per table, the mail queue and mailboxes, a Prometheus TSDB snapshot, the application's
    /// data, the configuration, and the secrets encrypted to age recipients (never in clear).
    ///
    /// Streams everything to DIR (built in DIR.partial, renamed when complete) with manifest.json
    /// (what, from where, sizes, row counts, checksums, tool versions) and SHA256SUMS.
    ///
    /// On hosts, over SSH. On Kubernetes (the document's kubeconfig and context, else
    /// $KUBECONFIG or ~/.kube/config), through the API server: pg_dump runs by exec in the
    /// database's pod and streams through the same pipeline (one CSV per table, counts,
    /// checksums); the TSDB snapshot is made through the service proxy and read by exec in
    /// Prometheus's pod; the MTA's queue (postqueue -j and a tar of its directories) by exec in
    /// each Postfix pod; Alertmanager's silences and the namespace's objects are read through the
    /// API, its Secrets too, exported only encrypted. Not on Kubernetes: application data (its
    /// pods keep no volume): manifest.json says so.
    ///
    /// Example: terroir export platform.yaml --to export/ --recipient age1…
    Export(ExportArgs),
    /// Restore an export into the platform FILE describes (other hosts): checks every file
    /// against SHA256SUMS first and refuses a tampered or incomplete export, then checks the
    /// destination, and changes nothing unless both pass. The destination is deployed first
    /// (`terroir apply FILE`).
    ///
    /// On Kubernetes (another namespace or cluster), each database is loaded by psql run by exec
    /// in the destination's database pod, in one transaction, as the platform's role; the mail
    /// queue and the metrics stay in the export, listed as not restored.
    ///
    /// Example: terroir restore new-platform.yaml --from export/ --dry-run
    Restore(RestoreArgs),
    /// A reversibility drill: export FILE's platform, restore it into OTHER_FILE's, compare every
    /// table (row count and content checksum), the mail, the metrics, the application's data and
    /// health, and write drill-report.json and drill-report.md with the time of each phase.
    /// Exit 2 when anything differs.
    ///
    /// From a Kubernetes platform into another namespace or cluster: pg_dump and psql run by exec
    /// in each side's database pod; every table's row count and checksum is compared.
    ///
    /// Example: terroir drill platform.yaml --into rehearsal.yaml --report drill/
    Drill(DrillArgs),
    /// Manage the IP geolocation data that `locate` and `verify` use.
    #[command(subcommand)]
    Geodata(GeodataCommand),
    /// Encrypted PostgreSQL backups (pgBackRest, into the platform's S3 endpoint): take one now,
    /// list them, restore the database as it was at a given time (into another platform too).
    #[command(subcommand)]
    Backup(BackupCmd),
    /// Show the latest events of the platform's audit trail, per host: SSH logins, sudo
    /// commands, and PostgreSQL's audit (pgaudit: DDL, role changes, every statement on a table
    /// listed in spec.components.database.personalTables, connections).
    ///
    /// Reads /var/log/auth.log and PostgreSQL's log on each host over SSH (bare-metal targets),
    /// where they are kept spec.audit.retentionDays days. Each event has the host, the time
    /// (UTC), the source, the user and what was done. `--output json` for scripts.
    ///
    /// Example: terroir audit platform.yaml --source postgres --grep customers
    Audit(AuditArgs),
    /// The operator-side secret store (`.terroir/<platform>/secrets/` beside the document):
    /// list, rotate, set, seal with age (spec.secrets.recipients), keygen.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// The platform's container images: list them, or pin them by digest in the document.
    #[command(subcommand)]
    Images(ImagesCommand),
    /// List the available blueprints and their parameters.
    Blueprints,
    /// Print a shell completion script.
    ///
    /// bash:  terroir completions bash > /etc/bash_completion.d/terroir
    /// zsh:   terroir completions zsh > "${fpath[1]}/_terroir"
    /// fish:  terroir completions fish > ~/.config/fish/completions/terroir.fish
    Completions {
        /// The shell to complete for.
        #[arg(value_enum, value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print terroir's manual page (roff), or write one page per command into DIR.
    ///
    /// Read it with: terroir man | man -l -
    Man {
        /// Write terroir.1 and terroir-<command>.1 for every command into DIR.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Run the smoke application (for tests and demos): writes to PostgreSQL, sends mail through
    /// the platform's MTA, serves /metrics. Configured by the environment the blueprint renders.
    SmokeApp,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Platform documents (YAML).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Platform document (YAML).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Directory to write into. A previous render there is replaced; any other non-empty
    /// directory is refused unless --force.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace DIR even if it is not a previous render.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Platform document (YAML) of the platform to export.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Directory to create (it must not exist, or be empty).
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    #[command(flatten)]
    pub recipients: RecipientArgs,
}

#[derive(Debug, Args)]
pub struct RecipientArgs {
    /// age recipient (public key, age1…) the secrets are encrypted to; repeat for several.
    /// Without any recipient, secrets are not exported.
    #[arg(long = "recipient", short = 'r', value_name = "AGE_RECIPIENT")]
    pub recipient: Vec<String>,
    /// File of age recipients, one per line (# comments allowed).
    #[arg(long, value_name = "PATH")]
    pub recipients_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Platform document (YAML) of the destination platform.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The export directory.
    #[arg(long, value_name = "DIR")]
    pub from: PathBuf,
    /// age identity file (AGE-SECRET-KEY-…) to decrypt the exported secrets; the DKIM keys are
    /// then installed on the destination's MTA.
    #[arg(long, short = 'i', value_name = "PATH")]
    pub identity: Option<PathBuf>,
    /// Check the export and the destination, show what would be restored, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Replace data the destination already holds (its tables, same-named mailboxes, the
    /// application's data). Without it, such a restore is refused before any change.
    #[arg(long)]
    pub replace: bool,
    /// Take the platform's lock even from a holder terroir cannot show to be gone.
    #[arg(long)]
    pub force_unlock: bool,
}

#[derive(Debug, Args)]
pub struct DrillArgs {
    /// Platform document (YAML) of the platform to export.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Platform document of the platform to restore into (other hosts, already deployed).
    #[arg(long, value_name = "OTHER_FILE")]
    pub into: PathBuf,
    /// Directory for the drill report and the export.
    #[arg(long, value_name = "DIR", default_value = "drill")]
    pub report: PathBuf,
    #[command(flatten)]
    pub recipients: RecipientArgs,
    /// age identity to decrypt the secrets during the restore.
    #[arg(long, short = 'i', value_name = "PATH")]
    pub identity: Option<PathBuf>,
    /// Replace data the destination already holds.
    #[arg(long)]
    pub replace: bool,
    /// Delete the export once compared (the report keeps its digests).
    #[arg(long)]
    pub discard_export: bool,
}

#[derive(Debug, Args)]
pub struct ContinuityArgs {
    /// Platform document (YAML).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Drill only this claim (repeatable): a dependency's key (`smtpRelay`, `backupS3`,
    /// `dnsResolvers`…) or a member (`database-primary`, `one-mta`, `one-prometheus`,
    /// `one-app-host`). --dry-run lists them.
    #[arg(long, value_name = "NAME", conflicts_with = "cut_off")]
    pub only: Vec<String>,
    /// Cut many dependencies at once instead: `outside-policy` (every one outside the policy's
    /// allowed countries or under a forbidden jurisdiction: for a compliant platform, nothing),
    /// `all-external` (every one), and report what still works, what queues, what stops.
    #[arg(long, value_enum, value_name = "WHICH")]
    pub cut_off: Option<crate::continuity::drill::CutOff>,
    /// Every fault removes itself on its host after this many seconds, even if terroir is
    /// killed meanwhile.
    #[arg(long, value_name = "N", default_value_t = 120)]
    pub max_fault_seconds: u64,
    /// Where continuity-report.json and continuity-report.md are written.
    #[arg(long, value_name = "DIR", default_value = "continuity")]
    pub report: PathBuf,
    /// Where the drill's messages go (default: postmaster at the MTA's domain).
    #[arg(long, value_name = "ADDRESS")]
    pub mail_to: Option<String>,
    /// List the claims, their faults and probes, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Drill a platform whose `environment` is `production`.
    #[arg(long)]
    pub yes: bool,
    /// Take the platform's lock even from a holder terroir cannot show to be gone.
    #[arg(long)]
    pub force_unlock: bool,
}

#[derive(Debug, Args)]
pub struct SwitchoverArgs {
    /// Platform document (YAML).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The database host to make the primary (a host with the `database` role).
    #[arg(long, value_name = "HOST")]
    pub to: Option<String>,
    /// Take the platform's lock even from a holder terroir cannot show to be gone.
    #[arg(long)]
    pub force_unlock: bool,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub target: ApplyArgs,
    /// The release to go back to: the start of its SHA-256 (hosts) or its image (Kubernetes),
    /// among the kept ones. Default: the release the current one replaced.
    #[arg(long, value_name = "RELEASE")]
    pub to: Option<String>,
    /// Restore the database to the restore point taken before the release being rolled back
    /// replaced the target: what was written since is lost (stated before anything is done).
    #[arg(long)]
    pub with_data: bool,
    /// Go ahead with --with-data (without it, the loss is stated and nothing is changed).
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub target: ApplyArgs,
    /// Remove the data too: databases and WAL, mailboxes, the TSDB, the application's data,
    /// volumes, and the backups under the platform's prefix.
    #[arg(long)]
    pub delete_data: bool,
    /// Purge the Debian packages the platform installed (hosts); kept by default.
    #[arg(long)]
    pub purge_packages: bool,
    /// Destroy even though no export or backup younger than 24 hours exists.
    #[arg(long)]
    pub no_final_export: bool,
    /// Carry the plan out (without it, the plan is shown and nothing is changed).
    #[arg(long)]
    pub yes: bool,
    /// Ed25519 private key signing the erasure record (`terroir keygen`); needed with --yes.
    #[arg(long, value_name = "KEY")]
    pub key: Option<PathBuf>,
    /// Where the erasure record is written.
    #[arg(long, value_name = "PATH", default_value = "erasure-record.json")]
    pub record: PathBuf,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Platform document (YAML).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Hosts converged at the same time.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256), env = "TERROIR_CONCURRENCY")]
    pub concurrency: u16,
    /// Stop starting new hosts as soon as one fails.
    #[arg(long)]
    pub fail_fast: bool,
    /// Record the host keys of hosts missing from knownHostsFile (a changed key is always refused).
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Seconds allowed for each remote command (bare metal), or for all rollouts to finish
    /// (Kubernetes).
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub timeout: u64,
    /// Seconds allowed for reaching a host: TCP connect and SSH handshake, through the bastion
    /// too (bare metal; as OpenSSH's ConnectTimeout).
    #[arg(long, default_value_t = 10, value_name = "SECONDS", env = "TERROIR_CONNECT_TIMEOUT", value_parser = clap::value_parser!(u64).range(1..))]
    pub connect_timeout: u64,
    /// Take the platform's lock even from a holder terroir cannot show to be gone (a run on
    /// another machine sharing this directory, or a cluster's Lease still renewed). A holder that
    /// died on this machine, or a Lease no longer renewed, is taken over without it.
    #[arg(long)]
    pub force_unlock: bool,
    /// Kubernetes: kubeconfig file (default: the document's, else $KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "PATH", help_heading = "Kubernetes")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubernetes: kubeconfig context (default: the document's, else the current context).
    #[arg(long, value_name = "NAME", help_heading = "Kubernetes")]
    pub context: Option<String>,
    /// Kubernetes: take over fields that another field manager owns (server-side apply `force`).
    /// Without it, conflicts are listed and nothing is changed.
    #[arg(long, help_heading = "Kubernetes")]
    pub force_conflicts: bool,
    /// Kubernetes: keep objects the document no longer renders instead of deleting them.
    #[arg(long, help_heading = "Kubernetes")]
    pub no_prune: bool,
    /// Kubernetes: return once applied, without waiting for Deployments, StatefulSets and
    /// DaemonSets to roll out.
    #[arg(long, help_heading = "Kubernetes")]
    pub no_wait: bool,
    /// SecNumCloud: the Terraform or OpenTofu binary (default: `tofu`, else `terraform`, on PATH).
    #[arg(
        long,
        value_name = "PATH",
        help_heading = "SecNumCloud",
        env = "TERROIR_TF_BINARY"
    )]
    pub tf_binary: Option<PathBuf>,
    /// SecNumCloud: take the provider module from DIR/<provider> instead of the shipped one
    /// (same inputs and outputs).
    #[arg(long, value_name = "DIR", help_heading = "SecNumCloud")]
    pub modules: Option<PathBuf>,
    /// SecNumCloud: passed to `init` as -backend-config (a KEY=VALUE or a file); the backend it
    /// configures is judged by the policy gate like the one the document names.
    #[arg(long, value_name = "KEY=VALUE|FILE", help_heading = "SecNumCloud")]
    pub backend_config: Vec<String>,
}

#[derive(Debug, Args)]
pub struct OperatorArgs {
    /// Watch Platform resources in this namespace only (default: all namespaces).
    #[arg(long, value_name = "NS", env = "TERROIR_WATCH_NAMESPACE")]
    pub namespace: Option<String>,
    /// Create and update the Namespace objects the blueprint renders (needs cluster-scoped RBAC).
    /// Without it they are reported as skipped and must already exist.
    #[arg(long, env = "TERROIR_MANAGE_NAMESPACES")]
    pub manage_namespaces: bool,
    /// Address serving /metrics (Prometheus), /healthz and /readyz.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "0.0.0.0:8080",
        env = "TERROIR_METRICS_ADDR"
    )]
    pub metrics_addr: std::net::SocketAddr,
    /// Reconcile without holding the Lease (only safe with a single replica).
    #[arg(long, env = "TERROIR_NO_LEADER_ELECTION")]
    pub no_leader_election: bool,
    /// Name of the Lease used for leader election.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "terroir-operator",
        env = "TERROIR_LEASE_NAME"
    )]
    pub lease_name: String,
    /// Namespace of the Lease (default: the pod's namespace, else `default`).
    #[arg(long, value_name = "NS", env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// This replica's identity in the Lease (default: the pod name, else the host name and PID).
    #[arg(long, value_name = "ID", env = "POD_NAME")]
    pub identity: Option<String>,
    /// Seconds between two reconciliations of an unchanged Platform (drift correction).
    #[arg(long, value_name = "SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(5..))]
    pub requeue_seconds: u64,
    /// Platforms reconciled at the same time.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// kubeconfig file (default: in-cluster service account, else $KUBECONFIG or ~/.kube/config).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// kubeconfig context.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct GeodataArgs {
    /// Directory holding the geodata packages (the two ip-location-db tarballs).
    /// Default: $TERROIR_GEODATA, else the directory `terroir geodata update` writes to.
    #[arg(long, value_name = "DIR", env = "TERROIR_GEODATA", global = true)]
    pub geodata: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LocateArgs {
    /// IPv4/IPv6 addresses or host names.
    #[arg(required = true, value_name = "ADDRESS|HOSTNAME")]
    pub targets: Vec<String>,
    #[command(flatten)]
    pub data: GeodataArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Platform document (YAML).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub check: CheckArgs,
}

/// What `verify` and `attest` judge, and how.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Also read the running target (hosts over SSH, or the Kubernetes cluster): live facts, and
    /// for `attest` the deployed objects and files as subjects.
    #[arg(long)]
    pub live: bool,
    /// A Terraform plan in JSON (`terraform show -json PLAN > PLAN.json`) to judge too.
    #[arg(long, value_name = "PLAN.json")]
    pub plan_json: Option<PathBuf>,
    /// Use ADDRESS for HOST instead of asking DNS (repeatable), as curl's --resolve.
    #[arg(long, value_name = "HOST=ADDRESS")]
    pub resolve: Vec<String>,
    /// Do not resolve names through DNS: judge them by the provider catalog and the declaration.
    #[arg(long)]
    pub no_dns: bool,
    /// Kubernetes: kubeconfig file (live checks).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubernetes: kubeconfig context (live checks).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    #[command(flatten)]
    pub data: GeodataArgs,
}

#[derive(Debug, Subcommand)]
pub enum GeodataCommand {
    /// Fetch both geodata packages from the npm registry (tarball and integrity hash from the
    /// package metadata, verified before use) and build the lookup index.
    Update {
        /// npm registry to fetch from.
        #[arg(
            long,
            default_value = "https://registry.npmjs.org",
            env = "TERROIR_NPM_REGISTRY"
        )]
        registry: String,
        #[command(flatten)]
        data: GeodataArgs,
    },
    /// Import a geodata package tarball (.tgz) fetched by other means, and rebuild the index.
    Import {
        #[arg(required = true, value_name = "FILE.tgz")]
        files: Vec<PathBuf>,
        #[command(flatten)]
        data: GeodataArgs,
    },
    /// Show which geodata is in use: packages, versions, ranges indexed, where the index is cached.
    Status {
        #[command(flatten)]
        data: GeodataArgs,
    },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AttestArgs {
    #[command(subcommand)]
    pub command: Option<AttestCommand>,
    /// Platform document (YAML).
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Ed25519 private key (PKCS#8 PEM), from `terroir keygen`.
    #[arg(long, value_name = "KEY")]
    pub key: Option<PathBuf>,
    /// Where to write the attestation (a DSSE envelope, JSON).
    #[arg(long, value_name = "ATTESTATION")]
    pub out: Option<PathBuf>,
    /// `dsse`: the signed envelope. `oscal`: also the same assessment as an OSCAL
    /// assessment-results document (JSON), beside ATTESTATION as `.oscal.json`.
    #[arg(long, value_enum, default_value_t = AttestFormat::Dsse)]
    pub format: AttestFormat,
    /// A reversibility drill's drill-report.json (from `terroir drill`): cited in the
    /// attestation as evidence (its SHA-256 and the export manifest's as subjects, its result,
    /// phases and figures in the predicate).
    #[arg(long, value_name = "PATH")]
    pub drill_report: Option<PathBuf>,
    /// A continuity drill's continuity-report.json (from `terroir continuity`): cited as
    /// evidence (its SHA-256 as a subject; per claim the dependency, the degraded mode, the
    /// verdict and the times to detect and recover in `predicate.continuity`), and shown in the
    /// reports.
    #[arg(long, value_name = "PATH")]
    pub continuity_report: Option<PathBuf>,
    #[command(flatten)]
    pub check: CheckArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AttestFormat {
    Dsse,
    Oscal,
}

#[derive(Debug, Subcommand)]
pub enum AttestCommand {
    /// Check an attestation's signature, and with --against that every subject matches DIR.
    ///
    /// Also checks the erasure record `terroir destroy` writes (erasure-record.json): its
    /// signature, then what it says: the platform, the target, when, how many items were removed,
    /// kept (and why) and could not be removed, and the export or backup it follows, with its
    /// digests. A record or attestation that does not verify exits 2.
    Verify {
        #[arg(value_name = "ATTESTATION")]
        attestation: PathBuf,
        /// The signer's public key (SubjectPublicKeyInfo PEM), `KEY.pub` from `terroir keygen`.
        #[arg(long, value_name = "KEY.pub")]
        pubkey: PathBuf,
        /// A rendered tree (`terroir render --out DIR`) to compare with the subjects.
        #[arg(long, value_name = "DIR")]
        against: Option<PathBuf>,
    },
}
