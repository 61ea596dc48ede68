//! The stand-ins for the platform's external services (common/relays.rs), checked from another
//! test host as a platform host would use them: the continuity drill takes them away one by one,
//! so each must work before it is taken.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use common::hosts::TestHosts;
use common::relays;
use common::*;

const RECORDS: [(&str, &str); 2] = [
    ("relay.test", "198.18.0.12"),
    ("fallback.test", "198.18.0.13"),
];

/// `script` on h1, as root: whether it succeeded, and its output and errors together.
fn from_h1(script: &str) -> (bool, String) {
    common::hosts::try_on("h1", script)
}

/// A message to drill@example.test through the relay at `address`, over STARTTLS (required).
fn send_through(address: &str) -> (bool, String) {
    from_h1(&format!(
        "printf 'From: probe@drill.test\\r\\nTo: drill@example.test\\r\\nSubject: continuity probe\\r\\n\\r\\nthrough {address}\\r\\n' \
         | curl -sS -v --max-time 20 --ssl-reqd -k --mail-from probe@drill.test \
           --mail-rcpt drill@example.test -T - smtp://{address}"
    ))
}

#[test]
fn relays_and_resolvers_serve_the_other_hosts() {
    let _hosts = TestHosts::installed(3);
    relays::smtp_relay("h2", "198.18.0.12", true);
    relays::smtp_relay("h3", "198.18.0.13", false);
    relays::dns_resolver("h2", "198.18.0.12", &RECORDS);
    relays::dns_resolver("h3", "198.18.0.13", &RECORDS);
    // a drill sets them up again after taking them away
    relays::smtp_relay("h2", "198.18.0.12", true);
    relays::dns_resolver("h2", "198.18.0.12", &RECORDS);
    assert_eq!(relays::mailbox("h2"), "", "nothing delivered yet");

    let (sent, log) = send_through("198.18.0.12");
    assert!(sent, "the relay takes the message: {log}");
    assert!(log.contains("STARTTLS"), "over STARTTLS: {log}");
    eventually(
        Duration::from_secs(20),
        "delivery into h2's mailbox",
        || {
            let mbox = relays::mailbox("h2");
            if mbox.contains("Subject: continuity probe") && mbox.contains("through 198.18.0.12") {
                Ok(())
            } else {
                Err(mbox)
            }
        },
    );

    let (sent, log) = send_through("198.18.0.13");
    assert!(!sent, "the fallback relay refuses: {log}");
    assert!(
        log.contains("554 5.7.1 <drill@example.test>: Relay access denied"),
        "with a 5xx: {log}"
    );
    assert_eq!(relays::mailbox("h3"), "", "nothing delivered on h3");

    for resolver in ["198.18.0.12", "198.18.0.13"] {
        let (ok, out) = from_h1(&format!(
            "cp /etc/resolv.conf /tmp/resolv.conf.saved \
             && printf 'nameserver {resolver}\\noptions timeout:1 attempts:2\\n' > /etc/resolv.conf \
             && getent hosts relay.test fallback.test; rc=$?; \
             cp /tmp/resolv.conf.saved /etc/resolv.conf; exit $rc"
        ));
        assert!(ok, "{resolver} answers: {out}");
        let answers: Vec<Vec<&str>> = out
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            answers,
            [
                ["198.18.0.12", "relay.test"],
                ["198.18.0.13", "fallback.test"]
            ],
            "{resolver}: {out}"
        );
    }
}
