//! The benchmark scripts (benches/*.sh) in their quick mode: fewest hosts, one run, with the
//! binary under test. They check that each benchmark ran to its end, never how fast: a benchmark
//! that no longer runs fails here, not on the day someone wants its figures.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::root;

fn quick(script: &str, hosts_up: bool) -> String {
    let mut cmd = std::process::Command::new(root().join("benches").join(script));
    cmd.arg("--quick")
        .env("TERROIR_BIN", assert_cmd::cargo::cargo_bin("terroir"));
    if hosts_up {
        cmd.env("TERROIR_BENCH_HOSTS_UP", "1");
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "benches/{script} --quick failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn render_cli() {
    let out = quick("render-cli.sh", false);
    assert_eq!(
        out.matches("Benchmark 1:").count(),
        3,
        "one timing per example: {out}"
    );
    assert!(out.contains("render benchmark (quick): ran"), "{out}");
}

/// The scripts on test hosts the test brings up, or takes over from another test
/// (common/deployments.rs): their packages are in, so a quick mode costs its checks rather than
/// another whole deploy.
mod on_test_hosts {
    use super::*;
    use common::deployments::AFTER_THE_APPLY;
    use common::hosts::TestHosts;

    #[test]
    fn baremetal_noop() {
        let _hosts = TestHosts::take_over(AFTER_THE_APPLY, 3);
        let out = quick("baremetal-noop.sh", true);
        assert!(
            out.contains("terroir: converged, 0 changed on 3 hosts"),
            "{out}"
        );
        assert!(
            out.contains("no-op on 3 hosts: terroir apply ")
                && out.contains(" s, pyinfra ")
                && out.contains(" s, ansible-playbook --check "),
            "all three tools timed: {out}"
        );
    }

    #[test]
    fn export() {
        // fresh hosts: a restore into the backups test's destination waited forever on its SSH
        // session (terroir restore --replace, once that host had restored a backup)
        let _hosts = TestHosts::installed(2);
        let out = quick("export.sh", true);
        assert!(
            out.contains("terroir export / on-host baseline:")
                && out.contains("terroir restore into a second host:"),
            "{out}"
        );
        assert!(out.contains("export benchmark (quick): ran"), "{out}");
    }
}
