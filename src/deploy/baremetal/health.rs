//! What each host's components say of themselves, for `terroir status`: Patroni's role, state
//! and lag, etcd's health, Alertmanager's cluster, the application's health endpoint; and a
//! planned switchover of the primary through Patroni (`terroir switchover`).
//!
//! Each host answers one script over SSH (`script`), whose lines `parse` reads: the script is
//! built from the host's roles, the parsing is pure.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use super::site::{Site, SiteError, run};
use crate::document::Role;
use crate::document::validate::{ETCD_CLIENT_PORT, PATRONI_PORT};
use crate::parallel::in_parallel;
use crate::pipeline::resolve::{ResolvedHost, ResolvedPlatform};

/// One component on one host, as it says it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentHealth {
    pub host: String,
    pub component: String,
    /// Its part in a group: `leader`, `sync standby`, `replica` (Patroni), `member` (etcd),
    /// `peer` (Alertmanager); empty for a component that stands alone.
    pub role: String,
    pub healthy: bool,
    /// What it said: state, lag, peers, HTTP status; or why it could not be asked.
    pub detail: String,
}

/// A member of the replicated database, as Patroni's `/cluster` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub name: String,
    pub address: String,
    /// `leader`, `sync_standby` or `replica`.
    pub role: String,
    pub state: String,
    /// Bytes of WAL behind the leader (standbys), when Patroni knows.
    pub lag: Option<u64>,
    pub timeline: Option<u64>,
}

impl Member {
    fn healthy(&self) -> bool {
        matches!(self.state.as_str(), "running" | "streaming")
    }
}

fn tls_dir(p: &ResolvedPlatform) -> String {
    format!("/etc/{}/tls", p.platform.name)
}

/// Patroni's view of the cluster, from this host's REST API (TLS, verified against the CA).
fn cluster_query(p: &ResolvedPlatform) -> String {
    format!(
        "curl -s --max-time 5 --cacert {}/ca.crt https://127.0.0.1:{PATRONI_PORT}/cluster",
        tls_dir(p)
    )
}

/// The script asking `host`'s components how they are: one line per component,
/// `<component> <answer>`; an empty answer when the component did not answer.
pub fn script(p: &ResolvedPlatform, host: &ResolvedHost) -> String {
    let c = &p.components;
    let tls = tls_dir(p);
    let has = |r: Role| host.roles.contains(&r);
    let mut s = String::new();
    let mut ask = |component: &str, command: String| {
        s.push_str(&format!(
            "printf '%s ' {component}; {{ {command}; }} 2>/dev/null | tr -d '\\n'; echo\n"
        ));
    };
    if has(Role::Database) && c.database.managed {
        if c.database.highly_available {
            ask("patroni", cluster_query(p));
        } else {
            ask(
                "postgresql",
                format!(
                    "runuser -u postgres -- pg_isready -q -h /var/run/postgresql -p {} && echo up || echo down",
                    c.database.port
                ),
            );
        }
    }
    if has(Role::Consensus) && c.database.highly_available {
        ask(
            "etcd",
            format!(
                "curl -s --max-time 5 --cacert {tls}/ca.crt --cert /etc/etcd/tls/host.crt --key /etc/etcd/tls/host.key https://127.0.0.1:{ETCD_CLIENT_PORT}/health"
            ),
        );
    }
    if has(Role::Mta) && c.mta.enabled {
        ask(
            "postfix",
            "postfix status >/dev/null 2>&1 && echo up || echo down".to_owned(),
        );
    }
    if has(Role::Monitoring) && c.monitoring.enabled {
        ask(
            "prometheus",
            format!(
                "curl -s -o /dev/null -w '%{{http_code}}' --max-time 5 --cacert {tls}/ca.crt https://127.0.0.1:9090/-/ready"
            ),
        );
        // the cluster's size it should see, then what it sees
        ask(
            "alertmanager",
            format!(
                "printf '%s ' {}; curl -s --max-time 5 --cacert {tls}/ca.crt https://127.0.0.1:9093/api/v2/status",
                c.monitoring.hosts.len()
            ),
        );
    }
    if has(Role::App) && c.app.enabled {
        ask(
            "app",
            format!(
                "curl -s -o /dev/null -w '%{{http_code}}' --max-time 5 http://127.0.0.1:{}{}",
                c.app.port, c.app.health_path
            ),
        );
    }
    s
}

/// The components' lines of `host`'s answer.
pub fn parse(host: &str, output: &str) -> Vec<ComponentHealth> {
    output
        .lines()
        .filter_map(|line| {
            let (component, answer) = line.split_once(' ').unwrap_or((line, ""));
            if component.is_empty() {
                return None;
            }
            let (role, healthy, detail) = judge(host, component, answer.trim());
            Some(ComponentHealth {
                host: host.to_owned(),
                component: component.to_owned(),
                role,
                healthy,
                detail,
            })
        })
        .collect()
}

fn judge(host: &str, component: &str, answer: &str) -> (String, bool, String) {
    let silent = |what: &str| (String::new(), false, format!("{what} does not answer"));
    if answer.is_empty() {
        return match component {
            "patroni" => silent("Patroni's REST API"),
            "etcd" => silent("etcd"),
            "alertmanager" => silent("Alertmanager"),
            "prometheus" => silent("Prometheus"),
            "app" => silent("the application"),
            _ => silent(component),
        };
    }
    match component {
        "patroni" => match members(answer).and_then(|m| m.into_iter().find(|m| m.name == host)) {
            Some(m) => {
                let mut detail = m.state.clone();
                if let Some(t) = m.timeline {
                    detail.push_str(&format!(", timeline {t}"));
                }
                if let Some(lag) = m.lag {
                    detail.push_str(&format!(", {lag} bytes behind"));
                }
                (m.role.replace('_', " "), m.healthy(), detail)
            }
            None => (
                String::new(),
                false,
                "not a member of the cluster Patroni lists".to_owned(),
            ),
        },
        "etcd" => {
            let ok = serde_json::from_str::<Value>(answer)
                .ok()
                .and_then(|v| v.get("health").cloned())
                .is_some_and(|h| h == "true" || h == true);
            let detail = if ok { "healthy" } else { answer };
            ("member".to_owned(), ok, detail.to_owned())
        }
        "alertmanager" => {
            let (expected, status) = answer.split_once(' ').unwrap_or((answer, ""));
            let expected: usize = expected.parse().unwrap_or(1);
            let v: Value = serde_json::from_str(status).unwrap_or(Value::Null);
            if v.is_null() {
                return silent("Alertmanager");
            }
            let state = v["cluster"]["status"].as_str().unwrap_or("unknown");
            let peers = v["cluster"]["peers"].as_array().map_or(0, Vec::len);
            // one Alertmanager alone is not clustered (`disabled`); several must all see each other
            let healthy = if expected <= 1 {
                state == "ready" || state == "disabled"
            } else {
                state == "ready" && peers == expected
            };
            (
                "peer".to_owned(),
                healthy,
                format!(
                    "cluster {state}, {peers} peer{} of {expected}",
                    crate::text::plural(peers)
                ),
            )
        }
        "prometheus" | "app" => (String::new(), answer == "200", format!("HTTP {answer}")),
        _ => (String::new(), answer == "up", answer.to_owned()),
    }
}

/// The members in Patroni's `/cluster` answer.
pub fn members(answer: &str) -> Option<Vec<Member>> {
    let v: Value = serde_json::from_str(answer).ok()?;
    let list = v.get("members")?.as_array()?;
    Some(
        list.iter()
            .map(|m| Member {
                name: m["name"].as_str().unwrap_or_default().to_owned(),
                address: m["host"].as_str().unwrap_or_default().to_owned(),
                role: m["role"].as_str().unwrap_or_default().to_owned(),
                state: m["state"].as_str().unwrap_or_default().to_owned(),
                lag: m["lag"].as_u64(),
                timeline: m["timeline"].as_u64(),
            })
            .collect(),
    )
}

/// Every host's components, asked side by side; a host that cannot be reached is one line
/// saying why.
pub fn components(site: &Site) -> Vec<ComponentHealth> {
    let hosts = &site.resolved.hosts;
    let answers = in_parallel(hosts, hosts.len().max(1), |h| {
        let script = script(&site.resolved, h);
        if script.is_empty() {
            return Vec::new();
        }
        let asked = site.run_on(&h.name, "asking its components", &script);
        match asked {
            Ok(out) => parse(&h.name, &out),
            Err(e) => vec![ComponentHealth {
                host: h.name.clone(),
                component: "host".to_owned(),
                role: String::new(),
                healthy: false,
                detail: crate::text::error_chain(&e),
            }],
        }
    });
    answers.into_iter().flatten().collect()
}

#[derive(Debug, thiserror::Error)]
pub enum SwitchoverError {
    #[error(transparent)]
    Site(#[from] SiteError),
    #[error(
        "{document}: the database has one replica: there is no standby to switch over to (`spec.components.database.replicas` of 2 or more makes one)"
    )]
    NotReplicated { document: String },
    #[error("no database host answered with Patroni's view of the cluster: {0}")]
    NoCluster(String),
    #[error(
        "the cluster has no leader now ({members}): Patroni elects one by itself; `terroir status` shows the members"
    )]
    NoLeader { members: String },
    #[error("`{to}` is not a member of the replicated database; its members: {members}")]
    UnknownMember { to: String, members: String },
    #[error("`{to}` is the primary already")]
    AlreadyPrimary { to: String },
    #[error("no standby can take over: {members}")]
    NoCandidate { members: String },
    #[error("Patroni refused the switchover from {from} to {to}: {reason}")]
    Refused {
        from: String,
        to: String,
        reason: String,
    },
    #[error(
        "the switchover from {from} to {to} was accepted but {to} was not the running primary after {seconds} s; `terroir status` shows where the cluster stands"
    )]
    NotDone {
        from: String,
        to: String,
        seconds: u64,
    },
}

/// A switchover done: from which member to which, and how long until the new primary ran.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Switched {
    pub from: String,
    pub to: String,
    pub seconds: f64,
    pub members: Vec<Member>,
}

fn describe(members: &[Member]) -> String {
    members
        .iter()
        .map(|m| format!("{} {} {}", m.name, m.role.replace('_', " "), m.state))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The members as Patroni lists them, asked of each database host in turn until one answers:
/// the host asked and the members.
pub fn cluster(site: &Site) -> Result<(String, Vec<Member>), SwitchoverError> {
    let mut why = Vec::new();
    for host in site.hosts_with(Role::Database) {
        let asked = site.run_on(&host, "asking Patroni", &cluster_query(&site.resolved));
        match asked.map(|out| members(&out)) {
            Ok(Some(m)) => return Ok((host, m)),
            Ok(None) => why.push(format!("{host}: Patroni's REST API does not answer")),
            Err(e) => why.push(crate::text::error_chain(&e)),
        }
    }
    Err(SwitchoverError::NoCluster(why.join("; ")))
}

/// The database host to read from or write to: the primary Patroni elected when the database is
/// replicated (and Patroni answers), else the first database host.
pub fn primary(site: &Site) -> Option<String> {
    if site.resolved.components.database.highly_available
        && let Ok((_, members)) = cluster(site)
        && let Some(leader) = members.into_iter().find(|m| m.role == "leader")
    {
        return Some(leader.name);
    }
    site.hosts_with(Role::Database).into_iter().next()
}

/// The leader, and the member to switch over to: `to` when given, else the synchronous standby,
/// else the standby least behind.
pub fn candidate<'a>(
    members: &'a [Member],
    to: Option<&str>,
) -> Result<(&'a Member, &'a Member), SwitchoverError> {
    let leader = members.iter().find(|m| m.role == "leader");
    let Some(leader) = leader else {
        return Err(SwitchoverError::NoLeader {
            members: describe(members),
        });
    };
    if let Some(to) = to {
        let m = members.iter().find(|m| m.name == to).ok_or_else(|| {
            SwitchoverError::UnknownMember {
                to: to.to_owned(),
                members: describe(members),
            }
        })?;
        if m.name == leader.name {
            return Err(SwitchoverError::AlreadyPrimary { to: to.to_owned() });
        }
        return Ok((leader, m));
    }
    let standbys = members.iter().filter(|m| m.role != "leader" && m.healthy());
    standbys
        .min_by_key(|m| {
            (
                m.role != "sync_standby",
                m.lag.unwrap_or(u64::MAX),
                m.name.clone(),
            )
        })
        .map(|m| (leader, m))
        .ok_or_else(|| SwitchoverError::NoCandidate {
            members: describe(members),
        })
}

/// Move the primary to `to` (or the best standby) through Patroni's REST API, then wait until
/// it runs as the leader.
pub fn switchover(site: &Site, to: Option<&str>) -> Result<Switched, SwitchoverError> {
    if !site.resolved.components.database.highly_available {
        return Err(SwitchoverError::NotReplicated {
            document: site.document.display().to_string(),
        });
    }
    let (asked, before) = cluster(site)?;
    let (leader, target) = candidate(&before, to)?;
    let (leader, target) = (leader.clone(), target.clone());
    let pgdir = format!(
        "/etc/postgresql/{}/main",
        site.resolved.components.database.version
    );
    // a change to the cluster: Patroni asks for a client certificate from the platform's CA
    let body = serde_json::json!({"leader": leader.name, "candidate": target.name}).to_string();
    let post = format!(
        "curl -s --max-time 60 -w '\\n%{{http_code}}' --cacert {tls}/ca.crt --cert {pgdir}/server.crt --key {pgdir}/server.key -X POST -H 'Content-Type: application/json' -d {body} https://{address}:{PATRONI_PORT}/switchover",
        tls = tls_dir(&site.resolved),
        body = super::ssh::shell_quote(&body),
        address = leader.address,
    );
    let started = Instant::now();
    let conn = site.connect(&asked)?;
    let out = run(&conn, &asked, "asking Patroni for the switchover", &post)?;
    let (text, code) = out.trim_end().rsplit_once('\n').unwrap_or(("", out.trim()));
    if code != "200" {
        let mut reason = if text.trim().is_empty() {
            format!("HTTP {code}")
        } else {
            format!("{} (HTTP {code})", text.trim())
        };
        if let Some(sync) = before.iter().find(|m| m.role == "sync_standby")
            && text.contains("sync_standby")
        {
            reason.push_str(&format!(
                "; with synchronous replication only the synchronous standby ({}) has every acknowledged write: switch over to it (without --to, terroir picks it)",
                sync.name
            ));
        }
        return Err(SwitchoverError::Refused {
            from: leader.name,
            to: target.name,
            reason,
        });
    }
    let limit = Duration::from_secs(60);
    loop {
        let now = run(
            &conn,
            &asked,
            "asking Patroni",
            &cluster_query(&site.resolved),
        )
        .ok()
        .and_then(|out| members(&out));
        if let Some(now) = now
            && now
                .iter()
                .any(|m| m.name == target.name && m.role == "leader" && m.healthy())
        {
            return Ok(Switched {
                from: leader.name,
                to: target.name,
                seconds: started.elapsed().as_secs_f64(),
                members: now,
            });
        }
        if started.elapsed() > limit {
            return Err(SwitchoverError::NotDone {
                from: leader.name,
                to: target.name,
                seconds: limit.as_secs(),
            });
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const CLUSTER: &str = r#"{"members": [
        {"name": "db1", "role": "leader", "state": "running", "host": "198.18.0.11", "port": 5432, "timeline": 2},
        {"name": "db2", "role": "replica", "state": "streaming", "host": "198.18.0.12", "port": 5432, "timeline": 2, "lag": 0},
        {"name": "db3", "role": "sync_standby", "state": "streaming", "host": "198.18.0.13", "port": 5432, "timeline": 2, "lag": 16}
    ], "scope": "acme-crm"}"#;

    #[test]
    fn each_member_reads_its_own_role_state_and_lag() {
        let cluster = CLUSTER.replace('\n', " ");
        let c = parse(
            "db3",
            &format!("patroni {cluster}\netcd {{\"health\":\"true\"}}\n"),
        );
        assert_eq!(c[0].component, "patroni");
        assert_eq!(c[0].role, "sync standby");
        assert!(c[0].healthy);
        assert_eq!(c[0].detail, "streaming, timeline 2, 16 bytes behind");
        assert_eq!((c[1].role.as_str(), c[1].healthy), ("member", true));
    }

    #[test]
    fn a_silent_component_is_unhealthy_and_says_so() {
        let c = parse("db1", "patroni \nalertmanager \napp 503\n");
        assert_eq!(c.len(), 3);
        assert!(c.iter().all(|c| !c.healthy));
        assert_eq!(c[0].detail, "Patroni's REST API does not answer");
        assert_eq!(c[2].detail, "HTTP 503");
        let c = parse("db9", &format!("patroni {}", CLUSTER.replace('\n', " ")));
        assert_eq!(c[0].detail, "not a member of the cluster Patroni lists");
    }

    #[test]
    fn alertmanager_reports_its_cluster() {
        let c = parse(
            "ops1",
            r#"alertmanager 2 {"cluster":{"status":"ready","peers":[{"name":"a"},{"name":"b"}]}}"#,
        );
        assert_eq!(
            (c[0].role.as_str(), c[0].healthy, c[0].detail.as_str()),
            ("peer", true, "cluster ready, 2 peers of 2")
        );
        // a member that does not see the whole cluster
        let c = parse(
            "ops1",
            r#"alertmanager 2 {"cluster":{"status":"ready","peers":[{"name":"a"}]}}"#,
        );
        assert!(!c[0].healthy);
        // one Alertmanager alone is not clustered, and fine
        let c = parse(
            "ops1",
            r#"alertmanager 1 {"cluster":{"status":"disabled"}}"#,
        );
        assert!(c[0].healthy, "{c:?}");
        assert!(!parse("ops1", "alertmanager 2 ")[0].healthy);
    }

    #[test]
    fn the_candidate_is_the_one_asked_else_the_synchronous_standby() {
        let m = members(CLUSTER).unwrap();
        assert_eq!(candidate(&m, None).unwrap().1.name, "db3");
        assert_eq!(candidate(&m, Some("db2")).unwrap().1.name, "db2");
        assert!(matches!(
            candidate(&m, Some("db1")),
            Err(SwitchoverError::AlreadyPrimary { .. })
        ));
        let e = candidate(&m, Some("db7")).unwrap_err().to_string();
        assert!(
            e.contains("db1 leader running, db2 replica streaming"),
            "{e}"
        );
        let leaderless: Vec<Member> = m.into_iter().filter(|m| m.role != "leader").collect();
        assert!(matches!(
            candidate(&leaderless, None),
            Err(SwitchoverError::NoLeader { .. })
        ));
    }
}
