//! The external services a platform depends on, played by test hosts so that a drill can take
//! them away: an SMTP relay (Debian's Postfix) and a DNS resolver (Debian's unbound). Each
//! configures a fresh test host (`hostctl up N --installed`) and may be called again on one it
//! already configured.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::Duration;

/// Where the test hosts are: every client of these services is inside it.
const TEST_NETWORK: &str = "198.18.0.0/24";
/// The domain the relays deliver themselves, into the mailbox of the local user `drill`.
pub const MAIL_DOMAIN: &str = "example.test";

use super::hosts::on;

/// The scripts take these as words: an address or a name, never anything a shell would expand.
fn plain(what: &str, value: &str) {
    assert!(
        !value.is_empty()
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:".contains(c)),
        "{what} `{value}` must be a plain address or name"
    );
}

/// Postfix on `host` as an SMTP relay listening on `address` for the test network, offering
/// STARTTLS with a self-signed certificate. Mail for `example.test` is delivered into the mailbox
/// of the local user `drill` (read it with [`mailbox`]). A relay that is not `accepting` refuses
/// every recipient as a relay that will not relay does: `554 5.7.1 ... Relay access denied`.
pub fn smtp_relay(host: &str, address: &str, accepting: bool) {
    plain("address", address);
    // Refusing: the test network is still `mynetworks`, but nothing is permitted for it, and no
    // domain is the relay's own; reject_unauth_destination answers 554 "Relay access denied".
    let (destinations, relaying) = if accepting {
        (MAIL_DOMAIN, "permit_mynetworks, reject_unauth_destination")
    } else {
        ("", "reject_unauth_destination")
    };
    on(
        host,
        &format!(
            r#"set -e
id drill >/dev/null 2>&1 || useradd --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin drill
# its own certificate, made once: a relay keeps it across calls, as a real one would
if [ ! -s /etc/postfix/drill-relay.crt ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
    -subj "/CN={address}" -addext "subjectAltName=IP:{address}" \
    -keyout /etc/postfix/drill-relay.key -out /etc/postfix/drill-relay.crt 2>&1
  chmod 0600 /etc/postfix/drill-relay.key
fi
postconf -e \
  "myhostname = {host}.relay.test" \
  "inet_interfaces = {address}" \
  "inet_protocols = ipv4" \
  "mynetworks = 127.0.0.0/8 {TEST_NETWORK}" \
  "mydestination = {destinations}" \
  "relay_domains =" \
  "relayhost =" \
  "smtpd_relay_restrictions = {relaying}" \
  "smtpd_recipient_restrictions =" \
  "alias_maps =" \
  "alias_database =" \
  "home_mailbox =" \
  "mailbox_command =" \
  "mail_spool_directory = /var/mail" \
  "smtpd_tls_cert_file = /etc/postfix/drill-relay.crt" \
  "smtpd_tls_key_file = /etc/postfix/drill-relay.key" \
  "smtpd_tls_security_level = may"
postfix check
/etc/init.d/postfix restart >/dev/null
"#
        ),
    );
    wait_for(
        host,
        &format!("Postfix listening on {address}:25"),
        &format!("exec 3<>/dev/tcp/{address}/25"),
    );
}

/// The mailbox of `drill` on `host`, in mbox form; empty when nothing was delivered.
pub fn mailbox(host: &str) -> String {
    on(host, "cat /var/mail/drill 2>/dev/null || true")
}

/// unbound on `host` as a DNS resolver on `address` for the test network, answering the given
/// `(name, IPv4 address)` A records (names under `test.` from a static zone of their own, others
/// from local data). Every other name is refused at once: there is nothing to recurse to from a
/// test host, and a resolver that tries only makes its clients wait.
pub fn dns_resolver(host: &str, address: &str, records: &[(&str, &str)]) {
    plain("address", address);
    let mut data = String::new();
    for (name, ip) in records {
        plain("name", name);
        assert!(
            ip.parse::<std::net::Ipv4Addr>().is_ok(),
            "`{ip}` is not an IPv4 address"
        );
        let name = name.trim_end_matches('.');
        data.push_str(&format!("  local-data: \"{name}. 60 IN A {ip}\"\n"));
    }
    on(
        host,
        &format!(
            r#"set -e
cat > /etc/unbound/unbound.conf.d/terroir-drill.conf <<'CONF'
server:
  interface: {address}
  access-control: {TEST_NETWORK} allow
  do-ip6: no
  # no validation: the static zone is unsigned and the root's keys cannot be fetched from here
  module-config: "iterator"
  local-zone: "." refuse
  local-zone: "test." static
{data}CONF
# what the init script does before it starts unbound, which unbound-checkconf needs already
/usr/libexec/unbound-helper root_trust_anchor_update >/dev/null
unbound-checkconf >/dev/null
/etc/init.d/unbound restart >/dev/null
"#
        ),
    );
    wait_for(
        host,
        &format!("unbound on {address}"),
        "unbound-control status",
    );
}

/// Wait until `check` (bash, for its /dev/tcp) succeeds on `host`, or panic with its last output.
fn wait_for(host: &str, what: &str, check: &str) {
    super::eventually(Duration::from_secs(30), &format!("{host}: {what}"), || {
        let out = Command::new(super::root().join("tests/hosts/hostctl"))
            .args(["exec", host, "bash", "-c", check])
            .output()
            .unwrap();
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
}
