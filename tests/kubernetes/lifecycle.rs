//! `terroir destroy` and `terroir rollback` on a Kubernetes target, through the CLI, against the
//! API server double: a destruction removes every member of the set, its parent, the generated
//! Secrets and the namespaces, keeps the volumes (and their namespace) without --delete-data, and
//! a second one finds nothing left; a new image of the application is applied after a restore
//! point of the database (psql and pgbackrest in the database's pod answered by the double's exec
//! hook), and a rollback goes back to the Deployment's previous template, stating first what
//! going back with the data would lose.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use terroir_kube_double::{ExecRequest, State};

use super::apply::{Cluster, JobController, applied_example, jobs};

const NS: &str = "mutuelle-crm";
const OLD: &str = "registry.mutuelle.example.fr/crm/app:4.2.1";
const NEW: &str = "registry.mutuelle.example.fr/crm/app:4.3.0";

fn key(cluster: &Cluster) -> PathBuf {
    let key = cluster.dir.path().join("attest.key");
    let out = assert_cmd::Command::cargo_bin("terroir")
        .unwrap()
        .args(["keygen", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    key
}

fn post(cluster: &Cluster, path: &str, body: Value) {
    ureq::post(&format!("{}{path}", cluster.server.url()))
        .header("content-type", "application/json")
        .send(body.to_string())
        .unwrap();
}

/// The database's pod, running, as its StatefulSet would make it.
fn database_pod(cluster: &Cluster) {
    let pod = "mutuelle-crm-postgres-0";
    post(
        cluster,
        &format!("/api/v1/namespaces/{NS}/pods"),
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod, "labels": {"app.kubernetes.io/name": "postgres", "app.kubernetes.io/instance": NS}},
            "spec": {"containers": [{"name": "postgres", "image": "terroir/postgres"}, {"name": "pgbackrest", "image": "terroir/postgres"}]}}),
    );
    ureq::patch(&format!(
        "{}/api/v1/namespaces/{NS}/pods/{pod}/status",
        cluster.server.url()
    ))
    .header("content-type", "application/merge-patch+json")
    .send(json!({"status": {"phase": "Running"}}).to_string())
    .unwrap();
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `pgbackrest info --output=json` with one full backup finished at `stop`.
fn info(stop: i64) -> String {
    json!([{
        "name": NS, "cipher": "aes-256-cbc",
        "status": {"code": 0, "message": "ok"},
        "archive": [{"id": "15-1", "min": "000000010000000000000001", "max": "000000010000000000000003"}],
        "backup": [{"label": "20261205-020000F", "type": "full",
            "timestamp": {"start": stop - 60, "stop": stop},
            "archive": {"start": "000000010000000000000002", "stop": "000000010000000000000002"},
            "info": {"size": 23000000, "delta": 23000000, "repository": {"size": 2900000, "delta": 2900000}}}],
    }])
    .to_string()
}

/// What the database's pod answers, and every command it was asked to run.
fn answer_in_the_database_pod(state: &State, backup_stop: i64) -> Arc<Mutex<Vec<Vec<String>>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let info = info(backup_stop);
    state.set_exec_hook(move |r: &ExecRequest| {
        if r.namespace != NS || r.pod != "mutuelle-crm-postgres-0" || r.container != "postgres" {
            return None;
        }
        log.lock().unwrap().push(r.command.clone());
        let sql = r.command.last().cloned().unwrap_or_default();
        let out = match r.command[0].as_str() {
            "pgbackrest" => info.clone(),
            "psql" if sql.contains("pg_create_restore_point") => {
                "0/3000090|750|2026-12-05T10:00:00Z|1796464800|000000010000000000000003".into()
            }
            "psql" if sql.contains("pg_stat_archiver") => "000000010000000000000003|".into(),
            "psql"
                if sql.contains("query_to_xml") && r.command.contains(&"--dbname=crm".into()) =>
            {
                "public.customers|12\npublic.audit_events|3".into()
            }
            // a tenant's database
            "psql" if sql.contains("query_to_xml") => "public.notes|5".into(),
            "psql" if sql.contains("to_char(now()") => "2026-12-05T10:05:00Z|1796465100".into(),
            _ => return None,
        };
        let mut c = std::process::Command::new("printf");
        c.args(["%s\n", &out]);
        Some(c)
    });
    seen
}

fn items(out: &Value) -> Vec<(String, String, String)> {
    out["plan"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["kind"].as_str().unwrap().to_owned(),
                i["what"].as_str().unwrap().to_owned(),
                i["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn members(state: &State) -> Vec<String> {
    let mut out = Vec::new();
    for (api_version, kind) in [
        ("v1", "ConfigMap"),
        ("v1", "Service"),
        ("v1", "ServiceAccount"),
        ("apps/v1", "Deployment"),
        ("apps/v1", "StatefulSet"),
        ("apps/v1", "DaemonSet"),
        ("batch/v1", "CronJob"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
        ("policy/v1", "PodDisruptionBudget"),
        ("rbac.authorization.k8s.io/v1", "Role"),
        ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ] {
        for o in state.list(api_version, kind) {
            if o["metadata"]["labels"]
                .get("applyset.kubernetes.io/part-of")
                .is_some()
            {
                out.push(format!(
                    "{kind} {}/{}",
                    o["metadata"]["namespace"].as_str().unwrap_or_default(),
                    o["metadata"]["name"].as_str().unwrap()
                ));
            }
        }
    }
    out
}

fn destroy(cluster: &Cluster, doc: &Path, flags: &[&str]) -> (i32, Value, String) {
    cluster.terroir_then(&["destroy"], doc, flags)
}

#[test]
fn destroy_removes_the_platform_keeps_its_volumes_until_delete_data_then_finds_nothing() {
    let (cluster, doc) = applied_example();
    let state = cluster.state();
    let key = key(&cluster);
    let key = key.to_str().unwrap();
    let record = cluster.dir.path().join("erasure-record.json");
    let record = record.to_str().unwrap();
    assert!(!members(&state).is_empty());

    // The plan: every member, the parent, the generated Secrets, the claim and the namespace,
    // kept for the claim it holds.
    let (code, out, stderr) = destroy(&cluster, &doc, &[]);
    assert_eq!(code, 0, "{stderr}\n{out}");
    let plan = items(&out);
    let has = |kind: &str, what: &str, action: &str| {
        plan.contains(&(kind.into(), what.into(), action.into()))
    };
    assert!(
        has("object", &format!("Deployment {NS}/{NS}-app"), "remove"),
        "{plan:?}"
    );
    assert!(
        has("object", &format!("ConfigMap {NS}/terroir-{NS}"), "remove"),
        "{plan:?}"
    );
    assert!(
        has(
            "secret",
            &format!("{NS}/{NS}-postgres-credentials"),
            "remove"
        ),
        "{plan:?}"
    );
    assert!(
        has("volume", &format!("{NS}/data-{NS}-postgres-0"), "keep"),
        "{plan:?}"
    );
    assert!(has("namespace", NS, "keep"), "{plan:?}");
    // a rendered claim is a volume too, never an object removed with the rest
    assert!(
        has("volume", &format!("{NS}/{NS}-grafana"), "keep"),
        "{plan:?}"
    );
    assert!(
        plan.iter()
            .all(|i| !i.1.starts_with("PersistentVolumeClaim ")),
        "{plan:?}"
    );
    assert!(out["done"].is_null());
    let last = plan.iter().rposition(|i| i.0 == "object").unwrap();
    let first_namespace = plan.iter().position(|i| i.0 == "namespace").unwrap();
    assert!(last < first_namespace, "namespaces last: {plan:?}");
    assert!(
        plan.iter()
            .all(|i| i.0 != "object" || !i.1.starts_with("Namespace ")),
        "a namespace is a namespace item: {plan:?}"
    );
    // nothing was changed by the plan
    assert!(members(&state).contains(&format!("Deployment {NS}/{NS}-app")));

    // No export and no backup readable: refused, nothing changed.
    let (code, out, _) = destroy(&cluster, &doc, &["--yes", "--key", key, "--record", record]);
    assert_ne!(code, 0, "{out}");
    assert_eq!(out["kind"], "no-final-copy", "{out}");
    assert!(members(&state).contains(&format!("Deployment {NS}/{NS}-app")));

    // --purge-packages means nothing on a cluster: said, not ignored.
    let (code, out, _) = destroy(&cluster, &doc, &["--purge-packages"]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out["error"].as_str().unwrap().contains("--purge-packages"),
        "{out}"
    );

    // Carried out: every member and the parent gone, the claim and its namespace kept.
    let (code, out, stderr) = destroy(
        &cluster,
        &doc,
        &[
            "--no-final-export",
            "--yes",
            "--key",
            key,
            "--record",
            record,
        ],
    );
    assert_eq!(code, 0, "{stderr}\n{out}");
    let done = out["done"].as_array().unwrap();
    assert!(done.iter().all(|d| d.get("failed").is_none()), "{out}");
    assert_eq!(members(&state), Vec::<String>::new());
    assert!(
        state
            .get("v1", "ConfigMap", Some(NS), &format!("terroir-{NS}"))
            .is_none()
    );
    assert!(
        state
            .get(
                "v1",
                "Secret",
                Some(NS),
                &format!("{NS}-postgres-credentials")
            )
            .is_none()
    );
    assert!(
        state
            .get(
                "v1",
                "PersistentVolumeClaim",
                Some(NS),
                &format!("data-{NS}-postgres-0")
            )
            .is_some()
    );
    assert!(
        state
            .get(
                "v1",
                "PersistentVolumeClaim",
                Some(NS),
                &format!("{NS}-grafana")
            )
            .is_some()
    );
    assert!(state.get("v1", "Namespace", None, NS).is_some());
    assert!(std::path::Path::new(record).exists());

    // A second destroy finds nothing left to remove.
    let (code, out, stderr) = destroy(&cluster, &doc, &[]);
    assert_eq!(code, 0, "{stderr}\n{out}");
    assert!(
        items(&out).iter().all(|i| i.2 == "keep"),
        "{:?}",
        items(&out)
    );

    // With --delete-data: the claim, then the namespace.
    let (code, out, stderr) = destroy(
        &cluster,
        &doc,
        &[
            "--delete-data",
            "--no-final-export",
            "--yes",
            "--key",
            key,
            "--record",
            record,
        ],
    );
    assert_eq!(code, 0, "{stderr}\n{out}");
    let done: Vec<String> = out["done"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "{} {}",
                d["kind"].as_str().unwrap(),
                d["what"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        done,
        [
            format!("volume {NS}/data-{NS}-postgres-0"),
            format!("volume {NS}/{NS}-grafana"),
            format!("volume {NS}/{NS}-postfix-spool"),
            format!("namespace {NS}")
        ]
    );
    assert!(state.get("v1", "Namespace", None, NS).is_none());
    assert!(state.list("v1", "PersistentVolumeClaim").is_empty());
    let (code, out, _) = destroy(&cluster, &doc, &["--delete-data"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(items(&out), Vec::new());
}

#[test]
fn destroy_follows_the_newest_backup_read_in_the_database_pod() {
    let (cluster, doc) = applied_example();
    database_pod(&cluster);
    let seen = answer_in_the_database_pod(&cluster.state(), now() - 3600);
    let key = key(&cluster);
    let record = cluster.dir.path().join("erasure-record.json");
    let (code, out, stderr) = destroy(&cluster, &doc, &[]);
    assert_eq!(code, 0, "{stderr}\n{out}");
    assert_eq!(
        out["plan"]["lastBackup"]["location"], "20261205-020000F",
        "{out}"
    );
    assert_eq!(out["follows"]["kind"], "backup", "{out}");
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|c| c[0] == "pgbackrest" && c.contains(&"info".to_owned()))
    );
    let (code, out, stderr) = destroy(
        &cluster,
        &doc,
        &[
            "--yes",
            "--key",
            key.to_str().unwrap(),
            "--record",
            record.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{stderr}\n{out}");
    assert_eq!(out["follows"]["location"], "20261205-020000F");
    assert!(members(&cluster.state()).is_empty());
}

/// The example applied, then applied again with a new image of the application: the restore
/// point taken in the database's pod before the switch.
fn switched_example() -> (Cluster, PathBuf, Arc<Mutex<Vec<Vec<String>>>>) {
    let (cluster, doc) = applied_example();
    database_pod(&cluster);
    let seen = answer_in_the_database_pod(&cluster.state(), now() - 3600);
    let doc_new = cluster.document(|t| *t = t.replace(OLD, NEW));
    assert_eq!(doc, doc_new);
    let (code, out, stderr) = cluster.terroir(&["apply"], &doc);
    assert_eq!(code, 0, "{stderr}\n{out}");
    (cluster, doc, seen)
}

fn deployment(state: &State) -> Value {
    state
        .get("apps/v1", "Deployment", Some(NS), &format!("{NS}-app"))
        .unwrap()
}

fn image(d: &Value) -> String {
    d["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn releases(d: &Value) -> Vec<Value> {
    serde_json::from_str(
        d["metadata"]["annotations"]["terroir.eu/releases"]
            .as_str()
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn a_new_image_follows_a_restore_point_and_rollback_goes_back_to_the_previous_template() {
    let (cluster, doc, seen) = switched_example();
    let state = cluster.state();
    let d = deployment(&state);
    assert_eq!(image(&d), NEW);
    assert_eq!(d["spec"]["revisionHistoryLimit"], 2);
    // the restore point, then the WAL segment seen archived
    let sql: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c[0] == "psql")
        .map(|c| c.last().unwrap().clone())
        .collect();
    assert!(
        sql[0].contains("pg_create_restore_point('terroir-mutuelle-crm-"),
        "{sql:?}"
    );
    assert!(sql[0].contains("pg_switch_wal()"), "{sql:?}");
    assert!(sql[1].contains("pg_stat_archiver"), "{sql:?}");
    let recorded = releases(&d);
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["release"], NEW);
    assert_eq!(recorded[0]["from"], OLD);
    assert_eq!(recorded[0]["restorePoint"]["lsn"], "0/3000090");
    assert_eq!(recorded[0]["restorePoint"]["backup"], "20261205-020000F");
    assert_eq!(recorded[0]["by"], "apply");

    let (code, out, stderr) = cluster.terroir(&["rollback"], &doc);
    assert_eq!(code, 0, "{stderr}\n{out}");
    assert_eq!(
        (out["from"].as_str(), out["to"].as_str()),
        (Some(NEW), Some(OLD))
    );
    assert_eq!(out["changed"], true);
    let d = deployment(&state);
    assert_eq!(image(&d), OLD);
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );
    // the earlier ReplicaSet came back (the same template), none was made
    let sets: Vec<Value> = state
        .list("apps/v1", "ReplicaSet")
        .into_iter()
        .filter(|r| {
            r["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{NS}-app-"))
        })
        .collect();
    assert_eq!(sets.len(), 2, "{sets:#?}");
    let recorded = releases(&d);
    assert_eq!(recorded.last().unwrap()["by"], "rollback");
    assert_eq!(recorded.last().unwrap()["release"], OLD);
    assert!(
        d["metadata"]["labels"]
            .get("applyset.kubernetes.io/part-of")
            .is_some(),
        "still a member of the set"
    );

    // The document still names the new image: the next apply switches to it, without conflict.
    let (code, out, stderr) = cluster.terroir(&["apply"], &doc);
    assert_eq!(code, 0, "{stderr}\n{out}");
    assert_eq!(image(&deployment(&state)), NEW);

    // --to names an image no longer kept, or the running one: refused
    let (code, out, _) = cluster.terroir_then(
        &["rollback"],
        &doc,
        &["--to", "registry.mutuelle.example.fr/crm/app:9"],
    );
    assert_ne!(code, 0, "{out}");
    assert!(
        out["error"]
            .as_str()
            .unwrap()
            .contains("no kept release starts with"),
        "{out}"
    );
}

#[test]
fn rollback_with_data_states_the_loss_and_changes_nothing_without_yes() {
    let (cluster, doc, _) = switched_example();
    let state = cluster.state();
    state.clear_requests();
    let (code, out, stderr) = cluster.terroir_then(&["rollback"], &doc, &["--with-data"]);
    assert_eq!(code, 0, "{stderr}\n{out}");
    assert_eq!(out["changed"], false, "{out}");
    let loss = &out["loss"];
    assert_eq!(loss["database"], "crm");
    assert!(
        loss["restorePoint"]["name"]
            .as_str()
            .unwrap()
            .starts_with("terroir-mutuelle-crm-"),
        "{out}"
    );
    assert_eq!(loss["seconds"], 300);
    assert_eq!(
        loss["tables"][0],
        json!({"table": "public.customers", "rows": 12})
    );
    assert_eq!(
        loss["tables"][1],
        json!({"table": "public.audit_events", "rows": 3})
    );
    assert_eq!(image(&deployment(&state)), NEW);
    assert_eq!(cluster.writes(), Vec::<String>::new());

    // In text, the loss is said first.
    let kubeconfig = cluster.dir.path().join("kubeconfig");
    let text = assert_cmd::Command::cargo_bin("terroir")
        .unwrap()
        .arg("rollback")
        .arg(&doc)
        .args([
            "--with-data",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--context",
            "double",
        ])
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(stdout.contains("rolling the data back loses:"), "{stdout}");
    assert!(
        stdout.contains("public.customers: 12 rows written since"),
        "{stdout}"
    );
    assert!(stdout.contains("nothing was changed"), "{stdout}");
}

/// The StatefulSet controller's part in a restore: the database's pod goes once its
/// StatefulSet is scaled to 0 (the double makes and removes no pods of its own).
fn stop_the_database_pod_when_scaled_to_zero(cluster: &Cluster) {
    use std::io::BufRead;
    let url = cluster.server.url();
    std::thread::spawn(move || {
        let watch = ureq::get(&format!(
            "{url}/apis/apps/v1/namespaces/{NS}/statefulsets?watch=true&timeoutSeconds=600&fieldSelector=metadata.name%3D{NS}-postgres"
        ))
        .call()
        .unwrap();
        for line in std::io::BufReader::new(watch.into_body().into_reader()).lines() {
            let Ok(line) = line else { return };
            let event: Value = serde_json::from_str(&line).unwrap();
            if event["object"]["spec"]["replicas"] == 0 {
                let _ = ureq::delete(&format!(
                    "{url}/api/v1/namespaces/{NS}/pods/{NS}-postgres-0"
                ))
                .call();
                return;
            }
        }
    });
}

#[test]
fn rollback_with_data_and_yes_stops_the_application_restores_then_goes_back() {
    let (cluster, doc, _) = switched_example();
    let state = cluster.state();
    let _controller = JobController::start(cluster.server.url(), String::new(), |_| None);
    stop_the_database_pod_when_scaled_to_zero(&cluster);
    let (code, out, stderr) = cluster.terroir_then(&["rollback"], &doc, &["--with-data", "--yes"]);
    assert_eq!(code, 0, "{stderr}\n{out}");
    assert_eq!(out["changed"], true, "{out}");
    let steps: Vec<&str> = out["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["detail"].as_str().unwrap())
        .collect();
    assert_eq!(steps.len(), 3, "{steps:?}");
    assert!(steps[0].contains("scaled to 0"), "{steps:?}");
    assert!(
        steps[1].contains("restored to restore point terroir-mutuelle-crm-"),
        "{steps:?}"
    );
    assert!(steps[2].contains("back to revision"), "{steps:?}");
    let restore = jobs(&state)
        .into_iter()
        .find(|j| {
            j["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("mutuelle-crm-restore-1")
        })
        .unwrap();
    let command = &restore["spec"]["template"]["spec"]["containers"][0]["command"];
    assert!(
        command[2]
            .as_str()
            .unwrap()
            .starts_with("terroir-mutuelle-crm-")
            && command[3] == "name"
            && command[4] == "20261205-020000F",
        "restored to the restore point, from the backup it followed: {command}"
    );
    let d = deployment(&state);
    assert_eq!(image(&d), OLD);
    assert_eq!(d["spec"]["replicas"], 3, "scaled back");
}

#[test]
fn rollback_with_data_of_a_replicated_database_is_refused_before_anything_is_asked() {
    let cluster = Cluster::start(terroir_kube_double::Options::default());
    cluster.give_secrets();
    let replicated = |t: &mut String| {
        *t = t.replace(
            "      sharedBuffers: 1GB\n",
            "      sharedBuffers: 1GB\n      replicas: 2\n",
        )
    };
    let doc = cluster.document(replicated);
    let (code, _, stderr) = cluster.terroir(&["apply"], &doc);
    assert_eq!(code, 0, "{stderr}");
    database_pod(&cluster);
    let seen = answer_in_the_database_pod(&cluster.state(), now() - 3600);
    cluster.document(|t| {
        replicated(t);
        *t = t.replace(OLD, NEW);
    });
    let (code, out, stderr) = cluster.terroir(&["apply"], &doc);
    assert_eq!(code, 0, "{stderr}\n{out}");
    let asked = seen.lock().unwrap().len();
    cluster.state().clear_requests();
    let (code, out, _) = cluster.terroir_then(&["rollback"], &doc, &["--with-data", "--yes"]);
    assert_ne!(code, 0, "{out}");
    let error = out["error"].as_str().unwrap();
    assert!(
        error.contains("2 replicas") && error.contains("without --with-data"),
        "{error}"
    );
    assert_eq!(seen.lock().unwrap().len(), asked, "nothing run in the pod");
    assert_eq!(cluster.writes(), Vec::<String>::new());
    assert_eq!(image(&deployment(&cluster.state())), NEW);
}

#[test]
fn a_namespace_still_terminating_at_the_deadline_is_a_failed_item_and_destroy_runs_again() {
    let (cluster, doc) = applied_example();
    let key = key(&cluster);
    let record = cluster.dir.path().join("erasure-record.json");
    // a claim still in use: its protection finalizer holds it, and its namespace with it
    let claim = format!("data-{NS}-postgres-0");
    let finalizers = |list: Value| {
        ureq::patch(&format!(
            "{}/api/v1/namespaces/{NS}/persistentvolumeclaims/{claim}",
            cluster.server.url()
        ))
        .header("content-type", "application/merge-patch+json")
        .send(json!({"metadata": {"finalizers": list}}).to_string())
        .unwrap();
    };
    finalizers(json!(["kubernetes.io/pvc-protection"]));
    let flags = [
        "--delete-data",
        "--no-final-export",
        "--yes",
        "--timeout",
        "2",
        "--key",
        key.to_str().unwrap(),
        "--record",
        record.to_str().unwrap(),
    ];
    let (code, out, stderr) = destroy(&cluster, &doc, &flags);
    assert_eq!(code, 2, "{stderr}\n{out}");
    let failed: Vec<(&str, &str)> = out["done"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| Some((d["what"].as_str()?, d["failed"].as_str()?)))
        .collect();
    assert_eq!(failed.len(), 1, "{out}");
    assert_eq!(failed[0].0, NS);
    assert!(
        failed[0].1.contains("still terminating after 2 s"),
        "{failed:?}"
    );
    // the record says so too
    let envelope: Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    let payload = base64_payload(&envelope);
    assert_eq!(payload["predicate"]["failed"][0]["what"], NS, "{payload}");

    // once the claim is released, a second run finishes the namespace
    finalizers(json!(null));
    assert!(cluster.state().get("v1", "Namespace", None, NS).is_none());
    let (code, out, _) = destroy(&cluster, &doc, &["--delete-data"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(items(&out), Vec::new());
}

fn base64_payload(envelope: &Value) -> Value {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn tenants_keep_their_namespaces_and_their_databases_are_counted_in_the_loss() {
    let cluster = Cluster::start(terroir_kube_double::Options::default());
    cluster.give_secrets();
    let with_tenant = |t: &mut String| {
        *t = t.replace(
            "  endpoints:\n",
            "  tenants:\n    - name: alpha\n  endpoints:\n",
        )
    };
    let doc = cluster.document(with_tenant);
    let (code, _, stderr) = cluster.terroir(&["apply"], &doc);
    assert_eq!(code, 0, "{stderr}");
    database_pod(&cluster);
    answer_in_the_database_pod(&cluster.state(), now() - 3600);
    cluster.document(|t| {
        with_tenant(t);
        *t = t.replace(OLD, NEW);
    });
    let (code, out, stderr) = cluster.terroir(&["apply"], &doc);
    assert_eq!(code, 0, "{stderr}\n{out}");

    let (code, out, stderr) = cluster.terroir_then(&["rollback"], &doc, &["--with-data"]);
    assert_eq!(code, 0, "{stderr}\n{out}");
    let tables: Vec<(String, u64)> = out["loss"]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["table"].as_str().unwrap().to_owned(),
                t["rows"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(tables.len(), 3, "{tables:?}");
    assert_eq!(tables[0], ("public.customers".into(), 12));
    assert!(
        tables[1].0.ends_with(".public.notes") && tables[1].1 == 5 && tables[1].0 != "public.notes",
        "the tenant's table, named with its database: {tables:?}"
    );

    let (code, out, stderr) = destroy(&cluster, &doc, &[]);
    assert_eq!(code, 0, "{stderr}\n{out}");
    let plan = items(&out);
    let tenant_ns = format!("{NS}-alpha");
    let kept = plan
        .iter()
        .find(|i| i.0 == "namespace" && i.1 == tenant_ns)
        .unwrap_or_else(|| panic!("{plan:?}"));
    assert_eq!(kept.2, "keep");
    assert!(
        plan.iter()
            .any(|i| i.0 == "object" && i.1.starts_with(&format!("NetworkPolicy {tenant_ns}/"))),
        "its policies are the platform's: {plan:?}"
    );
    assert!(
        plan.iter()
            .any(|i| i.0 == "secret" && i.1.starts_with(&format!("{tenant_ns}/"))),
        "its password, generated: {plan:?}"
    );
}

#[test]
fn destroy_and_rollback_wait_for_no_one_holding_the_platforms_lease() {
    let (cluster, doc, _) = switched_example();
    let key = key(&cluster);
    let record = cluster.dir.path().join("erasure-record.json");
    let renewed = terroir::text::now_rfc3339().replace('Z', ".000000Z");
    post(
        &cluster,
        &format!("/apis/coordination.k8s.io/v1/namespaces/{NS}/leases"),
        json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": format!("terroir-{NS}-lock"),
                "annotations": {"terroir.eu/holder": json!({"user": "alice", "machine": "ops-7", "pid": 4242, "since": renewed, "command": "apply"}).to_string()},
            },
            "spec": {"holderIdentity": "alice@ops-7/4242", "leaseDurationSeconds": 60, "acquireTime": renewed, "renewTime": renewed},
        }),
    );
    let (code, out, _) = cluster.terroir(&["rollback"], &doc);
    assert_eq!(out["kind"], "locked", "{code} {out}");
    assert_eq!(image(&deployment(&cluster.state())), NEW);
    let (code, out, _) = destroy(
        &cluster,
        &doc,
        &[
            "--no-final-export",
            "--yes",
            "--key",
            key.to_str().unwrap(),
            "--record",
            record.to_str().unwrap(),
        ],
    );
    assert_eq!(out["kind"], "locked", "{code} {out}");
    assert!(!members(&cluster.state()).is_empty(), "nothing deleted");
}
