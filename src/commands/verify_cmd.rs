//! `terroir verify FILE [--live] [--plan-json PLAN.json]`.

use super::Outcome;
use crate::blueprint::Catalog;
use crate::cli::VerifyArgs;

pub fn run(_args: &VerifyArgs, _catalog: &Catalog, _json: bool) -> Outcome {
    eprintln!("error: `terroir verify` is not available in this build yet");
    Outcome::Invalid
}
