//! Patroni itself, with the rendered patroni.yml, pg_hba.conf and postgresql.conf (pgaudit, TLS
//! only), runs two PostgreSQL members on loopback and keeps its store in the API server double
//! through its own Kubernetes client: one member is elected and labelled `master` (the label
//! Patroni 3.0, the image's, gives a leader), the other streams from it over TLS (verify-full) as
//! a synchronous standby, and when the primary's Patroni stops, the standby is promoted. Every
//! call Patroni made is within the rendered Role.
//!
//! What differs from a pod: paths, ports and names are the loopback's (the members are
//! `localhost:PORT`, their certificate from terroir's CA is for `localhost`), and Patroni is PyPI's
//! 4.1.5 in a virtualenv that the server's user can run (scripts/test makes it). Needs root (the
//! members run as `postgres`) and Debian's PostgreSQL with pgaudit, as postgres_tls.rs does.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::Path;
use std::process::{Child, Command as Std};
use std::time::Duration;

use common::pg;
use common::*;
use serde_json::{Value, json};
use terroir_kube_double::{BackgroundServer, Options};

const PATRONI_PYTHON: &str = "/opt/terroir-tests/patroni/bin/python3";
const NS: &str = "mutuelle-crm";

struct Member {
    name: String,
    child: Child,
}

impl Drop for Member {
    fn drop(&mut self) {
        // Patroni (runuser's child) stops its PostgreSQL, and gives the leader lock up, when it
        // is told to stop; runuser does not pass the signal on.
        let children = Std::new("pgrep")
            .args(["-P", &self.child.id().to_string()])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default();
        for pid in children.split_whitespace() {
            let _ = Std::new("kill").args(["-TERM", pid]).status();
        }
        let _ = self.child.wait();
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    pg::chown(path, "postgres");
}

/// The rendered ConfigMap's data, and the Role's grants as (resource, verb).
fn rendered(tmp: &Path) -> (Value, Vec<(String, String)>) {
    let doc = variant("kubernetes-ha.yaml", tmp, "ha.yaml", |t| {
        without_backups(&t)
    });
    let out = render(&doc, tmp, "ha");
    let docs: Vec<Value> = serde_saphyr::from_multiple(
        &std::fs::read_to_string(out.join("kubernetes/postgres.yaml")).unwrap(),
    )
    .unwrap();
    let data = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap()["data"].clone();
    let role = docs.iter().find(|d| d["kind"] == "Role").unwrap();
    let mut granted = Vec::new();
    for rule in role["rules"].as_array().unwrap() {
        for r in rule["resources"].as_array().unwrap() {
            for v in rule["verbs"].as_array().unwrap() {
                granted.push((
                    r.as_str().unwrap().to_owned(),
                    v.as_str().unwrap().to_owned(),
                ));
            }
        }
    }
    (data, granted)
}

/// The verb a request is, as RBAC sees it.
fn verb(method: &str, path: &str, query: &str) -> &'static str {
    let collection = path.ends_with("/configmaps") || path.ends_with("/pods");
    match method {
        "GET" if query.contains("watch=true") || query.contains("watch=1") => "watch",
        "GET" if collection => "list",
        "GET" => "get",
        "POST" => "create",
        "PATCH" => "patch",
        "PUT" => "update",
        "DELETE" if collection => "deletecollection",
        "DELETE" => "delete",
        _ => "other",
    }
}

#[test]
fn patroni_elects_replicates_over_tls_and_fails_over_through_the_api_double() {
    assert!(
        Path::new(PATRONI_PYTHON).exists(),
        "{PATRONI_PYTHON} is Patroni's virtualenv (scripts/test makes it)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (data, granted) = rendered(&dir);

    // The API server double, with the namespace and the two pods Patroni labels.
    let server = BackgroundServer::start(Options::default()).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    server.write_kubeconfig(&kubeconfig, "double").unwrap();
    pg::chown(&kubeconfig, "postgres");
    let url = server.url();
    let post = |path: &str, body: Value| {
        ureq::post(&format!("{url}{path}"))
            .header("content-type", "application/json")
            .send(body.to_string())
            .unwrap();
    };
    post(
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
    );
    let labels = json!({
        "app.kubernetes.io/name": "postgres",
        "app.kubernetes.io/instance": "mutuelle-crm",
        "terroir.eu/patroni-cluster": "mutuelle-crm-postgres",
    });
    for i in 0..2 {
        post(
            &format!("/api/v1/namespaces/{NS}/pods"),
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("mutuelle-crm-postgres-{i}"), "labels": labels},
                "spec": {"containers": [{"name": "postgres", "image": "terroir/postgres"}]}}),
        );
    }

    // A certificate for the members' name here, from a CA of terroir's.
    let ca = terroir::pki::new_ca("mutuelle-crm").unwrap();
    let cert = terroir::pki::issue_server(
        "mutuelle-crm",
        &ca.key_pem,
        &["localhost".to_owned()],
        "test",
    )
    .unwrap();
    let tls = dir.join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    pg::chown(&tls, "postgres");
    write(&tls.join("tls.crt"), &cert.cert_pem);
    write(&tls.join("ca.crt"), &ca.cert_pem);
    write(&tls.join("tls.key"), &cert.key_pem);
    std::fs::set_permissions(
        tls.join("tls.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();

    let start = |i: u16| -> Member {
        let name = format!("mutuelle-crm-postgres-{i}");
        let (pg_port, api_port) = (25432 + i, 28008 + i);
        let home = dir.join(&name);
        let socket = home.join("run");
        std::fs::create_dir_all(&socket).unwrap();
        pg::chown(&home, "postgres");
        pg::chown(&socket, "postgres");
        // The pod's paths, made this member's.
        let local = |text: &str| {
            text.replace("/etc/postgresql-tls", &tls.display().to_string())
                .replace("/var/run/postgresql", &socket.display().to_string())
                .replace("/etc/postgresql/", &format!("{}/", home.display()))
                .replace("-p 5432", &format!("-p {pg_port}"))
        };
        for key in [
            "postgresql.conf",
            "pg_hba.conf",
            "sync-passwords.sh",
            "post-bootstrap.sh",
            "pgaudit.sql",
        ] {
            write(&home.join(key), &local(data[key].as_str().unwrap()));
        }
        let mut conf: Value =
            serde_saphyr::from_str(&local(data["patroni.yml"].as_str().unwrap())).unwrap();
        conf["kubernetes"]["context"] = json!("double");
        conf["restapi"]["listen"] = json!(format!("127.0.0.1:{api_port}"));
        conf["postgresql"]["listen"] = json!(format!("127.0.0.1:{pg_port}"));
        conf["postgresql"]["data_dir"] = json!(home.join("data").display().to_string());
        conf["postgresql"]["bin_dir"] = json!(pg::bin_dir().display().to_string());
        conf["postgresql"]["pgpass"] = json!(home.join("pgpass").display().to_string());
        let conf_path = home.join("patroni.yml");
        write(&conf_path, &serde_json::to_string_pretty(&conf).unwrap());
        let log = std::fs::File::create(home.join("patroni.log")).unwrap();
        let child = Std::new("runuser")
            .args(["-u", "postgres", "--", PATRONI_PYTHON, "-m", "patroni"])
            .arg(&conf_path)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("KUBECONFIG", &kubeconfig)
            .env("PATRONI_NAME", &name)
            .env(
                "PATRONI_POSTGRESQL_CONNECT_ADDRESS",
                format!("localhost:{pg_port}"),
            )
            .env(
                "PATRONI_RESTAPI_CONNECT_ADDRESS",
                format!("localhost:{api_port}"),
            )
            .env("PATRONI_SUPERUSER_PASSWORD", "su-secret")
            .env("POSTGRES_PASSWORD", "su-secret")
            .env("PATRONI_REPLICATION_PASSWORD", "replication-secret")
            .env("PATRONI_REWIND_PASSWORD", "rewind-secret")
            .env("POSTGRES_DB", "crm")
            .env("APP_DB_USER", "crm")
            .env("APP_DB_PASSWORD", "app-secret")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .current_dir(&home)
            .spawn()
            .unwrap();
        Member { name, child }
    };
    let logs = || -> String {
        (0..2)
            .map(|i| {
                let p = dir.join(format!("mutuelle-crm-postgres-{i}/patroni.log"));
                let text = std::fs::read_to_string(p).unwrap_or_default();
                let tail: Vec<&str> = text
                    .lines()
                    .filter(|l| !l.contains("connection ") && !l.contains("disconnection"))
                    .rev()
                    .take(25)
                    .collect();
                format!(
                    "--- member {i}:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let role_of = |name: &str| -> String {
        server
            .state()
            .get("v1", "Pod", Some(NS), name)
            .and_then(|p| {
                p["metadata"]["labels"]["terroir.eu/postgres-role"]
                    .as_str()
                    .map(str::to_owned)
            })
            .unwrap_or_default()
    };
    let sql = |i: u16, statement: &str| -> String {
        let socket = dir.join(format!("mutuelle-crm-postgres-{i}/run"));
        pg::sql(
            &socket.display().to_string(),
            25432 + i,
            "postgres",
            statement,
        )
    };

    let first = start(0);
    eventually(
        Duration::from_secs(90),
        "member 0 is elected primary",
        || {
            (role_of(&first.name) == "master")
                .then_some(())
                .ok_or_else(logs)
        },
    );
    let second = start(1);
    eventually(
        Duration::from_secs(120),
        "member 1 streams as a synchronous standby",
        || {
            let rows = sql(
                0,
                "select s.sync_state || ' ' || t.ssl from pg_stat_replication s join pg_stat_ssl t using (pid)",
            );
            // and Patroni's own record of it, in its store: the `-sync` ConfigMap
            let recorded = server
                .state()
                .get("v1", "ConfigMap", Some(NS), "mutuelle-crm-postgres-sync")
                .map(|c| c["metadata"]["annotations"]["sync_standby"].clone())
                .unwrap_or_default();
            (role_of(&second.name) == "replica"
                && rows.trim() == "sync true"
                && recorded == "mutuelle-crm-postgres-1")
                .then_some(())
                .ok_or_else(|| format!("replication: {rows:?}\n{}", logs()))
        },
    );
    // Patroni's post_bootstrap made the application's role and database; pgaudit is loaded.
    assert_eq!(
        sql(
            0,
            "select datdba::regrole::text from pg_database where datname = 'crm'"
        )
        .trim(),
        "crm"
    );
    assert_eq!(sql(1, "show shared_preload_libraries").trim(), "pgaudit");
    // Patroni's callbacks ran the start script on the primary: the audit role, and pgaudit in the
    // application's database.
    eventually(
        Duration::from_secs(60),
        "the start script ran on the primary",
        || {
            let socket = dir
                .join("mutuelle-crm-postgres-0/run")
                .display()
                .to_string();
            let auditor = pg::sql(
                &socket,
                25432,
                "postgres",
                "select count(*) from pg_roles where rolname = 'terroir_auditor'",
            );
            let extension = pg::sql(
                &socket,
                25432,
                "crm",
                "select count(*) from pg_extension where extname = 'pgaudit'",
            );
            (auditor == "1" && extension == "1")
                .then_some(())
                .ok_or_else(|| format!("auditor {auditor}, pgaudit {extension}\n{}", logs()))
        },
    );
    assert_eq!(sql(1, "select pg_is_in_recovery()").trim(), "t");

    // The primary's Patroni stops: the synchronous standby is promoted, by Patroni.
    drop(first);
    eventually(Duration::from_secs(90), "member 1 is promoted", || {
        (role_of(&second.name) == "master" && sql(1, "select pg_is_in_recovery()").trim() == "f")
            .then_some(())
            .ok_or_else(logs)
    });

    // Every call Patroni made to the API is one the rendered Role grants.
    let mut made = std::collections::BTreeSet::new();
    for r in server.state().requests() {
        let Some(rest) = r.path.strip_prefix(&format!("/api/v1/namespaces/{NS}/")) else {
            continue;
        };
        let resource = rest.split('/').next().unwrap();
        if ["configmaps", "pods"].contains(&resource) {
            made.insert((resource.to_owned(), verb(&r.method, &r.path, &r.query)));
        }
    }
    // the test's own writes (the namespace and pods, by POST) are not Patroni's
    made.remove(&("pods".to_owned(), "create"));
    for (resource, v) in &made {
        assert!(
            granted.contains(&(resource.clone(), (*v).to_owned())),
            "Patroni called {v} on {resource}, which the Role does not grant: {granted:?}"
        );
    }
    assert!(made.contains(&("pods".to_owned(), "patch")), "{made:?}");
    assert!(
        made.contains(&("configmaps".to_owned(), "create")),
        "{made:?}"
    );
    drop(second);
}
