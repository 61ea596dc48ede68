//! Server-side apply of rendered manifests as one ApplySet.
//!
//! Every run starts with a read-only pass: each object is fetched and applied with
//! `dryRun=All`, so conflicts and objects the API server refuses are all reported before
//! anything changes. Only objects whose dry-run result differs from the live object are then
//! applied, so a second apply of the same document sends no write at all. Members of the set
//! that the document no longer renders are pruned.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use futures::{StreamExt, TryStreamExt};
use kube::Client;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use kube::discovery::{Scope, pinned_kind};
use serde::Serialize;
use serde_json::{Value, json};

use super::applyset::{self, ApplySet, Parent};
use super::{ClusterError, Manifest, describe, group_kind, object_label};

/// What happened, or would happen, to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Unchanged,
    Prune,
    /// Left to the cluster administrator (a Namespace when the operator may not create them).
    Skipped,
}

impl Action {
    pub fn past(self) -> &'static str {
        match self {
            Action::Create => "created",
            Action::Update => "configured",
            Action::Unchanged => "unchanged",
            Action::Prune => "pruned",
            Action::Skipped => "skipped",
        }
    }
    pub fn future(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Unchanged => "unchanged",
            Action::Prune => "prune",
            Action::Skipped => "skip",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectChange {
    pub api_version: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    pub action: Action,
    /// Unified diff of live (`-`) to desired (`+`), for updates; the object for creations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl ObjectChange {
    pub fn label(&self) -> String {
        object_label(&self.kind, self.namespace.as_deref(), &self.name)
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyReport {
    pub applyset: String,
    pub field_manager: String,
    pub dry_run: bool,
    pub objects: Vec<ObjectChange>,
}

impl ApplyReport {
    pub fn count(&self, action: Action) -> usize {
        self.objects.iter().filter(|o| o.action == action).count()
    }
    /// Objects the apply created or changed (for waiting on rollouts).
    pub fn changed(&self) -> bool {
        self.objects
            .iter()
            .any(|o| matches!(o.action, Action::Create | Action::Update | Action::Prune))
    }
    /// Namespaces applied ahead of the set (to hold generated Secrets) were created by this run.
    pub fn mark_created_namespaces(&mut self, names: &BTreeSet<String>) {
        for o in self.objects.iter_mut().filter(|o| {
            o.kind == "Namespace" && o.action == Action::Unchanged && names.contains(&o.name)
        }) {
            o.action = Action::Create;
        }
    }
    pub fn applied_objects(&self) -> usize {
        self.objects
            .iter()
            .filter(|o| {
                matches!(
                    o.action,
                    Action::Create | Action::Update | Action::Unchanged
                )
            })
            .count()
    }
}

#[derive(Debug, Clone, Copy)]
pub struct ApplyOptions {
    /// Take over fields other managers own (`force=true`).
    pub force_conflicts: bool,
    /// Delete members of the set the document no longer renders.
    pub prune: bool,
    /// Only compute what would change (server-side dry run).
    pub dry_run: bool,
    /// Apply Namespace objects; when false they are reported as skipped and must exist.
    pub manage_namespaces: bool,
    /// Compute diffs (plan); costs a YAML rendering per changed object.
    pub diffs: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            force_conflicts: false,
            prune: true,
            dry_run: false,
            manage_namespaces: true,
            diffs: false,
        }
    }
}

/// Applies manifests with one field manager, caching discovery.
pub struct Applier {
    client: Client,
    manager: String,
    concurrency: usize,
    resources: Mutex<HashMap<String, (ApiResource, Scope)>>,
}

/// A member of the set found on the cluster.
#[derive(Debug, Clone)]
pub struct Member {
    pub resource: ApiResource,
    pub namespace: Option<String>,
    pub name: String,
}

struct Probe {
    action: Action,
    diff: Option<String>,
    note: Option<String>,
}

impl Applier {
    pub fn new(client: Client, field_manager: &str) -> Self {
        Applier {
            client,
            manager: field_manager.to_owned(),
            concurrency: 16,
            resources: Mutex::new(HashMap::new()),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn field_manager(&self) -> &str {
        &self.manager
    }

    /// The API resource serving a kind, from discovery (cached).
    pub async fn resource(
        &self,
        gvk: &GroupVersionKind,
    ) -> Result<(ApiResource, Scope), ClusterError> {
        let key = format!("{}/{}/{}", gvk.group, gvk.version, gvk.kind);
        if let Some(hit) = self
            .resources
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned())
        {
            return Ok(hit);
        }
        let (ar, caps) = pinned_kind(&self.client, gvk).await.map_err(|e| match &e {
            kube::Error::Api(s) if s.code == 404 => {
                ClusterError::NotServed(format!("{} {}", gvk.api_version(), gvk.kind))
            }
            kube::Error::Discovery(_) => {
                ClusterError::NotServed(format!("{} {}", gvk.api_version(), gvk.kind))
            }
            _ => ClusterError::api(format!("discovery of {}", gvk.kind), &e),
        })?;
        let hit = (ar, caps.scope);
        if let Ok(mut m) = self.resources.lock() {
            m.insert(key, hit.clone());
        }
        Ok(hit)
    }

    /// The recommended version of a group-kind (`Kind` or `Kind.group`), for kinds recorded in
    /// the parent that the document no longer renders.
    async fn resource_for_group_kind(
        &self,
        gk: &str,
    ) -> Result<Option<(ApiResource, Scope)>, ClusterError> {
        let (kind, group) = gk.split_once('.').unwrap_or((gk, ""));
        let found = kube::discovery::group(&self.client, group).await;
        let group = match found {
            Ok(g) => g,
            // A group the cluster no longer serves holds no members.
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(None),
            Err(kube::Error::Discovery(_)) => return Ok(None),
            Err(e) => return Err(ClusterError::api(format!("discovery of {gk}"), &e)),
        };
        Ok(group
            .recommended_kind(kind)
            .map(|(ar, caps)| (ar, caps.scope)))
    }

    fn api(&self, ar: &ApiResource, scope: &Scope, namespace: Option<&str>) -> Api<DynamicObject> {
        match (scope, namespace) {
            (Scope::Namespaced, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, ar),
            _ => Api::all_with(self.client.clone(), ar),
        }
    }

    fn params(&self, force: bool, dry_run: bool) -> PatchParams {
        let mut pp = PatchParams::apply(&self.manager);
        pp.force = force;
        pp.dry_run = dry_run;
        pp
    }

    /// Dry-run then (unless `opts.dry_run`) apply `manifests` as the set `set`.
    pub async fn apply(
        &self,
        manifests: &[Manifest],
        set: &ApplySet,
        opts: ApplyOptions,
    ) -> Result<ApplyReport, ClusterError> {
        // Resolve every kind first: an unknown kind stops everything before any change.
        let mut resolved = Vec::with_capacity(manifests.len());
        for m in manifests {
            let (ar, scope) = self.resource(&m.gvk).await?;
            let mut m = m.clone();
            if scope == Scope::Namespaced && m.namespace.is_none() {
                return Err(ClusterError::Manifest {
                    file: m.file.clone(),
                    source: Box::new(super::ManifestError::NoNamespace {
                        kind: m.gvk.kind.clone(),
                        name: m.name.clone(),
                    }),
                });
            }
            if scope == Scope::Cluster {
                m.namespace = None;
                m.object.metadata.namespace = None;
            }
            join_set(&mut m, set);
            resolved.push((m, ar, scope));
        }
        let skipped = |m: &Manifest| !opts.manage_namespaces && m.wave() == 1;
        let new_namespaces: BTreeSet<String> = resolved
            .iter()
            .filter(|(m, ..)| m.wave() == 1 && !skipped(m))
            .map(|(m, ..)| m.name.clone())
            .collect();

        // Read-only pass: live object and server-side dry run of each.
        let new_namespaces = &new_namespaces;
        let probe_futures: Vec<_> = resolved
            .iter()
            .map(|(m, ar, scope)| self.probe(m, ar, scope, opts, skipped(m), new_namespaces))
            .collect();
        let probes: Vec<Result<Probe, (String, kube::Error)>> =
            futures::stream::iter(probe_futures)
                .buffered(self.concurrency)
                .collect()
                .await;
        let mut conflicts = Vec::new();
        let mut refused = Vec::new();
        let mut changes = Vec::with_capacity(probes.len());
        for ((m, ..), probe) in resolved.iter().zip(probes) {
            match probe {
                Ok(p) => changes.push(ObjectChange {
                    api_version: m.gvk.api_version(),
                    kind: m.gvk.kind.clone(),
                    namespace: m.namespace.clone(),
                    name: m.name.clone(),
                    action: p.action,
                    diff: p.diff,
                    note: p.note,
                }),
                Err((label, kube::Error::Api(s))) if s.code == 409 => {
                    conflicts.push(format!("{label}: {}", s.message))
                }
                Err((label, kube::Error::Api(s))) if matches!(s.code, 400 | 403 | 404 | 422) => {
                    refused.push(format!("{label}: {} ({} {})", s.message, s.code, s.reason))
                }
                Err((label, e)) => return Err(ClusterError::api(label, &e)),
            }
        }
        if !conflicts.is_empty() {
            return Err(ClusterError::Conflicts(conflicts));
        }
        if !refused.is_empty() {
            return Err(ClusterError::Refused(refused));
        }

        // What the set holds on the cluster now, and what is no longer rendered.
        let parent = self.parent(set).await?;
        let (old_kinds, old_namespaces) = recorded(parent.as_ref());
        let new_kinds: BTreeSet<String> = resolved
            .iter()
            .filter(|(m, ..)| !skipped(m))
            .map(|(m, ..)| group_kind(&m.gvk))
            .collect();
        let new_ns: BTreeSet<String> = resolved
            .iter()
            .filter_map(|(m, ..)| m.namespace.clone())
            .filter(|ns| ns != set.parent_namespace())
            .collect();
        let mut prune = Vec::new();
        if opts.prune {
            let kinds: BTreeSet<String> = old_kinds.union(&new_kinds).cloned().collect();
            let namespaces: BTreeSet<String> = old_namespaces.union(&new_ns).cloned().collect();
            let rendered: BTreeSet<(String, Option<String>, String)> = resolved
                .iter()
                .map(|(m, ..)| (group_kind(&m.gvk), m.namespace.clone(), m.name.clone()))
                .collect();
            for member in self.members(set, &kinds, &namespaces).await? {
                let gk = group_kind(&GroupVersionKind::gvk(
                    &member.resource.group,
                    &member.resource.version,
                    &member.resource.kind,
                ));
                if !rendered.contains(&(gk, member.namespace.clone(), member.name.clone())) {
                    changes.push(ObjectChange {
                        api_version: member.resource.api_version.clone(),
                        kind: member.resource.kind.clone(),
                        namespace: member.namespace.clone(),
                        name: member.name.clone(),
                        action: Action::Prune,
                        diff: None,
                        note: None,
                    });
                    prune.push(member);
                }
            }
        }
        let report = ApplyReport {
            applyset: set.id.clone(),
            field_manager: self.manager.clone(),
            dry_run: opts.dry_run,
            objects: changes,
        };
        if opts.dry_run {
            return Ok(report);
        }

        // Writes: CRDs and namespaces, the parent (listing a superset of kinds), the rest, then
        // prune and record the exact set.
        let needs_write =
            |i: usize| matches!(report.objects[i].action, Action::Create | Action::Update);
        for wave in 0..=2u8 {
            if wave == 2 {
                let kinds: BTreeSet<String> = old_kinds.union(&new_kinds).cloned().collect();
                let namespaces: BTreeSet<String> = old_namespaces.union(&new_ns).cloned().collect();
                if !parent_records(parent.as_ref(), set, &kinds, &namespaces) {
                    self.write_parent(set, &kinds, &namespaces).await?;
                }
            }
            let writes: Vec<_> = resolved
                .iter()
                .enumerate()
                .filter(|(i, (m, ..))| m.wave() == wave && needs_write(*i))
                .map(|(_, (m, ar, scope))| self.write(m, ar, scope, opts.force_conflicts))
                .collect();
            futures::stream::iter(writes)
                .buffer_unordered(self.concurrency)
                .try_collect::<Vec<_>>()
                .await?;
        }
        for member in &prune {
            self.delete(member).await?;
        }
        if opts.prune
            && !(prune.is_empty()
                && old_kinds == new_kinds
                && old_namespaces == new_ns
                && parent_records(parent.as_ref(), set, &new_kinds, &new_ns))
        {
            self.write_parent(set, &new_kinds, &new_ns).await?;
        }
        Ok(report)
    }

    /// Apply one rendered Namespace as a member of the set, exactly as [`Applier::apply`] would:
    /// Secrets generated before the apply need their namespace first.
    pub async fn apply_namespace(
        &self,
        m: &Manifest,
        set: &ApplySet,
        force: bool,
    ) -> Result<(), ClusterError> {
        self.apply_member(m, set, force).await
    }

    /// Apply one object as a member of the set, with this applier's field manager (a rollback's
    /// Deployment: the same owner as `apply`'s, so that the next apply meets no conflict).
    pub async fn apply_member(
        &self,
        m: &Manifest,
        set: &ApplySet,
        force: bool,
    ) -> Result<(), ClusterError> {
        let (ar, scope) = self.resource(&m.gvk).await?;
        let mut m = m.clone();
        join_set(&mut m, set);
        self.write(&m, &ar, &scope, force).await
    }

    /// The set as it is on the cluster: its parent (when there is one) and every member among
    /// the kinds and namespaces the parent records and `extra_kinds`, `extra_namespaces` (what
    /// the document renders: a set whose parent is gone still has members to find).
    pub async fn set_members(
        &self,
        set: &ApplySet,
        extra_kinds: &BTreeSet<String>,
        extra_namespaces: &BTreeSet<String>,
    ) -> Result<(Option<DynamicObject>, Vec<Member>), ClusterError> {
        let parent = self.parent(set).await?;
        let (mut kinds, mut namespaces) = recorded(parent.as_ref());
        kinds.extend(extra_kinds.iter().cloned());
        namespaces.extend(extra_namespaces.iter().cloned());
        let members = self.members(set, &kinds, &namespaces).await?;
        Ok((parent, members))
    }

    async fn write(
        &self,
        m: &Manifest,
        ar: &ApiResource,
        scope: &Scope,
        force: bool,
    ) -> Result<(), ClusterError> {
        let api = self.api(ar, scope, m.namespace.as_deref());
        api.patch(
            &m.name,
            &self.params(force, false),
            &Patch::Apply(&m.object),
        )
        .await
        .map(|_| ())
        .map_err(|e| ClusterError::api(m.label(), &e))
    }

    async fn probe(
        &self,
        m: &Manifest,
        ar: &ApiResource,
        scope: &Scope,
        opts: ApplyOptions,
        skipped: bool,
        new_namespaces: &BTreeSet<String>,
    ) -> Result<Probe, (String, kube::Error)> {
        if skipped {
            return Ok(Probe {
                action: Action::Skipped,
                diff: None,
                note: Some("namespaces are created by the cluster administrator".into()),
            });
        }
        let api = self.api(ar, scope, m.namespace.as_deref());
        let live = api.get_opt(&m.name).await.map_err(|e| (m.label(), e))?;
        let dry = api
            .patch(
                &m.name,
                &self.params(opts.force_conflicts, true),
                &Patch::Apply(&m.object),
            )
            .await;
        let dry = match dry {
            Ok(d) => d,
            // Its namespace is created by this very apply: the server cannot dry-run it yet.
            Err(kube::Error::Api(s))
                if s.code == 404
                    && live.is_none()
                    && m.namespace
                        .as_ref()
                        .is_some_and(|ns| new_namespaces.contains(ns)) =>
            {
                return Ok(Probe {
                    action: Action::Create,
                    diff: opts.diffs.then(|| yaml(&normalize(&m.object))),
                    note: Some("its namespace is created by this apply; checked by the server when applied".into()),
                });
            }
            Err(e) => return Err((m.label(), e)),
        };
        let desired = normalize(&dry);
        Ok(match live {
            None => Probe {
                action: Action::Create,
                diff: opts.diffs.then(|| yaml(&desired)),
                note: None,
            },
            Some(live) => {
                let current = normalize(&live);
                if current == desired {
                    Probe {
                        action: Action::Unchanged,
                        diff: None,
                        note: None,
                    }
                } else {
                    Probe {
                        action: Action::Update,
                        diff: opts
                            .diffs
                            .then(|| unified(&yaml(&current), &yaml(&desired))),
                        note: None,
                    }
                }
            }
        })
    }

    /// Delete every member of the set (a Platform resource being deleted). Returns what was deleted.
    pub async fn delete_set(
        &self,
        set: &ApplySet,
        extra_kinds: &BTreeSet<String>,
        extra_namespaces: &BTreeSet<String>,
    ) -> Result<Vec<ObjectChange>, ClusterError> {
        let parent = self.parent(set).await?;
        let (mut kinds, mut namespaces) = recorded(parent.as_ref());
        kinds.extend(extra_kinds.iter().cloned());
        namespaces.extend(extra_namespaces.iter().cloned());
        let members = self.members(set, &kinds, &namespaces).await?;
        // Namespaced objects first, namespaces last.
        let (cluster, namespaced): (Vec<_>, Vec<_>) =
            members.into_iter().partition(|m| m.namespace.is_none());
        let mut deleted = Vec::new();
        for m in namespaced.iter().chain(cluster.iter()) {
            self.delete(m).await?;
            deleted.push(ObjectChange {
                api_version: m.resource.api_version.clone(),
                kind: m.resource.kind.clone(),
                namespace: m.namespace.clone(),
                name: m.name.clone(),
                action: Action::Prune,
                diff: None,
                note: None,
            });
        }
        Ok(deleted)
    }

    /// Delete one member (in the background: its dependents follow); one already gone is fine.
    pub async fn delete(&self, m: &Member) -> Result<(), ClusterError> {
        let api = match &m.namespace {
            Some(ns) => Api::<DynamicObject>::namespaced_with(self.client.clone(), ns, &m.resource),
            None => Api::<DynamicObject>::all_with(self.client.clone(), &m.resource),
        };
        match api.delete(&m.name, &DeleteParams::background()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(ClusterError::api(
                object_label(&m.resource.kind, m.namespace.as_deref(), &m.name),
                &e,
            )),
        }
    }

    /// Members of the set among `kinds`, in the parent's namespace and `namespaces`.
    async fn members(
        &self,
        set: &ApplySet,
        kinds: &BTreeSet<String>,
        namespaces: &BTreeSet<String>,
    ) -> Result<Vec<Member>, ClusterError> {
        // Kinds already resolved (by this run or an earlier one) need no discovery request.
        let known: HashMap<String, (ApiResource, Scope)> = self
            .resources
            .lock()
            .map(|m| {
                m.values()
                    .map(|(ar, scope)| {
                        (
                            group_kind(&GroupVersionKind::gvk(&ar.group, &ar.version, &ar.kind)),
                            (ar.clone(), scope.clone()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let lp = ListParams::default().labels(&set.selector());
        let mut all_ns: BTreeSet<String> = namespaces.clone();
        all_ns.insert(set.parent_namespace().to_owned());
        let mut targets = Vec::new();
        for gk in kinds {
            let found = match known.get(gk) {
                Some(hit) => Some(hit.clone()),
                None => self.resource_for_group_kind(gk).await?,
            };
            let Some((ar, scope)) = found else { continue };
            match scope {
                Scope::Cluster => targets.push((ar, None)),
                Scope::Namespaced => {
                    targets.extend(all_ns.iter().map(|ns| (ar.clone(), Some(ns.clone()))))
                }
            }
        }
        let lists: Vec<Vec<Member>> = futures::stream::iter(targets)
            .map(|(ar, ns)| {
                let lp = lp.clone();
                async move {
                    let api = match &ns {
                        Some(ns) => {
                            Api::<DynamicObject>::namespaced_with(self.client.clone(), ns, &ar)
                        }
                        None => Api::<DynamicObject>::all_with(self.client.clone(), &ar),
                    };
                    match api.list(&lp).await {
                        Ok(list) => Ok(list
                            .items
                            .into_iter()
                            .filter(|o| o.metadata.deletion_timestamp.is_none())
                            .filter_map(|o| {
                                Some(Member {
                                    resource: ar.clone(),
                                    namespace: ns.clone(),
                                    name: o.metadata.name?,
                                })
                            })
                            .collect()),
                        // A namespace that no longer exists holds nothing.
                        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Vec::new()),
                        Err(e) => Err(ClusterError::api(format!("listing {}", ar.plural), &e)),
                    }
                }
            })
            .buffered(self.concurrency)
            .try_collect()
            .await?;
        Ok(lists.into_iter().flatten().collect())
    }

    fn parent_api(&self, set: &ApplySet) -> (Api<DynamicObject>, String, Value) {
        match &set.parent {
            Parent::ConfigMap { namespace, name } => {
                let ar = ApiResource::from_gvk_with_plural(
                    &GroupVersionKind::gvk("", "v1", "ConfigMap"),
                    "configmaps",
                );
                (
                    Api::namespaced_with(self.client.clone(), namespace, &ar),
                    name.clone(),
                    json!({"apiVersion": "v1", "kind": "ConfigMap"}),
                )
            }
            Parent::Platform { namespace, name } => {
                let ar = ApiResource::from_gvk_with_plural(
                    &GroupVersionKind::gvk("terroir.eu", "v1alpha1", "Platform"),
                    "platforms",
                );
                (
                    Api::namespaced_with(self.client.clone(), namespace, &ar),
                    name.clone(),
                    json!({"apiVersion": "terroir.eu/v1alpha1", "kind": "Platform"}),
                )
            }
        }
    }

    async fn parent(&self, set: &ApplySet) -> Result<Option<DynamicObject>, ClusterError> {
        let (api, name, _) = self.parent_api(set);
        match api.get_opt(&name).await {
            Ok(p) => Ok(p),
            // The parent's namespace does not exist yet: no set yet.
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
            Err(e) => Err(ClusterError::api(format!("ApplySet parent {name}"), &e)),
        }
    }

    async fn write_parent(
        &self,
        set: &ApplySet,
        kinds: &BTreeSet<String>,
        namespaces: &BTreeSet<String>,
    ) -> Result<(), ClusterError> {
        let (api, name, mut body) = self.parent_api(set);
        let mut annotations = serde_json::Map::new();
        annotations.insert(
            applyset::ANNOTATION_TOOLING.into(),
            ApplySet::tooling().into(),
        );
        annotations.insert(
            applyset::ANNOTATION_GROUP_KINDS.into(),
            applyset::join(kinds).into(),
        );
        if !namespaces.is_empty() {
            annotations.insert(
                applyset::ANNOTATION_NAMESPACES.into(),
                applyset::join(namespaces).into(),
            );
        }
        body["metadata"] = json!({
            "name": name,
            "labels": {applyset::LABEL_ID: set.id},
            "annotations": annotations,
        });
        // The parent is applied with its own manager name so that the Platform's spec (owned by
        // whoever wrote it) is never touched.
        let pp = PatchParams::apply(&format!("{}-applyset", self.manager));
        api.patch(&name, &pp, &Patch::Apply(&body))
            .await
            .map_err(|e| ClusterError::api(format!("ApplySet parent {name}"), &e))?;
        Ok(())
    }
}

/// Annotation of a rendered object applied but kept out of the set, so that no prune removes it
/// (a tenant's namespace: deleting it would delete the tenant's Secret and workloads).
pub const ANNOTATION_PRUNE: &str = "terroir.eu/prune";

/// Label `m` as a member of `set`, unless it says it is never to be pruned.
fn join_set(m: &mut Manifest, set: &ApplySet) {
    let never = m
        .object
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_PRUNE))
        .is_some_and(|v| v == "never");
    if !never {
        m.object
            .metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(applyset::LABEL_PART_OF.into(), set.id.clone());
    }
}

/// The group-kinds and namespaces a parent records for its set (empty without a parent).
fn recorded(parent: Option<&DynamicObject>) -> (BTreeSet<String>, BTreeSet<String>) {
    let get = |key: &str| {
        applyset::parse_list(parent.and_then(|p| p.metadata.annotations.as_ref()?.get(key)))
    };
    (
        get(applyset::ANNOTATION_GROUP_KINDS),
        get(applyset::ANNOTATION_NAMESPACES),
    )
}

/// Whether the parent already records exactly this set (so that a no-op apply writes nothing).
fn parent_records(
    parent: Option<&DynamicObject>,
    set: &ApplySet,
    kinds: &BTreeSet<String>,
    namespaces: &BTreeSet<String>,
) -> bool {
    let Some(p) = parent else { return false };
    let label = p
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(applyset::LABEL_ID));
    let tooling = p
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(applyset::ANNOTATION_TOOLING));
    label == Some(&set.id)
        && tooling == Some(&ApplySet::tooling())
        && recorded(Some(p)) == (kinds.clone(), namespaces.clone())
}

/// An object without what the server manages, for comparing desired with live.
pub fn normalize(o: &DynamicObject) -> Value {
    let mut v = serde_json::to_value(o).unwrap_or(Value::Null);
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "managedFields",
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
        ] {
            meta.remove(k);
        }
        if meta
            .get("annotations")
            .and_then(Value::as_object)
            .is_some_and(|a| a.is_empty())
        {
            meta.remove("annotations");
        }
    }
    if let Some(obj) = v.as_object_mut() {
        obj.remove("status");
    }
    v
}

fn yaml(v: &Value) -> String {
    serde_saphyr::to_string(v)
        .unwrap_or_else(|_| serde_json::to_string_pretty(v).unwrap_or_default())
}

fn unified(old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header("live", "rendered")
        .to_string()
}

/// For messages: an error with its object.
pub fn error_line(label: &str, e: &kube::Error) -> String {
    format!("{label}: {}", describe(e))
}
