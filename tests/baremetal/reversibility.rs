//! Reversibility on real hosts: a platform deployed on one test host, loaded with data (more than
//! 100,000 rows across several tables, mail in a mailbox and in the queue, files in the app's data
//! directory), is drilled into a second platform on another host: every table's row count and
//! content checksum match and the application there serves the data. A tampered or incomplete
//! export is refused with the file named, and no secret is in clear anywhere in the export.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::deployments::AFTER_THE_DRILL;
use common::hosts::TestHosts;
use common::*;
use serde_json::Value;

/// The smoke application as the example's release (`bin/crm`): a file:// URL and its SHA-256.
fn smoke_artifact(dir: &Path) -> (String, String) {
    let (archive, sha) = smoke_release(dir, "crm");
    (format!("file://{}", archive.display()), sha)
}

/// The bare-metal example as a one-host platform, every role on `address`, with a tenant.
fn one_host_platform(
    hosts: &TestHosts,
    dir: &Path,
    file: &str,
    name: &str,
    host: &str,
    address: &str,
    artifact: &(String, String),
) -> PathBuf {
    variant("baremetal.yaml", dir, file, |t| {
        without_backups(&all_roles_on_one_host(
            &t,
            hosts,
            name,
            (host, address),
            artifact,
        ))
        .replace(
            "  endpoints:\n",
            "  tenants:\n    - name: gamma\n  endpoints:\n",
        )
    })
}

fn on_host(host: &str, script: &str) -> String {
    let out = std::process::Command::new(root().join("tests/hosts/hostctl"))
        .args(["exec", host, "sh", "-c"])
        .arg(format!("cd / && {script}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{host}: {script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_platform_is_drilled_into_another_host_and_every_table_matches() {
    // a third host for the backups test, which takes these over (common/deployments.rs)
    let mut hosts = TestHosts::installed(3);
    hosts.hand_over(AFTER_THE_DRILL);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let artifact = smoke_artifact(dir);
    let a = one_host_platform(
        &hosts,
        dir,
        "a.yaml",
        "acme-crm",
        "a1",
        "198.18.0.11",
        &artifact,
    );
    let b = one_host_platform(
        &hosts,
        dir,
        "b.yaml",
        "acme-crm-next",
        "b1",
        "198.18.0.12",
        &artifact,
    );

    // both platforms deployed, at the same time
    apply_side_by_side(&[&a, &b]);
    eventually(Duration::from_secs(60), "the app on A", || {
        match http("GET", "198.18.0.11:8080", "/healthz") {
            Ok((200, _)) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });

    // data: 120,000 rows over three tables with awkward values, rows written through the app,
    // a delivered mail, a queued one (the relay cannot be reached from the test hosts), app files
    let sql = r#"
        create table customers (id bigint primary key, name text not null, email text, note text, created timestamptz not null);
        insert into customers select i, 'Client ' || i || case when i % 7 = 0 then ', "VIP"' else '' end,
            case when i % 5 = 0 then null else 'c' || i || '@example.fr' end,
            case when i % 11 = 0 then E'line one\nline two\ttabbed \\ back' when i % 13 = 0 then '' else 'é ü ñ 中文' end,
            timestamptz '2026-01-01 00:00:00+00' + i * interval '1 minute' from generate_series(1, 70000) i;
        create table interactions (id bigserial primary key, customer bigint references customers, channel text, body jsonb);
        insert into interactions (customer, channel, body) select 1 + (i % 70000), (array['mail','phone','chat'])[1 + i % 3], jsonb_build_object('n', i, 'ok', i % 2 = 0) from generate_series(1, 45000) i;
        create schema "Marketing";
        create table "Marketing"."Campaign Stats" ("Id" int primary key, score numeric(10,3), tags text[]);
        insert into "Marketing"."Campaign Stats" select i, i / 7.0, array['a,b', 'c"d'] from generate_series(1, 5000) i;
    "#;
    on_host(
        "h1",
        &format!(
            "runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -d crm -c 'set role crm' -c {}",
            shell_words(sql)
        ),
    );
    // a tenant's own data, in its own database
    on_host(
        "h1",
        "runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -d gamma -c 'set role gamma' -c 'create table contracts (id int primary key, holder text); insert into contracts select i, md5(i::text) from generate_series(1, 2500) i'",
    );
    for i in 0..5 {
        let (code, body) = http(
            "POST",
            "198.18.0.11:8080",
            &format!("/rows?value=through-the-app-{i}"),
        )
        .unwrap();
        assert_eq!(code, 201, "{body}");
    }
    let (code, body) = http("POST", "198.18.0.11:8080", "/mail?to=root@localhost").unwrap();
    assert_eq!(code, 202, "{body}");
    eventually(Duration::from_secs(60), "local delivery on A", || {
        let text = on_host("h1", "cat /var/mail/root 2>/dev/null || true");
        if text.contains("terroir smoke test") {
            Ok(())
        } else {
            Err(text)
        }
    });
    on_host(
        "h1",
        "printf 'Subject: for the customer\\n\\nqueued\\n' | /usr/sbin/sendmail someone@customer.example.org",
    );
    eventually(
        Duration::from_secs(60),
        "a message held in A's queue",
        || {
            let q = on_host("h1", "postqueue -j");
            if q.contains("someone@customer.example.org") {
                Ok(())
            } else {
                Err(q)
            }
        },
    );
    on_host(
        "h1",
        "mkdir -p /var/lib/acme-crm/attachments && printf 'contract v3\\n' > /var/lib/acme-crm/attachments/contract.txt && chown -R terroir-app: /var/lib/acme-crm",
    );

    // metrics to export: Prometheus on A has scraped its targets
    eventually(Duration::from_secs(120), "Prometheus samples on A", || {
        let out = on_host(
            "h1",
            "SSL_CERT_FILE=/etc/acme-crm/tls/ca.crt promtool query instant https://127.0.0.1:9090 'up' || true",
        );
        if out.contains("=> 1") {
            Ok(())
        } else {
            Err(out)
        }
    });

    // an age key pair for the secrets
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let key = dir.join("key.txt");
    {
        use age::secrecy::ExposeSecret;
        std::fs::write(&key, format!("{}\n", identity.to_string().expose_secret())).unwrap();
    }

    let report = dir.join("drill");
    let out = terroir()
        .arg("drill")
        .arg(&a)
        .arg("--into")
        .arg(&b)
        .arg("--report")
        .arg(&report)
        .args(["--recipient", &recipient, "--identity"])
        .arg(&key)
        .args(["--output", "json"])
        .timeout(Duration::from_secs(900))
        .output()
        .unwrap();
    let r = json_of(&out);
    assert!(
        out.status.success(),
        "drill: {r:#}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(r["passed"], true);
    // every table of the export was compared: rows and content
    let tables = r["tables"].as_array().unwrap();
    for t in [
        "public.customers",
        "public.interactions",
        "Marketing.Campaign Stats",
        "public.smoke_rows",
    ] {
        for what in ["rows", "content"] {
            let c = tables
                .iter()
                .find(|c| c["subject"] == format!("table {t} {what}"))
                .unwrap_or_else(|| panic!("{t} {what} in {tables:?}"));
            assert_eq!(c["matches"], true, "{c}");
        }
    }
    for what in ["rows", "content"] {
        let c = tables
            .iter()
            .find(|c| c["subject"] == format!("tenant gamma table public.contracts {what}"))
            .unwrap_or_else(|| panic!("the tenant's table: {tables:?}"));
        assert_eq!(c["matches"], true, "{c}");
    }
    let rows = tables
        .iter()
        .find(|c| c["subject"] == "table public.customers rows")
        .unwrap();
    assert_eq!(rows["destination"], "70000");
    assert!(
        r["export"]["rows"].as_u64().unwrap() >= 120_005,
        "{}",
        r["export"]
    );
    for phase in ["export", "verify", "restore", "compare"] {
        assert!(
            r["phases"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == phase && p["seconds"].as_f64().unwrap() >= 0.0),
            "{phase}"
        );
    }
    let mail = r["mail"].as_array().unwrap();
    assert!(
        mail.iter().any(|c| c["subject"] == "queued messages"
            && c["source"] != "0"
            && c["matches"] == true),
        "{mail:?}"
    );
    assert!(
        mail.iter()
            .any(|c| c["subject"] == "mailbox root" && c["matches"] == true),
        "{mail:?}"
    );
    assert!(
        r["application"]
            .as_array()
            .unwrap()
            .iter()
            .any(
                |c| c["subject"] == "application file attachments/contract.txt"
                    && c["matches"] == true
            ),
        "{}",
        r["application"]
    );
    assert!(
        !r["metrics"].as_array().unwrap().is_empty(),
        "TSDB blocks compared"
    );
    let md = std::fs::read_to_string(report.join("drill-report.md")).unwrap();
    assert!(
        md.contains("PASSED") && md.contains("| export |") && md.contains("public.customers"),
        "{md}"
    );

    // an attestation cites the drill: the report and the export manifest as subjects
    let out = terroir()
        .args(["keygen", "--out"])
        .arg(dir.join("signing.key"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let attest = |drill_report: &Path| {
        terroir()
            .arg("attest")
            .arg(&a)
            .arg("--key")
            .arg(dir.join("signing.key"))
            .arg("--out")
            .arg(dir.join("attestation.json"))
            .args(["--no-dns", "--geodata"])
            .arg(root().join("../shared/geodata"))
            .arg("--drill-report")
            .arg(drill_report)
            .output()
            .unwrap()
    };
    let out = attest(&report.join("drill-report.json"));
    assert!(
        matches!(out.status.code(), Some(0 | 2)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env: Value =
        serde_json::from_slice(&std::fs::read(dir.join("attestation.json")).unwrap()).unwrap();
    use base64::Engine as _;
    let st: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(env["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let subject = |name: &str| {
        st["subject"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| s["digest"]["sha256"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        subject("evidence://drill-report.json").unwrap(),
        terroir::text::sha256_hex(&std::fs::read(report.join("drill-report.json")).unwrap())
    );
    assert_eq!(
        subject("evidence://export/manifest.json").unwrap(),
        terroir::text::sha256_hex(&std::fs::read(report.join("export/manifest.json")).unwrap())
    );
    assert_eq!(st["predicate"]["reversibility"]["drill"]["passed"], true);
    let out = terroir()
        .args(["attest", "verify"])
        .arg(dir.join("attestation.json"))
        .arg("--pubkey")
        .arg(dir.join("signing.key.pub"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = attest(&report.join("export/manifest.json"));
    assert_eq!(
        out.status.code(),
        Some(1),
        "a file that is not a drill report is refused"
    );

    // the application on B serves the data, and B's database really holds it (independent of terroir)
    let (code, count) = http("GET", "198.18.0.12:8080", "/rows/count").unwrap();
    assert_eq!((code, count.trim()), (200, "5"));
    let n = on_host(
        "h2",
        "runuser -u postgres -- psql -XAtd crm -c 'select count(*) from customers' -c 'select count(*) from interactions' -c 'select count(*) from \"Marketing\".\"Campaign Stats\"'",
    );
    assert_eq!(
        n.split_whitespace().collect::<Vec<_>>(),
        ["70000", "45000", "5000"]
    );
    let owner = on_host(
        "h2",
        "runuser -u postgres -- psql -XAtd crm -c \"select tableowner from pg_tables where tablename = 'customers'\"",
    );
    assert_eq!(
        owner.trim(),
        "crm",
        "restored tables belong to the application's role"
    );
    let tenant = on_host(
        "h2",
        "runuser -u postgres -- psql -XAtd gamma -c \"select tableowner, (select count(*) from contracts) from pg_tables where tablename = 'contracts'\"",
    );
    assert_eq!(
        tenant.trim(),
        "gamma|2500",
        "the tenant's data went to the same tenant, owned by its role"
    );
    assert!(
        on_host("h2", "postqueue -j").contains("someone@customer.example.org"),
        "the queued message moved to B"
    );
    assert_eq!(
        on_host("h2", "cat /var/lib/acme-crm-next/attachments/contract.txt"),
        "contract v3\n"
    );

    // the export is readable without terroir: sha256sum, and the CSV files
    let export = report.join("export");
    let check = std::process::Command::new("sha256sum")
        .args(["-c", "--quiet", "SHA256SUMS"])
        .current_dir(&export)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let mut csv =
        csv::Reader::from_path(export.join("database/tables/public.customers.csv")).unwrap();
    assert_eq!(
        csv.headers().unwrap().iter().collect::<Vec<_>>(),
        ["id", "name", "email", "note", "created"]
    );
    assert_eq!(
        csv.records().count(),
        70000,
        "one record per row, embedded line breaks included"
    );

    // no secret in clear anywhere in the export: database passwords, the DKIM private key
    let mut planted: Vec<Vec<u8>> = Vec::new();
    for p in ["acme-crm", "acme-crm-next"] {
        planted.push(
            std::fs::read(dir.join(format!(".terroir/{p}/secrets/database-password"))).unwrap(),
        );
    }
    let dkim = on_host("h1", "cat /etc/opendkim/keys/acme2026.private");
    let dkim_line = dkim.lines().nth(3).unwrap().trim().to_owned();
    assert!(dkim_line.len() > 40);
    planted.push(dkim_line.clone().into_bytes());
    for (path, bytes) in files(&export) {
        for s in &planted {
            assert!(
                !contains(&bytes, s),
                "a secret is in clear in {}",
                path.display()
            );
        }
    }
    // ...but they are there, encrypted to the recipient: and the DKIM key went to B
    assert!(
        on_host("h2", "cat /etc/opendkim/keys/acme2026.private").contains(&dkim_line),
        "A's DKIM key is installed on B"
    );
    let enc = std::fs::File::open(export.join("secrets/secrets.tar.age")).unwrap();
    let mut plain = Vec::new();
    std::io::Read::read_to_end(
        &mut age::Decryptor::new(enc)
            .unwrap()
            .decrypt(std::iter::once(&identity as &dyn age::Identity))
            .unwrap(),
        &mut plain,
    )
    .unwrap();
    assert!(
        contains(&plain, &planted[0]),
        "the secrets are exported, encrypted"
    );

    // a restore over data already there is refused unless asked; a dry run shows it
    let out = terroir()
        .arg("restore")
        .arg(&b)
        .arg("--from")
        .arg(&export)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already holds"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = terroir()
        .arg("restore")
        .arg(&b)
        .arg("--from")
        .arg(&export)
        .args(["--dry-run", "--output", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let plan = json_of(&out);
    assert_eq!(plan["restored"], false);
    assert!(
        plan["report"]["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["what"] == "database" && a["conflict"].is_string())
    );

    // tampered: one byte changed in a CSV, or one file removed: refused, the file named, B untouched
    let before = on_host(
        "h2",
        "runuser -u postgres -- psql -XAtd crm -c 'select count(*) from customers'",
    );
    let copy = |name: &str| {
        let to = dir.join(name);
        assert!(
            std::process::Command::new("cp")
                .arg("-a")
                .arg(&export)
                .arg(&to)
                .status()
                .unwrap()
                .success()
        );
        to
    };
    let altered = copy("altered");
    let csv_path = altered.join("database/tables/public.interactions.csv");
    let mut bytes = std::fs::read(&csv_path).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x01;
    std::fs::write(&csv_path, bytes).unwrap();
    let out = terroir()
        .arg("restore")
        .arg(&b)
        .arg("--from")
        .arg(&altered)
        .arg("--replace")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`database/tables/public.interactions.csv` does not match SHA256SUMS"),
        "{err}"
    );
    let incomplete = copy("incomplete");
    std::fs::remove_file(incomplete.join("mail/a1/mailboxes.tar")).unwrap();
    let out = terroir()
        .arg("restore")
        .arg(&b)
        .arg("--from")
        .arg(&incomplete)
        .arg("--replace")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`mail/a1/mailboxes.tar` is listed in SHA256SUMS but missing"),
        "{err}"
    );
    assert_eq!(
        on_host(
            "h2",
            "runuser -u postgres -- psql -XAtd crm -c 'select count(*) from customers'"
        ),
        before,
        "nothing changed on B"
    );
    drop(hosts);
}

/// One argument for `sh -c`, single-quoted.
fn shell_words(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
