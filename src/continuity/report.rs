//! `continuity-report.json` and `continuity-report.md`: per claim, the dependency or member,
//! the degraded mode declared, the fault injected, what each probe saw, the verdict, and the
//! times to detect and to recover.

use std::fmt::Write as _;

use serde::Serialize;

use super::probe::{Observation, Outcome};

pub const KIND: &str = "terroir-continuity-report/v1";

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContinuityReport {
    pub kind: &'static str,
    pub platform: String,
    /// The document's file name.
    pub document: String,
    /// SHA-256 of the render's SHA256SUMS: which rendered platform was drilled.
    pub rendered_sha256: String,
    /// `claims`, or the cut-off: `cut-off outside-policy`, `cut-off all-external`.
    pub mode: String,
    pub started_at: String,
    pub finished_at: String,
    pub total_seconds: f64,
    /// Every claim held, and every fault was removed.
    pub passed: bool,
    pub claims: Vec<ClaimResult>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimResult {
    pub name: String,
    /// The dependency or member, in words.
    pub dependency: String,
    /// The degraded mode the blueprint declares.
    pub declared: String,
    /// The fault injected, in words.
    pub fault: String,
    /// Hosts the fault was placed on.
    pub hosts: Vec<String>,
    /// The probes while the fault was in place.
    pub probes: Vec<Observation>,
    /// The probes once it was removed.
    pub nominal: Vec<Observation>,
    pub passed: bool,
    /// Why it failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// From the fault in place to every probe holding (for a stopped primary: its failover).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detect_seconds: Option<f64>,
    /// A stopped member: from the stop until its role was served again (the same time as
    /// `detectSeconds`; for the database's primary, Patroni's failover until a write commits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failover_seconds: Option<f64>,
    /// From the fault removed to every nominal probe holding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recover_seconds: Option<f64>,
    /// Whether every host confirmed the fault gone.
    pub fault_removed: bool,
}

impl ClaimResult {
    /// A claim about to be drilled: nothing placed, probed or passed yet.
    pub fn new(name: String, dependency: String, declared: String, fault: String) -> Self {
        ClaimResult {
            name,
            dependency,
            declared,
            fault,
            hosts: Vec::new(),
            probes: Vec::new(),
            nominal: Vec::new(),
            passed: false,
            reason: None,
            detect_seconds: None,
            failover_seconds: None,
            recover_seconds: None,
            fault_removed: true,
        }
    }

    /// What works, queues and stops while the fault lasts (a cut-off's summary).
    pub fn outcomes(&self, outcome: Outcome) -> Vec<&str> {
        self.probes
            .iter()
            .filter(|o| o.outcome == outcome)
            .map(|o| o.probe.as_str())
            .collect()
    }
}

fn seconds(s: Option<f64>) -> String {
    s.map(|s| format!("{s:.1} s")).unwrap_or_else(|| "-".into())
}

/// Markdown table cells: no line breaks, no column separators.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The report for people.
pub fn markdown(r: &ContinuityReport) -> String {
    let mut s = format!("# Continuity drill: {}\n\n", r.platform);
    let failed = r.claims.iter().filter(|c| !c.passed).count();
    let _ = writeln!(
        s,
        "{} ({}), {} to {}, {:.1} s. Rendered platform: sha256 `{}`.\n",
        r.document, r.mode, r.started_at, r.finished_at, r.total_seconds, r.rendered_sha256
    );
    let _ = writeln!(
        s,
        "**{}**: {} claim(s), {} failed.\n",
        if r.passed { "PASSED" } else { "FAILED" },
        r.claims.len(),
        failed
    );
    s.push_str("Detect: from the fault in place until every probe of the degraded mode held (for a stopped member, its failover). Recover: from the fault removed until every probe of nominal held.\n\n");
    s.push_str("| claim | dependency | declared degraded mode | verdict | detect | recover |\n");
    s.push_str("| --- | --- | --- | --- | --- | --- |\n");
    for c in &r.claims {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            cell(&c.name),
            cell(&c.dependency),
            cell(&c.declared),
            if c.passed { "passed" } else { "failed" },
            seconds(c.detect_seconds),
            seconds(c.recover_seconds)
        );
    }
    for c in &r.claims {
        let _ = writeln!(s, "\n## {}\n", c.name);
        let _ = writeln!(s, "- Dependency: {}", c.dependency);
        let _ = writeln!(s, "- Declared: {}", c.declared);
        let _ = writeln!(s, "- Fault: {} (on {})", c.fault, c.hosts.join(", "));
        if let Some(why) = &c.reason {
            let _ = writeln!(s, "- Failed: {why}");
        }
        if !c.fault_removed {
            let _ = writeln!(
                s,
                "- The fault's removal was not confirmed on every host: its timer removes it after `--max-fault-seconds`"
            );
        }
        for (phase, list) in [("while the fault lasts", &c.probes), ("after", &c.nominal)] {
            if list.is_empty() {
                continue;
            }
            let _ = writeln!(s, "\n{phase}:\n");
            s.push_str("| probe | result | seen | time |\n| --- | --- | --- | --- |\n");
            for o in list {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {:.1} s |",
                    cell(&o.probe),
                    if o.passed {
                        match o.outcome {
                            Outcome::Works => "works",
                            Outcome::Queues => "queues",
                            Outcome::Stops => "stops",
                        }
                    } else {
                        "FAILED"
                    },
                    cell(&o.observed),
                    o.seconds
                );
            }
        }
    }
    s
}
