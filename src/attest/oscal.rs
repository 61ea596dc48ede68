//! The same assessment as an OSCAL assessment-results document (NIST OSCAL 1.1.2, JSON): each
//! finding becomes an observation (with its evidence and its basis) and a finding on a
//! terroir objective, satisfied or not; the grid criteria become observations too.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const OSCAL_VERSION: &str = "1.1.2";
/// Namespace of the properties terroir adds.
pub const NS: &str = "https://terroir.eu/ns/oscal";

/// A name-based UUID (version 5 layout, SHA-256 truncated): the same input, the same UUID, so
/// that the document is deterministic for a given predicate.
fn uuid(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    let mut b: [u8; 16] = h.finalize()[..16].try_into().unwrap_or([0; 16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x: String = b.iter().map(|v| format!("{v:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

fn text(v: &Value) -> String {
    v.as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| v.to_string())
}

pub fn assessment_results(predicate: &Value) -> Value {
    let platform = text(&predicate["platform"]);
    let time = text(&predicate["time"]);
    let version = text(&predicate["tool"]["version"]);
    let mut observations = Vec::new();
    let mut findings = Vec::new();
    for (i, f) in predicate["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let subject = text(&f["subject"]);
        let basis = text(&f["basis"]);
        let obs = uuid(&[&platform, &time, "observation", &i.to_string(), &subject]);
        let method = if matches!(basis.as_str(), "live" | "dns" | "plan") {
            "TEST"
        } else {
            "EXAMINE"
        };
        observations.push(json!({
            "uuid": obs,
            "title": subject,
            "description": format!("Observed: {}. Expected: {}.", text(&f["observed"]), text(&f["expected"])),
            "props": [{"name": "basis", "ns": NS, "value": basis}, {"name": "verdict", "ns": NS, "value": text(&f["verdict"])}],
            "methods": [method],
            "types": ["finding"],
            "collected": time,
            "relevant-evidence": [{"description": if text(&f["evidence"]).is_empty() { "none recorded".to_owned() } else { text(&f["evidence"]) }}],
        }));
        let state = if f["verdict"] == "fail" {
            "not-satisfied"
        } else {
            "satisfied"
        };
        findings.push(json!({
            "uuid": uuid(&[&platform, &time, "finding", &i.to_string(), &subject]),
            "title": subject,
            "description": format!("{} ({}): {}", text(&f["verdict"]), basis, text(&f["observed"])),
            "props": [{"name": "verdict", "ns": NS, "value": text(&f["verdict"])}],
            "target": {
                "type": "objective-id",
                "target-id": format!("terroir-locality-{}", slug(&subject)),
                "status": {"state": state},
            },
            "related-observations": [{"observation-uuid": obs}],
        }));
    }
    for c in predicate["grid"]["criteria"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let name = text(&c["criterion"]);
        observations.push(json!({
            "uuid": uuid(&[&platform, &time, "criterion", &name]),
            "title": format!("{} ({})", name, text(&c["axis"])),
            "description": format!("{} of {} points: {}", c["points"], c["max"], text(&c["reason"])),
            "props": [
                {"name": "basis", "ns": NS, "value": text(&c["basis"])},
                {"name": "points", "ns": NS, "value": c["points"].to_string()},
                {"name": "max", "ns": NS, "value": c["max"].to_string()},
            ],
            "methods": [if c["basis"] == "verified" { "TEST" } else { "INTERVIEW" }],
            "types": ["control-objective"],
            "collected": time,
        }));
    }
    let grid = &predicate["grid"];
    json!({
        "assessment-results": {
            "uuid": uuid(&[&platform, &time, "assessment-results"]),
            "metadata": {
                "title": format!("Sovereignty assessment of {platform}"),
                "last-modified": time,
                "version": version,
                "oscal-version": OSCAL_VERSION,
                "props": [
                    {"name": "score", "ns": NS, "value": format!("{}/{}", grid["total"], grid["max"])},
                    {"name": "band", "ns": NS, "value": text(&grid["band"])},
                    {"name": "verdict", "ns": NS, "value": text(&predicate["verdict"])},
                ],
            },
            "import-ap": {"href": "https://terroir.eu/attestation/sovereignty-assessment/v1"},
            "results": [{
                "uuid": uuid(&[&platform, &time, "result"]),
                "title": format!("terroir {version}: locality, jurisdiction and the 100-point sovereignty grid"),
                "description": format!("Verdict {}; score {}/{} ({}). {}", text(&predicate["verdict"]), grid["total"], grid["max"], text(&grid["band"]), text(&predicate["attribution"])),
                "start": time,
                "reviewed-controls": {"control-selections": [{"include-all": {}}]},
                "observations": observations,
                "findings": findings,
            }],
        }
    })
}
