//! `terroir plan FILE` and `terroir apply FILE`: the document through `deploy::run` (render, gate,
//! lock, the target's driver), then its report.

use std::time::Duration;

use super::Context;
use crate::cli::ApplyArgs;
use crate::deploy::kubernetes::driver::Rollouts;
use crate::deploy::{self, Mode, Request, Settings};
use crate::error::{Error, ExitStatus};
use crate::pipeline::render::Renderer;

/// The command line's flags for every kind of target.
pub(super) fn settings(args: &ApplyArgs) -> Settings<'static> {
    let mut s = Settings::default();
    s.hosts.concurrency = usize::from(args.concurrency);
    s.hosts.fail_fast = args.fail_fast;
    s.hosts.accept_new_host_keys = args.accept_new_host_keys;
    s.hosts.connect_timeout = Duration::from_secs(args.connect_timeout);
    s.hosts.command_timeout = Duration::from_secs(args.timeout);
    s.cluster.kubeconfig = args.kubeconfig.clone();
    s.cluster.context = args.context.clone();
    s.cluster.force_conflicts = args.force_conflicts;
    s.cluster.prune = !args.no_prune;
    s.cluster.rollouts = if args.no_wait {
        Rollouts::Skip
    } else {
        Rollouts::Wait(Duration::from_secs(args.timeout))
    };
    s.cloud.tf_binary = args.tf_binary.clone();
    s.cloud.modules = args.modules.clone();
    s.cloud.backend_config = args.backend_config.clone();
    s.force_unlock = args.force_unlock;
    s
}

/// Plan or apply the document `args` names. `secrets rotate` delivers a new value through it.
pub fn run(args: &ApplyArgs, mode: Mode, cx: &Context) -> Result<ExitStatus, Error> {
    let loaded = crate::pipeline::load(&args.file, &cx.catalog)?;
    let renderer = Renderer::new(cx.catalog.load(&loaded.platform.spec.blueprint.name)?)?;
    let settings = settings(args);
    let events = cx.printer.deploy_events(mode);
    let command = match mode {
        Mode::Plan => "plan",
        Mode::Apply => "apply",
    };
    let request = Request {
        loaded,
        document: Some(&args.file),
        renderer: &renderer,
        mode,
        settings: &settings,
        events: &events,
        command,
    };
    let deployed = crate::runtime()?.block_on(deploy::run(request))?;
    cx.printer.report(&deployed)?;
    if let deploy::Outcome::Cluster(r) = &deployed.outcome
        && !r.ok()
    {
        cx.printer.problem(format!(
            "{} Secret(s) you give are missing: the objects were applied, the pods reading them cannot start; create them, then run `terroir apply {}` again",
            r.secrets.missing().len(),
            args.file.display()
        ));
    }
    Ok(ExitStatus::checked(deployed.ok()))
}
