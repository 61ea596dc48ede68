//! Rendered configuration files are accepted by the real tools that will read them: nftables,
//! Prometheus (promtool, its web configurations included) and Alertmanager (amtool), for hosts and
//! for Kubernetes ConfigMaps.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::Path;
use std::process::Command as Std;

use common::*;

fn run_ok(cmd: &mut Std, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run ({e}); .ci/run installs it"));
    assert!(
        out.status.success(),
        "{what} refused the rendered file:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// promtool resolves `rule_files` as written; point them at a copy of the rules.
fn check_prometheus(prometheus_yml: &str, rules: &str, dir: &Path) {
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::write(dir.join("rules/terroir.yml"), rules).unwrap();
    let conf = prometheus_yml.replace(
        "/etc/prometheus/rules/*.yml",
        &format!("{}/rules/*.yml", dir.display()),
    );
    assert_ne!(
        conf, prometheus_yml,
        "the rules path was found and replaced"
    );
    std::fs::write(dir.join("prometheus.yml"), conf).unwrap();
    run_ok(
        Std::new("promtool")
            .arg("check")
            .arg("config")
            .arg(dir.join("prometheus.yml")),
        "promtool check config",
    );
}

#[test]
fn host_configs_pass_nft_promtool_and_amtool() {
    let tmp = tempfile::tempdir().unwrap();
    let out = render(&example("baremetal.yaml"), tmp.path(), "out");
    let hosts = out.join("baremetal/hosts");
    let mut checked = 0;
    for host in ["app1", "db1", "ops1"] {
        run_ok(
            Std::new("nft")
                .arg("-c")
                .arg("-f")
                .arg(hosts.join(host).join("nftables.conf")),
            "nft -c",
        );
        checked += 1;
    }
    let ops = hosts.join("ops1");
    let read = |f: &str| std::fs::read_to_string(ops.join(f)).unwrap();
    check_prometheus(
        &read("prometheus.yml"),
        &read("terroir-rules.yml"),
        &tmp.path().join("prom"),
    );
    run_ok(
        Std::new("amtool")
            .arg("check-config")
            .arg(ops.join("alertmanager.yml")),
        "amtool check-config",
    );
    assert_eq!(checked, 3);

    // Every host's HTTPS settings (the exporters, Prometheus, Alertmanager: their protocol floor
    // and cipher suites by Go's names) load with a key pair terroir issues.
    let ca = terroir::pki::new_ca("acme-crm").unwrap();
    let issued =
        terroir::pki::issue_server("acme-crm", &ca.key_pem, &["ops1".to_owned()], "test").unwrap();
    let tls = tmp.path().join("host-tls");
    std::fs::create_dir_all(&tls).unwrap();
    std::fs::write(tls.join("host.crt"), &issued.cert_pem).unwrap();
    std::fs::write(tls.join("host.key"), &issued.key_pem).unwrap();
    for host in ["app1", "db1", "ops1"] {
        let web = tmp.path().join(format!("web-{host}.yml"));
        std::fs::write(
            &web,
            std::fs::read_to_string(hosts.join(host).join("web.yml"))
                .unwrap()
                .replace("/etc/acme-crm/tls", &tls.display().to_string()),
        )
        .unwrap();
        run_ok(
            Std::new("promtool")
                .arg("check")
                .arg("web-config")
                .arg(&web),
            &format!("promtool check web-config ({host})"),
        );
    }
}

#[test]
fn kubernetes_configmaps_pass_promtool_and_amtool() {
    configmaps_pass_promtool_and_amtool("kubernetes.yaml");
}

/// With replicas: Prometheus finds each member of Prometheus, Alertmanager, PostgreSQL and Postfix
/// through DNS, and Alertmanager's gossip TLS settings are a web configuration promtool loads.
#[test]
fn kubernetes_ha_configmaps_pass_promtool_and_amtool() {
    configmaps_pass_promtool_and_amtool("kubernetes-ha.yaml");
}

fn configmaps_pass_promtool_and_amtool(example_name: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let out = render(&example(example_name), tmp.path(), "out");
    let data = |file: &str, key: &str| -> String {
        let text = std::fs::read_to_string(out.join("kubernetes").join(file)).unwrap();
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
        docs.iter()
            .find_map(|d| d["data"][key].as_str().map(str::to_owned))
            .unwrap_or_else(|| panic!("{file} has no ConfigMap key {key}"))
    };
    check_prometheus(
        &data("prometheus.yaml", "prometheus.yml"),
        &data("prometheus.yaml", "terroir.yml"),
        &tmp.path().join("prom"),
    );
    let am = tmp.path().join("alertmanager.yml");
    std::fs::write(&am, data("alertmanager.yaml", "alertmanager.yml")).unwrap();
    run_ok(
        Std::new("amtool").arg("check-config").arg(&am),
        "amtool check-config",
    );

    // The exporters' and Alertmanager's HTTPS settings load a key pair terroir issues.
    let ca = terroir::pki::new_ca("demo").unwrap();
    let issued = terroir::pki::issue_server(
        "demo",
        &ca.key_pem,
        &["demo-alertmanager".to_owned()],
        "test",
    )
    .unwrap();
    let tls = tmp.path().join("web-tls");
    std::fs::create_dir_all(&tls).unwrap();
    std::fs::write(tls.join("tls.crt"), &issued.cert_pem).unwrap();
    std::fs::write(tls.join("tls.key"), &issued.key_pem).unwrap();
    for file in [
        "prometheus.yaml",
        "alertmanager.yaml",
        "postgres.yaml",
        "node-exporter.yaml",
        "backup.yaml",
    ] {
        let web = tmp.path().join(format!("web-{file}"));
        std::fs::write(
            &web,
            data(file, "web.yml").replace("/etc/web-tls", &tls.display().to_string()),
        )
        .unwrap();
        run_ok(
            Std::new("promtool")
                .arg("check")
                .arg("web-config")
                .arg(&web),
            &format!("promtool check web-config ({file})"),
        );
    }
    let prometheus = data("prometheus.yaml", "prometheus.yml");
    if example_name.contains("-ha") {
        for sd in [
            "mutuelle-crm-prometheus-members.mutuelle-crm.svc",
            "mutuelle-crm-alertmanager-members.mutuelle-crm.svc",
            "mutuelle-crm-postgres-headless.mutuelle-crm.svc",
            "mutuelle-crm-postfix-members.mutuelle-crm.svc",
        ] {
            assert!(
                prometheus.contains(&format!("names: [\"{sd}\"]")),
                "{sd}: {prometheus}"
            );
        }
        // The gossip's server half is exporter-toolkit's web configuration, as promtool reads it;
        // the client half (tls_client_config) is Prometheus's own tls_config.
        let cluster = data("alertmanager.yaml", "cluster.yml");
        let (server_half, client) = cluster.split_once("tls_client_config:").unwrap();
        let ca_file = tls.join("ca.crt");
        std::fs::write(&ca_file, &ca.cert_pem).unwrap();
        let server = tmp.path().join("cluster-server.yml");
        std::fs::write(
            &server,
            server_half
                .replace("/etc/web-tls", &tls.display().to_string())
                .replace("/etc/cluster-ca/ca.crt", &ca_file.display().to_string()),
        )
        .unwrap();
        run_ok(
            Std::new("promtool")
                .arg("check")
                .arg("web-config")
                .arg(&server),
            "promtool check web-config (Alertmanager's gossip)",
        );
        assert!(
            client.contains("server_name: mutuelle-crm-alertmanager")
                && client.contains("cert_file: /etc/web-tls/tls.crt"),
            "{client}"
        );
    } else {
        assert!(!prometheus.contains("dns_sd_configs:\n        - names: [\"mutuelle-crm-postgres"));
    }
}

/// The Kubernetes backup alerts, run by promtool against the exporter's series: the age of the
/// newest backup past the schedules' threshold (26 h for the example's daily incremental) fires
/// BackupTooOld; a fresh one does not; no series at all fires BackupMissing after 26 h.
#[test]
fn kubernetes_backup_alerts_follow_the_schedule() {
    let tmp = tempfile::tempdir().unwrap();
    let out = render(&example("kubernetes.yaml"), tmp.path(), "out");
    let text = std::fs::read_to_string(out.join("kubernetes/prometheus.yaml")).unwrap();
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
    let rules = docs
        .iter()
        .find_map(|d| d["data"]["terroir.yml"].as_str().map(str::to_owned))
        .unwrap();
    assert!(
        rules.contains("> 93600"),
        "26 h for a daily incremental schedule: {rules}"
    );
    std::fs::write(tmp.path().join("rules.yml"), rules).unwrap();
    let test = r#"rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'pgbackrest_backup_since_last_completion_seconds{stanza="mutuelle-crm",backup_type="incr"}'
        values: '94000+60x30'
      - series: 'pgbackrest_backup_since_last_completion_seconds{stanza="mutuelle-crm",backup_type="full"}'
        values: '500000+60x30'
    alert_rule_test:
      - eval_time: 15m
        alertname: BackupTooOld
        exp_alerts:
          - exp_labels: {severity: critical, stanza: mutuelle-crm}
            exp_annotations:
              summary: "The last successful backup of mutuelle-crm is older than 26h (schedules: full `30 1 * * 0`, incremental `30 2 * * *`)"
      - eval_time: 15m
        alertname: BackupMissing
        exp_alerts: []
  - interval: 1m
    input_series:
      - series: 'pgbackrest_backup_since_last_completion_seconds{stanza="mutuelle-crm",backup_type="incr"}'
        values: '3600+60x30'
    alert_rule_test:
      - eval_time: 15m
        alertname: BackupTooOld
        exp_alerts: []
  - interval: 10m
    input_series:
      - series: 'up{job="pgbackrest"}'
        values: '1x200'
    alert_rule_test:
      - eval_time: 27h
        alertname: BackupMissing
        exp_alerts:
          - exp_labels: {severity: critical, stanza: mutuelle-crm}
            exp_annotations:
              summary: "No backup of mutuelle-crm is known (none for 26h): check `terroir backup list` and the logs of the mutuelle-crm-backup-* jobs"
"#;
    std::fs::write(tmp.path().join("test.yml"), test).unwrap();
    run_ok(
        Std::new("promtool")
            .arg("test")
            .arg("rules")
            .arg(tmp.path().join("test.yml")),
        "promtool test rules",
    );
}
