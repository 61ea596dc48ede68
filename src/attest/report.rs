//! The human-readable report of an attestation predicate, for compliance teams, DPOs and
//! auditors: the verdict and the 100-point score first, then each criterion with what backs it
//! (verified, declared by the organisation, unknown), the buyers' criteria table, the findings
//! (failures first), the policy and how to check the signature.
//!
//! Two renderings of the same content: Markdown, and one self-contained HTML page (inline CSS
//! only, no script, font, image or link to fetch) that prints to A4 PDF. Every value taken from
//! the predicate is escaped. The output depends only on the predicate, so two renders of the same
//! predicate are byte-identical.

use serde_json::Value;

/// The axes of the 100-point grid, in the order buyers read them, with their titles.
const AXES: [(&str, &str); 4] = [
    ("hosting", "Hosting"),
    ("publisher", "Publisher"),
    ("technology", "Technology"),
    ("legal", "Legal"),
];

/// Words that mark a criterion as an organisational fact (law, contracts, shareholding,
/// certificates, source code access): no probe can see these, so they are never shown as
/// verified, whatever the predicate says.
const ORGANISATIONAL: [&str; 12] = [
    "contract",
    "shareholding",
    "subsidiary",
    "company under",
    "nationality",
    "iso 27001",
    "certified",
    "certification",
    "auditable",
    "source code",
    "contribut",
    "redundancy",
];

const VERIFY_COMMAND: &str = "terroir attest verify ATTESTATION --pubkey KEY.pub --against DIR";

/// The predicate reduced to display strings, shared by both renderings.
struct Report {
    platform: String,
    time: String,
    tool: String,
    verdict: String,
    total: String,
    max: String,
    band: String,
    points_verified: u64,
    points_declared: u64,
    target_kind: String,
    target_detail: Vec<(String, String)>,
    axes: Vec<Axis>,
    criteria: Vec<Question>,
    findings: Vec<Finding>,
    policy: Vec<(&'static str, String)>,
    attribution: String,
}

struct Axis {
    title: String,
    points: u64,
    max: u64,
    criteria: Vec<Criterion>,
}

struct Criterion {
    criterion: String,
    points: String,
    max: String,
    basis: Basis,
    /// The predicate said `verified` for a fact no probe can see.
    overclaimed: bool,
    reason: String,
}

struct Question {
    question: String,
    answer: String,
    basis: Basis,
    overclaimed: bool,
    evidence: String,
}

struct Finding {
    subject: String,
    observed: String,
    expected: String,
    verdict: String,
    basis: String,
    evidence: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Basis {
    Verified,
    Declared,
    Unknown,
}

impl Basis {
    fn label(self) -> &'static str {
        match self {
            Basis::Verified => "verified",
            Basis::Declared => "declared by the organisation",
            Basis::Unknown => "unknown",
        }
    }

    fn class(self) -> &'static str {
        match self {
            Basis::Verified => "verified",
            Basis::Declared => "declared",
            Basis::Unknown => "unknown",
        }
    }
}

/// A value as text: strings as they are, numbers and booleans written out, lists joined,
/// anything missing empty.
fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| text(Some(x)))
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    }
}

fn field(v: &Value, key: &str) -> String {
    text(v.get(key))
}

fn number(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The basis of a criterion, downgraded to "declared" when it is an organisational fact.
/// Geographic redundancy is one unless `sited` (the predicate's topology puts the database
/// replicas in two or more sites): then terroir established it from what it renders.
fn basis(raw: &str, axis: &str, wording: &str, sited: bool) -> (Basis, bool) {
    match raw {
        "verified" => {
            let lower = wording.to_lowercase();
            let organisational = ORGANISATIONAL
                .iter()
                .any(|w| lower.contains(w) && !(sited && *w == "redundancy"));
            if axis == "publisher" || organisational {
                (Basis::Declared, true)
            } else {
                (Basis::Verified, false)
            }
        }
        "declared" => (Basis::Declared, false),
        _ => (Basis::Unknown, false),
    }
}

/// Where a finding's observation comes from, in words.
fn finding_basis(raw: &str) -> String {
    match raw {
        "declared" => "declared by the organisation".into(),
        "dns" => "DNS resolution".into(),
        "live" => "live probe".into(),
        "plan" => "Terraform plan".into(),
        "" => "unknown".into(),
        other => other.into(),
    }
}

fn verdict_rank(v: &str) -> u8 {
    match v {
        "fail" => 0,
        "warn" => 1,
        "pass" => 2,
        _ => 3,
    }
}

fn verdict_label(v: &str) -> String {
    match v {
        "pass" => "PASS".into(),
        "warn" => "WARN".into(),
        "fail" => "FAIL".into(),
        "" => "UNKNOWN".into(),
        other => other.to_uppercase(),
    }
}

fn verdict_class(v: &str) -> &'static str {
    match v {
        "pass" => "pass",
        "warn" => "warn",
        "fail" => "fail",
        _ => "unknown",
    }
}

fn verdict_meaning(v: &str) -> &'static str {
    match v {
        "pass" => "every finding meets the policy.",
        "warn" => {
            "no finding breaks the policy, but some could not be established or are weak points."
        }
        "fail" => "at least one finding breaks the policy.",
        _ => "the attestation does not state a verdict.",
    }
}

fn band_meaning(band: &str) -> &'static str {
    match band {
        "complete" => "90 to 100 points",
        "partial" => "70 to 89 points",
        "insufficient" => "below 70 points",
        _ => "no stated range",
    }
}

/// `{"a": {"b": 1}}` as `[("a.b", "1")]`, in the predicate's order.
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, x, out);
            }
        }
        Value::Array(a) if a.iter().any(|x| x.is_object() || x.is_array()) => {
            for (i, x) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), x, out);
            }
        }
        other => out.push((prefix.to_owned(), text(Some(other)))),
    }
}

impl Report {
    fn from(p: &Value) -> Report {
        let tool = p.get("tool").unwrap_or(&Value::Null);
        let grid = p.get("grid").unwrap_or(&Value::Null);
        let target = p.get("target").unwrap_or(&Value::Null);

        let mut axes: Vec<(String, Axis)> = AXES
            .iter()
            .map(|(id, title)| {
                (
                    (*id).to_owned(),
                    Axis {
                        title: (*title).to_owned(),
                        points: 0,
                        max: 0,
                        criteria: Vec::new(),
                    },
                )
            })
            .collect();
        let (mut points_verified, mut points_declared) = (0, 0);
        let sited = p
            .pointer("/topology/database/sites")
            .and_then(Value::as_array)
            .is_some_and(|s| s.len() >= 2);
        for c in list(grid, "criteria") {
            let axis_id = field(c, "axis");
            let wording = field(c, "criterion");
            let (basis, overclaimed) = basis(&field(c, "basis"), &axis_id, &wording, sited);
            match basis {
                Basis::Verified => points_verified += number(c, "points"),
                Basis::Declared => points_declared += number(c, "points"),
                Basis::Unknown => {}
            }
            let criterion = Criterion {
                criterion: wording,
                points: field(c, "points"),
                max: field(c, "max"),
                basis,
                overclaimed,
                reason: field(c, "reason"),
            };
            let i = match axes.iter().position(|(id, _)| *id == axis_id) {
                Some(i) => i,
                None => {
                    let title = if axis_id.is_empty() {
                        "Other".to_owned()
                    } else {
                        axis_id.clone()
                    };
                    axes.push((
                        axis_id,
                        Axis {
                            title,
                            points: 0,
                            max: 0,
                            criteria: Vec::new(),
                        },
                    ));
                    axes.len() - 1
                }
            };
            if let Some((_, axis)) = axes.get_mut(i) {
                axis.points += number(c, "points");
                axis.max += number(c, "max");
                axis.criteria.push(criterion);
            }
        }

        let criteria = list(p, "criteria")
            .iter()
            .map(|q| {
                let question = field(q, "question");
                let (basis, overclaimed) = basis(&field(q, "basis"), "", &question, false);
                Question {
                    question,
                    answer: field(q, "answer"),
                    basis,
                    overclaimed,
                    evidence: field(q, "evidence"),
                }
            })
            .collect();

        let mut findings: Vec<Finding> = list(p, "findings")
            .iter()
            .map(|f| Finding {
                subject: field(f, "subject"),
                observed: field(f, "observed"),
                expected: field(f, "expected"),
                verdict: field(f, "verdict"),
                basis: finding_basis(&field(f, "basis")),
                evidence: field(f, "evidence"),
            })
            .collect();
        // Stable: within a verdict, the predicate's order.
        findings.sort_by_key(|f| verdict_rank(&f.verdict));

        let mut target_detail = Vec::new();
        if let Some(d) = target.get("detail") {
            flatten("", d, &mut target_detail);
        }

        let pol = p.get("policy").unwrap_or(&Value::Null);
        let or_none = |s: String| if s.is_empty() { "none".to_owned() } else { s };
        let policy = vec![
            ("Allowed countries", or_none(field(pol, "allowedCountries"))),
            (
                "Forbidden jurisdictions",
                or_none(field(pol, "forbiddenJurisdictions")),
            ),
            (
                "Required qualifications",
                or_none(field(pol, "requiredQualifications")),
            ),
            ("Enforcement", or_none(field(pol, "enforcement"))),
        ];

        Report {
            platform: field(p, "platform"),
            time: field(p, "time"),
            tool: format!("{} {}", field(tool, "name"), field(tool, "version"))
                .trim()
                .to_owned(),
            verdict: field(p, "verdict"),
            total: field(grid, "total"),
            max: field(grid, "max"),
            band: field(grid, "band"),
            points_verified,
            points_declared,
            target_kind: field(target, "kind"),
            target_detail,
            axes: axes
                .into_iter()
                .map(|(_, a)| a)
                .filter(|a| !a.criteria.is_empty())
                .collect(),
            criteria,
            findings,
            policy,
            attribution: field(p, "attribution"),
        }
    }

    fn counts(&self) -> (usize, usize, usize) {
        let n = |v: &str| self.findings.iter().filter(|f| f.verdict == v).count();
        (n("fail"), n("warn"), n("pass"))
    }
}

const OVERCLAIM_NOTE: &str = "the attestation marks this as verified, but no probe can establish it: it rests on the organisation's declaration";

const LEGEND: [(&str, &str); 3] = [
    (
        "verified",
        "established by terroir from evidence it gathered (DNS resolution, live probes of the hosts and cluster, the shipped provider catalog).",
    ),
    (
        "declared by the organisation",
        "stated by the organisation in the Platform document and not checked by any probe (law, contracts, shareholding, certificates, source code access). The organisation answers for it.",
    ),
    (
        "unknown",
        "nothing was declared or found; the criterion scores no points.",
    ),
];

// ---------------------------------------------------------------- Markdown

/// Text for Markdown: no raw HTML, no table breaks, one line.
fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '`' => out.push_str("\\`"),
            '*' => out.push_str("\\*"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn md_or(s: &str, empty: &str) -> String {
    if s.is_empty() {
        empty.to_owned()
    } else {
        md(s)
    }
}

/// The topology of the predicate, for both pages: one row per host and role (role, host,
/// address, location), then the database's replication as (label, text); none when the
/// predicate has no topology.
#[allow(clippy::type_complexity)]
fn topology_items(predicate: &Value) -> Option<(Vec<[String; 4]>, Vec<(&'static str, String)>)> {
    let t = predicate.get("topology").filter(|v| v.is_object())?;
    let place = |l: &Value| {
        ["country", "operator", "site"]
            .iter()
            .filter_map(|k| l.get(*k).and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut rows = Vec::new();
    if let Some(roles) = t.get("roles").and_then(Value::as_object) {
        for (role, hosts) in roles {
            for h in hosts.as_array().into_iter().flatten() {
                let location = match h.get("location").filter(|l| l.is_object()) {
                    None => "not declared".to_owned(),
                    Some(l) if field(h, "locationSource") == "host" => {
                        format!("{} (the host's own)", place(l))
                    }
                    Some(l) => place(l),
                };
                let address = field(h, "address");
                rows.push([
                    role.clone(),
                    field(h, "name"),
                    if address.is_empty() {
                        "assigned at provisioning".into()
                    } else {
                        address
                    },
                    location,
                ]);
            }
        }
    }
    let db = t.get("database").unwrap_or(&Value::Null);
    let names = |key: &str| {
        let v = field(db, key);
        if v.is_empty() { "none".to_owned() } else { v }
    };
    let mut items = Vec::new();
    match field(db, "managedBy").as_str() {
        "terroir" => {
            let replicas = number(db, "replicas");
            items.push((
                "Database replicas",
                if replicas > 1 {
                    format!(
                        "{replicas}: one primary and {} standby{}, {}",
                        replicas - 1,
                        if replicas > 2 { "s" } else { "" },
                        if db.get("synchronous").and_then(Value::as_bool) == Some(true) {
                            "synchronous (a commit waits for a standby)"
                        } else {
                            "asynchronous"
                        }
                    )
                } else {
                    "1: no standby".into()
                },
            ));
            items.push(("Database hosts", names("hosts")));
            items.push(("Consensus members (etcd)", names("consensus")));
        }
        "external" => items.push(("Database", "an external server, not run by terroir".into())),
        _ => items.push(("Database", "none".into())),
    }
    let sites: Vec<String> = list(db, "sites")
        .iter()
        .map(|s| {
            let hosts = field(s, "hosts");
            if hosts.is_empty() {
                place(s)
            } else {
                format!("{} ({hosts})", place(s))
            }
        })
        .collect();
    if !sites.is_empty() {
        items.push(("Sites of the replicas", sites.join("; ")));
    }
    let redundancy = db.get("redundancy").unwrap_or(&Value::Null);
    items.push(("Geographic redundancy", field(redundancy, "reason")));
    Some((rows, items))
}

/// The security baseline of the predicate, for both pages: (label, text, sub-items).
fn security_items(predicate: &Value) -> Option<Vec<(&'static str, String, Vec<String>)>> {
    let sec = predicate.get("security").filter(|v| v.is_object())?;
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "not stated".into(),
        Value::Array(a) if a.is_empty() => "none".into(),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| x.to_string())
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    };
    let mut items = Vec::new();
    for (key, label) in [
        ("tls", "TLS"),
        ("audit", "Audit trail"),
        ("secretsAtRest", "Secrets at rest"),
        ("backups", "Backups"),
    ] {
        if let Some(obj) = sec.get(key).and_then(Value::as_object) {
            let parts: Vec<String> = obj
                .iter()
                .map(|(k, v)| format!("{k}: {}", text(v)))
                .collect();
            items.push((label, parts.join("; "), Vec::new()));
        }
    }
    items.push(("Tenants", text(&sec["tenants"]), Vec::new()));
    let at_rest = &sec["encryptionAtRest"];
    let observed = at_rest["observed"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|obs| {
            let state = match obs["encrypted"].as_bool() {
                Some(true) => "encrypted",
                Some(false) => "NOT encrypted",
                None => "unknown",
            };
            format!(
                "{} {}: {state} ({})",
                text(&obs["host"]),
                text(&obs["path"]),
                text(&obs["evidence"])
            )
        })
        .collect();
    items.push((
        "Encryption at rest",
        format!(
            "declared {}, expected for this target {}",
            text(&at_rest["declared"]),
            text(&at_rest["expectedForTarget"])
        ),
        observed,
    ));
    Some(items)
}

/// The report in Markdown.
/// The continuity drill the attestation cites (`predicate.continuity`): a line saying what was
/// drilled and how it ended, and per claim its name, dependency, declared degraded mode,
/// verdict and times.
/// The images as the predicate lists them: (pinned, by tag only), each line `key: reference`.
fn image_items(predicate: &Value) -> Option<(Vec<String>, Vec<String>)> {
    let images = predicate.get("images")?;
    let lines = |key: &str| -> Vec<String> {
        list(images, key)
            .iter()
            .map(|i| format!("{}: {}", field(i, "key"), field(i, "reference")))
            .collect()
    };
    Some((lines("pinned"), lines("tagOnly")))
}

const IMAGES_INTRO: &str = "Images pinned by digest are subjects of this attestation: what ran is the image with that digest. Images referenced by tag only are not: a tag can move, so what ran under it is not attested.";

fn continuity_items(predicate: &Value) -> Option<(String, Vec<[String; 5]>)> {
    let c = predicate.get("continuity")?;
    let claims = list(c, "claims");
    let held = claims.iter().filter(|x| x["passed"] == true).count();
    let summary = format!(
        "{} ({}), {} to {}: {held} of {} claims held, in {:.0} s. The report's digest is a subject of this attestation.",
        if c["passed"] == true {
            "Passed"
        } else {
            "Failed"
        },
        field(c, "mode"),
        field(c, "startedAt"),
        field(c, "finishedAt"),
        claims.len(),
        c["totalSeconds"].as_f64().unwrap_or_default()
    );
    let secs = |v: &Value| {
        v.as_f64()
            .map(|s| format!("{s:.1} s"))
            .unwrap_or_else(|| "-".to_owned())
    };
    let rows = claims
        .iter()
        .map(|x| {
            let verdict = if x["passed"] == true {
                "held".to_owned()
            } else {
                format!("failed: {}", field(x, "reason"))
            };
            [
                field(x, "name"),
                field(x, "dependency"),
                field(x, "declared"),
                verdict,
                format!(
                    "{} / {}",
                    secs(&x["detectSeconds"]),
                    secs(&x["recoverSeconds"])
                ),
            ]
        })
        .collect();
    Some((summary, rows))
}

pub fn markdown(predicate: &Value) -> String {
    let r = Report::from(predicate);
    let mut o = String::new();
    let line = |o: &mut String, s: &str| {
        o.push_str(s);
        o.push('\n');
    };

    line(
        &mut o,
        &format!(
            "# Sovereignty attestation report: {}",
            md_or(&r.platform, "(unnamed platform)")
        ),
    );
    line(&mut o, "");
    line(
        &mut o,
        &format!(
            "Attested at {} by {}.",
            md_or(&r.time, "(time not stated)"),
            md_or(&r.tool, "(tool not stated)")
        ),
    );
    line(&mut o, "");
    line(
        &mut o,
        &format!(
            "**Verdict: {}**: {}",
            md(&verdict_label(&r.verdict)),
            verdict_meaning(&r.verdict)
        ),
    );
    line(&mut o, "");
    line(
        &mut o,
        &format!(
            "**Score: {} / {} ({})**: the band for {}.",
            md_or(&r.total, "?"),
            md_or(&r.max, "?"),
            md_or(&r.band, "no band"),
            band_meaning(&r.band)
        ),
    );
    line(&mut o, "");
    let (fail, warn, pass) = r.counts();
    line(
        &mut o,
        &format!(
            "Findings: {fail} fail, {warn} warn, {pass} pass. Of the points scored, {} rest on verified evidence and {} on the organisation's declarations.",
            r.points_verified, r.points_declared
        ),
    );
    line(&mut o, "");
    line(
        &mut o,
        &format!("Target: {}.", md_or(&r.target_kind, "not stated")),
    );
    line(&mut o, "");
    line(&mut o, "## How to read this report");
    line(&mut o, "");
    for (term, meaning) in LEGEND {
        line(&mut o, &format!("- **{term}**: {meaning}"));
    }
    line(&mut o, "");

    line(&mut o, "## Sovereignty score");
    line(&mut o, "");
    line(
        &mut o,
        "A 100-point grid: hosting 30, publisher 25, technology 20, legal 25. 90 to 100 is complete, 70 to 89 partial, below 70 insufficient.",
    );
    for a in &r.axes {
        line(&mut o, "");
        line(
            &mut o,
            &format!("### {}: {} / {}", md(&a.title), a.points, a.max),
        );
        line(&mut o, "");
        line(&mut o, "| Criterion | Points | Basis | Reason |");
        line(&mut o, "| --- | --- | --- | --- |");
        for c in &a.criteria {
            let reason = if c.overclaimed {
                format!("{} ({OVERCLAIM_NOTE})", md(&c.reason))
            } else {
                md(&c.reason)
            };
            line(
                &mut o,
                &format!(
                    "| {} | {} / {} | {} | {} |",
                    md(&c.criterion),
                    md(&c.points),
                    md(&c.max),
                    c.basis.label(),
                    reason
                ),
            );
        }
    }
    line(&mut o, "");

    line(&mut o, "## Customer-engagement platform criteria");
    line(&mut o, "");
    if r.criteria.is_empty() {
        line(&mut o, "No criteria in the attestation.");
    } else {
        line(&mut o, "| Question | Answer | Basis | Evidence |");
        line(&mut o, "| --- | --- | --- | --- |");
        for q in &r.criteria {
            let evidence = if q.overclaimed {
                format!("{} ({OVERCLAIM_NOTE})", md(&q.evidence))
            } else {
                md(&q.evidence)
            };
            line(
                &mut o,
                &format!(
                    "| {} | {} | {} | {} |",
                    md(&q.question),
                    md(&q.answer),
                    q.basis.label(),
                    evidence
                ),
            );
        }
    }
    line(&mut o, "");

    line(&mut o, "## Findings");
    line(&mut o, "");
    if r.findings.is_empty() {
        line(&mut o, "No findings in the attestation.");
    } else {
        line(&mut o, "Failures first, then warnings, then passes.");
        line(&mut o, "");
        line(
            &mut o,
            "| Verdict | Subject | Observed | Expected | Basis | Evidence |",
        );
        line(&mut o, "| --- | --- | --- | --- | --- | --- |");
        for f in &r.findings {
            line(
                &mut o,
                &format!(
                    "| {} | {} | {} | {} | {} | {} |",
                    md(&verdict_label(&f.verdict)),
                    md(&f.subject),
                    md(&f.observed),
                    md(&f.expected),
                    md(&f.basis),
                    md(&f.evidence)
                ),
            );
        }
    }
    line(&mut o, "");

    line(&mut o, "## Target");
    line(&mut o, "");
    line(
        &mut o,
        &format!("- Kind: {}", md_or(&r.target_kind, "not stated")),
    );
    for (k, v) in &r.target_detail {
        line(&mut o, &format!("- {}: {}", md(k), md(v)));
    }
    line(&mut o, "");

    if let Some((rows, items)) = topology_items(predicate) {
        line(&mut o, "## Topology");
        line(&mut o, "");
        if !rows.is_empty() {
            line(&mut o, "| Role | Host | Address | Location |");
            line(&mut o, "| --- | --- | --- | --- |");
            for [role, host, address, location] in &rows {
                line(
                    &mut o,
                    &format!(
                        "| {} | {} | {} | {} |",
                        md(role),
                        md(host),
                        md(address),
                        md(location)
                    ),
                );
            }
            line(&mut o, "");
        }
        for (label, text) in items {
            line(&mut o, &format!("- **{label}**: {}", md(&text)));
        }
        line(&mut o, "");
    }

    line(&mut o, "## Policy");
    line(&mut o, "");
    for (k, v) in &r.policy {
        line(&mut o, &format!("- {k}: {}", md(v)));
    }
    line(&mut o, "");

    if let Some(items) = security_items(predicate) {
        line(&mut o, "## Security baseline");
        line(&mut o, "");
        for (label, text, subs) in items {
            line(&mut o, &format!("- **{label}**: {}", md(&text)));
            for sub in subs {
                line(&mut o, &format!("  - {}", md(&sub)));
            }
        }
        line(&mut o, "");
    }

    if let Some((pinned, tag_only)) = image_items(predicate) {
        line(&mut o, "## Images");
        line(&mut o, "");
        line(&mut o, IMAGES_INTRO);
        line(&mut o, "");
        for (label, items) in [("Pinned by digest", &pinned), ("By tag only", &tag_only)] {
            line(
                &mut o,
                &format!(
                    "- **{label}**:{}",
                    if items.is_empty() { " none" } else { "" }
                ),
            );
            for i in items {
                line(&mut o, &format!("  - {}", md(i)));
            }
        }
        line(&mut o, "");
    }

    if let Some((summary, rows)) = continuity_items(predicate) {
        line(&mut o, "## Continuity drill");
        line(&mut o, "");
        line(&mut o, &md(&summary));
        line(&mut o, "");
        line(
            &mut o,
            "| claim | dependency | declared degraded mode | verdict | detect / recover |",
        );
        line(&mut o, "| --- | --- | --- | --- | --- |");
        for [name, dependency, declared, verdict, times] in &rows {
            line(
                &mut o,
                &format!(
                    "| {} | {} | {} | {} | {} |",
                    md(name),
                    md(dependency),
                    md(declared),
                    md(verdict),
                    md(times)
                ),
            );
        }
        line(&mut o, "");
    }

    line(&mut o, "## How to verify this report");
    line(&mut o, "");
    line(
        &mut o,
        "This report is a reading of a signed attestation; the attestation, not this page, is the evidence. To check that it is authentic and matches what was deployed:",
    );
    line(&mut o, "");
    line(&mut o, "```");
    line(&mut o, VERIFY_COMMAND);
    line(&mut o, "```");
    line(&mut o, "");
    line(
        &mut o,
        "ATTESTATION is the signed attestation file, KEY.pub the signer's public key (obtained from the organisation through a channel you trust), DIR the rendered directory the attestation cites. The command checks the signature and that every digest in the attestation matches the files in DIR.",
    );
    line(&mut o, "");

    line(&mut o, "## Attribution");
    line(&mut o, "");
    line(&mut o, &md_or(&r.attribution, "No attribution stated."));
    o
}

// ---------------------------------------------------------------- HTML

/// Text for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn esc_or(s: &str, empty: &str) -> String {
    if s.is_empty() { esc(empty) } else { esc(s) }
}

fn verdict_badge(v: &str) -> String {
    let mark = match v {
        "pass" => "\u{2713} ",
        "warn" => "! ",
        "fail" => "\u{2717} ",
        _ => "? ",
    };
    format!(
        "<span class=\"badge {}\">{mark}{}</span>",
        verdict_class(v),
        esc(&verdict_label(v))
    )
}

fn basis_badge(b: Basis) -> String {
    format!("<span class=\"basis {}\">{}</span>", b.class(), b.label())
}

const CSS: &str = r#"
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f4f5f7; color: #1b1f24; font: 15px/1.5 "Liberation Sans", "DejaVu Sans", Arial, Helvetica, sans-serif; }
main { max-width: 1080px; margin: 0 auto; padding: 32px 40px 48px; background: #fff; }
h1 { font-size: 26px; line-height: 1.25; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 2px solid #1b1f24; }
h3 { font-size: 16px; margin: 22px 0 8px; display: flex; justify-content: space-between; align-items: baseline; }
h3 .sub { font-weight: normal; color: #444; }
p { margin: 6px 0; }
.meta { color: #444; margin: 0 0 20px; }
.summary { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; margin: 16px 0 8px; }
.card { border: 2px solid #1b1f24; border-radius: 6px; padding: 14px 18px; }
.card .label { text-transform: uppercase; letter-spacing: .06em; font-size: 12px; color: #444; }
.card .big { font-size: 34px; font-weight: bold; line-height: 1.2; margin: 4px 0; }
.card.fail { border-color: #a61b1b; }
.card.warn { border-color: #8a5a00; }
.card.pass { border-color: #176b2c; }
.facts { margin: 10px 0 0; color: #333; }
.badge { display: inline-block; font-weight: bold; padding: 1px 8px; border-radius: 4px; border: 1px solid; white-space: nowrap; font-size: 13px; }
.big .badge { font-size: 30px; padding: 2px 14px; }
.badge.pass { color: #0f5320; background: #dcf3e2; border-color: #176b2c; }
.badge.warn { color: #6b4500; background: #fff1cc; border-color: #8a5a00; }
.badge.fail { color: #8c1111; background: #fde0e0; border-color: #a61b1b; }
.badge.unknown { color: #333; background: #eee; border-color: #666; }
.basis { display: inline-block; padding: 0 6px; border-radius: 3px; font-size: 13px; border: 1px solid; }
.basis.verified { color: #0b4a7a; background: #e3f0fb; border-color: #0b4a7a; font-weight: bold; }
.basis.declared { color: #5a3d00; background: #fbf3df; border-color: #8a6a1f; border-style: dashed; }
.basis.unknown { color: #444; background: #f0f0f0; border-color: #888; border-style: dotted; }
.note { display: block; font-size: 12px; color: #5a3d00; margin-top: 2px; }
table { width: 100%; table-layout: fixed; border-collapse: collapse; margin: 6px 0 10px; font-size: 14px; }
th, td { border: 1px solid #9aa1a9; padding: 5px 8px; text-align: left; vertical-align: top; overflow-wrap: anywhere; }
th { background: #e9ecef; font-weight: bold; }
td.num { white-space: nowrap; text-align: right; font-variant-numeric: tabular-nums; }
tr.fail td:first-child { border-left: 4px solid #a61b1b; }
tr.warn td:first-child { border-left: 4px solid #8a5a00; }
tr.pass td:first-child { border-left: 4px solid #176b2c; }
dl.legend { display: grid; grid-template-columns: max-content 1fr; gap: 6px 12px; margin: 8px 0; }
dl.legend dt { margin: 0; }
dl.legend dd { margin: 0; }
ul.kv { margin: 6px 0; padding-left: 20px; }
code, pre { font-family: "DejaVu Sans Mono", "Liberation Mono", monospace; font-size: 13px; }
pre { background: #f4f5f7; border: 1px solid #9aa1a9; padding: 10px 12px; white-space: pre-wrap; overflow-wrap: anywhere; }
footer { margin-top: 36px; padding-top: 8px; border-top: 1px solid #9aa1a9; font-size: 13px; color: #333; }
@page { size: A4; margin: 16mm 14mm 18mm; }
@media print {
  body { background: none; font-size: 10pt; }
  main { max-width: none; padding: 0; }
  h2 { font-size: 14pt; break-after: avoid; page-break-after: avoid; }
  h3 { font-size: 11.5pt; break-after: avoid; page-break-after: avoid; }
  table { font-size: 9pt; }
  .badge { font-size: 8pt; padding: 0 4px; }
  thead { display: table-header-group; }
  tr, .card, pre, dl.legend { break-inside: avoid; page-break-inside: avoid; }
  .summary { break-inside: avoid; page-break-inside: avoid; }
  section.findings, section.criteria { break-before: page; page-break-before: always; }
  .badge, .basis, th, pre { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  .big { font-size: 24pt; }
  .big .badge { font-size: 22pt; }
}
"#;

/// The report as one self-contained HTML page.
/// One HTML table, a line per element: the columns' widths in percent (a last column takes the
/// rest), the header cells, and the rows, each already rendered as its `<tr>…</tr>`.
fn html_table(
    o: &mut String,
    widths: &[u32],
    headers: &[&str],
    rows: impl IntoIterator<Item = String>,
) {
    let mut lines = vec!["<table>".to_owned()];
    let cols: String = widths
        .iter()
        .map(|w| format!("<col style=\"width:{w}%\">"))
        .collect();
    lines.push(format!("<colgroup>{cols}<col></colgroup>"));
    let ths: String = headers.iter().map(|h| format!("<th>{h}</th>")).collect();
    lines.push(format!("<thead><tr>{ths}</tr></thead>"));
    lines.push("<tbody>".into());
    lines.extend(rows);
    lines.push("</tbody>".into());
    lines.push("</table>".into());
    for l in lines {
        o.push_str(&l);
        o.push('\n');
    }
}

pub fn html(predicate: &Value) -> String {
    let r = Report::from(predicate);
    let mut o = String::new();
    let push = |o: &mut String, s: &str| {
        o.push_str(s);
        o.push('\n');
    };
    let platform = esc_or(&r.platform, "(unnamed platform)");

    push(&mut o, "<!DOCTYPE html>");
    push(&mut o, "<html lang=\"en\">");
    push(&mut o, "<head>");
    push(&mut o, "<meta charset=\"utf-8\">");
    // Nothing may be fetched: the page carries everything it shows.
    push(
        &mut o,
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
    );
    push(
        &mut o,
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
    );
    push(
        &mut o,
        &format!("<title>Sovereignty attestation report: {platform}</title>"),
    );
    push(&mut o, &format!("<style>{CSS}</style>"));
    push(&mut o, "</head>");
    push(&mut o, "<body>");
    push(&mut o, "<main>");

    push(&mut o, "<header>");
    push(
        &mut o,
        &format!("<h1>Sovereignty attestation report: {platform}</h1>"),
    );
    push(
        &mut o,
        &format!(
            "<p class=\"meta\">Attested at <strong>{}</strong> by <strong>{}</strong>.</p>",
            esc_or(&r.time, "(time not stated)"),
            esc_or(&r.tool, "(tool not stated)")
        ),
    );
    push(&mut o, "</header>");

    let (fail, warn, pass) = r.counts();
    push(&mut o, "<section class=\"summary\">");
    push(
        &mut o,
        &format!(
            "<div class=\"card {}\"><div class=\"label\">Verdict</div><div class=\"big\">{}</div><p>{}</p></div>",
            verdict_class(&r.verdict),
            verdict_badge(&r.verdict),
            esc(verdict_meaning(&r.verdict))
        ),
    );
    push(
        &mut o,
        &format!(
            "<div class=\"card\"><div class=\"label\">Sovereignty score</div><div class=\"big\">{} / {}</div><p>Band: <strong>{}</strong> ({})</p></div>",
            esc_or(&r.total, "?"),
            esc_or(&r.max, "?"),
            esc_or(&r.band, "no band"),
            esc(band_meaning(&r.band))
        ),
    );
    push(&mut o, "</section>");
    push(
        &mut o,
        &format!(
            "<p class=\"facts\">Findings: <strong>{fail} fail</strong>, <strong>{warn} warn</strong>, <strong>{pass} pass</strong>. Of the points scored, <strong>{}</strong> rest on verified evidence and <strong>{}</strong> on the organisation's declarations. Target: <strong>{}</strong>.</p>",
            r.points_verified,
            r.points_declared,
            esc_or(&r.target_kind, "not stated")
        ),
    );

    push(&mut o, "<section>");
    push(&mut o, "<h2>How to read this report</h2>");
    push(&mut o, "<dl class=\"legend\">");
    for (term, meaning) in LEGEND {
        let b = match term {
            "verified" => Basis::Verified,
            "unknown" => Basis::Unknown,
            _ => Basis::Declared,
        };
        push(
            &mut o,
            &format!("<dt>{}</dt><dd>{}</dd>", basis_badge(b), esc(meaning)),
        );
    }
    push(&mut o, "</dl>");
    push(&mut o, "</section>");

    push(&mut o, "<section class=\"grid\">");
    push(&mut o, "<h2>Sovereignty score</h2>");
    push(
        &mut o,
        "<p>A 100-point grid: hosting 30, publisher 25, technology 20, legal 25. 90 to 100 is complete, 70 to 89 partial, below 70 insufficient.</p>",
    );
    for a in &r.axes {
        push(
            &mut o,
            &format!(
                "<h3><span>{}</span><span class=\"sub\">{} / {} points</span></h3>",
                esc(&a.title),
                a.points,
                a.max
            ),
        );
        let rows = a.criteria.iter().map(|c| {
            let note = if c.overclaimed {
                format!("<span class=\"note\">{}</span>", esc(OVERCLAIM_NOTE))
            } else {
                String::new()
            };
            format!(
                "<tr><td>{}</td><td class=\"num\">{} / {}</td><td>{}</td><td>{}{note}</td></tr>",
                esc(&c.criterion),
                esc(&c.points),
                esc(&c.max),
                basis_badge(c.basis),
                esc(&c.reason)
            )
        });
        html_table(
            &mut o,
            &[28, 9, 21],
            &["Criterion", "Points", "Basis", "Reason"],
            rows,
        );
    }
    push(&mut o, "</section>");

    push(&mut o, "<section class=\"criteria\">");
    push(&mut o, "<h2>Customer-engagement platform criteria</h2>");
    if r.criteria.is_empty() {
        push(&mut o, "<p>No criteria in the attestation.</p>");
    } else {
        let rows = r.criteria.iter().map(|q| {
            let note = if q.overclaimed {
                format!("<span class=\"note\">{}</span>", esc(OVERCLAIM_NOTE))
            } else {
                String::new()
            };
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}{note}</td></tr>",
                esc(&q.question),
                esc(&q.answer),
                basis_badge(q.basis),
                esc(&q.evidence)
            )
        });
        html_table(
            &mut o,
            &[25, 27, 19],
            &["Question", "Answer", "Basis", "Evidence"],
            rows,
        );
    }
    push(&mut o, "</section>");

    push(&mut o, "<section class=\"findings\">");
    push(&mut o, "<h2>Findings</h2>");
    if r.findings.is_empty() {
        push(&mut o, "<p>No findings in the attestation.</p>");
    } else {
        push(&mut o, "<p>Failures first, then warnings, then passes.</p>");
        let rows = r.findings.iter().map(|f| {
            format!(
                "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                verdict_class(&f.verdict),
                verdict_badge(&f.verdict),
                esc(&f.subject),
                esc(&f.observed),
                esc(&f.expected),
                esc(&f.basis),
                esc(&f.evidence)
            )
        });
        html_table(
            &mut o,
            &[11, 19, 16, 13, 13],
            &[
                "Verdict", "Subject", "Observed", "Expected", "Basis", "Evidence",
            ],
            rows,
        );
    }
    push(&mut o, "</section>");

    push(&mut o, "<section>");
    push(&mut o, "<h2>Target</h2>");
    push(&mut o, "<ul class=\"kv\">");
    push(
        &mut o,
        &format!(
            "<li>Kind: <strong>{}</strong></li>",
            esc_or(&r.target_kind, "not stated")
        ),
    );
    for (k, v) in &r.target_detail {
        push(&mut o, &format!("<li>{}: {}</li>", esc(k), esc(v)));
    }
    push(&mut o, "</ul>");
    push(&mut o, "<h2>Policy</h2>");
    push(&mut o, "<ul class=\"kv\">");
    for (k, v) in &r.policy {
        push(
            &mut o,
            &format!("<li>{k}: <strong>{}</strong></li>", esc(v)),
        );
    }
    push(&mut o, "</ul>");
    push(&mut o, "</section>");

    if let Some((rows, items)) = topology_items(predicate) {
        push(&mut o, "<section>");
        push(&mut o, "<h2>Topology</h2>");
        if !rows.is_empty() {
            html_table(
                &mut o,
                &[15, 15, 20],
                &["Role", "Host", "Address", "Location"],
                rows.iter().map(|[role, host, address, location]| {
                    format!(
                        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(role),
                        esc(host),
                        esc(address),
                        esc(location)
                    )
                }),
            );
        }
        push(&mut o, "<ul class=\"kv\">");
        for (label, text) in items {
            push(&mut o, &format!("<li>{label}: {}</li>", esc(&text)));
        }
        push(&mut o, "</ul>");
        push(&mut o, "</section>");
    }

    if let Some(items) = security_items(predicate) {
        push(&mut o, "<section>");
        push(&mut o, "<h2>Security baseline</h2>");
        push(&mut o, "<ul class=\"kv\">");
        for (label, text, subs) in items {
            let subs: String = if subs.is_empty() {
                String::new()
            } else {
                format!(
                    "<ul>{}</ul>",
                    subs.iter()
                        .map(|s| format!("<li>{}</li>", esc(s)))
                        .collect::<String>()
                )
            };
            push(&mut o, &format!("<li>{label}: {}{subs}</li>", esc(&text)));
        }
        push(&mut o, "</ul>");
        push(&mut o, "</section>");
    }

    if let Some((pinned, tag_only)) = image_items(predicate) {
        push(&mut o, "<section>");
        push(&mut o, "<h2>Images</h2>");
        push(&mut o, &format!("<p>{}</p>", esc(IMAGES_INTRO)));
        push(&mut o, "<ul class=\"kv\">");
        for (label, items) in [("Pinned by digest", &pinned), ("By tag only", &tag_only)] {
            let inner: String = if items.is_empty() {
                "none".to_owned()
            } else {
                format!(
                    "<ul>{}</ul>",
                    items
                        .iter()
                        .map(|i| format!("<li>{}</li>", esc(i)))
                        .collect::<String>()
                )
            };
            push(&mut o, &format!("<li>{label}: {inner}</li>"));
        }
        push(&mut o, "</ul>");
        push(&mut o, "</section>");
    }

    if let Some((summary, rows)) = continuity_items(predicate) {
        push(&mut o, "<section>");
        push(&mut o, "<h2>Continuity drill</h2>");
        push(&mut o, &format!("<p>{}</p>", esc(&summary)));
        html_table(
            &mut o,
            &[14, 20, 34, 18],
            &[
                "Claim",
                "Dependency",
                "Declared degraded mode",
                "Verdict",
                "Detect / recover",
            ],
            rows.iter()
                .map(|[name, dependency, declared, verdict, times]| {
                    format!(
                        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(name),
                        esc(dependency),
                        esc(declared),
                        esc(verdict),
                        esc(times)
                    )
                }),
        );
        push(&mut o, "</section>");
    }

    push(&mut o, "<section class=\"verify\">");
    push(&mut o, "<h2>How to verify this report</h2>");
    push(
        &mut o,
        "<p>This report is a reading of a signed attestation; the attestation, not this page, is the evidence. To check that it is authentic and matches what was deployed:</p>",
    );
    push(
        &mut o,
        &format!("<pre><code>{}</code></pre>", esc(VERIFY_COMMAND)),
    );
    push(
        &mut o,
        "<p><code>ATTESTATION</code> is the signed attestation file, <code>KEY.pub</code> the signer's public key (obtained from the organisation through a channel you trust), <code>DIR</code> the rendered directory the attestation cites. The command checks the signature and that every digest in the attestation matches the files in <code>DIR</code>.</p>",
    );
    push(&mut o, "</section>");

    push(
        &mut o,
        &format!(
            "<footer><strong>Attribution:</strong> {}</footer>",
            esc_or(&r.attribution, "No attribution stated.")
        ),
    );
    push(&mut o, "</main>");
    push(&mut o, "</body>");
    push(&mut o, "</html>");
    o
}
