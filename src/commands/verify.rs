//! `terroir verify FILE [--live] [--plan-json PLAN.json]`.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::net::IpAddr;

use super::{load_checked, print_diagnostics, Outcome};
use crate::pipeline::blueprint::Catalog;
use crate::cli::VerifyArgs;
use crate::policy::locality::catalog::Catalog as Providers;
use crate::policy::locality::geodata::GeoDb;
use crate::policy::locality::verify::{self, Finding, Report, Verdict, Verifier};
use crate::pipeline::render;

/// `HOST=ADDRESS` pins, as given on the command line.
pub fn parse_pins(pins: &[String]) -> Result<HashMap<String, Vec<IpAddr>>, String> {
    let mut out: HashMap<String, Vec<IpAddr>> = HashMap::new();
    for p in pins {
        let (host, addr) = p.split_once('=').ok_or_else(|| format!("--resolve {p}: expected HOST=ADDRESS"))?;
        let ip: IpAddr = addr.trim_matches(['[', ']']).parse().map_err(|_| format!("--resolve {p}: `{addr}` is not an IP address; expected HOST=ADDRESS"))?;
        out.entry(host.to_ascii_lowercase()).or_default().push(ip);
    }
    Ok(out)
}

/// What `verify` establishes, for `verify` itself and for `attest`.
pub(super) struct Gathered {
    pub loaded: crate::document::Loaded,
    pub report: Report,
    pub resolved: crate::pipeline::resolve::ResolvedPlatform,
    pub tree: crate::pipeline::render::RenderedTree,
}

pub fn run(args: &VerifyArgs, catalog: &Catalog, json: bool) -> Outcome {
    match gather(args, catalog) {
        Ok(g) => {
            print(&g.report, json);
            if g.report.verdict == Verdict::Fail { Outcome::CheckFailed } else { Outcome::Success }
        }
        Err(outcome) => outcome,
    }
}

pub(super) fn gather(args: &VerifyArgs, catalog: &Catalog) -> Result<Gathered, Outcome> {
    let loaded = match load_checked(&args.file, catalog) {
        Ok(l) => l,
        Err((diags, text)) => {
            print_diagnostics(&diags, text.as_deref());
            return Err(Outcome::Invalid);
        }
    };
    let pins = match parse_pins(&args.check.resolve) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(Outcome::Invalid);
        }
    };
    let geo = match GeoDb::open(args.check.data.geodata.as_deref()) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(Outcome::Invalid);
        }
    };
    let (resolved, tree) = match render::render(&loaded, catalog) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(Outcome::Invalid);
        }
    };
    let p = &loaded.platform;
    let v = Verifier { policy: &p.spec.sovereignty.policy, geo: Some(&geo), catalog: Providers::builtin(), pins, dns: !args.check.no_dns };
    let images: Vec<String> = resolved.images.values().cloned().collect();
    let mut findings = verify::declared(p, &images, &v);

    if let Some(path) = &args.check.plan_json {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", path.display());
                return Err(Outcome::Invalid);
            }
        };
        let plan: serde_json::Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("error: {}:{}:{}: {e}; expected the JSON `terraform show -json PLAN` writes", path.display(), e.line(), e.column());
                return Err(Outcome::Invalid);
            }
        };
        match verify::plan(&plan, &v) {
            Ok(f) => findings.extend(f),
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                return Err(Outcome::Invalid);
            }
        }
    }

    if args.check.live {
        match live(args, &loaded, &v) {
            Ok(f) => findings.extend(f),
            Err((outcome, e)) => {
                eprintln!("error: {e}");
                return Err(outcome);
            }
        }
    }

    let report = Report::new(&p.metadata.name, findings);
    Ok(Gathered { loaded, report, resolved, tree })
}

fn live(args: &VerifyArgs, loaded: &crate::document::Loaded, v: &Verifier) -> Result<Vec<Finding>, (Outcome, String)> {
    let p = &loaded.platform;
    if let Some(k) = p.spec.target.kubernetes() {
        let (kubeconfig, context) = crate::deploy::kubernetes::connection_settings(args.check.kubeconfig.as_ref(), args.check.context.as_ref(), k, &args.file);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| (Outcome::CheckFailed, e.to_string()))?;
        return runtime.block_on(async {
            let conn = crate::deploy::kubernetes::connect(kubeconfig.as_deref(), context.as_deref()).await.map_err(|e| (Outcome::Invalid, e.to_string()))?;
            let declared_op = k.location.as_ref().and_then(|l| l.operator.clone());
            crate::policy::locality::live::kubernetes(&conn.client, &k.namespace, declared_op.as_deref(), v).await.map_err(|e| (Outcome::CheckFailed, e.to_string()))
        });
    }
    if p.spec.target.baremetal().is_some() {
        return crate::policy::locality::hostfacts::verify_hosts(&args.file, p, v).map_err(|e| (Outcome::CheckFailed, e));
    }
    Err((
        Outcome::Invalid,
        "--live reads a running target: bare-metal hosts or a Kubernetes cluster; for a SecNumCloud target, judge its Terraform plan with --plan-json".into(),
    ))
}

fn print(report: &Report, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(report).unwrap_or_default());
        return;
    }
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut out = std::io::stdout().lock();
    let w = report.findings.iter().map(|f| f.subject.chars().count()).max().unwrap_or(7).clamp(7, 48);
    let _ = writeln!(out, "{:<6} {:<8} {:<w$} OBSERVED", "VERDICT", "BASIS", "SUBJECT");
    for f in &report.findings {
        let (label, code) = match f.verdict {
            Verdict::Pass => ("pass", "32"),
            Verdict::Warn => ("warn", "33"),
            Verdict::Fail => ("FAIL", "31"),
        };
        let label = if color { format!("\x1b[{code}m{label:<7}\x1b[0m") } else { format!("{label:<7}") };
        let _ = writeln!(out, "{label} {:<8} {:<w$} {}", f.basis, f.subject, f.observed);
        if f.verdict != Verdict::Pass && !f.evidence.is_empty() {
            let _ = writeln!(out, "{:16}{:w$} {}", "", "", f.evidence);
        }
    }
    let count = |v: Verdict| report.findings.iter().filter(|f| f.verdict == v).count();
    let _ = writeln!(
        out,
        "\n{}: {} pass, {} warn, {} fail; expected {}",
        report.platform,
        count(Verdict::Pass),
        count(Verdict::Warn),
        count(Verdict::Fail),
        report.findings.first().map(|f| f.expected.as_str()).unwrap_or("")
    );
    let _ = writeln!(out, "{}", report.attribution);
}
