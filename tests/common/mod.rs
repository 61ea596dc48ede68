//! Helpers shared by the integration tests.
#![allow(clippy::unwrap_used)]
#![allow(dead_code)]

pub mod deployments;
pub mod hosts;
pub mod pg;
pub mod relays;
pub mod s3;
pub mod tls;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn example(name: &str) -> PathBuf {
    root().join("examples").join(name)
}

/// `terroir --output json apply` of every document at once, each checked to succeed; their
/// outputs in the documents' order.
pub fn apply_side_by_side(docs: &[&Path]) -> Vec<std::process::Output> {
    let applies: Vec<std::process::Output> = std::thread::scope(|s| {
        let runs: Vec<_> = docs
            .iter()
            .map(|doc| {
                s.spawn(move || {
                    terroir()
                        .arg("apply")
                        .arg(doc)
                        .args(["--output", "json"])
                        .timeout(std::time::Duration::from_secs(1500))
                        .output()
                        .unwrap()
                })
            })
            .collect();
        runs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (doc, out) in docs.iter().zip(&applies) {
        assert!(
            out.status.success(),
            "apply {}: {}\n{}",
            doc.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    applies
}

pub fn terroir() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("terroir").expect("the terroir binary is built");
    cmd.env_remove("TERROIR_OUTPUT")
        .env_remove("TERROIR_BLUEPRINTS")
        .env("NO_COLOR", "1");
    cmd
}

/// Render `doc` into a fresh directory inside `parent` with the real binary.
pub fn render(doc: &Path, parent: &Path, leaf: &str) -> PathBuf {
    let out = parent.join(leaf);
    terroir()
        .arg("render")
        .arg(doc)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    out
}

/// Every file below `dir`, by relative path.
/// A free TCP port on loopback, for a server the test starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The YAML documents of a rendered manifest file.
pub fn docs(path: &Path) -> Vec<serde_json::Value> {
    serde_saphyr::from_multiple(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The rendered object of that kind and name.
pub fn named<'a>(docs: &'a [serde_json::Value], kind: &str, name: &str) -> &'a serde_json::Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind} {name} is rendered"))
}

pub fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("readable dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(dir)
                    .expect("inside")
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read(&p).expect("readable file"));
            }
        }
    }
    out
}

/// Write a variant of an example with `edit` applied to its text.
pub fn variant(
    example_name: &str,
    dir: &Path,
    file: &str,
    edit: impl Fn(String) -> String,
) -> PathBuf {
    let text = std::fs::read_to_string(example(example_name)).expect("example readable");
    let edited = edit(text.clone());
    assert_ne!(edited, text, "the edit must change the example");
    let path = dir.join(file);
    std::fs::write(&path, edited).expect("writable");
    path
}

/// The smoke application as a release archive in `dir`: `bin/<command>` starts `terroir
/// smoke-app`. Returns the archive's path and SHA-256.
pub fn smoke_release(dir: &Path, command: &str) -> (PathBuf, String) {
    let (cached, sha) = cached_smoke_release(command);
    let archive = dir.join("smoke-app.tar.gz");
    std::fs::copy(&cached, &archive).unwrap();
    (archive, sha)
}

/// Packing the debug binary costs seconds each time, so each test process packs it once per
/// build of the binary (the build's size and time name the archive), beside the build.
fn cached_smoke_release(command: &str) -> (PathBuf, String) {
    use std::os::unix::fs::PermissionsExt;
    let bin = assert_cmd::cargo::cargo_bin("terroir");
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("smoke-release");
    let name = format!("{command}-{}", build_identity(&bin));
    let (archive, sha_file) = (
        cache.join(format!("{name}.tar.gz")),
        cache.join(format!("{name}.sha256")),
    );
    if let Ok(sha) = std::fs::read_to_string(&sha_file) {
        return (archive, sha);
    }
    // staged under a name of this process's own, then renamed: test processes run side by side
    let stage = cache.join(format!("{name}.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(stage.join("bin")).unwrap();
    // no symbols: a third smaller, and the application runs the same
    let ok = std::process::Command::new("strip")
        .arg("-o")
        .arg(stage.join("bin/terroir"))
        .arg(&bin)
        .status()
        .unwrap();
    assert!(ok.success(), "strip {}", bin.display());
    let launcher = stage.join("bin").join(command);
    std::fs::write(
        &launcher,
        "#!/bin/sh\nexec \"$(dirname \"$0\")/terroir\" smoke-app\n",
    )
    .unwrap();
    std::fs::set_permissions(&launcher, std::fs::Permissions::from_mode(0o755)).unwrap();
    let packed = stage.join("smoke-app.tar.gz");
    let ok = std::process::Command::new("tar")
        .arg("-I")
        .arg("gzip -1")
        .arg("-cf")
        .arg(&packed)
        .arg("-C")
        .arg(&stage)
        .arg("bin")
        .status()
        .unwrap();
    assert!(ok.success());
    let sha = terroir::text::sha256_hex(&std::fs::read(&packed).unwrap());
    std::fs::rename(&packed, &archive).unwrap();
    std::fs::write(stage.join("sha256"), &sha).unwrap();
    std::fs::rename(stage.join("sha256"), &sha_file).unwrap();
    let _ = std::fs::remove_dir_all(&stage);
    (archive, sha)
}

/// Size and modification time of a built file: changes with every build of it.
pub fn build_identity(path: &Path) -> String {
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mtime = meta
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    format!(
        "{}-{}.{}",
        meta.len(),
        mtime.as_secs(),
        mtime.subsec_nanos()
    )
}

/// The bare-metal example as a one-host platform: every role on `address` (host `host`), the
/// test hosts' SSH key and known hosts, the smoke application as its release (`artifact`: URL
/// and SHA-256), and the platform named `name`.
pub fn all_roles_on_one_host(
    t: &str,
    hosts: &hosts::TestHosts,
    name: &str,
    (host, address): (&str, &str),
    artifact: &(String, String),
) -> String {
    let start = t.find("      hosts:\n").unwrap();
    let end = t.find("  components:\n").unwrap();
    let t = format!(
        "{}      hosts:\n        - name: {host}\n          address: {address}\n          roles: [database, mta, monitoring, app]\n{}",
        &t[..start],
        &t[end..]
    );
    on_test_hosts(&without_public_name(&t), hosts, artifact)
        .replace("  name: acme-crm\n", &format!("  name: {name}\n"))
}

/// An acme example (baremetal.yaml, baremetal-ha.yaml) on the test hosts: their SSH key and
/// known hosts, and `artifact` (URL and SHA-256) as the application's release.
pub fn on_test_hosts(t: &str, hosts: &hosts::TestHosts, artifact: &(String, String)) -> String {
    t.replace(
        "identityFile: ~/.ssh/terroir_ed25519",
        &format!("identityFile: {}", hosts.identity().display()),
    )
    .replace(
        "knownHostsFile: ./known_hosts",
        &format!("knownHostsFile: {}", hosts.known_hosts().display()),
    )
    .replace(
        "url: https://releases.acme.example.fr/crm/crm-4.2.1-linux-amd64.tar.gz",
        &format!("url: {}", artifact.0),
    )
    .replace(
        "sha256: 4f1e1c0d8a5c9d3b2e7f6a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d",
        &format!("sha256: {}", artifact.1),
    )
}

/// The bare-metal example with every role but the database carried by two hosts: db1
/// (198.18.0.11, database), web1 and web2 (198.18.0.12 and .13, mta, monitoring and app).
pub fn two_hosts_per_role(t: &str) -> String {
    let three = "        - name: ops1\n          address: 198.18.0.12\n          roles: [mta, monitoring]\n        - name: app1\n          address: 198.18.0.13\n          roles: [app]\n";
    assert!(t.contains(three), "the example's hosts");
    t.replace(
        three,
        "        - name: web1\n          address: 198.18.0.12\n          roles: [mta, monitoring, app]\n        - name: web2\n          address: 198.18.0.13\n          roles: [mta, monitoring, app]\n",
    )
}

/// No public name and no ACME CA: `apply` would ask the named CA (the example names HARICA) for
/// a certificate, and test hosts reach no public CA (tests/baremetal/acme.rs runs its own).
pub fn without_public_name(t: &str) -> String {
    let start = t
        .find("    acmeCa:\n")
        .expect("the example names an ACME CA");
    let end = start
        + t[start..].find("      country: GR\n").expect("its country")
        + "      country: GR\n".len();
    let t = format!("{}{}", &t[..start], &t[end..]);
    let line = t
        .find("      publicHost: ")
        .expect("the example has a public host");
    let eol = line + t[line..].find('\n').expect("a line") + 1;
    format!("{}{}", &t[..line], &t[eol..])
}

/// Backups off: they need an S3 endpoint the test hosts can reach (tests/baremetal/backups.rs has one).
pub fn without_backups(t: &str) -> String {
    t.replace("    backups:\n", "    backups:\n      enabled: false\n")
}

/// Poll `check` until it holds or `limit` passes: waits on a condition, never on a fixed delay.
pub fn eventually(
    limit: std::time::Duration,
    what: &str,
    mut check: impl FnMut() -> Result<(), String>,
) {
    let start = std::time::Instant::now();
    loop {
        match check() {
            Ok(()) => return,
            Err(e) if start.elapsed() > limit => {
                panic!("{what} did not happen within {limit:?}: {e}")
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(300)),
        }
    }
}

/// One HTTP/1.0 request (from this machine: the app port of the test hosts is open): the status
/// and the body.
pub fn http(method: &str, address: &str, path: &str) -> Result<(u16, String), String> {
    use std::io::{Read, Write};
    use std::time::Duration;
    let mut stream =
        std::net::TcpStream::connect_timeout(&address.parse().unwrap(), Duration::from_secs(5))
            .map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: app\r\nContent-Length: 0\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| response.clone())?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((code, body))
}

/// Every file below `dir` with its bytes.
pub fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}
