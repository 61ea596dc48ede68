//! A draft record of processing activities (GDPR Art. 30(1)) generated from the Platform
//! document: what the document states (purposes, data categories, recipients and where they run,
//! retention, locations, the security measures the blueprint sets up) is filled in; what it
//! cannot know is left "to be completed" for the controller. Only the document is read: nothing
//! from files, and no secret.

use crate::document::{Endpoint, Platform, S3Endpoint, Target};
use crate::policy::locality::catalog::{Catalog, Operator};
use crate::policy::sovereignty::{EEA_EXTRA, EU};

const TBC: &str = "to be completed";

/// One external recipient of data, as declared in the document.
struct Recipient {
    role: String,
    url: String,
    operator: Option<String>,
    country: Option<String>,
    /// What the catalog knows of the operator: name, jurisdiction, CLOUD Act exposure.
    known: Option<&'static Operator>,
    region: Option<String>,
}

impl Recipient {
    fn from_endpoint(role: &str, e: &Endpoint) -> Recipient {
        let known = lookup(e.operator.as_deref(), &e.url);
        Recipient {
            role: role.to_owned(),
            url: e.url.clone(),
            operator: e.operator.clone(),
            country: e.country.clone(),
            known,
            region: None,
        }
    }

    fn from_s3(role: &str, e: &S3Endpoint) -> Recipient {
        let known = lookup(e.operator.as_deref(), &e.url);
        Recipient {
            role: role.to_owned(),
            url: format!("{} (bucket {}, region {})", e.url, e.bucket, e.region),
            operator: e.operator.clone(),
            country: e.country.clone(),
            known,
            region: Some(e.region.clone()),
        }
    }

    fn operator_text(&self) -> String {
        match (&self.operator, self.known) {
            (Some(o), _) => o.clone(),
            (None, Some(k)) => format!("{} (from the host name; not declared)", k.name),
            (None, None) => TBC.to_owned(),
        }
    }

    /// Why data sent to this recipient may leave the EU/EEA or reach a third country's
    /// authorities, or `None`.
    fn third_country(&self) -> Option<String> {
        let mut reasons = Vec::new();
        if let Some(c) = &self.country
            && !in_eea(c)
        {
            reasons.push(format!("declared country {c} is outside the EU/EEA"));
        }
        if let Some(k) = self.known {
            let exposure = k.exposure(self.region.as_deref());
            if exposure.exposed == Some(true) {
                reasons.push(format!(
                    "{} is subject to the US CLOUD Act ({}; jurisdiction {})",
                    k.name, exposure.reason, exposure.jurisdiction
                ));
            } else if !in_eea(&exposure.jurisdiction) && exposure.jurisdiction != "CH" {
                reasons.push(format!(
                    "{} is governed by the law of {}",
                    k.name, exposure.jurisdiction
                ));
            }
        }
        if reasons.is_empty() {
            None
        } else {
            Some(reasons.join("; "))
        }
    }
}

fn in_eea(country: &str) -> bool {
    EU.contains(&country) || EEA_EXTRA.contains(&country)
}

/// The catalog's operator for a declared operator name, else for the endpoint's host.
fn lookup(operator: Option<&str>, url: &str) -> Option<&'static Operator> {
    let catalog = Catalog::builtin();
    operator
        .and_then(|o| catalog.by_name(o))
        .or_else(|| host(url).and_then(|h| catalog.by_host(&h)))
}

fn host(url: &str) -> Option<String> {
    match url::Url::parse(url) {
        Ok(u) => u.host_str().map(str::to_owned),
        // A bare host name.
        Err(_) => {
            let h = url.split(['/', ':']).next().unwrap_or_default();
            if h.is_empty() {
                None
            } else {
                Some(h.to_owned())
            }
        }
    }
}

/// Markdown cell text: no table breaks, no raw HTML.
fn cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace(['\n', '\r'], " ")
}

fn or_tbc(items: &[String]) -> Vec<String> {
    if items.is_empty() {
        vec![TBC.to_owned()]
    } else {
        items.iter().map(|s| cell(s)).collect()
    }
}

/// The recipients the document declares, in a fixed order.
fn recipients(p: &Platform) -> Vec<Recipient> {
    let e = &p.spec.endpoints;
    let mut r = Vec::new();
    if let Some(x) = &e.smtp_relay {
        r.push(Recipient::from_endpoint(
            "SMTP relay (outgoing email: recipients' addresses and message content)",
            x,
        ));
    }
    if let Some(x) = &e.smtp_fallback_relay {
        r.push(Recipient::from_endpoint(
            "fallback SMTP relay (outgoing email when the first relay fails)",
            x,
        ));
    }
    if p.spec.components.backups.enabled
        && let Some(x) = &e.backup_s3
    {
        r.push(Recipient::from_s3(
            "backup storage (database dumps: all personal data held)",
            x,
        ));
    }
    if let Some(x) = &e.ai {
        r.push(Recipient::from_endpoint(
            "AI endpoint (data the application sends for inference)",
            x,
        ));
    }
    if let Some(x) = &e.cdn {
        r.push(Recipient::from_endpoint(
            "CDN (public assets; visitors' IP addresses and requests)",
            x,
        ));
    }
    r.push(Recipient::from_endpoint(
        "image registry (software images; no personal data expected)",
        &e.image_registry,
    ));
    if let Some(x) = &e.image_registry_mirror {
        r.push(Recipient::from_endpoint(
            "image registry mirror (software images; no personal data expected)",
            x,
        ));
    }
    r
}

/// Where the platform runs, as declared.
fn locations(p: &Platform) -> Vec<String> {
    let t = &p.spec.target;
    let mut out = Vec::new();
    let declared = |what: &str, l: Option<&crate::document::DeclaredLocation>| match l {
        Some(l) => {
            let mut s = format!("{what}: {}", cell(&l.country));
            if let Some(o) = &l.operator {
                s.push_str(&format!(", operated by {}", cell(o)));
            }
            if let Some(site) = &l.site {
                s.push_str(&format!(", site {}", cell(site)));
            }
            s
        }
        None => format!("{what}: {TBC} (no location declared)"),
    };
    if let Some(k) = t.kubernetes() {
        out.push(declared(
            &format!("Kubernetes cluster, namespace {}", cell(&k.namespace)),
            k.location.as_ref(),
        ));
    }
    if let Some(b) = t.baremetal() {
        // grouped by where they stand: a host's own location, else the target's
        let mut groups: Vec<(Option<&crate::document::DeclaredLocation>, Vec<&str>)> = Vec::new();
        for h in &b.hosts {
            let l = h.location(b.location.as_ref());
            match groups.iter_mut().find(|(g, _)| *g == l) {
                Some((_, names)) => names.push(&h.name),
                None => groups.push((l, vec![&h.name])),
            }
        }
        if groups.len() <= 1 {
            out.push(declared(
                &format!("{} server(s)", b.hosts.len()),
                groups.first().and_then(|(l, _)| *l).or(b.location.as_ref()),
            ));
        } else {
            for (l, names) in groups {
                let names: Vec<String> = names.into_iter().map(cell).collect();
                out.push(declared(&format!("server(s) {}", names.join(", ")), l));
            }
        }
    }
    if let Some(s) = t.secnumcloud() {
        out.push(format!(
            "SecNumCloud provider {}, region {}",
            s.provider.as_str(),
            cell(&s.region)
        ));
    }
    if out.is_empty() {
        out.push(TBC.to_owned());
    }
    out
}

/// What the blueprint sets up to protect the data, as facts about this document.
fn security(p: &Platform) -> Vec<String> {
    let c = &p.spec.components;
    let e = &p.spec.endpoints;
    let t = &p.spec.target;
    let mut out = Vec::new();
    let kubernetes = match t {
        Target::Kubernetes(_) => true,
        Target::Baremetal(_) => false,
        Target::Secnumcloud(s) => s.kubernetes.is_some(),
    };
    if kubernetes {
        out.push("Network: the namespace denies all traffic by default (NetworkPolicies); each component may accept and reach only what it needs.".to_owned());
    } else {
        out.push("Network: an nftables firewall on each server, generated with the platform, accepts only the platform's own services.".to_owned());
    }
    if c.mta.enabled {
        if e.smtp_relay.is_some() {
            out.push("Email in transit: Postfix requires TLS to the declared relay(s) and authenticates to them; messages are DKIM-signed.".to_owned());
        } else {
            out.push("Email in transit: Postfix uses TLS when the receiving server offers it (opportunistic); messages are DKIM-signed.".to_owned());
        }
    }
    if c.database.enabled {
        out.push("Database: PostgreSQL with SCRAM-SHA-256 password authentication; credentials are generated at deployment and never written in the Platform document.".to_owned());
    }
    match (&e.backup_s3, c.backups.enabled && c.database.enabled) {
        (Some(s3), true) => out.push(format!(
            "Backups: a logical dump of the database on schedule `{}` (UTC) to the bucket {} over {}, kept {} days.",
            cell(&c.backups.schedule),
            cell(&s3.bucket),
            if s3.url.starts_with("https://") { "HTTPS" } else { "the declared endpoint" },
            c.backups.retention_days
        )),
        _ => out.push(format!("Backups: none configured by the platform; {TBC}.")),
    }
    if c.monitoring.enabled {
        out.push(format!(
            "Supervision: Prometheus and Alertmanager watch every component (samples kept {}).",
            cell(&c.monitoring.retention)
        ));
    }
    out.push(format!("Encryption at rest of volumes and backups: {TBC} (depends on the storage the hosting provider supplies)."));
    out.push(format!(
        "Access control, authentication of users and audit trails in the application: {TBC}."
    ));
    out
}

/// A draft GDPR Art. 30(1) record of processing activities, in Markdown.
pub fn ropa(platform: &Platform) -> String {
    let p = platform;
    let d = &p.spec.sovereignty.declared;
    let c = &p.spec.components;
    let mut o = String::new();
    let mut line = |s: &str| {
        o.push_str(s);
        o.push('\n');
    };

    line(&format!(
        "# Record of processing activities (GDPR Art. 30(1)): {} (DRAFT)",
        cell(&p.metadata.name)
    ));
    line("");
    line(
        "> **Draft generated by terroir from the Platform document; to be reviewed and completed by the controller.**",
    );
    line(
        "> It states only what the document declares. Every field marked \"to be completed\" is one the document cannot know.",
    );
    line(
        "> Operators and countries are as declared by the organisation, not verified; `terroir verify` checks locations.",
    );
    line("");

    line("## (a) Controller");
    line("");
    match &d.publisher {
        Some(pb) => line(&format!(
            "- Name: {} (incorporated in {})",
            cell(&pb.name),
            cell(&pb.country)
        )),
        None => line(&format!("- Name: {TBC}")),
    }
    line(&format!("- Contact details: {TBC}"));
    line(&format!("- Representative (Art. 27), if any: {TBC}"));
    line(&format!("- Data protection officer: {TBC}"));
    line(&format!("- Joint controllers, if any: {TBC}"));
    line("");

    line("## (b) Purposes of the processing");
    line("");
    for s in or_tbc(&d.purposes) {
        line(&format!("- {s}"));
    }
    line(&format!(
        "- Legal basis (Art. 6, and Art. 9 for special categories): {TBC}"
    ));
    line("");

    line("## (c) Categories of data subjects and of personal data");
    line("");
    line(&format!("Categories of data subjects: {TBC}."));
    line("");
    line("Categories of personal data:");
    line("");
    for s in or_tbc(&d.data_categories) {
        line(&format!("- {s}"));
    }
    if d.data_categories
        .iter()
        .any(|s| s.to_lowercase().contains("health"))
    {
        line("");
        line(
            "Health-related data is a special category (Art. 9): the condition that allows its processing is to be completed, and hosting in France requires an HDS-certified host.",
        );
    }
    line("");

    line("## (d) Recipients");
    line("");
    line("External services the platform sends data to, as declared in `spec.endpoints`:");
    line("");
    line(
        "| Recipient | Endpoint | Operator (declared) | Country (declared) | Law governing the operator (catalog) |",
    );
    line("| --- | --- | --- | --- | --- |");
    let rs = recipients(p);
    for r in &rs {
        let law = match r.known {
            Some(k) => {
                let x = k.exposure(r.region.as_deref());
                let act = match x.exposed {
                    Some(true) => "US CLOUD Act applies",
                    Some(false) => "not exposed to the US CLOUD Act",
                    None => "CLOUD Act exposure uncertain",
                };
                format!(
                    "{} ({act}{})",
                    x.jurisdiction,
                    if x.verified { "" } else { "; unverified" }
                )
            }
            None => "not in the catalog".to_owned(),
        };
        line(&format!(
            "| {} | {} | {} | {} | {} |",
            cell(&r.role),
            cell(&r.url),
            cell(&r.operator_text()),
            r.country.as_deref().map_or_else(|| TBC.to_owned(), cell),
            cell(&law)
        ));
    }
    line("");
    line(&format!(
        "Processing agreements (Art. 28) with each processor above: {TBC}. Other recipients (staff, authorities, subcontractors outside the platform): {TBC}."
    ));
    line("");

    line("## (e) Transfers to third countries");
    line("");
    let transfers: Vec<(&Recipient, String)> = rs
        .iter()
        .filter_map(|r| r.third_country().map(|why| (r, why)))
        .collect();
    let undeclared: Vec<String> = rs
        .iter()
        .filter(|r| r.country.is_none())
        .map(|r| cell(&r.url))
        .collect();
    if transfers.is_empty() {
        if undeclared.is_empty() {
            line(
                "None declared: every recipient is declared in the EU/EEA and no operator is known to the catalog as under the law of a third country.",
            );
        } else {
            line("None among the recipients whose country is declared.");
        }
    } else {
        line(
            "| Recipient | Why it is a transfer or a third-country exposure | Safeguards (Art. 46) |",
        );
        line("| --- | --- | --- |");
        for (r, why) in transfers {
            line(&format!(
                "| {} ({}) | {} | {TBC} |",
                cell(&r.role),
                cell(&r.url),
                cell(&why)
            ));
        }
    }
    if !undeclared.is_empty() {
        line("");
        line(&format!(
            "Country not declared for {}: {TBC}.",
            undeclared.join(", ")
        ));
    }
    line("");

    line("## (f) Time limits for erasure");
    line("");
    if c.backups.enabled && p.spec.endpoints.backup_s3.is_some() && c.database.enabled {
        let mut s = format!("- Database backups: kept {} days", c.backups.retention_days);
        s.push_str(" (spec.components.backups).");
        line(&s);
    } else {
        line("- Database backups: none configured by the platform.");
    }
    if c.monitoring.enabled {
        line(&format!(
            "- Monitoring metrics: kept {} (spec.components.monitoring.retention); metrics are technical and should hold no personal data.",
            cell(&c.monitoring.retention)
        ));
    }
    line(&format!(
        "- Personal data in the application (per category and purpose): {TBC}."
    ));
    line(&format!(
        "- Mail logs and relay logs at the SMTP relay operator: {TBC}."
    ));
    line("");

    line("## (g) Technical and organisational security measures (Art. 32)");
    line("");
    for s in security(p) {
        line(&format!("- {s}"));
    }
    line("");

    line("## Locations of the processing");
    line("");
    for s in locations(p) {
        line(&format!("- {s}"));
    }
    line("");
    line("---");
    line("");
    line(&format!(
        "Generated by terroir {} from the Platform document `{}`. Review every line before relying on it.",
        env!("CARGO_PKG_VERSION"),
        cell(&p.metadata.name)
    ));
    o
}
