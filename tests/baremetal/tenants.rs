//! Tenant isolation on real hosts: each tenant gets its own database and role; a tenant's role
//! is refused on another tenant's database and on the application's, and the application's role on
//! the tenants'. Bad tenant lists are refused at validation.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::Path;

use common::deployments::OneHostPlatform;
use common::*;

fn on_host(host: &str, script: &str) -> std::process::Output {
    std::process::Command::new(root().join("tests/hosts/hostctl"))
        .args(["exec", host, "sh", "-c"])
        .arg(format!("cd / && {script}"))
        .output()
        .unwrap()
}

/// Connect as `user` with `password` to `database` over TCP on the database host.
fn connect(user: &str, password: &str, database: &str) -> (bool, String) {
    let out = on_host(
        "h1",
        &format!(
            "PGPASSWORD='{password}' psql -h 127.0.0.1 -U {user} -d {database} -XAtc 'select current_database()'"
        ),
    );
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn with_tenants(dir: &Path, tenants: &str) -> std::path::PathBuf {
    variant("baremetal.yaml", dir, "tenants.yaml", |t| {
        t.replace(
            "  endpoints:\n",
            &format!("  tenants:\n{tenants}  endpoints:\n"),
        )
    })
}

#[test]
fn a_tenant_list_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let doc = with_tenants(
        dir.path(),
        "    - name: alpha\n    - name: Beta-1\n    - name: alpha\n    - name: crm\n    - name: postgres\n",
    );
    let out = terroir().arg("validate").arg(&doc).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "`Beta-1` is not a plain SQL identifier",
        "tenant `alpha` is listed twice",
        "`crm` is the application's own database or role",
        "`postgres` is reserved",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }
    assert!(err.contains("tenants.yaml:"), "file and line named: {err}");
    // Kubernetes: each tenant's namespace is `<namespace>-<tenant>`, which must be a DNS label
    let k = variant("kubernetes.yaml", dir.path(), "k.yaml", |t| {
        t.replace(
            "  endpoints:\n",
            "  tenants:\n    - name: alpha\n  endpoints:\n",
        )
    });
    let out = terroir().arg("validate").arg(&k).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let long = "t".repeat(60);
    let k = variant("kubernetes.yaml", dir.path(), "k2.yaml", |t| {
        t.replace("  endpoints:\n", &format!("  tenants:\n    - name: alpha\n    - name: {long}\n    - name: beta_\n  endpoints:\n"))
    });
    let out = terroir().arg("validate").arg(&k).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = std::fs::read_to_string(&k)
        .unwrap()
        .lines()
        .position(|l| l.contains(&long))
        .unwrap()
        + 1;
    assert!(
        err.contains(&format!("k2.yaml:{line}:"))
            && err.contains(&format!(
                "would live in namespace `mutuelle-crm-{long}`, 73 characters long"
            )),
        "{err}"
    );
    assert!(err.contains("at most 50 characters"), "{err}");
    assert!(
        err.contains("namespace `mutuelle-crm-beta-`, which is not a DNS label"),
        "{err}"
    );
    assert!(!err.contains("`alpha`"), "{err}");
}

#[test]
fn each_tenant_is_refused_on_the_others_database() {
    // deployed once with tenants alpha and beta, and shared (common/deployments.rs)
    let platform = OneHostPlatform::get();
    let dir = platform.dir.as_path();
    let doc = platform.doc.clone();

    let secret = |name: &str| {
        std::fs::read_to_string(dir.join(".terroir/acme-crm/secrets").join(name)).unwrap()
    };
    let (alpha, beta, app) = (
        secret("tenant-alpha-password"),
        secret("tenant-beta-password"),
        secret("database-password"),
    );
    assert_ne!(alpha, beta);
    // each tenant reaches its own database
    assert_eq!(connect("alpha", &alpha, "alpha"), (true, "alpha\n".into()));
    assert_eq!(connect("beta", &beta, "beta"), (true, "beta\n".into()));
    // and nobody else's, even with its valid password
    for (user, pw, db) in [
        ("alpha", &alpha, "beta"),
        ("beta", &beta, "alpha"),
        ("alpha", &alpha, "crm"),
        ("crm", &app, "alpha"),
    ] {
        let (ok, text) = connect(user, pw, db);
        assert!(!ok, "{user} must not reach {db}: {text}");
        assert!(
            text.contains("no pg_hba.conf entry") || text.contains("permission denied"),
            "{user} on {db}: {text}"
        );
    }
    // Not only the host rules: the databases themselves grant CONNECT to their owner only.
    let out = on_host(
        "h1",
        "runuser -u postgres -- psql -XAtc \"select datname, has_database_privilege('beta', datname, 'CONNECT') from pg_database where datname in ('alpha', 'beta', 'crm') order by 1\"",
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "alpha|f\nbeta|t\ncrm|f\n"
    );
    // the secrets stay out of the rendered tree and the apply report
    let out = terroir()
        .args(["--output", "json", "apply"])
        .arg(&doc)
        .output()
        .unwrap();
    assert!(out.status.success());
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(!report.contains(alpha.trim()) && !report.contains(beta.trim()));
    let v: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(v["changed"], 0, "a second apply changes nothing: {v:#}");
    drop(platform);
}
