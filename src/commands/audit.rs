//! `terroir audit FILE`: the latest events of the platform's audit trail, per host (see
//! `crate::audit`).

use std::io::Write;

use serde::Serialize;

use super::Context;
use crate::audit::{Event, Source};
use crate::cli::{AuditArgs, AuditSource};
use crate::deploy::baremetal::site::Site;
use crate::error::{Error, ExitStatus};
use crate::printer::{Report, Text};

#[derive(Serialize)]
struct HostEvents {
    host: String,
    address: String,
    events: Vec<Event>,
    /// Why this host's logs could not be read.
    error: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Trail {
    platform: String,
    retention_days: u32,
    hosts: Vec<HostEvents>,
}

impl Report for Trail {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        for h in &self.hosts {
            writeln!(out, "== {} ({}) ==", h.host, h.address)?;
            if let Some(e) = &h.error {
                writeln!(out, "  error: {e}")?;
                continue;
            }
            if h.events.is_empty() {
                writeln!(out, "  no event")?;
            }
            for e in &h.events {
                writeln!(
                    out,
                    "  {:<27} {:<8} {:<12} {:<16} {:<24} {}",
                    e.time,
                    e.source.as_str(),
                    e.user,
                    e.action,
                    e.object,
                    e.detail.replace('\n', " ")
                )?;
            }
        }
        writeln!(
            out,
            "audit logs are kept {} days on the hosts (spec.audit.retentionDays)",
            self.retention_days
        )
    }
}

fn source(s: AuditSource) -> Source {
    match s {
        AuditSource::Ssh => Source::Ssh,
        AuditSource::Sudo => Source::Sudo,
        AuditSource::Postgres => Source::Postgres,
    }
}

/// The latest `lines` events that pass the filters, oldest first.
fn latest(mut events: Vec<Event>, args: &AuditArgs, lines: usize) -> Vec<Event> {
    let sources: Vec<Source> = args.sources.iter().copied().map(source).collect();
    events.retain(|e| {
        (sources.is_empty() || sources.contains(&e.source))
            && args.grep.as_deref().is_none_or(|g| {
                e.user.contains(g)
                    || e.object.contains(g)
                    || e.detail.contains(g)
                    || e.action.contains(g)
            })
    });
    events.sort_by(|a, b| a.time.cmp(&b.time));
    let skip = events.len().saturating_sub(lines);
    events.split_off(skip)
}

pub fn run(args: &AuditArgs, cx: &Context) -> Result<ExitStatus, Error> {
    let site = Site::open(&args.file, &cx.catalog)?;
    let hosts = crate::audit::hosts(&site, &args.hosts)?;
    let lines = args.lines.max(1);
    // every host at once: each read is one SSH round trip
    let read: Vec<(String, Result<Vec<Event>, String>)> = crate::parallel::each(
        &hosts,
        |host| {
            let events =
                crate::audit::read(&site, host, lines).map_err(|e| crate::text::error_chain(&e));
            (host.clone(), events)
        },
        |host| (host.clone(), Err("the reader panicked".into())),
    );
    let failed = read.iter().any(|(_, r)| r.is_err());
    let hosts = read
        .into_iter()
        .map(|(host, r)| {
            let address = site.address(&host);
            match r {
                Ok(events) => HostEvents {
                    host,
                    address,
                    events: latest(events, args, lines),
                    error: None,
                },
                Err(e) => HostEvents {
                    host,
                    address,
                    events: Vec::new(),
                    error: Some(e),
                },
            }
        })
        .collect();
    cx.printer.report(&Trail {
        platform: site.name().to_owned(),
        retention_days: site.resolved.audit.retention_days,
        hosts,
    })?;
    Ok(ExitStatus::checked(!failed))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn event(time: &str, source: Source, user: &str, detail: &str) -> Event {
        Event {
            host: "h1".into(),
            time: time.into(),
            source,
            user: user.into(),
            action: "sudo".into(),
            object: "root".into(),
            detail: detail.into(),
        }
    }

    fn args(sources: Vec<AuditSource>, grep: Option<&str>) -> AuditArgs {
        AuditArgs {
            file: "p.yaml".into(),
            hosts: vec![],
            sources,
            lines: 20,
            grep: grep.map(str::to_owned),
        }
    }

    #[test]
    fn the_latest_events_that_pass_the_filters_oldest_first() {
        let events = vec![
            event("3", Source::Sudo, "deploy", "id"),
            event("1", Source::Ssh, "deploy", "login"),
            event("2", Source::Sudo, "eve", "cat /etc/shadow"),
        ];
        let kept = latest(events.clone(), &args(vec![AuditSource::Sudo], None), 20);
        assert_eq!(
            kept.iter().map(|e| e.time.as_str()).collect::<Vec<_>>(),
            ["2", "3"]
        );
        let kept = latest(events.clone(), &args(vec![], Some("shadow")), 20);
        assert_eq!(kept.len(), 1);
        let kept = latest(events, &args(vec![], None), 2);
        assert_eq!(
            kept.iter().map(|e| e.time.as_str()).collect::<Vec<_>>(),
            ["2", "3"]
        );
    }

    #[test]
    fn a_host_that_could_not_be_read_says_why_among_the_others() {
        let trail = Trail {
            platform: "acme".into(),
            retention_days: 365,
            hosts: vec![
                HostEvents {
                    host: "h1".into(),
                    address: "10.0.0.1".into(),
                    events: vec![event(
                        "2026-11-23T17:20:02Z",
                        Source::Sudo,
                        "deploy",
                        "/usr/bin/sh -c\nid",
                    )],
                    error: None,
                },
                HostEvents {
                    host: "h2".into(),
                    address: "10.0.0.2".into(),
                    events: vec![],
                    error: Some("host h2: cannot reach 10.0.0.2:22".into()),
                },
            ],
        };
        assert_eq!(
            Text::of(&trail),
            "== h1 (10.0.0.1) ==\n  2026-11-23T17:20:02Z        sudo     deploy       sudo             root                     /usr/bin/sh -c id\n\
             == h2 (10.0.0.2) ==\n  error: host h2: cannot reach 10.0.0.2:22\naudit logs are kept 365 days on the hosts (spec.audit.retentionDays)\n"
        );
        let json = serde_json::to_value(&trail).unwrap();
        assert_eq!(json["retentionDays"], 365);
        assert_eq!(json["hosts"][0]["events"][0]["source"], "sudo");
        assert!(json["hosts"][0]["error"].is_null() && json["hosts"][1]["error"].is_string());
    }
}
