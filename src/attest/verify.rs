//! `terroir attest verify`: an attestation checked offline: its signature, that it carries a
//! sovereignty assessment or an erasure record, and optionally that a rendered tree is exactly
//! what an assessment attests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;
use serde_json::Value;

use super::{AttestError, dsse, erasure, predicate};
use crate::lifecycle::destroy::Erasure;

/// A file of the rendered tree that is not as attested.
#[derive(Debug)]
pub enum Mismatch {
    Digest {
        name: String,
        actual: String,
        attested: String,
    },
    Missing {
        name: String,
        dir: PathBuf,
        source: std::io::Error,
    },
    Unattested {
        name: String,
        dir: PathBuf,
    },
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::Digest {
                name,
                actual,
                attested,
            } => write!(
                f,
                "{name}: SHA-256 {actual}, the attestation says {attested}"
            ),
            Mismatch::Missing { name, dir, source } => write!(
                f,
                "{name}: attested but missing from {} ({source})",
                dir.display()
            ),
            Mismatch::Unattested { name, dir } => {
                write!(f, "{name}: in {} but not attested", dir.display())
            }
        }
    }
}

impl serde::Serialize for Mismatch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What a verified statement attests, by its predicate type.
#[derive(Debug)]
pub enum Attested {
    /// A sovereignty assessment (`terroir attest`): the platform, time and verdict, as the
    /// predicate says them.
    Assessment {
        platform: Value,
        time: Value,
        verdict: Value,
    },
    /// An erasure record (`terroir destroy`): what was removed, kept and not removed, where and
    /// when, and the export or backup it follows.
    Erasure(Erasure),
}

/// A signature that verifies, what it signs, and how a rendered tree compares.
#[derive(Debug)]
pub struct Verified {
    pub key_id: Option<String>,
    pub attested: Attested,
    /// Rendered files among the subjects (live subjects describe the target, not files).
    pub subjects: BTreeMap<String, String>,
    pub mismatches: Vec<Mismatch>,
}

/// Check the attestation at `path` with `key`, and with `against` the rendered tree there.
pub fn verify(
    path: &Path,
    key: &VerifyingKey,
    against: Option<&Path>,
) -> Result<Verified, AttestError> {
    let text = std::fs::read_to_string(path).map_err(|source| AttestError::AttestationRead {
        path: path.to_owned(),
        source,
    })?;
    let envelope: dsse::Envelope =
        serde_json::from_str(&text).map_err(|source| AttestError::NotAnEnvelope {
            path: path.to_owned(),
            line: source.line(),
            column: source.column(),
            source,
        })?;
    let payload = dsse::verify(&envelope, key).map_err(|source| AttestError::Signature {
        path: path.to_owned(),
        source,
    })?;
    let mut statement: Value =
        serde_json::from_slice(&payload).map_err(AttestError::NotAStatement)?;
    let key_id = envelope.signatures.first().map(|s| s.keyid.clone());
    let predicate_type = &statement["predicateType"];
    if statement["_type"] == predicate::STATEMENT_TYPE && predicate_type == erasure::PREDICATE_TYPE
    {
        if let Some(dir) = against {
            return Err(AttestError::NoTreeInAnErasure(dir.to_owned()));
        }
        let record: Erasure = serde_json::from_value(statement["predicate"].take())
            .map_err(AttestError::NotAnErasureRecord)?;
        return Ok(Verified {
            key_id,
            attested: Attested::Erasure(record),
            subjects: BTreeMap::new(),
            mismatches: Vec::new(),
        });
    }
    if statement["_type"] != predicate::STATEMENT_TYPE
        || predicate_type != predicate::PREDICATE_TYPE
    {
        return Err(AttestError::NotAnAssessment {
            predicate_type: predicate_type.to_string(),
        });
    }
    let subjects = rendered_subjects(&statement);
    let mismatches = against
        .map(|dir| compare(&subjects, dir))
        .unwrap_or_default();
    let pred = &statement["predicate"];
    Ok(Verified {
        key_id,
        attested: Attested::Assessment {
            platform: pred["platform"].clone(),
            time: pred["time"].clone(),
            verdict: pred["verdict"].clone(),
        },
        subjects,
        mismatches,
    })
}

/// An image pinned by digest (`registry/repo:tag@sha256:…`), a subject no rendered file is.
fn is_image(name: &str) -> bool {
    name.contains('@')
        && crate::document::image::ImageRef::parse(name).is_ok_and(|r| r.sha256.is_some())
}

/// Name -> SHA-256 of the statement's subjects that are files of the rendered tree (live
/// subjects, `kubernetes://...` or `host://...`, describe the target).
fn rendered_subjects(statement: &Value) -> BTreeMap<String, String> {
    statement["subject"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| {
                    Some((
                        s["name"].as_str()?.to_owned(),
                        s["digest"]["sha256"].as_str()?.to_owned(),
                    ))
                })
                .filter(|(name, _)| !name.contains("://") && !is_image(name))
                .collect()
        })
        .unwrap_or_default()
}

/// Every attested file compared with `dir`, then the files of `dir` the attestation does not
/// cover (SHA256SUMS is derived from the others).
fn compare(subjects: &BTreeMap<String, String>, dir: &Path) -> Vec<Mismatch> {
    let mut out = Vec::new();
    for (name, attested) in subjects {
        match std::fs::read(dir.join(name)) {
            Ok(bytes) => {
                let actual = crate::text::sha256_hex(&bytes);
                if &actual != attested {
                    out.push(Mismatch::Digest {
                        name: name.clone(),
                        actual,
                        attested: attested.clone(),
                    });
                }
            }
            Err(source) => out.push(Mismatch::Missing {
                name: name.clone(),
                dir: dir.to_owned(),
                source,
            }),
        }
    }
    for file in files_under(dir) {
        let name = file
            .strip_prefix(dir)
            .map(|r| r.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name != crate::pipeline::render::SUMS_FILE && !subjects.contains_key(&name) {
            out.push(Mismatch::Unattested {
                name,
                dir: dir.to_owned(),
            });
        }
    }
    out
}

/// Every file under `dir`, sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        if let Ok(entries) = std::fs::read_dir(&d) {
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p);
                }
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use ed25519_dalek::SigningKey;
    use serde_json::json;

    /// An attestation of `files` (name, bytes) written to `dir/attestation.json`.
    fn attested(
        dir: &Path,
        key: &SigningKey,
        files: &[(&str, &[u8])],
        predicate_type: &str,
    ) -> PathBuf {
        let subjects: Vec<Value> = files
            .iter()
            .map(|(n, b)| json!({"name": n, "digest": {"sha256": crate::text::sha256_hex(b)}}))
            .collect();
        let mut statement = predicate::statement(
            subjects,
            json!({"platform": "acme-crm", "time": "2026-01-01T00:00:00Z", "verdict": "pass"}),
        );
        statement["predicateType"] = predicate_type.into();
        let env = dsse::sign(&serde_json::to_vec(&statement).unwrap(), key, "k");
        let path = dir.join("attestation.json");
        std::fs::write(&path, serde_json::to_vec(&env).unwrap()).unwrap();
        path
    }

    #[test]
    fn a_tree_is_compared_file_by_file_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_bytes(&[3u8; 32]);
        let path = attested(
            dir.path(),
            &key,
            &[("a.yaml", b"a"), ("b.yaml", b"b"), ("gone.yaml", b"g")],
            predicate::PREDICATE_TYPE,
        );
        let tree = dir.path().join("rendered");
        std::fs::create_dir_all(tree.join("sub")).unwrap();
        std::fs::write(tree.join("a.yaml"), "a").unwrap();
        std::fs::write(tree.join("b.yaml"), "changed").unwrap();
        std::fs::write(tree.join("sub/extra.yaml"), "x").unwrap();
        std::fs::write(tree.join(crate::pipeline::render::SUMS_FILE), "").unwrap();
        let v = verify(&path, &key.verifying_key(), Some(&tree)).unwrap();
        assert!(
            matches!(&v.attested, Attested::Assessment { platform, .. } if platform == "acme-crm")
        );
        assert_eq!(v.subjects.len(), 3);
        let said: Vec<String> = v.mismatches.iter().map(ToString::to_string).collect();
        assert_eq!(said.len(), 3, "{said:?}");
        assert!(
            said[0].starts_with("b.yaml: SHA-256 ") && said[0].contains("the attestation says"),
            "{said:?}"
        );
        assert!(
            said[1].starts_with("gone.yaml: attested but missing from"),
            "{said:?}"
        );
        assert!(
            said[2].starts_with("sub/extra.yaml: in ") && said[2].ends_with("but not attested"),
            "{said:?}"
        );
        assert_eq!(
            serde_json::to_value(&v.mismatches[0]).unwrap(),
            json!(said[0])
        );
        assert!(
            verify(&path, &key.verifying_key(), None)
                .unwrap()
                .mismatches
                .is_empty()
        );
    }

    #[test]
    fn another_key_or_another_predicate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_bytes(&[3u8; 32]);
        let path = attested(dir.path(), &key, &[], predicate::PREDICATE_TYPE);
        let other = SigningKey::from_bytes(&[4u8; 32]);
        let e = verify(&path, &other.verifying_key(), None).unwrap_err();
        assert!(matches!(e, AttestError::Signature { .. }));
        assert!(
            crate::text::error_chain(&e).contains("signature does not match"),
            "{e}"
        );
        let path = attested(dir.path(), &key, &[], "https://example.com/other/v1");
        assert!(matches!(
            verify(&path, &key.verifying_key(), None),
            Err(AttestError::NotAnAssessment { .. })
        ));
        std::fs::write(&path, "{\n  oops").unwrap();
        assert!(matches!(
            verify(&path, &key.verifying_key(), None),
            Err(AttestError::NotAnEnvelope { line: 2, .. })
        ));
    }

    #[test]
    fn an_erasure_record_is_recognised_and_read_back() {
        use crate::lifecycle::destroy::{Action, Done, FinalCopy, Item, Kind, Options};
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_bytes(&[5u8; 32]);
        let record = Erasure {
            platform: "acme-crm".into(),
            target: "secnumcloud".into(),
            options: Options {
                delete_data: true,
                ..Options::default()
            },
            started: "2026-12-05T10:00:00Z".into(),
            finished: "2026-12-05T10:02:00Z".into(),
            removed: vec![Done {
                item: Item::new(
                    "terraform",
                    Kind::CloudResource,
                    "terraform_data.vm",
                    Action::Remove,
                ),
                failed: None,
            }],
            kept: vec![],
            failed: vec![],
            follows: Some(FinalCopy {
                kind: "export".into(),
                location: "/srv/export".into(),
                finished: 1_000,
                digests: [("SHA256SUMS".to_owned(), "ab".repeat(32))].into(),
            }),
        };
        let path = dir.path().join("erasure-record.json");
        let env = erasure::sign(&record, &key).unwrap();
        std::fs::write(&path, serde_json::to_vec(&env).unwrap()).unwrap();
        let v = verify(&path, &key.verifying_key(), None).unwrap();
        match v.attested {
            Attested::Erasure(r) => assert_eq!(r, record),
            other => panic!("{other:?}"),
        }
        // no rendered tree to compare it with
        assert!(matches!(
            verify(&path, &key.verifying_key(), Some(dir.path())),
            Err(AttestError::NoTreeInAnErasure(_))
        ));
        // signed, of the erasure type, but not a record
        let mut statement = predicate::statement(vec![], json!({"platform": "acme-crm"}));
        statement["predicateType"] = erasure::PREDICATE_TYPE.into();
        let env = dsse::sign(&serde_json::to_vec(&statement).unwrap(), &key, "k");
        std::fs::write(&path, serde_json::to_vec(&env).unwrap()).unwrap();
        assert!(matches!(
            verify(&path, &key.verifying_key(), None),
            Err(AttestError::NotAnErasureRecord(_))
        ));
    }
}
