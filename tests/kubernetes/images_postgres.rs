//! The PostgreSQL image (images/postgres/Containerfile), built by scripts/build-images from a
//! debootstrap base, run with what the rendered StatefulSet gives its `postgres` container: the
//! image's entrypoint with the container's arguments, its user, its environment (the Secrets'
//! values where it reads them), the ConfigMaps and Secrets as files at their mount paths with
//! their modes and the pod's group, and empty directories for its other volumes. The postStart
//! hook (sync-passwords.sh) runs beside it, as in the pod. Then: PostgreSQL refuses a connection
//! without TLS and accepts one verified against the platform's CA with the Service's name; the
//! WAL is archived through pgBackRest into the S3 stand-in (moto behind TLS, trusted through the
//! rendered CA file); reading a personal table leaves a pgaudit line in the server's log; no
//! password reaches that log; and nothing is written outside the volumes (the pod's root file
//! system is read-only).
//!
//! What differs from a pod: `buildah run --isolation chroot` shares this machine's network, so
//! the server listens on 127.0.0.1 and a free port instead of `*` and 5432 (the four places the
//! rendered files name the port are changed alike), and the container's /etc/hosts resolves the
//! names in the rendered settings (the S3 endpoint's) to 127.0.0.1: nothing but loopback is
//! reached. The Secrets' values are made here (terroir makes them at apply, never in the render),
//! with the keys and names the rendered objects read. Needs root (buildah, debootstrap).
#![allow(clippy::unwrap_used)]

use crate::common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use terroir_kube_double::{BackgroundServer, Options};

const BUCKET: &str = "mutuelle-crm-backups";
const REGION: &str = "cloudgouv-eu-west-1";
const S3_HOST: &str = "oos.cloudgouv-eu-west-1.outscale.com";
const SERVICE: &str = "mutuelle-crm-postgres.mutuelle-crm.svc";
const SU_PASSWORD: &str = "su-pass-3e9d51c07a";
const APP_PASSWORD: &str = "app-pass-8b24f6e1d3";
const CIPHER: &str = "cipher-pass-5a1c7e90b2";

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn chown(path: &Path, owner: &str) {
    let ok = Command::new("chown").arg(owner).arg(path).status().unwrap();
    assert!(ok.success(), "chown {owner} {}", path.display());
}

/// `text` with `from` replaced by `to`, which must be there.
fn replaced(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} in:\n{text}");
    text.replace(from, to)
}

/// moto's S3 server behind the suite's TLS front on 127.0.0.1:`port`, with a certificate for the
/// S3 endpoint's names (and 127.0.0.1, for this side's client): the server and its CA file.
fn s3_stand_in(dir: &Path, port: u16, names: &[&str]) -> (common::s3::Moto, PathBuf) {
    let (cert, key) = (dir.join("s3.crt"), dir.join("s3.key"));
    let san: Vec<String> = names
        .iter()
        .map(|n| format!("DNS:{n}"))
        .chain(["IP:127.0.0.1".to_owned()])
        .collect();
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", &format!("/CN={}", names[0])])
        .args(["-addext", &format!("subjectAltName={}", san.join(","))])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl: {}", text(&out));
    let backend = free_port();
    let moto_server = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &backend.to_string()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("moto.log")).unwrap())
        .spawn()
        .unwrap();
    let mut moto = common::s3::Moto(vec![moto_server]);
    let front = Command::new("python3")
        .args(["-c", common::s3::TLS_FRONT, "127.0.0.1"])
        .args([port.to_string(), backend.to_string()])
        .arg(&cert)
        .arg(&key)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("tls-front.log")).unwrap())
        .spawn()
        .unwrap();
    moto.0.push(front);
    let endpoint = format!("https://127.0.0.1:{port}");
    eventually(Duration::from_secs(60), "the bucket created", || {
        common::s3::boto3(&endpoint, REGION, &cert, &format!("s3.create_bucket(Bucket='{BUCKET}', CreateBucketConfiguration={{'LocationConstraint': '{REGION}'}})")).map(|_| ())
    });
    (moto, cert)
}

/// A volume's files as the kubelet presents them: root's, the pod's group, `mode`.
fn volume_files(dir: &Path, gid: u64, files: &[(String, String, u32)]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    chown(dir, &format!("0:{gid}"));
    for (path, content, mode) in files {
        let p = dir.join(path);
        std::fs::write(&p, content).unwrap();
        chown(&p, &format!("0:{gid}"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode)).unwrap();
    }
}

/// The container, and the server running in it: stopped (then removed) when dropped.
struct Container {
    name: String,
    data: PathBuf,
    server: Option<Child>,
    patroni: bool,
}

impl Container {
    /// `buildah from` the image, with a resolver on loopback only (should a name be missing
    /// from the hosts file). `patroni`: the server's parent is Patroni, stopped in its place.
    fn create(image: &str, name: &str, pgdata: &Path, patroni: bool) -> Container {
        let from = Command::new("buildah")
            .args([
                "from",
                "--pull-never",
                "--dns",
                "127.0.0.1",
                "--name",
                name,
                image,
            ])
            .output()
            .unwrap();
        assert!(from.status.success(), "buildah from: {}", text(&from));
        Container {
            name: name.to_owned(),
            data: pgdata.to_owned(),
            server: None,
            patroni,
        }
    }

    /// The postmaster's process id, from its pid file (the container shares the PID namespace).
    fn postmaster(&self) -> Option<i32> {
        std::fs::read_to_string(self.data.join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// The container's own process (Patroni): the first process below `buildah run` that is not
    /// buildah's (the container shares this machine's PID namespace).
    fn patroni(&self) -> Option<i32> {
        let mut parents: Vec<(i32, i32)> = Vec::new();
        for e in std::fs::read_dir("/proc").ok()?.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            if let Some(ppid) = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.split(' ').nth(1))
                .and_then(|p| p.parse().ok())
            {
                parents.push((pid, ppid));
            }
        }
        let mut below = vec![self.server.as_ref()?.id() as i32];
        while let Some(parent) = below.pop() {
            for &(pid, _) in parents.iter().filter(|(_, ppid)| *ppid == parent) {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
                if String::from_utf8_lossy(argv0).contains("buildah") {
                    below.push(pid);
                } else {
                    return Some(pid);
                }
            }
        }
        None
    }

    /// Signal the container's own process: Patroni, or else the postmaster.
    fn signal(&self, signal: &str) {
        let pid = if self.patroni {
            self.patroni()
        } else {
            self.postmaster()
        };
        if let Some(pid) = pid {
            kill(signal, pid);
        }
    }
}

fn kill(signal: &str, pid: i32) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status();
}

impl Drop for Container {
    fn drop(&mut self) {
        if self.server.is_some() {
            // Patroni stops its PostgreSQL on TERM; PostgreSQL itself stops at once on QUIT.
            let own = if self.patroni {
                self.patroni()
            } else {
                self.postmaster()
            };
            if let Some(pid) = own {
                kill(if self.patroni { "TERM" } else { "QUIT" }, pid);
            }
            let mut child = self.server.take().unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(200));
            }
            // still running: its processes by the ids read while it ran
            if matches!(child.try_wait(), Ok(None)) {
                for pid in [own, self.postmaster()].into_iter().flatten() {
                    kill("KILL", pid);
                }
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        let _ = Command::new("buildah")
            .args(["rm", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The image, as scripts/build-images builds it without a registry: its reference by digest.
fn build_image() -> String {
    let build = Command::new(root().join("scripts/build-images"))
        .args(["--bootstrap-base", "postgres"])
        .output()
        .unwrap();
    assert!(build.status.success(), "build-images: {}", text(&build));
    let built = String::from_utf8_lossy(&build.stdout);
    built
        .lines()
        .find_map(|l| l.strip_prefix("terroir/postgres:15-bookworm "))
        .map(|digest| format!("localhost/terroir/postgres:15-bookworm@{}", digest.trim()))
        .unwrap_or_else(|| panic!("build-images printed the image's digest: {built}"))
}

/// What the rendered pod gives its `postgres` container, made on this machine: the volumes as
/// directories (mounts `host:path[:ro]`), the environment, the user, and where PGDATA is here.
struct PodRun {
    mounts: Vec<String>,
    env: Vec<(String, String)>,
    user: String,
    pgdata_host: PathBuf,
}

impl PodRun {
    /// `secret_value(secret, key)`: a Secret's value; `pod_name`: the pod's (fieldRef
    /// metadata.name); `hosts`: the container's /etc/hosts.
    fn new(
        t: &Path,
        pod: &Value,
        container: &Value,
        config_maps: &BTreeMap<String, Value>,
        secret_value: &dyn Fn(&str, &str) -> String,
        pod_name: &str,
        hosts: &str,
    ) -> PodRun {
        let security = &pod["securityContext"];
        let fs_group = security["fsGroup"].as_u64().unwrap();
        let user = format!(
            "{}:{}",
            security["runAsUser"].as_u64().unwrap(),
            security["runAsGroup"].as_u64().unwrap()
        );
        // The environment.
        let mut env: Vec<(String, String)> = Vec::new();
        for e in container["env"].as_array().unwrap() {
            let name = e["name"].as_str().unwrap().to_owned();
            let value = if let Some(v) = e["value"].as_str() {
                // $(NAME): a variable defined before it, as the kubelet expands it
                env.iter().fold(v.to_owned(), |v, (k, value)| {
                    v.replace(&format!("$({k})"), value)
                })
            } else if e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name" {
                pod_name.to_owned()
            } else {
                let r = &e["valueFrom"]["secretKeyRef"];
                secret_value(r["name"].as_str().unwrap(), r["key"].as_str().unwrap())
            };
            env.push((name, value));
        }
        let pgdata = env
            .iter()
            .find(|(k, _)| k == "PGDATA")
            .map(|(_, v)| v.clone())
            .unwrap();

        // The volumes, at their mount paths.
        let volumes: BTreeMap<&str, &Value> = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (v["name"].as_str().unwrap(), v))
            .collect();
        let vol = t.join("volumes");
        let mut mounts: Vec<String> = Vec::new();
        let mut data_dir = None;
        for m in container["volumeMounts"].as_array().unwrap() {
            let name = m["name"].as_str().unwrap();
            let at = m["mountPath"].as_str().unwrap();
            let host = vol.join(name);
            let read_only = m["readOnly"] == true;
            if name == "data" {
                // the claim's volume: the pod's group may write at its root
                std::fs::create_dir_all(&host).unwrap();
                chown(&host, &format!("0:{fs_group}"));
                std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o2770)).unwrap();
                data_dir = Some((host.clone(), at.to_owned()));
            } else {
                let v = volumes[name];
                let files = |items: &Value, mut content: Box<dyn FnMut(&str) -> String>| {
                    let mode = v
                        .get("configMap")
                        .or_else(|| v.get("secret"))
                        .and_then(|s| s["defaultMode"].as_u64())
                        .unwrap_or(0o644) as u32;
                    items
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|i| {
                            let key = i["key"].as_str().unwrap();
                            (i["path"].as_str().unwrap().to_owned(), content(key), mode)
                        })
                        .collect::<Vec<_>>()
                };
                if let Some(cm) = v.get("configMap") {
                    let data = config_maps[cm["name"].as_str().unwrap()].clone();
                    let listed = files(
                        &cm["items"],
                        Box::new(move |k| data[k].as_str().unwrap().to_owned()),
                    );
                    volume_files(&host, fs_group, &listed);
                } else if let Some(s) = v.get("secret") {
                    let secret = s["secretName"].as_str().unwrap().to_owned();
                    let listed = files(&s["items"], Box::new(move |k| secret_value(&secret, k)));
                    volume_files(&host, fs_group, &listed);
                } else {
                    assert!(v.get("emptyDir").is_some(), "volume {name}: {v}");
                    std::fs::create_dir_all(&host).unwrap();
                    chown(&host, &format!("0:{fs_group}"));
                    std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o2777))
                        .unwrap();
                }
            }
            mounts.push(format!(
                "{}:{at}{}",
                host.display(),
                if read_only { ":ro" } else { "" }
            ));
        }
        let (data_host, data_at) = data_dir.expect("the data volume is mounted");
        let pgdata_host = data_host.join(
            Path::new(&pgdata)
                .strip_prefix(&data_at)
                .expect("PGDATA is on the data volume"),
        );
        // The names the rendered settings reach, on loopback only.
        let hosts_file = t.join("hosts");
        std::fs::write(&hosts_file, hosts).unwrap();
        std::fs::set_permissions(&hosts_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        mounts.push(format!("{}:/etc/hosts:ro", hosts_file.display()));
        PodRun {
            mounts,
            env,
            user,
            pgdata_host,
        }
    }

    /// `buildah run` of `argv` in container `name`, as the pod runs its `postgres` container.
    fn command(&self, name: &str, argv: &[&str]) -> Command {
        let mut c = Command::new("buildah");
        // --no-hosts: the hosts file is the test's (mounted), not one buildah writes
        c.args([
            "run",
            "--isolation",
            "chroot",
            "--no-hosts",
            "--cap-drop",
            "all",
        ])
        .args(["--user", &self.user]);
        for m in &self.mounts {
            c.args(["-v", m]);
        }
        for (k, v) in &self.env {
            c.args(["--env", &format!("{k}={v}")]);
        }
        c.arg(name).arg("--").args(argv);
        c
    }
}

#[test]
fn the_postgres_image_runs_the_rendered_pod_tls_only_archiving_and_auditing() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    std::fs::set_permissions(t, std::fs::Permissions::from_mode(0o755)).unwrap();

    let image = build_image();

    // The S3 stand-in, and a document whose backups go to it (under the endpoint's own name).
    let (s3_port, pg_port) = (free_port(), free_port());
    let uri_host = format!("{BUCKET}.{S3_HOST}");
    let (_moto, s3_ca) = s3_stand_in(t, s3_port, &[S3_HOST, &uri_host]);
    let ca_pem = std::fs::read_to_string(&s3_ca).unwrap();
    let indented: String = ca_pem.lines().map(|l| format!("        {l}\n")).collect();
    let doc = variant("kubernetes.yaml", t, "platform.yaml", |text| {
        text.replace(
            &format!("      url: https://{S3_HOST}\n"),
            &format!("      url: https://{S3_HOST}:{s3_port}\n      caCertificate: |\n{indented}"),
        )
        .replace(
            "      sharedBuffers: 1GB\n",
            "      sharedBuffers: 1GB\n      personalTables: [customers]\n",
        )
    });
    let out = render(&doc, t, "out");
    let pg_docs = docs(&out.join("kubernetes/postgres.yaml"));
    let backup_docs = docs(&out.join("kubernetes/backup.yaml"));
    let sts = named(&pg_docs, "StatefulSet", "mutuelle-crm-postgres");
    let pod = &sts["spec"]["template"]["spec"];
    let container = pod["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "postgres")
        .unwrap();
    assert!(
        container["image"]
            .as_str()
            .unwrap()
            .ends_with("/terroir/postgres:15-bookworm"),
        "the pod runs the image's tag: {}",
        container["image"]
    );
    assert_eq!(
        (
            &pod["securityContext"]["runAsUser"],
            &pod["securityContext"]["runAsGroup"]
        ),
        (&Value::from(999), &Value::from(999)),
        "the image's postgres user"
    );
    assert_eq!(
        container["securityContext"]["readOnlyRootFilesystem"], true,
        "checked below: nothing is written outside the volumes"
    );

    // The rendered files, with the server on loopback and a free port (host network).
    let port = pg_port.to_string();
    let mut config_maps: BTreeMap<String, Value> = BTreeMap::new();
    for d in pg_docs.iter().chain(&backup_docs) {
        if d["kind"] == "ConfigMap" {
            let mut data = d["data"].clone();
            for (key, value) in data.as_object_mut().unwrap() {
                let v = value.as_str().unwrap();
                let v = match key.as_str() {
                    "postgresql.conf" => replaced(
                        &replaced(v, "port = 5432\n", &format!("port = {port}\n")),
                        "listen_addresses = '*'",
                        "listen_addresses = '127.0.0.1'",
                    ),
                    "sync-passwords.sh" => replaced(v, " -p 5432", &format!(" -p {port}")),
                    "pgbackrest.conf" => {
                        replaced(v, "pg1-port=5432\n", &format!("pg1-port={port}\n"))
                    }
                    _ => v.to_owned(),
                };
                *value = Value::String(v);
            }
            config_maps.insert(d["metadata"]["name"].as_str().unwrap().to_owned(), data);
        }
    }
    let conf = config_maps["mutuelle-crm-pgbackrest"]["pgbackrest.conf"]
        .as_str()
        .unwrap();
    assert!(
        conf.contains(&format!("repo1-s3-endpoint={S3_HOST}\n"))
            && conf.contains("repo1-s3-uri-style=host\n"),
        "pgBackRest reaches the bucket as {uri_host}:\n{conf}"
    );

    // The Secrets' values, by key, as terroir makes them (the TLS Secret: a certificate from the
    // platform's CA for the Service's names).
    let ca = terroir::pki::new_ca("mutuelle-crm").unwrap();
    let names: Vec<String> = ["", ".mutuelle-crm.svc", ".mutuelle-crm.svc.cluster.local"]
        .iter()
        .map(|s| format!("mutuelle-crm-postgres{s}"))
        .collect();
    let server_tls =
        terroir::pki::issue_server("mutuelle-crm", &ca.key_pem, &names, "test").unwrap();
    let secret_value = |secret: &str, key: &str| -> String {
        match key {
            "postgres-password" => SU_PASSWORD.into(),
            "password" => APP_PASSWORD.into(),
            "AWS_ACCESS_KEY_ID" => "test-access".into(),
            "AWS_SECRET_ACCESS_KEY" => "test-secret".into(),
            "cipher-pass" => CIPHER.into(),
            "tls.crt" => server_tls.cert_pem.clone(),
            "tls.key" => server_tls.key_pem.clone(),
            "ca.crt" => ca.cert_pem.clone(),
            _ => {
                panic!("the postgres container reads {secret}/{key}, which this test does not make")
            }
        }
    };

    let hosts = format!("127.0.0.1 localhost\n127.0.0.1 {S3_HOST} {uri_host}\n");
    let podrun = PodRun::new(
        t,
        pod,
        container,
        &config_maps,
        &secret_value,
        "mutuelle-crm-postgres-0",
        &hosts,
    );
    let (mounts, pgdata_host) = (&podrun.mounts, podrun.pgdata_host.clone());

    let name = format!("terroir-test-postgres-{}", std::process::id());
    let mut pg = Container::create(&image, &name, &pgdata_host, false);
    let inspect = Command::new("buildah")
        .args(["inspect", "--type", "image", &image])
        .output()
        .unwrap();
    assert!(inspect.status.success(), "{}", text(&inspect));
    let config: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let config = &config["OCIv1"]["config"];
    // What Kubernetes runs: the container's command, or else the image's entrypoint, with the
    // container's arguments.
    let mut argv: Vec<String> = match container["command"].as_array() {
        Some(c) => c.iter().map(|a| a.as_str().unwrap().to_owned()).collect(),
        None => config["Entrypoint"]
            .as_array()
            .expect("the image has an entrypoint")
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect(),
    };
    argv.extend(
        container["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned()),
    );
    let run = |argv: &[&str]| podrun.command(&name, argv);
    let log = t.join("postgres.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    pg.server = Some(
        run(&args)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap(),
    );
    let server_log = || std::fs::read_to_string(&log).unwrap_or_default();

    // The postStart hook, started with the container as the kubelet does.
    let hook: Vec<String> = container["lifecycle"]["postStart"]["exec"]["command"]
        .as_array()
        .expect("a postStart hook")
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    let hook: Vec<&str> = hook.iter().map(String::as_str).collect();
    let hook_log = t.join("post-start.log");
    let mut hook_child = run(&hook)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&hook_log).unwrap())
        .stderr(std::fs::File::create(t.join("post-start.err")).unwrap())
        .spawn()
        .unwrap();
    let hook_text = || {
        std::fs::read_to_string(&hook_log).unwrap_or_default()
            + &std::fs::read_to_string(t.join("post-start.err")).unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(180);
    let hooked = loop {
        if let Some(status) = hook_child.try_wait().unwrap() {
            break status;
        }
        if let Some(status) = pg.server.as_mut().unwrap().try_wait().unwrap() {
            let _ = hook_child.kill();
            let _ = hook_child.wait();
            panic!(
                "the server's container ended ({status}):\n{}\npostStart:\n{}",
                server_log(),
                hook_text()
            );
        }
        if Instant::now() > deadline {
            let _ = hook_child.kill();
            let _ = hook_child.wait();
            panic!(
                "the postStart hook did not end in 180 s:\n{}\nserver:\n{}",
                hook_text(),
                server_log()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        hooked.success(),
        "the postStart hook: {}\nserver:\n{}",
        hook_text(),
        server_log()
    );
    assert!(
        !hook_text().contains("could not create stanza"),
        "the stanza is created at start: {}\nserver:\n{}",
        hook_text(),
        server_log()
    );
    let logged = server_log();
    assert!(
        logged.contains("entrypoint: running /docker-entrypoint-initdb.d/10-app-role.sh"),
        "initdb and the initdb scripts ran on the empty volume:\n{logged}"
    );

    // The readiness probe.
    let probe: Vec<String> = container["readinessProbe"]["exec"]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().replace("5432", &port))
        .collect();
    let probe: Vec<&str> = probe.iter().map(String::as_str).collect();
    eventually(
        Duration::from_secs(60),
        "the readiness probe passes",
        || {
            let o = run(&probe).output().unwrap();
            o.status.success().then_some(()).ok_or_else(|| text(&o))
        },
    );

    // Without TLS: refused. With TLS, verified against the platform's CA for the Service's name.
    let ca_file = t.join("ca.crt");
    std::fs::write(&ca_file, &ca.cert_pem).unwrap();
    let plain = format!("host=127.0.0.1 port={port} dbname=crm user=crm sslmode=disable");
    let (ok, said) = common::pg::psql(&plain, APP_PASSWORD, "select 1");
    assert!(!ok, "a connection without TLS is refused: {said}");
    assert!(said.contains("no encryption"), "{said}");
    let tls = format!(
        "host={SERVICE} hostaddr=127.0.0.1 port={port} dbname=crm user=crm sslmode=verify-full sslrootcert={}",
        ca_file.display()
    );
    let app = |sql: &str| -> String {
        let (ok, said) = common::pg::psql(&tls, APP_PASSWORD, sql);
        assert!(ok, "{sql}: {said}\nserver:\n{}", server_log());
        said.trim().to_owned()
    };
    assert_eq!(
        app("select ssl from pg_stat_ssl where pid = pg_backend_pid()"),
        "t"
    );
    let (ok, said) = common::pg::psql(
        &tls.replace("user=crm", "user=postgres"),
        SU_PASSWORD,
        "select 1",
    );
    assert!(!ok, "the superuser is local only: {said}");

    // A personal table, read by the application: the audit trail has it.
    app("create table customers (id int primary key, name text)");
    app("insert into customers values (1, 'Camille')");
    assert_eq!(app("select name from customers"), "Camille");
    eventually(Duration::from_secs(30), "the read audited", || {
        let l = server_log();
        l.lines()
            .any(|l| {
                l.contains("AUDIT: OBJECT,") && l.contains("READ,SELECT,TABLE,public.customers")
            })
            .then_some(())
            .ok_or(l)
    });

    // The WAL, archived through pgBackRest into the bucket.
    let superuser = |sql: &str| -> String {
        let o = run(&[
            "psql",
            "-h",
            "/var/run/postgresql",
            "-p",
            &port,
            "-U",
            "postgres",
            "-d",
            "crm",
            "-XAtqc",
            sql,
        ])
        .output()
        .unwrap();
        assert!(o.status.success(), "{sql}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    };
    let segment = superuser("select pg_walfile_name(pg_switch_wal())");
    eventually(Duration::from_secs(120), "the WAL archived", || {
        let s = superuser(
            "select coalesce(last_archived_wal, '') || ' ' || failed_count || ' ' || coalesce(last_failed_wal, '') from pg_stat_archiver",
        );
        (s.split(' ').next().unwrap_or_default() >= segment.as_str())
            .then_some(())
            .ok_or(s)
    });
    let listing = common::s3::boto3(
        &format!("https://127.0.0.1:{s3_port}"),
        REGION,
        &s3_ca,
        &format!("import json\nprint(json.dumps([o['Key'] for o in s3.list_objects_v2(Bucket='{BUCKET}').get('Contents', [])]))"),
    )
    .unwrap();
    let keys: Vec<String> = serde_json::from_str(listing.trim()).unwrap();
    assert!(
        keys.iter()
            .any(|k| k.starts_with("mutuelle-crm/archive/mutuelle-crm/") && k.contains(&segment)),
        "{segment} in the bucket: {keys:?}"
    );

    // Stopped with the image's stop signal, PostgreSQL shuts down cleanly.
    let stop = config["StopSignal"].as_str().unwrap_or("SIGTERM");
    pg.signal(stop.trim_start_matches("SIG"));
    let mut server = pg.server.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = server.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stop on {stop}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let logged = server_log();
    assert!(
        status.success() && logged.contains("database system is shut down"),
        "{status}:\n{logged}"
    );
    for secret in [SU_PASSWORD, APP_PASSWORD, CIPHER, "test-secret"] {
        assert!(
            !logged.contains(secret),
            "a secret value in the server's log:\n{logged}"
        );
    }

    // Nothing outside the volumes: the container's own layer holds only their mount points.
    let diff = Command::new("podman")
        .args(["diff", &name])
        .output()
        .unwrap();
    assert!(diff.status.success(), "podman diff: {}", text(&diff));
    // (Debian's /var/run is a link to /run: the diff names the mount point by its target.)
    let mount_points: Vec<String> = mounts
        .iter()
        .map(|m| {
            m.split(':')
                .nth(1)
                .unwrap()
                .replacen("/var/run/", "/run/", 1)
        })
        .collect();
    let changes = String::from_utf8_lossy(&diff.stdout);
    let written: Vec<String> = changes
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(_, p)| p.to_owned()))
        .filter(|p| {
            !mount_points
                .iter()
                .any(|m| m == p || m.starts_with(&format!("{p}/")))
        })
        .collect();
    assert!(
        written.is_empty(),
        "written outside the volumes: {written:?}\n{changes}"
    );
}

/// The image's Patroni (Debian bookworm's 3.0.2) with what the rendered StatefulSet of a
/// replicated database gives a member (one here): it makes the cluster through the API server
/// double, labels its pod as the rendered Service selects the primary, runs post_bootstrap (the
/// application's role and database) and its on_start callback (the audit role), and PostgreSQL
/// takes clients over TLS only, verified with the member's name under the headless Service.
///
/// What differs from a pod, besides the loopback ports (Patroni's listen addresses given through
/// its environment, PATRONI_POSTGRESQL_LISTEN and PATRONI_RESTAPI_LISTEN): the API server is the
/// double, over HTTP, reached through a kubeconfig (KUBECONFIG, PATRONI_KUBERNETES_CONTEXT)
/// rather than the pod's service account.
#[test]
fn the_images_patroni_elects_itself_and_labels_its_pod_as_the_service_selects() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    std::fs::set_permissions(t, std::fs::Permissions::from_mode(0o755)).unwrap();
    let image = build_image();
    let doc = variant("kubernetes-ha.yaml", t, "ha.yaml", |text| {
        without_backups(&text)
    });
    let out = render(&doc, t, "out");
    let pg_docs = docs(&out.join("kubernetes/postgres.yaml"));
    let sts = named(&pg_docs, "StatefulSet", "mutuelle-crm-postgres");
    let pod = &sts["spec"]["template"]["spec"];
    let container = pod["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "postgres")
        .unwrap();
    let argv: Vec<String> = container["command"]
        .as_array()
        .expect("Patroni replaces the entrypoint")
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    let config = named(&pg_docs, "ConfigMap", "mutuelle-crm-postgres-config");
    let patroni: Value =
        serde_saphyr::from_str(config["data"]["patroni.yml"].as_str().unwrap()).unwrap();
    let role_label = patroni["kubernetes"]["role_label"].as_str().unwrap();
    let service = named(&pg_docs, "Service", "mutuelle-crm-postgres");
    let primary = service["spec"]["selector"][role_label]
        .as_str()
        .expect("the Service selects the primary by Patroni's role label")
        .to_owned();

    let (port, api) = (free_port().to_string(), free_port().to_string());
    let mut data = config["data"].clone();
    for key in ["sync-passwords.sh", "post-bootstrap.sh"] {
        let v = data[key].as_str().unwrap();
        data[key] = Value::String(replaced(v, " -p 5432", &format!(" -p {port}")));
    }
    let config_maps = BTreeMap::from([("mutuelle-crm-postgres-config".to_owned(), data)]);

    // The Secrets' values: passwords, and the server's certificate for the Service's names and
    // each member's.
    let ca = terroir::pki::new_ca("mutuelle-crm").unwrap();
    let member = "mutuelle-crm-postgres-0.mutuelle-crm-postgres-headless.mutuelle-crm.svc";
    let names: Vec<String> = [
        "mutuelle-crm-postgres",
        "mutuelle-crm-postgres.mutuelle-crm.svc",
        member,
    ]
    .map(String::from)
    .to_vec();
    let server_tls =
        terroir::pki::issue_server("mutuelle-crm", &ca.key_pem, &names, "test").unwrap();
    let secret_value = |secret: &str, key: &str| -> String {
        match key {
            "postgres-password" => SU_PASSWORD.into(),
            "password" => APP_PASSWORD.into(),
            "replication-password" => "replication-pass-6d0e2a".into(),
            "rewind-password" => "rewind-pass-91c3f4".into(),
            "tls.crt" => server_tls.cert_pem.clone(),
            "tls.key" => server_tls.key_pem.clone(),
            "ca.crt" => ca.cert_pem.clone(),
            _ => {
                panic!("the postgres container reads {secret}/{key}, which this test does not make")
            }
        }
    };
    let mut podrun = PodRun::new(
        t,
        pod,
        container,
        &config_maps,
        &secret_value,
        "mutuelle-crm-postgres-0",
        &format!("127.0.0.1 localhost\n127.0.0.1 {member}\n"),
    );
    for (k, v) in &mut podrun.env {
        if k == "PATRONI_POSTGRESQL_CONNECT_ADDRESS" {
            *v = replaced(v, &format!("{member}:5432"), &format!("{member}:{port}"));
        } else if k == "PATRONI_RESTAPI_CONNECT_ADDRESS" {
            *v = replaced(v, &format!("{member}:8008"), &format!("{member}:{api}"));
        }
    }

    // The API server double, with the namespace and the member's pod, labelled as rendered.
    let server = BackgroundServer::start(Options::default()).unwrap();
    let kube = t.join("kube");
    std::fs::create_dir_all(&kube).unwrap();
    server
        .write_kubeconfig(&kube.join("config"), "double")
        .unwrap();
    for f in [kube.clone(), kube.join("config")] {
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    podrun
        .mounts
        .push(format!("{}:/etc/kube-double:ro", kube.display()));
    for (k, v) in [
        ("KUBECONFIG", "/etc/kube-double/config".to_owned()),
        ("PATRONI_KUBERNETES_CONTEXT", "double".to_owned()),
        ("PATRONI_POSTGRESQL_LISTEN", format!("127.0.0.1:{port}")),
        ("PATRONI_RESTAPI_LISTEN", format!("127.0.0.1:{api}")),
    ] {
        podrun.env.push((k.to_owned(), v));
    }
    let url = server.url();
    let post = |path: &str, body: Value| {
        ureq::post(&format!("{url}{path}"))
            .header("content-type", "application/json")
            .send(body.to_string())
            .unwrap();
    };
    post(
        "/api/v1/namespaces",
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mutuelle-crm"}}),
    );
    post(
        "/api/v1/namespaces/mutuelle-crm/pods",
        serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "mutuelle-crm-postgres-0", "labels": sts["spec"]["template"]["metadata"]["labels"]},
            "spec": {"containers": [{"name": "postgres", "image": "terroir/postgres"}]}}),
    );

    let name = format!("terroir-test-patroni-{}", std::process::id());
    let mut pg = Container::create(&image, &name, &podrun.pgdata_host, true);
    let log = t.join("patroni.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    pg.server = Some(
        podrun
            .command(&name, &args)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap(),
    );
    let patroni_log = || std::fs::read_to_string(&log).unwrap_or_default();

    // Elected, and labelled as the Service selects the primary.
    eventually(
        Duration::from_secs(180),
        "the member labelled primary",
        || {
            if let Some(status) = pg.server.as_mut().unwrap().try_wait().unwrap() {
                panic!("Patroni ended ({status}):\n{}", patroni_log());
            }
            let label = server
                .state()
                .get("v1", "Pod", Some("mutuelle-crm"), "mutuelle-crm-postgres-0")
                .and_then(|p| {
                    p["metadata"]["labels"][role_label]
                        .as_str()
                        .map(str::to_owned)
                })
                .unwrap_or_default();
            (label == primary)
                .then_some(())
                .ok_or_else(|| format!("labelled {label:?}\n{}", patroni_log()))
        },
    );

    // The application's database (post_bootstrap), over TLS only; the audit role (on_start).
    let ca_file = t.join("ca.crt");
    std::fs::write(&ca_file, &ca.cert_pem).unwrap();
    let tls = format!(
        "host={member} hostaddr=127.0.0.1 port={port} dbname=crm user=crm sslmode=verify-full sslrootcert={}",
        ca_file.display()
    );
    eventually(Duration::from_secs(60), "the audit role made", || {
        let (ok, said) = common::pg::psql(
            &tls,
            APP_PASSWORD,
            "select count(*) from pg_roles where rolname = 'terroir_auditor'",
        );
        (ok && said.trim() == "1")
            .then_some(())
            .ok_or_else(|| format!("{said}\n{}", patroni_log()))
    });
    let (ok, said) = common::pg::psql(
        &format!("host=127.0.0.1 port={port} dbname=crm user=crm sslmode=disable"),
        APP_PASSWORD,
        "select 1",
    );
    assert!(!ok && said.contains("no encryption"), "{said}");

    // Patroni stops PostgreSQL when told to stop.
    pg.signal("TERM");
    let mut patroni_run = pg.server.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while patroni_run.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "Patroni did not stop:\n{}",
            patroni_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        patroni_log().contains("database system is shut down"),
        "{}",
        patroni_log()
    );
}
