//! An S3-compatible server for the tests: moto's server mode, behind a TLS front with the test's
//! own certificate, on loopback or inside a test host's network namespace.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// moto's S3 server behind a TLS front, both stopped when dropped.
pub struct Moto(pub Vec<Child>);

impl Drop for Moto {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// moto serves TLS itself, but closes each connection without TLS's close_notify, which
/// OpenSSL 3 (pgBackRest) reports as an error: this front ends every connection properly.
pub const TLS_FRONT: &str = r#"
import select, socket, ssl, sys, threading
host, port, upstream, cert, key = sys.argv[1:6]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
server = socket.create_server((host, int(port)))
def handle(raw):
    try:
        tls = ctx.wrap_socket(raw, server_side=True)
        up = socket.create_connection(("127.0.0.1", int(upstream)))
    except OSError:
        raw.close()
        return
    try:
        while True:
            ready, _, _ = select.select([tls, up], [], [], 600)
            if not ready:
                break
            if tls in ready or tls.pending():
                data = tls.recv(65536)
                if not data:
                    break
                up.sendall(data)
                while tls.pending():
                    up.sendall(tls.recv(65536))
            if up in ready:
                data = up.recv(65536)
                if not data:
                    tls.unwrap()
                    break
                tls.sendall(data)
    except OSError:
        pass
    for s in (tls, up):
        try:
            s.close()
        except OSError:
            pass
while True:
    conn, _ = server.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
"#;

/// A self-signed certificate for moto's address (it is its own CA): (certificate, key) paths.
/// pgBackRest matches the endpoint against DNS names only: the address is one too.
pub fn certificate(dir: &Path, address: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("s3.crt"), dir.join("s3.key"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={address}"),
        ])
        .args([
            "-addext",
            &format!("subjectAltName=IP:{address},DNS:{address}"),
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// Run Python with boto3 against `endpoint` (https://address:port): `script` gets `s3`, a client
/// trusting `ca`.
pub fn boto3(endpoint: &str, region: &str, ca: &Path, script: &str) -> Result<String, String> {
    let program = format!(
        "import boto3, sys\ns3 = boto3.client('s3', endpoint_url='{endpoint}', region_name='{region}', aws_access_key_id='test-access', aws_secret_access_key='test-secret', verify={ca:?})\n{script}",
        ca = ca.display().to_string()
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(program)
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// moto on `backend` behind the TLS front on `address:port`, run through `prefix` (for example
/// `ip netns exec NAME`, or nothing), with `bucket` made in `region`: the server and the
/// front's certificate (its own CA).
pub fn start(
    dir: &Path,
    prefix: &[&str],
    address: &str,
    port: u16,
    backend: u16,
    bucket: &str,
    region: &str,
) -> (Moto, PathBuf) {
    let (cert, key) = certificate(dir, address);
    let run = |args: &[&str]| -> Command {
        let all: Vec<&str> = prefix.iter().chain(args.iter()).copied().collect();
        let mut c = Command::new(all[0]);
        c.args(&all[1..]);
        c
    };
    let moto_server = run(&["moto_server", "-H", "127.0.0.1", "-p", &backend.to_string()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("moto.log")).unwrap())
        .spawn()
        .unwrap();
    let mut moto = Moto(vec![moto_server]);
    let front = run(&[
        "python3",
        "-c",
        TLS_FRONT,
        address,
        &port.to_string(),
        &backend.to_string(),
    ])
    .arg(&cert)
    .arg(&key)
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(dir.join("tls-front.log")).unwrap())
    .spawn()
    .unwrap();
    moto.0.push(front);
    let at = format!("{address}:{port}");
    super::eventually(Duration::from_secs(60), "moto listening", || {
        std::net::TcpStream::connect_timeout(&at.parse().unwrap(), Duration::from_secs(1))
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    // moto itself may still be starting behind the front
    let endpoint = format!("https://{at}");
    super::eventually(Duration::from_secs(60), "the bucket created", || {
        boto3(&endpoint, region, &cert, &format!("s3.create_bucket(Bucket='{bucket}', CreateBucketConfiguration={{'LocationConstraint': '{region}'}})")).map(|_| ())
    });
    (moto, cert)
}

/// An acme example's backup endpoint pointed at the S3 server on `at` (address:port), trusting
/// `ca_pem`.
pub fn backups_into(t: &str, at: &str, bucket: &str, region: &str, ca_pem: &str) -> String {
    let ca_block: String = ca_pem.lines().map(|l| format!("        {l}\n")).collect();
    t.replace(
        "      url: https://s3.rbx.io.cloud.ovh.net\n      bucket: acme-crm-backups\n      region: rbx\n",
        &format!("      url: https://{at}\n      bucket: {bucket}\n      region: {region}\n      caCertificate: |\n{ca_block}"),
    )
}

/// The S3 keys, the user's to give, written into platform `name`'s secret store beside `dir`'s
/// documents (directories 0700, files 0600), as `terroir secrets set` would.
pub fn give_keys(dir: &Path, name: &str) {
    use std::os::unix::fs::PermissionsExt;
    let store = dir.join(".terroir").join(name).join("secrets");
    std::fs::create_dir_all(&store).unwrap();
    for d in [
        dir.join(".terroir"),
        dir.join(".terroir").join(name),
        store.clone(),
    ] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    for (secret, value) in [
        ("backup-s3-access-key", "test-access"),
        ("backup-s3-secret-key", "test-secret"),
    ] {
        std::fs::write(store.join(secret), value).unwrap();
        std::fs::set_permissions(store.join(secret), std::fs::Permissions::from_mode(0o600))
            .unwrap();
    }
}

/// moto on loopback over plain HTTP, with `bucket` made: the server, and its endpoint
/// (`http://127.0.0.1:PORT`). Terraform's S3 backend keeps its state there as in a client's bucket.
pub fn plain(dir: &Path, bucket: &str) -> (Moto, String) {
    let port = super::free_port();
    let server = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("moto.log")).unwrap())
        .spawn()
        .expect("moto_server (scripts/test installs moto)");
    let moto = Moto(vec![server]);
    let endpoint = format!("http://127.0.0.1:{port}");
    super::eventually(Duration::from_secs(60), "the bucket created", || {
        let out = Command::new("python3")
            .arg("-c")
            .arg(format!("import boto3\nboto3.client('s3', endpoint_url='{endpoint}', region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test').create_bucket(Bucket='{bucket}')"))
            .output()
            .unwrap();
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    });
    (moto, endpoint)
}
