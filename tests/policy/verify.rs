//! `terroir verify`: declared facts, names pinned to real addresses from the geodata, Terraform
//! plans in `terraform show -json` format, live facts from the Kubernetes API server double and
//! from the bare-metal test hosts, and the same checks as the gate of `terroir apply`.
//!
//! No name is resolved through DNS here: documents use `--no-dns`, or `--resolve HOST=ADDRESS`
//! with addresses whose owner and country come from the geodata (tests/locality/addresses.yaml).

#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::{Path, PathBuf};

use common::hosts::TestHosts;
use common::{example, root, terroir, variant};
use serde_json::{Value, json};
use terroir_kube_double::{BackgroundServer, Options};

fn geodata() -> PathBuf {
    root().join("../shared/geodata")
}

fn verify(doc: &Path, extra: &[&str]) -> (i32, Value, String) {
    let out = terroir()
        .args(["verify", "--output", "json", "--geodata"])
        .arg(geodata())
        .arg(doc)
        .args(extra)
        .env_remove("KUBECONFIG")
        .timeout(std::time::Duration::from_secs(300))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), v, stderr)
}

fn findings<'a>(report: &'a Value, subject_part: &str) -> Vec<&'a Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["subject"].as_str().unwrap().contains(subject_part))
        .collect()
}

fn verdicts(report: &Value, subject_part: &str) -> Vec<String> {
    findings(report, subject_part)
        .iter()
        .map(|f| f["verdict"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_shipped_examples_meet_their_own_policies_on_declared_facts() {
    for name in [
        "baremetal.yaml",
        "kubernetes.yaml",
        "secnumcloud-outscale.yaml",
    ] {
        let (code, report, stderr) = verify(&example(name), &["--no-dns"]);
        assert_eq!(code, 0, "{name}: {stderr}\n{report:#}");
        assert_ne!(report["verdict"], "fail");
        assert!(
            report["attribution"].as_str().unwrap().contains("DB-IP"),
            "reports credit their data"
        );
        for f in report["findings"].as_array().unwrap() {
            assert_ne!(f["verdict"], "fail", "{name}: {f}");
            assert!(
                matches!(f["basis"].as_str(), Some("declared")),
                "no live or DNS facts without asking: {f}"
            );
        }
    }
    // Qualifications the policy requires are checked against the provider catalog.
    let (_, report, _) = verify(&example("secnumcloud-outscale.yaml"), &["--no-dns"]);
    assert_eq!(verdicts(&report, ": SecNumCloud"), ["pass"], "{report:#}");
}

#[test]
fn a_registry_that_resolves_to_amazon_in_paris_fails_the_cloud_act_check() {
    // 13.39.0.17: AS16509 (Amazon), geolocated in France, per the geodata.
    let (code, report, stderr) = verify(
        &example("kubernetes.yaml"),
        &[
            "--resolve",
            "registry.mutuelle.example.fr=13.39.0.17",
            "--no-dns",
        ],
    );
    assert_eq!(code, 2, "{stderr}\n{report:#}");
    let f = findings(&report, "image registry (registry.mutuelle.example.fr)");
    assert_eq!(f.len(), 1, "{report:#}");
    assert_eq!(f[0]["verdict"], "fail");
    assert_eq!(f[0]["basis"], "dns");
    let observed = f[0]["observed"].as_str().unwrap();
    assert!(
        observed.contains("13.39.0.17") && observed.contains("FR") && observed.contains("Amazon"),
        "{observed}"
    );
    assert!(
        f[0]["evidence"].as_str().unwrap().contains("AS16509"),
        "{}",
        f[0]["evidence"]
    );

    // The same name pinned to OVHcloud in France passes.
    let (code, report, stderr) = verify(
        &example("kubernetes.yaml"),
        &[
            "--resolve",
            "registry.mutuelle.example.fr=54.38.0.17",
            "--no-dns",
        ],
    );
    assert_eq!(code, 0, "{stderr}\n{report:#}");
    assert_eq!(
        verdicts(&report, "image registry (registry.mutuelle.example.fr)"),
        ["pass"]
    );

    // A bad pin is a usage error (with --output json, said in the JSON error on stdout).
    let (code, error, stderr) = verify(
        &example("kubernetes.yaml"),
        &["--resolve", "registry.mutuelle.example.fr=not-an-ip"],
    );
    assert_eq!(code, 1);
    let message = error["error"].as_str().unwrap_or_default();
    assert!(
        message.contains("not-an-ip") && message.contains("HOST=ADDRESS"),
        "{error}\n{stderr}"
    );
}

#[test]
fn terraform_plans_are_judged_resource_by_resource() {
    let plans = root().join("tests/locality/plans");
    let doc = example("secnumcloud-outscale.yaml");
    let plan = |file: &str| plans.join(file).to_str().unwrap().to_owned();

    let (code, report, stderr) = verify(
        &doc,
        &["--no-dns", "--plan-json", &plan("outscale-cloudgouv.json")],
    );
    assert_eq!(code, 0, "{stderr}\n{report:#}");
    // each resource: its place, and (the policy requires SecNumCloud) its qualification
    assert_eq!(
        verdicts(&report, "resource outscale_vm.app"),
        ["pass", "pass"]
    );
    assert_eq!(
        findings(&report, "resource outscale_vm.app: SecNumCloud").len(),
        1
    );
    assert_eq!(findings(&report, "resource ").len(), 6);

    // One VM in Outscale's US region: refused, and says why.
    let (code, report, _) = verify(
        &doc,
        &["--no-dns", "--plan-json", &plan("outscale-us-region.json")],
    );
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(
        verdicts(&report, "resource outscale_vm.app"),
        ["pass", "pass"]
    );
    let replica = findings(&report, "resource outscale_vm.replica");
    assert_eq!(replica[0]["verdict"], "fail");
    assert_eq!(replica[0]["basis"], "plan");
    assert!(
        replica[0]["observed"].as_str().unwrap().starts_with("US"),
        "{}",
        replica[0]
    );
    assert!(
        replica[0]["evidence"]
            .as_str()
            .unwrap()
            .contains("us-east-2a"),
        "{}",
        replica[0]
    );

    // Amazon's Paris region is in France and still under US law.
    let (code, report, _) = verify(&doc, &["--no-dns", "--plan-json", &plan("aws-paris.json")]);
    assert_eq!(code, 2);
    let f = findings(&report, "resource aws_instance.app");
    assert_eq!(f[0]["verdict"], "fail");
    assert!(
        f[0]["observed"].as_str().unwrap().starts_with("FR"),
        "{}",
        f[0]
    );

    // S3NS is recognised from the provider's universe domain, not taken for Google.
    let (_, report, _) = verify(&doc, &["--no-dns", "--plan-json", &plan("s3ns.json")]);
    let f = findings(&report, "resource google_container_cluster.platform");
    assert!(
        f[0]["observed"].as_str().unwrap().contains("S3NS"),
        "{}",
        f[0]
    );

    // Deletions and no-ops are not places the platform will run.
    let (code, report, _) = verify(
        &doc,
        &[
            "--no-dns",
            "--plan-json",
            &plan("outscale-delete-only.json"),
        ],
    );
    assert_eq!(code, 0);
    assert!(findings(&report, "resource ").is_empty());

    // Not a plan: the file, line and column, and what was expected.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\n  \"format_version\": \"1.2\",\n  oops\n}\n").unwrap();
    let (code, error, stderr) = verify(&doc, &["--no-dns", "--plan-json", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    let message = error["error"].as_str().unwrap_or_default();
    assert!(
        message.contains("bad.json:3:3") && message.contains("terraform show -json"),
        "{error}\n{stderr}"
    );
    std::fs::write(&bad, "{\"resource_changes\": []}").unwrap();
    let (code, error, stderr) = verify(&doc, &["--no-dns", "--plan-json", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        error["error"]
            .as_str()
            .unwrap_or_default()
            .contains("format_version"),
        "{error}\n{stderr}"
    );
}

fn post(server: &BackgroundServer, path: &str, body: Value) -> Value {
    let resp = ureq::post(&format!("{}{path}", server.url()))
        .header("content-type", "application/json")
        .send(body.to_string())
        .unwrap();
    serde_json::from_str(&resp.into_body().read_to_string().unwrap()).unwrap()
}

/// Create an object, then write its status through the status subresource (as a kubelet or a
/// cloud controller does; a create ignores `status`).
fn post_with_status(server: &BackgroundServer, path: &str, body: Value) {
    let created = post(server, path, body.clone());
    let name = created["metadata"]["name"].as_str().unwrap();
    let mut with_status = created.clone();
    with_status["status"] = body["status"].clone();
    ureq::put(&format!("{}{path}/{name}/status", server.url()))
        .header("content-type", "application/json")
        .send(with_status.to_string())
        .unwrap();
}

#[test]
fn live_kubernetes_facts_nodes_volumes_images_and_load_balancers() {
    let server = BackgroundServer::start(Options::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig, "prod-paris").unwrap();
    let node = |name: &str, provider_id: &str, region: &str, external: &str| {
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"topology.kubernetes.io/region": region}},
               "spec": {"providerID": provider_id},
               "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.5"}, {"type": "ExternalIP", "address": external}]}})
    };
    post_with_status(
        &server,
        "/api/v1/nodes",
        node(
            "worker-1",
            "outscale://cloudgouv-eu-west-1a/i-0a1b",
            "cloudgouv-eu-west-1",
            "54.38.0.17",
        ),
    );
    post(
        &server,
        "/api/v1/persistentvolumes",
        json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv-db"},
        "spec": {"capacity": {"storage": "100Gi"}, "accessModes": ["ReadWriteOnce"], "csi": {"driver": "bsu.csi.outscale.com", "volumeHandle": "vol-1"},
                 "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["cloudgouv-eu-west-1a"]}]}]}}}}),
    );
    post(
        &server,
        "/apis/apps/v1/namespaces/mutuelle-crm/deployments",
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
                 "spec": {"containers": [{"name": "app", "image": "registry.mutuelle.example.fr/crm/app:4.2.1"}, {"name": "sidecar", "image": "docker.io/library/nginx:1.27"}]}}}}),
    );
    let doc = example("kubernetes.yaml");
    let kc = kubeconfig.to_str().unwrap();

    let (code, report, stderr) = verify(&doc, &["--live", "--no-dns", "--kubeconfig", kc]);
    assert_eq!(code, 2, "docker.io is a US registry: {stderr}\n{report:#}");
    assert_eq!(
        verdicts(&report, "node worker-1"),
        ["pass", "pass"],
        "{report:#}"
    );
    let first = &findings(&report, "node worker-1")[0];
    assert_eq!(first["basis"], "live");
    assert!(
        first["evidence"].as_str().unwrap().contains("outscale://"),
        "{first}"
    );
    assert_eq!(verdicts(&report, "volume pv-db"), ["pass"], "{report:#}");
    let docker = findings(&report, "image registry in use");
    assert!(
        docker.iter().any(|f| f["verdict"] == "fail"
            && f["evidence"]
                .as_str()
                .unwrap()
                .contains("docker.io/library/nginx")),
        "{report:#}"
    );

    // A node in Amazon's Paris region, and a load balancer answering from Amazon in France.
    post_with_status(
        &server,
        "/api/v1/nodes",
        node(
            "worker-2",
            "aws:///eu-west-3a/i-0c2d",
            "eu-west-3",
            "13.39.0.17",
        ),
    );
    post_with_status(
        &server,
        "/api/v1/namespaces/mutuelle-crm/services",
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "public"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 443}]}, "status": {"loadBalancer": {"ingress": [{"ip": "13.39.0.17"}]}}}),
    );
    let (code, report, _) = verify(&doc, &["--live", "--no-dns", "--kubeconfig", kc]);
    assert_eq!(code, 2);
    assert_eq!(
        verdicts(&report, "node worker-2"),
        ["fail", "fail"],
        "{report:#}"
    );
    assert!(
        findings(&report, "node worker-2")[0]["observed"]
            .as_str()
            .unwrap()
            .contains("FR"),
        "Paris, and still under US law"
    );
    assert_eq!(
        verdicts(&report, "load balancer public"),
        ["fail"],
        "{report:#}"
    );
}

#[test]
fn live_bare_metal_facts_are_read_over_ssh() {
    let hosts = TestHosts::up(3);
    let dir = tempfile::tempdir().unwrap();
    let doc = variant("baremetal.yaml", dir.path(), "platform.yaml", |t| {
        t.replace(
            "identityFile: ~/.ssh/terroir_ed25519",
            &format!("identityFile: {}", hosts.identity().display()),
        )
        .replace(
            "knownHostsFile: ./known_hosts",
            &format!("knownHostsFile: {}", hosts.known_hosts().display()),
        )
    });
    let on_host = |host: &str, script: &str| {
        let out = std::process::Command::new(root().join("tests/hosts/hostctl"))
            .args(["exec", host, "sh", "-c", script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // db1 uses a resolver run by Google (AS15169, US); the others a resolver of OVHcloud's in France.
    // (hostctl names the hosts h1, h2, h3; the document calls them db1, ops1, app1.)
    on_host("h1", "printf 'nameserver 8.8.8.8\\n' > /etc/resolv.conf");
    on_host("h2", "printf 'nameserver 54.38.0.17\\n' > /etc/resolv.conf");
    on_host("h3", "printf 'nameserver 54.38.0.17\\n' > /etc/resolv.conf");

    let (code, report, stderr) = verify(&doc, &["--live", "--no-dns"]);
    assert_eq!(code, 2, "{stderr}\n{report:#}");
    for (host, address) in [
        ("db1", "198.18.0.11"),
        ("ops1", "198.18.0.12"),
        ("app1", "198.18.0.13"),
    ] {
        let addr = findings(&report, &format!("host {host} address"));
        assert!(
            addr.iter().any(
                |f| f["observed"].as_str().unwrap().contains(address) && f["verdict"] == "warn"
            ),
            "test addresses are special-purpose, not locatable: {report:#}"
        );
        let gw = findings(&report, &format!("host {host} default gateway"));
        assert!(
            gw.iter()
                .any(|f| f["observed"].as_str().unwrap().contains("198.18.0.1")),
            "{report:#}"
        );
    }
    let google = findings(&report, "host db1 DNS resolver");
    assert_eq!(google.len(), 1, "{report:#}");
    assert_eq!(google[0]["verdict"], "fail");
    assert!(
        google[0]["evidence"].as_str().unwrap().contains("AS15169"),
        "{}",
        google[0]
    );
    assert_eq!(verdicts(&report, "host ops1 DNS resolver"), ["pass"]);
}

#[test]
fn apply_refuses_a_platform_that_breaks_its_policy_before_changing_anything() {
    let server = BackgroundServer::start(Options::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig, "prod-paris").unwrap();
    // Mail relayed through Amazon SES: a US company.
    let doc = variant("kubernetes.yaml", dir.path(), "platform.yaml", |t| {
        t.replace(
            "url: smtp://smtp-relay.brevo.com:587\n      operator: Brevo",
            "url: smtp://email-smtp.eu-west-3.amazonaws.com:587\n      operator: Amazon SES",
        )
    });
    let out = terroir()
        .args(["apply"])
        .arg(&doc)
        .args(["--kubeconfig", kubeconfig.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("SMTP relay") && stderr.contains("Amazon") && stderr.contains("policy"),
        "{stderr}"
    );
    assert!(
        server.state().requests().is_empty(),
        "nothing was sent to the cluster: {:?}",
        server.state().requests().len()
    );

    // enforcement: warn reports and goes on.
    let doc = variant("kubernetes.yaml", dir.path(), "platform.yaml", |t| {
        t.replace(
            "url: smtp://smtp-relay.brevo.com:587\n      operator: Brevo",
            "url: smtp://email-smtp.eu-west-3.amazonaws.com:587\n      operator: Amazon SES",
        )
        .replace(
            "      requiredQualifications: [secnumcloud, hds]",
            "      requiredQualifications: [secnumcloud, hds]\n      enforcement: warn",
        )
    });
    // the Secrets the client gives: without them apply fails after applying, whatever the policy
    for (name, data) in [
        (
            "mutuelle-crm-backup-s3-credentials",
            json!({"AWS_ACCESS_KEY_ID": "given", "AWS_SECRET_ACCESS_KEY": "given"}),
        ),
        (
            "mutuelle-crm-smtp-relay-credentials",
            json!({"sasl_passwd": "given"}),
        ),
    ] {
        let given = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data});
        ureq::post(&format!(
            "{}/api/v1/namespaces/mutuelle-crm/secrets",
            server.url()
        ))
        .header("content-type", "application/json")
        .send(given.to_string())
        .unwrap();
    }
    let out = terroir()
        .args(["apply", "--no-wait"])
        .arg(&doc)
        .args(["--kubeconfig", kubeconfig.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning") && stderr.contains("Amazon"),
        "{stderr}"
    );
    assert!(!server.state().list("apps/v1", "Deployment").is_empty());
}

/// With images pinned by digest, every container of the platform's pods that runs one is
/// compared with the digest its runtime pulled (`status.containerStatuses[].imageID`): the same
/// digest passes, another fails naming the pod, the container and both digests.
#[test]
fn live_kubernetes_pods_run_the_pinned_digests() {
    let pinned = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let other = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
    let server = BackgroundServer::start(Options::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig, "prod-paris").unwrap();
    let doc = variant("kubernetes.yaml", dir.path(), "pinned.yaml", |t| {
        format!(
            "{t}  images:\n    postgres: terroir/postgres:16-bookworm@sha256:{pinned}\n    nodeExporter: prom/node-exporter:v1.9.1@sha256:{pinned}\n"
        )
    });
    let image =
        format!("registry.mutuelle.example.fr/terroir/postgres:16-bookworm@sha256:{pinned}");
    let pod = |name: &str, image_id: String| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
               "spec": {"containers": [{"name": "postgres", "image": image},
                                       {"name": "exporter", "image": "registry.mutuelle.example.fr/prometheuscommunity/postgres-exporter:v0.17.1"}]},
               "status": {"phase": "Running", "containerStatuses": [
                   {"name": "postgres", "image": image, "imageID": image_id, "ready": true, "restartCount": 0,
                    "state": {"running": {"startedAt": "2026-12-01T10:00:00Z"}}},
                   {"name": "exporter", "image": "x", "imageID": format!("sha256:{other}"), "ready": true, "restartCount": 0}]}})
    };
    post_with_status(
        &server,
        "/api/v1/namespaces/mutuelle-crm/pods",
        pod(
            "mutuelle-crm-postgres-0",
            format!(
                "docker-pullable://registry.mutuelle.example.fr/terroir/postgres@sha256:{pinned}"
            ),
        ),
    );
    let kc = kubeconfig.to_str().unwrap();
    let (_, report, stderr) = verify(&doc, &["--live", "--no-dns", "--kubeconfig", kc]);
    assert_eq!(
        verdicts(&report, ": image digest"),
        ["pass"],
        "only the pinned image's container: {stderr}\n{report:#}"
    );

    post_with_status(
        &server,
        "/api/v1/namespaces/mutuelle-crm/pods",
        pod(
            "mutuelle-crm-postgres-1",
            format!("registry.mutuelle.example.fr/terroir/postgres@sha256:{other}"),
        ),
    );
    let (code, report, stderr) = verify(&doc, &["--live", "--no-dns", "--kubeconfig", kc]);
    assert_eq!(code, 2, "another digest fails: {stderr}\n{report:#}");
    assert_eq!(
        verdicts(
            &report,
            "pod mutuelle-crm/mutuelle-crm-postgres-0 container postgres"
        ),
        ["pass"]
    );
    let failing = findings(
        &report,
        "pod mutuelle-crm/mutuelle-crm-postgres-1 container postgres",
    );
    assert_eq!(failing.len(), 1, "{report:#}");
    assert_eq!(failing[0]["verdict"], "fail");
    assert_eq!(failing[0]["basis"], "live");
    let said = format!("{} {}", failing[0]["observed"], failing[0]["expected"]);
    assert!(
        said.contains(&format!("sha256:{other}")) && said.contains(&format!("sha256:{pinned}")),
        "the running and the pinned digest: {said}"
    );

    // the node exporters run in a namespace of their own, which is read too
    let exporter =
        format!("registry.mutuelle.example.fr/prom/node-exporter:v1.9.1@sha256:{pinned}");
    post_with_status(
        &server,
        "/api/v1/namespaces/mutuelle-crm-node-exporter/pods",
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "node-exporter-x1"},
               "spec": {"containers": [{"name": "node-exporter", "image": exporter}]},
               "status": {"phase": "Running", "containerStatuses": [
                   {"name": "node-exporter", "image": exporter, "imageID": format!("sha256:{other}"), "ready": true, "restartCount": 0}]}}),
    );
    let (_, report, _) = verify(&doc, &["--live", "--no-dns", "--kubeconfig", kc]);
    assert_eq!(
        verdicts(
            &report,
            "pod mutuelle-crm-node-exporter/node-exporter-x1 container node-exporter"
        ),
        ["fail"],
        "{report:#}"
    );
}
