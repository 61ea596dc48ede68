//! The sovereignty-assessment predicate and the in-toto Statement v1 that carries it.

use serde_json::{Value, json};

use crate::document::{Platform, Qualification, Target};
use crate::pipeline::images::ImageUse;
use crate::pipeline::render::RenderedTree;
use crate::policy::locality::catalog::Catalog as Providers;
use crate::policy::locality::verify::{Finding, Report, Verdict};
use crate::policy::sovereignty::in_eu;
use crate::text::sha256_hex;

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://terroir.eu/attestation/sovereignty-assessment/v1";

/// Every rendered file as an in-toto subject (name and sha256).
pub fn subjects(tree: &RenderedTree) -> Vec<Value> {
    tree.files
        .iter()
        .map(|(name, bytes)| json!({"name": name, "digest": {"sha256": sha256_hex(bytes)}}))
        .collect()
}

/// Every image pinned by digest as an in-toto subject (name: the reference pulled), when the
/// target runs containers. An image referenced by tag only is no subject: no digest is invented.
pub fn image_subjects(images: &[ImageUse]) -> Vec<Value> {
    images
        .iter()
        .filter_map(|i| {
            let hex = i.sha256.as_deref()?;
            Some(json!({"name": i.reference, "digest": {"sha256": hex}}))
        })
        .collect()
}

/// The predicate's account of the images: those whose digest is a subject, and those
/// referenced by tag only (what ran under that tag is not attested).
pub fn images(images: &[ImageUse]) -> Value {
    let (pinned, tag_only): (Vec<&ImageUse>, Vec<&ImageUse>) =
        images.iter().partition(|i| i.pinned);
    json!({
        "pinned": pinned.iter().map(|i| json!({"key": i.key, "reference": i.reference, "sha256": i.sha256})).collect::<Vec<_>>(),
        "tagOnly": tag_only.iter().map(|i| json!({"key": i.key, "reference": i.reference})).collect::<Vec<_>>(),
    })
}

/// A bare-metal host's declared location (`host NAME location`), not its qualifications.
fn is_host_location(f: &Finding) -> bool {
    f.subject.starts_with("host ") && f.subject.ends_with(" location")
}

fn is_observed(f: &Finding) -> bool {
    matches!(f.basis, "live" | "dns" | "plan")
}

/// One grid criterion: points, and whether they rest on what was verified, what the
/// organisation declared, or nothing.
fn criterion(
    axis: &str,
    name: &str,
    max: u32,
    fact: Option<bool>,
    basis: &str,
    reason: String,
) -> Value {
    let (points, basis) = match fact {
        Some(true) => (max, basis),
        Some(false) => (0, basis),
        None => (0, "unknown"),
    };
    json!({"axis": axis, "criterion": name, "points": points, "max": max, "basis": basis, "reason": reason})
}

/// The 100-point grid buyers use (hosting 30, publisher 25, technology 20, legal 25), criterion
/// by criterion. Criteria no probe can see (the publisher, contracts, certifications) are
/// labelled `declared` by the organisation, never `verified`.
pub fn grid(p: &Platform, report: &Report) -> Value {
    let d = &p.spec.sovereignty.declared;
    let placement: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| {
            f.subject.starts_with("host ")
                && (f.subject.ends_with(" address") || f.subject.ends_with("cloud placement"))
                || f.subject.starts_with("node ")
                || f.subject.starts_with("volume ")
                || f.subject.starts_with("resource ")
        })
        .filter(|f| is_observed(f) && f.verdict != Verdict::Warn)
        .collect();
    // Every country the platform is declared in: on bare metal, each host's own location or
    // the target's (none when a host has neither).
    let declared_countries: Option<Vec<String>> = match &p.spec.target {
        Target::Kubernetes(k) => k.location.as_ref().map(|l| vec![l.country.clone()]),
        Target::Baremetal(b) => {
            let mut countries = b
                .hosts
                .iter()
                .map(|h| h.location(b.location.as_ref()).map(|l| l.country.clone()))
                .collect::<Option<Vec<String>>>()
                .filter(|c| !c.is_empty());
            if let Some(c) = &mut countries {
                c.sort();
                c.dedup();
            }
            countries
        }
        Target::Secnumcloud(c) => crate::policy::locality::verify::country_of_region(
            Providers::builtin(),
            crate::policy::locality::verify::cloud_operator_id(c.provider),
            &c.region,
        )
        .map(|c| vec![c]),
    };
    let mut criteria = Vec::new();
    if placement.is_empty() {
        criteria.push(criterion(
            "hosting",
            "data hosted in France or the EU",
            10,
            declared_countries
                .as_ref()
                .map(|cs| cs.iter().all(|c| in_eu(c))),
            "declared",
            declared_countries
                .as_ref()
                .map_or("no hosting country declared".into(), |c| {
                    format!(
                        "hosting declared in {}; not observed (attest with --live)",
                        c.join(", ")
                    )
                }),
        ));
    } else {
        let failing: Vec<&&Finding> = placement
            .iter()
            .filter(|f| f.verdict == Verdict::Fail)
            .collect();
        criteria.push(criterion(
            "hosting",
            "data hosted in France or the EU",
            10,
            Some(failing.is_empty()),
            "verified",
            if failing.is_empty() {
                format!("{} observed placements (hosts, nodes, volumes, plan resources) are in allowed countries", placement.len())
            } else {
                format!("observed outside the policy: {}", failing.iter().map(|f| format!("{} ({})", f.subject, f.observed)).collect::<Vec<_>>().join("; "))
            },
        ));
    }
    let certs = &d.datacentre_certifications;
    criteria.push(criterion(
        "hosting",
        "ISO 27001 certified datacentres",
        5,
        if certs.is_empty() {
            None
        } else {
            Some(certs.contains(&Qualification::Iso27001))
        },
        "declared",
        "declared by the organisation (spec.sovereignty.declared.datacentreCertifications)".into(),
    ));
    // Established by the topology terroir renders (the database replicas in two or more sites,
    // all in the EU, or one outside it); else the organisation's declaration, with why.
    let redundancy = crate::policy::sovereignty::topology::of(p)
        .database
        .redundancy;
    criteria.push(match redundancy.fact() {
        Some(fact) => criterion(
            "hosting",
            "geographic redundancy inside the EU only",
            5,
            Some(fact),
            "verified",
            format!(
                "{}; each host's location judged in the findings",
                redundancy.reason
            ),
        ),
        None => criterion(
            "hosting",
            "geographic redundancy inside the EU only",
            5,
            d.eu_only_redundancy,
            "declared",
            format!(
                "{}; declared by the organisation (euOnlyRedundancy)",
                redundancy.reason
            ),
        ),
    });
    criteria.push(criterion(
        "hosting",
        "hosting contract under French law",
        10,
        d.hosting_contract_law.as_ref().map(|l| l == "FR"),
        "declared",
        d.hosting_contract_law
            .as_ref()
            .map_or("no governing law declared".into(), |l| {
                format!("declared by the organisation: contract law {l}")
            }),
    ));
    let pb = d.publisher.as_ref();
    criteria.push(criterion(
        "publisher",
        "company under EU law",
        10,
        pb.map(|x| in_eu(&x.country)),
        "declared",
        pb.map_or("no publisher declared".into(), |x| {
            format!("declared: {} incorporated in {}", x.name, x.country)
        }),
    ));
    criteria.push(criterion(
        "publisher",
        "EU shareholding above 50%",
        10,
        pb.map(|x| x.eu_shareholding_percent > 50),
        "declared",
        pb.map_or("no publisher declared".into(), |x| {
            format!("declared: {}% EU shareholding", x.eu_shareholding_percent)
        }),
    ));
    criteria.push(criterion(
        "publisher",
        "no US subsidiary",
        5,
        pb.map(|x| !x.us_subsidiary),
        "declared",
        "declared by the organisation (publisher.usSubsidiary)".into(),
    ));
    criteria.push(criterion(
        "technology",
        "auditable source code",
        10,
        d.source_code_auditable,
        "declared",
        "declared by the organisation (sourceCodeAuditable)".into(),
    ));
    // Dependencies: every endpoint, registry and resolver finding.
    let deps: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| {
            !f.subject.starts_with("host ")
                && !f.subject.starts_with("node ")
                && !f.subject.starts_with("volume ")
                && !f.subject.starts_with("resource ")
                && !f.subject.contains(": ")
        })
        .collect();
    let dep_fail: Vec<&&Finding> = deps.iter().filter(|f| f.verdict == Verdict::Fail).collect();
    let dep_basis = if deps.iter().any(|f| is_observed(f)) {
        "verified"
    } else {
        "declared"
    };
    criteria.push(criterion(
        "technology",
        "no dependency on a US cloud",
        10,
        if deps.is_empty() {
            None
        } else {
            Some(dep_fail.is_empty())
        },
        dep_basis,
        if dep_fail.is_empty() {
            format!(
                "{} dependency checks: none under a forbidden jurisdiction (provider catalog{})",
                deps.len(),
                if dep_basis == "verified" {
                    ", resolved addresses"
                } else {
                    ""
                }
            )
        } else {
            format!(
                "failing: {}",
                dep_fail
                    .iter()
                    .map(|f| format!("{} ({})", f.subject, f.observed))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        },
    ));
    let any_fail = report
        .findings
        .iter()
        .any(|f| f.verdict == Verdict::Fail && !f.subject.contains(": "));
    let all_known = report
        .findings
        .iter()
        .filter(|f| !f.subject.contains(": "))
        .all(|f| f.verdict == Verdict::Pass);
    let observed = report.findings.iter().any(is_observed);
    criteria.push(criterion(
        "legal",
        "outside the reach of the US CLOUD Act",
        15,
        if any_fail { Some(false) } else if all_known { Some(true) } else { None },
        if observed { "verified" } else { "declared" },
        if any_fail {
            "at least one place or dependency is on US soil or run by a company under US law (see findings)".into()
        } else if all_known {
            "every place and dependency is run by a company outside US jurisdiction, on allowed soil (provider catalog)".into()
        } else {
            "some places or dependencies could not be established (warnings in the findings)".into()
        },
    ));
    let quals: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.subject.ends_with(": SecNumCloud") || f.subject.ends_with(": HDS"))
        .collect();
    criteria.push(criterion(
        "legal",
        "SecNumCloud or HDS qualification",
        10,
        if quals.is_empty() {
            (!certs.is_empty()).then(|| {
                certs.contains(&Qualification::Hds) || certs.contains(&Qualification::Secnumcloud)
            })
        } else {
            Some(quals.iter().any(|f| f.verdict == Verdict::Pass))
        },
        "declared",
        if quals.is_empty() {
            "declared certifications".into()
        } else {
            format!(
                "provider catalog: {}",
                quals
                    .iter()
                    .map(|f| format!("{} {:?}", f.observed, f.verdict).to_lowercase())
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        },
    ));
    let total: u64 = criteria.iter().filter_map(|c| c["points"].as_u64()).sum();
    let max: u64 = criteria.iter().filter_map(|c| c["max"].as_u64()).sum();
    let band = match total {
        90.. => "complete",
        70..=89 => "partial",
        _ => "insufficient",
    };
    json!({"criteria": criteria, "total": total, "max": max, "band": band})
}

fn answer(question: &str, answer: String, basis: &str, evidence: String) -> Value {
    json!({"question": question, "answer": answer, "basis": basis, "evidence": evidence})
}

fn summarise(fs: &[&Finding]) -> (String, &'static str, String) {
    if fs.is_empty() {
        return ("not declared".into(), "unknown", String::new());
    }
    let basis = if fs.iter().any(|f| is_observed(f)) {
        "verified"
    } else {
        "declared"
    };
    let answer = fs
        .iter()
        .map(|f| {
            format!(
                "{} [{}]",
                f.observed,
                format!("{:?}", f.verdict).to_lowercase()
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let evidence = fs
        .iter()
        .map(|f| f.evidence.clone())
        .filter(|e| !e.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    (answer, basis, evidence)
}

/// The customer-engagement-platform criteria table, answered from the deployment.
pub fn criteria(p: &Platform, report: &Report) -> Vec<Value> {
    let by = |pred: &dyn Fn(&Finding) -> bool| -> Vec<&Finding> {
        report.findings.iter().filter(|f| pred(f)).collect()
    };
    let c = &p.spec.components;
    let e = &p.spec.endpoints;
    let mut out = Vec::new();
    let hosting = by(&|f| {
        f.subject == "Kubernetes cluster"
            || is_host_location(f)
            || f.subject.contains(" region ")
            || f.subject.starts_with("node ")
            || f.subject.starts_with("host ") && f.subject.ends_with(" address")
            || f.subject.starts_with("resource ")
    });
    let (a, b, ev) = summarise(&hosting);
    out.push(answer(
        "Where are the application servers hosted?",
        a.clone(),
        b,
        ev.clone(),
    ));
    // On hosts, the database hosts' own findings (each where it stands), with the replication.
    let db_hosts = crate::policy::sovereignty::topology::of(p).database;
    let on_db_host = |f: &Finding| {
        db_hosts.hosts.iter().any(|h| {
            f.subject == format!("host {h} location")
                || f.subject == format!("host {h} address")
                || f.subject == format!("host {h} cloud placement")
        })
    };
    let db_findings = by(&on_db_host);
    if c.database.enabled && !db_findings.is_empty() {
        let (_, db, dev) = summarise(&db_findings);
        let da = db_findings
            .iter()
            .map(|f| {
                format!(
                    "{}: {} [{}]",
                    f.subject.trim_start_matches("host "),
                    f.observed,
                    format!("{:?}", f.verdict).to_lowercase()
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let replication = if db_hosts.replicas > 1 {
            format!(
                "{} replicas on {} ({}), in {} site{}: ",
                db_hosts.replicas,
                db_hosts.hosts.join(", "),
                if db_hosts.synchronous {
                    "synchronous"
                } else {
                    "asynchronous"
                },
                db_hosts.sites.len(),
                if db_hosts.sites.len() == 1 { "" } else { "s" }
            )
        } else {
            format!("on {}: ", db_hosts.hosts.join(", "))
        };
        out.push(answer(
            "Where are the databases hosted?",
            format!("{replication}{da}"),
            db,
            dev,
        ));
    } else {
        out.push(answer(
            "Where are the databases hosted?",
            if c.database.enabled {
                format!("with the application: {a}")
            } else {
                "no database component".into()
            },
            b,
            ev,
        ));
    }
    let (a, b, ev) = summarise(&by(&|f| f.subject.starts_with("backup storage")));
    out.push(answer(
        "Where are backups stored?",
        if c.backups.enabled {
            a
        } else {
            "backups disabled".into()
        },
        b,
        ev,
    ));
    let (a, b, ev) = summarise(&by(&|f| {
        f.subject == "Kubernetes cluster"
            || is_host_location(f)
            || f.subject.contains(" region ") && !f.subject.contains(": ")
    }));
    out.push(answer(
        "What is the hoster's nationality and shareholding?",
        a,
        b,
        ev,
    ));
    let (a, b, ev) = summarise(&by(&|f| {
        f.subject.starts_with("SMTP relay") || f.subject.starts_with("fallback SMTP relay")
    }));
    out.push(answer(
        "Which relay sends the email, where and by whom?",
        a,
        b,
        ev,
    ));
    let (a, b, ev) = summarise(&by(&|f| {
        f.subject.starts_with("image registry")
            || f.subject.starts_with("container image registry")
            || f.subject.starts_with("CDN")
    }));
    out.push(answer("Are images and the CDN European?", a, b, ev));
    out.push(answer(
        "Is the MTA open source, with a fallback?",
        format!(
            "{}; fallback relay: {}",
            if c.mta.enabled {
                "Postfix (IPL/EPL, open source)"
            } else {
                "no MTA component"
            },
            e.smtp_fallback_relay
                .as_ref()
                .map(|r| r.url.clone())
                .unwrap_or_else(|| "none".into())
        ),
        "verified",
        "the rendered configuration (subjects of this attestation)".into(),
    ));
    out.push(answer(
        "Is the database an open technology?",
        if c.database.enabled {
            format!("PostgreSQL {} (PostgreSQL Licence)", c.database.version)
        } else {
            "no database component".into()
        },
        "verified",
        "the rendered configuration".into(),
    ));
    let (a, b, ev) = summarise(&by(&|f| f.subject.contains("registry")));
    out.push(answer(
        "Where do third-party bricks (container images) come from?",
        a,
        b,
        ev,
    ));
    out.push(answer(
        "Are dependencies documented, with a degraded mode?",
        "yes: sovereignty/dependencies.md lists each dependency, its fallback and its degraded mode".into(),
        "verified",
        "a subject of this attestation".into(),
    ));
    let (a, b, ev) = summarise(&by(&|f| f.subject.starts_with("AI endpoint")));
    out.push(answer(
        "Which AI is embedded, and does customer data leave the EU for it?",
        if e.ai.is_none() {
            "no AI endpoint declared".into()
        } else {
            a
        },
        if e.ai.is_none() { "declared" } else { b },
        ev,
    ));
    out.push(answer(
        "Does the platform depend on proprietary channels (WhatsApp, RCS), with a plan B?",
        "not described by the Platform document".into(),
        "unknown",
        String::new(),
    ));
    out.push(answer(
        "Does the publisher contribute to open source?",
        "not described by the Platform document".into(),
        "unknown",
        String::new(),
    ));
    out
}

/// Where the platform runs, role by role: each role's hosts with their locations (their own, or
/// the target's), and the database's replicas, synchronous replication, consensus members and
/// the sites the replicas stand in.
pub fn topology(p: &Platform) -> Value {
    let t = crate::policy::sovereignty::topology::of(p);
    let place = |h: &crate::policy::sovereignty::topology::PlacedHost| {
        json!({
            "name": h.name,
            "address": h.address,
            "location": h.location,
            "locationSource": if h.own_location { "host" } else if h.location.is_some() { "target" } else { "none" },
        })
    };
    let roles: serde_json::Map<String, Value> = t
        .roles
        .iter()
        .map(|r| {
            (
                r.role.to_owned(),
                Value::Array(r.hosts.iter().map(place).collect()),
            )
        })
        .collect();
    let db = &t.database;
    json!({
        "kind": t.kind,
        "roles": roles,
        "database": {
            "managedBy": db.managed_by,
            "replicas": db.replicas,
            "synchronous": db.synchronous,
            "hosts": db.hosts,
            "consensus": db.consensus,
            "sites": db.sites,
            "redundancy": db.redundancy,
        },
    })
}

/// The predicate: platform, time, tool, target, policy, findings, grid, topology, criteria and
/// verdict.
pub fn predicate(p: &Platform, target_kind: &str, report: &Report, time: &str) -> Value {
    json!({
        "platform": p.metadata.name,
        "time": time,
        "tool": {"name": "terroir", "version": env!("CARGO_PKG_VERSION")},
        "target": {"kind": target_kind, "detail": p.spec.target},
        "policy": p.spec.sovereignty.policy,
        "findings": report.findings,
        "grid": grid(p, report),
        "topology": topology(p),
        "criteria": criteria(p, report),
        "verdict": report.verdict,
        "attribution": report.attribution,
        "security": security(p),
    })
}

/// The security and data-protection baseline as deployed by terroir for this target: TLS inside
/// the platform, the audit trail, secrets at rest, backups, tenants and encryption at rest (as
/// declared; `attest --live` adds what the hosts show).
pub fn security(p: &Platform) -> Value {
    let c = &p.spec.components;
    let on_hosts = !p.spec.target.on_kubernetes();
    let declared = p.spec.sovereignty.declared.encryption_at_rest;
    let expected = if p.spec.target.kubernetes().is_some() {
        "storage-class"
    } else if p.spec.target.secnumcloud().is_some() {
        "provider"
    } else {
        "luks"
    };
    let pgaudit = "pgaudit: DDL and role changes in every database, connections, every statement on the personal tables";
    json!({
        "tls": {
            "authority": if on_hosts { "a certificate authority per platform; every host has a server certificate from it".to_owned() } else { "a certificate authority per platform, kept as a Secret in its namespace; every server has a certificate from it for its Service's names".to_owned() },
            "postgresql": if c.database.enabled && c.database.external.is_none() { "TLS only (pg_hba.conf: hostssl; hostnossl rejected), TLS 1.2 or later; the application verifies the certificate and name (verify-full)".to_owned() } else { "not deployed by terroir".into() },
            "smtp": if c.mta.enabled { "STARTTLS required from every client (smtpd_tls_security_level = encrypt); the application and Alertmanager verify the certificate".to_owned() } else { "not deployed".into() },
            "suites": crate::pki::tls::SUMMARY,
            "monitoring": if on_hosts { "HTTPS only for Prometheus, Alertmanager and the node and PostgreSQL exporters (the platform's CA, verified by Prometheus); the Postfix exporter plain HTTP on the private network (nftables limits who may connect)" } else { "HTTPS only for Prometheus, Alertmanager, Grafana and the node, PostgreSQL and pgBackRest exporters (the platform's CA, verified by Prometheus and Grafana); the application's metrics and the Postfix exporter in plain HTTP inside the namespace (NetworkPolicies limit who may connect)" },
        },
        "audit": {
            "postgresql": if !(c.database.enabled && c.database.external.is_none()) {
                "not deployed by terroir".to_owned()
            } else if on_hosts {
                pgaudit.to_owned()
            } else {
                format!("{pgaudit} (terroir's PostgreSQL image, which adds pgaudit and pgBackRest to the official one)")
            },
            "personalTables": c.database.personal_tables,
            "hosts": if on_hosts { "SSH logins and sudo commands in /var/log/auth.log" } else { "not applicable" },
            "kubernetesApi": if on_hosts { "not applicable" } else { "declared, not verified: an audit.k8s.io/v1 Policy for the platform's namespaces (Secrets at Metadata level, every change at RequestResponse) is rendered as kubernetes-audit/audit-policy.yaml for the cluster's operators to install; no client can switch API auditing on or see whether it is" },
            "retentionDays": p.spec.audit.retention_days,
        },
        "secretsAtRest": {
            "encrypted": !p.spec.secrets.recipients.is_empty(),
            "method": if p.spec.secrets.recipients.is_empty() { "files of mode 0600 on the operator's side, not encrypted" } else { "age, to the document's recipients" },
            "recipients": p.spec.secrets.recipients.len(),
        },
        "backups": {
            "enabled": c.backups.enabled && c.database.enabled,
            "tool": if on_hosts { "pgBackRest: full and incremental backups on schedule, WAL archived continuously (point-in-time restore)" } else { "pgBackRest: full and incremental backups by CronJobs through the database pod's pgBackRest server (TLS, client certificate), WAL archived continuously (point-in-time restore)" },
            "encryption": if on_hosts { "aes-256-cbc (repository encryption, key generated by terroir and kept in its secret store)" } else { "aes-256-cbc (repository encryption, key generated by terroir as a Secret that is never rotated)" },
            "endpoint": p.spec.endpoints.backup_s3.as_ref().map(|s| json!({"url": s.url, "bucket": s.bucket, "region": s.region})),
            "retentionDays": c.backups.retention_days,
        },
        "tenants": p.spec.tenants.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
        "tenantIsolation": if p.spec.tenants.is_empty() { "no tenants" } else if on_hosts { "a database and a role per tenant; pg_hba.conf and CONNECT admit each role on its own database only" } else { "a namespace per tenant (default deny; egress to DNS and the platform's PostgreSQL only), a database and a role per tenant admitted on its own database only (pg_hba.conf, CONNECT); NetworkPolicies are enforced only by a network plugin that implements them, which terroir does not verify" },
        "encryptionAtRest": {
            "declared": declared,
            "expectedForTarget": expected,
            "basis": if declared.is_some() { "declared" } else { "not declared" },
        },
    })
}

/// The in-toto Statement v1.
pub fn statement(subjects: Vec<Value>, predicate: Value) -> Value {
    json!({"_type": STATEMENT_TYPE, "subject": subjects, "predicateType": PREDICATE_TYPE, "predicate": predicate})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kubernetes(edit: impl Fn(String) -> String) -> Platform {
        let text = edit(
            std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/examples/kubernetes.yaml"
            ))
            .unwrap_or_default(),
        );
        crate::document::load_str("kubernetes.yaml", &text)
            .map(|l| l.platform)
            .unwrap_or_else(|d| panic!("{d:?}"))
    }

    /// On a cluster: pgaudit and pgBackRest from terroir's image, and the API audit declared,
    /// never claimed as verified.
    #[test]
    fn a_cluster_states_what_holds_and_how_it_is_known() {
        let sec = security(&kubernetes(|t| t));
        let pg = sec["audit"]["postgresql"].as_str().unwrap_or_default();
        assert!(
            pg.starts_with("pgaudit: DDL and role changes")
                && pg.contains("terroir's PostgreSQL image"),
            "{pg}"
        );
        let api = sec["audit"]["kubernetesApi"].as_str().unwrap_or_default();
        assert!(
            api.starts_with("declared, not verified")
                && api.contains("kubernetes-audit/audit-policy.yaml"),
            "{api}"
        );
        assert!(
            sec["tls"]["postgresql"]
                .as_str()
                .unwrap_or_default()
                .starts_with("TLS only"),
            "{sec}"
        );
        assert!(
            sec["tls"]["monitoring"]
                .as_str()
                .unwrap_or_default()
                .starts_with("HTTPS"),
            "{sec}"
        );
        assert_eq!(sec["tls"]["suites"], crate::pki::tls::SUMMARY, "{sec}");
        assert!(
            sec["backups"]["encryption"]
                .as_str()
                .unwrap_or_default()
                .starts_with("aes-256-cbc"),
            "{sec}"
        );
        assert!(
            sec["backups"]["tool"]
                .as_str()
                .unwrap_or_default()
                .contains("point-in-time"),
            "{sec}"
        );
    }
}
