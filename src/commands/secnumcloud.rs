//! `terroir plan|apply FILE` for `target: secnumcloud`: Terraform or OpenTofu behind the policy
//! gate, then the bare-metal or Kubernetes driver on what was created.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Value, json};

use super::Outcome;
use crate::pipeline::blueprint::Catalog;
use crate::cli::ApplyArgs;
use crate::deploy::secnumcloud::{self, CloudError, PLAN_FILE, Runner};
use crate::policy::locality::catalog::Catalog as Providers;
use crate::policy::locality::geodata::GeoDb;
use crate::policy::locality::verify::{self, Finding, Verdict, Verifier};
use crate::document::{self, CloudDeploy, Loaded};
use crate::pipeline::render;

fn fail(e: &CloudError, json: bool) -> Outcome {
    if json {
        println!("{}", serde_json::to_string_pretty(&json!({"error": e.to_string()})).unwrap_or_default());
    }
    eprintln!("error: {e}");
    match e {
        CloudError::Input(_) => Outcome::Invalid,
        CloudError::Failed(_) => Outcome::CheckFailed,
    }
}

/// The public half of the document's SSH key, installed on the VMs by the provider module.
fn public_key(doc: &Path, sc: &document::SecNumCloudTarget) -> Option<String> {
    let ssh = sc.ssh.as_ref()?;
    let private = crate::deploy::baremetal::resolve_path(&ssh.identity_file, doc);
    let public = std::path::PathBuf::from(format!("{}.pub", private.display()));
    std::fs::read_to_string(public).ok().map(|k| k.trim().to_owned())
}

pub fn run(args: &ApplyArgs, loaded: Loaded, catalog: &Catalog, json: bool, apply: bool) -> Outcome {
    let Some(sc) = loaded.platform.spec.target.secnumcloud().cloned() else { return Outcome::Invalid };
    let doc = args.file.as_path();
    let (resolved, tree) = match render::render(&loaded, catalog) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return Outcome::Invalid;
        }
    };
    // The declared checks first: nothing is run for a document that breaks its own policy.
    if apply {
        let images: Vec<String> = resolved.images.values().cloned().collect();
        if let Err(outcome) = super::verify::gate(&loaded, &images, json) {
            return outcome;
        }
    }
    let tool = match secnumcloud::find_tool(args.tf_binary.as_deref()) {
        Ok(t) => t,
        Err(e) => return fail(&e, json),
    };
    let dir = secnumcloud::workdir(doc, &resolved.platform.name);
    let mut vars = serde_json::Map::new();
    if sc.deploy == CloudDeploy::Vms {
        match public_key(doc, &sc) {
            Some(k) => {
                vars.insert("ssh_public_key".into(), Value::String(k));
            }
            None => eprintln!("warning: no public key beside the document's identityFile (FILE.pub): the VMs get no key for terroir to log in with"),
        }
    }
    if let Err(e) = secnumcloud::prepare(&dir, &tree, sc.provider.as_str(), args.modules.as_deref(), &Value::Object(vars)) {
        return fail(&e, json);
    }
    let runner = Runner { tool: &tool, dir: &dir, quiet: json };
    if !json {
        eprintln!("{} {} in {}", tool.name, tool.version, dir.display());
    }
    let mut init = vec!["init".to_owned(), "-input=false".into(), "-no-color".into(), "-reconfigure".into()];
    init.extend(args.backend_config.iter().map(|b| format!("-backend-config={b}")));
    if let Err(e) = runner.run(&init, false) {
        return fail(&e, json);
    }
    let plan_args: Vec<String> = ["plan", "-input=false", "-no-color", "-lock-timeout=60s", &format!("-out={PLAN_FILE}")].iter().map(|s| s.to_string()).collect();
    if let Err(e) = runner.run(&plan_args, false) {
        return fail(&e, json);
    }
    let shown = match runner.run(&["show".into(), "-json".into(), PLAN_FILE.into()], true) {
        Ok(s) => s,
        Err(e) => return fail(&e, json),
    };
    let plan: Value = match serde_json::from_str(&shown) {
        Ok(v) => v,
        Err(e) => return fail(&CloudError::Failed(format!("`{} show -json` did not print a plan: {e}", tool.name)), json),
    };

    // The gate: every resource the plan creates or changes, and the backend init configured.
    let p = &loaded.platform;
    let geo = GeoDb::open(None).ok();
    let v = Verifier { policy: &p.spec.sovereignty.policy, geo: geo.as_ref(), catalog: Providers::builtin(), pins: HashMap::new(), dns: false };
    let mut findings: Vec<Finding> = match verify::plan(&plan, &v) {
        Ok(f) => f,
        Err(e) => return fail(&CloudError::Failed(e.to_string()), json),
    };
    match secnumcloud::configured_backend(&dir) {
        Some((kind, config)) => findings.extend(verify::backend(&kind, &config, &v, "backend")),
        None => findings.push(Finding {
            subject: "Terraform state backend".into(),
            observed: "none recorded by init".into(),
            expected: v.expected(),
            verdict: Verdict::Warn,
            basis: "backend",
            evidence: ".terraform/terraform.tfstate names no backend: the state is local".into(),
        }),
    }
    let failures: Vec<&Finding> = findings.iter().filter(|f| f.verdict == Verdict::Fail).collect();
    let enforce = p.spec.sovereignty.policy.enforcement == document::Enforcement::Enforce;
    let changes = secnumcloud::changes(&plan);
    let blocked = enforce && !failures.is_empty();
    if !json {
        println!("{} change{} in the plan:", changes.len(), if changes.len() == 1 { "" } else { "s" });
        for (address, actions) in &changes {
            let mark = match actions.as_str() {
                "create" => "+",
                "delete" => "-",
                "update" => "~",
                _ => "±",
            };
            println!("  {mark} {address} ({actions})");
        }
        super::verify::print_policy_failures(&failures, enforce);
        let warns = findings.iter().filter(|f| f.verdict == Verdict::Warn).count();
        println!(
            "policy gate: {} check{} passed, {warns} warning{}, {} failed",
            findings.iter().filter(|f| f.verdict == Verdict::Pass).count(),
            if findings.len() == 1 { "" } else { "s" },
            if warns == 1 { "" } else { "s" },
            failures.len()
        );
    }
    if blocked {
        if json {
            println!("{}", serde_json::to_string_pretty(&json!({"platform": p.metadata.name, "applied": false, "changes": changes_json(&changes), "findings": findings, "error": "policy violation"})).unwrap_or_default());
        } else {
            eprintln!("error: the plan violates the sovereignty policy ({} failing check{}); nothing was applied", failures.len(), if failures.len() == 1 { "" } else { "s" });
        }
        return Outcome::CheckFailed;
    }
    if !apply {
        if json {
            println!("{}", serde_json::to_string_pretty(&json!({"platform": p.metadata.name, "applied": false, "plan": dir.join(PLAN_FILE), "changes": changes_json(&changes), "findings": findings})).unwrap_or_default());
        } else {
            println!("plan saved in {}; `terroir apply {}` applies exactly this plan once the gate passes", dir.join(PLAN_FILE).display(), doc.display());
        }
        return if failures.is_empty() { Outcome::Success } else { Outcome::CheckFailed };
    }

    // Apply exactly the saved plan, then hand the outputs to the next stage.
    if let Err(e) = runner.run(&["apply".into(), "-input=false".into(), "-no-color".into(), "-lock-timeout=60s".into(), PLAN_FILE.into()], false) {
        return fail(&e, json);
    }
    let outputs: Value = match runner.run(&["output".into(), "-json".into()], true).map(|o| serde_json::from_str(&o)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return fail(&CloudError::Failed(format!("`{} output -json`: {e}", tool.name)), json),
        Err(e) => return fail(&e, json),
    };
    let next = match handover(&loaded, &sc, &outputs, &dir) {
        Ok(l) => l,
        Err(e) => return fail(&e, json),
    };
    if !json {
        eprintln!("provisioned; deploying the platform on it");
    }
    if next.platform.spec.target.kubernetes().is_some() {
        super::kubernetes::run(args, next, catalog, json, true)
    } else {
        super::deploy::baremetal_loaded(args, next, catalog, json, crate::deploy::baremetal::Mode::Apply)
    }
}

fn changes_json(changes: &[(String, String)]) -> Value {
    Value::Array(changes.iter().map(|(a, c)| json!({"address": a, "actions": c})).collect())
}

/// The document as the next stage sees it: a bare-metal target on the created VMs, or a
/// Kubernetes target on the created cluster (its kubeconfig written beside the working directory,
/// mode 0600).
pub fn handover(loaded: &Loaded, sc: &document::SecNumCloudTarget, outputs: &Value, dir: &Path) -> Result<Loaded, CloudError> {
    let mut next = loaded.clone();
    let operator = verify::cloud_operator_id(sc.provider);
    let country = verify::country_of_region(Providers::builtin(), operator, &sc.region).unwrap_or_default();
    let location = document::DeclaredLocation { country, operator: Providers::builtin().by_name(operator).map(|o| o.name.clone()), site: Some(sc.region.clone()) };
    match sc.deploy {
        CloudDeploy::Vms => {
            let ssh = sc.ssh.clone().ok_or_else(|| CloudError::Input("`deploy: vms` needs `ssh` settings".into()))?;
            let mut hosts = Vec::new();
            for (name, address, roles) in secnumcloud::hosts_output(outputs)? {
                let roles = roles
                    .iter()
                    .map(|r| serde_json::from_value::<document::Role>(Value::String(r.clone())).map_err(|_| CloudError::Failed(format!("output hosts[\"{name}\"]: unknown role `{r}`"))))
                    .collect::<Result<Vec<_>, _>>()?;
                hosts.push(document::Host { name, address, roles });
            }
            next.platform.spec.target = document::Target::Baremetal(document::BaremetalTarget { ssh, package_mirror: document::platform::default_debian_mirror(), hosts, location: Some(location) });
        }
        CloudDeploy::Kubernetes => {
            let config = outputs.pointer("/kubeconfig/value").and_then(Value::as_str).filter(|k| !k.is_empty()).ok_or_else(|| {
                CloudError::Failed("the Terraform outputs have no `kubeconfig`: the provider module must output the cluster's kubeconfig".into())
            })?;
            let path = dir.parent().unwrap_or(dir).join("kubeconfig");
            write_private(&path, config.as_bytes())?;
            next.platform.spec.target = document::Target::Kubernetes(document::KubernetesTarget {
                namespace: loaded.platform.metadata.name.clone(),
                kubeconfig: Some(path.display().to_string()),
                context: None,
                storage_class: None,
                ingress_class_name: None,
                location: Some(location),
            });
        }
    }
    Ok(next)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CloudError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| CloudError::Failed(format!("{}: {e}", path.display())))?;
    f.write_all(bytes).map_err(|e| CloudError::Failed(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn loaded(dir: &Path, kubernetes: bool) -> Loaded {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/secnumcloud-outscale.yaml")).unwrap();
        let text = if kubernetes {
            let start = text.find("      deploy: vms").unwrap();
            let end = text.find("      stateBackend:\n").unwrap();
            let mut t = text.clone();
            t.replace_range(start..end, "      deploy: kubernetes\n      kubernetes:\n        version: \"1.33\"\n        nodeCount: 3\n        nodeType: tinav6.c4r8p2\n");
            t
        } else {
            text
        };
        let path = dir.join("platform.yaml");
        std::fs::write(&path, text).unwrap();
        document::load_file(&path).unwrap()
    }

    #[test]
    fn created_vms_become_a_bare_metal_target_in_the_same_place() {
        let dir = tempfile::tempdir().unwrap();
        let l = loaded(dir.path(), false);
        let sc = l.platform.spec.target.secnumcloud().cloned().unwrap();
        let outputs = json!({"hosts": {"value": {
            "db1": {"address": "10.42.1.10", "private_address": "10.42.1.10", "roles": ["database"]},
            "app1": {"address": "203.0.113.7", "private_address": "10.42.0.10", "roles": ["app"]}}}});
        let next = handover(&l, &sc, &outputs, dir.path()).unwrap();
        let b = next.platform.spec.target.baremetal().cloned().unwrap();
        assert!(next.platform.spec.target.secnumcloud().is_none());
        assert_eq!(b.hosts.iter().map(|h| (h.name.as_str(), h.address.as_str())).collect::<Vec<_>>(), [("app1", "203.0.113.7"), ("db1", "10.42.1.10")]);
        assert_eq!(b.ssh.user, "deploy");
        let loc = b.location.unwrap();
        assert_eq!((loc.country.as_str(), loc.site.as_deref()), ("FR", Some("cloudgouv-eu-west-1")));
        // an unknown role in the outputs is an error, not a silent skip
        let bad = json!({"hosts": {"value": {"x": {"address": "10.0.0.1", "roles": ["dba"]}}}});
        assert!(handover(&l, &sc, &bad, dir.path()).unwrap_err().to_string().contains("unknown role `dba`"));
    }

    #[test]
    fn a_created_cluster_hands_over_its_kubeconfig_privately() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let l = loaded(dir.path(), true);
        let sc = l.platform.spec.target.secnumcloud().cloned().unwrap();
        let work = dir.path().join(".terroir/collectivite-grc/terraform");
        std::fs::create_dir_all(&work).unwrap();
        let outputs = json!({"kubeconfig": {"sensitive": true, "value": "apiVersion: v1\nkind: Config\n"}});
        let next = handover(&l, &sc, &outputs, &work).unwrap();
        let k = next.platform.spec.target.kubernetes().cloned().unwrap();
        let path = std::path::PathBuf::from(k.kubeconfig.unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "apiVersion: v1\nkind: Config\n");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(k.namespace, "collectivite-grc");
        assert!(handover(&l, &sc, &json!({}), &work).unwrap_err().to_string().contains("no `kubeconfig`"));
    }
}
