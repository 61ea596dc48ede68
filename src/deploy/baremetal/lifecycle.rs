//! `terroir destroy` and `terroir rollback` on a `baremetal` target.

use crate::deploy::{DeployError, Work};
use crate::lifecycle::{destroy, rollback};

fn not_yet(what: &'static str) -> DeployError {
    DeployError::Unsupported {
        what,
        target: "baremetal",
        why: "not built yet".into(),
    }
}

pub async fn inventory(
    _work: &Work<'_>,
    _options: &destroy::Options,
) -> Result<destroy::Plan, DeployError> {
    Err(not_yet("destroy"))
}

pub async fn destroy(
    _work: &Work<'_>,
    _plan: &destroy::Plan,
) -> Result<Vec<destroy::Done>, DeployError> {
    Err(not_yet("destroy"))
}

pub async fn rollback(
    _work: &Work<'_>,
    _request: &rollback::Request,
) -> Result<rollback::Report, DeployError> {
    Err(not_yet("rollback"))
}
