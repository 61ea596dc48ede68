//! Continuity drills on the high-availability platform of tests/baremetal/ha.rs (three database
//! members, two hosts of each other role, backups into S3 on h6, the SMTP relay and the fallback
//! relay on h7 and h8, which also are its two DNS resolvers): `terroir continuity` takes each
//! dependency and each redundant member away in turn and checks the degraded mode the blueprint
//! declares, then takes all of them away at once; a fallback that does not relay fails its
//! claim; a killed drill leaves no fault behind.
//!
//! Each test leaves the platform as it found it. The times each claim took are reported, never
//! asserted; `TERROIR_CONTINUITY_REPORT`, when set, is where the whole drill's report is copied
//! (benches/continuity.sh reads it).
#![allow(clippy::unwrap_used)]

use crate::common;
use crate::ha::{self, FALLBACK, RELAY, on};

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::relays::{MAIL_DOMAIN, mailbox};
use common::*;
use serde_json::Value;

/// The application's HTTP API on ops1, which the client writes and reads through.
const APP: &str = "198.18.0.14:8080";
/// The platform's hosts (h6 to h8 are its dependencies).
const PLATFORM_HOSTS: [&str; 5] = ["h1", "h2", "h3", "h4", "h5"];

fn mail_to() -> String {
    format!("drill@{MAIL_DOMAIN}")
}

/// `terroir continuity DOC --yes ARGS… --output json`: what it printed, and its report.
fn continuity(doc: &Path, report: &Path, args: &[&str]) -> (Output, Value) {
    let out = terroir()
        .arg("continuity")
        .arg(doc)
        .args(["--yes", "--output", "json", "--mail-to", &mail_to()])
        .arg("--report")
        .arg(report)
        .args(args)
        .timeout(Duration::from_secs(1200))
        .output()
        .unwrap();
    let written = std::fs::read(report.join("continuity-report.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    (out, written)
}

fn printed(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// What is left of terroir's faults on the platform's hosts: nftables tables and undo scripts.
fn leftovers() -> Vec<String> {
    PLATFORM_HOSTS
        .iter()
        .flat_map(|h| {
            on(
                h,
                "nft list ruleset | grep -o 'table inet terroir_continuity_[a-z0-9]*' || true; ls /run/terroir-continuity 2>/dev/null || true",
            )
            .lines()
            .map(|l| format!("{h}: {l}"))
            .collect::<Vec<_>>()
        })
        .collect()
}

fn claim<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["claims"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no claim {name} in {report:#}"))
}

/// The Message-ID a mail probe of `claim` reports (`message <ID>, …`).
fn message_id(claim: &Value, probe: &str) -> String {
    let observed = claim["probes"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(claim["nominal"].as_array().into_iter().flatten())
        .find(|o| o["probe"] == probe)
        .and_then(|o| o["observed"].as_str())
        .unwrap_or_else(|| panic!("no probe {probe} in {claim:#}"));
    let start = observed.find("message <").expect("a message id") + "message <".len();
    observed[start..].split('>').next().unwrap().to_owned()
}

/// The writes and reads of the application during a drill, through its HTTP API on ops1, from
/// this machine.
struct Client {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<(u64, Vec<String>)>,
}

impl Client {
    fn start() -> Client {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut done, mut failed) = (0u64, Vec::new());
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let served = http("POST", APP, "/rows?value=continuity")
                    .and_then(|wrote| http("GET", APP, "/rows/count").map(|read| (wrote, read)));
                match served {
                    Ok(((w, _), (r, _))) if (200..300).contains(&w) && (200..300).contains(&r) => {
                        done += 1
                    }
                    other => failed.push(format!("{other:?}")),
                }
            }
            (done, failed)
        });
        Client { stop, thread }
    }

    /// How many writes and reads went through, and what failed.
    fn stop(self) -> (u64, Vec<String>) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

#[test]
fn every_claim_holds_and_mail_sent_while_the_relay_is_cut_arrives_through_the_fallback() {
    let ha = ha::ha();
    let report_dir = ha.dir.join("continuity-every-claim");
    let (out, report) = continuity(&ha.doc, &report_dir, &[]);
    assert!(out.status.success(), "{}", printed(&out));
    assert_eq!(report["passed"], true, "{report:#}");
    for name in [
        "smtpRelay",
        "smtpFallbackRelay",
        "backupS3",
        "dnsResolvers",
        "packageMirror",
        "database-primary",
        "one-mta",
        "one-prometheus",
        "one-app-host",
    ] {
        let c = claim(&report, name);
        assert_eq!(c["passed"], true, "{c:#}");
        assert!(c["detectSeconds"].is_number(), "{c:#}");
    }
    // the message sent while the relay was cut is in the fallback's mailbox, not the relay's
    let id = message_id(claim(&report, "smtpRelay"), "mail-through-fallback");
    assert!(
        mailbox(FALLBACK.0).contains(&id),
        "{id} not at the fallback"
    );
    assert!(!mailbox(RELAY.0).contains(&id), "{id} at the relay");
    // a failover, timed: the primary stopped, writes resumed on another member
    let failover = claim(&report, "database-primary");
    assert!(failover["failoverSeconds"].is_number(), "{failover:#}");
    for member in ["one-mta", "one-app-host"] {
        assert!(claim(&report, member)["failoverSeconds"].is_number());
    }
    let stopped = failover["fault"].as_str().unwrap();
    let stopped = stopped[stopped.rfind('(').unwrap() + 1..].trim_end_matches(')');
    let committed = failover["probes"][0]["observed"].as_str().unwrap();
    let committed = committed
        .strip_prefix("a row committed on ")
        .unwrap_or_else(|| panic!("{failover:#}"));
    assert!(
        stopped.starts_with("db") && committed.starts_with("db") && stopped != committed,
        "stopped {stopped}, committed on {committed}"
    );
    assert_eq!(leftovers(), Vec::<String>::new());
    // BackupFailing reached Alertmanager while the storage was cut, and left once it returned
    let backup = claim(&report, "backupS3");
    assert!(
        backup["probes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["probe"] == "alert-fires BackupFailing" && o["passed"] == true),
        "{backup:#}"
    );
    let md = std::fs::read_to_string(report_dir.join("continuity-report.md")).unwrap();
    assert!(
        md.contains("PASSED") && md.contains("database-primary"),
        "{md}"
    );
    for c in report["claims"].as_array().unwrap() {
        eprintln!(
            "{:<20} detect {:>6.1} s  recover {:>6.1} s",
            c["name"].as_str().unwrap(),
            c["detectSeconds"].as_f64().unwrap_or_default(),
            c["recoverSeconds"].as_f64().unwrap_or_default()
        );
    }
    eprintln!(
        "the whole drill: {:.1} s",
        report["totalSeconds"].as_f64().unwrap()
    );
    if let Ok(path) = std::env::var("TERROIR_CONTINUITY_REPORT") {
        std::fs::copy(report_dir.join("continuity-report.json"), path).unwrap();
    }
    // the attestation cites the drill
    let signing = tempfile::tempdir().unwrap();
    let key = signing.path().join("attest.key");
    let made = terroir()
        .args(["keygen", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", printed(&made));
    let attestation = signing.path().join("attestation.json");
    let signed = terroir()
        .arg("attest")
        .arg(&ha.doc)
        .arg("--key")
        .arg(&key)
        .arg("--out")
        .arg(&attestation)
        .arg("--continuity-report")
        .arg(report_dir.join("continuity-report.json"))
        .args(["--no-dns", "--geodata"])
        .arg(root().join("../shared/geodata"))
        .output()
        .unwrap();
    assert!(signed.status.success(), "{}", printed(&signed));
    let envelope: Value = serde_json::from_slice(&std::fs::read(&attestation).unwrap()).unwrap();
    let statement: Value =
        serde_json::from_slice(&base64_decode(envelope["payload"].as_str().unwrap())).unwrap();
    assert_eq!(statement["predicate"]["continuity"]["passed"], true);
    assert!(
        statement["subject"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "evidence://continuity-report.json")
    );
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

#[test]
fn a_fallback_relay_that_does_not_relay_fails_the_smtp_claim_and_leaves_no_fault() {
    let ha = ha::ha();
    common::relays::smtp_relay(FALLBACK.0, FALLBACK.1, false);
    let report_dir = ha.dir.join("continuity-refusing-fallback");
    let (out, report) = continuity(&ha.doc, &report_dir, &["--only", "smtpRelay"]);
    common::relays::smtp_relay(FALLBACK.0, FALLBACK.1, true);
    assert_eq!(out.status.code(), Some(2), "{}", printed(&out));
    let c = claim(&report, "smtpRelay");
    assert_eq!(c["passed"], false, "{c:#}");
    let reason = c["reason"].as_str().unwrap();
    assert!(
        reason.contains("mail-through-fallback") && reason.contains("Relay access denied"),
        "{reason}"
    );
    assert_eq!(c["faultRemoved"], true, "{c:#}");
    assert_eq!(leftovers(), Vec::<String>::new());
}

#[test]
fn a_drill_killed_while_its_fault_is_in_place_leaves_no_rule_behind() {
    let ha = ha::ha();
    let report_dir = ha.dir.join("continuity-killed");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_terroir"))
        .arg("continuity")
        .arg(&ha.doc)
        .args([
            "--yes",
            "--only",
            "packageMirror",
            "--max-fault-seconds",
            "30",
            "--mail-to",
            &mail_to(),
        ])
        .arg("--report")
        .arg(&report_dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    eventually(Duration::from_secs(120), "the fault in place", || {
        let left = leftovers();
        if left
            .iter()
            .any(|l| l.contains("table inet terroir_continuity_"))
        {
            Ok(())
        } else {
            Err(format!("{left:?}"))
        }
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        leftovers()
            .iter()
            .any(|l| l.contains("terroir_continuity_")),
        "the fault was gone before its time"
    );
    // the timer the drill armed on each host removes the fault after 30 s
    eventually(Duration::from_secs(120), "no fault left", || {
        let left = leftovers();
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("{left:?}"))
        }
    });
}

#[test]
fn a_cut_off_from_every_external_dependency_keeps_reads_and_writes_and_mail_waits() {
    let ha = ha::ha();
    let report_dir = ha.dir.join("continuity-all-external");
    let client = Client::start();
    let (out, report) = continuity(&ha.doc, &report_dir, &["--cut-off", "all-external"]);
    let (served, failed) = client.stop();
    assert!(out.status.success(), "{}", printed(&out));
    assert!(
        served > 0 && failed.is_empty(),
        "{served} served; failed: {failed:?}"
    );
    let c = claim(&report, "cut-off all-external");
    let outcome = |probe: &str| -> String {
        c["probes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["probe"] == probe)
            .map(|o| o["outcome"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no probe {probe}: {c:#}"))
    };
    assert_eq!(outcome("app-serves"), "works", "{c:#}");
    assert_eq!(outcome("database-writes"), "works", "{c:#}");
    assert_eq!(outcome("mail-accepted"), "queues", "{c:#}");
    assert_eq!(outcome("backup-runs"), "stops", "{c:#}");
    assert_eq!(outcome("names-resolve"), "stops", "{c:#}");
    // the message that waited during the cut has reached the relay since
    let id = message_id(c, "mail-accepted");
    assert!(mailbox(RELAY.0).contains(&id), "{id} not delivered");
    assert_eq!(leftovers(), Vec::<String>::new());
}
