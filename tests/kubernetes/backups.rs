//! Kubernetes backups, run by the real programs on loopback (no pod): Debian's PostgreSQL with the
//! rendered settings (WAL archived by `pgbackrest archive-push`), the rendered `pgbackrest server`
//! sidecar with the Service's certificate, and the rendered backup script run as the CronJobs run
//! it: a repository host reaching the server by the Service's name over TLS with the backup
//! client certificate, into moto (S3, over TLS with the test's own CA). Every stored object is
//! encrypted; a certificate with another name is refused by the server, whose TLS (set by the
//! rendered OpenSSL configuration its container reads) is as ANSSI recommends (common/tls.rs);
//! the rendered restore script brings a new data directory back to a chosen time, and
//! PostgreSQL started on it has the rows written before that time and none written after; the
//! restore point `terroir apply` takes before a new image (its SQL, run here) is reached the same
//! way from the backup before it, and the rows written since it are counted as `terroir rollback
//! --with-data` states them.
//!
//! The Service's name resolves through a private /etc/hosts (a mount namespace of the test's
//! own): nothing but loopback is reached.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::Duration;

use common::pg::*;
use common::tls::{Endpoint, Start, assert_anssi_tls_here};
use common::*;

const BUCKET: &str = "mutuelle-crm-backups";
const REGION: &str = "cloudgouv-eu-west-1";
const SERVICE: &str = "mutuelle-crm-postgres.mutuelle-crm.svc";

fn postgres_id(flag: &str) -> u32 {
    String::from_utf8(
        Command::new("id")
            .arg(flag)
            .arg("postgres")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap()
}

/// Files as a Secret volume presents them: root's, the pod's group (postgres), mode 0440.
fn secret_volume(dir: &Path, files: &[(&str, &str)]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for (name, content) in files {
        let p = dir.join(name);
        std::fs::write(&p, content).unwrap();
        chown(&p, "root:postgres");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o440)).unwrap();
    }
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn kubernetes_backups_are_encrypted_and_restore_to_a_point_in_time() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    std::fs::set_permissions(t, std::fs::Permissions::from_mode(0o755)).unwrap();

    let (s3_port, moto_port) = (free_port(), free_port());
    let (_moto, s3_ca) = common::s3::start(t, &[], "127.0.0.1", s3_port, moto_port, BUCKET, REGION);
    let s3_endpoint = format!("https://127.0.0.1:{s3_port}");
    let ca_pem = std::fs::read_to_string(&s3_ca).unwrap();
    let indented: String = ca_pem.lines().map(|l| format!("        {l}\n")).collect();
    let doc = variant("kubernetes.yaml", t, "platform.yaml", |text| {
        text.replace(
            "      url: https://oos.cloudgouv-eu-west-1.outscale.com\n",
            &format!("      url: {s3_endpoint}\n      caCertificate: |\n{indented}"),
        )
        .replace(
            "      sharedBuffers: 1GB\n",
            "      sharedBuffers: 1GB\n      personalTables: [customers]\n",
        )
    });
    let out = render(&doc, t, "out");
    let pg_docs = docs(&out.join("kubernetes/postgres.yaml"));
    let backup_docs = docs(&out.join("kubernetes/backup.yaml"));
    let pg_data = named(&pg_docs, "ConfigMap", "mutuelle-crm-postgres-config")["data"].clone();
    let br = named(&backup_docs, "ConfigMap", "mutuelle-crm-pgbackrest")["data"].clone();

    // What the pods run, as rendered.
    let sts = named(&pg_docs, "StatefulSet", "mutuelle-crm-postgres");
    let containers = sts["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    let sidecar = containers
        .iter()
        .find(|c| c["name"] == "pgbackrest")
        .expect("the pgbackrest server sidecar");
    assert_eq!(
        sidecar["command"],
        serde_json::json!(["pgbackrest", "server"])
    );
    let postgres = containers.iter().find(|c| c["name"] == "postgres").unwrap();
    let env_names: Vec<&str> = postgres["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    let sidecar_env: Vec<&str> = sidecar["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    for v in [
        "PGBACKREST_REPO1_S3_KEY",
        "PGBACKREST_REPO1_S3_KEY_SECRET",
        "PGBACKREST_REPO1_CIPHER_PASS",
    ] {
        assert!(
            env_names.contains(&v) && sidecar_env.contains(&v),
            "the postgres container and the sidecar have {v}"
        );
    }
    let mut schedules = Vec::new();
    for kind in ["full", "incr"] {
        let cron = named(
            &backup_docs,
            "CronJob",
            &format!("mutuelle-crm-backup-{kind}"),
        );
        let c = &cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            c["command"],
            serde_json::json!(["/bin/sh", "/etc/pgbackrest/backup.sh", kind])
        );
        schedules.push(cron["spec"]["schedule"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        schedules,
        ["30 1 * * 0", "30 2 * * *"],
        "the full and incremental schedules of the document"
    );
    for text in [&br["pgbackrest.conf"], &br["repo.conf"]] {
        let text = text.as_str().unwrap();
        assert!(
            text.contains("repo1-cipher-type=aes-256-cbc")
                && !text.contains("cipher-pass")
                && !text.contains("s3-key"),
            "encrypted, no secret in the ConfigMap:\n{text}"
        );
    }

    // The pod's Secret volumes: the Service's certificate (made by the server start below), the
    // backup jobs' client certificate, the S3 endpoint's CA where the ConfigMap mounts it.
    let cipher = "test-cipher-pass-4b1d0c";
    let secret_env = |extra: &[(&'static str, String)]| -> Vec<(&'static str, String)> {
        let mut v = vec![
            ("PGBACKREST_REPO1_S3_KEY", "test-access".to_owned()),
            ("PGBACKREST_REPO1_S3_KEY_SECRET", "test-secret".to_owned()),
            ("PGBACKREST_REPO1_CIPHER_PASS", cipher.to_owned()),
        ];
        v.extend(extra.iter().cloned());
        v
    };
    let db_conf = t.join("db.conf");
    let pg_env = secret_env(&[("PGBACKREST_CONFIG", db_conf.display().to_string())]);
    let Started {
        dir,
        port,
        socket,
        names,
        ca,
        tls,
        _server,
        ..
    } = start(t, &pg_data, &pg_env);
    assert!(
        names.iter().any(|n| n == SERVICE),
        "the server's certificate is for the Service's names"
    );
    let data_dir = dir.join("data");
    let server_port = free_port();
    let ca_file = t.join("s3-ca.pem");
    std::fs::write(
        &ca_file,
        br["mutuelle-crm-s3-ca.pem"]
            .as_str()
            .expect("the S3 endpoint's CA in the ConfigMap"),
    )
    .unwrap();
    let paths = |text: &str, data: &Path, lock: &str, client_tls: &Path| -> String {
        text.replace("/etc/postgresql-tls", &tls.display().to_string())
            .replace(
                "/var/lib/postgresql/data/pgdata",
                &data.display().to_string(),
            )
            .replace("/var/run/postgresql", &socket)
            .replace("/tmp/pgbackrest", &t.join(lock).display().to_string())
            .replace(
                "/etc/pgbackrest/mutuelle-crm-s3-ca.pem",
                &ca_file.display().to_string(),
            )
            .replace("/etc/pgbackrest-tls", &client_tls.display().to_string())
            .replace("tls-server-address=*", "tls-server-address=127.0.0.1")
            .replace(
                "tls-server-port=8432",
                &format!("tls-server-port={server_port}"),
            )
            .replace(
                "pg1-host-port=8432",
                &format!("pg1-host-port={server_port}"),
            )
            .replace("pg1-port=5432", &format!("pg1-port={port}"))
    };
    for lock in [
        "lock-db",
        "lock-repo",
        "lock-other",
        "lock-restore",
        "lock-restore-point",
    ] {
        std::fs::create_dir_all(t.join(lock)).unwrap();
        chown(&t.join(lock), "postgres");
    }
    let client_tls = t.join("backup-tls");
    let other_tls = t.join("other-tls");
    std::fs::write(
        &db_conf,
        paths(
            br["pgbackrest.conf"].as_str().unwrap(),
            &data_dir,
            "lock-db",
            &client_tls,
        ),
    )
    .unwrap();
    let repo_conf = t.join("repo.conf");
    std::fs::write(
        &repo_conf,
        paths(
            br["repo.conf"].as_str().unwrap(),
            &data_dir,
            "lock-repo",
            &client_tls,
        ),
    )
    .unwrap();
    let other_conf = t.join("other.conf");
    std::fs::write(
        &other_conf,
        paths(
            br["repo.conf"].as_str().unwrap(),
            &data_dir,
            "lock-other",
            &other_tls,
        ),
    )
    .unwrap();
    let client = terroir::pki::issue_server(
        "mutuelle-crm",
        &ca.key_pem,
        &["mutuelle-crm-backup".to_owned()],
        "test",
    )
    .unwrap();
    secret_volume(
        &client_tls,
        &[
            ("tls.crt", &client.cert_pem),
            ("tls.key", &client.key_pem),
            ("ca.crt", &ca.cert_pem),
        ],
    );
    let other = terroir::pki::issue_server(
        "mutuelle-crm",
        &ca.key_pem,
        &["mutuelle-crm-app".to_owned()],
        "test",
    )
    .unwrap();
    secret_volume(
        &other_tls,
        &[
            ("tls.crt", &other.cert_pem),
            ("tls.key", &other.key_pem),
            ("ca.crt", &ca.cert_pem),
        ],
    );
    for f in ["db.conf", "repo.conf", "other.conf", "s3-ca.pem"] {
        std::fs::set_permissions(t.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let scripts = t.join("scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    for s in ["backup.sh", "restore-check.sh", "restore.sh"] {
        std::fs::write(
            scripts.join(s),
            br[s].as_str().unwrap().replace(
                "/var/lib/postgresql/data/pgdata",
                &t.join("restored/pgdata").display().to_string(),
            ),
        )
        .unwrap();
    }
    std::fs::set_permissions(&scripts, std::fs::Permissions::from_mode(0o755)).unwrap();
    let hosts = t.join("hosts");
    std::fs::write(
        &hosts,
        format!("127.0.0.1 localhost\n127.0.0.1 {SERVICE}\n"),
    )
    .unwrap();

    let sql = |db: &str, statement: &str| -> String { sql(&socket, port, db, statement) };
    sql("postgres", "create role crm login password 'x'");
    sql("postgres", "create database crm owner crm");

    // The container's start script: passwords, audit, and the repository's stanza.
    let start_script = start_script(&dir, &socket, port, &pg_data);
    let started = as_postgres(Path::new("/bin/sh"))
        .arg(&start_script)
        .envs(pg_env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("POSTGRES_PASSWORD", "planted-superuser-value")
        .env("APP_DB_PASSWORD", "planted-app-value")
        .env("APP_DB_USER", "crm")
        .output()
        .unwrap();
    assert!(
        started.status.success(),
        "start script: {}",
        String::from_utf8_lossy(&started.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&started.stderr).contains("could not create"),
        "the stanza is created at start: {}",
        String::from_utf8_lossy(&started.stderr)
    );

    // The sidecar, with its container's OpenSSL configuration (its TLS protocols and suites).
    // As the postgres user itself (not through runuser), so that killing it stops the server.
    let openssl_conf = sidecar["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "OPENSSL_CONF")
        .and_then(|e| e["value"].as_str())
        .expect("the sidecar's OPENSSL_CONF");
    assert_eq!(
        openssl_conf, "/etc/pgbackrest/openssl.cnf",
        "where the ConfigMap is"
    );
    let openssl_cnf = t.join("openssl.cnf");
    std::fs::write(
        &openssl_cnf,
        br["openssl.cnf"]
            .as_str()
            .expect("openssl.cnf in the ConfigMap"),
    )
    .unwrap();
    std::fs::set_permissions(&openssl_cnf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let server = Killed(
        Command::new("/usr/bin/pgbackrest")
            .arg("server")
            .uid(postgres_id("-u"))
            .gid(postgres_id("-g"))
            .envs(pg_env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("OPENSSL_CONF", &openssl_cnf)
            .stderr(std::fs::File::create(t.join("server.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    eventually(
        Duration::from_secs(30),
        "pgbackrest server listening",
        || {
            std::net::TcpStream::connect(("127.0.0.1", server_port))
                .map(|_| ())
                .map_err(|e| e.to_string())
        },
    );

    // A job's container: the repository host, the Service's name resolved by the private hosts file.
    let job = |conf: &Path, script: &str, args: &[&str]| -> Output {
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sh", "-c", "mount --bind \"$1\" /etc/hosts && shift && exec runuser -u postgres -- /bin/sh \"$@\"", "job"])
            .arg(&hosts)
            .arg(scripts.join(script))
            .args(args)
            .envs(secret_env(&[("PGBACKREST_CONFIG", conf.display().to_string())]).iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap()
    };
    let text = |o: &Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };

    sql(
        "crm",
        "create table customers (id int primary key, note text)",
    );
    sql(
        "crm",
        "insert into customers values (1, 'row-before-full-7c1e')",
    );
    let full = job(&repo_conf, "backup.sh", &["full"]);
    assert!(
        full.status.success(),
        "the full backup job: {}\nserver: {}",
        text(&full),
        std::fs::read_to_string(t.join("server.log")).unwrap_or_default()
    );
    assert!(text(&full).contains("full backup"), "{}", text(&full));

    // The server's TLS: the rendered OpenSSL configuration holds for it.
    assert_anssi_tls_here(&[Endpoint::new(
        "pgBackRest's server",
        &format!("127.0.0.1:{server_port}"),
        Start::Direct,
        true,
    )]);

    // Another client certificate of the same CA is refused by the server.
    let refused = job(&other_conf, "backup.sh", &["incr"]);
    assert!(
        !refused.status.success(),
        "a certificate for another name is refused: {}",
        text(&refused)
    );

    sql(
        "crm",
        "insert into customers values (2, 'row-before-incr-7c1e')",
    );
    let incr = job(&repo_conf, "backup.sh", &["incr"]);
    assert!(
        incr.status.success(),
        "the incremental backup job: {}",
        text(&incr)
    );
    assert!(text(&incr).contains("incr backup"), "{}", text(&incr));

    sql(
        "crm",
        "insert into customers values (3, 'row-before-target-7c1e')",
    );
    let target = sql(
        "crm",
        "select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'",
    );
    // What `terroir apply` runs in the database's pod before a new image of the application: a
    // named restore point, its WAL segment switched for archiving.
    let point = "terroir-mutuelle-crm-1796464800";
    let (point_taken, _) = terroir::deploy::kubernetes::release::parse_restore_point(
        point,
        &sql(
            "crm",
            &terroir::deploy::kubernetes::release::restore_point_sql(point),
        ),
    )
    .expect("the restore point's answer reads");
    sql(
        "crm",
        "insert into customers values (4, 'row-after-target-7c1e')",
    );
    // What `terroir rollback --with-data` says going back to it loses.
    assert_eq!(
        sql(
            "crm",
            &terroir::lifecycle::release::rows_since_sql(point_taken.txid)
        ),
        "public.customers|1",
        "one row written since the restore point"
    );
    let segment = sql("crm", "select pg_walfile_name(pg_switch_wal())");
    eventually(
        Duration::from_secs(60),
        "the WAL after the target archived",
        || {
            let s = sql(
                "postgres",
                "select coalesce(last_archived_wal, '') || ' ' || failed_count || ' ' || coalesce(last_failed_wal, '') from pg_stat_archiver",
            );
            if s.split(' ').next().unwrap_or_default() >= segment.as_str() {
                Ok(())
            } else {
                Err(s)
            }
        },
    );
    // In the bucket: backups and WAL, every object encrypted (no row, no plaintext info file).
    let listing = common::s3::boto3(
        &s3_endpoint,
        REGION,
        &s3_ca,
        &format!(
            "import json, os\nfrom concurrent.futures import ThreadPoolExecutor\nkeys = []\nfor page in s3.get_paginator('list_objects_v2').paginate(Bucket='{BUCKET}'):\n    keys += [o['Key'] for o in page.get('Contents', [])]\nos.makedirs(sys.argv[1], exist_ok=True)\ndef get(i):\n    with open(os.path.join(sys.argv[1], str(i)), 'wb') as f:\n        f.write(s3.get_object(Bucket='{BUCKET}', Key=keys[i])['Body'].read())\nwith ThreadPoolExecutor(8) as pool:\n    list(pool.map(get, range(len(keys))))\nprint(json.dumps(keys))"
        )
        .replace("sys.argv[1]", &format!("{:?}", t.join("objects").display().to_string())),
    )
    .unwrap();
    let keys: Vec<String> = serde_json::from_str(listing.trim()).unwrap();
    assert!(
        keys.iter()
            .any(|k| k.starts_with("mutuelle-crm/archive/mutuelle-crm/")),
        "WAL archived under the platform's path: {keys:?}"
    );
    assert!(
        keys.iter()
            .filter(|k| k.starts_with("mutuelle-crm/backup/mutuelle-crm/")
                && k.ends_with("backup.manifest"))
            .count()
            >= 2,
        "two backups: {keys:?}"
    );
    let mut salted = 0;
    for (i, k) in keys.iter().enumerate() {
        let bytes = std::fs::read(t.join("objects").join(i.to_string())).unwrap();
        for marker in [
            "7c1e",
            "row-before",
            "[backup:current]",
            "[db]",
            "customers",
        ] {
            assert!(
                !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
                "{k} holds {marker:?} in plain text"
            );
        }
        if bytes.starts_with(b"Salted__") {
            salted += 1;
        }
    }
    assert!(
        salted * 2 > keys.len(),
        "most objects carry the cipher's header ({salted} of {})",
        keys.len()
    );
    // The check `terroir backup restore` runs first, while PostgreSQL runs: a time before the
    // oldest backup is refused (exit 3); the chosen one is reachable.
    let (early, early_s) = terroir::backup::hosts::parse_time("2020-01-01 00:00:00+00").unwrap();
    let refused = job(
        &repo_conf,
        "restore-check.sh",
        &[&early, &early_s.to_string()],
    );
    assert_eq!(
        refused.status.code(),
        Some(3),
        "a time before the oldest backup: {}",
        text(&refused)
    );
    assert!(
        text(&refused).contains("outside the window"),
        "{}",
        text(&refused)
    );
    let (_, target_s) = terroir::backup::hosts::parse_time(&target).unwrap();
    let checked = job(
        &repo_conf,
        "restore-check.sh",
        &[&target, &target_s.to_string()],
    );
    assert!(
        checked.status.success() && text(&checked).contains("restorable"),
        "the target is reachable: {}",
        text(&checked)
    );

    // Restore as `terroir backup restore` runs it: PostgreSQL stopped, then the restore script on
    // the volume (a new, empty one here), then PostgreSQL started on it.
    drop(server);
    let stop = as_postgres(&_server.bin.join("pg_ctl"))
        .arg("-D")
        .arg(&data_dir)
        .args(["-m", "fast", "-w", "stop"])
        .output()
        .unwrap();
    assert!(stop.status.success(), "{}", text(&stop));
    let restored_root = t.join("restored");
    std::fs::create_dir_all(&restored_root).unwrap();
    chown(&restored_root, "postgres");
    let restored = restored_root.join("pgdata");
    let restore_conf = t.join("restore.conf");
    std::fs::write(
        &restore_conf,
        paths(
            br["pgbackrest.conf"].as_str().unwrap(),
            &restored,
            "lock-restore",
            &client_tls,
        ),
    )
    .unwrap();
    std::fs::set_permissions(&restore_conf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let restore = as_postgres(Path::new("/bin/sh"))
        .arg(scripts.join("restore.sh"))
        .arg(&target)
        .envs(
            secret_env(&[("PGBACKREST_CONFIG", restore_conf.display().to_string())])
                .iter()
                .map(|(k, v)| (*k, v.as_str())),
        )
        .output()
        .unwrap();
    assert!(restore.status.success(), "restore.sh: {}", text(&restore));
    let log = restored_root.join("server.log");
    let restored_env: Vec<(&str, String)> = pg_env
        .iter()
        .map(|(k, v)| (*k, v.replace("db.conf", "restore.conf")))
        .collect();
    let (start, _restored_server) = pg_ctl_start(
        &_server.bin,
        &restored,
        &dir.join("pg.conf"),
        &log,
        120,
        &restored_env,
    );
    assert!(
        start.status.success(),
        "the restored server starts: {}\n{}",
        text(&start),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    eventually(
        Duration::from_secs(120),
        "recovery ended and promoted",
        || {
            let s = sql("postgres", "select pg_is_in_recovery()");
            if s == "f" { Ok(()) } else { Err(s) }
        },
    );
    assert_eq!(
        sql(
            "crm",
            "select string_agg(note, ',' order by id) from customers"
        ),
        "row-before-full-7c1e,row-before-incr-7c1e,row-before-target-7c1e",
        "the rows as of {target}, and none after"
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("recovery stopping before commit"),
        "recovery stopped at the target:\n{logged}"
    );

    // Restore as `terroir rollback --with-data` runs it: to the restore point, from the newest
    // backup before it (`restore.sh NAME name SET`). The first restored server promoted itself
    // on a new timeline branching before the point: this one stays on the backup's.
    drop(_restored_server);
    std::fs::write(
        scripts.join("info.sh"),
        "pgbackrest --stanza=mutuelle-crm --log-level-console=off --output=json info\n",
    )
    .unwrap();
    let info = job(&repo_conf, "info.sh", &[]);
    assert!(info.status.success(), "{}", text(&info));
    let set =
        terroir::backup::hosts::parse_info(&String::from_utf8_lossy(&info.stdout), "mutuelle-crm")
            .unwrap()
            .backups
            .into_iter()
            .max_by_key(|b| b.stopped)
            .unwrap()
            .label;
    let at_point_root = t.join("restored-to-point");
    std::fs::create_dir_all(&at_point_root).unwrap();
    chown(&at_point_root, "postgres");
    let at_point = at_point_root.join("pgdata");
    let point_conf = t.join("restore-point.conf");
    std::fs::write(
        &point_conf,
        paths(
            br["pgbackrest.conf"].as_str().unwrap(),
            &at_point,
            "lock-restore-point",
            &client_tls,
        ),
    )
    .unwrap();
    std::fs::set_permissions(&point_conf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let restore = as_postgres(Path::new("/bin/sh"))
        .arg(scripts.join("restore.sh"))
        .args([point, "name", &set])
        .envs(
            secret_env(&[
                ("PGBACKREST_CONFIG", point_conf.display().to_string()),
                ("PGBACKREST_TARGET_TIMELINE", "current".to_owned()),
            ])
            .iter()
            .map(|(k, v)| (*k, v.as_str())),
        )
        .output()
        .unwrap();
    assert!(
        restore.status.success(),
        "restore.sh to a restore point: {}",
        text(&restore)
    );
    let log = at_point_root.join("server.log");
    let point_env: Vec<(&str, String)> = pg_env
        .iter()
        .map(|(k, v)| (*k, v.replace("db.conf", "restore-point.conf")))
        .collect();
    let (start, _at_point_server) = pg_ctl_start(
        &_server.bin,
        &at_point,
        &dir.join("pg.conf"),
        &log,
        120,
        &point_env,
    );
    assert!(
        start.status.success(),
        "the server restored to the point starts: {}\n{}",
        text(&start),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    eventually(
        Duration::from_secs(120),
        "recovery to the restore point ended and promoted",
        || {
            let s = sql("postgres", "select pg_is_in_recovery()");
            if s == "f" { Ok(()) } else { Err(s) }
        },
    );
    assert_eq!(
        sql(
            "crm",
            "select string_agg(note, ',' order by id) from customers"
        ),
        "row-before-full-7c1e,row-before-incr-7c1e,row-before-target-7c1e",
        "the rows as of the restore point {point}, and none after"
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains(&format!("recovery stopping at restore point \"{point}\"")),
        "recovery stopped at the restore point:\n{logged}"
    );
    for secret in [cipher, "test-secret"] {
        for f in [&repo_conf, &db_conf, &restore_conf, &point_conf] {
            assert!(!std::fs::read_to_string(f).unwrap().contains(secret));
        }
    }
}
