//! Converge: make the diff's changes on one host, in order, and report each one.
//!
//! Plan reports them and changes nothing (it downloads nothing either). Apply runs each change's
//! script as root; a failed script fails its step, not the host, except the packages, on which
//! everything after depends. A service restarts only when a change restarting it was made.

use std::collections::BTreeSet;

use super::diff::{Change, Input, Status, Unless};
use super::report::{HostReport, Progress, StepStatus};
use super::ssh::{Connection, Output, SshError};
use crate::deploy::Mode;
use crate::text::{error_chain, sha256_hex};

/// Where changes are made: a shell as root on one host.
pub trait RootShell {
    fn sudo(&self, script: &str, stdin: Option<&[u8]>) -> Result<Output, SshError>;
}

impl RootShell for Connection {
    fn sudo(&self, script: &str, stdin: Option<&[u8]>) -> Result<Output, SshError> {
        Connection::sudo(self, script, stdin)
    }
}

/// Make `changes` on `host` through `shell`, pushing each outcome to `report` and `progress`.
/// An error of the session itself (not of a script) stops the host and is returned.
pub fn execute(
    shell: &dyn RootShell,
    changes: Vec<Change<'_>>,
    mode: Mode,
    report: &mut HostReport,
    progress: &dyn Progress,
) -> Result<(), SshError> {
    // services a made change restarts (in plan: a change that would be made)
    let mut restarted: BTreeSet<String> = BTreeSet::new();
    for change in changes {
        let change = settle(shell, change, mode, report.changed > 0, &restarted)?;
        let (status, detail) = make(shell, &change, mode, &mut restarted)?;
        report.push(change.id, status, detail);
        if let Some(step) = report.steps.last() {
            progress.step(&report.name, step);
        }
        if let (StepStatus::Failed, Some(why)) = (status, change.stops_host) {
            report.error = Some(format!("stopped: {why}"));
            break;
        }
    }
    Ok(())
}

/// The change to make, once its condition is settled by what this run has done so far.
fn settle<'a>(
    shell: &dyn RootShell,
    mut change: Change<'a>,
    mode: Mode,
    host_changed: bool,
    restarted: &BTreeSet<String>,
) -> Result<Change<'a>, SshError> {
    let instead = match change.unless.take() {
        None => return Ok(change),
        Some(Unless::CheckFails { check, instead }) => {
            let still_done = mode == Mode::Plan || !host_changed || shell.sudo(&check, None)?.ok();
            if still_done {
                return Ok(change);
            }
            instead
        }
        Some(Unless::CheckPasses { check, instead }) => {
            let done_meanwhile =
                mode == Mode::Apply && host_changed && shell.sudo(&check, None)?.ok();
            if !done_meanwhile {
                return Ok(change);
            }
            instead
        }
        Some(Unless::NotRestarted { service, instead }) => {
            if restarted.contains(service) {
                return Ok(change);
            }
            instead
        }
    };
    settle(shell, *instead, mode, host_changed, restarted)
}

/// Make one change: its status and detail for the report.
fn make(
    shell: &dyn RootShell,
    change: &Change<'_>,
    mode: Mode,
    restarted: &mut BTreeSet<String>,
) -> Result<(StepStatus, String), SshError> {
    let detail = change.detail.clone();
    let action = match (change.status, &change.action, mode) {
        (Status::Unchanged, _, _) => return Ok((StepStatus::Unchanged, detail)),
        (Status::Failed, _, _) => return Ok((StepStatus::Failed, detail)),
        (Status::WouldChange, action, Mode::Plan) => {
            restarted.extend(action.iter().flat_map(|a| a.restarts.iter().cloned()));
            return Ok((StepStatus::Changed, detail));
        }
        // the diff gives every change of an apply its action: this one cannot be made
        (Status::WouldChange, None, Mode::Apply) => {
            return Ok((
                StepStatus::Failed,
                format!("{detail}: nothing to run to make it"),
            ));
        }
        (Status::WouldChange, Some(action), Mode::Apply) => action,
    };
    let (stdin, detail) = match action.input {
        Input::None => (None, detail),
        Input::Bytes(bytes) => (Some(std::borrow::Cow::Borrowed(bytes)), detail),
        Input::Release { url, sha256 } => match fetch_release(url, sha256) {
            Ok(bytes) => {
                let detail = format!("{detail} ({} bytes)", bytes.len());
                (Some(std::borrow::Cow::Owned(bytes)), detail)
            }
            Err(e) => return Ok((StepStatus::Failed, error_chain(&e))),
        },
    };
    let out = shell.sudo(&action.script, stdin.as_deref())?;
    if !out.ok() {
        return Ok((StepStatus::Failed, format!("{detail}: {}", out.failure())));
    }
    restarted.extend(action.restarts.iter().cloned());
    Ok((StepStatus::Changed, detail))
}

/// Why a release archive cannot be installed.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("cannot download {url}: {source}")]
    Request {
        url: String,
        source: Box<ureq::Error>,
    },
    #[error("cannot download {url}: {source}")]
    Body { url: String, source: std::io::Error },
    #[error("{url}: artifacts are fetched over https://, http:// or file://")]
    Scheme { url: String },
    #[error("cannot read artifact {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{url} has SHA-256 {actual}, not the pinned {pinned}; refusing to install it")]
    Digest {
        url: String,
        actual: String,
        pinned: String,
    },
}

/// Read a release archive named by URL, from the operator's machine: `https://` or `http://`
/// (downloaded here, then uploaded to the hosts, which need no access to it), `file://` or a
/// path; refused unless its SHA-256 is `sha256`.
fn fetch_release(url: &str, sha256: &str) -> Result<Vec<u8>, ReleaseError> {
    let bytes = read_release(url)?;
    let actual = sha256_hex(&bytes);
    if actual != sha256 {
        return Err(ReleaseError::Digest {
            url: url.to_owned(),
            actual,
            pinned: sha256.to_owned(),
        });
    }
    Ok(bytes)
}

fn read_release(url: &str) -> Result<Vec<u8>, ReleaseError> {
    use std::io::Read;
    if url.starts_with("https://") || url.starts_with("http://") {
        let mut response = ureq::get(url).call().map_err(|e| ReleaseError::Request {
            url: url.to_owned(),
            source: Box::new(e),
        })?;
        let mut bytes = Vec::new();
        response
            .body_mut()
            .as_reader()
            .read_to_end(&mut bytes)
            .map_err(|source| ReleaseError::Body {
                url: url.to_owned(),
                source,
            })?;
        return Ok(bytes);
    }
    let path = match url.strip_prefix("file://") {
        Some(p) => p,
        None if url.contains("://") => {
            return Err(ReleaseError::Scheme {
                url: url.to_owned(),
            });
        }
        None => url,
    };
    std::fs::read(path).map_err(|source| ReleaseError::Read {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::deploy::baremetal::diff::tests::{
        command_step, file_step, host, service_step, tree,
    };
    use crate::deploy::baremetal::diff::{Inputs, diff};
    use crate::deploy::baremetal::probe::Facts;
    use crate::deploy::baremetal::report::StepReport;
    use crate::pipeline::render::plan::{ArtifactStep, HostPlan, Step};

    /// A host that records the scripts it is given and answers each with `answer`.
    struct FakeHost {
        ran: RefCell<Vec<(String, Vec<u8>)>>,
        answer: fn(&str) -> Output,
    }

    impl FakeHost {
        fn new(answer: fn(&str) -> Output) -> Self {
            FakeHost {
                ran: RefCell::new(Vec::new()),
                answer,
            }
        }
        fn scripts(&self) -> Vec<String> {
            self.ran.borrow().iter().map(|(s, _)| s.clone()).collect()
        }
    }

    impl RootShell for FakeHost {
        fn sudo(&self, script: &str, stdin: Option<&[u8]>) -> Result<Output, SshError> {
            self.ran
                .borrow_mut()
                .push((script.to_owned(), stdin.unwrap_or_default().to_vec()));
            Ok((self.answer)(script))
        }
    }

    fn succeed(_: &str) -> Output {
        Output {
            status: 0,
            stdout: Vec::new(),
            stderr: Vec::new(),
        }
    }

    struct Silent;
    impl Progress for Silent {
        fn host_started(&self, _: &str) {}
        fn step(&self, _: &str, _: &StepReport) {}
        fn host_finished(&self, _: &HostReport) {}
    }

    const CONTENT: &[u8] = b"max_connections = 150\n";

    fn running() -> Facts {
        Facts {
            running: BTreeSet::from(["postgresql".into()]),
            init_scripts: BTreeSet::from(["postgresql".into()]),
            ..Facts::default()
        }
    }

    /// Diff then converge `host` on `facts` through `shell`: each step's (id, status, detail).
    fn run(
        shell: &FakeHost,
        host: &HostPlan,
        facts: &Facts,
        mode: Mode,
    ) -> (HostReport, Vec<(String, StepStatus, String)>) {
        let tree = tree(CONTENT);
        let secrets = BTreeMap::new();
        let inputs = Inputs {
            tree: &tree,
            secrets: &secrets,
            mirror: "http://deb.debian.org/debian",
            mode,
            switching: Default::default(),
        };
        let mut report = HostReport::new(host);
        let result = execute(
            shell,
            diff(host, facts, &inputs),
            mode,
            &mut report,
            &Silent,
        );
        assert!(result.is_ok(), "{result:?}");
        let steps = report
            .steps
            .iter()
            .map(|s| (s.id.clone(), s.status, s.detail.clone()))
            .collect();
        (report, steps)
    }

    #[test]
    fn plan_runs_nothing_on_the_host() {
        let shell = FakeHost::new(succeed);
        let host = host(vec![
            file_step("/etc/pg.conf", &["postgresql"], CONTENT),
            service_step("postgresql"),
            command_step("role"),
        ]);
        let (report, steps) = run(&shell, &host, &running(), Mode::Plan);
        assert!(shell.scripts().is_empty(), "{:?}", shell.scripts());
        assert_eq!(report.changed, 3);
        assert_eq!(
            steps[1],
            (
                "service:postgresql".into(),
                StepStatus::Changed,
                "restart postgresql: its configuration changed".into()
            )
        );
    }

    #[test]
    fn a_service_restarts_only_when_its_file_was_written() {
        let host = host(vec![
            file_step("/etc/pg.conf", &["postgresql"], CONTENT),
            service_step("postgresql"),
        ]);
        let shell = FakeHost::new(succeed);
        let (_, steps) = run(&shell, &host, &running(), Mode::Apply);
        assert_eq!(
            steps[1],
            (
                "service:postgresql".into(),
                StepStatus::Changed,
                "restart postgresql: its configuration changed".into()
            )
        );
        assert_eq!(shell.scripts()[1], "/etc/init.d/postgresql restart");
        assert_eq!(
            shell.ran.borrow()[0].1,
            CONTENT,
            "the upload carries the rendered bytes"
        );

        // the upload fails: the service keeps running as it is
        let shell = FakeHost::new(|script| {
            if script.contains("sha256sum") {
                Output {
                    status: 1,
                    stdout: Vec::new(),
                    stderr: b"sha256sum: WARNING: 1 computed checksum did NOT match\n".to_vec(),
                }
            } else {
                succeed(script)
            }
        });
        let (report, steps) = run(&shell, &host, &running(), Mode::Apply);
        assert_eq!(steps[0].1, StepStatus::Failed);
        assert_eq!(
            steps[0].2,
            "create /etc/pg.conf (22 bytes): exit status 1: sha256sum: WARNING: 1 computed checksum did NOT match"
        );
        assert_eq!(
            steps[1],
            (
                "service:postgresql".into(),
                StepStatus::Unchanged,
                String::new()
            )
        );
        assert_eq!(shell.scripts().len(), 1, "no restart was attempted");
        assert!(
            report.error.is_none(),
            "a failed file fails its step, not the host"
        );
    }

    #[test]
    fn a_failed_restart_says_why_even_with_nothing_on_stderr() {
        let host = host(vec![
            file_step("/etc/pg.conf", &["postgresql"], CONTENT),
            service_step("postgresql"),
        ]);
        let shell = FakeHost::new(|script| {
            if script.ends_with("restart") {
                Output {
                    status: 1,
                    stdout: b"Restarting PostgreSQL 15 database server: main\nfailed!\n".to_vec(),
                    stderr: Vec::new(),
                }
            } else {
                succeed(script)
            }
        });
        let (_, steps) = run(&shell, &host, &running(), Mode::Apply);
        assert_eq!(steps[1].1, StepStatus::Failed);
        assert_eq!(
            steps[1].2,
            "restart postgresql: its configuration changed: exit status 1, nothing on standard error; standard output ends: Restarting PostgreSQL 15 database server: main | failed!"
        );
    }

    #[test]
    fn failed_packages_stop_the_host() {
        let host = host(vec![
            Step::Packages {
                id: "packages".into(),
                names: vec!["postgresql".into()],
            },
            service_step("postgresql"),
        ]);
        let shell = FakeHost::new(|_| Output {
            status: 100,
            stdout: Vec::new(),
            stderr: b"E: Unable to locate package postgresql\n".to_vec(),
        });
        let (report, steps) = run(&shell, &host, &Facts::default(), Mode::Apply);
        assert_eq!(steps.len(), 1, "nothing after the packages: {steps:?}");
        assert_eq!(
            steps[0].2,
            "use mirror http://deb.debian.org/debian; install postgresql: exit status 100: E: Unable to locate package postgresql"
        );
        assert_eq!(
            report.error.as_deref(),
            Some("stopped: packages could not be installed (see the packages step)")
        );
    }

    #[test]
    fn a_command_seen_done_is_checked_again_once_the_host_changed() {
        let done = Facts {
            done: BTreeSet::from(["role".into()]),
            ..running()
        };
        // nothing changed before it: the probe's answer stands
        let shell = FakeHost::new(succeed);
        let (_, steps) = run(
            &shell,
            &host(vec![command_step("role")]),
            &done,
            Mode::Apply,
        );
        assert_eq!(steps[0].1, StepStatus::Unchanged);
        assert!(shell.scripts().is_empty());

        // a file changed first, and the check no longer holds: the command runs
        let host = host(vec![
            file_step("/etc/pg.conf", &[], CONTENT),
            command_step("role"),
        ]);
        let shell = FakeHost::new(|script| Output {
            status: i32::from(script.contains("test -e /done")),
            stdout: Vec::new(),
            stderr: Vec::new(),
        });
        let (_, steps) = run(&shell, &host, &done, Mode::Apply);
        assert_eq!(
            steps[1],
            ("command:role".into(), StepStatus::Changed, "role".into())
        );
        assert_eq!(
            shell.scripts()[1..],
            [
                "( test -e /done ) >/dev/null 2>&1".to_owned(),
                "make-role".to_owned()
            ]
        );

        // ... and when it still holds, it does not
        let shell = FakeHost::new(succeed);
        let (_, steps) = run(&shell, &host, &done, Mode::Apply);
        assert_eq!(
            steps[1],
            ("command:role".into(), StepStatus::Unchanged, String::new())
        );
        assert_eq!(shell.scripts().len(), 2);
    }

    #[test]
    fn a_release_is_fetched_checked_then_uploaded_and_restarts_its_service() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let archive = dir.path().join("crm.tar.gz");
        std::fs::write(&archive, b"not really a tarball").unwrap_or_else(|e| panic!("{e}"));
        let step = |sha256: String| Step::Artifact {
            id: "artifact:/opt/crm".into(),
            artifact: ArtifactStep {
                url: format!("file://{}", archive.display()),
                sha256,
                dir: "/opt/crm".into(),
                restarts: vec!["postgresql".into()],
                keep: 3,
            },
        };
        let sha = sha256_hex(b"not really a tarball");

        let shell = FakeHost::new(succeed);
        let (_, steps) = run(
            &shell,
            &host(vec![step(sha.clone()), service_step("postgresql")]),
            &running(),
            Mode::Apply,
        );
        assert_eq!(
            steps[0],
            (
                "artifact:/opt/crm".into(),
                StepStatus::Changed,
                format!("install release {} (20 bytes)", &sha[..12])
            )
        );
        assert_eq!(shell.ran.borrow()[0].1, b"not really a tarball");
        assert_eq!(steps[1].2, "restart postgresql: its configuration changed");

        // a different archive behind the URL is refused before anything reaches the host
        let shell = FakeHost::new(succeed);
        let (_, steps) = run(
            &shell,
            &host(vec![step("0".repeat(64)), service_step("postgresql")]),
            &running(),
            Mode::Apply,
        );
        assert_eq!(steps[0].1, StepStatus::Failed);
        assert!(
            steps[0]
                .2
                .contains(&format!("has SHA-256 {sha}, not the pinned")),
            "{}",
            steps[0].2
        );
        assert!(shell.scripts().is_empty());

        // and one that cannot be read says which
        let missing = Step::Artifact {
            id: "artifact:/opt/crm".into(),
            artifact: ArtifactStep {
                url: "/nonexistent/crm.tar.gz".into(),
                sha256: sha,
                dir: "/opt/crm".into(),
                restarts: Vec::new(),
                keep: 3,
            },
        };
        let (_, steps) = run(
            &FakeHost::new(succeed),
            &host(vec![missing]),
            &running(),
            Mode::Apply,
        );
        assert!(
            steps[0]
                .2
                .starts_with("cannot read artifact /nonexistent/crm.tar.gz: "),
            "{}",
            steps[0].2
        );
    }

    #[test]
    fn a_session_error_stops_the_host_with_its_reason() {
        struct Gone;
        impl RootShell for Gone {
            fn sudo(&self, script: &str, _: Option<&[u8]>) -> Result<Output, SshError> {
                Err(SshError::Exec {
                    address: "198.18.0.11".into(),
                    command: script.into(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "Timed out waiting on socket",
                    ),
                })
            }
        }
        let host = host(vec![command_step("role")]);
        let inputs = Inputs {
            tree: &BTreeMap::new(),
            secrets: &BTreeMap::new(),
            mirror: "",
            mode: Mode::Apply,
            switching: Default::default(),
        };
        let mut report = HostReport::new(&host);
        let result = execute(
            &Gone,
            diff(&host, &Facts::default(), &inputs),
            Mode::Apply,
            &mut report,
            &Silent,
        );
        let e = result.err().map(|e| error_chain(&e)).unwrap_or_default();
        assert_eq!(
            e,
            "198.18.0.11: `make-role` failed: Timed out waiting on socket"
        );
    }
}
