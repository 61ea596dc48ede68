//! The corpus of malformed documents in tests/malformed/: each file ends with the errors it must
//! produce, as `# expect: LINE:COLUMN: message` comments (at the end, so they shift no line).
//! Every file must exit 1 without panicking and report exactly those errors, at those places.

#![allow(clippy::unwrap_used)]

use crate::common;

use common::*;

struct Expected {
    line: u64,
    column: u64,
    message: String,
}

/// The `# expect: LINE:COLUMN: message` lines of a corpus file; `name` is for failure messages.
fn expectations(name: &str, text: &str) -> Vec<Expected> {
    let line_count = text.lines().count() as u64;
    text.lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(|rest| {
            let mut parts = rest.splitn(3, ':');
            let mut number = |what: &str| -> u64 {
                let part = parts.next().unwrap_or_default().trim();
                part.parse().unwrap_or_else(|_| {
                    panic!("{name}: `# expect: {rest}` has no {what} number (got `{part}`)")
                })
            };
            let line = number("line");
            let column = number("column");
            let message = parts.next().unwrap_or_default().trim().to_owned();
            assert!(
                !message.is_empty(),
                "{name}: `# expect: {rest}` has no message"
            );
            assert!(
                (1..=line_count).contains(&line) && column >= 1,
                "{name}: `# expect: {rest}` points outside the file ({line_count} lines)"
            );
            Expected {
                line,
                column,
                message,
            }
        })
        .collect()
}

fn corpus() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(root().join("tests/malformed"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
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
        let expected = expectations(&name, &std::fs::read_to_string(&path).unwrap());
        assert!(!expected.is_empty(), "{name} has no `# expect:` line");
        let out = terroir()
            .args(["--output", "json", "validate"])
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{name} panicked: {stderr}");
        assert_eq!(out.status.code(), Some(1), "{name} must exit 1");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{name}: output is not JSON ({e})"));
        let errors = v[0]["errors"].as_array().unwrap();
        for e in &expected {
            let found = errors.iter().any(|got| {
                got["line"] == e.line
                    && got["column"] == e.column
                    && got["message"].as_str().unwrap().contains(&e.message)
            });
            if !found {
                failures.push(format!(
                    "{name}: expected {}:{}: {}\n  got: {}",
                    e.line,
                    e.column,
                    e.message,
                    serde_json::to_string(errors).unwrap()
                ));
            }
        }
        if errors.len() != expected.len() {
            failures.push(format!(
                "{name}: expected {} errors, got {}: {}",
                expected.len(),
                errors.len(),
                serde_json::to_string(errors).unwrap()
            ));
        }
        for got in errors {
            assert!(
                !got["expected"].as_str().unwrap().is_empty(),
                "{name}: every error says what was expected"
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_malformed_document_names_file_line_and_column_in_text() {
    let mut failures = Vec::new();
    for path in corpus() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let expected = expectations(&name, &std::fs::read_to_string(&path).unwrap());
        let out = terroir().arg("validate").arg(&path).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{name} panicked: {stderr}");
        if out.status.code() != Some(1) {
            failures.push(format!(
                "{name}: text mode exited with {:?}, not 1\n{stderr}",
                out.status.code()
            ));
        }
        for e in &expected {
            let place = format!("{}:{}:{}: {}", path.display(), e.line, e.column, e.message);
            if !stderr.contains(&place) {
                failures.push(format!("{name}: `{place}` not in:\n{stderr}"));
            }
        }
        if !stderr.contains("; expected ") {
            failures.push(format!(
                "{name}: the text form does not say what was expected:\n{stderr}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn shipped_examples_are_valid() {
    let mut examples: Vec<_> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    examples.sort();
    assert!(
        examples.len() >= 3,
        "examples/ holds the three shipped examples: {examples:?}"
    );
    for ex in examples {
        let out = terroir().arg("validate").arg(&ex).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{} must be valid:\n{}",
            ex.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
