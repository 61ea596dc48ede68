//! `terroir attest FILE --key KEY --out ATTESTATION` and `terroir attest verify ATTESTATION
//! --pubkey KEY.pub [--against DIR]` (an assessment, or the erasure record `terroir destroy`
//! writes).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::Context;
use crate::attest::verify::Attested;
use crate::attest::{keys, live, sign};
use crate::cli::{AttestArgs, AttestCommand, AttestFormat};
use crate::error::{Error, ExitStatus};
use crate::lifecycle::destroy::{Action, Done, Erasure, FinalCopy, Item};
use crate::policy::assess;
use crate::policy::locality::verify::Verdict;
use crate::printer::{Report, Text};

pub fn run(args: &AttestArgs, cx: &Context) -> Result<ExitStatus, Error> {
    if let Some(AttestCommand::Verify {
        attestation,
        pubkey,
        against,
    }) = &args.command
    {
        return verify(attestation, pubkey, against.as_deref(), cx);
    }
    let (Some(file), Some(key_path), Some(out)) = (&args.file, &args.key, &args.out) else {
        return Err(Error::usage(
            "`terroir attest FILE --key KEY --out ATTESTATION` (or `terroir attest verify ATTESTATION --pubkey KEY.pub`); see `terroir attest --help`",
        ));
    };
    // Read the key first: a bad key must not cost a live verification.
    let key = keys::read_private(key_path)?;
    let checks = super::verify::checks(&args.check)?;
    let assessed = assess::assess(file, &cx.catalog, &checks)?;
    let mut evidence = Vec::new();
    if let Some(path) = &args.drill_report {
        evidence.push(sign::drill_evidence(path)?);
    }
    if let Some(path) = &args.continuity_report {
        evidence.push(sign::continuity_evidence(path)?);
    }
    let live = match &checks.live {
        Some(l) => live::read(file, &assessed, l)?,
        None => None,
    };
    let attestation = sign::sign(file, &assessed, &key, evidence, live)?;
    let written = sign::write(
        &attestation,
        &assessed.loaded.platform,
        out,
        args.format == AttestFormat::Oscal,
    )?;
    let grid = &attestation.predicate["grid"];
    let references = |list: &str| -> Vec<String> {
        attestation.predicate["images"][list]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|i| i["reference"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (pinned, tag_only) = (references("pinned"), references("tagOnly"));
    cx.printer.report(&Signed {
        attestation: written.attestation.clone(),
        report: ReportFiles {
            markdown: written.markdown.clone(),
            html: written.html.clone(),
        },
        ropa: written.ropa.clone(),
        oscal: written.oscal.clone(),
        subjects: assessed.tree.files.len() + pinned.len(),
        pinned_images: pinned,
        tag_only_images: tag_only,
        verdict: assessed.report.verdict,
        score: Score {
            total: grid["total"].clone(),
            max: grid["max"].clone(),
            band: grid["band"].clone(),
        },
        key_id: attestation.key_id().map(str::to_owned),
    })?;
    // The attestation records a failing verdict faithfully; the exit status says it too.
    Ok(ExitStatus::checked(
        assessed.report.verdict != Verdict::Fail,
    ))
}

#[derive(Serialize)]
struct ReportFiles {
    markdown: PathBuf,
    html: PathBuf,
}

#[derive(Serialize)]
struct Score {
    total: Value,
    max: Value,
    band: Value,
}

/// What was signed and written.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Signed {
    attestation: PathBuf,
    report: ReportFiles,
    ropa: PathBuf,
    oscal: Option<PathBuf>,
    /// Rendered files and pinned images attested.
    subjects: usize,
    /// Images whose digest is a subject.
    pinned_images: Vec<String>,
    /// Images referenced by tag only: what ran under the tag is not attested.
    tag_only_images: Vec<String>,
    verdict: Verdict,
    score: Score,
    key_id: Option<String>,
}

impl Report for Signed {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        writeln!(
            out,
            "signed {} ({} subjects, verdict {:?}, score {}/{} {})",
            self.attestation.display(),
            self.subjects,
            self.verdict,
            self.score.total,
            self.score.max,
            self.score.band.as_str().unwrap_or("")
        )?;
        writeln!(
            out,
            "report {} and {}",
            self.report.markdown.display(),
            self.report.html.display()
        )?;
        writeln!(
            out,
            "record of processing activities (draft) {}",
            self.ropa.display()
        )?;
        if !self.pinned_images.is_empty() {
            writeln!(
                out,
                "{} image{} attested by digest",
                self.pinned_images.len(),
                crate::text::plural(self.pinned_images.len())
            )?;
        }
        if !self.tag_only_images.is_empty() {
            writeln!(
                out,
                "referenced by tag only, no digest attested (pin them with `terroir images pin`): {}",
                self.tag_only_images.join(", ")
            )?;
        }
        if let Some(oscal) = &self.oscal {
            writeln!(out, "OSCAL assessment results {}", oscal.display())?;
        }
        Ok(())
    }
}

fn verify(
    attestation: &Path,
    pubkey: &Path,
    against: Option<&Path>,
    cx: &Context,
) -> Result<ExitStatus, Error> {
    let key = keys::read_public(pubkey)?;
    let v = crate::attest::verify::verify(attestation, &key, against)?;
    let (platform, time, verdict) = match v.attested {
        Attested::Assessment {
            platform,
            time,
            verdict,
        } => (platform, time, verdict),
        Attested::Erasure(record) => {
            cx.printer.report(&ErasureChecked::new(record, v.key_id))?;
            return Ok(ExitStatus::Success);
        }
    };
    let mismatched = v.mismatches.len();
    cx.printer.report(&Checked {
        valid: v.mismatches.is_empty(),
        kind: "assessment",
        platform,
        time,
        verdict,
        subjects: v.subjects.len(),
        mismatches: v.mismatches,
        key_id: v.key_id,
        against: against.map(Path::to_path_buf),
    })?;
    if mismatched > 0 {
        cx.printer
            .problem(format!("{mismatched} file(s) do not match the attestation"));
        return Ok(ExitStatus::Failed);
    }
    Ok(ExitStatus::Success)
}

/// An attestation checked: its signature verified, and how the rendered tree compares.
#[derive(Serialize)]
struct Checked {
    valid: bool,
    /// `assessment`, or `erasure`.
    kind: &'static str,
    platform: Value,
    time: Value,
    verdict: Value,
    subjects: usize,
    mismatches: Vec<crate::attest::verify::Mismatch>,
    #[serde(skip)]
    key_id: Option<String>,
    #[serde(skip)]
    against: Option<PathBuf>,
}

impl Report for Checked {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        if !self.valid {
            for m in &self.mismatches {
                writeln!(out, "mismatch: {m}")?;
            }
            return Ok(());
        }
        writeln!(
            out,
            "valid signature by {} over {} subjects{}: platform {}, attested {}, verdict {}",
            self.key_id.as_deref().unwrap_or("?"),
            self.subjects,
            if self.against.is_some() {
                ", all matching"
            } else {
                ""
            },
            self.platform.as_str().unwrap_or("?"),
            self.time.as_str().unwrap_or("?"),
            self.verdict.as_str().unwrap_or("?")
        )
    }
}

/// The export or backup an erasure follows, with its time as people and scripts read it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Follows {
    #[serde(flatten)]
    copy: FinalCopy,
    /// `finished`, RFC 3339.
    finished_at: String,
}

/// An erasure record whose signature verifies: what it says.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErasureChecked {
    valid: bool,
    kind: &'static str,
    platform: String,
    target: String,
    options: crate::lifecycle::destroy::Options,
    started: String,
    finished: String,
    /// How many items were stopped or removed, left in place, and could not be removed.
    removed: usize,
    kept: usize,
    failed: usize,
    /// Each item left in place, and why; each that could not be removed, and why.
    kept_items: Vec<Item>,
    failed_items: Vec<Done>,
    /// The export or backup the erasure follows; `null` when it follows none (--no-final-export).
    follows: Option<Follows>,
    key_id: Option<String>,
}

impl ErasureChecked {
    fn new(record: Erasure, key_id: Option<String>) -> ErasureChecked {
        ErasureChecked {
            valid: true,
            kind: "erasure",
            removed: record.removed.len(),
            kept: record.kept.len(),
            failed: record.failed.len(),
            platform: record.platform,
            target: record.target,
            options: record.options,
            started: record.started,
            finished: record.finished,
            kept_items: record.kept,
            failed_items: record.failed,
            follows: record.follows.map(|copy| Follows {
                finished_at: crate::text::rfc3339(copy.finished),
                copy,
            }),
            key_id,
        }
    }
}

fn item_line(item: &Item) -> String {
    let kind = serde_json::to_value(item.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    format!("[{}] {kind} {}", item.place, item.what)
}

impl Report for ErasureChecked {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        writeln!(
            out,
            "valid signature by {}: erasure record of {} ({} target), {} to {}",
            self.key_id.as_deref().unwrap_or("?"),
            self.platform,
            self.target,
            self.started,
            self.finished
        )?;
        writeln!(
            out,
            "{} item{} removed, {} kept, {} failed{}",
            self.removed,
            crate::text::plural(self.removed),
            self.kept,
            self.failed,
            if self.options.delete_data {
                " (--delete-data)"
            } else {
                ""
            }
        )?;
        for item in &self.kept_items {
            if let Action::Keep { why } = &item.action {
                writeln!(out, "  kept {}: {why}", item_line(item))?;
            }
        }
        for done in &self.failed_items {
            writeln!(
                out,
                "  not removed {}: {}",
                item_line(&done.item),
                done.failed.as_deref().unwrap_or("?")
            )?;
        }
        match &self.follows {
            Some(f) => {
                writeln!(
                    out,
                    "follows the {} {}, finished {}",
                    f.copy.kind, f.copy.location, f.finished_at
                )?;
                for (name, sha) in &f.copy.digests {
                    writeln!(out, "  {name} sha256 {sha}")?;
                }
            }
            None => writeln!(out, "follows no export or backup (--no-final-export)")?,
        }
        Ok(())
    }
}
