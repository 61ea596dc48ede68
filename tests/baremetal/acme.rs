//! The public name's certificate from an ACME CA, on a real host: Pebble (the ACME test server,
//! Debian's `pebble` package) runs in test host h3's network namespace, with its companion DNS
//! server answering every name with h1's address. `terroir apply` installs nginx in front of the
//! application on h1, asks Pebble for a certificate by the HTTP-01 challenge that nginx serves on
//! port 80, and delivers the chain to nginx: HTTPS to the public name then verifies against
//! Pebble's root and reaches the application. A second apply asks for nothing.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::hosts::TestHosts;
use common::*;
use serde_json::Value;

const PEBBLE: &str = "198.18.0.13";
const NAME: &str = "crm.terroir.test";
const APP: &str = "198.18.0.11";

/// Pebble and its DNS server, stopped when dropped.
struct Pebble(Vec<Child>);

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn in_h3(dir: &Path, log: &str, args: &[&str], env: &[(&str, &str)]) -> Child {
    Command::new("ip")
        .args(["netns", "exec", "terroir-h3"])
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(log)).unwrap())
        .spawn()
        .unwrap()
}

/// Start Pebble on h3's address with an HTTPS certificate from a CA of the test's own (returned:
/// that CA's PEM, the document's `caCertificate` for the directory).
fn start_pebble(dir: &Path, answer: &str) -> (Pebble, String) {
    // a CA and its certificate for Pebble's address (rustls takes no self-signed server certificate)
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Pebble's test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![PEBBLE.to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let (cert_file, key_file) = (dir.join("pebble.crt"), dir.join("pebble.key"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    std::fs::write(dir.join("pebble-ca.crt"), ca.pem()).unwrap();
    let config = serde_json::json!({"pebble": {
        "listenAddress": format!("{PEBBLE}:14000"),
        "managementListenAddress": format!("{PEBBLE}:15000"),
        "certificate": cert_file, "privateKey": key_file,
        "httpPort": 80, "tlsPort": 443,
        "ocspResponderURL": "", "externalAccountBindingRequired": false,
    }});
    std::fs::write(dir.join("pebble.json"), config.to_string()).unwrap();
    // every A query gets `answer`; no AAAA
    let dns = in_h3(
        dir,
        "challtestsrv.log",
        &[
            "pebble-challtestsrv",
            "-defaultIPv4",
            answer,
            "-defaultIPv6",
            "",
            "-dns01",
            "127.0.0.1:8053",
            "-http01",
            "",
            "-https01",
            "",
            "-tlsalpn01",
            "",
            "-management",
            "127.0.0.1:8055",
        ],
        &[],
    );
    let mut pebble = Pebble(vec![dns]);
    pebble.0.push(in_h3(
        dir,
        "pebble.log",
        &[
            "pebble",
            "-config",
            "pebble.json",
            "-dnsserver",
            "127.0.0.1:8053",
            "-strict",
        ],
        &[("PEBBLE_VA_NOSLEEP", "1"), ("PEBBLE_WFE_NONCEREJECT", "0")],
    ));
    eventually(Duration::from_secs(60), "Pebble listening", || {
        std::net::TcpStream::connect_timeout(
            &format!("{PEBBLE}:14000").parse().unwrap(),
            Duration::from_secs(1),
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    });
    (pebble, ca.pem())
}

fn curl(args: &[&str]) -> std::process::Output {
    Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20"])
        .args(args)
        .output()
        .unwrap()
}

/// The one-host platform with a public name, certified by Pebble.
fn platform(hosts: &TestHosts, dir: &Path, artifact: &(String, String), ca: &str) -> PathBuf {
    variant("baremetal.yaml", dir, "platform.yaml", |t| {
        let t = without_backups(&all_roles_on_one_host(
            &t,
            hosts,
            "acme-crm",
            ("h1", APP),
            artifact,
        ));
        let ca_block: String = ca.lines().map(|l| format!("        {l}\n")).collect();
        t.replacen("    app:\n", &format!("    app:\n      publicHost: {NAME}\n"), 1).replacen(
            "  endpoints:\n",
            &format!("  endpoints:\n    acmeCa:\n      url: https://{PEBBLE}:14000/dir\n      operator: HARICA\n      country: GR\n      caCertificate: |\n{ca_block}"),
            1,
        )
    })
}

#[test]
fn the_public_name_gets_its_certificate_from_the_acme_ca() {
    let hosts = TestHosts::installed(3);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (pebble, pebble_tls) = start_pebble(dir, APP);
    let (archive, sha) = smoke_release(dir, "crm");
    let doc = platform(
        &hosts,
        dir,
        &(format!("file://{}", archive.display()), sha),
        &pebble_tls,
    );

    // the plan says a certificate would be requested, and changes nothing
    let plan = terroir().args(["plan"]).arg(&doc).output().unwrap();
    let plan_err = String::from_utf8_lossy(&plan.stderr);
    assert!(plan_err.contains(&format!("public certificate for {NAME}: would be requested from https://{PEBBLE}:14000/dir (no certificate yet)")), "{plan_err}");

    let out = terroir().args(["apply"]).arg(&doc).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "apply failed:\n{}\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains(&format!(
            "public certificate for {NAME}: issued by https://{PEBBLE}:14000/dir"
        )),
        "{stderr}"
    );

    // Pebble's root, from its management interface (a new one each run)
    let ca_file = dir.join("pebble-ca.crt");
    let pebble_root = curl(&[
        "--cacert",
        ca_file.to_str().unwrap(),
        &format!("https://{PEBBLE}:15000/roots/0"),
    ]);
    assert!(
        pebble_root.status.success(),
        "{}",
        String::from_utf8_lossy(&pebble_root.stderr)
    );
    let root_file = dir.join("pebble-root.pem");
    std::fs::write(&root_file, &pebble_root.stdout).unwrap();

    // HTTPS to the public name verifies against Pebble's root, and nginx passes to the application
    let resolve = format!("{NAME}:443:{APP}");
    let https = |ca: &Path| {
        curl(&[
            "--cacert",
            ca.to_str().unwrap(),
            "--resolve",
            &resolve,
            "--write-out",
            "%{http_code}",
            "--output",
            "/dev/null",
            &format!("https://{NAME}/healthz"),
        ])
    };
    let ok = https(&root_file);
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout),
        "200",
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // ... and not against the platform's own CA: the certificate is the ACME CA's
    let internal = dir.join("internal-ca.pem");
    std::fs::write(
        &internal,
        std::fs::read(dir.join(".terroir/acme-crm/secrets/tls-ca-cert")).unwrap(),
    )
    .unwrap();
    let refused = https(&internal);
    assert!(
        !refused.status.success(),
        "the platform's own CA must not vouch for the public name"
    );
    // plain HTTP is sent to HTTPS
    let http = curl(&[
        "--resolve",
        &format!("{NAME}:80:{APP}"),
        "--write-out",
        "%{http_code} %{redirect_url}",
        "--output",
        "/dev/null",
        &format!("http://{NAME}/healthz"),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&http.stdout),
        format!("301 https://{NAME}/healthz")
    );
    // the application's own port is closed to this machine: only nginx (and Prometheus) reach it
    assert!(
        std::net::TcpStream::connect_timeout(
            &format!("{APP}:8080").parse().unwrap(),
            Duration::from_secs(3)
        )
        .is_err(),
        "the application port is open to anyone"
    );

    // the key stays in the store (0600), and neither it nor the challenge files are left behind
    let store = dir.join(".terroir/acme-crm/secrets");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(store.join("public-tls-key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let key = std::fs::read_to_string(store.join("public-tls-key")).unwrap();
    let body = key.lines().nth(1).unwrap();
    assert!(!stderr.contains(body) && !String::from_utf8_lossy(&out.stdout).contains(body));
    let left = Command::new(root().join("tests/hosts/hostctl"))
        .args([
            "exec",
            "h1",
            "sh",
            "-c",
            "ls -A /var/www/acme-crm-acme/.well-known/acme-challenge",
        ])
        .output()
        .unwrap();
    assert!(
        left.status.success() && left.stdout.is_empty(),
        "challenge files left: {}",
        String::from_utf8_lossy(&left.stdout)
    );

    // a second apply finds the certificate fresh: nothing requested, nothing changed
    let again = terroir()
        .args(["--output", "json", "apply"])
        .arg(&doc)
        .output()
        .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let report: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(report["changed"], 0, "{report:#}");
    assert_eq!(report["publicCertificate"], Value::Null, "{report:#}");

    // the attestation says who certified the public name
    let key = terroir()
        .args(["keygen", "--out"])
        .arg(dir.join("signing.key"))
        .output()
        .unwrap();
    assert!(
        key.status.success(),
        "{}",
        String::from_utf8_lossy(&key.stderr)
    );
    let att = terroir()
        .arg("attest")
        .arg(&doc)
        .arg("--key")
        .arg(dir.join("signing.key"))
        .arg("--out")
        .arg(dir.join("attestation.json"))
        .args(["--no-dns", "--geodata"])
        .arg(root().join("../shared/geodata"))
        .output()
        .unwrap();
    assert!(
        matches!(att.status.code(), Some(0 | 2)),
        "{}",
        String::from_utf8_lossy(&att.stderr)
    );
    let envelope: Value =
        serde_json::from_slice(&std::fs::read(dir.join("attestation.json")).unwrap()).unwrap();
    use base64::Engine as _;
    let statement: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(envelope["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let public = &statement["predicate"]["security"]["publicCertificate"];
    assert_eq!(public["names"], serde_json::json!([NAME]), "{statement:#}");
    assert_eq!(public["issuer"], format!("https://{PEBBLE}:14000/dir"));
    assert_eq!(public["acme"], true);
    assert!(
        !String::from_utf8_lossy(&std::fs::read(dir.join("attestation.json")).unwrap())
            .contains(body),
        "the key is not in the attestation"
    );

    // the ACME CA cut off: HTTPS keeps serving the certificate it issued
    let drilled = terroir()
        .args(["--output", "json", "continuity"])
        .arg(&doc)
        .args(["--yes", "--only", "acmeCa", "--report"])
        .arg(dir.join("continuity"))
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&drilled.stdout).unwrap_or(Value::Null);
    assert!(
        drilled.status.success() && report["passed"] == true,
        "{report:#}\n{}",
        String::from_utf8_lossy(&drilled.stderr)
    );
    let claim = &report["claims"][0];
    assert!(
        claim["fault"]
            .as_str()
            .unwrap()
            .contains(&format!("{PEBBLE}:14000")),
        "{claim:#}"
    );
    let served = claim["probes"][0]["observed"].as_str().unwrap();
    assert!(served.contains("notAfter="), "{claim:#}");
    drop(pebble);
}

/// When the CA cannot validate (no DNS answer for the name here), apply says why, keeps the
/// platform's own certificate in nginx and fails; the application stays up behind it.
#[test]
fn a_failed_order_keeps_the_internal_certificate_and_says_why() {
    let hosts = TestHosts::installed(3);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // the DNS server answers with an address where nothing listens
    let (pebble, pebble_tls) = start_pebble(dir, "198.18.0.99");
    let (archive, sha) = smoke_release(dir, "crm");
    let doc = platform(
        &hosts,
        dir,
        &(format!("file://{}", archive.display()), sha),
        &pebble_tls,
    );
    let out = terroir().args(["apply"]).arg(&doc).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    // the CA's own reason: it could not reach the name's address
    assert!(stderr.contains(&format!("error: public certificate for {NAME}: ACME CA https://{PEBBLE}:14000/dir: validating the challenge: ")), "{stderr}");
    assert!(
        stderr.contains("198.18.0.99:80") && stderr.contains("acme:error:connection"),
        "{stderr}"
    );
    assert!(
        stderr.contains("nginx keeps serving the current certificate"),
        "{stderr}"
    );
    // nginx serves the platform's own certificate meanwhile, and the application answers
    let internal = dir.join("internal-ca.pem");
    std::fs::write(
        &internal,
        std::fs::read(dir.join(".terroir/acme-crm/secrets/tls-ca-cert")).unwrap(),
    )
    .unwrap();
    let ok = curl(&[
        "--cacert",
        internal.to_str().unwrap(),
        "--resolve",
        &format!("{NAME}:443:{APP}"),
        "--write-out",
        "%{http_code}",
        "--output",
        "/dev/null",
        &format!("https://{NAME}/healthz"),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout),
        "200",
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    drop(pebble);
}
