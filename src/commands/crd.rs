//! `terroir crd`: the Platform CustomResourceDefinition, YAML for people, JSON for scripts.

use std::io::Write;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::Serialize;

use super::Context;
use crate::error::{Error, ExitStatus};
use crate::printer::{Report, Text};

#[derive(Serialize)]
#[serde(transparent)]
struct Crd(CustomResourceDefinition);

impl Report for Crd {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        out.write_all(crate::document::crd::crd_yaml(&self.0).as_bytes())
    }
}

pub fn run(cx: &Context) -> Result<ExitStatus, Error> {
    cx.printer.report(&Crd(crate::document::crd::crd()))?;
    Ok(ExitStatus::Success)
}
