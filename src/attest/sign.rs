//! `terroir attest`: the assessment of a platform as an in-toto Statement signed in a DSSE
//! envelope, written with the reports people read beside it.

use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use serde_json::{Value, json};

use super::live::LiveFacts;
use super::{AttestError, dsse, keys, predicate};
use crate::document::Platform;
use crate::policy::assess::Assessed;

/// A report cited as evidence: a reversibility drill's or a continuity drill's.
#[derive(Debug)]
pub struct Evidence {
    /// The report itself and what it names (the export's manifest).
    pub subjects: Vec<Value>,
    /// Where its summary goes in the predicate (`reversibility`, `continuity`).
    pub key: &'static str,
    /// Its result and figures, for the predicate.
    pub summary: Value,
}

/// A kind of report `attest` cites.
struct Cited {
    what: &'static str,
    kind: &'static str,
    command: &'static str,
    summary: fn(&Value, &[u8]) -> Evidence,
}

const DRILL: Cited = Cited {
    what: "drill report",
    kind: "terroir-drill-report/v1",
    command: "drill",
    summary: drill_summary,
};

const CONTINUITY: Cited = Cited {
    what: "continuity report",
    kind: crate::continuity::report::KIND,
    command: "continuity",
    summary: continuity_summary,
};

fn read_evidence(path: &Path, cited: &Cited) -> Result<Evidence, AttestError> {
    let bytes = std::fs::read(path).map_err(|source| AttestError::EvidenceRead {
        path: path.to_owned(),
        what: cited.what,
        source,
    })?;
    let r: Value =
        serde_json::from_slice(&bytes).map_err(|source| AttestError::EvidenceSyntax {
            path: path.to_owned(),
            what: cited.what,
            source,
        })?;
    if r["kind"] != cited.kind {
        return Err(AttestError::NotEvidence {
            path: path.to_owned(),
            what: cited.what,
            kind: cited.kind,
            command: cited.command,
        });
    }
    Ok((cited.summary)(&r, &bytes))
}

/// Read a drill report (`terroir drill` writes it) to cite it.
pub fn drill_evidence(path: &Path) -> Result<Evidence, AttestError> {
    read_evidence(path, &DRILL)
}

/// Read a continuity report (`terroir continuity` writes it) to cite it.
pub fn continuity_evidence(path: &Path) -> Result<Evidence, AttestError> {
    read_evidence(path, &CONTINUITY)
}

/// The evidence of a drill report `r` whose bytes are `bytes`.
fn drill_summary(r: &Value, bytes: &[u8]) -> Evidence {
    let mut subjects = vec![
        json!({"name": "evidence://drill-report.json", "digest": {"sha256": crate::text::sha256_hex(bytes)}}),
    ];
    if let Some(m) = r["export"]["manifestSha256"]
        .as_str()
        .filter(|m| m.len() == 64)
    {
        subjects.push(json!({"name": "evidence://export/manifest.json", "digest": {"sha256": m}}));
    }
    let checks = |k: &str| {
        r[k].as_array()
            .map(|a| (a.len(), a.iter().filter(|c| c["matches"] == true).count()))
            .unwrap_or((0, 0))
    };
    let (tables, tables_ok) = checks("tables");
    let summary = json!({
        "drill": {
            "passed": r["passed"], "startedAt": r["startedAt"], "finishedAt": r["finishedAt"],
            "from": r["sourcePlatform"], "into": r["destinationPlatform"],
            "phases": r["phases"], "totalSeconds": r["totalSeconds"],
            "exportBytes": r["export"]["bytes"], "rows": r["export"]["rows"],
            "tableChecks": tables, "tableChecksMatching": tables_ok,
            "report": "evidence://drill-report.json",
        }
    });
    Evidence {
        subjects,
        key: "reversibility",
        summary,
    }
}

/// The evidence of a continuity report: per claim, the dependency, the degraded mode declared,
/// the verdict and the times to detect and to recover.
fn continuity_summary(r: &Value, bytes: &[u8]) -> Evidence {
    let claims: Vec<Value> = r["claims"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    json!({
                        "name": c["name"], "dependency": c["dependency"], "declared": c["declared"],
                        "fault": c["fault"], "passed": c["passed"], "reason": c["reason"],
                        "detectSeconds": c["detectSeconds"], "recoverSeconds": c["recoverSeconds"],
                        "failoverSeconds": c["failoverSeconds"],
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Evidence {
        subjects: vec![
            json!({"name": "evidence://continuity-report.json", "digest": {"sha256": crate::text::sha256_hex(bytes)}}),
        ],
        key: "continuity",
        summary: json!({
            "passed": r["passed"], "mode": r["mode"], "platform": r["platform"],
            "renderedSha256": r["renderedSha256"],
            "startedAt": r["startedAt"], "finishedAt": r["finishedAt"],
            "totalSeconds": r["totalSeconds"], "claims": claims,
            "report": "evidence://continuity-report.json",
        }),
    }
}

/// Who certifies the public name, as the platform's own records show it (never the key): on
/// hosts, the ACME CA that issued the certificate in the secret store, or the platform's own CA
/// until one did; on a cluster, what the rendered Ingress and cert-manager Issuer say.
fn public_certificate(document: &Path, p: &Platform) -> Option<Value> {
    let on_hosts = !p.spec.target.on_kubernetes();
    let acme = p.spec.endpoints.acme_ca.as_ref().map(|e| e.url.clone());
    if let Some(class) = p
        .spec
        .target
        .kubernetes()
        .and_then(|k| k.ingress_class_name.as_ref())
    {
        let name = p
            .spec
            .components
            .app
            .public_host
            .as_ref()
            .filter(|_| p.spec.components.app.enabled)?;
        return Some(json!({
            "names": [name],
            "issuer": acme,
            "acme": acme.is_some(),
            "acmeCaDeclared": acme,
            "served": format!("the Ingress {}-public of IngressClass {class}", p.metadata.name),
            "state": if acme.is_some() { format!("rendered: cert-manager's Issuer {}-acme obtains and renews it (HTTP-01) into the Secret {}-public-tls; not verified by terroir", p.metadata.name, p.metadata.name) } else { "no ACME CA named: the ingress controller's own certificate answers".to_owned() },
        }));
    }
    let name = p
        .spec
        .components
        .app
        .public_host
        .as_ref()
        .filter(|_| on_hosts && p.spec.components.app.enabled)?;
    let store = crate::secrets::SecretStore::for_platform(document, p);
    Some(match crate::pki::public_state(&store) {
        Ok(Some(state)) => json!({
            "names": state.names,
            "issuer": if state.issuer == crate::pki::PublicState::INTERNAL { "the platform's own CA".to_owned() } else { state.issuer.clone() },
            "acme": state.issuer != crate::pki::PublicState::INTERNAL,
            "expires": crate::text::rfc3339(state.expires),
            "acmeCaDeclared": acme,
            "served": "nginx on the application hosts, TLS 1.2 or later (with TLS 1.2, ECDHE and AEAD suites only), plain HTTP redirected",
        }),
        _ => {
            json!({"names": [name], "issuer": null, "acmeCaDeclared": acme, "state": "not issued yet: `terroir apply` makes it"})
        }
    })
}

/// A signed statement and the predicate it carries.
pub struct Attestation {
    pub envelope: dsse::Envelope,
    pub predicate: Value,
}

impl Attestation {
    pub fn key_id(&self) -> Option<&str> {
        self.envelope.signatures.first().map(|s| s.keyid.as_str())
    }
}

/// Sign what `assessed` establishes about the platform `document` describes: every rendered file
/// as a subject, with the drills' reports and what the running target shows when they are given.
pub fn sign(
    document: &Path,
    assessed: &Assessed,
    key: &SigningKey,
    evidence: Vec<Evidence>,
    live: Option<LiveFacts>,
) -> Result<Attestation, AttestError> {
    let p = &assessed.loaded.platform;
    let time = crate::text::now_rfc3339();
    let mut pred = predicate::predicate(p, assessed.resolved.target_kind, &assessed.report, &time);
    if let Some(public) = public_certificate(document, p) {
        pred["security"]["publicCertificate"] = public;
    }
    let mut subjects = predicate::subjects(&assessed.tree);
    if p.spec.target.on_kubernetes() {
        let images = crate::pipeline::images::inventory(&assessed.resolved);
        subjects.extend(predicate::image_subjects(&images));
        pred["images"] = predicate::images(&images);
    }
    for e in evidence {
        subjects.extend(e.subjects);
        pred[e.key] = e.summary;
    }
    if let Some(live) = live {
        subjects.extend(live.subjects);
        pred["security"]["encryptionAtRest"]["observed"] = Value::Array(live.encryption_at_rest);
        pred["security"]["encryptionAtRest"]["basis"] = "live".into();
    }
    let statement = predicate::statement(subjects, pred.clone());
    let payload = serde_json::to_vec(&statement).map_err(AttestError::Encode)?;
    let envelope = dsse::sign(&payload, key, &keys::key_id(&key.verifying_key()));
    Ok(Attestation {
        envelope,
        predicate: pred,
    })
}

/// The files `write` made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub attestation: PathBuf,
    pub markdown: PathBuf,
    pub html: PathBuf,
    pub ropa: PathBuf,
    pub oscal: Option<PathBuf>,
}

impl Written {
    /// Where the files go for an attestation written to `out`; with `oscal`, the OSCAL document
    /// too.
    pub fn beside(out: &Path, oscal: bool) -> Written {
        Written {
            attestation: out.to_owned(),
            markdown: beside(out, "report.md"),
            html: beside(out, "report.html"),
            ropa: beside(out, "ropa.md"),
            oscal: oscal.then(|| beside(out, "oscal.json")),
        }
    }
}

/// `ATTESTATION` with its extension replaced: `a.json` -> `a.report.md`.
fn beside(out: &Path, suffix: &str) -> PathBuf {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "attestation".into());
    out.with_file_name(format!("{stem}.{suffix}"))
}

/// Write the envelope to `out`, and beside it the reports, the record of processing activities
/// and, with `oscal`, the OSCAL assessment results; each file whole or not at all.
pub fn write(
    attestation: &Attestation,
    p: &Platform,
    out: &Path,
    oscal: bool,
) -> Result<Written, AttestError> {
    let written = Written::beside(out, oscal);
    let pred = &attestation.predicate;
    let mut files = vec![
        (&written.attestation, pretty(&attestation.envelope)?),
        (
            &written.markdown,
            super::report::markdown(pred).into_bytes(),
        ),
        (&written.html, super::report::html(pred).into_bytes()),
        (&written.ropa, super::ropa::ropa(p).into_bytes()),
    ];
    if let Some(path) = &written.oscal {
        files.push((path, pretty(&super::oscal::assessment_results(pred))?));
    }
    for (path, bytes) in files {
        write_whole(path, &bytes).map_err(|source| AttestError::Write {
            path: path.clone(),
            source,
        })?;
    }
    Ok(written)
}

fn pretty(value: &impl serde::Serialize) -> Result<Vec<u8>, AttestError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(AttestError::Encode)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Through a hidden temporary file beside `path` and a rename: a reader never sees half a file.
fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_reports_are_named_after_the_attestation() {
        let w = Written::beside(Path::new("out/acme.json"), true);
        assert_eq!(w.markdown, Path::new("out/acme.report.md"));
        assert_eq!(w.html, Path::new("out/acme.report.html"));
        assert_eq!(w.ropa, Path::new("out/acme.ropa.md"));
        assert_eq!(w.oscal.as_deref(), Some(Path::new("out/acme.oscal.json")));
        assert_eq!(Written::beside(Path::new("acme.json"), false).oscal, None);
    }

    #[test]
    fn a_drill_report_is_cited_by_digest_with_its_figures() {
        let report = json!({
            "kind": "terroir-drill-report/v1", "passed": true, "totalSeconds": 42,
            "export": {"manifestSha256": "a".repeat(64), "bytes": 1024, "rows": 7},
            "tables": [{"matches": true}, {"matches": false}],
        });
        let bytes = serde_json::to_vec(&report).unwrap();
        let e = drill_summary(&report, &bytes);
        assert_eq!(e.subjects.len(), 2);
        assert_eq!(
            e.subjects[0]["digest"]["sha256"],
            crate::text::sha256_hex(&bytes)
        );
        assert_eq!(e.subjects[1]["name"], "evidence://export/manifest.json");
        assert_eq!(e.summary["drill"]["tableChecks"], 2);
        assert_eq!(e.summary["drill"]["tableChecksMatching"], 1);
        assert_eq!(e.key, "reversibility");
    }

    #[test]
    fn a_continuity_report_is_cited_by_digest_with_each_claim() {
        let report = json!({
            "kind": "terroir-continuity-report/v1", "passed": false, "mode": "claims",
            "totalSeconds": 61.5,
            "claims": [
                {"name": "smtpRelay", "passed": true, "detectSeconds": 1.5, "recoverSeconds": 2.0, "probes": []},
                {"name": "backupS3", "passed": false, "reason": "alert-fires BackupFailing: not within 180 s", "probes": []},
            ],
        });
        let bytes = serde_json::to_vec(&report).unwrap();
        let e = continuity_summary(&report, &bytes);
        assert_eq!(e.key, "continuity");
        assert_eq!(e.subjects[0]["name"], "evidence://continuity-report.json");
        assert_eq!(
            e.subjects[0]["digest"]["sha256"],
            crate::text::sha256_hex(&bytes)
        );
        assert_eq!(e.summary["passed"], false);
        assert_eq!(e.summary["claims"][0]["detectSeconds"], 1.5);
        assert!(
            e.summary["claims"][1]["reason"]
                .as_str()
                .unwrap()
                .contains("BackupFailing")
        );
        // the probes' details stay in the report the digest names
        assert!(e.summary["claims"][0].get("probes").is_none());
    }

    #[test]
    fn what_is_not_a_drill_report_is_refused_with_the_file_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("drill.json");
        assert!(matches!(
            drill_evidence(&path),
            Err(AttestError::EvidenceRead { .. })
        ));
        std::fs::write(&path, "not json").unwrap();
        assert!(matches!(
            drill_evidence(&path),
            Err(AttestError::EvidenceSyntax { .. })
        ));
        std::fs::write(&path, "{\"kind\": \"other\"}").unwrap();
        let e = drill_evidence(&path).unwrap_err();
        assert!(
            e.to_string().contains("drill.json")
                && e.to_string().contains("terroir-drill-report/v1"),
            "{e}"
        );
        // a drill report is not a continuity report
        std::fs::write(&path, "{\"kind\": \"terroir-drill-report/v1\"}").unwrap();
        let e = continuity_evidence(&path).unwrap_err();
        assert!(
            e.to_string().contains("terroir-continuity-report/v1")
                && e.to_string().contains("terroir continuity"),
            "{e}"
        );
    }
}
