//! The bare-metal driver: converge hosts over SSH to the rendered plan (`baremetal/plan.json`).
//!
//! On each host, in one SSH session: an apply takes the platform's lock on the host
//! (`host_lock`), then the probe gathers the facts the steps need in one round trip (`probe`),
//! a pure diff turns the plan's steps and those facts into changes (`diff`), and converge makes
//! them, or in a plan only reports them (`converge`). Files go to a temporary path, are checked
//! against their SHA-256, get their owner and mode, then are renamed into place, so an
//! interrupted run never leaves a partial file. Services restart only when one of their files
//! changed. Hosts run in parallel; a service several hosts carry (the application) is then
//! switched one host at a time, each checked healthy before the next (`rollout`).

pub mod converge;
pub mod diff;
pub mod driver;
pub mod error;
pub mod health;
pub mod host_lock;
pub mod lifecycle;
pub mod probe;
pub mod release;
pub mod report;
pub mod rollout;
pub mod site;
pub mod ssh;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::deploy::lock::Holder;
use crate::parallel::in_parallel;
use crate::pipeline::render::plan::{HostPlan, Plan, Step};
use crate::secrets::SecretStore;
use crate::text::error_chain;
use diff::{Inputs, SecretValue};
use ssh::{Connection, SshError, Target};

pub use crate::deploy::Mode;
pub use host_lock::HostLock;
pub use report::{HostReport, Progress, StepReport, StepStatus};

#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    pub concurrency: usize,
    pub fail_fast: bool,
    /// How to reach each host, by name (`targets`).
    pub targets: BTreeMap<String, Target>,
    /// Where the platform's generated secrets are kept.
    pub secrets: SecretStore,
    /// Who takes the platform's lock on each host in an apply (a plan takes none).
    pub holder: Holder,
    /// The restore point taken before this run switches the application's release.
    pub restore_point: Option<crate::lifecycle::release::RestorePoint>,
}

/// How a run reaches hosts, beyond the document's SSH settings.
#[derive(Debug, Clone, Copy)]
pub struct Reach {
    /// Record the keys of hosts missing from knownHostsFile (a changed key is always refused).
    pub accept_new_host_keys: bool,
    /// TCP connect and SSH handshake, through the bastion too.
    pub connect_timeout: Duration,
    /// Each remote command.
    pub timeout: Duration,
}

impl Default for Reach {
    fn default() -> Self {
        Reach {
            accept_new_host_keys: false,
            connect_timeout: ssh::DEFAULT_CONNECT_TIMEOUT,
            timeout: Duration::from_secs(60),
        }
    }
}

/// How to reach each host of a bare-metal document, by name: its SSH settings (key and
/// known_hosts paths relative to the document), its bastion, and `reach`.
pub fn targets(
    document: &Path,
    b: &crate::document::BaremetalTarget,
    reach: Reach,
) -> BTreeMap<String, Target> {
    let ssh = &b.ssh;
    let identity = resolve_path(&ssh.identity_file, document);
    let known_hosts = resolve_path(&ssh.known_hosts_file, document);
    let target = |address: &str, port: u32, user: &str, jump: Option<Box<Target>>| Target {
        address: address.to_owned(),
        port: u16::try_from(port).unwrap_or(22),
        user: user.to_owned(),
        identity: identity.clone(),
        known_hosts: known_hosts.clone(),
        accept_new_host_keys: reach.accept_new_host_keys,
        connect_timeout: reach.connect_timeout,
        timeout: reach.timeout,
        use_agent: ssh.use_agent,
        jump,
    };
    let bastion = ssh.jump_host.as_ref().map(|j| {
        Box::new(target(
            &j.address,
            j.port,
            j.user.as_deref().unwrap_or(&ssh.user),
            None,
        ))
    });
    b.hosts
        .iter()
        .map(|h| {
            (
                h.name.clone(),
                target(&h.address, ssh.port, &ssh.user, bastion.clone()),
            )
        })
        .collect()
}

/// A host's lock is held by another run: nothing was changed on any host.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct HostLocked(pub Box<SshError>);

/// A host reached for this run: its session, and in an apply the platform's lock on it.
struct Reached {
    conn: Connection,
    _lock: Option<HostLock>,
    started: Instant,
}

/// What the first phase of a run made of a host.
enum Contact {
    Reached(Reached),
    Failed(SshError, Instant),
    /// Not tried: another host failed and --fail-fast is set.
    Skipped,
}

/// A host's steps converged with the others, and those of its turn in a rollout.
type Phases = (HostPlan, Option<HostPlan>);

fn skipped(host: &HostPlan) -> HostReport {
    let mut r = HostReport::new(host);
    r.error = Some("skipped: another host failed and --fail-fast is set".into());
    r
}

fn held_elsewhere(e: &SshError) -> bool {
    matches!(
        e,
        SshError::PlatformLocked { .. } | SshError::PlatformLockedByUnknown { .. }
    )
}

/// Converge every host of `plan`, reading file contents from the rendered `tree`. Every host is
/// reached (and in an apply, locked) before any is changed: a host whose lock another run holds
/// stops the whole run with nothing changed.
pub fn converge(
    plan: &Plan,
    tree: &BTreeMap<String, Vec<u8>>,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Vec<HostReport>, HostLocked> {
    let stop = AtomicBool::new(false);
    let reached: Vec<Contact> = in_parallel(&plan.hosts, opts.concurrency, |host| {
        if stop.load(Ordering::SeqCst) {
            return Contact::Skipped;
        }
        progress.host_started(&host.name);
        let started = Instant::now();
        reach(plan, host, opts).map_or_else(
            |e| {
                if opts.fail_fast {
                    stop.store(true, Ordering::SeqCst);
                }
                Contact::Failed(e, started)
            },
            Contact::Reached,
        )
    });
    if reached
        .iter()
        .any(|r| matches!(r, Contact::Failed(e, _) if held_elsewhere(e)))
    {
        // the other hosts' locks are given back as the rest of `reached` is dropped
        if let Some(e) = reached.into_iter().find_map(|r| match r {
            Contact::Failed(e, _) if held_elsewhere(&e) => Some(e),
            _ => None,
        }) {
            return Err(HostLocked(Box::new(e)));
        }
        return Ok(Vec::new());
    }
    // an apply leaves what restarts a rolled service to the host's turn (a plan shows it all)
    let phases: Vec<Phases> = plan
        .hosts
        .iter()
        .map(|h| match opts.mode {
            Mode::Apply => rollout::split(h),
            Mode::Plan => (h.clone(), None),
        })
        .collect();
    let pairs: Vec<(&Phases, Mutex<Option<Contact>>)> = phases
        .iter()
        .zip(reached)
        .map(|(h, r)| (h, Mutex::new(Some(r))))
        .collect();
    let converged: Vec<(HostReport, Option<Reached>)> =
        in_parallel(&pairs, opts.concurrency, |((host, turn), reach)| {
            let reach = reach
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .unwrap_or(Contact::Skipped);
            let (report, kept) = match reach {
                Contact::Skipped => (skipped(host), None),
                Contact::Reached(_) if stop.load(Ordering::SeqCst) => (skipped(host), None),
                Contact::Failed(e, started) => {
                    let mut r = HostReport::new(host);
                    r.error = Some(error_chain(&e));
                    r.duration_ms =
                        u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                    (r, None)
                }
                Contact::Reached(reached) => {
                    let r = converge_host(plan, host, tree, opts, progress, &reached);
                    if !r.ok() && opts.fail_fast {
                        stop.store(true, Ordering::SeqCst);
                    }
                    // the session stays open (and the host locked) for the host's turn
                    let kept = (turn.is_some() && r.ok()).then_some(reached);
                    (r, kept)
                }
            };
            if kept.is_none() {
                progress.host_finished(&report);
            }
            (report, kept)
        });
    Ok(roll_out(plan, &phases, converged, tree, opts, progress))
}

/// Every host's turn of the rollout, one after the other, in the plan's order (hosts whose
/// first phase failed have no turn: their report says why already).
fn roll_out(
    plan: &Plan,
    phases: &[Phases],
    converged: Vec<(HostReport, Option<Reached>)>,
    tree: &BTreeMap<String, Vec<u8>>,
    opts: &Options,
    progress: &dyn Progress,
) -> Vec<HostReport> {
    let mut reports = Vec::new();
    let mut turns = Vec::new();
    for (i, (report, kept)) in converged.into_iter().enumerate() {
        if let (Some(reached), Some(turn)) = (kept, phases[i].1.as_ref()) {
            turns.push((turn.name.clone(), (i, turn, reached)));
        }
        reports.push(report);
    }
    let results = rollout::one_at_a_time(turns, |_, (i, turn, reached)| {
        let report = &mut reports[i];
        let r = rollout::turn(plan, turn, tree, opts, progress, &reached.conn, report);
        report.duration_ms =
            u64::try_from(reached.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if let Err(e) = &r {
            report.error = Some(e.clone());
        }
        progress.host_finished(report);
        r
    });
    for (name, result) in results {
        if let (Err(e), Some(report)) = (result, reports.iter_mut().find(|r| r.name == name))
            && report.error.is_none()
        {
            report.error = Some(e);
            progress.host_finished(report);
        }
    }
    reports
}

/// Connect to `host`, check sudo, and in an apply take the platform's lock there: taken before
/// the probe, so that the facts are not changing under another run's hands.
fn reach(plan: &Plan, host: &HostPlan, opts: &Options) -> Result<Reached, SshError> {
    let started = Instant::now();
    let conn = connect(host, opts)?;
    conn.require_sudo()?;
    let lock = match opts.mode {
        Mode::Apply => Some(conn.lock_platform(&plan.platform, &opts.holder)?),
        Mode::Plan => None,
    };
    Ok(Reached {
        conn,
        _lock: lock,
        started,
    })
}

/// How the driver reaches `host`: the document's SSH settings for it.
pub fn target(host: &HostPlan, opts: &Options) -> Result<Target, SshError> {
    opts.targets
        .get(&host.name)
        .cloned()
        .ok_or_else(|| SshError::NoSettings {
            host: host.name.clone(),
        })
}

fn connect(host: &HostPlan, opts: &Options) -> Result<Connection, SshError> {
    let target = target(host, opts)?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match Connection::open(&target) {
            Err(e) if e.is_transient() && attempt < 3 => {
                std::thread::sleep(Duration::from_millis(250 * attempt))
            }
            other => return other,
        }
    }
}

fn converge_host(
    plan: &Plan,
    host: &HostPlan,
    tree: &BTreeMap<String, Vec<u8>>,
    opts: &Options,
    progress: &dyn Progress,
    reached: &Reached,
) -> HostReport {
    let mut report = HostReport::new(host);
    let started = reached.started;
    if let Err(e) = session(plan, host, tree, opts, progress, &reached.conn, &mut report) {
        report.error = Some(error_chain(&e));
    }
    report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    report
}

/// One host's converge over its session: probe, diff, execute.
fn session(
    plan: &Plan,
    host: &HostPlan,
    tree: &BTreeMap<String, Vec<u8>>,
    opts: &Options,
    progress: &dyn Progress,
    conn: &Connection,
    report: &mut HostReport,
) -> Result<(), SshError> {
    let facts = probe::probe(conn, host)?;
    let secrets = resolve_secrets(host, &opts.secrets, opts.mode);
    let inputs = Inputs {
        tree,
        secrets: &secrets,
        mirror: &plan.package_mirror,
        mode: opts.mode,
        switching: diff::Switching {
            at: k8s_openapi::jiff::Timestamp::now().as_second(),
            restore_point: opts.restore_point.clone(),
        },
    };
    let changes = diff::diff(host, &facts, &inputs);
    converge::execute(conn, changes, opts.mode, report, progress)
}

/// The value of every secret `host`'s steps write. Apply generates the missing ones (except
/// those the user provides); plan only reads the store.
fn resolve_secrets(
    host: &HostPlan,
    store: &SecretStore,
    mode: Mode,
) -> BTreeMap<String, SecretValue> {
    let mut provided = BTreeMap::new();
    for step in &host.steps {
        if let Step::Secret { secret, .. } = step {
            *provided.entry(secret.secret.as_str()).or_insert(false) |= secret.provided;
        }
    }
    provided
        .into_iter()
        .map(|(name, provided)| {
            let value = match (store.get(name), mode) {
                (Ok(Some(v)), _) => SecretValue::Known(v),
                (Ok(None), _) if provided => SecretValue::NotProvided,
                (Ok(None), Mode::Plan) => SecretValue::NotYetGenerated,
                (Ok(None), Mode::Apply) => store
                    .get_or_create(name)
                    .map_or_else(SecretValue::Unavailable, SecretValue::Known),
                (Err(e), _) => SecretValue::Unavailable(e),
            };
            (name.to_owned(), value)
        })
        .collect()
}

/// Resolve `~/` and paths relative to the document's directory.
pub fn resolve_path(raw: &str, document: &Path) -> PathBuf {
    if let (Some(rest), Some(home)) = (raw.strip_prefix("~/"), std::env::var_os("HOME")) {
        return PathBuf::from(home).join(rest);
    }
    let p = PathBuf::from(raw);
    if p.is_absolute() {
        p
    } else {
        document.parent().unwrap_or(Path::new(".")).join(p)
    }
}
