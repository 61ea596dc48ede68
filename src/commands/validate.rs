//! `terroir validate FILE...`: check documents, every problem at once.

use std::io::Write;

use serde::Serialize;

use super::Context;
use crate::cli::ValidateArgs;
use crate::document::Diagnostic;
use crate::error::{Error, ExitStatus};
use crate::printer::{Report, Text};

/// One document's verdict.
#[derive(Debug, Serialize)]
struct Checked {
    file: String,
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<&'static str>,
    errors: Vec<Diagnostic>,
}

#[derive(Debug, Serialize)]
#[serde(transparent)]
struct Validated(Vec<Checked>);

impl Report for Validated {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        for c in &self.0 {
            match (&c.name, c.target) {
                (Some(name), Some(target)) if c.valid => {
                    writeln!(out, "{}: valid (platform {name}, target {target})", c.file)?
                }
                _ => writeln!(
                    out,
                    "{}: invalid, {} error{}",
                    c.file,
                    c.errors.len(),
                    crate::text::plural(c.errors.len())
                )?,
            }
        }
        Ok(())
    }
}

pub fn run(args: &ValidateArgs, cx: &Context) -> Result<ExitStatus, Error> {
    let mut checked = Vec::new();
    for path in &args.files {
        checked.push(match crate::pipeline::load(path, &cx.catalog) {
            Ok(loaded) => Checked {
                file: loaded.file.clone(),
                valid: true,
                name: Some(loaded.platform.metadata.name.clone()),
                target: Some(loaded.platform.spec.target.kind()),
                errors: Vec::new(),
            },
            Err(invalid) => {
                // for people, each problem with its line; scripts find them in the report
                cx.printer
                    .diagnostics(&invalid.diagnostics, invalid.text.as_deref());
                Checked {
                    file: path.display().to_string(),
                    valid: false,
                    name: None,
                    target: None,
                    errors: invalid.diagnostics,
                }
            }
        });
    }
    let all_valid = checked.iter().all(|c| c.valid);
    cx.printer.report(&Validated(checked))?;
    Ok(if all_valid {
        ExitStatus::Success
    } else {
        ExitStatus::Invalid
    })
}
