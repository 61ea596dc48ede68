//! `terroir destroy` and `terroir rollback` on a `kubernetes` target.

use crate::deploy::{DeployError, Lifecycle, Work};
use crate::lifecycle::{destroy, rollback};

fn not_yet(what: &'static str) -> DeployError {
    DeployError::Unsupported {
        what,
        target: "kubernetes",
        why: "not built yet".into(),
    }
}

impl Lifecycle for super::driver::Cluster {
    async fn inventory(
        &self,
        _work: &Work<'_>,
        _options: &destroy::Options,
    ) -> Result<destroy::Plan, DeployError> {
        Err(not_yet("destroy"))
    }

    async fn destroy(
        &self,
        _work: &Work<'_>,
        _plan: &destroy::Plan,
    ) -> Result<Vec<destroy::Done>, DeployError> {
        Err(not_yet("destroy"))
    }

    async fn rollback(
        &self,
        _work: &Work<'_>,
        _request: &rollback::Request,
    ) -> Result<rollback::Report, DeployError> {
        Err(not_yet("rollback"))
    }
}
