//! Load on the double: many applies and watches at once, every watcher seeing every object.
//! (Its throughput at the operator benchmark's size is measured by `cargo bench --bench operator`.)

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::json;
use terroir_kube_double::{Options, Server};

async fn load(namespaces: usize, per_namespace: usize, watches: usize) {
    let server = Server::start(Options::default()).await.unwrap();
    let client = Client::try_from(kube::Config::new(server.url().parse().unwrap())).unwrap();

    // watchers over all namespaces, counting what they see
    let total = namespaces * per_namespace;
    let mut watch_tasks = Vec::new();
    for _ in 0..watches {
        let api: Api<ConfigMap> = Api::all(client.clone());
        watch_tasks.push(tokio::spawn(async move {
            let mut seen = std::collections::HashSet::new();
            let stream = watcher(api, watcher::Config::default());
            let mut stream = std::pin::pin!(stream);
            while seen.len() < total {
                match stream.next().await {
                    Some(Ok(watcher::Event::Apply(cm) | watcher::Event::InitApply(cm))) => {
                        seen.insert((cm.namespace().unwrap_or_default(), cm.name_any()));
                    }
                    Some(_) => {}
                    None => break,
                }
            }
            seen.len()
        }));
    }

    let started = Instant::now();
    let mut writers = Vec::new();
    for n in 0..namespaces {
        let client = client.clone();
        writers.push(tokio::spawn(async move {
            let ns = format!("tenant-{n}");
            let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
            let deploys: Api<Deployment> = Api::namespaced(client, &ns);
            let pp = PatchParams::apply("terroir").force();
            for i in 0..per_namespace {
                let name = format!("cm-{i}");
                let cm = json!({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": name, "labels": {"app": "load", "i": i.to_string()}},
                    "data": {"config.yaml": "x".repeat(512), "other": "y"}
                });
                cms.patch(&name, &pp, &Patch::Apply(&cm)).await.unwrap();
                if i % 10 == 0 {
                    let d = json!({
                        "apiVersion": "apps/v1", "kind": "Deployment",
                        "metadata": {"name": format!("d-{i}")},
                        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "x"}},
                            "template": {"metadata": {"labels": {"app": "x"}},
                                "spec": {"containers": [{"name": "a", "image": "i:1", "env": [{"name": "A", "value": "1"}]}]}}}
                    });
                    deploys.patch(&format!("d-{i}"), &pp, &Patch::Apply(&d)).await.unwrap();
                }
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let elapsed = started.elapsed();
    for t in watch_tasks {
        let seen = tokio::time::timeout(Duration::from_secs(120), t)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(seen, total);
    }
    let objects = server.state().object_count();
    eprintln!(
        "{objects} objects, {} writes in {elapsed:?} ({:.0}/s), {watches} watches caught up after {:?}",
        total + total / 10,
        (total + total / 10) as f64 / elapsed.as_secs_f64(),
        started.elapsed()
    );
    // each Deployment with its ReplicaSet
    assert_eq!(objects, total + 2 * namespaces * per_namespace.div_ceil(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_applies_and_watches() {
    load(8, 50, 4).await;
}
