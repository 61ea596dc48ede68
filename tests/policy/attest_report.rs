#![allow(clippy::unwrap_used)]
//! The attestation report (Markdown and self-contained HTML, rendered by headless Chromium to a
//! screenshot and a PDF) and the draft record of processing activities.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use terroir::attest::{report, ropa};

fn fixture() -> Value {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/attest/predicate.json"),
    )
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn criteria(p: &Value) -> Vec<Value> {
    p["grid"]["criteria"].as_array().unwrap().clone()
}

#[test]
fn html_is_self_contained() {
    let html = report::html(&fixture());
    assert!(html.starts_with("<!DOCTYPE html>"));
    for forbidden in [
        "src=",
        "href=",
        "@import",
        "url(",
        "<script",
        "<link",
        "<img",
        "@font-face",
        "http-equiv=\"refresh\"",
    ] {
        assert!(
            !html.contains(forbidden),
            "the page must not fetch anything, found {forbidden:?}"
        );
    }
    assert!(html.contains("<style>"));
    assert!(html.contains("@media print"));
    assert!(html.contains("size: A4"));
}

#[test]
fn html_carries_verdict_score_and_every_reason() {
    let p = fixture();
    let html = report::html(&p);
    assert!(html.contains("Sovereignty attestation report: mutuelle-crm"));
    assert!(html.contains("2026-11-23T12:00:00Z"));
    assert!(html.contains("terroir 0.1.0"));
    assert!(
        html.contains("FAIL"),
        "the verdict is written out, not only coloured"
    );
    assert!(html.contains("70 / 100"));
    assert!(html.contains("partial"));
    for c in criteria(&p) {
        let reason = c["reason"].as_str().unwrap();
        let escaped = reason
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#39;");
        assert!(html.contains(&escaped), "missing reason: {reason}");
    }
    for axis in ["Hosting", "Publisher", "Technology", "Legal"] {
        assert!(
            html.contains(&format!("<h3><span>{axis}</span>")),
            "missing axis {axis}"
        );
    }
    for q in p["criteria"].as_array().unwrap() {
        let question = q["question"].as_str().unwrap().replace('\'', "&#39;");
        assert!(
            html.contains(&question),
            "missing criterion question {question}"
        );
    }
    assert!(html.contains("terroir attest verify ATTESTATION --pubkey KEY.pub --against DIR"));
    assert!(html.contains("IP geolocation by DB-IP"));
    assert!(html.contains("Allowed countries: <strong>EU</strong>"));
}

/// The row of the score table for one criterion.
fn row<'a>(html: &'a str, criterion: &str) -> &'a str {
    let start = html
        .find(&format!("<tr><td>{criterion}</td>"))
        .unwrap_or_else(|| panic!("no row for {criterion}"));
    let end = start + html[start..].find("</tr>").unwrap();
    &html[start..end]
}

#[test]
fn declared_criteria_read_as_declared_never_verified() {
    let p = fixture();
    let html = report::html(&p);
    let mut declared = 0;
    for c in criteria(&p) {
        let r = row(&html, c["criterion"].as_str().unwrap());
        match c["basis"].as_str().unwrap() {
            "declared" => {
                declared += 1;
                assert!(r.contains("declared by the organisation"), "{r}");
                assert!(
                    !r.contains(">verified<"),
                    "a declared criterion is labelled verified: {r}"
                );
            }
            "verified" => assert!(r.contains(">verified<"), "{r}"),
            _ => assert!(r.contains(">unknown<"), "{r}"),
        }
    }
    assert!(declared >= 5);

    // A fact no probe can see stays declared even when the predicate claims otherwise.
    let mut p = p;
    let publisher = p["grid"]["criteria"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c["criterion"] == "EU shareholding above 50%")
        .unwrap();
    publisher["basis"] = "verified".into();
    let html = report::html(&p);
    let r = row(&html, "EU shareholding above 50%");
    assert!(
        r.contains("declared by the organisation") && !r.contains(">verified<"),
        "{r}"
    );
    assert!(r.contains("no probe can establish it"), "{r}");
    let md = report::markdown(&p);
    let line = md
        .lines()
        .find(|l| l.starts_with("| EU shareholding above 50%"))
        .unwrap();
    assert!(line.contains("| declared by the organisation |"), "{line}");
}

#[test]
fn findings_put_failures_first() {
    let html = report::html(&fixture());
    let body = &html[html.find("<h2>Findings</h2>").unwrap()..];
    let rows: Vec<&str> = body
        .split("<tr class=\"")
        .skip(1)
        .map(|r| r.split('"').next().unwrap())
        .collect();
    assert_eq!(rows.len(), 15);
    let mut sorted = rows.clone();
    sorted.sort_by_key(|v| ["fail", "warn", "pass"].iter().position(|x| x == v));
    assert_eq!(rows, sorted);
    assert_eq!(rows[0], "fail");
}

#[test]
fn every_predicate_value_is_escaped() {
    let mut p = fixture();
    p["findings"][0]["evidence"] = "<script>alert(1)</script>".into();
    p["platform"] = "a\"b<i>'&".into();
    p["grid"]["criteria"][0]["reason"] = "x | y <b>".into();
    let html = report::html(&p);
    assert!(!html.contains("<script>"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("a&quot;b&lt;i&gt;&#39;&amp;"));
    assert!(!html.contains("<i>") && !html.contains("<b>"));

    let md = report::markdown(&p);
    assert!(!md.contains("<script>"));
    assert!(md.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let line = md.lines().find(|l| l.contains("x \\| y")).unwrap();
    assert_eq!(
        line.matches(" | ").count(),
        3,
        "a `|` in a value must not add a column: {line}"
    );
}

#[test]
fn renders_are_deterministic() {
    let p = fixture();
    assert_eq!(report::html(&p), report::html(&p));
    assert_eq!(report::markdown(&p), report::markdown(&p));
}

#[test]
fn markdown_has_the_same_content() {
    let p = fixture();
    let md = report::markdown(&p);
    assert!(md.starts_with("# Sovereignty attestation report: mutuelle-crm"));
    assert!(md.contains("**Verdict: FAIL**"));
    assert!(md.contains("**Score: 70 / 100 (partial)**"));
    for c in criteria(&p) {
        assert!(
            md.contains(c["reason"].as_str().unwrap()),
            "missing reason {}",
            c["reason"]
        );
    }
    for h in [
        "### Hosting: 25 / 30",
        "### Publisher: 25 / 25",
        "### Technology: 10 / 20",
        "### Legal: 10 / 25",
        "## Findings",
        "## Policy",
        "## How to verify this report",
        "## Attribution",
    ] {
        assert!(md.contains(h), "missing {h}");
    }
    assert!(md.contains("| Verdict | Subject | Observed | Expected | Basis | Evidence |"));
    let first = md
        .lines()
        .find(|l| l.starts_with("| FAIL") || l.starts_with("| WARN") || l.starts_with("| PASS"))
        .unwrap();
    assert!(first.starts_with("| FAIL | CDN"), "{first}");
    assert!(md.contains("terroir attest verify ATTESTATION --pubkey KEY.pub --against DIR"));
}

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH")?
                .to_str()?
                .split(':')
                .map(|d| Path::new(d).join(name))
                .find(|p| p.is_file())
        })
}

/// Chromium with everything that could reach the network turned off; only a file:// URL.
fn headless(browser: &Path, dir: &Path, output_flag: &str, page: &Path) {
    let status = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--no-pdf-header-footer",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(output_flag)
        .arg("--window-size=1280,2000")
        .arg(format!("file://{}", page.display()))
        .env("HOME", dir)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&status.stderr)
    );
}

#[test]
fn chromium_renders_the_page_and_prints_it() {
    let Some(browser) = chromium() else {
        panic!("chromium is not installed (apt-get install chromium)");
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, report::html(&fixture())).unwrap();
    std::fs::copy(
        &page,
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("attest-report.html"),
    )
    .unwrap();

    let png = dir.path().join("report.png");
    headless(
        &browser,
        dir.path(),
        &format!("--screenshot={}", png.display()),
        &page,
    );
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        bytes.len() > 20_000,
        "the screenshot looks blank ({} bytes)",
        bytes.len()
    );
    let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join("attest-report.png");
    std::fs::copy(&png, &keep).unwrap();

    let pdf = dir.path().join("report.pdf");
    headless(
        &browser,
        dir.path(),
        &format!("--print-to-pdf={}", pdf.display()),
        &page,
    );
    let bytes = std::fs::read(&pdf).unwrap();
    assert!(bytes.starts_with(b"%PDF"), "not a PDF");
    assert!(
        bytes.len() > 10_000,
        "the PDF looks empty ({} bytes)",
        bytes.len()
    );
    std::fs::copy(
        &pdf,
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("attest-report.pdf"),
    )
    .unwrap();
}

#[test]
fn ropa_is_a_draft_from_the_document() {
    let loaded = terroir::document::load_file(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/kubernetes.yaml"),
    )
    .unwrap();
    let md = ropa::ropa(&loaded.platform);
    std::fs::write(Path::new(env!("CARGO_TARGET_TMPDIR")).join("ropa.md"), &md).unwrap();
    assert!(md.contains("DRAFT"));
    assert!(md.contains("Draft generated by terroir from the Platform document; to be reviewed and completed by the controller"));
    for s in [
        "member relations",
        "claims follow-up",
        "identity",
        "contact details",
        "health-related correspondence",
    ] {
        assert!(md.contains(s), "missing {s}");
    }
    assert!(
        md.contains("Mutuelle Exemple"),
        "the declared publisher is the controller"
    );
    let brevo = md.lines().find(|l| l.contains("Brevo")).unwrap();
    assert!(
        brevo.starts_with("| SMTP relay") && brevo.contains("| FR |"),
        "{brevo}"
    );
    assert!(md.contains("Categories of data subjects: to be completed"));
    assert!(md.contains("to be completed"));
    assert!(md.contains("kept 35 days"));
    assert!(md.contains("30d"));
    assert!(md.contains("NetworkPolicies"));
    assert!(md.contains("FR, operated by 3DS Outscale, site cloudgouv-eu-west-1"));
    assert!(md.contains("None declared: every recipient is declared in the EU/EEA"));
    assert_eq!(md, ropa::ropa(&loaded.platform));
}

#[test]
fn ropa_names_third_country_transfers_and_defaults_the_controller() {
    let loaded = terroir::document::load_file(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/kubernetes.yaml"),
    )
    .unwrap();
    let mut p = loaded.platform;
    p.spec.sovereignty.declared.publisher = None;
    p.spec.sovereignty.declared.purposes.clear();
    p.spec.endpoints.smtp_relay = Some(terroir::document::Endpoint {
        url: "smtp://smtp.sendgrid.net:587".into(),
        operator: Some("SendGrid".into()),
        country: Some("US".into()),
        ca_certificate: None,
    });
    p.spec.endpoints.ai = Some(terroir::document::Endpoint {
        url: "https://api.mistral.ai".into(),
        operator: None,
        country: None,
        ca_certificate: None,
    });
    let md = ropa::ropa(&p);
    assert!(md.contains("- Name: to be completed"));
    let section = &md[md.find("## (b)").unwrap()..md.find("## (c)").unwrap()];
    assert!(section.contains("- to be completed"), "{section}");
    let transfers = &md[md.find("## (e)").unwrap()..md.find("## (f)").unwrap()];
    assert!(
        transfers.contains("Country not declared for https://api.mistral.ai: to be completed"),
        "{transfers}"
    );
    assert!(
        transfers.contains("smtp.sendgrid.net")
            && transfers.contains("declared country US is outside the EU/EEA")
            && transfers.contains("US CLOUD Act"),
        "{transfers}"
    );
}

/// Geographic redundancy is an organisational claim unless the predicate's topology puts the
/// database replicas in two or more sites: only then may the report show it as verified.
#[test]
fn redundancy_reads_as_verified_only_when_the_topology_has_two_sites() {
    let name = "Geographic redundancy inside the EU only";
    let mut p = fixture();
    let c = p["grid"]["criteria"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c["criterion"] == name)
        .unwrap();
    c["basis"] = "verified".into();
    // the fixture's replicas run in one cluster: one site
    let html = report::html(&p);
    let r = row(&html, name);
    assert!(
        r.contains("declared by the organisation") && !r.contains(">verified<"),
        "{r}"
    );
    assert!(r.contains("no probe can establish it"), "{r}");

    p["topology"]["database"]["sites"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"country": "FR", "operator": "OVHcloud", "site": "Gravelines GRA-11", "hosts": []}));
    let html = report::html(&p);
    let r = row(&html, name);
    assert!(r.contains(">verified<"), "{r}");
    assert!(!r.contains("no probe can establish it"), "{r}");

    // the topology itself, in both renderings
    let md = report::markdown(&p);
    assert!(md.contains("## Topology"), "{md}");
    assert!(
        md.contains("- **Database replicas**: 2: one primary and 1 standby, synchronous"),
        "{md}"
    );
    assert!(
        md.contains("- **Sites of the replicas**: FR, 3DS Outscale, cloudgouv-eu-west-1; FR, OVHcloud, Gravelines GRA-11"),
        "{md}"
    );
    assert!(html.contains("<h2>Topology</h2>"), "{html}");
    assert!(
        html.contains(
            "Geographic redundancy: the 2 database replicas run in one Kubernetes cluster"
        )
    );
}

#[test]
fn a_cited_continuity_drill_is_shown_claim_by_claim() {
    let mut p = fixture();
    assert!(!report::html(&p).contains("Continuity drill"));
    p["continuity"] = serde_json::json!({
        "passed": false, "mode": "claims", "startedAt": "2026-12-05T10:00:00Z",
        "finishedAt": "2026-12-05T10:01:00Z", "totalSeconds": 60.0,
        "claims": [
            {"name": "smtpRelay", "dependency": "SMTP relay smtp://relay.example.fr:587",
             "declared": "outgoing mail goes through the fallback relay", "passed": true,
             "detectSeconds": 1.4, "recoverSeconds": 0.2},
            {"name": "backupS3", "dependency": "backup storage https://s3.example.fr",
             "declared": "backups fail <and alert>", "passed": false,
             "reason": "alert-fires BackupFailing: not within 180 s", "detectSeconds": null},
        ],
    });
    let html = report::html(&p);
    assert!(html.contains("<h2>Continuity drill</h2>"));
    assert!(html.contains("1 of 2 claims held"));
    assert!(html.contains("smtpRelay") && html.contains("1.4 s / 0.2 s"));
    assert!(html.contains("failed: alert-fires BackupFailing: not within 180 s"));
    assert!(html.contains("backups fail &lt;and alert&gt;"), "escaped");
    let md = report::markdown(&p);
    assert!(
        md.contains("## Continuity drill") && md.contains("| backupS3 |"),
        "{md}"
    );
}
