//! The bare-metal test-host harness (tests/hosts/hostctl): real Debian hosts in their own network
//! namespaces, reached over real SSH as a non-root user with sudo, with Debian's archive reachable
//! only through the apt proxy on the bridge.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::process::Command as Std;

use common::hosts::TestHosts;

fn ssh(hosts: &TestHosts, user: &str, address: &str, command: &str) -> std::process::Output {
    Std::new("ssh")
        .args(["-i"])
        .arg(hosts.identity())
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            hosts.known_hosts().display()
        ))
        .args([
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
        ])
        .arg(format!("{user}@{address}"))
        .arg(command)
        .output()
        .unwrap()
}

#[test]
fn three_hosts_answer_ssh_with_sudo_and_reach_the_apt_proxy() {
    let hosts = TestHosts::up(3);
    assert_eq!(
        hosts.addresses(),
        vec!["198.18.0.11", "198.18.0.12", "198.18.0.13"]
    );
    for (i, address) in hosts.addresses().iter().enumerate() {
        let out = ssh(&hosts, "deploy", address, "hostname && sudo -n id -u");
        assert!(
            out.status.success(),
            "{address}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("h{}\n0\n", i + 1),
            "{address}: its own name, root through sudo"
        );
    }
    // a user without sudo rights is refused
    let out = ssh(&hosts, "nosudo", "198.18.0.12", "sudo -n true");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("password is required"));
    // hosts reach each other over the bridge
    let out = ssh(
        &hosts,
        "deploy",
        "198.18.0.11",
        "exec 3<>/dev/tcp/198.18.0.13/22 && head -c 7 <&3",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "SSH-2.0");
    // and Debian's archive through the proxy only
    let out = ssh(
        &hosts,
        "deploy",
        "198.18.0.13",
        "sudo -n apt-get update -qq && apt-cache policy postgresql-15 | grep -c Candidate",
    );
    assert!(
        out.status.success(),
        "apt through the proxy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    // each host has its own PID namespace: only its own processes are visible
    let out = ssh(
        &hosts,
        "deploy",
        "198.18.0.11",
        "ps -e -o comm= | grep -c sshd",
    );
    let n: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(n <= 3, "only this host's sshd processes are visible ({n})");
}

#[test]
fn down_removes_every_trace() {
    {
        let _hosts = TestHosts::up(1);
    }
    let netns = Std::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&netns.stdout).contains("terroir-h"),
        "no test namespace left"
    );
    let link = Std::new("ip")
        .args(["link", "show", "terroir-br0"])
        .output()
        .unwrap();
    assert!(!link.status.success(), "the bridge is gone");
}
