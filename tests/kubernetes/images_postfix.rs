//! The Postfix images (images/postfix, images/postfix-exporter), built with scripts/build-images
//! and run as the rendered pod runs them: the example's Deployment read from the rendered tree,
//! its ConfigMap and the Secrets `terroir apply` made (against the API server double) as files
//! at their mount paths, each container's user, capabilities, environment, command and
//! arguments over its image's entrypoint, and one directory as the spool volume both share.
//! Containers run with `buildah run --isolation chroot` in a network namespace of this test's
//! own, where nothing but loopback exists: Postfix refuses mail before STARTTLS, offers TLS as
//! ANSSI recommends with a certificate that chains to the platform's CA for its Service name,
//! signs what it accepts
//! with the rendered DKIM key (verified against the DNS record terroir generated) and relays it
//! to the relay this test runs, over TLS and with the relay's credentials; the exporter reads
//! the queue through showq and serves it as metrics.
#![allow(clippy::unwrap_used)]

use crate::common;
use common::tls::{Endpoint, Start, assert_anssi_tls_here};

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use terroir_kube_double::{BackgroundServer, Options, State};

const NAMESPACE: &str = "mutuelle-crm";
const DOMAIN: &str = "crm.mutuelle.example.fr";
const SELECTOR: &str = "mutuelle2026";
/// The relay this test runs, as the document declares it (inside the test's own network).
const RELAY_PORT: u16 = 2525;
const RELAY_USER: &str = "relay-user";
const RELAY_PASSWORD: &str = "relay-password";

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// scripts/build-images, as an operator runs it: each image's reference and digest.
fn build_images() -> BTreeMap<String, String> {
    let out = Command::new(common::root().join("scripts/build-images"))
        .args(["--bootstrap-base", "postfix", "postfix-exporter"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "scripts/build-images: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let built: BTreeMap<String, String> = stdout
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(r, d)| (r.to_owned(), d.to_owned()))
        .collect();
    assert_eq!(built.len(), 2, "{stdout}");
    assert!(built.values().all(|d| d.starts_with("sha256:")), "{stdout}");
    built
}

/// The example with its relay in this test's network and no fallback (nothing else to reach).
fn document(dir: &Path) -> PathBuf {
    common::variant("kubernetes.yaml", dir, "platform.yaml", |t| {
        let t = t.replace(
            "url: smtp://smtp-relay.brevo.com:587",
            &format!("url: smtp://127.0.0.1:{RELAY_PORT}"),
        );
        let start = t.find("    smtpFallbackRelay:\n").unwrap();
        let end = start + t[start..].find("    backupS3:\n").unwrap();
        format!("{}{}", &t[..start], &t[end..])
    })
}

/// `terroir apply` against the API server double, after the client's own Secrets (the relay's
/// credentials, the backups' S3 keys): the Secrets terroir generates are then in the double.
fn apply(doc: &Path, dir: &Path) -> (BackgroundServer, State) {
    let server = BackgroundServer::start(Options::default()).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    server.write_kubeconfig(&kubeconfig, "double").unwrap();
    let url = server.url();
    let post = |path: &str, body: Value| {
        ureq::post(&format!("{url}{path}"))
            .header("content-type", "application/json")
            .send(body.to_string())
            .unwrap();
    };
    post(
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
    );
    let enc = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    for (name, data) in [
        (
            "mutuelle-crm-smtp-relay-credentials",
            json!({"sasl_passwd": enc(&format!("[127.0.0.1]:{RELAY_PORT} {RELAY_USER}:{RELAY_PASSWORD}\n"))}),
        ),
        (
            "mutuelle-crm-backup-s3-credentials",
            json!({"AWS_ACCESS_KEY_ID": enc("AKIA"), "AWS_SECRET_ACCESS_KEY": enc("secret")}),
        ),
    ] {
        post(
            &format!("/api/v1/namespaces/{NAMESPACE}/secrets"),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": data}),
        );
    }
    let out = common::terroir()
        .arg("apply")
        .arg(doc)
        .args(["--kubeconfig", kubeconfig.to_str().unwrap()])
        .args(["--context", "double"])
        .env_remove("KUBECONFIG")
        .timeout(Duration::from_secs(180))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "terroir apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state = server.state();
    (server, state)
}

fn secret(state: &State, name: &str) -> BTreeMap<String, Vec<u8>> {
    let s = state
        .get("v1", "Secret", Some(NAMESPACE), name)
        .unwrap_or_else(|| panic!("Secret {name} in the double"));
    s["data"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), b64(v.as_str().unwrap())))
        .collect()
}

/// The image's configuration (entrypoint, command, user), as the engine stored it.
fn image_config(image: &str) -> Value {
    let text = run(Command::new("buildah").args(["inspect", "--type", "image", image]));
    let inspected: Value = serde_json::from_str(&text).unwrap();
    inspected["OCIv1"]["config"].clone()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// Linux's capabilities, as Kubernetes names them.
const CAPABILITIES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// What one container of the rendered pod is given, as `buildah run` arguments.
struct Spec {
    image: String,
    args: Vec<String>,
    argv: Vec<String>,
    /// The container's own command (argv may start it through setpriv).
    program: String,
}

/// The container `name` of `pod`: its volumes written under `files` (ConfigMap keys, Secret
/// keys with their modes), the claim as `spool`, its environment, user, capabilities, and its
/// command and arguments over the image's entrypoint, as the kubelet combines them.
fn spec(
    pod: &Value,
    name: &str,
    image: &str,
    config_maps: &BTreeMap<String, Value>,
    state: &State,
    files: &Path,
    spool: &Path,
) -> Spec {
    let c = pod["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("container {name} in {pod}"));
    let volumes: BTreeMap<&str, &Value> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v))
        .collect();
    let mut args = Vec::new();
    for m in c["volumeMounts"].as_array().unwrap() {
        let vol = volumes[m["name"].as_str().unwrap()];
        let source = if vol.get("persistentVolumeClaim").is_some() {
            spool.to_owned()
        } else {
            let dir = files.join(name).join(vol["name"].as_str().unwrap());
            let (data, mode): (BTreeMap<String, Vec<u8>>, u32) =
                if let Some(cm) = vol.get("configMap") {
                    let data = config_maps[cm["name"].as_str().unwrap()]["data"]
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap().as_bytes().to_vec()))
                        .collect();
                    (data, cm["defaultMode"].as_u64().unwrap_or(0o644) as u32)
                } else {
                    let s = &vol["secret"];
                    let all = secret(state, s["secretName"].as_str().unwrap());
                    let data = match s.get("items") {
                        Some(items) => items
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|i| {
                                let key = i["key"].as_str().unwrap();
                                (i["path"].as_str().unwrap().to_owned(), all[key].clone())
                            })
                            .collect(),
                        None => all,
                    };
                    (data, s["defaultMode"].as_u64().unwrap_or(0o644) as u32)
                };
            std::fs::create_dir_all(&dir).unwrap();
            for (k, v) in &data {
                let path = dir.join(k);
                std::fs::write(&path, v).unwrap();
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            }
            match m.get("subPath") {
                Some(sub) => dir.join(sub.as_str().unwrap()),
                None => dir,
            }
        };
        let ro = if m["readOnly"] == true { ":ro" } else { "" };
        args.push("-v".to_owned());
        args.push(format!(
            "{}:{}{ro}",
            source.display(),
            m["mountPath"].as_str().unwrap()
        ));
    }
    for e in c["env"].as_array().into_iter().flatten() {
        let value = e["value"]
            .as_str()
            .unwrap_or_else(|| panic!("only literal values are given here: {e}"));
        args.push("--env".to_owned());
        args.push(format!("{}={value}", e["name"].as_str().unwrap()));
    }
    let sc = &c["securityContext"];
    let field = |k: &str| sc.get(k).or_else(|| pod["securityContext"].get(k));
    let config = image_config(image);
    let image_user = config["User"].as_str().unwrap_or("").to_owned();
    let user = match (field("runAsUser"), field("runAsGroup")) {
        (Some(u), Some(g)) => format!("{u}:{g}"),
        (Some(u), None) => u.to_string(),
        (None, _) => image_user.clone(),
    };
    if field("runAsNonRoot") == Some(&Value::Bool(true)) {
        // The kubelet refuses a user it cannot prove is not root: a name, or 0.
        let uid = user.split(':').next().unwrap();
        assert!(
            uid.parse::<u32>().is_ok_and(|u| u != 0),
            "{name}: runAsNonRoot needs a numeric user other than 0, got `{user}`"
        );
    }
    if !user.is_empty() {
        args.push("--user".to_owned());
        args.push(user);
    }
    // buildah drops ALL after adding: "drop ALL, add these" is every other capability dropped.
    let caps = &sc["capabilities"];
    let add = strings(&caps["add"]);
    let drop = strings(&caps["drop"]);
    for cap in CAPABILITIES {
        if add.iter().any(|a| a == cap) {
            args.push("--cap-add".to_owned());
        } else if drop.iter().any(|d| d == "ALL" || d == cap) {
            args.push("--cap-drop".to_owned());
        } else {
            continue;
        }
        args.push(format!("CAP_{cap}"));
    }
    let argv = match (c.get("command"), c.get("args")) {
        (Some(cmd), a) => [strings(cmd), a.map(strings).unwrap_or_default()].concat(),
        (None, Some(a)) => [strings(&config["Entrypoint"]), strings(a)].concat(),
        (None, None) => [strings(&config["Entrypoint"]), strings(&config["Cmd"])].concat(),
    };
    assert!(!argv.is_empty(), "{name}: nothing to run");
    let program = argv[0].clone();
    // allowPrivilegeEscalation: false is no_new_privs (set-user and set-group ids have no effect
    // in the container), which buildah has no option for: util-linux's setpriv sets it, then
    // runs the command.
    let argv = if sc["allowPrivilegeEscalation"] == false {
        [
            vec![
                "setpriv".to_owned(),
                "--no-new-privs".to_owned(),
                "--".to_owned(),
            ],
            argv,
        ]
        .concat()
    } else {
        argv
    };
    Spec {
        image: image.to_owned(),
        args,
        argv,
        program,
    }
}

/// A container running (buildah's chroot isolation, in a PID namespace of its own so that
/// stopping it stops every process it started); removed when dropped.
struct Running {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Running {
    fn start(spec: &Spec, name: &str, log: PathBuf) -> Running {
        let name = format!("{name}-{}", std::process::id());
        let _ = Command::new("buildah")
            .args(["rm", &name])
            .stderr(Stdio::null())
            .output();
        run(Command::new("buildah").args(["from", "--pull-never", "--name", &name, &spec.image]));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new("unshare")
            .args(["--pid", "--fork", "--kill-child", "buildah", "run"])
            .args(["--isolation", "chroot"])
            .args(&spec.args)
            .arg(&name)
            .arg("--")
            .args(&spec.argv)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        Running { name, child, log }
    }

    /// SIGTERM to the container's own first process (as the kubelet stops it), then its exit.
    fn terminate(&mut self, argv0: &str) -> std::process::ExitStatus {
        // unshare -> buildah -> the chroot runtime -> its exec helper (argv0 as its argument)
        // -> the command: the deepest of our processes with argv0 among its first arguments
        let parent_of = |pid: u32| -> Option<u32> {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            stat.rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        };
        let root = self.child.id();
        let depth = |mut pid: u32| {
            let mut depth = 0;
            while pid > 1 {
                if pid == root {
                    return Some(depth);
                }
                depth += 1;
                pid = parent_of(pid)?;
            }
            None
        };
        let (_, first) = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&pid| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                cmdline
                    .split(|b| *b == 0)
                    .take(2)
                    .any(|a| a == argv0.as_bytes())
            })
            .filter_map(|pid| Some((depth(pid)?, pid)))
            .max()
            .unwrap_or_else(|| panic!("{argv0} is not running in {}", self.name));
        assert_eq!(unsafe { libc::kill(first as i32, libc::SIGTERM) }, 0);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} still runs 60 s after SIGTERM:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Err while the container runs, with its log once it has stopped.
    fn alive(&mut self) -> Result<(), String> {
        match self.child.try_wait().unwrap() {
            None => Ok(()),
            Some(status) => Err(format!("{} stopped ({status}):\n{}", self.name, self.log())),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // unshare's child is the namespace's first process: killing it ends them all.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = Command::new("buildah").args(["rm", &self.name]).output();
    }
}

/// Poll `check` until it holds, failing early when `container` stops.
fn until<T>(
    container: &mut Running,
    what: &str,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Err(e) = container.alive() {
            panic!("{what}: {e}");
        }
        match check() {
            Ok(v) => return v,
            Err(e) if Instant::now() > deadline => {
                panic!("{what}: not within 90 s: {e}\n{}", container.log())
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

// --- SMTP, both sides ------------------------------------------------------------------------

/// One reply (possibly multi-line): its code and text.
fn reply(r: &mut impl BufRead) -> (u16, String) {
    let mut text = String::new();
    loop {
        let mut line = String::new();
        assert!(r.read_line(&mut line).unwrap() > 0, "connection closed");
        text.push_str(&line);
        if line.as_bytes().get(3) != Some(&b'-') {
            return (line[..3].parse().unwrap(), text);
        }
    }
}

fn say<S: Read + Write>(s: &mut BufReader<S>, line: &str) -> (u16, String) {
    s.get_mut()
        .write_all(format!("{line}\r\n").as_bytes())
        .unwrap();
    s.get_mut().flush().unwrap();
    reply(s)
}

fn tls_client(ca: &Path) -> Arc<rustls::ClientConfig> {
    terroir::smoke::client_tls(ca.to_str().unwrap()).unwrap()
}

/// STARTTLS to Postfix on loopback, verifying its certificate for `name` against `ca`.
fn starttls(
    ca: &Path,
    name: &str,
) -> Result<BufReader<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>, String> {
    let tcp = TcpStream::connect("127.0.0.1:25").map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut plain = BufReader::new(tcp);
    assert_eq!(reply(&mut plain).0, 220);
    let (code, ehlo) = say(&mut plain, "EHLO app.mutuelle-crm.svc");
    assert!(code == 250 && ehlo.contains("STARTTLS"), "{ehlo}");
    assert_eq!(say(&mut plain, "STARTTLS").0, 220);
    let server = rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap();
    let mut conn = rustls::ClientConnection::new(tls_client(ca), server).unwrap();
    let mut tcp = plain.into_inner();
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(|e| e.to_string())?;
    }
    Ok(BufReader::new(rustls::StreamOwned::new(conn, tcp)))
}

fn send<S: Read + Write>(s: &mut BufReader<S>, to: &str, message: &str) -> (u16, String) {
    assert_eq!(say(s, &format!("MAIL FROM:<noreply@{DOMAIN}>")).0, 250);
    let (code, text) = say(s, &format!("RCPT TO:<{to}>"));
    assert_eq!(code, 250, "{text}");
    assert_eq!(say(s, "DATA").0, 354);
    // dot-stuffed, as SMTP requires
    let stuffed = message.replace("\r\n.", "\r\n..");
    s.get_mut().write_all(stuffed.as_bytes()).unwrap();
    say(s, ".")
}

/// What the relay received (only ever after STARTTLS): who authenticated, and the message.
#[derive(Debug)]
struct Relayed {
    user: Option<String>,
    data: String,
}

/// One relay session: STARTTLS, then AUTH PLAIN checked against the relay's credentials; a
/// recipient named `defer@...` is refused for now (451), leaving the message in Postfix's queue.
fn relay_session(tcp: TcpStream, tls: Arc<rustls::ServerConfig>, tx: mpsc::Sender<Relayed>) {
    tcp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut plain = BufReader::new(tcp);
    plain.get_mut().write_all(b"220 relay ESMTP\r\n").unwrap();
    loop {
        let mut line = String::new();
        if plain.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let verb = line.trim_end().to_ascii_uppercase();
        let answer = if verb.starts_with("EHLO") {
            "250-relay\r\n250 STARTTLS\r\n"
        } else if verb == "STARTTLS" {
            plain.get_mut().write_all(b"220 go ahead\r\n").unwrap();
            break;
        } else if verb == "QUIT" {
            let _ = plain.get_mut().write_all(b"221 bye\r\n");
            return;
        } else {
            "530 5.7.0 STARTTLS first\r\n"
        };
        plain.get_mut().write_all(answer.as_bytes()).unwrap();
    }
    let conn = rustls::ServerConnection::new(tls).unwrap();
    let mut s = BufReader::new(rustls::StreamOwned::new(conn, plain.into_inner()));
    let mut user = None;
    loop {
        let mut line = String::new();
        if s.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end().to_owned();
        let verb = line.to_ascii_uppercase();
        let answer: String = if verb.starts_with("EHLO") {
            "250-relay\r\n250 AUTH PLAIN\r\n".into()
        } else if verb.starts_with("AUTH PLAIN ") {
            let decoded = b64(&line["AUTH PLAIN ".len()..]);
            let parts: Vec<&[u8]> = decoded.split(|b| *b == 0).collect();
            if parts.len() == 3
                && parts[1] == RELAY_USER.as_bytes()
                && parts[2] == RELAY_PASSWORD.as_bytes()
            {
                user = Some(RELAY_USER.to_owned());
                "235 2.7.0 authenticated\r\n".into()
            } else {
                "535 5.7.8 bad credentials\r\n".into()
            }
        } else if verb.starts_with("MAIL FROM:") {
            if user.is_some() {
                "250 ok\r\n".into()
            } else {
                "530 5.7.0 authentication required\r\n".into()
            }
        } else if verb.starts_with("RCPT TO:") {
            if verb.contains("<DEFER@") {
                "451 4.3.0 not now\r\n".into()
            } else {
                "250 ok\r\n".into()
            }
        } else if verb == "DATA" {
            s.get_mut().write_all(b"354 go ahead\r\n").unwrap();
            s.get_mut().flush().unwrap();
            let mut data = String::new();
            loop {
                let mut l = String::new();
                assert!(s.read_line(&mut l).unwrap() > 0);
                if l == ".\r\n" {
                    break;
                }
                data.push_str(l.strip_prefix('.').unwrap_or(&l));
            }
            let _ = tx.send(Relayed {
                user: user.clone(),
                data,
            });
            "250 2.0.0 queued\r\n".into()
        } else if verb == "QUIT" {
            let _ = s.get_mut().write_all(b"221 bye\r\n");
            let _ = s.get_mut().flush();
            return;
        } else if verb == "RSET" || verb == "NOOP" {
            "250 ok\r\n".into()
        } else {
            "502 5.5.2 not here\r\n".into()
        };
        s.get_mut().write_all(answer.as_bytes()).unwrap();
        s.get_mut().flush().unwrap();
    }
}

/// The relay, on loopback at RELAY_PORT, with a certificate of its own (Postfix's `encrypt`
/// level requires TLS, not a verified name).
fn start_relay() -> mpsc::Receiver<Relayed> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let ca = terroir::pki::new_ca("relay").unwrap();
    let issued =
        terroir::pki::issue_server("relay", &ca.key_pem, &["relay".to_owned()], "relay").unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).unwrap(),
        )
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind(("127.0.0.1", RELAY_PORT)).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let (config, tx) = (config.clone(), tx.clone());
            std::thread::spawn(move || relay_session(tcp.unwrap(), config, tx));
        }
    });
    rx
}

// --- DKIM (RFC 6376), verified here ----------------------------------------------------------

/// Headers (unfolded name, raw text with its line breaks) and body of a CRLF message.
fn split_message(data: &str) -> (Vec<(String, String)>, &str) {
    let (head, body) = data.split_once("\r\n\r\n").unwrap();
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            let last = headers.last_mut().unwrap();
            last.1.push_str("\r\n");
            last.1.push_str(line);
        } else {
            let name = line.split(':').next().unwrap().to_owned();
            headers.push((name, line.to_owned()));
        }
    }
    (headers, body)
}

/// Relaxed header canonicalization.
fn relaxed(raw: &str) -> String {
    let (name, value) = raw.split_once(':').unwrap();
    let value = value.replace("\r\n", "");
    let value = value
        .split([' ', '\t'])
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>();
    format!("{}:{}", name.trim().to_ascii_lowercase(), value.join(" "))
}

fn tags(raw: &str) -> BTreeMap<String, String> {
    let value = raw.split_once(':').unwrap().1;
    value
        .split(';')
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| {
            let v: String = v.chars().filter(|c| !c.is_whitespace()).collect();
            (k.trim().to_owned(), v)
        })
        .collect()
}

/// Checks the message's DKIM-Signature (rsa-sha256, relaxed/simple) with the public key of
/// `record`, the DNS TXT record terroir generated. The signature's tags on success.
fn verify_dkim(data: &str, record: &str) -> Result<BTreeMap<String, String>, String> {
    use rsa::pkcs8::DecodePublicKey;
    use sha2::{Digest, Sha256};
    let (headers, body) = split_message(data);
    let (_, sig_raw) = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("DKIM-Signature"))
        .ok_or("no DKIM-Signature")?;
    let t = tags(sig_raw);
    if t["a"] != "rsa-sha256" || t["c"] != "relaxed/simple" {
        return Err(format!("unexpected algorithm or canonicalization: {t:?}"));
    }
    // simple body: trailing empty lines removed, one CRLF kept
    let body = format!("{}\r\n", body.trim_end_matches("\r\n"));
    let bh = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body.as_bytes()));
    if bh != t["bh"] {
        return Err(format!("body hash {bh} is not bh={}", t["bh"]));
    }
    // the signed headers, each from the bottom up; a name signed more times than it occurs
    // (OversignHeaders) adds nothing for its missing instances
    let mut used = vec![false; headers.len()];
    let mut signed = String::new();
    for name in t["h"].split(':') {
        if let Some(i) = (0..headers.len())
            .rev()
            .find(|&i| !used[i] && headers[i].0.eq_ignore_ascii_case(name))
        {
            used[i] = true;
            signed.push_str(&relaxed(&headers[i].1));
            signed.push_str("\r\n");
        }
    }
    // `b=` as a tag (after a `;`), not inside another tag's value
    let b_at = sig_raw
        .match_indices("b=")
        .map(|(i, _)| i)
        .find(|&i| sig_raw[..i].trim_end().ends_with(';'))
        .ok_or("no b= tag")?;
    let b_end = sig_raw[b_at..]
        .find(';')
        .map_or(sig_raw.len(), |e| b_at + e);
    let unsigned = format!("{}b={}", &sig_raw[..b_at], &sig_raw[b_end..]);
    signed.push_str(&relaxed(&unsigned));
    let quoted: String = record.split('"').skip(1).step_by(2).collect();
    let p = quoted
        .split(';')
        .find_map(|t| t.trim().strip_prefix("p="))
        .ok_or_else(|| format!("no p= in {record}"))?;
    let key = rsa::RsaPublicKey::from_public_key_der(&b64(p)).map_err(|e| e.to_string())?;
    // PKCS#1 v1.5 over SHA-256: the DigestInfo prefix, then the digest
    let mut digest_info = vec![
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    digest_info.extend_from_slice(&Sha256::digest(signed.as_bytes()));
    key.verify(
        rsa::Pkcs1v15Sign::new_unprefixed(),
        &digest_info,
        &b64(&t["b"]),
    )
    .map_err(|e| format!("signature: {e}"))?;
    Ok(t)
}

fn message(to: &str, subject: &str) -> String {
    format!(
        "From: Mutuelle <noreply@{DOMAIN}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n\
         Date: Sat, 05 Dec 2026 10:00:00 +0000\r\nMessage-ID: <{subject}@{DOMAIN}>\r\n\r\n\
         Bonjour,\r\n\r\n.a line starting with a dot\r\nvotre dossier est complet.\r\n\r\n\r\n"
    )
}

#[test]
fn postfix_images_run_as_rendered_sign_relay_and_export_the_queue() {
    let built = build_images();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let doc = document(tmp.path());
    let out = common::render(&doc, tmp.path(), "out");
    let text = std::fs::read_to_string(out.join("kubernetes/postfix.yaml")).unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    let config_maps: BTreeMap<String, Value> = docs
        .iter()
        .filter(|d| d["kind"] == "ConfigMap")
        .map(|d| {
            (
                d["metadata"]["name"].as_str().unwrap().to_owned(),
                d.clone(),
            )
        })
        .collect();
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let pod = &deployment["spec"]["template"]["spec"];

    // The blueprint names the tags the Containerfiles build.
    let image_of = |name: &str| -> String {
        let c = pod["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap();
        let rendered = c["image"].as_str().unwrap();
        let built_ref = built
            .keys()
            .find(|r| rendered.ends_with(&format!("/{r}")))
            .unwrap_or_else(|| panic!("{rendered} is none of the images built: {built:?}"));
        format!("localhost/{built_ref}")
    };
    let postfix_image = image_of("postfix");
    let exporter_image = image_of("exporter");

    let (_cluster, state) = apply(&doc, tmp.path());
    let ca = tmp.path().join("ca.crt");
    std::fs::write(&ca, &secret(&state, "mutuelle-crm-ca")["tls.crt"]).unwrap();
    let record = String::from_utf8(
        secret(&state, "mutuelle-crm-dkim-key")[&format!("{SELECTOR}.txt")].clone(),
    )
    .unwrap();

    let files = tmp.path().join("volumes");
    // The claim's volume: empty, and writable by all as volume provisioners often make it.
    let spool = tmp.path().join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o777)).unwrap();
    let postfix = spec(
        pod,
        "postfix",
        &postfix_image,
        &config_maps,
        &state,
        &files,
        &spool,
    );
    let exporter = spec(
        pod,
        "exporter",
        &exporter_image,
        &config_maps,
        &state,
        &files,
        &spool,
    );
    // The exporter's user is the image's own, in the Postfix image's postdrop group.
    let exporter_user = image_config(&exporter_image)["User"].clone();
    assert!(
        exporter
            .args
            .windows(2)
            .any(|w| w[0] == "--user" && json!(w[1]) == exporter_user),
        "the manifest's user is the image's ({exporter_user}): {:?}",
        exporter.args
    );

    // From here on, a network of this test's own: loopback only, ports 25 and 9154 free.
    assert_eq!(
        unsafe { libc::unshare(libc::CLONE_NEWNET) },
        0,
        "a network namespace (tests run as root)"
    );
    run(Command::new("ip").args(["link", "set", "lo", "up"]));
    let relayed = start_relay();

    let mut mta = Running::start(
        &postfix,
        "terroir-test-postfix",
        tmp.path().join("postfix.log"),
    );
    until(&mut mta, "Postfix listens on 25", || {
        TcpStream::connect("127.0.0.1:25").map_err(|e| e.to_string())
    });

    // Nothing before STARTTLS (smtpd_tls_security_level = encrypt).
    let mut plain = BufReader::new(TcpStream::connect("127.0.0.1:25").unwrap());
    assert_eq!(reply(&mut plain).0, 220);
    assert_eq!(say(&mut plain, "EHLO app.mutuelle-crm.svc").0, 250);
    let (code, text) = say(&mut plain, &format!("MAIL FROM:<noreply@{DOMAIN}>"));
    assert_eq!(code, 530, "mail before STARTTLS is refused: {text}");

    // The certificate chains to the platform's CA, for the Service's name, and to no other CA.
    let other = terroir::pki::new_ca("another-platform").unwrap();
    let other_ca = tmp.path().join("other-ca.crt");
    std::fs::write(&other_ca, &other.cert_pem).unwrap();
    let refused = starttls(&other_ca, "mutuelle-crm-postfix").err();
    assert!(
        refused
            .as_deref()
            .is_some_and(|e| e.contains("certificate")),
        "another CA's client refuses the certificate: {refused:?}"
    );
    // TLS as ANSSI recommends, from the image's OpenSSL as the rendered main.cf sets it.
    assert_anssi_tls_here(&[Endpoint::new(
        "Postfix (image)",
        "127.0.0.1:25",
        Start::StartTls("smtp"),
        true,
    )]);
    let mut s = starttls(&ca, "mutuelle-crm-postfix").unwrap();
    let (code, ehlo) = say(&mut s, "EHLO app.mutuelle-crm.svc");
    assert_eq!(code, 250, "{ehlo}");
    let (code, text) = send(
        &mut s,
        "adherent@example.org",
        &message("adherent@example.org", "accepted"),
    );
    assert_eq!(code, 250, "{text}");
    let (code, text) = send(
        &mut s,
        "defer@example.org",
        &message("defer@example.org", "deferred"),
    );
    assert_eq!(code, 250, "{text}");
    let _ = say(&mut s, "QUIT");

    // The relay gets the first message, over TLS, authenticated, signed with the platform's key.
    let got = {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            mta.alive().unwrap();
            match relayed.recv_timeout(Duration::from_millis(500)) {
                Ok(r) => break r,
                Err(_) if Instant::now() > deadline => {
                    panic!("nothing relayed within 90 s:\n{}", mta.log())
                }
                Err(_) => {}
            }
        }
    };
    assert_eq!(got.user.as_deref(), Some(RELAY_USER), "{got:?}");
    assert!(got.data.contains("Subject: accepted"), "{}", got.data);
    let t = verify_dkim(&got.data, &record)
        .unwrap_or_else(|e| panic!("DKIM: {e}\n{}\n{}", got.data, mta.log()));
    assert_eq!(t["d"], DOMAIN);
    assert_eq!(t["s"], SELECTOR);
    // From is signed once more than it occurs (OversignHeaders), so none can be added.
    let from = t["h"]
        .split(':')
        .filter(|h| h.eq_ignore_ascii_case("from"))
        .count();
    assert_eq!(from, 2, "h={}", t["h"]);
    // ... and a changed body no longer verifies (the check can fail).
    let tampered = got
        .data
        .replace("votre dossier est complet", "votre dossier est incomplet");
    assert!(verify_dkim(&tampered, &record).is_err());

    // The exporter, beside it on the same spool volume, reads the queue through showq: the
    // message the relay deferred is in `deferred`.
    let mut metrics = Running::start(
        &exporter,
        "terroir-test-postfix-exporter",
        tmp.path().join("exporter.log"),
    );
    let body = until(
        &mut metrics,
        "the exporter shows the deferred message",
        || {
            mta.alive()?;
            let (code, body) = common::http("GET", "127.0.0.1:9154", "/metrics")?;
            let showq = body
                .lines()
                .any(|l| l == "postfix_up{path=\"/var/spool/postfix/public/showq\"} 1");
            let deferred = body
                .lines()
                .any(|l| l == "postfix_showq_message_size_bytes_count{queue=\"deferred\"} 1");
            if code == 200 && showq && deferred {
                Ok(body)
            } else {
                Err(format!("{code}:\n{body}"))
            }
        },
    );
    assert!(
        body.lines()
            .any(|l| l.starts_with("postfix_showq_message_age_seconds_bucket"))
    );

    // Stopped as the kubelet stops a pod: SIGTERM stops OpenDKIM and Postfix, and the container
    // ends cleanly.
    let status = mta.terminate(&postfix.program);
    assert!(status.success(), "{status}:\n{}", mta.log());
    assert!(
        mta.log().contains("stopping the Postfix mail system"),
        "{}",
        mta.log()
    );
}
