//! Test hosts for integration tests, brought up by tests/hosts/hostctl. Hosts share one bridge and
//! fixed addresses, so tests that use them run one at a time on the machine: a process-wide lock
//! for the threads of one test binary, and a file lock for the test processes running beside it
//! (nextest runs each test in a process of its own).
//!
//! - `TestHosts::up(n)`: n fresh hosts, taken down when dropped, even when the test fails.
//! - `TestHosts::deployed(name, n, deploy)`: n hosts on which `deploy` ran once. Deploying the
//!   platform takes most of a host test's time, so the next test that asks for the same `name`
//!   (in this process or a later one) gets the hosts as the previous one left them, unless another
//!   test brought hosts up meanwhile. Such tests leave the hosts as they found them; one that
//!   fails or is killed leaves them to be deployed anew. Shared hosts stay up after the last test
//!   (`hostctl down`, or the next `hostctl up`, removes them).

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

static LOCK: Mutex<()> = Mutex::new(());

/// Held while hosts are in use: released by the kernel when the process ends, however it ends.
const MACHINE_LOCK: &str = "/run/terroir-test-hosts.lock";

pub struct TestHosts {
    n: usize,
    state: PathBuf,
    /// For shared hosts: the deployment's key, put back when the test ends well.
    shared: Option<String>,
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

fn state_dir() -> PathBuf {
    PathBuf::from(std::env::var("TERROIR_HOSTS_STATE").unwrap_or_else(|_| "/run/terroir-test-hosts".into()))
}

/// Which deployment the running hosts carry, if any: written when a test using them ends well,
/// removed while one uses them, gone with the hosts.
fn marker(state: &Path) -> PathBuf {
    state.join("deployment.key")
}

fn bring_up(n: usize) {
    let out = hostctl().arg("up").arg(n.to_string()).output().expect("tests/hosts/hostctl runs");
    assert!(out.status.success(), "hostctl up {n} failed:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

impl TestHosts {
    pub fn up(n: usize) -> TestHosts {
        let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let machine = machine_lock();
        bring_up(n);
        TestHosts { n, state: state_dir(), shared: None, _machine: machine, _guard: guard }
    }

    /// `n` hosts on which `deploy` ran (given the hosts and an empty directory that lives as long
    /// as they do, for the document and its secret store), and that directory.
    pub fn deployed(name: &str, n: usize, deploy: impl FnOnce(&TestHosts, &Path)) -> (TestHosts, PathBuf) {
        let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let machine = machine_lock();
        let state = state_dir();
        // a new build of terroir deploys anew: the hosts must run what is tested
        let key = format!("{name} {n} {}", super::build_identity(&assert_cmd::cargo::cargo_bin("terroir")));
        let dir = state.join("deployment");
        let hosts = TestHosts { n, state: state.clone(), shared: Some(key.clone()), _machine: machine, _guard: guard };
        if std::fs::read_to_string(marker(&state)).is_ok_and(|k| k == key) {
            std::fs::remove_file(marker(&state)).unwrap();
            return (hosts, dir);
        }
        bring_up(n);
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
        deploy(&hosts, &dir);
        (hosts, dir)
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
        match &self.shared {
            None => {
                let _ = hostctl().arg("down").status();
            }
            Some(key) if !std::thread::panicking() => {
                let _ = std::fs::write(marker(&self.state), key);
            }
            Some(_) => {}
        }
    }
}

/// The machine's hosts for a program that brings them up and down itself (a benchmark script):
/// no test uses hosts while it is held.
pub struct HostsLock {
    _machine: std::fs::File,
    _guard: MutexGuard<'static, ()>,
}

pub fn lock() -> HostsLock {
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    HostsLock { _machine: machine_lock(), _guard: guard }
}
