//! The security baseline on a real host: TLS inside the platform (a plain-text PostgreSQL
//! connection and an SMTP session without STARTTLS are refused; the application verifies the
//! servers' certificates against the platform's CA), the audit trail (pgaudit records every
//! statement on a table marked personal with role, time and statement; SSH and sudo are logged;
//! `terroir audit` shows them), and a secret planted in the store that never appears in the
//! rendered tree, the logs, the attestation or an export. And TLS as ANSSI recommends on every
//! TLS endpoint of the host.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use common::deployments::{ADDRESS, OneHostPlatform, PLANTED, PLATFORM};
use common::tls::{Endpoint, Start, assert_anssi_tls};
use common::*;
use serde_json::Value;

fn on_host_output(script: &str) -> std::process::Output {
    std::process::Command::new(root().join("tests/hosts/hostctl"))
        .args(["exec", "h1", "sh", "-c"])
        .arg(format!("cd / && {script}"))
        .output()
        .unwrap()
}

fn on_host(script: &str) -> String {
    let out = on_host_output(script);
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// psql as the application's role over TCP with `params` (sslmode...): success and output.
fn psql_as_app(params: &str, sql: &str) -> (bool, String) {
    let out = on_host_output(&format!(
        "PGPASSWORD='{PLANTED}' psql 'host={ADDRESS} user=crm dbname=crm connect_timeout=5 {params}' -XAtc {}",
        shell_quote(sql)
    ));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn http_app(method: &str, path: &str) -> Result<(u16, String), String> {
    http(method, &format!("{ADDRESS}:8080"), path)
}

fn assert_no_planted(what: &str, bytes: &[u8]) {
    assert!(
        !bytes
            .windows(PLANTED.len())
            .any(|w| w == PLANTED.as_bytes()),
        "the planted secret is in {what}"
    );
}

#[test]
fn tls_audit_and_secrets_on_a_real_host() {
    // deployed with the planted secret as the database password (common/deployments.rs)
    let platform = OneHostPlatform::get();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let doc = platform.doc.clone();
    assert!(
        std::fs::read_to_string(&doc)
            .unwrap()
            .contains("personalTables: [customers, interactions]"),
        "the example marks personal tables"
    );
    let store = platform.dir.join(".terroir").join(PLATFORM).join("secrets");
    let mut logs: Vec<(String, Vec<u8>)> =
        vec![("apply's output".into(), platform.first_apply.clone())];
    // the CA and the host's certificate were made in the store, the CA's key never left it
    for name in ["tls-ca-cert", "tls-ca-key", "tls-h1-cert", "tls-h1-key"] {
        assert!(
            store.join(name).exists() || store.join(format!("{name}.age")).exists(),
            "{name} in the store"
        );
    }
    let ca = std::fs::read_to_string(store.join("tls-ca-cert")).unwrap();
    assert_eq!(
        on_host(&format!("cat /etc/{PLATFORM}/tls/ca.crt")),
        ca,
        "the CA's certificate is on the host"
    );
    assert_eq!(
        on_host(
            "stat -c '%n %U %a' /etc/postfix/tls/server.key /etc/postgresql/15/main/server.key"
        ),
        "/etc/postfix/tls/server.key root 600\n/etc/postgresql/15/main/server.key postgres 600\n"
    );
    let ca_key = std::fs::read_to_string(store.join("tls-ca-key")).unwrap();
    let ca_key_body = ca_key.lines().nth(1).unwrap().to_owned();
    assert!(
        on_host(&format!(
            "grep -rlF -- '{ca_key_body}' /etc /var/lib/postgresql 2>/dev/null || true"
        ))
        .is_empty(),
        "the CA's key is on no host"
    );

    // the application works: it reaches PostgreSQL over TLS and verifies its certificate
    eventually(
        Duration::from_secs(60),
        "the app's health",
        || match http_app("GET", "/healthz") {
            Ok((200, _)) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    let (code, body) = http_app("POST", "/rows?value=hello").unwrap();
    assert_eq!(code, 201, "{body}");
    let pg_log = on_host("cat /var/log/postgresql/postgresql-15-main.log");
    assert!(
        pg_log.lines().any(
            |l| l.contains("connection authorized: user=crm database=crm")
                && l.contains("SSL enabled")
        ),
        "the app's connections use TLS:\n{pg_log}"
    );

    // PostgreSQL: without TLS, refused; with TLS and the platform CA, accepted (verify-full);
    // verified against the public CAs instead, refused (the certificate is the platform's own)
    let (ok, text) = psql_as_app("sslmode=disable", "select 1");
    assert!(
        !ok && text.contains("pg_hba.conf rejects connection") && text.contains("no encryption"),
        "plain text must be refused: {text}"
    );
    let (ok, text) = psql_as_app(
        &format!("sslmode=verify-full sslrootcert=/etc/{PLATFORM}/tls/ca.crt"),
        "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
    );
    assert!(ok && text == "t\n", "TLS with the CA verified: {text}");
    let (ok, text) = psql_as_app(
        "sslmode=verify-full sslrootcert=/etc/ssl/certs/ca-certificates.crt",
        "select 1",
    );
    assert!(
        !ok && text.contains("certificate verify failed"),
        "the public CAs do not vouch for it: {text}"
    );

    // SMTP: a session that does not start TLS is refused; the app's (STARTTLS, verified) goes through
    let session = format!(
        "exec 3<>/dev/tcp/{ADDRESS}/25; read -t 10 banner <&3; echo \"$banner\"; \
         printf 'EHLO plain.example\\r\\nMAIL FROM:<x@plain.example>\\r\\nQUIT\\r\\n' >&3; timeout 10 cat <&3 || true"
    );
    let smtp = on_host(&format!("bash -c {}", shell_quote(&session)));
    assert!(smtp.starts_with("220 "), "{smtp}");
    assert!(smtp.contains("250-STARTTLS"), "STARTTLS offered: {smtp}");
    assert!(
        smtp.contains("530") && smtp.contains("STARTTLS"),
        "MAIL without STARTTLS refused: {smtp}"
    );
    let (code, body) = http_app("POST", "/mail?to=root@localhost").unwrap();
    assert_eq!(code, 202, "the app sends mail over STARTTLS: {body}");
    eventually(
        Duration::from_secs(30),
        "the app's message delivered",
        || {
            let mail = on_host("cat /var/mail/root 2>/dev/null || true");
            if mail.contains("Sent by the terroir smoke application") {
                Ok(())
            } else {
                Err(mail)
            }
        },
    );
    let mail_log = on_host("cat /var/log/mail.log");
    assert!(
        mail_log.contains(&format!(
            "TLS connection established from unknown[{ADDRESS}]"
        )) || mail_log.contains("TLS connection established from"),
        "{mail_log}"
    );

    // monitoring: the exporters, Prometheus and Alertmanager answer HTTPS only, and Prometheus
    // scrapes them, verifying their certificates against the CA
    let plain = on_host(&format!(
        "bash -c {}",
        shell_quote(&format!(
            "exec 3<>/dev/tcp/{ADDRESS}/9100; printf 'GET /metrics HTTP/1.0\\r\\n\\r\\n' >&3; timeout 10 cat <&3 || true"
        ))
    ));
    assert!(
        plain.contains("400") && plain.to_lowercase().contains("https"),
        "plain HTTP to the node exporter: {plain}"
    );
    eventually(
        Duration::from_secs(120),
        "Prometheus scraping over TLS",
        || {
            // promtool (Go) trusts the platform's CA through SSL_CERT_FILE: Prometheus is HTTPS only too
            let up = on_host(&format!(
                "SSL_CERT_FILE=/etc/{PLATFORM}/tls/ca.crt promtool query instant https://127.0.0.1:9090 'up{{job=~\"node|postgres|alertmanager|prometheus\"}}' || true"
            ));
            let ones = up.lines().filter(|l| l.contains("=> 1 @")).count();
            if ones == 4 { Ok(()) } else { Err(up) }
        },
    );

    // the audit trail: a personal table created by the app's role, then written and read
    let (ok, text) = psql_as_app(
        &format!("sslmode=verify-full sslrootcert=/etc/{PLATFORM}/tls/ca.crt"),
        "create table customers (id int primary key, name text, email text); \
         insert into customers values (1, 'Ada Lovelace', 'ada@example.fr'); \
         select email from customers where name = 'Ada Lovelace'; \
         create table notes (id int); insert into notes values (1); select * from notes",
    );
    assert!(ok, "{text}");
    let pg_log = on_host("cat /var/log/postgresql/postgresql-15-main.log");
    let audited: Vec<&str> = pg_log
        .lines()
        .filter(|l| l.contains("AUDIT: OBJECT"))
        .collect();
    let read = audited
        .iter()
        .find(|l| l.contains("READ,SELECT,TABLE,public.customers"))
        .unwrap_or_else(|| panic!("the read is audited:\n{pg_log}"));
    // time, role@database, statement
    assert!(
        read.starts_with("20")
            && read.contains(" UTC [")
            && read.contains(" crm@crm ")
            && read.contains("select email from customers where name = 'Ada Lovelace'"),
        "{read}"
    );
    assert!(
        audited
            .iter()
            .any(|l| l.contains("WRITE,INSERT,TABLE,public.customers")),
        "the write is audited:\n{pg_log}"
    );
    assert!(
        !audited.iter().any(|l| l.contains("public.notes")),
        "a table not marked personal is not object-audited"
    );
    assert!(
        pg_log
            .lines()
            .any(|l| l.contains("AUDIT: SESSION") && l.contains("DDL,CREATE TABLE")),
        "DDL is audited"
    );

    // terroir audit shows it, and the SSH logins and sudo commands of the apply
    let out = terroir()
        .args(["--output", "json", "audit"])
        .arg(&doc)
        .args(["--grep", "customers", "--source", "postgres"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    logs.push(("terroir audit".into(), out.stdout.clone()));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let events = v["hosts"][0]["events"].as_array().unwrap();
    let e = events
        .iter()
        .find(|e| e["action"] == "READ SELECT")
        .unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(
        (
            e["user"].as_str(),
            e["object"].as_str(),
            e["source"].as_str()
        ),
        (Some("crm"), Some("public.customers"), Some("postgres"))
    );
    assert!(
        e["time"].as_str().unwrap().ends_with('Z')
            && e["detail"]
                .as_str()
                .unwrap()
                .contains("select email from customers"),
        "{e:#}"
    );
    let out = terroir()
        .args(["--output", "json", "audit"])
        .arg(&doc)
        .args(["--source", "ssh", "--source", "sudo", "-n", "200"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let events = v["hosts"][0]["events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["source"] == "ssh" && e["action"] == "login" && e["user"] == "deploy"),
        "SSH logins: {v:#}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["source"] == "sudo" && e["user"] == "deploy" && e["object"] == "root"),
        "sudo commands: {v:#}"
    );
    assert_eq!(
        on_host("grep -c 'rotate 365' /etc/logrotate.d/rsyslog /etc/logrotate.d/postgresql-common"),
        "/etc/logrotate.d/rsyslog:1\n/etc/logrotate.d/postgresql-common:1\n"
    );

    // a second apply changes nothing
    let out = terroir()
        .args(["--output", "json", "apply"])
        .arg(&doc)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["changed"], 0, "a second apply changes nothing: {v:#}");
    logs.push(("second apply".into(), out.stdout));

    // the planted secret is nowhere: rendered tree, outputs, the host's logs, an attestation,
    // an export (whose secrets are only in the age-encrypted tar)
    let rendered = dir.join("rendered");
    let out = terroir()
        .arg("render")
        .arg(&doc)
        .arg("--out")
        .arg(&rendered)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (path, bytes) in files(&rendered) {
        assert_no_planted(&path.display().to_string(), &bytes);
    }
    let host_logs = on_host(
        "cat /var/log/auth.log /var/log/syslog /var/log/mail.log /var/log/postgresql/*.log 2>/dev/null",
    );
    assert!(host_logs.contains("sudo"), "the host's logs were read");
    logs.push(("the host's logs".into(), host_logs.into_bytes()));
    let out = terroir()
        .args(["keygen", "--out"])
        .arg(dir.join("signing.key"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = terroir()
        .arg("attest")
        .arg(&doc)
        .arg("--key")
        .arg(dir.join("signing.key"))
        .arg("--out")
        .arg(dir.join("attestation.json"))
        .args(["--no-dns", "--live", "--geodata"])
        .arg(root().join("../shared/geodata"))
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 2)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    logs.push(("attest's output".into(), [out.stdout, out.stderr].concat()));
    // the attestation states the baseline, and what the host shows of encryption at rest
    let envelope: Value =
        serde_json::from_slice(&std::fs::read(dir.join("attestation.json")).unwrap()).unwrap();
    use base64::Engine as _;
    let statement: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(envelope["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let sec = &statement["predicate"]["security"];
    assert!(
        sec["tls"]["postgresql"]
            .as_str()
            .unwrap()
            .starts_with("TLS only"),
        "{sec:#}"
    );
    assert_eq!(
        sec["audit"]["personalTables"],
        serde_json::json!(["customers", "interactions"])
    );
    assert_eq!(sec["tenants"], serde_json::json!(["alpha", "beta"]));
    assert_eq!(sec["secretsAtRest"]["encrypted"], false);
    let observed = sec["encryptionAtRest"]["observed"]
        .as_array()
        .unwrap_or_else(|| panic!("{sec:#}"));
    let var_lib = observed
        .iter()
        .find(|o| o["host"] == "h1" && o["path"] == "/var/lib")
        .unwrap_or_else(|| panic!("{sec:#}"));
    // the test host's /var/lib is an overlay: the probe says it cannot tell, rather than guess
    assert!(
        var_lib["encrypted"].is_null() && var_lib["filesystem"] == "overlay",
        "{var_lib:#}"
    );
    let report = std::fs::read_to_string(dir.join("attestation.report.md")).unwrap();
    assert!(
        report.contains("## Security baseline") && report.contains("/var/lib: unknown"),
        "{report}"
    );
    let page = std::fs::read_to_string(dir.join("attestation.report.html")).unwrap();
    assert!(
        page.contains("<h2>Security baseline</h2>") && page.contains("h1 /var/lib: unknown"),
        "the HTML page too"
    );
    logs.push((
        "the attestation".into(),
        std::fs::read(dir.join("attestation.json")).unwrap(),
    ));
    let identity = age::x25519::Identity::generate();
    let out = terroir()
        .arg("export")
        .arg(&doc)
        .arg("--to")
        .arg(dir.join("export"))
        .arg("--recipient")
        .arg(identity.to_public().to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    logs.push(("export's output".into(), [out.stdout, out.stderr].concat()));
    for (path, bytes) in files(&dir.join("export")) {
        assert_no_planted(&path.display().to_string(), &bytes);
    }
    for (what, bytes) in &logs {
        assert_no_planted(what, bytes);
    }
    // the platform as this test found it, for the next test on it
    let (ok, text) = psql_as_app(
        &format!("sslmode=verify-full sslrootcert=/etc/{PLATFORM}/tls/ca.crt"),
        "drop table customers; drop table notes",
    );
    assert!(ok, "{text}");
    drop(platform);
}

/// TLS as ANSSI recommends on every TLS endpoint of the host (terroir::pki::tls; common/tls.rs
/// says what is tried): `openssl s_client`, from inside the host, reaches each port the host
/// opens as rendered that speaks TLS: PostgreSQL (STARTTLS), Postfix on 25 and submission
/// (STARTTLS), Prometheus, Alertmanager, the node and PostgreSQL exporters, and nginx when the
/// platform has a public name. Each accepts TLS 1.3, and TLS 1.2 with the policy's suites (the
/// OpenSSL servers in their own order); each refuses CBC suites, AEAD suites without ECDHE,
/// anonymous suites, TLS 1.1 and TLS 1.0. Changes nothing.
#[test]
fn anssi_tls_on_every_endpoint_of_a_real_host() {
    let platform = OneHostPlatform::get();
    let tmp = tempfile::tempdir().unwrap();
    let rendered = render(&platform.doc, tmp.path(), "rendered");
    let resolved: Value =
        serde_json::from_slice(&std::fs::read(rendered.join("platform.resolved.json")).unwrap())
            .unwrap();
    let host = resolved["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "h1")
        .unwrap();
    let mut endpoints = Vec::new();
    for p in host["ports"].as_array().unwrap() {
        let (port, service) = (p["port"].as_u64().unwrap(), p["service"].as_str().unwrap());
        let (start, server_order) = match service {
            "PostgreSQL" => (Start::StartTls("postgres"), true),
            "Postfix (SMTP)" | "Postfix (submission)" => (Start::StartTls("smtp"), true),
            "nginx (the application over HTTPS)" => (Start::Direct, true),
            // Go's crypto/tls chooses the suite itself
            "Prometheus" | "Alertmanager" | "node exporter" | "the PostgreSQL exporter" => {
                (Start::Direct, false)
            }
            // no TLS: SSH, HTTP redirected to HTTPS, the application behind nginx or on the
            // private network, Alertmanager's cluster port (clustering is off), the Postfix
            // exporter (no TLS in Debian 12's version)
            "ssh"
            | "nginx (ACME challenges, redirect to HTTPS)"
            | "the application"
            | "Alertmanager (cluster)"
            | "the Postfix exporter" => continue,
            other => panic!("port {port} ({other}): TLS or not? This test must say"),
        };
        endpoints.push(Endpoint::new(
            &format!("{service} ({port})"),
            &format!("{ADDRESS}:{port}"),
            start,
            server_order,
        ));
    }
    assert!(
        endpoints.len() >= 7,
        "PostgreSQL, Postfix twice, Prometheus, Alertmanager, two exporters: {endpoints:?}"
    );
    assert_anssi_tls(&endpoints, &|script: &str| {
        let out = on_host_output(script);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    drop(platform);
}
