//! `terroir plan` and `terroir apply` against real Debian test hosts over real SSH: the platform
//! converges, works (SQL, mail, every Prometheus target up, Alertmanager), a second apply changes
//! nothing, one setting changes one file and restarts one service, and faults are reported per host.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::deployments::AFTER_THE_APPLY;
use common::hosts::TestHosts;
use common::*;

/// The smoke application as a release archive: `bin/crm` (the example's command).
fn smoke_artifact(dir: &Path) -> (PathBuf, String) {
    smoke_release(dir, "crm")
}

/// Serves a directory over HTTP on the loopback interface while alive.
struct HttpServer {
    child: std::process::Child,
    port: u16,
}

impl HttpServer {
    fn serve(dir: &Path) -> HttpServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
                "--directory",
            ])
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        eventually(Duration::from_secs(20), "the HTTP server", || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        HttpServer { child, port }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bare-metal example pointed at the test hosts' key and known_hosts, with the smoke
/// application as the app's release archive (from `base_url` when given, else a file:// URL).
fn document(hosts: &TestHosts, dir: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    document_from(hosts, dir, None, edit)
}

fn document_from(
    hosts: &TestHosts,
    dir: &Path,
    base_url: Option<&str>,
    edit: impl Fn(String) -> String,
) -> PathBuf {
    let archive = dir.join("smoke-app.tar.gz");
    let (url, sha) = if archive.exists() {
        let url = match base_url {
            Some(base) => format!("{base}/smoke-app.tar.gz"),
            None => format!("file://{}", archive.display()),
        };
        (
            url,
            terroir::text::sha256_hex(&std::fs::read(&archive).unwrap()),
        )
    } else {
        (
            "file:///nonexistent/smoke-app.tar.gz".to_owned(),
            "f".repeat(64),
        )
    };
    variant("baremetal.yaml", dir, "platform.yaml", |t| {
        let t = on_test_hosts(&t, hosts, &(url.clone(), sha.clone()))
            // backups need an S3 endpoint the test hosts can reach: tested in tests/baremetal/backups.rs
            .replace("    backups:\n", "    backups:\n      enabled: false\n");
        edit(without_public_name(&t))
    })
}

fn run_json(args: &[&str], doc: &Path) -> (i32, serde_json::Value) {
    let out = terroir()
        .args(["--output", "json"])
        .args(args)
        .arg(doc)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code().unwrap(), v)
}

fn host<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == name)
        .unwrap()
}

/// Run a command as root inside a test host.
fn on_host(host: &str, script: &str) -> std::process::Output {
    std::process::Command::new(root().join("tests/hosts/hostctl"))
        .args(["exec", host, "sh", "-c"])
        .arg(format!("cd / && {script}"))
        .output()
        .unwrap()
}

#[test]
fn apply_converges_three_hosts_and_the_platform_works() {
    let mut hosts = TestHosts::up(3);
    hosts.hand_over(AFTER_THE_APPLY);
    let tmp = tempfile::tempdir().unwrap();
    smoke_artifact(tmp.path());
    // the release is downloaded over HTTP by terroir, then uploaded to the app host
    let server = HttpServer::serve(tmp.path());
    let doc = document_from(
        &hosts,
        tmp.path(),
        Some(&format!("http://127.0.0.1:{}", server.port)),
        |t| t,
    );

    let (code, first) = run_json(&["apply"], &doc);
    assert_eq!(code, 0, "first apply: {first:#}");
    assert!(
        first["changed"].as_u64().unwrap() > 20,
        "the first apply installs and configures everything"
    );

    // The application answers its health check (it reaches PostgreSQL with its generated password).
    eventually(
        Duration::from_secs(60),
        "the app's health check",
        || match http("GET", "198.18.0.13:8080", "/healthz") {
            Ok((200, _)) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    // A row written through the app is read back with psql on the database host.
    let (code, id) = http(
        "POST",
        "198.18.0.13:8080",
        "/rows?value=written-through-the-app",
    )
    .unwrap();
    assert_eq!(code, 201, "{id}");
    let out = on_host(
        "h1",
        &format!(
            "runuser -u postgres -- psql -d crm -Atc 'select value from smoke_rows where id = {}'",
            id.trim()
        ),
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "written-through-the-app",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A mail sent by the app is delivered by Postfix.
    let (code, body) = http("POST", "198.18.0.13:8080", "/mail?to=root@localhost").unwrap();
    assert_eq!(code, 202, "{body}");
    eventually(
        Duration::from_secs(60),
        "delivery of the app's mail",
        || {
            let text =
                String::from_utf8_lossy(&on_host("h2", "cat /var/mail/root").stdout).into_owned();
            if text.contains("Subject: terroir smoke test") {
                Ok(())
            } else {
                Err(text)
            }
        },
    );
    // The generated secret stays on the operator's side, mode 0600, and never in the report.
    let secret_path = tmp
        .path()
        .join(".terroir/acme-crm/secrets/database-password");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&secret_path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let secret = std::fs::read_to_string(&secret_path).unwrap();
    assert!(
        !first.to_string().contains(&secret),
        "the secret is not in the apply report"
    );

    // PostgreSQL answers, with the application's database owned by its role.
    let out = on_host(
        "h1",
        "runuser -u postgres -- psql -Atc \"select pg_catalog.pg_get_userbyid(datdba) from pg_database where datname = 'crm'\"",
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "crm",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Postfix delivers a message (locally, to root).
    let out = on_host(
        "h2",
        "printf 'Subject: terroir-delivery-check\\n\\nhello\\n' | /usr/sbin/sendmail root@localhost",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually(Duration::from_secs(60), "mail delivery", || {
        let out = on_host("h2", "cat /var/mail/root");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains("terroir-delivery-check") {
            Ok(())
        } else {
            Err(text)
        }
    });

    // Alertmanager runs, and Prometheus sees every target up (node, prometheus, alertmanager,
    // postgres and postfix exporters).
    let out = on_host("h2", "/etc/init.d/prometheus-alertmanager status");
    assert!(
        out.status.success(),
        "alertmanager: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    eventually(
        Duration::from_secs(120),
        "every Prometheus target up",
        || {
            let out = on_host(
                "h2",
                "SSL_CERT_FILE=/etc/acme-crm/tls/ca.crt promtool query instant https://127.0.0.1:9090 'up'",
            );
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let up = text.lines().filter(|l| l.contains("=> 1")).count();
            let jobs = [
                "node",
                "prometheus",
                "alertmanager",
                "app",
                "postgres",
                "postfix",
            ];
            let all_jobs = jobs.iter().all(|j| text.contains(&format!("job=\"{j}\"")));
            if all_jobs && up == text.lines().count() && up == 8 {
                Ok(())
            } else {
                Err(text)
            }
        },
    );

    // A second apply changes nothing, on any host.
    let (code, second) = run_json(&["apply"], &doc);
    assert_eq!(code, 0);
    assert_eq!(second["changed"], 0, "second apply: {second:#}");
    for h in second["hosts"].as_array().unwrap() {
        assert_eq!(h["changed"], 0, "{}", h["name"]);
        assert_eq!(h["failed"], 0, "{}", h["name"]);
    }

    // One setting: only postgresql.conf changes and only PostgreSQL restarts.
    let doc = document_from(
        &hosts,
        tmp.path(),
        Some(&format!("http://127.0.0.1:{}", server.port)),
        |t| t.replace("maxConnections: 200", "maxConnections: 150"),
    );
    let (code, plan) = run_json(&["plan"], &doc);
    assert_eq!(code, 0);
    assert_eq!(
        plan["changed"], 2,
        "plan shows the file and the restart: {plan:#}"
    );
    let (code, third) = run_json(&["apply"], &doc);
    assert_eq!(code, 0);
    let changed: Vec<String> = third["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| {
            h["steps"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["status"] == "changed")
                .map(|s| {
                    format!(
                        "{}/{}",
                        h["name"].as_str().unwrap(),
                        s["id"].as_str().unwrap()
                    )
                })
        })
        .collect();
    assert_eq!(
        changed,
        vec![
            "db1/file:/etc/postgresql/15/main/postgresql.conf",
            "db1/service:postgresql"
        ]
    );
    let out = on_host(
        "h1",
        "runuser -u postgres -- psql -Atc 'show max_connections'",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "150");
    // no partial or temporary file is left beside a destination
    let out = on_host("h1", "find /etc -name '.terroir-*' | wc -l");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
}

#[test]
fn faults_are_reported_per_host() {
    // Two hosts up; the document's third host (198.18.0.13) does not exist.
    let hosts = TestHosts::installed(2);
    let tmp = tempfile::tempdir().unwrap();
    let doc = document(&hosts, tmp.path(), |t| t);

    let (code, report) = run_json(&["apply", "--connect-timeout", "3"], &doc);
    assert_eq!(code, 2, "a failed host makes the run fail");
    let unreachable = host(&report, "app1");
    assert!(
        unreachable["error"]
            .as_str()
            .unwrap()
            .contains("cannot reach 198.18.0.13:22"),
        "{unreachable:#}"
    );
    for name in ["db1", "ops1"] {
        assert!(
            host(&report, name)["error"].is_null(),
            "{name} completes despite app1: {report:#}"
        );
        assert_eq!(host(&report, name)["failed"], 0, "{report:#}");
        assert!(host(&report, name)["changed"].as_u64().unwrap() > 0);
    }
    let out = on_host("h1", "/etc/init.d/postgresql status");
    assert!(out.status.success(), "db1 was really converged");

    // An RSA key works as well as an Ed25519 one.
    let rsa = tmp.path().join("id_rsa");
    assert!(
        std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "rsa", "-b", "3072", "-N", "", "-f"])
            .arg(&rsa)
            .status()
            .unwrap()
            .success()
    );
    let public = std::fs::read_to_string(rsa.with_extension("pub")).unwrap();
    for h in ["h1", "h2"] {
        let out = on_host(
            h,
            &format!(
                "echo '{}' >> /home/deploy/.ssh/authorized_keys",
                public.trim()
            ),
        );
        assert!(out.status.success());
    }
    let doc_rsa = document(&hosts, tmp.path(), |t| {
        t.replace(
            &format!("identityFile: {}", hosts.identity().display()),
            &format!("identityFile: {}", rsa.display()),
        )
    });
    let (_, report) = run_json(&["plan", "--connect-timeout", "3"], &doc_rsa);
    assert!(
        host(&report, "db1")["error"].is_null(),
        "RSA key accepted: {report:#}"
    );

    // --fail-fast: with one worker, the hosts after the failed one are not started.
    let doc_first = document(&hosts, tmp.path(), |t| {
        t.replace("address: 198.18.0.11", "address: 198.18.0.99")
    });
    let (code, report) = run_json(
        &[
            "plan",
            "--connect-timeout",
            "3",
            "--fail-fast",
            "--concurrency",
            "1",
        ],
        &doc_first,
    );
    assert_eq!(code, 2);
    assert!(
        host(&report, "ops1")["error"]
            .as_str()
            .unwrap()
            .contains("skipped"),
        "{report:#}"
    );

    // A changed host key is refused, showing both fingerprints.
    let kh = tmp.path().join("known_hosts");
    let original = std::fs::read_to_string(hosts.known_hosts()).unwrap();
    let other_key = original
        .lines()
        .nth(1)
        .unwrap()
        .split_once(' ')
        .unwrap()
        .1
        .to_owned();
    let first_line = original.lines().next().unwrap();
    let tampered = original.replacen(first_line, &format!("198.18.0.11 {other_key}"), 1);
    std::fs::write(&kh, tampered).unwrap();
    let doc_kh = document(&hosts, tmp.path(), |t| {
        t.replace(
            &format!("knownHostsFile: {}", hosts.known_hosts().display()),
            &format!("knownHostsFile: {}", kh.display()),
        )
    });
    let (_, report) = run_json(&["plan", "--accept-new-host-keys"], &doc_kh);
    let err = host(&report, "db1")["error"].as_str().unwrap().to_owned();
    assert!(
        err.contains("does not match") && err.matches("SHA256:").count() >= 2,
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&kh).unwrap().lines().count(),
        2,
        "a changed key is never recorded"
    );

    // An unknown host key is refused, and recorded only when asked.
    std::fs::write(&kh, original.lines().nth(1).unwrap().to_owned() + "\n").unwrap();
    let (_, report) = run_json(&["plan"], &doc_kh);
    assert!(
        host(&report, "db1")["error"]
            .as_str()
            .unwrap()
            .contains("--accept-new-host-keys"),
        "{report:#}"
    );
    let (_, report) = run_json(&["plan", "--accept-new-host-keys"], &doc_kh);
    assert!(host(&report, "db1")["error"].is_null(), "{report:#}");
    assert!(
        std::fs::read_to_string(&kh)
            .unwrap()
            .contains("198.18.0.11 ")
    );
    // Hosts connected at once each record their key: none overwrites another's.
    std::fs::write(&kh, "").unwrap();
    let (_, report) = run_json(&["plan", "--accept-new-host-keys"], &doc_kh);
    assert!(host(&report, "ops1")["error"].is_null(), "{report:#}");
    let recorded = std::fs::read_to_string(&kh).unwrap();
    for address in ["198.18.0.11 ", "198.18.0.12 "] {
        assert_eq!(recorded.matches(address).count(), 1, "{recorded}");
    }

    // A user without sudo gets a clear error.
    let doc_nosudo = document(&hosts, tmp.path(), |t| {
        t.replace("user: deploy", "user: nosudo")
    });
    let (_, report) = run_json(&["plan"], &doc_nosudo);
    let err = host(&report, "db1")["error"].as_str().unwrap().to_owned();
    assert!(
        err.contains("nosudo@198.18.0.11 cannot use sudo without a password"),
        "{err}"
    );
}

#[test]
fn apply_killed_midway_converges_on_the_next_run() {
    use std::io::{BufRead, BufReader};
    let hosts = TestHosts::installed(3);
    let tmp = tempfile::tempdir().unwrap();
    smoke_artifact(tmp.path());
    let doc = document(&hosts, tmp.path(), |t| t);
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("terroir"))
        .arg("apply")
        .arg(&doc)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Kill it with SIGKILL as soon as it has changed a file on some host: mid-apply.
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        let midway = line.contains("changed: file:");
        seen.push(line);
        if midway {
            break;
        }
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the apply was killed: {seen:?}");

    let (code, report) = run_json(&["apply"], &doc);
    assert_eq!(code, 0, "the next apply converges: {report:#}");
    let (code, report) = run_json(&["apply"], &doc);
    assert_eq!(code, 0);
    assert_eq!(report["changed"], 0, "and stays converged: {report:#}");
    for h in ["h1", "h2", "h3"] {
        let out = on_host(h, "find /etc /opt -name '.terroir-*' | wc -l");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "0",
            "{h} keeps no partial file"
        );
    }
}

#[test]
fn hosts_behind_a_bastion_and_keys_from_an_agent() {
    let hosts = TestHosts::up(3);
    let tmp = tempfile::tempdir().unwrap();
    smoke_artifact(tmp.path());
    // h2 and h3 refuse SSH from this machine: only the bastion h1 may reach them.
    for ns in ["terroir-h2", "terroir-h3"] {
        let mut nft = std::process::Command::new("ip")
            .args(["netns", "exec", ns, "nft", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        nft.stdin.take().unwrap().write_all(b"table inet bastiontest {\n chain input {\n  type filter hook input priority -10; policy accept;\n  tcp dport 22 ip saddr 198.18.0.1 drop\n }\n}\n").unwrap();
        assert!(nft.wait().unwrap().success());
    }
    let direct = document(&hosts, tmp.path(), |t| t);
    let (code, report) = run_json(&["plan", "--connect-timeout", "3"], &direct);
    assert_eq!(code, 2);
    assert!(
        host(&report, "ops1")["error"]
            .as_str()
            .unwrap()
            .contains("cannot reach"),
        "direct access is really blocked: {report:#}"
    );

    let through = document(&hosts, tmp.path(), |t| {
        t.replace(
            &format!("knownHostsFile: {}\n", hosts.known_hosts().display()),
            &format!(
                "knownHostsFile: {}\n        jumpHost:\n          address: 198.18.0.11\n",
                hosts.known_hosts().display()
            ),
        )
    });
    let (code, report) = run_json(&["plan"], &through);
    assert_eq!(
        code, 0,
        "every host is reached through the bastion: {report:#}"
    );

    // The key offered by an ssh-agent when the identity file is absent (useAgent).
    let sock = tmp.path().join("agent.sock");
    let agent = std::process::Command::new("ssh-agent")
        .arg("-a")
        .arg(&sock)
        .output()
        .unwrap();
    let pid = String::from_utf8_lossy(&agent.stdout)
        .split("SSH_AGENT_PID=")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .unwrap()
        .to_owned();
    let added = std::process::Command::new("ssh-add")
        .arg(hosts.identity())
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let by_agent = document(&hosts, tmp.path(), |t| {
        t.replace(
            &format!("identityFile: {}", hosts.identity().display()),
            "identityFile: /nonexistent/key\n        useAgent: true",
        )
    });
    let out = terroir()
        .args(["--output", "json", "plan", "--connect-timeout", "3"])
        .arg(&by_agent)
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    let _ = std::process::Command::new("kill").arg(pid).status();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        host(&report, "db1")["error"].is_null(),
        "authenticated by the agent: {report:#}"
    );
    // without the agent, the missing identity file is named
    let (_, report) = run_json(&["plan", "--connect-timeout", "3"], &by_agent);
    assert!(
        host(&report, "db1")["error"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/key (missing)"),
        "{report:#}"
    );
}
