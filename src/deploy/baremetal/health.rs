//! `terroir status` on hosts: what each host's components answer, beside whether they are as
//! rendered. Here: the Alertmanager cluster's members and the application's health check. Each
//! host is asked over its own session, without sudo; what it answers is read by pure functions.

use serde::Serialize;

use super::rollout::{health_command, status_of};
use super::ssh::Connection;
use super::{Options, connect};
use crate::document::Role;
use crate::parallel::in_parallel;
use crate::pipeline::render::plan::{HostPlan, Plan, Rollout};
use crate::pipeline::resolve::ResolvedPlatform;

/// One host's components as they answered.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostHealth {
    pub name: String,
    pub address: String,
    pub components: Vec<ComponentHealth>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentHealth {
    pub component: &'static str,
    /// Its part among the hosts carrying it (`member of a cluster of 2`, `one of 2 hosts`).
    pub role: String,
    pub healthy: bool,
    pub detail: String,
}

impl ComponentHealth {
    /// One line for people and for the status's pending list.
    pub fn line(&self) -> String {
        format!(
            "{} ({}): {}, {}",
            self.component,
            self.role,
            if self.healthy { "healthy" } else { "unhealthy" },
            self.detail
        )
    }
}

/// What the hosts' components answer, for the hosts carrying monitoring or the application.
pub fn look(plan: &Plan, opts: &Options, resolved: &ResolvedPlatform) -> Vec<HostHealth> {
    let carrying = |role: Role| {
        plan.hosts
            .iter()
            .filter(|h| h.roles.contains(&role))
            .count()
    };
    let (members, apps) = (carrying(Role::Monitoring), carrying(Role::App));
    let app = &resolved.components.app;
    let check = Rollout {
        service: app.name.clone(),
        health_port: u16::try_from(app.port).unwrap_or_default(),
        health_path: app.health_path.clone(),
    };
    let asked: Vec<&HostPlan> = plan
        .hosts
        .iter()
        .filter(|h| {
            (h.roles.contains(&Role::Monitoring) && resolved.components.monitoring.enabled)
                || (h.roles.contains(&Role::App) && app.enabled)
        })
        .collect();
    in_parallel(&asked, opts.concurrency, |host| {
        let conn = connect(host, opts);
        let mut components = Vec::new();
        if host.roles.contains(&Role::Monitoring) && resolved.components.monitoring.enabled {
            let answer = conn
                .as_ref()
                .map_err(|e| crate::text::error_chain(e))
                .and_then(|c| ask(c, &alertmanager_command(&resolved.platform.name)));
            components.push(alertmanager(answer, members));
        }
        if host.roles.contains(&Role::App) && app.enabled {
            let answer = conn
                .as_ref()
                .map_err(|e| crate::text::error_chain(e))
                .and_then(|c| ask(c, &health_command(&check)));
            components.push(application(answer, apps, &check));
        }
        HostHealth {
            name: host.name.clone(),
            address: host.address.clone(),
            components,
        }
    })
}

/// A command's standard output, or why there is none.
fn ask(conn: &Connection, command: &str) -> Result<String, String> {
    let out = conn
        .exec(command, None)
        .map_err(|e| crate::text::error_chain(&e))?;
    if out.ok() {
        Ok(out.stdout_str())
    } else {
        Err(out.failure())
    }
}

/// Alertmanager's status API on the host, over its HTTPS (curl is installed with monitoring).
fn alertmanager_command(platform: &str) -> String {
    format!(
        "curl -sS --max-time 10 --cacert /etc/{platform}/tls/ca.crt https://127.0.0.1:9093/api/v2/status"
    )
}

/// The Alertmanager member from its status (`/api/v2/status`): healthy when it answers and, in a
/// cluster of `members`, sees them all and has settled.
pub fn alertmanager(answer: Result<String, String>, members: usize) -> ComponentHealth {
    let role = if members > 1 {
        format!("member of a cluster of {members}")
    } else {
        "alone".to_owned()
    };
    let unhealthy = |detail: String| ComponentHealth {
        component: "alertmanager",
        role: role.clone(),
        healthy: false,
        detail,
    };
    let body = match answer {
        Ok(b) => b,
        Err(e) => return unhealthy(format!("no answer: {e}")),
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) else {
        return unhealthy(format!(
            "not its status: {}",
            crate::text::shorten(&body, 200)
        ));
    };
    let status = v["cluster"]["status"].as_str().unwrap_or("unknown");
    let peers = v["cluster"]["peers"].as_array().map_or(0, Vec::len);
    if members <= 1 {
        return ComponentHealth {
            component: "alertmanager",
            role,
            healthy: true,
            detail: format!("answers (cluster {status})"),
        };
    }
    ComponentHealth {
        component: "alertmanager",
        healthy: status == "ready" && peers == members,
        role,
        detail: format!("cluster {status}, {peers} of {members} members seen"),
    }
}

/// The application from its health check's status line.
pub fn application(
    answer: Result<String, String>,
    hosts: usize,
    check: &Rollout,
) -> ComponentHealth {
    let role = if hosts > 1 {
        format!("one of {hosts} hosts")
    } else {
        "the only host".to_owned()
    };
    let url = format!(
        "GET http://127.0.0.1:{}{}",
        check.health_port, check.health_path
    );
    let (healthy, detail) = match answer.as_deref().map(status_of) {
        Ok(Some(code)) => ((200..300).contains(&code), format!("{url} answered {code}")),
        Ok(None) => (false, format!("{url}: no answer")),
        Err(e) => (false, format!("{url}: {e}")),
    };
    ComponentHealth {
        component: "application",
        role,
        healthy,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check() -> Rollout {
        Rollout {
            service: "acme-crm-app".into(),
            health_port: 8080,
            health_path: "/healthz".into(),
        }
    }

    #[test]
    fn an_alertmanager_in_a_cluster_is_healthy_when_settled_with_every_member() {
        let status = |state: &str, peers: usize| {
            let peers: Vec<serde_json::Value> = (0..peers)
                .map(|i| serde_json::json!({"name": format!("p{i}"), "address": format!("198.18.0.1{i}:9094")}))
                .collect();
            Ok(serde_json::json!({"cluster": {"status": state, "peers": peers}}).to_string())
        };
        let ready = alertmanager(status("ready", 2), 2);
        assert!(ready.healthy, "{ready:?}");
        assert_eq!(
            ready.line(),
            "alertmanager (member of a cluster of 2): healthy, cluster ready, 2 of 2 members seen"
        );
        assert!(
            !alertmanager(status("ready", 1), 2).healthy,
            "a member lost"
        );
        assert!(!alertmanager(status("settling", 2), 2).healthy);
        // alone: clustering is off, answering is enough
        assert!(alertmanager(status("disabled", 0), 1).healthy);
        let down = alertmanager(Err("exit 7: Connection refused".into()), 2);
        assert!(!down.healthy && down.detail.contains("Connection refused"));
        assert!(!alertmanager(Ok("<html>".into()), 2).healthy);
    }

    #[test]
    fn the_application_is_healthy_when_its_check_answers_2xx() {
        let ok = application(Ok("HTTP/1.0 200 OK\r\n".into()), 2, &check());
        assert!(ok.healthy);
        assert_eq!(
            ok.line(),
            "application (one of 2 hosts): healthy, GET http://127.0.0.1:8080/healthz answered 200"
        );
        assert!(!application(Ok("HTTP/1.0 503 Service Unavailable".into()), 1, &check()).healthy);
        assert!(!application(Ok(String::new()), 1, &check()).healthy);
        assert!(!application(Err("exit 124".into()), 1, &check()).healthy);
    }
}
