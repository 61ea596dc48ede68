//! Helpers shared by the integration tests.
#![allow(clippy::unwrap_used)]
#![allow(dead_code)]

pub mod hosts;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn example(name: &str) -> PathBuf {
    root().join("examples").join(name)
}

pub fn terroir() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("terroir").expect("the terroir binary is built");
    cmd.env_remove("TERROIR_OUTPUT").env_remove("TERROIR_BLUEPRINTS").env("NO_COLOR", "1");
    cmd
}

/// Render `doc` into a fresh directory inside `parent` with the real binary.
pub fn render(doc: &Path, parent: &Path, leaf: &str) -> PathBuf {
    let out = parent.join(leaf);
    terroir().arg("render").arg(doc).arg("--out").arg(&out).assert().success();
    out
}

/// Every file below `dir`, by relative path.
pub fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("readable dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).expect("inside").to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).expect("readable file"));
            }
        }
    }
    out
}

/// Write a variant of an example with `edit` applied to its text.
pub fn variant(example_name: &str, dir: &Path, file: &str, edit: impl Fn(String) -> String) -> PathBuf {
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
    use std::os::unix::fs::PermissionsExt;
    let stage = dir.join("release");
    std::fs::create_dir_all(stage.join("bin")).unwrap();
    std::fs::copy(assert_cmd::cargo::cargo_bin("terroir"), stage.join("bin/terroir")).unwrap();
    let launcher = stage.join("bin").join(command);
    std::fs::write(&launcher, "#!/bin/sh\nexec \"$(dirname \"$0\")/terroir\" smoke-app\n").unwrap();
    std::fs::set_permissions(&launcher, std::fs::Permissions::from_mode(0o755)).unwrap();
    let archive = dir.join("smoke-app.tar.gz");
    let ok = std::process::Command::new("tar").arg("-czf").arg(&archive).arg("-C").arg(&stage).arg("bin").status().unwrap();
    assert!(ok.success());
    let sha = terroir::render::sha256_hex(&std::fs::read(&archive).unwrap());
    (archive, sha)
}
