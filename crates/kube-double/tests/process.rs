//! The double from synchronous code: `BackgroundServer`, and the `terroir-kube-double` binary.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use terroir_kube_double::{BackgroundServer, Options};

/// A minimal HTTP/1.1 exchange over a fresh connection.
fn request(url: &str, method: &str, path: &str, content_type: &str, body: &str) -> (u16, String) {
    let addr = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split(' ').nth(1).unwrap().parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn background_server_serves_synchronous_tests() {
    let server = BackgroundServer::start(Options::default()).unwrap();
    let url = server.url();
    assert!(url.starts_with("http://127.0.0.1:"));
    let ns =
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "sync"}}).to_string();
    let (status, body) = request(&url, "POST", "/api/v1/namespaces", "application/json", &ns);
    assert_eq!(status, 201, "{body}");
    let state = server.state();
    assert_eq!(state.object_count(), 1);
    let stored = state.get("v1", "Namespace", None, "sync").unwrap();
    assert_eq!(stored["status"]["phase"], "Active");
    assert_eq!(state.list("v1", "Namespace").len(), 1);
    let (status, body) = request(
        &url,
        "GET",
        "/api/v1/namespaces/nope",
        "application/json",
        "",
    );
    assert_eq!(status, 404);
    let err: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (err["kind"].as_str(), err["reason"].as_str()),
        (Some("Status"), Some("NotFound"))
    );
    assert_eq!(err["message"], "namespaces \"nope\" not found");
    assert!(
        server
            .kubeconfig_yaml("ctx")
            .contains(&format!("server: {url}"))
    );
    drop(server);
    assert!(
        TcpStream::connect(url.trim_start_matches("http://")).is_err(),
        "dropping stops the server"
    );
}

#[cfg(unix)]
#[test]
fn binary_announces_its_address_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_terroir-kube-double"))
        .arg("--kubeconfig-out")
        .arg(&kubeconfig)
        .arg("--no-simulate-rollouts")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    assert!(
        std::fs::read_to_string(&kubeconfig)
            .unwrap()
            .contains(&format!("server: {url}"))
    );
    let (status, body) = request(&url, "GET", "/healthz", "text/plain", "");
    assert_eq!((status, body.as_str()), (200, "ok"));

    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}}}
    })
    .to_string();
    let (status, body) = request(
        &url,
        "PATCH",
        "/apis/apps/v1/namespaces/default/deployments/web?fieldManager=test",
        "application/apply-patch+yaml",
        &deployment,
    );
    assert_eq!(status, 201, "{body}");
    let (_, body) = request(
        &url,
        "GET",
        "/apis/apps/v1/namespaces/default/deployments/web",
        "application/json",
        "",
    );
    let live: Value = serde_json::from_str(&body).unwrap();
    assert!(
        live.get("status").is_none(),
        "--no-simulate-rollouts leaves status empty"
    );

    let killed = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the double did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
