//! High availability on Kubernetes, as rendered: `database.replicas` of 2 or more gives Patroni's
//! StatefulSet (its settings within Patroni's minimums, pgaudit and encrypted WAL archiving kept),
//! and every other workload with replicas spread over zones and a PodDisruptionBudget, all valid
//! against the Kubernetes 1.33 schemas. No third-party CRD is used, so there is no other schema.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::Path;

use common::*;
use serde_json::Value;

fn docs(out: &Path, file: &str) -> Vec<Value> {
    serde_saphyr::from_multiple(
        &std::fs::read_to_string(out.join("kubernetes").join(file)).unwrap(),
    )
    .unwrap()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn ha_render(tmp: &Path) -> std::path::PathBuf {
    render(&example("kubernetes-ha.yaml"), tmp, "ha")
}

#[test]
fn the_ha_example_validates_against_kubernetes_1_33() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ha_render(tmp.path());
    let n = crate::schema::validate_dir(&out.join("kubernetes"));
    assert!(n >= 8, "{n} files");
}

#[test]
fn patroni_runs_postgresql_within_its_minimums_keeping_pgaudit_and_encrypted_archiving() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ha_render(tmp.path());
    let pg = docs(&out, "postgres.yaml");
    let config = &find(&pg, "ConfigMap", "mutuelle-crm-postgres-config")["data"];
    let patroni: Value = serde_saphyr::from_str(config["patroni.yml"].as_str().unwrap()).unwrap();

    // Patroni's own rules for its timings.
    let dcs = &patroni["bootstrap"]["dcs"];
    let (ttl, loop_wait, retry) = (
        dcs["ttl"].as_u64().unwrap(),
        dcs["loop_wait"].as_u64().unwrap(),
        dcs["retry_timeout"].as_u64().unwrap(),
    );
    assert!(ttl >= 20 && loop_wait + 2 * retry <= ttl, "{dcs}");
    assert_eq!(dcs["synchronous_mode"], true, "the default with replicas");
    assert_eq!(dcs["postgresql"]["parameters"]["max_connections"], 300);

    // The Kubernetes store finds the members by the pod template's labels, and labels the
    // primary as the Service selects it.
    let k8s = &patroni["kubernetes"];
    assert_eq!(k8s["use_endpoints"], false);
    let sts = find(&pg, "StatefulSet", "mutuelle-crm-postgres");
    let labels = &sts["spec"]["template"]["metadata"]["labels"];
    for (k, v) in k8s["labels"].as_object().unwrap() {
        assert_eq!(&labels[k], v, "{k}");
    }
    assert_eq!(
        labels[k8s["scope_label"].as_str().unwrap()],
        patroni["scope"]
    );
    let role_label = k8s["role_label"].as_str().unwrap();
    let service = find(&pg, "Service", "mutuelle-crm-postgres");
    assert_eq!(
        service["spec"]["selector"][role_label],
        k8s["leader_label_value"]
    );
    let readers = find(&pg, "Service", "mutuelle-crm-postgres-replicas");
    assert_eq!(
        readers["spec"]["selector"][role_label],
        k8s["follower_label_value"]
    );

    // TLS between members, and for the REST API; pgaudit and the encrypted WAL archive stay in
    // the settings Patroni includes.
    assert_eq!(patroni["restapi"]["verify_client"], "required");
    assert_eq!(patroni["restapi"]["cafile"], "/etc/postgresql-tls/ca.crt");
    for role in ["replication", "rewind"] {
        assert_eq!(
            patroni["postgresql"]["authentication"][role]["sslmode"], "verify-full",
            "{role}"
        );
    }
    assert_eq!(
        patroni["postgresql"]["custom_conf"],
        "/etc/postgresql/postgresql.conf"
    );
    assert_eq!(
        patroni["postgresql"]["parameters"]["hba_file"],
        "/etc/postgresql/pg_hba.conf"
    );
    let conf = config["postgresql.conf"].as_str().unwrap();
    assert!(
        conf.contains("shared_preload_libraries = 'pgaudit'")
            && conf
                .contains("archive_command = 'pgbackrest --stanza=mutuelle-crm archive-push %p'")
            && conf.contains("ssl = on"),
        "{conf}"
    );
    let hba = config["pg_hba.conf"].as_str().unwrap();
    assert!(
        hba.contains("hostssl replication   \"terroir_replication\"   0.0.0.0/0   scram-sha-256"),
        "{hba}"
    );
    assert!(
        !hba.lines().any(|l| l.starts_with("host ")),
        "no connection without TLS: {hba}"
    );
    // The secrets are in the environment, from the Secret, never in the ConfigMap.
    assert!(!config.to_string().contains("password:"), "{config}");
    // Every member's name is what the others verify.
    let c = &sts["spec"]["template"]["spec"]["containers"][0];
    // Patroni keeps PostgreSQL up; a standby still copying the primary must not be killed.
    assert!(c.get("livenessProbe").is_none(), "{c}");
    assert!(c.get("readinessProbe").is_some(), "{c}");
    let connect = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "PATRONI_POSTGRESQL_CONNECT_ADDRESS")
        .unwrap();
    assert_eq!(
        connect["value"],
        "$(PATRONI_NAME).mutuelle-crm-postgres-headless.mutuelle-crm.svc:5432"
    );
    // The image's entrypoint is not used; Patroni's callbacks set the passwords on the primary.
    let sync = config["sync-passwords.sh"].as_str().unwrap();
    assert!(sync.contains("pg_is_in_recovery()"), "{sync}");
    assert_eq!(
        patroni["postgresql"]["callbacks"]["on_role_change"],
        "/bin/sh /etc/postgresql/sync-passwords.sh"
    );
}

#[test]
fn asynchronous_replicas_turn_synchronous_mode_off() {
    let tmp = tempfile::tempdir().unwrap();
    let doc = variant("kubernetes-ha.yaml", tmp.path(), "async.yaml", |t| {
        t.replace(
            "      # two replicas or more)\n      replicas: 3\n",
            "      replicas: 2\n      synchronous: false\n",
        )
    });
    let out = render(&doc, tmp.path(), "async");
    let pg = docs(&out, "postgres.yaml");
    let config = &find(&pg, "ConfigMap", "mutuelle-crm-postgres-config")["data"];
    let patroni: Value = serde_saphyr::from_str(config["patroni.yml"].as_str().unwrap()).unwrap();
    assert_eq!(patroni["bootstrap"]["dcs"]["synchronous_mode"], false);
    assert_eq!(
        find(&pg, "StatefulSet", "mutuelle-crm-postgres")["spec"]["replicas"],
        2
    );
    crate::schema::validate_dir(&out.join("kubernetes"));
}

/// Each workload with replicas: spread over zones then nodes, and a budget of one pod down.
#[test]
fn every_replicated_workload_spreads_over_zones_with_a_disruption_budget() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ha_render(tmp.path());
    for (file, kind, name, app, at_least) in [
        (
            "postgres.yaml",
            "StatefulSet",
            "mutuelle-crm-postgres",
            "postgres",
            3,
        ),
        (
            "alertmanager.yaml",
            "Deployment",
            "mutuelle-crm-alertmanager",
            "alertmanager",
            2,
        ),
        (
            "prometheus.yaml",
            "StatefulSet",
            "mutuelle-crm-prometheus",
            "prometheus",
            2,
        ),
        (
            "postfix.yaml",
            "StatefulSet",
            "mutuelle-crm-postfix",
            "postfix",
            2,
        ),
        ("app.yaml", "Deployment", "mutuelle-crm-app", "app", 2),
    ] {
        let d = docs(&out, file);
        let w = find(&d, kind, name);
        assert!(
            w["spec"]["replicas"].as_u64().unwrap() >= at_least,
            "{name}"
        );
        let spread = w["spec"]["template"]["spec"]["topologySpreadConstraints"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} has no spread constraints"));
        for key in ["topology.kubernetes.io/zone", "kubernetes.io/hostname"] {
            let c = spread
                .iter()
                .find(|c| c["topologyKey"] == key)
                .unwrap_or_else(|| panic!("{name}: no {key}"));
            assert_eq!(c["whenUnsatisfiable"], "ScheduleAnyway");
            assert_eq!(
                c["labelSelector"]["matchLabels"]["app.kubernetes.io/name"],
                app
            );
        }
        let pdb = find(&d, "PodDisruptionBudget", name);
        assert_eq!(pdb["spec"]["maxUnavailable"], 1);
        assert_eq!(
            pdb["spec"]["selector"]["matchLabels"], w["spec"]["selector"]["matchLabels"],
            "{name}"
        );
    }
    // The queue of each Postfix is its own volume.
    let postfix = docs(&out, "postfix.yaml");
    assert!(!postfix.iter().any(|d| d["kind"] == "PersistentVolumeClaim"));
    let sts = find(&postfix, "StatefulSet", "mutuelle-crm-postfix");
    assert_eq!(
        sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"],
        "spool"
    );
}

/// The members reach each other: replication and Patroni's REST API, Alertmanager's gossip.
#[test]
fn network_policies_let_the_members_reach_each_other() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ha_render(tmp.path());
    let np = docs(&out, "networkpolicies.yaml");
    let ports_between = |policy: &str, app: &str, dir: &str| -> Vec<u64> {
        let p = find(&np, "NetworkPolicy", policy);
        let (rules, peer) = if dir == "ingress" {
            ("ingress", "from")
        } else {
            ("egress", "to")
        };
        p["spec"][rules]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r[peer].as_array().is_some_and(|peers| {
                    peers
                        .iter()
                        .any(|x| x["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == app)
                })
            })
            .flat_map(|r| r["ports"].as_array().unwrap().iter())
            .map(|p| p["port"].as_u64().unwrap())
            .collect()
    };
    for dir in ["ingress", "egress"] {
        assert_eq!(
            ports_between("mutuelle-crm-postgres", "postgres", dir),
            [5432, 8008],
            "{dir}"
        );
        assert_eq!(
            ports_between("mutuelle-crm-alertmanager", "alertmanager", dir),
            [9094],
            "{dir}"
        );
    }
    // Patroni reaches the API servers.
    let pg = find(&np, "NetworkPolicy", "mutuelle-crm-postgres");
    assert!(
        pg["spec"]["egress"].to_string().contains("6443"),
        "{}",
        pg["spec"]["egress"]
    );
}

/// One replica stays as it was: no Patroni, no RBAC, one pod of each.
#[test]
fn one_replica_renders_no_patroni() {
    let tmp = tempfile::tempdir().unwrap();
    let out = render(&example("kubernetes.yaml"), tmp.path(), "one");
    for (name, bytes) in read_tree(&out.join("kubernetes")) {
        let text = String::from_utf8(bytes).unwrap();
        assert!(!text.to_lowercase().contains("patroni"), "{name}");
        assert!(
            !text.contains("PodDisruptionBudget") || name == "app.yaml",
            "{name}"
        );
        assert!(!text.contains("kind: Role"), "{name}");
    }
}

/// Patroni itself (`patroni --validate-config`, PyPI's Patroni 4.1) accepts the rendered settings,
/// with the environment the pod gives it; the same file with a ttl under its minimum is refused.
#[test]
fn patroni_validates_the_rendered_configuration() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ha_render(tmp.path());
    let pg = docs(&out, "postgres.yaml");
    let text = find(&pg, "ConfigMap", "mutuelle-crm-postgres-config")["data"]["patroni.yml"]
        .as_str()
        .unwrap()
        // the binaries of the PostgreSQL installed here, not the image's (16)
        .replace(
            "bin_dir: /usr/lib/postgresql/16/bin",
            &format!("bin_dir: {}", crate::common::pg::bin_dir().display()),
        );
    let validate = |text: &str| {
        let path = tmp.path().join("patroni.yml");
        std::fs::write(&path, text).unwrap();
        std::process::Command::new("python3")
            .args(["-m", "patroni", "--validate-config"])
            .arg(&path)
            .env("PATRONI_NAME", "mutuelle-crm-postgres-0")
            .env(
                "PATRONI_POSTGRESQL_CONNECT_ADDRESS",
                "mutuelle-crm-postgres-0.mutuelle-crm-postgres-headless.mutuelle-crm.svc:5432",
            )
            .env(
                "PATRONI_RESTAPI_CONNECT_ADDRESS",
                "mutuelle-crm-postgres-0.mutuelle-crm-postgres-headless.mutuelle-crm.svc:8008",
            )
            .output()
            .expect("python3 runs (Patroni: pip install patroni; scripts/test does it)")
    };
    let out = validate(&text);
    assert!(
        out.status.success(),
        "Patroni refuses the rendered patroni.yml (is it installed? pip install patroni):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let short = text.replace("ttl: 30", "ttl: 15");
    assert_ne!(short, text);
    let out = validate(&short);
    assert!(!out.status.success());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("bootstrap.dcs.ttl 15"), "{said}");
}
