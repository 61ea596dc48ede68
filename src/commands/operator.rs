//! `terroir operator`: run the Kubernetes operator until stopped.

use super::Context;
use crate::cli::OperatorArgs;
use crate::error::{Error, ExitStatus};

pub fn run(args: OperatorArgs, cx: &Context) -> Result<ExitStatus, Error> {
    let settings = crate::operator::Settings {
        namespace: args.namespace,
        manage_namespaces: args.manage_namespaces,
        metrics_addr: args.metrics_addr,
        no_leader_election: args.no_leader_election,
        lease_name: args.lease_name,
        lease_namespace: args.lease_namespace,
        identity: args.identity,
        requeue_seconds: args.requeue_seconds,
        concurrency: args.concurrency,
        kubeconfig: args.kubeconfig,
        context: args.context,
    };
    crate::runtime()?.block_on(crate::operator::run(settings, cx.catalog.clone()))?;
    Ok(ExitStatus::Success)
}
