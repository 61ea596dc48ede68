//! The application's releases on a cluster: the restore point taken in the database's pod
//! before a new image replaces the running one, and each switch recorded on the Deployment
//! (`terroir.eu/releases`). Used by the driver's apply and by rollback and destroy.

use super::{ApplySet, ClusterError, Manifest, describe};
use super::{Parent, Rollouts};
use crate::deploy::{Mode, Work};
use crate::lifecycle::release::{RestorePoint, Switch};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// The annotation of the application's Deployment recording its switches of image (a JSON array
/// of `lifecycle::release::Switch`, oldest first, the last `keepReleases` of them).
pub const ANNOTATION_RELEASES: &str = "terroir.eu/releases";
/// The field manager of that annotation: `apply` never owns it, so never removes it.
pub(super) const RELEASES_MANAGER: &str = "terroir-releases";
/// The Deployment controller's revision of a ReplicaSet (and of the Deployment, its current one).
pub(super) const ANNOTATION_REVISION: &str = "deployment.kubernetes.io/revision";
/// What the Deployment controller adds to a ReplicaSet's template.
pub(super) const TEMPLATE_HASH: &str = "pod-template-hash";
/// The container the application runs in.
pub(super) const APP_CONTAINER: &str = "app";
/// PostgreSQL's container in the database's pods.
pub(super) const POSTGRES_CONTAINER: &str = "postgres";
/// The label Patroni sets on the database's pods; `master` (or `primary`) on the primary.
pub(super) const POSTGRES_ROLE_LABEL: &str = "terroir.eu/postgres-role";
/// Where a destroy's items are: the cluster of the document's context.
pub(super) const PLACE: &str = "cluster";

pub(super) fn applyset(work: &Work<'_>) -> ApplySet {
    let platform = &work.resolved.platform.name;
    match &work.settings.cluster.parent {
        Parent::ConfigMap => ApplySet::for_cli(platform, &work.resolved.platform.namespace),
        Parent::Platform { namespace } => ApplySet::for_resource(platform, namespace),
    }
}

pub(super) fn deadline(work: &Work<'_>) -> Duration {
    match work.settings.cluster.rollouts {
        Rollouts::Wait(d) => d,
        Rollouts::Check | Rollouts::Skip => Duration::from_secs(600),
    }
}

pub(super) fn api_error(what: impl Into<String>, message: impl Into<String>) -> ClusterError {
    ClusterError::Api {
        object: what.into(),
        message: message.into(),
    }
}

// ------------------------------------------------------------------------------------------
// Programs in pods

/// Run `argv` in `container` of `pod`: its standard output, or why it failed.
pub(super) async fn exec(
    client: &Client,
    namespace: &str,
    pod: &str,
    container: &str,
    argv: &[String],
) -> Result<String, String> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let params = kube::api::AttachParams::default()
        .container(container)
        .stdin(false)
        .stdout(true)
        .stderr(true);
    let mut process = api
        .exec(pod, argv.to_vec(), &params)
        .await
        .map_err(|e| describe(&e))?;
    let read = |r: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>| async move {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf).await;
        }
        buf
    };
    let stdout = process
        .stdout()
        .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>);
    let stderr = process
        .stderr()
        .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>);
    let status = process.take_status();
    let (out, err) = tokio::join!(read(stdout), read(stderr));
    let status = match status {
        Some(s) => s.await,
        None => None,
    };
    let _ = process.join().await;
    if let Some(reason) = crate::reversibility::source::failure(status.as_ref()) {
        let err = crate::text::last_lines(&String::from_utf8_lossy(&err), 3);
        return Err(if err.is_empty() {
            reason
        } else {
            format!("{reason}: {err}")
        });
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The running pod to run PostgreSQL's programs in: the primary (the only pod of a single
/// server; with Patroni, the one labelled primary).
pub fn primary(pods: &[Pod]) -> Option<String> {
    let running = |p: &&Pod| {
        p.metadata.deletion_timestamp.is_none()
            && p.status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .is_some_and(|ph| ph == "Running")
    };
    let role = |p: &Pod| {
        p.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(POSTGRES_ROLE_LABEL))
            .cloned()
    };
    let mut candidates: Vec<&Pod> = pods.iter().filter(running).collect();
    candidates.sort_by_key(|p| p.metadata.name.clone());
    if let Some(p) = candidates
        .iter()
        .find(|p| matches!(role(p).as_deref(), Some("master" | "primary")))
    {
        return p.metadata.name.clone();
    }
    // a standby is no place to write a restore point
    candidates
        .into_iter()
        .find(|p| role(p).is_none())
        .and_then(|p| p.metadata.name.clone())
}

/// The database's primary pod: its namespace and name, or why there is none.
pub(super) async fn database_pod(
    client: &Client,
    manifests: &[Manifest],
) -> Result<(String, String), String> {
    let objects: Vec<(String, String, Value)> = manifests
        .iter()
        .map(|m| (m.gvk.kind.clone(), m.name.clone(), m.object.data.clone()))
        .collect();
    let workload = crate::reversibility::cluster::workload(&objects, "postgres")
        .ok_or("the document renders no database workload")?;
    let namespace = manifests
        .iter()
        .find(|m| m.name == workload.name && m.gvk.kind == workload.kind)
        .and_then(|m| m.namespace.clone())
        .unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let pods = api
        .list(&ListParams::default().labels(&workload.selector))
        .await
        .map_err(|e| format!("listing the pods of {}: {}", workload.name, describe(&e)))?;
    primary(&pods.items)
        .map(|pod| (namespace.clone(), pod))
        .ok_or_else(|| {
            format!(
                "no running primary pod of {} {namespace}/{} (selector {})",
                workload.kind, workload.name, workload.selector
            )
        })
}

pub(super) fn psql(database: &str, sql: &str) -> Vec<String> {
    [
        "psql",
        "--username=postgres",
        &format!("--dbname={database}"),
        "-v",
        "ON_ERROR_STOP=1",
        "-XAtqc",
        sql,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// The newest backup of the repository, read with `pgbackrest info` in the database's pod.
pub(super) async fn newest_backup(
    client: &Client,
    namespace: &str,
    pod: &str,
    stanza: &str,
) -> Result<Option<crate::backup::hosts::Backup>, String> {
    let argv = [
        "pgbackrest",
        &format!("--stanza={stanza}"),
        "--log-level-console=off",
        "--output=json",
        "info",
    ]
    .map(str::to_owned)
    .to_vec();
    let out = exec(client, namespace, pod, POSTGRES_CONTAINER, &argv).await?;
    let json = out
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('['))
        .unwrap_or(&out);
    let info = crate::backup::hosts::parse_info(json, stanza).map_err(|e| e.to_string())?;
    Ok(info.backups.into_iter().max_by_key(|b| b.stopped))
}

// ------------------------------------------------------------------------------------------
// Releases: the restore point before a new image, the record on the Deployment

/// The image of the application's container in a pod template.
pub(super) fn app_image(template: &Value) -> Option<String> {
    template
        .pointer("/spec/containers")?
        .as_array()?
        .iter()
        .find(|c| c["name"] == APP_CONTAINER)?
        .get("image")?
        .as_str()
        .map(str::to_owned)
}

/// The application's Deployment among the rendered objects.
pub(super) fn app_deployment<'m>(
    work: &Work<'_>,
    manifests: &'m [Manifest],
) -> Option<&'m Manifest> {
    let app = &work.resolved.components.app;
    if !app.enabled {
        return None;
    }
    manifests
        .iter()
        .find(|m| m.gvk.group == "apps" && m.gvk.kind == "Deployment" && m.name == app.name)
}

/// The switches recorded on a live Deployment.
pub(super) fn recorded_switches(d: &Deployment) -> Vec<Switch> {
    d.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_RELEASES))
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_default()
}

/// `switches` with `new` last, the last `keep` kept.
pub fn append_switch(mut switches: Vec<Switch>, new: Switch, keep: usize) -> Vec<Switch> {
    switches.push(new);
    let excess = switches.len().saturating_sub(keep.max(1));
    switches.drain(..excess);
    switches
}

/// The name of the restore point taken at `unix` before switching to a new image.
pub(super) fn restore_point_name(platform: &str, unix: i64) -> String {
    format!("terroir-{platform}-{unix}")
}

/// What `apply` is about to do to the application's release: switch from `from` to `to`.
pub struct PendingSwitch {
    namespace: String,
    deployment: String,
    keep: usize,
    switch: Switch,
}

/// `apply`: when the application's image changes, the restore point of the database (before
/// anything is written), and the switch to record once applied. `plan`: say it would.
pub async fn before_release(
    work: &Work<'_>,
    client: &Client,
    manifests: &[Manifest],
) -> Result<Option<PendingSwitch>, ClusterError> {
    let Some(m) = app_deployment(work, manifests) else {
        return Ok(None);
    };
    let namespace = m.namespace.clone().unwrap_or_default();
    let api: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let live = match api.get_opt(&m.name).await {
        Ok(Some(d)) => d,
        Ok(None) => return Ok(None),
        // its namespace does not exist yet: a first apply
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(None),
        Err(e) => return Err(ClusterError::api(m.label(), &e)),
    };
    let live_template = serde_json::to_value(
        live.spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default(),
    )
    .unwrap_or_default();
    let (Some(from), Some(to)) = (
        app_image(&live_template),
        m.object.data.pointer("/spec/template").and_then(app_image),
    ) else {
        return Ok(None);
    };
    if from == to {
        return Ok(None);
    }
    let backup = crate::backup::context(work.resolved);
    if work.mode == Mode::Plan {
        work.events.note(&format!(
            "the application would switch from {from} to {to}{}",
            if backup.is_some() {
                ", after a restore point of the database"
            } else {
                ""
            }
        ));
        return Ok(None);
    }
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    let operator = matches!(work.settings.cluster.parent, Parent::Platform { .. });
    let restore_point = match backup {
        // the operator may not exec into pods (its RBAC grants no pods/exec)
        Some(_) if operator => {
            work.events.warn(&format!(
                "no restore point before switching the application from {from} to {to}: the operator runs no program in the database's pod (`terroir apply` takes one)"
            ));
            None
        }
        Some(backup) => take_restore_point(work, client, manifests, &backup.stanza, now).await?,
        None => {
            work.events.warn(&format!(
                "no restore point before switching the application from {from} to {to}: the database has no backup repository (a rollback cannot take its data back)"
            ));
            None
        }
    };
    Ok(Some(PendingSwitch {
        namespace,
        deployment: m.name.clone(),
        keep: work.resolved.components.app.keep_releases as usize,
        switch: Switch {
            at: now,
            release: to,
            from: Some(from),
            restore_point,
            by: "apply".into(),
        },
    }))
}

/// The SQL taking a named restore point and switching to a new WAL segment, so that the restore
/// point is archived: `lsn|txid|time|unix|segment`.
pub fn restore_point_sql(name: &str) -> String {
    format!(
        "select pg_create_restore_point('{name}')::text, pg_current_xact_id()::text, \
         to_char(now() at time zone 'utc', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), extract(epoch from now())::bigint, \
         pg_walfile_name(pg_switch_wal())"
    )
}

/// `restore_point_sql`'s answer: the restore point (without its backup) and the WAL segment to
/// see archived.
pub fn parse_restore_point(name: &str, out: &str) -> Option<(RestorePoint, String)> {
    let line = out.lines().find(|l| l.contains('|'))?;
    let f: Vec<&str> = line.trim().split('|').collect();
    let [lsn, txid, time, unix, segment] = f.as_slice() else {
        return None;
    };
    Some((
        RestorePoint {
            name: name.to_owned(),
            time: (*time).to_owned(),
            unix: unix.parse().ok()?,
            lsn: (*lsn).to_owned(),
            txid: txid.parse().ok()?,
            backup: String::new(),
        },
        (*segment).to_owned(),
    ))
}

/// Whether `segment` is archived, from `pg_stat_archiver`'s `last_archived_wal|last_failed_wal`;
/// with the last failure at or after it (archiving retries it) when it is not.
pub fn archived(segment: &str, stat: &str) -> (bool, Option<String>) {
    let line = stat.lines().next().unwrap_or_default().trim();
    let (last, failed) = line.split_once('|').unwrap_or((line, ""));
    // segment names sort as their positions once the timeline is left out
    let position = |s: &str| s.get(8..).unwrap_or_default().to_owned();
    if !last.is_empty() && position(last) >= position(segment) {
        return (true, None);
    }
    let failed =
        (!failed.is_empty() && position(failed) >= position(segment)).then(|| failed.to_owned());
    (false, failed)
}

pub(super) async fn take_restore_point(
    work: &Work<'_>,
    client: &Client,
    manifests: &[Manifest],
    stanza: &str,
    now: i64,
) -> Result<Option<RestorePoint>, ClusterError> {
    let what = "a restore point of the database before switching the application's image";
    let fail = |why: String| {
        api_error(
            what,
            format!("{why}; nothing was changed (the image switch waits for a restore point)"),
        )
    };
    let (namespace, pod) = database_pod(client, manifests).await.map_err(fail)?;
    let Some(backup) = newest_backup(client, &namespace, &pod, stanza)
        .await
        .map_err(|e| fail(format!("pgbackrest info in pod {namespace}/{pod}: {e}")))?
    else {
        work.events.warn(
            "no restore point before switching the application's image: the backup repository holds no backup yet to replay it from (take one with `terroir backup now`)",
        );
        return Ok(None);
    };
    let name = restore_point_name(&work.resolved.platform.name, now);
    let db = &work.resolved.components.database.name;
    let out = exec(
        client,
        &namespace,
        &pod,
        POSTGRES_CONTAINER,
        &psql(db, &restore_point_sql(&name)),
    )
    .await
    .map_err(|e| fail(format!("psql in pod {namespace}/{pod}: {e}")))?;
    let (mut point, segment) = parse_restore_point(&name, &out)
        .ok_or_else(|| fail(format!("psql in pod {namespace}/{pod} answered {out:?}")))?;
    point.backup = backup.label;
    work.events.note(&format!(
        "restore point {name} taken at {} (LSN {}), waiting for WAL segment {segment} to be archived",
        point.time, point.lsn
    ));
    let started = std::time::Instant::now();
    let limit = deadline(work);
    loop {
        let stat = exec(
            client,
            &namespace,
            &pod,
            POSTGRES_CONTAINER,
            &psql(
                db,
                "select coalesce(last_archived_wal, ''), coalesce(last_failed_wal, '') from pg_stat_archiver",
            ),
        )
        .await
        .map_err(|e| fail(format!("psql in pod {namespace}/{pod}: {e}")))?;
        let (done, failed) = archived(&segment, &stat);
        if done {
            return Ok(Some(point));
        }
        if started.elapsed() > limit {
            return Err(ClusterError::Timeout {
                seconds: limit.as_secs(),
                what: format!(
                    "WAL segment {segment} (restore point {name}) to be archived{}",
                    failed
                        .map(|f| format!(
                            " (archiving {f} failed: is the backup repository reachable?)"
                        ))
                        .unwrap_or_default()
                ),
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Write the switches on the Deployment, as their own field manager.
pub(super) async fn write_switches(
    client: &Client,
    namespace: &str,
    deployment: &str,
    switches: &[Switch],
) -> Result<(), ClusterError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let body = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment,
            "namespace": namespace,
            "annotations": {ANNOTATION_RELEASES: serde_json::to_string(switches).unwrap_or_default()},
        },
    });
    let mut pp = PatchParams::apply(RELEASES_MANAGER);
    pp.force = true;
    api.patch(deployment, &pp, &Patch::Apply(&body))
        .await
        .map(|_| ())
        .map_err(|e| {
            ClusterError::api(
                format!("recording the release on Deployment {namespace}/{deployment}"),
                &e,
            )
        })
}

/// Once applied: the switch recorded on the Deployment.
pub async fn record_release(
    work: &Work<'_>,
    client: &Client,
    pending: PendingSwitch,
) -> Result<(), ClusterError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), &pending.namespace);
    let live = api
        .get(&pending.deployment)
        .await
        .map_err(|e| ClusterError::api(format!("Deployment {}", pending.deployment), &e))?;
    let switches = append_switch(recorded_switches(&live), pending.switch, pending.keep);
    write_switches(client, &pending.namespace, &pending.deployment, &switches).await?;
    if let Some(s) = switches.last() {
        work.events.note(&format!(
            "release {} recorded on Deployment {}/{}{}",
            s.release,
            pending.namespace,
            pending.deployment,
            s.restore_point
                .as_ref()
                .map(|p| format!(" with restore point {}", p.name))
                .unwrap_or_default()
        ));
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Rollback
