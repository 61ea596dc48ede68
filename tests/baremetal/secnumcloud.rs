//! SecNumCloud targets: the policy gate on Terraform plans (JSON in Terraform's documented
//! format) and on the state backend, and the driver with the real `terraform` binary: init, plan,
//! show, gate, apply of the saved plan, and the outputs handed to the bare-metal driver, which
//! deploys the platform on the test host the module "created". The state goes to an S3 server
//! started on the loopback interface (moto), as it would go to the client's bucket.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::hosts::TestHosts;
use common::*;
use serde_json::Value;

fn geodata() -> PathBuf {
    root().join("../shared/geodata")
}

fn verify(doc: &Path, plan: &str) -> (i32, Value) {
    let out = terroir()
        .args(["verify", "--output", "json", "--no-dns", "--geodata"])
        .arg(geodata())
        .arg(doc)
        .args([
            "--plan-json",
            &root()
                .join("tests/locality/plans")
                .join(plan)
                .display()
                .to_string(),
        ])
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
    )
}

fn finding<'a>(report: &'a Value, subject: &str) -> Vec<&'a Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["subject"] == subject)
        .collect()
}

#[test]
fn the_gate_judges_every_resource_and_the_state_backend() {
    let doc = example("secnumcloud-outscale.yaml");
    // Providers configured inside the module: their region is followed from the module call to
    // the root variable. Every resource is in Outscale's qualified region: passes.
    let (code, report) = verify(&doc, "module-cloudgouv.json");
    assert_eq!(code, 0, "{report:#}");
    let vm = finding(
        &report,
        "resource module.platform.outscale_vm.this[\"db1\"]",
    );
    assert_eq!(vm.len(), 1, "{report:#}");
    assert_ne!(vm[0]["verdict"], "fail", "{}", vm[0]);
    assert!(
        vm[0]["evidence"]
            .as_str()
            .unwrap()
            .contains("region cloudgouv-eu-west-1"),
        "{}",
        vm[0]
    );
    let q = finding(
        &report,
        "resource module.platform.outscale_vm.this[\"db1\"]: SecNumCloud",
    );
    assert_ne!(q[0]["verdict"], "fail", "{}", q[0]);
    // Terraform's own resources are not places
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| !f["subject"].as_str().unwrap().contains("terraform_data"))
    );
    // the document's backend (Outscale object storage in the same region) passes
    let b = finding(&report, "Terraform state backend (s3)");
    assert_eq!(b[0]["verdict"], "pass", "{}", b[0]);

    // The same VMs in Outscale's eu-west-2: in France, but not a qualified offer: refused under
    // a SecNumCloud policy, resource by resource, with the address named.
    let (code, report) = verify(&doc, "module-eu-west-2.json");
    assert_eq!(code, 2, "{report:#}");
    for vm in ["db1", "app1"] {
        let q = finding(
            &report,
            &format!("resource module.platform.outscale_vm.this[\"{vm}\"]: SecNumCloud"),
        );
        assert_eq!(q[0]["verdict"], "fail", "{}", q[0]);
        assert!(
            q[0]["observed"].as_str().unwrap().contains("eu-west-2"),
            "{}",
            q[0]
        );
    }
    // ...and without the SecNumCloud requirement the same plan passes (it is in France).
    let tmp = tempfile::tempdir().unwrap();
    let relaxed = variant(
        "secnumcloud-outscale.yaml",
        tmp.path(),
        "relaxed.yaml",
        |t| t.replace("      requiredQualifications: [secnumcloud]\n", ""),
    );
    let (code, report) = verify(&relaxed, "module-eu-west-2.json");
    assert_eq!(code, 0, "{report:#}");

    // A resource in a US region is refused (the address named).
    let (code, report) = verify(&doc, "outscale-us-region.json");
    assert_eq!(code, 2);
    assert_eq!(
        finding(&report, "resource outscale_vm.replica")[0]["verdict"],
        "fail"
    );

    // A state backend outside the allowed countries is refused: Amazon S3 in us-east-1.
    let us = variant(
        "secnumcloud-outscale.yaml",
        tmp.path(),
        "us-backend.yaml",
        |t| {
            t.replace(
                "endpoint: https://oos.cloudgouv-eu-west-1.outscale.com",
                "endpoint: https://s3.us-east-1.amazonaws.com",
            )
            .replace(
                "        region: cloudgouv-eu-west-1\n  components:",
                "        region: us-east-1\n  components:",
            )
        },
    );
    let (code, report) = verify(&us, "module-cloudgouv.json");
    assert_eq!(code, 2, "{report:#}");
    let b = finding(&report, "Terraform state backend (s3)");
    assert_eq!(b[0]["verdict"], "fail", "{}", b[0]);
    assert!(
        b[0]["observed"].as_str().unwrap().starts_with("US"),
        "{}",
        b[0]
    );
}

/// An S3 server on the loopback interface (moto's server mode), stopped when dropped.
struct S3 {
    child: std::process::Child,
    port: u16,
}

impl S3 {
    fn start() -> S3 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 -m moto.server (scripts/test installs moto)");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "moto did not start"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        S3 { child, port }
    }
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    /// An object's content, read with credentials (boto3, which moto ships with).
    fn object(&self, bucket: &str, key: &str) -> Option<String> {
        let script = "import sys, boto3\ntry:\n  c = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1')\n  sys.stdout.write(c.get_object(Bucket=sys.argv[2], Key=sys.argv[3])['Body'].read().decode())\nexcept c.exceptions.NoSuchKey:\n  sys.exit(3)\n";
        let out = std::process::Command::new("python3")
            .args(["-c", script, &self.url(), bucket, key])
            .output()
            .unwrap();
        match out.status.code() {
            Some(0) => Some(String::from_utf8_lossy(&out.stdout).into_owned()),
            Some(3) => None,
            _ => panic!(
                "reading s3://{bucket}/{key}: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }
    fn request(&self, method: &str, path: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
        )
        .unwrap();
        let mut r = String::new();
        s.read_to_string(&mut r).unwrap();
        (
            r.split_whitespace().nth(1).unwrap().parse().unwrap(),
            r.split_once("\r\n\r\n")
                .map(|x| x.1.to_owned())
                .unwrap_or_default(),
        )
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A provider module with the common interface made of Terraform's built-in resources only:
/// it "creates" the VMs as terraform_data and outputs the test host as their address.
fn stub_module(dir: &Path, address: &str) -> PathBuf {
    let m = dir.join("modules/outscale");
    std::fs::create_dir_all(&m).unwrap();
    std::fs::write(
        m.join("main.tf"),
        format!(
            r#"variable "name" {{ type = string }}
variable "region" {{ type = string }}
variable "network_cidr" {{ type = string }}
variable "vms" {{
  type = map(object({{ instance_type = string, roles = list(string), disk_gb = number }}))
}}
variable "kubernetes" {{
  type    = object({{ version = string, node_count = number, node_type = string }})
  default = null
}}
variable "backup_bucket" {{ type = string }}
variable "ssh_user" {{ type = string }}
variable "ssh_public_key" {{ type = string }}
variable "admin_cidrs" {{ type = list(string) }}
variable "public_ports" {{ type = list(number) }}

resource "terraform_data" "vm" {{
  for_each = var.vms
  input = {{ name = "${{var.name}}-${{each.key}}", type = each.value.instance_type, key = var.ssh_public_key }}
}}

output "hosts" {{
  value = {{ for n, vm in var.vms : n => {{ address = "{address}", private_address = "{address}", roles = vm.roles, id = terraform_data.vm[n].id }} }}
}}
output "kubeconfig" {{
  value     = null
  sensitive = true
}}
output "backup_bucket" {{ value = var.backup_bucket }}
output "backup_endpoint" {{ value = "" }}
output "qualified" {{ value = var.region == "cloudgouv-eu-west-1" }}
"#
        ),
    )
    .unwrap();
    dir.join("modules")
}

#[test]
fn apply_drives_terraform_through_the_gate_and_hands_the_vms_to_the_bare_metal_driver() {
    // a host of its own, with the packages installed: Terraform hands it over to the bare-metal
    // driver (another platform's application on it would hold the same port)
    let hosts = TestHosts::installed(1);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let s3 = S3::start();
    assert_eq!(
        s3.request("PUT", "/collectivite-grc-tfstate").0,
        200,
        "bucket created"
    );

    // the smoke application as the release: the example's application starts as bin/app
    let (archive, sha) = smoke_release(dir, "app");

    let doc = variant("secnumcloud-outscale.yaml", dir, "platform.yaml", |t| {
        let start = t.find("      vms:\n").unwrap();
        let end = t.find("      ssh:\n").unwrap();
        let t = format!(
            "{}      vms:\n        - name: cloud1\n          instanceType: tinav6.c4r16p1\n          roles: [database, mta, monitoring, app]\n{}",
            &t[..start],
            &t[end..]
        );
        without_public_name(&t)
            .replace(
                "identityFile: ~/.ssh/terroir_ed25519",
                &format!("identityFile: {}", hosts.identity().display()),
            )
            .replace(
                "knownHostsFile: ./known_hosts",
                &format!("knownHostsFile: {}", hosts.known_hosts().display()),
            )
            .replace(
                "url: https://releases.collectivite.example.fr/grc/grc-2.8.0-linux-amd64.tar.gz",
                &format!("url: file://{}", archive.display()),
            )
            .replace(
                "sha256: 9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b",
                &format!("sha256: {sha}"),
            )
            // backups need an S3 endpoint the test host can reach: tested in tests/baremetal/backups.rs
            .replace(
                "  sovereignty:\n",
                "    backups:\n      enabled: false\n  sovereignty:\n",
            )
    });
    let modules = stub_module(dir, "198.18.0.11");
    let run = |cmd: &str| {
        terroir()
            .arg(cmd)
            .arg(&doc)
            .args(["--tf-binary", "terraform", "--modules"])
            .arg(&modules)
            .arg("--backend-config")
            .arg(format!("endpoints={{s3=\"{}\"}}", s3.url()))
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("TF_CLI_CONFIG_FILE", "/dev/null")
            .timeout(Duration::from_secs(1500))
            .output()
            .unwrap()
    };

    // plan: init, plan, show, the gate; nothing is created
    let out = run("plan");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("+ module.platform.terraform_data.vm[\"cloud1\"] (create)"),
        "{stdout}"
    );
    assert!(stdout.contains("0 failed"), "{stdout}");
    let work = dir.join(".terroir/collectivite-grc/terraform");
    assert!(work.join("terroir.tfplan").is_file());
    assert!(
        work.join("modules/outscale/main.tf").is_file(),
        "the module given with --modules is used"
    );
    let tfvars: Value = serde_json::from_str(
        &std::fs::read_to_string(work.join("terroir.auto.tfvars.json")).unwrap(),
    )
    .unwrap();
    assert!(
        tfvars["ssh_public_key"]
            .as_str()
            .unwrap()
            .starts_with("ssh-ed25519 "),
        "the document's public key goes to the VMs"
    );
    assert_eq!(
        s3.object("collectivite-grc-tfstate", "terroir/terraform.tfstate"),
        None,
        "plan writes no state"
    );

    // apply: the saved plan, then the outputs to the bare-metal driver, which deploys the platform
    let out = run("apply");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("terraform apply -input=false -no-color -lock-timeout=60s terroir.tfplan"),
        "exactly the saved plan is applied: {stderr}"
    );
    assert!(
        stdout.contains("cloud1") && stdout.contains("198.18.0.11"),
        "the bare-metal driver converged the VM: {stdout}"
    );
    // the state is in the client's bucket, and lists the VM
    let state = s3
        .object("collectivite-grc-tfstate", "terroir/terraform.tfstate")
        .expect("the state is in the bucket");
    assert!(
        state.contains("terraform_data") && state.contains("collectivite-grc-cloud1"),
        "{state}"
    );
    // the platform works on the host Terraform handed over
    let start = Instant::now();
    loop {
        let ok = std::net::TcpStream::connect_timeout(
            &"198.18.0.11:8080".parse().unwrap(),
            Duration::from_secs(2),
        )
        .is_ok();
        if ok {
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let out = std::process::Command::new(root().join("tests/hosts/hostctl"))
                .args(["exec", "h1", "sh", "-c", "ls /etc/init.d; tail -n 5 /var/log/*app*.log; nft list ruleset | grep dport; ss -ltn"])
                .output()
                .unwrap();
            panic!(
                "the app on the provisioned host does not answer:\n{}\n{stdout}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }

    // a second plan changes nothing
    let out = run("plan");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("0 changes in the plan"), "{stdout}");
    drop(hosts);
}

#[test]
fn a_missing_terraform_binary_is_named() {
    let out = terroir()
        .args(["plan"])
        .arg(example("secnumcloud-outscale.yaml"))
        .args(["--tf-binary", "/nonexistent/tofu"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--tf-binary /nonexistent/tofu: no such file"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = terroir()
        .args(["plan"])
        .arg(example("secnumcloud-outscale.yaml"))
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("neither `tofu` nor `terraform` is on PATH"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
