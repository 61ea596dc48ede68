//! `pods/{name}/exec` through kube 5's own exec client (WebSocket, channel protocol), running the
//! local processes the test's hook gives.

#![allow(clippy::unwrap_used)]

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use terroir_kube_double::{ExecRequest, Options, ProxyRequest, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn start() -> (Server, Api<Pod>) {
    let server = Server::start(Options::default()).await.unwrap();
    let client = Client::try_from(kube::Config::new(server.url().parse().unwrap())).unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "shop");
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "db-0"},
        "spec": {"containers": [{"name": "postgres", "image": "x"}, {"name": "exporter", "image": "y"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    server.state().set_exec_hook(|r: &ExecRequest| {
        if r.namespace != "shop" || r.container != "postgres" {
            return None;
        }
        let mut c = std::process::Command::new(&r.command[0]);
        c.args(&r.command[1..])
            .env("WHERE", format!("{}/{}", r.namespace, r.pod));
        Some(c)
    });
    (server, pods)
}

fn params() -> AttachParams {
    AttachParams::default()
        .container("postgres")
        .stdin(false)
        .stderr(true)
}

#[tokio::test]
async fn exec_streams_stdin_to_stdout_and_says_the_exit_code() {
    let (server, pods) = start().await;

    // stdin in, stdout out, through the hook's process and environment
    let mut p = pods
        .exec(
            "db-0",
            ["sh", "-c", "echo \"$WHERE\"; wc -c"],
            &params().stdin(true),
        )
        .await
        .unwrap();
    let mut stdin = p.stdin().unwrap();
    let mut stdout = p.stdout().unwrap();
    let status = p.take_status().unwrap();
    let big = vec![b'x'; 3 << 20];
    let (_, out) = tokio::join!(
        async move {
            stdin.write_all(&big).await.unwrap();
            stdin.shutdown().await.unwrap();
            drop(stdin);
        },
        async move {
            let mut s = String::new();
            stdout.read_to_string(&mut s).await.unwrap();
            s
        }
    );
    assert_eq!(out, format!("shop/db-0\n{}\n", 3 << 20));
    assert_eq!(status.await.unwrap().status.as_deref(), Some("Success"));
    p.join().await.unwrap();

    // a failure: the status names the exit code, stderr is on its own channel
    let mut p = pods
        .exec("db-0", ["sh", "-c", "echo oops >&2; exit 3"], &params())
        .await
        .unwrap();
    let mut stderr = p.stderr().unwrap();
    let status = p.take_status().unwrap();
    let mut e = String::new();
    stderr.read_to_string(&mut e).await.unwrap();
    assert_eq!(e, "oops\n");
    let s = status.await.unwrap();
    assert_eq!(s.status.as_deref(), Some("Failure"));
    assert_eq!(s.reason.as_deref(), Some("NonZeroExitCode"));
    let cause = &s.details.unwrap().causes.unwrap()[0];
    assert_eq!(
        (cause.reason.as_deref(), cause.message.as_deref()),
        (Some("ExitCode"), Some("3"))
    );

    // a container the hook gives nothing for has no such program
    let mut p = pods
        .exec(
            "db-0",
            ["pg_dump"],
            &params().container("exporter").stderr(false),
        )
        .await
        .unwrap();
    let s = p.take_status().unwrap().await.unwrap();
    assert!(
        s.message.unwrap().contains("executable file not found"),
        "no program"
    );

    // refused before the upgrade, as the apiserver does
    let Err(e) = pods.exec("nope", ["true"], &params()).await else {
        panic!("no such pod")
    };
    assert!(matches!(e, kube::Error::Api(s) if s.code == 404));
    let Err(e) = pods
        .exec("db-0", ["true"], &params().container("web"))
        .await
    else {
        panic!("no such container")
    };
    assert!(
        matches!(&e, kube::Error::Api(s) if s.code == 400 && s.message == "container web is not valid for pod db-0"),
        "{e:?}"
    );
    let Err(e) = pods
        .exec("db-0", ["true"], &AttachParams::default().stdin(false))
        .await
    else {
        panic!("no container named")
    };
    assert!(
        matches!(&e, kube::Error::Api(s) if s.message.starts_with("a container name must be specified for pod db-0")),
        "{e:?}"
    );
    assert_eq!(pods.get("db-0").await.unwrap().name_any(), "db-0");
    server.shutdown().await;
}

#[tokio::test]
async fn the_service_proxy_answers_what_the_hook_says() {
    let (server, _) = start().await;
    let mut config = kube::Config::new(server.url().parse().unwrap());
    // kube retries a 503 for minutes: this test wants to see it
    config.default_retry = false;
    let client = Client::try_from(config).unwrap();
    let services: Api<k8s_openapi::api::core::v1::Service> =
        Api::namespaced(client.clone(), "shop");
    let svc = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "prom"},
        "spec": {"ports": [{"port": 9090}]}
    }))
    .unwrap();
    services.create(&PostParams::default(), &svc).await.unwrap();
    server.state().set_proxy_hook(|r: &ProxyRequest| {
        (r.service == "prom" && r.path == "/api/v1/admin/tsdb/snapshot").then(|| {
            let body = format!(
                r#"{{"status":"success","data":{{"name":"{} {} {}"}}}}"#,
                r.method, r.scheme, r.port
            );
            (200, "application/json".to_owned(), body.into_bytes())
        })
    });
    let req = |path: &str| {
        http::Request::post(format!("/api/v1/namespaces/shop/services/{path}"))
            .body(Vec::new())
            .unwrap()
    };
    let text = client
        .request_text(req("https:prom:9090/proxy/api/v1/admin/tsdb/snapshot"))
        .await
        .unwrap();
    assert_eq!(
        text,
        r#"{"status":"success","data":{"name":"POST https 9090"}}"#
    );
    let e = client
        .request_text(req("prom/proxy/other"))
        .await
        .unwrap_err();
    assert!(matches!(&e, kube::Error::Api(s) if s.code == 503), "{e:?}");
    let e = client.request_text(req("nope/proxy/")).await.unwrap_err();
    assert!(matches!(&e, kube::Error::Api(s) if s.code == 404), "{e:?}");
    server.shutdown().await;
}
