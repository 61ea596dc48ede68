//! The Kubernetes PostgreSQL settings, run by a real PostgreSQL server (Debian's, on loopback;
//! no pod): the rendered postgresql.conf and pg_hba.conf, a certificate issued by terroir for
//! the Service's names, the key file as a Secret volume presents it (root, the server's group,
//! mode 0440). A plain-text connection is refused, `verify-full` succeeds for the Service's
//! names and fails for another, the superuser is refused over the network but admitted on the
//! socket (peer, as the exporter sidecar connects), and the password script run at every start
//! sets the roles' passwords without writing them to the server's log. It also makes the
//! tenants' roles and databases, again harmlessly, and each tenant is refused on the others'
//! databases and the application's. The image ships pgaudit (Debian's postgresql-15-pgaudit
//! here): the rendered audit settings log the reads of a personal table. TLS is as ANSSI
//! recommends (common/tls.rs): TLS 1.3, or TLS 1.2 with ECDHE and AEAD suites in the server's
//! order; CBC and anonymous suites, RSA key exchange, TLS 1.1 and TLS 1.0 are refused.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::Path;

use common::pg::*;
use common::tls::{Endpoint, Start, assert_anssi_tls_here};
use common::*;

#[test]
fn rendered_postgres_settings_refuse_plain_text_and_verify_the_service_name() {
    let tmp = tempfile::tempdir().unwrap();
    let doc = variant("kubernetes.yaml", tmp.path(), "tenants.yaml", |t| {
        without_backups(&t).replace(
            "  endpoints:\n",
            "  tenants:\n    - name: alpha\n    - name: beta_co\n  endpoints:\n",
        )
    });
    let out = render(&doc, tmp.path(), "out");
    let text = std::fs::read_to_string(out.join("kubernetes/postgres.yaml")).unwrap();
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
    let data = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap()["data"].clone();
    let Started {
        dir,
        port,
        socket,
        log,
        names,
        _server,
        ..
    } = start(tmp.path(), &data, &[]);

    // The application's role and database, as the initdb script makes them (over the socket).
    let setup = as_postgres(Path::new("/usr/bin/psql"))
        .args([
            "-h",
            &socket,
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-qc",
            "create role crm login password 'before'",
            "-c",
            "create database crm owner crm",
        ])
        .output()
        .unwrap();
    assert!(
        setup.status.success(),
        "the superuser is admitted on the socket (peer): {}",
        String::from_utf8_lossy(&setup.stderr)
    );

    // The password script: the Secret's values become the roles' passwords.
    let script = start_script(&dir, &socket, port, &data);
    // Twice: the second start finds everything made and changes nothing but the passwords.
    for _ in 0..2 {
        let sync = as_postgres(Path::new("/bin/sh"))
            .arg(&script)
            .env("POSTGRES_PASSWORD", "planted-superuser-value")
            .env("APP_DB_PASSWORD", "planted-app-value")
            .env("APP_DB_USER", "crm")
            .env("TENANT_ALPHA_PASSWORD", "planted-alpha-value")
            .env("TENANT_BETA_CO_PASSWORD", "planted-beta-value")
            .output()
            .unwrap();
        assert!(
            sync.status.success(),
            "sync-passwords.sh: {}",
            String::from_utf8_lossy(&sync.stderr)
        );
    }

    let url = |host: &str, user: &str, mode: &str| {
        format!(
            "hostaddr=127.0.0.1 host={host} port={port} user={user} dbname={user} sslmode={mode} sslrootcert={}",
            dir.join("ca.crt").display()
        )
    };
    let (ok, text) = psql(
        &url("mutuelle-crm-postgres", "crm", "disable"),
        "planted-app-value",
        "select 1",
    );
    assert!(
        !ok && text.contains("no encryption"),
        "plain text refused: {text}"
    );
    assert_anssi_tls_here(&[Endpoint::new(
        "PostgreSQL",
        &format!("127.0.0.1:{port}"),
        Start::StartTls("postgres"),
        true,
    )]);
    for host in &names {
        let (ok, text) = psql(
            &url(host, "crm", "verify-full"),
            "planted-app-value",
            "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
        );
        assert!(ok && text.trim() == "t", "verify-full as {host}: {text}");
    }
    let (ok, text) = psql(
        &url("mutuelle-crm-postgres", "crm", "verify-full"),
        "before",
        "select 1",
    );
    assert!(
        !ok && text.contains("password authentication failed"),
        "the old password no longer works: {text}"
    );
    let (ok, text) = psql(
        &url("mutuelle-crm-postfix", "crm", "verify-full"),
        "planted-app-value",
        "select 1",
    );
    assert!(
        !ok && text.contains("does not match host name"),
        "another name is refused: {text}"
    );
    let (ok, text) = psql(
        &url("mutuelle-crm-postgres", "postgres", "verify-full")
            .replace("dbname=postgres", "dbname=crm"),
        "planted-superuser-value",
        "select 1",
    );
    assert!(
        !ok && text.contains("no pg_hba.conf entry"),
        "the superuser is not admitted over the network: {text}"
    );

    // Tenants: each reaches its own database over TLS, and no other.
    let on = |db: &str, user: &str| {
        format!(
            "hostaddr=127.0.0.1 host=mutuelle-crm-postgres port={port} user={user} dbname={db} sslmode=verify-full sslrootcert={}",
            dir.join("ca.crt").display()
        )
    };
    let (ok, text) = psql(
        &on("alpha", "alpha"),
        "planted-alpha-value",
        "select current_user",
    );
    assert!(
        ok && text.trim() == "alpha",
        "alpha on its database: {text}"
    );
    let (ok, text) = psql(
        &on("beta_co", "beta_co"),
        "planted-beta-value",
        "select current_user",
    );
    assert!(
        ok && text.trim() == "beta_co",
        "beta_co on its database: {text}"
    );
    for (db, user, password) in [
        ("beta_co", "alpha", "planted-alpha-value"),
        ("alpha", "beta_co", "planted-beta-value"),
        ("crm", "alpha", "planted-alpha-value"),
        ("alpha", "crm", "planted-app-value"),
    ] {
        let (ok, text) = psql(&on(db, user), password, "select 1");
        assert!(
            !ok && text.contains("no pg_hba.conf entry"),
            "{user} refused on {db}: {text}"
        );
    }
    // Even past pg_hba.conf, CONNECT is the owner's alone.
    let grants = as_postgres(Path::new("/usr/bin/psql"))
        .args(["-h", &socket, "-p", &port.to_string(), "-U", "postgres", "-Atc", "select datname, has_database_privilege('public', datname, 'CONNECT') from pg_database where datname in ('alpha', 'beta_co', 'crm') order by 1"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&grants.stdout),
        "alpha|f\nbeta_co|f\ncrm|f\n"
    );

    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("create database crm"),
        "statements are logged (log_statement = all): {logged}"
    );
    for planted in [
        "planted-app-value",
        "planted-superuser-value",
        "planted-alpha-value",
        "planted-beta-value",
    ] {
        assert!(
            !logged.contains(planted),
            "no password in the server's log:\n{logged}"
        );
    }
}

#[test]
fn the_image_ships_pgaudit_and_a_personal_table_is_audited() {
    let tmp = tempfile::tempdir().unwrap();
    let doc = variant("kubernetes.yaml", tmp.path(), "pgaudit.yaml", |t| {
        without_backups(&t)
            .replace(
                "      sharedBuffers: 1GB\n",
                "      sharedBuffers: 1GB\n      personalTables: [customers]\n",
            )
            .replace(
                "  endpoints:\n",
                "  tenants:\n    - name: alpha\n  endpoints:\n",
            )
    });
    let out = render(&doc, tmp.path(), "out");
    let text = std::fs::read_to_string(out.join("kubernetes/postgres.yaml")).unwrap();
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
    let data = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap()["data"].clone();
    let Started {
        dir,
        port,
        socket,
        log,
        _server,
        ..
    } = start(tmp.path(), &data, &[]);
    let sql = |db: &str, statement: &str| sql(&socket, port, db, statement);
    sql("postgres", "create role crm login password 'x'");
    sql("postgres", "create database crm owner crm");
    // The start script, as the pod runs it, with pgaudit.sql where the ConfigMap mounts it.
    let script = start_script(&dir, &socket, port, &data);
    let run = as_postgres(Path::new("/bin/sh"))
        .arg(&script)
        .env("POSTGRES_PASSWORD", "planted-superuser-value")
        .env("APP_DB_PASSWORD", "planted-app-value")
        .env("APP_DB_USER", "crm")
        .env("TENANT_ALPHA_PASSWORD", "planted-alpha-value")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "start script: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        sql(
            "crm",
            "select count(*) from pg_extension where extname = 'pgaudit'"
        ),
        "1"
    );
    assert_eq!(
        sql(
            "alpha",
            "select count(*) from pg_extension where extname = 'pgaudit'"
        ),
        "1",
        "the tenant's database is audited too"
    );

    // A personal table made after the setup is granted to the audit role by the event trigger.
    sql("crm", "create table customers (id int, email text)");
    sql("crm", "create table notes (id int)");
    sql("crm", "select email from customers");
    sql("crm", "select id from notes");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("AUDIT: OBJECT")
            && logged.contains("public.customers")
            && logged.contains("select email from customers"),
        "the read of a personal table is audited:\n{logged}"
    );
    assert!(
        !logged
            .lines()
            .any(|l| l.contains("AUDIT: OBJECT") && l.contains("public.notes")),
        "a table not marked personal is not"
    );
    for planted in [
        "planted-app-value",
        "planted-superuser-value",
        "planted-alpha-value",
    ] {
        assert!(
            !logged.contains(planted),
            "no password in the server's log:\n{logged}"
        );
    }
}
