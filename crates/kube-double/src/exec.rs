//! `pods/{name}/exec` over WebSocket with the Kubernetes channel protocol (`v5.channel.k8s.io`,
//! `v4.channel.k8s.io`): every binary frame starts with its channel, 0 stdin, 1 stdout,
//! 2 stderr, 3 the final `Status` (JSON), and in v5 `[255, channel]` closes a channel.
//!
//! No container runs here: what a command runs is decided by the test, through an [`ExecHook`]
//! that maps it to a local process.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::request::Parts;
use axum::response::Response;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::status::ApiError;

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const STATUS: u8 = 3;
/// v5: `[CLOSE, channel]` says the channel reached its end.
pub const CLOSE: u8 = 255;

/// The subprotocols served, in the server's order of preference.
pub const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

/// One exec a client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    pub namespace: String,
    pub pod: String,
    /// The container named, or the pod's only one.
    pub container: String,
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// What a command run in a container is, decided by the test: a local process (its program,
/// arguments and environment), or `None` when the container has no such program.
pub type ExecHook = Arc<dyn Fn(&ExecRequest) -> Option<std::process::Command> + Send + Sync>;

/// A frame of `channel` carrying `data`.
pub fn frame(channel: u8, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(data.len() + 1);
    v.push(channel);
    v.extend_from_slice(data);
    v
}

/// What a client frame means for the process's stdin.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound<'a> {
    Stdin(&'a [u8]),
    /// v5 only: the client closed stdin.
    CloseStdin,
    /// Resize and other channels: nothing for a process without a terminal.
    Ignored,
}

pub fn inbound(frame: &[u8], v5: bool) -> Inbound<'_> {
    match frame {
        [STDIN, data @ ..] => Inbound::Stdin(data),
        [CLOSE, STDIN] if v5 => Inbound::CloseStdin,
        _ => Inbound::Ignored,
    }
}

/// The `Status` sent on channel 3 when the process ends, as the kubelet writes it.
pub fn exit_status(command: &[String], code: Option<i32>) -> Value {
    match code {
        Some(0) => json!({"metadata": {}, "status": "Success"}),
        Some(code) => json!({
            "metadata": {},
            "status": "Failure",
            "message": format!(
                "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
                command.join(" ")
            ),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        None => json!({
            "metadata": {},
            "status": "Failure",
            "message": "command terminated by a signal",
            "reason": "InternalError",
            "details": {"causes": [{"reason": "ExitCode", "message": "137"}]},
        }),
    }
}

fn not_found_status(program: &str) -> Value {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("OCI runtime exec failed: exec failed: unable to start container process: exec: \"{program}\": executable file not found in $PATH: unknown"),
        "reason": "InternalError",
        "details": {"causes": [{"reason": "ExitCode", "message": "127"}]},
    })
}

/// Checks the request against the stored pod (`value`), then upgrades to WebSocket and runs the process
/// the hook gives.
pub(crate) async fn serve(
    value: Value,
    hook: Option<ExecHook>,
    mut parts: Parts,
    ns: &str,
    pod: &str,
    query: &[(String, String)],
) -> Result<Response, ApiError> {
    let all = |k: &str| -> Vec<String> {
        query
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let flag = |k: &str| {
        all(k)
            .last()
            .is_some_and(|v| matches!(v.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True"))
    };
    let names: Vec<String> = ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| value["spec"][k].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .collect();
    let container = match all("container").last() {
        Some(c) if names.contains(c) => c.clone(),
        Some(c) => {
            return Err(ApiError::bad_request(format!(
                "container {c} is not valid for pod {pod}"
            )));
        }
        None if names.len() == 1 => names[0].clone(),
        None => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {pod}, choose one of: [{}]",
                names.join(" ")
            )));
        }
    };
    if let Some(phase @ ("Succeeded" | "Failed")) = value["status"]["phase"].as_str() {
        return Err(ApiError::bad_request(format!(
            "cannot exec into a container in a completed pod; current phase is {phase}"
        )));
    }
    let command = all("command");
    if command.is_empty() {
        return Err(ApiError::bad_request(
            "you must specify at least one command for the container",
        ));
    }
    let request = ExecRequest {
        namespace: ns.to_owned(),
        pod: pod.to_owned(),
        container,
        command,
        stdin: flag("stdin"),
        stdout: flag("stdout"),
        stderr: flag("stderr"),
        tty: flag("tty"),
    };
    if !(request.stdin || request.stdout || request.stderr) {
        return Err(ApiError::bad_request(
            "you must specify at least 1 of stdin, stdout, stderr",
        ));
    }
    let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, &())
        .await
        .map_err(|_| ApiError::bad_request("Upgrade request required"))?
        .protocols(PROTOCOLS);
    let Some(protocol) = upgrade.selected_protocol().cloned() else {
        return Err(ApiError::bad_request(format!(
            "this server speaks only the subprotocols {}",
            PROTOCOLS.join(", ")
        )));
    };
    let v5 = protocol.as_bytes() == PROTOCOLS[0].as_bytes();
    Ok(upgrade.on_upgrade(move |socket| run(socket, request, hook, v5)))
}

async fn run(socket: WebSocket, request: ExecRequest, hook: Option<ExecHook>, v5: bool) {
    let (mut sink, mut incoming) = socket.split();
    let send = |channel: u8, data: &[u8]| Message::Binary(Bytes::from(frame(channel, data)));
    // The apiserver opens each channel with an empty frame.
    for (on, channel) in [
        (request.stdout, STDOUT),
        (request.stderr, STDERR),
        (true, STATUS),
    ] {
        if on && sink.send(send(channel, &[])).await.is_err() {
            return;
        }
    }
    let program = request.command[0].clone();
    let spawned = hook
        .and_then(|h| h(&request))
        .map(tokio::process::Command::from)
        .and_then(|mut c| {
            let piped = |on: bool| {
                if on {
                    std::process::Stdio::piped()
                } else {
                    std::process::Stdio::null()
                }
            };
            c.stdin(piped(request.stdin))
                .stdout(piped(request.stdout))
                .stderr(piped(request.stderr))
                .kill_on_drop(true)
                .spawn()
                .ok()
        });
    let Some(mut child) = spawned else {
        let status = not_found_status(&program).to_string();
        let _ = sink.send(send(STATUS, status.as_bytes())).await;
        let _ = sink.close().await;
        return;
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Message>(16);
    let mut stdin = child.stdin.take();
    let feed = async move {
        while let Some(Ok(m)) = incoming.next().await {
            match m {
                Message::Binary(b) => match inbound(&b, v5) {
                    Inbound::Stdin(data) => {
                        if let Some(w) = stdin.as_mut()
                            && w.write_all(data).await.is_err()
                        {
                            stdin = None;
                        }
                    }
                    Inbound::CloseStdin => stdin = None,
                    Inbound::Ignored => {}
                },
                // v4 has no channel close: the client closes the connection instead
                Message::Close(_) => {
                    stdin = None;
                    break;
                }
                _ => {}
            }
        }
        drop(stdin);
    };
    let pump = |reader: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>, channel: u8| {
        let tx = tx.clone();
        async move {
            let Some(mut r) = reader else { return };
            let mut buf = vec![0u8; 1 << 16];
            loop {
                match r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx
                            .send(Message::Binary(Bytes::from(frame(channel, &buf[..n]))))
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
        }
    };
    let out = pump(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        STDOUT,
    );
    let err = pump(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        STDERR,
    );
    let command = request.command.clone();
    let finish = async move {
        tokio::join!(out, err);
        let code = child.wait().await.ok().and_then(|s| s.code());
        let _ = tx
            .send(send(
                STATUS,
                exit_status(&command, code).to_string().as_bytes(),
            ))
            .await;
    };
    let write = async move {
        while let Some(m) = rx.recv().await {
            if sink.send(m).await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    };
    // stdin may stay open after the process ends: the session ends with the process
    tokio::select! {
        _ = async { tokio::join!(finish, write) } => {}
        _ = async { feed.await; std::future::pending::<()>().await } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_start_with_their_channel() {
        assert_eq!(frame(STDOUT, b"ab"), vec![1, b'a', b'b']);
        assert_eq!(inbound(&[0, 7, 8], true), Inbound::Stdin(&[7, 8]));
        assert_eq!(inbound(&[255, 0], true), Inbound::CloseStdin);
        assert_eq!(inbound(&[255, 0], false), Inbound::Ignored);
        assert_eq!(inbound(&[4, b'{'], true), Inbound::Ignored);
    }

    #[test]
    fn a_failed_command_says_its_exit_code_as_the_kubelet_does() {
        let s = exit_status(&["sh".into(), "-c".into(), "exit 3".into()], Some(3));
        assert_eq!(s["status"], "Failure");
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(s["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(s["details"]["causes"][0]["message"], "3");
        assert_eq!(exit_status(&[], Some(0))["status"], "Success");
    }
}

/// One request through the API server's service proxy
/// (`/api/v1/namespaces/{ns}/services/[scheme:]{name}[:port]/proxy/{path}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRequest {
    pub namespace: String,
    pub service: String,
    /// `http` or `https`, as the URL names it (default `http`).
    pub scheme: String,
    /// The port as the URL names it (a number or a port name), empty for the service's first.
    pub port: String,
    pub method: String,
    /// From `/`, without the query.
    pub path: String,
    pub query: String,
    pub body: Vec<u8>,
}

/// What a service answers through the proxy, decided by the test: (status, content type,
/// body), or `None` when nothing serves it (503, as without endpoints).
pub type ProxyHook = Arc<dyn Fn(&ProxyRequest) -> Option<(u16, String, Vec<u8>)> + Send + Sync>;

/// `[scheme:]name[:port]`, as the apiserver reads a service proxy's target.
pub fn proxy_target(s: &str) -> (String, String, String) {
    let parts: Vec<&str> = s.split(':').collect();
    match parts.as_slice() {
        [name] => ("http".into(), (*name).into(), String::new()),
        [name, port] => ("http".into(), (*name).into(), (*port).into()),
        [scheme, name, port] => ((*scheme).into(), (*name).into(), (*port).into()),
        _ => ("http".into(), s.into(), String::new()),
    }
}

#[cfg(test)]
mod proxy_tests {
    use super::*;

    #[test]
    fn a_proxy_target_names_its_scheme_and_port() {
        assert_eq!(
            proxy_target("https:web:9090"),
            ("https".into(), "web".into(), "9090".into())
        );
        assert_eq!(
            proxy_target("web"),
            ("http".into(), "web".into(), String::new())
        );
        assert_eq!(
            proxy_target("web:http"),
            ("http".into(), "web".into(), "http".into())
        );
    }
}
