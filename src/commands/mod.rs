//! What each command does, one file per command: its settings from the command line, one call
//! into the domain, and a report for the printer. No command writes to the terminal itself.

use crate::cli::{Cli, Command};
use crate::error::{Error, ExitStatus};
use crate::pipeline::blueprint::Catalog;
use crate::printer::Printer;

mod attest;
mod audit;
mod backup;
mod blueprints;
mod completions;
mod continuity;
mod crd;
pub(crate) mod deploy;
mod destroy;
mod drill;
mod export;
mod geodata;
mod images;
mod keygen;
mod locate;
mod operator;
mod render;
mod restore;
mod rollback;
mod schema;
mod secrets;
mod smoke_app;
mod status;
mod switchover;
mod validate;
mod verify;

/// What every command is given.
pub struct Context<'a> {
    pub printer: &'a Printer,
    pub catalog: Catalog,
}

/// The platform's lock beside `file`, for a command that changes it: released when dropped.
fn lock(
    file: &std::path::Path,
    platform: &str,
    command: &str,
    force: bool,
    cx: &Context,
) -> Result<Option<crate::deploy::lock::Platform>, Error> {
    let events = cx.printer.deploy_events(crate::deploy::Mode::Apply);
    let holder = crate::deploy::lock::Holder::current(command);
    crate::deploy::lock::Platform::take(
        Some(file),
        platform,
        crate::deploy::Mode::Apply,
        force,
        &holder,
        &events,
    )
    .map_err(|e| Error::from(crate::deploy::DeployError::from(e)))
}

/// Run the command the line asks for. The caller prints the error, if any, once.
pub fn run(cli: Cli, printer: &Printer) -> Result<ExitStatus, Error> {
    let cx = Context {
        printer,
        catalog: Catalog::new(cli.global.blueprints.clone()),
    };
    match cli.command {
        Command::Validate(args) => validate::run(&args, &cx),
        Command::Render(args) => render::run(&args, &cx),
        Command::Plan(args) => deploy::run(&args, crate::deploy::Mode::Plan, &cx),
        Command::Apply(args) => deploy::run(&args, crate::deploy::Mode::Apply, &cx),
        Command::Status(args) => status::run(&args, &cx),
        Command::Switchover(args) => switchover::run(&args, &cx),
        Command::Rollback(args) => rollback::run(&args, &cx),
        Command::Destroy(args) => destroy::run(&args, &cx),
        Command::Continuity(args) => continuity::run(&args, &cx),
        Command::Schema => schema::run(&cx),
        Command::Crd => crd::run(&cx),
        Command::Operator(args) => operator::run(args, &cx),
        Command::Locate(args) => locate::run(&args, &cx),
        Command::Verify(args) => verify::run(&args, &cx),
        Command::Geodata(cmd) => geodata::run(cmd, &cx),
        Command::Backup(cmd) => backup::run(cmd, &cx),
        Command::Secrets(cmd) => secrets::run(cmd, &cx),
        Command::Audit(args) => audit::run(&args, &cx),
        Command::Export(args) => export::run(&args, &cx),
        Command::Restore(args) => restore::run(&args, &cx),
        Command::Drill(args) => drill::run(&args, &cx),
        Command::Keygen { out } => keygen::run(&out, &cx),
        Command::Attest(args) => attest::run(&args, &cx),
        Command::Images(cmd) => images::run(cmd, &cx),
        Command::Blueprints => blueprints::run(&cx),
        Command::SmokeApp => smoke_app::run(),
        Command::Completions { shell } => completions::completions(shell, &cx),
        Command::Man { out } => completions::man(out.as_deref(), &cx),
    }
}
