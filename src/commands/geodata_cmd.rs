//! `terroir geodata update|import|status`.

use super::Outcome;
use crate::cli::GeodataCommand;

pub fn run(_cmd: GeodataCommand, _json: bool) -> Outcome {
    eprintln!("error: `terroir geodata` is not available in this build yet");
    Outcome::Invalid
}
