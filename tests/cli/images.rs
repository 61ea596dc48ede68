//! `terroir images list|pin` and what pinning by digest does to a render: the digest reaches every
//! manifest that runs the image and the image inventory; pinning edits nothing of the document but
//! `spec.images`.

#![allow(clippy::unwrap_used)]

use crate::common;

use common::*;

const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const OTHER: &str = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

fn copy_of_example(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let text = std::fs::read_to_string(example("kubernetes.yaml")).unwrap();
    let path = dir.join("platform.yaml");
    std::fs::write(&path, &text).unwrap();
    (path, text)
}

#[test]
fn pin_adds_spec_images_and_changes_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let (doc, original) = copy_of_example(tmp.path());
    terroir()
        .args(["images", "pin"])
        .arg(&doc)
        .arg(format!(
            "postgres=terroir/postgres:16-bookworm@sha256:{HEX}"
        ))
        .arg(format!("grafana=grafana/grafana-oss:12.1.1@sha256:{HEX}"))
        .assert()
        .success();
    let pinned = std::fs::read_to_string(&doc).unwrap();
    assert_eq!(
        pinned,
        format!(
            "{original}  images:\n    postgres: terroir/postgres:16-bookworm@sha256:{HEX}\n    grafana: grafana/grafana-oss:12.1.1@sha256:{HEX}\n"
        ),
        "the mapping is added at the end of spec, the rest kept byte for byte"
    );

    // a new digest replaces the old one where it is written; other entries stay
    terroir()
        .args(["images", "pin"])
        .arg(&doc)
        .arg(format!(
            "postgres=terroir/postgres:16-bookworm@sha256:{OTHER}"
        ))
        .assert()
        .success();
    assert_eq!(
        std::fs::read_to_string(&doc).unwrap(),
        pinned.replace(
            &format!("16-bookworm@sha256:{HEX}"),
            &format!("16-bookworm@sha256:{OTHER}")
        )
    );
    terroir().arg("validate").arg(&doc).assert().success();
}

#[test]
fn pin_dry_run_prints_the_change_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (doc, original) = copy_of_example(tmp.path());
    let out = terroir()
        .args(["images", "pin", "--dry-run"])
        .arg(&doc)
        .arg(format!("postfix=terroir/postfix:3.7-bookworm@sha256:{HEX}"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains(&format!(
            "+  images:\n+    postfix: terroir/postfix:3.7-bookworm@sha256:{HEX}\n"
        )),
        "{stdout}"
    );
    assert_eq!(std::fs::read_to_string(&doc).unwrap(), original);
}

#[test]
fn pin_refuses_unknown_keys_and_unpinned_references() {
    let tmp = tempfile::tempdir().unwrap();
    let (doc, original) = copy_of_example(tmp.path());
    for (arg, says) in [
        (
            format!("postgress=terroir/postgres@sha256:{HEX}"),
            "unknown image key `postgress`",
        ),
        (
            "postgres=terroir/postgres:16-bookworm".to_owned(),
            "is not pinned",
        ),
        (
            format!("postgres=terroir/postgres@sha256:{}", &HEX[..60]),
            "is not 64 lowercase hexadecimal digits",
        ),
    ] {
        let out = terroir()
            .args(["images", "pin"])
            .arg(&doc)
            .arg(&arg)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{arg}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{arg}: {stderr}");
        assert!(stderr.contains("expected"), "{arg}: {stderr}");
    }
    assert_eq!(std::fs::read_to_string(&doc).unwrap(), original);
}

#[test]
fn list_says_which_images_are_pinned() {
    let tmp = tempfile::tempdir().unwrap();
    let (doc, _) = copy_of_example(tmp.path());
    terroir()
        .args(["images", "pin"])
        .arg(&doc)
        .arg(format!(
            "postgres=terroir/postgres:16-bookworm@sha256:{HEX}"
        ))
        .assert()
        .success();
    let out = terroir()
        .args(["images", "list", "-o", "json"])
        .arg(&doc)
        .output()
        .unwrap();
    assert!(out.status.success());
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let by_key = |k: &str| list.iter().find(|i| i["key"] == k).unwrap().clone();
    assert_eq!(
        by_key("postgres")["reference"],
        format!("registry.mutuelle.example.fr/terroir/postgres:16-bookworm@sha256:{HEX}")
    );
    assert_eq!(by_key("postgres")["pinned"], true);
    assert_eq!(by_key("postgres")["sha256"], HEX);
    assert_eq!(by_key("grafana")["pinned"], false);
    assert!(by_key("grafana").get("sha256").is_none());
    assert_eq!(by_key("app")["pinned"], false);
    assert_eq!(
        list.len(),
        10,
        "nine blueprint images and the application's"
    );
}

/// Every container of every rendered manifest runs the reference pinned for its image.
#[test]
fn render_keeps_the_digest_in_every_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let doc = variant("kubernetes.yaml", tmp.path(), "k.yaml", |t| {
        format!(
            "{t}  images:\n    postgres: terroir/postgres:16-bookworm@sha256:{HEX}\n    prometheus: mirror.example.fr/prom/prometheus@sha256:{OTHER}\n"
        )
    });
    let tree = read_tree(&render(&doc, tmp.path(), "out"));
    let mut images = Vec::new();
    for (path, bytes) in tree.iter().filter(|(p, _)| p.starts_with("kubernetes/")) {
        let text = String::from_utf8_lossy(bytes);
        for line in text.lines() {
            if let Some(image) = line.trim().strip_prefix("image: ") {
                images.push((path.clone(), image.trim_matches('"').to_owned()));
            }
        }
    }
    let postgres =
        format!("registry.mutuelle.example.fr/terroir/postgres:16-bookworm@sha256:{HEX}");
    let prometheus = format!("mirror.example.fr/prom/prometheus@sha256:{OTHER}");
    let uses = |r: &str| images.iter().filter(|(_, i)| i == r).count();
    assert!(
        uses(&postgres) >= 3,
        "the database, its init and the backup jobs: {images:?}"
    );
    assert_eq!(uses(&prometheus), 1, "{images:?}");
    for (path, image) in &images {
        if image.contains("/terroir/postgres") {
            assert_eq!(image, &postgres, "{path}");
        }
        if image.contains("prom/prometheus") {
            assert_eq!(image, &prometheus, "{path}");
        }
    }
    let resolved: serde_json::Value =
        serde_json::from_slice(&tree["platform.resolved.json"]).unwrap();
    assert_eq!(resolved["images"]["postgres"], postgres);
    // the image inventory of the dependency report says which are pinned
    let deps = String::from_utf8_lossy(&tree["sovereignty/dependencies.md"]).into_owned();
    assert!(
        deps.contains(&format!("| postgres | `{postgres}` | by digest |"))
            && deps.contains(
                "| grafana | `registry.mutuelle.example.fr/grafana/grafana-oss:12.1.1` | tag only |"
            ),
        "{deps}"
    );
}
