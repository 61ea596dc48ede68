//! Every rendered Kubernetes manifest validates against the upstream Kubernetes 1.33 OpenAPI
//! schemas, strictly (unknown fields refused), with the kubernetes-validate tool.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::process::Command as Std;

use common::*;

const KUBERNETES_VERSION: &str = "1.33.0";

pub(crate) fn validate_dir(dir: &std::path::Path) -> usize {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in {}", dir.display());
    let out = Std::new("kubernetes-validate")
        .args(["-k", KUBERNETES_VERSION, "--strict", "--no-warn"])
        .args(&files)
        .output()
        .expect(
            "kubernetes-validate is installed (pip install kubernetes-validate; .ci/run does it)",
        );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "manifests fail the Kubernetes {KUBERNETES_VERSION} schemas:\n{text}"
    );
    assert!(!text.contains("ERROR"), "{text}");
    files.len()
}

#[test]
fn example_manifests_validate_against_kubernetes_1_33() {
    let tmp = tempfile::tempdir().unwrap();
    let out = render(&example("kubernetes.yaml"), tmp.path(), "out");
    let n = validate_dir(&out.join("kubernetes"));
    assert!(n >= 8, "expected the full platform, got {n} manifest files");
}

#[test]
fn minimal_variant_manifests_validate_against_kubernetes_1_33() {
    // External database, no backups, no monitoring: the conditional parts must stay valid too.
    let tmp = tempfile::tempdir().unwrap();
    let doc = variant("kubernetes.yaml", tmp.path(), "min.yaml", |t| {
        t.replace("    database:\n      version: 16\n", "    database:\n      external: {host: pg.mutuelle.example.fr, port: 5432}\n      version: 16\n")
            .replace("    backups:\n      schedule: \"30 2 * * *\"\n      retentionDays: 35\n", "    backups:\n      enabled: false\n")
            .replace("    monitoring:\n      retention: 30d\n      storage: 50Gi\n      alertEmails: [exploitation@mutuelle.example.fr]\n", "    monitoring:\n      enabled: false\n")
    });
    let out = render(&doc, tmp.path(), "out");
    validate_dir(&out.join("kubernetes"));
}

#[test]
fn tenant_manifests_validate_against_kubernetes_1_33() {
    // Two tenants: their namespaces, NetworkPolicies, and PostgreSQL's settings for them.
    let tmp = tempfile::tempdir().unwrap();
    let doc = variant("kubernetes.yaml", tmp.path(), "tenants.yaml", |t| {
        t.replace(
            "  endpoints:\n",
            "  tenants:\n    - name: alpha\n    - name: beta_co\n  endpoints:\n",
        )
    });
    let out = render(&doc, tmp.path(), "out");
    let tenants = std::fs::read_to_string(out.join("kubernetes/tenants.yaml")).unwrap();
    assert!(
        tenants.contains("name: \"mutuelle-crm-beta-co\"")
            && tenants.contains("terroir.eu/prune: never"),
        "{tenants}"
    );
    validate_dir(&out.join("kubernetes"));

    // The API audit policy is beside the manifests, never among them, and covers the tenants.
    let policy: serde_json::Value = serde_saphyr::from_str(
        &std::fs::read_to_string(out.join("kubernetes-audit/audit-policy.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (policy["apiVersion"].as_str(), policy["kind"].as_str()),
        (Some("audit.k8s.io/v1"), Some("Policy"))
    );
    let rules = policy["rules"].as_array().unwrap();
    assert_eq!(
        rules[0]["level"], "Metadata",
        "Secrets first, at Metadata: their values never reach the log"
    );
    assert_eq!(
        rules[0]["resources"][0]["resources"],
        serde_json::json!(["secrets"])
    );
    assert_eq!(
        rules[0]["namespaces"],
        serde_json::json!([
            "mutuelle-crm",
            "mutuelle-crm-node-exporter",
            "mutuelle-crm-alpha",
            "mutuelle-crm-beta-co"
        ])
    );
    let writes = rules
        .iter()
        .find(|r| r["level"] == "RequestResponse")
        .unwrap();
    assert_eq!(
        writes["verbs"],
        serde_json::json!(["create", "update", "patch", "delete", "deletecollection"])
    );
    assert!(rules.iter().all(|r| {
        ["None", "Metadata", "Request", "RequestResponse"].contains(&r["level"].as_str().unwrap())
    }));
}

#[test]
fn the_postgres_image_is_terroirs_with_pgaudit_and_pgbackrest() {
    let tmp = tempfile::tempdir().unwrap();
    let out = render(&example("kubernetes.yaml"), tmp.path(), "plain");
    let text = std::fs::read_to_string(out.join("kubernetes/postgres.yaml")).unwrap();
    assert!(
        text.contains("shared_preload_libraries = 'pgaudit'")
            && text.contains("pgaudit.role = 'terroir_auditor'")
            && text.contains("pgaudit.sql: |"),
        "{text}"
    );
    assert!(
        text.contains("archive_command = 'pgbackrest --stanza=mutuelle-crm archive-push %p'"),
        "{text}"
    );
    assert!(
        text.contains("image: \"registry.mutuelle.example.fr/terroir/postgres:16-bookworm\""),
        "the image built from images/postgres/Containerfile"
    );
    assert!(!text.contains("library/postgres"));
    // The image's Containerfile installs what the settings load.
    let containerfile =
        std::fs::read_to_string(root().join("images/postgres/Containerfile")).unwrap();
    assert!(
        containerfile.contains("FROM ${BASE}")
            && containerfile
                .contains("postgresql-15 postgresql-15-pgaudit pgbackrest patroni ca-certificates"),
        "{containerfile}"
    );
    // Without backups, no archiving and no pgBackRest sidecar.
    let doc = variant("kubernetes.yaml", tmp.path(), "nobackups.yaml", |t| {
        without_backups(&t)
    });
    let out = render(&doc, tmp.path(), "nobackups");
    let text = std::fs::read_to_string(out.join("kubernetes/postgres.yaml")).unwrap();
    assert!(
        !text.contains("archive_mode") && !text.contains("pgbackrest"),
        "{text}"
    );
    assert!(
        !out.join("kubernetes/backup.yaml").exists()
            || std::fs::read_to_string(out.join("kubernetes/backup.yaml"))
                .unwrap()
                .trim()
                .is_empty()
    );
    validate_dir(&out.join("kubernetes"));
}

#[test]
fn public_ingress_manifests_validate_against_kubernetes_1_33() {
    // The application published through an IngressClass, its certificate from the ACME CA: the
    // Ingress and the NetworkPolicy of cert-manager's solver pods are checked here (the Issuer is
    // cert-manager's type, which these schemas do not hold).
    let tmp = tempfile::tempdir().unwrap();
    let doc = variant("kubernetes.yaml", tmp.path(), "ingress.yaml", |t| {
        t.replace(
            "      storageClass: ssd-encrypted\n",
            "      storageClass: ssd-encrypted\n      ingressClassName: nginx\n",
        )
    });
    let out = render(&doc, tmp.path(), "out");
    let ingress = std::fs::read_to_string(out.join("kubernetes/ingress.yaml")).unwrap();
    assert!(
        ingress.contains("kind: Ingress") && ingress.contains("kind: Issuer"),
        "{ingress}"
    );
    validate_dir(&out.join("kubernetes"));
    // without an IngressClass, nothing is published: the application stays a ClusterIP Service
    let plain = render(&example("kubernetes.yaml"), tmp.path(), "plain");
    assert!(!plain.join("kubernetes/ingress.yaml").exists());
}

/// Prometheus and Grafana serve HTTPS only on a cluster, and Grafana verifies Prometheus.
#[test]
fn prometheus_and_grafana_serve_https_only() {
    let tmp = tempfile::tempdir().unwrap();
    let out = render(&example("kubernetes.yaml"), tmp.path(), "out");
    let docs = |f: &str| -> Vec<serde_json::Value> {
        serde_saphyr::from_multiple(
            &std::fs::read_to_string(out.join("kubernetes").join(f)).unwrap(),
        )
        .unwrap()
    };
    let prometheus = docs("prometheus.yaml");
    let sts = prometheus
        .iter()
        .find(|d| d["kind"] == "StatefulSet")
        .unwrap();
    let c = &sts["spec"]["template"]["spec"]["containers"][0];
    assert!(
        c["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--web.config.file=/etc/prometheus/web.yml"),
        "{c}"
    );
    assert_eq!(c["readinessProbe"]["httpGet"]["scheme"], "HTTPS");
    let conf = prometheus
        .iter()
        .find(|d| d["kind"] == "ConfigMap")
        .unwrap()["data"]["prometheus.yml"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        conf.contains("job_name: \"prometheus\"\n    scheme: https"),
        "Prometheus scrapes itself over HTTPS: {conf}"
    );
    let grafana = docs("grafana.yaml");
    let deploy = grafana.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let c = &deploy["spec"]["template"]["spec"]["containers"][0];
    let env: Vec<(String, String)> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["value"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert!(
        env.contains(&("GF_SERVER_PROTOCOL".into(), "h2".into())),
        "{env:?}"
    );
    assert_eq!(c["readinessProbe"]["httpGet"]["scheme"], "HTTPS");
    let datasource =
        grafana.iter().find(|d| d["kind"] == "ConfigMap").unwrap()["data"]["prometheus.yaml"]
            .as_str()
            .unwrap()
            .to_owned();
    assert!(
        datasource.contains("url: https://mutuelle-crm-prometheus:9090")
            && datasource.contains("tlsCACert: $__file{/etc/grafana-ca/ca.crt}"),
        "{datasource}"
    );
}
