//! The pre-assessment written with every render: the policy judged against what the document
//! declares (locations, operators, organisational facts). Nothing here is probed, so every
//! finding is labelled `declared`; live verification replaces it with evidence. One grid
//! criterion can be `verified` all the same: geographic redundancy, when the topology terroir
//! renders puts the database replicas in two or more sites inside the EU (see `topology`).

use serde::Serialize;

use super::{country_allowed, in_eu};
use crate::document::*;
use crate::pipeline::resolve::ResolvedPlatform;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub subject: String,
    pub observed: String,
    pub expected: String,
    pub verdict: Verdict,
    /// Where the observation comes from: `declared` (the document) here; `terroir verify` adds
    /// `dns`, `live` and `plan`.
    pub basis: &'static str,
    pub evidence: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Criterion {
    pub axis: &'static str,
    pub criterion: &'static str,
    pub points: u32,
    pub max: u32,
    /// `verified` when terroir establishes it (the topology it renders), `declared` when the
    /// organisation says so, `unknown` when nothing was said.
    pub basis: &'static str,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Grid {
    pub criteria: Vec<Criterion>,
    pub total: u32,
    pub max: u32,
    /// `complete` (90-100), `partial` (70-89) or `insufficient` (< 70).
    pub band: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Assessment {
    pub platform: String,
    pub basis: &'static str,
    pub policy: Policy,
    pub findings: Vec<Finding>,
    pub grid: Grid,
    pub verdict: Verdict,
    /// Where each role runs, and the database's replicas and their sites.
    pub topology: super::topology::Topology,
}

/// Facts about the SecNumCloud providers Terroir provisions on (see docs/providers for sources).
struct CloudFacts {
    operator: &'static str,
    country: &'static str,
    qualified_regions: &'static [&'static str],
}

fn cloud_facts(p: CloudProvider) -> CloudFacts {
    match p {
        CloudProvider::Outscale => CloudFacts {
            operator: "3DS Outscale",
            country: "FR",
            qualified_regions: &["cloudgouv-eu-west-1"],
        },
        CloudProvider::Ovhcloud => CloudFacts {
            operator: "OVHcloud",
            country: "FR",
            qualified_regions: &[],
        },
        CloudProvider::CloudTemple => CloudFacts {
            operator: "Cloud Temple",
            country: "FR",
            qualified_regions: &["fr1"],
        },
        CloudProvider::S3ns => CloudFacts {
            operator: "S3NS (Thales)",
            country: "FR",
            qualified_regions: &["u-france-east1"],
        },
    }
}

fn locate(
    subject: String,
    country: Option<&str>,
    operator: Option<&str>,
    policy: &Policy,
) -> Finding {
    let expected = format!(
        "in {}{}",
        policy.allowed_countries.join(", "),
        if policy.forbidden_jurisdictions.is_empty() {
            String::new()
        } else {
            format!(", not under {}", policy.forbidden_jurisdictions.join(", "))
        }
    );
    let op = operator
        .map(|o| format!(", operated by {o}"))
        .unwrap_or_default();
    match country {
        None => Finding {
            subject,
            observed: format!("country not declared{op}"),
            expected,
            verdict: Verdict::Warn,
            basis: "declared",
            evidence: "no `country` in the document; live verification will locate it".into(),
        },
        Some(c) => {
            let forbidden = policy.forbidden_jurisdictions.iter().any(|j| j == c);
            let verdict = if forbidden || !country_allowed(c, &policy.allowed_countries) {
                Verdict::Fail
            } else {
                Verdict::Pass
            };
            Finding {
                subject,
                observed: format!("{c}{op}"),
                expected,
                verdict,
                basis: "declared",
                evidence: "declared in the Platform document".into(),
            }
        }
    }
}

pub fn assess(p: &Platform, r: &ResolvedPlatform) -> Assessment {
    let policy = &p.spec.sovereignty.policy;
    let mut findings = Vec::new();
    // Every country the platform is declared in (one per host location on bare metal).
    let mut hosting_countries: Vec<String> = Vec::new();
    let t = &p.spec.target;
    if let Some(k) = t.kubernetes() {
        let loc = k.location.as_ref();
        hosting_countries.extend(loc.map(|l| l.country.clone()));
        findings.push(locate(
            format!("Kubernetes cluster (namespace {})", k.namespace),
            loc.map(|l| l.country.as_str()),
            loc.and_then(|l| l.operator.as_deref()),
            policy,
        ));
    }
    if let Some(b) = t.baremetal() {
        for h in &r.hosts {
            // each host where it stands: its own location, else the target's
            let loc = b
                .hosts
                .iter()
                .find(|d| d.name == h.name)
                .and_then(|d| d.location(b.location.as_ref()))
                .or(b.location.as_ref());
            hosting_countries.extend(loc.map(|l| l.country.clone()));
            let mut f = locate(
                format!("host {} ({})", h.name, h.address),
                loc.map(|l| l.country.as_str()),
                loc.and_then(|l| l.operator.as_deref()),
                policy,
            );
            if let Some(site) = loc.and_then(|l| l.site.as_deref()) {
                f.observed = format!("{}, site {site}", f.observed);
            }
            findings.push(f);
        }
        if b.hosts
            .iter()
            .any(|h| h.location(b.location.as_ref()).is_none())
        {
            hosting_countries.clear();
        }
    }
    if let Some(s) = t.secnumcloud() {
        let facts = cloud_facts(s.provider);
        hosting_countries.push(facts.country.into());
        findings.push(locate(
            format!("{} region {}", s.provider.as_str(), s.region),
            Some(facts.country),
            Some(facts.operator),
            policy,
        ));
        if policy
            .required_qualifications
            .contains(&Qualification::Secnumcloud)
        {
            let qualified = facts.qualified_regions.contains(&s.region.as_str());
            findings.push(Finding {
                subject: format!("{} region {} qualification", s.provider.as_str(), s.region),
                observed: if qualified {
                    "SecNumCloud-qualified offer".into()
                } else {
                    "no SecNumCloud-qualified offer known for this region".into()
                },
                expected: "SecNumCloud".into(),
                verdict: if qualified {
                    Verdict::Pass
                } else {
                    Verdict::Fail
                },
                basis: "declared",
                evidence:
                    "provider catalog shipped with Terroir (ANSSI list, to re-check before release)"
                        .into(),
            });
        }
        findings.push(locate("Terraform state backend".into(), None, None, policy));
    }
    if t.secnumcloud().is_none() {
        let certs = &p.spec.sovereignty.declared.datacentre_certifications;
        for q in &policy.required_qualifications {
            let name = serde_json::to_value(q)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let held = certs.contains(q);
            findings.push(Finding {
                subject: format!("hosting qualification {name}"),
                observed: if held {
                    format!("{name} declared for the datacentres")
                } else {
                    format!("{name} not declared")
                },
                expected: name.clone(),
                verdict: if held { Verdict::Pass } else { Verdict::Fail },
                basis: "declared",
                evidence: "spec.sovereignty.declared.datacentreCertifications".into(),
            });
        }
    }
    let e = &p.spec.endpoints;
    for n in e.named() {
        findings.push(locate(
            format!("{} {}", n.label, n.endpoint.url),
            n.endpoint.country.as_deref(),
            n.endpoint.operator.as_deref(),
            policy,
        ));
    }
    if let Some(s3) = &e.backup_s3 {
        findings.push(locate(
            format!("backup storage {} (bucket {})", s3.url, s3.bucket),
            s3.country.as_deref(),
            s3.operator.as_deref(),
            policy,
        ));
    }
    // Substitutable, open components and degraded modes.
    if r.components.mta.enabled {
        let fallback = e.smtp_fallback_relay.is_some() || e.smtp_relay.is_none();
        findings.push(Finding {
            subject: "mail delivery degraded mode".into(),
            observed: if e.smtp_relay.is_none() {
                "Postfix delivers directly (no relay)".into()
            } else if fallback {
                "Postfix with a fallback relay".into()
            } else {
                "Postfix with a single relay".into()
            },
            expected: "an open MTA with a fallback when the relay fails".into(),
            verdict: if fallback {
                Verdict::Pass
            } else {
                Verdict::Warn
            },
            basis: "declared",
            evidence: "spec.endpoints.smtpRelay / smtpFallbackRelay".into(),
        });
    }
    findings.push(Finding {
        subject: "image registry degraded mode".into(),
        observed: if e.image_registry_mirror.is_some() {
            "mirror registry declared".into()
        } else {
            "single registry".into()
        },
        expected: "a mirror registry when the main one is unreachable".into(),
        verdict: if e.image_registry_mirror.is_some() {
            Verdict::Pass
        } else {
            Verdict::Warn
        },
        basis: "declared",
        evidence: "spec.endpoints.imageRegistryMirror".into(),
    });

    hosting_countries.sort();
    hosting_countries.dedup();
    let topology = super::topology::of(p);
    let grid = grid(p, &hosting_countries, &topology, &findings);
    let verdict = findings
        .iter()
        .map(|f| f.verdict)
        .max()
        .unwrap_or(Verdict::Pass);
    Assessment {
        platform: p.metadata.name.clone(),
        basis: "declared",
        policy: policy.clone(),
        findings,
        grid,
        verdict,
        topology,
    }
}

fn grid(
    p: &Platform,
    hosting_countries: &[String],
    topology: &super::topology::Topology,
    findings: &[Finding],
) -> Grid {
    let d = &p.spec.sovereignty.declared;
    let mut criteria = Vec::new();
    fn add(
        criteria: &mut Vec<Criterion>,
        axis: &'static str,
        criterion: &'static str,
        max: u32,
        fact: Option<bool>,
        reason: String,
    ) {
        let (points, basis) = match fact {
            Some(true) => (max, "declared"),
            Some(false) => (0, "declared"),
            None => (0, "unknown"),
        };
        criteria.push(Criterion {
            axis,
            criterion,
            points,
            max,
            basis,
            reason,
        });
    }
    add(
        &mut criteria,
        "hosting",
        "data hosted in France or the EU",
        10,
        (!hosting_countries.is_empty()).then(|| hosting_countries.iter().all(|c| in_eu(c))),
        if hosting_countries.is_empty() {
            "no hosting country declared".into()
        } else {
            format!("hosting declared in {}", hosting_countries.join(", "))
        },
    );
    let certs = &d.datacentre_certifications;
    add(
        &mut criteria,
        "hosting",
        "ISO 27001 certified datacentres",
        5,
        if certs.is_empty() {
            None
        } else {
            Some(certs.contains(&Qualification::Iso27001))
        },
        "spec.sovereignty.declared.datacentreCertifications".into(),
    );
    let redundancy = &topology.database.redundancy;
    match redundancy.fact() {
        // established by the topology terroir renders: verified, whatever was declared
        Some(fact) => criteria.push(Criterion {
            axis: "hosting",
            criterion: "geographic redundancy inside the EU only",
            points: if fact { 5 } else { 0 },
            max: 5,
            basis: "verified",
            reason: redundancy.reason.clone(),
        }),
        None => add(
            &mut criteria,
            "hosting",
            "geographic redundancy inside the EU only",
            5,
            d.eu_only_redundancy,
            format!(
                "{}; the organisation's declaration stands (spec.sovereignty.declared.euOnlyRedundancy)",
                redundancy.reason
            ),
        ),
    }
    add(
        &mut criteria,
        "hosting",
        "hosting contract under French law",
        10,
        d.hosting_contract_law.as_ref().map(|l| l == "FR"),
        d.hosting_contract_law
            .as_ref()
            .map_or("no governing law declared".into(), |l| {
                format!("contract law declared: {l}")
            }),
    );
    let pb = d.publisher.as_ref();
    add(
        &mut criteria,
        "publisher",
        "company under EU law",
        10,
        pb.map(|x| in_eu(&x.country)),
        pb.map_or("no publisher declared".into(), |x| {
            format!("{} incorporated in {}", x.name, x.country)
        }),
    );
    add(
        &mut criteria,
        "publisher",
        "EU shareholding above 50%",
        10,
        pb.map(|x| x.eu_shareholding_percent > 50),
        pb.map_or("no publisher declared".into(), |x| {
            format!("{}% EU shareholding", x.eu_shareholding_percent)
        }),
    );
    add(
        &mut criteria,
        "publisher",
        "no US subsidiary",
        5,
        pb.map(|x| !x.us_subsidiary),
        "spec.sovereignty.declared.publisher.usSubsidiary".into(),
    );
    add(
        &mut criteria,
        "technology",
        "auditable source code",
        10,
        d.source_code_auditable,
        "spec.sovereignty.declared.sourceCodeAuditable".into(),
    );
    let located: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.evidence.starts_with("declared in"))
        .collect();
    let us = located.iter().any(|f| f.observed.starts_with("US"));
    let unknown = findings
        .iter()
        .any(|f| f.observed.starts_with("country not declared"));
    add(
        &mut criteria,
        "technology",
        "no dependency on a US cloud",
        10,
        if us {
            Some(false)
        } else if unknown {
            None
        } else {
            Some(true)
        },
        if us {
            "a dependency is declared in the US".into()
        } else if unknown {
            "some dependencies have no declared country".into()
        } else {
            "every dependency is declared outside the US".into()
        },
    );
    add(&mut criteria, "legal", "outside the reach of the US CLOUD Act", 15, if us { Some(false) } else { None }, "needs the operators' jurisdictions, which live verification establishes; declared locations alone cannot show it".into());
    let quals = &p.spec.sovereignty.policy.required_qualifications;
    let qualified = p.spec.target.secnumcloud().is_some()
        || certs.contains(&Qualification::Hds)
        || certs.contains(&Qualification::Secnumcloud);
    add(
        &mut criteria,
        "legal",
        "SecNumCloud or HDS qualification",
        10,
        if qualified || !quals.is_empty() {
            Some(qualified)
        } else {
            None
        },
        "target provider and declared certifications".into(),
    );
    let total = criteria.iter().map(|c| c.points).sum();
    let max = criteria.iter().map(|c| c.max).sum();
    let band = match total {
        90.. => "complete",
        70..=89 => "partial",
        _ => "insufficient",
    };
    Grid {
        criteria,
        total,
        max,
        band,
    }
}
