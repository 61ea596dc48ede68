//! `terroir status FILE`: whether what runs is what the document renders, and ready. Changes
//! nothing and takes no lock; exit 2 when something is pending.

use std::io::Write;

use serde::Serialize;

use super::Context;
use crate::cli::ApplyArgs;
use crate::deploy::{self, Mode, Request, Status};
use crate::error::{Error, ExitStatus};
use crate::pipeline::render::Renderer;
use crate::printer::{Report, Text};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Looked {
    platform: String,
    target: &'static str,
    #[serde(flatten)]
    status: Status,
}

impl Report for Looked {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        for p in &self.status.pending {
            writeln!(out, "  pending: {p}")?;
        }
        if self.status.ready {
            writeln!(
                out,
                "{} ({}): as rendered, and ready",
                self.platform, self.target
            )
        } else {
            let n = self.status.pending.len();
            writeln!(
                out,
                "{} ({}): {n} thing{} differ from the render or are not ready; `terroir plan` shows the changes",
                self.platform,
                self.target,
                crate::text::plural(n)
            )
        }
    }
}

pub fn run(args: &ApplyArgs, cx: &Context) -> Result<ExitStatus, Error> {
    let loaded = crate::pipeline::load(&args.file, &cx.catalog)?;
    let renderer = Renderer::new(cx.catalog.load(&loaded.platform.spec.blueprint.name)?)?;
    let settings = super::deploy::settings(args);
    let events = cx.printer.deploy_events(Mode::Plan);
    let platform = loaded.platform.metadata.name.clone();
    let target = loaded.platform.spec.target.kind();
    let request = Request {
        loaded,
        document: Some(&args.file),
        renderer: &renderer,
        mode: Mode::Plan,
        settings: &settings,
        events: &events,
        command: "status",
    };
    let status = crate::runtime()?.block_on(deploy::status(request))?;
    let ready = status.ready;
    cx.printer.report(&Looked {
        platform,
        target,
        status,
    })?;
    Ok(ExitStatus::checked(ready))
}
