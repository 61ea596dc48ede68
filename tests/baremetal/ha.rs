//! High availability on real hosts: examples/baremetal-ha.yaml on five test hosts (db1..db3 on
//! h1..h3: PostgreSQL under Patroni with etcd; ops1 and ops2 on h4 and h5: the MTA, monitoring
//! and the application on each). A writer on ops1 inserts numbered rows through the multi-host
//! connection string (target_session_attrs=read-write) and records each acknowledged commit;
//! the tests cut the primary's host off, crash its PostgreSQL and switch it over, and check that
//! writes resume, that no acknowledged write is lost, and that a former primary rejoins.
//!
//! A sixth host (h6) runs the S3 server the platform backs up into: WAL archiving goes on from
//! whichever member is primary, and `terroir backup now` backs up from it. The seventh and eighth
//! (h7, h8) play the platform's SMTP relay and fallback relay (Postfix) and its two DNS resolvers
//! (unbound), which answer the relays' names: tests/baremetal/continuity.rs takes each away.
//!
//! Each test leaves the platform as it found it: three members running, one of them the leader.
//! The time without acknowledged writes is measured and reported (never asserted: it depends on
//! the machine); `TERROIR_HA_RESULTS`, when set, is a file each measure is appended to, as a JSON
//! line (benches/ha.sh reads it).
#![allow(clippy::unwrap_used)]

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::hosts::TestHosts;
use common::tls::{Endpoint, Start, assert_anssi_tls};
use common::*;
use serde_json::Value;

/// The name the deployed platform is shared under.
const FIVE_HOSTS: &str = "five hosts: three database members, two of each other role; S3 on a sixth; relays and resolvers on a seventh and an eighth";
/// The relay (h7) and the fallback relay (h8), each also a DNS resolver: host, address, name.
pub const RELAY: (&str, &str, &str) = ("h7", "198.18.0.17", "relay.test");
pub const FALLBACK: (&str, &str, &str) = ("h8", "198.18.0.18", "fallback.test");
/// Names the document declares that the resolvers answer, at an address no host holds: the
/// drill cuts the platform's traffic to them, which never goes anywhere.
const ELSEWHERE: [&str; 2] = ["registry.acme.example.fr", "deb.debian.org"];
const NOWHERE: &str = "198.18.0.19";
/// The S3 server (moto behind TLS) in h6's network namespace.
const S3: &str = "198.18.0.16:9000";
const BUCKET: &str = "terroir-backups";
const REGION: &str = "eu-west-3";
const PLATFORM: &str = "acme-crm";
/// The database members: document name, test host, address.
const MEMBERS: [(&str, &str, &str); 3] = [
    ("db1", "h1", "198.18.0.11"),
    ("db2", "h2", "198.18.0.12"),
    ("db3", "h3", "198.18.0.13"),
];
/// Where the writer runs: ops1, an application host.
const WRITER: &str = "h4";

fn test_host(member: &str) -> &'static str {
    MEMBERS
        .iter()
        .find(|(m, _, _)| *m == member)
        .map(|(_, h, _)| *h)
        .unwrap_or_else(|| panic!("no member {member}"))
}

fn hostctl(args: &[&str]) -> std::process::Output {
    std::process::Command::new(root().join("tests/hosts/hostctl"))
        .args(args)
        .output()
        .unwrap()
}

pub use common::hosts::on;

/// The deployed platform: its hosts, its document, and how long its first apply took.
pub struct Ha {
    _hosts: TestHosts,
    pub dir: PathBuf,
    pub doc: PathBuf,
}

/// The relays and resolvers the platform depends on, on h7 and h8.
fn dependencies() {
    let mut records: Vec<(&str, &str)> = vec![(RELAY.2, RELAY.1), (FALLBACK.2, FALLBACK.1)];
    records.extend(ELSEWHERE.iter().map(|n| (*n, NOWHERE)));
    common::relays::smtp_relay(RELAY.0, RELAY.1, true);
    common::relays::smtp_relay(FALLBACK.0, FALLBACK.1, true);
    for (h, address, _) in [RELAY, FALLBACK] {
        common::relays::dns_resolver(h, address, &records);
    }
}

pub fn ha() -> Ha {
    let hosts = TestHosts::deployed(FIVE_HOSTS, 8, |hosts| {
        let dir = hosts.dir();
        dependencies();
        // the relays' credentials, which the platform leaves to its operators: the relays here
        // ask for none, but Postfix must find the file
        for h in ["h4", "h5"] {
            on(
                h,
                &format!(
                    "umask 077; printf '[{}]:25 drill:unused\n[{}]:25 drill:unused\n' > /etc/postfix/sasl_passwd",
                    RELAY.2, FALLBACK.2
                ),
            );
        }
        // moto lives as long as the hosts: `hostctl down` ends what runs in their namespaces
        let (moto, ca) = common::s3::start(
            &dir,
            &["ip", "netns", "exec", "terroir-h6"],
            "198.18.0.16",
            9000,
            9001,
            BUCKET,
            REGION,
        );
        std::mem::forget(moto);
        let doc = document(hosts, &dir, &std::fs::read_to_string(ca).unwrap());
        let started = Instant::now();
        let out = terroir()
            .arg("apply")
            .arg(&doc)
            .args(["--output", "json"])
            .timeout(Duration::from_secs(1500))
            .output()
            .unwrap();
        let seconds = started.elapsed().as_secs_f64();
        assert!(
            out.status.success(),
            "first apply: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("first apply of the five-host platform: {seconds:.1} s");
        record(serde_json::json!({"measure": "first-apply", "seconds": seconds}));
    });
    let dir = hosts.dir();
    Ha {
        doc: dir.join("platform.yaml"),
        dir,
        _hosts: hosts,
    }
}

/// The HA example on the test hosts: their key, the smoke application, no public name, backups
/// into the S3 server on h6 (trusting `ca_pem`).
fn document(hosts: &TestHosts, dir: &Path, ca_pem: &str) -> PathBuf {
    let (archive, sha) = smoke_release(dir, "crm");
    common::s3::give_keys(dir, PLATFORM);
    variant("baremetal-ha.yaml", dir, "platform.yaml", |t| {
        let t = t
            .replace(
                "url: smtp://smtp-relay.brevo.com:587",
                &format!("url: smtp://{}:25", RELAY.2),
            )
            .replace(
                "url: smtp://ssl0.ovh.net:587",
                &format!("url: smtp://{}:25", FALLBACK.2),
            )
            .replace(
                "dnsResolvers: [198.18.0.53]",
                &format!("dnsResolvers: [{}, {}]", RELAY.1, FALLBACK.1),
            )
            // alerts within seconds: the drill waits for BackupFailing to fire and resolve
            .replace(
                "      environment: production\n",
                "      environment: production\n      scrapeInterval: 5s\n",
            );
        common::s3::backups_into(
            &on_test_hosts(
                &without_public_name(&t),
                hosts,
                &(format!("file://{}", archive.display()), sha.clone()),
            ),
            S3,
            BUCKET,
            REGION,
            ca_pem,
        )
    })
}

fn record(measure: Value) {
    if let Ok(path) = std::env::var("TERROIR_HA_RESULTS") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        writeln!(f, "{measure}").unwrap();
    }
}

fn apply_changes_nothing(doc: &Path) {
    let out = terroir()
        .arg("apply")
        .arg(doc)
        .args(["--output", "json"])
        .timeout(Duration::from_secs(600))
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert!(
        out.status.success() && report["changed"] == 0,
        "the apply changed something or failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `terroir status --output json`: its exit status and report.
fn status(doc: &Path) -> (bool, Value) {
    let out = terroir()
        .arg("status")
        .arg(doc)
        .args(["--output", "json"])
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    (
        out.status.success(),
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
    )
}

/// Patroni's members as `terroir status` reports them: (host, role, healthy).
fn members(report: &Value) -> Vec<(String, String, bool)> {
    report["components"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["component"] == "patroni")
        .map(|c| {
            (
                c["host"].as_str().unwrap_or_default().to_owned(),
                c["role"].as_str().unwrap_or_default().to_owned(),
                c["healthy"] == true,
            )
        })
        .collect()
}

/// Patroni's view of the cluster from the first member that answers: (name, role, state, lag).
fn cluster() -> Vec<(String, String, String, Option<u64>)> {
    for (_, h, _) in MEMBERS {
        let out = hostctl(&[
            "exec",
            h,
            "sh",
            "-c",
            &format!(
                "curl -s --max-time 3 --cacert /etc/{PLATFORM}/tls/ca.crt https://127.0.0.1:8008/cluster"
            ),
        ]);
        let Ok(v) = serde_json::from_slice::<Value>(&out.stdout) else {
            continue;
        };
        return v["members"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                (
                    m["name"].as_str().unwrap_or_default().to_owned(),
                    m["role"].as_str().unwrap_or_default().to_owned(),
                    m["state"].as_str().unwrap_or_default().to_owned(),
                    m["lag"].as_u64(),
                )
            })
            .collect();
    }
    Vec::new()
}

/// Wait until the three members run, one of them the leader and the others caught up: the
/// leader's name.
fn healthy_cluster(limit: Duration) -> String {
    let mut last = Vec::new();
    eventually(
        limit,
        "three members running, one of them the leader, the others caught up",
        || {
            last = cluster();
            let leaders = last.iter().filter(|m| m.1 == "leader").count();
            let running = last
                .iter()
                .filter(|m| m.2 == "running" || m.2 == "streaming")
                .count();
            let caught_up = last
                .iter()
                .filter(|m| m.1 != "leader")
                .all(|m| m.3 == Some(0));
            if last.len() == 3 && leaders == 1 && running == 3 && caught_up {
                Ok(())
            } else {
                Err(format!("{last:?}"))
            }
        },
    );
    last.iter().find(|m| m.1 == "leader").unwrap().0.clone()
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A writer on ops1: numbered rows of run `run`, each through a new connection to whichever
/// member takes writes; each acknowledged commit is recorded with its time.
struct Writer {
    run: String,
}

const CONN: &str = "host=198.18.0.11,198.18.0.12,198.18.0.13 port=5432 dbname=crm user=crm target_session_attrs=read-write connect_timeout=2 sslmode=verify-full sslrootcert=/etc/acme-crm/tls/ca.crt";

impl Writer {
    fn start(run: &str) -> Writer {
        let psql = format!(
            "PGPASSWORD=\"$(cat /etc/{PLATFORM}/secrets/database-password)\" psql '{CONN}' -XAtq"
        );
        on(
            WRITER,
            &format!(
                "{psql} -c 'create table if not exists ha_writes (run text, n bigint, primary key (run, n))'"
            ),
        );
        let script = format!(
            "rm -f /tmp/writer-{run}.*; i=0; while [ ! -e /tmp/writer-{run}.stop ]; do i=$((i + 1)); \
             if {psql} -c \"insert into ha_writes values ('{run}', $i)\" 2>>/tmp/writer-{run}.err; \
             then echo \"$i $(date +%s.%N)\" >> /tmp/writer-{run}.acked; fi; done; touch /tmp/writer-{run}.done"
        );
        on(
            WRITER,
            &format!(
                "printf '%s\\n' {} > /tmp/writer-{run}.sh && setsid sh /tmp/writer-{run}.sh >/dev/null 2>&1 < /dev/null &",
                shell_quote(&script)
            ),
        );
        let w = Writer {
            run: run.to_owned(),
        };
        eventually(
            Duration::from_secs(60),
            "the writer's first commits",
            || {
                let n = w.acked().len();
                if n >= 20 {
                    Ok(())
                } else {
                    Err(format!(
                        "{n} acknowledged; {}",
                        on(WRITER, &format!("tail -n 5 /tmp/writer-{run}.err || true"))
                    ))
                }
            },
        );
        w
    }

    /// The acknowledged commits so far: (row number, time).
    fn acked(&self) -> Vec<(u64, f64)> {
        on(
            WRITER,
            &format!("cat /tmp/writer-{}.acked 2>/dev/null || true", self.run),
        )
        .lines()
        .filter_map(|l| {
            let (n, t) = l.split_once(' ')?;
            Some((n.parse().ok()?, t.parse().ok()?))
        })
        .collect()
    }

    /// Stop, and return every acknowledged commit.
    fn stop(self) -> Vec<(u64, f64)> {
        on(WRITER, &format!("touch /tmp/writer-{}.stop", self.run));
        eventually(Duration::from_secs(30), "the writer stopping", || {
            on(
                WRITER,
                &format!("test -e /tmp/writer-{}.done && echo yes || true", self.run),
            )
            .contains("yes")
            .then_some(())
            .ok_or_else(|| "still writing".to_owned())
        });
        self.acked()
    }
}

/// `pg_is_in_recovery()` through HAProxy on ops1 (127.0.0.1:5000): `f` on the primary.
fn through_haproxy() -> String {
    on(
        WRITER,
        &format!(
            "PGPASSWORD=\"$(cat /etc/{PLATFORM}/secrets/database-password)\" psql 'host=127.0.0.1 port=5000 dbname=crm user=crm connect_timeout=5 sslmode=verify-full sslrootcert=/etc/{PLATFORM}/tls/ca.crt' -XAtqc 'select pg_is_in_recovery()' 2>&1 || true"
        ),
    )
    .trim()
    .to_owned()
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The longest time without an acknowledged commit once `at` passed: between two consecutive
/// commits, the second after `at` (a commit in flight at `at` may still be acknowledged).
fn outage(acked: &[(u64, f64)], at: f64) -> f64 {
    let mut times: Vec<f64> = acked.iter().map(|(_, t)| *t).collect();
    times.sort_by(f64::total_cmp);
    let gap = times
        .windows(2)
        .filter(|w| w[1] > at)
        .map(|w| w[1] - w[0])
        .fold(f64::MIN, f64::max);
    assert!(
        gap > f64::MIN && times.first().is_some_and(|t| *t <= at),
        "no commit on both sides of the event"
    );
    gap
}

/// The acknowledged rows of `run` that the primary does not have.
fn lost(acked: &[(u64, f64)], run: &str, leader_host: &str) -> Vec<u64> {
    let present: BTreeSet<u64> = on(
        leader_host,
        &format!("runuser -u postgres -- psql -d crm -XAtqc \"select n from ha_writes where run = '{run}'\""),
    )
    .lines()
    .filter_map(|l| l.trim().parse().ok())
    .collect();
    acked
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !present.contains(n))
        .collect()
}

fn run_id(what: &str) -> String {
    format!("{what}-{}", std::process::id())
}

#[test]
fn a_replicated_platform_applies_and_reports_one_leader_and_two_replicas() {
    let ha = ha();
    apply_changes_nothing(&ha.doc);
    healthy_cluster(Duration::from_secs(120));
    // the Alertmanagers' cluster settles for a while after they start
    let mut report = Value::Null;
    eventually(Duration::from_secs(180), "status ready", || {
        let (ready, r) = status(&ha.doc);
        report = r;
        if ready {
            Ok(())
        } else {
            Err(format!("{report:#}"))
        }
    });
    let mut roles: Vec<String> = members(&report).into_iter().map(|m| m.1).collect();
    roles.sort();
    assert_eq!(roles.len(), 3, "{report:#}");
    assert_eq!(roles.iter().filter(|r| *r == "leader").count(), 1);
    assert!(
        roles
            .iter()
            .filter(|r| *r != "leader")
            .all(|r| r == "replica" || r == "sync standby"),
        "{roles:?}"
    );
    let etcd = report["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["component"] == "etcd" && c["healthy"] == true)
        .count();
    assert_eq!(etcd, 3, "{report:#}");
    assert_eq!(through_haproxy(), "f", "HAProxy reaches a standby");
    // the application, on both of its hosts, reaches the primary
    for address in ["198.18.0.14", "198.18.0.15"] {
        let (code, body) = http("GET", &format!("{address}:8080"), "/healthz").unwrap();
        assert_eq!(code, 200, "{address}: {body}");
    }
}

#[test]
fn no_database_password_in_a_log_or_a_file_others_can_read() {
    let ha = ha();
    let store = ha.dir.join(".terroir").join(PLATFORM).join("secrets");
    let passwords: Vec<String> = [
        "database-password",
        "database-superuser-password",
        "database-replication-password",
    ]
    .iter()
    .map(|n| std::fs::read_to_string(store.join(n)).unwrap())
    .collect();
    assert!(passwords.iter().all(|p| p.len() >= 16));
    let patterns = passwords.join("\n");
    for h in ["h1", "h2", "h3", "h4", "h5"] {
        let mut grep = std::process::Command::new(root().join("tests/hosts/hostctl"));
        grep.args([
            "exec",
            h,
            "sh",
            "-c",
            "cd / && grep -rlF -f /dev/stdin /etc /var/log /var/lib /tmp /root /home /opt --exclude-dir=cache 2>/dev/null | xargs -r stat -c '%a %U %n'; true",
        ]);
        let out = assert_cmd::Command::from_std(grep)
            .write_stdin(patterns.clone())
            .output()
            .unwrap();
        let found = String::from_utf8_lossy(&out.stdout).into_owned();
        for line in found.lines() {
            let mut parts = line.splitn(3, ' ');
            let (mode, owner, path) = (
                parts.next().unwrap(),
                parts.next().unwrap(),
                parts.next().unwrap(),
            );
            assert!(
                !path.starts_with("/var/log"),
                "{h}: a database password is in the log {path}"
            );
            let mode = u32::from_str_radix(mode, 8).unwrap();
            assert_eq!(
                mode & 0o077,
                0,
                "{h}: {path} holds a database password and is readable by others than {owner} (mode {mode:o})"
            );
        }
        if ["h1", "h2", "h3"].contains(&h) {
            // Patroni's and etcd's configuration are among the files looked at, and hold none
            assert!(!found.contains("/etc/patroni/"), "{h}: {found}");
            assert!(!found.contains("/etc/default/etcd"), "{h}: {found}");
            assert!(
                found.contains("/secrets/database-replication-password"),
                "the search finds the secret files themselves: {found}"
            );
        }
    }
}

/// A failover drill: start a writer, do `event` to the primary, wait for writes to resume, and
/// check that no acknowledged write was lost. Returns the former leader and the outage.
fn drill(what: &str, event: impl FnOnce(&str)) -> (String, f64) {
    let leader = healthy_cluster(Duration::from_secs(180));
    let run = run_id(what);
    let writer = Writer::start(&run);
    let at = now();
    event(&leader);
    eventually(
        Duration::from_secs(180),
        &format!("writes resuming after {what}"),
        || {
            let n = writer.acked().iter().filter(|(_, t)| *t > at).count();
            if n >= 20 {
                Ok(())
            } else {
                Err(format!(
                    "{n} commits since; {}",
                    on(WRITER, &format!("tail -n 3 /tmp/writer-{run}.err || true"))
                ))
            }
        },
    );
    let acked = writer.stop();
    let outage = outage(&acked, at);
    let new_leader = cluster()
        .into_iter()
        .find(|m| m.1 == "leader")
        .map(|m| m.0)
        .expect("a leader");
    let lost = lost(&acked, &run, test_host(&new_leader));
    eprintln!(
        "{what}: writes resumed after {outage:.1} s on {new_leader} (was {leader}); {} acknowledged writes lost of {}",
        lost.len(),
        acked.len()
    );
    record(
        serde_json::json!({"measure": what, "rtoSeconds": outage, "rpoRows": lost.len(), "acked": acked.len(), "from": leader, "to": new_leader}),
    );
    assert!(
        lost.is_empty(),
        "{what}: acknowledged writes lost (synchronous replication): {lost:?}"
    );
    (leader, outage)
}

#[test]
fn a_primary_host_cut_off_fails_over_and_rejoins_as_a_replica() {
    let ha = ha();
    let (former, _) = drill("failover-host-cut", |leader| {
        let out = hostctl(&["cut", test_host(leader)]);
        assert!(out.status.success(), "{out:?}");
    });
    assert_ne!(
        cluster().into_iter().find(|m| m.1 == "leader").unwrap().0,
        former,
        "the cut host cannot still lead"
    );
    // WAL archiving goes on from the new primary, into the same repository, and a backup is
    // taken from it
    let leader = cluster().into_iter().find(|m| m.1 == "leader").unwrap().0;
    on(
        test_host(&leader),
        &format!(
            "runuser -u postgres -- pgbackrest --stanza={PLATFORM} --log-level-console=warn check"
        ),
    );
    let out = terroir()
        .args(["backup", "now"])
        .arg(&ha.doc)
        .args(["--output", "json"])
        .timeout(Duration::from_secs(600))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "backup now after the failover: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let info = on(
        test_host(&leader),
        &format!("runuser -u postgres -- pgbackrest --stanza={PLATFORM} --output=json info"),
    );
    assert!(
        info.contains("\"backup\":[{"),
        "no backup in the repository after `backup now` on {leader}: {info}"
    );
    // HAProxy follows Patroni to the new primary
    eventually(
        Duration::from_secs(30),
        "HAProxy reaching the new primary",
        || {
            let r = through_haproxy();
            (r == "f").then_some(()).ok_or(r)
        },
    );
    // the host comes back: its services start as at boot, and Patroni rewinds it into a replica
    let out = hostctl(&["boot", test_host(&former)]);
    assert!(out.status.success(), "{out:?}");
    healthy_cluster(Duration::from_secs(300));
    let rejoined = cluster().into_iter().find(|m| m.0 == former).unwrap();
    assert_ne!(rejoined.1, "leader");
    apply_changes_nothing(&ha.doc);
}

#[test]
fn postgres_crashing_on_the_primary_recovers_without_losing_a_write() {
    let ha = ha();
    drill("failover-postgres-crash", |leader| {
        on(
            test_host(leader),
            "kill -9 $(head -n 1 /var/lib/postgresql/15/main/postmaster.pid)",
        );
    });
    healthy_cluster(Duration::from_secs(300));
    apply_changes_nothing(&ha.doc);
}

#[test]
fn switchover_moves_the_primary_to_the_synchronous_standby() {
    let ha = ha();
    let mut switched = Value::Null;
    let (former, _) = drill("switchover", |_| {
        let out = terroir()
            .arg("switchover")
            .arg(&ha.doc)
            .args(["--output", "json"])
            .timeout(Duration::from_secs(300))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "switchover: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        switched = serde_json::from_slice(&out.stdout).unwrap();
    });
    assert_eq!(switched["from"], former.as_str(), "{switched:#}");
    let leader = healthy_cluster(Duration::from_secs(120));
    assert_eq!(switched["to"], leader.as_str(), "{switched:#}");
    // asking for the leader itself is refused, saying so
    let out = terroir()
        .arg("switchover")
        .arg(&ha.doc)
        .args(["--to", &leader])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is the primary already"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn patroni_and_etcd_offer_anssi_tls_only() {
    let _ha = ha();
    // etcd asks every client and peer for a certificate from the platform's CA: openssl's
    // client presents the host's own
    let with_cert = Start::WithCertificate("/etc/etcd/tls/host.crt", "/etc/etcd/tls/host.key");
    let endpoints = [
        // Python's ssl (Patroni's REST API) and Go's crypto/tls (etcd) choose the suite
        // themselves: the list offered is what is checked
        Endpoint::new(
            "Patroni's REST API (8008)",
            "198.18.0.11:8008",
            Start::Direct,
            false,
        ),
        Endpoint::new("etcd, clients (2379)", "198.18.0.11:2379", with_cert, false),
        Endpoint::new("etcd, peers (2380)", "198.18.0.11:2380", with_cert, false),
    ];
    assert_anssi_tls(&endpoints, &|script: &str| {
        let out = hostctl(&["exec", "h1", "sh", "-c", &format!("cd / && {script}")]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
}
