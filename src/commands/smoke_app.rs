//! `terroir smoke-app`: the smoke application, serving until stopped.

use crate::error::{Error, ExitStatus};

pub fn run() -> Result<ExitStatus, Error> {
    crate::smoke::run()?;
    Ok(ExitStatus::Success)
}
