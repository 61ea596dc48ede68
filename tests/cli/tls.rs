//! TLS as ANSSI recommends it on every endpoint the examples render (terroir::pki::tls): each
//! server's rendered settings carry the one policy, OpenSSL reads its list as ECDHE AEAD suites
//! only, and named as Go names them; postconf reads Postfix's settings; and the servers that read
//! them — Postfix (25 and submission), nginx, Prometheus and Alertmanager, started on loopback with
//! the rendered files — accept TLS 1.3 and TLS 1.2 with the policy's suites in their own order,
//! and refuse CBC, RSA key exchange, anonymous suites, TLS 1.1 and TLS 1.0
//! (common/tls.rs). PostgreSQL and pgBackRest's server are run in tests/kubernetes.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command as Std, Stdio};
use std::time::Duration;

use common::tls::{Endpoint, Start, assert_anssi_tls_here};
use common::*;
use serde_json::Value;
use terroir::pki::tls::TlsPolicy;

fn config_map_key(docs: &[Value], key: &str) -> String {
    docs.iter()
        .find_map(|d| d["data"][key].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no ConfigMap key {key}"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A web configuration's `tls_server_config` is the policy's, in Go's names.
fn assert_web_config(what: &str, text: &str, policy: &TlsPolicy) {
    let v: Value = serde_saphyr::from_str(text).unwrap();
    let tls = &v["tls_server_config"];
    assert_eq!(tls["min_version"], policy.go_min_version, "{what}: {text}");
    assert_eq!(
        tls["cipher_suites"],
        serde_json::json!(policy.go_cipher_suites),
        "{what}: {text}"
    );
    assert_eq!(tls["prefer_server_cipher_suites"], true, "{what}: {text}");
}

/// Postfix's TLS settings are the policy's (main.cf, bare metal or the Kubernetes ConfigMap).
fn assert_postfix(what: &str, text: &str, policy: &TlsPolicy) {
    for line in [
        format!("smtpd_tls_protocols = >={}", policy.min_protocol),
        format!("smtpd_tls_mandatory_protocols = >={}", policy.min_protocol),
        "smtpd_tls_ciphers = high".to_owned(),
        "smtpd_tls_mandatory_ciphers = high".to_owned(),
        format!(
            "smtpd_tls_exclude_ciphers = {}",
            policy.postfix_exclude_ciphers
        ),
        format!("tls_high_cipherlist = {}", policy.openssl_ciphers),
        "tls_preempt_cipherlist = yes".to_owned(),
        format!("smtp_tls_mandatory_protocols = >={}", policy.min_protocol),
        "smtp_tls_mandatory_ciphers = high".to_owned(),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{what} has `{line}`:\n{text}"
        );
    }
}

fn assert_postgres(what: &str, text: &str, policy: &TlsPolicy) {
    for line in [
        format!("ssl_min_protocol_version = '{}'", policy.min_protocol),
        format!("ssl_ciphers = '{}'", policy.openssl_ciphers),
        "ssl_prefer_server_ciphers = on".to_owned(),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{what} has `{line}`:\n{text}"
        );
    }
}

/// Wherever a TLS server is configured in a rendered tree, its suites are too: a new endpoint
/// cannot be added with only a protocol floor. Returns how many of each were found.
fn every_tls_setting_has_its_suites(tree: &Path) -> [usize; 3] {
    let mut counts = [0; 3];
    for (path, bytes) in read_tree(tree) {
        let text = String::from_utf8_lossy(&bytes);
        let n = |s: &str| text.matches(s).count();
        let pairs = [
            ("tls_server_config:", " cipher_suites:"),
            ("ssl_min_protocol_version", "ssl_ciphers = "),
            ("smtpd_tls_security_level", "tls_high_cipherlist = "),
        ];
        for (i, (server, suites)) in pairs.iter().enumerate() {
            assert_eq!(
                n(server),
                n(suites),
                "{path}: every `{server}` comes with `{suites}`"
            );
            counts[i] += n(server);
        }
        // nginx: `ssl_ciphers LIST;` (PostgreSQL's is `ssl_ciphers = 'LIST'`)
        let nginx_ciphers = text
            .lines()
            .filter(|l| {
                let l = l.trim_start();
                l.starts_with("ssl_ciphers ") && !l.starts_with("ssl_ciphers =")
            })
            .count();
        assert_eq!(n("ssl_protocols "), nginx_ciphers, "{path}");
    }
    counts
}

#[test]
fn every_endpoint_renders_the_one_policy() {
    let policy = TlsPolicy::anssi();
    let tmp = tempfile::tempdir().unwrap();

    // Bare metal
    let out = render(&example("baremetal.yaml"), tmp.path(), "baremetal");
    let hosts = out.join("baremetal/hosts");
    let resolved: Value = serde_json::from_str(&read(&out.join("platform.resolved.json"))).unwrap();
    assert_eq!(
        resolved["tlsPolicy"],
        serde_json::to_value(&policy).unwrap()
    );
    for host in ["app1", "db1", "ops1"] {
        assert_web_config(host, &read(&hosts.join(host).join("web.yml")), &policy);
    }
    assert_postgres(
        "db1's postgresql.conf",
        &read(&hosts.join("db1/postgresql.conf")),
        &policy,
    );
    assert_postfix(
        "ops1's main.cf",
        &read(&hosts.join("ops1/main.cf")),
        &policy,
    );
    let nginx = read(&hosts.join("app1/nginx-site.conf"));
    for line in [
        "    ssl_protocols TLSv1.2 TLSv1.3;".to_owned(),
        format!("    ssl_ciphers {};", policy.openssl_ciphers),
        "    ssl_prefer_server_ciphers on;".to_owned(),
    ] {
        assert!(
            nginx.lines().any(|l| l == line),
            "nginx has `{line}`:\n{nginx}"
        );
    }
    assert_eq!(
        every_tls_setting_has_its_suites(&out),
        [3, 1, 1],
        "three web configurations, PostgreSQL, Postfix"
    );

    // Kubernetes, with an Ingress
    let doc = variant("kubernetes.yaml", tmp.path(), "ingress.yaml", |t| {
        t.replace(
            "      storageClass: ssd-encrypted\n",
            "      storageClass: ssd-encrypted\n      ingressClassName: nginx\n",
        )
    });
    let out = render(&doc, tmp.path(), "kubernetes");
    let k = out.join("kubernetes");
    for file in [
        "prometheus.yaml",
        "alertmanager.yaml",
        "postgres.yaml",
        "node-exporter.yaml",
        "backup.yaml",
    ] {
        assert_web_config(
            file,
            &config_map_key(&docs(&k.join(file)), "web.yml"),
            &policy,
        );
    }
    let pg = docs(&k.join("postgres.yaml"));
    assert_postgres(
        "the PostgreSQL ConfigMap",
        &config_map_key(&pg, "postgresql.conf"),
        &policy,
    );
    assert_postfix(
        "the Postfix ConfigMap",
        &config_map_key(&docs(&k.join("postfix.yaml")), "main.cf"),
        &policy,
    );
    // Grafana: `h2` is the protocol that limits TLS 1.2 to ECDHE AEAD suites
    let grafana = docs(&k.join("grafana.yaml"));
    let env = &named(&grafana, "Deployment", "mutuelle-crm-grafana")["spec"]["template"]["spec"]["containers"]
        [0]["env"];
    let value = |name: &str| {
        env.as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .map(|e| e["value"].clone())
    };
    assert_eq!(value("GF_SERVER_PROTOCOL"), Some("h2".into()), "{env}");
    assert_eq!(value("GF_SERVER_MIN_TLS_VERSION"), Some("TLS1.2".into()));
    // pgBackRest's server: OpenSSL's configuration, in its container only
    let openssl_cnf = config_map_key(&docs(&k.join("backup.yaml")), "openssl.cnf");
    for line in [
        format!("MinProtocol = {}", policy.min_protocol),
        format!("CipherString = {}", policy.openssl_ciphers),
        "system_default = tls_policy".to_owned(),
    ] {
        assert!(
            openssl_cnf.lines().any(|l| l == line),
            "{line}:\n{openssl_cnf}"
        );
    }
    let sts = named(&pg, "StatefulSet", "mutuelle-crm-postgres");
    let pod = &sts["spec"]["template"]["spec"];
    let openssl_conf = |container: &str| {
        pod["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == container)
            .unwrap()["env"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["name"] == "OPENSSL_CONF")
            .map(|e| e["value"].clone())
    };
    assert_eq!(
        openssl_conf("pgbackrest"),
        Some("/etc/pgbackrest/openssl.cnf".into())
    );
    assert_eq!(
        openssl_conf("postgres"),
        None,
        "PostgreSQL has its own settings"
    );
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "pgbackrest-config")
        .unwrap();
    assert!(
        volume["configMap"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["key"] == "openssl.cnf" && i["path"] == "openssl.cnf"),
        "{volume}"
    );
    // the Ingress: the suites for the NGINX-based controllers
    let ingress_docs = docs(&k.join("ingress.yaml"));
    let ingress = named(&ingress_docs, "Ingress", "mutuelle-crm-public");
    let annotations = &ingress["metadata"]["annotations"];
    for key in [
        "nginx.ingress.kubernetes.io/ssl-ciphers",
        "nginx.org/ssl-ciphers",
    ] {
        assert_eq!(
            annotations[key],
            policy.openssl_ciphers.as_str(),
            "{annotations}"
        );
    }
    for key in [
        "nginx.ingress.kubernetes.io/ssl-prefer-server-ciphers",
        "nginx.org/ssl-prefer-server-ciphers",
    ] {
        assert_eq!(annotations[key], "true", "{annotations}");
    }
    assert_eq!(
        every_tls_setting_has_its_suites(&out),
        [5, 1, 1],
        "five web configurations, PostgreSQL, Postfix"
    );
}

/// `openssl ciphers -v` lines of a cipher list: (IANA name, protocol, key exchange,
/// authentication, MAC).
fn openssl_ciphers(list: &str) -> Vec<[String; 5]> {
    let out = Std::new("openssl")
        .args(["ciphers", "-v", "-stdname", list])
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "openssl ciphers {list}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let kv = |key: &str| {
                f.iter()
                    .find_map(|x| x.strip_prefix(key))
                    .unwrap_or_default()
                    .to_owned()
            };
            // IANA name - OpenSSL name protocol Kx= Au= Enc= Mac=
            [
                f[0].to_owned(),
                f[3].to_owned(),
                kv("Kx="),
                kv("Au="),
                kv("Mac="),
            ]
        })
        .collect()
}

/// The TLS 1.2 suites of a list (OpenSSL adds its TLS 1.3 ones to every list), checked: ECDHE,
/// authenticated, AEAD. Their IANA names, in order, or what is wrong.
fn tls12_ecdhe_aead_only(list: &str) -> Result<Vec<String>, String> {
    let mut tls12 = Vec::new();
    for [name, protocol, kx, au, mac] in openssl_ciphers(list) {
        match protocol.as_str() {
            "TLSv1.3" if mac == "AEAD" => {}
            "TLSv1.2" if kx == "ECDH" && (au == "ECDSA" || au == "RSA") && mac == "AEAD" => {
                tls12.push(name)
            }
            _ => {
                return Err(format!(
                    "{name} is not an ECDHE suite with an AEAD cipher ({protocol} Kx={kx} Au={au} Mac={mac})"
                ));
            }
        }
    }
    Ok(tls12)
}

#[test]
fn openssl_reads_the_rendered_lists_as_ecdhe_aead_suites_named_as_go_names_them() {
    let policy = TlsPolicy::anssi();
    let tmp = tempfile::tempdir().unwrap();
    let out = render(&example("baremetal.yaml"), tmp.path(), "out");
    let hosts = out.join("baremetal/hosts");
    let conf = read(&hosts.join("db1/postgresql.conf"));
    let list = conf
        .lines()
        .find_map(|l| l.strip_prefix("ssl_ciphers = '"))
        .and_then(|l| l.strip_suffix('\''))
        .unwrap();
    let names = tls12_ecdhe_aead_only(list).unwrap_or_else(|e| panic!("ssl_ciphers: {e}"));
    let web: Value = serde_saphyr::from_str(&read(&hosts.join("ops1/web.yml"))).unwrap();
    assert_eq!(
        serde_json::json!(names),
        web["tls_server_config"]["cipher_suites"],
        "the Go list names the same suites, in the same order"
    );
    assert_eq!(names.len(), 6);

    // What Postfix's SMTP server uses: the `high` grade less its exclusions, each as `!x`.
    let main_cf = read(&hosts.join("ops1/main.cf"));
    let value = |key: &str| {
        main_cf
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key} = ")))
            .unwrap()
            .to_owned()
    };
    let mut effective = value("tls_high_cipherlist");
    for x in value("smtpd_tls_exclude_ciphers")
        .split([',', ' '])
        .filter(|x| !x.is_empty())
    {
        effective.push_str(&format!(":!{x}"));
    }
    assert_eq!(
        tls12_ecdhe_aead_only(&effective),
        Ok(names),
        "Postfix: {effective}"
    );

    // the same list with an anonymous, a CBC or an RSA key exchange suite fails these checks
    for (bad, iana) in [
        ("AECDH-AES128-SHA", "TLS_ECDH_anon_WITH_AES_128_CBC_SHA"),
        (
            "ECDHE-ECDSA-AES128-SHA",
            "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        ),
        ("AES128-GCM-SHA256", "TLS_RSA_WITH_AES_128_GCM_SHA256"),
    ] {
        let list = format!("{}:{bad}:@SECLEVEL=0", policy.openssl_ciphers);
        let found = tls12_ecdhe_aead_only(&list);
        assert!(
            found.as_ref().is_err_and(|e| e.starts_with(iana)),
            "{bad} is caught: {found:?}"
        );
    }
}

/// `postconf -c DIR` with the rendered files: no warning (an unknown parameter, a bad
/// `-o` in master.cf) and the TLS values as Postfix reads them.
fn postconf_reads(dir: &Path, policy: &TlsPolicy) {
    let run = |args: &[&str]| {
        let out = Std::new("postconf")
            .arg("-c")
            .arg(dir)
            .args(args)
            .output()
            .expect("postconf is installed (apt-get install postfix; scripts/test does it)");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success() && !stderr.contains("warning"),
            "postconf {args:?}: {stderr}"
        );
        String::from_utf8(out.stdout).unwrap()
    };
    run(&["-n"]);
    if dir.join("master.cf").exists() {
        run(&["-P"]);
        run(&["-M"]);
    }
    let values = run(&[
        "-h",
        "smtpd_tls_protocols",
        "smtpd_tls_mandatory_protocols",
        "smtpd_tls_ciphers",
        "smtpd_tls_mandatory_ciphers",
        "tls_high_cipherlist",
        "tls_preempt_cipherlist",
        "smtp_tls_mandatory_protocols",
        "smtp_tls_mandatory_ciphers",
    ]);
    let floor = format!(">={}", policy.min_protocol);
    assert_eq!(
        values.lines().collect::<Vec<_>>(),
        [
            floor.as_str(),
            floor.as_str(),
            "high",
            "high",
            policy.openssl_ciphers.as_str(),
            "yes",
            floor.as_str(),
            "high"
        ],
        "{}",
        dir.display()
    );
}

#[test]
fn postconf_reads_the_rendered_postfix_settings() {
    let policy = TlsPolicy::anssi();
    let tmp = tempfile::tempdir().unwrap();
    let out = render(&example("baremetal.yaml"), tmp.path(), "baremetal");
    let dir = tmp.path().join("host");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["main.cf", "master.cf"] {
        std::fs::copy(out.join("baremetal/hosts/ops1").join(f), dir.join(f)).unwrap();
    }
    postconf_reads(&dir, &policy);

    let out = render(&example("kubernetes.yaml"), tmp.path(), "kubernetes");
    let dir = tmp.path().join("cluster");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("main.cf"),
        config_map_key(&docs(&out.join("kubernetes/postfix.yaml")), "main.cf"),
    )
    .unwrap();
    // the image's master.cf is Debian's
    std::fs::copy("/usr/share/postfix/master.cf.dist", dir.join("master.cf")).unwrap();
    postconf_reads(&dir, &policy);
}

pub(crate) fn listening(port: u16, what: &str, log: &Path) {
    eventually(Duration::from_secs(30), what, || {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .map(|_| ())
            .map_err(|e| format!("{e}\n{}", std::fs::read_to_string(log).unwrap_or_default()))
    });
}

/// A server process, stopped when the test ends (`stop` first, then killed).
pub(crate) struct Running {
    pub(crate) child: Child,
    pub(crate) stop: Option<Std>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = &mut self.stop {
            let _ = stop.output();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn spawn(cmd: &mut Std, log: &Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// A key and certificate from a platform CA (ECDSA P-256, as terroir issues them) in `dir`.
fn platform_certificate(dir: &Path, cert: &str, key: &str) {
    let ca = terroir::pki::new_ca("acme-crm").unwrap();
    let issued =
        terroir::pki::issue_server("acme-crm", &ca.key_pem, &["localhost".to_owned()], "test")
            .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(cert), issued.cert_pem).unwrap();
    std::fs::write(dir.join(key), issued.key_pem).unwrap();
}

/// An RSA key and certificate (a public certificate may be RSA) in `dir`.
fn rsa_certificate(dir: &Path, cert: &str, key: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let out = Std::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(dir.join(key))
        .arg("-out")
        .arg(dir.join(cert))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A directory the servers' unprivileged processes can enter.
pub(crate) fn open_dir(tmp: &Path, name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = tmp.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// master.cf with its public services on loopback ports and nothing chrooted (the chroot needs
/// Debian's copy of /etc files into the queue directory).
fn master_cf_on_loopback(text: &str, smtp: u16, submission: u16) -> String {
    let mut out = String::new();
    let mut found = 0;
    for line in text.lines() {
        let mut fields: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        let service = !line.starts_with([' ', '\t', '#']) && fields.len() >= 8;
        if service {
            match (fields[0].as_str(), fields[1].as_str()) {
                ("smtp", "inet") => {
                    fields[0] = format!("127.0.0.1:{smtp}");
                    found += 1;
                }
                ("submission", "inet") => {
                    fields[0] = format!("127.0.0.1:{submission}");
                    found += 1;
                }
                _ => {}
            }
            fields[4] = "n".into();
            out.push_str(&fields.join(" "));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    assert_eq!(found, 2, "smtp and submission in master.cf:\n{text}");
    out
}

#[test]
fn postfix_on_loopback_offers_anssi_tls_only_on_25_and_submission() {
    let tmp = tempfile::tempdir().unwrap();
    let out = render(&example("baremetal.yaml"), tmp.path(), "out");
    let ops = out.join("baremetal/hosts/ops1");
    let dir = open_dir(tmp.path(), "postfix");
    let conf = dir.join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    platform_certificate(&dir.join("tls"), "server.crt", "server.key");
    let (smtp, submission) = (free_port(), free_port());
    std::fs::write(
        conf.join("master.cf"),
        master_cf_on_loopback(&read(&ops.join("master.cf")), smtp, submission),
    )
    .unwrap();
    std::fs::copy(ops.join("main.cf"), conf.join("main.cf")).unwrap();
    // This machine's places instead of the host's; the TLS settings are left as rendered.
    let d = dir.display();
    let edits = [
        format!("queue_directory = {d}/queue"),
        format!("data_directory = {d}/data"),
        format!("smtpd_tls_cert_file = {d}/tls/server.crt"),
        format!("smtpd_tls_key_file = {d}/tls/server.key"),
        format!("maillog_file_prefixes = {d}"),
        format!("maillog_file = {d}/mail.log"),
        "inet_interfaces = loopback-only".into(),
        "inet_protocols = ipv4".into(),
        "alias_maps =".into(),
        "alias_database =".into(),
        "smtpd_milters =".into(),
        "non_smtpd_milters =".into(),
        "relayhost =".into(),
    ];
    let edit = Std::new("postconf")
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .args(&edits)
        .output()
        .expect("postconf is installed (apt-get install postfix; scripts/test does it)");
    assert!(
        edit.status.success(),
        "{}",
        String::from_utf8_lossy(&edit.stderr)
    );
    for d in ["queue", "data"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    common::pg::chown(&dir.join("data"), "postfix");
    let postfix = |args: &[&str]| {
        let mut c = Std::new("postfix");
        c.arg("-c").arg(&conf).args(args);
        c
    };
    let created = postfix(&["post-install", "create-missing"])
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let log = dir.join("mail.log");
    let _server = Running {
        child: spawn(&mut postfix(&["start-fg"]), &dir.join("start.log")),
        stop: Some(postfix(&["stop"])),
    };
    listening(smtp, "Postfix on the smtp port", &log);
    listening(submission, "Postfix on the submission port", &log);
    assert_anssi_tls_here(&[
        Endpoint::new(
            "Postfix (25)",
            &format!("127.0.0.1:{smtp}"),
            Start::StartTls("smtp"),
            true,
        ),
        Endpoint::new(
            "Postfix (submission)",
            &format!("127.0.0.1:{submission}"),
            Start::StartTls("smtp"),
            true,
        ),
    ]);
    let logged = read(&log);
    assert!(
        logged.contains("TLS connection established from localhost[127.0.0.1]: TLSv1.2 with cipher ECDHE-ECDSA-AES256-GCM-SHA384"),
        "Postfix logged the handshakes:\n{logged}"
    );
}

/// nginx (Debian's) with the rendered site on loopback, serving `cert`/`key` from `tls`.
fn nginx_with(site: &str, dir: &Path) -> (Running, u16) {
    let port = free_port();
    let plain = free_port();
    let tls = dir.join("tls");
    let site: String = site
        .replace("/etc/acme-crm/tls", &tls.display().to_string())
        .replace(
            "listen 443 ssl http2 default_server;",
            &format!("listen 127.0.0.1:{port} ssl http2;"),
        )
        .replace(
            "listen 80 default_server;",
            &format!("listen 127.0.0.1:{plain};"),
        )
        .lines()
        .filter(|l| !l.contains("listen [::]"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(site.contains(&format!("127.0.0.1:{port} ssl")), "{site}");
    std::fs::write(dir.join("site.conf"), &site).unwrap();
    let d = dir.display();
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    std::fs::write(
        dir.join("nginx.conf"),
        format!(
            "daemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/tmp/body;\n  proxy_temp_path {d}/tmp/proxy;\n  fastcgi_temp_path {d}/tmp/fastcgi;\n  uwsgi_temp_path {d}/tmp/uwsgi;\n  scgi_temp_path {d}/tmp/scgi;\n  include {d}/site.conf;\n}}\n"
        ),
    )
    .unwrap();
    let nginx = |extra: &[&str]| {
        let mut c = Std::new("nginx");
        c.arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .args(extra);
        c
    };
    let test = nginx(&["-t"])
        .output()
        .expect("nginx is installed (apt-get install nginx; scripts/test does it)");
    assert!(
        test.status.success(),
        "nginx -t: {}",
        String::from_utf8_lossy(&test.stderr)
    );
    let running = Running {
        child: spawn(&mut nginx(&[]), &dir.join("start.log")),
        stop: None,
    };
    listening(port, "nginx", &dir.join("error.log"));
    (running, port)
}

#[test]
fn nginx_on_loopback_offers_anssi_tls_only_with_ecdsa_and_rsa_certificates() {
    let tmp = tempfile::tempdir().unwrap();
    let out = render(&example("baremetal.yaml"), tmp.path(), "out");
    let site = read(&out.join("baremetal/hosts/app1/nginx-site.conf"));
    // the platform CA's certificate (no ACME CA), and an RSA one as an ACME CA may issue
    let ecdsa = open_dir(tmp.path(), "ecdsa");
    platform_certificate(&ecdsa.join("tls"), "public.crt", "public.key");
    let rsa = open_dir(tmp.path(), "rsa");
    rsa_certificate(&rsa.join("tls"), "public.crt", "public.key");
    let (_e, ecdsa_port) = nginx_with(&site, &ecdsa);
    let (_r, rsa_port) = nginx_with(&site, &rsa);
    assert_anssi_tls_here(&[
        Endpoint::new(
            "nginx (ECDSA certificate)",
            &format!("127.0.0.1:{ecdsa_port}"),
            Start::Direct,
            true,
        ),
        Endpoint::new(
            "nginx (RSA certificate)",
            &format!("127.0.0.1:{rsa_port}"),
            Start::Direct,
            true,
        ),
    ]);
}

#[test]
fn prometheus_and_alertmanager_on_loopback_offer_anssi_tls_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = open_dir(tmp.path(), "servers");
    let tls = dir.join("tls");
    platform_certificate(&tls, "tls.crt", "tls.key");
    let hosts_web = read(
        &render(&example("baremetal.yaml"), tmp.path(), "baremetal")
            .join("baremetal/hosts/ops1/web.yml"),
    )
    .replace(
        "/etc/acme-crm/tls/host.",
        &format!("{}/tls.", tls.display()),
    );
    let k = render(&example("kubernetes.yaml"), tmp.path(), "kubernetes").join("kubernetes");
    let cluster_web = |file: &str| {
        config_map_key(&docs(&k.join(file)), "web.yml")
            .replace("/etc/web-tls", &tls.display().to_string())
    };
    std::fs::write(dir.join("hosts-web.yml"), hosts_web).unwrap();
    std::fs::write(
        dir.join("prometheus-web.yml"),
        cluster_web("prometheus.yaml"),
    )
    .unwrap();
    std::fs::write(
        dir.join("alertmanager-web.yml"),
        cluster_web("alertmanager.yaml"),
    )
    .unwrap();
    std::fs::write(dir.join("prometheus.yml"), "global: {}\n").unwrap();
    std::fs::write(
        dir.join("alertmanager.yml"),
        "route: {receiver: none}\nreceivers: [{name: none}]\n",
    )
    .unwrap();

    let mut running = Vec::new();
    let mut endpoints = Vec::new();
    for (what, web) in [
        ("Prometheus (the hosts' web.yml)", "hosts-web.yml"),
        ("Prometheus (the cluster's web.yml)", "prometheus-web.yml"),
    ] {
        let port = free_port();
        let log = dir.join(format!("{web}.log"));
        let mut cmd = Std::new("prometheus");
        cmd.arg(format!("--config.file={}/prometheus.yml", dir.display()))
            .arg(format!("--web.config.file={}/{web}", dir.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--storage.tsdb.path={}/data-{port}", dir.display()));
        running.push(Running {
            child: spawn(&mut cmd, &log),
            stop: None,
        });
        listening(port, what, &log);
        endpoints.push(Endpoint::new(
            what,
            &format!("127.0.0.1:{port}"),
            Start::Direct,
            false,
        ));
    }
    let port = free_port();
    let log = dir.join("alertmanager.log");
    let mut cmd = Std::new("prometheus-alertmanager");
    cmd.arg(format!("--config.file={}/alertmanager.yml", dir.display()))
        .arg(format!(
            "--web.config.file={}/alertmanager-web.yml",
            dir.display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .arg(format!("--storage.path={}/am-data", dir.display()));
    running.push(Running {
        child: spawn(&mut cmd, &log),
        stop: None,
    });
    listening(port, "Alertmanager", &log);
    endpoints.push(Endpoint::new(
        "Alertmanager (the cluster's web.yml)",
        &format!("127.0.0.1:{port}"),
        Start::Direct,
        false,
    ));
    assert_anssi_tls_here(&endpoints);
}
