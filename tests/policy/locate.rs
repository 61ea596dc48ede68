//! `terroir locate` against the real geodata (shared/geodata, offline) and the built-in provider
//! catalog: the corpus of real addresses in tests/locality/addresses.yaml, names, exit codes and
//! the attribution the data's licence requires. No name here is resolved through the network.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::*;
use serde::Deserialize;
use serde_json::Value;

fn geodata() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/geodata"))
}

/// `terroir locate` with the shared geodata and an index cache kept between test runs.
fn locate() -> assert_cmd::Command {
    let mut cmd = terroir();
    cmd.env_remove("TERROIR_GEODATA")
        .env(
            "XDG_CACHE_HOME",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/locate-cache"),
        )
        .arg("locate")
        .arg("--geodata")
        .arg(geodata());
    cmd
}

#[derive(Debug, Deserialize)]
struct Corpus {
    addresses: Vec<Expected>,
}

#[derive(Debug, Deserialize)]
struct Expected {
    address: String,
    country: Option<String>,
    asn: Option<u32>,
    exposed: Option<bool>,
    #[allow(dead_code)]
    #[serde(default)]
    organisation: Option<String>,
    #[allow(dead_code)]
    #[serde(default)]
    range: Option<String>,
    why: String,
}

fn corpus() -> Vec<Expected> {
    let text = std::fs::read_to_string(root().join("tests/locality/addresses.yaml")).unwrap();
    serde_saphyr::from_str::<Corpus>(&text).unwrap().addresses
}

fn json(out: &[u8]) -> Vec<Value> {
    serde_json::from_slice(out)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(out)))
}

#[test]
fn the_corpus_is_judged_as_the_data_and_the_rules_say() {
    let corpus = corpus();
    assert!(corpus.len() >= 40, "{} addresses", corpus.len());
    let out = locate()
        .args(["--output", "json"])
        .args(corpus.iter().map(|e| e.address.as_str()))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let found: BTreeMap<String, Value> = json(&out)
        .into_iter()
        .map(|v| (v["address"].as_str().unwrap().to_owned(), v))
        .collect();
    let mut wrong = Vec::new();
    for e in &corpus {
        let Some(v) = found.get(&e.address) else {
            wrong.push(format!("{}: missing from the output", e.address));
            continue;
        };
        let got = (
            v["country"].as_str().map(str::to_owned),
            v["asn"].as_u64().map(|a| a as u32),
            v["cloud_act_exposed"].as_bool(),
        );
        if got != (e.country.clone(), e.asn, e.exposed) {
            wrong.push(format!(
                "{} ({}): expected {:?}/{:?}/{:?}, got {got:?}: {}",
                e.address, e.why, e.country, e.asn, e.exposed, v["reason"]
            ));
        }
        assert!(
            v.get("hostname").is_none(),
            "no hostname for a literal address: {v}"
        );
        assert!(
            !v["reason"].as_str().unwrap().is_empty(),
            "every judgement has a reason: {v}"
        );
    }
    assert!(
        wrong.is_empty(),
        "{} of {} addresses judged wrongly:\n{}",
        wrong.len(),
        corpus.len(),
        wrong.join("\n")
    );
    assert_eq!(found.len(), corpus.len(), "one location per address");
}

#[test]
fn the_corpus_covers_each_kind_of_case() {
    let corpus = corpus();
    let eu_not_exposed = corpus.iter().filter(|e| e.exposed == Some(false)).count();
    let us_operator_in_eu = corpus
        .iter()
        .filter(|e| {
            e.exposed == Some(true)
                && e.country
                    .as_deref()
                    .is_some_and(terroir::policy::sovereignty::in_eu)
        })
        .count();
    let us_soil = corpus
        .iter()
        .filter(|e| e.country.as_deref() == Some("US"))
        .count();
    let special = corpus.iter().filter(|e| e.country.is_none()).count();
    assert!(
        eu_not_exposed >= 20 && us_operator_in_eu >= 15 && us_soil >= 8 && special >= 10,
        "{eu_not_exposed}/{us_operator_in_eu}/{us_soil}/{special}"
    );
    assert!(
        corpus
            .iter()
            .any(|e| e.address.contains(':') && e.country.is_some()),
        "IPv6 addresses with a country too"
    );
}

#[test]
fn json_fields_are_exactly_the_documented_ones() {
    let out = locate()
        .args(["-o", "json", "13.39.0.17", "10.0.0.1"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    assert_eq!(v.len(), 2);
    let keys: Vec<&str> = v[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "address",
            "country",
            "asn",
            "organisation",
            "operator",
            "jurisdiction",
            "cloud_act_exposed",
            "reason"
        ]
    );
    assert_eq!(v[0]["operator"], "Amazon Web Services");
    assert_eq!(v[0]["jurisdiction"], "US");
    assert_eq!(v[1]["country"], Value::Null);
    assert_eq!(v[1]["cloud_act_exposed"], Value::Null);
    assert_eq!(
        v[1]["reason"],
        "private or special-purpose address: not locatable"
    );
}

#[test]
fn localhost_is_resolved_and_not_locatable() {
    let out = locate()
        .args(["-o", "json", "localhost"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    assert!(!v.is_empty());
    for l in &v {
        assert_eq!(l["hostname"], "localhost");
        let ip: std::net::IpAddr = l["address"].as_str().unwrap().parse().unwrap();
        assert!(ip.is_loopback(), "{l}");
        assert_eq!(l["country"], Value::Null);
        assert_eq!(l["cloud_act_exposed"], Value::Null);
        assert_eq!(
            l["reason"],
            "private or special-purpose address: not locatable"
        );
    }
}

#[test]
fn an_unresolvable_name_exits_1_and_says_which() {
    let a = locate()
        .args(["51.38.1.1", "no-such-host.invalid"])
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        stderr.contains("no-such-host.invalid") && stderr.contains("give the address itself"),
        "{stderr}"
    );
    assert!(
        a.get_output().stdout.is_empty(),
        "nothing judged when a target cannot be resolved"
    );
}

#[test]
fn missing_geodata_exits_1_and_says_what_to_do() {
    let empty = tempfile::tempdir().unwrap();
    let a = terroir()
        .env_remove("TERROIR_GEODATA")
        .args(["locate", "--geodata"])
        .arg(empty.path())
        .arg("51.38.1.1")
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        stderr.contains("terroir geodata update")
            && stderr.contains(&empty.path().display().to_string()),
        "{stderr}"
    );
}

#[test]
fn text_output_is_a_table_with_reasons_and_the_attribution() {
    let a = locate()
        .args(["57.129.0.17", "5.161.128.17", "localhost"])
        .assert()
        .success();
    let out = String::from_utf8_lossy(&a.get_output().stdout).into_owned();
    let header = out.lines().next().unwrap();
    for col in [
        "HOST",
        "ADDRESS",
        "COUNTRY",
        "ASN",
        "ORGANISATION",
        "OPERATOR",
        "JURISDICTION",
        "CLOUD ACT",
    ] {
        assert!(header.contains(col), "{header}");
    }
    assert!(
        out.contains("57.129.0.17") && out.contains("OVHcloud") && out.contains("not exposed"),
        "{out}"
    );
    assert!(
        out.contains("5.161.128.17: geolocated in the US: on US soil"),
        "{out}"
    );
    assert!(
        out.contains(terroir::policy::locality::geodata::ATTRIBUTION),
        "the DB-IP/RouteViews attribution: {out}"
    );
    assert!(out.contains("DB-IP") && out.contains("RouteViews"), "{out}");
}

#[test]
fn the_geodata_directory_can_come_from_the_environment() {
    let out = terroir()
        .env("TERROIR_GEODATA", geodata())
        .env(
            "XDG_CACHE_HOME",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/locate-cache"),
        )
        .args(["locate", "-o", "json", "57.129.0.17"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(json(&out)[0]["country"], "DE");
}
