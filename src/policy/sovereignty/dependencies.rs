//! The dependency and degraded-mode report written with every render
//! (`sovereignty/dependencies.{json,md}`): every external service the platform depends on, who
//! operates it and under which law (from the provider catalog), whether it can be substituted
//! and whether a fallback is configured, and what happens when it fails. Then the platform's own
//! components and their licences.

use serde::Serialize;

use crate::continuity::Claim;
use crate::document::Platform;
use crate::pipeline::images::ImageUse;
use crate::policy::locality::catalog::Catalog;
use crate::policy::locality::verify::host_of;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dependency {
    /// Key under `spec.endpoints`.
    pub key: String,
    pub what: String,
    pub host: String,
    pub declared_operator: Option<String>,
    pub declared_country: Option<String>,
    /// The operator as the provider catalog knows it (by host name, else the declared name).
    pub operator: Option<String>,
    pub jurisdiction: Option<String>,
    /// `true`, `false`, or `null` when unknown or uncertain.
    pub cloud_act_exposed: Option<bool>,
    pub exposure_reason: String,
    pub substitutable: bool,
    /// Why it can (or cannot) be replaced by another provider.
    pub substitution: String,
    /// The configured fallback, if any.
    pub fallback: Option<String>,
    /// What the platform does while it is unavailable.
    pub degraded_mode: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    pub name: String,
    pub role: String,
    pub enabled: bool,
    pub licence: String,
    pub open_source: bool,
    pub substitution: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DependencyReport {
    pub platform: String,
    pub dependencies: Vec<Dependency>,
    pub components: Vec<Component>,
    /// Dependencies with neither a fallback nor an EU, non-exposed operator.
    pub attention: Vec<String>,
    /// The container images the platform runs (Kubernetes), each with its digest when pinned.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageUse>,
}

/// key, what, url, declared operator, declared country
type Entry = (String, String, String, Option<String>, Option<String>);

struct Rule {
    substitutable: bool,
    substitution: &'static str,
}

fn rule(key: &str) -> Rule {
    match key {
        "imageRegistry" | "imageRegistryMirror" => Rule {
            substitutable: true,
            substitution: "any OCI registry (Harbor, a provider's registry): images are copied with standard tools",
        },
        "smtpRelay" | "smtpFallbackRelay" => Rule {
            substitutable: true,
            substitution: "any SMTP relay: Postfix relays through whichever is configured",
        },
        "backupS3" => Rule {
            substitutable: true,
            substitution: "any S3-compatible object storage",
        },
        "acmeCa" => Rule {
            substitutable: true,
            substitution: "any ACME certificate authority (RFC 8555)",
        },
        "ai" => Rule {
            substitutable: true,
            substitution: "an equivalent model endpoint, if the application's integration allows it",
        },
        "cdn" => Rule {
            substitutable: true,
            substitution: "any CDN, or none: the application serves its assets itself",
        },
        _ => Rule {
            substitutable: false,
            substitution: "unknown",
        },
    }
}

/// What the blueprint's continuity claims say of dependency `key` (the words `terroir
/// continuity` proves), or that they say nothing.
fn degraded(claims: &[Claim], key: &str) -> String {
    crate::continuity::claims::degraded_mode(claims, key)
        .unwrap_or("the blueprint declares no degraded mode for it")
        .to_owned()
}

/// The report for platform `p`, whose blueprint makes `claims` (its degraded modes).
pub fn report(
    p: &Platform,
    catalog: &Catalog,
    claims: &[Claim],
    images: &[ImageUse],
) -> DependencyReport {
    let e = &p.spec.endpoints;
    let mut entries: Vec<Entry> = e
        .named()
        .into_iter()
        .map(|n| {
            (
                n.key.to_owned(),
                n.label.to_owned(),
                n.endpoint.url.clone(),
                n.endpoint.operator.clone(),
                n.endpoint.country.clone(),
            )
        })
        .collect();
    if let Some(s3) = &e.backup_s3 {
        entries.push((
            "backupS3".into(),
            "backup storage".into(),
            s3.url.clone(),
            s3.operator.clone(),
            s3.country.clone(),
        ));
    }
    let fallback = |key: &str| -> Option<String> {
        match key {
            "imageRegistry" => e.image_registry_mirror.as_ref().map(|m| m.url.clone()),
            "smtpRelay" => e.smtp_fallback_relay.as_ref().map(|m| m.url.clone()),
            "cdn" => Some("the application (origin)".into()),
            _ => None,
        }
    };
    let mut dependencies = Vec::new();
    let mut attention = Vec::new();
    for (key, what, url, op_name, country) in entries {
        let host = host_of(&url).unwrap_or_else(|| url.clone());
        let op = catalog
            .by_host(&host)
            .or_else(|| op_name.as_deref().and_then(|n| catalog.by_name(n)));
        let exposure = op.map(|o| o.exposure(None));
        let r = rule(&key);
        let fb = fallback(&key);
        let exposed = exposure.as_ref().and_then(|x| x.exposed);
        if fb.is_none()
            && exposed != Some(false)
            && !matches!(key.as_str(), "imageRegistryMirror" | "smtpFallbackRelay")
        {
            attention.push(format!(
                "{what} ({host}): {} and no fallback",
                match exposed {
                    Some(true) => "operator exposed to the US CLOUD Act",
                    _ => "operator's exposure unknown",
                }
            ));
        }
        dependencies.push(Dependency {
            key: key.clone(),
            what,
            host,
            declared_operator: op_name,
            declared_country: country,
            operator: op.map(|o| o.name.clone()),
            jurisdiction: exposure.as_ref().map(|x| x.jurisdiction.clone()),
            cloud_act_exposed: exposed,
            exposure_reason: exposure
                .map(|x| x.reason)
                .unwrap_or_else(|| "operator not in the provider catalog".into()),
            substitutable: r.substitutable,
            substitution: r.substitution.into(),
            fallback: fb,
            degraded_mode: degraded(claims, &key),
        });
    }
    if !e.dns_resolvers.is_empty() {
        dependencies.push(Dependency {
            key: "dnsResolvers".into(),
            what: "DNS resolvers".into(),
            host: e.dns_resolvers.join(", "),
            declared_operator: None,
            declared_country: None,
            operator: None,
            jurisdiction: None,
            cloud_act_exposed: None,
            exposure_reason: "addresses: judged by `terroir verify`".into(),
            substitutable: true,
            substitution: "any recursive resolver".into(),
            fallback: (e.dns_resolvers.len() > 1)
                .then(|| format!("{} resolvers configured", e.dns_resolvers.len())),
            degraded_mode: degraded(claims, "dnsResolvers"),
        });
    }
    let c = &p.spec.components;
    let components = vec![
        Component {
            name: "PostgreSQL".into(),
            role: "database".into(),
            enabled: c.database.enabled,
            licence: "PostgreSQL Licence".into(),
            open_source: true,
            substitution:
                "standard SQL; pg_dump exports load into any PostgreSQL-compatible service".into(),
        },
        Component {
            name: "Postfix".into(),
            role: "MTA".into(),
            enabled: c.mta.enabled,
            licence: "IPL-1.0 / EPL-2.0".into(),
            open_source: true,
            substitution: "any SMTP server; mail is plain SMTP with DKIM".into(),
        },
        Component {
            name: "Prometheus, Alertmanager".into(),
            role: "monitoring".into(),
            enabled: c.monitoring.enabled,
            licence: "Apache-2.0".into(),
            open_source: true,
            substitution: "any Prometheus-compatible system reads the same exporters".into(),
        },
        Component {
            name: "Grafana".into(),
            role: "dashboards".into(),
            enabled: c.monitoring.enabled,
            licence: "AGPL-3.0".into(),
            open_source: true,
            substitution: "dashboards are optional; data stays in Prometheus".into(),
        },
    ];
    DependencyReport {
        platform: p.metadata.name.clone(),
        dependencies,
        components,
        attention,
        images: images.to_vec(),
    }
}

/// The report for people, in Markdown.
pub fn markdown(r: &DependencyReport) -> String {
    let yn = |b: bool| if b { "yes" } else { "no" };
    let exposure = |e: Option<bool>| match e {
        Some(true) => "exposed",
        Some(false) => "not exposed",
        None => "unknown",
    };
    let mut s = format!("# Dependencies and degraded modes: {}\n\n", r.platform);
    s.push_str("Every external service the platform depends on, who operates it (provider catalog), whether it can be replaced, whether a fallback is configured, and what happens while it is down. Generated by `terroir render`; `terroir verify` checks the same services against the policy, live.\n\n");
    s.push_str("| dependency | host | operator | jurisdiction | CLOUD Act | substitutable | fallback |\n| --- | --- | --- | --- | --- | --- | --- |\n");
    for d in &r.dependencies {
        s.push_str(&format!(
            "| {} | `{}` | {} | {} | {} | {} | {} |\n",
            d.what,
            d.host,
            d.operator
                .as_deref()
                .or(d.declared_operator.as_deref())
                .unwrap_or("unknown"),
            d.jurisdiction.as_deref().unwrap_or("unknown"),
            exposure(d.cloud_act_exposed),
            yn(d.substitutable),
            d.fallback.as_deref().unwrap_or("none"),
        ));
    }
    s.push_str("\n## Degraded modes\n\nAs the blueprint declares them; `terroir continuity` makes each dependency fail on the platform's hosts and checks it (`--only KEY` for one).\n\n");
    for d in &r.dependencies {
        s.push_str(&format!(
            "- **{}** (`{}`): {}. Substitution: {}.\n",
            d.what, d.key, d.degraded_mode, d.substitution
        ));
    }
    s.push_str("\n## Components\n\n| component | role | enabled | licence | substitution |\n| --- | --- | --- | --- | --- |\n");
    for c in &r.components {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            c.name,
            c.role,
            yn(c.enabled),
            c.licence,
            c.substitution
        ));
    }
    if !r.images.is_empty() {
        s.push_str("\n## Images\n\nPinned by digest, an image is exactly what runs; by tag only, it is whatever the registry serves under that tag when a node pulls it (`terroir images pin` writes digests into the document).\n\n| image | reference | pinned |\n| --- | --- | --- |\n");
        for i in &r.images {
            s.push_str(&format!(
                "| {} | `{}` | {} |\n",
                i.key,
                i.reference,
                if i.pinned { "by digest" } else { "tag only" }
            ));
        }
    }
    s.push_str("\n## Needs attention\n\n");
    if r.attention.is_empty() {
        s.push_str(
            "Nothing: every dependency has a fallback or an operator outside the CLOUD Act.\n",
        );
    } else {
        for a in &r.attention {
            s.push_str(&format!("- {a}\n"));
        }
    }
    s
}
