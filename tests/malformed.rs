//! The corpus of malformed documents in tests/malformed/: each file ends with the errors it must
//! produce, as `# expect: LINE:COLUMN: message` comments (at the end, so they shift no line).
//! Every file must exit 1 without panicking and report exactly those errors, at those places.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;

struct Expected {
    line: u64,
    column: u64,
    message: String,
}

fn expectations(text: &str) -> Vec<Expected> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(|rest| {
            let mut parts = rest.splitn(3, ':');
            let line = parts.next().unwrap().trim().parse().unwrap();
            let column = parts.next().unwrap().trim().parse().unwrap();
            let message = parts.next().unwrap().trim().to_owned();
            Expected { line, column, message }
        })
        .collect()
}

fn corpus() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(root().join("tests/malformed")).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "yaml")).collect();
    files.sort();
    files
}

#[test]
fn corpus_is_large_enough() {
    assert!(corpus().len() >= 25, "at least 25 malformed documents");
}

#[test]
fn every_malformed_document_reports_its_errors_in_json() {
    let mut failures = Vec::new();
    for path in corpus() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let expected = expectations(&std::fs::read_to_string(&path).unwrap());
        assert!(!expected.is_empty(), "{name} has no `# expect:` line");
        let out = terroir().args(["--output", "json", "validate"]).arg(&path).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{name} panicked: {stderr}");
        assert_eq!(out.status.code(), Some(1), "{name} must exit 1");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{name}: output is not JSON ({e})"));
        let errors = v[0]["errors"].as_array().unwrap();
        for e in &expected {
            let found = errors.iter().any(|got| got["line"] == e.line && got["column"] == e.column && got["message"].as_str().unwrap().contains(&e.message));
            if !found {
                failures.push(format!("{name}: expected {}:{}: {}\n  got: {}", e.line, e.column, e.message, serde_json::to_string(errors).unwrap()));
            }
        }
        if errors.len() != expected.len() {
            failures.push(format!("{name}: expected {} errors, got {}: {}", expected.len(), errors.len(), serde_json::to_string(errors).unwrap()));
        }
        for got in errors {
            assert!(!got["expected"].as_str().unwrap().is_empty(), "{name}: every error says what was expected");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_malformed_document_names_file_line_and_column_in_text() {
    for path in corpus() {
        let expected = expectations(&std::fs::read_to_string(&path).unwrap());
        let out = terroir().arg("validate").arg(&path).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        for e in &expected {
            let place = format!("{}:{}:{}: {}", path.display(), e.line, e.column, e.message);
            assert!(stderr.contains(&place), "{place}\nnot in:\n{stderr}");
        }
        assert!(stderr.contains("; expected "), "the text form says what was expected: {stderr}");
    }
}

#[test]
fn shipped_examples_are_valid() {
    for ex in ["baremetal.yaml", "kubernetes.yaml", "secnumcloud-outscale.yaml"] {
        terroir().arg("validate").arg(example(ex)).assert().success();
    }
}
