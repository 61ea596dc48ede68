//! How `plan` and `apply` read for people: what happens as it happens (a line or a live bar per
//! host, the cluster's steps, Terraform's output), then the report of what changed.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;

use super::{Bar, Printer, Progress, Report, Text};
use crate::deploy::baremetal::driver::HostsReport;
use crate::deploy::baremetal::{HostReport, StepReport, StepStatus};
use crate::deploy::kubernetes::Action;
use crate::deploy::kubernetes::driver::{ClusterReport, generated_lines};
use crate::deploy::kubernetes::secrets::Ensured;
use crate::deploy::{Deployed, Events, Mode, Outcome};
use crate::policy::gate::GateReport;
use crate::text::plural;

/// A run told to people, and warnings and problems told to everyone.
pub struct DeployEvents {
    printer: Printer,
    progress: Progress,
    mode: Mode,
    hosts: Mutex<BTreeMap<String, Bar>>,
}

impl Printer {
    /// What `deploy::run` tells as it goes.
    pub fn deploy_events(&self, mode: Mode) -> DeployEvents {
        DeployEvents {
            printer: self.clone(),
            progress: self.progress(),
            mode,
            hosts: Mutex::new(BTreeMap::new()),
        }
    }
}

impl DeployEvents {
    fn host(&self, host: &str) -> std::sync::MutexGuard<'_, BTreeMap<String, Bar>> {
        let mut bars = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        if !bars.contains_key(host) {
            bars.insert(host.to_owned(), self.progress.spinner(host));
        }
        bars
    }
}

impl Events for DeployEvents {
    fn note(&self, line: &str) {
        self.progress.line(line);
    }

    fn warn(&self, line: &str) {
        self.printer.warn(line);
    }

    fn problem(&self, line: &str) {
        self.printer.problem(line);
    }

    fn gate(&self, report: &GateReport) {
        // each failing check: an error when the policy is enforced, else a warning
        for f in report.failures() {
            let line = format!(
                "policy: {}: {} (expected {}): {}",
                f.subject, f.observed, f.expected, f.evidence
            );
            if report.enforced {
                self.printer.problem(line)
            } else {
                self.printer.warn(line)
            }
        }
    }

    fn cluster_secrets(&self, secrets: &Ensured, mode: Mode) {
        for line in generated_lines(secrets, mode) {
            self.progress.line(line);
        }
        // missing Secrets the client gives: an error of the apply, a plan's warning for people
        for line in secrets.missing_lines() {
            match mode {
                Mode::Apply => self.printer.problem(line),
                Mode::Plan => self.progress.line(format!("warning: {line}")),
            }
        }
    }

    fn hosts(&self) -> &dyn crate::deploy::baremetal::Progress {
        self
    }
}

impl crate::deploy::baremetal::Progress for DeployEvents {
    fn host_started(&self, host: &str) {
        if let Some(bar) = self.host(host).get(host) {
            bar.status("connecting");
        }
    }

    fn step(&self, host: &str, step: &StepReport) {
        let bars = self.host(host);
        let Some(bar) = bars.get(host) else { return };
        match (step.status, self.mode) {
            (StepStatus::Unchanged, _) => bar.message(&step.id),
            (StepStatus::Changed, Mode::Apply) => {
                bar.status(format!("changed: {} {}", step.id, step.detail))
            }
            (StepStatus::Changed, Mode::Plan) => {
                bar.status(format!("would change: {} {}", step.id, step.detail))
            }
            (StepStatus::Failed, _) => {
                bar.println(format!("[{host}] FAILED: {} {}", step.id, step.detail))
            }
        }
    }

    fn host_finished(&self, r: &HostReport) {
        let bars = self.host(&r.name);
        let Some(bar) = bars.get(&r.name) else { return };
        match &r.error {
            Some(e) => bar.finish(format!("error: {e}")),
            None => bar.finish(format!(
                "done in {:.1} s: {} changed, {} unchanged, {} failed",
                r.duration_ms as f64 / 1000.0,
                r.changed,
                r.unchanged,
                r.failed
            )),
        }
    }
}

impl Report for Deployed {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        if let Some(cloud) = &self.provisioned {
            cloud.write_text(out)?;
        }
        match &self.outcome {
            Outcome::Hosts(r) => hosts_text(r, out),
            Outcome::Cluster(r) => cluster_text(r, out),
            Outcome::Cloud(r) => r.write_text(out),
        }
    }
}

fn hosts_text(r: &HostsReport, out: &mut Text<'_>) -> std::io::Result<()> {
    let verb = if r.mode == Mode::Apply {
        "changed"
    } else {
        "would change"
    };
    writeln!(
        out,
        "{:<16} {:<16} {:>8} {:>10} {:>7}",
        "HOST", "ADDRESS", "CHANGED", "UNCHANGED", "FAILED"
    )?;
    for h in &r.hosts {
        let error = h
            .error
            .as_ref()
            .map(|e| format!("  error: {e}"))
            .unwrap_or_default();
        writeln!(
            out,
            "{:<16} {:<16} {:>8} {:>10} {:>7}{error}",
            h.name, h.address, h.changed, h.unchanged, h.failed
        )?;
    }
    let n = r.hosts.len();
    writeln!(
        out,
        "{} step{} {verb} on {n} host{}; {} host{} failed",
        r.changed,
        plural(r.changed),
        plural(n),
        r.failed_hosts,
        plural(r.failed_hosts)
    )
}

fn cluster_text(r: &ClusterReport, out: &mut Text<'_>) -> std::io::Result<()> {
    let apply = r.mode == Mode::Apply;
    for o in &r.report.objects {
        let (sign, code) = match o.action {
            Action::Create => ("+", "32"),
            Action::Update => ("~", "33"),
            Action::Prune => ("-", "31"),
            Action::Skipped => ("!", "35"),
            Action::Unchanged => continue,
        };
        let verb = if apply {
            o.action.past()
        } else {
            o.action.future()
        };
        let note = o
            .note
            .as_ref()
            .map(|n| format!("  ({n})"))
            .unwrap_or_default();
        let sign = out.paint(code, sign);
        writeln!(out, "{sign} {verb:<10} {}{note}", o.label())?;
        if !apply && o.action == Action::Update {
            for line in o.diff.as_deref().unwrap_or_default().lines() {
                let code = match line.chars().next() {
                    Some('+') if !line.starts_with("+++") => "32",
                    Some('-') if !line.starts_with("---") => "31",
                    Some('@') => "36",
                    _ => "0",
                };
                let line = out.paint(code, line);
                writeln!(out, "      {line}")?;
            }
        }
    }
    let (c, u, p, same) = (
        r.count(Action::Create),
        r.count(Action::Update),
        r.count(Action::Prune),
        r.count(Action::Unchanged),
    );
    let skipped = r.count(Action::Skipped);
    let skipped = if skipped > 0 {
        format!(", {skipped} skipped")
    } else {
        String::new()
    };
    if apply {
        let rollouts = if r.rolled_out.is_empty() {
            String::new()
        } else {
            format!("; {} rollouts complete", r.rolled_out.len())
        };
        writeln!(
            out,
            "applied {} objects in {:.1} s: {c} created, {u} configured, {same} unchanged, {p} pruned{skipped}{rollouts}",
            r.report.applied_objects(),
            r.took.as_secs_f64()
        )
    } else if c + u + p == 0 {
        writeln!(out, "no changes: {same} objects up to date{skipped}")
    } else {
        writeln!(
            out,
            "plan: {c} to create, {u} to update, {p} to prune, {same} unchanged{skipped}"
        )
    }
}
