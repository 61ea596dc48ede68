//! Benchmark: `terroir operator` (release build, a separate process) reconciling N Platform
//! resources (default 500) against the stateful API server double over HTTP.
//!
//! Reports the operator's peak resident memory (VmHWM), the time until every Platform is
//! Ready, end-to-end latency per Platform (created -> Ready, seen through a watch) and the
//! operator's own reconcile duration histogram (mean).
//!
//!   cargo bench --bench operator              # 500 Platforms
//!   TERROIR_BENCH_PLATFORMS=100 cargo bench --bench operator

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use kube::{Client, Config, ResourceExt};
use serde_json::{Value, json};
use terroir::document::PlatformResource;
use terroir_kube_double::{Options, Server};

fn vm_hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("TERROIR_BENCH_PLATFORMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let server = Server::start(Options::default())
        .await
        .expect("the API server double starts");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let kubeconfig = dir.path().join("kubeconfig");
    server
        .write_kubeconfig(&kubeconfig, "double")
        .expect("kubeconfig written");
    let kc = Kubeconfig::read_from(&kubeconfig).expect("kubeconfig");
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("config");
    let client = Client::try_from(config).expect("client");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        "platforms.terroir.eu",
        &PatchParams::apply("bench"),
        &Patch::Apply(terroir::document::crd::crd()),
    )
    .await
    .expect("CRD applied");

    let mut operator = std::process::Command::new(env!("CARGO_BIN_EXE_terroir"))
        .args(["operator", "--kubeconfig"])
        .arg(&kubeconfig)
        .args([
            "--metrics-addr",
            "127.0.0.1:0",
            "--no-leader-election",
            "--manage-namespaces",
        ])
        .env("TERROIR_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("terroir operator starts");
    let pid = operator.id();
    let mut lines = BufReader::new(operator.stderr.take().expect("stderr")).lines();
    let metrics_addr = loop {
        let line = lines
            .next()
            .expect("the operator logs its start")
            .expect("a log line");
        let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if let Some(addr) = v["fields"]["metrics"].as_str() {
            break addr.to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines.by_ref() {});
    let idle_kib = vm_hwm_kib(pid);

    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/kubernetes.yaml"
    ))
    .expect("example");
    let doc: Value = serde_saphyr::from_str(&text).expect("example parses");
    let platforms: Api<PlatformResource> = Api::namespaced(client.clone(), "tenants");

    // Watch for Ready before creating anything, so no transition is missed.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    let watch_api = platforms.clone();
    tokio::spawn(async move {
        let mut stream = watcher(watch_api, watcher::Config::default()).boxed();
        while let Some(Ok(ev)) = stream.next().await {
            if let watcher::Event::Apply(p) | watcher::Event::InitApply(p) = ev {
                let ready = p.status.as_ref().is_some_and(|s| {
                    s.conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
                });
                if ready && tx.send((p.name_any(), Instant::now())).is_err() {
                    break;
                }
            }
        }
    });

    let start = Instant::now();
    let mut created = HashMap::new();
    for i in 0..n {
        let name = format!("platform-{i:04}");
        let mut d = doc.clone();
        d["metadata"] = json!({"name": name});
        d["spec"]["target"]["kubernetes"]["namespace"] = json!(name);
        let p: PlatformResource = serde_json::from_value(d).expect("a Platform");
        created.insert(name, Instant::now());
        platforms
            .create(&PostParams::default(), &p)
            .await
            .expect("created");
    }
    let created_in = start.elapsed();
    let mut latencies = Vec::with_capacity(n);
    let mut seen = std::collections::HashSet::new();
    let mut peak_kib = 0;
    while seen.len() < n {
        match tokio::time::timeout(Duration::from_secs(600), rx.recv()).await {
            Ok(Some((name, at))) => {
                if seen.insert(name.clone()) {
                    if let Some(t0) = created.get(&name) {
                        latencies.push(at.duration_since(*t0).as_secs_f64());
                    }
                    peak_kib = peak_kib.max(vm_hwm_kib(pid));
                }
            }
            _ => panic!("only {} of {n} Platforms became Ready", seen.len()),
        }
    }
    let all_ready = start.elapsed();
    peak_kib = peak_kib.max(vm_hwm_kib(pid));
    let metrics = ureq::get(&format!("http://{metrics_addr}/metrics"))
        .call()
        .expect("metrics")
        .into_body()
        .read_to_string()
        .expect("text");
    let metric = |name: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0.0)
    };
    let (sum, count) = (
        metric("terroir_operator_reconcile_duration_seconds_sum"),
        metric("terroir_operator_reconcile_duration_seconds_count"),
    );
    latencies.sort_by(f64::total_cmp);
    let _ = operator.kill();
    let _ = operator.wait();

    println!(
        "operator reconciling {n} Platforms against the API server double ({} objects stored)",
        server.state().object_count()
    );
    println!(
        "  created {n} Platforms in {:.2} s; all Ready after {:.2} s",
        created_in.as_secs_f64(),
        all_ready.as_secs_f64()
    );
    println!(
        "  created -> Ready latency: p50 {:.2} s, p95 {:.2} s, max {:.2} s",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.95),
        percentile(&latencies, 1.0)
    );
    println!(
        "  reconciles: {count:.0}, mean duration {:.1} ms",
        if count > 0.0 {
            sum / count * 1000.0
        } else {
            0.0
        }
    );
    println!(
        "  operator peak RSS (VmHWM): {:.1} MiB (idle before any Platform: {:.1} MiB)",
        peak_kib as f64 / 1024.0,
        idle_kib as f64 / 1024.0
    );
}
