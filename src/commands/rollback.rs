//! `terroir rollback FILE [--to RELEASE] [--with-data] [--yes]`: back to an earlier release of
//! the application, through `deploy::rollback` (render, lock, the target's driver).

use std::io::Write;

use super::Context;
use crate::cli::RollbackArgs;
use crate::error::{Error, ExitStatus};
use crate::lifecycle::release::short;
use crate::lifecycle::rollback::{Report, Request};
use crate::pipeline::render::Renderer;
use crate::printer::{Report as Printed, Text};

pub fn run(args: &RollbackArgs, cx: &Context) -> Result<ExitStatus, Error> {
    let loaded = crate::pipeline::load(&args.target.file, &cx.catalog)?;
    let renderer = Renderer::new(cx.catalog.load(&loaded.platform.spec.blueprint.name)?)?;
    let settings = super::deploy::settings(&args.target);
    let events = cx.printer.deploy_events(crate::deploy::Mode::Apply);
    let request = crate::deploy::Request {
        loaded,
        document: Some(&args.target.file),
        renderer: &renderer,
        mode: crate::deploy::Mode::Apply,
        settings: &settings,
        events: &events,
        command: "rollback",
    };
    let asked = Request {
        to: args.to.clone(),
        with_data: args.with_data,
        yes: args.yes,
    };
    let report = crate::runtime()?.block_on(crate::deploy::rollback(request, &asked))?;
    cx.printer.report(&report)?;
    Ok(ExitStatus::checked(report.ok()))
}

impl Printed for Report {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        if let Some(loss) = &self.loss {
            writeln!(out, "rolling the data back loses:")?;
            for line in loss.statement() {
                writeln!(out, "  {line}")?;
            }
        }
        if !self.changed {
            writeln!(
                out,
                "{}: nothing was changed (release {} runs); --yes restores the database and goes back to release {}",
                self.platform,
                short(&self.from),
                short(&self.to)
            )?;
        }
        for step in &self.steps {
            let mark = if step.ok { "ok" } else { "FAILED" };
            writeln!(out, "[{}] {mark}: {}", step.place, step.detail)?;
        }
        if self.changed {
            let verdict = if self.ok() {
                "rolled back"
            } else {
                "the rollback stopped"
            };
            let data = if self.with_data {
                ", with its data"
            } else {
                ""
            };
            writeln!(
                out,
                "{}: {verdict} from release {} to {}{data}",
                self.platform,
                short(&self.from),
                short(&self.to)
            )?;
        }
        for next in &self.next_steps {
            writeln!(out, "next: {next}")?;
        }
        Ok(())
    }
}
