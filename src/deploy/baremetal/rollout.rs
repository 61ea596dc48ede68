//! A service carried by several hosts (the application) is switched one host at a time: an
//! apply converges every host in parallel without what restarts that service, then, host after
//! host, applies those steps, restarts the service and checks its health from the host before
//! going on. A failed step or health check stops the rollout there: the hosts after it keep the
//! release and configuration they ran.
//!
//! What is pure here (the split of a host's steps, the order of the turns, reading the health
//! check's answer) is tested without hosts; `turn` is the one effect.

use std::collections::{BTreeMap, BTreeSet};

use super::release::{HEALTH_DEADLINE, healthy};
use super::report::{HostReport, Progress, StepStatus};
use super::ssh::Connection;
use super::{Options, session};
use crate::pipeline::render::plan::{HostPlan, Plan, Step};

/// `host`'s steps as the two phases of an apply: what converges in parallel with the other
/// hosts, and what is applied in the host's turn of the rollout (None without a rollout).
///
/// The turn holds every step that restarts the rolled service (its files, secrets, release)
/// and that service's own step, with the commands run after it. A step restarting other
/// services as well (the CA certificate) goes with the turn, and those services' steps are
/// repeated there so that their restart still follows it; the first phase keeps them too, for
/// its own changes.
pub fn split(host: &HostPlan) -> (HostPlan, Option<HostPlan>) {
    let Some(rollout) = &host.rollout else {
        return (host.clone(), None);
    };
    let service = rollout.service.as_str();
    let restarts_it = |restarts: &[String]| restarts.iter().any(|s| s == service);
    let in_turn = |step: &Step| match step {
        Step::File { file, .. } => restarts_it(&file.restarts),
        Step::Secret { secret, .. } => restarts_it(&secret.restarts),
        Step::Artifact { artifact, .. } => restarts_it(&artifact.restarts),
        Step::Service { service: s, .. } => s.name == service,
        Step::Command { command, .. } => command.after.as_deref() == Some(service),
        _ => false,
    };
    let also_restarted: BTreeSet<&str> = host
        .steps
        .iter()
        .filter(|s| in_turn(s))
        .flat_map(|s| match s {
            Step::File { file, .. } => file.restarts.as_slice(),
            Step::Secret { secret, .. } => secret.restarts.as_slice(),
            Step::Artifact { artifact, .. } => artifact.restarts.as_slice(),
            _ => &[],
        })
        .map(String::as_str)
        .filter(|s| *s != service)
        .collect();
    let repeated = |step: &Step| matches!(step, Step::Service { service: s, .. } if also_restarted.contains(s.name.as_str()));
    let parallel = HostPlan {
        steps: host.steps.iter().filter(|s| !in_turn(s)).cloned().collect(),
        ..host.clone()
    };
    let turn = HostPlan {
        steps: host
            .steps
            .iter()
            .filter(|s| in_turn(s) || repeated(s))
            .cloned()
            .collect(),
        ..host.clone()
    };
    (parallel, Some(turn))
}

/// What one host's turn came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Turned {
    /// Nothing of the service changed: not restarted, not checked.
    Unchanged,
    /// Changed, restarted, and healthy.
    Switched,
}

/// Each host's turn, in order, until one fails: the hosts after it are not touched. Each
/// result is by host name; a host not turned says where the rollout stopped.
pub fn one_at_a_time<T>(
    hosts: Vec<(String, T)>,
    mut turn: impl FnMut(&str, T) -> Result<Turned, String>,
) -> Vec<(String, Result<Turned, String>)> {
    let mut stopped: Option<String> = None;
    let mut out = Vec::new();
    for (name, host) in hosts {
        let result = match &stopped {
            Some(at) => Err(format!(
                "not switched: the rollout stopped at {at}; this host keeps the release and configuration it ran"
            )),
            None => {
                let r = turn(&name, host);
                if r.is_err() {
                    stopped = Some(name.clone());
                }
                r
            }
        };
        out.push((name, result));
    }
    out
}

/// One host's turn over its session: its turn's steps applied, then, if anything changed, the
/// service's health checked until `HEALTH_DEADLINE`. The steps go into `report`.
pub fn turn(
    plan: &Plan,
    host: &HostPlan,
    tree: &BTreeMap<String, Vec<u8>>,
    opts: &Options,
    progress: &dyn Progress,
    conn: &Connection,
    report: &mut HostReport,
) -> Result<Turned, String> {
    let Some(rollout) = &host.rollout else {
        return Ok(Turned::Unchanged);
    };
    // the release running before the turn, to switch back to if the new one fails its check
    let release = host.steps.iter().find_map(|s| match s {
        Step::Artifact { artifact, .. } => Some(artifact),
        _ => None,
    });
    let before = release
        .map(|a| super::release::current_release(conn, &a.dir))
        .unwrap_or_default();
    let mut done = HostReport::new(host);
    let session = session(plan, host, tree, opts, progress, conn, &mut done);
    merge(report, done.clone());
    if let Err(e) = session {
        return Err(format!(
            "the rollout of {} stopped at {}: {}",
            rollout.service,
            host.name,
            crate::text::error_chain(&e)
        ));
    }
    if !done.ok() {
        let failed: Vec<&str> = done
            .steps
            .iter()
            .filter(|s| s.status == StepStatus::Failed)
            .map(|s| s.id.as_str())
            .collect();
        return Err(format!(
            "the rollout of {} stopped at {}: {} failed",
            rollout.service,
            host.name,
            failed.join(", ")
        ));
    }
    if done.changed == 0 {
        return Ok(Turned::Unchanged);
    }
    let check = format!(
        "GET http://127.0.0.1:{}{} on the host",
        rollout.health_port, rollout.health_path
    );
    let took = match healthy(conn, rollout, HEALTH_DEADLINE) {
        Ok(took) => took,
        Err(why) => {
            let failed = format!(
                "the rollout of {} stopped at {}: its health check ({check}) {why}",
                rollout.service, host.name
            );
            let Some(artifact) = release
                .filter(|a| !before.is_empty() && before != format!("releases/{}", a.sha256))
            else {
                return Err(failed);
            };
            let back = super::release::switch_back(conn, artifact, rollout, &before);
            report.push(
                &format!("switch-back:{}", rollout.service),
                if back.is_ok() {
                    StepStatus::Changed
                } else {
                    StepStatus::Failed
                },
                back.clone().unwrap_or_else(|e| e),
            );
            if let Some(step) = report.steps.last() {
                progress.step(&report.name, step);
            }
            let new = crate::lifecycle::release::short(&artifact.sha256);
            return Err(match back {
                Ok(_) => format!(
                    "release {new} failed its health check on {}: {failed}; {} was switched back to release {} and answers its health check",
                    host.name,
                    host.name,
                    crate::lifecycle::release::short(before.trim_start_matches("releases/"))
                ),
                Err(again) => format!(
                    "release {new} failed its health check on {}: {failed}; switching it back failed too: {again}",
                    host.name
                ),
            });
        }
    };
    // the check changed nothing; it is reported as the evidence of the turn
    report.push(
        &format!("health:{}", rollout.service),
        StepStatus::Unchanged,
        format!("healthy after {:.1} s ({check})", took.as_secs_f64()),
    );
    if let Some(step) = report.steps.last() {
        progress.step(&report.name, step);
    }
    Ok(Turned::Switched)
}

/// The turn's steps added to the host's report; a service step the first phase reported
/// already is left out when the turn did not change it.
fn merge(report: &mut HostReport, turn: HostReport) {
    for step in turn.steps {
        let seen = report.steps.iter().any(|s| s.id == step.id);
        if seen && step.status == StepStatus::Unchanged {
            continue;
        }
        report.push(&step.id, step.status, step.detail);
    }
    if report.error.is_none() {
        report.error = turn.error;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::baremetal::diff::tests::{file_step, host, secret_step, service_step};
    use crate::pipeline::render::plan::ArtifactStep;
    use crate::pipeline::render::plan::Rollout;

    fn rollout() -> Rollout {
        Rollout {
            service: "app".into(),
            health_port: 8080,
            health_path: "/healthz".into(),
        }
    }

    fn ids(h: &HostPlan) -> Vec<&str> {
        h.steps
            .iter()
            .map(|s| match s {
                Step::File { id, .. }
                | Step::Secret { id, .. }
                | Step::Artifact { id, .. }
                | Step::Service { id, .. }
                | Step::Command { id, .. }
                | Step::Packages { id, .. }
                | Step::User { id, .. }
                | Step::Directory { id, .. }
                | Step::Firewall { id, .. } => id.as_str(),
            })
            .collect()
    }

    fn app_host() -> HostPlan {
        let mut h = host(vec![
            file_step("/etc/nginx/site.conf", &["nginx"], b"x"),
            file_step("/etc/app/app.env", &["app"], b"x"),
            // the CA certificate: read by the application and by Prometheus
            file_step("/etc/p/tls/ca.crt", &["app", "prometheus"], b"x"),
            secret_step("database-password", false),
            Step::Artifact {
                id: "artifact:/opt/app".into(),
                artifact: ArtifactStep {
                    url: "file:///r.tar.gz".into(),
                    sha256: "a".repeat(64),
                    dir: "/opt/app".into(),
                    restarts: vec!["app".into()],
                    keep: 3,
                },
            },
            service_step("prometheus"),
            service_step("app"),
            service_step("nginx"),
        ]);
        h.rollout = Some(rollout());
        h
    }

    #[test]
    fn without_a_rollout_the_host_converges_whole_in_parallel() {
        let mut h = app_host();
        h.rollout = None;
        let (parallel, turn) = split(&h);
        assert_eq!(ids(&parallel), ids(&h));
        assert!(turn.is_none());
    }

    #[test]
    fn what_restarts_the_rolled_service_waits_for_the_host_s_turn() {
        let (parallel, turn) = split(&app_host());
        assert_eq!(
            ids(&parallel),
            [
                "file:/etc/nginx/site.conf",
                "service:prometheus",
                "service:nginx"
            ]
        );
        // in the plan's order; Prometheus's step repeated after the CA certificate restarting it
        assert_eq!(
            ids(&turn.unwrap()),
            [
                "file:/etc/app/app.env",
                "file:/etc/p/tls/ca.crt",
                "secret:/etc/app/database-password",
                "artifact:/opt/app",
                "service:prometheus",
                "service:app"
            ]
        );
    }

    #[test]
    fn hosts_turn_in_order_and_a_failure_leaves_the_rest_untouched() {
        let hosts = || {
            vec![
                ("app1".to_owned(), 1),
                ("app2".to_owned(), 2),
                ("app3".to_owned(), 3),
            ]
        };
        let mut turned = Vec::new();
        let all = one_at_a_time(hosts(), |name, _| {
            turned.push(name.to_owned());
            Ok(Turned::Switched)
        });
        assert_eq!(turned, ["app1", "app2", "app3"]);
        assert!(all.iter().all(|(_, r)| *r == Ok(Turned::Switched)));

        let mut turned = Vec::new();
        let stopped = one_at_a_time(hosts(), |name, n| {
            turned.push(name.to_owned());
            if n == 2 {
                Err(format!("{name} is unhealthy"))
            } else {
                Ok(Turned::Switched)
            }
        });
        assert_eq!(turned, ["app1", "app2"], "app3 is never touched");
        assert_eq!(stopped[0].1, Ok(Turned::Switched));
        assert_eq!(stopped[1].1, Err("app2 is unhealthy".to_owned()));
        let left = stopped[2].1.as_ref().unwrap_err();
        assert!(
            left.contains("stopped at app2") && left.contains("keeps the release"),
            "{left}"
        );
    }
}
