//! The rendered Terraform root module is accepted by the real `terraform fmt -check`, and
//! `terroir destroy` removes what the real `terraform` created (built-in resources only, the state
//! in an S3 server on loopback), then finds nothing left.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::process::Command as Std;

use common::*;

fn fmt_check(dir: &std::path::Path) {
    let out = Std::new("terraform")
        .arg("fmt")
        .arg("-check")
        .arg("-recursive")
        .arg("-diff")
        .arg(dir)
        .output()
        .expect("terraform is installed (.ci/run installs it)");
    assert!(
        out.status.success(),
        "terraform fmt -check failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn outscale_example_root_module_is_formatted() {
    let tmp = tempfile::tempdir().unwrap();
    let out = render(&example("secnumcloud-outscale.yaml"), tmp.path(), "out");
    assert!(out.join("terraform/main.tf").is_file());
    assert!(out.join("terraform/terraform.tfvars").is_file());
    fmt_check(&out.join("terraform"));
}

#[test]
fn managed_kubernetes_variant_is_formatted() {
    let tmp = tempfile::tempdir().unwrap();
    let doc = variant("secnumcloud-outscale.yaml", tmp.path(), "k.yaml", |t| {
        let start = t.find("      deploy: vms").unwrap();
        // no ssh settings: they only matter for VMs
        let end = t.find("      stateBackend:\n").unwrap();
        let mut s = t.clone();
        s.replace_range(start..end, "      deploy: kubernetes\n      kubernetes:\n        version: \"1.33\"\n        nodeCount: 3\n        nodeType: tinav6.c4r8p2\n");
        s.replace(
            "provider: outscale\n      region: cloudgouv-eu-west-1",
            "provider: s3ns\n      region: u-france-east1",
        )
    });
    let out = render(&doc, tmp.path(), "out");
    fmt_check(&out.join("terraform"));
}

#[test]
fn every_shipped_module_is_formatted() {
    fmt_check(&root().join("terraform/modules"));
}

#[test]
fn every_provider_renders_a_formatted_root_module_with_its_module() {
    let tmp = tempfile::tempdir().unwrap();
    for (provider, region) in [
        ("outscale", "cloudgouv-eu-west-1"),
        ("ovhcloud", "eu-west-par"),
        ("cloud-temple", "fr1"),
        ("s3ns", "u-france-east1"),
    ] {
        let doc = if provider == "outscale" {
            example("secnumcloud-outscale.yaml")
        } else {
            variant(
                "secnumcloud-outscale.yaml",
                tmp.path(),
                &format!("{provider}.yaml"),
                |t| {
                    t.replace(
                        "provider: outscale\n      region: cloudgouv-eu-west-1",
                        &format!("provider: {provider}\n      region: {region}"),
                    )
                },
            )
        };
        let out = render(&doc, tmp.path(), provider);
        let module = out.join(format!("terraform/modules/{provider}"));
        for f in [
            "main.tf",
            "variables.tf",
            "outputs.tf",
            "versions.tf",
            "README.md",
        ] {
            assert!(
                module.join(f).is_file(),
                "{provider}: {f} is rendered beside the root module"
            );
        }
        let main = std::fs::read_to_string(out.join("terraform/main.tf")).unwrap();
        assert!(
            main.contains(&format!("source = \"./modules/{provider}\"")),
            "{main}"
        );
        fmt_check(&out.join("terraform"));
    }
}

/// A provider module made of Terraform's built-in resources only (no provider to download): it
/// "creates" a network and the cluster's nodes as terraform_data, and outputs no kubeconfig, as
/// a cloud whose apply stopped before the hand-over.
fn module_without_handover(dir: &std::path::Path) -> std::path::PathBuf {
    let m = dir.join("modules/outscale");
    std::fs::create_dir_all(&m).unwrap();
    std::fs::write(
        m.join("main.tf"),
        r#"variable "name" { type = string }
variable "region" { type = string }
variable "network_cidr" { type = string }
variable "vms" { type = any }
variable "kubernetes" { type = any }
variable "backup_bucket" { type = string }
variable "ssh_user" { type = string }
variable "ssh_public_key" { type = string }
variable "admin_cidrs" { type = list(string) }
variable "public_ports" { type = list(number) }

resource "terraform_data" "net" {
  input = var.network_cidr
}

resource "terraform_data" "node" {
  for_each = toset(["a", "b"])
  input    = "${var.name}-${each.key}-${terraform_data.net.id}"
}

output "hosts" { value = {} }
output "kubeconfig" {
  value     = ""
  sensitive = true
}
output "backup_bucket" { value = var.backup_bucket }
output "backup_endpoint" { value = "" }
output "qualified" { value = true }
"#,
    )
    .unwrap();
    dir.join("modules")
}

#[test]
fn destroy_removes_the_clouds_resources_after_an_export_and_records_it() {
    use serde_json::Value;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (_moto, endpoint) = common::s3::plain(dir, "collectivite-grc-tfstate");
    let doc = variant("secnumcloud-outscale.yaml", dir, "platform.yaml", |t| {
        let start = t.find("      deploy: vms").unwrap();
        let end = t.find("      stateBackend:\n").unwrap();
        let mut s = t.clone();
        s.replace_range(start..end, "      deploy: kubernetes\n      kubernetes:\n        version: \"1.33\"\n        nodeCount: 2\n        nodeType: tinav6.c4r8p2\n");
        s
    });
    let modules = module_without_handover(dir);
    let run = |args: &[&str]| {
        let out = terroir()
            .args(args)
            .arg(&doc)
            .args(["--tf-binary", "terraform", "--modules"])
            .arg(&modules)
            .arg("--backend-config")
            .arg(format!("endpoints={{s3=\"{endpoint}\"}}"))
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("TF_CLI_CONFIG_FILE", "/dev/null")
            .current_dir(dir)
            .timeout(std::time::Duration::from_secs(600))
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let out = terroir()
        .args(["keygen", "--out"])
        .arg(dir.join("key"))
        .output()
        .unwrap();
    assert!(out.status.success());

    // Nothing provisioned yet: nothing to destroy.
    let (code, stdout, stderr) = run(&["destroy"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("nothing of collectivite-grc is left to destroy"),
        "{stdout}"
    );

    // apply creates the resources, then stops: the outputs hand no cluster over.
    let (code, stdout, stderr) = run(&["apply"]);
    assert_ne!(code, 0, "{stdout}{stderr}");
    assert!(stderr.contains("no `kubeconfig`"), "{stderr}");
    // ...so there is no release to roll back, and rollback says why.
    let (code, stdout, stderr) = run(&["rollback"]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stderr.contains("hands no platform over for collectivite-grc"),
        "{stderr}"
    );

    // The plan: every resource of the state, by address, removed; nothing changes.
    let (code, stdout, stderr) = run(&["destroy", "--output", "json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    let items = plan["plan"]["items"].as_array().unwrap();
    let addresses: Vec<&str> = items.iter().map(|i| i["what"].as_str().unwrap()).collect();
    assert_eq!(
        addresses,
        [
            "module.platform.terraform_data.net",
            "module.platform.terraform_data.node[\"a\"]",
            "module.platform.terraform_data.node[\"b\"]"
        ],
        "{stdout}"
    );
    for i in items {
        assert_eq!(
            (
                i["place"].as_str(),
                i["kind"].as_str(),
                i["action"].as_str()
            ),
            (Some("terraform"), Some("cloudResource"), Some("remove")),
            "{i}"
        );
    }
    assert_eq!(plan["plan"]["target"], "secnumcloud");
    assert_eq!(plan["done"], Value::Null);

    // Refused without a recent export or backup, naming what was found; nothing removed.
    let key = dir.join("key").display().to_string();
    let (code, stdout, stderr) = run(&["destroy", "--key", &key, "--yes"]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stderr.contains("no export or backup of collectivite-grc younger than 24 hours")
            && stderr.contains("no export of it is recorded"),
        "{stderr}"
    );
    let (_, stdout, _) = run(&["destroy", "--output", "json"]);
    let again: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(again["plan"]["items"].as_array().unwrap().len(), 3);

    // An export taken just now, recorded beside the document as `terroir export` records it.
    let export = dir.join("export");
    std::fs::create_dir_all(&export).unwrap();
    std::fs::write(
        export.join("manifest.json"),
        "{\"platform\":\"collectivite-grc\"}",
    )
    .unwrap();
    std::fs::write(export.join("SHA256SUMS"), "0000  db/grc.sql\n").unwrap();
    let digest = |name: &str| terroir::text::sha256_hex(&std::fs::read(export.join(name)).unwrap());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    std::fs::write(
        dir.join(".terroir/collectivite-grc/exports.jsonl"),
        format!(
            "{}\n",
            serde_json::json!({"kind": "export", "location": export.display().to_string(), "finished": now,
                "digests": {"manifest.json": digest("manifest.json"), "SHA256SUMS": digest("SHA256SUMS")}})
        ),
    )
    .unwrap();

    let record = dir.join("erasure-record.json");
    let (code, stdout, stderr) = run(&["destroy", "--key", &key, "--yes"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stderr.contains("terraform destroy -auto-approve"),
        "the saved state is destroyed: {stderr}"
    );
    assert!(stdout.contains("collectivite-grc destroyed"), "{stdout}");
    assert!(record.is_file(), "{stdout}");

    // The record verifies, with terroir and independently, and says what it follows.
    let out = terroir()
        .args(["attest", "verify"])
        .arg(&record)
        .arg("--pubkey")
        .arg(dir.join("key.pub"))
        .args(["--output", "json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let checked: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(checked["kind"], "erasure", "{checked:#}");
    assert_eq!(checked["platform"], "collectivite-grc");
    assert_eq!(checked["target"], "secnumcloud");
    assert_eq!(
        (
            checked["removed"].as_u64(),
            checked["kept"].as_u64(),
            checked["failed"].as_u64()
        ),
        (Some(3), Some(0), Some(0)),
        "{checked:#}"
    );
    assert_eq!(checked["follows"]["kind"], "export");
    assert_eq!(
        checked["follows"]["digests"]["SHA256SUMS"],
        digest("SHA256SUMS")
    );
    let independent = std::process::Command::new("python3")
        .arg(root().join("tests/attest/verify_dsse.py"))
        .arg(&record)
        .arg(dir.join("key.pub"))
        .output()
        .unwrap();
    assert!(
        independent.status.success(),
        "{}",
        String::from_utf8_lossy(&independent.stderr)
    );
    let said: Value = serde_json::from_slice(&independent.stdout).unwrap();
    assert_eq!(
        said["predicateType"],
        "https://terroir.eu/attestation/erasure/v1"
    );

    // The state is empty: a second destroy finds nothing left.
    let (code, stdout, stderr) = run(&["destroy", "--key", &key, "--yes"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("nothing of collectivite-grc is left to destroy"),
        "{stdout}"
    );
}
