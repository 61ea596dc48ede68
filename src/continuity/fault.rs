//! Faults as root scripts on the platform's hosts. Every fault first writes its own undo script
//! (`/run/terroir-continuity/<id>.undo`) and starts a detached timer that runs it after the
//! deadline, and only then takes effect: killed at any moment, terroir leaves nothing behind for
//! longer than `--max-fault-seconds`. Removing a fault runs the undo script now and deletes it,
//! so the timer later finds nothing to do.
//!
//! A cut is an nftables table of its own (`inet terroir_continuity_<id>`), whose output chain
//! rejects the host's traffic to the dependency's addresses and ports: TCP with a reset, UDP with
//! "port unreachable", so that clients learn at once and move on to their fallback, as they
//! would after their own time-out behind a silent drop.

use std::net::IpAddr;

use super::claims::CutTarget;
use crate::deploy::baremetal::ssh::shell_quote;

/// Where the undo scripts live: under /run, so that a reboot, which clears every fault, clears
/// them too.
pub const DIR: &str = "/run/terroir-continuity";
/// Every nftables table terroir places starts with this.
pub const TABLE_PREFIX: &str = "terroir_continuity_";

/// `systemctl` where systemd runs, else the init script.
fn service(action: &str, name: &str) -> String {
    let q = shell_quote(name);
    format!(
        "if [ -d /run/systemd/system ]; then systemctl {action} {q}; else /etc/init.d/{name} {action}; fi"
    )
}

/// The lines that write the undo script (`undo`, shell lines) and start its timer.
fn arm(id: &str, undo: &str, max_seconds: u64) -> String {
    let file = format!("{DIR}/{id}.undo");
    format!(
        "mkdir -p {DIR}\n\
         cat > {file} <<'TERROIR_UNDO'\n{undo}\nrm -f {file}\nTERROIR_UNDO\n\
         setsid -f sh -c 'sleep {max_seconds}; [ ! -f {file} ] || sh {file}' terroir-continuity-{id} </dev/null >/dev/null 2>&1\n"
    )
}

/// The nftables rules for one target whose address is `addr_var` (a shell word).
fn rule_lines(t: &CutTarget, family: &str, addr: &str) -> Vec<String> {
    t.protocols
        .iter()
        .map(|proto| {
            let how = if *proto == "tcp" {
                "reject with tcp reset"
            } else {
                "reject"
            };
            format!("{family} daddr {addr} {proto} dport {} {how}", t.port)
        })
        .collect()
}

/// Place a cut of `targets` on a host, named `id`, removed by itself after `max_seconds`.
/// Names are resolved on the host, as its services resolve them; a name that does not resolve
/// there fails the script, saying so, before anything is placed.
pub fn cut(id: &str, targets: &[CutTarget], max_seconds: u64) -> String {
    let table = format!("{TABLE_PREFIX}{id}");
    let mut s = String::from("set -eu\nrules=$(mktemp)\ntrap 'rm -f \"$rules\"' EXIT\n");
    for t in targets {
        match t.host.parse::<IpAddr>() {
            Ok(ip) => {
                let family = if ip.is_ipv6() { "ip6" } else { "ip" };
                for line in rule_lines(t, family, &ip.to_string()) {
                    s.push_str(&format!("echo {} >> \"$rules\"\n", shell_quote(&line)));
                }
            }
            Err(_) => {
                let name = shell_quote(&t.host);
                s.push_str(&format!(
                    "found=$(getent ahosts {name} | awk '{{print $1}}' | sort -u)\n\
                     [ -n \"$found\" ] || {{ echo \"{host} does not resolve on this host: its traffic cannot be singled out\" >&2; exit 1; }}\n\
                     for a in $found; do case $a in *:*) f=ip6 ;; *) f=ip ;; esac\n",
                    host = t.host
                ));
                for line in rule_lines(t, "$f", "$a") {
                    s.push_str(&format!("  echo \"{line}\" >> \"$rules\"\n"));
                }
                s.push_str("done\n");
            }
        }
    }
    s.push_str(&arm(
        id,
        &format!("nft delete table inet {table} 2>/dev/null || true"),
        max_seconds,
    ));
    s.push_str(&format!(
        "{{ echo 'table inet {table} {{'; echo '  chain output {{'; \
         echo '    type filter hook output priority -10; policy accept;'; \
         sed 's/^/    /' \"$rules\"; echo '  }}'; echo '}}'; }} | nft -f -\n"
    ));
    s
}

/// Stop `service_name` on a host, named `id`; it is started again after `max_seconds` at the
/// latest.
pub fn stop(id: &str, service_name: &str, max_seconds: u64) -> String {
    format!(
        "set -eu\n{}{} >/dev/null\n",
        arm(
            id,
            &format!("{} >/dev/null 2>&1 || true", service("start", service_name)),
            max_seconds
        ),
        service("stop", service_name)
    )
}

/// Remove fault `id` now (nothing when it is gone already).
pub fn remove(id: &str) -> String {
    let file = format!("{DIR}/{id}.undo");
    format!("[ ! -f {file} ] || sh {file}\n")
}

/// What is left of terroir's faults on a host: its tables and undo scripts, one per line.
pub fn leftovers() -> String {
    format!(
        "nft list tables 2>/dev/null | awk '{{print $3}}' | grep '^{TABLE_PREFIX}' || true\n\
         ls {DIR} 2>/dev/null | sed 's|^|{DIR}/|' || true\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(host: &str, port: u16, protocols: Vec<&'static str>) -> CutTarget {
        CutTarget {
            dependency: "smtpRelay".into(),
            host: host.into(),
            port,
            protocols,
        }
    }

    #[test]
    fn the_timer_is_armed_before_the_rules_take_effect() {
        let s = cut("c1", &[target("198.18.0.17", 25, vec!["tcp"])], 120);
        let armed = s.find("setsid -f").unwrap();
        let placed = s.find("nft -f -").unwrap();
        assert!(armed < placed, "{s}");
        assert!(s.contains("sleep 120"));
        assert!(s.contains("nft delete table inet terroir_continuity_c1"));
        assert!(s.contains("ip daddr 198.18.0.17 tcp dport 25 reject with tcp reset"));
    }

    #[test]
    fn names_are_resolved_on_the_host_and_dns_is_cut_on_both_protocols() {
        let s = cut(
            "c2",
            &[
                target("relay.example.test", 587, vec!["tcp"]),
                target("2001:db8::53", 53, vec!["udp", "tcp"]),
            ],
            60,
        );
        assert!(s.contains("getent ahosts 'relay.example.test'"), "{s}");
        assert!(s.contains("$f daddr $a tcp dport 587 reject with tcp reset"));
        assert!(s.contains("ip6 daddr 2001:db8::53 udp dport 53 reject'"));
        assert!(s.contains("ip6 daddr 2001:db8::53 tcp dport 53 reject with tcp reset"));
    }

    #[test]
    fn a_stopped_service_is_started_again_by_the_timer() {
        let s = stop("c3", "patroni", 90);
        assert!(s.find("setsid -f").unwrap() < s.rfind("patroni stop").unwrap());
        assert!(s.contains("/etc/init.d/patroni start"));
        assert!(s.contains("sleep 90"));
        assert_eq!(
            remove("c3"),
            "[ ! -f /run/terroir-continuity/c3.undo ] || sh /run/terroir-continuity/c3.undo\n"
        );
    }

    #[test]
    fn the_scripts_are_valid_shell() {
        for s in [
            cut(
                "c4",
                &[
                    target("relay.test", 25, vec!["tcp"]),
                    target("198.18.0.1", 53, vec!["udp", "tcp"]),
                ],
                5,
            ),
            stop("c5", "postfix", 5),
            remove("c5"),
            leftovers(),
        ] {
            let out = std::process::Command::new("sh")
                .args(["-n", "-c", &s])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{s}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
