//! `terroir switchover FILE [--to HOST]`: a planned move of the database's primary, through
//! Patroni, under the platform's lock.

use std::io::Write;

use serde::Serialize;

use super::Context;
use crate::cli::SwitchoverArgs;
use crate::deploy::baremetal::health::{self, Member};
use crate::deploy::baremetal::site::Site;
use crate::error::{Error, ExitStatus};
use crate::printer::{Report, Text};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Switched {
    platform: String,
    from: String,
    to: String,
    /// From the request to the new primary running, as Patroni reports it.
    seconds: f64,
    members: Vec<Member>,
}

impl Report for Switched {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        writeln!(
            out,
            "{}: the primary moved from {} to {} in {:.1} s",
            self.platform, self.from, self.to, self.seconds
        )?;
        for m in &self.members {
            let lag = m
                .lag
                .map(|l| format!(", {l} bytes behind"))
                .unwrap_or_default();
            writeln!(
                out,
                "  {:<12} {:<13} {}{lag}",
                m.name,
                m.role.replace('_', " "),
                m.state
            )?;
        }
        Ok(())
    }
}

pub fn run(args: &SwitchoverArgs, cx: &Context) -> Result<ExitStatus, Error> {
    let site = Site::open(&args.file, &cx.catalog)?
        .changing(crate::deploy::lock::Holder::current("switchover"));
    let _lock = super::lock(&args.file, site.name(), "switchover", args.force_unlock, cx)?;
    let done = health::switchover(&site, args.to.as_deref())?;
    cx.printer.report(&Switched {
        platform: site.name().to_owned(),
        from: done.from,
        to: done.to,
        seconds: done.seconds,
        members: done.members,
    })?;
    Ok(ExitStatus::Success)
}
