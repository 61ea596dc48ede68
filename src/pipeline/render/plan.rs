//! The bare-metal plan: for every host, the ordered steps that converge it (packages, users,
//! directories, files with their SHA-256, services, firewall). Blueprints write each host's steps
//! as YAML (`baremetal/host/plan.yaml.tera`); they are checked here and gathered into
//! `baremetal/plan.json`, the contract the bare-metal driver applies.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{RenderError, RenderedTree};
use crate::pipeline::resolve::ResolvedPlatform;
use crate::text::sha256_hex;

/// One host's steps as the blueprint writes them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct HostSteps {
    #[serde(default)]
    packages: Vec<String>,
    #[serde(default)]
    users: Vec<User>,
    #[serde(default)]
    directories: Vec<Directory>,
    #[serde(default)]
    files: Vec<FileStep>,
    #[serde(default)]
    secrets: Vec<SecretFile>,
    #[serde(default)]
    artifact: Option<ArtifactStep>,
    #[serde(default)]
    commands: Vec<CommandStep>,
    #[serde(default)]
    services: Vec<Service>,
    #[serde(default)]
    firewall: Vec<FirewallRule>,
    #[serde(default)]
    rollout: Option<Rollout>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct User {
    pub name: String,
    #[serde(default)]
    pub home: Option<String>,
    #[serde(default = "yes")]
    pub system: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Directory {
    pub path: String,
    #[serde(default = "root")]
    pub owner: String,
    #[serde(default = "root")]
    pub group: String,
    #[serde(default = "dir_mode")]
    pub mode: String,
}

fn root() -> String {
    "root".into()
}
fn dir_mode() -> String {
    "0755".into()
}
fn file_mode() -> String {
    "0644".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileStep {
    /// Rendered file, relative to `baremetal/hosts/<host>/`.
    pub source: String,
    /// Absolute destination on the host.
    pub dest: String,
    #[serde(default = "root")]
    pub owner: String,
    #[serde(default = "root")]
    pub group: String,
    #[serde(default = "file_mode")]
    pub mode: String,
    /// Services restarted when this file changes.
    #[serde(default)]
    pub restarts: Vec<String>,
    /// Filled in from the rendered tree.
    #[serde(default)]
    pub sha256: String,
}

/// A secret from the operator's secret store, written to a file on the host. Its value is never
/// part of the rendered tree or the plan: only its name.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretFile {
    /// Secret name in the store (generated on first use).
    pub secret: String,
    pub dest: String,
    #[serde(default = "root")]
    pub owner: String,
    #[serde(default = "root")]
    pub group: String,
    #[serde(default = "secret_mode")]
    pub mode: String,
    #[serde(default)]
    pub restarts: Vec<String>,
    /// Given by the user (`terroir secrets set`), never generated: a missing value fails the
    /// step instead of inventing one (an S3 account's key, for instance).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub provided: bool,
}

fn secret_mode() -> String {
    "0600".into()
}

/// A release archive (tar.gz) pinned by SHA-256, unpacked into `dir/releases/<sha256>` and made
/// current by switching the `dir/current` link atomically.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ArtifactStep {
    pub url: String,
    pub sha256: String,
    pub dir: String,
    #[serde(default)]
    pub restarts: Vec<String>,
    /// Releases kept in `dir/releases`, the running one included.
    #[serde(default = "default_keep")]
    pub keep: u32,
}

fn default_keep() -> u32 {
    3
}

/// A command that makes something only the host can make (a key that never leaves it, a
/// database role), run only when its check says it is missing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CommandStep {
    pub name: String,
    /// Absolute path whose existence means the command already ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creates: Option<String>,
    /// Shell check, run as root: exit 0 means the command already ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unless: Option<String>,
    /// Run right after this service is started (for commands that need it running).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Shell command, run as root.
    pub run: String,
}

impl CommandStep {
    /// The shell check that exits 0 when the command has already done its work.
    pub fn done_check(&self) -> String {
        match (&self.creates, &self.unless) {
            (Some(path), _) => format!("[ -e '{}' ]", path.replace('\'', r"'\''")),
            (None, Some(check)) => check.clone(),
            (None, None) => "false".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Service {
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// A configuration change reloads the running service instead of restarting it (Patroni:
    /// a restart would stop the primary).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reload: bool,
}

/// A service that an apply restarts one host at a time (a role carried by several hosts): what
/// restarts it is applied on one host, its health checked there, then on the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Rollout {
    pub service: String,
    /// Healthy when `GET http://127.0.0.1:{health_port}{health_path}`, asked on the host,
    /// answers 2xx.
    pub health_port: u16,
    pub health_path: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FirewallRule {
    pub port: u16,
    #[serde(default = "tcp")]
    pub proto: String,
    /// Source addresses (CIDR or address); anywhere when empty.
    #[serde(default)]
    pub from: Vec<String>,
    pub service: String,
}

fn tcp() -> String {
    "tcp".into()
}

/// One step of the plan, in the order it is applied.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Step {
    Packages {
        id: String,
        names: Vec<String>,
    },
    User {
        id: String,
        #[serde(flatten)]
        user: User,
    },
    Directory {
        id: String,
        #[serde(flatten)]
        directory: Directory,
    },
    File {
        id: String,
        #[serde(flatten)]
        file: FileStep,
    },
    Secret {
        id: String,
        #[serde(flatten)]
        secret: SecretFile,
    },
    Artifact {
        id: String,
        #[serde(flatten)]
        artifact: ArtifactStep,
    },
    Command {
        id: String,
        #[serde(flatten)]
        command: CommandStep,
    },
    Service {
        id: String,
        #[serde(flatten)]
        service: Service,
    },
    Firewall {
        id: String,
        rules: Vec<FirewallRule>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostPlan {
    pub name: String,
    pub address: String,
    pub roles: Vec<crate::document::Role>,
    pub steps: Vec<Step>,
    /// Set when this host's service is rolled out one host at a time with others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub platform: String,
    pub blueprint: String,
    pub blueprint_version: String,
    pub package_mirror: String,
    pub hosts: Vec<HostPlan>,
}

impl Plan {
    /// `baremetal/plan.json` as the tree holds it.
    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("a plan serializes");
        bytes.push(b'\n');
        bytes
    }

    /// The plan a bare-metal render wrote into its tree (`baremetal/plan.json`).
    pub fn from_tree(tree: &RenderedTree) -> Result<Plan, NoPlan> {
        tree.files
            .get("baremetal/plan.json")
            .and_then(|b| serde_json::from_slice(b).ok())
            .ok_or(NoPlan)
    }
}

/// A rendered tree without a bare-metal plan: the document does not target hosts.
#[derive(Debug, thiserror::Error)]
#[error("the rendered tree has no valid baremetal/plan.json")]
pub struct NoPlan;

/// The plan from each host's steps as the blueprint rendered them, checked against the tree.
pub fn build(
    resolved: &ResolvedPlatform,
    host_steps: &[(String, String)],
    tree: &RenderedTree,
) -> Result<Plan, RenderError> {
    let mut hosts = Vec::new();
    for (host_name, text) in host_steps {
        let where_ = format!(
            "blueprint {} template baremetal/host/plan.yaml.tera for host {host_name}",
            resolved.blueprint.name
        );
        let steps: HostSteps = if text.trim().is_empty() {
            serde_saphyr::from_str("{}").map_err(|e| RenderError::Plan(e.to_string()))?
        } else {
            serde_saphyr::from_str(text)
                .map_err(|e| RenderError::Plan(format!("{where_}: {}", e.without_snippet())))?
        };
        let host = resolved
            .hosts
            .iter()
            .find(|h| &h.name == host_name)
            .expect("plans are rendered per resolved host");
        let mut out = Vec::new();
        if !steps.packages.is_empty() {
            let names: BTreeSet<String> = steps.packages.into_iter().collect();
            out.push(Step::Packages {
                id: "packages".into(),
                names: names.into_iter().collect(),
            });
        }
        for user in steps.users {
            out.push(Step::User {
                id: format!("user:{}", user.name),
                user,
            });
        }
        for directory in steps.directories {
            out.push(Step::Directory {
                id: format!("directory:{}", directory.path),
                directory,
            });
        }
        let services: BTreeSet<&str> = steps.services.iter().map(|s| s.name.as_str()).collect();
        if let Some(r) = &steps.rollout
            && (!services.contains(r.service.as_str()) || !r.health_path.starts_with('/'))
        {
            return Err(RenderError::Plan(format!(
                "{where_}: the rollout names `{}` and `{}`: a service of this host and an absolute health path are expected",
                r.service, r.health_path
            )));
        }
        let rollout = steps.rollout.clone();
        let mut dests = BTreeSet::new();
        for mut file in steps.files {
            let key = format!("baremetal/hosts/{host_name}/{}", file.source);
            let content = tree.files.get(&key).ok_or_else(|| {
                RenderError::Plan(format!("{where_}: file step for {} names source `{}`, which was not rendered for this host", file.dest, file.source))
            })?;
            if !file.dest.starts_with('/') {
                return Err(RenderError::Plan(format!(
                    "{where_}: destination `{}` is not an absolute path",
                    file.dest
                )));
            }
            if !dests.insert(file.dest.clone()) {
                return Err(RenderError::Plan(format!(
                    "{where_}: destination `{}` is written twice",
                    file.dest
                )));
            }
            for s in &file.restarts {
                if !services.contains(s.as_str()) {
                    return Err(RenderError::Plan(format!(
                        "{where_}: file {} restarts `{s}`, which is not a service of this host",
                        file.dest
                    )));
                }
            }
            file.sha256 = sha256_hex(content);
            out.push(Step::File {
                id: format!("file:{}", file.dest),
                file,
            });
        }
        for secret in steps.secrets {
            if !secret.dest.starts_with('/') || !dests.insert(secret.dest.clone()) {
                return Err(RenderError::Plan(format!(
                    "{where_}: secret destination `{}` must be absolute and written once",
                    secret.dest
                )));
            }
            for s in &secret.restarts {
                if !services.contains(s.as_str()) {
                    return Err(RenderError::Plan(format!(
                        "{where_}: secret {} restarts `{s}`, which is not a service of this host",
                        secret.dest
                    )));
                }
            }
            out.push(Step::Secret {
                id: format!("secret:{}", secret.dest),
                secret,
            });
        }
        if let Some(artifact) = steps.artifact {
            if artifact.sha256.len() != 64 || !artifact.dir.starts_with('/') {
                return Err(RenderError::Plan(format!(
                    "{where_}: the artifact needs a 64-digit sha256 and an absolute dir"
                )));
            }
            out.push(Step::Artifact {
                id: format!("artifact:{}", artifact.dir),
                artifact,
            });
        }
        let mut after: Vec<CommandStep> = Vec::new();
        for command in steps.commands {
            match (&command.creates, &command.unless) {
                (Some(p), None) if p.starts_with('/') => {}
                (None, Some(_)) => {}
                _ => {
                    return Err(RenderError::Plan(format!(
                        "{where_}: command `{}` needs exactly one of `creates` (an absolute path) or `unless` (a check)",
                        command.name
                    )));
                }
            }
            if let Some(svc) = &command.after {
                if !services.contains(svc.as_str()) {
                    return Err(RenderError::Plan(format!(
                        "{where_}: command `{}` runs after `{svc}`, which is not a service of this host",
                        command.name
                    )));
                }
                after.push(command);
            } else {
                out.push(Step::Command {
                    id: format!("command:{}", command.name),
                    command,
                });
            }
        }
        for service in steps.services {
            let name = service.name.clone();
            out.push(Step::Service {
                id: format!("service:{name}"),
                service,
            });
            for command in after
                .iter()
                .filter(|c| c.after.as_deref() == Some(name.as_str()))
            {
                out.push(Step::Command {
                    id: format!("command:{}", command.name),
                    command: command.clone(),
                });
            }
        }
        if !steps.firewall.is_empty() {
            out.push(Step::Firewall {
                id: "firewall".into(),
                rules: steps.firewall,
            });
        }
        hosts.push(HostPlan {
            name: host.name.clone(),
            address: host.address.clone(),
            roles: host.roles.clone(),
            steps: out,
            rollout,
        });
    }
    let plan = Plan {
        platform: resolved.platform.name.clone(),
        blueprint: resolved.blueprint.name.clone(),
        blueprint_version: resolved.blueprint.version.clone(),
        package_mirror: resolved
            .target
            .baremetal()
            .map(|b| b.package_mirror.clone())
            .unwrap_or_default(),
        hosts,
    };
    Ok(plan)
}
