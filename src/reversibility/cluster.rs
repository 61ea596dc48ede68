//! Export, restore and drill on Kubernetes targets: the same export (layout, manifest.json,
//! SHA256SUMS, checks) as on hosts, read and written through the API server: programs run in
//! the platform's pods by exec (WebSocket), Secrets read through the API.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, ListParams};
use serde_json::Value;

use super::export::{
    DumpTarget, Exporter, Options as ExportOptions, Progress, SPOOL_DIR, Sealing, begin,
    dump_database, encrypt_secrets, parse_recipients, queue_figures, queue_tar_script, safe, seal,
    secs,
};
use super::restore::{Options as RestoreOptions, Report};
use super::source::{PodExec, PodProgram, Source};
use super::{Manifest, ReversibilityError, SecretsEntry, Skipped, read_error};
use crate::deploy::baremetal::site::SiteError;
use crate::deploy::kubernetes::ClusterError;
use crate::pipeline::render::RenderedTree;
use crate::pipeline::resolve::ResolvedPlatform;

/// The container PostgreSQL runs in, in the database's pods.
pub const POSTGRES_CONTAINER: &str = "postgres";

#[derive(Debug, thiserror::Error)]
pub enum ClusterPlatformError {
    #[error("{}: {source}", document.display())]
    Connect {
        document: PathBuf,
        source: Box<ClusterError>,
    },
    #[error("cannot start the runtime that talks to the cluster")]
    Runtime(#[source] std::io::Error),
    #[error("{}: the rendered manifests have no workload `{component}` (app.kubernetes.io/name)", document.display())]
    NoWorkload {
        document: PathBuf,
        component: String,
    },
    #[error(
        "namespace {namespace}: no running pod of {workload} (selector {selector}); is the platform deployed (`terroir apply`)?"
    )]
    NoPod {
        namespace: String,
        workload: String,
        selector: String,
    },
    #[error("namespace {namespace}: {what}: {message}")]
    Api {
        namespace: String,
        what: String,
        message: String,
    },
    #[error(
        "namespace {namespace}: {workload}: {what}: each replica holds its own mail queue, and the queue of one not running cannot be exported; export again once every replica runs (selector {selector})"
    )]
    ReplicasDown {
        namespace: String,
        workload: String,
        what: String,
        selector: String,
    },
    #[error("{} and {} are the same namespace ({namespace}) of the same cluster: a drill restores into another platform", from.display(), into.display())]
    SameNamespace {
        from: PathBuf,
        into: PathBuf,
        namespace: String,
    },
}

/// A platform on a Kubernetes cluster, ready to be reached: its document rendered, a client.
pub struct ClusterPlatform {
    pub document: PathBuf,
    pub document_text: Vec<u8>,
    pub resolved: ResolvedPlatform,
    pub tree: RenderedTree,
    pub namespace: String,
    /// The API server's URL, to tell two clusters apart.
    pub server: String,
    pub exec: PodExec,
}

/// A workload of the rendered manifests: what selects its pods, its containers.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub kind: String,
    pub name: String,
    /// `spec.selector.matchLabels`, as a label selector.
    pub selector: String,
    /// `spec.replicas` (1 when not set).
    pub replicas: u64,
}

/// The workload of `component` (its pods' `app.kubernetes.io/name`) among rendered objects.
pub fn workload(objects: &[(String, String, Value)], component: &str) -> Option<Workload> {
    objects.iter().find_map(|(kind, name, data)| {
        if !matches!(kind.as_str(), "StatefulSet" | "Deployment") {
            return None;
        }
        let spec = &data["spec"];
        if spec["template"]["metadata"]["labels"]["app.kubernetes.io/name"] != component {
            return None;
        }
        let labels = spec["selector"]["matchLabels"].as_object()?;
        let mut pairs: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect();
        pairs.sort();
        let selector = pairs.join(",");
        Some(Workload {
            kind: kind.clone(),
            name: name.clone(),
            selector,
            replicas: spec["replicas"].as_u64().unwrap_or(1),
        })
    })
}

/// The Service selecting `component`'s pods: its name and first port.
pub fn service(objects: &[(String, String, Value)], component: &str) -> Option<(String, u64)> {
    objects.iter().find_map(|(kind, name, data)| {
        (kind == "Service" && data["spec"]["selector"]["app.kubernetes.io/name"] == component)
            .then(|| data["spec"]["ports"][0]["port"].as_u64())
            .flatten()
            .map(|port| (name.clone(), port))
    })
}

/// The TSDB blocks in a snapshot's tar: the directories holding a meta.json, sorted.
pub fn blocks_in_tar(tar: &Path) -> std::io::Result<Vec<String>> {
    let mut archive = tar::Archive::new(std::io::BufReader::new(std::fs::File::open(tar)?));
    let mut blocks = Vec::new();
    for entry in archive.entries()? {
        let path = entry?.path()?.to_string_lossy().into_owned();
        let path = path.trim_start_matches("./");
        if let Some(block) = path.strip_suffix("/meta.json")
            && !block.is_empty()
            && !block.contains('/')
        {
            blocks.push(block.to_owned());
        }
    }
    blocks.sort();
    Ok(blocks)
}

/// What the export keeps of the platform's live objects (group, version, kind, plural): what a
/// destination needs to be compared with, no Secret.
const LIVE_KINDS: [(&str, &str, &str, &str); 9] = [
    ("", "v1", "ConfigMap", "configmaps"),
    ("", "v1", "Service", "services"),
    ("apps", "v1", "Deployment", "deployments"),
    ("apps", "v1", "StatefulSet", "statefulsets"),
    ("batch", "v1", "CronJob", "cronjobs"),
    ("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
    (
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
    ),
    (
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
    ),
    ("", "v1", "ServiceAccount", "serviceaccounts"),
];

/// Where the rendered Prometheus keeps its TSDB (`--storage.tsdb.path`).
pub const PROMETHEUS_TSDB: &str = "/prometheus";

/// The label Patroni sets on the database's pods (`role_label` in the rendered configuration).
pub const POSTGRES_ROLE_LABEL: &str = "terroir.eu/postgres-role";

/// A pod that runs and is not being deleted.
fn is_running(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && p.status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .is_some_and(|ph| ph == "Running")
}

/// The names of the pods that run (not being deleted), sorted.
pub fn running_pods(pods: &[Pod]) -> Vec<String> {
    let mut names: Vec<String> = pods
        .iter()
        .filter(|p| is_running(p))
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    names.sort();
    names
}

/// Where each MTA pod's queue goes in the export (`mail/<name>/`), with the pod it is read from.
/// One replica: the queue is the workload's (its volume outlives the pod), named after it, as a
/// host's on hosts. Several: each pod has its own queue volume, and each queue is named after its
/// pod (a StatefulSet's pods keep their names); every replica must run, or a queue would be
/// missing from the export.
pub fn mail_places(w: &Workload, running: &[String]) -> Result<Vec<(String, String)>, String> {
    if w.replicas <= 1 {
        return Ok(running
            .first()
            .map(|pod| vec![(w.name.clone(), pod.clone())])
            .unwrap_or_default());
    }
    if (running.len() as u64) < w.replicas {
        return Err(format!(
            "{} of its {} replicas run ({})",
            running.len(),
            w.replicas,
            if running.is_empty() {
                "none".to_owned()
            } else {
                running.join(", ")
            }
        ));
    }
    Ok(running.iter().map(|p| (p.clone(), p.clone())).collect())
}

/// The pod to run a program in: a running one, the replicated database's primary first (a
/// restore writes), then the first by name (a StatefulSet's ordinal 0).
pub fn pick_pod(pods: &[Pod]) -> Option<String> {
    let mut running: Vec<(bool, String)> = pods
        .iter()
        .filter(|p| is_running(p))
        .filter_map(|p| {
            let primary = p
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(POSTGRES_ROLE_LABEL))
                .is_some_and(|r| r == "primary");
            p.metadata.name.clone().map(|n| (!primary, n))
        })
        .collect();
    running.sort();
    running.into_iter().next().map(|(_, n)| n)
}

impl ClusterPlatform {
    /// The platform of the document at `document`, already loaded and checked: rendered, and a
    /// client made from the document's kubeconfig and context (else $KUBECONFIG, ~/.kube/config).
    pub fn new(
        document: &Path,
        loaded: &crate::document::Loaded,
        catalog: &crate::pipeline::blueprint::Catalog,
    ) -> Result<ClusterPlatform, ReversibilityError> {
        let (resolved, tree) =
            crate::pipeline::render::render(loaded, catalog).map_err(SiteError::from)?;
        let target = loaded.platform.spec.target.kubernetes().ok_or_else(|| {
            ClusterPlatformError::Connect {
                document: document.to_owned(),
                source: Box::new(ClusterError::NotAClusterTarget),
            }
        })?;
        let document_text = std::fs::read(document).map_err(read_error(document))?;
        let (kubeconfig, context) =
            crate::deploy::kubernetes::connection_settings(None, None, target, document);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(ClusterPlatformError::Runtime)?;
        let conn = runtime
            .block_on(crate::deploy::kubernetes::connect(
                kubeconfig.as_deref(),
                context.as_deref(),
            ))
            .map_err(|source| ClusterPlatformError::Connect {
                document: document.to_owned(),
                source: Box::new(source),
            })?;
        Ok(ClusterPlatform {
            document: document.to_owned(),
            document_text,
            resolved,
            tree,
            namespace: target.namespace.clone(),
            server: conn.server,
            exec: PodExec::new(runtime, conn.client, target.namespace.clone()),
        })
    }

    pub fn name(&self) -> &str {
        &self.resolved.platform.name
    }

    fn api_error(&self, what: &str, e: &kube::Error) -> ClusterPlatformError {
        ClusterPlatformError::Api {
            namespace: self.namespace.clone(),
            what: what.to_owned(),
            message: crate::deploy::kubernetes::describe(e),
        }
    }

    /// The rendered objects: kind, name, the object.
    fn objects(&self) -> Result<Vec<(String, String, Value)>, ReversibilityError> {
        Ok(crate::deploy::kubernetes::manifests(&self.tree)
            .map_err(|e| ClusterPlatformError::Api {
                namespace: self.namespace.clone(),
                what: "reading the rendered manifests".into(),
                message: e.to_string(),
            })?
            .into_iter()
            .map(|m| (m.gvk.kind.clone(), m.name.clone(), m.object.data.clone()))
            .collect())
    }

    /// The service proxy's path to the rendered Service of `component`, over HTTPS (the
    /// monitoring serves only HTTPS, with the platform CA's certificates).
    fn proxy_path(&self, component: &str) -> Result<String, ReversibilityError> {
        let objects = self.objects()?;
        let (name, port) =
            service(&objects, component).ok_or_else(|| ClusterPlatformError::NoWorkload {
                document: self.document.clone(),
                component: format!("{component} (Service)"),
            })?;
        Ok(format!(
            "/api/v1/namespaces/{}/services/https:{name}:{port}/proxy",
            self.namespace
        ))
    }

    /// A request through the API server's service proxy: the answer's body.
    fn through_proxy(
        &self,
        post: bool,
        path: &str,
        what: &str,
    ) -> Result<String, ReversibilityError> {
        let request = if post {
            http::Request::post(path)
        } else {
            http::Request::get(path)
        }
        .body(Vec::new())
        .map_err(|e| ClusterPlatformError::Api {
            namespace: self.namespace.clone(),
            what: what.to_owned(),
            message: e.to_string(),
        })?;
        self.exec
            .block_on(self.exec.client.request_text(request))
            .map_err(|e| self.api_error(what, &e).into())
    }

    /// A running pod of the rendered workload of `component`.
    pub fn pod_of(&self, component: &str) -> Result<String, ReversibilityError> {
        Ok(self.running(component)?.1)
    }

    /// The rendered workload of `component` and its pods.
    fn pods(&self, component: &str) -> Result<(Workload, Vec<Pod>), ReversibilityError> {
        let objects = self.objects()?;
        let w = workload(&objects, component).ok_or_else(|| ClusterPlatformError::NoWorkload {
            document: self.document.clone(),
            component: component.to_owned(),
        })?;
        let api: Api<Pod> = Api::namespaced(self.exec.client.clone(), &self.namespace);
        let pods = self
            .exec
            .block_on(api.list(&ListParams::default().labels(&w.selector)))
            .map_err(|e| self.api_error(&format!("listing the pods of {}", w.name), &e))?;
        Ok((w, pods.items))
    }

    /// The rendered workload of `component` and a running pod of it.
    fn running(&self, component: &str) -> Result<(Workload, String), ReversibilityError> {
        let (w, pods) = self.pods(component)?;
        match pick_pod(&pods) {
            Some(pod) => Ok((w, pod)),
            None => Err(ClusterPlatformError::NoPod {
                namespace: self.namespace.clone(),
                workload: format!("{} {}", w.kind, w.name),
                selector: w.selector.clone(),
            }
            .into()),
        }
    }

    /// The MTA's pods whose queues the export reads, each with its name in the export (see
    /// `mail_places`): an error when a queue could not be read.
    fn mail_pods(&self) -> Result<Vec<(String, String)>, ReversibilityError> {
        let (w, pods) = self.pods("postfix")?;
        let what = || format!("{} {}", w.kind, w.name);
        let places = mail_places(&w, &running_pods(&pods)).map_err(|running| {
            ClusterPlatformError::ReplicasDown {
                namespace: self.namespace.clone(),
                workload: what(),
                what: running,
                selector: w.selector.clone(),
            }
        })?;
        if places.is_empty() {
            return Err(ClusterPlatformError::NoPod {
                namespace: self.namespace.clone(),
                workload: what(),
                selector: w.selector.clone(),
            }
            .into());
        }
        Ok(places)
    }

    /// The platform's objects in its namespace as `kubectl get … -o yaml` shows them (a List,
    /// without managedFields), Secrets excepted.
    fn live_objects(&self) -> Result<String, ReversibilityError> {
        let mut items = Vec::new();
        for (group, version, kind, plural) in LIVE_KINDS {
            let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
            let resource = kube::api::ApiResource::from_gvk_with_plural(&gvk, plural);
            let api: Api<kube::api::DynamicObject> =
                Api::namespaced_with(self.exec.client.clone(), &self.namespace, &resource);
            let list = self
                .exec
                .block_on(api.list(&ListParams::default()))
                .map_err(|e| self.api_error(&format!("listing the {plural}"), &e))?;
            for o in list.items {
                let mut v = serde_json::to_value(&o).unwrap_or_default();
                if let Some(m) = v["metadata"].as_object_mut() {
                    m.remove("managedFields");
                }
                v["apiVersion"] = Value::String(resource.api_version.clone());
                v["kind"] = Value::String(resource.kind.clone());
                items.push(v);
            }
        }
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
        serde_saphyr::to_string(&list).map_err(|e| {
            ClusterPlatformError::Api {
                namespace: self.namespace.clone(),
                what: "writing the objects as YAML".into(),
                message: e.to_string(),
            }
            .into()
        })
    }

    /// PostgreSQL's programs, in the database's pod.
    pub fn postgres(&self) -> Result<PodProgram<'_>, ReversibilityError> {
        Ok(PodProgram {
            exec: &self.exec,
            pod: self.pod_of("postgres")?,
            container: POSTGRES_CONTAINER.into(),
        })
    }

    /// The platform's Secrets (in its namespace; service-account tokens are the cluster's own):
    /// `name/key` → value.
    fn secrets(&self) -> Result<BTreeMap<String, Vec<u8>>, ReversibilityError> {
        let api: Api<Secret> = Api::namespaced(self.exec.client.clone(), &self.namespace);
        let list = self
            .exec
            .block_on(api.list(&ListParams::default()))
            .map_err(|e| self.api_error("listing the Secrets", &e))?;
        let mut out = BTreeMap::new();
        for s in list.items {
            if s.type_.as_deref() == Some("kubernetes.io/service-account-token") {
                continue;
            }
            let name = s.metadata.name.clone().unwrap_or_default();
            for (k, v) in s.data.unwrap_or_default() {
                out.insert(format!("{name}/{k}"), v.0);
            }
        }
        Ok(out)
    }
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

/// What the export of a Kubernetes platform leaves out, and why.
fn not_exported(p: &ClusterPlatform) -> Vec<Skipped> {
    let r = &p.resolved;
    let mut v = Vec::new();
    if r.components.app.enabled {
        v.push(Skipped {
            what: "application data".into(),
            reason: "the application's pods keep no volume on Kubernetes targets (only an emptyDir /tmp): nothing to export".into(),
        });
    }
    if r.components.monitoring.grafana {
        v.push(Skipped {
            what: "dashboards".into(),
            reason: "Grafana's dashboards are provisioned from the rendered configuration (in the export); its own database is not exported".into(),
        });
    }
    v.extend(super::export::backups_left_out(r));
    v
}

/// Export a Kubernetes platform: pg_dump in the database's pod through the same pipeline as on
/// hosts, the configuration, and the platform's Secrets only encrypted.
pub fn export(
    p: &ClusterPlatform,
    opts: &ExportOptions,
    progress: &dyn Progress,
) -> Result<Manifest, ReversibilityError> {
    let recipients = parse_recipients(&opts.recipients)?;
    let r = &p.resolved;
    // the MTA's pods first: a replica down is said before anything is written or read
    let mail_pods = if r.components.mta.enabled {
        p.mail_pods()?
    } else {
        Vec::new()
    };
    let partial = begin(&opts.to, progress)?;
    let started_at = crate::text::now_rfc3339();
    let start = Instant::now();
    let mut ex = Exporter {
        dir: partial.clone(),
        progress,
        items: Vec::new(),
    };
    let mut tables = Vec::new();
    let mut tools = BTreeMap::new();
    let mut skipped = not_exported(p);

    let db = &r.components.database;
    if db.managed {
        let pg = p.postgres()?;
        progress.note(&format!(
            "reading the database in pod {}/{}",
            p.namespace, pg.pod
        ));
        for (tool, words) in [
            ("pg_dump", vec!["pg_dump", "--version"]),
            (
                "postgresql",
                vec![
                    "psql",
                    "--username=postgres",
                    "-XAtc",
                    "show server_version",
                ],
            ),
        ] {
            if let Ok(v) = pg.output("tool versions", &argv(&words)) {
                tools.insert(format!("{}/{tool}", pg.pod), v.trim().to_owned());
            }
        }
        let mut targets = vec![DumpTarget {
            database: db.name.clone(),
            tenant: None,
        }];
        targets.extend(r.tenants.iter().map(|t| DumpTarget {
            database: t.database.clone(),
            tenant: Some(t.name.clone()),
        }));
        for target in &targets {
            let (dump, tbls) = dump_database(&pg, target, &partial, progress)?;
            ex.push(dump);
            for (item, table) in tbls {
                ex.push(item);
                tables.push(table);
            }
        }
    } else if db.enabled {
        skipped.push(Skipped {
            what: format!("database `{}`", db.name),
            reason: format!(
                "external PostgreSQL at {}:{}: export it where it is operated",
                db.host, db.port
            ),
        });
    }

    // mail: each MTA pod's queue, as on hosts (the MTA relays: no mailbox on Kubernetes)
    let mut mail = Vec::new();
    mail_queues(p, mail_pods, &mut ex, &mut tools, &mut mail)?;

    // metrics: a TSDB snapshot made through the API server's service proxy, streamed from the
    // pod; Alertmanager's silences from its API
    let mut metrics_blocks = BTreeMap::new();
    if r.components.monitoring.enabled {
        metrics(p, &mut ex, &mut metrics_blocks)?;
    }

    // configuration: the document and the rendered tree
    ex.configuration(&p.document, &p.document_text, &p.tree)?;

    ex.bytes_file(
        "configuration/kubernetes/objects.yaml",
        p.live_objects()?.as_bytes(),
        (
            "live-configuration",
            "configuration",
            None,
            &format!("objects in namespace {} (no Secret)", p.namespace),
        ),
    )?;

    // secrets: the platform's Secrets, only encrypted
    let values = p.secrets()?;
    let names: Vec<String> = values.keys().cloned().collect();
    let secrets = if recipients.is_empty() {
        skipped.push(Skipped {
            what: "secrets".into(),
            reason: "no --recipient given: secrets are exported only encrypted to age recipients"
                .into(),
        });
        SecretsEntry {
            exported: false,
            recipients: Vec::new(),
            names,
        }
    } else {
        let entries: Vec<(String, Vec<u8>)> = values
            .into_iter()
            .map(|(k, v)| (format!("secrets/{k}"), v))
            .collect();
        encrypt_secrets(
            &mut ex,
            "secrets/secrets.tar.age",
            &entries,
            &recipients,
            &format!("Secrets of namespace {}", p.namespace),
        )?;
        SecretsEntry {
            exported: true,
            recipients: opts
                .recipients
                .iter()
                .map(|s| s.trim().to_owned())
                .collect(),
            names,
        }
    };

    let items = std::mem::take(&mut ex.items);
    seal(
        &partial,
        &opts.to,
        items,
        tables,
        Sealing {
            platform: p.name().to_owned(),
            blueprint: r.blueprint.name.clone(),
            blueprint_version: r.blueprint.version.clone(),
            target: r.target_kind.into(),
            started_at,
            start,
            tools,
            mail,
            metrics_blocks,
            secrets,
            skipped,
        },
    )
}

/// The container Postfix runs in, in the MTA's pods.
pub const POSTFIX_CONTAINER: &str = "postfix";

/// Each MTA pod's queue (`mail/<name>/`, see `mail_places`): `postqueue -j` into queue.json and
/// its figures into the manifest, then the queue directories in a tar, read in the postfix
/// container as on hosts.
fn mail_queues(
    p: &ClusterPlatform,
    places: Vec<(String, String)>,
    ex: &mut Exporter<'_>,
    tools: &mut BTreeMap<String, String>,
    mail: &mut Vec<super::Mail>,
) -> Result<(), ReversibilityError> {
    for (name, pod) in places {
        let postfix = PodProgram {
            exec: &p.exec,
            pod: pod.clone(),
            container: POSTFIX_CONTAINER.into(),
        };
        for (tool, words) in [
            ("postconf", &["postconf", "-h", "mail_version"][..]),
            ("tar", &["tar", "--version"][..]),
        ] {
            if let Ok(v) = postfix.output("tool versions", &argv(words)) {
                tools.insert(
                    format!("{pod}/{tool}"),
                    v.lines().next().unwrap_or_default().trim().to_owned(),
                );
            }
        }
        let dir = safe(&name);
        let queue = postfix.output("postqueue -j", &argv(&["postqueue", "-j"]))?;
        ex.bytes_file(
            &format!("mail/{dir}/queue.json"),
            queue.as_bytes(),
            ("mail-queue-list", "mta", Some(&pod), "postqueue -j"),
        )?;
        // tar's exit 1 (a file moved while read) is success here, as on hosts
        ex.stream_from(
            &postfix,
            &format!("mail/{dir}/queue.tar"),
            &argv(&[
                "sh",
                "-c",
                &format!("{}; s=$?; [ $s -le 1 ] || exit $s", queue_tar_script()),
            ]),
            ("mail-queue", "mta", SPOOL_DIR),
        )?;
        mail.push(queue_figures(&name, &queue));
    }
    Ok(())
}

/// Prometheus's TSDB snapshot and Alertmanager's silences.
fn metrics(
    p: &ClusterPlatform,
    ex: &mut Exporter<'_>,
    metrics_blocks: &mut BTreeMap<String, Vec<String>>,
) -> Result<(), ReversibilityError> {
    let (workload, pod) = p.running("prometheus")?;
    let what = "the Prometheus TSDB snapshot";
    let answer = p.through_proxy(
        true,
        &format!("{}/api/v1/admin/tsdb/snapshot", p.proxy_path("prometheus")?),
        what,
    )?;
    let name = serde_json::from_str::<Value>(&answer)
        .ok()
        .and_then(|v| v["data"]["name"].as_str().map(str::to_owned))
        .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .ok_or_else(|| ReversibilityError::Snapshot {
            host: format!("pod {}/{pod}", p.namespace),
            answer: crate::text::last_lines(&answer, 3),
        })?;
    let snap = format!("{PROMETHEUS_TSDB}/snapshots/{name}");
    let prometheus = PodProgram {
        exec: &p.exec,
        pod: pod.clone(),
        container: "prometheus".into(),
    };
    // named after the workload, as a host's name on hosts: pods come and go
    let rel = format!("metrics/{}/tsdb-snapshot.tar", workload.name);
    let streamed = ex.stream_from(
        &prometheus,
        &rel,
        &argv(&["tar", "-C", &snap, "-cf", "-", "."]),
        ("metrics-snapshot", "monitoring", PROMETHEUS_TSDB),
    );
    // the snapshot is a copy (hard links) on the volume: removed whatever happened
    let _ = prometheus.output("removing the snapshot", &argv(&["rm", "-rf", &snap]));
    streamed?;
    let tar = ex.dir.join(&rel);
    metrics_blocks.insert(
        workload.name,
        blocks_in_tar(&tar).map_err(read_error(&tar))?,
    );

    let silences = p.through_proxy(
        false,
        &format!("{}/api/v2/silences", p.proxy_path("alertmanager")?),
        "Alertmanager's silences",
    )?;
    ex.bytes_file(
        "configuration/kubernetes/silences.json",
        silences.as_bytes(),
        (
            "alertmanager-silences",
            "monitoring",
            None,
            "Alertmanager API /api/v2/silences",
        ),
    )
}

/// Check the export, then the destination, then (unless a dry run) load each database in the
/// database's pod. Nothing on the destination changes before both checks pass.
pub fn restore(
    p: &ClusterPlatform,
    opts: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<Report, ReversibilityError> {
    let dir = &opts.from;
    let (manifest, verify_seconds) = super::restore::verified(opts, progress)?;
    if let Some(i) = &opts.identity {
        super::restore::identities(i)?;
    }
    let r = &p.resolved;
    let mut actions = Vec::new();
    let mut skipped = manifest.skipped.clone();
    let dumps: Vec<&super::Item> = manifest
        .items
        .iter()
        .filter(|i| i.kind == "database-dump")
        .collect();
    let pg = if dumps.is_empty() {
        None
    } else if !r.components.database.managed {
        return Err(ReversibilityError::NoDatabase {
            document: p.document.clone(),
        });
    } else {
        Some(p.postgres()?)
    };
    if let Some(pg) = &pg {
        for dump in &dumps {
            let (db, role) = super::restore::destination(&p.document, r, &dump.component)?;
            actions.push(super::restore::database_load(
                &manifest, dump, db, role, pg,
            )?);
        }
    }
    for (kinds, what) in [
        (&["mail-queue", "mailboxes"][..], "mail"),
        (&["metrics-snapshot"][..], "metrics"),
        (&["app-data"][..], "application data"),
    ] {
        if manifest
            .items
            .iter()
            .any(|i| kinds.contains(&i.kind.as_str()))
        {
            skipped.push(Skipped {
                what: what.into(),
                reason: "not restored on Kubernetes targets: it stays in the export".into(),
            });
        }
    }
    if manifest.secrets.exported {
        skipped.push(Skipped {
            what: "secrets".into(),
            reason: "the destination keeps its own Secrets (made by `terroir apply`); the encrypted secrets stay in the export".into(),
        });
    }
    let mut report = Report::planned(
        p.name().to_owned(),
        &manifest,
        opts,
        verify_seconds,
        actions,
        skipped,
    )?;
    if opts.dry_run {
        return Ok(report);
    }
    let restore_start = Instant::now();
    for a in report.actions.iter_mut() {
        let (Some(pg), Some((db, role))) = (&pg, a.database.clone()) else {
            continue;
        };
        let start = Instant::now();
        super::restore::load_database(
            pg,
            dir,
            &a.from,
            &db,
            &role,
            a.conflict.is_some(),
            progress,
        )?;
        a.done = true;
        a.seconds = secs(start);
        progress.note(&format!(
            "restored {} in pod {}/{} ({:.1} s)",
            a.what, p.namespace, a.host, a.seconds
        ));
    }
    report.restore_seconds = secs(restore_start);
    Ok(report)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn a_component_is_found_by_its_pods_name_label() {
        let sts = json!({"spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "postgres", "app.kubernetes.io/instance": "a"}},
            "template": {"metadata": {"labels": {"app.kubernetes.io/name": "postgres"}}}
        }});
        let app = json!({"spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "app"}},
            "template": {"metadata": {"labels": {"app.kubernetes.io/name": "app"}}}
        }});
        let objects = vec![
            ("Service".to_owned(), "a-postgres".to_owned(), json!({})),
            ("Deployment".to_owned(), "a-app".to_owned(), app),
            ("StatefulSet".to_owned(), "a-postgres".to_owned(), sts),
        ];
        assert_eq!(
            workload(&objects, "postgres"),
            Some(Workload {
                kind: "StatefulSet".into(),
                name: "a-postgres".into(),
                selector: "app.kubernetes.io/instance=a,app.kubernetes.io/name=postgres".into(),
                replicas: 1,
            })
        );
        assert_eq!(workload(&objects, "grafana"), None);
    }

    #[test]
    fn one_mta_queue_is_named_after_its_workload_several_after_their_pods() {
        let mut w = Workload {
            kind: "Deployment".into(),
            name: "a-postfix".into(),
            selector: "app.kubernetes.io/name=postfix".into(),
            replicas: 1,
        };
        assert_eq!(
            mail_places(&w, &["a-postfix-7c9d-x2k4q".into()]),
            Ok(vec![("a-postfix".into(), "a-postfix-7c9d-x2k4q".into())])
        );
        assert_eq!(
            mail_places(&w, &[]),
            Ok(vec![]),
            "no pod: said by the caller"
        );
        w.kind = "StatefulSet".into();
        w.replicas = 2;
        let both = ["a-postfix-0".to_owned(), "a-postfix-1".to_owned()];
        assert_eq!(
            mail_places(&w, &both),
            Ok(vec![
                ("a-postfix-0".into(), "a-postfix-0".into()),
                ("a-postfix-1".into(), "a-postfix-1".into())
            ])
        );
        assert_eq!(
            mail_places(&w, &both[1..]),
            Err("1 of its 2 replicas run (a-postfix-1)".into()),
            "a replica's queue is never left out silently"
        );
    }

    #[test]
    fn the_running_pods_are_listed_by_name() {
        let pod = |name: &str, phase: &str| -> Pod {
            serde_json::from_value(json!({"metadata": {"name": name}, "status": {"phase": phase}}))
                .unwrap()
        };
        let going: Pod = serde_json::from_value(json!({
            "metadata": {"name": "mta-0", "deletionTimestamp": "2026-12-05T12:00:00Z"},
            "status": {"phase": "Running"}
        }))
        .unwrap();
        assert_eq!(
            running_pods(&[pod("mta-2", "Running"), pod("mta-1", "Pending"), going]),
            vec!["mta-2".to_owned()]
        );
    }

    #[test]
    fn the_pod_chosen_is_a_running_one_first_by_name() {
        let pod = |name: &str, phase: &str| -> Pod {
            serde_json::from_value(json!({"metadata": {"name": name}, "status": {"phase": phase}}))
                .unwrap()
        };
        assert_eq!(
            pick_pod(&[
                pod("db-2", "Running"),
                pod("db-0", "Pending"),
                pod("db-1", "Running")
            ]),
            Some("db-1".into())
        );
        assert_eq!(pick_pod(&[pod("db-0", "Failed")]), None);
        let mut primary = pod("db-2", "Running");
        primary.metadata.labels =
            Some([(POSTGRES_ROLE_LABEL.to_owned(), "primary".to_owned())].into());
        assert_eq!(
            pick_pod(&[pod("db-0", "Running"), primary]),
            Some("db-2".into()),
            "the primary of a replicated database"
        );
    }
}
