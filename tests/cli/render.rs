//! Rendering the shipped examples: complete, checksummed, deterministic, and snapshotted.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::process::Command as Std;

use common::*;

const EXAMPLES: [&str; 3] = [
    "baremetal.yaml",
    "kubernetes.yaml",
    "secnumcloud-outscale.yaml",
];

#[test]
fn examples_render_with_valid_sha256sums() {
    let tmp = tempfile::tempdir().unwrap();
    for ex in EXAMPLES {
        let out = render(&example(ex), tmp.path(), ex);
        let check = Std::new("sha256sum")
            .arg("-c")
            .arg("--strict")
            .arg("SHA256SUMS")
            .current_dir(&out)
            .output()
            .expect("sha256sum runs");
        assert!(
            check.status.success(),
            "{ex}: sha256sum -c failed:\n{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        // every file but SHA256SUMS itself is listed, in sorted order
        let tree = read_tree(&out);
        let sums = String::from_utf8(tree["SHA256SUMS"].clone()).unwrap();
        let listed: Vec<&str> = sums
            .lines()
            .map(|l| l.split_once("  ").unwrap().1)
            .collect();
        let mut sorted = listed.clone();
        sorted.sort();
        assert_eq!(listed, sorted, "{ex}: SHA256SUMS is sorted by path");
        let on_disk: Vec<&str> = tree
            .keys()
            .map(String::as_str)
            .filter(|p| *p != "SHA256SUMS")
            .collect();
        assert_eq!(
            listed, on_disk,
            "{ex}: SHA256SUMS lists exactly the files written"
        );
    }
}

#[test]
fn rendering_twice_gives_identical_trees() {
    let tmp = tempfile::tempdir().unwrap();
    for ex in EXAMPLES {
        let a = read_tree(&render(&example(ex), tmp.path(), &format!("{ex}-a")));
        let b = read_tree(&render(&example(ex), tmp.path(), &format!("{ex}-b")));
        assert_eq!(
            a.keys().collect::<Vec<_>>(),
            b.keys().collect::<Vec<_>>(),
            "{ex}: same files"
        );
        for (path, content) in &a {
            assert!(
                content == &b[path],
                "{ex}: {path} differs between two renders"
            );
        }
    }
}

#[test]
fn each_target_renders_its_own_subtree() {
    let tmp = tempfile::tempdir().unwrap();
    let has = |ex: &str, prefix: &str| {
        read_tree(&render(
            &example(ex),
            tmp.path(),
            &format!("{ex}-{}", prefix.replace('/', "_")),
        ))
        .keys()
        .any(|k| k.starts_with(prefix))
    };
    assert!(has("kubernetes.yaml", "kubernetes/"));
    assert!(!has("kubernetes.yaml", "baremetal/"));
    assert!(has("baremetal.yaml", "baremetal/plan.json"));
    assert!(!has("baremetal.yaml", "kubernetes/"));
    assert!(has("secnumcloud-outscale.yaml", "terraform/"));
    for ex in EXAMPLES {
        assert!(
            has(ex, "runbooks/reversibility.md"),
            "{ex} has a reversibility runbook"
        );
        assert!(
            has(ex, "runbooks/operations.md"),
            "{ex} has an operations runbook"
        );
        assert!(
            has(ex, "sovereignty/pre-assessment.md"),
            "{ex} has a pre-assessment"
        );
    }
}

/// The whole rendered tree of each example, as one reviewable snapshot.
#[test]
fn rendered_trees_match_snapshots() {
    let tmp = tempfile::tempdir().unwrap();
    for ex in EXAMPLES {
        let tree = read_tree(&render(&example(ex), tmp.path(), ex));
        let mut text = String::new();
        for (path, content) in &tree {
            text.push_str(&format!(
                "==> {path} <==\n{}\n",
                String::from_utf8_lossy(content)
            ));
        }
        insta::assert_snapshot!(format!("tree-{}", ex.trim_end_matches(".yaml")), text);
    }
}

#[test]
fn secrets_are_referenced_by_name_never_written() {
    // No Secret object is rendered; every reference to one names a secret the platform declares.
    let tmp = tempfile::tempdir().unwrap();
    let out = render(&example("kubernetes.yaml"), tmp.path(), "out");
    let resolved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("platform.resolved.json")).unwrap())
            .unwrap();
    let declared: Vec<&str> = resolved["secrets"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut references = 0;
    for (path, content) in read_tree(&out.join("kubernetes")) {
        let docs: Vec<serde_json::Value> =
            serde_saphyr::from_multiple(std::str::from_utf8(&content).unwrap()).unwrap();
        for doc in docs {
            assert_ne!(doc["kind"], "Secret", "{path} writes a Secret object");
            let mut stack = vec![&doc];
            while let Some(v) = stack.pop() {
                match v {
                    serde_json::Value::Object(o) => {
                        for (k, child) in o {
                            let name = match k.as_str() {
                                "secretKeyRef" | "secretRef" => child["name"].as_str(),
                                "secret" => child["secretName"].as_str(),
                                _ => None,
                            };
                            if let Some(name) = name {
                                references += 1;
                                assert!(
                                    declared.contains(&name),
                                    "{path} references undeclared secret {name}"
                                );
                            }
                            stack.push(child);
                        }
                    }
                    serde_json::Value::Array(a) => stack.extend(a.iter()),
                    _ => {}
                }
            }
        }
    }
    assert!(
        references >= 5,
        "the platform's secrets are referenced ({references} found)"
    );
}

#[test]
fn component_switched_off_leaves_no_files() {
    let tmp = tempfile::tempdir().unwrap();
    let doc = variant("kubernetes.yaml", tmp.path(), "k.yaml", |t| {
        t.replace("    monitoring:\n      retention: 30d\n      storage: 50Gi\n      alertEmails: [exploitation@mutuelle.example.fr]\n", "    monitoring:\n      enabled: false\n")
    });
    let tree = read_tree(&render(&doc, tmp.path(), "out"));
    let all: String = tree
        .iter()
        .filter(|(p, _)| p.starts_with("kubernetes/"))
        .map(|(_, c)| String::from_utf8_lossy(c).into_owned())
        .collect();
    assert!(
        !all.contains("prom/prometheus"),
        "no Prometheus when monitoring is disabled"
    );
    assert!(
        !all.contains("grafana"),
        "no Grafana when monitoring is disabled"
    );
}

/// Every host resolves through the declared resolvers, in the document's order, giving up on one
/// after a second; without declared resolvers the host's own /etc/resolv.conf is left alone.
#[test]
fn hosts_get_the_declared_dns_resolvers() {
    let tmp = tempfile::tempdir().unwrap();
    let doc = variant("baremetal.yaml", tmp.path(), "three.yaml", |t| {
        t.replace(
            "    dnsResolvers: [198.18.0.53]\n",
            "    dnsResolvers: [198.18.0.54, 2001:db8::53, 198.18.0.53]\n",
        )
    });
    let out = render(&doc, tmp.path(), "three");
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("baremetal/plan.json")).unwrap()).unwrap();
    for host in ["db1", "ops1", "app1"] {
        let text = std::fs::read_to_string(out.join(format!("baremetal/hosts/{host}/resolv.conf")))
            .unwrap();
        let settings: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            settings,
            [
                "nameserver 198.18.0.54",
                "nameserver 2001:db8::53",
                "nameserver 198.18.0.53",
                "options timeout:1 attempts:2",
            ],
            "{host}: {text}"
        );
        let steps = plan["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["name"] == host)
            .unwrap()["steps"]
            .as_array()
            .unwrap();
        let step = steps
            .iter()
            .find(|s| s["dest"] == "/etc/resolv.conf")
            .unwrap_or_else(|| panic!("{host}: no step writes /etc/resolv.conf"));
        assert_eq!(
            (
                &step["kind"],
                &step["source"],
                &step["owner"],
                &step["group"],
                &step["mode"]
            ),
            (
                &"file".into(),
                &"resolv.conf".into(),
                &"root".into(),
                &"root".into(),
                &"0644".into()
            ),
            "{host}: {step}"
        );
    }

    let doc = variant("baremetal.yaml", tmp.path(), "none.yaml", |t| {
        t.replace("    dnsResolvers: [198.18.0.53]\n", "")
    });
    let out = render(&doc, tmp.path(), "none");
    let tree = read_tree(&out);
    assert!(
        !tree.keys().any(|p| p.ends_with("/resolv.conf")),
        "no resolvers declared, no resolv.conf"
    );
    assert!(
        !String::from_utf8_lossy(&tree["baremetal/plan.json"]).contains("/etc/resolv.conf"),
        "nor a step writing it"
    );
}
