//! Roles carried by two hosts on real test hosts: db1 (h1) with the database, web1 and web2 (h2,
//! h3) each with an MTA, Prometheus and a member of the Alertmanager cluster, and the
//! application. `terroir status` sees the cluster and the application healthy on each; with one
//! MTA down the application's mail is still delivered; an alert reaches its receiver once while
//! both Prometheus run, and still once with one down. (Releases switched one host at a time, and
//! switched back when they fail their health check: tests/baremetal/lifecycle.rs.)
#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::hosts::TestHosts;
use common::*;

const WEB1: &str = "198.18.0.12";

fn on_host(host: &str, script: &str) -> std::process::Output {
    std::process::Command::new(root().join("tests/hosts/hostctl"))
        .args(["exec", host, "sh", "-c"])
        .arg(format!("cd / && {script}"))
        .output()
        .unwrap()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The example with two hosts per role on the test hosts: `artifact` as the release, alerts
/// mailed to root@alerts.test (`receive_alerts`), rules evaluated every 5 s.
fn document(hosts: &TestHosts, dir: &Path, artifact: &(String, String)) -> PathBuf {
    variant("baremetal.yaml", dir, "platform.yaml", |t| {
        on_test_hosts(
            &without_backups(&without_public_name(&two_hosts_per_role(&t))),
            hosts,
            artifact,
        )
        .replace(
            "alertEmails: [ops@acme.example.fr]",
            "alertEmails: [root@alerts.test]",
        )
        .replace(
            "      environment: production\n",
            "      environment: production\n      scrapeInterval: 5s\n",
        )
    })
}

fn apply(doc: &Path, json: bool) -> std::process::Output {
    let mut cmd = terroir();
    if json {
        cmd.args(["--output", "json"]);
    }
    cmd.arg("apply")
        .arg(doc)
        .timeout(Duration::from_secs(1500))
        .output()
        .unwrap()
}

/// The receiver of the alerts: root's mailbox on each MTA host, alerts.test made a local
/// domain there (after the last apply, which would put main.cf back).
fn receive_alerts() {
    for h in ["h2", "h3"] {
        let out = on_host(
            h,
            "postconf -e 'mydestination = localhost, alerts.test' && postfix reload",
        );
        assert!(out.status.success(), "{out:?}");
    }
}

/// Messages in root's mailboxes on the MTA hosts whose subject says `alert` fires.
fn firing(alert: &str) -> usize {
    ["h2", "h3"]
        .iter()
        .map(|h| {
            stdout(&on_host(
                h,
                &format!("grep -c '^Subject: \\[FIRING:1\\] {alert}' /var/mail/root || true"),
            ))
            .trim()
            .parse::<usize>()
            .unwrap_or(0)
        })
        .sum()
}

/// An alert rule that fires at once, loaded by the Prometheus of `hosts`.
fn fire(alert: &str, hosts: &[&str]) {
    for h in hosts {
        let out = on_host(
            h,
            &format!(
                "printf 'groups:\\n  - name: ha-test-{alert}\\n    rules:\\n      - alert: {alert}\\n        expr: vector(1)\\n' > /etc/prometheus/rules/{alert}.yml && /etc/init.d/prometheus restart"
            ),
        );
        assert!(out.status.success(), "{out:?}");
    }
}

/// `alert` is mailed once within `limit`, and is still once `window` later: time for a second
/// member of the cluster to send it too (it would after its peer timeout, 15 s).
fn mailed_once(alert: &str, limit: Duration, window: Duration) {
    eventually(limit, &format!("the {alert} mail"), || {
        match firing(alert) {
            0 => Err("no mail yet".into()),
            _ => Ok(()),
        }
    });
    let until = Instant::now() + window;
    while Instant::now() < until {
        assert_eq!(firing(alert), 1, "{alert} was mailed more than once");
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn two_hosts_per_role_keep_mail_alerts_and_releases_going() {
    let hosts = TestHosts::installed(3);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (archive, sha) = smoke_release(dir, "crm");
    let first = (format!("file://{}", archive.display()), sha);
    let doc = document(&hosts, dir, &first);
    let out = apply(&doc, false);
    assert!(
        out.status.success(),
        "first apply: {}\n{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    for app in ["198.18.0.12:8080", "198.18.0.13:8080"] {
        eventually(Duration::from_secs(60), "the app's health", || {
            match http("GET", app, "/healthz") {
                Ok((200, _)) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        });
    }

    // `terroir status`: on each host, the Alertmanager sees the whole cluster and the
    // application answers its health check.
    eventually(Duration::from_secs(90), "every component healthy", || {
        let out = terroir()
            .args(["--output", "json", "status"])
            .arg(&doc)
            .output()
            .unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {out:?}"))?;
        let seen: Vec<String> = v["components"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["component"] == "alertmanager" || c["component"] == "app")
            .map(|c| {
                format!(
                    "{} {} {} {}",
                    c["host"].as_str().unwrap_or_default(),
                    c["component"].as_str().unwrap_or_default(),
                    c["healthy"],
                    c["detail"].as_str().unwrap_or_default()
                )
            })
            .collect();
        let expected: Vec<String> = ["web1", "web2"]
            .iter()
            .flat_map(|h| {
                [
                    format!("{h} alertmanager true cluster ready, 2 peers of 2"),
                    format!("{h} app true HTTP 200"),
                ]
            })
            .collect();
        if seen == expected {
            Ok(())
        } else {
            Err(format!("{seen:?}\n{v:#}"))
        }
    });

    // One MTA host unreachable (its SMTP port dropped): the application's mail leaves through
    // the other, and is delivered.
    let drop_smtp = "ip netns exec terroir-h2 nft -f - <<'EOF'\ntable inet hatest {\n chain input {\n  type filter hook input priority -10; policy accept;\n  tcp dport 25 drop\n }\n}\nEOF";
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(drop_smtp)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let (code, body) = http("POST", &format!("{WEB1}:8080"), "/mail?to=root@localhost").unwrap();
    assert_eq!(
        (code, body.trim()),
        (202, "sent through 198.18.0.13"),
        "the first MTA is down"
    );
    eventually(
        Duration::from_secs(60),
        "the mail delivered by web2",
        || {
            let text = stdout(&on_host("h3", "cat /var/mail/root"));
            if text.contains("Subject: terroir smoke test") {
                Ok(())
            } else {
                Err(text)
            }
        },
    );
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            "terroir-h2",
            "nft",
            "delete",
            "table",
            "inet",
            "hatest",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    // Both Prometheus evaluate a rule and send to both Alertmanagers: one mail.
    receive_alerts();
    fire("TerroirHaBothUp", &["h2", "h3"]);
    mailed_once(
        "TerroirHaBothUp",
        Duration::from_secs(120),
        Duration::from_secs(40),
    );

    // One Prometheus and its Alertmanager down: a new alert still reaches its receiver, once.
    let out = on_host(
        "h3",
        "/etc/init.d/prometheus stop && /etc/init.d/prometheus-alertmanager stop",
    );
    assert!(out.status.success(), "{out:?}");
    fire("TerroirHaOneDown", &["h2"]);
    mailed_once(
        "TerroirHaOneDown",
        Duration::from_secs(150),
        Duration::from_secs(20),
    );
    assert_eq!(firing("TerroirHaBothUp"), 1, "the first alert stayed once");
}
