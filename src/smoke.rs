//! The smoke application: a tiny stand-in for the customer-engagement application, shipped for
//! tests and demos. It proves a deployed platform end to end: it writes rows to PostgreSQL, sends
//! mail through the platform's Postfix, and serves Prometheus metrics.
//!
//! Configuration comes from the environment the blueprint renders (`app.env`):
//! APP_PORT, DATABASE_HOST, DATABASE_PORT, DATABASE_NAME, DATABASE_USER, DATABASE_PASSWORD_FILE
//! (or DATABASE_PASSWORD), PGTARGETSESSIONATTRS (with several database hosts: `read-write`),
//! SMTP_HOST, SMTP_PORT, MAIL_FROM_DOMAIN, SMTP_HOSTS (several MTAs, comma-separated: each is
//! tried in turn until one takes the message), and for TLS inside the platform TLS_CA_FILE (the
//! platform CA's certificate: PostgreSQL is then reached over TLS only, as with libpq's
//! `sslmode=verify-full`, and SMTP sessions start with STARTTLS; both verify the server's
//! certificate and name against it).
//!
//! HTTP: `GET /healthz` (200 when the database answers), `POST /rows?value=TEXT` (insert, returns
//! the id), `GET /rows/count`, `POST /mail?to=ADDRESS` (send a message), `GET /metrics`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum SmokeError {
    #[error("missing environment variable {0}")]
    Env(&'static str),
    #[error("cannot read the database password from {path}: {source}")]
    Password {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot listen on port {port}: {message}")]
    Listen { port: String, message: String },
    #[error("cannot use the CA certificate {path}: {message}")]
    Ca { path: String, message: String },
    #[error("the release's schema change (SMOKE_MIGRATE) failed: {0}")]
    Migrate(String),
}

/// Why a message could not be handed to the MTA; the HTTP answer says it.
#[derive(Debug, thiserror::Error)]
enum MailError {
    #[error("connect: {0}")]
    Connect(#[source] std::io::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("expected {expected}, the server closed the connection")]
    Closed { expected: String },
    #[error("expected {expected}, got {got}")]
    Reply { expected: String, got: String },
    #[error("{host}: {source}")]
    Name {
        host: String,
        source: rustls::pki_types::InvalidDnsNameError,
    },
    #[error(transparent)]
    Tls(#[from] rustls::Error),
    #[error("after STARTTLS: {0}")]
    AfterStartTls(Box<MailError>),
}

struct Config {
    port: String,
    db: String,
    /// The MTAs, in the order they are tried.
    smtp_hosts: Vec<String>,
    smtp_port: u16,
    from_domain: String,
    /// Client TLS that trusts the platform CA only, when TLS_CA_FILE is set.
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

/// A rustls client configuration trusting only the certificates in `path`.
pub fn client_tls(path: &str) -> Result<std::sync::Arc<rustls::ClientConfig>, SmokeError> {
    use rustls::pki_types::pem::PemObject;
    let err = |message: String| SmokeError::Ca {
        path: path.to_owned(),
        message,
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        rustls::pki_types::CertificateDer::pem_file_iter(path).map_err(|e| err(e.to_string()))?
    {
        roots
            .add(cert.map_err(|e| err(e.to_string()))?)
            .map_err(|e| err(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(err("no certificate in it".into()));
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(std::sync::Arc::new(config))
}

fn env(name: &'static str) -> Result<String, SmokeError> {
    std::env::var(name).map_err(|_| SmokeError::Env(name))
}

fn config() -> Result<Config, SmokeError> {
    // A file on hosts; the environment (from a Secret) on Kubernetes.
    let password = match env("DATABASE_PASSWORD_FILE") {
        Ok(file) => std::fs::read_to_string(&file).map_err(|source| SmokeError::Password {
            path: file.clone(),
            source,
        })?,
        Err(_) => env("DATABASE_PASSWORD")
            .map_err(|_| SmokeError::Env("DATABASE_PASSWORD_FILE or DATABASE_PASSWORD"))?,
    };
    // key=value connection string; values quoted so that any password works
    let quote = |v: &str| format!("'{}'", v.replace('\\', r"\\").replace('\'', r"\'"));
    let tls = match std::env::var("TLS_CA_FILE") {
        Ok(path) if !path.is_empty() => Some(client_tls(&path)?),
        _ => None,
    };
    let db = format!(
        "host={} port={} dbname={} user={} password={} connect_timeout=5 sslmode={}",
        quote(&env("DATABASE_HOST")?),
        quote(&env("DATABASE_PORT")?),
        quote(&env("DATABASE_NAME")?),
        quote(&env("DATABASE_USER")?),
        quote(password.trim_end_matches('\n')),
        // with the CA: TLS or nothing, the certificate and name verified (verify-full)
        if tls.is_some() { "require" } else { "prefer" },
    );
    // several hosts (a replicated database): the one that takes writes, as libpq would
    let db = match std::env::var("PGTARGETSESSIONATTRS") {
        Ok(attrs) if !attrs.is_empty() => format!("{db} target_session_attrs={}", quote(&attrs)),
        _ => db,
    };
    Ok(Config {
        port: env("APP_PORT")?,
        db,
        smtp_hosts: smtp_hosts(
            &env("SMTP_HOST")?,
            std::env::var("SMTP_HOSTS").ok().as_deref(),
        ),
        smtp_port: env("SMTP_PORT")?.parse().unwrap_or(25),
        from_domain: env("MAIL_FROM_DOMAIN").unwrap_or_else(|_| "localhost".into()),
        tls,
    })
}

static ROWS: AtomicU64 = AtomicU64::new(0);
static MAILS: AtomicU64 = AtomicU64::new(0);
static ERRORS: AtomicU64 = AtomicU64::new(0);

fn query_param(url: &str, key: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Read one SMTP reply (all its lines) and check its code.
fn expect(reader: &mut dyn BufRead, code: &str) -> Result<(), MailError> {
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(MailError::Closed {
                expected: code.to_owned(),
            });
        }
        if !line.starts_with(code) {
            return Err(MailError::Reply {
                expected: code.to_owned(),
                got: line.trim().to_owned(),
            });
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(());
        }
    }
}

fn command<S: std::io::Read + Write>(
    stream: &mut BufReader<S>,
    line: &str,
    code: &str,
) -> Result<(), MailError> {
    stream.get_mut().write_all(line.as_bytes())?;
    stream.get_mut().flush()?;
    expect(stream, code)
}

/// The MTAs to try: SMTP_HOSTS when set (several MTA hosts), else SMTP_HOST alone.
fn smtp_hosts(first: &str, all: Option<&str>) -> Vec<String> {
    let listed: Vec<String> = all
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
        .collect();
    if listed.is_empty() {
        vec![first.to_owned()]
    } else {
        listed
    }
}

/// Send one message through the first MTA that takes it, trying them in order: the name of the
/// MTA that took it, or every MTA's failure.
fn send_mail(cfg: &Config, to: &str) -> Result<String, String> {
    let mut failures = Vec::new();
    for host in &cfg.smtp_hosts {
        match send_mail_to(cfg, host, to) {
            Ok(()) => return Ok(host.clone()),
            Err(e) => failures.push(format!("{host}: {e}")),
        }
    }
    Err(failures.join("; "))
}

/// Send one message to one of the platform's MTAs: over STARTTLS with its certificate verified
/// when the platform has a CA, in plain SMTP otherwise.
fn send_mail_to(cfg: &Config, host: &str, to: &str) -> Result<(), MailError> {
    use std::net::ToSocketAddrs;
    // a host that is down must not hold the message until the system's TCP timeout
    let address = (host, cfg.smtp_port)
        .to_socket_addrs()
        .map_err(MailError::Connect)?
        .next()
        .ok_or_else(|| MailError::Connect(std::io::ErrorKind::NotFound.into()))?;
    let stream =
        TcpStream::connect_timeout(&address, Duration::from_secs(5)).map_err(MailError::Connect)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut plain = BufReader::new(stream);
    expect(&mut plain, "220")?;
    command(&mut plain, &format!("EHLO {}\r\n", cfg.from_domain), "250")?;
    match &cfg.tls {
        Some(tls) => {
            command(&mut plain, "STARTTLS\r\n", "220")?;
            let name =
                rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|source| {
                    MailError::Name {
                        host: host.to_owned(),
                        source,
                    }
                })?;
            let conn = rustls::ClientConnection::new(tls.clone(), name)?;
            let mut secure = BufReader::new(rustls::StreamOwned::new(conn, plain.into_inner()));
            command(&mut secure, &format!("EHLO {}\r\n", cfg.from_domain), "250")
                .map_err(|e| MailError::AfterStartTls(Box::new(e)))?;
            message(&mut secure, cfg, to)
        }
        None => message(&mut plain, cfg, to),
    }
}

fn message<S: std::io::Read + Write>(
    stream: &mut BufReader<S>,
    cfg: &Config,
    to: &str,
) -> Result<(), MailError> {
    let from = format!("smoke@{}", cfg.from_domain);
    command(stream, &format!("MAIL FROM:<{from}>\r\n"), "250")?;
    command(stream, &format!("RCPT TO:<{to}>\r\n"), "250")?;
    command(stream, "DATA\r\n", "354")?;
    let body = format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: terroir smoke test\r\n\r\nSent by the terroir smoke application.\r\n.\r\n"
    );
    command(stream, &body, "250")?;
    let _ = stream.get_mut().write_all(b"QUIT\r\n");
    Ok(())
}

fn respond(request: tiny_http::Request, code: u16, body: String) {
    let _ = request.respond(tiny_http::Response::from_string(body).with_status_code(code));
}

/// Run the smoke application until the process is stopped.
pub fn run() -> Result<(), SmokeError> {
    let cfg = config()?;
    let server = tiny_http::Server::http(format!("0.0.0.0:{}", cfg.port)).map_err(|e| {
        SmokeError::Listen {
            port: cfg.port.clone(),
            message: e.to_string(),
        }
    })?;
    eprintln!("smoke application listening on port {}", cfg.port);
    let connect = || match &cfg.tls {
        Some(tls) => postgres::Client::connect(
            &cfg.db,
            tokio_postgres_rustls::MakeRustlsConnect::new((**tls).clone()),
        ),
        None => postgres::Client::connect(&cfg.db, postgres::NoTls),
    };
    // a release may change the schema as it starts (a column added...), as real ones do
    if let Ok(sql) = std::env::var("SMOKE_MIGRATE")
        && !sql.is_empty()
    {
        connect()
            .and_then(|mut c| c.batch_execute(&sql))
            .map_err(|e| SmokeError::Migrate(e.to_string()))?;
        eprintln!("schema changed: {sql}");
    }
    for request in server.incoming_requests() {
        let url = request.url().to_owned();
        let path = url.split('?').next().unwrap_or_default().to_owned();
        match (request.method(), path.as_str()) {
            (tiny_http::Method::Get, "/healthz") => {
                match connect().and_then(|mut c| c.simple_query("select 1").map(|_| ())) {
                    Ok(()) => respond(request, 200, "ok\n".into()),
                    Err(e) => respond(request, 503, format!("database: {e}\n")),
                }
            }
            (tiny_http::Method::Post, "/rows") => {
                let value = query_param(&url, "value").unwrap_or_default();
                let result = connect().and_then(|mut c| {
                    c.batch_execute("create table if not exists smoke_rows (id bigserial primary key, value text not null, at timestamptz not null default now())")?;
                    c.query_one("insert into smoke_rows (value) values ($1) returning id", &[&value]).map(|row| row.get::<_, i64>(0))
                });
                match result {
                    Ok(id) => {
                        ROWS.fetch_add(1, Ordering::Relaxed);
                        respond(request, 201, format!("{id}\n"));
                    }
                    Err(e) => {
                        ERRORS.fetch_add(1, Ordering::Relaxed);
                        respond(request, 500, format!("database: {e}\n"));
                    }
                }
            }
            (tiny_http::Method::Get, "/rows/count") => match connect().and_then(|mut c| {
                c.query_one("select count(*) from smoke_rows", &[])
                    .map(|r| r.get::<_, i64>(0))
            }) {
                Ok(n) => respond(request, 200, format!("{n}\n")),
                Err(e) => respond(request, 500, format!("database: {e}\n")),
            },
            (tiny_http::Method::Post, "/mail") => {
                let to = query_param(&url, "to").unwrap_or_default();
                match send_mail(&cfg, &to) {
                    Ok(host) => {
                        MAILS.fetch_add(1, Ordering::Relaxed);
                        respond(request, 202, format!("sent through {host}\n"));
                    }
                    Err(e) => {
                        ERRORS.fetch_add(1, Ordering::Relaxed);
                        respond(request, 502, format!("smtp: {e}\n"));
                    }
                }
            }
            (tiny_http::Method::Get, "/metrics") => respond(
                request,
                200,
                format!(
                    "# HELP smoke_rows_written_total Rows written to PostgreSQL.\n# TYPE smoke_rows_written_total counter\nsmoke_rows_written_total {}\n\
                     # HELP smoke_mails_sent_total Messages accepted by the MTA.\n# TYPE smoke_mails_sent_total counter\nsmoke_mails_sent_total {}\n\
                     # HELP smoke_errors_total Failed requests.\n# TYPE smoke_errors_total counter\nsmoke_errors_total {}\n",
                    ROWS.load(Ordering::Relaxed),
                    MAILS.load(Ordering::Relaxed),
                    ERRORS.load(Ordering::Relaxed)
                ),
            ),
            _ => respond(request, 404, "not found\n".into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::smtp_hosts;

    #[test]
    fn every_listed_mta_is_tried_in_order_else_the_one_host() {
        assert_eq!(smtp_hosts("10.0.0.1", None), ["10.0.0.1"]);
        assert_eq!(smtp_hosts("10.0.0.1", Some("")), ["10.0.0.1"]);
        assert_eq!(
            smtp_hosts("10.0.0.1", Some("10.0.0.1, 10.0.0.2,")),
            ["10.0.0.1", "10.0.0.2"]
        );
    }
}
