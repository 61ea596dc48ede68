//! A PostgreSQL server (Debian's) on loopback running the Kubernetes blueprint's rendered settings.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command as Std;

pub fn bin_dir() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (apt-get install postgresql; scripts/test does it)")
        .map(|e| e.unwrap().path().join("bin"))
        .filter(|p| p.join("postgres").exists())
        .collect();
    dirs.sort();
    dirs.pop()
        .expect("a PostgreSQL server under /usr/lib/postgresql/*/bin")
}

pub fn as_postgres(cmd: &Path) -> Std {
    let mut c = Std::new("runuser");
    c.args(["-u", "postgres", "--"]).arg(cmd);
    c
}

pub fn chown(path: &Path, user: &str) {
    assert!(
        Std::new("chown")
            .arg(user)
            .arg(path)
            .status()
            .unwrap()
            .success(),
        "chown {user} {}",
        path.display()
    );
}

/// psql's exit status and output for a connection string and a query.
pub fn psql(conninfo: &str, password: &str, sql: &str) -> (bool, String) {
    let out = Std::new("psql")
        .arg(conninfo)
        .args(["-Atc", sql])
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

pub struct Server {
    pub bin: PathBuf,
    pub data: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

/// A PostgreSQL server on loopback running the rendered settings (`data`: the ConfigMap's data),
/// with a certificate for the Service's names as the Secret volume presents it.
pub struct Started {
    pub dir: PathBuf,
    pub port: u16,
    pub socket: String,
    pub log: PathBuf,
    pub names: Vec<String>,
    /// The platform CA the server's certificate chains to.
    pub ca: terroir::pki::Issued,
    /// Where the Secret volume's files are (tls.crt, tls.key, ca.crt).
    pub tls: PathBuf,
    pub _server: Server,
}

pub fn start(tmp: &Path, data: &serde_json::Value, env: &[(&str, String)]) -> Started {
    let dir = tmp.join("pg");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
    chown(&dir, "postgres");
    // The Secret volume: root's files, the server's group, 0440 (defaultMode 288 with fsGroup).
    let tls = dir.join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    let ca = terroir::pki::new_ca("mutuelle-crm").unwrap();
    let names: Vec<String> = [
        "mutuelle-crm-postgres",
        "mutuelle-crm-postgres.mutuelle-crm.svc",
        "mutuelle-crm-postgres.mutuelle-crm.svc.cluster.local",
    ]
    .map(String::from)
    .to_vec();
    let issued = terroir::pki::issue_server("mutuelle-crm", &ca.key_pem, &names, "test").unwrap();
    std::fs::write(tls.join("tls.crt"), &issued.cert_pem).unwrap();
    std::fs::write(tls.join("tls.key"), &issued.key_pem).unwrap();
    std::fs::write(dir.join("ca.crt"), &ca.cert_pem).unwrap();
    std::fs::write(tls.join("ca.crt"), &ca.cert_pem).unwrap();
    for f in ["tls.crt", "tls.key", "ca.crt"] {
        chown(&tls.join(f), "root:postgres");
        std::fs::set_permissions(tls.join(f), std::fs::Permissions::from_mode(0o440)).unwrap();
    }

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let socket = dir.display().to_string();
    let conf = data["postgresql.conf"]
        .as_str()
        .unwrap()
        .replace("/etc/postgresql-tls", &tls.display().to_string())
        .replace("'/var/run/postgresql'", &format!("'{socket}'"))
        .replace("listen_addresses = '*'", "listen_addresses = '127.0.0.1'")
        .replace("port = 5432", &format!("port = {port}"))
        .replace("shared_buffers = 1GB", "shared_buffers = 32MB");
    assert!(
        conf.contains("ssl = on") && conf.contains("ssl_min_protocol_version = 'TLSv1.2'"),
        "{conf}"
    );
    let hba = data["pg_hba.conf"].as_str().unwrap();
    std::fs::write(dir.join("hba.conf"), hba).unwrap();
    std::fs::write(
        dir.join("pg.conf"),
        format!(
            "{conf}\nhba_file = '{}'\nlog_statement = 'all'\nlog_destination = 'stderr'\n",
            dir.join("hba.conf").display()
        ),
    )
    .unwrap();
    for f in ["hba.conf", "pg.conf"] {
        chown(&dir.join(f), "postgres");
    }

    let bin = bin_dir();
    let data_dir = dir.join("data");
    let init = as_postgres(&bin.join("initdb"))
        .arg("-D")
        .arg(&data_dir)
        .args(["-U", "postgres"])
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "initdb: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let log = dir.join("server.log");
    let (start, guard) = pg_ctl_start(&bin, &data_dir, &dir.join("pg.conf"), &log, 60, env);
    assert!(
        start.status.success(),
        "the server starts with the key file as the Secret volume has it:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    Started {
        dir,
        port,
        socket,
        log,
        names,
        ca,
        tls,
        _server: guard,
    }
}

/// A statement as the superuser over the server's socket (peer): its output, trimmed.
pub fn sql(socket: &str, port: u16, db: &str, statement: &str) -> String {
    let out = as_postgres(Path::new("/usr/bin/psql"))
        .args([
            "-h",
            socket,
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-d",
            db,
            "-v",
            "ON_ERROR_STOP=1",
            "-XAtqc",
            statement,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{statement}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The ConfigMap's start script (sync-passwords.sh) for the server in `dir`, with pgaudit.sql
/// beside it where the script reads it.
pub fn start_script(dir: &Path, socket: &str, port: u16, data: &serde_json::Value) -> PathBuf {
    std::fs::write(
        dir.join("pgaudit.sql"),
        data["pgaudit.sql"].as_str().unwrap(),
    )
    .unwrap();
    let script = dir.join("start.sh");
    let text = data["sync-passwords.sh"]
        .as_str()
        .unwrap()
        .replace("/var/run/postgresql", socket)
        .replace("5432", &port.to_string());
    std::fs::write(
        &script,
        text.replace(
            "/etc/postgresql/pgaudit.sql",
            &dir.join("pgaudit.sql").display().to_string(),
        ),
    )
    .unwrap();
    script
}

/// `pg_ctl start` on `data` with the settings file `conf`, its log in `log`, waiting up to
/// `seconds`, with `env` added to the environment: its output, and the guard that stops it.
pub fn pg_ctl_start(
    bin: &Path,
    data: &Path,
    conf: &Path,
    log: &Path,
    seconds: u32,
    env: &[(&str, String)],
) -> (std::process::Output, Server) {
    let out = as_postgres(&bin.join("pg_ctl"))
        .arg("-D")
        .arg(data)
        .arg("-o")
        .arg(format!("-c config_file={}", conf.display()))
        .arg("-l")
        .arg(log)
        .args(["-w", "-t", &seconds.to_string(), "start"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    (
        out,
        Server {
            bin: bin.to_owned(),
            data: data.to_owned(),
        },
    )
}
