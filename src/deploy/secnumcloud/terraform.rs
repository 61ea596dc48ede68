//! Terraform or OpenTofu in the platform's working directory beside the document
//! (`.terroir/<platform>/terraform`, mode 0700): the rendered root module and the provider module
//! written there, the tool found and run, its plan, backend and outputs read back.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use super::CloudError;
use crate::deploy::Events;

/// The saved plan's file name in the working directory.
pub const PLAN_FILE: &str = "terroir.tfplan";

/// The Terraform or OpenTofu binary, and what it says it is.
#[derive(Debug, Clone)]
pub struct Tool {
    pub path: PathBuf,
    /// `tofu` or `terraform`.
    pub name: String,
    pub version: String,
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// `--tf-binary` when given, else `tofu`, else `terraform` from PATH.
pub fn find_tool(explicit: Option<&Path>) -> Result<Tool, CloudError> {
    let path = match explicit {
        Some(p) if p.components().count() > 1 => {
            if !p.is_file() {
                return Err(CloudError::NoSuchTool(p.to_owned()));
            }
            p.to_owned()
        }
        Some(p) => {
            on_path(&p.to_string_lossy()).ok_or_else(|| CloudError::NotOnPath(p.to_owned()))?
        }
        None => on_path("tofu")
            .or_else(|| on_path("terraform"))
            .ok_or(CloudError::NoTool)?,
    };
    let out = Command::new(&path)
        .args(["version", "-json"])
        .stdin(Stdio::null())
        .output()
        .map_err(|source| CloudError::Unrunnable {
            path: path.clone(),
            source,
        })?;
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let version = v["terraform_version"]
        .as_str()
        .unwrap_or("unknown")
        .to_owned();
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    let name = if text.contains("opentofu")
        || path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().contains("tofu"))
    {
        "tofu"
    } else {
        "terraform"
    };
    Ok(Tool {
        path,
        name: name.into(),
        version,
    })
}

/// `.terroir/<platform>/terraform` beside the document.
pub fn workdir(document: &Path, platform: &str) -> PathBuf {
    let base = document
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    base.join(".terroir").join(platform).join("terraform")
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> CloudError + '_ {
    move |source| CloudError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Write the rendered root module and the provider module into `dir`. Files terroir wrote
/// before are replaced; Terraform's own (`.terraform/`, the lock file) are kept.
pub fn prepare(
    dir: &Path,
    tree: &crate::pipeline::render::RenderedTree,
    provider: &str,
    modules: Option<&Path>,
    extra_vars: &Value,
) -> Result<(), CloudError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))?;
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let p = entry.map_err(io(dir))?.path();
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if p.is_file()
            && (name.ends_with(".tf")
                || name.ends_with(".tfvars")
                || name.ends_with(".tfvars.json")
                || name == "README.md"
                || name == PLAN_FILE)
        {
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
            return Err(CloudError::NoModule {
                dir: src.to_owned(),
                provider: provider.to_owned(),
            });
        }
        let dest = mods.join(provider);
        if dest.exists() {
            std::fs::remove_dir_all(&dest).map_err(io(&dest))?;
        }
        copy_dir(&from, &dest)?;
    } else if !mods.join(provider).is_dir() {
        return Err(CloudError::NoShippedModule(provider.to_owned()));
    }
    if extra_vars.as_object().is_some_and(|o| !o.is_empty()) {
        let p = dir.join("terroir.auto.tfvars.json");
        let text = serde_json::to_vec_pretty(extra_vars).map_err(|source| CloudError::Encode {
            path: p.clone(),
            source,
        })?;
        std::fs::write(&p, text).map_err(io(&p))?;
    }
    Ok(())
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

/// Runs the tool in the working directory, its lines told as they come (for people).
pub struct Runner<'a> {
    pub tool: &'a Tool,
    pub dir: &'a Path,
    pub events: &'a dyn Events,
}

impl Runner<'_> {
    /// Run `args`; stdout is returned, both streams are told as they come (stdout only when it is
    /// not captured).
    pub fn run(&self, args: &[String], capture: bool) -> Result<String, CloudError> {
        let what = args.first().cloned().unwrap_or_default();
        let name = self.tool.name.clone();
        self.events
            .note(&format!("[{name}] {name} {}", args.join(" ")));
        let mut child = Command::new(&self.tool.path)
            .args(args)
            .current_dir(self.dir)
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| CloudError::Unrunnable {
                path: self.tool.path.clone(),
                source,
            })?;
        let stderr = child.stderr.take();
        let events = self.events;
        let err_name = name.clone();
        let (out, err) = std::thread::scope(|scope| {
            let err_thread = scope.spawn(move || {
                let mut text = String::new();
                if let Some(s) = stderr {
                    for line in BufReader::new(s).lines().map_while(Result::ok) {
                        events.note(&format!("[{err_name}] {line}"));
                        text.push_str(&line);
                        text.push('\n');
                    }
                }
                text
            });
            let mut out = String::new();
            if let Some(s) = child.stdout.take() {
                for line in BufReader::new(s).lines().map_while(Result::ok) {
                    if !capture {
                        events.note(&format!("[{name}] {line}"));
                    }
                    out.push_str(&line);
                    out.push('\n');
                }
            }
            (out, err_thread.join().unwrap_or_default())
        });
        let status = child.wait().map_err(|source| CloudError::Unrunnable {
            path: self.tool.path.clone(),
            source,
        })?;
        if !status.success() {
            let detail = if err.trim().is_empty() {
                out.clone()
            } else {
                err
            };
            return Err(CloudError::Run {
                tool: name,
                what,
                status: status.to_string(),
                tail: crate::text::last_lines(detail.trim(), 15),
            });
        }
        Ok(out)
    }
}

/// The backend `init` configured: (type, config), from `.terraform/terraform.tfstate`.
pub fn configured_backend(dir: &Path) -> Option<(String, Value)> {
    let v: Value =
        serde_json::from_slice(&std::fs::read(dir.join(".terraform/terraform.tfstate")).ok()?)
            .ok()?;
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
                    let actions: Vec<&str> = rc
                        .pointer("/change/actions")?
                        .as_array()?
                        .iter()
                        .filter_map(Value::as_str)
                        .collect();
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
    let hosts = outputs
        .pointer("/hosts/value")
        .and_then(Value::as_object)
        .ok_or(CloudError::NoHostsOutput)?;
    let mut out = Vec::new();
    for (name, h) in hosts {
        let address = h["address"]
            .as_str()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| CloudError::HostWithoutAddress(name.clone()))?;
        let roles = h["roles"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
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
    fn hosts_are_read_from_the_outputs() {
        let o: Value = serde_json::json!({"hosts": {"value": {"db1": {"address": "198.18.0.11", "roles": ["database"]}, "app1": {"address": "198.18.0.13", "roles": ["app"]}}}});
        let h = hosts_output(&o).unwrap();
        assert_eq!(
            h[0],
            ("app1".into(), "198.18.0.13".into(), vec!["app".into()])
        );
        assert!(
            hosts_output(&serde_json::json!({}))
                .unwrap_err()
                .to_string()
                .contains("no `hosts`")
        );
    }
}
