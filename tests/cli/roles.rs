//! Roles carried by two hosts (mta, monitoring, app): what is rendered for them, read by the
//! real tools, and the Alertmanager cluster's gossip over mutual TLS formed on the loopback.
#![allow(clippy::unwrap_used)]

use crate::common;
use crate::tls::{Running, listening, open_dir, spawn};

use std::path::Path;
use std::process::Command as Std;
use std::time::Duration;

use common::*;

fn rendered(tmp: &Path) -> std::path::PathBuf {
    let doc = variant("baremetal.yaml", tmp, "ha.yaml", |t| two_hosts_per_role(&t));
    render(&doc, tmp, "out").join("baremetal")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn two_hosts_per_role_render_a_cluster_every_mta_and_a_rollout() {
    let tmp = tempfile::tempdir().unwrap();
    let out = rendered(tmp.path());
    let hosts = out.join("hosts");
    for (me, other) in [("web1", "198.18.0.13"), ("web2", "198.18.0.12")] {
        let dir = hosts.join(me);
        let address = if me == "web1" {
            "198.18.0.12"
        } else {
            "198.18.0.13"
        };
        // each Prometheus sends to both Alertmanagers, and promtool accepts it
        let prometheus = read(&dir.join("prometheus.yml"));
        assert!(
            prometheus.contains(r#"- targets: ["198.18.0.12:9093", "198.18.0.13:9093"]"#),
            "{prometheus}"
        );
        let checked = tmp.path().join(format!("prometheus-{me}"));
        std::fs::create_dir_all(checked.join("rules")).unwrap();
        std::fs::write(
            checked.join("rules/terroir.yml"),
            read(&dir.join("terroir-rules.yml")),
        )
        .unwrap();
        std::fs::write(
            checked.join("prometheus.yml"),
            prometheus.replace(
                "/etc/prometheus/rules/*.yml",
                &format!("{}/rules/*.yml", checked.display()),
            ),
        )
        .unwrap();
        let check = Std::new("promtool")
            .args(["check", "config"])
            .arg(checked.join("prometheus.yml"))
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
        // each member gossips with the other over TLS, and mails through its own Postfix
        let args = read(&dir.join("prometheus-alertmanager.default"));
        assert!(
            args.contains(&format!("--cluster.listen-address={address}:9094 --cluster.advertise-address={address}:9094 --cluster.peer={other}:9094 --cluster.tls-config=/etc/acme-crm/tls/alertmanager-cluster.yml ")),
            "{args}"
        );
        let am = read(&dir.join("alertmanager.yml"));
        assert!(
            am.contains(&format!("smtp_smarthost: \"{address}:25\"")),
            "{am}"
        );
        let check = Std::new("amtool")
            .arg("check-config")
            .arg(dir.join("alertmanager.yml"))
            .output()
            .unwrap();
        assert!(check.status.success());
        // each MTA host signs under a DKIM selector of its own, for the key made there
        let dkim = read(&dir.join("opendkim.conf"));
        assert!(
            dkim.contains(&format!("Selector                acme2026-{me}\n"))
                && dkim.contains(&format!(
                    "KeyFile                 /etc/opendkim/keys/acme2026-{me}.private\n"
                )),
            "{dkim}"
        );
        // the application knows every MTA, the first as SMTP_HOST
        let env = read(&dir.join("app.env"));
        assert!(
            env.contains("SMTP_HOST=198.18.0.12\n")
                && env.contains("SMTP_HOSTS=198.18.0.12,198.18.0.13\n"),
            "{env}"
        );
    }
    let plan: serde_json::Value = serde_json::from_str(&read(&out.join("plan.json"))).unwrap();
    for h in plan["hosts"].as_array().unwrap() {
        let name = h["name"].as_str().unwrap();
        // the application is rolled out one host at a time, checked on its health path
        if name == "db1" {
            assert!(h.get("rollout").is_none(), "{h:#}");
        } else {
            assert_eq!(
                h["rollout"],
                serde_json::json!({"service": "acme-crm-app", "healthPort": 8080, "healthPath": "/healthz"})
            );
        }
        // the cluster's port is open to the monitoring hosts only
        let rules: Vec<&serde_json::Value> = h["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["kind"] == "firewall")
            .flat_map(|s| s["rules"].as_array().unwrap())
            .filter(|r| r["port"] == 9094)
            .collect();
        if name == "db1" {
            assert!(rules.is_empty());
        } else {
            assert_eq!(rules.len(), 1);
            assert_eq!(
                rules[0]["from"],
                serde_json::json!(["198.18.0.12/32", "198.18.0.13/32"])
            );
        }
    }
}

#[test]
fn a_dkim_selector_too_long_for_a_host_of_its_own_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let long = "s".repeat(59);
    let doc = variant("baremetal.yaml", tmp.path(), "ha.yaml", |t| {
        two_hosts_per_role(&t).replace("dkimSelector: acme2026", &format!("dkimSelector: {long}"))
    });
    // 59 + `-web1` is 64 characters: one more than a DNS label holds
    let out = terroir().arg("validate").arg(&doc).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "DKIM selector `{long}-web1` of MTA host web1 is longer than a DNS label (63)"
        )),
        "{stderr}"
    );
    // the example's selector alone, with one MTA host, stays valid at that length
    let one = variant("baremetal.yaml", tmp.path(), "one.yaml", |t| {
        t.replace("dkimSelector: acme2026", &format!("dkimSelector: {long}"))
    });
    terroir().arg("validate").arg(&one).assert().success();
}

/// `GET /api/v2/status` of an Alertmanager: its cluster's status and the addresses of its peers.
fn cluster(port: u16) -> Result<(String, Vec<String>), String> {
    let (code, body) = http("GET", &format!("127.0.0.1:{port}"), "/api/v2/status")?;
    if code != 200 {
        return Err(format!("{code} {body}"));
    }
    let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
    let mut peers: Vec<String> = v["cluster"]["peers"]
        .as_array()
        .map(|p| {
            p.iter()
                .map(|p| p["address"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default();
    peers.sort();
    Ok((
        v["cluster"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        peers,
    ))
}

#[test]
fn alertmanagers_form_their_cluster_over_mutual_tls_and_refuse_a_stranger() {
    let tmp = tempfile::tempdir().unwrap();
    let out = rendered(tmp.path());
    let dir = open_dir(tmp.path(), "cluster");
    // the members' certificates, from one platform CA, for the loopback; a stranger's from another
    let ca = terroir::pki::new_ca("acme-crm").unwrap();
    let stranger_ca = terroir::pki::new_ca("acme-crm").unwrap();
    let names = ["127.0.0.1".to_owned()];
    for (who, ca) in [("member", &ca), ("stranger", &stranger_ca)] {
        let tls = dir.join(who);
        std::fs::create_dir_all(&tls).unwrap();
        let issued = terroir::pki::issue_server("acme-crm", &ca.key_pem, &names, "test").unwrap();
        std::fs::write(tls.join("host.crt"), issued.cert_pem).unwrap();
        std::fs::write(tls.join("host.key"), issued.key_pem).unwrap();
        std::fs::write(tls.join("ca.crt"), &ca.cert_pem).unwrap();
        std::fs::write(
            tls.join("alertmanager-cluster.yml"),
            read(&out.join("hosts/web1/alertmanager-cluster.yml"))
                .replace("/etc/acme-crm/tls", &tls.display().to_string()),
        )
        .unwrap();
    }
    std::fs::write(
        dir.join("alertmanager.yml"),
        "route: {receiver: none}\nreceivers: [{name: none}]\n",
    )
    .unwrap();
    let gossip: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let web: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut running = Vec::new();
    for (i, who) in ["member", "member", "stranger"].into_iter().enumerate() {
        let log = dir.join(format!("am{i}.log"));
        let mut cmd = Std::new("prometheus-alertmanager");
        cmd.arg(format!("--config.file={}/alertmanager.yml", dir.display()))
            .arg(format!("--storage.path={}/data{i}", dir.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{}", web[i]))
            .arg(format!("--cluster.listen-address=127.0.0.1:{}", gossip[i]))
            .arg(format!(
                "--cluster.advertise-address=127.0.0.1:{}",
                gossip[i]
            ))
            .arg(format!(
                "--cluster.tls-config={}/{who}/alertmanager-cluster.yml",
                dir.display()
            ))
            .arg("--cluster.reconnect-interval=1s");
        if i > 0 {
            cmd.arg(format!("--cluster.peer=127.0.0.1:{}", gossip[0]));
        }
        running.push(Running {
            child: spawn(&mut cmd, &log),
            stop: None,
        });
        listening(web[i], &format!("Alertmanager {i}"), &log);
    }
    let members = {
        let mut m = vec![
            format!("127.0.0.1:{}", gossip[0]),
            format!("127.0.0.1:{}", gossip[1]),
        ];
        m.sort();
        m
    };
    // the two members see each other; the stranger's certificate is refused, so it stays alone
    for port in [web[0], web[1]] {
        eventually(
            Duration::from_secs(60),
            "a cluster of two members",
            || match cluster(port)? {
                (status, peers) if status == "ready" && peers == members => Ok(()),
                other => Err(format!("{other:?}")),
            },
        );
    }
    eventually(
        Duration::from_secs(60),
        "the stranger refused by the members",
        || {
            let log = read(&dir.join("am2.log"));
            match cluster(web[2])? {
                (_, peers) if peers.len() == 1 && log.contains("certificate") => Ok(()),
                other => Err(format!("{other:?}\n{log}")),
            }
        },
    );
    assert_eq!(
        cluster(web[0]).unwrap().1,
        members,
        "the members never admitted it"
    );
    drop(running);
}
