//! The double, driven by the real kube 5 client over HTTP.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
    WatchEvent, WatchParams,
};
use kube::runtime::{Controller, controller::Action, finalizer, watcher};
use kube::{Client, Discovery, ResourceExt};
use serde_json::{Value, json};
use terroir_kube_double::{Options, Server};

async fn start(opts: Options) -> (Server, Client) {
    let server = Server::start(opts).await.unwrap();
    let config = kube::Config::new(server.url().parse().unwrap());
    let client = Client::try_from(config).unwrap();
    (server, client)
}

fn api_error(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn deployment(name: &str, replicas: i32, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image, "ports": [{"name": "http", "containerPort": 8080}]}]}
            }
        }
    })
}

fn configmap(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})
}

fn widget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wg"]},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                "subresources": {"status": {}}
            }]
        }
    })
}

fn managers(obj: &Value) -> BTreeMap<String, Value> {
    obj["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                format!(
                    "{}/{}",
                    m["manager"].as_str().unwrap(),
                    m["operation"].as_str().unwrap()
                ),
                m["fieldsV1"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn discovery_serves_builtins_and_custom_resources() {
    let (server, client) = start(Options::default()).await;
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let (ar, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"))
        .unwrap();
    assert_eq!(ar.plural, "deployments");
    assert!(caps.supports_operation("patch"));
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    let (ns, ns_caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("", "v1", "Namespace"))
        .unwrap();
    assert_eq!(ns.plural, "namespaces");
    assert_eq!(ns_caps.scope, kube::discovery::Scope::Cluster);
    assert!(
        discovery
            .resolve_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"))
            .is_none()
    );
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "33")
    );

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(widget_crd()).unwrap();
    crds.patch(
        "widgets.example.com",
        &PatchParams::apply("test"),
        &Patch::Apply(&crd),
    )
    .await
    .unwrap();
    let established = crds.get("widgets.example.com").await.unwrap();
    let conditions = established.status.unwrap().conditions.unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );

    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let (ar, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"))
        .unwrap();
    assert_eq!(ar.plural, "widgets");
    assert!(
        caps.subresources
            .iter()
            .any(|(sub, _)| sub.plural == "status")
    );

    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let w: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 3}
    }))
    .unwrap();
    widgets
        .patch("w1", &PatchParams::apply("test"), &Patch::Apply(&w))
        .await
        .unwrap();
    assert_eq!(
        widgets
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert_eq!(
        server
            .state()
            .get("example.com/v1", "Widget", Some("default"), "w1")
            .unwrap()["spec"]["size"],
        3
    );

    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    assert!(
        discovery
            .resolve_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"))
            .is_none()
    );
    assert_eq!(api_error(widgets.get("w1").await.unwrap_err()).code, 404);
    assert_eq!(server.state().object_count(), 0);
}

#[tokio::test]
async fn raw_discovery_documents() {
    let (_server, client) = start(Options::default()).await;
    let core: Value = client
        .request(http::Request::get("/api/v1").body(vec![]).unwrap())
        .await
        .unwrap();
    assert_eq!(core["groupVersion"], "v1");
    let apps: Value = client
        .request(http::Request::get("/apis/apps/v1").body(vec![]).unwrap())
        .await
        .unwrap();
    let names: Vec<&str> = apps["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"deployments") && names.contains(&"deployments/status"));
    let groups: Value = client
        .request(http::Request::get("/apis").body(vec![]).unwrap())
        .await
        .unwrap();
    assert!(
        groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "rbac.authorization.k8s.io")
    );
    let health = client
        .request_text(http::Request::get("/healthz").body(vec![]).unwrap())
        .await
        .unwrap();
    assert_eq!(health, "ok");
}

#[tokio::test]
async fn apply_is_idempotent_and_bumps_generation_on_change() {
    let (server, client) = start(Options::default()).await;
    let api: Api<Deployment> = Api::namespaced(client, "shop");
    let pp = PatchParams::apply("terroir");
    let first = api
        .patch("web", &pp, &Patch::Apply(deployment("web", 2, "web:1")))
        .await
        .unwrap();
    assert_eq!(first.metadata.generation, Some(1));
    assert_eq!(first.metadata.namespace.as_deref(), Some("shop"));
    assert!(first.metadata.uid.is_some() && first.metadata.creation_timestamp.is_some());
    // the rollout simulation writes status right after: the live object has moved on
    let live = api.get("web").await.unwrap();
    let rv = live.resource_version().unwrap();
    assert_eq!(live.status.as_ref().unwrap().ready_replicas, Some(2));

    let again = api
        .patch("web", &pp, &Patch::Apply(deployment("web", 2, "web:1")))
        .await
        .unwrap();
    assert_eq!(
        again.resource_version().unwrap(),
        rv,
        "an apply that changes nothing must not write"
    );
    assert_eq!(again.metadata.generation, Some(1));

    let changed = api
        .patch("web", &pp, &Patch::Apply(deployment("web", 3, "web:1")))
        .await
        .unwrap();
    assert_eq!(changed.metadata.generation, Some(2));
    assert_ne!(changed.resource_version().unwrap(), rv);
    let live = api.get("web").await.unwrap();
    let status = live.status.unwrap();
    assert_eq!(status.observed_generation, Some(2));
    assert_eq!(status.available_replicas, Some(3));

    // metadata-only changes do not bump generation
    let mut labelled = deployment("web", 3, "web:1");
    labelled["metadata"]["labels"]["tier"] = json!("front");
    let l = api
        .patch("web", &pp, &Patch::Apply(labelled))
        .await
        .unwrap();
    assert_eq!(l.metadata.generation, Some(2));
    let stored = server
        .state()
        .get("apps/v1", "Deployment", Some("shop"), "web")
        .unwrap();
    assert_eq!(stored["metadata"]["labels"]["tier"], "front");
    let fields = managers(&stored);
    assert!(fields["terroir/Apply"]["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"app\"}"]["f:image"].is_object());
    assert!(fields.contains_key("kube-controller-manager/Update"));
}

#[tokio::test]
async fn apply_conflicts_between_managers_and_force_moves_ownership() {
    let (server, client) = start(Options::default()).await;
    let api: Api<Deployment> = Api::namespaced(client, "shop");
    api.patch(
        "web",
        &PatchParams::apply("kubectl"),
        &Patch::Apply(deployment("web", 2, "web:1")),
    )
    .await
    .unwrap();

    // same values: shared ownership, no conflict
    api.patch(
        "web",
        &PatchParams::apply("terroir"),
        &Patch::Apply(deployment("web", 2, "web:1")),
    )
    .await
    .unwrap();

    let err = api
        .patch(
            "web",
            &PatchParams::apply("terroir"),
            &Patch::Apply(deployment("web", 5, "web:1")),
        )
        .await
        .unwrap_err();
    let status = api_error(err);
    assert_eq!(status.code, 409);
    assert_eq!(status.reason, "Conflict");
    assert!(
        status
            .message
            .starts_with("Apply failed with 1 conflict: conflict with \"kubectl\""),
        "{}",
        status.message
    );
    assert!(
        status.message.ends_with(": .spec.replicas"),
        "{}",
        status.message
    );
    let causes = status.details.unwrap().causes;
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0].field, ".spec.replicas");
    assert_eq!(causes[0].reason, "FieldManagerConflict");
    assert_eq!(causes[0].message, "conflict with \"kubectl\" using apps/v1");
    assert_eq!(
        api.get("web").await.unwrap().spec.unwrap().replicas,
        Some(2)
    );

    let forced = api
        .patch(
            "web",
            &PatchParams::apply("terroir").force(),
            &Patch::Apply(deployment("web", 5, "web:1")),
        )
        .await
        .unwrap();
    assert_eq!(forced.spec.unwrap().replicas, Some(5));
    let stored = server
        .state()
        .get("apps/v1", "Deployment", Some("shop"), "web")
        .unwrap();
    let fields = managers(&stored);
    assert!(fields["terroir/Apply"]["f:spec"]["f:replicas"].is_object());
    assert!(
        fields["kubectl/Apply"]["f:spec"]
            .get("f:replicas")
            .is_none()
    );
    // the image is still shared
    assert!(fields["kubectl/Apply"]["f:spec"]["f:template"]["f:spec"]["f:containers"].is_object());

    // an Update (merge patch) takes ownership without asking
    let patch = json!({"spec": {"replicas": 7}});
    api.patch(
        "web",
        &PatchParams {
            field_manager: Some("hpa".into()),
            ..Default::default()
        },
        &Patch::Merge(&patch),
    )
    .await
    .unwrap();
    let err = api
        .patch(
            "web",
            &PatchParams::apply("terroir"),
            &Patch::Apply(deployment("web", 5, "web:1")),
        )
        .await
        .unwrap_err();
    let status = api_error(err);
    assert_eq!(status.code, 409);
    assert!(
        status
            .message
            .contains("conflict with \"hpa\" using apps/v1 at "),
        "{}",
        status.message
    );
}

#[tokio::test]
async fn fields_dropped_from_an_apply_are_removed_unless_someone_else_owns_them() {
    let (server, client) = start(Options::default()).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut cm = configmap("settings", json!({"a": "1", "b": "2", "shared": "x"}));
    cm["metadata"]["labels"] = json!({"app": "x", "old": "y"});
    api.patch(
        "settings",
        &PatchParams::apply("terroir"),
        &Patch::Apply(&cm),
    )
    .await
    .unwrap();
    api.patch(
        "settings",
        &PatchParams::apply("other"),
        &Patch::Apply(configmap("settings", json!({"shared": "x"}))),
    )
    .await
    .unwrap();

    let mut smaller = configmap("settings", json!({"a": "1"}));
    smaller["metadata"]["labels"] = json!({"app": "x"});
    let after = api
        .patch(
            "settings",
            &PatchParams::apply("terroir"),
            &Patch::Apply(&smaller),
        )
        .await
        .unwrap();
    let data = after.data.unwrap();
    assert_eq!(data.get("a").map(String::as_str), Some("1"));
    assert!(!data.contains_key("b"), "b was only terroir's: removed");
    assert_eq!(
        data.get("shared").map(String::as_str),
        Some("x"),
        "shared is still other's"
    );
    let labels = after.metadata.labels.unwrap();
    assert!(labels.contains_key("app") && !labels.contains_key("old"));

    // containers merge by name: a second container applied by another manager survives
    let deployments: Api<Deployment> = Api::namespaced(client, "default");
    deployments
        .patch(
            "web",
            &PatchParams::apply("terroir"),
            &Patch::Apply(deployment("web", 1, "web:1")),
        )
        .await
        .unwrap();
    let sidecar = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "proxy", "image": "envoy:1"}]}}}
    });
    deployments
        .patch("web", &PatchParams::apply("mesh"), &Patch::Apply(&sidecar))
        .await
        .unwrap();
    deployments
        .patch(
            "web",
            &PatchParams::apply("terroir"),
            &Patch::Apply(deployment("web", 1, "web:2")),
        )
        .await
        .unwrap();
    let live = server
        .state()
        .get("apps/v1", "Deployment", Some("default"), "web")
        .unwrap();
    let containers = live["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    let images: Vec<&str> = containers
        .iter()
        .map(|c| c["image"].as_str().unwrap())
        .collect();
    assert_eq!(images, ["web:2", "envoy:1"]);
}

#[tokio::test]
async fn lists_filter_by_label_and_field_selectors_and_paginate() {
    let (_server, client) = start(Options::default()).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for (name, labels) in [
        ("a", json!({"app": "web", "tier": "front"})),
        ("b", json!({"app": "web", "tier": "back"})),
        ("c", json!({"app": "db"})),
        ("d", json!({})),
    ] {
        let mut cm = configmap(name, json!({}));
        cm["metadata"]["labels"] = labels;
        api.create(&PostParams::default(), &serde_json::from_value(cm).unwrap())
            .await
            .unwrap();
    }
    let other: Api<ConfigMap> = Api::namespaced(client.clone(), "elsewhere");
    other
        .create(
            &PostParams::default(),
            &serde_json::from_value(configmap("e", json!({}))).unwrap(),
        )
        .await
        .unwrap();

    let names = |l: kube::core::ObjectList<ConfigMap>| {
        l.items.iter().map(|c| c.name_any()).collect::<Vec<_>>()
    };
    let q = |s: &str| ListParams::default().labels(s);
    assert_eq!(names(api.list(&q("app=web")).await.unwrap()), ["a", "b"]);
    assert_eq!(
        names(api.list(&q("app==web,tier!=front")).await.unwrap()),
        ["b"]
    );
    assert_eq!(names(api.list(&q("tier")).await.unwrap()), ["a", "b"]);
    assert_eq!(names(api.list(&q("!app")).await.unwrap()), ["d"]);
    assert_eq!(
        names(api.list(&q("app in (db, cache)")).await.unwrap()),
        ["c"]
    );
    assert_eq!(
        names(api.list(&q("app notin (web)")).await.unwrap()),
        ["c", "d"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().fields("metadata.name=c"))
                .await
                .unwrap()
        ),
        ["c"]
    );
    let all: Api<ConfigMap> = Api::all(client.clone());
    assert_eq!(
        names(all.list(&ListParams::default()).await.unwrap()),
        ["a", "b", "c", "d", "e"]
    );
    assert_eq!(
        names(
            all.list(&ListParams::default().fields("metadata.namespace!=default"))
                .await
                .unwrap()
        ),
        ["e"]
    );

    let page = api.list(&ListParams::default().limit(3)).await.unwrap();
    assert_eq!(names(page.clone()), ["a", "b", "c"]);
    let token = page.metadata.continue_.clone().unwrap();
    let rest = api
        .list(&ListParams::default().limit(3).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(names(rest.clone()), ["d"]);
    assert!(rest.metadata.continue_.is_none_or(|c| c.is_empty()));
    assert_eq!(
        rest.metadata.resource_version,
        page.metadata.resource_version
    );

    let err = api
        .list(&ListParams::default().fields("data.x=y"))
        .await
        .unwrap_err();
    assert_eq!(api_error(err).code, 400);
}

#[tokio::test]
async fn watcher_sees_added_modified_deleted() {
    let (_server, client) = start(Options::default()).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    api.create(
        &PostParams::default(),
        &serde_json::from_value(configmap("before", json!({}))).unwrap(),
    )
    .await
    .unwrap();

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stream = watcher(api.clone(), watcher::Config::default());
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            if tx.send(ev.unwrap()).is_err() {
                break;
            }
        }
    });
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap()
    };
    assert!(matches!(next().await, watcher::Event::Init));
    assert!(matches!(next().await, watcher::Event::InitApply(cm) if cm.name_any() == "before"));
    assert!(matches!(next().await, watcher::Event::InitDone));

    api.create(
        &PostParams::default(),
        &serde_json::from_value(configmap("x", json!({"k": "1"}))).unwrap(),
    )
    .await
    .unwrap();
    assert!(matches!(next().await, watcher::Event::Apply(cm) if cm.name_any() == "x"));
    api.patch(
        "x",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "2"}})),
    )
    .await
    .unwrap();
    match next().await {
        watcher::Event::Apply(cm) => assert_eq!(cm.data.unwrap()["k"], "2"),
        other => panic!("expected a modification, got {other:?}"),
    }
    api.delete("x", &DeleteParams::default()).await.unwrap();
    assert!(matches!(next().await, watcher::Event::Delete(cm) if cm.name_any() == "x"));
    task.abort();
}

#[tokio::test]
async fn streaming_list_watcher_ends_its_initial_events_with_a_bookmark() {
    let (_server, client) = start(Options::default()).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for n in ["a", "b"] {
        api.create(
            &PostParams::default(),
            &serde_json::from_value(configmap(n, json!({}))).unwrap(),
        )
        .await
        .unwrap();
    }
    let stream = watcher(api.clone(), watcher::Config::default().streaming_lists());
    let mut stream = std::pin::pin!(stream);
    let mut seen = Vec::new();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match ev {
            watcher::Event::Init => {}
            watcher::Event::InitApply(cm) => seen.push(cm.name_any()),
            watcher::Event::InitDone => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, ["a", "b"]);
    api.create(
        &PostParams::default(),
        &serde_json::from_value(configmap("c", json!({}))).unwrap(),
    )
    .await
    .unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(ev, watcher::Event::Apply(cm) if cm.name_any() == "c"));
}

#[tokio::test]
async fn watch_replays_history_and_expires_what_it_no_longer_has() {
    let (_server, client) = start(Options {
        watch_history: 3,
        ..Options::default()
    })
    .await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let first = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(configmap("a", json!({}))).unwrap(),
        )
        .await
        .unwrap();
    let rv1 = first.resource_version().unwrap();
    api.create(
        &PostParams::default(),
        &serde_json::from_value(configmap("b", json!({}))).unwrap(),
    )
    .await
    .unwrap();

    let stream = api
        .watch(&WatchParams::default().timeout(5), &rv1)
        .await
        .unwrap();
    let mut stream = std::pin::pin!(stream);
    match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Added(cm) => assert_eq!(cm.name_any(), "b"),
        other => panic!("expected b to be replayed, got {other:?}"),
    }

    for n in ["c", "d", "e", "f"] {
        api.create(
            &PostParams::default(),
            &serde_json::from_value(configmap(n, json!({}))).unwrap(),
        )
        .await
        .unwrap();
    }
    let stream = api
        .watch(&WatchParams::default().timeout(5), &rv1)
        .await
        .unwrap();
    let mut stream = std::pin::pin!(stream);
    match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Error(e) => assert_eq!(e.code, 410),
        other => panic!("expected 410 Gone, got {other:?}"),
    }

    // a watcher that falls that far behind relists and carries on
    let items = watcher(api.clone(), watcher::Config::default());
    let mut items = std::pin::pin!(items);
    let mut names = Vec::new();
    while names.len() < 6 {
        if let watcher::Event::InitApply(cm) =
            tokio::time::timeout(Duration::from_secs(10), items.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap()
        {
            names.push(cm.name_any());
        }
    }
    assert_eq!(names, ["a", "b", "c", "d", "e", "f"]);
}

#[tokio::test]
async fn watch_timeout_ends_with_a_bookmark() {
    let (_server, client) = start(Options::default()).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(configmap("a", json!({}))).unwrap(),
        )
        .await
        .unwrap();
    let events: Vec<_> = api
        .watch(
            &WatchParams::default().timeout(1),
            &cm.resource_version().unwrap(),
        )
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    match &events[0] {
        WatchEvent::Bookmark(b) => {
            assert_eq!(b.metadata.resource_version, cm.resource_version().unwrap())
        }
        other => panic!("expected a bookmark, got {other:?}"),
    }
}

#[tokio::test]
async fn deletion_waits_for_finalizers() {
    let (server, client) = start(Options::default()).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut cm = configmap("guarded", json!({}));
    cm["metadata"]["finalizers"] = json!(["example.com/cleanup"]);
    let created = api
        .create(&PostParams::default(), &serde_json::from_value(cm).unwrap())
        .await
        .unwrap();
    let deleted = api
        .delete("guarded", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert!(deleted.metadata.deletion_timestamp.is_some());
    assert_eq!(
        deleted.metadata.generation,
        Some(created.metadata.generation.unwrap() + 1)
    );
    let live = api.get("guarded").await.unwrap();
    assert!(live.metadata.deletion_timestamp.is_some());

    let err = api
        .patch(
            "guarded",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"finalizers": ["example.com/cleanup", "example.com/late"]}}),
            ),
        )
        .await
        .unwrap_err();
    let status = api_error(err);
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));

    let remove = json_patch::Patch(
        serde_json::from_value(json!([
            {"op": "test", "path": "/metadata/finalizers/0", "value": "example.com/cleanup"},
            {"op": "remove", "path": "/metadata/finalizers/0"}
        ]))
        .unwrap(),
    );
    api.patch(
        "guarded",
        &PatchParams::default(),
        &Patch::Json::<()>(remove),
    )
    .await
    .unwrap();
    assert_eq!(api_error(api.get("guarded").await.unwrap_err()).code, 404);
    assert_eq!(server.state().object_count(), 0);
}

#[tokio::test]
async fn failed_json_patch_test_is_unprocessable() {
    let (_server, client) = start(Options::default()).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    api.create(
        &PostParams::default(),
        &serde_json::from_value(configmap("c", json!({"k": "1"}))).unwrap(),
    )
    .await
    .unwrap();
    let patch = json_patch::Patch(
        serde_json::from_value(json!([
            {"op": "test", "path": "/data/k", "value": "2"},
            {"op": "replace", "path": "/data/k", "value": "3"}
        ]))
        .unwrap(),
    );
    let status = api_error(
        api.patch("c", &PatchParams::default(), &Patch::Json::<()>(patch))
            .await
            .unwrap_err(),
    );
    assert_eq!(status.code, 422);
    assert_eq!(api.get("c").await.unwrap().data.unwrap()["k"], "1");
}

#[tokio::test]
async fn replace_with_a_stale_resource_version_conflicts() {
    let (_server, client) = start(Options::default()).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let v1 = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(configmap("c", json!({"k": "1"}))).unwrap(),
        )
        .await
        .unwrap();
    let mut v2 = v1.clone();
    v2.data = Some([("k".to_owned(), "2".to_owned())].into());
    let v2 = api.replace("c", &PostParams::default(), &v2).await.unwrap();
    assert_ne!(v2.resource_version(), v1.resource_version());
    let mut stale = v1.clone();
    stale.data = Some([("k".to_owned(), "3".to_owned())].into());
    let status = api_error(
        api.replace("c", &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert!(status.message.contains("the object has been modified"));

    let dup = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(configmap("c", json!({}))).unwrap(),
        )
        .await;
    let status = api_error(dup.unwrap_err());
    assert_eq!(
        (status.code, status.reason.as_str()),
        (409, "AlreadyExists")
    );
    assert_eq!(status.details.unwrap().name, "c");
}

#[tokio::test]
async fn dry_run_stores_nothing() {
    let (server, client) = start(Options::default()).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let pp = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let would = api
        .create(
            &pp,
            &serde_json::from_value(configmap("c", json!({"k": "1"}))).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(would.data.unwrap()["k"], "1");
    assert_eq!(server.state().object_count(), 0);
    let applied = api
        .patch(
            "c",
            &PatchParams::apply("terroir").dry_run(),
            &Patch::Apply(configmap("c", json!({"k": "1"}))),
        )
        .await
        .unwrap();
    assert_eq!(applied.data.unwrap()["k"], "1");
    assert_eq!(server.state().object_count(), 0);

    api.patch(
        "c",
        &PatchParams::apply("terroir"),
        &Patch::Apply(configmap("c", json!({"k": "1"}))),
    )
    .await
    .unwrap();
    let rv = api.get("c").await.unwrap().resource_version();
    let changed = api
        .patch(
            "c",
            &PatchParams::apply("terroir").dry_run(),
            &Patch::Apply(configmap("c", json!({"k": "2"}))),
        )
        .await
        .unwrap();
    assert_eq!(changed.data.unwrap()["k"], "2");
    assert_eq!(api.get("c").await.unwrap().data.unwrap()["k"], "1");
    assert_eq!(api.get("c").await.unwrap().resource_version(), rv);
    api.delete("c", &DeleteParams::default().dry_run())
        .await
        .unwrap();
    assert_eq!(server.state().object_count(), 1);
}

#[tokio::test]
async fn status_subresource_is_isolated() {
    let (_server, client) = start(Options {
        simulate_rollouts: false,
        ..Options::default()
    })
    .await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let mut d = deployment("web", 2, "web:1");
    d["status"] = json!({"replicas": 99});
    let created = api
        .patch("web", &PatchParams::apply("terroir"), &Patch::Apply(&d))
        .await
        .unwrap();
    assert!(
        created.status.is_none(),
        "status in a main-resource apply is ignored"
    );

    let s = api
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 2}, "spec": {"replicas": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(s.status.unwrap().replicas, Some(2));
    assert_eq!(
        s.spec.unwrap().replicas,
        Some(2),
        "a status write leaves spec alone"
    );
    assert_eq!(s.metadata.generation, Some(1));

    let m = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 7}})),
        )
        .await
        .unwrap();
    assert_eq!(
        m.status.unwrap().replicas,
        Some(2),
        "a main-resource write leaves status alone"
    );
}

#[tokio::test]
async fn rollouts_are_simulated_unless_switched_off() {
    let (server, client) = start(Options {
        simulate_rollouts: false,
        ..Options::default()
    })
    .await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deployments
        .patch(
            "web",
            &PatchParams::apply("t"),
            &Patch::Apply(deployment("web", 2, "web:1")),
        )
        .await
        .unwrap();
    assert!(deployments.get("web").await.unwrap().status.is_none());

    server.state().set_simulate_rollouts(true);
    let status = deployments.get("web").await.unwrap().status.unwrap();
    assert_eq!(
        (
            status.replicas,
            status.ready_replicas,
            status.observed_generation
        ),
        (Some(2), Some(2), Some(1))
    );
    let conditions = status.conditions.unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "Available" && c.status == "True")
    );
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "Progressing"
                && c.reason.as_deref() == Some("NewReplicaSetAvailable"))
    );

    let mut sts = deployment("db", 3, "pg:16");
    sts["kind"] = json!("StatefulSet");
    sts["spec"]["serviceName"] = json!("db");
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    statefulsets
        .patch("db", &PatchParams::apply("t"), &Patch::Apply(&sts))
        .await
        .unwrap();
    let s = statefulsets.get("db").await.unwrap().status.unwrap();
    assert_eq!(
        (s.replicas, s.ready_replicas, s.available_replicas),
        (3, Some(3), Some(3))
    );
    assert_eq!(s.current_revision, s.update_revision);
    assert!(s.update_revision.unwrap().starts_with("db-"));

    let mut ds = deployment("agent", 1, "agent:1");
    ds["kind"] = json!("DaemonSet");
    ds["spec"].as_object_mut().unwrap().remove("replicas");
    let daemonsets: Api<DaemonSet> = Api::namespaced(client.clone(), "default");
    daemonsets
        .patch("agent", &PatchParams::apply("t"), &Patch::Apply(&ds))
        .await
        .unwrap();
    let s = daemonsets.get("agent").await.unwrap().status.unwrap();
    assert_eq!(
        (
            s.desired_number_scheduled,
            s.number_ready,
            s.observed_generation
        ),
        (1, 1, Some(1))
    );
}

#[tokio::test]
async fn garbage_collection_and_namespace_deletion() {
    let (server, client) = start(Options::default()).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap();
    let ns = namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Active"));
    assert_eq!(
        ns.metadata.labels.unwrap()["kubernetes.io/metadata.name"],
        "team"
    );

    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    let owner = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(configmap("owner", json!({}))).unwrap(),
        )
        .await
        .unwrap();
    let mut dep = configmap("dependent", json!({}));
    dep["metadata"]["ownerReferences"] = json!([{
        "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid.unwrap()
    }]);
    api.create(
        &PostParams::default(),
        &serde_json::from_value(dep).unwrap(),
    )
    .await
    .unwrap();
    api.delete("owner", &DeleteParams::default()).await.unwrap();
    assert_eq!(
        api_error(api.get("dependent").await.unwrap_err()).code,
        404,
        "dependents are collected"
    );

    let mut guarded = configmap("guarded", json!({}));
    guarded["metadata"]["finalizers"] = json!(["example.com/f"]);
    api.create(
        &PostParams::default(),
        &serde_json::from_value(guarded).unwrap(),
    )
    .await
    .unwrap();
    api.create(
        &PostParams::default(),
        &serde_json::from_value(configmap("plain", json!({}))).unwrap(),
    )
    .await
    .unwrap();
    let terminating = namespaces
        .delete("team", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert_eq!(
        terminating.status.unwrap().phase.as_deref(),
        Some("Terminating")
    );
    assert_eq!(api_error(api.get("plain").await.unwrap_err()).code, 404);
    assert!(
        api.get("guarded")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );
    let status = api_error(
        api.create(
            &PostParams::default(),
            &serde_json::from_value(configmap("late", json!({}))).unwrap(),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(status.code, 403);

    api.patch(
        "guarded",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(
        api_error(namespaces.get("team").await.unwrap_err()).code,
        404,
        "the emptied namespace goes"
    );
    assert_eq!(server.state().object_count(), 0);
}

#[derive(Debug)]
enum ReconcileError {
    Kube(kube::Error),
}

impl std::fmt::Display for ReconcileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ReconcileError::Kube(e) = self;
        write!(f, "{e}")
    }
}

impl std::error::Error for ReconcileError {}

type Ctx = (Api<ConfigMap>, tokio::sync::mpsc::UnboundedSender<String>);

#[tokio::test]
async fn a_controller_with_a_finalizer_runs_against_the_double() {
    let (server, client) = start(Options::default()).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let (cleaned_tx, mut cleaned_rx) = tokio::sync::mpsc::unbounded_channel::<String>();

    let ctx = Arc::new((api.clone(), cleaned_tx));
    let controller = Controller::new(api.clone(), watcher::Config::default())
        .run(
            |cm: Arc<ConfigMap>, ctx: Arc<Ctx>| async move {
                let (api, cleaned) = &*ctx;
                finalizer(api, "example.com/cleanup", cm, |event| async move {
                    match event {
                        finalizer::Event::Apply(cm) => {
                            let patch = json!({"metadata": {"annotations": {"reconciled": "yes"}}});
                            api.patch(
                                &cm.name_any(),
                                &PatchParams::default(),
                                &Patch::Merge(&patch),
                            )
                            .await
                            .map_err(ReconcileError::Kube)?;
                            Ok(Action::await_change())
                        }
                        finalizer::Event::Cleanup(cm) => {
                            let _ = cleaned.send(cm.name_any());
                            Ok::<_, ReconcileError>(Action::await_change())
                        }
                    }
                })
                .await
            },
            |_: Arc<ConfigMap>, _: &finalizer::Error<ReconcileError>, _: Arc<Ctx>| {
                Action::requeue(Duration::from_millis(50))
            },
            ctx,
        )
        .for_each(|_| async {});
    let task = tokio::spawn(controller);

    api.create(
        &PostParams::default(),
        &serde_json::from_value(configmap("managed", json!({}))).unwrap(),
    )
    .await
    .unwrap();
    let state = server.state();
    let reconciled = async {
        loop {
            if let Some(cm) = state.get("v1", "ConfigMap", Some("default"), "managed")
                && cm["metadata"]["annotations"]["reconciled"] == "yes"
            {
                return cm;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let cm = tokio::time::timeout(Duration::from_secs(10), reconciled)
        .await
        .unwrap();
    assert_eq!(cm["metadata"]["finalizers"], json!(["example.com/cleanup"]));

    api.delete("managed", &DeleteParams::default())
        .await
        .unwrap();
    let name = tokio::time::timeout(Duration::from_secs(10), cleaned_rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(name, "managed");
    let gone = async {
        while state
            .get("v1", "ConfigMap", Some("default"), "managed")
            .is_some()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), gone)
        .await
        .unwrap();
    task.abort();
}

#[tokio::test]
async fn apply_accepts_yaml_and_needs_a_field_manager() {
    let (server, client) = start(Options::default()).await;
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\ndata:\n  k: v\n";
    let req = |query: &str| {
        http::Request::patch(format!("/api/v1/namespaces/default/configmaps/y{query}"))
            .header("Content-Type", "application/apply-patch+yaml")
            .body(yaml.as_bytes().to_vec())
            .unwrap()
    };
    let cm: ConfigMap = client.request(req("?fieldManager=yaml")).await.unwrap();
    assert_eq!(cm.data.unwrap()["k"], "v");
    let status = api_error(client.request::<ConfigMap>(req("")).await.unwrap_err());
    assert_eq!(status.code, 422);

    let unknown = api_error(
        client
            .request::<Value>(
                http::Request::get("/apis/example.com/v1/namespaces/x/gizmos")
                    .body(vec![])
                    .unwrap(),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!((unknown.code, unknown.reason.as_str()), (404, "NotFound"));

    let requests = server.state().requests();
    let patch = requests.iter().find(|r| r.method == "PATCH").unwrap();
    assert_eq!(patch.path, "/api/v1/namespaces/default/configmaps/y");
    assert_eq!(patch.query, "fieldManager=yaml");
    assert_eq!(
        patch.content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    server.state().clear_requests();
    assert!(server.state().requests().is_empty());
}

#[tokio::test]
async fn invalid_names_and_labels_are_refused() {
    let (_server, client) = start(Options::default()).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut cm = configmap("Bad_Name", json!({}));
    let status = api_error(
        api.create(
            &PostParams::default(),
            &serde_json::from_value(cm.clone()).unwrap(),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    cm["metadata"]["name"] = json!("good");
    cm["metadata"]["labels"] = json!({"app": "has spaces"});
    let status = api_error(
        api.create(&PostParams::default(), &serde_json::from_value(cm).unwrap())
            .await
            .unwrap_err(),
    );
    assert_eq!(status.code, 422);
    assert_eq!(status.details.unwrap().causes[0].field, "metadata.labels");
}

#[tokio::test]
async fn kubeconfig_points_kube_at_the_double() {
    let (server, _) = start(Options::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    server.write_kubeconfig(&path, "double").unwrap();
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    assert_eq!(kubeconfig.current_context.as_deref(), Some("double"));
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let client = Client::try_from(config).unwrap();
    let ns: Api<Namespace> = Api::all(client);
    assert!(
        ns.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn strategic_merge_patch_merges_containers_by_name() {
    let (_server, client) = start(Options::default()).await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    api.patch(
        "web",
        &PatchParams::apply("t"),
        &Patch::Apply(deployment("web", 1, "web:1")),
    )
    .await
    .unwrap();
    let patch = json!({
        "metadata": {"finalizers": ["example.com/x"]},
        "spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "web:2"},
            {"name": "sidecar", "image": "s:1"}
        ]}}}
    });
    let d = api
        .patch("web", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .unwrap();
    let containers = d.spec.unwrap().template.spec.unwrap().containers;
    let summary: Vec<(String, Option<String>, usize)> = containers
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                c.image.clone(),
                c.ports.as_ref().map_or(0, Vec::len),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("app".to_owned(), Some("web:2".to_owned()), 1),
            ("sidecar".to_owned(), Some("s:1".to_owned()), 0)
        ]
    );
    let more = json!({"metadata": {"finalizers": ["example.com/y"]}});
    let d = api
        .patch("web", &PatchParams::default(), &Patch::Strategic(&more))
        .await
        .unwrap();
    assert_eq!(
        d.metadata.finalizers.unwrap(),
        ["example.com/x", "example.com/y"]
    );
}

#[tokio::test]
async fn label_selected_watches_see_objects_enter_and_leave() {
    let (_server, client) = start(Options::default()).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(configmap("c", json!({}))).unwrap(),
        )
        .await
        .unwrap();
    let stream = api
        .watch(
            &WatchParams::default().labels("team=a").timeout(10),
            &cm.resource_version().unwrap(),
        )
        .await
        .unwrap();
    let mut stream = std::pin::pin!(stream);
    let label = |v: Value| json!({"metadata": {"labels": {"team": v}}});
    api.patch(
        "c",
        &PatchParams::default(),
        &Patch::Merge(label(json!("a"))),
    )
    .await
    .unwrap();
    api.patch(
        "c",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "v"}})),
    )
    .await
    .unwrap();
    api.patch(
        "c",
        &PatchParams::default(),
        &Patch::Merge(label(json!("b"))),
    )
    .await
    .unwrap();
    let mut kinds = Vec::new();
    for _ in 0..3 {
        kinds.push(match stream.try_next().await.unwrap().unwrap() {
            WatchEvent::Added(_) => "ADDED",
            WatchEvent::Modified(_) => "MODIFIED",
            WatchEvent::Deleted(_) => "DELETED",
            other => panic!("unexpected {other:?}"),
        });
    }
    assert_eq!(kinds, ["ADDED", "MODIFIED", "DELETED"]);
}

#[tokio::test]
async fn orphan_propagation_keeps_dependents() {
    let (_server, client) = start(Options::default()).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let owner = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(configmap("owner", json!({}))).unwrap(),
        )
        .await
        .unwrap();
    let mut dep = configmap("dependent", json!({}));
    dep["metadata"]["ownerReferences"] = json!([{
        "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid.unwrap()
    }]);
    api.create(
        &PostParams::default(),
        &serde_json::from_value(dep).unwrap(),
    )
    .await
    .unwrap();
    let dp = DeleteParams {
        propagation_policy: Some(kube::api::PropagationPolicy::Orphan),
        ..Default::default()
    };
    api.delete("owner", &dp).await.unwrap();
    let left = api.get("dependent").await.unwrap();
    assert!(left.metadata.owner_references.is_none());
}

#[tokio::test]
async fn status_apply_has_its_own_manager() {
    let (server, client) = start(Options::default()).await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(widget_crd()).unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let ar = kube::api::ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    );
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let w = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1}});
    let created = widgets
        .patch("w", &PatchParams::apply("terroir"), &Patch::Apply(&w))
        .await
        .unwrap();
    let status = json!({"apiVersion": "example.com/v1", "kind": "Widget", "status": {"phase": "Ready"}, "spec": {"size": 5}});
    let after = widgets
        .patch_status(
            "w",
            &PatchParams::apply("terroir-operator"),
            &Patch::Apply(&status),
        )
        .await
        .unwrap();
    assert_eq!(after.data["status"]["phase"], "Ready");
    assert_eq!(after.data["spec"]["size"], 1);
    assert_eq!(after.metadata.generation, created.metadata.generation);
    let stored = server
        .state()
        .get("example.com/v1", "Widget", Some("default"), "w")
        .unwrap();
    let entry = stored["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["manager"] == "terroir-operator")
        .unwrap();
    assert_eq!(entry["subresource"], "status");
    assert_eq!(entry["operation"], "Apply");
}

#[tokio::test]
async fn a_deployment_keeps_one_replica_set_per_template_with_its_revision() {
    use k8s_openapi::api::apps::v1::ReplicaSet;
    let (server, client) = start(Options::default()).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let apply = |image: &str| {
        let mut d = deployment("web", 2, image);
        d["spec"]["revisionHistoryLimit"] = json!(2);
        d
    };
    let revisions = || async {
        let mut v: Vec<(String, String, i32)> = sets
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|rs| {
                let image = rs
                    .spec
                    .as_ref()
                    .unwrap()
                    .template
                    .as_ref()
                    .unwrap()
                    .spec
                    .as_ref()
                    .unwrap()
                    .containers[0]
                    .image
                    .clone()
                    .unwrap();
                let rev = rs.annotations()["deployment.kubernetes.io/revision"].clone();
                (rev, image, rs.spec.unwrap().replicas.unwrap())
            })
            .collect();
        v.sort();
        v
    };
    for image in ["web:1", "web:2", "web:1"] {
        deployments
            .patch(
                "web",
                &PatchParams::apply("t"),
                &Patch::Apply(&apply(image)),
            )
            .await
            .unwrap();
    }
    // web:1 came back: its ReplicaSet has the next revision, the current one
    assert_eq!(
        revisions().await,
        vec![
            ("2".into(), "web:2".into(), 0),
            ("3".into(), "web:1".into(), 2)
        ]
    );
    let d = deployments.get("web").await.unwrap();
    assert_eq!(d.annotations()["deployment.kubernetes.io/revision"], "3");
    let rs = sets.list(&ListParams::default()).await.unwrap().items;
    assert!(
        rs.iter()
            .all(|r| r.owner_references()[0].uid == d.uid().unwrap())
    );
    assert!(
        rs.iter()
            .all(|r| r.labels().contains_key("pod-template-hash"))
    );
    // the oldest beyond revisionHistoryLimit are forgotten
    for image in ["web:3", "web:4"] {
        deployments
            .patch(
                "web",
                &PatchParams::apply("t"),
                &Patch::Apply(&apply(image)),
            )
            .await
            .unwrap();
    }
    let images: Vec<String> = revisions().await.into_iter().map(|r| r.1).collect();
    assert_eq!(images, ["web:1", "web:3", "web:4"]);
    // a re-apply of the same template makes no new revision
    deployments
        .patch(
            "web",
            &PatchParams::apply("t"),
            &Patch::Apply(&apply("web:4")),
        )
        .await
        .unwrap();
    assert_eq!(
        deployments.get("web").await.unwrap().annotations()["deployment.kubernetes.io/revision"],
        "5"
    );
    // deleting the Deployment deletes its ReplicaSets
    deployments
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        sets.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    server.shutdown().await;
}
