//! `terroir locate ADDRESS|HOSTNAME...`.

use super::Outcome;
use crate::cli::LocateArgs;

pub fn run(_args: &LocateArgs, _json: bool) -> Outcome {
    eprintln!("error: `terroir locate` is not available in this build yet");
    Outcome::Invalid
}
