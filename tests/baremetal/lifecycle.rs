//! The platform's whole life on real test hosts: db1 (h1) with the database and its backups
//! (pgBackRest into moto, over TLS, on this machine's bridge address), web1 and web2 (h2, h3)
//! each with the application behind nginx for the public name. `destroy` is refused while no
//! recent backup or export exists; a good release rolls out under load (wrk through both
//! fronts) without one failed request; a release failing its health check is switched back on
//! web1 by itself while web2 never changes; a release that adds a column and writes rows is
//! rolled back with its data (the loss stated first); then `destroy --delete-data` leaves
//! nothing of terroir's but what its plan keeps, empties the S3 prefix, writes an erasure record
//! that verifies, and a new apply deploys the platform again.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::hosts::{TestHosts, on};
use common::*;
use serde_json::Value;

const S3_AT: &str = "198.18.0.1:9443";
const BUCKET: &str = "terroir-lifecycle";
const REGION: &str = "eu-west-3";
const DIR: &str = "/opt/acme-crm/app";
const FRONTS: [&str; 2] = ["198.18.0.12", "198.18.0.13"];

fn sql(query: &str) -> String {
    on(
        "h1",
        &format!("runuser -u postgres -- psql -d crm -XAtqc \"{query}\""),
    )
    .trim()
    .to_owned()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(out)))
}

/// The example's ACME CA left out, its public name kept: nginx serves the platform CA's
/// certificate for it.
fn without_acme_ca(t: &str) -> String {
    let start = t.find("    acmeCa:\n").unwrap();
    let end = start + t[start..].find("      country: GR\n").unwrap() + "      country: GR\n".len();
    format!("{}{}", &t[..start], &t[end..])
}

fn document(hosts: &TestHosts, dir: &Path, artifact: &(String, String), ca: &str) -> PathBuf {
    variant("baremetal.yaml", dir, "platform.yaml", |t| {
        common::s3::backups_into(
            &on_test_hosts(&without_acme_ca(&two_hosts_per_role(&t)), hosts, artifact),
            S3_AT,
            BUCKET,
            REGION,
            ca,
        )
    })
}

/// A release made from the smoke application's: `launcher` as its `bin/crm`.
fn release(dir: &Path, base: &Path, name: &str, launcher: &str) -> (String, String) {
    let work = dir.join(format!("{name}.d"));
    std::fs::create_dir_all(&work).unwrap();
    let ok = Command::new("tar")
        .arg("-xzf")
        .arg(base)
        .arg("-C")
        .arg(&work)
        .status()
        .unwrap();
    assert!(ok.success());
    std::fs::write(work.join("bin/crm"), launcher).unwrap();
    let archive = dir.join(name);
    let ok = Command::new("tar")
        .args(["-I", "gzip -1", "-cf"])
        .arg(&archive)
        .arg("-C")
        .arg(&work)
        .arg("bin")
        .status()
        .unwrap();
    assert!(ok.success());
    (
        format!("file://{}", archive.display()),
        terroir::text::sha256_hex(&std::fs::read(&archive).unwrap()),
    )
}

fn run(args: &[&str], doc: &Path) -> std::process::Output {
    let mut cmd = terroir();
    let (before, after): (Vec<&str>, Vec<&str>) = {
        let at = args.iter().position(|a| *a == "FILE").unwrap();
        (args[..at].to_vec(), args[at + 1..].to_vec())
    };
    cmd.args(before)
        .arg(doc)
        .args(after)
        .timeout(Duration::from_secs(1500))
        .output()
        .unwrap()
}

fn current(host: &str) -> String {
    on(host, &format!("readlink {DIR}/current"))
        .trim()
        .trim_start_matches("releases/")
        .to_owned()
}

fn history(host: &str) -> Vec<Value> {
    on(host, &format!("cat {DIR}/releases/history.jsonl"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// An HTTPS request through a front, as a client of the public name makes it.
fn https(method: &str, front: &str, path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args([
            "-sk",
            "-m",
            "30",
            "-X",
            method,
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
        ])
        .arg(format!("https://{front}{path}"))
        .args(["-H", "Host: crm.acme.example.fr"])
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = body.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

/// Each front answers `method path` with `code` within a minute.
fn serves(method: &str, path: &str, code: u16) {
    for front in FRONTS {
        eventually(
            Duration::from_secs(60),
            &format!("{method} {path} through {front}"),
            || match https(method, front, path) {
                (c, _) if c == code => Ok(()),
                other => Err(format!("{other:?}")),
            },
        );
    }
}

/// wrk through each front for as long as it runs: the requests every front answered, and the
/// ones that failed.
struct Load(Vec<Child>);

impl Load {
    fn start() -> Load {
        Load(
            FRONTS
                .iter()
                .map(|front| {
                    Command::new("wrk")
                        .args([
                            "-t1",
                            "-c4",
                            "-d3600s",
                            "--timeout",
                            "10s",
                            "-H",
                            "Host: crm.acme.example.fr",
                        ])
                        .arg(format!("https://{front}/healthz"))
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .unwrap()
                })
                .collect(),
        )
    }

    /// Stop (wrk prints its summary on SIGINT): (requests, failures and their lines) per front.
    fn stop(self) -> Vec<(u64, Vec<String>)> {
        self.0
            .into_iter()
            .map(|child| {
                let pid = child.id().to_string();
                Command::new("kill").args(["-INT", &pid]).status().unwrap();
                let out = child.wait_with_output().unwrap();
                let summary = String::from_utf8_lossy(&out.stdout).into_owned();
                let requests = summary
                    .lines()
                    .find_map(|l| l.trim().split_once(" requests in "))
                    .and_then(|(n, _)| n.trim().parse().ok())
                    .unwrap_or_else(|| {
                        panic!(
                            "wrk's summary: {summary}\n{}",
                            String::from_utf8_lossy(&out.stderr)
                        )
                    });
                let failures = summary
                    .lines()
                    .filter(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
                    .map(|l| l.trim().to_owned())
                    .collect();
                (requests, failures)
            })
            .collect()
    }
}

fn no_request_failed(load: Vec<(u64, Vec<String>)>, during: &str) {
    for (front, (requests, failures)) in FRONTS.iter().zip(load) {
        eprintln!(
            "wrk through {front} during {during}: {requests} requests, failures {failures:?}"
        );
        assert!(
            requests > 0,
            "wrk sent nothing through {front} during {during}"
        );
        assert!(
            failures.is_empty(),
            "{front}: requests failed during {during} ({requests} sent): {failures:?}"
        );
    }
}

#[test]
fn a_platform_upgrades_rolls_back_with_its_data_and_is_destroyed_leaving_nothing() {
    let hosts = TestHosts::installed(3);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (_moto, ca) = common::s3::start(dir, &[], "198.18.0.1", 9443, 9444, BUCKET, REGION);
    let ca_pem = std::fs::read_to_string(&ca).unwrap();
    let (base, sha) = smoke_release(dir, "crm");
    let first = (format!("file://{}", base.display()), sha);
    let doc = document(&hosts, dir, &first, &ca_pem);
    common::s3::give_keys(dir, "acme-crm");
    let out = run(&["apply", "FILE"], &doc);
    assert!(out.status.success(), "first apply: {}", text(&out));
    serves("GET", "/healthz", 200);

    // No backup and no export yet: destroy is refused, and changes nothing.
    let key = dir.join("attest.key");
    let out = terroir()
        .args(["keygen", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let key_arg = key.display().to_string();
    let out = run(
        &[
            "--output",
            "json",
            "destroy",
            "FILE",
            "--delete-data",
            "--key",
            &key_arg,
            "--yes",
        ],
        &doc,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no export or backup of acme-crm younger than 24 hours"),
        "{}",
        text(&out)
    );
    let out = run(&["--output", "json", "plan", "FILE"], &doc);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        json_of(&out)["changed"],
        0,
        "destroy changed nothing: {}",
        text(&out)
    );
    assert!(!dir.join("erasure-record.json").exists());

    // A good release, rolled out under load through both fronts: no request fails, and the
    // restore point taken before it is recorded with it.
    let second = release(
        dir,
        &base,
        "second.tar.gz",
        "#!/bin/sh\n# the second release\nexec \"$(dirname \"$0\")/terroir\" smoke-app\n",
    );
    let load = Load::start();
    let out = run(&["apply", "FILE"], &variant_of(&doc, &first, &second));
    let seen = load.stop();
    assert!(out.status.success(), "second release: {}", text(&out));
    no_request_failed(seen, "the second release's rollout");
    for h in ["h2", "h3"] {
        assert_eq!(current(h), second.1, "{h}");
        let last = history(h).pop().unwrap();
        assert_eq!(
            (last["release"].as_str(), last["from"].as_str()),
            (Some(second.1.as_str()), Some(first.1.as_str())),
            "{h}"
        );
        assert!(
            last["restorePoint"]["name"]
                .as_str()
                .unwrap_or_default()
                .starts_with("terroir-"),
            "{h}: {last}"
        );
    }
    assert!(
        text(&out).contains("restore point terroir-"),
        "{}",
        text(&out)
    );

    // A release whose application does not start: web1 goes back to the second release by
    // itself, web2 is never touched, and both fronts keep serving.
    let broken = release(dir, &base, "broken.tar.gz", "#!/bin/sh\nexit 1\n");
    let web2_before = history("h3");
    let load = Load::start();
    let out = run(
        &["--output", "json", "apply", "FILE"],
        &variant_of(&doc, &first, &broken),
    );
    let seen = load.stop();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    no_request_failed(seen, "the broken release's rollout");
    let report = json_of(&out);
    let error = |name: &str| {
        report["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["name"] == name)
            .unwrap()["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let web1 = error("web1");
    let short = |r: &(String, String)| r.1[..12].to_owned();
    assert!(
        web1.contains(&format!(
            "release {} failed its health check on web1",
            short(&broken)
        )) && web1.contains("GET http://127.0.0.1:8080/healthz")
            && web1.contains(&format!("switched back to release {}", short(&second))),
        "{web1}"
    );
    assert!(error("web2").contains("not switched"), "{report:#}");
    assert_eq!(
        current("h2"),
        second.1,
        "web1 runs the second release again"
    );
    assert_eq!(history("h2").pop().unwrap()["by"], "switch-back");
    assert_eq!(current("h3"), second.1);
    assert_eq!(history("h3"), web2_before, "web2 never changed");

    // Rows written before the next upgrade, which adds a column and writes rows of its own.
    for i in 0..5 {
        let (code, body) = https("POST", FRONTS[i % 2], &format!("/rows?value=before-{i}"));
        assert_eq!(code, 201, "{body}");
    }
    let third = release(
        dir,
        &base,
        "third.tar.gz",
        "#!/bin/sh\nexport SMOKE_MIGRATE='alter table smoke_rows add column if not exists note text'\nexec \"$(dirname \"$0\")/terroir\" smoke-app\n",
    );
    let out = run(&["apply", "FILE"], &variant_of(&doc, &first, &third));
    assert!(out.status.success(), "third release: {}", text(&out));
    for i in 0..3 {
        let (code, body) = https("POST", FRONTS[i % 2], &format!("/rows?value=after-{i}"));
        assert_eq!(code, 201, "{body}");
    }
    assert_eq!(
        sql(
            "select count(*) from information_schema.columns where table_name = 'smoke_rows' and column_name = 'note'"
        ),
        "1"
    );

    // Without --yes, the rollback states what the data loses, and changes nothing.
    let third_doc = variant_of(&doc, &first, &third);
    let out = run(
        &["--output", "json", "rollback", "FILE", "--with-data"],
        &third_doc,
    );
    assert!(out.status.success(), "{}", text(&out));
    let stated = json_of(&out);
    assert_eq!(stated["changed"], false, "{stated:#}");
    assert_eq!(stated["to"], second.1.as_str());
    let tables = stated["loss"]["tables"].as_array().unwrap();
    assert_eq!(
        tables
            .iter()
            .map(|t| (t["table"].as_str().unwrap(), t["rows"].as_u64().unwrap()))
            .collect::<Vec<_>>(),
        [("public.smoke_rows", 3)],
        "{stated:#}"
    );
    assert!(stated["loss"]["seconds"].as_i64().unwrap() >= 0);
    assert_eq!(current("h2"), third.1);
    assert_eq!(sql("select count(*) from smoke_rows"), "8");

    // With --yes: said first, then done; the second release runs against the database as it was.
    let started = std::time::Instant::now();
    let out = run(&["rollback", "FILE", "--with-data", "--yes"], &third_doc);
    eprintln!(
        "rollback --with-data --yes took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    let statement = said
        .find("public.smoke_rows: 3 rows written since")
        .unwrap_or_else(|| panic!("the loss stated: {said}"));
    let restoring = said
        .find("restoring the database to terroir-")
        .unwrap_or_else(|| panic!("the restore: {said}"));
    assert!(statement < restoring, "stated before acting: {said}");
    for h in ["h2", "h3"] {
        assert_eq!(current(h), second.1, "{h}");
    }
    assert_eq!(
        sql("select string_agg(value, ',' order by id) from smoke_rows"),
        "before-0,before-1,before-2,before-3,before-4"
    );
    assert_eq!(
        sql(
            "select count(*) from information_schema.columns where table_name = 'smoke_rows' and column_name = 'note'"
        ),
        "0"
    );
    for front in FRONTS {
        assert_eq!(
            https("GET", front, "/rows/count"),
            (200, "5\n".to_owned()),
            "{front}"
        );
    }

    // destroy: its plan, then carried out; nothing of terroir's left but what the plan keeps.
    let out = run(
        &["--output", "json", "destroy", "FILE", "--delete-data"],
        &doc,
    );
    assert!(out.status.success(), "{}", text(&out));
    let plan = json_of(&out);
    let items = plan["plan"]["items"].as_array().unwrap().clone();
    assert!(
        plan["follows"]["kind"] == "backup",
        "a recent backup: {plan:#}"
    );
    assert!(
        items
            .iter()
            .any(|i| i["kind"] == "backups" && i["action"] == "remove"),
        "{plan:#}"
    );
    let record = dir.join("erasure-record.json");
    let record_arg = record.display().to_string();
    let started = std::time::Instant::now();
    let out = run(
        &[
            "destroy",
            "FILE",
            "--delete-data",
            "--key",
            &key_arg,
            "--record",
            &record_arg,
            "--yes",
        ],
        &doc,
    );
    eprintln!(
        "destroy --delete-data --yes took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(out.status.success(), "destroy: {}", text(&out));
    check_left(&hosts, &items);
    let listed = common::s3::boto3(
        &format!("https://{S3_AT}"),
        REGION,
        &ca,
        &format!("print(s3.list_objects_v2(Bucket='{BUCKET}').get('KeyCount'))"),
    )
    .unwrap();
    assert_eq!(listed.trim(), "0", "the S3 prefix is empty");
    let pubkey = format!("{key_arg}.pub");
    let out = terroir()
        .args(["--output", "json", "attest", "verify"])
        .arg(&record)
        .args(["--pubkey", &pubkey])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the erasure record verifies: {}",
        text(&out)
    );
    let out = run(
        &[
            "destroy",
            "FILE",
            "--delete-data",
            "--key",
            &key_arg,
            "--yes",
        ],
        &doc,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("nothing of acme-crm is left to destroy"),
        "{}",
        text(&out)
    );

    // And a new apply deploys the platform again, from nothing.
    let out = run(&["apply", "FILE"], &doc);
    assert!(out.status.success(), "apply after destroy: {}", text(&out));
    serves("POST", "/rows?value=again", 201);
    assert_eq!(
        sql("select count(*) from smoke_rows"),
        "2",
        "a new database"
    );
}

/// The document naming `to` as its release instead of `from`.
fn variant_of(doc: &Path, from: &(String, String), to: &(String, String)) -> PathBuf {
    let text = std::fs::read_to_string(doc).unwrap();
    let name = format!("platform-{}.yaml", &to.1[..12]);
    let path = doc.with_file_name(name);
    std::fs::write(&path, text.replace(&from.0, &to.0).replace(&from.1, &to.1)).unwrap();
    path
}

/// Each item of the plan as destroy left it, then every path the hosts hold now that they did
/// not before their first apply: under a path the plan keeps, or the hosts' own (logs, runtime
/// files, the package manager's state), never anything else.
fn check_left(hosts: &TestHosts, items: &[Value]) {
    let kept: Vec<(String, String)> = items
        .iter()
        .filter(|i| i["action"] == "keep")
        .map(|i| (i["place"].as_str().unwrap().to_owned(), path_of(i)))
        .collect();
    for item in items {
        let (place, kind, what) = (
            item["place"].as_str().unwrap(),
            item["kind"].as_str().unwrap(),
            path_of(item),
        );
        let host = host_of(place);
        let check = match (kind, item["action"].as_str().unwrap()) {
            // gone, or a package's own file as the package ships it (put back)
            ("file" | "secret", "remove") if !what.contains('*') => format!(
                "[ ! -e '{what}' ] || {{ p=$(dpkg-query -S '{what}' | head -n 1 | cut -d: -f1); ! dpkg -V \"$p\" | grep -q ' {what}$'; }}"
            ),
            ("directory", "remove") => format!("! [ -e '{what}' ]"),
            ("file" | "secret" | "directory", "keep") => format!("[ -e '{what}' ]"),
            ("user", "remove") => format!("! id -u '{what}' >/dev/null 2>&1"),
            ("service", "stop") => format!("! ls /etc/rc2.d/S??'{what}' >/dev/null 2>&1"),
            ("firewall", "remove") => "! nft list table inet terroir >/dev/null 2>&1".into(),
            ("data", "remove") if what.starts_with("/var/lib/postgresql/") => {
                format!("[ \"$(ls {what}/base | wc -l)\" = 3 ]")
            }
            ("data", "remove") => format!("[ -z \"$(ls -A '{what}' 2>/dev/null)\" ]"),
            ("package", "keep") => format!("dpkg-query -W '{what}' >/dev/null"),
            _ => continue,
        };
        on(
            &host,
            &format!(
                "{check} || {{ echo '{place}: {kind} {what} is not as its plan said ({})' >&2; exit 1; }}",
                item["action"]
            ),
        );
    }
    let state = hosts.dir().parent().unwrap().to_owned();
    for (i, host) in ["h1", "h2", "h3"].iter().enumerate() {
        let place = ["db1", "web1", "web2"][i];
        // no process of the platform's runs: only the host's own (and this check's)
        let running: BTreeSet<String> = on(host, "ps -eo comm=")
            .lines()
            .map(|l| l.trim().to_owned())
            .filter(|c| !["sshd", "rsyslogd", "cron", "sh", "ps"].contains(&c.as_str()))
            .collect();
        assert!(running.is_empty(), "{place} still runs {running:?}");
        let before: BTreeSet<String> =
            std::fs::read_to_string(state.join(host).join("baseline-paths"))
                .unwrap()
                .lines()
                .map(|l| match l.trim_start_matches('.') {
                    "" => "/".to_owned(),
                    p => p.to_owned(),
                })
                .collect();
        let now = on(host, "find / -xdev | sort");
        let mut left = Vec::new();
        for path in now.lines() {
            if before.contains(path) || the_hosts_own(path) {
                continue;
            }
            let kept_here = kept
                .iter()
                .any(|(p, k)| p == place && (path == k || path.starts_with(&format!("{k}/"))));
            if !kept_here {
                left.push(path.to_owned());
            }
        }
        assert!(
            left.is_empty(),
            "{place} holds what no plan item keeps: {left:#?}"
        );
        // the files changed since, whatever made them: none names the platform
        let named = on(
            host,
            "cd / && grep -rlIs -e acme-crm -e acme_crm --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev --exclude-dir=run --exclude-dir=tmp --exclude-dir=log /etc /opt /var /srv /home /root 2>/dev/null || true",
        );
        let named: Vec<&str> = named
            .lines()
            .filter(|p| !the_hosts_own(p))
            .filter(|p| {
                !kept
                    .iter()
                    .any(|(pl, k)| pl == place && (p == k || p.starts_with(&format!("{k}/"))))
            })
            .collect();
        assert!(
            named.is_empty(),
            "{place}: files still naming the platform: {named:#?}"
        );
    }
}

/// An item's path: the first word of what it names (data items say what they hold after it).
fn path_of(item: &Value) -> String {
    item["what"]
        .as_str()
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned()
}

fn host_of(place: &str) -> String {
    match place {
        "db1" => "h1",
        "web1" => "h2",
        "web2" => "h3",
        other => panic!("no test host for {other}"),
    }
    .to_owned()
}

/// Paths a host writes for itself while it runs, whoever runs on it: logs, runtime and
/// temporary files, caches, the package manager's and the services' own state, root's shell.
fn the_hosts_own(path: &str) -> bool {
    [
        "/var/log/", "/run/", "/tmp/", "/var/tmp/", "/var/cache/", "/var/lib/apt/", "/var/lib/dpkg/",
        "/var/lib/ucf/", "/var/lib/systemd/", "/var/lib/logrotate/", "/var/backups/", "/root/",
        "/var/lib/postfix/", "/var/lib/nginx/", "/var/spool/postfix/", "/var/lib/prometheus/",
        "/var/lib/postgresql/", "/etc/postgresql/", "/var/spool/cron/", "/etc/rc",
        "/var/lib/sudo/", "/home/deploy/",
    ]
    .iter()
    .any(|p| path.starts_with(p) || format!("{path}/") == *p)
        // the account databases' backups (passwd-, group-...), written by useradd and userdel
        || (path.starts_with("/etc/") && path.ends_with('-') && !path[5..].contains('/'))
}
