//! What each command does; `main.rs` only parses and maps the outcome to an exit code.

use std::io::{IsTerminal, Write};

use serde_json::json;

use crate::pipeline::blueprint::Catalog;
use crate::cli::{ApplyArgs, Cli, Command, OutputFormat, RenderArgs, ValidateArgs};
use crate::document::{self, Diagnostic};
use crate::pipeline::render::{self, RenderError};

mod attest;
mod audit;
mod backup;
mod secnumcloud;
mod geodata;
mod kubernetes;
mod locate;
mod reversibility;
pub(crate) mod secrets;
mod verify;

/// How a command ended, mapped to the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Invalid input or usage (exit 1).
    Invalid,
    /// A check failed (exit 2).
    CheckFailed,
}

impl Outcome {
    pub fn code(self) -> i32 {
        match self {
            Outcome::Success => 0,
            Outcome::Invalid => 1,
            Outcome::CheckFailed => 2,
        }
    }
}

pub fn run(cli: Cli) -> Outcome {
    let catalog = Catalog::new(cli.global.blueprints.clone());
    let json = cli.global.output == OutputFormat::Json;
    match cli.command {
        Command::Validate(args) => validate(&args, &catalog, json),
        Command::Render(args) => render_cmd(&args, &catalog, json),
        Command::Plan(args) => baremetal(&args, &catalog, json, crate::deploy::baremetal::Mode::Check),
        Command::Apply(args) => baremetal(&args, &catalog, json, crate::deploy::baremetal::Mode::Apply),
        Command::Schema => {
            print!("{}", document::schema::platform_schema_text());
            Outcome::Success
        }
        Command::Operator(args) => match crate::operator::run(args, catalog) {
            Ok(()) => Outcome::Success,
            Err(e) => {
                eprintln!("error: {e}");
                Outcome::CheckFailed
            }
        },
        Command::Locate(args) => locate::run(&args, json),
        Command::Verify(args) => verify::run(&args, &catalog, json),
        Command::Geodata(cmd) => geodata::run(cmd, json),
        Command::Backup(cmd) => backup::run(cmd, &catalog, json),
        Command::Secrets(cmd) => secrets::run(cmd, &catalog, json),
        Command::Audit(args) => audit::run(&args, &catalog, json),
        Command::Export(args) => reversibility::export(&args, &catalog, json),
        Command::Restore(args) => reversibility::restore(&args, &catalog, json),
        Command::Drill(args) => reversibility::drill(&args, &catalog, json),
        Command::Keygen { out } => attest::keygen(&out, json),
        Command::Attest(args) => attest::run(&args, &catalog, json),
        Command::Crd => {
            match crate::document::crd::crd_text(json) {
                Ok(text) => {
                    print!("{text}");
                    Outcome::Success
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    Outcome::Invalid
                }
            }
        }
        Command::Blueprints => blueprints(&catalog, json),
        Command::SmokeApp => match crate::smoke::run() {
            Ok(()) => Outcome::Success,
            Err(e) => {
                eprintln!("error: {e}");
                Outcome::Invalid
            }
        },
    }
}

/// Print diagnostics for people: the line itself with a caret under the column.
pub(crate) fn print_diagnostics(diags: &[Diagnostic], source: Option<&str>) {
    let mut err = std::io::stderr().lock();
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    for d in diags {
        let (red, reset) = if color { ("\x1b[31m", "\x1b[0m") } else { ("", "") };
        let _ = writeln!(err, "{red}error{reset}: {d}");
        if let Some(line) = source.and_then(|s| s.lines().nth(d.line.saturating_sub(1) as usize)) {
            let n = d.line.to_string();
            let _ = writeln!(err, "{:>w$} | {line}", n, w = n.len());
            let pad: String = line.chars().take(d.column.saturating_sub(1) as usize).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
            let _ = writeln!(err, "{:>w$} | {pad}^", "", w = n.len());
        }
    }
}

/// Load a document and check its blueprint parameters too.
/// Whether the document at `file` names a Kubernetes cluster as its target (`target.kubernetes`),
/// which sends the `secrets` and `backup` commands to the cluster. An unreadable document goes the
/// host way, whose loader reports it.
fn targets_a_cluster(file: &std::path::Path) -> bool {
    document::load_file(file).is_ok_and(|l| l.platform.spec.target.kubernetes().is_some())
}

pub(crate) fn load_checked(path: &std::path::Path, catalog: &Catalog) -> Result<document::Loaded, (Vec<Diagnostic>, Option<String>)> {
    let text = std::fs::read_to_string(path).ok();
    let loaded = document::load_file(path).map_err(|d| (d, text.clone()))?;
    match catalog.load(&loaded.platform.spec.blueprint.name) {
        Ok(bp) => bp.resolve_parameters(&loaded).map(|_| loaded).map_err(|d| (d, text)),
        Err(crate::pipeline::blueprint::BlueprintError::NotFound { .. }) => {
            let ptr = "/spec/blueprint/name";
            let names = catalog.names();
            let wanted = &loaded.platform.spec.blueprint.name;
            let mut expected = format!("the name of an available blueprint: {}", crate::document::diagnostic::one_of(&names));
            if let Some(s) = crate::document::diagnostic::did_you_mean(wanted, names.iter().map(String::as_str)).filter(|_| names.len() > 1) {
                expected = format!("{expected} (did you mean `{s}`?)");
            }
            let d = Diagnostic::new(&loaded.file, loaded.source_map.value(ptr), "spec.blueprint.name", format!("blueprint `{wanted}` not found"), expected);
            Err((vec![d], text))
        }
        // the blueprint exists but cannot be read: say so where the document names it
        Err(e) => {
            let ptr = "/spec/blueprint/name";
            let d = Diagnostic::new(&loaded.file, loaded.source_map.value(ptr), "spec.blueprint.name", e.to_string(), "a readable blueprint with a valid blueprint.yaml");
            Err((vec![d], text))
        }
    }
}

fn validate(args: &ValidateArgs, catalog: &Catalog, json: bool) -> Outcome {
    let mut results = Vec::new();
    let mut all_valid = true;
    for path in &args.files {
        match load_checked(path, catalog) {
            Ok(loaded) => {
                let kind = crate::pipeline::resolve::ResolvedPlatform::target_kind_of(&loaded.platform.spec.target);
                if json {
                    results.push(json!({"file": loaded.file, "valid": true, "name": loaded.platform.metadata.name, "target": kind, "errors": []}));
                } else {
                    println!("{}: valid (platform {}, target {kind})", loaded.file, loaded.platform.metadata.name);
                }
            }
            Err((diags, text)) => {
                all_valid = false;
                if json {
                    results.push(json!({"file": path.display().to_string(), "valid": false, "errors": diags}));
                } else {
                    print_diagnostics(&diags, text.as_deref());
                    eprintln!("{}: invalid, {} error{}", path.display(), diags.len(), if diags.len() == 1 { "" } else { "s" });
                }
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&results).expect("results serialize"));
    }
    if all_valid { Outcome::Success } else { Outcome::Invalid }
}

fn render_cmd(args: &RenderArgs, catalog: &Catalog, json: bool) -> Outcome {
    let loaded = match load_checked(&args.file, catalog) {
        Ok(l) => l,
        Err((diags, text)) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&json!({"file": args.file.display().to_string(), "rendered": false, "errors": diags})).expect("serializes"));
            } else {
                print_diagnostics(&diags, text.as_deref());
                eprintln!("{}: invalid, nothing rendered", args.file.display());
            }
            return Outcome::Invalid;
        }
    };
    let fail = |e: RenderError| {
        if json {
            println!("{}", json!({"file": args.file.display().to_string(), "rendered": false, "error": e.to_string()}));
        } else {
            eprintln!("error: {e}");
        }
        Outcome::Invalid
    };
    let (resolved, tree) = match render::render(&loaded, catalog) {
        Ok(x) => x,
        Err(RenderError::Invalid(diags)) => {
            print_diagnostics(&diags, std::fs::read_to_string(&args.file).ok().as_deref());
            return Outcome::Invalid;
        }
        Err(e) => return fail(e),
    };
    if let Err(e) = tree.write_to(&args.out, args.force) {
        return fail(e);
    }
    let sums = tree.sha256sums();
    if json {
        let files: Vec<_> = tree
            .files
            .iter()
            .map(|(p, c)| json!({"path": p, "sha256": crate::text::sha256_hex(c), "size": c.len()}))
            .collect();
        let out = json!({
            "file": loaded.file,
            "rendered": true,
            "platform": resolved.platform.name,
            "target": resolved.target_kind,
            "blueprint": {"name": resolved.blueprint.name, "version": resolved.blueprint.version},
            "out": args.out.display().to_string(),
            "treeSha256": crate::text::sha256_hex(sums.as_bytes()),
            "files": files,
        });
        println!("{}", serde_json::to_string_pretty(&out).expect("serializes"));
    } else {
        let mut sections: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
        for p in tree.files.keys() {
            *sections.entry(p.split('/').next().unwrap_or_default()).or_default() += 1;
        }
        println!(
            "Rendered platform {} (target {}, blueprint {} {}) into {}",
            resolved.platform.name,
            resolved.target_kind,
            resolved.blueprint.name,
            resolved.blueprint.version,
            args.out.display()
        );
        for (section, n) in sections {
            println!("  {section:<28} {n} file{}", if n == 1 { "" } else { "s" });
        }
        println!("Tree digest (sha256 of SHA256SUMS): {}", crate::text::sha256_hex(sums.as_bytes()));
        println!("Check it with: (cd {} && sha256sum -c SHA256SUMS)", args.out.display());
    }
    Outcome::Success
}

fn blueprints(catalog: &Catalog, json: bool) -> Outcome {
    let mut list = Vec::new();
    for name in catalog.names() {
        match catalog.load(&name) {
            Ok(bp) => list.push(bp),
            Err(e) => {
                eprintln!("error: {e}");
                return Outcome::Invalid;
            }
        }
    }
    if json {
        let v: Vec<_> = list
            .iter()
            .map(|bp| {
                let params: serde_json::Map<String, serde_json::Value> = bp
                    .parameters
                    .iter()
                    .map(|(k, p)| (k.clone(), json!({"type": format!("{:?}", p.kind).to_lowercase(), "default": p.default, "enum": p.allowed, "description": p.description})))
                    .collect();
                json!({"name": bp.name, "version": bp.version, "origin": bp.origin, "description": bp.description, "parameters": params})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v).expect("serializes"));
    } else {
        for bp in list {
            println!("{} {} ({})\n  {}", bp.name, bp.version, bp.origin, bp.description);
            println!("  parameters:");
            for (k, p) in &bp.parameters {
                println!("    {k:<20} {:<8} default {}  {}", format!("{:?}", p.kind).to_lowercase(), p.default, p.description);
            }
        }
    }
    Outcome::Success
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
            (StepStatus::Changed, Mode::Check) => "would change",
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
            (StepStatus::Changed, Mode::Check) => bar.set_message(format!("would change {}", step.id)),
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
        return kubernetes::run(args, loaded, catalog, json, mode == Mode::Apply);
    }
    if loaded.platform.spec.target.secnumcloud().is_some() {
        return secnumcloud::run(args, loaded, catalog, json, mode == Mode::Apply);
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
        if let Err(outcome) = verify::gate(&loaded, &images, json) {
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
        timeout: std::time::Duration::from_secs(args.timeout),
        secrets: crate::secrets::SecretStore::for_platform(doc, &loaded.platform),
        use_agent: target.ssh.use_agent,
        jump: target.ssh.jump_host.as_ref().map(|j| (j.address.clone(), u16::try_from(j.port).unwrap_or(22), j.user.clone().unwrap_or_else(|| target.ssh.user.clone()))),
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
