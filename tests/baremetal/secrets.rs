//! The operator-side secret store encrypted with age, and `terroir secrets`: keygen, set, list,
//! seal and rotate against the built binary, then on a real host a rotated database password
//! that reaches PostgreSQL and the application while the old one is refused.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::hosts::TestHosts;
use common::*;
use terroir::secrets::SecretStore;

const IDENTITY_ENV: &str = "TERROIR_AGE_IDENTITY";

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// `terroir secrets keygen`: the identity file and its recipient.
fn keygen(dir: &Path, file: &str) -> (PathBuf, String) {
    let path = dir.join(file);
    let out = terroir()
        .args(["secrets", "keygen"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let recipient = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(recipient.starts_with("age1"), "{recipient}");
    (path, recipient)
}

fn with_recipients(t: &str, recipients: &[&str]) -> String {
    t.replace(
        "  endpoints:\n",
        &format!(
            "  secrets:\n    recipients: [{}]\n  endpoints:\n",
            recipients.join(", ")
        ),
    )
}

fn secrets(args: &[&str], doc: &Path) -> assert_cmd::Command {
    let mut cmd = terroir();
    cmd.arg("secrets")
        .arg(args[0])
        .arg(doc)
        .args(&args[1..])
        .env_remove(IDENTITY_ENV);
    cmd
}

fn json_of(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(out)))
}

#[test]
fn the_store_is_sealed_set_listed_and_rotated_from_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (key, recipient) = keygen(dir, "key.txt");
    assert_eq!(mode(&key), 0o600);
    let identity = std::fs::read_to_string(&key).unwrap();
    assert!(
        identity.contains(&format!("# public key: {recipient}"))
            && identity.contains("AGE-SECRET-KEY-1"),
        "{identity}"
    );
    // an identity is never overwritten
    let out = terroir()
        .args(["secrets", "keygen"])
        .arg(&key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("never overwritten"), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&key).unwrap(), identity);

    // a store in clear first (no recipients): `set` reads stdin, strips one newline
    let plain = dir.join("plain.yaml");
    std::fs::copy(example("baremetal.yaml"), &plain).unwrap();
    let store_dir = dir.join(".terroir/acme-crm/secrets");
    let out = secrets(&["set", "smtp-relay-password"], &plain)
        .write_stdin("relay-s3cret\n")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(store_dir.join("smtp-relay-password")).unwrap(),
        "relay-s3cret"
    );
    assert_eq!(mode(&store_dir.join("smtp-relay-password")), 0o600);
    assert_eq!(mode(&store_dir), 0o700);
    let out = secrets(&["set", "database-password"], &plain)
        .write_stdin("\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("no value on stdin"), "{}", text(&out));
    let out = secrets(&["seal"], &plain).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("lists no age recipients"),
        "{}",
        text(&out)
    );

    // the same platform with recipients: clear files are refused until sealed
    let sealed = variant("baremetal.yaml", dir, "sealed.yaml", |t| {
        with_recipients(&t, &[&recipient])
    });
    let out = secrets(&["set", "database-password"], &sealed)
        .write_stdin("first-db-pw")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out);
    assert!(
        err.contains("in clear (smtp-relay-password)")
            && err.contains(&format!("terroir secrets seal {}", sealed.display())),
        "{err}"
    );
    let out = secrets(&["list"], &sealed)
        .args(["--output", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(json_of(&out)["secrets"][0]["encrypted"], false);
    assert!(String::from_utf8_lossy(&out.stderr).contains("terroir secrets seal"));

    let out = secrets(&["seal"], &sealed).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(!store_dir.join("smtp-relay-password").exists());
    let sealed_file = store_dir.join("smtp-relay-password.age");
    assert_eq!(mode(&sealed_file), 0o600);
    let bytes = std::fs::read(&sealed_file).unwrap();
    assert!(
        bytes.starts_with(b"age-encryption.org/v1")
            && !bytes.windows(12).any(|w| w == b"relay-s3cret")
    );
    let out = secrets(&["set", "database-password"], &sealed)
        .write_stdin("first-db-pw\r\n")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));

    let store = SecretStore::beside(&sealed, "acme-crm")
        .with_recipients(std::slice::from_ref(&recipient))
        .with_identity(&key);
    assert_eq!(
        store.get("smtp-relay-password").unwrap().as_deref(),
        Some("relay-s3cret")
    );
    assert_eq!(
        store.get("database-password").unwrap().as_deref(),
        Some("first-db-pw")
    );

    // list: names, encryption, times and receiving hosts, never a value
    let out = secrets(&["list"], &sealed)
        .args(["--output", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("first-db-pw") && !text(&out).contains("relay-s3cret"));
    let v = json_of(&out);
    assert_eq!(v["encrypted"], true);
    let list = v["secrets"].as_array().unwrap();
    let names: Vec<&str> = list.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["database-password", "smtp-relay-password"]);
    assert!(
        list.iter()
            .all(|s| s["encrypted"] == true && s["modified"].as_str().unwrap().ends_with('Z')),
        "{v:#}"
    );
    assert_eq!(
        list[0]["hosts"],
        serde_json::json!(["app1", "db1"]),
        "the database host and the application host receive it: {v:#}"
    );
    assert_eq!(list[1]["hosts"], serde_json::json!([]));
    let out = secrets(&["list"], &sealed).output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.lines().any(|l| l.starts_with("database-password")
            && l.contains("encrypted")
            && l.ends_with("app1,db1")),
        "{table}"
    );

    // reading a value needs the identity: a rotation that applies checks it before any change
    let before = std::fs::read(store_dir.join("database-password.age")).unwrap();
    let out = secrets(&["rotate", "database-password"], &sealed)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out);
    assert!(
        err.contains("secret `database-password` is encrypted")
            && err.contains("database-password.age")
            && err.contains(&format!("set {IDENTITY_ENV}")),
        "{err}"
    );
    let (stranger, _) = keygen(dir, "stranger.txt");
    let out = secrets(&["rotate", "database-password"], &sealed)
        .env(IDENTITY_ENV, &stranger)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out);
    assert!(
        err.contains("cannot be decrypted with the identity in")
            && err.contains("stranger.txt")
            && err.contains("database-password.age"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(store_dir.join("database-password.age")).unwrap(),
        before,
        "nothing changed"
    );

    // unknown names are refused with what exists; a dry run changes nothing
    let out = secrets(&["rotate", "s3-secret-key", "--no-apply"], &sealed)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("`s3-secret-key` is not in the store")
            && text(&out).contains("database-password, smtp-relay-password"),
        "{}",
        text(&out)
    );
    let out = secrets(&["rotate", "database-password", "--dry-run"], &sealed)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("delivered to app1, db1"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read(store_dir.join("database-password.age")).unwrap(),
        before
    );

    // rotate --no-apply: a new value, the previous one kept (encrypted, 0600), no identity needed
    let out = secrets(&["rotate", "database-password", "--no-apply"], &sealed)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let new = store.get("database-password").unwrap().unwrap();
    assert_ne!(new, "first-db-pw");
    assert_eq!(new.len(), 43);
    assert_eq!(
        store.previous("database-password").unwrap().as_deref(),
        Some("first-db-pw")
    );
    assert_eq!(
        mode(&store_dir.join("database-password.previous.age")),
        0o600
    );
    assert!(!store_dir.join("database-password.previous").exists());
    assert!(!text(&out).contains(&new));

    // certificates: rotating one removes it and its partner, so the next apply issues new ones
    for n in ["tls-db1-key", "tls-db1-cert"] {
        secrets(&["set", n], &sealed)
            .write_stdin("-----BEGIN PEM-----")
            .assert()
            .success();
    }
    let out = secrets(&["rotate", "tls-db1-cert", "--no-apply"], &sealed)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        store.names().unwrap(),
        ["database-password", "smtp-relay-password"]
    );
    assert!(
        store_dir.join("tls-db1-key.previous.age").exists()
            && store_dir.join("tls-db1-cert.previous.age").exists()
    );

    // nothing in clear anywhere in the store
    for e in std::fs::read_dir(&store_dir).unwrap() {
        let p = e.unwrap().path();
        assert!(p.extension().is_some_and(|x| x == "age"), "{}", p.display());
    }
}

#[test]
fn each_secrets_command_teaches_with_an_example() {
    for sub in ["list", "rotate", "set", "seal", "keygen"] {
        let out = terroir().args(["secrets", sub, "--help"]).output().unwrap();
        assert!(out.status.success());
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(
            help.contains("Example: ") && help.contains(&format!("terroir secrets {sub} ")),
            "{sub}: {help}"
        );
    }
    let out = terroir().args(["secrets", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("rotate"));
}

fn on_host(host: &str, script: &str) -> std::process::Output {
    std::process::Command::new(root().join("tests/hosts/hostctl"))
        .args(["exec", host, "sh", "-c"])
        .arg(format!("cd / && {script}"))
        .output()
        .unwrap()
}

/// Connect to the application's database as its role, over TCP on the host.
fn connect(password: &str) -> (bool, String) {
    let out = on_host(
        "h1",
        &format!("PGPASSWORD='{password}' psql -h 127.0.0.1 -U crm -d crm -XAtc 'select 1'"),
    );
    (out.status.success(), text(&out))
}

#[test]
fn a_rotated_database_password_reaches_postgresql_and_the_application() {
    // the shared one-host platform, if it is up, reconfigured with this document's own store
    // (the packages are in): it is this test's from then on
    let hosts = TestHosts::take_over(common::deployments::ONE_HOST_PLATFORM, 1);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (key, recipient) = keygen(dir, "key.txt");
    let (archive, sha) = smoke_release(dir, "crm");
    let artifact = (format!("file://{}", archive.display()), sha);
    let doc = variant("baremetal.yaml", dir, "platform.yaml", |t| {
        without_backups(&with_recipients(
            &all_roles_on_one_host(&t, &hosts, "acme-crm", ("h1", "198.18.0.11"), &artifact),
            &[&recipient],
        ))
    });

    let out = terroir()
        .arg("apply")
        .arg(&doc)
        .env(IDENTITY_ENV, &key)
        .timeout(Duration::from_secs(1500))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let healthy = || match http("GET", "198.18.0.11:8080", "/healthz") {
        Ok((200, _)) => Ok(()),
        other => Err(format!("{other:?}")),
    };
    eventually(Duration::from_secs(60), "the app's health check", healthy);

    let store_dir = dir.join(".terroir/acme-crm/secrets");
    assert!(
        store_dir.join("database-password.age").is_file()
            && !store_dir.join("database-password").exists(),
        "the generated password is encrypted at rest"
    );
    let store = SecretStore::beside(&doc, "acme-crm")
        .with_recipients(std::slice::from_ref(&recipient))
        .with_identity(&key);
    let old = store.get("database-password").unwrap().unwrap();
    let app_file = "/etc/acme-crm/secrets/database-password";
    assert_eq!(
        String::from_utf8_lossy(&on_host("h1", &format!("cat {app_file}")).stdout),
        old
    );
    let (ok, why) = connect(&old);
    assert!(ok, "the generated password is the role's: {why}");

    let out = terroir()
        .args(["secrets", "rotate"])
        .arg(&doc)
        .arg("database-password")
        .env(IDENTITY_ENV, &key)
        .timeout(Duration::from_secs(900))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains(&old), "no value in the output");
    let new = store.get("database-password").unwrap().unwrap();
    assert_ne!(new, old);
    assert!(!text(&out).contains(&new), "no value in the output");
    assert_eq!(
        store.previous("database-password").unwrap().as_deref(),
        Some(old.as_str())
    );

    // the application's copy and the database host's changed; the role has the new password
    let got = on_host("h1", &format!("cat {app_file}"));
    assert_eq!(String::from_utf8_lossy(&got.stdout), new);
    // readable by the account that uses it only
    assert_eq!(mode_on_host(app_file), "600");
    let (ok, why) = connect(&new);
    assert!(ok, "the new password is accepted: {why}");
    let (ok, why) = connect(&old);
    assert!(
        !ok && why.contains("password authentication failed"),
        "the old password is refused: {why}"
    );
    // the application restarted with it and still reaches its database
    eventually(
        Duration::from_secs(60),
        "the app's health check after the rotation",
        healthy,
    );
    let out = terroir()
        .args(["--output", "json", "apply"])
        .arg(&doc)
        .env(IDENTITY_ENV, &key)
        .timeout(Duration::from_secs(900))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        json_of(&out)["changed"],
        0,
        "the rotation converged: {}",
        text(&out)
    );

    // an export decrypts the store and re-encrypts its values to the export's own recipient
    let (export_key, export_recipient) = keygen(dir, "export.key");
    let export = dir.join("export");
    let out = terroir()
        .arg("export")
        .arg(&doc)
        .arg("--to")
        .arg(&export)
        .args(["--recipient", &export_recipient])
        .env(IDENTITY_ENV, &key)
        .timeout(Duration::from_secs(900))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let identity = age::IdentityFile::from_file(export_key.display().to_string())
        .unwrap()
        .into_identities()
        .unwrap();
    let mut plain = Vec::new();
    let enc = std::fs::File::open(export.join("secrets/secrets.tar.age")).unwrap();
    std::io::Read::read_to_end(
        &mut age::Decryptor::new(enc)
            .unwrap()
            .decrypt(identity.iter().map(|i| i.as_ref()))
            .unwrap(),
        &mut plain,
    )
    .unwrap();
    let mut archive = tar::Archive::new(&plain[..]);
    let mut exported = std::collections::BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut value = String::new();
        let path = entry.path().unwrap().display().to_string();
        if path.starts_with("store/") {
            std::io::Read::read_to_string(&mut entry, &mut value).unwrap();
            exported.insert(path, value);
        }
    }
    assert_eq!(
        exported.get("store/database-password"),
        Some(&new),
        "{:?}",
        exported.keys().collect::<Vec<_>>()
    );
    assert!(
        !exported.keys().any(|k| k.contains("previous")),
        "previous values stay in the store"
    );
    drop(hosts);
}

fn mode_on_host(path: &str) -> String {
    String::from_utf8_lossy(&on_host("h1", &format!("stat -c %a {path}")).stdout)
        .trim()
        .to_owned()
}
