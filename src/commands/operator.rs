//! `terroir operator`: run the Kubernetes operator until stopped.

use super::Context;
use crate::cli::OperatorArgs;
use crate::error::{Error, ExitStatus};

pub fn run(args: OperatorArgs, cx: &Context) -> Result<ExitStatus, Error> {
    crate::operator::run(args, cx.catalog.clone())?;
    Ok(ExitStatus::Success)
}
