//! `terroir destroy FILE [--delete-data] [--purge-packages] [--no-final-export] [--yes]`: the
//! plan, then with --yes the destruction through `deploy::destroy`, and the signed erasure record.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use super::Context;
use crate::cli::DestroyArgs;
use crate::deploy::Destroyed;
use crate::error::{Error, ExitStatus};
use crate::lifecycle::destroy::{Action, Erasure, Item, Options};
use crate::pipeline::render::Renderer;
use crate::printer::{Report, Text};

pub fn run(args: &DestroyArgs, cx: &Context) -> Result<ExitStatus, Error> {
    // the key first: a destruction that cannot be recorded does not start
    let key = match (&args.key, args.yes) {
        (Some(path), _) => Some(crate::attest::keys::read_private(path)?),
        (None, true) => {
            return Err(Error::usage(
                "--yes needs --key KEY: the erasure record is signed (make a key with `terroir keygen --out attest.key`)",
            ));
        }
        (None, false) => None,
    };
    let loaded = crate::pipeline::load(&args.target.file, &cx.catalog)?;
    let renderer = Renderer::new(cx.catalog.load(&loaded.platform.spec.blueprint.name)?)?;
    let settings = super::deploy::settings(&args.target);
    let mode = if args.yes {
        crate::deploy::Mode::Apply
    } else {
        crate::deploy::Mode::Plan
    };
    let events = cx.printer.deploy_events(mode);
    let request = crate::deploy::Request {
        loaded,
        document: Some(&args.target.file),
        renderer: &renderer,
        mode,
        settings: &settings,
        events: &events,
        command: "destroy",
    };
    let options = Options {
        delete_data: args.delete_data,
        purge_packages: args.purge_packages,
        no_final_export: args.no_final_export,
    };
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    let destroyed =
        crate::runtime()?.block_on(crate::deploy::destroy(request, options, args.yes, now))?;
    let mut record = None;
    if let (Some(done), Some(key)) = (&destroyed.done, &key) {
        let erasure = Erasure::new(
            &destroyed.plan,
            done.clone(),
            destroyed.follows.clone(),
            destroyed.started.clone(),
            destroyed.finished.clone(),
        );
        write_record(&args.record, &erasure, key)?;
        record = Some(args.record.display().to_string());
    }
    let ok = destroyed.ok();
    cx.printer.report(&Shown {
        destroyed,
        record,
        document: args.target.file.display().to_string(),
    })?;
    Ok(ExitStatus::checked(ok))
}

fn write_record(
    path: &Path,
    erasure: &Erasure,
    key: &ed25519_dalek::SigningKey,
) -> Result<(), Error> {
    let werr = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    let envelope =
        crate::attest::erasure::sign(erasure, key).map_err(|e| werr(std::io::Error::other(e)))?;
    let mut bytes =
        serde_json::to_vec_pretty(&envelope).map_err(|e| werr(std::io::Error::other(e)))?;
    bytes.push(b'\n');
    std::fs::write(path, bytes).map_err(werr)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Shown {
    #[serde(flatten)]
    destroyed: Destroyed,
    /// The erasure record written, when the plan was carried out.
    record: Option<String>,
    #[serde(skip)]
    document: String,
}

fn line(item: &Item) -> String {
    let kind = serde_json::to_value(item.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    match &item.action {
        Action::Stop => format!("stop and disable {kind} {}", item.what),
        Action::Remove => format!("remove {kind} {}", item.what),
        Action::Keep { why } => format!("keep {kind} {}: {why}", item.what),
    }
}

impl Report for Shown {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        let d = &self.destroyed;
        let plan = &d.plan;
        if plan.nothing_left() {
            writeln!(
                out,
                "nothing of {} is left to destroy: nothing to do",
                plan.platform
            )?;
            for item in plan.kept() {
                writeln!(out, "  [{}] {}", item.place, line(item))?;
            }
            return Ok(());
        }
        match &d.done {
            None => {
                writeln!(out, "destroying {} would:", plan.platform)?;
                for item in &plan.items {
                    writeln!(out, "  [{}] {}", item.place, line(item))?;
                }
                match &d.follows {
                    Some(c) => writeln!(
                        out,
                        "it follows the {} {}, finished {}",
                        c.kind,
                        c.location,
                        crate::text::rfc3339(c.finished)
                    )?,
                    None if plan.options.no_final_export => {
                        writeln!(out, "it follows no export or backup (--no-final-export)")?
                    }
                    None => writeln!(
                        out,
                        "it would be refused: no export or backup younger than 24 hours exists (take one, or pass --no-final-export)"
                    )?,
                }
                writeln!(
                    out,
                    "nothing was changed; `terroir destroy {} --key KEY --yes` (with the same flags) carries it out",
                    self.document
                )?;
            }
            Some(done) => {
                for item in done {
                    match &item.failed {
                        None => writeln!(out, "[{}] done: {}", item.item.place, line(&item.item))?,
                        Some(why) => writeln!(
                            out,
                            "[{}] FAILED: {}: {why}",
                            item.item.place,
                            line(&item.item)
                        )?,
                    }
                }
                for item in plan.kept() {
                    writeln!(out, "[{}] {}", item.place, line(item))?;
                }
                let failed = done.iter().filter(|d| d.failed.is_some()).count();
                if failed == 0 {
                    writeln!(out, "{} destroyed", plan.platform)?;
                } else {
                    writeln!(
                        out,
                        "{}: {failed} item{} could not be removed (above); running destroy again retries them",
                        plan.platform,
                        crate::text::plural(failed)
                    )?;
                }
                if let Some(record) = &self.record {
                    writeln!(
                        out,
                        "erasure record: {record} (check it with `terroir attest verify {record} --pubkey KEY.pub`)"
                    )?;
                }
            }
        }
        Ok(())
    }
}
