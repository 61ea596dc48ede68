//! Export, restore and drill on Kubernetes targets, through the CLI as a user runs them, against
//! the API server double: its `pods/{name}/exec` runs what each pod would, here Debian's real
//! pg_dump and psql against a real PostgreSQL on loopback per namespace (A's server for A's
//! database pod, B's for B's).
#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::{Path, PathBuf};

use common::pg::{Server, as_postgres, bin_dir, chown, pg_ctl_start};
use common::*;
use serde_json::{Value, json};
use terroir_kube_double::{BackgroundServer, ExecRequest, Options, ProxyRequest};

const A: &str = "mutuelle-crm";
const B: &str = "mutuelle-crm-b";
const ROWS: u64 = 100_000;

/// A PostgreSQL server on loopback holding the platform's database `crm`, owned by its role `crm`
/// as the rendered initdb script leaves it.
struct Postgres {
    port: u16,
    _server: Server,
}

impl Postgres {
    fn start(dir: &Path) -> Postgres {
        std::fs::create_dir_all(dir).unwrap();
        chown(dir, "postgres");
        let bin = bin_dir();
        let data = dir.join("data");
        let init = as_postgres(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust"])
            .output()
            .unwrap();
        assert!(init.status.success(), "initdb: {init:?}");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = dir.join("pg.conf");
        std::fs::write(
            &conf,
            format!(
                "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\nshared_buffers = 32MB\nfsync = off\nhba_file = '{}'\n",
                dir.display(),
                data.join("pg_hba.conf").display()
            ),
        )
        .unwrap();
        chown(&conf, "postgres");
        let (out, server) = pg_ctl_start(&bin, &data, &conf, &dir.join("log"), 60, &[]);
        assert!(out.status.success(), "pg_ctl start: {out:?}");
        let pg = Postgres {
            port,
            _server: server,
        };
        pg.sql("postgres", "CREATE ROLE crm LOGIN");
        pg.sql("postgres", "CREATE DATABASE crm OWNER crm");
        pg.sql("crm", "ALTER SCHEMA public OWNER TO crm");
        pg
    }

    fn sql(&self, db: &str, statement: &str) -> String {
        let out = std::process::Command::new(bin_dir().join("psql"))
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", db])
            .args([
                "-p",
                &self.port.to_string(),
                "-v",
                "ON_ERROR_STOP=1",
                "-XAtqc",
            ])
            .arg(statement)
            .output()
            .unwrap();
        assert!(out.status.success(), "{statement}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// What the database holds: each table with its row count and an md5 of its rows in order.
    fn fingerprint(&self) -> String {
        let tables = self.sql(
            "crm",
            "select string_agg(tablename, ' ' order by tablename) from pg_tables where schemaname = 'public'",
        );
        tables
            .split_whitespace()
            .map(|t| {
                self.sql(
                    "crm",
                    &format!(
                        "select '{t}:' || count(*) || ':' || coalesce(md5(string_agg(x::text, ',' order by x::text)), '') from public.{t} x"
                    ),
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

struct Clusters {
    dir: PathBuf,
    _server: BackgroundServer,
    a: Postgres,
    b: Postgres,
    docs: (PathBuf, PathBuf),
    /// Last: removed once the servers are stopped.
    _tmp: tempfile::TempDir,
}

fn document(dir: &Path, name: &str) -> PathBuf {
    variant("kubernetes.yaml", dir, &format!("{name}.yaml"), |text| {
        text.replace("  name: mutuelle-crm\n", &format!("  name: {name}\n"))
            .replace(
                "      namespace: mutuelle-crm\n      context: prod-paris\n",
                &format!(
                    "      namespace: {name}\n      kubeconfig: kubeconfig\n      context: double\n"
                ),
            )
    })
}

fn start() -> Clusters {
    let owned = tempfile::tempdir().unwrap();
    let tmp = owned.path().to_path_buf();
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let a = Postgres::start(&tmp.join("pg-a"));
    let b = Postgres::start(&tmp.join("pg-b"));
    let server = BackgroundServer::start(Options::default()).unwrap();
    server
        .write_kubeconfig(&tmp.join("kubeconfig"), "double")
        .unwrap();
    let url = server.url();
    let send = |method: &str, path: &str, ct: &str, body: Value| {
        let url = format!("{url}{path}");
        let r = match method {
            "POST" => ureq::post(&url)
                .header("content-type", ct)
                .send(body.to_string()),
            _ => ureq::patch(&url)
                .header("content-type", ct)
                .send(body.to_string()),
        };
        r.unwrap();
    };
    // each namespace's database pod, running, as its StatefulSet makes it
    let ports = [(A, a.port), (B, b.port)];
    for (ns, _) in ports {
        send(
            "POST",
            "/api/v1/namespaces",
            "application/json",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        );
        let pod = format!("{ns}-postgres-0");
        send(
            "POST",
            &format!("/api/v1/namespaces/{ns}/pods"),
            "application/json",
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": pod, "labels": {"app.kubernetes.io/name": "postgres", "app.kubernetes.io/instance": ns}},
                "spec": {"containers": [
                    {"name": "postgres", "image": "terroir/postgres"},
                    {"name": "pgbackrest", "image": "terroir/postgres"},
                    {"name": "exporter", "image": "terroir/postgres-exporter"}]}}),
        );
        send(
            "PATCH",
            &format!("/api/v1/namespaces/{ns}/pods/{pod}/status"),
            "application/merge-patch+json",
            json!({"status": {"phase": "Running"}}),
        );
        send(
            "POST",
            &format!("/api/v1/namespaces/{ns}/secrets"),
            "application/json",
            json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": format!("{ns}-postgres-credentials")},
                "stringData": {"password": "s3cr3t-never-in-clear"},
                "data": {"password": "czNjcjN0LW5ldmVyLWluLWNsZWFy"}}),
        );
    }
    // A's monitoring: Prometheus's pod and the Services the proxy reaches
    let prometheus_pod = format!("{A}-prometheus-0");
    send(
        "POST",
        &format!("/api/v1/namespaces/{A}/pods"),
        "application/json",
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": prometheus_pod, "labels": {"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/instance": A}},
            "spec": {"containers": [{"name": "prometheus", "image": "prom/prometheus"}]}}),
    );
    send(
        "PATCH",
        &format!("/api/v1/namespaces/{A}/pods/{prometheus_pod}/status"),
        "application/merge-patch+json",
        json!({"status": {"phase": "Running"}}),
    );
    for (svc, port) in [("prometheus", 9090), ("alertmanager", 9093)] {
        send(
            "POST",
            &format!("/api/v1/namespaces/{A}/services"),
            "application/json",
            json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": format!("{A}-{svc}")},
                "spec": {"selector": {"app.kubernetes.io/name": svc}, "ports": [{"port": port}]}}),
        );
    }
    // A's MTA: the Deployment's one pod, its postfix container reading the queue volume
    let postfix_pod = format!("{A}-postfix-5d8f7b9c4-x7k2p");
    send(
        "POST",
        &format!("/api/v1/namespaces/{A}/pods"),
        "application/json",
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": postfix_pod, "labels": {"app.kubernetes.io/name": "postfix", "app.kubernetes.io/instance": A}},
            "spec": {"containers": [
                {"name": "postfix", "image": "terroir/postfix"},
                {"name": "exporter", "image": "terroir/postfix-exporter"}]}}),
    );
    send(
        "PATCH",
        &format!("/api/v1/namespaces/{A}/pods/{postfix_pod}/status"),
        "application/merge-patch+json",
        json!({"status": {"phase": "Running"}}),
    );
    let (spool, postqueue) = mail_queue(&tmp);

    // Prometheus's volume, here: a snapshot request makes a snapshot of two blocks in it
    let tsdb = tmp.join("prometheus");
    let snapshots = std::sync::atomic::AtomicUsize::new(0);
    let volume = tsdb.clone();
    server.state().set_proxy_hook(move |r: &ProxyRequest| {
        let json = |v: Value| {
            Some((
                200,
                "application/json".to_owned(),
                v.to_string().into_bytes(),
            ))
        };
        match (
            r.namespace.as_str(),
            r.service.as_str(),
            r.scheme.as_str(),
            r.method.as_str(),
            r.path.as_str(),
        ) {
            (A, s, "https", "POST", "/api/v1/admin/tsdb/snapshot")
                if s == format!("{A}-prometheus") =>
            {
                let n = snapshots.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let name = format!("20261205T120000Z-{n:016x}");
                for block in ["01JEXAMPLEBLOCKA", "01JEXAMPLEBLOCKB"] {
                    let d = volume.join("snapshots").join(&name).join(block);
                    std::fs::create_dir_all(d.join("chunks")).unwrap();
                    std::fs::write(d.join("meta.json"), format!(r#"{{"ulid":"{block}"}}"#))
                        .unwrap();
                    std::fs::write(d.join("chunks/000001"), block.repeat(1000)).unwrap();
                }
                json(json!({"status": "success", "data": {"name": name}}))
            }
            (A, s, "https", "GET", "/api/v2/silences") if s == format!("{A}-alertmanager") => {
                json(json!([
                    {"id": "4b1d", "status": {"state": "active"}, "comment": "maintenance",
                     "matchers": [{"name": "alertname", "value": "DiskFull", "isRegex": false}]}
                ]))
            }
            _ => None,
        }
    });
    // pg_dump and psql in a database pod's postgres container: Debian's, against that
    // namespace's server; tar and rm in Prometheus's pod, on its volume
    let prometheus_pod_name = prometheus_pod.clone();
    server.state().set_exec_hook(move |r: &ExecRequest| {
        // the postfix container: sh, tar and the postqueue stand-in, on the spool stand-in
        if r.namespace == A && r.pod == postfix_pod && r.container == "postfix" {
            let mut c = match r.command[0].as_str() {
                "postqueue" => std::process::Command::new(&postqueue),
                program @ ("sh" | "tar") => std::process::Command::new(program),
                _ => return None,
            };
            c.args(
                r.command[1..]
                    .iter()
                    .map(|a| a.replace("/var/spool/postfix", &spool.display().to_string())),
            );
            return Some(c);
        }
        if r.namespace == A && r.pod == prometheus_pod_name && r.container == "prometheus" {
            let program = r.command[0].as_str();
            if !matches!(program, "tar" | "rm") {
                return None;
            }
            let mut c = std::process::Command::new(program);
            c.args(r.command[1..].iter().map(|a| {
                a.strip_prefix("/prometheus")
                    .map(|rest| format!("{}{rest}", tsdb.display()))
                    .unwrap_or_else(|| a.clone())
            }));
            return Some(c);
        }
        let port = ports.iter().find(|(ns, _)| *ns == r.namespace)?.1;
        let program = r.command[0].as_str();
        if r.container != "postgres"
            || r.pod != format!("{}-postgres-0", r.namespace)
            || !matches!(program, "pg_dump" | "psql")
        {
            return None;
        }
        let mut c = std::process::Command::new(bin_dir().join(program));
        c.args(&r.command[1..])
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", port.to_string());
        Some(c)
    });

    a.sql(
        "crm",
        &format!(
            "SET ROLE crm; CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL, email text, joined date); \
             INSERT INTO customers SELECT i, 'Adhérent ' || i, CASE WHEN i % 7 = 0 THEN NULL ELSE 'a' || i || '@example.fr' END, date '2020-01-01' + (i % 1500) FROM generate_series(1, {ROWS}) i; \
             CREATE TABLE notes (id serial PRIMARY KEY, customer bigint REFERENCES customers, body text); \
             INSERT INTO notes (customer, body) VALUES (1, E'ligne 1\\nligne 2, \"citée\"'), (2, 'tab\\there')"
        ),
    );
    let docs = (document(&tmp, A), document(&tmp, B));
    Clusters {
        dir: tmp.clone(),
        _server: server,
        a,
        b,
        docs,
        _tmp: owned,
    }
}

/// The queue IDs of the two messages in the MTA's queue: one being delivered, one deferred.
const QUEUED: [(&str, &str); 2] = [("active", "5B7C02D1E9"), ("deferred", "3F2A81C0B4")];

/// A directory standing in for the MTA's `/var/spool/postfix`, as Postfix 3.7 lays it out (the
/// deferred queue hashed one level deep), holding two queue files, and a stand-in for `postqueue
/// -j` printing what Postfix prints for them (its JSON, one object per line). The queue files'
/// bytes are not Postfix's record format: the export copies them without reading them.
fn mail_queue(tmp: &Path) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let spool = tmp.join("postfix-spool");
    for d in [
        "incoming", "active", "deferred", "hold", "maildrop", "bounce", "defer", "trace", "public",
        "private", "pid",
    ] {
        std::fs::create_dir_all(spool.join(d)).unwrap();
    }
    std::fs::write(spool.join("pid/master.pid"), "         42\n").unwrap();
    for (queue, id) in QUEUED {
        let path = if queue == "deferred" {
            spool.join(format!("deferred/{}/{id}", &id[..1]))
        } else {
            spool.join(format!("{queue}/{id}"))
        };
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, format!("queue file {id}\n").repeat(20)).unwrap();
    }
    let postqueue = tmp.join("postqueue");
    std::fs::write(
        &postqueue,
        r#"#!/bin/sh
# postqueue -j for the two queue files of the spool stand-in
[ "$1" = -j ] || { echo "postqueue: usage: postqueue -j" >&2; exit 64; }
cat <<'JSON'
{"queue_name": "active", "queue_id": "5B7C02D1E9", "arrival_time": 1764936000, "message_size": 1820, "forced_expire": false, "sender": "crm@crm.mutuelle.example.fr", "recipients": [{"address": "adherent.1@example.fr"}]}
{"queue_name": "deferred", "queue_id": "3F2A81C0B4", "arrival_time": 1764932400, "message_size": 2764, "forced_expire": false, "sender": "crm@crm.mutuelle.example.fr", "recipients": [{"address": "adherent.7@example.org", "delay_reason": "connect to mx.example.org[192.0.2.25]:25: Connection timed out"}, {"address": "adherent.3@example.org", "delay_reason": "connect to mx.example.org[192.0.2.25]:25: Connection timed out"}]}
JSON
"#,
    )
    .unwrap();
    std::fs::set_permissions(&postqueue, std::fs::Permissions::from_mode(0o755)).unwrap();
    (spool, postqueue)
}

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn a_kubernetes_platform_is_drilled_into_another_namespace_and_a_bad_export_changes_nothing() {
    let c = start();
    let (doc_a, doc_b) = (&c.docs.0, &c.docs.1);

    // the drill: export A, restore into B, compare; every phase timed
    let report = c.dir.join("drill");
    let out = terroir()
        .args(["--output", "json", "drill"])
        .arg(doc_a)
        .arg("--into")
        .arg(doc_b)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let drill = json_of(&out);
    assert!(
        out.status.success(),
        "{drill:#}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(drill["passed"], true);
    let phases: Vec<&str> = drill["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["export", "verify", "restore", "compare"]);
    // the figures a user reads (`--no-capture` shows them)
    eprintln!("drill phases: {}", drill["phases"]);
    let checks = drill["tables"].as_array().unwrap();
    let check = |subject: &str| {
        checks
            .iter()
            .find(|c| c["subject"] == subject)
            .unwrap_or_else(|| panic!("{subject} is compared: {checks:#?}"))
    };
    let rows = check("table public.customers rows");
    assert_eq!(
        (&rows["source"], &rows["destination"]),
        (&json!("100000"), &json!("100000"))
    );
    let content = check("table public.customers content");
    assert_eq!(content["matches"], true);
    assert!(!content["source"].as_str().unwrap().is_empty());
    assert_eq!(check("table public.notes rows")["destination"], "2");
    assert_eq!(drill["export"]["rows"], ROWS + 2);
    assert_eq!(c.a.fingerprint(), c.b.fingerprint(), "B holds what A holds");
    let md = std::fs::read_to_string(report.join("drill-report.md")).unwrap();
    assert!(md.contains("PASSED") && md.contains("| export |"), "{md}");

    // the export, as a user makes it: the same layout as on hosts, secrets named but not in clear
    c.a.sql(
        "crm",
        "INSERT INTO customers VALUES (100001, 'Nouvel adhérent', NULL, date '2026-01-01')",
    );
    let export = c.dir.join("export");
    let identity = age::x25519::Identity::generate();
    let out = terroir()
        .args(["--output", "json", "export"])
        .arg(doc_a)
        .arg("--to")
        .arg(&export)
        .arg("--recipient")
        .arg(identity.to_public().to_string())
        .output()
        .unwrap();
    let exported = json_of(&out);
    assert!(out.status.success(), "{exported:#}");
    let m = &exported["manifest"];
    assert_eq!(m["target"], "kubernetes");
    assert_eq!(m["secrets"]["exported"], true);
    let secrets = decrypt(&export.join("secrets/secrets.tar.age"), &identity);
    assert_eq!(
        secrets[&format!("secrets/{A}-postgres-credentials/password")],
        b"s3cr3t-never-in-clear"
    );
    // the metrics: the snapshot's blocks, streamed from the pod, the snapshot then removed
    assert_eq!(
        m["metricsBlocks"][format!("{A}-prometheus")],
        json!(["01JEXAMPLEBLOCKA", "01JEXAMPLEBLOCKB"]),
        "{:#}",
        m["metricsBlocks"]
    );
    let snapshot_tar = export.join(format!("metrics/{A}-prometheus/tsdb-snapshot.tar"));
    let listed = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&snapshot_tar)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("01JEXAMPLEBLOCKB/chunks/000001"),
        "{listed:?}"
    );
    assert_eq!(
        std::fs::read_dir(c.dir.join("prometheus/snapshots"))
            .unwrap()
            .count(),
        0,
        "no snapshot left on Prometheus's volume"
    );
    // the mail queue of the MTA's one pod, under the Deployment's name, as on a host
    let mta = format!("{A}-postfix");
    assert_eq!(
        m["mail"],
        json!([{"host": mta, "queued": 2, "mailboxes": {},
            "recipients": ["adherent.1@example.fr", "adherent.3@example.org", "adherent.7@example.org"]}]),
        "{:#}",
        m["mail"]
    );
    let queue_json =
        std::fs::read_to_string(export.join(format!("mail/{mta}/queue.json"))).unwrap();
    let ids: Vec<String> = queue_json
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["queue_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids, ["5B7C02D1E9", "3F2A81C0B4"]);
    let queue_tar = export.join(format!("mail/{mta}/queue.tar"));
    let listed = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&queue_tar)
        .output()
        .unwrap();
    assert!(listed.status.success(), "{listed:?}");
    let listed = String::from_utf8_lossy(&listed.stdout);
    let entries: Vec<&str> = listed.lines().map(|l| l.trim_end_matches('/')).collect();
    for wanted in [
        "incoming",
        "active",
        "deferred",
        "hold",
        "maildrop",
        "bounce",
        "defer",
        "trace",
        "active/5B7C02D1E9",
        "deferred/3/3F2A81C0B4",
    ] {
        assert!(
            entries.contains(&wanted),
            "{wanted} in the queue's tar: {listed}"
        );
    }
    assert!(
        !entries
            .iter()
            .any(|e| e.starts_with("pid") || e.starts_with("public")),
        "only the queue directories: {listed}"
    );
    let item = |path: String| {
        m["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["path"] == path)
            .unwrap_or_else(|| panic!("{path} in the manifest"))
            .clone()
    };
    let tar_item = item(format!("mail/{mta}/queue.tar"));
    assert_eq!(
        (&tar_item["kind"], &tar_item["host"], &tar_item["source"]),
        (
            &json!("mail-queue"),
            &json!(format!("{A}-postfix-5d8f7b9c4-x7k2p")),
            &json!("/var/spool/postfix")
        )
    );
    assert_eq!(
        item(format!("mail/{mta}/queue.json"))["kind"],
        "mail-queue-list"
    );
    assert!(
        m["tools"][format!("{A}-postfix-5d8f7b9c4-x7k2p/tar")]
            .as_str()
            .unwrap()
            .contains("tar"),
        "{:#}",
        m["tools"]
    );
    assert!(
        !m["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["what"] == "mail"),
        "the mail is exported: {:#}",
        m["skipped"]
    );
    let sha256sums = std::fs::read_to_string(export.join("SHA256SUMS")).unwrap();
    for file in ["queue.tar", "queue.json"] {
        let digest = sha256_hex(&std::fs::read(export.join(format!("mail/{mta}/{file}"))).unwrap());
        assert!(
            sha256sums.contains(&format!("{digest}  mail/{mta}/{file}")),
            "{file} in SHA256SUMS: {sha256sums}"
        );
    }
    let silences: Value = serde_json::from_slice(
        &std::fs::read(export.join("configuration/kubernetes/silences.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(silences[0]["comment"], "maintenance");
    // the live objects, as kubectl shows them, without Secrets
    let objects = String::from_utf8(
        std::fs::read(export.join("configuration/kubernetes/objects.yaml")).unwrap(),
    )
    .unwrap();
    assert!(
        objects.contains(&format!("name: {A}-alertmanager"))
            && objects.contains("kind: Service")
            && !objects.contains("kind: Secret")
            && !objects.contains("managedFields"),
        "{objects}"
    );
    assert!(
        m["secrets"]["names"]
            .as_array()
            .unwrap()
            .contains(&json!(format!("{A}-postgres-credentials/password")))
    );
    let customers = m["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "public.customers")
        .unwrap();
    assert_eq!(customers["rows"], ROWS + 1);
    assert_eq!(customers["csv"], "database/tables/public.customers.csv");
    let sums = std::process::Command::new("sha256sum")
        .args(["--quiet", "-c", "SHA256SUMS"])
        .current_dir(&export)
        .output()
        .unwrap();
    assert!(sums.status.success(), "sha256sum -c: {sums:?}");
    let all = read_tree(&export);
    assert!(
        !all.values()
            .any(|content| String::from_utf8_lossy(content).contains("s3cr3t-never-in-clear")),
        "no secret in clear in the export"
    );

    // a flipped byte: refused, the file named, B unchanged
    let before = c.b.fingerprint();
    let tampered = c.dir.join("tampered");
    copy_dir(&export, &tampered);
    let csv = tampered.join("database/tables/public.customers.csv");
    let mut bytes = std::fs::read(&csv).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&csv, bytes).unwrap();
    let out = terroir()
        .arg("restore")
        .arg(doc_b)
        .arg("--from")
        .arg(&tampered)
        .arg("--replace")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("`database/tables/public.customers.csv` does not match SHA256SUMS"),
        "{stderr}"
    );
    assert_eq!(c.b.fingerprint(), before, "nothing changed on B");

    // B holds data: refused without --replace, nothing changed; replaced with it
    let out = terroir()
        .args(["--output", "json", "restore"])
        .arg(doc_b)
        .arg("--from")
        .arg(&export)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("already holds") && stderr.contains("--replace"),
        "{stderr}"
    );
    assert_eq!(c.b.fingerprint(), before, "nothing changed on B");
    let out = terroir()
        .args(["--output", "json", "restore"])
        .arg(doc_b)
        .arg("--from")
        .arg(&export)
        .arg("--replace")
        .output()
        .unwrap();
    let restored = json_of(&out);
    assert!(out.status.success(), "{restored:#}");
    assert_eq!(restored["restored"], true);
    assert_eq!(restored["report"]["actions"][0]["done"], true);
    let mail_skipped = restored["report"]["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["what"] == "mail")
        .unwrap_or_else(|| panic!("the mail is listed as not restored: {restored:#}"));
    assert!(
        mail_skipped["reason"]
            .as_str()
            .unwrap()
            .contains("not restored on Kubernetes targets"),
        "{mail_skipped}"
    );
    assert_eq!(
        c.b.sql("crm", "select count(*) from customers"),
        (ROWS + 1).to_string()
    );
    assert_eq!(c.a.fingerprint(), c.b.fingerprint());
    assert_eq!(
        c.b.sql(
            "crm",
            "select tableowner from pg_tables where tablename = 'customers'"
        ),
        "crm",
        "what is loaded belongs to the platform's role"
    );
}

#[test]
fn an_mta_replica_down_stops_the_export_before_anything_is_read() {
    // highly available: Postfix is a StatefulSet of two pods, each with its own queue volume
    let tmp = tempfile::tempdir().unwrap();
    let server = BackgroundServer::start(Options::default()).unwrap();
    server
        .write_kubeconfig(&tmp.path().join("kubeconfig"), "double")
        .unwrap();
    let doc = variant("kubernetes-ha.yaml", tmp.path(), "ha.yaml", |text| {
        text.replace(
            "      namespace: mutuelle-crm\n      context: prod-paris\n",
            "      namespace: mutuelle-crm\n      kubeconfig: kubeconfig\n      context: double\n",
        )
    });
    let url = server.url();
    let post = |path: &str, body: Value| {
        ureq::post(&format!("{url}{path}"))
            .header("content-type", "application/json")
            .send(body.to_string())
            .unwrap();
    };
    post(
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": A}}),
    );
    for (pod, phase) in [("0", "Running"), ("1", "Pending")] {
        let name = format!("{A}-postfix-{pod}");
        post(
            &format!("/api/v1/namespaces/{A}/pods"),
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "postfix", "app.kubernetes.io/instance": A}},
                "spec": {"containers": [{"name": "postfix", "image": "terroir/postfix"}]}}),
        );
        ureq::patch(&format!("{url}/api/v1/namespaces/{A}/pods/{name}/status"))
            .header("content-type", "application/merge-patch+json")
            .send(json!({"status": {"phase": phase}}).to_string())
            .unwrap();
    }
    let execs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = execs.clone();
    server.state().set_exec_hook(move |r: &ExecRequest| {
        seen.lock().unwrap().push(r.command.clone());
        None
    });
    let export = tmp.path().join("export");
    let out = terroir()
        .arg("export")
        .arg(&doc)
        .arg("--to")
        .arg(&export)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "StatefulSet {A}-postfix: 1 of its 2 replicas run ({A}-postfix-0)"
        )) && stderr.contains("each replica holds its own mail queue"),
        "{stderr}"
    );
    assert!(execs.lock().unwrap().is_empty(), "nothing run in the pods");
    assert!(
        !export.exists() && !tmp.path().join("export.partial").exists(),
        "nothing written"
    );
}

#[test]
fn help_says_what_export_restore_and_drill_do_on_kubernetes() {
    for command in ["export", "restore", "drill"] {
        let out = terroir().args([command, "--help"]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success());
        assert!(
            text.contains("Kubernetes") && text.contains("exec"),
            "{command} --help:\n{text}"
        );
    }
}

/// The files of an encrypted secrets archive, by path.
fn decrypt(
    path: &Path,
    identity: &age::x25519::Identity,
) -> std::collections::BTreeMap<String, Vec<u8>> {
    use std::io::Read;
    let decryptor = age::Decryptor::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut plain = Vec::new();
    decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .unwrap()
        .read_to_end(&mut plain)
        .unwrap();
    let mut archive = tar::Archive::new(plain.as_slice());
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (name, data)
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    for (rel, content) in read_tree(from) {
        let p = to.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
