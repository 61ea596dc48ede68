//! `terroir blueprints`: the blueprints available and their parameters.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use super::Context;
use crate::error::{Error, ExitStatus};
use crate::printer::{Report, Text};

#[derive(Debug, Serialize)]
struct Parameter {
    #[serde(rename = "type")]
    kind: String,
    default: serde_json::Value,
    #[serde(rename = "enum")]
    allowed: Vec<serde_json::Value>,
    description: String,
}

#[derive(Debug, Serialize)]
struct Listed {
    name: String,
    version: String,
    origin: String,
    description: String,
    parameters: BTreeMap<String, Parameter>,
}

#[derive(Debug, Serialize)]
#[serde(transparent)]
struct Blueprints(Vec<Listed>);

impl Report for Blueprints {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        for bp in &self.0 {
            writeln!(
                out,
                "{} {} ({})\n  {}",
                bp.name, bp.version, bp.origin, bp.description
            )?;
            writeln!(out, "  parameters:")?;
            for (k, p) in &bp.parameters {
                writeln!(
                    out,
                    "    {k:<20} {:<8} default {}  {}",
                    p.kind, p.default, p.description
                )?;
            }
        }
        Ok(())
    }
}

pub fn run(cx: &Context) -> Result<ExitStatus, Error> {
    let mut list = Vec::new();
    for name in cx.catalog.names() {
        let bp = cx.catalog.load(&name)?;
        let parameters = bp
            .parameters
            .iter()
            .map(|(k, p)| {
                let param = Parameter {
                    kind: format!("{:?}", p.kind).to_lowercase(),
                    default: p.default.clone(),
                    allowed: p.allowed.clone(),
                    description: p.description.clone(),
                };
                (k.clone(), param)
            })
            .collect();
        list.push(Listed {
            name: bp.name,
            version: bp.version,
            origin: bp.origin,
            description: bp.description,
            parameters,
        });
    }
    cx.printer.report(&Blueprints(list))?;
    Ok(ExitStatus::Success)
}
