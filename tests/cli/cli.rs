//! The command line as users meet it: help, exit codes, JSON output, safe writes.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::*;
use predicates::prelude::*;

#[test]
fn help_teaches_the_first_commands() {
    terroir()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "terroir render examples/baremetal.yaml --out rendered/",
        ));
    terroir()
        .args(["render", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("SHA256SUMS"));
}

#[test]
fn usage_errors_exit_1() {
    terroir().arg("frobnicate").assert().code(1);
    terroir()
        .arg("render")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--out"));
}

#[test]
fn validate_reports_json_for_scripts() {
    let out = terroir()
        .args(["--output", "json", "validate"])
        .arg(example("baremetal.yaml"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v[0]["valid"], true);
    assert_eq!(v[0]["target"], "baremetal");
    assert_eq!(v[0]["name"], "acme-crm");
}

#[test]
fn validate_reports_every_error_with_file_line_column() {
    let tmp = tempfile::tempdir().unwrap();
    let doc = variant("baremetal.yaml", tmp.path(), "bad.yaml", |t| {
        t.replace("port: 22", "port: 0")
            .replace("storage: 200Gi", "storage: -1Gi")
    });
    let assert = terroir().arg("validate").arg(&doc).assert().code(1);
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    let name = doc.display().to_string();
    assert!(stderr.contains(&format!("{name}:18:15: `spec.target.baremetal.ssh.port` is 0 which is too small; expected a number of at least 1")), "{stderr}");
    // schema errors come first; semantic ones are only reported once the structure is right
    assert!(
        stderr.contains("18 |         port: 0"),
        "the source line is shown: {stderr}"
    );
}

#[test]
fn render_json_lists_files_with_digests() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    let out = terroir()
        .args(["-o", "json", "render"])
        .arg(example("kubernetes.yaml"))
        .arg("--out")
        .arg(&out_dir)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["rendered"], true);
    assert_eq!(v["target"], "kubernetes");
    let files = v["files"].as_array().unwrap();
    assert!(
        files
            .iter()
            .any(|f| f["path"] == "runbooks/reversibility.md")
    );
    for f in files {
        let path = out_dir.join(f["path"].as_str().unwrap());
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            f["sha256"],
            terroir::text::sha256_hex(&bytes),
            "{}",
            path.display()
        );
    }
}

#[test]
fn render_refuses_a_directory_that_is_not_a_previous_render() {
    let tmp = tempfile::tempdir().unwrap();
    let precious = tmp.path().join("notes.txt");
    std::fs::write(&precious, "keep me").unwrap();
    terroir()
        .arg("render")
        .arg(example("baremetal.yaml"))
        .arg("--out")
        .arg(tmp.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--force"));
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");
}

#[test]
fn render_replaces_a_previous_render_without_leftovers() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    terroir()
        .arg("render")
        .arg(example("kubernetes.yaml"))
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    assert!(out.join("kubernetes").is_dir());
    terroir()
        .arg("render")
        .arg(example("baremetal.yaml"))
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    assert!(
        !out.join("kubernetes").exists(),
        "files of the previous render are gone"
    );
    assert!(out.join("baremetal/plan.json").is_file());
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "no staging directories left: {leftovers:?}"
    );
}

#[test]
fn invalid_document_renders_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let doc = variant("baremetal.yaml", tmp.path(), "bad.yaml", |t| {
        t.replace("roles: [database]", "roles: [databse]")
    });
    let out = tmp.path().join("out");
    terroir()
        .arg("render")
        .arg(&doc)
        .arg("--out")
        .arg(&out)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("did you mean `database`?"));
    assert!(!out.exists());
}

#[test]
fn blueprints_lists_the_shipped_one() {
    terroir()
        .arg("blueprints")
        .assert()
        .success()
        .stdout(predicate::str::contains("engagement-platform"));
    let out = terroir()
        .args(["blueprints", "-o", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v[0]["parameters"]["environment"]["default"], "production");
}

#[test]
fn blueprints_dir_overrides_the_embedded_one() {
    let tmp = tempfile::tempdir().unwrap();
    let bp = tmp.path().join("engagement-platform");
    std::fs::create_dir_all(bp.join("templates/runbooks")).unwrap();
    std::fs::write(bp.join("blueprint.yaml"), "name: engagement-platform\nversion: 9.9.9\nparameters:\n  environment: {type: string, default: production}\n").unwrap();
    std::fs::write(
        bp.join("templates/runbooks/hello.md.tera"),
        "hello {{ platform.name }}\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    terroir()
        .arg("--blueprints")
        .arg(tmp.path())
        .arg("render")
        .arg(example("baremetal.yaml"))
        .arg("--out")
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("9.9.9"));
    assert_eq!(
        std::fs::read_to_string(out.join("runbooks/hello.md")).unwrap(),
        "hello acme-crm\n"
    );
}

#[test]
fn yaml_1_1_booleans_do_not_eat_country_codes() {
    // With YAML 1.1 rules `NO` would be `false`; Norway is an EEA country code.
    let tmp = tempfile::tempdir().unwrap();
    let doc = variant("baremetal.yaml", tmp.path(), "no.yaml", |t| {
        t.replace("allowedCountries: [EU]", "allowedCountries: [EU, NO]")
    });
    terroir().arg("validate").arg(&doc).assert().success();
}

/// The backup repository's key cannot be rotated: the repository keeps the key it was made with.
/// The store is left as it was.
#[test]
fn the_backup_repository_key_is_never_rotated() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let doc = tmp.path().join("platform.yaml");
    std::fs::copy(example("baremetal.yaml"), &doc).unwrap();
    let store = tmp.path().join(".terroir/acme-crm/secrets");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(store.join("backup-cipher-pass"), "kept-value").unwrap();
    std::fs::set_permissions(
        store.join("backup-cipher-pass"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    terroir()
        .args(["secrets", "rotate"])
        .arg(&doc)
        .arg("backup-cipher-pass")
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("cannot be rotated").and(predicate::str::contains(
                "every backup and archived WAL unreadable",
            )),
        );
    assert_eq!(
        std::fs::read_to_string(store.join("backup-cipher-pass")).unwrap(),
        "kept-value"
    );
    assert_eq!(
        std::fs::read_dir(&store).unwrap().count(),
        1,
        "no previous value or new file written"
    );
}

/// Shell completions and manual pages come from the same clap types as the command line.
#[test]
fn completions_and_manual_pages_follow_the_command_line() {
    let bash = terroir()
        .args(["completions", "bash"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let bash = String::from_utf8(bash).unwrap();
    assert!(
        bash.contains("complete -F _terroir")
            && bash.contains("--force-unlock")
            && bash.contains("restore"),
        "{bash}"
    );
    terroir()
        .args(["completions", "zsh"])
        .assert()
        .success()
        .stdout(predicate::str::contains("#compdef terroir"));
    terroir().args(["completions", "tcsh"]).assert().code(1);
    terroir()
        .arg("man")
        .assert()
        .success()
        .stdout(predicate::str::contains(".TH terroir 1").and(predicate::str::contains("apply")));
    let tmp = tempfile::tempdir().unwrap();
    terroir()
        .args(["man", "--out"])
        .arg(tmp.path())
        .assert()
        .success();
    let restore = std::fs::read_to_string(tmp.path().join("terroir-backup-restore.1")).unwrap();
    assert!(
        restore.contains(".TH terroir-backup-restore 1") && restore.contains("to\\-time"),
        "{restore}"
    );
}
