//! `terroir backup now|list|restore` on a Kubernetes target: Jobs in the platform's namespace,
//! made from what `terroir apply` put there (the backup CronJobs, the pgBackRest ConfigMap, the
//! database's StatefulSet and volume). The scripts the Jobs run are the rendered ones
//! (backup.yaml: backup.sh, restore-check.sh, restore.sh).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use serde::Serialize;
use serde_json::json;

use super::error::BackupError;
use super::{BackupContext, RestoreReport, RestoredInto, hosts as ops};
use crate::deploy::kubernetes::wait::Unsettled;
use crate::deploy::kubernetes::{self, ClusterError, Connection};
use crate::document::{KubernetesTarget, Loaded};
use crate::pipeline::blueprint::Catalog;
use crate::pipeline::resolve::ResolvedPlatform;

/// The field manager of the replica changes a restore makes (stop, then start again). It sets
/// the same value `terroir apply` does once done, so the next apply meets no conflict.
const FIELD_MANAGER: &str = "terroir-backup-restore";
/// Jobs this command starts carry it, with the command's name.
const LABEL_STARTED_BY: &str = "terroir.eu/started-by";

/// How to reach the platform's cluster (the command line's choices, else the document's) and how
/// long to wait for each Job.
pub struct Access<'a> {
    pub kubeconfig: Option<&'a PathBuf>,
    pub context: Option<&'a String>,
    pub timeout: Duration,
}

/// A platform on its cluster, reached: what the backup Jobs are made from.
pub struct ClusterPlatform<'r> {
    document: PathBuf,
    resolved: ResolvedPlatform,
    backup: BackupContext,
    namespace: String,
    runtime: &'r tokio::runtime::Runtime,
    conn: Connection,
    timeout: Duration,
}

impl<'r> ClusterPlatform<'r> {
    pub fn open(
        runtime: &'r tokio::runtime::Runtime,
        document: &Path,
        loaded: &Loaded,
        target: &KubernetesTarget,
        catalog: &Catalog,
        access: &Access,
    ) -> Result<Self, BackupError> {
        let (resolved, _) = crate::pipeline::render::render(loaded, catalog)?;
        let backup = super::context(&resolved).ok_or_else(|| BackupError::NoBackups {
            document: document.to_owned(),
            platform: resolved.platform.name.clone(),
        })?;
        let (kubeconfig, context) =
            kubernetes::connection_settings(access.kubeconfig, access.context, target, document);
        let conn = runtime
            .block_on(kubernetes::connect(
                kubeconfig.as_deref(),
                context.as_deref(),
            ))
            .map_err(|source| BackupError::Connect { source })?;
        Ok(ClusterPlatform {
            document: document.to_owned(),
            namespace: target.namespace.clone(),
            resolved,
            backup,
            runtime,
            conn,
            timeout: access.timeout.max(Duration::from_secs(1)),
        })
    }

    /// A platform already rendered and reached (a rollback's restore, inside a run of the
    /// deploy pipeline).
    pub fn reached(
        runtime: &'r tokio::runtime::Runtime,
        document: &Path,
        resolved: ResolvedPlatform,
        namespace: String,
        client: kube::Client,
        timeout: Duration,
    ) -> Result<Self, BackupError> {
        let backup = super::context(&resolved).ok_or_else(|| BackupError::NoBackups {
            document: document.to_owned(),
            platform: resolved.platform.name.clone(),
        })?;
        Ok(ClusterPlatform {
            document: document.to_owned(),
            namespace,
            resolved,
            backup,
            runtime,
            conn: Connection {
                client,
                context: String::new(),
                server: String::new(),
            },
            timeout: timeout.max(Duration::from_secs(1)),
        })
    }

    fn name(&self) -> &str {
        &self.resolved.platform.name
    }

    /// Take the platform's Lease for a change (a restore), beside its ApplySet's parent.
    pub fn lock(
        &self,
        holder: &crate::deploy::lock::Holder,
        force: bool,
        events: &dyn crate::deploy::Events,
    ) -> Result<crate::deploy::lock::Lease, crate::deploy::lock::LockError> {
        self.runtime.block_on(crate::deploy::lock::Lease::take(
            &self.conn.client,
            &self.namespace,
            self.name(),
            holder,
            force,
            events,
        ))
    }

    /// Give the Lease back once the change is over.
    pub fn unlock(&self, lease: crate::deploy::lock::Lease, events: &dyn crate::deploy::Events) {
        self.runtime.block_on(lease.release(events));
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.conn.client.clone(), &self.namespace)
    }

    fn api_error(&self, what: &str, e: &kube::Error) -> BackupError {
        ClusterError::api(what, e).into()
    }

    /// The backup CronJob of `kind` (`full`, or `incr` for incremental and differential), as
    /// `terroir apply` left it.
    fn cronjob(&self, kind: &str) -> Result<CronJob, BackupError> {
        let name = format!(
            "{}-backup-{}",
            self.name(),
            if kind == "full" { "full" } else { "incr" }
        );
        match self.runtime.block_on(self.api::<CronJob>().get_opt(&name)) {
            Ok(Some(c)) => Ok(c),
            Ok(None) => Err(BackupError::NotApplied {
                object: format!("CronJob {}/{name}", self.namespace),
                document: self.document.clone(),
            }),
            Err(e) => Err(self.api_error(&format!("CronJob {}/{name}", self.namespace), &e)),
        }
    }

    fn job_name(&self, what: &str) -> String {
        let stamp = k8s_openapi::jiff::Timestamp::now().as_second();
        let mut base = format!("{}-{what}", self.name());
        // a Job's name becomes a label value on its pods: 63 characters at most
        base.truncate(63 - 11);
        format!("{}-{stamp}", base.trim_end_matches('-'))
    }

    /// A Job from a backup CronJob's template, its container running `command`.
    fn job_from(
        &self,
        cron: &CronJob,
        name: &str,
        started_by: &str,
        command: Vec<String>,
    ) -> Result<Job, BackupError> {
        let cronjob = format!(
            "{}/{}",
            self.namespace,
            cron.metadata.name.clone().unwrap_or_default()
        );
        let template = cron
            .spec
            .as_ref()
            .map(|s| s.job_template.clone())
            .ok_or_else(|| BackupError::JobTemplate {
                cronjob: cronjob.clone(),
                what: "job template",
            })?;
        let mut job = json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default(),
                "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
                "ownerReferences": [{
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "name": cron.metadata.name,
                    "uid": cron.metadata.uid,
                    "controller": true,
                }],
            },
            "spec": template.spec,
        });
        job["metadata"]["labels"][LABEL_STARTED_BY] = json!(started_by);
        job["spec"]["template"]["metadata"]["labels"][LABEL_STARTED_BY] = json!(started_by);
        let container = job["spec"]["template"]["spec"]["containers"]
            .get_mut(0)
            .ok_or_else(|| BackupError::JobTemplate {
                cronjob: cronjob.clone(),
                what: "container",
            })?;
        container["command"] = json!(command);
        serde_json::from_value(job).map_err(|source| BackupError::InvalidJob { cronjob, source })
    }

    fn create(&self, job: &Job) -> Result<(), BackupError> {
        let name = job.metadata.name.clone().unwrap_or_default();
        self.runtime
            .block_on(self.api::<Job>().create(&PostParams::default(), job))
            .map(|_| ())
            .map_err(|e| {
                self.api_error(&format!("cannot create Job {}/{name}", self.namespace), &e)
            })
    }

    /// Wait, watching, until the Job completes (Ok) or fails (Err with the controller's reason).
    fn wait_job(&self, name: &str) -> Result<(), BackupError> {
        let (namespace, job) = (self.namespace.clone(), name.to_owned());
        let label = format!("Job {namespace}/{name}");
        let settled = self.runtime.block_on(kubernetes::wait::watch_until(
            self.api::<Job>(),
            name,
            self.timeout,
            |event| match event {
                Ok(Some(j)) => j
                    .status
                    .iter()
                    .flat_map(|s| s.conditions.iter().flatten())
                    .filter(|c| c.status == "True")
                    .find_map(|c| match c.type_.as_str() {
                        "Complete" | "SuccessCriteriaMet" => Some(Ok(())),
                        "Failed" | "FailureTarget" => {
                            let reason = [c.reason.clone(), c.message.clone()]
                                .into_iter()
                                .flatten()
                                .collect::<Vec<_>>()
                                .join(": ");
                            Some(Err(BackupError::JobFailed {
                                namespace: namespace.clone(),
                                name: job.clone(),
                                reason,
                            }))
                        }
                        _ => None,
                    }),
                Ok(None) => Some(Err(BackupError::Deleted {
                    object: label.clone(),
                })),
                Err(e) => Some(Err(BackupError::Watch {
                    object: label.clone(),
                    reason: crate::text::error_chain(&e),
                })),
            },
        ));
        match settled {
            Ok(r) => r,
            Err(Unsettled::Ended) => Err(BackupError::Watch {
                object: label,
                reason: String::new(),
            }),
            Err(Unsettled::TimedOut) => Err(BackupError::JobTimedOut {
                namespace: self.namespace.clone(),
                name: name.to_owned(),
                seconds: self.timeout.as_secs(),
            }),
        }
    }

    /// The log of the Job's pod (the last one, when it was retried).
    fn job_log(&self, name: &str) -> Result<String, BackupError> {
        let pods = self
            .runtime
            .block_on(
                self.api::<Pod>()
                    .list(&ListParams::default().labels(&format!("job-name={name}"))),
            )
            .map_err(|e| self.api_error(&format!("pods of Job {name}"), &e))?;
        let pod = pods
            .items
            .iter()
            .max_by_key(|p| p.metadata.creation_timestamp.clone())
            .and_then(|p| p.metadata.name.clone())
            .ok_or_else(|| BackupError::NoPod {
                namespace: self.namespace.clone(),
                name: name.to_owned(),
            })?;
        self.runtime
            .block_on(self.api::<Pod>().logs(&pod, &LogParams::default()))
            .map_err(|e| self.api_error(&format!("log of pod {}/{pod}", self.namespace), &e))
    }

    fn delete_job(&self, name: &str) {
        let _ = self
            .runtime
            .block_on(self.api::<Job>().delete(name, &DeleteParams::background()));
    }

    fn scale(&self, sts: &str, replicas: i32) -> Result<(), BackupError> {
        let patch = json!({"spec": {"replicas": replicas}});
        self.runtime
            .block_on(self.api::<StatefulSet>().patch(
                sts,
                &PatchParams::apply(FIELD_MANAGER),
                &Patch::Merge(&patch),
            ))
            .map(|_| ())
            .map_err(|e| {
                self.api_error(
                    &format!(
                        "cannot scale StatefulSet {}/{sts} to {replicas}",
                        self.namespace
                    ),
                    &e,
                )
            })
    }

    /// Wait until the pod is gone (its volume free for another pod).
    fn wait_gone(&self, pod: &str) -> Result<(), BackupError> {
        let settled = self.runtime.block_on(kubernetes::wait::watch_until(
            self.api::<Pod>(),
            pod,
            self.timeout,
            |event| matches!(event, Ok(None)).then_some(()),
        ));
        let object = format!("{}/{pod}", self.namespace);
        match settled {
            Ok(()) => Ok(()),
            Err(Unsettled::Ended) => Err(BackupError::Watch {
                object: format!("pod {object}"),
                reason: String::new(),
            }),
            Err(Unsettled::TimedOut) => Err(BackupError::NotStopped {
                object,
                seconds: self.timeout.as_secs(),
            }),
        }
    }

    fn wait_ready(&self, sts: &str) -> Result<(), BackupError> {
        let gvk = kube::api::GroupVersionKind::gvk("apps", "v1", "StatefulSet");
        let ar = kube::api::ApiResource::from_gvk(&gvk);
        let api: Api<kube::api::DynamicObject> =
            Api::namespaced_with(self.conn.client.clone(), &self.namespace, &ar);
        Ok(self.runtime.block_on(kubernetes::wait::wait_rollout(
            api,
            "StatefulSet",
            sts,
            self.timeout,
        ))?)
    }
}

/// What `backup now` did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NowReport {
    pub platform: String,
    pub namespace: String,
    pub job: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub seconds: f64,
    pub log: String,
}

/// What `backup restore` on a cluster is asked, checked before the cluster is reached.
pub struct RestoreOptions {
    /// The target time in UTC, as pgBackRest takes it (or a restore point's name), and in Unix
    /// seconds.
    target: String,
    epoch: i64,
    /// pgBackRest's --type: `time`, or `name` for a restore point.
    kind: &'static str,
    /// The backup to restore (`--set`); pgBackRest's choice when `None` (the newest before the
    /// time; a restore point needs the backup it was taken after).
    set: Option<String>,
    dry_run: bool,
    replace: bool,
}

impl RestoreOptions {
    /// `into`: whether another platform was named to restore into (for hosts only).
    pub fn new(
        to_time: &str,
        dry_run: bool,
        replace: bool,
        into: bool,
    ) -> Result<Self, BackupError> {
        if into {
            return Err(BackupError::IntoOnCluster);
        }
        let (target, epoch) = ops::parse_time(to_time)?;
        Ok(RestoreOptions {
            target,
            epoch,
            kind: "time",
            set: None,
            dry_run,
            replace,
        })
    }

    /// To the restore point `name` (`pg_create_restore_point`), taken at `epoch` after the
    /// backup `set`: replacing the database (a rollback with its data).
    pub fn to_restore_point(name: &str, epoch: i64, set: &str) -> Self {
        RestoreOptions {
            target: name.to_owned(),
            epoch,
            kind: "name",
            set: (!set.is_empty()).then(|| set.to_owned()),
            dry_run: false,
            replace: true,
        }
    }
}

impl ClusterPlatform<'_> {
    pub fn now(&self, kind: &str, progress: &dyn Fn(&str)) -> Result<NowReport, BackupError> {
        let cron = self.cronjob(kind)?;
        let name = self.job_name(&format!("backup-{kind}"));
        let job = self.job_from(
            &cron,
            &name,
            "backup-now",
            vec![
                "/bin/sh".into(),
                "/etc/pgbackrest/backup.sh".into(),
                kind.into(),
            ],
        )?;
        let start = Instant::now();
        self.create(&job)?;
        progress(&format!(
            "started Job {}/{name} ({kind} backup of stanza {}); waiting for it",
            self.namespace, self.backup.stanza
        ));
        self.wait_job(&name)?;
        Ok(NowReport {
            platform: self.name().to_owned(),
            namespace: self.namespace.clone(),
            job: name.clone(),
            kind: kind.to_owned(),
            seconds: start.elapsed().as_secs_f64(),
            log: format!("kubectl -n {} logs job/{name}", self.namespace),
        })
    }

    /// `backup list`: `pgbackrest info` in a Job from the incremental CronJob's pod (the
    /// repository is read where the backups are made), its output read from the pod's log; the
    /// Job is removed afterwards.
    pub fn list(&self) -> Result<ops::Inventory, BackupError> {
        let cron = self.cronjob("incr")?;
        let name = self.job_name("backup-list");
        let command = [
            "pgbackrest",
            &format!("--stanza={}", self.backup.stanza),
            "--log-level-console=off",
            "--output=json",
            "info",
        ]
        .map(String::from)
        .to_vec();
        let mut job = self.job_from(&cron, &name, "backup-list", command)?;
        if let Some(spec) = job.spec.as_mut() {
            spec.backoff_limit = Some(0);
            spec.ttl_seconds_after_finished = Some(600);
        }
        self.create(&job)?;
        let outcome = self.wait_job(&name).and_then(|()| self.job_log(&name));
        if outcome.is_ok() {
            self.delete_job(&name);
        }
        // The pod's log holds standard error too (a pgBackRest warning): the JSON is its own line.
        let log = outcome?;
        let json_line = log
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with('['))
            .unwrap_or(&log);
        ops::parse_info(json_line, &self.backup.stanza)
    }

    pub fn restore(
        &self,
        opts: &RestoreOptions,
        progress: &dyn Fn(&str),
    ) -> Result<RestoreReport, BackupError> {
        let db = &self.resolved.components.database;
        if db.highly_available {
            // Scaling to 0, restoring pod 0's volume and scaling to 1 is a single server's restore;
            // Patroni would meet the old timeline in its store and in the standbys' volumes.
            return Err(BackupError::ReplicatedOnCluster {
                platform: self.name().to_owned(),
                replicas: db.replicas,
            });
        }
        let target = &opts.target;
        let start = Instant::now();
        let sts = self.resolved.components.database.service_name.clone();
        let pvc = format!("data-{sts}-0");
        let ns = self.namespace.clone();
        let steps = vec![
            format!(
                "check, from a Job of CronJob {}-backup-incr, that every WAL segment is archived and that {target} is inside the repository's window",
                self.name()
            ),
            format!("scale StatefulSet {ns}/{sts} to 0 and wait for pod {sts}-0 to stop"),
            format!(
                "restore volume {pvc} to {target} in a Job (pgbackrest restore --delta --type=time)"
            ),
            format!(
                "scale StatefulSet {ns}/{sts} back to 1: PostgreSQL replays the WAL up to {target} and promotes itself"
            ),
        ];
        let mut report = RestoreReport {
            platform: self.name().to_owned(),
            target_time: target.clone(),
            dry_run: opts.dry_run,
            steps,
            next_steps: vec![format!(
                "take a full backup of the restored database: terroir backup now {} --type full",
                self.document.display()
            )],
            seconds: 0.0,
            into: RestoredInto::Namespace {
                namespace: ns.clone(),
            },
        };
        // What the restore needs is there, before anything is asked of the cluster.
        if self
            .runtime
            .block_on(self.api::<StatefulSet>().get_opt(&sts))
            .map_err(|e| self.api_error(&format!("StatefulSet {ns}/{sts}"), &e))?
            .is_none()
        {
            return Err(BackupError::NotApplied {
                object: format!("StatefulSet {ns}/{sts}"),
                document: self.document.clone(),
            });
        }
        if self
            .runtime
            .block_on(self.api::<PersistentVolumeClaim>().get_opt(&pvc))
            .map_err(|e| self.api_error(&format!("PersistentVolumeClaim {ns}/{pvc}"), &e))?
            .is_none()
        {
            return Err(BackupError::NoVolume {
                object: format!("{ns}/{pvc}"),
            });
        }
        let cron = self.cronjob("incr")?;
        if opts.dry_run {
            return Ok(report);
        }
        if !opts.replace {
            return Err(BackupError::WouldRewindCluster {
                platform: self.name().to_owned(),
                target: target.clone(),
            });
        }

        // 1. While PostgreSQL runs: everything archived, and the time reachable. Nothing stops otherwise.
        let check = self.job_name("restore-check");
        let mut job = self.job_from(
            &cron,
            &check,
            "backup-restore",
            vec![
                "/bin/sh".into(),
                "/etc/pgbackrest/restore-check.sh".into(),
                target.clone(),
                opts.epoch.to_string(),
            ],
        )?;
        if let Some(spec) = job.spec.as_mut() {
            spec.backoff_limit = Some(0);
        }
        self.create(&job)?;
        progress(&format!(
            "checking the repository and the time in Job {ns}/{check}"
        ));
        self.wait_job(&check)
            .map_err(|e| BackupError::CheckFailed {
                source: Box::new(e),
            })?;

        // 2. PostgreSQL stopped: its volume free.
        progress(&format!(
            "stopping PostgreSQL (StatefulSet {ns}/{sts} to 0 replicas)"
        ));
        self.scale(&sts, 0)?;
        if let Err(e) = self.wait_gone(&format!("{sts}-0")) {
            // Nothing was restored: PostgreSQL is given back its replica before reporting.
            let scale_back = self
                .scale(&sts, 1)
                .err()
                .map(|b| crate::text::error_chain(&b));
            return Err(BackupError::StopFailed {
                statefulset: format!("{ns}/{sts}"),
                scale_back,
                source: Box::new(e),
            });
        }

        // 3. The restore, on the volume. 4. PostgreSQL again, whatever the restore's outcome.
        let name = self.job_name("restore");
        let job = restore_job(
            &self.resolved,
            &self.backup,
            &ns,
            &name,
            &pvc,
            &[Some(target.as_str()), Some(opts.kind), opts.set.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>(),
        );
        let restored = self.create(&job).and_then(|()| {
            progress(&format!(
                "restoring volume {pvc} to {target} in Job {ns}/{name}"
            ));
            self.wait_job(&name)
        });
        progress(&format!(
            "starting PostgreSQL again (StatefulSet {ns}/{sts} to 1 replica)"
        ));
        let started = self.scale(&sts, 1).and_then(|()| self.wait_ready(&sts));
        match (restored, started) {
            (Ok(()), Ok(())) => {}
            (Err(e), _) => {
                return Err(BackupError::RestoreJob {
                    source: Box::new(e),
                });
            }
            (Ok(()), Err(e)) => {
                return Err(BackupError::NotRestarted {
                    target: target.clone(),
                    source: Box::new(e),
                });
            }
        }
        report.seconds = start.elapsed().as_secs_f64();
        Ok(report)
    }
}

/// The restore Job: the rendered restore.sh (with `arguments`: the target, its type and the
/// backup set) on the database's volume, with the database pod's
/// pgBackRest settings and the repository's secrets, as the database's user.
pub fn restore_job(
    resolved: &ResolvedPlatform,
    backup: &BackupContext,
    namespace: &str,
    name: &str,
    pvc: &str,
    arguments: &[&str],
) -> Job {
    let p = &resolved.platform.name;
    let mut items = vec![
        json!({"key": "pgbackrest.conf", "path": "pgbackrest.conf"}),
        json!({"key": "restore.sh", "path": "restore.sh"}),
    ];
    if let Some(ca) = &backup.ca_file {
        let file = ca.rsplit('/').next().unwrap_or_default();
        items.push(json!({"key": file, "path": file}));
    }
    let secret = |env: &str, secret: &str, key: &str| json!({"name": env, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}});
    let labels: BTreeMap<&str, &str> = BTreeMap::from([
        ("app.kubernetes.io/name", "backup"),
        ("app.kubernetes.io/instance", p.as_str()),
        ("app.kubernetes.io/component", "backup"),
        ("app.kubernetes.io/managed-by", "terroir"),
        (LABEL_STARTED_BY, "backup-restore"),
    ]);
    let mut command = vec!["/bin/sh", "/etc/pgbackrest/restore.sh"];
    command.extend(arguments);
    let job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": format!("{p}-backup"),
                    "automountServiceAccountToken": false,
                    "enableServiceLinks": false,
                    "restartPolicy": "Never",
                    "securityContext": {
                        "runAsNonRoot": true, "runAsUser": 999, "runAsGroup": 999, "fsGroup": 999,
                        "fsGroupChangePolicy": "OnRootMismatch", "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [{
                        "name": "restore",
                        "image": resolved.images.get("postgres").cloned().unwrap_or_default(),
                        "imagePullPolicy": "IfNotPresent",
                        "command": command,
                        "env": [
                            secret("PGBACKREST_REPO1_S3_KEY", &resolved.secrets.backup, "AWS_ACCESS_KEY_ID"),
                            secret("PGBACKREST_REPO1_S3_KEY_SECRET", &resolved.secrets.backup, "AWS_SECRET_ACCESS_KEY"),
                            secret("PGBACKREST_REPO1_CIPHER_PASS", &resolved.secrets.backup_cipher, "cipher-pass"),
                        ],
                        "resources": {"requests": {"cpu": "200m", "memory": "256Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}},
                        "securityContext": {
                            "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "runAsNonRoot": true,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "volumeMounts": [
                            {"name": "data", "mountPath": "/var/lib/postgresql/data"},
                            {"name": "config", "mountPath": "/etc/pgbackrest", "readOnly": true},
                            {"name": "tmp", "mountPath": "/tmp"},
                        ],
                    }],
                    "volumes": [
                        {"name": "data", "persistentVolumeClaim": {"claimName": pvc}},
                        {"name": "config", "configMap": {"name": format!("{p}-pgbackrest"), "items": items}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
                    ],
                },
            },
        },
    });
    serde_json::from_value(job).expect("the restore Job is a valid Job")
}
