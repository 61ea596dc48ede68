//! The continuity claims: what the platform promises while each dependency or redundant member
//! is down, and the probes that show it. They live in the blueprint (`continuity:` in
//! blueprint.yaml), so that the dependency report, the operations runbook and the drill read the
//! same words and cannot drift apart. [`applicable`] picks the claims a resolved platform makes.

use serde::Serialize;

pub use super::spec::{ClaimSpec, Member, Probe};
use crate::pipeline::resolve::{ResolvedEndpoint, ResolvedPlatform};

/// One address (a name or an IP literal) and port the fault makes unreachable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CutTarget {
    /// Which dependency this is, by its document key.
    pub dependency: String,
    pub host: String,
    pub port: u16,
    /// `tcp`, or `udp` and `tcp` for DNS.
    pub protocols: Vec<&'static str>,
}

/// What is done to the platform to make the dependency or member fail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum FaultSpec {
    /// Every platform host rejects its traffic to these addresses.
    Cut { targets: Vec<CutTarget> },
    /// One member of the role is stopped.
    Stop { member: Member },
}

impl FaultSpec {
    pub fn describe(&self) -> String {
        match self {
            FaultSpec::Cut { targets } => format!(
                "every platform host rejects its traffic to {}",
                targets
                    .iter()
                    .map(|t| format!("{}:{} ({})", t.host, t.port, t.protocols.join("+")))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            FaultSpec::Stop { member } => match member {
                Member::Database => {
                    "the primary's Patroni (and so its PostgreSQL) is stopped".into()
                }
                Member::Mta => "Postfix is stopped on one MTA host".into(),
                Member::Monitoring => "Prometheus is stopped on one monitoring host".into(),
                Member::App => "the application is stopped on one application host".into(),
            },
        }
    }
}

/// A claim the platform makes, with its fault made concrete.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Claim {
    /// What `--only` selects: the dependency's key, or `database-primary`, `one-mta`,
    /// `one-prometheus`, `one-app-host`.
    pub name: String,
    /// The dependency or member in words, with its address.
    pub what: String,
    /// The degraded mode declared.
    pub declared: String,
    pub fault: FaultSpec,
    pub probes: Vec<Probe>,
    pub nominal: Vec<Probe>,
    /// The dependency's declared country and operator (for `--cut-off outside-policy`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
}

/// A dependency as the platform declares it: label, where it is, country and operator.
struct Declared {
    label: &'static str,
    url: String,
    targets: Vec<CutTarget>,
    country: Option<String>,
    operator: Option<String>,
}

fn endpoint(key: &str, label: &'static str, e: &ResolvedEndpoint) -> Declared {
    Declared {
        label,
        url: e.url.clone(),
        targets: vec![CutTarget {
            dependency: key.to_owned(),
            host: e.host.clone(),
            port: e.port,
            protocols: vec!["tcp"],
        }],
        country: e.country.clone(),
        operator: e.operator.clone(),
    }
}

/// Host and port of a URL (`https` 443, `http` 80 unless given).
fn url_target(key: &str, url: &str) -> Option<CutTarget> {
    let parsed = url::Url::parse(url).ok()?;
    Some(CutTarget {
        dependency: key.to_owned(),
        host: parsed.host_str()?.trim_matches(['[', ']']).to_owned(),
        port: parsed.port_or_known_default()?,
        protocols: vec!["tcp"],
    })
}

/// The dependency `key` as `p` declares it, or `None` when it does not.
fn declared(p: &ResolvedPlatform, key: &str) -> Option<Declared> {
    let e = &p.endpoints;
    match key {
        "imageRegistry" => Some(endpoint(key, "image registry", &e.image_registry)),
        "imageRegistryMirror" => e
            .image_registry_mirror
            .as_ref()
            .map(|x| endpoint(key, "image registry mirror", x)),
        "smtpRelay" => e
            .smtp_relay
            .as_ref()
            .map(|x| endpoint(key, "SMTP relay", x)),
        "smtpFallbackRelay" => e
            .smtp_fallback_relay
            .as_ref()
            .map(|x| endpoint(key, "fallback SMTP relay", x)),
        "acmeCa" => e.acme_ca.as_ref().map(|x| endpoint(key, "ACME CA", x)),
        "ai" => e.ai.as_ref().map(|x| endpoint(key, "AI endpoint", x)),
        "cdn" => e.cdn.as_ref().map(|x| endpoint(key, "CDN", x)),
        "backupS3" => e.backup_s3.as_ref().map(|s3| Declared {
            label: "backup storage",
            url: s3.url.clone(),
            targets: url_target(key, &s3.url).into_iter().collect(),
            country: s3.country.clone(),
            operator: s3.operator.clone(),
        }),
        // one resolver down: the first, which every host asks first
        "dnsResolvers" => e.dns_resolvers.first().map(|first| Declared {
            label: "DNS resolver",
            url: first.clone(),
            targets: vec![CutTarget {
                dependency: key.to_owned(),
                host: first.clone(),
                port: 53,
                protocols: vec!["udp", "tcp"],
            }],
            country: None,
            operator: None,
        }),
        "packageMirror" => p
            .target
            .baremetal()
            .map(|b| b.package_mirror.clone())
            .filter(|m| !m.is_empty())
            .map(|m| Declared {
                label: "package mirror",
                targets: url_target(key, &m).into_iter().collect(),
                url: m,
                country: None,
                operator: None,
            }),
        _ => None,
    }
}

fn is_declared(p: &ResolvedPlatform, key: &str) -> bool {
    declared(p, key).is_some()
}

/// How many hosts hold the member's role, and whether the claim needs redundancy it has.
fn redundant(p: &ResolvedPlatform, m: Member) -> bool {
    match m {
        Member::Database => p.components.database.highly_available,
        other => p.roles.get(other.role().as_str()).map_or(0, Vec::len) >= 2,
    }
}

/// Every claim of `specs` that platform `p` makes, in the blueprint's order: the dependencies it
/// declares (with the conditions each claim names) and the members it has redundancy for.
pub fn applicable(p: &ResolvedPlatform, specs: &[ClaimSpec]) -> Vec<Claim> {
    let mut out = Vec::new();
    for s in specs {
        if !s.targets.is_empty() && !s.targets.iter().any(|t| t == p.target_kind) {
            continue;
        }
        if !s.when.iter().all(|k| is_declared(p, k)) || s.unless.iter().any(|k| is_declared(p, k)) {
            continue;
        }
        match (&s.dependency, s.member) {
            (Some(key), None) => {
                let Some(d) = declared(p, key) else { continue };
                if d.targets.is_empty() {
                    continue;
                }
                out.push(Claim {
                    name: key.clone(),
                    what: format!("{} {}", d.label, d.url),
                    declared: s.degraded.clone(),
                    fault: FaultSpec::Cut { targets: d.targets },
                    probes: s.probes.clone(),
                    nominal: s.nominal.clone(),
                    country: d.country,
                    operator: d.operator,
                });
            }
            (None, Some(m)) if redundant(p, m) => out.push(Claim {
                name: m.claim_name().to_owned(),
                what: m.what().to_owned(),
                declared: s.degraded.clone(),
                fault: FaultSpec::Stop { member: m },
                probes: s.probes.clone(),
                nominal: s.nominal.clone(),
                country: None,
                operator: None,
            }),
            _ => {}
        }
    }
    out
}

/// The degraded mode the blueprint declares for dependency `key` on this platform: the first
/// applicable claim's, for the reports and runbooks.
pub fn degraded_mode<'a>(claims: &'a [Claim], key: &str) -> Option<&'a str> {
    claims
        .iter()
        .find(|c| c.name == key)
        .map(|c| c.declared.as_str())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A shipped example, edited, resolved, with the shipped blueprint's claims.
    pub(crate) fn example(
        name: &str,
        edit: impl Fn(String) -> String,
    ) -> (ResolvedPlatform, Vec<ClaimSpec>) {
        let catalog = crate::pipeline::blueprint::Catalog::new(Vec::new());
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let text = edit(std::fs::read_to_string(root.join("examples").join(name)).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let doc = dir.path().join(name);
        std::fs::write(&doc, text).unwrap();
        let loaded = crate::pipeline::load(&doc, &catalog).unwrap();
        let (resolved, _) = crate::pipeline::render::render(&loaded, &catalog).unwrap();
        let bp = catalog.load("engagement-platform").unwrap();
        (resolved, bp.continuity)
    }

    fn names(claims: &[Claim]) -> Vec<&str> {
        claims.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn a_replicated_platform_claims_each_dependency_and_each_redundant_member() {
        let (p, specs) = example("baremetal-ha.yaml", |t| t);
        let claims = applicable(&p, &specs);
        for name in [
            "smtpRelay",
            "smtpFallbackRelay",
            "backupS3",
            "dnsResolvers",
            "packageMirror",
            "database-primary",
            "one-mta",
            "one-prometheus",
            "one-app-host",
        ] {
            assert!(
                names(&claims).contains(&name),
                "{name}: {:?}",
                names(&claims)
            );
        }
        // with a fallback relay, the relay's claim is that mail goes through it
        let relay = claims.iter().find(|c| c.name == "smtpRelay").unwrap();
        assert!(relay.probes.contains(&Probe::MailThroughFallback));
        assert_eq!(
            relay.fault,
            FaultSpec::Cut {
                targets: vec![CutTarget {
                    dependency: "smtpRelay".into(),
                    host: "smtp-relay.brevo.com".into(),
                    port: 587,
                    protocols: vec!["tcp"],
                }]
            }
        );
        // one resolver down: the first
        let dns = claims.iter().find(|c| c.name == "dnsResolvers").unwrap();
        assert!(
            matches!(&dns.fault, FaultSpec::Cut { targets } if targets.len() == 1 && targets[0].port == 53)
        );
    }

    #[test]
    fn without_a_fallback_mail_waits_and_without_redundancy_no_member_is_stopped() {
        let (p, specs) = example("baremetal.yaml", |t| {
            let start = t
                .find("    smtpFallbackRelay:\n")
                .expect("a fallback relay");
            let end = start
                + t[start..]
                    .find("    backupS3:\n")
                    .expect("backupS3 after it");
            format!("{}{}", &t[..start], &t[end..])
        });
        let claims = applicable(&p, &specs);
        let relay = claims.iter().find(|c| c.name == "smtpRelay").unwrap();
        assert!(relay.probes.contains(&Probe::MailQueued), "{relay:?}");
        assert!(relay.declared.contains("queue"));
        assert!(!names(&claims).contains(&"smtpFallbackRelay"));
        for member in [
            "database-primary",
            "one-mta",
            "one-prometheus",
            "one-app-host",
        ] {
            assert!(!names(&claims).contains(&member), "{member}");
        }
    }
}
