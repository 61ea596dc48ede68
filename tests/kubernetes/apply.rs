//! `terroir plan` / `terroir apply` on a Kubernetes target, over HTTP, against the stateful API
//! server double (crates/kube-double): first apply creates everything, the second writes
//! nothing, a component removed from the document is pruned, conflicts with another field
//! manager are refused until --force-conflicts, and a rollout that never completes times out.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::{Value, json};
use terroir_kube_double::{BackgroundServer, Options, State};

pub(crate) struct Cluster {
    pub(crate) server: BackgroundServer,
    pub(crate) dir: tempfile::TempDir,
}

impl Cluster {
    pub(crate) fn start(opts: Options) -> Self {
        let server = BackgroundServer::start(opts).expect("the API server double starts");
        let dir = tempfile::tempdir().unwrap();
        server
            .write_kubeconfig(&dir.path().join("kubeconfig"), "double")
            .unwrap();
        Cluster { server, dir }
    }

    pub(crate) fn state(&self) -> State {
        self.server.state()
    }

    /// The Kubernetes example, possibly edited, written beside the kubeconfig.
    pub(crate) fn document(&self, edit: impl FnOnce(&mut String)) -> PathBuf {
        let mut text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/kubernetes.yaml"
        ))
        .unwrap();
        edit(&mut text);
        let path = self.dir.path().join("platform.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }

    pub(crate) fn terroir(&self, args: &[&str], doc: &Path) -> (i32, Value, String) {
        self.terroir_then(args, doc, &[])
    }

    /// With arguments after the document (`secrets rotate FILE NAME`).
    pub(crate) fn terroir_then(
        &self,
        args: &[&str],
        doc: &Path,
        after: &[&str],
    ) -> (i32, Value, String) {
        let kubeconfig = self.dir.path().join("kubeconfig");
        let out = Command::cargo_bin("terroir")
            .unwrap()
            .args(args)
            .arg(doc)
            .args(after)
            .args([
                "--kubeconfig",
                kubeconfig.to_str().unwrap(),
                "--context",
                "double",
                "--output",
                "json",
            ])
            .env_remove("KUBECONFIG")
            .timeout(std::time::Duration::from_secs(120))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let json = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("stdout is JSON ({e}):\n{stdout}\nstderr:\n{stderr}"));
        (out.status.code().unwrap_or(-1), json, stderr)
    }

    /// The Secrets the client gives for the example (relay and backup credentials), as it would
    /// with kubectl: the namespace first, then the Secrets.
    pub(crate) fn give_secrets(&self) {
        let url = self.server.url();
        let ns =
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mutuelle-crm"}});
        ureq::post(&format!("{url}/api/v1/namespaces"))
            .header("content-type", "application/json")
            .send(ns.to_string())
            .unwrap();
        for (name, data) in [
            (
                "mutuelle-crm-backup-s3-credentials",
                json!({"AWS_ACCESS_KEY_ID": "QUtJQQ==", "AWS_SECRET_ACCESS_KEY": "c2VjcmV0"}),
            ),
            (
                "mutuelle-crm-smtp-relay-credentials",
                json!({"sasl_passwd": "W3JlbGF5XTo1ODcgdTpw"}),
            ),
        ] {
            let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": data});
            ureq::post(&format!("{url}/api/v1/namespaces/mutuelle-crm/secrets"))
                .header("content-type", "application/json")
                .send(secret.to_string())
                .unwrap();
        }
    }

    pub(crate) fn writes(&self) -> Vec<String> {
        self.state()
            .requests()
            .into_iter()
            // the platform's own lock, taken and released around every apply (tested on its own)
            .filter(|r| {
                r.method != "GET" && !r.query.contains("dryRun=All") && !r.path.contains("/leases")
            })
            .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
            .collect()
    }
}

pub(crate) fn names(state: &State, api_version: &str, kind: &str) -> Vec<String> {
    state
        .list(api_version, kind)
        .iter()
        .map(|o| {
            o["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

fn summary(report: &Value, key: &str) -> u64 {
    report["summary"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("summary.{key} in {report}"))
}

#[test]
fn apply_creates_everything_then_changes_nothing_then_prunes_what_was_removed() {
    let cluster = Cluster::start(Options::default());
    let doc = cluster.document(|_| {});

    // A plan against an empty cluster: everything to create, nothing written.
    let (code, plan, stderr) = cluster.terroir(&["plan"], &doc);
    assert_eq!(code, 0, "{stderr}");
    let objects = plan["objects"].as_array().unwrap().len() as u64;
    assert!(
        objects > 40,
        "the example renders some fifty objects, got {objects}"
    );
    assert_eq!(summary(&plan, "create"), objects);
    assert!(
        cluster.writes().is_empty(),
        "plan wrote: {:?}",
        cluster.writes()
    );

    // The plan names the Secrets it would generate and those the client gives, and creates none.
    let would: Vec<String> = plan["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"] == "create")
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        would,
        [
            "mutuelle-crm-ca",
            "mutuelle-crm-backup-cipher",
            "mutuelle-crm-backup-tls",
            "mutuelle-crm-dkim-key",
            "mutuelle-crm-grafana-admin",
            "mutuelle-crm-monitoring-tls",
            "mutuelle-crm-mta-tls",
            "mutuelle-crm-postgres-credentials",
            "mutuelle-crm-postgres-tls",
            "mutuelle-crm-node-exporter-tls"
        ],
        "the CA first, which signs the certificates: {plan}"
    );
    assert!(cluster.state().list("v1", "Secret").is_empty());

    // First apply: the generated Secrets are created, the given ones are not invented; the
    // apply fails (as on hosts) having applied everything, and says how to make them.
    let (code, report, stderr) = cluster.terroir(&["apply"], &doc);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(summary(&report, "create"), objects, "{report}");
    assert!(
        report["rolledOut"].as_array().unwrap().is_empty(),
        "no waiting while Secrets are missing"
    );
    let missing: Vec<&str> = report["missingSecrets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        missing,
        [
            "mutuelle-crm/mutuelle-crm-backup-s3-credentials",
            "mutuelle-crm/mutuelle-crm-smtp-relay-credentials"
        ],
        "{report}"
    );
    assert!(
        stderr.contains("kubectl -n mutuelle-crm create secret generic mutuelle-crm-backup-s3-credentials --from-literal=AWS_ACCESS_KEY_ID='...' --from-literal=AWS_SECRET_ACCESS_KEY='...'")
            && stderr.contains("--from-file=sasl_passwd=./sasl_passwd"),
        "{stderr}"
    );
    let state = cluster.state();
    let generated = state.list("v1", "Secret");
    assert_eq!(generated.len(), 10, "{generated:?}");
    for s in &generated {
        let labels = &s["metadata"]["labels"];
        assert_eq!(labels["terroir.eu/generated"], "true", "{s}");
        assert_eq!(labels["terroir.eu/platform"], "mutuelle-crm", "{s}");
        assert!(
            labels.get("applyset.kubernetes.io/part-of").is_none(),
            "a generated Secret is not a member of the set: {s}"
        );
        // No value reaches the output.
        for v in s["data"].as_object().unwrap().values() {
            let v = v.as_str().unwrap();
            assert!(!stderr.contains(v) && !report.to_string().contains(v));
        }
    }
    let db = state
        .get(
            "v1",
            "Secret",
            Some("mutuelle-crm"),
            "mutuelle-crm-postgres-credentials",
        )
        .unwrap();
    let keys: Vec<&String> = db["data"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["password", "postgres-password"]);
    assert_ne!(db["data"]["password"], db["data"]["postgres-password"]);
    let dkim = state
        .get(
            "v1",
            "Secret",
            Some("mutuelle-crm"),
            "mutuelle-crm-dkim-key",
        )
        .unwrap();
    let private = base64_decode(
        dkim["data"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(k, _)| k.ends_with(".private"))
            .unwrap()
            .1
            .as_str()
            .unwrap(),
    );
    assert!(
        private.starts_with("-----BEGIN RSA PRIVATE KEY-----"),
        "{private}"
    );
    // TLS: the servers' certificates chain to the platform's CA for their Service names only.
    let ca = state
        .get("v1", "Secret", Some("mutuelle-crm"), "mutuelle-crm-ca")
        .unwrap();
    assert_eq!(ca["type"], "kubernetes.io/tls");
    let pg = state
        .get(
            "v1",
            "Secret",
            Some("mutuelle-crm"),
            "mutuelle-crm-postgres-tls",
        )
        .unwrap();
    assert_eq!(pg["type"], "kubernetes.io/tls");
    assert_eq!(pg["data"]["ca.crt"], ca["data"]["tls.crt"]);
    let verifies = |secret: &Value, name: &str| {
        verify(
            &base64_decode(ca["data"]["tls.crt"].as_str().unwrap()),
            &base64_decode(secret["data"]["tls.crt"].as_str().unwrap()),
            name,
        )
    };
    for name in [
        "mutuelle-crm-postgres",
        "mutuelle-crm-postgres.mutuelle-crm.svc",
        "mutuelle-crm-postgres.mutuelle-crm.svc.cluster.local",
    ] {
        assert!(verifies(&pg, name), "{name}");
    }
    assert!(!verifies(&pg, "mutuelle-crm-postfix"));
    let mta = state
        .get("v1", "Secret", Some("mutuelle-crm"), "mutuelle-crm-mta-tls")
        .unwrap();
    assert!(verifies(&mta, "mutuelle-crm-postfix") && !verifies(&mta, "mutuelle-crm-postgres"));
    assert!(base64_decode(pg["data"]["tls.key"].as_str().unwrap()).contains("PRIVATE KEY"));
    let monitoring = state
        .get(
            "v1",
            "Secret",
            Some("mutuelle-crm"),
            "mutuelle-crm-monitoring-tls",
        )
        .unwrap();
    assert!(
        verifies(&monitoring, "mutuelle-crm-alertmanager")
            && verifies(&monitoring, "mutuelle-crm-postgres-exporter")
    );
    let node = state
        .get(
            "v1",
            "Secret",
            Some("mutuelle-crm-node-exporter"),
            "mutuelle-crm-node-exporter-tls",
        )
        .unwrap();
    assert!(
        verifies(
            &node,
            "mutuelle-crm-node-exporter.mutuelle-crm-node-exporter.svc"
        ),
        "the name Prometheus verifies"
    );
    let deployments = state.list("apps/v1", "Deployment");
    assert!(deployments.len() >= 3, "{deployments:?}");
    let set = report["applyset"].as_str().unwrap().to_owned();
    for d in &deployments {
        assert_eq!(
            d["metadata"]["labels"]["applyset.kubernetes.io/part-of"],
            set.as_str(),
            "member label on {}",
            d["metadata"]["name"]
        );
        let managers: Vec<&str> = d["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["manager"].as_str())
            .collect();
        assert!(
            managers.contains(&"terroir"),
            "field manager terroir on {}: {managers:?}",
            d["metadata"]["name"]
        );
    }
    let parent = state
        .get(
            "v1",
            "ConfigMap",
            Some("mutuelle-crm"),
            "terroir-mutuelle-crm",
        )
        .expect("the ApplySet parent exists");
    assert_eq!(
        parent["metadata"]["labels"]["applyset.kubernetes.io/id"],
        set.as_str()
    );
    let kinds = parent["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"]
        .as_str()
        .unwrap();
    assert!(
        kinds.contains("Deployment.apps") && kinds.contains("CronJob.batch"),
        "{kinds}"
    );
    assert!(names(&state, "v1", "Namespace").contains(&"mutuelle-crm".to_owned()));

    // The client creates its two Secrets; the apply then completes and waits for the rollouts.
    let url = format!(
        "{}/api/v1/namespaces/mutuelle-crm/secrets",
        cluster.server.url()
    );
    for (name, data) in [
        (
            "mutuelle-crm-backup-s3-credentials",
            json!({"AWS_ACCESS_KEY_ID": "QUtJQQ==", "AWS_SECRET_ACCESS_KEY": "c2VjcmV0"}),
        ),
        (
            "mutuelle-crm-smtp-relay-credentials",
            json!({"sasl_passwd": "W3JlbGF5XTo1ODcgdTpw"}),
        ),
    ] {
        let secret =
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": data});
        ureq::post(&url)
            .header("content-type", "application/json")
            .send(secret.to_string())
            .unwrap();
    }
    let (code, report, stderr) = cluster.terroir(&["apply"], &doc);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !report["rolledOut"].as_array().unwrap().is_empty(),
        "rollouts were waited for"
    );
    assert!(
        report["missingSecrets"].as_array().unwrap().is_empty(),
        "{report}"
    );
    // The workloads reading the client's Secrets were rolled out for them; the others not.
    let updated: Vec<String> = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["action"] == "update")
        .map(|o| o["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        updated.iter().any(|n| n.ends_with("postfix"))
            && updated.iter().any(|n| n.ends_with("backup-full")),
        "{updated:?}"
    );
    assert!(
        !updated
            .iter()
            .any(|n| n.ends_with("-app") || n.ends_with("prometheus")),
        "{updated:?}"
    );
    let deployments = state.list("apps/v1", "Deployment");
    let versions: Vec<Value> = deployments
        .iter()
        .map(|d| d["metadata"]["resourceVersion"].clone())
        .collect();
    let versions_by_name = |state: &State| -> Vec<(String, Value)> {
        state
            .list("v1", "Secret")
            .iter()
            .map(|s| {
                (
                    s["metadata"]["name"].as_str().unwrap().to_owned(),
                    s["metadata"]["resourceVersion"].clone(),
                )
            })
            .collect()
    };
    let generated_versions = versions_by_name(&state);

    // Second apply: nothing to do, and not a single write.
    state.clear_requests();
    let (code, report, stderr) = cluster.terroir(&["apply"], &doc);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(summary(&report, "unchanged"), objects, "{report}");
    assert_eq!(
        summary(&report, "create") + summary(&report, "update") + summary(&report, "prune"),
        0
    );
    assert!(
        cluster.writes().is_empty(),
        "a second apply wrote: {:#?}",
        cluster.writes()
    );
    assert!(
        report["missingSecrets"].as_array().unwrap().is_empty(),
        "{report}"
    );
    assert!(
        report["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["action"] == "present"),
        "{report}"
    );
    let again: Vec<Value> = state
        .list("apps/v1", "Deployment")
        .iter()
        .map(|d| d["metadata"]["resourceVersion"].clone())
        .collect();
    assert_eq!(versions, again);

    // Backups switched off: the plan shows the prune, apply deletes it and nothing else.
    let cronjobs_before = names(&state, "batch/v1", "CronJob");
    assert_eq!(
        cronjobs_before,
        ["mutuelle-crm-backup-full", "mutuelle-crm-backup-incr"]
    );
    let doc = cluster
        .document(|t| *t = t.replace("    backups:\n", "    backups:\n      enabled: false\n"));
    let (code, plan, stderr) = cluster.terroir(&["plan"], &doc);
    assert_eq!(code, 0, "{stderr}");
    let pruned: Vec<String> = plan["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["action"] == "prune")
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap(),
                o["name"].as_str().unwrap()
            )
        })
        .collect();
    for c in &cronjobs_before {
        assert!(pruned.contains(&format!("CronJob/{c}")), "{pruned:?}");
    }
    assert!(
        pruned.contains(&"Deployment/mutuelle-crm-backup-exporter".to_owned()),
        "{pruned:?}"
    );
    assert_eq!(
        names(&state, "batch/v1", "CronJob"),
        cronjobs_before,
        "plan deletes nothing"
    );
    let (code, report, stderr) = cluster.terroir(&["apply"], &doc);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(summary(&report, "prune"), pruned.len() as u64);
    assert!(
        names(&state, "batch/v1", "CronJob").is_empty(),
        "the backup CronJobs were pruned"
    );
    assert_eq!(
        state.list("apps/v1", "Deployment").len(),
        deployments.len() - 1,
        "the backup exporter, and no other Deployment, was deleted"
    );
    let parent = state
        .get(
            "v1",
            "ConfigMap",
            Some("mutuelle-crm"),
            "terroir-mutuelle-crm",
        )
        .unwrap();
    let kinds = parent["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"]
        .as_str()
        .unwrap();
    assert!(
        !kinds.contains("CronJob.batch"),
        "the parent lists exactly the kinds left: {kinds}"
    );
    // Pruning never touches a Secret, generated or given.
    let after = versions_by_name(&state);
    assert_eq!(after.len(), 12, "the ten generated and the two given");
    // Only the monitoring certificate is made again: its names lose the backup exporter's.
    let changed: Vec<&String> = generated_versions
        .iter()
        .filter(|v| !after.contains(v))
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        changed,
        ["mutuelle-crm-monitoring-tls"],
        "generated Secrets unchanged but the reissued certificate"
    );
    let monitoring = state
        .get(
            "v1",
            "Secret",
            Some("mutuelle-crm"),
            "mutuelle-crm-monitoring-tls",
        )
        .unwrap();
    assert!(
        !monitoring["metadata"]["annotations"]["terroir.eu/tls-names"]
            .as_str()
            .unwrap()
            .contains("backup-exporter")
    );
}

/// Whether `cert` (PEM) verifies for `name` against `ca` (PEM), as a TLS client checks it.
fn verify(ca: &str, cert: &str, name: &str) -> bool {
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
        .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        std::sync::Arc::new(roots),
        provider,
    )
    .build()
    .unwrap();
    let end = rustls::pki_types::CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
    let sn = rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap();
    verifier
        .verify_server_cert(&end, &[], &sn, &[], rustls::pki_types::UnixTime::now())
        .is_ok()
}

fn base64_decode(s: &str) -> String {
    use base64::Engine as _;
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(s).unwrap()).unwrap()
}

#[test]
fn a_rotated_secret_keeps_its_previous_value_and_rolls_its_readers_out() {
    let cluster = Cluster::start(Options::default());
    // Without backups and relay: every Secret is generated.
    let doc = cluster.document(|t| {
        *t = t.replace("    backups:\n", "    backups:\n      enabled: false\n");
    });
    let (code, report, stderr) = cluster.terroir(&["apply"], &doc);
    let state = cluster.state();
    // The relay's credentials are still the client's: made here as the message says.
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        report["missingSecrets"],
        json!(["mutuelle-crm/mutuelle-crm-smtp-relay-credentials"])
    );
    let url = format!(
        "{}/api/v1/namespaces/mutuelle-crm/secrets",
        cluster.server.url()
    );
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "mutuelle-crm-smtp-relay-credentials"}, "data": {"sasl_passwd": "eA=="}});
    ureq::post(&url)
        .header("content-type", "application/json")
        .send(secret.to_string())
        .unwrap();
    let (code, _, stderr) = cluster.terroir(&["apply"], &doc);
    assert_eq!(code, 0, "{stderr}");
    let name = "mutuelle-crm-postgres-credentials";
    let before = state
        .get("v1", "Secret", Some("mutuelle-crm"), name)
        .unwrap();
    let template_versions = |kind: &str| -> Vec<(String, Value)> {
        let api = if kind == "CronJob" {
            "batch/v1"
        } else {
            "apps/v1"
        };
        state
            .list(api, kind)
            .iter()
            .map(|o| {
                let t = if kind == "CronJob" {
                    &o["spec"]["jobTemplate"]["spec"]["template"]
                } else {
                    &o["spec"]["template"]
                };
                (
                    o["metadata"]["name"].as_str().unwrap().to_owned(),
                    t["metadata"]["annotations"]["terroir.eu/secrets-version"].clone(),
                )
            })
            .collect()
    };
    let statefulsets = template_versions("StatefulSet");
    let deployments = template_versions("Deployment");

    // A dry run changes nothing.
    let (code, out, stderr) =
        cluster.terroir_then(&["secrets", "rotate", "--dry-run"], &doc, &[name]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(out["dryRun"], true);
    assert_eq!(
        state
            .get("v1", "Secret", Some("mutuelle-crm"), name)
            .unwrap()["data"],
        before["data"]
    );

    let (code, report, stderr) = cluster.terroir_then(&["secrets", "rotate"], &doc, &[name]);
    assert_eq!(code, 0, "{stderr}");
    let after = state
        .get("v1", "Secret", Some("mutuelle-crm"), name)
        .unwrap();
    for key in ["password", "postgres-password"] {
        assert_ne!(after["data"][key], before["data"][key], "{key} replaced");
        assert_eq!(
            after["data"][format!("{key}.previous")],
            before["data"][key],
            "{key}.previous keeps the old value"
        );
        assert!(
            !stderr.contains(after["data"][key].as_str().unwrap())
                && !report
                    .to_string()
                    .contains(after["data"][key].as_str().unwrap())
        );
    }
    assert!(after["metadata"]["annotations"]["terroir.eu/rotated-at"].is_string());
    // PostgreSQL and the app read it and are rolled out; Prometheus does not and is left alone.
    let changed = |old: &[(String, Value)], new: &[(String, Value)]| -> Vec<String> {
        old.iter()
            .zip(new)
            .filter(|(a, b)| a.1 != b.1)
            .map(|(a, _)| a.0.clone())
            .collect()
    };
    let sts = changed(&statefulsets, &template_versions("StatefulSet"));
    let deps = changed(&deployments, &template_versions("Deployment"));
    assert!(sts.iter().any(|n| n.ends_with("postgres")), "{sts:?}");
    assert!(deps.iter().any(|n| n.ends_with("-app")), "{deps:?}");
    assert!(
        !deps.iter().any(|n| n.ends_with("grafana"))
            && !sts.iter().any(|n| n.ends_with("prometheus")),
        "{deps:?} {sts:?}"
    );

    // A Secret the client gives is never rotated by terroir.
    let (code, out, stderr) = cluster.terroir_then(
        &["secrets", "rotate"],
        &doc,
        &["mutuelle-crm-smtp-relay-credentials"],
    );
    assert_eq!(code, 1, "{stderr}");
    let error = out["error"].as_str().unwrap();
    assert!(
        error.contains("given by you")
            && error.contains("kubectl -n mutuelle-crm create secret generic"),
        "{error}"
    );

    // The list shows names, keys and dates, never a value.
    let (code, listed, stderr) = cluster.terroir(&["secrets", "list"], &doc);
    assert_eq!(code, 0, "{stderr}");
    let db = listed["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap();
    assert_eq!(db["origin"], "generated");
    assert_eq!(
        db["keys"],
        json!([
            "password",
            "password.previous",
            "postgres-password",
            "postgres-password.previous"
        ])
    );
    assert!(
        db["created"].is_string() && db["rotated"].is_string(),
        "{db}"
    );
    for v in after["data"].as_object().unwrap().values() {
        assert!(!listed.to_string().contains(v.as_str().unwrap()));
    }

    // The MTA's name changes: its certificate alone is issued again, and its readers roll out.
    let pg_tls = state
        .get(
            "v1",
            "Secret",
            Some("mutuelle-crm"),
            "mutuelle-crm-postgres-tls",
        )
        .unwrap();
    let mta_tls = state
        .get("v1", "Secret", Some("mutuelle-crm"), "mutuelle-crm-mta-tls")
        .unwrap();
    assert!(
        mta_tls["metadata"]["annotations"]["terroir.eu/tls-names"]
            .as_str()
            .unwrap()
            .ends_with(",mail.crm.mutuelle.example.fr"),
        "{mta_tls}"
    );
    let hostname = "mail.crm.mutuelle.example.fr";
    let doc = cluster.document(|t| {
        *t = t
            .replace("    backups:\n", "    backups:\n      enabled: false\n")
            .replace("      dkimSelector: mutuelle2026\n", "      dkimSelector: mutuelle2026\n      hostname: relay.mail.crm.mutuelle.example.fr\n");
    });
    let (code, plan, stderr) = cluster.terroir(&["plan"], &doc);
    assert_eq!(code, 0, "{stderr}");
    let reissue: Vec<&str> = plan["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"] == "reissue")
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(reissue, ["mutuelle-crm-mta-tls"], "{plan}");
    assert_eq!(
        state
            .get("v1", "Secret", Some("mutuelle-crm"), "mutuelle-crm-mta-tls")
            .unwrap()["data"],
        mta_tls["data"],
        "a plan issues nothing"
    );
    let (code, _, stderr) = cluster.terroir(&["apply"], &doc);
    assert_eq!(code, 0, "{stderr}");
    let mta_now = state
        .get("v1", "Secret", Some("mutuelle-crm"), "mutuelle-crm-mta-tls")
        .unwrap();
    assert_ne!(mta_now["data"]["tls.crt"], mta_tls["data"]["tls.crt"]);
    assert!(
        mta_now["metadata"]["annotations"]["terroir.eu/tls-names"]
            .as_str()
            .unwrap()
            .ends_with(&format!("relay.{hostname}"))
    );
    assert_eq!(
        state
            .get(
                "v1",
                "Secret",
                Some("mutuelle-crm"),
                "mutuelle-crm-postgres-tls"
            )
            .unwrap()["data"],
        pg_tls["data"],
        "the other certificate is kept"
    );
}

#[test]
fn a_field_owned_by_another_manager_is_a_conflict_until_forced() {
    let cluster = Cluster::start(Options::default());
    cluster.give_secrets();
    let doc = cluster.document(|_| {});
    let (code, _, stderr) = cluster.terroir(&["apply", "--no-wait"], &doc);
    assert_eq!(code, 0, "{stderr}");

    // Somebody scales the app by hand with their own server-side apply.
    let deployment = cluster
        .state()
        .list("apps/v1", "Deployment")
        .into_iter()
        .find(|d| {
            d["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with("-app"))
        })
        .expect("the app Deployment");
    let name = deployment["metadata"]["name"].as_str().unwrap().to_owned();
    let url = format!(
        "{}/apis/apps/v1/namespaces/mutuelle-crm/deployments/{name}?fieldManager=ops-console&force=true",
        cluster.server.url()
    );
    let body = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": {"replicas": 7}});
    let resp = ureq::patch(&url)
        .header("content-type", "application/apply-patch+yaml")
        .send(body.to_string())
        .unwrap();
    assert_eq!(resp.status(), 200);

    cluster.state().clear_requests();
    let (code, out, stderr) = cluster.terroir(&["apply"], &doc);
    assert_eq!(code, 2, "a conflict fails the apply: {out}");
    assert!(
        stderr.contains("ops-console")
            && stderr.contains(".spec.replicas")
            && stderr.contains("--force-conflicts"),
        "{stderr}"
    );
    assert!(
        cluster.writes().is_empty(),
        "nothing written after a conflict: {:?}",
        cluster.writes()
    );
    let live = cluster
        .state()
        .get("apps/v1", "Deployment", Some("mutuelle-crm"), &name)
        .unwrap();
    assert_eq!(live["spec"]["replicas"], 7);

    let (code, report, stderr) = cluster.terroir(&["apply", "--force-conflicts"], &doc);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(summary(&report, "update"), 1, "{report}");
    let live = cluster
        .state()
        .get("apps/v1", "Deployment", Some("mutuelle-crm"), &name)
        .unwrap();
    assert_eq!(
        live["spec"]["replicas"], 3,
        "the document's replicas are back"
    );
}

#[test]
fn a_rollout_that_never_completes_times_out() {
    let cluster = Cluster::start(Options {
        simulate_rollouts: false,
        ..Options::default()
    });
    cluster.give_secrets();
    let doc = cluster.document(|_| {});
    let (code, out, stderr) = cluster.terroir(&["apply", "--timeout", "2"], &doc);
    assert_eq!(code, 2, "{out}");
    assert!(
        stderr.contains("timed out after 2 s waiting for") && stderr.contains("to roll out"),
        "{stderr}"
    );
    // Everything was applied all the same; only the wait failed.
    assert!(cluster.state().list("apps/v1", "Deployment").len() >= 3);
}

#[test]
fn an_unreachable_cluster_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        &kubeconfig,
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{port}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: double\n  context:\n    cluster: c\n    user: u\ncurrent-context: double\n"),
    )
    .unwrap();
    let out = Command::cargo_bin("terroir")
        .unwrap()
        .args([
            "plan",
            concat!(env!("CARGO_MANIFEST_DIR"), "/examples/kubernetes.yaml"),
            "--kubeconfig",
        ])
        .arg(&kubeconfig)
        .args(["--context", "double"])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error:") && stderr.contains(&port.to_string())
            || stderr.contains("onnect"),
        "{stderr}"
    );

    let out = Command::cargo_bin("terroir")
        .unwrap()
        .args([
            "plan",
            concat!(env!("CARGO_MANIFEST_DIR"), "/examples/kubernetes.yaml"),
            "--kubeconfig",
        ])
        .arg(&kubeconfig)
        .args(["--context", "no-such-context"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no-such-context"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn tenants_get_namespaces_policies_and_their_password_which_a_removal_keeps() {
    let cluster = Cluster::start(Options::default());
    cluster.give_secrets();
    let with = |tenants: &str| {
        let tenants = tenants.to_owned();
        cluster.document(move |t| {
            *t = t.replace(
                "  endpoints:\n",
                &format!("  tenants:\n{tenants}  endpoints:\n"),
            )
        })
    };
    let doc = with("    - name: alpha\n    - name: beta_co\n");
    let (code, report, stderr) = cluster.terroir(&["apply"], &doc);
    assert_eq!(code, 0, "{stderr}");
    let state = cluster.state();
    let set = report["applyset"].as_str().unwrap().to_owned();

    // Their namespaces exist, outside the set (never pruned), labelled for the database's policy.
    for ns in ["mutuelle-crm-alpha", "mutuelle-crm-beta-co"] {
        let n = state
            .get("v1", "Namespace", None, ns)
            .unwrap_or_else(|| panic!("namespace {ns}"));
        assert_eq!(
            n["metadata"]["labels"]["terroir.eu/tenant-of"],
            "mutuelle-crm"
        );
        assert!(
            n["metadata"]["labels"]
                .get("applyset.kubernetes.io/part-of")
                .is_none(),
            "{n}"
        );
        let policies: Vec<Value> = state
            .list("networking.k8s.io/v1", "NetworkPolicy")
            .into_iter()
            .filter(|p| p["metadata"]["namespace"] == ns)
            .collect();
        assert_eq!(policies.len(), 2, "{policies:?}");
        assert!(
            policies
                .iter()
                .all(|p| p["metadata"]["labels"]["applyset.kubernetes.io/part-of"] == set.as_str())
        );
    }
    let parent = state
        .get(
            "v1",
            "ConfigMap",
            Some("mutuelle-crm"),
            "terroir-mutuelle-crm",
        )
        .unwrap();
    let spans = parent["metadata"]["annotations"]["applyset.kubernetes.io/additional-namespaces"]
        .as_str()
        .unwrap();
    assert!(
        spans.contains("mutuelle-crm-alpha") && spans.contains("mutuelle-crm-beta-co"),
        "{spans}"
    );
    let db_policy = state
        .get(
            "networking.k8s.io/v1",
            "NetworkPolicy",
            Some("mutuelle-crm"),
            "mutuelle-crm-postgres",
        )
        .unwrap();
    assert!(
        db_policy["spec"]["ingress"]
            .to_string()
            .contains("\"terroir.eu/tenant-of\":\"mutuelle-crm\""),
        "{db_policy}"
    );

    // One password per tenant, generated once, the same in PostgreSQL's Secret and the tenant's.
    let credentials = state
        .get(
            "v1",
            "Secret",
            Some("mutuelle-crm"),
            "mutuelle-crm-tenant-credentials",
        )
        .unwrap();
    let alpha = state
        .get(
            "v1",
            "Secret",
            Some("mutuelle-crm-alpha"),
            "tenant-alpha-password",
        )
        .unwrap();
    assert_eq!(alpha["data"]["password"], credentials["data"]["alpha"]);
    assert_eq!(
        base64_decode(alpha["data"]["host"].as_str().unwrap()),
        "mutuelle-crm-postgres.mutuelle-crm.svc"
    );
    assert_eq!(
        base64_decode(alpha["data"]["sslmode"].as_str().unwrap()),
        "verify-full"
    );
    assert!(
        base64_decode(alpha["data"]["ca.crt"].as_str().unwrap())
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    let beta = state
        .get(
            "v1",
            "Secret",
            Some("mutuelle-crm-beta-co"),
            "tenant-beta-co-password",
        )
        .unwrap();
    assert_eq!(beta["data"]["password"], credentials["data"]["beta-co"]);
    assert_ne!(alpha["data"]["password"], beta["data"]["password"]);

    // A second apply changes nothing.
    state.clear_requests();
    let (code, _, stderr) = cluster.terroir(&["apply"], &doc);
    assert_eq!(code, 0, "{stderr}");
    assert!(cluster.writes().is_empty(), "{:#?}", cluster.writes());

    // A rotation of the tenants' passwords reaches the tenants' copies.
    let (code, _, stderr) = cluster.terroir_then(
        &["secrets", "rotate"],
        &doc,
        &["mutuelle-crm-tenant-credentials"],
    );
    assert_eq!(code, 0, "{stderr}");
    let rotated = state
        .get(
            "v1",
            "Secret",
            Some("mutuelle-crm"),
            "mutuelle-crm-tenant-credentials",
        )
        .unwrap();
    assert_ne!(rotated["data"]["alpha"], credentials["data"]["alpha"]);
    let alpha_now = state
        .get(
            "v1",
            "Secret",
            Some("mutuelle-crm-alpha"),
            "tenant-alpha-password",
        )
        .unwrap();
    assert_eq!(alpha_now["data"]["password"], rotated["data"]["alpha"]);
    let (code, out, _) =
        cluster.terroir_then(&["secrets", "rotate"], &doc, &["tenant-alpha-password"]);
    assert_eq!(code, 1);
    let error = out["error"].as_str().unwrap();
    assert!(
        error.contains("copies its password from Secret mutuelle-crm-tenant-credentials"),
        "{error}"
    );

    // beta_co leaves: its policies are pruned; its namespace, Secret and password are kept.
    let doc = with("    - name: alpha\n");
    let (code, report, stderr) = cluster.terroir(&["apply"], &doc);
    assert_eq!(code, 0, "{stderr}");
    let pruned: Vec<String> = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["action"] == "prune")
        .map(|o| {
            format!(
                "{}/{}",
                o["namespace"].as_str().unwrap_or_default(),
                o["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        pruned,
        [
            "mutuelle-crm-beta-co/allow-dns-and-database",
            "mutuelle-crm-beta-co/default-deny"
        ],
        "{report}"
    );
    assert!(
        state
            .get("v1", "Namespace", None, "mutuelle-crm-beta-co")
            .is_some()
    );
    assert_eq!(
        state
            .get(
                "v1",
                "Secret",
                Some("mutuelle-crm-beta-co"),
                "tenant-beta-co-password"
            )
            .unwrap()["data"]["password"],
        rotated["data"]["beta-co"]
    );
    assert!(
        state
            .get(
                "v1",
                "Secret",
                Some("mutuelle-crm"),
                "mutuelle-crm-tenant-credentials"
            )
            .unwrap()["data"]
            .get("beta-co")
            .is_some()
    );
}

#[test]
fn a_secret_made_beforehand_is_kept_and_only_completed() {
    let cluster = Cluster::start(Options::default());
    cluster.give_secrets();
    // The client brought its own database password, without the superuser's.
    let url = format!(
        "{}/api/v1/namespaces/mutuelle-crm/secrets",
        cluster.server.url()
    );
    let theirs = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "mutuelle-crm-postgres-credentials"}, "data": {"password": "dGhlaXJz"}});
    ureq::post(&url)
        .header("content-type", "application/json")
        .send(theirs.to_string())
        .unwrap();
    let doc = cluster.document(|_| {});

    let (code, plan, stderr) = cluster.terroir(&["plan"], &doc);
    assert_eq!(code, 0, "{stderr}");
    let db = plan["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "mutuelle-crm-postgres-credentials")
        .unwrap()
        .clone();
    assert_eq!(
        (db["action"].as_str(), db["missingKeys"].clone()),
        (Some("addKeys"), json!(["postgres-password"])),
        "{db}"
    );

    let (code, _, stderr) = cluster.terroir(&["apply"], &doc);
    assert_eq!(code, 0, "{stderr}");
    let live = cluster
        .state()
        .get(
            "v1",
            "Secret",
            Some("mutuelle-crm"),
            "mutuelle-crm-postgres-credentials",
        )
        .unwrap();
    assert_eq!(
        live["data"]["password"], "dGhlaXJz",
        "the client's value is kept"
    );
    assert!(
        live["data"]["postgres-password"]
            .as_str()
            .is_some_and(|v| !v.is_empty()),
        "the missing key is added: {live}"
    );
    assert!(
        live["metadata"]["labels"]
            .get("terroir.eu/generated")
            .is_none(),
        "a Secret terroir did not make is not labelled as generated"
    );
}

/// With an IngressClass, the public name gets an Ingress and, with the document's ACME CA, a
/// cert-manager Issuer for it. Without cert-manager in the cluster, apply says so and changes
/// nothing; with its Issuer type installed, both are applied (and the solver pods may answer).
#[test]
fn the_public_name_is_published_with_a_certificate_from_the_acme_ca() {
    let cluster = Cluster::start(Options::default());
    cluster.give_secrets();
    let doc = cluster.document(|t| {
        *t = t.replace(
            "      storageClass: ssd-encrypted\n",
            "      storageClass: ssd-encrypted\n      ingressClassName: nginx\n",
        )
    });

    let (code, _, stderr) = cluster.terroir(&["apply", "--no-wait"], &doc);
    assert_ne!(code, 0, "cert-manager is not installed: {stderr}");
    assert!(
        stderr.contains("cert-manager.io/v1")
            && stderr.contains("Issuer")
            && stderr.contains("CustomResourceDefinition"),
        "{stderr}"
    );
    assert!(
        names(&cluster.state(), "apps/v1", "Deployment").is_empty(),
        "nothing applied"
    );

    // cert-manager's Issuer type (its CRD, reduced to what the double needs)
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "issuers.cert-manager.io"},
        "spec": {"group": "cert-manager.io", "scope": "Namespaced", "names": {"kind": "Issuer", "plural": "issuers", "singular": "issuer", "listKind": "IssuerList"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}});
    ureq::post(&format!(
        "{}/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        cluster.server.url()
    ))
    .header("content-type", "application/json")
    .send(crd.to_string())
    .unwrap();
    let (code, _, stderr) = cluster.terroir(&["apply", "--no-wait"], &doc);
    assert_eq!(code, 0, "{stderr}");
    let issuer = cluster
        .state()
        .get(
            "cert-manager.io/v1",
            "Issuer",
            Some("mutuelle-crm"),
            "mutuelle-crm-acme",
        )
        .expect("the Issuer is applied");
    assert_eq!(
        issuer["spec"]["acme"]["server"],
        "https://acme.harica.gr/directory"
    );
    assert_eq!(
        issuer["spec"]["acme"]["solvers"][0]["http01"]["ingress"]["ingressClassName"],
        "nginx"
    );
    let ingress = cluster
        .state()
        .get(
            "networking.k8s.io/v1",
            "Ingress",
            Some("mutuelle-crm"),
            "mutuelle-crm-public",
        )
        .expect("the Ingress is applied");
    assert_eq!(
        ingress["metadata"]["annotations"]["cert-manager.io/issuer"],
        "mutuelle-crm-acme"
    );
    assert_eq!(
        ingress["spec"]["tls"][0],
        json!({"hosts": ["crm.mutuelle.example.fr"], "secretName": "mutuelle-crm-public-tls"})
    );
    assert_eq!(
        ingress["spec"]["rules"][0]["host"],
        "crm.mutuelle.example.fr"
    );
    let solver = cluster
        .state()
        .get(
            "networking.k8s.io/v1",
            "NetworkPolicy",
            Some("mutuelle-crm"),
            "mutuelle-crm-acme-solver",
        )
        .expect("the solver pods may answer");
    assert_eq!(
        solver["spec"]["podSelector"]["matchLabels"]["acme.cert-manager.io/http01-solver"],
        "true"
    );
    // the certificate's Secret is cert-manager's: terroir neither makes nor lists it as missing
    assert!(
        cluster
            .state()
            .get(
                "v1",
                "Secret",
                Some("mutuelle-crm"),
                "mutuelle-crm-public-tls"
            )
            .is_none()
    );
}

/// The Job controller and the pods' runtime, for the backup commands: it watches Jobs over HTTP
/// and, for each new one, writes the log its pod would print (a pod labelled `job-name`, whose
/// log the double serves) and sets its outcome from `decide` (None: completes; Some(message):
/// fails with it).
pub(crate) struct JobController {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl JobController {
    pub(crate) fn start(url: String, log: String, decide: fn(&str) -> Option<String>) -> Self {
        use std::io::BufRead;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let watch = ureq::get(&format!(
                "{url}/apis/batch/v1/namespaces/mutuelle-crm/jobs?watch=true&timeoutSeconds=600"
            ))
            .call()
            .unwrap();
            for line in std::io::BufReader::new(watch.into_body().into_reader()).lines() {
                if stopping.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let event: Value = serde_json::from_str(&line.unwrap()).unwrap();
                if event["type"] != "ADDED" {
                    continue;
                }
                let name = event["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                let pod = json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": format!("{name}-x1"), "labels": {"job-name": name}, "annotations": {terroir_kube_double::LOG_ANNOTATION: log}},
                    "spec": {"containers": [{"name": "c", "image": "i"}]},
                });
                ureq::post(&format!("{url}/api/v1/namespaces/mutuelle-crm/pods"))
                    .header("content-type", "application/json")
                    .send(pod.to_string())
                    .unwrap();
                let condition = match decide(&name) {
                    None => json!({"type": "Complete", "status": "True"}),
                    Some(message) => {
                        json!({"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": message})
                    }
                };
                let status = json!({"status": {"conditions": [condition]}});
                ureq::patch(&format!(
                    "{url}/apis/batch/v1/namespaces/mutuelle-crm/jobs/{name}/status"
                ))
                .header("content-type", "application/merge-patch+json")
                .send(status.to_string())
                .unwrap();
            }
        });
        JobController {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for JobController {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // the watch ends with the server; the thread is left to it
        drop(self.thread.take());
    }
}

/// The example applied to the double with the client's Secrets, and the database's volume (the
/// double makes no claims from a StatefulSet's templates).
pub(crate) fn applied_example() -> (Cluster, PathBuf) {
    let cluster = Cluster::start(Options::default());
    let doc = cluster.document(|_| {});
    cluster.give_secrets();
    let (code, _, stderr) = cluster.terroir(&["apply"], &doc);
    assert_eq!(code, 0, "{stderr}");
    let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data-mutuelle-crm-postgres-0"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "50Gi"}}}});
    ureq::post(&format!(
        "{}/api/v1/namespaces/mutuelle-crm/persistentvolumeclaims",
        cluster.server.url()
    ))
    .header("content-type", "application/json")
    .send(pvc.to_string())
    .unwrap();
    (cluster, doc)
}

pub(crate) fn jobs(state: &State) -> Vec<Value> {
    state.list("batch/v1", "Job")
}

#[test]
fn backup_now_runs_a_job_from_the_cronjob_and_reports_its_failure() {
    let (cluster, doc) = applied_example();
    let _controller = JobController::start(cluster.server.url(), String::new(), |name| {
        name.contains("-incr-")
            .then(|| "pgbackrest exited with 56".to_owned())
    });

    let (code, out, stderr) = cluster.terroir_then(&["backup", "now"], &doc, &["--type", "full"]);
    assert_eq!(code, 0, "{stderr}\n{out}");
    let job_name = out["backup"]["job"].as_str().unwrap().to_owned();
    assert!(job_name.starts_with("mutuelle-crm-backup-full-"), "{out}");
    let job = cluster
        .state()
        .get("batch/v1", "Job", Some("mutuelle-crm"), &job_name)
        .unwrap();
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["command"],
        json!(["/bin/sh", "/etc/pgbackrest/backup.sh", "full"])
    );
    assert_eq!(
        job["metadata"]["ownerReferences"][0]["name"], "mutuelle-crm-backup-full",
        "owned by its CronJob, as `kubectl create job --from` does"
    );
    assert_eq!(
        job["metadata"]["labels"]["terroir.eu/started-by"],
        "backup-now"
    );
    let volumes = job["spec"]["template"]["spec"]["volumes"].to_string();
    assert!(
        volumes.contains("mutuelle-crm-backup-tls") && volumes.contains("repo.conf"),
        "the CronJob's pod: {volumes}"
    );

    let (code, out, _) = cluster.terroir_then(&["backup", "now"], &doc, &["--type", "incr"]);
    assert_eq!(code, 2, "{out}");
    let error = out["error"].as_str().unwrap();
    assert!(
        error.contains("failed (BackoffLimitExceeded: pgbackrest exited with 56)")
            && error.contains("kubectl -n mutuelle-crm logs job/mutuelle-crm-backup-incr-"),
        "{error}"
    );
}

#[test]
fn backup_list_reads_the_repository_in_a_job() {
    let (cluster, doc) = applied_example();
    let info = r#"[{"archive":[{"database":{"id":1,"repo-key":1},"id":"15-1","max":"000000010000000000000005","min":"000000010000000000000001"}],"backup":[{"archive":{"start":"000000010000000000000003","stop":"000000010000000000000003"},"backrest":{"format":5,"version":"2.45"},"database":{"id":1,"repo-key":1},"database-ref":null,"error":false,"info":{"delta":23000000,"repository":{"delta":2900000,"size":2900000},"size":23000000},"label":"20261123-010203F","link":null,"lsn":{"start":"0/3000028","stop":"0/3000100"},"prior":null,"reference":null,"tablespace":null,"timestamp":{"start":1795482123,"stop":1795482130},"type":"full"}],"cipher":"aes-256-cbc","db":[{"id":1,"repo-key":1,"system-id":7300000000000000000,"version":"15"}],"name":"mutuelle-crm","repo":[{"cipher":"aes-256-cbc","key":1,"status":{"code":0,"message":"ok"}}],"status":{"code":0,"lock":{"backup":{"held":false}},"message":"ok"}}]"#;
    // A warning on standard error comes first in the pod's log.
    let log = format!("WARN: repo1: [FileMissingError] unable to load info file\n{info}\n");
    let _controller = JobController::start(cluster.server.url(), log, |_| None);
    let (code, out, stderr) = cluster.terroir(&["backup", "list"], &doc);
    assert_eq!(code, 0, "{stderr}\n{out}");
    assert_eq!(out["repository"]["stanza"], "mutuelle-crm", "{out}");
    assert_eq!(
        out["repository"]["backups"][0]["label"], "20261123-010203F",
        "{out}"
    );
    assert_eq!(out["repository"]["cipher"], "aes-256-cbc");
    assert!(
        jobs(&cluster.state()).is_empty(),
        "the one-off Job is removed: {:?}",
        jobs(&cluster.state())
    );
    let created: Vec<String> = cluster
        .state()
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/jobs"))
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(created.len(), 1, "one Job: {created:?}");
}

#[test]
fn backup_restore_checks_first_then_stops_restores_and_starts_postgres() {
    let (cluster, doc) = applied_example();
    let _controller = JobController::start(cluster.server.url(), String::new(), |_| None);
    let target = "2026-11-23 10:00:00+00";
    let replicas = |c: &Cluster| {
        c.state()
            .get(
                "apps/v1",
                "StatefulSet",
                Some("mutuelle-crm"),
                "mutuelle-crm-postgres",
            )
            .unwrap()["spec"]["replicas"]
            .clone()
    };

    // Without --replace, and as a dry run: nothing is created or scaled.
    cluster.state().clear_requests();
    let (code, out, _) = cluster.terroir_then(&["backup", "restore"], &doc, &["--to-time", target]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out["error"].as_str().unwrap().contains("Add --replace"),
        "{out}"
    );
    let (code, out, stderr) = cluster.terroir_then(
        &["backup", "restore"],
        &doc,
        &["--to-time", target, "--dry-run"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(out["report"]["steps"].as_array().unwrap().len(), 4, "{out}");
    assert!(cluster.writes().is_empty(), "{:?}", cluster.writes());
    let (code, out, _) = cluster.terroir_then(
        &["backup", "restore"],
        &doc,
        &["--to-time", "yesterday", "--replace"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out["error"]
            .as_str()
            .unwrap()
            .contains("expected `YYYY-MM-DD HH:MM:SS+00`"),
        "{out}"
    );

    let (code, out, stderr) = cluster.terroir_then(
        &["backup", "restore"],
        &doc,
        &["--to-time", target, "--replace"],
    );
    assert_eq!(code, 0, "{stderr}\n{out}");
    assert_eq!(out["report"]["targetTime"], target);
    // In order: the check Job, PostgreSQL to 0, the restore Job, PostgreSQL to 1.
    let writes: Vec<String> = cluster
        .writes()
        .into_iter()
        .filter(|w| w.contains("/jobs?") || w.contains("statefulsets/mutuelle-crm-postgres?"))
        .map(|w| w.split('?').next().unwrap().to_owned())
        .collect();
    assert_eq!(
        writes,
        [
            "POST /apis/batch/v1/namespaces/mutuelle-crm/jobs",
            "PATCH /apis/apps/v1/namespaces/mutuelle-crm/statefulsets/mutuelle-crm-postgres",
            "POST /apis/batch/v1/namespaces/mutuelle-crm/jobs",
            "PATCH /apis/apps/v1/namespaces/mutuelle-crm/statefulsets/mutuelle-crm-postgres",
        ]
    );
    assert_eq!(replicas(&cluster), json!(1));
    let all = jobs(&cluster.state());
    let check = all
        .iter()
        .find(|j| {
            j["metadata"]["name"]
                .as_str()
                .unwrap()
                .contains("-restore-check-")
        })
        .unwrap();
    let (_, epoch) = terroir::backup::hosts::parse_time(target).unwrap();
    assert_eq!(
        check["spec"]["template"]["spec"]["containers"][0]["command"],
        json!([
            "/bin/sh",
            "/etc/pgbackrest/restore-check.sh",
            target,
            epoch.to_string()
        ])
    );
    let restore = all
        .iter()
        .find(|j| {
            j["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("mutuelle-crm-restore-1")
        })
        .unwrap();
    let pod = &restore["spec"]["template"]["spec"];
    assert_eq!(
        pod["containers"][0]["command"],
        json!(["/bin/sh", "/etc/pgbackrest/restore.sh", target, "time"])
    );
    assert_eq!(
        pod["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "mutuelle-crm-postgres-0".replace("mutuelle", "data-mutuelle")
    );
    assert_eq!(pod["securityContext"]["runAsUser"], 999);
    assert_eq!(
        restore["metadata"]["labels"]["app.kubernetes.io/name"], "backup",
        "the backup jobs' NetworkPolicy applies to it"
    );
    // The Jobs terroir made pass the Kubernetes 1.33 schemas.
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = [check, restore]
        .iter()
        .enumerate()
        .map(|(i, job)| {
            let path = dir.path().join(format!("job-{i}.yaml"));
            std::fs::write(&path, job.to_string()).unwrap();
            path
        })
        .collect();
    let out = std::process::Command::new("kubernetes-validate")
        .args(["-k", "1.33.0", "--strict", "--no-warn"])
        .args(&files)
        .output()
        .expect("kubernetes-validate is installed (.ci/run does it)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Then `apply` meets no conflict over the replicas the restore set back.
    let (code, report, stderr) = cluster.terroir(&["apply"], &doc);
    assert_eq!(code, 0, "{stderr}\n{report}");
}

#[test]
fn a_restore_whose_check_fails_stops_nothing() {
    let (cluster, doc) = applied_example();
    let _controller = JobController::start(cluster.server.url(), String::new(), |name| {
        name.contains("-restore-check-")
            .then(|| "2020-01-01 00:00:00+00 is outside the window".to_owned())
    });
    cluster.state().clear_requests();
    let (code, out, _) = cluster.terroir_then(
        &["backup", "restore"],
        &doc,
        &["--to-time", "2020-01-01 00:00:00+00", "--replace"],
    );
    assert_eq!(code, 2, "{out}");
    let error = out["error"].as_str().unwrap();
    assert!(
        error.contains("outside the window") && error.contains("PostgreSQL was not stopped"),
        "{error}"
    );
    assert!(
        !cluster.writes().iter().any(|w| w.contains("statefulsets")),
        "{:?}",
        cluster.writes()
    );
}

/// One change at a time on a cluster: a Lease beside the ApplySet parent. Held by a run that
/// still renews it, the apply stops at once (exit 1) and names the holder; no longer renewed, it
/// is taken over with a message; a plan only says it is held. The apply gives it back at the end.
#[test]
fn a_platform_locked_by_another_run_is_refused_until_its_lease_lapses() {
    let cluster = Cluster::start(Options::default());
    cluster.give_secrets();
    let doc = cluster.document(|_| {});
    let url = cluster.server.url();
    let lease = |renewed: &str| {
        json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": "terroir-mutuelle-crm-lock",
                "annotations": {"terroir.eu/holder": json!({"user": "alice", "machine": "ops-7", "pid": 4242, "since": renewed, "command": "apply"}).to_string()},
            },
            "spec": {"holderIdentity": "alice@ops-7/4242", "leaseDurationSeconds": 60, "acquireTime": renewed, "renewTime": renewed},
        })
    };
    let now = terroir::text::now_rfc3339().replace('Z', ".000000Z");
    let leases = format!("{url}/apis/coordination.k8s.io/v1/namespaces/mutuelle-crm/leases");
    ureq::post(&leases)
        .header("content-type", "application/json")
        .send(lease(&now).to_string())
        .unwrap();

    let (code, out, stderr) = cluster.terroir(&["apply", "--no-wait"], &doc);
    assert_eq!(code, 1, "a held lock stops the apply: {out}\n{stderr}");
    assert!(
        stderr.contains("locked by `terroir apply` by alice on ops-7 (process 4242)"),
        "{stderr}"
    );
    assert_eq!(out["kind"], "locked", "{out}");
    assert_eq!(out["holder"]["machine"], "ops-7", "{out}");
    assert!(
        names(&cluster.state(), "apps/v1", "Deployment").is_empty(),
        "nothing applied"
    );

    // a plan runs beside it, and says so
    let (code, _, stderr) = cluster.terroir(&["plan"], &doc);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("is locked by `terroir apply` by alice"),
        "{stderr}"
    );

    // a holder that stopped renewing is taken over, with a message
    let old = "2026-01-01T00:00:00.000000Z";
    ureq::put(&format!("{leases}/terroir-mutuelle-crm-lock"))
        .header("content-type", "application/json")
        .send(lease(old).to_string())
        .unwrap();
    let (code, out, stderr) = cluster.terroir(&["apply", "--no-wait"], &doc);
    assert_eq!(code, 0, "{out}\n{stderr}");
    assert!(
        stderr.contains("taking over the lock of mutuelle-crm from `terroir apply` by alice")
            && stderr.contains("no longer renewed"),
        "{stderr}"
    );
    assert!(
        !names(&cluster.state(), "apps/v1", "Deployment").is_empty(),
        "applied"
    );
    assert!(
        cluster
            .state()
            .get(
                "coordination.k8s.io/v1",
                "Lease",
                Some("mutuelle-crm"),
                "terroir-mutuelle-crm-lock"
            )
            .is_none(),
        "released at the end"
    );
}

/// `terroir status` looks and changes nothing: before the apply every workload is pending, after
/// it (rollouts done) the platform is ready.
#[test]
fn status_says_what_is_not_rolled_out_yet() {
    let cluster = Cluster::start(Options::default());
    cluster.give_secrets();
    let doc = cluster.document(|_| {});
    cluster.state().clear_requests();
    let (code, before, _) = cluster.terroir(&["status"], &doc);
    assert_eq!(code, 2, "{before}");
    assert_eq!(before["ready"], false);
    assert!(
        before["pending"].as_array().unwrap().iter().any(|p| p
            .as_str()
            .unwrap()
            .contains("mutuelle-crm-postgres")
            && p.as_str().unwrap().contains("not found")),
        "{before}"
    );
    assert!(
        cluster.writes().is_empty(),
        "status wrote: {:?}",
        cluster.writes()
    );
    let (code, _, stderr) = cluster.terroir(&["apply"], &doc);
    assert_eq!(code, 0, "{stderr}");
    let (code, after, _) = cluster.terroir(&["status"], &doc);
    assert_eq!(code, 0, "{after}");
    assert_eq!(
        (
            after["platform"].as_str(),
            after["target"].as_str(),
            after["ready"].as_bool()
        ),
        (Some("mutuelle-crm"), Some("kubernetes"), Some(true)),
        "{after}"
    );
}

/// `database.replicas: 3`: Patroni's StatefulSet, the Role it needs and no more, the Services that
/// follow its role label, the members' names in PostgreSQL's certificate, every other workload
/// with two replicas or more and a PodDisruptionBudget; a second apply writes nothing, and going
/// back to one replica prunes what only the replicas needed.
#[test]
fn a_replicated_platform_applies_patroni_with_its_rbac_then_one_replica_prunes_it() {
    let cluster = Cluster::start(Options::default());
    cluster.give_secrets();
    let doc = cluster.document(|t| {
        *t = t.replace(
            "      sharedBuffers: 1GB\n",
            "      sharedBuffers: 1GB\n      replicas: 3\n",
        );
    });
    let (code, report, stderr) = cluster.terroir(&["apply"], &doc);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        report["missingSecrets"].as_array().unwrap().is_empty(),
        "{report}"
    );
    let state = cluster.state();
    let ns = Some("mutuelle-crm");
    let get = |api: &str, kind: &str, name: &str| {
        state
            .get(api, kind, ns, name)
            .unwrap_or_else(|| panic!("{kind} {name} was applied"))
    };

    // PostgreSQL: three members run by Patroni, which reaches the API with its own account.
    let pg = get("apps/v1", "StatefulSet", "mutuelle-crm-postgres");
    assert_eq!(pg["spec"]["replicas"], 3);
    let pod = &pg["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "mutuelle-crm-postgres");
    assert_eq!(pod["automountServiceAccountToken"], true);
    assert_eq!(
        pg["spec"]["template"]["metadata"]["labels"]["terroir.eu/patroni-cluster"],
        "mutuelle-crm-postgres"
    );
    let c = &pod["containers"][0];
    assert_eq!(
        c["command"],
        json!(["patroni", "/etc/postgresql/patroni.yml"])
    );
    assert!(
        c.get("lifecycle").is_none(),
        "Patroni's callbacks, not postStart: {c}"
    );
    let secret_keys: Vec<(&str, &str)> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            let r = &e["valueFrom"]["secretKeyRef"];
            Some((e["name"].as_str()?, r["key"].as_str()?))
        })
        .collect();
    for expected in [
        ("PATRONI_SUPERUSER_PASSWORD", "postgres-password"),
        ("PATRONI_REPLICATION_PASSWORD", "replication-password"),
        ("PATRONI_REWIND_PASSWORD", "rewind-password"),
    ] {
        assert!(secret_keys.contains(&expected), "{secret_keys:?}");
    }
    let zones: Vec<&str> = pod["topologySpreadConstraints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["topologyKey"].as_str().unwrap())
        .collect();
    assert_eq!(
        zones,
        ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
    );

    // Exactly the verbs Patroni's Kubernetes store uses, bound to PostgreSQL's account only.
    let role = get(
        "rbac.authorization.k8s.io/v1",
        "Role",
        "mutuelle-crm-postgres-patroni",
    );
    assert_eq!(
        role["rules"],
        json!([
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "get", "list", "patch", "watch"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "patch", "watch"]}
        ])
    );
    let binding = get(
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        "mutuelle-crm-postgres-patroni",
    );
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "mutuelle-crm-postgres", "namespace": "mutuelle-crm"}])
    );
    assert_eq!(binding["roleRef"]["name"], "mutuelle-crm-postgres-patroni");

    // Clients reach the primary; readers may use the standbys.
    let primary = get("v1", "Service", "mutuelle-crm-postgres");
    assert_eq!(
        primary["spec"]["selector"]["terroir.eu/postgres-role"],
        "master"
    );
    let replicas = get("v1", "Service", "mutuelle-crm-postgres-replicas");
    assert_eq!(
        replicas["spec"]["selector"]["terroir.eu/postgres-role"],
        "replica"
    );
    assert_eq!(
        get("v1", "Service", "mutuelle-crm-postgres-headless")["spec"]["publishNotReadyAddresses"],
        true
    );

    // The replication and pg_rewind roles' passwords are generated beside the others.
    let creds = get("v1", "Secret", "mutuelle-crm-postgres-credentials");
    let data = creds["data"].as_object().unwrap();
    let keys: Vec<&String> = data.keys().collect();
    assert_eq!(
        keys,
        [
            "password",
            "postgres-password",
            "replication-password",
            "rewind-password"
        ]
    );
    let values: std::collections::BTreeSet<&str> =
        data.values().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(values.len(), 4, "four different passwords");

    // Each member's name is in PostgreSQL's certificate (verify-full between members), and the
    // Service's names still are.
    let ca = get("v1", "Secret", "mutuelle-crm-ca");
    let tls = get("v1", "Secret", "mutuelle-crm-postgres-tls");
    let verifies = |name: &str| {
        verify(
            &base64_decode(ca["data"]["tls.crt"].as_str().unwrap()),
            &base64_decode(tls["data"]["tls.crt"].as_str().unwrap()),
            name,
        )
    };
    for i in 0..3 {
        let member =
            format!("mutuelle-crm-postgres-{i}.mutuelle-crm-postgres-headless.mutuelle-crm.svc");
        assert!(verifies(&member), "{member}");
    }
    assert!(verifies("mutuelle-crm-postgres.mutuelle-crm.svc"));
    assert!(!verifies(
        "mutuelle-crm-postgres-3.mutuelle-crm-postgres-headless.mutuelle-crm.svc"
    ));

    // Every other workload has two replicas or more, spread over zones, with a budget.
    let alertmanager = get("apps/v1", "Deployment", "mutuelle-crm-alertmanager");
    assert_eq!(alertmanager["spec"]["replicas"], 2);
    let args = alertmanager["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    assert!(
        args.contains("--cluster.peer=mutuelle-crm-alertmanager-members.mutuelle-crm.svc:9094")
            && args.contains("--cluster.tls-config=/etc/alertmanager/cluster.yml"),
        "{args}"
    );
    assert_eq!(
        get("apps/v1", "StatefulSet", "mutuelle-crm-prometheus")["spec"]["replicas"],
        2
    );
    assert_eq!(
        get("apps/v1", "StatefulSet", "mutuelle-crm-postfix")["spec"]["replicas"],
        2
    );
    assert!(
        state
            .get("apps/v1", "Deployment", ns, "mutuelle-crm-postfix")
            .is_none()
    );
    assert_eq!(
        get("apps/v1", "Deployment", "mutuelle-crm-app")["spec"]["replicas"],
        3
    );
    let mut budgets = names(&state, "policy/v1", "PodDisruptionBudget");
    budgets.sort();
    assert_eq!(
        budgets,
        [
            "mutuelle-crm-alertmanager",
            "mutuelle-crm-app",
            "mutuelle-crm-postfix",
            "mutuelle-crm-postgres",
            "mutuelle-crm-prometheus"
        ]
    );
    for b in state.list("policy/v1", "PodDisruptionBudget") {
        assert_eq!(b["spec"]["maxUnavailable"], 1, "{b}");
    }

    // A second apply writes nothing.
    let before = cluster.writes().len();
    let (code, report, stderr) = cluster.terroir(&["apply"], &doc);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        summary(&report, "create") + summary(&report, "update"),
        0,
        "{report}"
    );
    assert_eq!(
        cluster.writes().len(),
        before,
        "{:?}",
        &cluster.writes()[before..]
    );

    // A point-in-time restore of one pod's volume is refused for Patroni's members, untouched.
    cluster.state().clear_requests();
    let (code, out, _) = cluster.terroir_then(
        &["backup", "restore"],
        &doc,
        &["--to-time", "2026-11-23 14:05:00+00", "--replace"],
    );
    assert_eq!(code, 1, "{out}");
    let error = out["error"].as_str().unwrap();
    assert!(
        error.contains("3 members under Patroni") && error.contains("nothing was changed"),
        "{error}"
    );
    assert!(cluster.writes().is_empty(), "{:?}", cluster.writes());

    // Back to one replica: what only the replicas needed is pruned, the rest converges back.
    let doc = cluster.document(|_| {});
    let (code, report, stderr) = cluster.terroir(&["apply"], &doc);
    assert_eq!(code, 0, "{stderr}");
    let mut pruned: Vec<String> = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["action"] == "prune")
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap(),
                o["name"].as_str().unwrap()
            )
        })
        .collect();
    pruned.sort();
    assert_eq!(
        pruned,
        [
            "PodDisruptionBudget/mutuelle-crm-alertmanager",
            "PodDisruptionBudget/mutuelle-crm-postfix",
            "PodDisruptionBudget/mutuelle-crm-postgres",
            "PodDisruptionBudget/mutuelle-crm-prometheus",
            "Role/mutuelle-crm-postgres-patroni",
            "RoleBinding/mutuelle-crm-postgres-patroni",
            "Service/mutuelle-crm-alertmanager-members",
            "Service/mutuelle-crm-postfix-members",
            "Service/mutuelle-crm-postgres-replicas",
            "Service/mutuelle-crm-prometheus-members",
            "StatefulSet/mutuelle-crm-postfix",
        ],
        "{report}"
    );
    let state = cluster.state();
    assert_eq!(
        state
            .get("apps/v1", "StatefulSet", ns, "mutuelle-crm-postgres")
            .unwrap()["spec"]["replicas"],
        1
    );
    assert!(
        state
            .get("apps/v1", "Deployment", ns, "mutuelle-crm-postfix")
            .is_some()
    );
}
