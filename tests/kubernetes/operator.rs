//! `terroir operator`, run as a process, over HTTP against the stateful API server double:
//! it creates the children of a Platform, sets its conditions and Events, follows a spec change
//! (pruning what is no longer rendered), deletes the children with the Platform, serves its
//! metrics, and with two replicas only the Lease holder reconciles until it dies.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, Config, ResourceExt};
use serde_json::{Value, json};
use terroir::deploy::kubernetes::ApplySet;
use terroir::document::PlatformResource;
use terroir_kube_double::{Options, Server, State};

const WAIT: Duration = Duration::from_secs(90);

struct Operator {
    child: Child,
    lines: mpsc::Receiver<Value>,
}

impl Operator {
    fn start(kubeconfig: &Path, extra: &[&str]) -> Operator {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("terroir"))
            .args(["operator", "--kubeconfig"])
            .arg(kubeconfig)
            .args(["--context", "double", "--metrics-addr", "127.0.0.1:0"])
            .args(extra)
            .env("TERROIR_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env_remove("POD_NAMESPACE")
            .env_remove("POD_NAME")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("terroir operator starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let v = serde_json::from_str(&line)
                    .unwrap_or_else(|_| json!({"fields": {"message": line}}));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Operator { child, lines: rx }
    }

    /// Block until a log line whose message contains `text`; returns the line.
    fn wait_for(&self, text: &str) -> Value {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v)
                    if v["fields"]["message"]
                        .as_str()
                        .is_some_and(|m| m.contains(text)) =>
                {
                    return v;
                }
                Ok(_) => {}
                Err(e) => panic!("no log line containing {text:?}: {e}"),
            }
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn client(kubeconfig: &Path) -> Client {
    let kc = Kubeconfig::read_from(kubeconfig).unwrap();
    let config = Config::from_custom_kubeconfig(
        kc,
        &KubeConfigOptions {
            context: Some("double".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    Client::try_from(config).unwrap()
}

async fn install_crd(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        "platforms.terroir.eu",
        &PatchParams::apply("test"),
        &Patch::Apply(terroir::document::crd::crd()),
    )
    .await
    .unwrap();
}

fn example(name: &str) -> PlatformResource {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/kubernetes.yaml"
    ))
    .unwrap();
    let mut doc: Value = serde_saphyr::from_str(&text).unwrap();
    doc["metadata"] = json!({"name": name});
    doc["spec"]["target"]["kubernetes"]["namespace"] = json!(name);
    serde_json::from_value(doc).unwrap()
}

/// The Secrets the client gives for the example (backup and relay credentials), in the
/// Platform's namespace, created first as with kubectl.
async fn give_secrets(client: &Client, ns: &str) {
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .unwrap();
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), ns);
    for (name, data) in [
        (
            "backup-s3-credentials",
            json!({"AWS_ACCESS_KEY_ID": "QQ==", "AWS_SECRET_ACCESS_KEY": "Qg=="}),
        ),
        ("smtp-relay-credentials", json!({"sasl_passwd": "eA=="})),
    ] {
        let s = serde_json::from_value(
            json!({"metadata": {"name": format!("{ns}-{name}")}, "data": data}),
        )
        .unwrap();
        secrets.create(&PostParams::default(), &s).await.unwrap();
    }
}

fn condition(p: &PlatformResource, type_: &str) -> Option<(String, String)> {
    p.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

fn ready_at(generation: i64) -> impl Fn(Option<&PlatformResource>) -> bool {
    move |p: Option<&PlatformResource>| {
        p.is_some_and(|p| {
            p.status.as_ref().and_then(|s| s.observed_generation) == Some(generation)
                && condition(p, "Ready").is_some_and(|(s, _)| s == "True")
        })
    }
}

async fn wait_ready(api: &Api<PlatformResource>, name: &str, generation: i64) -> PlatformResource {
    match tokio::time::timeout(
        WAIT,
        await_condition(api.clone(), name, ready_at(generation)),
    )
    .await
    {
        Ok(Ok(Some(p))) => p,
        other => {
            let now = api.get_opt(name).await.ok().flatten();
            panic!(
                "{name} did not become Ready at generation {generation}: {other:?}; status now {:#?}",
                now.and_then(|p| p.status)
            )
        }
    }
}

fn members(state: &State, id: &str, api_version: &str, kind: &str) -> Vec<String> {
    state
        .list(api_version, kind)
        .into_iter()
        .filter(|o| o["metadata"]["labels"]["applyset.kubernetes.io/part-of"] == id)
        .map(|o| {
            o["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_creates_updates_and_deletes_the_children_of_a_platform() {
    let server = Server::start(Options::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig, "double").unwrap();
    let client = client(&kubeconfig).await;
    install_crd(&client).await;
    let state = server.state();

    let operator = Operator::start(
        &kubeconfig,
        &["--no-leader-election", "--manage-namespaces"],
    );
    let started = operator.wait_for("terroir operator starting");
    let metrics_addr = started["fields"]["metrics"]
        .as_str()
        .expect("the metrics address is logged")
        .to_owned();

    let platforms: Api<PlatformResource> = Api::namespaced(client.clone(), "tenants");
    platforms
        .create(&PostParams::default(), &example("crm"))
        .await
        .unwrap();

    // The generated Secrets are created; the ones the client gives are named, and the Platform
    // is applied but not Ready until they exist.
    let secrets_missing = |p: Option<&PlatformResource>| {
        p.is_some_and(|p| {
            condition(p, "SecretsReady") == Some(("False".into(), "SecretMissing".into()))
        })
    };
    let p = tokio::time::timeout(
        WAIT,
        await_condition(platforms.clone(), "crm", secrets_missing),
    )
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    let message = &p
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "SecretsReady")
        .unwrap()
        .message;
    assert!(
        message.contains("kubectl -n crm create secret generic crm-backup-s3-credentials")
            && message.contains("crm-smtp-relay-credentials"),
        "{message}"
    );
    assert_eq!(condition(&p, "Applied").map(|c| c.0), Some("True".into()));
    let generated: Vec<Value> = state
        .list("v1", "Secret")
        .into_iter()
        .filter(|s| s["metadata"]["labels"]["terroir.eu/generated"] == "true")
        .collect();
    let mut generated_names: Vec<&str> = generated
        .iter()
        .map(|s| s["metadata"]["name"].as_str().unwrap())
        .collect();
    generated_names.sort();
    assert_eq!(
        generated_names,
        [
            "crm-backup-cipher",
            "crm-backup-tls",
            "crm-ca",
            "crm-dkim-key",
            "crm-grafana-admin",
            "crm-monitoring-tls",
            "crm-mta-tls",
            "crm-node-exporter-tls",
            "crm-postgres-credentials",
            "crm-postgres-tls"
        ]
    );
    assert!(generated.iter().all(|s| {
        s["metadata"]["labels"]
            .get("applyset.kubernetes.io/part-of")
            .is_none()
    }));
    for (name, data) in [
        (
            "crm-backup-s3-credentials",
            json!({"AWS_ACCESS_KEY_ID": "QQ==", "AWS_SECRET_ACCESS_KEY": "Qg=="}),
        ),
        ("crm-smtp-relay-credentials", json!({"sasl_passwd": "eA=="})),
    ] {
        let secrets: Api<k8s_openapi::api::core::v1::Secret> =
            Api::namespaced(client.clone(), "crm");
        let s: k8s_openapi::api::core::v1::Secret =
            serde_json::from_value(json!({"metadata": {"name": name}, "data": data})).unwrap();
        secrets.create(&PostParams::default(), &s).await.unwrap();
    }
    let p = wait_ready(&platforms, "crm", 1).await;

    // Conditions, in order, all true; status fields set.
    let status = p.status.clone().unwrap();
    let types: Vec<(&str, &str)> = status
        .conditions
        .iter()
        .map(|c| (c.type_.as_str(), c.status.as_str()))
        .collect();
    assert_eq!(
        types,
        [
            ("Rendered", "True"),
            ("PolicyCompliant", "True"),
            ("SecretsReady", "True"),
            ("Applied", "True"),
            ("Ready", "True")
        ]
    );
    assert!(
        status
            .conditions
            .iter()
            .all(|c| c.observed_generation == Some(1))
    );
    assert!(p.finalizers().contains(&"terroir.eu/prune".to_owned()));
    let id = ApplySet::for_resource("crm", "tenants").id;
    assert_eq!(status.applyset.as_deref(), Some(id.as_str()));
    assert_eq!(
        p.labels().get("applyset.kubernetes.io/id"),
        Some(&id),
        "the Platform is the ApplySet parent"
    );

    // Children exist, labelled as members of the Platform's set.
    let deployments = members(&state, &id, "apps/v1", "Deployment");
    assert!(deployments.len() >= 3, "{deployments:?}");
    assert_eq!(
        members(&state, &id, "batch/v1", "CronJob").len(),
        2,
        "the full and the incremental backups"
    );
    assert!(members(&state, &id, "v1", "Namespace").contains(&"crm".to_owned()));
    let on_cluster: usize = [
        ("v1", "Namespace"),
        ("v1", "ConfigMap"),
        ("v1", "Service"),
        ("v1", "ServiceAccount"),
        ("v1", "PersistentVolumeClaim"),
        ("apps/v1", "Deployment"),
        ("apps/v1", "StatefulSet"),
        ("apps/v1", "DaemonSet"),
        ("batch/v1", "CronJob"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
        ("policy/v1", "PodDisruptionBudget"),
    ]
    .iter()
    .map(|(v, k)| members(&state, &id, v, k).len())
    .sum();
    assert_eq!(
        status.applied_objects,
        Some(on_cluster as i64),
        "status counts what is on the cluster"
    );

    // Events on the Platform.
    let events = state.list("events.k8s.io/v1", "Event");
    assert!(
        events.iter().any(|e| e["regarding"]["name"] == "crm"
            && e["reason"] == "Applied"
            && e["type"] == "Normal"),
        "an Applied event: {events:#?}"
    );

    // Metrics.
    let metrics = ureq::get(&format!("http://{metrics_addr}/metrics"))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    assert!(
        metrics.contains("terroir_operator_reconciliations_total{result=\"ok\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("terroir_operator_reconcile_duration_seconds_bucket"),
        "{metrics}"
    );
    assert_eq!(
        ureq::get(&format!("http://{metrics_addr}/healthz"))
            .call()
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        ureq::get(&format!("http://{metrics_addr}/readyz"))
            .call()
            .unwrap()
            .status(),
        200
    );

    // A new image of the application: the switch is recorded on its Deployment, without a
    // restore point (the operator runs nothing in the database's pod; `terroir apply` does).
    let image = "registry.mutuelle.example.fr/crm/app:4.3.0";
    let patch = json!({"spec": {"components": {"app": {"image": image}}}});
    platforms
        .patch("crm", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    wait_ready(&platforms, "crm", 2).await;
    let app = state
        .get("apps/v1", "Deployment", Some("crm"), "crm-app")
        .unwrap();
    assert_eq!(
        app["spec"]["template"]["spec"]["containers"][0]["image"],
        image
    );
    let releases: Vec<Value> = serde_json::from_str(
        app["metadata"]["annotations"]["terroir.eu/releases"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(releases.len(), 1, "{releases:?}");
    assert_eq!(releases[0]["release"], image);
    assert_eq!(
        releases[0]["from"],
        "registry.mutuelle.example.fr/crm/app:4.2.1"
    );
    assert!(releases[0].get("restorePoint").is_none(), "{releases:?}");

    // A spec change: backups off. The generation moves on, the CronJob is pruned.
    let patch = json!({"spec": {"components": {"backups": {"enabled": false}}}});
    platforms
        .patch("crm", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let p = wait_ready(&platforms, "crm", 3).await;
    assert!(
        members(&state, &id, "batch/v1", "CronJob").is_empty(),
        "the backup CronJobs are pruned"
    );
    assert_eq!(state.list("v1", "Secret").len(), 12, "no Secret is pruned");
    assert_eq!(
        members(&state, &id, "apps/v1", "Deployment").len(),
        deployments.len() - 1,
        "the backup exporter is pruned, and no other Deployment"
    );
    let ready_since = p
        .status
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap()
        .last_transition_time
        .clone();
    assert_eq!(
        ready_since,
        status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap()
            .last_transition_time,
        "a condition that stayed True keeps its transition time"
    );

    // A Platform that breaks its own policy is not applied, and says why.
    let mut bad = example("offshore");
    let terroir::document::Target::Kubernetes(k) = &mut bad.spec.target else {
        panic!("the example targets Kubernetes")
    };
    k.location.as_mut().unwrap().country = "US".into();
    platforms
        .create(&PostParams::default(), &bad)
        .await
        .unwrap();
    let cond = |p: Option<&PlatformResource>| {
        p.is_some_and(|p| condition(p, "PolicyCompliant").is_some_and(|(s, _)| s == "False"))
    };
    let bad = tokio::time::timeout(WAIT, await_condition(platforms.clone(), "offshore", cond))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        condition(&bad, "Applied"),
        Some(("False".into(), "PolicyViolation".into()))
    );
    let bad_id = ApplySet::for_resource("offshore", "tenants").id;
    assert!(
        members(&state, &bad_id, "apps/v1", "Deployment").is_empty(),
        "nothing applied for a non-compliant Platform"
    );

    // Deletion: children first, then the Platform itself.
    let uid = platforms.get("crm").await.unwrap().uid().unwrap();
    platforms
        .delete("crm", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::timeout(
        WAIT,
        await_condition(platforms.clone(), "crm", conditions::is_deleted(&uid)),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(
        members(&state, &id, "apps/v1", "Deployment").is_empty(),
        "Deployments pruned with the Platform"
    );
    assert!(members(&state, &id, "v1", "ConfigMap").is_empty());
    assert!(members(&state, &id, "v1", "Namespace").is_empty());
    assert!(state.get("v1", "Namespace", None, "crm").is_none());
    drop(operator);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_lease_holder_reconciles_and_a_follower_takes_over() {
    let server = Server::start(Options::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig, "double").unwrap();
    let client = client(&kubeconfig).await;
    install_crd(&client).await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "terroir-system");
    let platforms: Api<PlatformResource> = Api::namespaced(client.clone(), "tenants");

    let common = ["--lease-namespace", "terroir-system", "--manage-namespaces"];
    let mut a = Operator::start(
        &kubeconfig,
        &[&common[..], &["--identity", "replica-a"]].concat(),
    );
    a.wait_for("holding the Lease");
    let b = Operator::start(
        &kubeconfig,
        &[&common[..], &["--identity", "replica-b"]].concat(),
    );
    let b_started = b.wait_for("terroir operator starting");
    let b_metrics = b_started["fields"]["metrics"].as_str().unwrap().to_owned();
    b.wait_for("waiting to hold the Lease");
    let lease = leases.get("terroir-operator").await.unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some("replica-a")
    );

    give_secrets(&client, "first").await;
    platforms
        .create(&PostParams::default(), &example("first"))
        .await
        .unwrap();
    wait_ready(&platforms, "first", 1).await;
    let follower = ureq::get(&format!("http://{b_metrics}/metrics"))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    assert!(follower.contains("terroir_operator_leader 0"), "{follower}");
    assert!(
        !follower.contains("terroir_operator_reconciliations_total{"),
        "the follower reconciled nothing: {follower}"
    );

    // The leader dies without releasing the Lease; the follower takes over once it expires.
    a.kill();
    b.wait_for("holding the Lease");
    let lease = leases.get("terroir-operator").await.unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some("replica-b")
    );
    give_secrets(&client, "second").await;
    platforms
        .create(&PostParams::default(), &example("second"))
        .await
        .unwrap();
    wait_ready(&platforms, "second", 1).await;
    drop(b);
    server.shutdown().await;
}
