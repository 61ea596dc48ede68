//! The rendered Terraform root module is accepted by the real `terraform fmt -check`.
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
