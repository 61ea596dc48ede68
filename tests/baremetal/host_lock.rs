//! The platform's lock on a host, against a real test host over real SSH: one session holds it,
//! a second client is refused and told who holds it, the lock is free once that session is gone;
//! `apply` stops at a held lock and `plan` takes none.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::common::hosts::TestHosts;
use crate::common::*;
use terroir::deploy::baremetal::ssh::{Connection, SshError, Target};
use terroir::deploy::lock::Holder;

const ADDRESS: &str = "198.18.0.11";
const PLATFORM: &str = "lock-test";

fn target(hosts: &TestHosts) -> Target {
    Target {
        address: ADDRESS.into(),
        port: 22,
        user: "deploy".into(),
        identity: hosts.identity(),
        known_hosts: hosts.known_hosts(),
        accept_new_host_keys: false,
        connect_timeout: Duration::from_secs(10),
        timeout: Duration::from_secs(60),
        use_agent: false,
        jump: None,
    }
}

/// A holder on another machine, as a second operator's run would be.
fn elsewhere() -> Holder {
    Holder {
        user: "alice".into(),
        machine: "workstation-a".into(),
        pid: 4242,
        since: "2026-01-02T03:04:05Z".into(),
        command: "apply".into(),
    }
}

#[test]
fn one_session_at_a_time_holds_a_platform_on_a_host() {
    let hosts = TestHosts::up(1);
    let first = Connection::open(&target(&hosts)).unwrap();
    let lock = first.lock_platform(PLATFORM, &elsewhere()).unwrap();

    // a second client is refused at once, and told who holds the lock
    let second = Connection::open(&target(&hosts)).unwrap();
    let refused = second
        .lock_platform(PLATFORM, &Holder::current("apply"))
        .err()
        .expect("two sessions held the lock of one platform at once");
    let message = refused.to_string();
    assert!(
        matches!(&refused, SshError::PlatformLocked { address, holder, .. } if address == ADDRESS && **holder == elsewhere()),
        "{message}"
    );
    assert!(message.contains("platform lock-test is being changed by `terroir apply` by alice on workstation-a (process 4242) since 2026-01-02T03:04:05Z"), "{message}");
    // the lock is per platform
    drop(
        second
            .lock_platform("another-platform", &Holder::current("apply"))
            .unwrap(),
    );

    // apply stops at the held lock before changing anything; plan takes none
    let tmp = tempfile::tempdir().unwrap();
    let release = (
        "file:///nonexistent/smoke-app.tar.gz".to_owned(),
        "f".repeat(64),
    );
    let doc = variant("baremetal.yaml", tmp.path(), "platform.yaml", |t| {
        without_backups(&all_roles_on_one_host(
            &t,
            &hosts,
            PLATFORM,
            ("h1", ADDRESS),
            &release,
        ))
    });
    let out = terroir()
        .args(["--output", "json", "plan"])
        .arg(&doc)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["hosts"][0]["error"].is_null(),
        "plan takes no lock: {report:#}"
    );
    // a second machine's apply stops at once (exit 1), naming the host and the holder
    let out = terroir()
        .args(["--output", "json", "apply"])
        .arg(&doc)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    assert_eq!(report["kind"], "locked", "{report:#}");
    assert_eq!(report["holder"]["machine"], "workstation-a", "{report:#}");
    let error = report["error"].as_str().unwrap_or_default().to_owned();
    assert!(
        error.contains(ADDRESS)
            && error.contains("`terroir apply` by alice on workstation-a (process 4242)"),
        "{report:#}"
    );
    let installed = on_host("h1", "dpkg-query -W postgresql-15 2>/dev/null");
    assert!(
        !installed.status.success(),
        "nothing changed under the lock: {installed:?}"
    );

    // once the first session lets go, the lock is free
    drop(lock);
    drop(first);
    drop(
        second
            .lock_platform(PLATFORM, &Holder::current("apply"))
            .unwrap(),
    );
    let out = on_host("h1", "ls /run/lock/");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(".holder.json"),
        "a released lock leaves no holder behind: {out:?}"
    );
}

/// Run a command as root inside a test host.
fn on_host(host: &str, script: &str) -> std::process::Output {
    std::process::Command::new(root().join("tests/hosts/hostctl"))
        .args(["exec", host, "sh", "-c"])
        .arg(format!("cd / && {script}"))
        .output()
        .unwrap()
}

/// Two applies of one platform started together: one converges, the other stops at once (exit 1)
/// naming the holder. After a `kill -9` of an apply, the next apply proceeds and says the lock it
/// found was stale.
#[test]
fn one_apply_at_a_time_and_a_killed_one_leaves_a_stale_lock() {
    let hosts = TestHosts::up(1);
    let tmp = tempfile::tempdir().unwrap();
    let release = smoke_release(tmp.path(), "crm");
    let release = (format!("file://{}", release.0.display()), release.1);
    let doc = variant("baremetal.yaml", tmp.path(), "platform.yaml", |t| {
        without_backups(&all_roles_on_one_host(
            &t,
            &hosts,
            PLATFORM,
            ("h1", ADDRESS),
            &release,
        ))
    });
    let lock_file = tmp.path().join(".terroir").join(PLATFORM).join("lock");

    // the first apply holds the lock beside the document while it installs the platform
    let mut first = std::process::Command::new(assert_cmd::cargo::cargo_bin("terroir"))
        .args(["--output", "json", "apply"])
        .arg(&doc)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = first.id();
    eventually(
        Duration::from_secs(60),
        "the first apply to take the lock",
        || {
            let text = std::fs::read_to_string(&lock_file).map_err(|e| e.to_string())?;
            if text.contains(&format!("\"pid\":{pid}")) {
                Ok(())
            } else {
                Err(text)
            }
        },
    );
    let out = terroir()
        .args(["--output", "json", "apply"])
        .arg(&doc)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "the second apply stops at once: {report:#}"
    );
    assert_eq!(report["kind"], "locked", "{report:#}");
    assert_eq!(report["holder"]["pid"], pid, "{report:#}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is locked by `terroir apply` by")
            && stderr.contains(&format!("(process {pid})")),
        "{stderr}"
    );
    // a plan runs beside it, and says the platform is locked
    let out = terroir().args(["plan"]).arg(&doc).output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("(process {pid})")),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // killed, the first apply leaves its holder behind; the next apply takes over and says so
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(
        std::fs::read_to_string(&lock_file)
            .unwrap()
            .contains(&format!("\"pid\":{pid}")),
        "a killed apply cannot clean up"
    );
    let out = terroir()
        .args(["--output", "json", "apply"])
        .arg(&doc)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the next apply proceeds ({:?}): {stderr}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains("was stale")
            && stderr.contains(&format!("(process {pid}) since"))
            && stderr.contains("ended without releasing it"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&lock_file).unwrap(),
        "",
        "released at the end"
    );
    // the platform it converged works
    eventually(
        Duration::from_secs(60),
        "the app's health check",
        || match http("GET", &format!("{ADDRESS}:8080"), "/healthz") {
            Ok((200, _)) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
}
