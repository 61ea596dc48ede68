//! `terroir keygen`, `terroir attest` and `terroir attest verify`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::Outcome;
use crate::attest::{dsse, keys, predicate};
use crate::pipeline::blueprint::Catalog;
use crate::cli::{AttestArgs, AttestCommand};

/// `ATTESTATION` with its extension replaced: `a.json` -> `a.report.md`.
fn beside(out: &Path, suffix: &str) -> PathBuf {
    let stem = out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "attestation".into());
    out.with_file_name(format!("{stem}.{suffix}"))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_file_name(format!(".{}.tmp", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()));
    std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path)).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Who certifies the public name on hosts, from the platform's secret store (never the key):
/// the ACME CA that issued the certificate, or the platform's own CA until one did.
fn public_certificate(file: &std::path::Path, p: &crate::document::Platform) -> Option<serde_json::Value> {
    let on_hosts = !p.spec.target.on_kubernetes();
    let acme = p.spec.endpoints.acme_ca.as_ref().map(|e| e.url.clone());
    // on Kubernetes, published through an IngressClass, certified by cert-manager in the cluster
    if let Some(class) = p.spec.target.kubernetes().and_then(|k| k.ingress_class_name.as_ref()) {
        let name = p.spec.components.app.public_host.as_ref().filter(|_| p.spec.components.app.enabled)?;
        return Some(serde_json::json!({
            "names": [name],
            "issuer": acme,
            "acme": acme.is_some(),
            "acmeCaDeclared": acme,
            "served": format!("the Ingress {}-public of IngressClass {class}", p.metadata.name),
            "state": if acme.is_some() { format!("rendered: cert-manager's Issuer {}-acme obtains and renews it (HTTP-01) into the Secret {}-public-tls; not verified by terroir", p.metadata.name, p.metadata.name) } else { "no ACME CA named: the ingress controller's own certificate answers".to_owned() },
        }));
    }
    let name = p.spec.components.app.public_host.as_ref().filter(|_| on_hosts && p.spec.components.app.enabled)?;
    let store = crate::secrets::SecretStore::for_platform(file, p);
    Some(match crate::pki::public_state(&store) {
        Ok(Some(state)) => serde_json::json!({
            "names": state.names,
            "issuer": if state.issuer == crate::pki::PublicState::INTERNAL { "the platform's own CA".to_owned() } else { state.issuer.clone() },
            "acme": state.issuer != crate::pki::PublicState::INTERNAL,
            "expires": crate::text::rfc3339(state.expires),
            "acmeCaDeclared": acme,
            "served": "nginx on the application hosts, TLS 1.2 or later, plain HTTP redirected",
        }),
        _ => serde_json::json!({"names": [name], "issuer": null, "acmeCaDeclared": acme, "state": "not issued yet: `terroir apply` makes it"}),
    })
}

pub fn run(args: &AttestArgs, catalog: &Catalog, json: bool) -> Outcome {
    if let Some(AttestCommand::Verify { attestation, pubkey, against }) = &args.command {
        return verify(attestation, pubkey, against.as_deref(), json);
    }
    let (Some(file), Some(key_path), Some(out)) = (&args.file, &args.key, &args.out) else {
        eprintln!("error: `terroir attest FILE --key KEY --out ATTESTATION` (or `terroir attest verify ATTESTATION --pubkey KEY.pub`); see `terroir attest --help`");
        return Outcome::Invalid;
    };
    let check = crate::cli::VerifyArgs { file: file.clone(), check: args.check.clone() };
    // Read the key first: a bad key must not cost a live verification.
    let key = match keys::read_private(key_path) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return Outcome::Invalid;
        }
    };
    let g = match super::verify::gather(&check, catalog) {
        Ok(g) => g,
        Err(outcome) => return outcome,
    };
    let p = &g.loaded.platform;
    let time = crate::text::now_rfc3339();
    let mut pred = predicate::predicate(p, g.resolved.target_kind, &g.report, &time);
    if let Some(public) = public_certificate(file, p) {
        pred["security"]["publicCertificate"] = public;
    }
    let mut subjects = predicate::subjects(&g.tree);
    if let Some(path) = &args.drill_report {
        match drill_evidence(path) {
            Ok((extra, summary)) => {
                subjects.extend(extra);
                pred["reversibility"] = summary;
            }
            Err(e) => {
                eprintln!("error: {e}");
                return Outcome::Invalid;
            }
        }
    }
    if args.check.live {
        // the target read back, and what it shows of encryption at rest beside what is declared
        match live_facts(&check, &g) {
            Ok((extra, observed)) => {
                subjects.extend(extra);
                if let Some(observed) = observed {
                    pred["security"]["encryptionAtRest"]["observed"] = serde_json::Value::Array(observed);
                    pred["security"]["encryptionAtRest"]["basis"] = "live".into();
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                return Outcome::CheckFailed;
            }
        }
    }
    let statement = predicate::statement(subjects, pred.clone());
    let payload = match serde_json::to_vec(&statement) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot encode the statement: {e}");
            return Outcome::CheckFailed;
        }
    };
    let envelope = dsse::sign(&payload, &key, &keys::key_id(&key.verifying_key()));
    let mut text = serde_json::to_string_pretty(&envelope).unwrap_or_default();
    text.push('\n');
    let report_md = beside(out, "report.md");
    let report_html = beside(out, "report.html");
    let ropa = beside(out, "ropa.md");
    let writes = [
        (out.clone(), text.into_bytes()),
        (report_md.clone(), crate::attest::report::markdown(&pred).into_bytes()),
        (report_html.clone(), crate::attest::report::html(&pred).into_bytes()),
        (ropa.clone(), crate::attest::ropa::ropa(p).into_bytes()),
    ];
    let mut writes = writes.to_vec();
    let oscal = beside(out, "oscal.json");
    if args.format == crate::cli::AttestFormat::Oscal {
        let mut doc = serde_json::to_string_pretty(&crate::attest::oscal::assessment_results(&pred)).unwrap_or_default();
        doc.push('\n');
        writes.push((oscal.clone(), doc.into_bytes()));
    }
    for (path, bytes) in &writes {
        if let Err(e) = write_atomically(path, bytes) {
            eprintln!("error: {e}");
            return Outcome::CheckFailed;
        }
    }
    let grid = &pred["grid"];
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "attestation": out, "report": {"markdown": report_md, "html": report_html}, "ropa": ropa,
                "oscal": (args.format == crate::cli::AttestFormat::Oscal).then_some(&oscal),
                "subjects": g.tree.files.len(), "verdict": g.report.verdict, "score": {"total": grid["total"], "max": grid["max"], "band": grid["band"]},
                "keyId": envelope.signatures.first().map(|s| s.keyid.clone()),
            }))
            .unwrap_or_default()
        );
    } else {
        println!(
            "signed {} ({} subjects, verdict {:?}, score {}/{} {})\nreport {} and {}\nrecord of processing activities (draft) {}",
            out.display(),
            g.tree.files.len(),
            g.report.verdict,
            grid["total"],
            grid["max"],
            grid["band"].as_str().unwrap_or(""),
            report_md.display(),
            report_html.display(),
            ropa.display()
        );
    }
    // The attestation records a failing verdict faithfully; the exit status says it too.
    if g.report.verdict == crate::policy::locality::verify::Verdict::Fail { Outcome::CheckFailed } else { Outcome::Success }
}

/// A drill report cited as evidence: subjects for the report and the export manifest it names,
/// and a summary for the predicate.
fn drill_evidence(path: &Path) -> Result<(Vec<Value>, Value), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let r: Value = serde_json::from_slice(&bytes).map_err(|e| format!("{}: not a drill report: {e}", path.display()))?;
    if r["kind"] != "terroir-drill-report/v1" {
        return Err(format!("{}: not a drill report (expected kind terroir-drill-report/v1, as `terroir drill` writes it)", path.display()));
    }
    let mut subjects = vec![json!({"name": "evidence://drill-report.json", "digest": {"sha256": crate::text::sha256_hex(&bytes)}})];
    if let Some(m) = r["export"]["manifestSha256"].as_str().filter(|m| m.len() == 64) {
        subjects.push(json!({"name": "evidence://export/manifest.json", "digest": {"sha256": m}}));
    }
    let checks = |k: &str| r[k].as_array().map(|a| (a.len(), a.iter().filter(|c| c["matches"] == true).count())).unwrap_or((0, 0));
    let (tables, tables_ok) = checks("tables");
    let summary = json!({
        "drill": {
            "passed": r["passed"], "startedAt": r["startedAt"], "finishedAt": r["finishedAt"],
            "from": r["sourcePlatform"], "into": r["destinationPlatform"],
            "phases": r["phases"], "totalSeconds": r["totalSeconds"],
            "exportBytes": r["export"]["bytes"], "rows": r["export"]["rows"],
            "tableChecks": tables, "tableChecksMatching": tables_ok,
            "report": "evidence://drill-report.json",
        }
    });
    Ok((subjects, summary))
}

/// What runs on a Kubernetes target, read back: each rendered object's identity (uid,
/// resourceVersion) and the SHA-256 of its live state without server-managed fields. Secrets are
/// never rendered, so never read.
/// What `--live` reads from the target: its objects or deployed files as subjects, and what it
/// shows of encryption at rest (per host on bare metal; the volumes' storage class on a cluster,
/// read over the same connection).
fn live_facts(args: &crate::cli::VerifyArgs, g: &super::verify::Gathered) -> Result<(Vec<Value>, Option<Vec<Value>>), String> {
    let p = &g.loaded.platform;
    if p.spec.target.baremetal().is_some() {
        let plan = crate::pipeline::render::plan::Plan::from_tree(&g.tree).map_err(|e| format!("{e}"))?;
        let subjects = crate::policy::locality::hostfacts::read_back(&args.file, p, &plan)?;
        let observed = crate::policy::locality::hostfacts::encryption_at_rest(&args.file, p)?;
        return Ok((subjects, Some(observed)));
    }
    let Some(k) = p.spec.target.kubernetes() else {
        return Ok((Vec::new(), None));
    };
    let manifests = crate::deploy::kubernetes::manifests(&g.tree).map_err(|e| e.to_string())?;
    let (kubeconfig, context) = crate::deploy::kubernetes::connection_settings(args.check.kubeconfig.as_ref(), args.check.context.as_ref(), k, &args.file);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let conn = crate::deploy::kubernetes::connect(kubeconfig.as_deref(), context.as_deref()).await.map_err(|e| e.to_string())?;
        let applier = crate::deploy::kubernetes::Applier::new(conn.client.clone(), "terroir");
        let mut out = Vec::new();
        for m in manifests.iter().filter(|m| m.gvk.kind != "Secret") {
            let (ar, scope) = applier.resource(&m.gvk).await.map_err(|e| e.to_string())?;
            let api: kube::Api<kube::api::DynamicObject> = match (scope, &m.namespace) {
                (kube::discovery::Scope::Namespaced, Some(ns)) => kube::Api::namespaced_with(conn.client.clone(), ns, &ar),
                _ => kube::Api::all_with(conn.client.clone(), &ar),
            };
            let Some(live) = api.get_opt(&m.name).await.map_err(|e| crate::deploy::kubernetes::describe(&e))? else { continue };
            let digest = crate::text::sha256_hex(&serde_json::to_vec(&crate::deploy::kubernetes::apply::normalize(&live)).unwrap_or_default());
            out.push(json!({
                "name": format!("kubernetes://{}/{}/{}/{}", m.gvk.api_version(), m.gvk.kind, m.namespace.as_deref().unwrap_or("_cluster"), m.name),
                "digest": {"sha256": digest},
                "annotations": {"uid": live.metadata.uid, "resourceVersion": live.metadata.resource_version, "context": conn.context},
            }));
        }
        let observed = crate::policy::locality::live::storage_encryption(&conn.client, k.storage_class.as_deref()).await.map_err(|e| e.to_string())?;
        Ok((out, Some(vec![observed])))
    })
}

fn verify(attestation: &Path, pubkey: &Path, against: Option<&Path>, json: bool) -> Outcome {
    let fail = |msg: String| {
        if json {
            println!("{}", json!({"valid": false, "error": msg}));
        }
        eprintln!("error: {msg}");
        Outcome::CheckFailed
    };
    let key = match keys::read_public(pubkey) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return Outcome::Invalid;
        }
    };
    let text = match std::fs::read_to_string(attestation) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", attestation.display());
            return Outcome::Invalid;
        }
    };
    let envelope: dsse::Envelope = match serde_json::from_str(&text) {
        Ok(e) => e,
        Err(e) => return fail(format!("{}:{}:{}: not a DSSE envelope: {e}", attestation.display(), e.line(), e.column())),
    };
    let payload = match dsse::verify(&envelope, &key) {
        Ok(p) => p,
        Err(e) => return fail(format!("{}: {e}", attestation.display())),
    };
    let statement: Value = match serde_json::from_slice(&payload) {
        Ok(v) => v,
        Err(e) => return fail(format!("the signed payload is not an in-toto Statement: {e}")),
    };
    if statement["_type"] != predicate::STATEMENT_TYPE || statement["predicateType"] != predicate::PREDICATE_TYPE {
        return fail(format!("the payload is not a terroir sovereignty assessment (predicateType {})", statement["predicateType"]));
    }
    // Live subjects (`kubernetes://...`) describe the target, not files of the rendered tree.
    let subjects: BTreeMap<String, String> = statement["subject"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| Some((s["name"].as_str()?.to_owned(), s["digest"]["sha256"].as_str()?.to_owned())))
                .filter(|(name, _)| !name.contains("://"))
                .collect()
        })
        .unwrap_or_default();
    let mut problems = Vec::new();
    if let Some(dir) = against {
        for (name, digest) in &subjects {
            match std::fs::read(dir.join(name)) {
                Ok(bytes) => {
                    let actual = crate::text::sha256_hex(&bytes);
                    if &actual != digest {
                        problems.push(format!("{name}: SHA-256 {actual}, the attestation says {digest}"));
                    }
                }
                Err(e) => problems.push(format!("{name}: attested but missing from {} ({e})", dir.display())),
            }
        }
        // Files in DIR the attestation does not cover (SHA256SUMS is derived from the others).
        for entry in walk(dir) {
            let rel = entry.strip_prefix(dir).map(|r| r.to_string_lossy().into_owned()).unwrap_or_default();
            if rel != crate::pipeline::render::SUMS_FILE && !subjects.contains_key(&rel) {
                problems.push(format!("{rel}: in {} but not attested", dir.display()));
            }
        }
    }
    let pred = &statement["predicate"];
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "valid": problems.is_empty(), "platform": pred["platform"], "time": pred["time"], "verdict": pred["verdict"],
                "subjects": subjects.len(), "mismatches": problems,
            }))
            .unwrap_or_default()
        );
    }
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("mismatch: {p}");
        }
        eprintln!("error: {} file(s) do not match the attestation", problems.len());
        return Outcome::CheckFailed;
    }
    if !json {
        println!(
            "valid signature by {} over {} subjects{}: platform {}, attested {}, verdict {}",
            envelope.signatures.first().map(|s| s.keyid.as_str()).unwrap_or("?"),
            subjects.len(),
            if against.is_some() { ", all matching" } else { "" },
            pred["platform"].as_str().unwrap_or("?"),
            pred["time"].as_str().unwrap_or("?"),
            pred["verdict"].as_str().unwrap_or("?")
        );
    }
    Outcome::Success
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        if let Ok(entries) = std::fs::read_dir(&d) {
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p);
                }
            }
        }
    }
    out.sort();
    out
}
