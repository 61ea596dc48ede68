//! Attestations end to end: keys standard tools read, a DSSE envelope an independent
//! implementation verifies (Python's cryptography package), tampering with the payload, the
//! signature or one rendered file detected, honest grid labels, and no secret in any output.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command as Std;

use base64::Engine as _;
use common::{example, root, terroir, variant};
use serde_json::Value;
use terroir_kube_double::{BackgroundServer, Options};

struct Signed {
    dir: tempfile::TempDir,
}

impl Signed {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// keygen, render and attest the Kubernetes example (no DNS).
fn signed(doc: &Path, extra: &[&str]) -> (Signed, i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let s = Signed { dir };
    let out = terroir()
        .args(["keygen", "--out"])
        .arg(s.path("key"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = terroir()
        .args(["render"])
        .arg(doc)
        .args(["--out"])
        .arg(s.path("rendered"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = terroir()
        .args(["attest"])
        .arg(doc)
        .args(["--key"])
        .arg(s.path("key"))
        .args(["--out"])
        .arg(s.path("attestation.json"))
        .args(["--no-dns", "--geodata"])
        .arg(root().join("../shared/geodata"))
        .args(extra)
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    let code = out.status.code().unwrap();
    (s, code, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn attest_verify(s: &Signed, attestation: &Path, against: bool) -> (i32, String) {
    let mut cmd = terroir();
    cmd.args(["attest", "verify"])
        .arg(attestation)
        .args(["--pubkey"])
        .arg(s.path("key.pub"));
    if against {
        cmd.args(["--against"]).arg(s.path("rendered"));
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn envelope(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn statement(env: &Value) -> Value {
    let payload = base64::engine::general_purpose::STANDARD
        .decode(env["payload"].as_str().unwrap())
        .unwrap();
    serde_json::from_slice(&payload).unwrap()
}

#[test]
fn an_attestation_verifies_with_terroir_and_with_an_independent_implementation() {
    let (s, code, stderr) = signed(&example("kubernetes.yaml"), &[]);
    assert_eq!(code, 0, "{stderr}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(s.path("key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600,
        "the private key is 0600"
    );
    assert!(
        std::fs::read_to_string(s.path("key"))
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----"),
        "PKCS#8 PEM"
    );
    assert!(
        std::fs::read_to_string(s.path("key.pub"))
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----"),
        "SubjectPublicKeyInfo PEM"
    );

    // Python's cryptography package: decode, rebuild the PAE, verify with the PEM public key.
    let out = Std::new("python3")
        .arg(root().join("tests/attest/verify_dsse.py"))
        .arg(s.path("attestation.json"))
        .arg(s.path("key.pub"))
        .arg(s.path("key"))
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "independent verification failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["type"], "https://in-toto.io/Statement/v1");
    assert_eq!(v["payloadType"], "application/vnd.in-toto+json");

    let (code, out) = attest_verify(&s, &s.path("attestation.json"), true);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("valid signature") && out.contains("all matching"),
        "{out}"
    );

    // The statement: every rendered file is a subject with its digest.
    let st = statement(&envelope(&s.path("attestation.json")));
    let subjects = st["subject"].as_array().unwrap();
    let rendered: Vec<PathBuf> = walk(&s.path("rendered"));
    assert_eq!(
        subjects.len(),
        rendered.len() - 1,
        "every file but SHA256SUMS"
    );
    let app = subjects
        .iter()
        .find(|x| x["name"] == "kubernetes/app.yaml")
        .unwrap();
    assert_eq!(
        app["digest"]["sha256"].as_str().unwrap(),
        terroir::text::sha256_hex(&std::fs::read(s.path("rendered/kubernetes/app.yaml")).unwrap())
    );
    assert_eq!(
        st["predicateType"],
        "https://terroir.eu/attestation/sovereignty-assessment/v1"
    );
    let p = &st["predicate"];
    assert_eq!(p["platform"], "mutuelle-crm");
    assert!(!p["findings"].as_array().unwrap().is_empty());
    assert_eq!(p["grid"]["max"], 100);
    assert!(
        p["criteria"].as_array().unwrap().len() >= 12,
        "the customer-engagement-platform criteria are answered"
    );

    // Criteria no probe can see are declared by the organisation, never verified.
    for c in p["grid"]["criteria"].as_array().unwrap() {
        assert!(
            matches!(
                c["basis"].as_str(),
                Some("verified" | "declared" | "unknown")
            ),
            "{c}"
        );
        if c["axis"] == "publisher"
            || c["criterion"].as_str().unwrap().contains("contract")
            || c["criterion"].as_str().unwrap().contains("auditable")
        {
            assert_ne!(c["basis"], "verified", "{c}");
        }
        assert!(
            !c["reason"].as_str().unwrap().is_empty(),
            "every score is explained: {c}"
        );
    }
    // Without --live nothing about hosting was observed.
    let hosting = p["grid"]["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["criterion"] == "data hosted in France or the EU")
        .unwrap();
    assert_eq!(hosting["basis"], "declared", "{hosting}");

    // The reports and the ROPA are beside the attestation.
    for f in [
        "attestation.report.md",
        "attestation.report.html",
        "attestation.ropa.md",
    ] {
        assert!(s.path(f).exists(), "{f}");
    }
}

/// Every image pinned by digest is a subject named by its reference; an image referenced by tag
/// only is none (no digest is invented) and the report says which those are. The rendered tree
/// still verifies against the attestation.
#[test]
fn pinned_images_are_subjects_and_tag_only_images_are_named() {
    let hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let tmp = tempfile::tempdir().unwrap();
    let doc = variant("kubernetes.yaml", tmp.path(), "pinned.yaml", |t| {
        format!(
            "{t}  images:\n    postgres: terroir/postgres:16-bookworm@sha256:{hex}\n    grafana: mirror.example.fr/grafana/grafana-oss@sha256:{hex}\n"
        )
    });
    let (s, code, stderr) = signed(&doc, &[]);
    assert_eq!(code, 0, "{stderr}");
    let st = statement(&envelope(&s.path("attestation.json")));
    let images: Vec<&Value> = st["subject"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["name"].as_str().unwrap().contains('@'))
        .collect();
    let names: Vec<&str> = images.iter().map(|x| x["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            format!("mirror.example.fr/grafana/grafana-oss@sha256:{hex}"),
            format!("registry.mutuelle.example.fr/terroir/postgres:16-bookworm@sha256:{hex}"),
        ],
        "exactly the pinned images"
    );
    for i in &images {
        assert_eq!(i["digest"]["sha256"], hex);
        assert_eq!(i["digest"].as_object().unwrap().len(), 1);
    }
    let tag_only: Vec<&str> = st["predicate"]["images"]["tagOnly"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert!(
        tag_only.contains(&"prometheus") && tag_only.contains(&"app"),
        "{tag_only:?}"
    );
    assert!(!tag_only.contains(&"postgres"), "{tag_only:?}");
    let report = std::fs::read_to_string(s.path("attestation.report.md")).unwrap();
    assert!(
        report.contains("- **By tag only**:\n")
            && report
                .contains("  - prometheus: registry.mutuelle.example.fr/prom/prometheus:v3.5.0"),
        "{report}"
    );

    let (code, out) = attest_verify(&s, &s.path("attestation.json"), true);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("all matching"), "{out}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[test]
fn tampering_with_the_payload_the_signature_or_a_rendered_file_fails() {
    let (s, code, stderr) = signed(&example("baremetal.yaml"), &[]);
    assert_eq!(code, 0, "{stderr}");
    let b64 = base64::engine::general_purpose::STANDARD;
    let env = envelope(&s.path("attestation.json"));

    // The payload: one subject digest changed.
    let mut st = statement(&env);
    st["subject"][0]["digest"]["sha256"] = Value::String("0".repeat(64));
    let mut forged = env.clone();
    forged["payload"] = Value::String(b64.encode(serde_json::to_vec(&st).unwrap()));
    let path = s.path("payload-tampered.json");
    std::fs::write(&path, serde_json::to_string(&forged).unwrap()).unwrap();
    let (code, out) = attest_verify(&s, &path, false);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("signature does not match"), "{out}");

    // The signature: one bit flipped.
    let mut sig = b64
        .decode(env["signatures"][0]["sig"].as_str().unwrap())
        .unwrap();
    sig[10] ^= 1;
    let mut forged = env.clone();
    forged["signatures"][0]["sig"] = Value::String(b64.encode(&sig));
    let path = s.path("signature-tampered.json");
    std::fs::write(&path, serde_json::to_string(&forged).unwrap()).unwrap();
    let (code, out) = attest_verify(&s, &path, false);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("signature does not match"), "{out}");
    let independent = Std::new("python3")
        .arg(root().join("tests/attest/verify_dsse.py"))
        .arg(&path)
        .arg(s.path("key.pub"))
        .output()
        .unwrap();
    assert!(
        !independent.status.success(),
        "the independent verifier refuses it too"
    );

    // Another key.
    let out = terroir()
        .args(["keygen", "--out"])
        .arg(s.path("other"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = terroir()
        .args(["attest", "verify"])
        .arg(s.path("attestation.json"))
        .args(["--pubkey"])
        .arg(s.path("other.pub"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    // One byte of one rendered file.
    let file = s.path("rendered/baremetal/hosts/db1/postgresql.conf");
    let file = if file.exists() {
        file
    } else {
        walk(&s.path("rendered/baremetal"))
            .into_iter()
            .next()
            .unwrap()
    };
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[0] ^= 0x20;
    std::fs::write(&file, &bytes).unwrap();
    let (code, out) = attest_verify(&s, &s.path("attestation.json"), true);
    assert_eq!(code, 2, "{out}");
    let name = file
        .strip_prefix(s.path("rendered"))
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        out.contains(&name) && out.contains("the attestation says"),
        "says which file: {out}"
    );
    // A file that appeared.
    std::fs::write(&file, {
        bytes[0] ^= 0x20;
        &bytes
    })
    .unwrap();
    std::fs::write(s.path("rendered/extra.yaml"), "kind: Surprise\n").unwrap();
    let (code, out) = attest_verify(&s, &s.path("attestation.json"), true);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("extra.yaml: in") && out.contains("not attested"),
        "{out}"
    );

    // keygen never overwrites.
    let out = terroir()
        .args(["keygen", "--out"])
        .arg(s.path("key"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists"));
}

#[test]
fn no_secret_appears_in_the_attestation_the_reports_or_the_ropa() {
    let dir = tempfile::tempdir().unwrap();
    let doc = variant("kubernetes.yaml", dir.path(), "platform.yaml", |t| {
        t.replace("logLevel: info", "logLevel: warn")
    });
    // Secrets in the local store beside the document, as apply generates them...
    let store = dir.path().join(".terroir/mutuelle-crm/secrets");
    std::fs::create_dir_all(&store).unwrap();
    let planted = [
        "pl4nted-db-password-7f3a9c",
        "pl4nted-grafana-admin-51be02",
        "pl4nted-dkim-key-c0ffee",
    ];
    for (name, value) in ["database", "grafana", "dkim"].iter().zip(planted) {
        std::fs::write(store.join(name), value).unwrap();
    }
    // ...and on the target: Secrets in the cluster, read back with --live.
    let server = BackgroundServer::start(Options::default()).unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig, "prod-paris").unwrap();
    let secret = serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "mutuelle-crm-postgres-credentials"},
        "stringData": {"password": planted[0]}, "data": {"postgres-password": b64(planted[1])}});
    ureq::post(&format!(
        "{}/api/v1/namespaces/mutuelle-crm/secrets",
        server.url()
    ))
    .header("content-type", "application/json")
    .send(secret.to_string())
    .unwrap();
    // the Secrets the client gives (terroir never invents them, and apply fails without them)
    for (name, data) in [
        (
            "mutuelle-crm-backup-s3-credentials",
            serde_json::json!({"AWS_ACCESS_KEY_ID": "pl4nted-s3-access", "AWS_SECRET_ACCESS_KEY": "pl4nted-s3-secret-9e1d"}),
        ),
        (
            "mutuelle-crm-smtp-relay-credentials",
            serde_json::json!({"sasl_passwd": "[relay]:587 crm:pl4nted-relay-pass-77aa"}),
        ),
    ] {
        let given = serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data});
        ureq::post(&format!(
            "{}/api/v1/namespaces/mutuelle-crm/secrets",
            server.url()
        ))
        .header("content-type", "application/json")
        .send(given.to_string())
        .unwrap();
    }
    let out = terroir()
        .args(["apply", "--no-wait"])
        .arg(&doc)
        .args(["--kubeconfig", kubeconfig.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // the document's storage class, as the cluster has it: it says its volumes are encrypted
    let class = serde_json::json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "ssd-encrypted"},
        "provisioner": "bsu.csi.outscale.com", "parameters": {"type": "gp2", "encrypted": "true"}});
    ureq::post(&format!(
        "{}/apis/storage.k8s.io/v1/storageclasses",
        server.url()
    ))
    .header("content-type", "application/json")
    .send(class.to_string())
    .unwrap();

    let (s, code, stderr) = signed(
        &doc,
        &["--live", "--kubeconfig", kubeconfig.to_str().unwrap()],
    );
    assert!(code == 0 || code == 2, "{stderr}");
    assert!(
        s.path("attestation.json").exists(),
        "attest wrote nothing: {stderr}"
    );
    let env = envelope(&s.path("attestation.json"));
    let payload = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(env["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert!(
        payload.contains("\"basis\":\"live\""),
        "live facts were read"
    );
    let statement: serde_json::Value = serde_json::from_str(&payload).unwrap();
    let at_rest = &statement["predicate"]["security"]["encryptionAtRest"];
    assert_eq!(at_rest["basis"], "live", "{at_rest}");
    assert_eq!(at_rest["observed"][0]["state"], "encrypted", "{at_rest}");
    assert_eq!(
        at_rest["observed"][0]["evidence"], "parameters encrypted: true",
        "{at_rest}"
    );
    let outputs = [
        ("attestation (decoded payload)", payload),
        (
            "attestation",
            std::fs::read_to_string(s.path("attestation.json")).unwrap(),
        ),
        (
            "report.md",
            std::fs::read_to_string(s.path("attestation.report.md")).unwrap(),
        ),
        (
            "report.html",
            std::fs::read_to_string(s.path("attestation.report.html")).unwrap(),
        ),
        (
            "ropa.md",
            std::fs::read_to_string(s.path("attestation.ropa.md")).unwrap(),
        ),
        ("stderr", stderr),
    ];
    for (what, text) in &outputs {
        for secret in planted
            .into_iter()
            .chain(["pl4nted-s3-secret-9e1d", "pl4nted-relay-pass-77aa"])
        {
            assert!(!text.contains(secret), "{what} contains a planted secret");
            assert!(
                !text.contains(&b64(secret)),
                "{what} contains a planted secret (base64)"
            );
        }
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn the_assessment_as_oscal_assessment_results_validates_against_the_oscal_models() {
    let (s, code, stderr) = signed(
        &example("secnumcloud-outscale.yaml"),
        &["--format", "oscal"],
    );
    assert_eq!(code, 0, "{stderr}");
    let path = s.path("attestation.oscal.json");
    let out = Std::new("python3")
        .arg(root().join("tests/attest/validate_oscal.py"))
        .arg(&path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "compliance-trestle refuses it: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let counts: Value = serde_json::from_slice(&out.stdout).unwrap();
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let st = statement(&envelope(&s.path("attestation.json")));
    let findings = st["predicate"]["findings"].as_array().unwrap().len();
    let criteria = st["predicate"]["grid"]["criteria"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(
        counts["findings"], findings as u64,
        "one OSCAL finding per finding"
    );
    assert_eq!(
        counts["observations"],
        (findings + criteria) as u64,
        "and an observation per finding and per grid criterion"
    );
    let result = &doc["assessment-results"]["results"][0];
    let declared = result["observations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| {
            o["props"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "basis" && p["value"] == "declared")
        })
        .count();
    assert!(declared > 0, "declared criteria keep their label in OSCAL");
    // Deterministic for the same predicate.
    let again = terroir::attest::oscal::assessment_results(&st["predicate"]);
    assert_eq!(again, doc);
}

#[test]
fn live_bare_metal_subjects_are_the_deployed_files_read_back() {
    use common::hosts::TestHosts;
    use std::io::Write;
    let hosts = TestHosts::up(3);
    let dir = tempfile::tempdir().unwrap();
    let doc = variant("baremetal.yaml", dir.path(), "platform.yaml", |t| {
        t.replace(
            "identityFile: ~/.ssh/terroir_ed25519",
            &format!("identityFile: {}", hosts.identity().display()),
        )
        .replace(
            "knownHostsFile: ./known_hosts",
            &format!("knownHostsFile: {}", hosts.known_hosts().display()),
        )
    });
    let rendered = dir.path().join("rendered");
    let out = terroir()
        .args(["render"])
        .arg(&doc)
        .args(["--out"])
        .arg(&rendered)
        .output()
        .unwrap();
    assert!(out.status.success());
    let plan: Value = serde_json::from_str(
        &std::fs::read_to_string(rendered.join("baremetal/plan.json")).unwrap(),
    )
    .unwrap();
    let db1 = plan["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "db1")
        .unwrap();
    let steps = db1["steps"].as_array().unwrap();
    let files: Vec<(&str, &str)> = steps
        .iter()
        .filter(|s| s["kind"] == "file" || s.get("source").is_some())
        .filter_map(|s| Some((s["dest"].as_str()?, s["source"].as_str()?)))
        .collect();
    assert!(files.len() >= 2, "{db1}");
    let secrets: Vec<&str> = steps
        .iter()
        .filter(|s| s.get("secret").is_some())
        .filter_map(|s| s["dest"].as_str())
        .collect();
    let put = |dest: &str, bytes: &[u8]| {
        let parent = Path::new(dest).parent().unwrap().display().to_string();
        let mut child = Std::new(root().join("tests/hosts/hostctl"))
            .args([
                "exec",
                "h1",
                "sh",
                "-c",
                &format!("mkdir -p '{parent}' && cat > '{dest}'"),
            ])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(bytes).unwrap();
        assert!(child.wait().unwrap().success());
    };
    // The first file as rendered, the second changed on the host, the others absent.
    let (good_dest, good_src) = files[0];
    let good = std::fs::read(rendered.join("baremetal/hosts/db1").join(good_src)).unwrap();
    put(good_dest, &good);
    let (bad_dest, _) = files[1];
    put(bad_dest, b"changed by hand\n");
    for s in &secrets {
        put(s, b"pl4nted-secret-value\n");
    }

    let (s, code, stderr) = signed(&doc, &["--live"]);
    assert!(code == 0 || code == 2, "{stderr}");
    assert!(s.path("attestation.json").exists(), "{stderr}");
    let st = statement(&envelope(&s.path("attestation.json")));
    let live: Vec<&Value> = st["subject"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["name"].as_str().unwrap().starts_with("host://"))
        .collect();
    let digest = |dest: &str| {
        live.iter()
            .find(|x| x["name"] == format!("host://db1{dest}"))
            .map(|x| x["digest"]["sha256"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        digest(good_dest).as_deref(),
        Some(terroir::text::sha256_hex(&good).as_str()),
        "the deployed file's digest equals the rendered one: {live:?}"
    );
    assert_eq!(
        digest(bad_dest).as_deref(),
        Some(terroir::text::sha256_hex(b"changed by hand\n").as_str()),
        "a changed file is attested as it is"
    );
    for sec in &secrets {
        assert_eq!(digest(sec), None, "secret files are never hashed");
    }
    // every host has an /etc/resolv.conf of its own, which the plan also writes (the example
    // declares resolvers): attested as it is; the other files the plan names are absent
    let (resolv, written): (Vec<&Value>, Vec<&Value>) = live
        .into_iter()
        .partition(|x| x["name"].as_str().unwrap().ends_with("/etc/resolv.conf"));
    assert_eq!(resolv.len(), 3, "{resolv:?}");
    assert_eq!(written.len(), 2, "absent files are left out: {written:?}");
    // attest verify --against still compares only the rendered files.
    let (code, out) = attest_verify(&s, &s.path("attestation.json"), true);
    assert_eq!(code, 0, "{out}");
    drop(hosts);
}

/// An erasure record as `terroir destroy` signs it, with the key `terroir keygen` made: items
/// removed, one kept and one that could not be removed, after an export.
fn erasure_record(dir: &Path) -> PathBuf {
    use terroir::lifecycle::destroy::{Action, Done, Erasure, FinalCopy, Item, Kind, Options};
    let out = terroir()
        .args(["keygen", "--out"])
        .arg(dir.join("key"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let key = terroir::attest::keys::read_private(&dir.join("key")).unwrap();
    let removed = |place: &str, kind, what: &str| Done {
        item: Item::new(place, kind, what, Action::Remove),
        failed: None,
    };
    let record = Erasure {
        platform: "acme-crm".into(),
        target: "baremetal".into(),
        options: Options::default(),
        started: "2026-12-05T10:00:00Z".into(),
        finished: "2026-12-05T10:03:00Z".into(),
        removed: vec![
            removed("db1", Kind::File, "/etc/postgresql/15/main/postgresql.conf"),
            removed("app1", Kind::Secret, "/etc/acme-crm/app.env"),
        ],
        kept: vec![Item::new(
            "db1",
            Kind::Data,
            "/var/lib/postgresql/15/main",
            Action::Keep {
                why: "data: removed only with --delete-data".into(),
            },
        )],
        failed: vec![Done {
            item: Item::new("app1", Kind::Directory, "/srv/acme-crm", Action::Remove),
            failed: Some("Device or resource busy".into()),
        }],
        follows: Some(FinalCopy {
            kind: "export".into(),
            location: "/srv/exports/acme-crm".into(),
            finished: 1_796_464_800,
            digests: [
                ("SHA256SUMS".to_owned(), "a".repeat(64)),
                ("manifest.json".to_owned(), "b".repeat(64)),
            ]
            .into(),
        }),
    };
    let env = terroir::attest::erasure::sign(&record, &key).unwrap();
    let path = dir.join("erasure-record.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&env).unwrap()).unwrap();
    path
}

#[test]
fn an_erasure_record_verifies_and_says_what_was_erased_after_what() {
    let dir = tempfile::tempdir().unwrap();
    let record = erasure_record(dir.path());
    let verify = |pubkey: &str, path: &Path, json: bool| {
        let mut cmd = terroir();
        cmd.args(["attest", "verify"])
            .arg(path)
            .arg("--pubkey")
            .arg(dir.path().join(pubkey));
        if json {
            cmd.args(["--output", "json"]);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let (code, stdout, stderr) = verify("key.pub", &record, false);
    assert_eq!(code, 0, "{stdout}{stderr}");
    for said in [
        "valid signature by ed25519:",
        "erasure record of acme-crm (baremetal target), 2026-12-05T10:00:00Z to 2026-12-05T10:03:00Z",
        "2 items removed, 1 kept, 1 failed",
        "kept [db1] data /var/lib/postgresql/15/main: data: removed only with --delete-data",
        "not removed [app1] directory /srv/acme-crm: Device or resource busy",
        "follows the export /srv/exports/acme-crm, finished 2026-12-05T",
        &format!("manifest.json sha256 {}", "b".repeat(64)),
    ] {
        assert!(stdout.contains(said), "{said:?} in:\n{stdout}");
    }
    let (code, stdout, _) = verify("key.pub", &record, true);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        (&v["valid"], &v["kind"], &v["platform"], &v["target"]),
        (
            &Value::Bool(true),
            &Value::from("erasure"),
            &Value::from("acme-crm"),
            &Value::from("baremetal")
        ),
        "{v:#}"
    );
    assert_eq!(
        (&v["removed"], &v["kept"], &v["failed"]),
        (&Value::from(2), &Value::from(1), &Value::from(1))
    );
    assert_eq!(
        v["keptItems"][0]["why"],
        "data: removed only with --delete-data"
    );
    assert_eq!(v["failedItems"][0]["failed"], "Device or resource busy");
    assert_eq!(v["follows"]["kind"], "export");
    assert_eq!(v["follows"]["digests"]["SHA256SUMS"], "a".repeat(64));
    assert_eq!(v["finished"], "2026-12-05T10:03:00Z");

    // An implementation independent of terroir's verifies it, and sees the erasure predicate
    // and the export's files as its subjects.
    let out = Std::new("python3")
        .arg(root().join("tests/attest/verify_dsse.py"))
        .arg(&record)
        .arg(dir.path().join("key.pub"))
        .arg(dir.path().join("key"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        said["predicateType"],
        "https://terroir.eu/attestation/erasure/v1"
    );
    assert_eq!(said["subjects"], 2);

    // Tampered: one item fewer said to have failed. Refused as an assessment would be.
    let env = envelope(&record);
    let mut st = statement(&env);
    st["predicate"]["failed"] = Value::Array(vec![]);
    let mut forged = env.clone();
    forged["payload"] = Value::String(
        base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&st).unwrap()),
    );
    let tampered = dir.path().join("tampered.json");
    std::fs::write(&tampered, serde_json::to_string(&forged).unwrap()).unwrap();
    let (code, stdout, stderr) = verify("key.pub", &tampered, false);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("signature does not match"), "{stderr}");
    assert!(!stdout.contains("valid signature"), "{stdout}");
    let independent = Std::new("python3")
        .arg(root().join("tests/attest/verify_dsse.py"))
        .arg(&tampered)
        .arg(dir.path().join("key.pub"))
        .output()
        .unwrap();
    assert!(!independent.status.success(), "refused independently too");

    // Another key: refused, and said so to scripts.
    let out = terroir()
        .args(["keygen", "--out"])
        .arg(dir.path().join("other"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let (code, stdout, stderr) = verify("other.pub", &record, true);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("signature does not match"),
        "{stdout}{stderr}"
    );
    assert!(
        format!("{stdout}{stderr}").contains("\"valid\": false")
            || format!("{stdout}{stderr}").contains("\"valid\":false"),
        "{stdout}{stderr}"
    );

    // A record attests no rendered tree.
    let out = terroir()
        .args(["attest", "verify"])
        .arg(&record)
        .arg("--pubkey")
        .arg(dir.path().join("key.pub"))
        .arg("--against")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("an erasure record attests no rendered tree"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
