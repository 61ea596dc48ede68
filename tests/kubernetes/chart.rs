//! The Helm chart charts/terroir, which installs `terroir operator`: linted and rendered by Helm's
//! own library, every rendered object validated against the Kubernetes 1.33 schemas, its RBAC
//! and pod security checked (scripts/helm-check), and its CRD kept identical to `terroir crd`.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::process::Command as Std;

use common::*;

const CRD: &str = "charts/terroir/crds/platforms.terroir.eu.yaml";

#[test]
fn chart_lints_renders_and_passes_schema_and_security_checks() {
    let script = root().join("scripts/helm-check");
    let out = Std::new(&script)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} ({e}); it needs python3", script.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    match out.status.code() {
        Some(0) => {}
        Some(2) => {
            panic!("scripts/helm-check is missing a tool (scripts/test installs them all):\n{text}")
        }
        _ => panic!(
            "the Helm chart fails its checks (run scripts/helm-check --out DIR to see the manifests):\n{text}"
        ),
    }
    for set in ["default", "namespace-scope", "cluster-scope"] {
        assert!(
            text.contains(&format!("  {set}: ")),
            "scripts/helm-check did not render the {set} values:\n{text}"
        );
    }
    assert!(
        text.contains("kubernetes-validate -k 1.33.0 --strict"),
        "{text}"
    );
}

#[test]
fn chart_crd_is_what_terroir_crd_prints() {
    let printed = terroir()
        .arg("crd")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let shipped = std::fs::read(root().join(CRD)).unwrap();
    assert!(
        printed == shipped,
        "{CRD} differs from `terroir crd` output: run `terroir crd > {CRD}`\n{}",
        first_difference(
            &String::from_utf8_lossy(&shipped),
            &String::from_utf8_lossy(&printed)
        )
    );
}

#[test]
fn chart_app_version_is_the_crate_version() {
    // The chart's default image tag is its appVersion: it must name the binary it ships with.
    let chart = std::fs::read_to_string(root().join("charts/terroir/Chart.yaml")).unwrap();
    let app_version = chart
        .lines()
        .find_map(|l| l.strip_prefix("appVersion:"))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .expect("Chart.yaml has an appVersion");
    assert_eq!(
        app_version,
        env!("CARGO_PKG_VERSION"),
        "charts/terroir/Chart.yaml appVersion must be the crate's version"
    );
}

fn first_difference(shipped: &str, printed: &str) -> String {
    let (mut a, mut b) = (shipped.lines(), printed.lines());
    let mut n = 1;
    loop {
        match (a.next(), b.next()) {
            (Some(x), Some(y)) if x == y => n += 1,
            (None, None) => {
                return "(the files differ only in line endings or a final newline)".into();
            }
            (x, y) => {
                return format!(
                    "first difference at line {n}:\n  file:          {x:?}\n  terroir crd:   {y:?}"
                );
            }
        }
    }
}
