//! The probes, run over SSH on the platform's own hosts. Each polls until what it checks holds or
//! its time is up, and reports what it saw: the time it took is the platform's.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::claims::{Member, Probe};
use crate::deploy::baremetal::health;
use crate::deploy::baremetal::site::Site;
use crate::deploy::baremetal::ssh::shell_quote;
use crate::document::Role;

/// How long a probe waits for what it checks, unless the claim says (alerts).
const DEADLINE: Duration = Duration::from_secs(90);
/// Between two attempts of a probe that does not hold yet.
const PAUSE: Duration = Duration::from_millis(500);

/// What a probe shows of the platform, for a cut-off's summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It works as it did.
    Works,
    /// It waits, without loss, for the dependency to return (mail in the queue).
    Queues,
    /// It stops until the dependency returns.
    Stops,
}

/// One probe's result.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    pub probe: String,
    pub passed: bool,
    pub outcome: Outcome,
    /// What was seen, or why it failed.
    pub observed: String,
    /// From the probe's start to its verdict.
    pub seconds: f64,
}

/// The member a fault stopped, and its host.
#[derive(Debug, Clone)]
pub struct Stopped {
    pub member: Member,
    pub host: String,
}

/// A message the drill sent: the MTA host that took it and its queue id.
#[derive(Debug, Clone)]
struct Sent {
    host: String,
    queue_id: String,
    /// Its Message-ID, which the recipient's mailbox shows.
    message_id: String,
}

/// What the probes of one claim share.
pub struct Probing<'a> {
    pub site: &'a Site,
    /// Where the drill's messages go.
    pub mail_to: String,
    /// The member stopped, if the fault stops one.
    pub stopped: Option<Stopped>,
    /// Names unique to this claim (messages, rows).
    pub token: String,
    sent: Mutex<Vec<Sent>>,
}

/// A probe's attempt: done (passed or failed for good) or not yet, with what it saw.
enum Attempt {
    Pass(Outcome, String),
    Fail(String),
    NotYet(String),
}

impl<'a> Probing<'a> {
    pub fn new(site: &'a Site, mail_to: &str, token: &str) -> Self {
        Probing {
            site,
            mail_to: mail_to.to_owned(),
            stopped: None,
            token: token.to_owned(),
            sent: Mutex::new(Vec::new()),
        }
    }

    fn running(&self, role: Role) -> Vec<String> {
        self.site
            .hosts_with(role)
            .into_iter()
            .filter(|h| {
                !self
                    .stopped
                    .as_ref()
                    .is_some_and(|s| s.member.role() == role && &s.host == h)
            })
            .collect()
    }

    fn on(&self, host: &str, what: &str, script: &str) -> Result<String, String> {
        self.site
            .run_on(host, what, script)
            .map_err(|e| crate::text::error_chain(&e))
    }

    /// Run `probe` until it holds, fails for good, or its time is up.
    pub fn run(&self, probe: &Probe) -> Observation {
        let deadline = match probe {
            Probe::AlertFires { within, .. } | Probe::AlertResolved { within, .. } => {
                Duration::from_secs(*within)
            }
            Probe::MembersRunning => Duration::from_secs(180),
            _ => DEADLINE,
        };
        self.poll(probe, deadline, false)
    }

    /// Run `probe` only to report what it sees (a cut-off's `works`, `queues` or `stops`): it
    /// passes whatever it sees, waiting `within` at most.
    pub fn observe(&self, probe: &Probe, within: Duration) -> Observation {
        self.poll(probe, within, true)
    }

    fn poll(&self, probe: &Probe, deadline: Duration, observe_only: bool) -> Observation {
        let started = Instant::now();
        let mut last = String::new();
        let attempt = loop {
            match self.attempt(probe) {
                Attempt::NotYet(seen) if started.elapsed() < deadline => {
                    last = seen;
                    std::thread::sleep(PAUSE);
                }
                Attempt::NotYet(seen) => {
                    let seen = if seen.is_empty() { last } else { seen };
                    break Attempt::Fail(format!("not within {} s: {seen}", deadline.as_secs()));
                }
                done => break done,
            }
        };
        let (passed, outcome, observed) = match attempt {
            Attempt::Pass(outcome, seen) => (true, outcome, seen),
            Attempt::Fail(why) | Attempt::NotYet(why) => (observe_only, Outcome::Stops, why),
        };
        Observation {
            probe: probe.name(),
            passed,
            outcome,
            observed,
            seconds: started.elapsed().as_secs_f64(),
        }
    }

    fn attempt(&self, probe: &Probe) -> Attempt {
        match probe {
            Probe::AppServes => self.app_serves(),
            Probe::DatabaseWrites => self.database_writes(),
            Probe::MailDelivered => self.mail(Expect::Sent { through: None }),
            Probe::MailThroughFallback => {
                let fallback = self.site.resolved.endpoints.smtp_fallback_relay.as_ref();
                match fallback {
                    Some(f) => self.mail(Expect::Sent {
                        through: Some(f.host.clone()),
                    }),
                    None => Attempt::Fail("no fallback relay is declared".into()),
                }
            }
            Probe::MailQueued => self.mail(Expect::Queued),
            Probe::MailAccepted => self.mail(Expect::Kept),
            Probe::MailQueueEmpty => self.queue_drained(),
            Probe::BackupFails => self.backup(Some(false)),
            Probe::BackupSucceeds => self.backup(Some(true)),
            Probe::BackupRuns => self.backup(None),
            Probe::AlertFires { alert, .. } => self.alert(alert, true),
            Probe::AlertResolved { alert, .. } => self.alert(alert, false),
            Probe::NamesResolve => self.names_resolve(),
            Probe::HttpsServes => self.https_serves(),
            Probe::ServicesRunning => self.components(true),
            Probe::MembersRunning => self.components(false),
        }
    }

    fn app_serves(&self) -> Attempt {
        let app = &self.site.resolved.components.app;
        let hosts = self.running(Role::App);
        if !app.enabled || hosts.is_empty() {
            return Attempt::Pass(Outcome::Works, "no application host to ask".into());
        }
        let script = format!(
            "curl -s -o /dev/null -w '%{{http_code}}' --max-time 5 http://127.0.0.1:{}{} || true",
            app.port, app.health_path
        );
        let mut seen = Vec::new();
        let mut all = true;
        for h in &hosts {
            let code = self
                .on(h, "asking the application's health", &script)
                .map(|s| s.trim().to_owned());
            let ok = matches!(&code, Ok(c) if c.starts_with('2'));
            all &= ok;
            seen.push(match code {
                Ok(c) => format!("{h} answered {}", if c == "000" { "nothing" } else { &c }),
                Err(e) => format!("{h}: {e}"),
            });
        }
        if all {
            Attempt::Pass(Outcome::Works, seen.join(", "))
        } else {
            Attempt::NotYet(seen.join(", "))
        }
    }

    /// The database host to write to: Patroni's running leader, else the only database host.
    pub fn primary(&self) -> Result<String, String> {
        let site = self.site;
        if site.resolved.components.database.highly_available {
            let (_, members) = health::cluster(site).map_err(|e| e.to_string())?;
            return members
                .into_iter()
                .find(|m| m.role == "leader" && m.state == "running")
                .map(|m| m.name)
                .ok_or_else(|| "the cluster has no running leader".to_owned());
        }
        site.hosts_with(Role::Database)
            .into_iter()
            .next()
            .ok_or_else(|| "no database host".to_owned())
    }

    fn database_writes(&self) -> Attempt {
        let db = &self.site.resolved.components.database;
        if !db.enabled || !db.managed {
            return Attempt::Pass(Outcome::Works, "no database on the platform's hosts".into());
        }
        let primary = match self.primary() {
            Ok(p) => p,
            Err(e) => return Attempt::NotYet(e),
        };
        // in the `postgres` database, not the application's: the drill leaves its data alone
        // (the token is letters, digits and dashes)
        let sql = format!(
            "create table if not exists terroir_continuity (at timestamptz not null default now(), claim text not null); \
             insert into terroir_continuity (claim) values ('{}')",
            self.token
        );
        let script = format!(
            "runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p {} -d postgres -c {}",
            db.port,
            shell_quote(&sql)
        );
        match self.on(&primary, "writing a row", &script) {
            Ok(_) => Attempt::Pass(Outcome::Works, format!("a row committed on {primary}")),
            Err(e) => Attempt::NotYet(format!("{primary}: {e}")),
        }
    }

    /// The platform's CA on its hosts.
    fn ca(&self) -> String {
        format!("/etc/{}/tls/ca.crt", self.site.resolved.platform.name)
    }

    /// Submit one message from an application host (else the MTA's own), as the application
    /// does: to each running MTA in turn until one accepts it. Returns the MTA host.
    fn submit(&self) -> Result<String, String> {
        let mtas = self.running(Role::Mta);
        let from_host = self
            .running(Role::App)
            .into_iter()
            .next()
            .or_else(|| mtas.first().cloned())
            .ok_or_else(|| "no MTA is running".to_owned())?;
        let domain = &self.site.resolved.components.mta.domain;
        let n = self.sent.lock().map(|s| s.len()).unwrap_or(0);
        let id = format!("{}.{n}@{domain}", self.token);
        let message = format!(
            "From: continuity-drill@{domain}\r\nTo: {to}\r\nSubject: terroir continuity drill {id}\r\nMessage-ID: <{id}>\r\n\r\nA message of terroir's continuity drill ({token}).\r\n",
            to = self.mail_to,
            token = self.token,
        );
        let mut why = Vec::new();
        for mta in &mtas {
            let address = self.site.address(mta);
            let script = format!(
                "printf %s {msg} | curl -sS --max-time 30 --ssl-reqd --cacert {ca} --mail-from {from} --mail-rcpt {to} -T - smtp://{address}:25",
                msg = shell_quote(&message),
                ca = self.ca(),
                from = shell_quote(&format!("continuity-drill@{domain}")),
                to = shell_quote(&self.mail_to),
            );
            match self.on(
                &from_host,
                &format!("submitting a message to {mta}"),
                &script,
            ) {
                Ok(_) => {
                    // the queue id, from the MTA's log line for this Message-ID
                    let find = format!(
                        "grep -h 'message-id=<{id}>' /var/log/mail.log | tail -n 1 | sed -n 's/.*: \\([0-9A-F]\\{{6,\\}}\\): message-id=.*/\\1/p'"
                    );
                    let started = Instant::now();
                    while started.elapsed() < Duration::from_secs(15) {
                        if let Ok(q) = self.on(mta, "finding the message in the log", &find)
                            && !q.trim().is_empty()
                        {
                            if let Ok(mut s) = self.sent.lock() {
                                s.push(Sent {
                                    host: mta.clone(),
                                    queue_id: q.trim().to_owned(),
                                    message_id: id.clone(),
                                });
                            }
                            return Ok(mta.clone());
                        }
                        std::thread::sleep(PAUSE);
                    }
                    return Err(format!(
                        "{mta} accepted the message but /var/log/mail.log does not show it"
                    ));
                }
                Err(e) => why.push(e),
            }
        }
        Err(format!("no MTA accepted the message: {}", why.join("; ")))
    }

    /// The last delivery line of the newest message: status, relay, and the reason.
    fn delivery(&self) -> Result<Option<Delivery>, String> {
        let Some(sent) = self.sent.lock().ok().and_then(|s| s.last().cloned()) else {
            return Err("no message was sent".into());
        };
        let script = format!(
            "grep -h ' {}: to=' /var/log/mail.log | tail -n 1",
            sent.queue_id
        );
        let line = self.on(&sent.host, "reading the mail log", &script)?;
        Ok(Delivery::parse(&sent.queue_id, line.trim()))
    }

    fn mail(&self, expect: Expect) -> Attempt {
        if !self.site.resolved.components.mta.enabled {
            return Attempt::Pass(Outcome::Works, "no MTA on this platform".into());
        }
        let fresh = self.sent.lock().map(|s| s.is_empty()).unwrap_or(true);
        if fresh && let Err(e) = self.submit() {
            return Attempt::Fail(e);
        }
        let d = match self.delivery() {
            Ok(Some(d)) => d,
            Ok(None) => return Attempt::NotYet("the message waits for its first attempt".into()),
            Err(e) => return Attempt::NotYet(e),
        };
        let last = self.sent.lock().ok().and_then(|s| s.last().cloned());
        let seen = format!(
            "message <{}>, {} on {}: {} via {} ({})",
            last.as_ref()
                .map(|s| s.message_id.as_str())
                .unwrap_or_default(),
            d.queue_id,
            last.as_ref().map(|s| s.host.as_str()).unwrap_or_default(),
            d.status,
            d.relay,
            d.reason
        );
        match (&expect, d.status.as_str()) {
            (Expect::Sent { through: None }, "sent") => Attempt::Pass(Outcome::Works, seen),
            (Expect::Sent { through: Some(f) }, "sent") if d.relay.contains(f.as_str()) => {
                Attempt::Pass(Outcome::Works, seen)
            }
            (Expect::Sent { through: Some(f) }, "sent") => Attempt::Fail(format!(
                "the message left, but not through the fallback relay {f}: {seen}"
            )),
            (Expect::Queued | Expect::Kept, "deferred") => Attempt::Pass(Outcome::Queues, seen),
            (Expect::Kept, "sent") => Attempt::Pass(Outcome::Works, seen),
            (Expect::Queued, "sent") => Attempt::Fail(format!(
                "the message left although the relay was cut: {seen}"
            )),
            (_, "bounced") => Attempt::Fail(format!("the message was refused: {seen}")),
            _ => Attempt::NotYet(seen),
        }
    }

    /// Every message the drill sent has left its queue: the queues are flushed, then each one's
    /// last line must say `sent` (or `bounced`: refused for good, it left the queue too, and its
    /// claim has failed already).
    fn queue_drained(&self) -> Attempt {
        let sent = self.sent.lock().map(|s| s.clone()).unwrap_or_default();
        if sent.is_empty() {
            return Attempt::Pass(Outcome::Works, "the drill sent no message".into());
        }
        let mut waiting = Vec::new();
        let (mut delivered, mut bounced) = (0, 0);
        for s in &sent {
            let script = format!(
                "postqueue -j 2>/dev/null | grep -q '\"queue_id\": *\"{q}\"' && {{ postqueue -i {q} >/dev/null 2>&1 || true; echo queued; }} || grep -h ' {q}: to=' /var/log/mail.log | tail -n 1",
                q = s.queue_id
            );
            match self.on(&s.host, "asking the queue", &script) {
                Ok(out) if out.contains("status=sent") => delivered += 1,
                Ok(out) if out.contains("status=bounced") => bounced += 1,
                Ok(out) => waiting.push(format!("{} on {}: {}", s.queue_id, s.host, out.trim())),
                Err(e) => waiting.push(e),
            }
        }
        if waiting.is_empty() {
            Attempt::Pass(
                Outcome::Works,
                format!("none left in a queue: {delivered} delivered, {bounced} refused"),
            )
        } else {
            Attempt::NotYet(waiting.join("; "))
        }
    }

    /// A backup run now: `expect` it to succeed, to fail, or (`None`) only say which.
    fn backup(&self, expect: Option<bool>) -> Attempt {
        let Some(ctx) = crate::backup::context(&self.site.resolved) else {
            return Attempt::Pass(Outcome::Works, "backups are not enabled".into());
        };
        let primary = match self.primary() {
            Ok(p) => p,
            Err(e) => return Attempt::NotYet(e),
        };
        // Against unreachable storage pgBackRest retries each request until its I/O time-out
        // (a minute by default, several minutes in all): a run meant to fail is given one
        // second, so that the failure, and the alert it raises, come in seconds. Its error
        // lines say why it failed.
        let timeouts = if expect == Some(true) {
            ""
        } else {
            "PGBACKREST_IO_TIMEOUT=1 "
        };
        let run_it = format!(
            "out=$({timeouts}timeout 120 {} incr 2>&1); rc=$?; \
             if [ $rc -ne 0 ]; then printf '%s\\n' \"$out\" | grep -m 1 ERROR >&2; printf '%s\\n' \"$out\" | tail -n 1 >&2; fi; exit $rc",
            ctx.script
        );
        let ran = self.on(&primary, "running a backup", &run_it);
        match (ran, expect) {
            (Ok(_), Some(false)) => Attempt::Fail(format!(
                "a backup of {primary} succeeded: the storage was still reachable"
            )),
            (Ok(_), _) => Attempt::Pass(Outcome::Works, format!("a backup of {primary} succeeded")),
            (Err(e), Some(true)) => Attempt::NotYet(e),
            (Err(e), _) => Attempt::Pass(Outcome::Stops, format!("the backup failed: {e}")),
        }
    }

    /// Whether `alert` is active in Alertmanager now, asked of the first running monitoring
    /// host (named in the answer), or why that cannot be told.
    pub fn alert_active(&self, alert: &str) -> Result<(String, bool), String> {
        let hosts = self.running(Role::Monitoring);
        let host = hosts
            .first()
            .ok_or_else(|| "no monitoring host is running".to_owned())?;
        let script = format!(
            "curl -sS --max-time 5 --cacert {ca} -G --data-urlencode 'filter=alertname=\"{alert}\"' --data-urlencode active=true --data-urlencode silenced=false --data-urlencode inhibited=false https://127.0.0.1:9093/api/v2/alerts",
            ca = self.ca()
        );
        let answer = self.on(host, "asking Alertmanager", &script)?;
        let active = serde_json::from_str::<serde_json::Value>(&answer)
            .ok()
            .and_then(|v| v.as_array().map(Vec::len))
            .ok_or_else(|| {
                format!(
                    "{host}: Alertmanager's answer is not a list of alerts: {}",
                    crate::text::last_lines(&answer, 3)
                )
            })?;
        Ok((host.clone(), active > 0))
    }

    fn alert(&self, alert: &str, firing: bool) -> Attempt {
        if self.running(Role::Monitoring).is_empty() {
            return Attempt::Fail("no monitoring host is running".into());
        }
        match (firing, self.alert_active(alert)) {
            (_, Err(e)) => Attempt::NotYet(e),
            (true, Ok((host, true))) => Attempt::Pass(
                Outcome::Works,
                format!("{alert} is active in Alertmanager on {host}"),
            ),
            (false, Ok((host, false))) => Attempt::Pass(
                Outcome::Works,
                format!("{alert} is no longer active in Alertmanager on {host}"),
            ),
            (true, Ok((host, false))) => {
                Attempt::NotYet(format!("{alert} is not active yet on {host}"))
            }
            (false, Ok((host, true))) => {
                Attempt::NotYet(format!("{alert} is still active on {host}"))
            }
        }
    }

    /// Host names among the platform's dependencies (addresses need no resolver).
    fn names(&self) -> Vec<String> {
        let e = &self.site.resolved.endpoints;
        let mut hosts: Vec<String> = [
            e.smtp_relay.as_ref(),
            e.smtp_fallback_relay.as_ref(),
            e.acme_ca.as_ref(),
            e.ai.as_ref(),
            e.cdn.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(|x| x.host.clone())
        .chain(
            e.backup_s3
                .as_ref()
                .and_then(|s| crate::policy::locality::verify::host_of(&s.url)),
        )
        .filter(|h| h.parse::<std::net::IpAddr>().is_err())
        .collect();
        hosts.sort();
        hosts.dedup();
        hosts
    }

    fn names_resolve(&self) -> Attempt {
        let names = self.names();
        if names.is_empty() {
            return Attempt::Pass(
                Outcome::Works,
                "every dependency is declared by address: there is no name to resolve".into(),
            );
        }
        let script = names
            .iter()
            .map(|n| {
                format!(
                    "printf '%s ' {q}; getent ahosts {q} | awk '{{print $1}}' | sort -u | tr '\\n' ' '; echo",
                    q = shell_quote(n)
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        let mut failed = Vec::new();
        let mut seen = 0;
        for h in self.site.resolved.hosts.iter().map(|h| h.name.clone()) {
            match self.on(&h, "resolving names", &script) {
                Ok(out) => {
                    for line in out.lines() {
                        let mut words = line.split_whitespace();
                        let name = words.next().unwrap_or_default();
                        if words.next().is_none() {
                            failed.push(format!("{name} on {h}"));
                        } else {
                            seen += 1;
                        }
                    }
                }
                Err(e) => failed.push(e),
            }
        }
        if failed.is_empty() {
            Attempt::Pass(
                Outcome::Works,
                format!(
                    "{} resolved on every host ({seen} answers)",
                    names.join(", ")
                ),
            )
        } else {
            Attempt::NotYet(format!("does not resolve: {}", failed.join(", ")))
        }
    }

    fn https_serves(&self) -> Attempt {
        let app = &self.site.resolved.components.app;
        let Some(name) = &app.public_host else {
            return Attempt::Pass(
                Outcome::Works,
                "no public name: nothing served over HTTPS".into(),
            );
        };
        let script = format!(
            "echo | openssl s_client -connect 127.0.0.1:443 -servername {n} 2>/dev/null | openssl x509 -noout -checkend 0 -enddate",
            n = shell_quote(name)
        );
        let mut seen = Vec::new();
        for h in self.running(Role::App) {
            match self.on(&h, "reading the served certificate", &script) {
                Ok(out) => seen.push(format!("{h}: {}", out.trim().replace('\n', "; "))),
                Err(e) => return Attempt::NotYet(e),
            }
        }
        Attempt::Pass(Outcome::Works, seen.join(", "))
    }

    /// Every component healthy; with `but_stopped`, but the one stopped on purpose.
    fn components(&self, but_stopped: bool) -> Attempt {
        let all = health::components(self.site);
        let unhealthy: Vec<String> =
            all.iter()
                .filter(|c| !c.healthy)
                .filter(|c| {
                    !(but_stopped
                        && self.stopped.as_ref().is_some_and(|s| {
                            s.host == c.host && s.member.component() == c.component
                        }))
                })
                .map(|c| format!("{} on {}: {}", c.component, c.host, c.detail))
                .collect();
        if unhealthy.is_empty() {
            Attempt::Pass(
                Outcome::Works,
                format!(
                    "{} components healthy",
                    all.iter().filter(|c| c.healthy).count()
                ),
            )
        } else {
            Attempt::NotYet(unhealthy.join("; "))
        }
    }
}

enum Expect {
    /// Left the MTA, through the relay named (host or address) when one is named.
    Sent {
        through: Option<String>,
    },
    Queued,
    /// Left, or waits in the queue: not lost.
    Kept,
}

/// A delivery attempt as Postfix logs it:
/// `QUEUEID: to=<…>, relay=…, delay=…, dsn=…, status=sent (250 …)`.
#[derive(Debug, PartialEq)]
struct Delivery {
    queue_id: String,
    relay: String,
    status: String,
    reason: String,
}

impl Delivery {
    fn parse(queue_id: &str, line: &str) -> Option<Delivery> {
        let field = |key: &str| -> Option<String> {
            let start = line.find(&format!(" {key}="))? + key.len() + 2;
            let rest = &line[start..];
            Some(rest.split([',', ' ']).next().unwrap_or_default().to_owned())
        };
        let status = field("status")?;
        let reason = line
            .split_once(&format!("status={status} "))
            .map(|(_, r)| {
                r.trim()
                    .trim_start_matches('(')
                    .trim_end_matches(')')
                    .to_owned()
            })
            .unwrap_or_default();
        Some(Delivery {
            queue_id: queue_id.to_owned(),
            relay: field("relay").unwrap_or_default(),
            status,
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_line_gives_relay_status_and_reason() {
        let line = "Dec  5 10:01:02 ops1 postfix/smtp[123]: 4F1A2B3C4D: to=<drill@example.test>, relay=198.18.0.18[198.18.0.18]:25, delay=0.2, delays=0.01/0/0.1/0.1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 9ABC)";
        let d = Delivery::parse("4F1A2B3C4D", line).unwrap();
        assert_eq!(d.relay, "198.18.0.18[198.18.0.18]:25");
        assert_eq!(d.status, "sent");
        assert_eq!(d.reason, "250 2.0.0 Ok: queued as 9ABC");
        let bounced = "postfix/smtp[9]: 77: to=<a@b>, relay=r[1.2.3.4]:25, delay=1, dsn=5.7.1, status=bounced (host r[1.2.3.4] said: 554 5.7.1 <a@b>: Relay access denied (in reply to RCPT TO command))";
        let d = Delivery::parse("77", bounced).unwrap();
        assert_eq!(d.status, "bounced");
        assert!(d.reason.contains("Relay access denied"), "{}", d.reason);
        assert_eq!(Delivery::parse("1", "no delivery line"), None);
    }
}
