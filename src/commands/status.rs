//! `terroir status FILE`: whether what runs is what the document renders, and ready. Changes
//! nothing and takes no lock; exit 2 when something is pending.

use std::io::Write;

use serde::Serialize;

use super::Context;
use crate::cli::ApplyArgs;
use crate::deploy::baremetal::health::{self, ComponentHealth};
use crate::deploy::baremetal::site::Site;
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
    /// Bare metal: each host's components, as they say they are.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    components: Vec<ComponentHealth>,
}

impl Report for Looked {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        if !self.components.is_empty() {
            writeln!(
                out,
                "{:<12} {:<13} {:<13} {:<8} DETAIL",
                "HOST", "COMPONENT", "ROLE", "HEALTH"
            )?;
            for c in &self.components {
                writeln!(
                    out,
                    "{:<12} {:<13} {:<13} {:<8} {}",
                    c.host,
                    c.component,
                    if c.role.is_empty() { "-" } else { &c.role },
                    if c.healthy { "ok" } else { "FAILING" },
                    c.detail
                )?;
            }
        }
        for p in &self.status.pending {
            writeln!(out, "  pending: {p}")?;
        }
        let failing = self.components.iter().filter(|c| !c.healthy).count();
        if failing > 0 {
            writeln!(
                out,
                "{} ({}): {failing} component{} failing",
                self.platform,
                self.target,
                crate::text::plural(failing)
            )?;
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
    let components = if target == "baremetal" {
        health::components(&Site::open(&args.file, &cx.catalog)?)
    } else {
        Vec::new()
    };
    let ready = status.ready && components.iter().all(|c| c.healthy);
    cx.printer.report(&Looked {
        platform,
        target,
        status,
        components,
    })?;
    Ok(ExitStatus::checked(ready))
}
