//! Test hosts for integration tests, brought up by tests/hosts/hostctl. Hosts share one bridge and
//! fixed addresses, so tests that use them run one at a time on the machine: a process-wide lock
//! for the threads of one test binary, and a file lock for the test processes running beside it
//! (nextest runs each test in a process of its own).
//!
//! Deploying the platform takes most of a host test's time, so hosts can outlive a test, for the
//! next test (in this process or a later one) that asks for them by name, unless another test
//! brought hosts up meanwhile:
//! - `TestHosts::up(n)`: n fresh hosts, taken down when dropped, even when the test fails; or,
//!   after `hand_over(name)`, left up as `name` when the test ends well.
//! - `TestHosts::installed(n)`: the same with the platform's packages already installed
//!   (`hostctl up N --installed`), for the tests that deploy but do not test installing: their
//!   first apply configures, as a re-apply on a host with the packages would.
//! - `TestHosts::take_over(name, n)`: the hosts a test handed over as `name`, else fresh ones, for
//!   a test that goes on from there with an apply of its own.
//! - `TestHosts::deployed(name, n, deploy)`: n hosts on which `deploy` ran once, shared by the
//!   tests that check independent things on them: each leaves them as it found them.
//!
//! A test that fails or is killed leaves its hosts to be brought up anew. Hosts left up after the
//! last test are removed by `hostctl down` (scripts/test) or the next `hostctl up`.

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
    /// What to leave the hosts as, when the test ends well; taken down otherwise.
    leave_as: Option<String>,
    _machine: std::fs::File,
    _guard: MutexGuard<'static, ()>,
}

fn machine_lock() -> std::fs::File {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(MACHINE_LOCK)
        .expect("the test hosts' lock file opens");
    // SAFETY: flock on a file descriptor this function owns; blocks until the lock is free.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(
        rc,
        0,
        "flock {MACHINE_LOCK}: {}",
        std::io::Error::last_os_error()
    );
    file
}

fn hostctl() -> Command {
    Command::new(super::root().join("tests/hosts/hostctl"))
}

/// Run `script` as root on test host `h`: whether it succeeded, and what it wrote (its output,
/// then its errors).
pub fn try_on(h: &str, script: &str) -> (bool, String) {
    let out = hostctl()
        .args(["exec", h, "sh", "-c", &format!("cd / && {script}")])
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Run `script` as root on test host `h`: its output, or a panic with what the host said.
pub fn on(h: &str, script: &str) -> String {
    let out = hostctl()
        .args(["exec", h, "sh", "-c", &format!("cd / && {script}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{h}: {script}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn state_dir() -> PathBuf {
    PathBuf::from(
        std::env::var("TERROIR_HOSTS_STATE").unwrap_or_else(|_| "/run/terroir-test-hosts".into()),
    )
}

/// What the running hosts were left as, if anything: written when a test using them ends well,
/// removed while one uses them, gone with the hosts (hostctl removes the whole state).
fn marker(state: &Path) -> PathBuf {
    state.join("left-as")
}

/// A new build of terroir deploys anew: the hosts must run what is tested.
fn key(name: &str, n: usize) -> String {
    format!(
        "{name} {n} {}",
        super::build_identity(&assert_cmd::cargo::cargo_bin("terroir"))
    )
}

impl TestHosts {
    pub fn up(n: usize) -> TestHosts {
        let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let machine = machine_lock();
        TestHosts::bring_up(n, false, machine, guard)
    }

    /// `n` fresh hosts with the platform's packages installed (tests/hosts/platform-packages).
    pub fn installed(n: usize) -> TestHosts {
        let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let machine = machine_lock();
        TestHosts::bring_up(n, true, machine, guard)
    }

    fn bring_up(
        n: usize,
        installed: bool,
        machine: std::fs::File,
        guard: MutexGuard<'static, ()>,
    ) -> TestHosts {
        let mut up = hostctl();
        up.arg("up").arg(n.to_string());
        if installed {
            up.arg("--installed");
        }
        let out = up.output().expect("tests/hosts/hostctl runs");
        assert!(
            out.status.success(),
            "hostctl up {n} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let hosts = TestHosts {
            n,
            state: state_dir(),
            leave_as: None,
            _machine: machine,
            _guard: guard,
        };
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(hosts.dir())
            .unwrap();
        hosts
    }

    /// The hosts a test handed over as `name`, with their `dir()` as it left it, for this test to
    /// go on from there (its own apply then mostly configures: the packages are in); fresh hosts
    /// with the packages installed when there are none.
    pub fn take_over(name: &str, n: usize) -> TestHosts {
        let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let machine = machine_lock();
        let state = state_dir();
        if std::fs::read_to_string(marker(&state)).is_ok_and(|k| k == key(name, n)) {
            std::fs::remove_file(marker(&state)).unwrap();
            return TestHosts {
                n,
                state,
                leave_as: None,
                _machine: machine,
                _guard: guard,
            };
        }
        TestHosts::bring_up(n, true, machine, guard)
    }

    /// `n` hosts on which `deploy` ran (given the hosts, whose `dir()` is empty then), once for
    /// every test asking for `name`: each test leaves them as it found them.
    pub fn deployed(name: &str, n: usize, deploy: impl FnOnce(&TestHosts)) -> TestHosts {
        let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let machine = machine_lock();
        let state = state_dir();
        let mut hosts = if std::fs::read_to_string(marker(&state)).is_ok_and(|k| k == key(name, n))
        {
            std::fs::remove_file(marker(&state)).unwrap();
            TestHosts {
                n,
                state,
                leave_as: None,
                _machine: machine,
                _guard: guard,
            }
        } else {
            let hosts = TestHosts::bring_up(n, true, machine, guard);
            deploy(&hosts);
            hosts
        };
        hosts.hand_over(name);
        hosts
    }

    /// Leave the hosts up as `name` when the test ends well, for the next test that asks for them.
    pub fn hand_over(&mut self, name: &str) {
        self.leave_as = Some(key(name, self.n));
    }

    /// A directory that lives as long as the hosts: for the documents applied to them and their
    /// secret stores, which a test taking the hosts over goes on with.
    pub fn dir(&self) -> PathBuf {
        self.state.join("documents")
    }

    pub fn addresses(&self) -> Vec<String> {
        (1..=self.n)
            .map(|i| format!("198.18.0.{}", 10 + i))
            .collect()
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
        match &self.leave_as {
            Some(key) if !std::thread::panicking() => {
                let _ = std::fs::write(marker(&self.state), key);
            }
            // left up for a look at what failed; the next test brings up its own
            Some(_) => {}
            None => {
                let _ = hostctl().arg("down").status();
            }
        }
    }
}
