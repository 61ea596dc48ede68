//! One claim after another: the fault placed on the platform's hosts, the probes of the degraded
//! mode, the fault removed, the probes of nominal. Or a cut-off: every dependency outside the
//! policy, or every external one, cut at once, and what still works, queues or stops.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::claims::{Claim, CutTarget, FaultSpec, Member, Probe};
use super::fault;
use super::probe::{Observation, Probing, Stopped};
use super::report::{ClaimResult, ContinuityReport, KIND, markdown};
use crate::deploy::baremetal::site::{Site, SiteError};
use crate::parallel::in_parallel;
use crate::pipeline::resolve::ResolvedPlatform;
use crate::policy::locality::catalog::Catalog as Providers;
use crate::policy::locality::verify::{Verdict, Verifier};

/// What a cut-off cuts at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CutOff {
    /// Every dependency whose declared country the policy does not allow, or whose operator
    /// answers to a forbidden jurisdiction: for a compliant platform, nothing.
    OutsidePolicy,
    /// Every external dependency, every resolver included.
    AllExternal,
}

impl CutOff {
    /// Its name in reports.
    pub fn label(self) -> &'static str {
        match self {
            CutOff::OutsidePolicy => "cut-off outside-policy",
            CutOff::AllExternal => "cut-off all-external",
        }
    }
}

pub struct Options {
    /// Claims to drill, by name; all when empty.
    pub only: Vec<String>,
    pub cut_off: Option<CutOff>,
    /// Each fault removes itself after this long, whatever happens to terroir.
    pub max_fault_seconds: u64,
    pub report_dir: PathBuf,
    /// Where the drill's messages go.
    pub mail_to: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ContinuityError {
    #[error(transparent)]
    Site(#[from] SiteError),
    #[error("no claim is named {unknown}; this platform makes: {known}")]
    UnknownClaim { unknown: String, known: String },
    #[error(
        "this platform makes no continuity claim: it declares no dependency the blueprint makes a claim about, and no redundant member"
    )]
    NoClaim,
    #[error(
        "{document}: target `{target}`: `terroir continuity` places its faults with nftables on the platform's hosts, over SSH, so it runs on bare-metal targets. On Kubernetes it is refused: whether a NetworkPolicy cuts a dependency's traffic depends on the cluster's network plugin, and a drill whose fault may not have happened proves nothing"
    )]
    NotBareMetal {
        document: String,
        target: &'static str,
    },
    #[error(
        "{document}: the blueprint's `environment` is `production`: the drill makes dependencies and members fail on the live platform; pass --yes to go ahead (--dry-run shows what it would do)"
    )]
    Production { document: String },
    #[error(
        "--max-fault-seconds {0}: a fault must last long enough for its probes; expected 30 or more"
    )]
    TooShort(u64),
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A name unique to this run and claim, of letters and digits (nftables tables, rows, messages).
fn token(index: usize) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    format!("c{now}n{index}")
}

/// Every platform host, where a cut goes (no service to stop).
fn every_host(site: &Site) -> Vec<(String, String)> {
    site.resolved
        .hosts
        .iter()
        .map(|h| (h.name.clone(), String::new()))
        .collect()
}

/// Where the fault goes: every host for a cut; for a stop, the member and its service.
fn placement(
    site: &Site,
    probing: &Probing<'_>,
    fault: &FaultSpec,
) -> Result<Vec<(String, String)>, String> {
    match fault {
        FaultSpec::Cut { .. } => Ok(every_host(site)),
        FaultSpec::Stop { member } => {
            let host = match member {
                Member::Database => probing.primary()?,
                other => site
                    .hosts_with(other.role())
                    .into_iter()
                    .next()
                    .ok_or_else(|| format!("no host holds the {} role", other.role().as_str()))?,
            };
            Ok(vec![(host, member.service(site.name()))])
        }
    }
}

/// Place `fault` as `id` on the hosts; on any failure, remove it from every host again.
fn place(
    site: &Site,
    id: &str,
    fault: &FaultSpec,
    at: &[(String, String)],
    max_seconds: u64,
) -> Result<(), String> {
    let placed = in_parallel(at, at.len().max(1), |(host, service)| {
        let script = match fault {
            FaultSpec::Cut { targets } => fault::cut(id, targets, max_seconds),
            FaultSpec::Stop { .. } => fault::stop(id, service, max_seconds),
        };
        site.run_on(host, "placing the fault", &script)
            .map_err(|e| crate::text::error_chain(&e))
    });
    let failed: Vec<String> = placed.into_iter().filter_map(Result::err).collect();
    if failed.is_empty() {
        Ok(())
    } else {
        remove(site, id, at);
        Err(format!(
            "the fault could not be placed: {}",
            failed.join("; ")
        ))
    }
}

/// Remove fault `id` from the hosts and confirm that none of it is left: what is left, where
/// (nothing when it is gone everywhere).
fn remove(site: &Site, id: &str, at: &[(String, String)]) -> Vec<String> {
    let answers = in_parallel(at, at.len().max(1), |(host, _)| {
        let script = format!("{}{}", fault::remove(id), fault::leftovers());
        match site.run_on(host, "removing the fault", &script) {
            Ok(left) => left
                .lines()
                .filter(|l| l.contains(id))
                .map(|l| format!("{host}: {l}"))
                .collect::<Vec<_>>(),
            Err(e) => vec![crate::text::error_chain(&e)],
        }
    });
    answers.into_iter().flatten().collect()
}

/// Run each probe in turn; the time until the last held, and the first failure.
fn probe_all(
    probing: &Probing<'_>,
    probes: &[Probe],
    since: Instant,
) -> (Vec<Observation>, Option<f64>, Option<String>) {
    let mut seen = Vec::new();
    let mut failed = None;
    for p in probes {
        let o = probing.run(p);
        if !o.passed && failed.is_none() {
            failed = Some(format!("{}: {}", o.probe, o.observed));
        }
        seen.push(o);
    }
    let held = failed.is_none().then(|| since.elapsed().as_secs_f64());
    (seen, held, failed)
}

/// Why a claim failed, if it did: the first probe that failed while the fault lasted, else the
/// fault left in place, else the first probe of nominal that failed.
fn verdict(
    failed: Option<String>,
    left: &[String],
    nominal_failed: Option<String>,
) -> Option<String> {
    failed
        .or_else(|| {
            (!left.is_empty()).then(|| format!("the fault is still in place: {}", left.join("; ")))
        })
        .or_else(|| nominal_failed.map(|f| format!("not back to nominal: {f}")))
}

/// Drill one claim: place its fault, probe, remove it, probe nominal.
fn drill_claim(
    site: &Site,
    claim: &Claim,
    index: usize,
    opts: &Options,
    mail_to: &str,
    progress: &dyn Fn(&str),
) -> ClaimResult {
    let id = token(index);
    let mut probing = Probing::new(site, mail_to, &id);
    let mut result = ClaimResult::new(
        claim.name.clone(),
        claim.what.clone(),
        claim.declared.clone(),
        claim.fault.describe(),
    );
    let at = match placement(site, &probing, &claim.fault) {
        Ok(at) => at,
        Err(why) => {
            result.reason = Some(format!("the fault could not be placed: {why}"));
            return result;
        }
    };
    result.hosts = at.iter().map(|(h, _)| h.clone()).collect();
    if let FaultSpec::Stop { member } = &claim.fault {
        probing.stopped = Some(Stopped {
            member: *member,
            host: at[0].0.clone(),
        });
        result.fault = format!("{} ({})", result.fault, at[0].0);
    }
    // An alert the fault should raise must not be active already: the drill could not tell
    // that the fault raised it.
    for p in &claim.probes {
        if let Probe::AlertFires { alert, .. } = p {
            match probing.alert_active(alert) {
                Ok((_, false)) => {}
                Ok((_, true)) => {
                    result.reason = Some(format!(
                        "{alert} is active already, before any fault: the drill could not tell that the fault raised it; resolve what raised it first"
                    ));
                    return result;
                }
                Err(why) => {
                    result.reason = Some(format!("cannot ask Alertmanager about {alert}: {why}"));
                    return result;
                }
            }
        }
    }
    progress(&format!("{}: {}", claim.name, result.fault));
    if let Err(why) = place(site, &id, &claim.fault, &at, opts.max_fault_seconds) {
        result.reason = Some(why);
        return result;
    }
    let placed = Instant::now();
    let (probes, detect, failed) = probe_all(&probing, &claim.probes, placed);
    result.probes = probes;
    result.detect_seconds = detect;
    if matches!(claim.fault, FaultSpec::Stop { .. }) {
        result.failover_seconds = detect;
    }
    progress(&format!("{}: removing the fault", claim.name));
    let left = remove(site, &id, &at);
    result.fault_removed = left.is_empty();
    let lifted = Instant::now();
    // a claim that names nothing else for nominal is back when its probes hold again
    let after = if claim.nominal.is_empty() {
        &claim.probes
    } else {
        &claim.nominal
    };
    let (nominal, recovered, nominal_failed) = probe_all(&probing, after, lifted);
    result.nominal = nominal;
    result.recover_seconds = recovered;
    result.reason = verdict(failed, &left, nominal_failed);
    result.passed = result.reason.is_none();
    result
}

/// The dependencies a cut-off cuts: their claims' names, and every address and port.
fn cut_off_targets(
    p: &ResolvedPlatform,
    claims: &[Claim],
    how: CutOff,
) -> (Vec<String>, Vec<CutTarget>) {
    // judged as `verify` judges a declared place: its country, its operator's jurisdiction
    let providers = Providers::builtin();
    let verifier = Verifier {
        policy: &p.sovereignty.policy,
        geo: None,
        catalog: providers,
        pins: Default::default(),
        dns: false,
    };
    let outside = |c: &Claim| -> bool {
        let host = match &c.fault {
            FaultSpec::Cut { targets } => targets.first().map(|t| t.host.as_str()),
            FaultSpec::Stop { .. } => None,
        };
        let op = host
            .and_then(|h| providers.by_host(h))
            .or_else(|| c.operator.as_deref().and_then(|n| providers.by_name(n)));
        let judged = verifier.place(
            c.name.clone(),
            c.country.as_deref(),
            op,
            c.operator.as_deref(),
            None,
            "declared",
            "",
        );
        judged.verdict == Verdict::Fail
    };
    let mut names = Vec::new();
    let mut targets = Vec::new();
    for c in claims {
        let FaultSpec::Cut { targets: t } = &c.fault else {
            continue;
        };
        if how == CutOff::OutsidePolicy && !outside(c) {
            continue;
        }
        if names.contains(&c.name) {
            continue;
        }
        names.push(c.name.clone());
        targets.extend(t.iter().cloned());
    }
    // every resolver, not only the first the resolver claim cuts
    if how == CutOff::AllExternal {
        for r in p.endpoints.dns_resolvers.iter().skip(1) {
            targets.push(CutTarget {
                dependency: "dnsResolvers".into(),
                host: r.clone(),
                port: 53,
                protocols: vec!["udp", "tcp"],
            });
        }
    }
    (names, targets)
}

/// A cut-off: every dependency chosen cut at once; the application must keep serving reads
/// and writes and no mail may be lost; the rest is reported as it works, queues or stops.
fn drill_cut_off(
    site: &Site,
    claims: &[Claim],
    how: CutOff,
    opts: &Options,
    mail_to: &str,
    progress: &dyn Fn(&str),
) -> ClaimResult {
    let (names, targets) = cut_off_targets(&site.resolved, claims, how);
    let label = how.label();
    let id = token(0);
    let probing = Probing::new(site, mail_to, &id);
    let mut result = ClaimResult::new(
        label.to_owned(),
        if names.is_empty() {
            "nothing: every dependency is inside the policy".to_owned()
        } else {
            names.join(", ")
        },
        "the application keeps serving reads and writes; mail waits in the queue and leaves once the cut ends; nothing is lost".to_owned(),
        String::new(),
    );
    let cutting = !targets.is_empty();
    let fault = FaultSpec::Cut { targets };
    let at = if cutting {
        every_host(site)
    } else {
        Vec::new()
    };
    result.fault = if cutting {
        fault.describe()
    } else {
        "none: nothing to cut".to_owned()
    };
    result.hosts = at.iter().map(|(h, _)| h.clone()).collect();
    progress(&format!("{label}: {}", result.fault));
    if cutting && let Err(why) = place(site, &id, &fault, &at, opts.max_fault_seconds) {
        result.reason = Some(why);
        return result;
    }
    let placed = Instant::now();
    let required = [Probe::AppServes, Probe::DatabaseWrites, Probe::MailAccepted];
    let (mut probes, detect, failed) = probe_all(&probing, &required, placed);
    let mut observed = vec![Probe::NamesResolve, Probe::BackupRuns];
    if site.resolved.components.app.public_host.is_some() {
        observed.push(Probe::HttpsServes);
    }
    for p in &observed {
        probes.push(probing.observe(p, Duration::from_secs(10)));
    }
    result.probes = probes;
    result.detect_seconds = detect;
    let left = if cutting {
        progress(&format!("{label}: removing the cut"));
        remove(site, &id, &at)
    } else {
        Vec::new()
    };
    result.fault_removed = left.is_empty();
    let lifted = Instant::now();
    // back to nominal: what the cut claims promise once their dependency returns (the queue
    // drained, a backup again and its alert resolved), then every component healthy
    let mut after: Vec<Probe> = Vec::new();
    for c in claims.iter().filter(|c| names.contains(&c.name)) {
        for p in &c.nominal {
            if !after.contains(p) {
                after.push(p.clone());
            }
        }
    }
    if !after.contains(&Probe::MailQueueEmpty) {
        after.push(Probe::MailQueueEmpty);
    }
    after.push(Probe::ServicesRunning);
    let (nominal, recovered, nominal_failed) = probe_all(&probing, &after, lifted);
    result.nominal = nominal;
    result.recover_seconds = recovered;
    result.reason = verdict(failed, &left, nominal_failed);
    result.passed = result.reason.is_none();
    result
}

/// The claims `opts` asks for among `all`, or why they cannot be drilled: checked before
/// anything is locked or touched.
pub fn check<'a>(all: &'a [Claim], opts: &Options) -> Result<Vec<&'a Claim>, ContinuityError> {
    if opts.max_fault_seconds < 30 {
        return Err(ContinuityError::TooShort(opts.max_fault_seconds));
    }
    for name in &opts.only {
        if !all.iter().any(|c| &c.name == name) {
            return Err(ContinuityError::UnknownClaim {
                unknown: name.clone(),
                known: all
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    let chosen: Vec<&Claim> = all
        .iter()
        .filter(|c| opts.only.is_empty() || opts.only.contains(&c.name))
        .collect();
    if chosen.is_empty() && opts.cut_off.is_none() {
        return Err(ContinuityError::NoClaim);
    }
    Ok(chosen)
}

/// Drill `site`'s claims (`all` it makes, `chosen` by `check`), or a cut-off, and write the
/// report into `opts.report_dir`.
pub fn drill(
    site: &Site,
    all: &[Claim],
    chosen: &[&Claim],
    opts: &Options,
    progress: &dyn Fn(&str),
) -> Result<ContinuityReport, ContinuityError> {
    let mail_to = opts
        .mail_to
        .clone()
        .unwrap_or_else(|| format!("postmaster@{}", site.resolved.components.mta.domain));
    let started_at = crate::text::now_rfc3339();
    let start = Instant::now();
    let results = match opts.cut_off {
        Some(how) => vec![drill_cut_off(site, all, how, opts, &mail_to, progress)],
        None => chosen
            .iter()
            .enumerate()
            .map(|(i, c)| drill_claim(site, c, i, opts, &mail_to, progress))
            .collect(),
    };
    let report = ContinuityReport {
        kind: KIND,
        platform: site.name().to_owned(),
        document: site
            .document
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        rendered_sha256: crate::text::sha256_hex(site.tree.sha256sums().as_bytes()),
        mode: opts.cut_off.map_or("claims", CutOff::label).to_owned(),
        started_at,
        finished_at: crate::text::now_rfc3339(),
        total_seconds: start.elapsed().as_secs_f64(),
        passed: results.iter().all(|r| r.passed),
        claims: results,
    };
    let dir = &opts.report_dir;
    let werr = |path: PathBuf| move |source| ContinuityError::Write { path, source };
    std::fs::create_dir_all(dir).map_err(werr(dir.clone()))?;
    let json = dir.join("continuity-report.json");
    let mut bytes = serde_json::to_vec_pretty(&report).expect("a continuity report serializes");
    bytes.push(b'\n');
    std::fs::write(&json, bytes).map_err(werr(json.clone()))?;
    let md = dir.join("continuity-report.md");
    std::fs::write(&md, markdown(&report)).map_err(werr(md.clone()))?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::continuity::claims::applicable;
    use crate::continuity::claims::tests::example;

    #[test]
    fn a_compliant_platform_cuts_nothing_outside_its_policy_and_everything_when_all_is_cut() {
        let (p, specs) = example("baremetal-ha.yaml", |t| t);
        let claims = applicable(&p, &specs);
        let (names, targets) = cut_off_targets(&p, &claims, CutOff::OutsidePolicy);
        assert!(names.is_empty() && targets.is_empty(), "{names:?}");
        let (names, targets) = cut_off_targets(&p, &claims, CutOff::AllExternal);
        assert!(names.contains(&"smtpRelay".to_owned()) && names.contains(&"backupS3".to_owned()));
        assert!(targets.iter().any(|t| t.dependency == "smtpFallbackRelay"));
    }

    #[test]
    fn a_dependency_in_a_country_the_policy_does_not_allow_is_cut_off_alone() {
        let (p, specs) = example("baremetal-ha.yaml", |t| {
            t.replace(
                "  endpoints:\n",
                "  endpoints:\n    ai:\n      url: https://api.llm.example.com/v1\n      operator: Example AI Inc.\n      country: US\n",
            )
        });
        let claims = applicable(&p, &specs);
        let (names, targets) = cut_off_targets(&p, &claims, CutOff::OutsidePolicy);
        assert_eq!(names, ["ai"]);
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].host, "api.llm.example.com");
        assert_eq!(targets[0].port, 443);
    }
}
