//! Apply and reconcile logic against request scenarios (tower-test mock service, as
//! kube-rs's controller-rs does): each test answers the client's requests itself and then asserts
//! on the exact requests sent — conflicts change nothing, force takes over, pruning deletes,
//! deletion prunes before releasing the finalizer, invalid and non-compliant Platforms are
//! never applied.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use kube::runtime::events::{Recorder, Reporter};
use serde_json::{Value, json};
use terroir::deploy::kubernetes::{self, Action, Applier, ApplyOptions, ApplySet, ClusterError};
use terroir::document::PlatformResource;
use terroir::operator::metrics::Metrics;
use terroir::operator::reconcile::{Context, reconcile};
use terroir::pipeline::blueprint::Catalog;

#[derive(Debug, Clone)]
struct Sent {
    method: String,
    path: String,
    query: String,
    content_type: String,
    body: Value,
}

impl Sent {
    fn is_write(&self) -> bool {
        self.method != "GET" && !self.query.contains("dryRun=All")
    }
}

type Handler = dyn Fn(&Sent) -> (u16, Value) + Send + Sync;

/// A client whose every request is answered by `handler` and recorded.
fn mock(handler: Box<Handler>) -> (Client, Arc<Mutex<Vec<Sent>>>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let log = sent.clone();
    tokio::spawn(async move {
        while let Some((request, respond)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let bytes = body.collect_bytes().await.unwrap_or_default();
            let s = Sent {
                method: parts.method.to_string(),
                path: parts.uri.path().to_owned(),
                query: parts.uri.query().unwrap_or_default().to_owned(),
                content_type: parts
                    .headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned(),
                body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            };
            let (code, reply) = handler(&s);
            log.lock().unwrap().push(s);
            respond.send_response(
                Response::builder()
                    .status(code)
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                    .unwrap(),
            );
        }
    });
    (Client::new(service, "default"), sent)
}

fn status(code: u16, reason: &str, message: &str) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code}),
    )
}

fn core_v1() -> Value {
    json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        {"name": "configmaps", "singularName": "configmap", "namespaced": true, "kind": "ConfigMap", "verbs": ["create","delete","get","list","patch","update","watch"]},
        {"name": "services", "singularName": "service", "namespaced": true, "kind": "Service", "verbs": ["create","delete","get","list","patch","update","watch"]},
    ]})
}

fn api_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
}

fn configmap(name: &str, data: Value) -> kubernetes::Manifest {
    let doc = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "crm"}, "data": data});
    kubernetes::manifest_from_value(doc, "kubernetes/test.yaml").unwrap()
}

fn live(name: &str, data: Value, set: &ApplySet) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": "crm", "uid": format!("uid-{name}"), "resourceVersion": "7",
                        "labels": {"applyset.kubernetes.io/part-of": set.id}},
           "data": data})
}

/// Answers discovery, the ApplySet parent and member lists; `object` answers everything else.
fn cluster_with(
    set: ApplySet,
    members: Vec<Value>,
    object: impl Fn(&Sent) -> (u16, Value) + Send + Sync + 'static,
) -> Box<Handler> {
    Box::new(move |s: &Sent| {
        let parent_path = "/api/v1/namespaces/crm/configmaps/terroir-crm";
        match (s.method.as_str(), s.path.as_str()) {
            ("GET", "/api") => (200, api_versions()),
            ("GET", "/api/v1") => (200, core_v1()),
            ("GET", p) if p == parent_path => (
                200,
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "terroir-crm", "namespace": "crm", "labels": {"applyset.kubernetes.io/id": set.id},
                             "annotations": {"applyset.kubernetes.io/contains-group-kinds": "ConfigMap"}}}),
            ),
            ("PATCH", p) if p == parent_path => (200, s.body.clone()),
            ("GET", "/api/v1/namespaces/crm/configmaps") => (
                200,
                json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {"resourceVersion": "9"}, "items": members}),
            ),
            _ => object(s),
        }
    })
}

#[tokio::test]
async fn a_conflict_is_reported_and_nothing_is_written() {
    let set = ApplySet::for_cli("crm", "crm");
    let s2 = set.clone();
    let (client, sent) = mock(cluster_with(set.clone(), vec![], move |s| {
        match s.method.as_str() {
            "GET" => (200, live("settings", json!({"mode": "manual"}), &s2)),
            "PATCH" => status(
                409,
                "Conflict",
                "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using v1: .data.mode",
            ),
            _ => status(500, "InternalError", "unexpected"),
        }
    }));
    let applier = Applier::new(client, "terroir");
    let err = applier
        .apply(
            &[configmap("settings", json!({"mode": "auto"}))],
            &set,
            ApplyOptions::default(),
        )
        .await
        .unwrap_err();
    let ClusterError::Conflicts(lines) = &err else {
        panic!("expected a conflict, got {err}")
    };
    assert!(
        lines[0].contains("ConfigMap crm/settings") && lines[0].contains(".data.mode"),
        "{lines:?}"
    );
    assert!(
        err.to_string().contains("--force-conflicts"),
        "the error says how to take over: {err}"
    );
    let sent = sent.lock().unwrap();
    let writes: Vec<_> = sent.iter().filter(|s| s.is_write()).collect();
    assert!(
        writes.is_empty(),
        "nothing may be written after a conflict, sent {writes:?}"
    );
    let dry = sent.iter().find(|s| s.method == "PATCH").unwrap();
    assert_eq!(dry.content_type, "application/apply-patch+yaml");
    assert!(
        dry.query.contains("fieldManager=terroir") && dry.query.contains("dryRun=All"),
        "{}",
        dry.query
    );
    assert!(!dry.query.contains("force=true"));
}

#[tokio::test]
async fn force_conflicts_takes_the_fields_over() {
    let set = ApplySet::for_cli("crm", "crm");
    let s2 = set.clone();
    let (client, sent) = mock(cluster_with(set.clone(), vec![], move |s| {
        match s.method.as_str() {
            "GET" => (200, live("settings", json!({"mode": "manual"}), &s2)),
            "PATCH" => (200, live("settings", s.body["data"].clone(), &s2)),
            _ => status(500, "InternalError", "unexpected"),
        }
    }));
    let applier = Applier::new(client, "terroir");
    let opts = ApplyOptions {
        force_conflicts: true,
        ..ApplyOptions::default()
    };
    let report = applier
        .apply(
            &[configmap("settings", json!({"mode": "auto"}))],
            &set,
            opts,
        )
        .await
        .unwrap();
    assert_eq!(report.count(Action::Update), 1);
    let sent = sent.lock().unwrap();
    let apply = sent
        .iter()
        .find(|s| s.is_write() && s.path.ends_with("/configmaps/settings"))
        .expect("the object is applied");
    assert!(
        apply.query.contains("force=true") && apply.query.contains("fieldManager=terroir"),
        "{}",
        apply.query
    );
    assert_eq!(
        apply.body["metadata"]["labels"]["applyset.kubernetes.io/part-of"], set.id,
        "members carry the set label"
    );
}

#[tokio::test]
async fn an_unchanged_object_is_not_written_again() {
    let set = ApplySet::for_cli("crm", "crm");
    let s2 = set.clone();
    let (client, sent) = mock(cluster_with(
        set.clone(),
        vec![live("settings", json!({"mode": "auto"}), &set)],
        move |s| match s.method.as_str() {
            "GET" | "PATCH" => (200, live("settings", json!({"mode": "auto"}), &s2)),
            _ => status(500, "InternalError", "unexpected"),
        },
    ));
    let applier = Applier::new(client, "terroir");
    let report = applier
        .apply(
            &[configmap("settings", json!({"mode": "auto"}))],
            &set,
            ApplyOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(report.count(Action::Unchanged), 1);
    assert!(!report.changed());
    let sent = sent.lock().unwrap();
    assert!(
        !sent
            .iter()
            .any(|s| s.is_write() && s.path.ends_with("/configmaps/settings")),
        "an unchanged object gets only a dry run"
    );
}

#[tokio::test]
async fn members_no_longer_rendered_are_pruned_and_the_parent_rewritten() {
    let set = ApplySet::for_cli("crm", "crm");
    let s2 = set.clone();
    let members = vec![
        live("settings", json!({"mode": "auto"}), &set),
        live("old-feature", json!({}), &set),
    ];
    let (client, sent) = mock(cluster_with(set.clone(), members, move |s| {
        match s.method.as_str() {
            "GET" | "PATCH" => (200, live("settings", json!({"mode": "auto"}), &s2)),
            "DELETE" => (200, live("old-feature", json!({}), &s2)),
            _ => status(500, "InternalError", "unexpected"),
        }
    }));
    let applier = Applier::new(client, "terroir");

    // A plan (dry run) lists the prune without deleting.
    let plan = applier
        .apply(
            &[configmap("settings", json!({"mode": "auto"}))],
            &set,
            ApplyOptions {
                dry_run: true,
                ..ApplyOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        plan.objects
            .iter()
            .filter(|o| o.action == Action::Prune)
            .map(|o| o.name.as_str())
            .collect::<Vec<_>>(),
        ["old-feature"]
    );
    assert!(
        !sent.lock().unwrap().iter().any(Sent::is_write),
        "a plan writes nothing"
    );

    let report = applier
        .apply(
            &[configmap("settings", json!({"mode": "auto"}))],
            &set,
            ApplyOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(report.count(Action::Prune), 1);
    let sent = sent.lock().unwrap();
    let deletes: Vec<_> = sent
        .iter()
        .filter(|s| s.method == "DELETE")
        .map(|s| s.path.as_str())
        .collect();
    assert_eq!(deletes, ["/api/v1/namespaces/crm/configmaps/old-feature"]);
    let parent_writes: Vec<_> = sent
        .iter()
        .filter(|s| s.method == "PATCH" && s.path.ends_with("/terroir-crm"))
        .collect();
    assert!(!parent_writes.is_empty());
    let last = parent_writes.last().unwrap();
    assert_eq!(
        last.body["metadata"]["labels"]["applyset.kubernetes.io/id"],
        set.id
    );
    assert_eq!(
        last.body["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"],
        "ConfigMap"
    );
    assert!(
        last.query.contains("fieldManager=terroir-applyset"),
        "{}",
        last.query
    );

    // --no-prune keeps them.
    drop(sent);
}

#[tokio::test]
async fn an_object_the_server_refuses_stops_the_apply_before_any_write() {
    let set = ApplySet::for_cli("crm", "crm");
    let (client, sent) = mock(cluster_with(set.clone(), vec![], move |s| {
        match (s.method.as_str(), s.path.as_str()) {
            ("GET", _) => status(404, "NotFound", "not found"),
            ("PATCH", p) if p.ends_with("/bad") => status(
                422,
                "Invalid",
                "ConfigMap \"bad\" is invalid: data[x y]: Invalid value",
            ),
            ("PATCH", _) => (200, s.body.clone()),
            _ => status(500, "InternalError", "unexpected"),
        }
    }));
    let applier = Applier::new(client, "terroir");
    let err = applier
        .apply(
            &[
                configmap("good", json!({"a": "1"})),
                configmap("bad", json!({"x y": "1"})),
            ],
            &set,
            ApplyOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ClusterError::Refused(_)), "{err}");
    assert!(
        err.to_string().contains("ConfigMap crm/bad") && err.to_string().contains("Invalid value"),
        "{err}"
    );
    assert!(
        !sent.lock().unwrap().iter().any(Sent::is_write),
        "the good object is not applied either"
    );
}

// ---- operator ----

fn platform_resource(spec: Value, extra_meta: Value) -> PlatformResource {
    let mut meta = json!({"name": "crm", "namespace": "tenants", "uid": "0d2f6a0e-1", "generation": 3, "resourceVersion": "41"});
    if let (Some(m), Some(extra)) = (meta.as_object_mut(), extra_meta.as_object()) {
        for (k, v) in extra {
            m.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(json!({"apiVersion": "terroir.eu/v1alpha1", "kind": "Platform", "metadata": meta, "spec": spec})).unwrap()
}

fn example_spec() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/kubernetes.yaml"
    ))
    .unwrap();
    let doc: Value = serde_saphyr::from_str(&text).unwrap();
    doc["spec"].clone()
}

/// Answers writes to the Platform with the Platform, and events with themselves.
fn echo_platform(p: &PlatformResource) -> Box<Handler> {
    let p = serde_json::to_value(p).unwrap();
    Box::new(move |s: &Sent| {
        if s.path.contains("/platforms/") {
            (200, p.clone())
        } else {
            (201, s.body.clone())
        }
    })
}

fn context(client: Client) -> Arc<Context> {
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "terroir-operator".into(),
            instance: Some("test".into()),
        },
    );
    Arc::new(Context::new(
        client,
        Catalog::new(vec![]),
        recorder,
        Arc::new(Metrics::new()),
        true,
        Duration::from_secs(300),
    ))
}

fn status_patch(sent: &[Sent]) -> Value {
    sent.iter()
        .rev()
        .find(|s| s.path.ends_with("/platforms/crm/status"))
        .map(|s| s.body.clone())
        .expect("the status is written")
}

fn condition(status: &Value, type_: &str) -> (String, String) {
    let c = status["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap();
    (
        c["status"].as_str().unwrap().to_owned(),
        c["reason"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn an_invalid_platform_gets_conditions_and_is_never_applied() {
    let mut spec = example_spec();
    spec["sovereignty"]["policy"]["allowedCountries"] = json!(["FRANCE"]);
    let p = platform_resource(spec, json!({"finalizers": ["terroir.eu/prune"]}));
    let (client, sent) = mock(echo_platform(&p));
    reconcile(Arc::new(p), context(client)).await.unwrap();
    let sent = sent.lock().unwrap();
    let st = status_patch(&sent);
    assert_eq!(
        condition(&st, "Rendered"),
        ("False".into(), "InvalidSpec".into())
    );
    assert_eq!(condition(&st, "Ready").0, "False");
    assert_eq!(st["status"]["observedGeneration"], 3);
    let msg = st["status"]["conditions"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains("spec.sovereignty.policy.allowedCountries[0]"),
        "the message points at the field: {msg}"
    );
    let applied: Vec<_> = sent
        .iter()
        .filter(|s| s.content_type == "application/apply-patch+yaml")
        .collect();
    assert!(applied.is_empty(), "nothing applied: {applied:?}");
    assert!(
        sent.iter()
            .any(|s| s.path.contains("/events") && s.body["reason"] == "InvalidSpec"),
        "a Warning event is recorded"
    );
}

#[tokio::test]
async fn a_platform_breaking_its_policy_is_not_applied() {
    let mut spec = example_spec();
    spec["target"]["kubernetes"]["location"]["country"] = json!("US");
    let p = platform_resource(spec, json!({"finalizers": ["terroir.eu/prune"]}));
    let (client, sent) = mock(echo_platform(&p));
    reconcile(Arc::new(p), context(client)).await.unwrap();
    let sent = sent.lock().unwrap();
    let st = status_patch(&sent);
    assert_eq!(
        condition(&st, "Rendered"),
        ("True".into(), "Rendered".into())
    );
    assert_eq!(
        condition(&st, "PolicyCompliant"),
        ("False".into(), "PolicyViolation".into())
    );
    assert_eq!(
        condition(&st, "Applied"),
        ("False".into(), "PolicyViolation".into())
    );
    assert!(
        !sent
            .iter()
            .any(|s| s.content_type == "application/apply-patch+yaml"),
        "nothing applied"
    );
}

#[tokio::test]
async fn a_new_platform_gets_the_finalizer_first() {
    let p = platform_resource(example_spec(), json!({}));
    let with_finalizer = serde_json::to_value(platform_resource(
        example_spec(),
        json!({"finalizers": ["terroir.eu/prune"]}),
    ))
    .unwrap();
    let (client, sent) = mock(Box::new(move |_: &Sent| (200, with_finalizer.clone())));
    reconcile(Arc::new(p), context(client)).await.unwrap();
    let sent = sent.lock().unwrap();
    assert_eq!(
        sent.len(),
        1,
        "only the finalizer is added before anything else: {sent:?}"
    );
    assert_eq!(sent[0].method, "PATCH");
    assert_eq!(sent[0].content_type, "application/json-patch+json");
    assert!(sent[0].body.to_string().contains("terroir.eu/prune"));
}

#[tokio::test]
async fn deletion_prunes_every_member_then_releases_the_finalizer() {
    let set = ApplySet::for_resource("crm", "tenants");
    let p = platform_resource(
        example_spec(),
        json!({"finalizers": ["terroir.eu/prune"], "deletionTimestamp": "2026-11-23T10:00:00Z",
               "labels": {"applyset.kubernetes.io/id": set.id},
               "annotations": {"applyset.kubernetes.io/contains-group-kinds": "ConfigMap,Service",
                               "applyset.kubernetes.io/additional-namespaces": "mutuelle-crm"}}),
    );
    let parent = serde_json::to_value(&p).unwrap();
    let id = set.id.clone();
    let member = move |name: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "mutuelle-crm", "labels": {"applyset.kubernetes.io/part-of": id}}});
    let m2 = member.clone();
    let (client, sent) = mock(Box::new(move |s: &Sent| {
        match (s.method.as_str(), s.path.as_str()) {
            ("GET", "/api") => (200, api_versions()),
            ("GET", "/api/v1") => (200, core_v1()),
            ("GET", "/apis") => (
                200,
                json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}),
            ),
            ("GET", "/apis/terroir.eu/v1alpha1/namespaces/tenants/platforms/crm") => {
                (200, parent.clone())
            }
            ("GET", "/api/v1/namespaces/mutuelle-crm/configmaps") => (
                200,
                json!({"kind": "ConfigMapList", "apiVersion": "v1", "metadata": {}, "items": [m2("app-config"), m2("grafana")]}),
            ),
            ("GET", p) if p.ends_with("/configmaps") || p.ends_with("/services") => (
                200,
                json!({"kind": "List", "apiVersion": "v1", "metadata": {}, "items": []}),
            ),
            ("DELETE", _) => (200, m2("x")),
            ("PATCH", p) if p.ends_with("/platforms/crm") => (200, parent.clone()),
            (_, p) if p.contains("/events") => (201, s.body.clone()),
            _ => status(404, "NotFound", "not found"),
        }
    }));
    reconcile(Arc::new(p), context(client)).await.unwrap();
    let sent = sent.lock().unwrap();
    let deletes: Vec<_> = sent
        .iter()
        .enumerate()
        .filter(|(_, s)| s.method == "DELETE")
        .map(|(i, s)| (i, s.path.clone()))
        .collect();
    assert_eq!(
        deletes.iter().map(|(_, p)| p.as_str()).collect::<Vec<_>>(),
        [
            "/api/v1/namespaces/mutuelle-crm/configmaps/app-config",
            "/api/v1/namespaces/mutuelle-crm/configmaps/grafana"
        ]
    );
    let release = sent
        .iter()
        .position(|s| s.method == "PATCH" && s.path.ends_with("/platforms/crm"))
        .expect("the finalizer is removed");
    assert!(
        deletes.iter().all(|(i, _)| *i < release),
        "members are deleted before the finalizer is released"
    );
    assert_eq!(sent[release].content_type, "application/json-patch+json");
    assert!(
        sent[release].body.to_string().contains("remove")
            || sent[release].body.to_string().contains("replace"),
        "{}",
        sent[release].body
    );
    let _ = BTreeMap::<(), ()>::new();
}

/// Every rendered object reads into the typed Kubernetes API (k8s-openapi, 1.33): numbers the API
/// wants as integers are integers (a YAML `0400` is read differently by YAML 1.1 and 1.2 tools).
#[test]
fn rendered_manifests_deserialize_into_the_typed_api() {
    use k8s_openapi::api::{
        apps::v1 as apps, batch::v1 as batch, core::v1 as core, networking::v1 as net,
        policy::v1 as policy,
    };
    let loaded = terroir::document::load_file(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/kubernetes.yaml"),
    )
    .unwrap();
    let (_, tree) = terroir::pipeline::render::render(&loaded, &Catalog::new(vec![])).unwrap();
    let manifests = kubernetes::manifests(&tree).unwrap();
    assert!(manifests.len() > 40);
    for m in &manifests {
        let v = serde_json::to_value(&m.object).unwrap();
        let r = match m.gvk.kind.as_str() {
            "Deployment" => serde_json::from_value::<apps::Deployment>(v).map(drop),
            "StatefulSet" => serde_json::from_value::<apps::StatefulSet>(v).map(drop),
            "DaemonSet" => serde_json::from_value::<apps::DaemonSet>(v).map(drop),
            "CronJob" => serde_json::from_value::<batch::CronJob>(v).map(drop),
            "Service" => serde_json::from_value::<core::Service>(v).map(drop),
            "ConfigMap" => serde_json::from_value::<core::ConfigMap>(v).map(drop),
            "ServiceAccount" => serde_json::from_value::<core::ServiceAccount>(v).map(drop),
            "PersistentVolumeClaim" => {
                serde_json::from_value::<core::PersistentVolumeClaim>(v).map(drop)
            }
            "Namespace" => serde_json::from_value::<core::Namespace>(v).map(drop),
            "NetworkPolicy" => serde_json::from_value::<net::NetworkPolicy>(v).map(drop),
            "PodDisruptionBudget" => {
                serde_json::from_value::<policy::PodDisruptionBudget>(v).map(drop)
            }
            other => panic!("a kind this test does not know yet: {other}"),
        };
        r.unwrap_or_else(|e| panic!("{} ({}): {e}", m.label(), m.file));
    }
}

/// Generated Secrets are created with a POST and nothing else: one that appears between the read
/// and the creation (another apply, a person) is kept as it is, never replaced; none joins the set.
#[tokio::test]
async fn a_secret_created_meanwhile_is_kept_and_never_replaced() {
    let loaded = terroir::document::load_file(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/kubernetes.yaml"),
    )
    .unwrap();
    let (resolved, tree) =
        terroir::pipeline::render::render(&loaded, &Catalog::new(vec![])).unwrap();
    let mut manifests = kubernetes::manifests(&tree).unwrap();
    let theirs = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "mutuelle-crm-postgres-credentials", "namespace": "mutuelle-crm", "resourceVersion": "41"},
        "data": {"password": "dGhlaXJz", "postgres-password": "dGhlaXJzdG9v"}});
    let raced = Arc::new(Mutex::new(false));
    let r2 = raced.clone();
    let (client, sent) = mock(Box::new(move |s: &Sent| {
        let name = s.path.rsplit('/').next().unwrap_or_default().to_owned();
        match s.method.as_str() {
            // Nothing exists when read; the database's Secret appears once its POST was refused.
            "GET" if name == "mutuelle-crm-postgres-credentials" && *r2.lock().unwrap() => {
                (200, theirs.clone())
            }
            "GET" => status(404, "NotFound", &format!("secrets \"{name}\" not found")),
            "POST" if s.body["metadata"]["name"] == "mutuelle-crm-postgres-credentials" => {
                *r2.lock().unwrap() = true;
                status(
                    409,
                    "AlreadyExists",
                    "secrets \"mutuelle-crm-postgres-credentials\" already exists",
                )
            }
            "POST" => {
                let mut made = s.body.clone();
                made["metadata"]["resourceVersion"] = json!("7");
                (201, made)
            }
            _ => status(500, "InternalError", "unexpected"),
        }
    }));
    let applier = Applier::new(client, "terroir");
    let set = ApplySet::for_cli("mutuelle-crm", "mutuelle-crm");
    let ensured = kubernetes::secrets::prepare(
        &applier,
        &resolved,
        &mut manifests,
        &set,
        false,
        true,
        false,
    )
    .await
    .unwrap();
    assert!(*raced.lock().unwrap());
    assert_eq!(
        ensured
            .versions
            .get(&(
                "mutuelle-crm".to_owned(),
                "mutuelle-crm-postgres-credentials".to_owned()
            ))
            .map(String::as_str),
        Some("41"),
        "theirs is the one read"
    );
    let sent = sent.lock().unwrap();
    let writes: Vec<&Sent> = sent.iter().filter(|s| s.method != "GET").collect();
    assert!(
        writes
            .iter()
            .all(|s| s.method == "POST" && s.path.ends_with("/secrets")),
        "only creations: {writes:?}"
    );
    for w in &writes {
        assert_eq!(w.body["metadata"]["labels"]["terroir.eu/generated"], "true");
        assert!(
            w.body["metadata"]["labels"]
                .get("applyset.kubernetes.io/part-of")
                .is_none()
        );
        assert!(w.query.contains("fieldManager=terroir"), "{}", w.query);
    }
    assert!(
        ensured
            .missing()
            .iter()
            .all(|s| s.origin == kubernetes::secrets::Origin::Provided)
    );
    // The workloads reading it carry the version read, not one of a value never stored.
    let sts = manifests
        .iter()
        .find(|m| m.gvk.kind == "StatefulSet" && m.name == "mutuelle-crm-postgres")
        .unwrap();
    assert!(sts.object.data["spec"]["template"]["metadata"]["annotations"]["terroir.eu/secrets-version"].is_string());
}
