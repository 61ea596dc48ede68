//! The platform's audit trail, as its hosts keep it for spec.audit.retentionDays days (rendered
//! logrotate rules):
//! - /var/log/auth.log (rsyslog): sshd logins and failures, sudo commands;
//! - PostgreSQL's log on the database host: pgaudit lines (`AUDIT: ...`: DDL, role changes,
//!   statements on personal tables) and connections (`connection authorized`, refusals).

use std::path::PathBuf;

use serde::Serialize;

use crate::deploy::baremetal::site::{Site, SiteError};
use crate::document::Role;
use crate::text::shorten;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Site(#[from] SiteError),
    #[error("no host `{host}` in {}; its hosts are: {}", document.display(), hosts.join(", "))]
    UnknownHost {
        host: String,
        document: PathBuf,
        hosts: Vec<String>,
    },
}

/// Where an event was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// sshd, in /var/log/auth.log.
    Ssh,
    /// sudo, in /var/log/auth.log.
    Sudo,
    /// pgaudit and connections, in PostgreSQL's log.
    Postgres,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Ssh => "ssh",
            Source::Sudo => "sudo",
            Source::Postgres => "postgres",
        }
    }
}

/// One event of the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub host: String,
    /// RFC 3339, UTC when the log says so.
    pub time: String,
    pub source: Source,
    /// Who: the SSH or sudo user, or the PostgreSQL role.
    pub user: String,
    /// What: `login`, `login-failed`, `sudo`, `connect`, `connect-refused`, or pgaudit's class and
    /// command (`READ SELECT`, `WRITE INSERT`, `DDL CREATE TABLE`, `ROLE ALTER ROLE`).
    pub action: String,
    /// On what: the table for pgaudit, the database for connections, the address for SSH.
    pub object: String,
    /// The statement, the command, or the log line's message.
    pub detail: String,
}

/// The platform's hosts to read, in document order: those named (each must exist), or all.
pub fn hosts(site: &Site, named: &[String]) -> Result<Vec<String>, AuditError> {
    let all: Vec<String> = site.plan.hosts.iter().map(|h| h.name.clone()).collect();
    if let Some(unknown) = named.iter().find(|h| !all.contains(h)) {
        return Err(AuditError::UnknownHost {
            host: unknown.clone(),
            document: site.document.clone(),
            hosts: all,
        });
    }
    Ok(all
        .into_iter()
        .filter(|h| named.is_empty() || named.contains(h))
        .collect())
}

/// The latest events of `host`'s logs (PostgreSQL's too on a database host), enough raw lines
/// read to find `lines` events after filtering.
pub fn read(site: &Site, host: &str, lines: usize) -> Result<Vec<Event>, SiteError> {
    let database = site.hosts_with(Role::Database).iter().any(|h| h == host);
    let conn = site.connect(host)?;
    let text = crate::deploy::baremetal::site::run(
        &conn,
        host,
        "read the audit logs",
        &script(lines, database),
    )?;
    Ok(parse(host, &text))
}

const PG_MARK: &str = "@@terroir-postgres@@";

/// The script that prints the tails of the two logs on a host.
pub fn script(lines: usize, database: bool) -> String {
    // enough raw lines to find `lines` events after filtering
    let raw = lines.saturating_mul(50).max(2000);
    let mut s = format!(
        "tail -n {raw} /var/log/auth.log 2>/dev/null | grep -E ' (sshd|sudo)(\\[[0-9]+\\])?: ' | tail -n {raw}\n"
    );
    if database {
        s.push_str(&format!(
            "echo '{PG_MARK}'\nfor f in /var/log/postgresql/postgresql-*-main.log; do [ -f \"$f\" ] && tail -n {raw} \"$f\"; done | grep -E 'AUDIT: |connection authorized|no pg_hba.conf entry|pg_hba.conf rejects|password authentication failed' | tail -n {raw}\n"
        ));
    }
    s
}

/// Parse what `script` printed on `host`.
pub fn parse(host: &str, text: &str) -> Vec<Event> {
    let mut out = Vec::new();
    let mut postgres = false;
    for line in text.lines() {
        if line == PG_MARK {
            postgres = true;
            continue;
        }
        let event = if postgres {
            parse_postgres(host, line)
        } else {
            parse_auth(host, line)
        };
        out.extend(event);
    }
    out
}

/// A line of auth.log: `2026-11-23T17:20:01.123456+00:00 h1 sshd[12]: message` (rsyslog's
/// default on Debian 12), or the traditional `Nov 23 17:20:01 h1 sshd[12]: message`.
fn parse_auth(host: &str, line: &str) -> Option<Event> {
    let (time, rest) = match line.split_once(' ') {
        Some((t, rest)) if t.contains('T') && t.len() > 18 => (normalize_time(t), rest),
        _ => {
            let mut parts = line.splitn(4, ' ').filter(|p| !p.is_empty());
            let (m, d, t) = (parts.next()?, parts.next()?, parts.next()?);
            let rest = line.split_once(t).map(|(_, r)| r.trim_start())?;
            (format!("{m} {d} {t}"), rest)
        }
    };
    let (_hostname, rest) = rest.split_once(' ')?;
    let (program, message) = rest.split_once(": ")?;
    let program = program.split('[').next().unwrap_or_default();
    let message = message.trim();
    match program {
        "sshd" => {
            let (action, user, from) = if let Some(r) = message.strip_prefix("Accepted ") {
                ("login", word_after(r, " for "), word_after(r, " from "))
            } else if let Some(r) = message.strip_prefix("Failed ") {
                (
                    "login-failed",
                    word_after(r, " for ")
                        .filter(|u| u != "invalid")
                        .or_else(|| word_after(r, " user ")),
                    word_after(r, " from "),
                )
            } else if let Some(r) = message.strip_prefix("Invalid user ") {
                (
                    "login-failed",
                    r.split(' ').next().map(str::to_owned),
                    word_after(r, " from "),
                )
            } else if message.starts_with("Disconnected from user ") {
                (
                    "logout",
                    word_after(message, " user "),
                    word_after(message, " user ")
                        .and_then(|u| word_after(message, &format!(" {u} "))),
                )
            } else {
                return None;
            };
            Some(Event {
                host: host.to_owned(),
                time,
                source: Source::Ssh,
                user: user.unwrap_or_default(),
                action: action.to_owned(),
                object: from.unwrap_or_default(),
                detail: message.to_owned(),
            })
        }
        "sudo" => {
            // `deploy : PWD=/home/deploy ; USER=root ; COMMAND=/usr/bin/sh -c ...`
            let (user, fields) = message.split_once(" : ")?;
            let field = |key: &str| {
                fields
                    .split(" ; ")
                    .find_map(|f| f.trim().strip_prefix(key))
                    .map(str::to_owned)
            };
            let command = field("COMMAND=")?;
            Some(Event {
                host: host.to_owned(),
                time,
                source: Source::Sudo,
                user: user.trim().to_owned(),
                action: "sudo".into(),
                object: field("USER=").unwrap_or_default(),
                detail: shorten(&command, 300),
            })
        }
        _ => None,
    }
}

/// A line of PostgreSQL's log with terroir's prefix `%m [%p] %q%u@%d `:
/// `2026-11-23 17:20:01.123 UTC [1234] crm@crm LOG:  AUDIT: OBJECT,1,1,READ,SELECT,...`.
fn parse_postgres(host: &str, line: &str) -> Option<Event> {
    let mut parts = line.splitn(4, ' ');
    let (date, clock, zone) = (parts.next()?, parts.next()?, parts.next()?);
    let rest = parts.next()?;
    let time = if zone == "UTC" {
        format!("{date}T{clock}Z")
    } else {
        format!("{date}T{clock} {zone}")
    };
    let (_pid, rest) = rest.split_once("] ")?;
    let (who, message) = rest.split_once(' ')?;
    let (user, database) = who.split_once('@').unwrap_or((who, ""));
    let message = message.split_once(":  ").map(|(_, m)| m).unwrap_or(message);
    let event = |action: &str, object: &str, detail: &str| Event {
        host: host.to_owned(),
        time: time.clone(),
        source: Source::Postgres,
        user: user.to_owned(),
        action: action.to_owned(),
        object: object.to_owned(),
        detail: shorten(detail, 500),
    };
    if let Some(audit) = message.strip_prefix("AUDIT: ") {
        // SESSION|OBJECT,statement id,substatement id,class,command,object type,object name,
        // statement,parameter (CSV)
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(audit.as_bytes());
        let record = reader.records().next()?.ok()?;
        let f = |i: usize| record.get(i).unwrap_or_default();
        let object = if f(6).is_empty() { database } else { f(6) };
        return Some(event(&format!("{} {}", f(3), f(4)), object, f(7)));
    }
    if message.starts_with("connection authorized") {
        return Some(event("connect", database, message));
    }
    if message.contains("no pg_hba.conf entry")
        || message.contains("pg_hba.conf rejects")
        || message.contains("password authentication failed")
    {
        return Some(event("connect-refused", database, message));
    }
    None
}

fn word_after(text: &str, key: &str) -> Option<String> {
    let (_, rest) = text.split_once(key)?;
    rest.split(' ')
        .next()
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
}

/// `2026-11-23T17:20:01.123456+00:00` → `2026-11-23T17:20:01.123456Z`.
fn normalize_time(t: &str) -> String {
    t.strip_suffix("+00:00")
        .map(|s| format!("{s}Z"))
        .unwrap_or_else(|| t.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_logs_are_read_on_database_hosts_only() {
        let plain = script(20, false);
        assert!(
            plain.contains("/var/log/auth.log") && !plain.contains(PG_MARK),
            "{plain}"
        );
        let db = script(20, true);
        assert!(
            db.contains(PG_MARK) && db.contains("AUDIT: ") && db.contains("tail -n 2000 "),
            "{db}"
        );
        assert!(
            script(100, true).contains("tail -n 5000 "),
            "enough raw lines for the events asked"
        );
    }

    #[test]
    fn auth_log_lines() {
        let text = "2026-11-23T17:20:01.123456+00:00 h1 sshd[812]: Accepted publickey for deploy from 198.18.0.1 port 43210 ssh2: ED25519 SHA256:abc\n\
                    2026-11-23T17:20:02.000001+00:00 h1 sudo:   deploy : PWD=/home/deploy ; USER=root ; COMMAND=/usr/bin/sh -c id\n\
                    Nov 23 17:20:03 h1 sshd[813]: Invalid user eve from 198.18.0.9 port 5555\n\
                    2026-11-23T17:20:04+00:00 h1 sshd[814]: Failed publickey for deploy from 198.18.0.9 port 5556 ssh2\n\
                    2026-11-23T17:20:05+00:00 h1 sshd[815]: Received disconnect from 198.18.0.1 port 43210:11: disconnected by user\n";
        let events = parse("h1", text);
        assert_eq!(events.len(), 4, "{events:#?}");
        assert_eq!(
            (
                events[0].action.as_str(),
                events[0].user.as_str(),
                events[0].object.as_str(),
                events[0].time.as_str()
            ),
            (
                "login",
                "deploy",
                "198.18.0.1",
                "2026-11-23T17:20:01.123456Z"
            )
        );
        assert_eq!(
            (
                events[1].source,
                events[1].user.as_str(),
                events[1].object.as_str(),
                events[1].detail.as_str()
            ),
            (Source::Sudo, "deploy", "root", "/usr/bin/sh -c id")
        );
        assert_eq!(
            (
                events[2].action.as_str(),
                events[2].user.as_str(),
                events[2].time.as_str()
            ),
            ("login-failed", "eve", "Nov 23 17:20:03")
        );
        assert_eq!(
            (
                events[3].action.as_str(),
                events[3].user.as_str(),
                events[3].object.as_str()
            ),
            ("login-failed", "deploy", "198.18.0.9")
        );
    }

    #[test]
    fn postgres_log_lines() {
        let text = format!(
            "{PG_MARK}\n\
             2026-11-23 17:21:00.123 UTC [4242] crm@crm LOG:  AUDIT: OBJECT,3,1,READ,SELECT,TABLE,public.customers,\"select name, email from customers where id = 1\",<not logged>\n\
             2026-11-23 17:21:01.000 UTC [4243] crm@crm LOG:  AUDIT: SESSION,1,1,DDL,CREATE TABLE,TABLE,public.customers,\"create table customers (id int, name text, email text)\",<not logged>\n\
             2026-11-23 17:21:02.000 UTC [4244] crm@crm LOG:  connection authorized: user=crm database=crm SSL enabled (protocol=TLSv1.3, cipher=TLS_AES_256_GCM_SHA384, bits=256)\n\
             2026-11-23 17:21:03.000 UTC [4245] crm@crm FATAL:  no pg_hba.conf entry for host \"198.18.0.11\", user \"crm\", database \"crm\", no encryption\n\
             2026-11-23 17:21:04.000 UTC [4246] [unknown]@[unknown] LOG:  connection received: host=198.18.0.11 port=5555\n"
        );
        let events = parse("db1", &text);
        assert_eq!(events.len(), 4, "{events:#?}");
        assert_eq!(events[0].time, "2026-11-23T17:21:00.123Z");
        assert_eq!(
            (
                events[0].user.as_str(),
                events[0].action.as_str(),
                events[0].object.as_str(),
                events[0].detail.as_str()
            ),
            (
                "crm",
                "READ SELECT",
                "public.customers",
                "select name, email from customers where id = 1"
            )
        );
        assert_eq!(
            (events[1].action.as_str(), events[1].object.as_str()),
            ("DDL CREATE TABLE", "public.customers")
        );
        assert_eq!(
            (events[2].action.as_str(), events[2].object.as_str()),
            ("connect", "crm")
        );
        assert!(events[2].detail.contains("SSL enabled"));
        assert_eq!(events[3].action, "connect-refused");
    }
}
