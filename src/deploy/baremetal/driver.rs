//! The bare-metal driver: the rendered plan checked against the tree, the platform's certificates
//! made or renewed, every host converged over SSH, then the public name's certificate obtained
//! from the ACME CA and delivered.

use std::time::Duration;

use serde::Serialize;

use super::{HostReport, Options, Progress, StepReport};
use crate::deploy::{DeployError, Driven, Driver, Mode, Outcome, Status, Work};
use crate::document::Role;
use crate::pipeline::render::plan::{Plan, Step};
use crate::secrets::SecretStore;

/// The command line's flags for hosts.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Hosts converged at the same time.
    pub concurrency: usize,
    /// Stop starting hosts once one failed.
    pub fail_fast: bool,
    /// Record the keys of hosts missing from knownHostsFile.
    pub accept_new_host_keys: bool,
    /// Reaching a host: TCP connect and SSH handshake.
    pub connect_timeout: Duration,
    /// Each remote command.
    pub command_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            concurrency: 16,
            fail_fast: false,
            accept_new_host_keys: false,
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(600),
        }
    }
}

pub use super::error::HostsError;

/// The public name's certificate: what this run did about it.
#[derive(Debug, Clone, Serialize)]
pub struct PublicCertificate {
    pub names: Vec<String>,
    pub issuer: String,
    /// `request` (a plan), `issued` or `failed`.
    pub action: &'static str,
    pub reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a run did on the hosts.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostsReport {
    pub platform: String,
    pub mode: Mode,
    pub changed: usize,
    pub failed_hosts: usize,
    pub hosts: Vec<HostReport>,
    pub public_certificate: Option<PublicCertificate>,
}

impl HostsReport {
    pub fn ok(&self) -> bool {
        self.failed_hosts == 0
            && self
                .public_certificate
                .as_ref()
                .is_none_or(|c| c.action != "failed")
    }
}

/// No progress told (scripts, the operator).
pub struct Quiet;

impl Progress for Quiet {
    fn host_started(&self, _: &str) {}
    fn step(&self, _: &str, _: &StepReport) {}
    fn host_finished(&self, _: &HostReport) {}
}

/// Bare-metal hosts over SSH.
pub struct Hosts;

impl Driver for Hosts {
    async fn plan(&self, work: &Work<'_>) -> Result<Driven, DeployError> {
        let report = tokio::task::block_in_place(|| converge(work))?;
        // says whether a public certificate would be asked for
        let report = certify(work, report).await?;
        Ok(Driven::Done(Outcome::Hosts(report)))
    }

    async fn apply(&self, work: &Work<'_>) -> Result<Driven, DeployError> {
        let report = tokio::task::block_in_place(|| converge(work))?;
        let report = certify(work, report).await?;
        Ok(Driven::Done(Outcome::Hosts(report)))
    }

    async fn status(&self, work: &Work<'_>) -> Result<Status, DeployError> {
        // a plan that would change nothing, on hosts that all answered
        let report = tokio::task::block_in_place(|| {
            converge(&Work {
                mode: Mode::Plan,
                ..*work
            })
        })?;
        let mut pending = Vec::new();
        for h in &report.hosts {
            if let Some(e) = &h.error {
                pending.push(format!("{}: {e}", h.name));
            }
            for s in h
                .steps
                .iter()
                .filter(|s| s.status != super::StepStatus::Unchanged)
            {
                pending.push(format!("{}: {} {}", h.name, s.id, s.detail));
            }
        }
        Ok(Status {
            ready: pending.is_empty(),
            pending,
        })
    }
}

/// How this run reaches the hosts and where it keeps their secrets.
fn options(work: &Work<'_>) -> Result<Options, HostsError> {
    let doc = work.document_path();
    let settings = &work.settings.hosts;
    // a cloud's VMs arrive here handed over as a bare-metal target
    let hosts = work
        .loaded
        .platform
        .spec
        .target
        .baremetal()
        .ok_or(HostsError::NotHosts)?;
    let reach = super::Reach {
        accept_new_host_keys: settings.accept_new_host_keys,
        connect_timeout: settings.connect_timeout,
        timeout: settings.command_timeout,
    };
    Ok(Options {
        mode: work.mode,
        concurrency: settings.concurrency,
        fail_fast: settings.fail_fast,
        targets: super::targets(&doc, hosts, reach),
        secrets: SecretStore::for_platform(&doc, &work.loaded.platform),
        holder: work.holder.clone(),
        restore_point: None,
    })
}

/// The public names nginx serves on the application hosts.
fn public_names(work: &Work<'_>, plan: &Plan) -> Vec<String> {
    let app = &work.resolved.components.app;
    match &app.public_host {
        Some(h) if app.enabled && plan.hosts.iter().any(|p| p.roles.contains(&Role::App)) => {
            vec![h.clone()]
        }
        _ => Vec::new(),
    }
}

fn checked_plan(work: &Work<'_>) -> Result<Plan, HostsError> {
    let plan = Plan::from_tree(work.tree)?;
    // Apply exactly what was rendered: every file step must match the tree's bytes.
    for host in &plan.hosts {
        for step in &host.steps {
            if let Step::File { file, .. } = step {
                let key = format!("baremetal/hosts/{}/{}", host.name, file.source);
                if work
                    .tree
                    .files
                    .get(&key)
                    .map(|c| crate::text::sha256_hex(c))
                    != Some(file.sha256.clone())
                {
                    return Err(HostsError::TreeMismatch { key });
                }
            }
        }
    }
    Ok(plan)
}

fn converge(work: &Work<'_>) -> Result<HostsReport, DeployError> {
    let plan = checked_plan(work)?;
    let opts = options(work)?;
    // The platform's CA and every host's certificate, made or renewed before anything is written
    // (a plan changes nothing: certificates still to make show as secrets to write).
    if work.mode == Mode::Apply {
        let hosts: Vec<crate::pki::HostNames> = plan
            .hosts
            .iter()
            .map(|h| crate::pki::tls_names(h, work.resolved))
            .collect();
        crate::pki::ensure(&opts.secrets, &plan.platform, &hosts).map_err(HostsError::from)?;
        crate::pki::ensure_public(&opts.secrets, &plan.platform, &public_names(work, &plan))
            .map_err(HostsError::from)?;
    }
    let mut opts = opts;
    if work.mode == Mode::Apply {
        let site = super::site::Site::from_work(work).map_err(|e| HostsError::Site(Box::new(e)))?;
        opts.restore_point = super::release::restore_point_before(work, &site)?;
    }
    let hosts = super::converge(&plan, &work.tree.files, &opts, work.events.hosts())
        .map_err(HostsError::from)?;
    Ok(report(&plan, work.mode, hosts, None))
}

fn report(
    plan: &Plan,
    mode: Mode,
    hosts: Vec<HostReport>,
    public_certificate: Option<PublicCertificate>,
) -> HostsReport {
    HostsReport {
        platform: plan.platform.clone(),
        mode,
        changed: hosts.iter().map(|r| r.changed).sum(),
        failed_hosts: hosts.iter().filter(|r| !r.ok()).count(),
        hosts,
        public_certificate,
    }
}

/// The public certificate from the ACME CA: asked for once nginx serves the challenges, then
/// delivered by a second converge that changes only nginx's certificate. A plan says whether one
/// would be asked for.
async fn certify(work: &Work<'_>, mut done: HostsReport) -> Result<HostsReport, DeployError> {
    let plan = checked_plan(work)?;
    let names = public_names(work, &plan);
    let Some(acme) = work
        .resolved
        .endpoints
        .acme_ca
        .as_ref()
        .filter(|_| !names.is_empty())
    else {
        return Ok(done);
    };
    let opts = options(work)?;
    let directory = acme.url.as_str();
    let certificate = |action, reason, expires, error| PublicCertificate {
        names: names.clone(),
        issuer: directory.to_owned(),
        action,
        reason,
        expires,
        error,
    };
    let reason = match crate::pki::acme::due(&opts.secrets, directory, &names) {
        Err(e) => {
            work.events.problem(&format!("public certificate: {e}"));
            done.public_certificate = Some(certificate(
                "failed",
                "the stored certificate cannot be read",
                None,
                Some(crate::text::error_chain(&e)),
            ));
            return Ok(done);
        }
        Ok(None) => return Ok(done),
        Ok(Some(reason)) => reason,
    };
    if work.mode == Mode::Plan {
        work.events.note(&format!(
            "public certificate for {}: would be requested from {directory} ({reason})",
            names.join(", ")
        ));
        done.public_certificate = Some(certificate("request", reason, None, None));
        return Ok(done);
    }
    if !done.ok() {
        return Ok(done);
    }
    work.events.note(&format!(
        "public certificate for {}: requesting it from {directory} ({reason})",
        names.join(", ")
    ));
    // the application hosts serve the challenges, and alone receive the certificate
    let mut app_plan = plan.clone();
    app_plan.hosts.retain(|h| h.roles.contains(&Role::App));
    let request = crate::pki::acme::Request {
        platform: &plan.platform,
        directory,
        ca_certificate: work
            .loaded
            .platform
            .spec
            .endpoints
            .acme_ca
            .as_ref()
            .and_then(|e| e.ca_certificate.as_deref()),
        contact: work
            .resolved
            .components
            .monitoring
            .alert_emails
            .first()
            .map(String::as_str),
        names: names.clone(),
        hosts: app_plan
            .hosts
            .iter()
            .filter_map(|h| super::target(h, &opts).ok().map(|t| (h.name.clone(), t)))
            .collect(),
    };
    match crate::pki::acme::obtain(&opts.secrets, &request).await {
        Ok(state) => {
            let expires = crate::text::rfc3339(state.expires);
            work.events.note(&format!("public certificate for {}: issued by {directory}, valid until {expires}; delivering it to nginx", names.join(", ")));
            let delivered = tokio::task::block_in_place(|| {
                super::converge(&app_plan, &work.tree.files, &opts, work.events.hosts())
            })
            .map_err(HostsError::from)?;
            for a in delivered {
                let Some(r) = done.hosts.iter_mut().find(|r| r.name == a.name) else {
                    continue;
                };
                r.changed += a.changed;
                r.failed += a.failed;
                if r.error.is_none() {
                    r.error = a.error;
                }
            }
            let mut done = report(&plan, work.mode, done.hosts, None);
            done.public_certificate = Some(certificate("issued", reason, Some(expires), None));
            Ok(done)
        }
        Err(e) => {
            work.events.problem(&format!("public certificate for {}: {e}\n  nginx keeps serving the current certificate; the next apply asks again", names.join(", ")));
            done.public_certificate = Some(certificate(
                "failed",
                reason,
                None,
                Some(crate::text::error_chain(&e)),
            ));
            Ok(done)
        }
    }
}
