//! `terroir destroy` and `terroir rollback` on a `kubernetes` target, and what `apply` does
//! before it switches the application to another image: a restore point of the database, and
//! the switch recorded on the Deployment (annotation `terroir.eu/releases`).
//!
//! What is decided (which revision to go back to, what a destruction removes and keeps) is pure
//! and tested here; reading and changing the cluster is the rest.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Secret};
use kube::Client;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use serde_json::{Value, json};

use super::apply::Member;
use super::driver::Session;
use super::release::*;
use super::{ApplySet, ClusterError, Manifest, describe, group_kind, object_label};
use crate::deploy::{DeployError, Lifecycle, Work};
use crate::lifecycle::destroy::{self, Action, FinalCopy, Item, Kind};
use crate::lifecycle::release::{self, History, Loss, ReleaseError, RestorePoint, Switch};
use crate::lifecycle::rollback::{self, Report, Step};

/// One revision of the application's Deployment: a ReplicaSet it owns.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    pub number: i64,
    pub image: String,
    /// Its pod template, without the controller's `pod-template-hash`.
    pub template: Value,
}

/// The revisions of the Deployment `uid` among `sets`, oldest first.
pub fn revisions(uid: &str, sets: &[ReplicaSet]) -> Vec<Revision> {
    let mut out: Vec<Revision> = sets
        .iter()
        .filter(|rs| {
            rs.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == uid)
        })
        .filter_map(|rs| {
            let number = rs
                .metadata
                .annotations
                .as_ref()?
                .get(ANNOTATION_REVISION)?
                .parse()
                .ok()?;
            let mut template = serde_json::to_value(rs.spec.as_ref()?.template.as_ref()?).ok()?;
            if let Some(labels) = template
                .pointer_mut("/metadata/labels")
                .and_then(Value::as_object_mut)
            {
                labels.shift_remove(TEMPLATE_HASH);
            }
            Some(Revision {
                number,
                image: app_image(&template)?,
                template,
            })
        })
        .collect();
    out.sort_by_key(|r| r.number);
    out
}

/// The history the revisions tell when none is recorded: each revision replaced the one before.
fn history_of(revisions: &[Revision]) -> History {
    History(
        revisions
            .iter()
            .enumerate()
            .map(|(i, r)| Switch {
                at: 0,
                release: r.image.clone(),
                from: i.checked_sub(1).map(|j| revisions[j].image.clone()),
                restore_point: None,
                by: "apply".into(),
            })
            .collect(),
    )
}

/// The revision to go back to, and the history it was chosen from: `to` (a prefix of a kept
/// image), else the image the current one replaced (as `kubectl rollout undo`). The recorded
/// switches are the history when they end with the image running; else the revisions are.
pub fn choose(
    revisions: &[Revision],
    current: &str,
    recorded: &[Switch],
    to: Option<&str>,
) -> Result<(Revision, History), ReleaseError> {
    let history = if recorded.last().is_some_and(|s| s.release == current) {
        History(recorded.to_vec())
    } else {
        let mut h = history_of(revisions);
        if h.current() != Some(current) {
            h.0.push(Switch {
                at: 0,
                release: current.to_owned(),
                from: h.current().map(str::to_owned),
                restore_point: None,
                by: "apply".into(),
            });
        }
        h
    };
    let mut kept: Vec<String> = Vec::new();
    for r in revisions {
        if !kept.contains(&r.image) {
            kept.push(r.image.clone());
        }
    }
    let image = history.target(&kept, to)?;
    let revision = revisions
        .iter()
        .rev()
        .find(|r| r.image == image)
        .cloned()
        .ok_or_else(|| ReleaseError::NoPrevious {
            current: current.to_owned(),
        })?;
    Ok((revision, history))
}

/// Roll the application back to an earlier revision of its Deployment, and with `with_data` its
/// database to the restore point taken when the newer release replaced it.
async fn rollback_on(work: &Work<'_>, request: &rollback::Request) -> Result<Report, DeployError> {
    let manifests = super::manifests(work.tree)?;
    let platform = work.resolved.platform.name.clone();
    let Some(m) = app_deployment(work, &manifests).cloned() else {
        return Err(DeployError::Unsupported {
            what: "rollback",
            target: "kubernetes",
            why: format!("{platform} renders no application Deployment"),
        });
    };
    let namespace = m.namespace.clone().unwrap_or_default();
    let label = m.label();
    let session = Session::open(work).await?;
    let applier = session.applier();
    let client = applier.client().clone();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let live = deployments
        .get_opt(&m.name)
        .await
        .map_err(|e| ClusterError::api(&label, &e))?
        .ok_or_else(|| api_error(&label, "not found: is the platform applied?"))?;
    let uid = live.metadata.uid.clone().unwrap_or_default();
    let live_template = serde_json::to_value(
        live.spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default(),
    )
    .unwrap_or_default();
    let current = app_image(&live_template).unwrap_or_default();
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), &namespace);
    let selector = m
        .object
        .data
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|l| {
            l.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let listed = sets
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| ClusterError::api(format!("ReplicaSets of {label}"), &e))?;
    let revisions = revisions(&uid, &listed.items);
    let recorded = recorded_switches(&live);
    let (target, history) = choose(&revisions, &current, &recorded, request.to.as_deref())?;
    let mut report = Report {
        platform: platform.clone(),
        from: current.clone(),
        to: target.image.clone(),
        with_data: request.with_data,
        loss: None,
        changed: false,
        steps: Vec::new(),
        next_steps: Vec::new(),
    };
    let db = &work.resolved.components.database;
    let mut restore = None;
    if request.with_data {
        if !db.managed {
            return Err(DeployError::Unsupported {
                what: "rollback --with-data",
                target: "kubernetes",
                why: format!("{platform} deploys no database of its own"),
            });
        }
        if db.highly_available {
            return Err(DeployError::Unsupported {
                what: "rollback --with-data",
                target: "kubernetes",
                why: format!(
                    "{platform}'s database has {} replicas: its point-in-time restore on a cluster is that of a single server (Patroni would meet the old timeline in its standbys); roll back the release alone (without --with-data)",
                    db.replicas
                ),
            });
        }
        let point = history.restore_point(&target.image)?;
        report.loss = Some(loss(work, &client, &manifests, &point).await?);
        restore = Some(point);
        if !request.yes {
            report.next_steps.push(format!(
                "`terroir rollback {} --to {} --with-data --yes` restores the database to {} and goes back to {}",
                crate::deploy::document_name(work.document),
                target.image,
                report.loss.as_ref().map(|l| l.restore_point.name.clone()).unwrap_or_default(),
                target.image
            ));
            return Ok(report);
        }
    }

    // Changes from here: one at a time, under the platform's Lease.
    let set = applyset(work);
    let lease = if work.settings.cluster.lease {
        Some(
            crate::deploy::lock::Lease::take(
                &client,
                set.parent_namespace(),
                &platform,
                work.holder,
                work.settings.force_unlock,
                work.events,
            )
            .await?,
        )
    } else {
        None
    };
    report.changed = true;
    let outcome = roll_back(
        work,
        applier,
        &set,
        &m,
        &target,
        restore.as_ref(),
        &mut report,
    )
    .await;
    if let Some(lease) = lease {
        lease.release(work.events).await;
    }
    if let Err(e) = outcome {
        report.steps.push(Step {
            place: label.clone(),
            detail: e,
            ok: false,
        });
        return Ok(report);
    }
    // the switch back, recorded as apply records one
    let switches = append_switch(
        recorded,
        Switch {
            at: k8s_openapi::jiff::Timestamp::now().as_second(),
            release: target.image.clone(),
            from: Some(current.clone()),
            restore_point: None,
            by: "rollback".into(),
        },
        work.resolved.components.app.keep_releases as usize,
    );
    if let Err(e) = write_switches(&client, &namespace, &m.name, &switches).await {
        report.steps.push(Step {
            place: label.clone(),
            detail: e.to_string(),
            ok: false,
        });
    }
    report.next_steps.push(format!(
        "{} still names {current}: set components.app.image to {} before the next `terroir apply`, or it switches to {current} again",
        crate::deploy::document_name(work.document),
        target.image
    ));
    Ok(report)
}

/// What restoring `point` loses, asked of the database.
async fn loss(
    work: &Work<'_>,
    client: &Client,
    manifests: &[Manifest],
    point: &RestorePoint,
) -> Result<Loss, ClusterError> {
    let what = "what restoring the database loses";
    let (namespace, pod) = database_pod(client, manifests)
        .await
        .map_err(|e| api_error(what, e))?;
    let db = &work.resolved.components.database.name;
    let run = |database: String, sql: String| {
        let (namespace, pod) = (namespace.clone(), pod.clone());
        async move {
            exec(
                client,
                &namespace,
                &pod,
                POSTGRES_CONTAINER,
                &psql(&database, &sql),
            )
            .await
            .map_err(|e| api_error(what, format!("psql in pod {namespace}/{pod}: {e}")))
        }
    };
    let now = run(
        db.clone(),
        "select to_char(now() at time zone 'utc', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') || '|' || extract(epoch from now())::bigint".into(),
    )
    .await?;
    let (now, unix) = now
        .trim()
        .split_once('|')
        .and_then(|(t, u)| Some((t.to_owned(), u.parse::<i64>().ok()?)))
        .ok_or_else(|| api_error(what, format!("the database's time: {now:?}")))?;
    // the restore takes the whole server back: the tenants' databases too (transaction ids are
    // the server's, so the same query counts there), their tables named with their database
    let mut tables =
        release::parse_rows(&run(db.clone(), release::rows_since_sql(point.txid)).await?);
    for tenant in &work.resolved.tenants {
        let rows = run(tenant.database.clone(), release::rows_since_sql(point.txid)).await?;
        tables.extend(release::parse_rows(&rows).into_iter().map(|mut t| {
            t.table = format!("{}.{}", tenant.database, t.table);
            t
        }));
    }
    tables.sort_by(|a, b| b.rows.cmp(&a.rows).then_with(|| a.table.cmp(&b.table)));
    Ok(Loss {
        database: db.clone(),
        restore_point: point.clone(),
        now,
        seconds: unix - point.unix,
        tables,
    })
}

/// The changes of a rollback, each recorded as a step; an error is the step that failed.
async fn roll_back(
    work: &Work<'_>,
    applier: &super::Applier,
    set: &ApplySet,
    m: &Manifest,
    target: &Revision,
    restore: Option<&RestorePoint>,
    report: &mut Report,
) -> Result<(), String> {
    let client = applier.client().clone();
    let namespace = m.namespace.clone().unwrap_or_default();
    let label = m.label();
    let limit = deadline(work);
    if let Some(point) = restore {
        // 1. the application stopped: nothing writes while the database goes back
        let api: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
        api.patch(
            &m.name,
            &PatchParams::apply(RELEASES_MANAGER),
            &Patch::Merge(&json!({"spec": {"replicas": 0}})),
        )
        .await
        .map_err(|e| format!("scaling to 0: {}", describe(&e)))?;
        wait_rollout(&client, &namespace, &m.name, limit)
            .await
            .map_err(|e| e.to_string())?;
        report.steps.push(Step {
            place: label.clone(),
            detail: "scaled to 0: the application no longer writes".into(),
            ok: true,
        });
        // 2. the database restored to the restore point; should it fail, the application
        // comes back as it was (what the document renders)
        let detail = match restore_database(work, &client, point).await {
            Ok(detail) => detail,
            Err(e) => {
                let replicas = m.object.data["spec"]["replicas"].clone();
                let back = api
                    .patch(
                        &m.name,
                        &PatchParams::apply(RELEASES_MANAGER),
                        &Patch::Merge(&json!({"spec": {"replicas": replicas}})),
                    )
                    .await
                    .map(|_| "scaled back")
                    .unwrap_or("NOT scaled back: `terroir apply --force-conflicts` does");
                return Err(format!(
                    "restoring the database to {}: {e}; the application was {back}",
                    point.name
                ));
            }
        };
        report.steps.push(Step {
            place: format!(
                "StatefulSet {namespace}/{}",
                work.resolved.components.database.service_name
            ),
            detail,
            ok: true,
        });
    }
    // 3. the earlier template, with the document's replicas, as `apply` would apply it
    let mut old = m.clone();
    old.object.data["spec"]["template"] = target.template.clone();
    applier
        .apply_member(&old, set, true)
        .await
        .map_err(|e| e.to_string())?;
    wait_rollout(&client, &namespace, &m.name, limit)
        .await
        .map_err(|e| e.to_string())?;
    report.steps.push(Step {
        place: label,
        detail: format!(
            "back to revision {} ({}), rolled out",
            target.number, target.image
        ),
        ok: true,
    });
    Ok(())
}

async fn wait_rollout(
    client: &Client,
    namespace: &str,
    name: &str,
    limit: Duration,
) -> Result<(), ClusterError> {
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"));
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
    super::wait::wait_rollout(api, "Deployment", name, limit).await
}

/// The point-in-time restore of `backup restore`, to the named restore point.
async fn restore_database(
    work: &Work<'_>,
    client: &Client,
    point: &RestorePoint,
) -> Result<String, String> {
    let document = work
        .document
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| "platform.yaml".into());
    let resolved = work.resolved.clone();
    let namespace = work.resolved.platform.namespace.clone();
    let client = client.clone();
    let point = point.clone();
    let timeout = deadline(work);
    // the restore's steps are synchronous (they drive Jobs on a runtime of their own)
    tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let platform = crate::backup::kubernetes::ClusterPlatform::reached(
            &runtime, &document, resolved, namespace, client, timeout,
        )
        .map_err(|e| crate::text::error_chain(&e))?;
        let options = crate::backup::kubernetes::RestoreOptions::to_restore_point(
            &point.name,
            point.unix,
            &point.backup,
        );
        platform
            .restore(&options, &|_| {})
            .map(|r| {
                format!(
                    "restored to restore point {} ({}) in {:.0} s",
                    point.name, point.time, r.seconds
                )
            })
            .map_err(|e| crate::text::error_chain(&e))
    })
    .await
    .map_err(|e| e.to_string())?
}

// ------------------------------------------------------------------------------------------
// Destroy

/// What was listed on the cluster, for the inventory.
#[derive(Debug, Clone, Default)]
pub struct Listed {
    /// The set's members (Namespaces included).
    pub members: Vec<Member>,
    /// The set's parent, when it is there.
    pub parent: Option<Member>,
    /// The Secrets terroir generated for the platform: namespace, name.
    pub secrets: Vec<(String, String)>,
    /// The PersistentVolumeClaims in the platform's namespaces: namespace, name.
    pub claims: Vec<(String, String)>,
    /// Namespaces the platform renders but never deletes (a tenant's), with why.
    pub kept_namespaces: Vec<(String, String)>,
}

/// An item of the plan and the object it is.
#[derive(Debug, Clone)]
pub struct Found {
    pub item: Item,
    pub object: Option<Member>,
}

fn core(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", kind), plural)
}

fn is_namespace(m: &Member) -> bool {
    m.resource.group.is_empty() && m.resource.kind == "Namespace"
}

fn is_claim(m: &Member) -> bool {
    m.resource.group.is_empty() && m.resource.kind == "PersistentVolumeClaim"
}

/// The plan's items, in the order they are handled: the set's members, its parent, the
/// generated Secrets, the volumes, then the namespaces. Without `delete_data` the volumes are
/// kept, and so is every namespace holding one (deleting a namespace deletes its volumes).
pub fn inventory_of(listed: &Listed, options: &destroy::Options) -> Vec<Found> {
    let mut out = Vec::new();
    // claims are volumes (kept without --delete-data), rendered ones too
    let mut objects: Vec<&Member> = listed
        .members
        .iter()
        .filter(|m| !is_namespace(m) && !is_claim(m))
        .collect();
    // namespaced objects first, then those of the cluster, each by kind and name
    objects.sort_by_key(|m| {
        (
            m.namespace.is_none(),
            m.resource.kind.clone(),
            m.namespace.clone(),
            m.name.clone(),
        )
    });
    objects.dedup_by_key(|m| (m.resource.kind.clone(), m.namespace.clone(), m.name.clone()));
    for m in objects.into_iter().chain(listed.parent.as_ref()) {
        out.push(Found {
            item: Item::new(
                PLACE,
                Kind::Object,
                object_label(&m.resource.kind, m.namespace.as_deref(), &m.name),
                Action::Remove,
            ),
            object: Some(m.clone()),
        });
    }
    let member_secrets: BTreeSet<(Option<String>, String)> = listed
        .members
        .iter()
        .filter(|m| m.resource.group.is_empty() && m.resource.kind == "Secret")
        .map(|m| (m.namespace.clone(), m.name.clone()))
        .collect();
    let mut secrets = listed.secrets.clone();
    secrets.sort();
    secrets.dedup();
    for (ns, name) in secrets {
        if member_secrets.contains(&(Some(ns.clone()), name.clone())) {
            continue;
        }
        out.push(Found {
            item: Item::new(PLACE, Kind::Secret, format!("{ns}/{name}"), Action::Remove),
            object: Some(Member {
                resource: core("Secret", "secrets"),
                namespace: Some(ns),
                name,
            }),
        });
    }
    let mut claims = listed.claims.clone();
    claims.extend(
        listed
            .members
            .iter()
            .filter(|m| is_claim(m))
            .filter_map(|m| Some((m.namespace.clone()?, m.name.clone()))),
    );
    claims.sort();
    claims.dedup();
    let mut held: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (ns, name) in claims {
        let action = if options.delete_data {
            Action::Remove
        } else {
            held.entry(ns.clone())
                .or_default()
                .push(format!("{ns}/{name}"));
            Action::Keep {
                why: "a volume holds data: kept without --delete-data".into(),
            }
        };
        out.push(Found {
            item: Item::new(PLACE, Kind::Volume, format!("{ns}/{name}"), action),
            object: Some(Member {
                resource: core("PersistentVolumeClaim", "persistentvolumeclaims"),
                namespace: Some(ns),
                name,
            }),
        });
    }
    let mut namespaces: Vec<&Member> = listed.members.iter().filter(|m| is_namespace(m)).collect();
    namespaces.sort_by_key(|m| m.name.clone());
    namespaces.dedup_by_key(|m| m.name.clone());
    for m in namespaces {
        let action = match held.get(&m.name) {
            Some(volumes) => Action::Keep {
                why: format!(
                    "holds the kept volume{} {}: deleting a namespace deletes its volumes (--delete-data removes them)",
                    crate::text::plural(volumes.len()),
                    volumes.join(", ")
                ),
            },
            None => Action::Remove,
        };
        out.push(Found {
            item: Item::new(PLACE, Kind::Namespace, m.name.clone(), action),
            object: Some(m.clone()),
        });
    }
    for (ns, why) in &listed.kept_namespaces {
        if out
            .iter()
            .any(|f| f.item.kind == Kind::Namespace && f.item.what == *ns)
        {
            continue;
        }
        out.push(Found {
            item: Item::new(
                PLACE,
                Kind::Namespace,
                ns.clone(),
                Action::Keep { why: why.clone() },
            ),
            object: None,
        });
    }
    out
}

/// Everything of the platform's on the cluster, as `inventory_of` lists it.
async fn find(
    work: &Work<'_>,
    applier: &super::Applier,
    options: &destroy::Options,
) -> Result<Vec<Found>, DeployError> {
    let manifests = super::manifests(work.tree)?;
    let set = applyset(work);
    let platform = &work.resolved.platform.name;
    let mut kinds = BTreeSet::new();
    let mut namespaces = BTreeSet::new();
    let mut kept_namespaces = Vec::new();
    for m in &manifests {
        let never = m
            .object
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(super::apply::ANNOTATION_PRUNE))
            .is_some_and(|v| v == "never");
        if m.wave() == 1 && never {
            kept_namespaces.push((
                m.name.clone(),
                format!(
                    "rendered with terroir.eu/prune: never (a tenant's): what is in it is not only {platform}'s; delete it with `kubectl delete namespace {}`",
                    m.name
                ),
            ));
        } else {
            kinds.insert(group_kind(&m.gvk));
        }
        if let Some(ns) = &m.namespace {
            namespaces.insert(ns.clone());
        }
        if m.wave() == 1 {
            namespaces.insert(m.name.clone());
        }
    }
    namespaces.remove(set.parent_namespace());
    let (parent, members) = applier.set_members(&set, &kinds, &namespaces).await?;
    // the Platform resource (the operator's parent) is its author's, not the platform's: the
    // operator's finalizer deletes the rest when it is deleted
    let parent = match (&parent, &set.parent) {
        (Some(_), super::applyset::Parent::ConfigMap { namespace, name }) => Some(Member {
            resource: core("ConfigMap", "configmaps"),
            namespace: Some(namespace.clone()),
            name: name.clone(),
        }),
        _ => None,
    };
    let mut all_namespaces = namespaces.clone();
    all_namespaces.insert(set.parent_namespace().to_owned());
    let owned_namespaces: BTreeSet<String> = members
        .iter()
        .filter(|m| is_namespace(m))
        .map(|m| m.name.clone())
        .collect();
    let client = applier.client();
    let generated = format!(
        "{}=true,{}={platform}",
        super::secrets::LABEL_GENERATED,
        super::secrets::LABEL_PLATFORM
    );
    let instance = format!("app.kubernetes.io/instance={platform}");
    let mut secrets = Vec::new();
    let mut claims = Vec::new();
    for ns in &all_namespaces {
        let api: Api<Secret> = Api::namespaced(client.clone(), ns);
        match api.list(&ListParams::default().labels(&generated)).await {
            Ok(list) => secrets.extend(
                list.items
                    .into_iter()
                    .filter(|s| s.metadata.deletion_timestamp.is_none())
                    .filter_map(|s| Some((ns.clone(), s.metadata.name?))),
            ),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(ClusterError::api(format!("Secrets in {ns}"), &e).into()),
        }
        // every claim of a namespace the platform owns goes with it; elsewhere, its own
        let lp = if owned_namespaces.contains(ns) {
            ListParams::default()
        } else {
            ListParams::default().labels(&instance)
        };
        let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
        match api.list(&lp).await {
            Ok(list) => claims.extend(
                list.items
                    .into_iter()
                    .filter(|c| c.metadata.deletion_timestamp.is_none())
                    .filter_map(|c| Some((ns.clone(), c.metadata.name?))),
            ),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                return Err(
                    ClusterError::api(format!("PersistentVolumeClaims in {ns}"), &e).into(),
                );
            }
        }
    }
    let listed = Listed {
        members,
        parent,
        secrets,
        claims,
        kept_namespaces,
    };
    Ok(inventory_of(&listed, options))
}

async fn inventory_on(
    work: &Work<'_>,
    options: &destroy::Options,
) -> Result<destroy::Plan, DeployError> {
    if options.purge_packages {
        return Err(DeployError::Unsupported {
            what: "destroy --purge-packages",
            target: "kubernetes",
            why: "a cluster's platform installs no package (its programs are in its images); run destroy without it".into(),
        });
    }
    let session = Session::open(work).await?;
    let found = find(work, session.applier(), options).await?;
    let last_backup = last_backup(work, session.applier().client()).await;
    Ok(destroy::Plan {
        platform: work.resolved.platform.name.clone(),
        target: "kubernetes".into(),
        options: *options,
        items: found.into_iter().map(|f| f.item).collect(),
        last_backup,
    })
}

/// The newest backup in the platform's repository, read in the database's pod; `None` when it
/// cannot be read cheaply (no backups, no running database).
async fn last_backup(work: &Work<'_>, client: &Client) -> Option<FinalCopy> {
    let backup = crate::backup::context(work.resolved)?;
    let manifests = super::manifests(work.tree).ok()?;
    let (namespace, pod) = database_pod(client, &manifests).await.ok()?;
    let newest = newest_backup(client, &namespace, &pod, &backup.stanza)
        .await
        .ok()??;
    Some(FinalCopy {
        kind: "backup".into(),
        location: newest.label,
        finished: newest.stopped,
        digests: BTreeMap::new(),
    })
}

async fn destroy_on(
    work: &Work<'_>,
    plan: &destroy::Plan,
) -> Result<Vec<destroy::Done>, DeployError> {
    let session = Session::open(work).await?;
    let applier = session.applier();
    let found = find(work, applier, &plan.options).await?;
    let set = applyset(work);
    // one change at a time: the Lease beside the parent (gone with its namespace), while that
    // namespace is there to hold it
    let namespaces: Api<Namespace> = Api::all(applier.client().clone());
    let parent_there = namespaces
        .get_opt(set.parent_namespace())
        .await
        .map_err(|e| ClusterError::api(format!("Namespace {}", set.parent_namespace()), &e))?
        .is_some_and(|n| n.metadata.deletion_timestamp.is_none());
    let lease = if work.settings.cluster.lease && parent_there {
        Some(
            crate::deploy::lock::Lease::take(
                applier.client(),
                set.parent_namespace(),
                &work.resolved.platform.name,
                work.holder,
                work.settings.force_unlock,
                work.events,
            )
            .await?,
        )
    } else {
        None
    };
    let mut done = Vec::new();
    let mut deleted_namespaces = Vec::new();
    for item in plan.items.iter().filter(|i| !i.kept()) {
        let object = found
            .iter()
            .find(|f| f.item.kind == item.kind && f.item.what == item.what)
            .and_then(|f| f.object.clone());
        let failed = match &object {
            // gone since the plan was made
            None => None,
            Some(m) => applier.delete(m).await.err().map(|e| e.to_string()),
        };
        if failed.is_none() && item.kind == Kind::Namespace {
            deleted_namespaces.push(done.len());
        } else if failed.is_none() {
            work.events.note(&format!("  deleted  {}", item.what));
        }
        done.push(destroy::Done {
            item: item.clone(),
            failed,
        });
    }
    // a namespace is gone once everything in it is
    let limit = deadline(work);
    let api = namespaces;
    for i in deleted_namespaces {
        let name = done[i].item.what.clone();
        work.events
            .note(&format!("  waiting for namespace {name} to be gone"));
        let settled = super::wait::watch_until(api.clone(), &name, limit, |event| {
            matches!(event, Ok(None)).then_some(())
        })
        .await;
        if settled.is_err() {
            done[i].failed = Some(format!(
                "still terminating after {} s (an object in it keeps a finalizer?)",
                limit.as_secs()
            ));
        } else {
            work.events.note(&format!("  deleted  namespace {name}"));
        }
    }
    if let Some(lease) = lease {
        lease.release(work.events).await;
    }
    Ok(done)
}

impl Lifecycle for super::driver::Cluster {
    async fn inventory(
        &self,
        work: &Work<'_>,
        options: &destroy::Options,
    ) -> Result<destroy::Plan, DeployError> {
        inventory_on(work, options).await
    }

    async fn destroy(
        &self,
        work: &Work<'_>,
        plan: &destroy::Plan,
    ) -> Result<Vec<destroy::Done>, DeployError> {
        destroy_on(work, plan).await
    }

    async fn rollback(
        &self,
        work: &Work<'_>,
        request: &rollback::Request,
    ) -> Result<Report, DeployError> {
        rollback_on(work, request).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    fn member(kind: &str, ns: Option<&str>, name: &str) -> Member {
        let (group, plural) = match kind {
            "Deployment" | "StatefulSet" => ("apps", format!("{}s", kind.to_lowercase())),
            _ => ("", format!("{}s", kind.to_lowercase())),
        };
        Member {
            resource: ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk(group, "v1", kind),
                &plural,
            ),
            namespace: ns.map(Into::into),
            name: name.into(),
        }
    }

    fn listed() -> Listed {
        Listed {
            members: vec![
                member("Namespace", None, "crm"),
                member("Deployment", Some("crm"), "crm-app"),
                member("ClusterRole", None, "crm-reader"),
                member("StatefulSet", Some("crm"), "crm-postgres"),
                member("Namespace", None, "crm-monitoring"),
                member("Service", Some("crm-monitoring"), "crm-prometheus"),
                member(
                    "PersistentVolumeClaim",
                    Some("crm-monitoring"),
                    "crm-grafana",
                ),
            ],
            parent: Some(member("ConfigMap", Some("crm"), "terroir-crm")),
            secrets: vec![("crm".into(), "crm-postgres-credentials".into())],
            claims: vec![("crm".into(), "data-crm-postgres-0".into())],
            kept_namespaces: vec![("tenant-a".into(), "a tenant's".into())],
        }
    }

    fn whats(found: &[Found]) -> Vec<String> {
        found
            .iter()
            .map(|f| {
                format!(
                    "{:?} {} {}",
                    f.item.kind,
                    f.item.what,
                    if f.item.kept() { "keep" } else { "remove" }
                )
            })
            .collect()
    }

    #[test]
    fn the_inventory_keeps_volumes_and_the_namespaces_holding_them_without_delete_data() {
        let found = inventory_of(&listed(), &destroy::Options::default());
        assert_eq!(
            whats(&found),
            [
                "Object Deployment crm/crm-app remove",
                "Object Service crm-monitoring/crm-prometheus remove",
                "Object StatefulSet crm/crm-postgres remove",
                "Object ClusterRole crm-reader remove",
                "Object ConfigMap crm/terroir-crm remove",
                "Secret crm/crm-postgres-credentials remove",
                "Volume crm/data-crm-postgres-0 keep",
                "Volume crm-monitoring/crm-grafana keep",
                "Namespace crm keep",
                "Namespace crm-monitoring keep",
                "Namespace tenant-a keep",
            ]
        );
        let Action::Keep { why } = &found[8].item.action else {
            panic!()
        };
        assert!(why.contains("crm/data-crm-postgres-0"), "{why}");
    }

    #[test]
    fn with_delete_data_volumes_and_their_namespaces_go() {
        let options = destroy::Options {
            delete_data: true,
            ..Default::default()
        };
        let found = inventory_of(&listed(), &options);
        let kept: Vec<&str> = found
            .iter()
            .filter(|f| f.item.kept())
            .map(|f| f.item.what.as_str())
            .collect();
        assert_eq!(kept, ["tenant-a"]);
    }

    #[test]
    fn nothing_listed_leaves_nothing_to_do() {
        let empty = Listed::default();
        let found = inventory_of(&empty, &destroy::Options::default());
        assert!(found.is_empty());
        // after a destroy without --delete-data: the volumes and their namespace, all kept
        let after = Listed {
            members: vec![member("Namespace", None, "crm")],
            claims: vec![("crm".into(), "data-crm-postgres-0".into())],
            ..Default::default()
        };
        assert!(
            inventory_of(&after, &destroy::Options::default())
                .iter()
                .all(|f| f.item.kept())
        );
    }

    fn rs(uid: &str, revision: &str, image: &str) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {
                "name": format!("crm-app-{revision}"),
                "annotations": {ANNOTATION_REVISION: revision},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "crm-app", "uid": uid, "controller": true}],
            },
            "spec": {
                "selector": {"matchLabels": {"app": "crm"}},
                "template": {
                    "metadata": {"labels": {"app": "crm", TEMPLATE_HASH: "abc"}},
                    "spec": {"containers": [{"name": APP_CONTAINER, "image": image}]},
                },
            },
        }))
        .unwrap()
    }

    #[test]
    fn revisions_are_the_replica_sets_the_deployment_owns_without_their_hash() {
        let sets = [
            rs("u1", "3", "app:3"),
            rs("u1", "1", "app:1"),
            rs("other", "2", "app:x"),
            rs("u1", "2", "app:2"),
        ];
        let r = revisions("u1", &sets);
        assert_eq!(
            r.iter()
                .map(|r| (r.number, r.image.as_str()))
                .collect::<Vec<_>>(),
            [(1, "app:1"), (2, "app:2"), (3, "app:3")]
        );
        assert!(
            r[0].template["metadata"]["labels"]
                .get(TEMPLATE_HASH)
                .is_none()
        );
    }

    #[test]
    fn the_revision_chosen_is_the_previous_one_or_the_one_named() {
        let sets = [
            rs("u", "1", "app:1"),
            rs("u", "2", "app:2"),
            rs("u", "3", "app:3"),
        ];
        let r = revisions("u", &sets);
        // no recorded switches: as `kubectl rollout undo`
        assert_eq!(choose(&r, "app:3", &[], None).unwrap().0.number, 2);
        assert_eq!(choose(&r, "app:3", &[], Some("app:1")).unwrap().0.number, 1);
        assert!(matches!(
            choose(&r, "app:3", &[], Some("app:3")),
            Err(ReleaseError::Current(_))
        ));
        assert!(matches!(
            choose(&r, "app:3", &[], Some("app:")),
            Err(ReleaseError::Ambiguous(..))
        ));
        assert!(matches!(
            choose(&r, "app:3", &[], Some("web")),
            Err(ReleaseError::Unknown(..))
        ));
        assert!(matches!(
            choose(&r[..1], "app:1", &[], None),
            Err(ReleaseError::NoPrevious { .. })
        ));
        // recorded switches: the restore point of the switch away from the target comes with it
        let point = RestorePoint {
            name: "terroir-crm-100".into(),
            time: "2026-12-05T10:00:00Z".into(),
            unix: 100,
            lsn: "0/3000090".into(),
            txid: 750,
            backup: "20261205-095000F".into(),
        };
        let recorded = vec![
            Switch {
                at: 50,
                release: "app:2".into(),
                from: Some("app:1".into()),
                restore_point: None,
                by: "apply".into(),
            },
            Switch {
                at: 100,
                release: "app:3".into(),
                from: Some("app:2".into()),
                restore_point: Some(point.clone()),
                by: "apply".into(),
            },
        ];
        let (target, history) = choose(&r, "app:3", &recorded, None).unwrap();
        assert_eq!(target.image, "app:2");
        assert_eq!(history.restore_point(&target.image).unwrap(), point);
    }

    #[test]
    fn the_record_keeps_the_last_releases() {
        let s = |r: &str| Switch {
            at: 0,
            release: r.into(),
            from: None,
            restore_point: None,
            by: "apply".into(),
        };
        let kept = append_switch(vec![s("a"), s("b"), s("c")], s("d"), 3);
        assert_eq!(
            kept.iter().map(|s| s.release.as_str()).collect::<Vec<_>>(),
            ["b", "c", "d"]
        );
    }

    #[test]
    fn a_restore_point_is_read_and_its_segment_seen_archived() {
        let (p, segment) = parse_restore_point(
            "terroir-crm-1",
            "0/3000090|750|2026-12-05T10:00:00Z|1796464800|000000010000000000000003\n",
        )
        .unwrap();
        assert_eq!(
            (p.lsn.as_str(), p.txid, p.unix),
            ("0/3000090", 750, 1796464800)
        );
        assert_eq!(segment, "000000010000000000000003");
        assert_eq!(
            archived(&segment, "000000010000000000000002|\n"),
            (false, None)
        );
        assert_eq!(
            archived(&segment, "000000010000000000000003|\n"),
            (true, None)
        );
        // a later timeline after a restore is later still
        assert_eq!(
            archived(&segment, "000000020000000000000004|"),
            (true, None)
        );
        assert_eq!(
            archived(
                &segment,
                "000000010000000000000002|000000010000000000000003"
            ),
            (false, Some("000000010000000000000003".into()))
        );
        assert!(parse_restore_point("x", "ERROR: no").is_none());
    }

    #[test]
    fn the_primary_is_a_running_pod_labelled_so_or_a_single_server() {
        let pod = |name: &str, phase: &str, role: Option<&str>| -> Pod {
            let mut v = json!({"metadata": {"name": name}, "status": {"phase": phase}});
            if let Some(r) = role {
                v["metadata"]["labels"] = json!({POSTGRES_ROLE_LABEL: r});
            }
            serde_json::from_value(v).unwrap()
        };
        assert_eq!(
            primary(&[
                pod("db-0", "Running", Some("replica")),
                pod("db-1", "Running", Some("master"))
            ]),
            Some("db-1".into())
        );
        assert_eq!(
            primary(&[pod("db-0", "Running", None)]),
            Some("db-0".into())
        );
        assert_eq!(primary(&[pod("db-0", "Pending", None)]), None);
        assert_eq!(primary(&[pod("db-0", "Running", Some("replica"))]), None);
    }
}
