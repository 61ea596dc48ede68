//! The runbooks' inventory: what the deployment holds and where, read from what is applied (the
//! bare-metal plan, `baremetal/plan.json`) and from what the export reads
//! ([`crate::reversibility::inventory`]), never written again by hand. Inserted into the template
//! context as `inventory` for the runbooks, which are rendered after the plan is built.

use std::collections::BTreeMap;

use serde::Serialize;

use super::RenderedTree;
use super::plan::{Plan, Step};
use crate::document::Role;
use crate::pipeline::resolve::ResolvedPlatform;
use crate::reversibility::inventory::{ExportRead, ReadKind, export_reads};

/// The `inventory` object of the runbooks' context.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    /// Host by host, in the plan's order (empty on Kubernetes).
    pub hosts: Vec<HostInventory>,
    /// Every secret of terroir's store the plan writes to a host, by name, with each copy.
    pub secrets: Vec<SecretInventory>,
    /// What the hosts hold that neither the plan nor the export names, host by host.
    pub left: Vec<LeftInPlace>,
    /// The secrets the operator puts on the hosts (`left` of kind `provisioned`).
    pub provisioned: Vec<LeftInPlace>,
    /// On Kubernetes: what the rendered manifests claim and read.
    pub cluster: ClusterInventory,
}

/// The volumes, Secrets and ConfigMaps of the rendered manifests (`kubernetes/`), as the
/// workloads use them.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInventory {
    pub volumes: Vec<ClusterVolume>,
    pub secrets: Vec<ClusterObject>,
    pub config_maps: Vec<ClusterObject>,
}

/// A PersistentVolumeClaim and the workload that mounts it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterVolume {
    pub claim: String,
    /// The requested size, as declared (`100Gi`).
    pub size: String,
    /// `StatefulSet \`name\``.
    pub workload: String,
    pub mounted_at: Vec<String>,
}

/// A Secret or ConfigMap, the keys the workloads read from it, and those workloads.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterObject {
    pub name: String,
    pub keys: Vec<String>,
    pub used_by: Vec<String>,
}

/// What one host holds.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostInventory {
    pub name: String,
    /// The places of data the export reads here, each once (a directory with what is below it).
    pub data: Vec<String>,
    /// What the export reads here, in detail.
    pub reads: Vec<ExportRead>,
    /// The directories the plan makes, without those inside another one of them.
    pub directories: Vec<String>,
    /// The non-secret files the plan writes, in its order.
    pub files: Vec<String>,
    /// The same, relative to `/`, as `tar -C /` names them.
    pub files_relative: Vec<String>,
    /// The secret files the plan writes, in its order.
    pub secrets: Vec<SecretCopy>,
    /// Files a command of the plan makes on the host (a key that never leaves it).
    pub made: Vec<MadeFile>,
    /// The directory the application's release is unpacked into.
    pub artifact: Option<String>,
    /// What the host holds that the plan does not write and the export does not read: the
    /// services' logs, and files the operator provisions.
    pub left: Vec<LeftInPlace>,
    /// The secrets only this host holds (made there, or put there by the operator), relative to
    /// `/`: terroir's store does not have them.
    pub host_only_secrets_relative: Vec<String>,
    /// What erasing the host's data removes: the data, the plan's directories, the release, the
    /// secret files and what is left in place, each once (a directory with what is below it).
    pub erase: Vec<String>,
}

/// A place on a host that neither the plan nor the export names.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeftInPlace {
    pub host: String,
    pub path: String,
    pub kind: LeftKind,
}

/// What a place left in place holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum LeftKind {
    /// A service's log.
    Log,
    /// A service's own state (Alertmanager's silences).
    State,
    /// A secret the operator puts there.
    Provisioned,
}

/// The logs the services write and the files the operator provisions, on a host with `roles`.
fn left_in_place(resolved: &ResolvedPlatform, host: &str, roles: &[Role]) -> Vec<LeftInPlace> {
    let c = &resolved.components;
    let mut left = Vec::new();
    let mut add = |path: String, kind| {
        left.push(LeftInPlace {
            host: host.to_owned(),
            path,
            kind,
        })
    };
    if roles.contains(&Role::Database) && c.database.managed {
        add("/var/log/postgresql".into(), LeftKind::Log);
    }
    if roles.contains(&Role::Mta) && c.mta.enabled {
        add("/var/log/mail.log".into(), LeftKind::Log);
        if resolved.endpoints.smtp_relay.is_some() {
            // main.cf: `smtp_sasl_password_maps`, provisioned separately, never rendered
            add("/etc/postfix/sasl_passwd".into(), LeftKind::Provisioned);
        }
    }
    if roles.contains(&Role::Monitoring) && c.monitoring.enabled {
        // Debian's Alertmanager keeps its silences and notification log there
        add("/var/lib/prometheus/alertmanager".into(), LeftKind::State);
    }
    if roles.contains(&Role::App) && c.app.enabled {
        add(
            format!("/var/log/{}-app.log", resolved.platform.name),
            LeftKind::Log,
        );
    }
    left
}

/// One secret of the store and the files holding it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretInventory {
    /// Name in the store (`.terroir/<platform>/secrets/<name>`).
    pub name: String,
    /// Given by the user (`terroir secrets set`), never generated.
    pub provided: bool,
    /// Whether some copy is readable by every account (a certificate, not a secret).
    pub public: bool,
    pub copies: Vec<SecretCopy>,
}

/// One file holding a secret, on one host.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretCopy {
    pub host: String,
    pub path: String,
    pub owner: String,
    pub group: String,
    pub mode: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MadeFile {
    /// The plan's command that makes it.
    pub command: String,
    pub path: String,
}

/// Whether a file mode lets every account read the file.
fn world_readable(mode: &str) -> bool {
    mode.chars()
        .last()
        .and_then(|c| c.to_digit(8))
        .is_some_and(|d| d & 4 != 0)
}

/// Whether `path` is `dir` or below it.
fn within(path: &str, dir: &str) -> bool {
    path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/') || dir.ends_with('/'))
}

/// The inventory of a hosts target from its plan and the export's reads.
pub fn from_plan(resolved: &ResolvedPlatform, plan: &Plan) -> Inventory {
    let reads = export_reads(resolved);
    let mut secrets: BTreeMap<String, SecretInventory> = BTreeMap::new();
    let mut hosts = Vec::new();
    for hp in &plan.hosts {
        let mut host = HostInventory {
            name: hp.name.clone(),
            data: Vec::new(),
            reads: reads
                .iter()
                .filter(|r| r.host == hp.name)
                .cloned()
                .collect(),
            directories: Vec::new(),
            files: Vec::new(),
            files_relative: Vec::new(),
            secrets: Vec::new(),
            made: Vec::new(),
            artifact: None,
            left: left_in_place(resolved, &hp.name, &hp.roles),
            erase: Vec::new(),
            host_only_secrets_relative: Vec::new(),
        };
        for r in &host.reads {
            let place = match r.kind {
                // the queue's directories are read from one place
                ReadKind::MailQueue => r
                    .path
                    .rsplit_once('/')
                    .map_or(r.path.clone(), |(d, _)| d.to_owned()),
                ReadKind::PlatformCa | ReadKind::DkimKeys => continue,
                _ => r.path.clone(),
            };
            if !host.data.contains(&place) {
                host.data.push(place);
            }
        }
        let mut directories = Vec::new();
        for step in &hp.steps {
            match step {
                Step::Directory { directory, .. } => directories.push(directory.path.clone()),
                Step::File { file, .. } => {
                    host.files.push(file.dest.clone());
                    host.files_relative
                        .push(file.dest.trim_start_matches('/').to_owned());
                }
                Step::Secret { secret, .. } => {
                    let copy = SecretCopy {
                        host: hp.name.clone(),
                        path: secret.dest.clone(),
                        owner: secret.owner.clone(),
                        group: secret.group.clone(),
                        mode: secret.mode.clone(),
                    };
                    let entry =
                        secrets
                            .entry(secret.secret.clone())
                            .or_insert_with(|| SecretInventory {
                                name: secret.secret.clone(),
                                provided: false,
                                public: false,
                                copies: Vec::new(),
                            });
                    entry.provided |= secret.provided;
                    entry.public |= world_readable(&secret.mode);
                    entry.copies.push(copy.clone());
                    host.secrets.push(copy);
                }
                Step::Command { command, .. } => {
                    if let Some(path) = &command.creates {
                        host.made.push(MadeFile {
                            command: command.name.clone(),
                            path: path.clone(),
                        });
                    }
                }
                Step::Artifact { artifact, .. } => host.artifact = Some(artifact.dir.clone()),
                Step::Packages { .. }
                | Step::User { .. }
                | Step::Service { .. }
                | Step::Firewall { .. } => {}
            }
        }
        host.directories = directories
            .iter()
            .filter(|d| !directories.iter().any(|o| o != *d && within(d, o)))
            .cloned()
            .collect();
        let mut erase: Vec<String> = Vec::new();
        let candidates = host
            .data
            .iter()
            .chain(&host.directories)
            .chain(&host.artifact)
            .chain(host.secrets.iter().map(|c| &c.path))
            .chain(host.made.iter().map(|m| &m.path))
            .chain(host.left.iter().map(|l| &l.path));
        for path in candidates {
            if !erase.iter().any(|e| within(path, e)) {
                erase.retain(|e| !within(e, path));
                erase.push(path.clone());
            }
        }
        host.erase = erase;
        host.host_only_secrets_relative = host
            .made
            .iter()
            .map(|m| &m.path)
            .chain(
                host.left
                    .iter()
                    .filter(|l| l.kind == LeftKind::Provisioned)
                    .map(|l| &l.path),
            )
            .map(|p| p.trim_start_matches('/').to_owned())
            .collect();
        hosts.push(host);
    }
    let left: Vec<LeftInPlace> = hosts.iter().flat_map(|h| h.left.clone()).collect();
    Inventory {
        cluster: ClusterInventory::default(),
        provisioned: left
            .iter()
            .filter(|l| l.kind == LeftKind::Provisioned)
            .cloned()
            .collect(),
        left,
        hosts,
        secrets: secrets.into_values().collect(),
    }
}

fn strs(v: &serde_json::Value) -> impl Iterator<Item = &serde_json::Value> {
    v.as_array().into_iter().flatten()
}

fn text(v: &serde_json::Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// One use of a Secret or ConfigMap by a workload: the keys it reads (none named: all of them).
fn note(
    map: &mut BTreeMap<String, (std::collections::BTreeSet<String>, Vec<String>)>,
    name: String,
    keys: impl IntoIterator<Item = String>,
    workload: &str,
) {
    if name.is_empty() {
        return;
    }
    let entry = map.entry(name).or_default();
    entry.0.extend(keys.into_iter().filter(|k| !k.is_empty()));
    if !entry.1.iter().any(|w| w == workload) {
        entry.1.push(workload.to_owned());
    }
}

/// The inventory of the rendered Kubernetes manifests.
pub fn from_manifests(tree: &RenderedTree) -> ClusterInventory {
    let docs: Vec<serde_json::Value> = tree
        .files
        .iter()
        .filter(|(path, _)| path.starts_with("kubernetes/") && path.ends_with(".yaml"))
        .filter_map(|(_, bytes)| std::str::from_utf8(bytes).ok())
        .flat_map(|t| serde_saphyr::from_multiple::<serde_json::Value>(t).unwrap_or_default())
        .collect();
    let claims: BTreeMap<String, String> = docs
        .iter()
        .filter(|d| d["kind"] == "PersistentVolumeClaim")
        .map(|d| {
            (
                text(&d["metadata"]["name"]),
                text(&d["spec"]["resources"]["requests"]["storage"]),
            )
        })
        .collect();
    let mut volumes = Vec::new();
    let mut secrets = BTreeMap::new();
    let mut config_maps = BTreeMap::new();
    for d in &docs {
        let kind = d["kind"].as_str().unwrap_or_default();
        let pod = match kind {
            "Deployment" | "StatefulSet" | "DaemonSet" | "Job" => &d["spec"]["template"]["spec"],
            "CronJob" => &d["spec"]["jobTemplate"]["spec"]["template"]["spec"],
            _ => continue,
        };
        let name = text(&d["metadata"]["name"]);
        let workload = format!("{kind} `{name}`");
        let containers: Vec<&serde_json::Value> = strs(&pod["containers"])
            .chain(strs(&pod["initContainers"]))
            .collect();
        let mounts = |volume: &str| -> Vec<String> {
            let mut m: Vec<String> = containers
                .iter()
                .flat_map(|c| strs(&c["volumeMounts"]))
                .filter(|m| m["name"] == volume)
                .map(|m| text(&m["mountPath"]))
                .collect();
            m.dedup();
            m
        };
        for v in strs(&pod["volumes"]) {
            let vname = text(&v["name"]);
            if let Some(claim) = v["persistentVolumeClaim"]["claimName"].as_str() {
                volumes.push(ClusterVolume {
                    claim: claim.to_owned(),
                    size: claims.get(claim).cloned().unwrap_or_default(),
                    workload: workload.clone(),
                    mounted_at: mounts(&vname),
                });
            }
            let items = |src: &serde_json::Value| -> Vec<String> {
                strs(&src["items"]).map(|i| text(&i["key"])).collect()
            };
            note(
                &mut secrets,
                text(&v["secret"]["secretName"]),
                items(&v["secret"]),
                &workload,
            );
            note(
                &mut config_maps,
                text(&v["configMap"]["name"]),
                items(&v["configMap"]),
                &workload,
            );
            for src in strs(&v["projected"]["sources"]) {
                note(
                    &mut secrets,
                    text(&src["secret"]["name"]),
                    items(&src["secret"]),
                    &workload,
                );
                note(
                    &mut config_maps,
                    text(&src["configMap"]["name"]),
                    items(&src["configMap"]),
                    &workload,
                );
            }
        }
        if kind == "StatefulSet" {
            let replicas = d["spec"]["replicas"].as_u64().unwrap_or(1);
            for t in strs(&d["spec"]["volumeClaimTemplates"]) {
                let tname = text(&t["metadata"]["name"]);
                for i in 0..replicas {
                    volumes.push(ClusterVolume {
                        claim: format!("{tname}-{name}-{i}"),
                        size: text(&t["spec"]["resources"]["requests"]["storage"]),
                        workload: workload.clone(),
                        mounted_at: mounts(&tname),
                    });
                }
            }
        }
        for c in &containers {
            for e in strs(&c["env"]) {
                let r = &e["valueFrom"]["secretKeyRef"];
                note(&mut secrets, text(&r["name"]), [text(&r["key"])], &workload);
                let r = &e["valueFrom"]["configMapKeyRef"];
                note(
                    &mut config_maps,
                    text(&r["name"]),
                    [text(&r["key"])],
                    &workload,
                );
            }
            for e in strs(&c["envFrom"]) {
                note(&mut secrets, text(&e["secretRef"]["name"]), [], &workload);
                note(
                    &mut config_maps,
                    text(&e["configMapRef"]["name"]),
                    [],
                    &workload,
                );
            }
        }
    }
    let objects = |map: BTreeMap<String, (std::collections::BTreeSet<String>, Vec<String>)>| {
        map.into_iter()
            .map(|(name, (keys, used_by))| ClusterObject {
                name,
                keys: keys.into_iter().collect(),
                used_by,
            })
            .collect()
    };
    ClusterInventory {
        volumes,
        secrets: objects(secrets),
        config_maps: objects(config_maps),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_say_who_reads() {
        assert!(world_readable("0644"));
        assert!(!world_readable("0600"));
        assert!(!world_readable("0640"));
        assert!(world_readable("0755"));
    }

    #[test]
    fn a_path_is_within_its_directories_only() {
        assert!(within("/etc/acme/secrets", "/etc/acme"));
        assert!(within("/etc/acme", "/etc/acme"));
        assert!(!within("/etc/acme-crm", "/etc/acme"));
        assert!(!within("/etc", "/etc/acme"));
    }
}
