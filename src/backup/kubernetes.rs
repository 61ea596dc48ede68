//! `terroir backup now|list|restore` on a Kubernetes target: Jobs in the platform's namespace,
//! made from what `terroir apply` put there (the backup CronJobs, the pgBackRest ConfigMap, the
//! database's StatefulSet and volume). The scripts the Jobs run are the rendered ones
//! (backup.yaml: backup.sh, restore-check.sh, restore.sh).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use serde::Serialize;
use serde_json::json;

use crate::backup::{BackupContext, hosts as ops};
use crate::pipeline::blueprint::Catalog;
use crate::cli::ClusterArgs;
use crate::deploy::kubernetes::wait::Unsettled;
use crate::deploy::kubernetes::{self, Connection};
use crate::pipeline::resolve::ResolvedPlatform;
use crate::reversibility::Error;

/// The field manager of the replica changes a restore makes (stop, then start again). It sets
/// the same value `terroir apply` does once done, so the next apply meets no conflict.
const FIELD_MANAGER: &str = "terroir-backup-restore";
/// Jobs this command starts carry it, with the command's name.
const LABEL_STARTED_BY: &str = "terroir.eu/started-by";

struct Ctx {
    document: std::path::PathBuf,
    resolved: ResolvedPlatform,
    backup: BackupContext,
    namespace: String,
    runtime: tokio::runtime::Runtime,
    conn: Connection,
    timeout: Duration,
}

impl Ctx {
    fn open(file: &Path, cluster: &ClusterArgs, catalog: &Catalog) -> Result<Ctx, Error> {
        let (_, loaded, resolved, _) = crate::reversibility::rendered(file, catalog)?;
        let target = loaded.platform.spec.target.kubernetes().cloned().ok_or_else(|| Error::Input(format!("{}: the target is not Kubernetes", file.display())))?;
        let backup = crate::backup::context(&resolved).ok_or_else(|| {
            Error::Input(format!(
                "{}: this platform takes no backups (they need spec.components.backups.enabled, a database terroir deploys, and spec.endpoints.backupS3)",
                file.display()
            ))
        })?;
        let (kubeconfig, context) = crate::deploy::kubernetes::connection_settings(cluster.kubeconfig.as_ref(), cluster.context.as_ref(), &target, file);
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(|e| Error::Failed(format!("cannot start the async runtime: {e}")))?;
        let conn = runtime.block_on(kubernetes::connect(kubeconfig.as_deref(), context.as_deref())).map_err(|e| Error::Input(e.to_string()))?;
        Ok(Ctx { document: file.to_owned(), namespace: target.namespace.clone(), resolved, backup, runtime, conn, timeout: Duration::from_secs(cluster.timeout.max(1)) })
    }

    fn name(&self) -> &str {
        &self.resolved.platform.name
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.conn.client.clone(), &self.namespace)
    }

    fn api_error(&self, what: &str, e: &kube::Error) -> Error {
        Error::Failed(format!("{what}: {}", kubernetes::describe(e)))
    }

    /// The backup CronJob of `kind` (`full`, or `incr` for incremental and differential), as
    /// `terroir apply` left it.
    fn cronjob(&self, kind: &str) -> Result<CronJob, Error> {
        let name = format!("{}-backup-{}", self.name(), if kind == "full" { "full" } else { "incr" });
        match self.runtime.block_on(self.api::<CronJob>().get_opt(&name)) {
            Ok(Some(c)) => Ok(c),
            Ok(None) => Err(Error::Refused(format!("CronJob {}/{name} is not on the cluster: run `terroir apply {}` first", self.namespace, self.document.display()))),
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
    fn job_from(&self, cron: &CronJob, name: &str, started_by: &str, command: Vec<String>) -> Result<Job, Error> {
        let template = cron.spec.as_ref().map(|s| s.job_template.clone()).ok_or_else(|| Error::Failed(format!("CronJob {} has no job template", cron.metadata.name.clone().unwrap_or_default())))?;
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
        let container = job["spec"]["template"]["spec"]["containers"].get_mut(0).ok_or_else(|| Error::Failed("the backup CronJob has no container".into()))?;
        container["command"] = json!(command);
        serde_json::from_value(job).map_err(|e| Error::Failed(format!("the Job made from the CronJob is not valid: {e}")))
    }

    fn create(&self, job: &Job) -> Result<(), Error> {
        let name = job.metadata.name.clone().unwrap_or_default();
        self.runtime.block_on(self.api::<Job>().create(&PostParams::default(), job)).map(|_| ()).map_err(|e| self.api_error(&format!("cannot create Job {}/{name}", self.namespace), &e))
    }

    /// Wait, watching, until the Job completes (Ok) or fails (Err with the controller's reason).
    fn wait_job(&self, name: &str) -> Result<(), Error> {
        let label = format!("Job {}/{name}", self.namespace);
        let logs = format!("its log: kubectl -n {} logs job/{name}", self.namespace);
        let settled = self.runtime.block_on(kubernetes::wait::watch_until(self.api::<Job>(), name, self.timeout, |event| match event {
            Ok(Some(job)) => job.status.iter().flat_map(|s| s.conditions.iter().flatten()).filter(|c| c.status == "True").find_map(|c| match c.type_.as_str() {
                "Complete" | "SuccessCriteriaMet" => Some(Ok(())),
                "Failed" | "FailureTarget" => {
                    let why = [c.reason.clone(), c.message.clone()].into_iter().flatten().collect::<Vec<_>>().join(": ");
                    Some(Err(Error::Failed(format!("{label} failed ({why}); {logs}"))))
                }
                _ => None,
            }),
            Ok(None) => Some(Err(Error::Failed(format!("{label} was deleted before it finished")))),
            Err(e) => Some(Err(Error::Failed(format!("{label}: {e}")))),
        }));
        match settled {
            Ok(r) => r,
            Err(Unsettled::Ended) => Err(Error::Failed(format!("{label}: the watch ended"))),
            Err(Unsettled::TimedOut) => Err(Error::Failed(format!("{label} did not finish within {} s (it goes on; {logs})", self.timeout.as_secs()))),
        }
    }

    /// The log of the Job's pod (the last one, when it was retried).
    fn job_log(&self, name: &str) -> Result<String, Error> {
        let pods = self.runtime.block_on(self.api::<Pod>().list(&ListParams::default().labels(&format!("job-name={name}")))).map_err(|e| self.api_error(&format!("pods of Job {name}"), &e))?;
        let pod = pods.items.iter().max_by_key(|p| p.metadata.creation_timestamp.clone()).and_then(|p| p.metadata.name.clone()).ok_or_else(|| Error::Failed(format!("Job {}/{name} has no pod", self.namespace)))?;
        self.runtime.block_on(self.api::<Pod>().logs(&pod, &LogParams::default())).map_err(|e| self.api_error(&format!("log of pod {}/{pod}", self.namespace), &e))
    }

    fn delete_job(&self, name: &str) {
        let _ = self.runtime.block_on(self.api::<Job>().delete(name, &DeleteParams::background()));
    }

    fn scale(&self, sts: &str, replicas: i32) -> Result<(), Error> {
        let patch = json!({"spec": {"replicas": replicas}});
        self.runtime
            .block_on(self.api::<StatefulSet>().patch(sts, &PatchParams::apply(FIELD_MANAGER), &Patch::Merge(&patch)))
            .map(|_| ())
            .map_err(|e| self.api_error(&format!("cannot scale StatefulSet {}/{sts} to {replicas}", self.namespace), &e))
    }

    /// Wait until the pod is gone (its volume free for another pod).
    fn wait_gone(&self, pod: &str) -> Result<(), Error> {
        let settled = self.runtime.block_on(kubernetes::wait::watch_until(self.api::<Pod>(), pod, self.timeout, |event| matches!(event, Ok(None)).then_some(())));
        match settled {
            Ok(()) => Ok(()),
            Err(Unsettled::Ended) => Err(Error::Failed(format!("pod {}/{pod}: the watch ended", self.namespace))),
            Err(Unsettled::TimedOut) => Err(Error::Failed(format!("pod {}/{pod} did not stop within {} s", self.namespace, self.timeout.as_secs()))),
        }
    }

    fn wait_ready(&self, sts: &str) -> Result<(), Error> {
        let gvk = kube::api::GroupVersionKind::gvk("apps", "v1", "StatefulSet");
        let ar = kube::api::ApiResource::from_gvk(&gvk);
        let api: Api<kube::api::DynamicObject> = Api::namespaced_with(self.conn.client.clone(), &self.namespace, &ar);
        self.runtime.block_on(kubernetes::wait::wait_rollout(api, "StatefulSet", sts, self.timeout)).map_err(|e| Error::Failed(e.to_string()))
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

pub fn now(file: &Path, kind: &str, cluster: &ClusterArgs, catalog: &Catalog, progress: &dyn Fn(&str)) -> Result<NowReport, Error> {
    let ctx = Ctx::open(file, cluster, catalog)?;
    let cron = ctx.cronjob(kind)?;
    let name = ctx.job_name(&format!("backup-{kind}"));
    let job = ctx.job_from(&cron, &name, "backup-now", vec!["/bin/sh".into(), "/etc/pgbackrest/backup.sh".into(), kind.into()])?;
    let start = Instant::now();
    ctx.create(&job)?;
    progress(&format!("started Job {}/{name} ({kind} backup of stanza {}); waiting for it", ctx.namespace, ctx.backup.stanza));
    ctx.wait_job(&name)?;
    Ok(NowReport {
        platform: ctx.name().to_owned(),
        namespace: ctx.namespace.clone(),
        job: name.clone(),
        kind: kind.to_owned(),
        seconds: start.elapsed().as_secs_f64(),
        log: format!("kubectl -n {} logs job/{name}", ctx.namespace),
    })
}

/// `backup list`: `pgbackrest info` in a Job from the incremental CronJob's pod (the repository
/// is read where the backups are made), its output read from the pod's log; the Job is removed
/// afterwards.
pub fn list(file: &Path, cluster: &ClusterArgs, catalog: &Catalog) -> Result<ops::Inventory, Error> {
    let ctx = Ctx::open(file, cluster, catalog)?;
    let cron = ctx.cronjob("incr")?;
    let name = ctx.job_name("backup-list");
    let command = ["pgbackrest", &format!("--stanza={}", ctx.backup.stanza), "--log-level-console=off", "--output=json", "info"].map(String::from).to_vec();
    let mut job = ctx.job_from(&cron, &name, "backup-list", command)?;
    if let Some(spec) = job.spec.as_mut() {
        spec.backoff_limit = Some(0);
        spec.ttl_seconds_after_finished = Some(600);
    }
    ctx.create(&job)?;
    let outcome = ctx.wait_job(&name).and_then(|()| ctx.job_log(&name));
    if outcome.is_ok() {
        ctx.delete_job(&name);
    }
    // The pod's log holds standard error too (a pgBackRest warning): the JSON is its own line.
    let log = outcome?;
    let json_line = log.lines().rev().find(|l| l.trim_start().starts_with('[')).unwrap_or(&log);
    ops::parse_info(json_line, &ctx.backup.stanza)
}

/// What `backup restore` did, or would do.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreReport {
    pub platform: String,
    pub namespace: String,
    pub target_time: String,
    pub dry_run: bool,
    pub steps: Vec<String>,
    pub next_steps: Vec<String>,
    pub seconds: f64,
}

pub struct RestoreOptions<'a> {
    pub to_time: &'a str,
    pub dry_run: bool,
    pub replace: bool,
    pub into: bool,
}

pub fn restore(file: &Path, opts: &RestoreOptions, cluster: &ClusterArgs, catalog: &Catalog, progress: &dyn Fn(&str)) -> Result<RestoreReport, Error> {
    if opts.into {
        return Err(Error::Input("--into restores onto another platform's database host: it is for hosts; on Kubernetes a restore rewinds FILE's own database (with --replace)".into()));
    }
    let (target, epoch) = ops::parse_time(opts.to_time)?;
    let ctx = Ctx::open(file, cluster, catalog)?;
    let start = Instant::now();
    let sts = ctx.resolved.components.database.service_name.clone();
    let pvc = format!("data-{sts}-0");
    let ns = ctx.namespace.clone();
    let steps = vec![
        format!("check, from a Job of CronJob {}-backup-incr, that every WAL segment is archived and that {target} is inside the repository's window", ctx.name()),
        format!("scale StatefulSet {ns}/{sts} to 0 and wait for pod {sts}-0 to stop"),
        format!("restore volume {pvc} to {target} in a Job (pgbackrest restore --delta --type=time)"),
        format!("scale StatefulSet {ns}/{sts} back to 1: PostgreSQL replays the WAL up to {target} and promotes itself"),
    ];
    let mut report = RestoreReport {
        platform: ctx.name().to_owned(),
        namespace: ns.clone(),
        target_time: target.clone(),
        dry_run: opts.dry_run,
        steps,
        next_steps: vec![format!("take a full backup of the restored database: terroir backup now {} --type full", file.display())],
        seconds: 0.0,
    };
    // What the restore needs is there, before anything is asked of the cluster.
    if ctx.runtime.block_on(ctx.api::<StatefulSet>().get_opt(&sts)).map_err(|e| ctx.api_error(&format!("StatefulSet {ns}/{sts}"), &e))?.is_none() {
        return Err(Error::Refused(format!("StatefulSet {ns}/{sts} is not on the cluster: nothing to restore into (run `terroir apply {}` first)", file.display())));
    }
    if ctx.runtime.block_on(ctx.api::<PersistentVolumeClaim>().get_opt(&pvc)).map_err(|e| ctx.api_error(&format!("PersistentVolumeClaim {ns}/{pvc}"), &e))?.is_none() {
        return Err(Error::Refused(format!("PersistentVolumeClaim {ns}/{pvc} (the database's volume) is not on the cluster: nothing to restore into")));
    }
    let cron = ctx.cronjob("incr")?;
    if opts.dry_run {
        return Ok(report);
    }
    if !opts.replace {
        return Err(Error::Refused(format!(
            "restoring rewinds {}'s own database to {target}: what was written after it is lost. Add --replace to do it, or --dry-run to see the steps; nothing was changed",
            ctx.name()
        )));
    }

    // 1. While PostgreSQL runs: everything archived, and the time reachable. Nothing stops otherwise.
    let check = ctx.job_name("restore-check");
    let mut job = ctx.job_from(&cron, &check, "backup-restore", vec!["/bin/sh".into(), "/etc/pgbackrest/restore-check.sh".into(), target.clone(), epoch.to_string()])?;
    if let Some(spec) = job.spec.as_mut() {
        spec.backoff_limit = Some(0);
    }
    ctx.create(&job)?;
    progress(&format!("checking the repository and the time in Job {ns}/{check}"));
    ctx.wait_job(&check).map_err(|e| match e {
        Error::Failed(m) => Error::Refused(format!("{m}; PostgreSQL was not stopped, nothing was changed")),
        other => other,
    })?;

    // 2. PostgreSQL stopped: its volume free.
    progress(&format!("stopping PostgreSQL (StatefulSet {ns}/{sts} to 0 replicas)"));
    ctx.scale(&sts, 0)?;
    if let Err(e) = ctx.wait_gone(&format!("{sts}-0")) {
        // Nothing was restored: PostgreSQL is given back its replica before reporting.
        let back = ctx.scale(&sts, 1).err().map(|b| format!("; and it could not be scaled back to 1: {b}")).unwrap_or_default();
        return Err(Error::Failed(format!("{e}: nothing was restored, StatefulSet {ns}/{sts} was scaled back to 1{back}")));
    }

    // 3. The restore, on the volume. 4. PostgreSQL again, whatever the restore's outcome.
    let name = ctx.job_name("restore");
    let job = restore_job(&ctx.resolved, &ctx.backup, &ns, &name, &pvc, &target);
    let restored = ctx.create(&job).and_then(|()| {
        progress(&format!("restoring volume {pvc} to {target} in Job {ns}/{name}"));
        ctx.wait_job(&name)
    });
    progress(&format!("starting PostgreSQL again (StatefulSet {ns}/{sts} to 1 replica)"));
    let started = ctx.scale(&sts, 1).and_then(|()| ctx.wait_ready(&sts));
    match (restored, started) {
        (Ok(()), Ok(())) => {}
        (Err(e), _) => {
            return Err(Error::Failed(format!(
                "{e}. PostgreSQL was started again on its volume: if the restore had begun writing to it, PostgreSQL may not start; run the same restore again"
            )));
        }
        (Ok(()), Err(e)) => return Err(Error::Failed(format!("the volume was restored to {target}, but PostgreSQL did not come back: {e}"))),
    }
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// The restore Job: the rendered restore.sh on the database's volume, with the database pod's
/// pgBackRest settings and the repository's secrets, as the database's user.
pub fn restore_job(resolved: &ResolvedPlatform, backup: &BackupContext, namespace: &str, name: &str, pvc: &str, target: &str) -> Job {
    let p = &resolved.platform.name;
    let mut items = vec![json!({"key": "pgbackrest.conf", "path": "pgbackrest.conf"}), json!({"key": "restore.sh", "path": "restore.sh"})];
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
                        "command": ["/bin/sh", "/etc/pgbackrest/restore.sh", target],
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
