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
mod crd;
pub(crate) mod deploy;
mod drill;
mod export;
mod geodata;
mod keygen;
mod kubernetes;
mod locate;
mod operator;
mod render;
mod restore;
mod schema;
mod secnumcloud;
mod secrets;
mod smoke_app;
mod validate;
mod verify;

/// What every command is given.
pub struct Context<'a> {
    pub printer: &'a Printer,
    pub catalog: Catalog,
    /// For the commands not yet moved to the printer only; goes with the last of them.
    legacy_json: bool,
}

/// Run the command the line asks for. The caller prints the error, if any, once.
pub fn run(cli: Cli, printer: &Printer) -> Result<ExitStatus, Error> {
    let json = cli.global.output == crate::cli::OutputFormat::Json;
    let cx = Context { printer, catalog: Catalog::new(cli.global.blueprints.clone()), legacy_json: json };
    match cli.command {
        Command::Validate(args) => validate::run(&args, &cx),
        Command::Render(args) => render::run(&args, &cx),
        Command::Plan(args) => deploy::run(&args, crate::deploy::Mode::Plan, &cx),
        Command::Apply(args) => deploy::run(&args, crate::deploy::Mode::Apply, &cx),
        Command::Schema => schema::run(&cx),
        Command::Crd => crd::run(&cx),
        Command::Operator(args) => operator::run(args, &cx),
        Command::Locate(args) => Ok(locate::run(&args, json).into()),
        Command::Verify(args) => Ok(verify::run(&args, &cx.catalog, json).into()),
        Command::Geodata(cmd) => Ok(geodata::run(cmd, json).into()),
        Command::Backup(cmd) => backup::run(cmd, &cx),
        Command::Secrets(cmd) => secrets::run(cmd, &cx),
        Command::Audit(args) => audit::run(&args, &cx),
        Command::Export(args) => export::run(&args, &cx),
        Command::Restore(args) => restore::run(&args, &cx),
        Command::Drill(args) => drill::run(&args, &cx),
        Command::Keygen { out } => keygen::run(&out, &cx),
        Command::Attest(args) => Ok(attest::run(&args, &cx.catalog, json).into()),
        Command::Blueprints => blueprints::run(&cx),
        Command::SmokeApp => smoke_app::run(),
    }
}

// ---- What the commands not yet moved to the printer still use; goes with the last of them. ----

/// How a command ended, mapped to the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Invalid input or usage (exit 1).
    Invalid,
    /// A check failed (exit 2).
    CheckFailed,
}

impl From<Outcome> for ExitStatus {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Success => ExitStatus::Success,
            Outcome::Invalid => ExitStatus::Invalid,
            Outcome::CheckFailed => ExitStatus::Failed,
        }
    }
}

/// Print diagnostics for people: the line itself with a caret under the column.
pub(crate) fn print_diagnostics(diags: &[crate::document::Diagnostic], source: Option<&str>) {
    Printer::new(crate::printer::Format::Text).diagnostics(diags, source);
}

/// Whether the document at `file` names a Kubernetes cluster as its target (`target.kubernetes`),
/// which sends the `secrets` and `backup` commands to the cluster. An unreadable document goes the
/// host way, whose loader reports it.
fn targets_a_cluster(file: &std::path::Path) -> bool {
    crate::document::load_file(file).is_ok_and(|l| matches!(l.platform.spec.target, crate::document::Target::Kubernetes(_)))
}

pub(crate) fn load_checked(path: &std::path::Path, catalog: &Catalog) -> Result<crate::document::Loaded, (Vec<crate::document::Diagnostic>, Option<String>)> {
    crate::pipeline::load(path, catalog).map_err(|e| (e.diagnostics, e.text))
}
