//! SecNumCloud targets: provision with Terraform or OpenTofu behind the policy gate, then hand
//! the created VMs to the bare-metal driver, or the cluster's kubeconfig to the Kubernetes one.
//!
//! One working directory per platform, beside the document (`.terroir/<platform>/terraform`,
//! mode 0700): the rendered root module, the provider module, `init`, `plan -out`, `show -json`,
//! the gate on that plan and on the backend `init` configured, then `apply` of exactly the saved
//! plan and `output -json`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use include_dir::{Dir, include_dir};
use serde_json::Value;

/// The provider modules shipped with terroir (`terraform/modules/` of the source tree).
pub static MODULES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/terraform/modules");

/// The saved plan's file name in the working directory.
pub const PLAN_FILE: &str = "terroir.tfplan";

#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Failed(String),
}

/// The Terraform or OpenTofu binary, and what it says it is.
#[derive(Debug, Clone)]
pub struct Tool {
    pub path: PathBuf,
    /// `tofu` or `terraform`.
    pub name: String,
    pub version: String,
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file()))
}

/// `--tf-binary` when given, else `tofu`, else `terraform` from PATH.
pub fn find_tool(explicit: Option<&Path>) -> Result<Tool, CloudError> {
    let path = match explicit {
        Some(p) if p.components().count() > 1 => {
            if !p.is_file() {
                return Err(CloudError::Input(format!("--tf-binary {}: no such file", p.display())));
            }
            p.to_owned()
        }
        Some(p) => on_path(&p.to_string_lossy()).ok_or_else(|| CloudError::Input(format!("--tf-binary {}: not found on PATH", p.display())))?,
        None => on_path("tofu").or_else(|| on_path("terraform")).ok_or_else(|| {
            CloudError::Input("neither `tofu` nor `terraform` is on PATH: install OpenTofu (https://opentofu.org) or Terraform, or name one with --tf-binary".into())
        })?,
    };
    let out = Command::new(&path)
        .args(["version", "-json"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| CloudError::Input(format!("{}: cannot run it: {e}", path.display())))?;
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let version = v["terraform_version"].as_str().unwrap_or("unknown").to_owned();
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    let name = if text.contains("opentofu") || path.file_name().is_some_and(|n| n.to_string_lossy().contains("tofu")) { "tofu" } else { "terraform" };
    Ok(Tool { path, name: name.into(), version })
}

/// `.terroir/<platform>/terraform` beside the document.
pub fn workdir(document: &Path, platform: &str) -> PathBuf {
    let base = document.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    base.join(".terroir").join(platform).join("terraform")
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> CloudError + '_ {
    move |e| CloudError::Failed(format!("{}: {e}", path.display()))
}

/// Write the rendered root module and the provider module into `dir`. Files terroir wrote
/// before are replaced; Terraform's own (`.terraform/`, the lock file) are kept.
pub fn prepare(dir: &Path, tree: &crate::pipeline::render::RenderedTree, provider: &str, modules: Option<&Path>, extra_vars: &Value) -> Result<(), CloudError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io(dir))?;
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let p = entry.map_err(io(dir))?.path();
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if p.is_file() && (name.ends_with(".tf") || name.ends_with(".tfvars") || name.ends_with(".tfvars.json") || name == "README.md" || name == PLAN_FILE) {
            std::fs::remove_file(&p).map_err(io(&p))?;
        }
    }
    let mods = dir.join("modules");
    if mods.exists() {
        std::fs::remove_dir_all(&mods).map_err(io(&mods))?;
    }
    for (path, content) in &tree.files {
        if let Some(rel) = path.strip_prefix("terraform/") {
            let dest = dir.join(rel);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            std::fs::write(&dest, content).map_err(io(&dest))?;
        }
    }
    // the tree holds the shipped module; --modules replaces it
    if let Some(src) = modules {
        let from = src.join(provider);
        if !from.is_dir() {
            return Err(CloudError::Input(format!("--modules {}: no `{provider}` module directory in it", src.display())));
        }
        let dest = mods.join(provider);
        if dest.exists() {
            std::fs::remove_dir_all(&dest).map_err(io(&dest))?;
        }
        copy_dir(&from, &dest)?;
    } else if !mods.join(provider).is_dir() {
        return Err(CloudError::Input(format!("no Terraform module for provider `{provider}` in the rendered tree")));
    }
    if extra_vars.as_object().is_some_and(|o| !o.is_empty()) {
        let p = dir.join("terroir.auto.tfvars.json");
        std::fs::write(&p, serde_json::to_vec_pretty(extra_vars).unwrap_or_default()).map_err(io(&p))?;
    }
    Ok(())
}

/// The shipped module of `provider`: (path inside the module, content), sorted.
pub fn module_files(provider: &str) -> Vec<(String, &'static [u8])> {
    let Some(d) = MODULES.get_dir(provider) else { return Vec::new() };
    let mut out: Vec<(String, &'static [u8])> =
        files_of(d).into_iter().map(|f| (f.path().strip_prefix(provider).unwrap_or(f.path()).to_string_lossy().into_owned(), f.contents())).collect();
    out.sort();
    out
}

fn files_of<'a>(d: &'a Dir<'a>) -> Vec<&'a include_dir::File<'a>> {
    let mut out: Vec<&include_dir::File> = d.files().collect();
    for sub in d.dirs() {
        out.extend(files_of(sub));
    }
    out
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), CloudError> {
    std::fs::create_dir_all(to).map_err(io(to))?;
    for entry in std::fs::read_dir(from).map_err(io(from))? {
        let p = entry.map_err(io(from))?.path();
        let name = p.file_name().unwrap_or_default();
        if name == ".terraform" {
            continue;
        }
        if p.is_dir() {
            copy_dir(&p, &to.join(name))?;
        } else {
            std::fs::copy(&p, to.join(name)).map_err(io(&p))?;
        }
    }
    Ok(())
}

/// Runs the tool in the working directory, its lines shown live (prefixed) unless quiet.
pub struct Runner<'a> {
    pub tool: &'a Tool,
    pub dir: &'a Path,
    pub quiet: bool,
}

impl Runner<'_> {
    /// Run `args`; stdout is returned, both streams are shown as they come.
    pub fn run(&self, args: &[String], capture: bool) -> Result<String, CloudError> {
        let what = args.first().cloned().unwrap_or_default();
        if !self.quiet {
            eprintln!("[{}] {} {}", self.tool.name, self.tool.name, args.join(" "));
        }
        let mut child = Command::new(&self.tool.path)
            .args(args)
            .current_dir(self.dir)
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| CloudError::Failed(format!("cannot run {}: {e}", self.tool.path.display())))?;
        let stderr = child.stderr.take();
        let quiet = self.quiet;
        let name = self.tool.name.clone();
        let err_thread = std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(s) = stderr {
                for line in BufReader::new(s).lines().map_while(Result::ok) {
                    if !quiet {
                        eprintln!("[{name}] {line}");
                    }
                    text.push_str(&line);
                    text.push('\n');
                }
            }
            text
        });
        let mut out = String::new();
        if let Some(s) = child.stdout.take() {
            for line in BufReader::new(s).lines().map_while(Result::ok) {
                if !capture && !self.quiet {
                    eprintln!("[{}] {line}", self.tool.name);
                }
                out.push_str(&line);
                out.push('\n');
            }
        }
        let status = child.wait().map_err(|e| CloudError::Failed(e.to_string()))?;
        let err = err_thread.join().unwrap_or_default();
        if !status.success() {
            let detail = if err.trim().is_empty() { out.clone() } else { err };
            return Err(CloudError::Failed(format!("`{} {what}` failed ({status}):\n{}", self.tool.name, crate::text::last_lines(detail.trim(), 15))));
        }
        Ok(out)
    }
}

/// The backend `init` configured: (type, config), from `.terraform/terraform.tfstate`.
pub fn configured_backend(dir: &Path) -> Option<(String, Value)> {
    let v: Value = serde_json::from_slice(&std::fs::read(dir.join(".terraform/terraform.tfstate")).ok()?).ok()?;
    let b = v.get("backend")?;
    Some((b["type"].as_str()?.to_owned(), b["config"].clone()))
}

/// What the plan would do, resource by resource: (address, actions).
pub fn changes(plan: &Value) -> Vec<(String, String)> {
    plan["resource_changes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|rc| {
                    let actions: Vec<&str> = rc.pointer("/change/actions")?.as_array()?.iter().filter_map(Value::as_str).collect();
                    if actions == ["no-op"] || actions == ["read"] {
                        return None;
                    }
                    Some((rc["address"].as_str()?.to_owned(), actions.join("+")))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The VMs of `terraform output -json`'s `hosts`: (name, address, roles).
pub fn hosts_output(outputs: &Value) -> Result<Vec<(String, String, Vec<String>)>, CloudError> {
    let hosts = outputs.pointer("/hosts/value").and_then(Value::as_object).ok_or_else(|| {
        CloudError::Failed("the Terraform outputs have no `hosts` map: the provider module must output every VM with its address and roles".into())
    })?;
    let mut out = Vec::new();
    for (name, h) in hosts {
        let address = h["address"].as_str().filter(|a| !a.is_empty()).ok_or_else(|| CloudError::Failed(format!("output hosts[\"{name}\"] has no address")))?;
        let roles = h["roles"].as_array().map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect()).unwrap_or_default();
        out.push((name.clone(), address.to_owned(), roles));
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_provider_has_a_shipped_module_with_the_common_outputs() {
        for p in ["outscale", "ovhcloud", "cloud-temple", "s3ns"] {
            let d = MODULES.get_dir(p).unwrap_or_else(|| panic!("module {p}"));
            let outputs = d.get_file(format!("{p}/outputs.tf")).unwrap().contents_utf8().unwrap();
            for o in ["hosts", "kubeconfig", "backup_bucket"] {
                assert!(outputs.contains(&format!("output \"{o}\"")), "{p} outputs {o}");
            }
        }
    }

    #[test]
    fn hosts_are_read_from_the_outputs() {
        let o: Value = serde_json::json!({"hosts": {"value": {"db1": {"address": "198.18.0.11", "roles": ["database"]}, "app1": {"address": "198.18.0.13", "roles": ["app"]}}}});
        let h = hosts_output(&o).unwrap();
        assert_eq!(h[0], ("app1".into(), "198.18.0.13".into(), vec!["app".into()]));
        assert!(hosts_output(&serde_json::json!({})).unwrap_err().to_string().contains("no `hosts`"));
    }
}
