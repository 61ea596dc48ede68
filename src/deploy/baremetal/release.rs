//! A release of the application on a host: the switch of `<dir>/current` and its record in
//! `<dir>/releases/history.jsonl`, the health check a switched host must pass, and the switch
//! back when it does not. Used by the rollout (an apply's turns) and by `terroir rollback`.

use std::time::{Duration, Instant};

use super::error::HostsError;
use super::site::{Site, run};
use super::ssh::{Connection, SshError, shell_quote};
use crate::deploy::{DeployError, Work};
use crate::lifecycle::release::RestorePoint;
use crate::lifecycle::release::{Switch, short};
use crate::pipeline::render::plan::{ArtifactStep, Rollout};
use crate::pipeline::render::plan::{HostPlan, Plan, Step};
use crate::reversibility::export::SVC;

/// How long a restarted service has to answer its health check.
pub const HEALTH_DEADLINE: Duration = Duration::from_secs(120);

/// The end of a release switch, run in the release directory once `releases/<sha>` is there:
/// `current` switched with one rename, the switch recorded, and the newest `keep` releases kept
/// (the ones the history names last, the running one first).
pub fn switch_script(switch: &Switch, keep: u32) -> String {
    let line = serde_json::to_string(switch).unwrap_or_default();
    format!(
        "ln -sfn releases/{sha} .current.new; mv -T .current.new current; \
         printf '%s\\n' {line} >> releases/history.jsonl; \
         keep=\" $(tac releases/history.jsonl | grep -o '\"\\(release\\|from\\)\":\"[0-9a-f]*\"' | cut -d'\"' -f4 | awk '!s[$0]++' | head -n {keep} | tr '\\n' ' ')\"; \
         for d in releases/*/; do r=${{d#releases/}}; r=${{r%/}}; case \"$keep\" in *\" $r \"*) ;; *) rm -rf \"releases/$r\";; esac; done",
        sha = shell_quote(&switch.release),
        line = shell_quote(&line),
    )
}

/// Where `current` points in `dir` (`releases/<sha>`), empty when there is none yet.
pub fn current_release(conn: &Connection, dir: &str) -> String {
    conn.exec(
        &format!("readlink {}/current || true", shell_quote(dir)),
        None,
    )
    .map(|o| o.stdout_str().trim().to_owned())
    .unwrap_or_default()
}

/// Switch a host whose new release failed its health check back to `before` (`releases/<sha>`),
/// restart the service and check it again: what was done, or why it failed.
pub fn switch_back(
    conn: &Connection,
    artifact: &ArtifactStep,
    rollout: &Rollout,
    before: &str,
) -> Result<String, String> {
    let previous = before.trim_start_matches("releases/");
    let record = Switch {
        at: k8s_openapi::jiff::Timestamp::now().as_second(),
        release: previous.to_owned(),
        from: Some(artifact.sha256.clone()),
        restore_point: None,
        by: "switch-back".into(),
    };
    let out = conn
        .sudo(
            &format!(
                "set -e; cd {}; {}; {SVC} svc {} restart >/dev/null",
                shell_quote(&artifact.dir),
                switch_script(&record, artifact.keep),
                shell_quote(&rollout.service)
            ),
            None,
        )
        .map_err(|e| crate::text::error_chain(&e))?;
    if !out.ok() {
        return Err(format!(
            "switching back to release {} failed: {}",
            short(previous),
            super::site::why(&out.stderr_str(), &out.stdout_str())
        ));
    }
    let took = healthy(conn, rollout, HEALTH_DEADLINE).map_err(|why| {
        format!(
            "switched back to release {}, which does not answer its health check either: {why}",
            short(previous)
        )
    })?;
    Ok(format!(
        "switched back to release {}: healthy after {:.1} s",
        short(previous),
        took.as_secs_f64()
    ))
}

/// The remote command asking the service's health endpoint from the host itself (bash's
/// /dev/tcp: no HTTP client needs to be installed); prints the status line.
pub fn health_command(r: &Rollout) -> String {
    let script = format!(
        "exec 3<>/dev/tcp/127.0.0.1/{port} && printf 'GET %s HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' \"$0\" >&3 && head -n 1 <&3",
        port = r.health_port
    );
    format!(
        "timeout 10 bash -c {} {}",
        shell_quote(&script),
        shell_quote(&r.health_path)
    )
}

/// The HTTP status in a status line (`HTTP/1.0 200 OK`).
pub fn status_of(line: &str) -> Option<u16> {
    let mut words = line.split_whitespace();
    words
        .next()
        .filter(|w| w.starts_with("HTTP/"))
        .and(words.next())
        .and_then(|c| c.parse().ok())
}

/// Whether the service's process runs, as its init system says (an exit status).
fn running_command(service: &str) -> String {
    let q = shell_quote(service);
    format!(
        "if [ -d /run/systemd/system ]; then systemctl is-active --quiet {q}; else /etc/init.d/{q} status >/dev/null 2>&1; fi"
    )
}

/// Ask the health endpoint until it answers 2xx (how long it took), or until `deadline` passes
/// or the service's process is seen gone twice in a row (the last answer then).
pub fn healthy(
    conn: &Connection,
    rollout: &Rollout,
    deadline: Duration,
) -> Result<Duration, String> {
    let command = health_command(rollout);
    let running = running_command(&rollout.service);
    let started = Instant::now();
    let mut gone = 0;
    loop {
        let last = match conn.exec(&command, None) {
            Ok(out) => match status_of(&out.stdout_str()) {
                Some(code) if (200..300).contains(&code) => return Ok(started.elapsed()),
                Some(code) => format!("answered {code}"),
                None => format!("got no answer ({})", out.failure()),
            },
            Err(e @ SshError::Exec { .. }) => crate::text::error_chain(&e),
            Err(e) => return Err(crate::text::error_chain(&e)),
        };
        // as root: the pid file may be readable by root only (written under the session's umask)
        match conn.sudo(&running, None) {
            Ok(out) if !out.ok() => gone += 1,
            _ => gone = 0,
        }
        if gone >= 2 {
            return Err(format!("{last}, and {} is not running", rollout.service));
        }
        if started.elapsed() > deadline {
            return Err(format!("{last} for {} s", deadline.as_secs()));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The application's release step and the hosts carrying it.
pub(super) fn releases(plan: &Plan) -> Option<(&ArtifactStep, Vec<&HostPlan>)> {
    let mut step = None;
    let mut hosts = Vec::new();
    for h in &plan.hosts {
        for s in &h.steps {
            if let Step::Artifact { artifact, .. } = s {
                step.get_or_insert(artifact);
                hosts.push(h);
            }
        }
    }
    step.map(|s| (s, hosts))
}

/// A root command's standard output on a connection, the failure said with the host.
pub(super) fn on(
    conn: &Connection,
    host: &str,
    what: &str,
    script: &str,
) -> Result<String, String> {
    run(conn, host, what, script).map_err(|e| crate::text::error_chain(&e))
}

/// Run a statement with psql as postgres on the database host: its rows, `|`-separated.
pub(super) fn psql(
    conn: &Connection,
    host: &str,
    port: u32,
    db: &str,
    sql: &str,
) -> Result<String, String> {
    on(
        conn,
        host,
        "psql",
        &format!(
            "runuser -u postgres -- psql -p {port} -d {} -XAt -v ON_ERROR_STOP=1 -c {}",
            shell_quote(db),
            shell_quote(sql)
        ),
    )
}

/// Before `apply` switches the application's release: when a release runs on an application
/// host and a different one is about to replace it, a restore point of the database (a named
/// restore point, after a full backup when the repository has none), its WAL archived. `None`
/// when no running release changes, or when the platform keeps no backups (said as a warning:
/// the data of this upgrade cannot be rolled back).
pub fn restore_point_before(
    work: &Work<'_>,
    site: &Site,
) -> Result<Option<RestorePoint>, DeployError> {
    let Some((artifact, hosts)) = releases(&site.plan) else {
        return Ok(None);
    };
    let wanted = format!("releases/{}", artifact.sha256);
    let mut replaced = None;
    for h in &hosts {
        // a host that cannot be reached is the converge's to report
        let Ok(conn) = site.connect(&h.name) else {
            continue;
        };
        let current = current_release(&conn, &artifact.dir);
        if !current.is_empty() && current != wanted {
            replaced = Some(current);
        }
    }
    let Some(replaced) = replaced else {
        return Ok(None);
    };
    let release = short(&artifact.sha256).to_owned();
    let from = short(replaced.trim_start_matches("releases/")).to_owned();
    let failed = |why: String| {
        DeployError::Hosts(HostsError::RestorePoint {
            release: release.clone(),
            why,
        })
    };
    let db = &site.resolved.components.database;
    if !db.enabled || !db.managed || crate::backup::context(&site.resolved).is_none() {
        work.events.warn(&format!(
            "release {release} replaces {from} without a restore point: the platform keeps no database backups (components.backups and endpoints.backupS3), so `terroir rollback --with-data` cannot bring this data back"
        ));
        return Ok(None);
    }
    let primary = super::health::primary(site)
        .ok_or_else(|| failed("the document names no database host".into()))?;
    let mut inventory =
        crate::backup::hosts::list(site).map_err(|e| failed(crate::text::error_chain(&e)))?;
    if inventory.backups.is_empty() {
        work.events.note(&format!(
            "taking a full backup first: the repository holds none to replay the restore point from (release {release} replaces {from})"
        ));
        crate::backup::hosts::now(site, "full", &|_| {})
            .map_err(|e| failed(crate::text::error_chain(&e)))?;
        inventory =
            crate::backup::hosts::list(site).map_err(|e| failed(crate::text::error_chain(&e)))?;
    }
    let backup = inventory
        .backups
        .last()
        .map(|b| b.label.clone())
        .unwrap_or_default();
    let conn = site
        .connect(&primary)
        .map_err(|e| failed(crate::text::error_chain(&e)))?;
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    let name = format!("terroir-{release}-{now}");
    let out = psql(
        &conn,
        &primary,
        db.port,
        "postgres",
        &format!(
            "select pg_create_restore_point('{name}'), pg_current_xact_id(), extract(epoch from now())::bigint, \
             to_char(now() at time zone 'utc', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), pg_walfile_name(pg_current_wal_lsn())"
        ),
    )
    .map_err(failed)?;
    let fields: Vec<&str> = out.trim().split('|').collect();
    let [lsn, txid, unix, time, wal] = fields.as_slice() else {
        return Err(failed(format!("psql answered `{}`", out.trim())));
    };
    let point = RestorePoint {
        name: name.clone(),
        time: (*time).to_owned(),
        unix: unix.parse().unwrap_or(now),
        lsn: (*lsn).to_owned(),
        txid: txid.parse().unwrap_or_default(),
        backup,
    };
    // the segment holding the restore point closed and archived: a restore can reach it
    psql(
        &conn,
        &primary,
        db.port,
        "postgres",
        "select pg_switch_wal()",
    )
    .map_err(failed)?;
    let check =
        format!("select coalesce(last_archived_wal >= '{wal}', false) from pg_stat_archiver");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        if psql(&conn, &primary, db.port, "postgres", &check)
            .map_err(failed)?
            .trim()
            == "t"
        {
            break;
        }
        if std::time::Instant::now() > deadline {
            return Err(failed(format!(
                "the WAL segment {wal} holding the restore point was not archived within 120 s (see pg_stat_archiver and pgBackRest's log on {primary})"
            )));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    work.events.note(&format!(
        "restore point {name} taken on {primary} at {} (backup {}), before release {release} replaces {from}",
        point.time, point.backup
    ));
    Ok(Some(point))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_switch_records_itself_and_keeps_the_newest_releases() {
        let s = Switch {
            at: 1,
            release: "b".repeat(64),
            from: Some("a".repeat(64)),
            restore_point: None,
            by: "apply".into(),
        };
        let script = switch_script(&s, 3);
        assert!(
            script.starts_with(&format!(
                "ln -sfn releases/'{}' .current.new",
                "b".repeat(64)
            )),
            "{script}"
        );
        assert!(script.contains("head -n 3"), "{script}");
        assert!(script.contains(r#"{"at":1,"release":"bbbb"#), "{script}");
    }

    #[test]
    fn the_health_check_reads_the_status_line() {
        assert_eq!(status_of("HTTP/1.0 200 OK\r\n"), Some(200));
        assert_eq!(status_of("HTTP/1.1 503 Service Unavailable"), Some(503));
        assert_eq!(status_of(""), None);
        assert_eq!(status_of("bash: connect: Connection refused"), None);
    }

    #[test]
    fn the_health_command_asks_the_path_and_prints_the_status_line() {
        use std::io::{BufRead, BufReader, Write};
        // a one-request server on the loopback, as the service would be on its host
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut request = String::new();
            reader.read_line(&mut request).unwrap();
            // the whole request read, as a server does: unread bytes would reset the connection
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
                line.clear();
            }
            reader
                .get_mut()
                .write_all(b"HTTP/1.0 503 Service Unavailable\r\n\r\ndatabase: down\n")
                .unwrap();
            request
        });
        let r = Rollout {
            service: "app".into(),
            health_port: port,
            health_path: "/healthz?x=1".into(),
        };
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(health_command(&r))
            .output()
            .unwrap();
        assert_eq!(server.join().unwrap(), "GET /healthz?x=1 HTTP/1.0\r\n");
        let line = String::from_utf8_lossy(&out.stdout);
        assert_eq!(status_of(&line), Some(503), "{line}");
    }
}
