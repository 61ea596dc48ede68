//! What a platform's TLS server must accept and refuse (terroir::pki::tls, after ANSSI's
//! recommendations for TLS), tried from the client's side with `openssl s_client`: on loopback
//! here, or inside a test host. Every refusal must be the server's (a TLS alert): a client that
//! cannot even offer what is asked (OpenSSL 3 will not offer TLS 1.1 or SHA-1 suites at its
//! default security level, hence `@SECLEVEL=0`) proves nothing.
#![allow(clippy::unwrap_used)]

use terroir::pki::tls::TLS12_SUITES;

/// How the client reaches TLS: at once, or after `openssl s_client -starttls PROTOCOL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)] // StartTls is STARTTLS's own name
pub enum Start {
    Direct,
    /// `postgres`, `smtp`…
    StartTls(&'static str),
    /// At once, presenting a client certificate and its key (a server that requires one).
    WithCertificate(&'static str, &'static str),
}

/// A server to try.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// What it is, for messages (`PostgreSQL`, `Postfix (587)`…).
    pub name: String,
    /// `host:port`.
    pub address: String,
    pub start: Start,
    /// Whether the server must choose the suite in its own order (OpenSSL servers asked to; Go's
    /// crypto/tls picks by itself, whatever it is told).
    pub server_order: bool,
}

impl Endpoint {
    pub fn new(name: &str, address: &str, start: Start, server_order: bool) -> Endpoint {
        Endpoint {
            name: name.to_owned(),
            address: address.to_owned(),
            start,
            server_order,
        }
    }
}

/// One handshake and what the server must do with it.
struct Attempt {
    what: &'static str,
    args: Vec<String>,
    accepted: bool,
}

fn attempts() -> Vec<Attempt> {
    let reversed: Vec<&str> = TLS12_SUITES.iter().rev().map(|s| s.openssl).collect();
    let refused = |what: &'static str, args: &[&str]| Attempt {
        what,
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        accepted: false,
    };
    vec![
        Attempt {
            what: "TLS 1.3",
            args: vec!["-tls1_3".into()],
            accepted: true,
        },
        Attempt {
            what: "TLS 1.2 with the policy's suites, offered in the reverse order",
            args: vec!["-tls1_2".into(), "-cipher".into(), reversed.join(":")],
            accepted: true,
        },
        refused(
            "TLS 1.2 with CBC suites (ECDHE-ECDSA-AES128-SHA, ECDHE-RSA-AES128-SHA, AES128-SHA)",
            &[
                "-tls1_2",
                "-cipher",
                "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:AES128-SHA:@SECLEVEL=0",
            ],
        ),
        refused(
            "TLS 1.2 with every suite but the AEAD ones (CBC, RC4, 3DES, NULL...)",
            &[
                "-tls1_2",
                "-cipher",
                "ALL:COMPLEMENTOFALL:!AESGCM:!CHACHA20:!AESCCM:!ARIAGCM:@SECLEVEL=0",
            ],
        ),
        refused(
            "TLS 1.2 with AEAD suites without ECDHE (RSA or DHE key exchange)",
            &[
                "-tls1_2",
                "-cipher",
                "AESGCM:CHACHA20:AESCCM:ARIAGCM:!kECDHE:@SECLEVEL=0",
            ],
        ),
        refused(
            "TLS 1.2 with anonymous suites (aNULL)",
            &["-tls1_2", "-cipher", "aNULL:@SECLEVEL=0"],
        ),
        refused("TLS 1.1", &["-tls1_1", "-cipher", "ALL:@SECLEVEL=0"]),
        refused("TLS 1.0", &["-tls1", "-cipher", "ALL:@SECLEVEL=0"]),
    ]
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// One shell script trying every handshake in turn, each output between markers.
pub fn script(endpoint: &Endpoint) -> String {
    let start = match endpoint.start {
        Start::Direct => String::new(),
        Start::StartTls(p) => format!(" -starttls {p}"),
        Start::WithCertificate(cert, key) => format!(" -cert {} -key {}", quote(cert), quote(key)),
    };
    let mut s =
        String::from("command -v openssl >/dev/null || { echo 'openssl is missing'; exit 1; }\n");
    for (i, a) in attempts().iter().enumerate() {
        let args: Vec<String> = a.args.iter().map(|x| quote(x)).collect();
        s.push_str(&format!(
            "echo '@@attempt {i}'; timeout 20 openssl s_client -brief -connect {}{start} {} </dev/null 2>&1; echo \"@@exit $?\"\n",
            quote(&endpoint.address),
            args.join(" ")
        ));
    }
    s
}

/// The value of `Key: value` in s_client's `-brief` output.
fn field<'a>(output: &'a str, key: &str) -> Option<&'a str> {
    output
        .lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .map(str::trim)
}

/// What is wrong with `endpoint`, from the output of [`script`] (empty when nothing is).
pub fn problems(endpoint: &Endpoint, output: &str) -> Vec<String> {
    let mut found = Vec::new();
    let attempts = attempts();
    let mut seen = 0;
    for part in output.split("@@attempt ").skip(1) {
        let (index, text) = part.split_once('\n').unwrap_or((part, ""));
        let Some(a) = index
            .trim()
            .parse::<usize>()
            .ok()
            .and_then(|i| attempts.get(i))
        else {
            found.push(format!("unexpected output: {part}"));
            continue;
        };
        seen += 1;
        let established = text.contains("CONNECTION ESTABLISHED");
        let protocol = field(text, "Protocol version:").unwrap_or_default();
        let suite = field(text, "Ciphersuite:").unwrap_or_default();
        let say = |what: String| {
            format!(
                "{} ({}): {}: {what}\n{text}",
                endpoint.name, endpoint.address, a.what
            )
        };
        if a.accepted {
            if !established {
                found.push(say("refused, but must be accepted".into()));
            } else if a.args[0] == "-tls1_3" {
                if protocol != "TLSv1.3" || !(suite.contains("GCM") || suite.contains("CHACHA20")) {
                    found.push(say(format!("{protocol} with {suite}")));
                }
            } else if protocol != "TLSv1.2" || !TLS12_SUITES.iter().any(|s| s.openssl == suite) {
                found.push(say(format!(
                    "{protocol} with {suite}, not one of the policy's"
                )));
            } else if endpoint.server_order {
                // the client offered them last first: the server's own order puts AES-256-GCM first
                // (for an ECDSA or an RSA certificate)
                let first = [TLS12_SUITES[0].openssl, TLS12_SUITES[3].openssl];
                if !first.contains(&suite) {
                    found.push(say(format!(
                        "{suite} chosen: the client's order, not the server's"
                    )));
                }
            }
        } else if established {
            found.push(say(format!(
                "accepted ({protocol} with {suite}), but must be refused"
            )));
        } else if !text.contains("alert") {
            found.push(say(
                "failed without a TLS alert from the server: not a refusal this test can trust"
                    .into(),
            ));
        }
    }
    if seen != attempts.len() {
        found.push(format!(
            "{} ({}): {seen} of {} handshakes ran:\n{output}",
            endpoint.name,
            endpoint.address,
            attempts.len()
        ));
    }
    found
}

/// Try every handshake on every endpoint, running each endpoint's [`script`] with `run` (which
/// returns what the script printed), and fail with every problem found.
pub fn assert_anssi_tls(endpoints: &[Endpoint], run: &dyn Fn(&str) -> String) {
    let mut found = Vec::new();
    for e in endpoints {
        found.extend(problems(e, &run(&script(e))));
    }
    assert!(found.is_empty(), "{}", found.join("\n\n"));
}

/// [`assert_anssi_tls`] from this machine.
pub fn assert_anssi_tls_here(endpoints: &[Endpoint]) {
    assert_anssi_tls(endpoints, &|script: &str| {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
}
