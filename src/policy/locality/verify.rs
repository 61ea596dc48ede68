//! `terroir verify`: a Platform judged against its own sovereignty policy.
//!
//! Every subject (the target, each endpoint, each image registry, and with live checks each
//! host, node, volume, load balancer and image, or each resource of a Terraform plan) becomes a
//! finding: what was observed, what the policy expects, a verdict and the evidence. A place
//! fails when its country is outside `allowedCountries` or is itself a forbidden jurisdiction
//! (US soil is under US law whoever runs it), or when its operator answers to a forbidden
//! jurisdiction wherever the address is (a US company's server in Paris is still reachable under
//! the CLOUD Act). What cannot be established (an unknown operator, an uncertain exposure, an
//! address that cannot be located) is a warning, never a pass.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Serialize;

use super::catalog::{Catalog, Operator, QualificationStatus};
use super::geodata::GeoDb;
use super::locate;
pub use super::regions::{cloud_operator_id, country_of_region, op_region, region_country};
use crate::document::Policy;
use crate::policy::sovereignty::country_allowed;
/// One judged subject, the same shape as the pre-assessment's; `basis` here is `declared` (the
/// document), `dns` (names resolved now), `live` (read from the target) or `plan` (a Terraform
/// plan).
pub use crate::policy::sovereignty::preassess::{Finding, Verdict};

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub platform: String,
    pub verdict: Verdict,
    pub findings: Vec<Finding>,
    pub attribution: String,
}

impl Report {
    pub fn new(platform: &str, findings: Vec<Finding>) -> Self {
        let verdict = findings
            .iter()
            .map(|f| f.verdict)
            .max()
            .unwrap_or(Verdict::Pass);
        Report {
            platform: platform.to_owned(),
            verdict,
            findings,
            attribution: super::geodata::ATTRIBUTION.to_owned(),
        }
    }
    pub fn failures(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.verdict == Verdict::Fail)
    }
}

/// Judges places against one policy.
pub struct Verifier<'a> {
    pub policy: &'a Policy,
    pub geo: Option<&'a GeoDb>,
    pub catalog: &'a Catalog,
    /// Names pinned to addresses (`--resolve HOST=IP`), consulted before DNS.
    pub pins: HashMap<String, Vec<IpAddr>>,
    /// Resolve names through DNS (off: judge names by the catalog and the declaration only).
    pub dns: bool,
}

impl<'a> Verifier<'a> {
    pub fn expected(&self) -> String {
        let mut s = format!("in {}", self.policy.allowed_countries.join(", "));
        if !self.policy.forbidden_jurisdictions.is_empty() {
            s.push_str(&format!(
                ", not under {} law",
                self.policy.forbidden_jurisdictions.join(", ")
            ));
        }
        s
    }

    fn forbidden(&self, jurisdiction: &str) -> bool {
        self.policy
            .forbidden_jurisdictions
            .iter()
            .any(|j| j.eq_ignore_ascii_case(jurisdiction))
    }

    /// Judge a place known by its country and operator (either may be unknown).
    #[allow(clippy::too_many_arguments)]
    pub fn place(
        &self,
        subject: impl Into<String>,
        country: Option<&str>,
        operator: Option<&Operator>,
        operator_name: Option<&str>,
        region: Option<&str>,
        basis: &'static str,
        evidence: impl Into<String>,
    ) -> Finding {
        let mut fails = Vec::new();
        let mut warns = Vec::new();
        let mut observed = Vec::new();
        match country {
            Some(c) => {
                observed.push(c.to_owned());
                if self.forbidden(c) {
                    fails.push(format!("on {c} soil, under {c} law whoever operates it"));
                } else if !country_allowed(c, &self.policy.allowed_countries) {
                    fails.push(format!("{c} is outside the allowed countries"));
                }
            }
            None => warns.push("country unknown".to_owned()),
        }
        match (operator, operator_name) {
            (Some(op), _) => {
                let exposure = op.exposure_in(region.and_then(|r| op_region(op, r)));
                observed.push(format!(
                    "operated by {} ({})",
                    op.name, exposure.jurisdiction
                ));
                if self.forbidden(&exposure.jurisdiction) {
                    fails.push(format!(
                        "{} answers to {} law: {}",
                        op.name, exposure.jurisdiction, exposure.reason
                    ));
                } else {
                    match exposure.exposed {
                        Some(true) if self.forbidden("US") => {
                            fails.push(format!("{}: {}", op.name, exposure.reason))
                        }
                        None if self.forbidden("US") => warns.push(format!(
                            "{}: CLOUD Act exposure uncertain: {}",
                            op.name, exposure.reason
                        )),
                        _ => {}
                    }
                }
            }
            (None, Some(name)) => {
                observed.push(format!("operated by {name}"));
                warns.push(format!(
                    "{name} is not in the provider catalog: its jurisdiction is unknown"
                ));
            }
            (None, None) => warns.push("operator unknown".to_owned()),
        }
        let (verdict, why) = if !fails.is_empty() {
            (Verdict::Fail, fails.join("; "))
        } else if !warns.is_empty() {
            (Verdict::Warn, warns.join("; "))
        } else {
            (Verdict::Pass, String::new())
        };
        let mut evidence = evidence.into();
        if !why.is_empty() {
            evidence = if evidence.is_empty() {
                why
            } else {
                format!("{why}; {evidence}")
            };
        }
        Finding {
            subject: subject.into(),
            observed: observed.join(", "),
            expected: self.expected(),
            verdict,
            basis,
            evidence,
        }
    }

    /// Judge one address from the geodata and the catalog.
    pub fn address(&self, subject: impl Into<String>, ip: IpAddr, basis: &'static str) -> Finding {
        let subject = subject.into();
        let Some(geo) = self.geo else {
            return Finding {
                subject,
                observed: ip.to_string(),
                expected: self.expected(),
                verdict: Verdict::Warn,
                basis,
                evidence: "no geodata: run `terroir geodata update` or pass --geodata DIR".into(),
            };
        };
        let loc = locate::judge(ip, geo, self.catalog);
        if loc.country.is_none() && loc.asn.is_none() {
            return Finding {
                subject,
                observed: ip.to_string(),
                expected: self.expected(),
                verdict: Verdict::Warn,
                basis,
                evidence: loc.reason,
            };
        }
        let op = loc.asn.and_then(|a| self.catalog.by_asn(a));
        let asn = loc
            .asn
            .map(|a| format!("AS{a} {}", loc.organisation.clone().unwrap_or_default()))
            .unwrap_or_else(|| "no ASN".into());
        let mut f = self.place(
            subject,
            loc.country.as_deref(),
            op,
            loc.organisation.as_deref(),
            None,
            basis,
            format!("{ip}: {asn}"),
        );
        f.observed = format!("{ip}: {}", f.observed);
        f
    }

    /// Addresses of a host name: pinned, else DNS (when allowed). Literal addresses pass through.
    pub fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, locate::ResolveError> {
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        if let Some(ips) = self.pins.get(&host.to_ascii_lowercase()) {
            return Ok(ips.clone());
        }
        if !self.dns {
            return Ok(Vec::new());
        }
        locate::resolve(host)
    }

    /// Judge a service reached by name: who the catalog says operates the name, what was
    /// declared, and every address the name resolves to.
    pub fn host(
        &self,
        subject: &str,
        host: &str,
        declared_operator: Option<&str>,
        declared_country: Option<&str>,
    ) -> Vec<Finding> {
        let mut out = Vec::new();
        let by_host = self.catalog.by_host(host);
        let by_name = declared_operator.and_then(|n| self.catalog.by_name(n));
        let op = by_host.or(by_name);
        let evidence = match (by_host, declared_operator) {
            (Some(op), _) => format!("{host} is served by {} (provider catalog)", op.name),
            (None, Some(name)) => format!("declared operator {name}"),
            (None, None) => String::new(),
        };
        out.push(self.place(
            subject,
            declared_country,
            op,
            declared_operator,
            None,
            "declared",
            evidence,
        ));
        match self.addresses(host) {
            Ok(ips) => {
                for ip in ips {
                    out.push(self.address(format!("{subject} ({host})"), ip, "dns"));
                }
            }
            Err(e) => out.push(Finding {
                subject: format!("{subject} ({host})"),
                observed: "does not resolve".into(),
                expected: self.expected(),
                verdict: Verdict::Warn,
                basis: "dns",
                evidence: crate::text::error_chain(&e),
            }),
        }
        out
    }
}

/// The host of a URL or `host[:port]` (registries are often written without a scheme).
pub fn host_of(url: &str) -> Option<String> {
    let with_scheme = if url.contains("://") {
        url.to_owned()
    } else {
        format!("https://{url}")
    };
    url::Url::parse(&with_scheme)
        .ok()?
        .host_str()
        .map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase())
}

/// Findings for the qualifications the policy requires of the target's provider.
pub fn qualifications(
    v: &Verifier,
    subject: &str,
    op: Option<&Operator>,
    region: Option<&str>,
    basis: &'static str,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for q in &v.policy.required_qualifications {
        let wanted = match q {
            crate::document::Qualification::Secnumcloud => "SecNumCloud",
            crate::document::Qualification::Hds => "HDS",
            crate::document::Qualification::Iso27001 => "ISO 27001",
        };
        let (verdict, observed, evidence) = match op {
            None => (
                Verdict::Warn,
                "operator unknown".to_owned(),
                format!("cannot tell whether it holds {wanted}"),
            ),
            Some(op) => {
                let offers: Vec<_> = op
                    .qualifications
                    .iter()
                    .filter(|o| o.name.eq_ignore_ascii_case(wanted))
                    .collect();
                let in_region = |o: &super::catalog::QualifiedOffer| {
                    o.regions.is_empty()
                        || region.is_some_and(|r| {
                            o.regions.iter().any(|q| {
                                r.to_ascii_lowercase().starts_with(&q.to_ascii_lowercase())
                            })
                        })
                };
                let qualified = offers
                    .iter()
                    .find(|o| o.status == QualificationStatus::Qualified && in_region(o));
                match qualified {
                    Some(o) => (
                        if o.verified { Verdict::Pass } else { Verdict::Warn },
                        format!("{} {wanted}{}", op.name, o.offer.as_ref().map(|x| format!(" ({x})")).unwrap_or_default()),
                        format!("{}{}", o.source, if o.verified { "" } else { "; unverified in the provider catalog" }),
                    ),
                    // Nothing recorded: unknown, not disproved.
                    None if offers.is_empty() => (
                        Verdict::Warn,
                        format!("no {wanted} offer of {} is recorded", op.name),
                        "the provider catalog records no such qualification; check the provider's certificate".to_owned(),
                    ),
                    None => {
                        let elsewhere: Vec<String> = offers.iter().map(|o| format!("{:?} in {}", o.status, if o.regions.is_empty() { "all regions".into() } else { o.regions.join(", ") })).collect();
                        (
                            Verdict::Fail,
                            format!("{} has no qualified {wanted} offer{}", op.name, region.map(|r| format!(" in {r}")).unwrap_or_default()),
                            if elsewhere.is_empty() { "provider catalog".to_owned() } else { format!("provider catalog: {}", elsewhere.join("; ")) },
                        )
                    }
                }
            }
        };
        out.push(Finding {
            subject: format!("{subject}: {wanted}"),
            observed,
            expected: format!("{wanted} required by the policy"),
            verdict,
            basis,
            evidence,
        });
    }
    out
}

/// Findings from what the document declares, names resolved through DNS where allowed.
pub fn declared(p: &crate::document::Platform, images: &[String], v: &Verifier) -> Vec<Finding> {
    let mut out = Vec::new();
    let catalog = v.catalog;
    let t = &p.spec.target;
    if let Some(k) = t.kubernetes() {
        match &k.location {
            Some(loc) => {
                let op = loc.operator.as_deref().and_then(|n| catalog.by_name(n));
                out.push(v.place(
                    "Kubernetes cluster",
                    Some(&loc.country),
                    op,
                    loc.operator.as_deref(),
                    loc.site.as_deref(),
                    "declared",
                    "target.kubernetes.location",
                ));
                out.extend(qualifications(
                    v,
                    "Kubernetes cluster",
                    op,
                    loc.site.as_deref(),
                    "declared",
                ));
            }
            None => out.push(v.place(
                "Kubernetes cluster",
                None,
                None,
                None,
                None,
                "declared",
                "no target.kubernetes.location: use `verify --live` to read the nodes",
            )),
        }
    }
    if let Some(b) = t.baremetal() {
        // Each host where it stands: its own location, else the target's (replicas may stand
        // in another site, another country, with another operator).
        for (i, h) in b.hosts.iter().enumerate() {
            let loc = h.location(b.location.as_ref());
            let (country, op_name, site) = match loc {
                Some(l) => (
                    Some(l.country.as_str()),
                    l.operator.as_deref(),
                    l.site.as_deref(),
                ),
                None => (None, None, None),
            };
            let op = op_name.and_then(|n| catalog.by_name(n));
            let subject = format!("host {} location", h.name);
            let evidence = if h.location.is_some() {
                format!(
                    "target.baremetal.hosts[{i}].location (host {}'s own)",
                    h.name
                )
            } else if b.location.is_some() {
                format!(
                    "target.baremetal.location (host {} declares none of its own)",
                    h.name
                )
            } else {
                format!(
                    "no location for host {}: declare target.baremetal.location or hosts[{i}].location",
                    h.name
                )
            };
            let mut f = v.place(&subject, country, op, op_name, site, "declared", evidence);
            if let Some(site) = site {
                f.observed = format!("{}, site {site}", f.observed);
            }
            out.push(f);
            out.extend(qualifications(v, &subject, op, site, "declared"));
        }
    }
    if let Some(c) = t.secnumcloud() {
        let id = cloud_operator_id(c.provider);
        let op = catalog.by_name(id);
        let country = country_of_region(catalog, id, &c.region);
        let subject = format!(
            "{} region {}",
            op.map(|o| o.name.as_str()).unwrap_or(id),
            c.region
        );
        let mut f = v.place(
            &subject,
            country.as_deref(),
            op,
            Some(id),
            Some(&c.region),
            "declared",
            "target.secnumcloud",
        );
        if country.is_none() && f.verdict == Verdict::Pass {
            f.verdict = Verdict::Warn;
            f.evidence = format!("region {} is not known to terroir", c.region);
        }
        out.push(f);
        out.extend(qualifications(v, &subject, op, Some(&c.region), "declared"));
        let b = &c.state_backend;
        out.extend(backend(
            "s3",
            &serde_json::json!({"endpoints": {"s3": b.endpoint}, "region": b.region}),
            v,
            "declared",
        ));
    }
    let e = &p.spec.endpoints;
    for named in e.named() {
        if let Some(host) = host_of(&named.endpoint.url) {
            out.extend(v.host(
                named.label,
                &host,
                named.endpoint.operator.as_deref(),
                named.endpoint.country.as_deref(),
            ));
        }
    }
    if let Some(s3) = &e.backup_s3
        && let Some(host) = host_of(&s3.url)
    {
        out.extend(v.host(
            "backup storage",
            &host,
            s3.operator.as_deref(),
            s3.country.as_deref(),
        ));
    }
    for r in &e.dns_resolvers {
        if let Ok(ip) = r.parse::<IpAddr>() {
            out.push(v.address(format!("DNS resolver {r}"), ip, "declared"));
        }
    }
    let mut registries: Vec<String> = images.iter().filter_map(|i| image_registry(i)).collect();
    registries.sort();
    registries.dedup();
    let declared_registries: Vec<String> =
        [Some(&e.image_registry), e.image_registry_mirror.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|r| host_of(&r.url))
            .collect();
    for r in registries
        .into_iter()
        .filter(|r| !declared_registries.contains(r))
    {
        out.extend(v.host("container image registry", &r, None, None));
    }
    out
}

/// The registry host of an image reference (`docker.io` when none is named).
pub fn image_registry(image: &str) -> Option<String> {
    let first = image.split('/').next()?;
    if image.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost") {
        Some(
            first
                .split(':')
                .next()
                .unwrap_or(first)
                .to_ascii_lowercase(),
        )
    } else {
        Some("docker.io".into())
    }
}

/// Terraform provider source address (`registry.terraform.io/outscale/outscale`) to catalog id.
fn terraform_operator(provider_name: &str, universe_domain: Option<&str>) -> Option<&'static str> {
    let source = provider_name.rsplit('/').take(2).collect::<Vec<_>>();
    let (kind, namespace) = (
        source.first().copied().unwrap_or(""),
        source.get(1).copied().unwrap_or(""),
    );
    match (namespace.to_ascii_lowercase().as_str(), kind) {
        ("outscale", _) => Some("outscale"),
        ("ovh", _) => Some("ovhcloud"),
        ("cloud-temple", _) => Some("cloud-temple"),
        ("scaleway", _) => Some("scaleway"),
        ("hashicorp", "google" | "google-beta") => {
            Some(if universe_domain == Some("s3nsapis.fr") {
                "s3ns"
            } else {
                "google"
            })
        }
        ("hashicorp", "aws") => Some("amazon"),
        ("hashicorp", "azurerm") => Some("microsoft"),
        _ => None,
    }
}

/// What `plan` was given is not a Terraform plan.
#[derive(Debug, thiserror::Error)]
#[error(
    "not a Terraform plan in JSON: `format_version` is missing (write it with `terraform show -json PLAN`)"
)]
pub struct NotAPlan;

/// Findings from a Terraform plan in JSON (`terraform show -json`): the provider and region of
/// every resource the plan creates or changes.
pub fn plan(plan: &serde_json::Value, v: &Verifier) -> Result<Vec<Finding>, NotAPlan> {
    use serde_json::Value;
    if plan.get("format_version").is_none() {
        return Err(NotAPlan);
    }
    let configs = plan
        .pointer("/configuration/provider_config")
        .and_then(Value::as_object);
    // A provider setting: a constant, or a variable followed up through the module calls to
    // the root module's value (providers configured inside a module read its inputs).
    let provider_setting =
        |provider_name: &str, module: Option<&str>, key: &str| -> Option<String> {
            let cfgs = configs?;
            let cfg = cfgs
                .values()
                .filter(|c| c["full_name"] == provider_name)
                .max_by_key(|c| (c["module_address"].as_str() == module) as u8)?;
            let scope: Vec<String> = cfg["module_address"]
                .as_str()
                .map(module_names)
                .unwrap_or_default();
            expression_value(plan, &scope, cfg.pointer(&format!("/expressions/{key}"))?)
        };
    let mut out = Vec::new();
    let empty = Vec::new();
    for rc in plan["resource_changes"].as_array().unwrap_or(&empty) {
        let actions: Vec<&str> = rc
            .pointer("/change/actions")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if !actions.iter().any(|a| *a == "create" || *a == "update") {
            continue;
        }
        if rc["mode"] == "data" {
            continue;
        }
        let address = rc["address"].as_str().unwrap_or("?");
        let provider_name = rc["provider_name"].as_str().unwrap_or("");
        let module = rc["module_address"].as_str();
        let after = rc.pointer("/change/after").cloned().unwrap_or(Value::Null);
        let universe = provider_setting(provider_name, module, "universe_domain");
        let Some(id) = terraform_operator(provider_name, universe.as_deref()) else {
            // Providers that create nothing somewhere (random, tls, null, Terraform's own
            // terraform_data...) are not places.
            if [
                "hashicorp/random",
                "hashicorp/tls",
                "hashicorp/null",
                "hashicorp/time",
                "hashicorp/local",
                "hashicorp/cloudinit",
                "builtin/terraform",
            ]
            .iter()
            .any(|p| provider_name.ends_with(p))
            {
                continue;
            }
            out.push(v.place(
                format!("resource {address}"),
                None,
                None,
                Some(provider_name),
                None,
                "plan",
                format!("provider {provider_name}"),
            ));
            continue;
        };
        let region = [
            "region",
            "subregion_name",
            "zone",
            "location",
            "availability_zone",
            "region_name",
        ]
        .iter()
        .find_map(|k| after.get(*k).and_then(Value::as_str).map(str::to_owned))
        .or_else(|| provider_setting(provider_name, module, "region"));
        let country = region
            .as_deref()
            .and_then(|r| country_of_region(v.catalog, id, r));
        let op = v.catalog.by_name(id);
        let evidence = format!(
            "provider {provider_name}, {}",
            region
                .as_deref()
                .map(|r| format!("region {r}"))
                .unwrap_or_else(|| "no region".into())
        );
        let subject = format!("resource {address}");
        let mut f = v.place(
            &subject,
            country.as_deref(),
            op,
            Some(id),
            region.as_deref(),
            "plan",
            evidence,
        );
        if country.is_none() && f.verdict == Verdict::Pass {
            f.verdict = Verdict::Warn;
        }
        out.push(f);
        // every resource must be in a qualified offer when the policy requires one
        out.extend(qualifications(v, &subject, op, region.as_deref(), "plan"));
    }
    Ok(out)
}

/// `module.a.module.b` → ["a", "b"].
fn module_names(address: &str) -> Vec<String> {
    address
        .split('.')
        .collect::<Vec<_>>()
        .chunks(2)
        .filter(|c| c.len() == 2 && c[0] == "module")
        .map(|c| c[1].to_owned())
        .collect()
}

/// The value of a configuration expression in `scope` (module names from the root): a constant,
/// or `var.X` followed up to the module call that sets it, and at the root to the plan's
/// variables. Anything else (computed values) is unknown.
fn expression_value(
    plan: &serde_json::Value,
    scope: &[String],
    expr: &serde_json::Value,
) -> Option<String> {
    use serde_json::Value;
    if let Some(c) = expr.get("constant_value") {
        return c.as_str().map(str::to_owned);
    }
    let var = expr["references"]
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .find_map(|r| r.strip_prefix("var."))?;
    let var = var.split('.').next().unwrap_or(var);
    match scope.split_last() {
        None => plan
            .pointer(&format!("/variables/{var}/value"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        Some((last, parent)) => {
            let mut module = plan.pointer("/configuration/root_module")?;
            for name in parent {
                module = module.pointer(&format!("/module_calls/{name}/module"))?;
            }
            let call_expr = module.pointer(&format!("/module_calls/{last}/expressions/{var}"))?;
            expression_value(plan, parent, call_expr)
        }
    }
}

/// Judge where Terraform keeps its state. `kind` is the backend type, `config` its settings as
/// `.terraform/terraform.tfstate` records them after `init` (or as the document declares them).
/// The state lists every resource and often holds secrets: it must stay with the client.
pub fn backend(
    kind: &str,
    config: &serde_json::Value,
    v: &Verifier,
    basis: &'static str,
) -> Vec<Finding> {
    use serde_json::Value;
    let subject = format!("Terraform state backend ({kind})");
    let finding = |verdict: Verdict, observed: String, evidence: String| Finding {
        subject: subject.clone(),
        observed,
        expected: v.expected(),
        verdict,
        basis,
        evidence,
    };
    let private = |host: &str| match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback() || ip.is_private() || ip.is_link_local(),
        Ok(IpAddr::V6(ip)) => ip.is_loopback() || (ip.segments()[0] & 0xfe00) == 0xfc00,
        Err(_) => host == "localhost",
    };
    match kind {
        "local" => vec![finding(
            Verdict::Pass,
            "a file beside the configuration".into(),
            "local backend: the state stays on the machine that runs terroir".into(),
        )],
        "remote" | "cloud" => {
            let host = config["hostname"].as_str().unwrap_or("app.terraform.io");
            if host == "app.terraform.io" {
                vec![finding(
                    Verdict::Fail,
                    "HCP Terraform (app.terraform.io)".into(),
                    "a SaaS backend run by HashiCorp, an IBM company (US): the state, with every resource and often secrets, leaves the client".into(),
                )]
            } else {
                v.host(&subject, host, None, None)
            }
        }
        "s3" => {
            let region = config["region"].as_str().unwrap_or_default();
            let endpoint = config
                .pointer("/endpoints/s3")
                .and_then(Value::as_str)
                .or_else(|| config["endpoint"].as_str())
                .filter(|e| !e.is_empty());
            match endpoint {
                None => {
                    let op = v.catalog.by_name("amazon");
                    let country = country_of_region(v.catalog, "amazon", region);
                    vec![v.place(
                        &subject,
                        country.as_deref(),
                        op,
                        Some("amazon"),
                        Some(region),
                        basis,
                        format!("Amazon S3, region {region}"),
                    )]
                }
                Some(endpoint) => {
                    let Some(host) = host_of(endpoint) else {
                        return vec![finding(
                            Verdict::Fail,
                            endpoint.to_owned(),
                            "not a URL".into(),
                        )];
                    };
                    if private(&host) {
                        return vec![finding(
                            Verdict::Pass,
                            endpoint.to_owned(),
                            "a private or loopback address: the client's own network".into(),
                        )];
                    }
                    let op = v.catalog.by_host(&host);
                    let country = op.and_then(|o| country_of_region(v.catalog, &o.id, region));
                    let mut out = vec![v.place(
                        &subject,
                        country.as_deref(),
                        op,
                        None,
                        Some(region),
                        basis,
                        format!("endpoint {endpoint}, region {region}"),
                    )];
                    if let Ok(ips) = v.addresses(&host) {
                        out.extend(
                            ips.into_iter()
                                .map(|ip| v.address(format!("{subject} ({host})"), ip, "dns")),
                        );
                    }
                    out
                }
            }
        }
        "gcs" | "azurerm" => {
            let id = if kind == "gcs" { "google" } else { "microsoft" };
            vec![v.place(
                &subject,
                None,
                v.catalog.by_name(id),
                Some(id),
                None,
                basis,
                format!("{kind} backend"),
            )]
        }
        "http" => match config["address"].as_str().and_then(host_of) {
            Some(h) if private(&h) => vec![finding(
                Verdict::Pass,
                h,
                "a private or loopback address: the client's own network".into(),
            )],
            Some(h) => v.host(&subject, &h, None, None),
            None => vec![finding(
                Verdict::Warn,
                "no address".into(),
                "http backend without an address".into(),
            )],
        },
        other => vec![finding(
            Verdict::Warn,
            other.to_owned(),
            format!("terroir does not judge `{other}` backends: check where it keeps the state"),
        )],
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ha(edit: impl Fn(String) -> String) -> crate::document::Platform {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/baremetal-ha.yaml"
        ))
        .unwrap();
        crate::document::load_str("baremetal-ha.yaml", &edit(text))
            .map(|l| l.platform)
            .unwrap_or_else(|d| panic!("{d:?}"))
    }

    fn judged(p: &crate::document::Platform) -> Vec<Finding> {
        let v = Verifier {
            policy: &p.spec.sovereignty.policy,
            geo: None,
            catalog: Catalog::builtin(),
            pins: HashMap::new(),
            dns: false,
        };
        declared(p, &[], &v)
    }

    #[test]
    fn each_host_is_judged_where_it_stands() {
        let findings = judged(&ha(|t| t));
        let hosts: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.subject.starts_with("host ") && f.subject.ends_with(" location"))
            .collect();
        let subjects: Vec<&str> = hosts.iter().map(|f| f.subject.as_str()).collect();
        assert_eq!(
            subjects,
            [
                "host db1 location",
                "host db2 location",
                "host db3 location",
                "host ops1 location",
                "host ops2 location"
            ]
        );
        assert!(
            hosts.iter().all(|f| f.verdict == Verdict::Pass),
            "{hosts:#?}"
        );
        assert!(
            hosts[2]
                .evidence
                .contains("hosts[2].location (host db3's own)"),
            "{}",
            hosts[2].evidence
        );
        assert!(
            hosts[0].evidence.contains("target.baremetal.location"),
            "{}",
            hosts[0].evidence
        );
    }

    #[test]
    fn a_replica_standing_outside_the_allowed_countries_fails_with_its_host_named() {
        let p = ha(|t| {
            t.replacen(
                "            country: FR\n            operator: OVHcloud\n            site: Gravelines GRA-11\n",
                "            country: CH\n            operator: Infomaniak\n            site: Geneva\n",
                1,
            )
        });
        let findings = judged(&p);
        let failing: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.verdict == Verdict::Fail)
            .collect();
        assert_eq!(failing.len(), 1, "{failing:#?}");
        let f = failing[0];
        assert_eq!(f.subject, "host db3 location");
        assert!(f.observed.starts_with("CH"), "{}", f.observed);
        assert_eq!(f.expected, "in EU, not under US law");
        assert!(
            f.evidence.contains("CH is outside the allowed countries")
                && f.evidence.contains("host db3's own"),
            "{}",
            f.evidence
        );
    }
}
