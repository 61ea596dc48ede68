//! `terroir continuity` before it touches anything: the claims it lists, and what it refuses
//! (tests/baremetal/continuity.rs drills them on hosts).
#![allow(clippy::unwrap_used)]

use crate::common::*;

use serde_json::Value;

fn run(args: &[&str]) -> std::process::Output {
    terroir().arg("continuity").args(args).output().unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_dry_run_lists_the_claims_the_runbook_and_the_dependency_report_print() {
    let doc = example("baremetal-ha.yaml");
    let out = run(&[doc.to_str().unwrap(), "--dry-run", "--output", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let claims = listed["claims"].as_array().unwrap();
    let names: Vec<&str> = claims.iter().map(|c| c["name"].as_str().unwrap()).collect();
    for name in [
        "smtpRelay",
        "backupS3",
        "dnsResolvers",
        "database-primary",
        "one-app-host",
    ] {
        assert!(names.contains(&name), "{name}: {names:?}");
    }
    // one source of words: the runbook and the dependency report print each claim's
    let tmp = tempfile::tempdir().unwrap();
    let dir = render(&doc, tmp.path(), "r");
    let runbook = std::fs::read_to_string(dir.join("runbooks/operations.md")).unwrap();
    let deps: Value =
        serde_json::from_slice(&std::fs::read(dir.join("sovereignty/dependencies.json")).unwrap())
            .unwrap();
    for c in claims {
        let declared = c["declared"].as_str().unwrap();
        assert!(runbook.contains(declared), "runbook: {declared}");
        if let Some(d) = deps["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["key"] == c["name"])
        {
            assert_eq!(d["degradedMode"], declared);
        }
    }
}

#[test]
fn a_production_platform_is_not_drilled_without_yes() {
    let doc = example("baremetal-ha.yaml");
    let out = run(&[doc.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("`environment` is `production`") && stderr(&out).contains("--yes"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn kubernetes_is_refused_with_the_reason() {
    let doc = example("kubernetes-ha.yaml");
    let out = run(&[doc.to_str().unwrap(), "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("NetworkPolicy"), "{}", stderr(&out));
}

#[test]
fn an_unknown_claim_and_a_fault_too_short_are_refused_before_anything_is_touched() {
    let tmp = tempfile::tempdir().unwrap();
    let doc = tmp.path().join("platform.yaml");
    std::fs::copy(example("baremetal-ha.yaml"), &doc).unwrap();
    let out = run(&[doc.to_str().unwrap(), "--yes", "--only", "ftpRelay"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no claim is named ftpRelay") && stderr(&out).contains("smtpRelay"),
        "{}",
        stderr(&out)
    );
    let out = run(&[doc.to_str().unwrap(), "--yes", "--max-fault-seconds", "5"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("30 or more"), "{}", stderr(&out));
    // nothing was locked beside the document
    assert!(
        !doc.parent()
            .unwrap()
            .join(".terroir")
            .join("acme-crm")
            .join("lock")
            .exists()
    );
}
