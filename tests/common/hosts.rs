//! Test hosts for integration tests: `TestHosts::up(n)` brings up n hosts with tests/hosts/hostctl
//! and takes them down when dropped, even when the test fails. Hosts share one bridge and fixed
//! addresses, so tests that use them run one at a time on the machine: a process-wide lock for
//! the threads of one test binary, and a file lock for the test binaries running beside it.

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

static LOCK: Mutex<()> = Mutex::new(());

/// Held while hosts are up: released by the kernel when the process ends, however it ends.
const MACHINE_LOCK: &str = "/run/terroir-test-hosts.lock";

pub struct TestHosts {
    n: usize,
    state: PathBuf,
    _machine: std::fs::File,
    _guard: MutexGuard<'static, ()>,
}

fn machine_lock() -> std::fs::File {
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(MACHINE_LOCK).expect("the test hosts' lock file opens");
    // SAFETY: flock on a file descriptor this function owns; blocks until the lock is free.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock {MACHINE_LOCK}: {}", std::io::Error::last_os_error());
    file
}

fn hostctl() -> Command {
    Command::new(super::root().join("tests/hosts/hostctl"))
}

impl TestHosts {
    pub fn up(n: usize) -> TestHosts {
        let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let machine = machine_lock();
        let out = hostctl().arg("up").arg(n.to_string()).output().expect("tests/hosts/hostctl runs");
        assert!(out.status.success(), "hostctl up {n} failed:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let state = PathBuf::from(std::env::var("TERROIR_HOSTS_STATE").unwrap_or_else(|_| "/run/terroir-test-hosts".into()));
        TestHosts { n, state, _machine: machine, _guard: guard }
    }

    pub fn addresses(&self) -> Vec<String> {
        (1..=self.n).map(|i| format!("198.18.0.{}", 10 + i)).collect()
    }

    pub fn identity(&self) -> PathBuf {
        self.state.join("id_ed25519")
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.state.join("known_hosts")
    }
}

impl Drop for TestHosts {
    fn drop(&mut self) {
        let _ = hostctl().arg("down").status();
    }
}
