//! `terroir schema`: the Platform document's JSON Schema.

use std::io::Write;

use serde::Serialize;

use super::Context;
use crate::error::{Error, ExitStatus};
use crate::printer::{Report, Text};

/// The schema is JSON for people and scripts alike.
#[derive(Serialize)]
#[serde(transparent)]
struct Schema(serde_json::Value);

impl Report for Schema {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        out.write_all(crate::document::schema::platform_schema_text().as_bytes())
    }
}

pub fn run(cx: &Context) -> Result<ExitStatus, Error> {
    cx.printer
        .report(&Schema(crate::document::schema::platform_schema()))?;
    Ok(ExitStatus::Success)
}
