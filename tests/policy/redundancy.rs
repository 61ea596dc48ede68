//! Replicas in several sites: each host judged at its own location, and the grid's geographic
//! redundancy criterion verified from the topology when the database replicas stand in two or
//! more EU sites, declared otherwise, in the rendered pre-assessment and in the signed predicate.
//! No host is reached: declared facts only (`--no-dns`).

#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use common::{example, render, root, terroir, variant};
use serde_json::Value;

const REDUNDANCY: &str = "geographic redundancy inside the EU only";

/// db3 and ops2 moved from Gravelines to Roubaix, beside the others: one site.
fn one_site(t: String) -> String {
    t.replace("site: Gravelines GRA-11", "site: Roubaix RBX-8")
}

/// db3 in Switzerland, with a Swiss operator.
fn replica_in_switzerland(t: String) -> String {
    t.replacen(
        "          location:\n            country: FR\n            operator: OVHcloud\n            site: Gravelines GRA-11\n",
        "          location:\n            country: CH\n            operator: Infomaniak\n            site: Geneva\n",
        1,
    )
}

/// The grid criterion of `grid` named `name`.
fn criterion<'a>(grid: &'a Value, name: &str) -> &'a Value {
    grid["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["criterion"] == name)
        .unwrap_or_else(|| panic!("no criterion {name}: {grid:#}"))
}

/// The rendered pre-assessment of `doc`.
fn pre_assessment(doc: &Path, parent: &Path, leaf: &str) -> Value {
    let out = render(doc, parent, leaf);
    serde_json::from_str(
        &std::fs::read_to_string(out.join("sovereignty/pre-assessment.json")).unwrap(),
    )
    .unwrap()
}

/// The predicate `terroir attest` signs for `doc` (no DNS, no live checks), and the report.
fn predicate(doc: &Path, dir: &Path) -> (Value, String) {
    let key = dir.join("key");
    terroir()
        .args(["keygen", "--out"])
        .arg(&key)
        .assert()
        .success();
    let attestation = dir.join("attestation.json");
    let out = terroir()
        .arg("attest")
        .arg(doc)
        .arg("--key")
        .arg(&key)
        .arg("--out")
        .arg(&attestation)
        .args(["--no-dns", "--geodata"])
        .arg(geodata())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let envelope: Value =
        serde_json::from_str(&std::fs::read_to_string(&attestation).unwrap()).unwrap();
    let payload = base64::engine::general_purpose::STANDARD
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    let statement: Value = serde_json::from_slice(&payload).unwrap();
    let report = std::fs::read_to_string(dir.join("attestation.report.md")).unwrap();
    (statement["predicate"].clone(), report)
}

fn geodata() -> PathBuf {
    root().join("../shared/geodata")
}

#[test]
fn replicas_in_two_eu_sites_verify_geographic_redundancy() {
    let dir = tempfile::tempdir().unwrap();
    let doc = example("baremetal-ha.yaml");

    let assessment = pre_assessment(&doc, dir.path(), "rendered");
    let c = criterion(&assessment["grid"], REDUNDANCY);
    assert_eq!(c["basis"], "verified", "{c}");
    assert_eq!(c["points"], 5, "{c}");
    let reason = c["reason"].as_str().unwrap();
    assert!(
        reason.contains("2 sites, all in the EU")
            && reason.contains("db3 in FR, OVHcloud, Gravelines GRA-11"),
        "{reason}"
    );
    assert_eq!(
        assessment["topology"]["database"]["redundancy"]["outcome"],
        "verified"
    );

    let (p, report) = predicate(&doc, dir.path());
    let c = criterion(&p["grid"], REDUNDANCY);
    assert_eq!(c["basis"], "verified", "{c}");
    assert_eq!(c["points"], 5, "{c}");
    // the topology: per role the hosts with their locations, and the replication
    let t = &p["topology"];
    let databases: Vec<&str> = t["roles"]["database"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(databases, ["db1", "db2", "db3"], "{t:#}");
    let db3 = &t["roles"]["database"][2];
    assert_eq!(db3["location"]["site"], "Gravelines GRA-11", "{db3}");
    assert_eq!(db3["locationSource"], "host", "{db3}");
    assert_eq!(t["roles"]["database"][0]["locationSource"], "target");
    assert_eq!(t["database"]["replicas"], 3);
    assert_eq!(t["database"]["synchronous"], true);
    assert_eq!(
        t["database"]["consensus"],
        serde_json::json!(["db1", "db2", "db3"])
    );
    assert_eq!(t["roles"]["consensus"].as_array().unwrap().len(), 3);
    assert_eq!(t["database"]["sites"].as_array().unwrap().len(), 2);
    // the buyers' question answered host by host
    let answer = p["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["question"] == "Where are the databases hosted?")
        .unwrap()["answer"]
        .as_str()
        .unwrap();
    assert!(
        answer.starts_with("3 replicas on db1, db2, db3 (synchronous), in 2 sites: ")
            && answer.contains(
                "db3 location: FR, operated by OVHcloud (FR), site Gravelines GRA-11 [pass]"
            ),
        "{answer}"
    );
    // the report shows it verified, and the topology host by host
    let row = report
        .lines()
        .find(|l| l.starts_with(&format!("| {REDUNDANCY} |")))
        .unwrap();
    assert!(row.contains("| verified |"), "{row}");
    assert!(
        report.contains(
            "| database | db3 | 198.18.0.13 | FR, OVHcloud, Gravelines GRA-11 (the host's own) |"
        ),
        "{report}"
    );
    assert!(
        report.contains("- **Consensus members (etcd)**: db1, db2, db3"),
        "{report}"
    );
}

#[test]
fn replicas_in_one_site_leave_geographic_redundancy_declared() {
    let dir = tempfile::tempdir().unwrap();
    let doc = variant("baremetal-ha.yaml", dir.path(), "one-site.yaml", one_site);

    let assessment = pre_assessment(&doc, dir.path(), "rendered");
    let c = criterion(&assessment["grid"], REDUNDANCY);
    assert_eq!(c["basis"], "declared", "{c}");
    assert_eq!(c["points"], 5, "euOnlyRedundancy: true is declared: {c}");
    let reason = c["reason"].as_str().unwrap();
    assert!(
        reason.contains("stand in one site") && reason.contains("euOnlyRedundancy"),
        "{reason}"
    );

    let (p, report) = predicate(&doc, dir.path());
    let c = criterion(&p["grid"], REDUNDANCY);
    assert_eq!(c["basis"], "declared", "{c}");
    assert!(
        c["reason"].as_str().unwrap().contains("stand in one site"),
        "{c}"
    );
    assert_eq!(
        p["topology"]["database"]["sites"].as_array().unwrap().len(),
        1
    );
    let row = report
        .lines()
        .find(|l| l.starts_with(&format!("| {REDUNDANCY} |")))
        .unwrap();
    assert!(row.contains("| declared by the organisation |"), "{row}");

    // Without the declaration, nothing is known.
    let undeclared = variant("baremetal-ha.yaml", dir.path(), "undeclared.yaml", |t| {
        one_site(t).replace("      euOnlyRedundancy: true\n", "")
    });
    let assessment = pre_assessment(&undeclared, dir.path(), "rendered-undeclared");
    let c = criterion(&assessment["grid"], REDUNDANCY);
    assert_eq!(
        (c["basis"].as_str(), c["points"].as_u64()),
        (Some("unknown"), Some(0)),
        "{c}"
    );
}

#[test]
fn a_replica_outside_the_allowed_countries_fails_verify_with_its_host_named() {
    let dir = tempfile::tempdir().unwrap();
    let doc = variant(
        "baremetal-ha.yaml",
        dir.path(),
        "swiss.yaml",
        replica_in_switzerland,
    );
    let out = terroir()
        .args(["verify", "--output", "json", "--no-dns", "--geodata"])
        .arg(geodata())
        .arg(&doc)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(2), "{report:#}");
    let failing: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["verdict"] == "fail")
        .collect();
    assert_eq!(failing.len(), 1, "only db3 stands outside: {failing:#?}");
    let f = failing[0];
    assert_eq!(f["subject"], "host db3 location");
    assert!(f["observed"].as_str().unwrap().starts_with("CH"), "{f}");
    assert_eq!(f["expected"], "in EU, not under US law");
    let evidence = f["evidence"].as_str().unwrap();
    assert!(
        evidence.contains("CH is outside the allowed countries")
            && evidence.contains("host db3's own"),
        "{evidence}"
    );
    // the other hosts still pass where they stand
    for host in ["db1", "db2", "ops1", "ops2"] {
        let subject = format!("host {host} location");
        let f = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["subject"] == subject.as_str())
            .unwrap();
        assert_eq!(f["verdict"], "pass", "{f}");
    }
    // the text output names the host too
    let text = terroir()
        .args(["verify", "--no-dns", "--geodata"])
        .arg(geodata())
        .arg(&doc)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&text.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("FAIL"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.contains("host db3 location") && line.contains("CH"),
        "{line}"
    );

    // and the grid takes the redundancy for disproved, from the topology
    let assessment = pre_assessment(&doc, dir.path(), "rendered");
    let c = criterion(&assessment["grid"], REDUNDANCY);
    assert_eq!(
        (c["basis"].as_str(), c["points"].as_u64()),
        (Some("verified"), Some(0)),
        "{c}"
    );
    assert!(c["reason"].as_str().unwrap().contains("db3 in CH"), "{c}");
}
