//! `terroir plan` / `terroir apply` on a Kubernetes target, over HTTP, against the stateful API
//! server double (crates/kube-double): first apply creates everything, the second writes
//! nothing, a component removed from the document is pruned, conflicts with another field
//! manager are refused until --force-conflicts, and a rollout that never completes times out.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::{json, Value};
use terroir_kube_double::{BackgroundServer, Options, State};

struct Cluster {
    server: BackgroundServer,
    dir: tempfile::TempDir,
}

impl Cluster {
    fn start(opts: Options) -> Self {
        let server = BackgroundServer::start(opts).expect("the API server double starts");
        let dir = tempfile::tempdir().unwrap();
        server.write_kubeconfig(&dir.path().join("kubeconfig"), "double").unwrap();
        Cluster { server, dir }
    }

    fn state(&self) -> State {
        self.server.state()
    }

    /// The Kubernetes example, possibly edited, written beside the kubeconfig.
    fn document(&self, edit: impl FnOnce(&mut String)) -> PathBuf {
        let mut text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/kubernetes.yaml")).unwrap();
        edit(&mut text);
        let path = self.dir.path().join("platform.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn terroir(&self, args: &[&str], doc: &Path) -> (i32, Value, String) {
        let kubeconfig = self.dir.path().join("kubeconfig");
        let out = Command::cargo_bin("terroir")
            .unwrap()
            .args(args)
            .arg(doc)
            .args(["--kubeconfig", kubeconfig.to_str().unwrap(), "--context", "double", "--output", "json"])
            .env_remove("KUBECONFIG")
            .timeout(std::time::Duration::from_secs(120))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let json = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("stdout is JSON ({e}):\n{stdout}\nstderr:\n{stderr}"));
        (out.status.code().unwrap_or(-1), json, stderr)
    }

    fn writes(&self) -> Vec<String> {
        self.state()
            .requests()
            .into_iter()
            .filter(|r| r.method != "GET" && !r.query.contains("dryRun=All"))
            .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
            .collect()
    }
}

fn names(state: &State, api_version: &str, kind: &str) -> Vec<String> {
    state.list(api_version, kind).iter().map(|o| o["metadata"]["name"].as_str().unwrap_or_default().to_owned()).collect()
}

fn summary(report: &Value, key: &str) -> u64 {
    report["summary"][key].as_u64().unwrap_or_else(|| panic!("summary.{key} in {report}"))
}

#[test]
fn apply_creates_everything_then_changes_nothing_then_prunes_what_was_removed() {
    let cluster = Cluster::start(Options::default());
    let doc = cluster.document(|_| {});

    // A plan against an empty cluster: everything to create, nothing written.
    let (code, plan, stderr) = cluster.terroir(&["plan"], &doc);
    assert_eq!(code, 0, "{stderr}");
    let objects = plan["objects"].as_array().unwrap().len() as u64;
    assert!(objects > 40, "the example renders some fifty objects, got {objects}");
    assert_eq!(summary(&plan, "create"), objects);
    assert!(cluster.writes().is_empty(), "plan wrote: {:?}", cluster.writes());

    // First apply.
    let (code, report, stderr) = cluster.terroir(&["apply"], &doc);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(summary(&report, "create"), objects);
    assert!(!report["rolledOut"].as_array().unwrap().is_empty(), "rollouts were waited for");
    // Secrets are referenced, never rendered: the ones missing are named.
    let missing: Vec<&str> = report["missingSecrets"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(missing.contains(&"mutuelle-crm/mutuelle-crm-postgres-credentials"), "{missing:?}");
    let state = cluster.state();
    let deployments = state.list("apps/v1", "Deployment");
    assert!(deployments.len() >= 3, "{deployments:?}");
    let set = report["applyset"].as_str().unwrap().to_owned();
    for d in &deployments {
        assert_eq!(d["metadata"]["labels"]["applyset.kubernetes.io/part-of"], set.as_str(), "member label on {}", d["metadata"]["name"]);
        let managers: Vec<&str> = d["metadata"]["managedFields"].as_array().unwrap().iter().filter_map(|m| m["manager"].as_str()).collect();
        assert!(managers.contains(&"terroir"), "field manager terroir on {}: {managers:?}", d["metadata"]["name"]);
    }
    let parent = state.get("v1", "ConfigMap", Some("mutuelle-crm"), "terroir-mutuelle-crm").expect("the ApplySet parent exists");
    assert_eq!(parent["metadata"]["labels"]["applyset.kubernetes.io/id"], set.as_str());
    let kinds = parent["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"].as_str().unwrap();
    assert!(kinds.contains("Deployment.apps") && kinds.contains("CronJob.batch"), "{kinds}");
    assert!(names(&state, "v1", "Namespace").contains(&"mutuelle-crm".to_owned()));
    let versions: Vec<Value> = deployments.iter().map(|d| d["metadata"]["resourceVersion"].clone()).collect();

    // Once the Secret exists it is no longer reported.
    let url = format!("{}/api/v1/namespaces/mutuelle-crm/secrets", cluster.server.url());
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "mutuelle-crm-postgres-credentials"}, "stringData": {"password": "x"}});
    ureq::post(&url).header("content-type", "application/json").send(secret.to_string()).unwrap();

    // Second apply: nothing to do, and not a single write.
    state.clear_requests();
    let (code, report, stderr) = cluster.terroir(&["apply"], &doc);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(summary(&report, "unchanged"), objects, "{report}");
    assert_eq!(summary(&report, "create") + summary(&report, "update") + summary(&report, "prune"), 0);
    assert!(cluster.writes().is_empty(), "a second apply wrote: {:#?}", cluster.writes());
    let missing: Vec<&str> = report["missingSecrets"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(!missing.is_empty() && !missing.contains(&"mutuelle-crm/mutuelle-crm-postgres-credentials"), "{missing:?}");
    let again: Vec<Value> = state.list("apps/v1", "Deployment").iter().map(|d| d["metadata"]["resourceVersion"].clone()).collect();
    assert_eq!(versions, again);

    // Backups switched off: the plan shows the prune, apply deletes it and nothing else.
    let cronjobs_before = names(&state, "batch/v1", "CronJob");
    assert_eq!(cronjobs_before.len(), 1, "{cronjobs_before:?}");
    let doc = cluster.document(|t| *t = t.replace("    backups:\n", "    backups:\n      enabled: false\n"));
    let (code, plan, stderr) = cluster.terroir(&["plan"], &doc);
    assert_eq!(code, 0, "{stderr}");
    let pruned: Vec<String> = plan["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["action"] == "prune")
        .map(|o| format!("{}/{}", o["kind"].as_str().unwrap(), o["name"].as_str().unwrap()))
        .collect();
    assert!(pruned.contains(&format!("CronJob/{}", cronjobs_before[0])), "{pruned:?}");
    assert_eq!(names(&state, "batch/v1", "CronJob"), cronjobs_before, "plan deletes nothing");
    let (code, report, stderr) = cluster.terroir(&["apply"], &doc);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(summary(&report, "prune"), pruned.len() as u64);
    assert!(names(&state, "batch/v1", "CronJob").is_empty(), "the backup CronJob was pruned");
    assert_eq!(state.list("apps/v1", "Deployment").len(), deployments.len(), "nothing else was deleted");
    let parent = state.get("v1", "ConfigMap", Some("mutuelle-crm"), "terroir-mutuelle-crm").unwrap();
    let kinds = parent["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"].as_str().unwrap();
    assert!(!kinds.contains("CronJob.batch"), "the parent lists exactly the kinds left: {kinds}");
}

#[test]
fn a_field_owned_by_another_manager_is_a_conflict_until_forced() {
    let cluster = Cluster::start(Options::default());
    let doc = cluster.document(|_| {});
    let (code, _, stderr) = cluster.terroir(&["apply", "--no-wait"], &doc);
    assert_eq!(code, 0, "{stderr}");

    // Somebody scales the app by hand with their own server-side apply.
    let deployment = cluster
        .state()
        .list("apps/v1", "Deployment")
        .into_iter()
        .find(|d| d["metadata"]["name"].as_str().is_some_and(|n| n.ends_with("-app")))
        .expect("the app Deployment");
    let name = deployment["metadata"]["name"].as_str().unwrap().to_owned();
    let url = format!("{}/apis/apps/v1/namespaces/mutuelle-crm/deployments/{name}?fieldManager=ops-console&force=true", cluster.server.url());
    let body = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": {"replicas": 7}});
    let resp = ureq::patch(&url).header("content-type", "application/apply-patch+yaml").send(body.to_string()).unwrap();
    assert_eq!(resp.status(), 200);

    cluster.state().clear_requests();
    let (code, out, stderr) = cluster.terroir(&["apply"], &doc);
    assert_eq!(code, 2, "a conflict fails the apply: {out}");
    assert!(stderr.contains("ops-console") && stderr.contains(".spec.replicas") && stderr.contains("--force-conflicts"), "{stderr}");
    assert!(cluster.writes().is_empty(), "nothing written after a conflict: {:?}", cluster.writes());
    let live = cluster.state().get("apps/v1", "Deployment", Some("mutuelle-crm"), &name).unwrap();
    assert_eq!(live["spec"]["replicas"], 7);

    let (code, report, stderr) = cluster.terroir(&["apply", "--force-conflicts"], &doc);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(summary(&report, "update"), 1, "{report}");
    let live = cluster.state().get("apps/v1", "Deployment", Some("mutuelle-crm"), &name).unwrap();
    assert_eq!(live["spec"]["replicas"], 3, "the document's replicas are back");
}

#[test]
fn a_rollout_that_never_completes_times_out() {
    let cluster = Cluster::start(Options { simulate_rollouts: false, ..Options::default() });
    let doc = cluster.document(|_| {});
    let (code, out, stderr) = cluster.terroir(&["apply", "--timeout", "2"], &doc);
    assert_eq!(code, 2, "{out}");
    assert!(stderr.contains("timed out after 2 s waiting for") && stderr.contains("to roll out"), "{stderr}");
    // Everything was applied all the same; only the wait failed.
    assert!(cluster.state().list("apps/v1", "Deployment").len() >= 3);
}

#[test]
fn an_unreachable_cluster_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    std::fs::write(
        &kubeconfig,
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{port}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: double\n  context:\n    cluster: c\n    user: u\ncurrent-context: double\n"),
    )
    .unwrap();
    let out = Command::cargo_bin("terroir")
        .unwrap()
        .args(["plan", concat!(env!("CARGO_MANIFEST_DIR"), "/examples/kubernetes.yaml"), "--kubeconfig"])
        .arg(&kubeconfig)
        .args(["--context", "double"])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error:") && stderr.contains(&port.to_string()) || stderr.contains("onnect"), "{stderr}");

    let out = Command::cargo_bin("terroir")
        .unwrap()
        .args(["plan", concat!(env!("CARGO_MANIFEST_DIR"), "/examples/kubernetes.yaml"), "--kubeconfig"])
        .arg(&kubeconfig)
        .args(["--context", "no-such-context"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-context"), "{}", String::from_utf8_lossy(&out.stderr));
}
