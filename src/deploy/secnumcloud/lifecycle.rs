//! `terroir destroy` and `terroir rollback` on a `secnumcloud` target.
//!
//! The platform runs on what the cloud handed over (VMs, or a managed cluster), so both start
//! there: the hand-over is rebuilt from the outputs in Terraform's state, rendered, and given to
//! the bare-metal or Kubernetes driver. `destroy` then removes the cloud's resources with
//! `destroy` on the same state, keeping those holding data unless `--delete-data`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use super::CloudError;
use super::terraform::{Runner, Tool};
use super::workdir::{initialised, parse, target};
use crate::deploy::{DeployError, Lifecycle, Work, baremetal, kubernetes};
use crate::document::{Loaded, Target};
use crate::lifecycle::destroy::{Action, Done, Item, Kind, Plan};
use crate::lifecycle::{destroy, rollback};

/// Where the cloud's resources are, in plans and records.
pub const PLACE: &str = "terraform";

/// One managed resource instance of the state (`show -json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateResource {
    /// The instance's address, as `terraform state list` prints it.
    pub address: String,
    /// The resource type (`outscale_vm`, `aws_s3_bucket`...).
    pub kind: String,
    /// The resources it depends on, by resource address (no instance key).
    pub depends_on: Vec<String>,
}

/// The state as `show -json` prints it: its managed resources and its outputs.
#[derive(Debug, Default)]
pub struct TerraformState {
    pub resources: Vec<StateResource>,
    /// `{name: {value, sensitive}}`, as `output -json` prints them.
    pub outputs: Value,
}

impl TerraformState {
    pub fn from_show(shown: &Value) -> TerraformState {
        fn walk(module: &Value, out: &mut Vec<StateResource>) {
            for r in module["resources"].as_array().into_iter().flatten() {
                if r["mode"] != "managed" {
                    continue;
                }
                let (Some(address), Some(kind)) = (r["address"].as_str(), r["type"].as_str())
                else {
                    continue;
                };
                out.push(StateResource {
                    address: address.to_owned(),
                    kind: kind.to_owned(),
                    depends_on: r["depends_on"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect(),
                });
            }
            for child in module["child_modules"].as_array().into_iter().flatten() {
                walk(child, out);
            }
        }
        let mut resources = Vec::new();
        walk(&shown["values"]["root_module"], &mut resources);
        resources.sort_by(|a, b| a.address.cmp(&b.address));
        TerraformState {
            resources,
            outputs: shown["values"]["outputs"].clone(),
        }
    }
}

/// A resource address without its instance key: `module.platform.outscale_vm.this["db1"]` is an
/// instance of `module.platform.outscale_vm.this`, the form `depends_on` uses.
fn resource_of(address: &str) -> &str {
    match address.strip_suffix(']').and_then(|a| a.rfind('[')) {
        Some(i) => &address[..i],
        None => address,
    }
}

/// Whether a resource type holds the platform's data: a VM (its disks hold the database, the mail
/// and the application's files), a disk or volume, a snapshot, a bucket or object storage, or a
/// managed cluster and its nodes (its volumes). Told by the type's name, the same way for every
/// provider; a type it does not recognise holds none.
pub fn holds_data(kind: &str) -> bool {
    const WORDS: [&str; 13] = [
        "_vm",
        "instance",
        "virtual_machine",
        "volume",
        "disk",
        "snapshot",
        "bucket",
        "storage",
        "kube",
        "cluster",
        "node_pool",
        "nodepool",
        "oks_",
    ];
    WORDS.iter().any(|w| kind.contains(w))
}

/// The cloud's resources as destroy handles them. With `delete_data` all are removed; without,
/// those holding data are kept, and so is what they depend on (destroying it would take them
/// along).
pub fn cloud_items(resources: &[StateResource], delete_data: bool) -> Vec<Item> {
    let mut kept: BTreeMap<&str, String> = BTreeMap::new();
    if !delete_data {
        let by_resource: BTreeMap<&str, Vec<&StateResource>> =
            resources.iter().fold(BTreeMap::new(), |mut m, r| {
                m.entry(resource_of(&r.address)).or_default().push(r);
                m
            });
        let mut todo: Vec<(&StateResource, String)> = resources
            .iter()
            .filter(|r| holds_data(&r.kind))
            .map(|r| {
                (
                    r,
                    format!(
                        "holds the platform's data ({}): removed only with --delete-data",
                        r.kind
                    ),
                )
            })
            .collect();
        while let Some((r, why)) = todo.pop() {
            if kept.contains_key(r.address.as_str()) {
                continue;
            }
            kept.insert(&r.address, why);
            for dep in &r.depends_on {
                for d in by_resource.get(dep.as_str()).into_iter().flatten() {
                    todo.push((d, format!("{} (kept) depends on it", r.address)));
                }
            }
        }
    }
    resources
        .iter()
        .map(|r| {
            let action = match kept.get(r.address.as_str()) {
                Some(why) => Action::Keep { why: why.clone() },
                None => Action::Remove,
            };
            Item::new(PLACE, Kind::CloudResource, &r.address, action)
        })
        .collect()
}

/// The platform's Terraform working directory, written and initialised as `apply` does.
struct WorkingDir {
    tool: Tool,
    dir: std::path::PathBuf,
}

impl WorkingDir {
    fn open(work: &Work<'_>) -> Result<WorkingDir, DeployError> {
        let sc = target(work)?;
        let (tool, dir) = tokio::task::block_in_place(|| initialised(work, sc))?;
        Ok(WorkingDir { tool, dir })
    }

    fn runner<'a>(&'a self, work: &'a Work<'_>) -> Runner<'a> {
        Runner {
            tool: &self.tool,
            dir: &self.dir,
            events: work.events,
        }
    }

    fn state(&self, work: &Work<'_>) -> Result<TerraformState, DeployError> {
        let shown = tokio::task::block_in_place(|| {
            self.runner(work)
                .run(&["show".into(), "-json".into(), "-no-color".into()], true)
        })?;
        let shown = parse(&self.tool, "show -json", "the state", &shown)?;
        Ok(TerraformState::from_show(&shown))
    }
}

/// The document the cloud handed over, rebuilt from the state's outputs; `None` when nothing was
/// handed over: no resources, or outputs that name no host or cluster (an apply that stopped
/// before the hand-over).
fn handed_over(
    work: &Work<'_>,
    state: &TerraformState,
    dir: &Path,
) -> Result<Option<Loaded>, DeployError> {
    if state.resources.is_empty() {
        return Ok(None);
    }
    let sc = target(work)?;
    match super::handover::handover(work.loaded, sc, &state.outputs, dir) {
        Ok(next) => match &next.platform.spec.target {
            Target::Baremetal(b) if b.hosts.is_empty() => Ok(None),
            _ => Ok(Some(next)),
        },
        Err(e @ (CloudError::NoHostsOutput | CloudError::NoKubeconfig)) => {
            work.events.warn(&format!(
                "the cloud's outputs hand nothing over ({e}): no platform of terroir's runs on its resources"
            ));
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// `f` with the work on the handed-over platform, rendered, and its driver.
async fn inside<T>(
    work: &Work<'_>,
    next: &Loaded,
    f: impl AsyncFnOnce(InnerDriver, &Work<'_>) -> Result<T, DeployError>,
) -> Result<T, DeployError> {
    let (resolved, tree) = work.renderer.render(next)?;
    let inner = Work {
        loaded: next,
        resolved: &resolved,
        tree: &tree,
        ..*work
    };
    let driver = match &next.platform.spec.target {
        Target::Baremetal(_) => InnerDriver::Hosts,
        Target::Kubernetes(_) => InnerDriver::Cluster,
        Target::Secnumcloud(_) => {
            return Err(DeployError::WrongTarget {
                driver: "the platform a cloud hands over",
                kind: "secnumcloud",
            });
        }
    };
    f(driver, &inner).await
}

/// The driver of the platform a cloud hands over.
#[derive(Clone, Copy)]
enum InnerDriver {
    Hosts,
    Cluster,
}

impl InnerDriver {
    async fn inventory(
        self,
        work: &Work<'_>,
        options: &destroy::Options,
    ) -> Result<Plan, DeployError> {
        match self {
            InnerDriver::Hosts => baremetal::driver::Hosts.inventory(work, options).await,
            InnerDriver::Cluster => kubernetes::driver::Cluster.inventory(work, options).await,
        }
    }

    async fn destroy(self, work: &Work<'_>, plan: &Plan) -> Result<Vec<Done>, DeployError> {
        match self {
            InnerDriver::Hosts => baremetal::driver::Hosts.destroy(work, plan).await,
            InnerDriver::Cluster => kubernetes::driver::Cluster.destroy(work, plan).await,
        }
    }

    async fn rollback(
        self,
        work: &Work<'_>,
        request: &rollback::Request,
    ) -> Result<rollback::Report, DeployError> {
        match self {
            InnerDriver::Hosts => baremetal::driver::Hosts.rollback(work, request).await,
            InnerDriver::Cluster => kubernetes::driver::Cluster.rollback(work, request).await,
        }
    }
}

fn is_cloud(item: &Item) -> bool {
    item.kind == Kind::CloudResource && item.place == PLACE
}

impl Lifecycle for super::driver::Cloud {
    /// The platform inside (the hosts or the cluster handed over), then the cloud's resources.
    async fn inventory(
        &self,
        work: &Work<'_>,
        options: &destroy::Options,
    ) -> Result<destroy::Plan, DeployError> {
        let workdir = WorkingDir::open(work)?;
        let state = workdir.state(work)?;
        let mut plan = Plan {
            platform: work.resolved.platform.name.clone(),
            target: "secnumcloud".into(),
            options: *options,
            items: Vec::new(),
            last_backup: None,
        };
        if let Some(next) = handed_over(work, &state, &workdir.dir)? {
            let inner = inside(work, &next, async |d, w| d.inventory(w, options).await).await?;
            plan.items = inner.items;
            plan.last_backup = inner.last_backup;
        }
        plan.items
            .extend(cloud_items(&state.resources, options.delete_data));
        Ok(plan)
    }

    /// The platform inside first, with its driver; then, when all of it went, `destroy` of the
    /// cloud's resources to remove (all of them, or with `-target` those the plan does not keep).
    /// Each resource's outcome is read back from the state.
    async fn destroy(
        &self,
        work: &Work<'_>,
        plan: &destroy::Plan,
    ) -> Result<Vec<destroy::Done>, DeployError> {
        let workdir = WorkingDir::open(work)?;
        let state = workdir.state(work)?;
        let (cloud_part, inner_part): (Vec<Item>, Vec<Item>) =
            plan.items.iter().cloned().partition(is_cloud);
        let mut done = Vec::new();
        if !inner_part.is_empty() {
            let next = handed_over(work, &state, &workdir.dir)?.ok_or_else(|| {
                CloudError::NothingHandedOver {
                    platform: plan.platform.clone(),
                }
            })?;
            let inner_plan = Plan {
                target: next.platform.spec.target.kind().into(),
                items: inner_part,
                ..plan.clone()
            };
            done = inside(work, &next, async |d, w| d.destroy(w, &inner_plan).await).await?;
        }
        let remove: Vec<&Item> = cloud_part.iter().filter(|i| !i.kept()).collect();
        if remove.is_empty() {
            return Ok(done);
        }
        let inner_failed = done.iter().filter(|d| d.failed.is_some()).count();
        if inner_failed > 0 {
            let why = format!(
                "not destroyed: {inner_failed} item{} of the platform on it could not be removed; destroy again once they are",
                crate::text::plural(inner_failed)
            );
            done.extend(remove.into_iter().map(|i| Done {
                item: i.clone(),
                failed: Some(why.clone()),
            }));
            return Ok(done);
        }
        let mut args: Vec<String> = [
            "destroy",
            "-auto-approve",
            "-input=false",
            "-no-color",
            "-lock-timeout=60s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if remove.len() < cloud_part.len() {
            args.extend(remove.iter().map(|i| format!("-target={}", i.what)));
        }
        let ran = tokio::task::block_in_place(|| workdir.runner(work).run(&args, false));
        let after = workdir.state(work)?;
        let left: BTreeSet<&str> = after.resources.iter().map(|r| r.address.as_str()).collect();
        let why = match &ran {
            Ok(_) => "still in the Terraform state after destroy".to_owned(),
            Err(e) => format!("still in the Terraform state: {e}"),
        };
        done.extend(remove.into_iter().map(|i| Done {
            item: i.clone(),
            failed: left.contains(i.what.as_str()).then(|| why.clone()),
        }));
        if let Err(e) = ran
            && left.is_empty()
        {
            work.events.warn(&format!(
                "{} destroy failed, yet the state holds nothing: {e}",
                workdir.tool.name
            ));
        }
        Ok(done)
    }

    /// The application's releases live on the platform the cloud handed over: its driver rolls back.
    async fn rollback(
        &self,
        work: &Work<'_>,
        request: &rollback::Request,
    ) -> Result<rollback::Report, DeployError> {
        let workdir = WorkingDir::open(work)?;
        let state = workdir.state(work)?;
        let next = handed_over(work, &state, &workdir.dir)?.ok_or_else(|| {
            CloudError::NothingHandedOver {
                platform: work.resolved.platform.name.clone(),
            }
        })?;
        inside(work, &next, async |d, w| d.rollback(w, request).await).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn r(address: &str, kind: &str, deps: &[&str]) -> StateResource {
        StateResource {
            address: address.into(),
            kind: kind.into(),
            depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
        }
    }

    #[test]
    fn what_holds_data_is_told_by_its_type() {
        for kind in [
            "outscale_vm",
            "outscale_volume",
            "outscale_snapshot",
            "aws_s3_bucket",
            "aws_s3_bucket_versioning",
            "google_storage_bucket",
            "google_compute_instance",
            "google_compute_disk",
            "google_container_cluster",
            "google_container_node_pool",
            "ovh_cloud_project_storage",
            "ovh_cloud_project_kube",
            "ovh_cloud_project_kube_nodepool",
            "openstack_compute_instance_v2",
            "openstack_blockstorage_volume_v3",
            "openstack_objectstorage_container_v1",
            "cloudtemple_compute_virtual_machine",
            "cloudtemple_object_storage_bucket",
            "outscale_oks_cluster",
        ] {
            assert!(holds_data(kind), "{kind} holds data");
        }
        for kind in [
            "outscale_net",
            "outscale_subnet",
            "outscale_security_group_rule",
            "outscale_public_ip",
            "outscale_nat_service",
            "openstack_networking_port_v2",
            "google_compute_firewall",
            "google_compute_router_nat",
            "terraform_data",
        ] {
            assert!(!holds_data(kind), "{kind} holds no data");
        }
    }

    #[test]
    fn without_delete_data_what_holds_data_and_what_it_depends_on_is_kept() {
        let resources = [
            r("module.p.aws_s3_bucket.backup", "aws_s3_bucket", &[]),
            r("module.p.outscale_net.this", "outscale_net", &[]),
            r(
                "module.p.outscale_public_ip.app[\"app1\"]",
                "outscale_public_ip",
                &[],
            ),
            r(
                "module.p.outscale_subnet.private",
                "outscale_subnet",
                &["module.p.outscale_net.this"],
            ),
            r(
                "module.p.outscale_vm.this[\"db1\"]",
                "outscale_vm",
                &["module.p.outscale_subnet.private"],
            ),
        ];
        let items = cloud_items(&resources, false);
        let by: BTreeMap<&str, &Action> =
            items.iter().map(|i| (i.what.as_str(), &i.action)).collect();
        assert_eq!(
            by["module.p.outscale_public_ip.app[\"app1\"]"],
            &Action::Remove
        );
        for (kept, because) in [
            ("module.p.aws_s3_bucket.backup", "holds the platform's data"),
            ("module.p.outscale_vm.this[\"db1\"]", "--delete-data"),
            (
                "module.p.outscale_subnet.private",
                "module.p.outscale_vm.this[\"db1\"] (kept) depends on it",
            ),
            (
                "module.p.outscale_net.this",
                "module.p.outscale_subnet.private (kept) depends on it",
            ),
        ] {
            match by[kept] {
                Action::Keep { why } => assert!(why.contains(because), "{kept}: {why}"),
                other => panic!("{kept}: {other:?}"),
            }
        }
        assert!(items.iter().all(|i| i.place == PLACE));
        assert!(
            cloud_items(&resources, true)
                .iter()
                .all(|i| i.action == Action::Remove)
        );
    }

    #[test]
    fn the_state_is_read_through_modules_without_data_sources() {
        let shown = json!({"values": {
        "outputs": {"hosts": {"value": {}, "sensitive": false}},
        "root_module": {
            "resources": [{"address": "data.x.y", "mode": "data", "type": "x"}],
            "child_modules": [{"resources": [
                {"address": "module.p.terraform_data.vm[\"b\"]", "mode": "managed", "type": "terraform_data", "depends_on": ["module.p.terraform_data.net"]},
                {"address": "module.p.terraform_data.net", "mode": "managed", "type": "terraform_data"}
            ]}]
        }}});
        let s = TerraformState::from_show(&shown);
        assert_eq!(
            s.resources
                .iter()
                .map(|r| r.address.as_str())
                .collect::<Vec<_>>(),
            [
                "module.p.terraform_data.net",
                "module.p.terraform_data.vm[\"b\"]"
            ]
        );
        assert_eq!(s.resources[1].depends_on, ["module.p.terraform_data.net"]);
        assert!(s.outputs["hosts"].is_object());
        assert!(
            TerraformState::from_show(&json!({"format_version": "1.0"}))
                .resources
                .is_empty()
        );
        assert_eq!(
            resource_of("module.p.terraform_data.vm[\"b\"]"),
            "module.p.terraform_data.vm"
        );
    }
}
