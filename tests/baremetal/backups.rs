//! Encrypted backups on real hosts: a platform on one test host backs up with pgBackRest into an
//! S3-compatible server (moto, over TLS with the test's own CA) on another; every object stored
//! there is encrypted; a point-in-time restore onto a second platform's host brings back the rows
//! written before the chosen time and none written after; the last success is published to the
//! node exporter, and the alert fires when it is older than the schedule allows (promtool).
#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::deployments::AFTER_THE_DRILL;
use common::hosts::TestHosts;
use common::s3::Moto;
use common::*;
use serde_json::Value;

const MOTO: &str = "198.18.0.13:9000";
const BUCKET: &str = "terroir-backups";
const REGION: &str = "eu-west-3";

fn on_host(host: &str, script: &str) -> String {
    let out = Command::new(root().join("tests/hosts/hostctl"))
        .args(["exec", host, "bash", "-c"])
        .arg(format!("cd / && {script}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{host}: {script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sql(host: &str, db: &str, query: &str) -> String {
    on_host(
        host,
        &format!("runuser -u postgres -- psql -d {db} -XAtqc \"{query}\""),
    )
    .trim()
    .to_owned()
}

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Run Python with boto3 against moto: `script` gets `s3`, a client trusting `ca`.
fn s3(ca: &Path, script: &str) -> String {
    s3_try(ca, script).unwrap_or_else(|e| panic!("boto3: {e}"))
}

fn s3_try(ca: &Path, script: &str) -> Result<String, String> {
    common::s3::boto3(&format!("https://{MOTO}"), REGION, ca, script)
}

fn start_moto(dir: &Path) -> (Moto, PathBuf) {
    common::s3::start(
        dir,
        &["ip", "netns", "exec", "terroir-h3"],
        "198.18.0.13",
        9000,
        9001,
        BUCKET,
        REGION,
    )
}

/// The bare-metal example as a one-host platform with every role, backing up into moto.
/// `host` is (name, address).
fn platform(
    hosts: &TestHosts,
    dir: &Path,
    file: &str,
    name: &str,
    (host, address): (&str, &str),
    artifact: &(String, String),
    ca: &str,
) -> PathBuf {
    let doc = variant("baremetal.yaml", dir, file, |t| {
        common::s3::backups_into(
            &all_roles_on_one_host(&t, hosts, name, (host, address), artifact),
            MOTO,
            BUCKET,
            REGION,
            ca,
        )
    });
    // the S3 keys are the user's to give: written into the platform's secret store
    common::s3::give_keys(dir, name);
    doc
}

fn http_get(address: &str, path: &str) -> Result<u16, String> {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect_timeout(&address.parse().unwrap(), Duration::from_secs(5))
            .map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: app\r\n\r\n").map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or(response)
}

#[test]
fn backups_are_encrypted_in_s3_and_restore_to_a_point_in_time_on_another_host() {
    // the drill's hosts if they are up: this test's applies then configure rather than install
    let hosts = TestHosts::take_over(AFTER_THE_DRILL, 3);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (moto, ca) = start_moto(dir);
    let ca_pem = std::fs::read_to_string(&ca).unwrap();
    let (archive, sha) = smoke_release(dir, "crm");
    let artifact = (format!("file://{}", archive.display()), sha);
    let a = platform(
        &hosts,
        dir,
        "a.yaml",
        "acme-crm",
        ("a1", "198.18.0.11"),
        &artifact,
        &ca_pem,
    );
    let b = platform(
        &hosts,
        dir,
        "b.yaml",
        "acme-crm-next",
        ("b1", "198.18.0.12"),
        &artifact,
        &ca_pem,
    );

    // the S3 keys are given, never invented: without one, the plan says how to set it
    let key = dir.join(".terroir/acme-crm/secrets/backup-s3-secret-key");
    let saved = std::fs::read(&key).unwrap();
    std::fs::remove_file(&key).unwrap();
    let out = terroir().arg("plan").arg(&a).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("secret backup-s3-secret-key is not in the store")
            && text.contains("terroir secrets set"),
        "{text}"
    );
    assert!(!key.exists(), "a plan writes nothing");
    std::fs::write(&key, saved).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();

    let applies = apply_side_by_side(&[&a, &b]);
    // the stanza exists and the secrets' file is the database's only
    assert_eq!(
        on_host(
            "h1",
            "stat -c '%U %G %a' /etc/pgbackrest/conf.d/acme-crm-secrets.conf"
        )
        .trim(),
        "root postgres 640"
    );
    let cipher =
        std::fs::read_to_string(dir.join(".terroir/acme-crm/secrets/backup-cipher-pass")).unwrap();
    assert!(cipher.trim().len() >= 32, "a generated cipher pass");
    assert!(
        !on_host("h1", "cat /etc/pgbackrest/pgbackrest.conf").contains(cipher.trim()),
        "no secret in the rendered configuration"
    );
    for out in &applies {
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains(cipher.trim()),
            "no secret in the apply report"
        );
    }

    // a full backup, then rows A, the time T, rows B
    let out = terroir()
        .args(["--output", "json", "backup", "now"])
        .arg(&a)
        .args(["--type", "full"])
        .timeout(Duration::from_secs(600))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "backup now: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json_of(&out);
    assert_eq!(v["backup"]["backup"]["kind"], "full", "{v:#}");
    assert!(
        v["backup"]["backup"]["label"]
            .as_str()
            .unwrap()
            .ends_with('F'),
        "{v:#}"
    );
    assert!(
        v["backup"]["backup"]["databaseBytes"].as_u64().unwrap() > 1_000_000,
        "{v:#}"
    );

    sql(
        "h1",
        "crm",
        "create table probe (id int primary key, secret text not null)",
    );
    sql(
        "h1",
        "crm",
        "insert into probe select i, 'PLANTED-before-' || i || '-confidential' from generate_series(1, 500) i",
    );
    let t = sql(
        "h1",
        "crm",
        "select to_char(clock_timestamp() at time zone 'utc', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'",
    );
    // the commit of B must come after T, even on a coarse clock
    eventually(Duration::from_secs(5), "the clock to move past T", || {
        let now = sql(
            "h1",
            "crm",
            "select to_char(clock_timestamp() at time zone 'utc', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'",
        );
        if now > t { Ok(()) } else { Err(now) }
    });
    sql(
        "h1",
        "crm",
        "insert into probe select i, 'PLANTED-after-' || i || '-confidential' from generate_series(501, 700) i",
    );
    let segment = sql("h1", "crm", "select pg_walfile_name(pg_current_wal_lsn())");
    sql("h1", "crm", "select pg_switch_wal()");
    eventually(
        Duration::from_secs(120),
        "the WAL holding rows B archived",
        || {
            let last = sql(
                "h1",
                "crm",
                "select coalesce(last_archived_wal, '') from pg_stat_archiver",
            );
            if last >= segment {
                Ok(())
            } else {
                Err(format!("last archived {last}, waiting for {segment}"))
            }
        },
    );

    // an incremental one, for people: pgBackRest's progress, then label, size and time
    let out = terroir()
        .args(["backup", "now"])
        .arg(&a)
        .timeout(Duration::from_secs(600))
        .output()
        .unwrap();
    let said = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("backup command end: completed successfully"),
        "progress shown: {said}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("I (incr) of acme-crm on a1"),
        "{said}"
    );
    assert!(!said.contains(cipher.trim()));

    // the list shows the backups and a window reaching past T
    let out = terroir()
        .args(["--output", "json", "backup", "list"])
        .arg(&a)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = json_of(&out);
    assert_eq!(list["repository"]["cipher"], "aes-256-cbc", "{list:#}");
    assert_eq!(list["repository"]["backups"].as_array().unwrap().len(), 2);
    let text = terroir().args(["backup", "list"]).arg(&a).output().unwrap();
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("point-in-time restore reaches"),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );

    // every object in the bucket is encrypted: pgBackRest's cipher header, and no row in clear
    let report = s3(
        &ca,
        &format!(
            "keys = [o['Key'] for p in s3.get_paginator('list_objects_v2').paginate(Bucket='{BUCKET}') for o in p.get('Contents', [])]\n\
             def check(k):\n    body = s3.get_object(Bucket='{BUCKET}', Key=k)['Body'].read()\n    \
             return (k, len(body), body[:8] == b'Salted__', b'PLANTED' in body, b'confidential' in body)\n\
             import concurrent.futures\n\
             with concurrent.futures.ThreadPoolExecutor(8) as pool:\n    \
             for r in pool.map(check, keys):\n        print(*r)"
        ),
    );
    let objects: Vec<&str> = report.lines().collect();
    assert!(
        objects
            .iter()
            .any(|l| l.starts_with("acme-crm/backup/acme-crm/")),
        "backups of acme-crm in the bucket: {report}"
    );
    assert!(
        objects
            .iter()
            .any(|l| l.starts_with("acme-crm/archive/acme-crm/")),
        "archived WAL in the bucket: {report}"
    );
    for line in &objects {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f[f.len() - 2..], ["False", "False"], "plaintext in {line}");
        if f[1] != "0" {
            assert_eq!(f[2], "True", "not encrypted: {line}");
        }
    }

    // the destination holds data of its own: refused without --replace, nothing changed
    sql(
        "h2",
        "crm",
        "create table if not exists scratch (n int); insert into scratch values (42)",
    );
    let out = terroir()
        .args(["backup", "restore"])
        .arg(&a)
        .args(["--to-time", &t, "--into"])
        .arg(&b)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("holds data"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sql("h2", "crm", "select n from scratch"), "42");
    // a time outside the window is refused, with the window
    let out = terroir()
        .args(["backup", "restore"])
        .arg(&a)
        .args(["--to-time", "2001-01-01 00:00:00+00", "--replace", "--into"])
        .arg(&b)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("outside the recoverable window"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // a dry run says what it would do
    let out = terroir()
        .args(["--output", "json", "backup", "restore"])
        .arg(&a)
        .args(["--to-time", &t, "--replace", "--dry-run", "--into"])
        .arg(&b)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json_of(&out)["restored"], false);
    assert_eq!(sql("h2", "crm", "select n from scratch"), "42");

    // the restore: rows A, not rows B, and not the destination's own table
    let out = terroir()
        .args(["backup", "restore"])
        .arg(&a)
        .args(["--to-time", &t, "--replace", "--into"])
        .arg(&b)
        .timeout(Duration::from_secs(900))
        .output()
        .unwrap();
    let said = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "restore: {said}");
    assert!(said.contains("archiving is off"), "{said}");
    assert_eq!(
        sql(
            "h2",
            "crm",
            "select count(*) from probe where secret like 'PLANTED-before-%'"
        ),
        "500"
    );
    assert_eq!(
        sql("h2", "crm", "select count(*) from probe where id > 500"),
        "0"
    );
    assert_eq!(
        sql(
            "h2",
            "postgres",
            "select count(*) from pg_tables where tablename = 'scratch'"
        ),
        "0"
    );
    assert_eq!(sql("h2", "postgres", "select pg_is_in_recovery()"), "f");
    // the restored database does not archive into acme-crm's stanza, and the source still does
    assert_eq!(sql("h2", "postgres", "show archive_mode"), "off");
    // the destination's application connects with its own password
    eventually(
        Duration::from_secs(60),
        "the app on h2 reaching the restored database",
        || match http_get("198.18.0.12:8080", "/healthz") {
            Ok(200) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    assert_eq!(
        on_host(
            "h2",
            "ls -a /var/lib/postgresql | grep -c terroir-restore || true"
        )
        .trim(),
        "0",
        "the temporary configuration is gone"
    );

    // the last success is on h1's node exporter
    // over HTTPS when the exporter has a certificate (web.yml), else plain HTTP
    let metrics = on_host(
        "h1",
        "get='GET /metrics HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n'; \
         if grep -qs web.config.file /etc/default/prometheus-node-exporter; then printf \"$get\" | openssl s_client -connect 127.0.0.1:9100 -quiet -ign_eof 2>/dev/null; \
         else exec 3<>/dev/tcp/127.0.0.1/9100 && printf \"$get\" >&3 && cat <&3; fi",
    );
    let line = metrics
        .lines()
        .find(|l| l.starts_with("terroir_backup_last_success_timestamp_seconds{"))
        .unwrap_or_else(|| panic!("no backup metric on the node exporter"));
    assert!(line.contains("stanza=\"acme-crm\""), "{line}");
    let when: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - when).abs() < 900.0, "a recent success: {line}");

    // rewinding the source itself needs --replace; then it keeps archiving into its own stanza
    let out = terroir()
        .args(["backup", "restore"])
        .arg(&a)
        .args(["--to-time", &t])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("Pass --replace to do so; nothing was changed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sql("h1", "crm", "select count(*) from probe"), "700");
    let out = terroir()
        .args(["backup", "restore"])
        .arg(&a)
        .args(["--to-time", &t, "--replace"])
        .timeout(Duration::from_secs(900))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rewind: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sql("h1", "crm", "select count(*) from probe"), "500");
    assert_eq!(sql("h1", "postgres", "show archive_mode"), "on");
    let out = terroir()
        .args(["--output", "json", "backup", "now"])
        .arg(&a)
        .args(["--type", "full"])
        .timeout(Duration::from_secs(600))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "a backup after the rewind: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    drop(moto);
    drop(hosts);
}

/// promtool runs the rendered rules against synthetic series: the alert stays quiet while the
/// last backup is younger than the schedule allows (daily: 24 h plus a 2 h margin), fires after,
/// and fires when no backup was ever published.
#[test]
fn the_backup_alert_follows_the_schedule() {
    let tmp = tempfile::tempdir().unwrap();
    let out = render(&example("baremetal.yaml"), tmp.path(), "r");
    let rules = out.join("baremetal/hosts/ops1/terroir-rules.yml");
    let text = std::fs::read_to_string(&rules).unwrap();
    assert!(
        text.contains("> 93600"),
        "daily incremental backups: 26 h: {text}"
    );
    let summary = "The last successful backup of acme-crm is older than 26h (schedules: full `30 1 * * 0`, incremental `15 2 * * *`)";
    let missing = "No successful backup of acme-crm is known (none for 26h): check `terroir backup list` and /var/log/pgbackrest on the database host";
    let tests = format!(
        r#"rule_files: [{rules:?}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      # last success at time 0, never again
      - series: 'terroir_backup_last_success_timestamp_seconds{{stanza="acme-crm", instance="db1:9100", job="node"}}'
        values: '0+0x1700'
      # a stanza whose backups stay fresh
      - series: 'terroir_backup_last_success_timestamp_seconds{{stanza="fresh", instance="db2:9100", job="node"}}'
        values: '0+60x1700'
    alert_rule_test:
      - eval_time: 25h
        alertname: BackupTooOld
        exp_alerts: []
      - eval_time: 1565m
        alertname: BackupTooOld
        exp_alerts: []
      - eval_time: 1580m
        alertname: BackupTooOld
        exp_alerts:
          - exp_labels: {{severity: critical, stanza: acme-crm}}
            exp_annotations:
              summary: "{summary}"
      - eval_time: 1580m
        alertname: BackupMissing
        exp_alerts: []
  - interval: 1m
    input_series:
      - series: 'up{{job="node"}}'
        values: '1+0x1700'
    alert_rule_test:
      - eval_time: 25h
        alertname: BackupMissing
        exp_alerts: []
      - eval_time: 1565m
        alertname: BackupMissing
        exp_alerts:
          - exp_labels: {{severity: critical, stanza: acme-crm}}
            exp_annotations:
              summary: "{missing}"
"#,
        rules = rules.display().to_string()
    );
    let file = tmp.path().join("backup-alert-test.yml");
    promtool_test_rules(&file, &tests);
}

/// promtool runs the rendered rules against synthetic series: a failed backup alerts at once
/// while it is newer than the last success, or when nothing ever succeeded, and stops when a
/// backup succeeds again.
#[test]
fn a_failed_backup_alerts_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let out = render(&example("baremetal.yaml"), tmp.path(), "r");
    let rules = out.join("baremetal/hosts/ops1/terroir-rules.yml");
    let summary = |stanza: &str| {
        format!(
            "The last backup of {stanza} failed: the backup storage (https://s3.rbx.io.cloud.ovh.net) may be unreachable; the database keeps serving, but nothing new is backed up until a backup succeeds (see /var/log/pgbackrest on the database host)"
        )
    };
    let tests = format!(
        r#"rule_files: [{rules:?}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      # succeeded at 0, failed at 10m (published from then on), succeeded again at 20m
      - series: 'terroir_backup_last_success_timestamp_seconds{{stanza="acme-crm", instance="db1:9100", job="node"}}'
        values: '0+0x19 1200+0x20'
      - series: 'terroir_backup_last_failure_timestamp_seconds{{stanza="acme-crm", instance="db1:9100", job="node"}}'
        values: '_x10 600+0x30'
      # failed once long ago, succeeded since
      - series: 'terroir_backup_last_failure_timestamp_seconds{{stanza="recovered", instance="db2:9100", job="node"}}'
        values: '60+0x40'
      - series: 'terroir_backup_last_success_timestamp_seconds{{stanza="recovered", instance="db2:9100", job="node"}}'
        values: '120+0x40'
      # never succeeded
      - series: 'terroir_backup_last_failure_timestamp_seconds{{stanza="never", instance="db3:9100", job="node"}}'
        values: '_x5 300+0x35'
    alert_rule_test:
      - eval_time: 4m
        alertname: BackupFailing
        exp_alerts: []
      - eval_time: 5m
        alertname: BackupFailing
        exp_alerts:
          - exp_labels: {{severity: critical, stanza: never}}
            exp_annotations:
              summary: "{never}"
      - eval_time: 10m
        alertname: BackupFailing
        exp_alerts:
          - exp_labels: {{severity: critical, stanza: acme-crm}}
            exp_annotations:
              summary: "{acme}"
          - exp_labels: {{severity: critical, stanza: never}}
            exp_annotations:
              summary: "{never}"
      - eval_time: 20m
        alertname: BackupFailing
        exp_alerts:
          - exp_labels: {{severity: critical, stanza: never}}
            exp_annotations:
              summary: "{never}"
"#,
        rules = rules.display().to_string(),
        acme = summary("acme-crm"),
        never = summary("never"),
    );
    let file = tmp.path().join("backup-failing-test.yml");
    promtool_test_rules(&file, &tests);
}

#[test]
fn a_bad_backup_endpoint_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let doc = variant("baremetal.yaml", dir.path(), "p.yaml", |t| {
        t.replace("      url: https://s3.rbx.io.cloud.ovh.net\n", "      url: http://s3.rbx.io.cloud.ovh.net\n      caCertificate: \"not a certificate\"\n")
    });
    let out = terroir().arg("validate").arg(&doc).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("reach S3 over HTTPS only"), "{err}");
    assert!(err.contains("this is not a PEM certificate"), "{err}");
    assert!(err.contains("p.yaml:"), "file and line named: {err}");
    // and the commands say what is missing when a platform takes no backups
    let off = variant("baremetal.yaml", dir.path(), "off.yaml", |t| {
        t.replace("    backups:\n", "    backups:\n      enabled: false\n")
    });
    let out = terroir()
        .args(["backup", "list"])
        .arg(&off)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("takes no backups"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // the help teaches, with an example
    let help = terroir()
        .args(["backup", "restore", "--help"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&help.stdout)
            .contains("Example: terroir backup restore platform.yaml --to-time"),
        "{}",
        String::from_utf8_lossy(&help.stdout)
    );
    // a target time needs its offset
    let out = terroir()
        .args(["backup", "restore"])
        .arg(example("baremetal.yaml"))
        .args(["--to-time", "yesterday"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("expected `YYYY-MM-DD HH:MM:SS+00`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `promtool test rules` on `tests` written to `file`: passes, or panics with what it said.
fn promtool_test_rules(file: &std::path::Path, tests: &str) {
    std::fs::write(file, tests).unwrap();
    let out = Command::new("promtool")
        .arg("test")
        .arg("rules")
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool test rules:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
