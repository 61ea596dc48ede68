//! `terroir plan` and `terroir apply`.

use std::io::IsTerminal;

use serde_json::json;

use super::{load_checked, print_diagnostics, Context, Outcome};
use crate::error::{Error, ExitStatus};
use crate::cli::ApplyArgs;
use crate::document;
use crate::pipeline::blueprint::Catalog;
use crate::pipeline::render;

/// `terroir plan FILE` or `terroir apply FILE`: render, gate, then drive the document's target.
/// `secrets rotate` delivers a new value through it too.
pub fn run(args: &ApplyArgs, mode: crate::deploy::Mode, cx: &Context) -> Result<ExitStatus, Error> {
    Ok(baremetal(args, &cx.catalog, cx.legacy_json, mode).into())
}

struct LinePrinter {
    mode: crate::deploy::baremetal::Mode,
}

impl crate::deploy::baremetal::Progress for LinePrinter {
    fn host_started(&self, host: &str) {
        eprintln!("[{host}] connecting");
    }
    fn step(&self, host: &str, step: &crate::deploy::baremetal::StepReport) {
        use crate::deploy::baremetal::{Mode, StepStatus};
        let verb = match (step.status, self.mode) {
            (StepStatus::Unchanged, _) => return,
            (StepStatus::Changed, Mode::Apply) => "changed",
            (StepStatus::Changed, Mode::Plan) => "would change",
            (StepStatus::Failed, _) => "FAILED",
        };
        eprintln!("[{host}] {verb}: {} {}", step.id, step.detail);
    }
    fn host_finished(&self, r: &crate::deploy::baremetal::HostReport) {
        match &r.error {
            Some(e) => eprintln!("[{}] error: {e}", r.name),
            None => eprintln!("[{}] done in {:.1} s: {} changed, {} unchanged, {} failed", r.name, r.duration_ms as f64 / 1000.0, r.changed, r.unchanged, r.failed),
        }
    }
}

/// On a terminal: one live line per host with the step it is on.
struct TerminalProgress {
    multi: indicatif::MultiProgress,
    bars: std::sync::Mutex<std::collections::BTreeMap<String, indicatif::ProgressBar>>,
    mode: crate::deploy::baremetal::Mode,
}

impl TerminalProgress {
    fn new(mode: crate::deploy::baremetal::Mode) -> Self {
        TerminalProgress { multi: indicatif::MultiProgress::new(), bars: std::sync::Mutex::new(Default::default()), mode }
    }
    fn bar(&self, host: &str) -> indicatif::ProgressBar {
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        bars.entry(host.to_owned())
            .or_insert_with(|| {
                let bar = self.multi.add(indicatif::ProgressBar::new_spinner());
                bar.set_style(indicatif::ProgressStyle::with_template("{spinner} {prefix:<12} {msg}").unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()));
                bar.set_prefix(host.to_owned());
                bar.enable_steady_tick(std::time::Duration::from_millis(120));
                bar
            })
            .clone()
    }
}

impl crate::deploy::baremetal::Progress for TerminalProgress {
    fn host_started(&self, host: &str) {
        self.bar(host).set_message("connecting");
    }
    fn step(&self, host: &str, step: &crate::deploy::baremetal::StepReport) {
        use crate::deploy::baremetal::{Mode, StepStatus};
        let bar = self.bar(host);
        match (step.status, self.mode) {
            (StepStatus::Failed, _) => bar.println(format!("[{host}] FAILED: {} {}", step.id, step.detail)),
            (StepStatus::Changed, Mode::Apply) => bar.set_message(format!("changed {}", step.id)),
            (StepStatus::Changed, Mode::Plan) => bar.set_message(format!("would change {}", step.id)),
            (StepStatus::Unchanged, _) => bar.set_message(step.id.clone()),
        }
    }
    fn host_finished(&self, r: &crate::deploy::baremetal::HostReport) {
        let bar = self.bar(&r.name);
        match &r.error {
            Some(e) => bar.finish_with_message(format!("error: {e}")),
            None => bar.finish_with_message(format!("done in {:.1} s: {} changed, {} unchanged, {} failed", r.duration_ms as f64 / 1000.0, r.changed, r.unchanged, r.failed)),
        }
    }
}

struct Quiet;

impl crate::deploy::baremetal::Progress for Quiet {
    fn host_started(&self, _: &str) {}
    fn step(&self, _: &str, _: &crate::deploy::baremetal::StepReport) {}
    fn host_finished(&self, _: &crate::deploy::baremetal::HostReport) {}
}

pub(crate) fn baremetal(args: &ApplyArgs, catalog: &Catalog, json: bool, mode: crate::deploy::baremetal::Mode) -> Outcome {
    use crate::deploy::baremetal::Mode;
    let loaded = match load_checked(&args.file, catalog) {
        Ok(l) => l,
        Err((diags, text)) => {
            print_diagnostics(&diags, text.as_deref());
            return Outcome::Invalid;
        }
    };
    if loaded.platform.spec.target.kubernetes().is_some() {
        return super::kubernetes::run(args, loaded, catalog, json, mode == Mode::Apply);
    }
    if loaded.platform.spec.target.secnumcloud().is_some() {
        return super::secnumcloud::run(args, loaded, catalog, json, mode == Mode::Apply);
    }
    baremetal_loaded(args, loaded, catalog, json, mode)
}

/// Plan or apply a bare-metal document already loaded (also the hand-over from a cloud target).
pub(crate) fn baremetal_loaded(args: &ApplyArgs, loaded: document::Loaded, catalog: &Catalog, json: bool, mode: crate::deploy::baremetal::Mode) -> Outcome {
    use crate::deploy::baremetal::{self as bm, Mode};
    let Some(target) = loaded.platform.spec.target.baremetal().cloned() else {
        eprintln!(
            "error: {}: `plan` and `apply` drive bare-metal and Kubernetes targets so far; this document's target is {} (render it with `terroir render`)",
            loaded.file,
            crate::pipeline::resolve::ResolvedPlatform::target_kind_of(&loaded.platform.spec.target)
        );
        return Outcome::Invalid;
    };
    let (resolved, tree) = match render::render(&loaded, catalog) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return Outcome::Invalid;
        }
    };
    if mode == Mode::Apply {
        let images: Vec<String> = resolved.images.values().cloned().collect();
        if let Err(outcome) = super::verify::gate(&loaded, &images, json) {
            return outcome;
        }
    }
    let plan = match crate::pipeline::render::plan::Plan::from_tree(&tree) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return Outcome::Invalid;
        }
    };
    // Apply exactly what was rendered: every file step must match the tree's bytes.
    for host in &plan.hosts {
        for step in &host.steps {
            if let crate::pipeline::render::plan::Step::File { file, .. } = step {
                let key = format!("baremetal/hosts/{}/{}", host.name, file.source);
                if tree.files.get(&key).map(|c| crate::text::sha256_hex(c)) != Some(file.sha256.clone()) {
                    eprintln!("error: rendered file {key} does not match its SHA-256 in the plan; refusing to apply");
                    return Outcome::Invalid;
                }
            }
        }
    }
    let doc = args.file.as_path();
    let opts = bm::Options {
        mode,
        concurrency: usize::from(args.concurrency),
        fail_fast: args.fail_fast,
        accept_new_host_keys: args.accept_new_host_keys,
        user: target.ssh.user.clone(),
        port: u16::try_from(target.ssh.port).unwrap_or(22),
        identity: bm::resolve_path(&target.ssh.identity_file, doc),
        known_hosts: bm::resolve_path(&target.ssh.known_hosts_file, doc),
        connect_timeout: std::time::Duration::from_secs(args.connect_timeout),
        timeout: std::time::Duration::from_secs(args.timeout),
        secrets: crate::secrets::SecretStore::for_platform(doc, &loaded.platform),
        use_agent: target.ssh.use_agent,
        jump: target.ssh.jump_host.as_ref().map(|j| (j.address.clone(), u16::try_from(j.port).unwrap_or(22), j.user.clone().unwrap_or_else(|| target.ssh.user.clone()))),
        holder: crate::deploy::lock::Holder::current(if mode == Mode::Apply { "apply" } else { "plan" }),
    };
    // the public names nginx serves on the application hosts
    let public_names: Vec<String> = match &resolved.components.app.public_host {
        Some(h) if resolved.components.app.enabled && plan.hosts.iter().any(|p| p.roles.contains(&document::Role::App)) => vec![h.clone()],
        _ => Vec::new(),
    };
    // The platform's CA and every host's certificate, made or renewed before anything is written
    // (a plan changes nothing: certificates still to make show as secrets to write).
    if mode == Mode::Apply {
        let hosts: Vec<crate::pki::HostNames> = plan.hosts.iter().map(|h| crate::pki::tls_names(h, &resolved)).collect();
        if let Err(e) = crate::pki::ensure(&opts.secrets, &plan.platform, &hosts).and_then(|_| crate::pki::ensure_public(&opts.secrets, &plan.platform, &public_names)) {
            eprintln!("error: {e}");
            return Outcome::CheckFailed;
        }
    }
    let run = |plan: &crate::pipeline::render::plan::Plan| {
        if json {
            bm::converge(plan, &tree.files, &opts, &Quiet)
        } else if std::io::stderr().is_terminal() {
            bm::converge(plan, &tree.files, &opts, &TerminalProgress::new(mode))
        } else {
            bm::converge(plan, &tree.files, &opts, &LinePrinter { mode })
        }
    };
    let mut reports = run(&plan);
    // The public certificate from the ACME CA: asked for once nginx serves the challenges, then
    // delivered by a second converge that changes only nginx's certificate.
    let mut certificate = None;
    let mut acme_failed = false;
    if let (Some(acme), false) = (&resolved.endpoints.acme_ca, public_names.is_empty()) {
        let directory = acme.url.as_str();
        match crate::pki::acme::due(&opts.secrets, directory, &public_names) {
            Err(e) => {
                eprintln!("error: public certificate: {e}");
                acme_failed = true;
            }
            Ok(None) => {}
            Ok(Some(reason)) if mode != Mode::Apply => {
                certificate = Some(json!({"names": public_names, "issuer": directory, "action": "request", "reason": reason}));
                if !json {
                    eprintln!("public certificate for {}: would be requested from {directory} ({reason})", public_names.join(", "));
                }
            }
            Ok(Some(reason)) if reports.iter().all(|r| r.ok()) => {
                if !json {
                    eprintln!("public certificate for {}: requesting it from {directory} ({reason})", public_names.join(", "));
                }
                // the application hosts serve the challenges, and alone receive the certificate
                let mut app_plan = plan.clone();
                app_plan.hosts.retain(|h| h.roles.contains(&document::Role::App));
                let request = crate::pki::acme::Request {
                    platform: &plan.platform,
                    directory,
                    ca_certificate: loaded.platform.spec.endpoints.acme_ca.as_ref().and_then(|e| e.ca_certificate.as_deref()),
                    contact: resolved.components.monitoring.alert_emails.first().map(String::as_str),
                    names: public_names.clone(),
                    hosts: app_plan.hosts.iter().map(|h| (h.name.clone(), bm::target(h, &opts))).collect(),
                };
                match crate::pki::acme::obtain(&opts.secrets, &request) {
                    Ok(state) => {
                        let expires = crate::text::rfc3339(state.expires);
                        if !json {
                            eprintln!("public certificate for {}: issued by {directory}, valid until {expires}; delivering it to nginx", public_names.join(", "));
                        }
                        certificate = Some(json!({"names": public_names, "issuer": directory, "action": "issued", "reason": reason, "expires": expires}));
                        for a in run(&app_plan) {
                            let Some(r) = reports.iter_mut().find(|r| r.name == a.name) else { continue };
                            r.changed += a.changed;
                            r.failed += a.failed;
                            if r.error.is_none() {
                                r.error = a.error;
                            }
                        }
                    }
                    Err(e) => {
                        eprintln!("error: public certificate for {}: {e}\n  nginx keeps serving the current certificate; the next apply asks again", public_names.join(", "));
                        certificate = Some(json!({"names": public_names, "issuer": directory, "action": "failed", "reason": reason, "error": e.to_string()}));
                        acme_failed = true;
                    }
                }
            }
            Ok(Some(_)) => {}
        }
    }
    let changed: usize = reports.iter().map(|r| r.changed).sum();
    let failed_hosts = reports.iter().filter(|r| !r.ok()).count();
    if json {
        let out = json!({
            "platform": plan.platform,
            "mode": if mode == Mode::Apply { "apply" } else { "plan" },
            "changed": changed,
            "failedHosts": failed_hosts,
            "hosts": reports,
            "publicCertificate": certificate,
        });
        println!("{}", serde_json::to_string_pretty(&out).expect("serializes"));
    } else {
        let verb = if mode == Mode::Apply { "changed" } else { "would change" };
        println!("{:<16} {:<16} {:>8} {:>10} {:>7}", "HOST", "ADDRESS", "CHANGED", "UNCHANGED", "FAILED");
        for r in &reports {
            println!("{:<16} {:<16} {:>8} {:>10} {:>7}{}", r.name, r.address, r.changed, r.unchanged, r.failed, r.error.as_ref().map(|e| format!("  error: {e}")).unwrap_or_default());
        }
        println!("{changed} step{} {verb} on {} host{}; {failed_hosts} host{} failed", if changed == 1 { "" } else { "s" }, reports.len(), if reports.len() == 1 { "" } else { "s" }, if failed_hosts == 1 { "" } else { "s" });
    }
    if failed_hosts > 0 || acme_failed { Outcome::CheckFailed } else { Outcome::Success }
}
