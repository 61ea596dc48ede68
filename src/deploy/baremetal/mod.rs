//! The bare-metal driver: converge hosts over SSH to the rendered plan (`baremetal/plan.json`).
//!
//! Each host is probed once (packages, users, directories, files with their SHA-256, services),
//! the differences become the changes, and only those are made: files go to a temporary path,
//! are checked against their SHA-256, get their owner and mode, then are renamed into place, so an
//! interrupted run never leaves a partial file. Services restart only when one of their files
//! changed. Hosts run in parallel.

pub mod site;
pub mod ssh;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::pipeline::render::plan::{HostPlan, Plan, Step};
use crate::text::{last_lines, sha256_hex};
use ssh::{shell_quote, Connection, SshError, Target};

pub use crate::deploy::Mode;

#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    pub concurrency: usize,
    pub fail_fast: bool,
    pub accept_new_host_keys: bool,
    pub user: String,
    pub port: u16,
    pub identity: PathBuf,
    pub known_hosts: PathBuf,
    pub timeout: Duration,
    /// Where the platform's generated secrets are kept.
    pub secrets: crate::secrets::SecretStore,
    /// Also offer the keys of a running ssh-agent.
    pub use_agent: bool,
    /// Bastion: address, port, user.
    pub jump: Option<(String, u16, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum StepStatus {
    Unchanged,
    /// Changed (apply) or would change (plan).
    Changed,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepReport {
    pub id: String,
    pub status: StepStatus,
    /// What differs or what was done.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostReport {
    pub name: String,
    pub address: String,
    pub changed: usize,
    pub unchanged: usize,
    pub failed: usize,
    /// Why the host could not be converged at all (unreachable, host key, sudo...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: u64,
    pub steps: Vec<StepReport>,
}

impl HostReport {
    fn new(host: &HostPlan) -> Self {
        HostReport { name: host.name.clone(), address: host.address.clone(), changed: 0, unchanged: 0, failed: 0, error: None, duration_ms: 0, steps: Vec::new() }
    }

    fn push(&mut self, id: &str, status: StepStatus, detail: impl Into<String>) {
        match status {
            StepStatus::Unchanged => self.unchanged += 1,
            StepStatus::Changed => self.changed += 1,
            StepStatus::Failed => self.failed += 1,
        }
        self.steps.push(StepReport { id: id.to_owned(), status, detail: detail.into() });
    }

    pub fn ok(&self) -> bool {
        self.error.is_none() && self.failed == 0
    }
}

/// Progress for people: one call per host event.
pub trait Progress: Sync {
    fn host_started(&self, host: &str);
    fn step(&self, host: &str, step: &StepReport);
    fn host_finished(&self, report: &HostReport);
}

/// Converge every host of `plan`, reading file contents from the rendered `tree`.
pub fn converge(plan: &Plan, tree: &BTreeMap<String, Vec<u8>>, opts: &Options, progress: &dyn Progress) -> Vec<HostReport> {
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let results: Mutex<Vec<(usize, HostReport)>> = Mutex::new(Vec::new());
    let workers = opts.concurrency.clamp(1, plan.hosts.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(host) = plan.hosts.get(i) else { break };
                let report = if stop.load(Ordering::SeqCst) {
                    let mut r = HostReport::new(host);
                    r.error = Some("skipped: another host failed and --fail-fast is set".into());
                    r
                } else {
                    progress.host_started(&host.name);
                    let r = converge_host(host, &plan.package_mirror, tree, opts, progress);
                    if !r.ok() && opts.fail_fast {
                        stop.store(true, Ordering::SeqCst);
                    }
                    r
                };
                progress.host_finished(&report);
                results.lock().unwrap_or_else(|e| e.into_inner()).push((i, report));
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// How the driver reaches `host`: the document's SSH settings as `opts` holds them (timeout,
/// bastion, agent, whether new host keys are recorded).
pub fn target(host: &HostPlan, opts: &Options) -> Target {
    Target {
        address: host.address.clone(),
        port: opts.port,
        user: opts.user.clone(),
        identity: opts.identity.clone(),
        known_hosts: opts.known_hosts.clone(),
        accept_new_host_keys: opts.accept_new_host_keys,
        timeout: opts.timeout,
        use_agent: opts.use_agent,
        jump: opts.jump.as_ref().map(|(address, port, user)| {
            Box::new(Target {
                address: address.clone(),
                port: *port,
                user: user.clone(),
                identity: opts.identity.clone(),
                known_hosts: opts.known_hosts.clone(),
                accept_new_host_keys: opts.accept_new_host_keys,
                timeout: opts.timeout,
                use_agent: opts.use_agent,
                jump: None,
            })
        }),
    }
}

fn connect(host: &HostPlan, opts: &Options) -> Result<Connection, SshError> {
    let target = target(host, opts);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match Connection::open(&target) {
            Err(e) if e.is_transient() && attempt < 3 => std::thread::sleep(Duration::from_millis(250 * attempt)),
            other => return other,
        }
    }
}

/// terroir's own apt source list on each host.
const MIRROR_LIST: &str = "/etc/apt/sources.list.d/terroir-mirror.list";

fn converge_host(host: &HostPlan, mirror: &str, tree: &BTreeMap<String, Vec<u8>>, opts: &Options, progress: &dyn Progress) -> HostReport {
    let started = Instant::now();
    let mut report = HostReport::new(host);
    let result = (|| -> Result<(), SshError> {
        let conn = connect(host, opts)?;
        conn.require_sudo()?;
        let facts = probe(&conn, host)?;
        let mut restart: BTreeSet<String> = BTreeSet::new();
        for step in &host.steps {
            let before = report.steps.len();
            run_step(&conn, host, step, tree, &facts, opts.mode, mirror, &opts.secrets, &mut restart, &mut report)?;
            for s in &report.steps[before..] {
                progress.step(&host.name, s);
            }
            // everything after the packages depends on them: stop this host here
            if matches!(step, Step::Packages { .. }) && report.failed > 0 {
                report.error = Some("stopped: packages could not be installed (see the packages step)".into());
                break;
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        report.error = Some(e.to_string());
    }
    report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    report
}

/// What is on the host now, gathered in one round trip.
#[derive(Debug, Default)]
struct Facts {
    systemd: bool,
    installed: BTreeSet<String>,
    users: BTreeSet<String>,
    /// path -> "owner group mode"
    dirs: BTreeMap<String, String>,
    /// path -> ("owner group mode", sha256)
    files: BTreeMap<String, (String, String)>,
    running: BTreeSet<String>,
    init_scripts: BTreeSet<String>,
    /// commands whose check says they already ran
    created: BTreeSet<String>,
    /// where `<dir>/current` points, for artifacts
    current_release: String,
    /// Debian release of the host, and the SHA-256 of terroir's apt source list
    codename: String,
    mirror_list_sha: String,
}

fn probe(conn: &Connection, host: &HostPlan) -> Result<Facts, SshError> {
    let mut script = String::from("[ -d /run/systemd/system ] && echo 'I systemd'\n");
    for step in &host.steps {
        match step {
            Step::Packages { names, .. } => {
                script.push_str(&format!("echo \"M $(. /etc/os-release; echo $VERSION_CODENAME) $(sha256sum < {MIRROR_LIST} 2>/dev/null | cut -d' ' -f1)\"\n"));
                let list: Vec<String> = names.iter().map(|n| shell_quote(n)).collect();
                script.push_str(&format!("dpkg-query -W -f='P ${{Package}} ${{db:Status-Status}}\\n' {} 2>/dev/null\n", list.join(" ")));
            }
            Step::User { user, .. } => {
                script.push_str(&format!("getent passwd {0} >/dev/null && echo 'U {0}'\n", shell_quote(&user.name)));
            }
            Step::Directory { directory, .. } => {
                script.push_str(&format!("[ -d {0} ] && echo \"D {1} $(stat -c '%U %G %04a' {0})\"\n", shell_quote(&directory.path), directory.path));
            }
            Step::File { file, .. } => script.push_str(&probe_file(&file.dest)),
            Step::Service { service, .. } => {
                let n = shell_quote(&service.name);
                script.push_str(&format!("[ -x /etc/init.d/{n} ] && echo 'X {0}'\n", service.name));
                script.push_str(&format!(
                    "if [ -d /run/systemd/system ]; then systemctl is-active --quiet {n} && echo 'S {0}'; \
                     elif [ -x /etc/init.d/{n} ]; then /etc/init.d/{n} status >/dev/null 2>&1 && echo 'S {0}'; \
                     elif [ {n} = nftables ]; then nft list table inet terroir >/dev/null 2>&1 && echo 'S {0}'; \
                     elif [ {n} = rsyslog ]; then pidof rsyslogd >/dev/null && echo 'S {0}'; fi\n",
                    service.name
                ));
            }
            Step::Secret { secret, .. } => script.push_str(&probe_file(&secret.dest)),
            Step::Artifact { artifact, .. } => {
                script.push_str(&format!("echo \"A $(readlink {}/current)\"\n", shell_quote(&artifact.dir)));
            }
            Step::Command { command, .. } => {
                script.push_str(&format!("if ( {} ) >/dev/null 2>&1; then echo 'C {}'; fi\n", command.done_check(), command.name));
            }
            Step::Firewall { .. } => {}
        }
    }
    script.push_str("true\n");
    let out = conn.sudo(&script, None)?;
    let mut facts = Facts::default();
    for line in out.stdout_str().lines() {
        let mut parts = line.splitn(2, ' ');
        let (tag, rest) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
        match tag {
            "I" => facts.systemd = true,
            "P" => {
                let mut p = rest.split(' ');
                if let (Some(name), Some("installed")) = (p.next(), p.next()) {
                    facts.installed.insert(name.to_owned());
                }
            }
            "U" => {
                facts.users.insert(rest.to_owned());
            }
            "D" => {
                if let Some((path, attrs)) = split_path(rest, 3) {
                    facts.dirs.insert(path, attrs);
                }
            }
            "F" => {
                if let Some((path, attrs)) = split_path(rest, 4) {
                    let (meta, sha) = attrs.rsplit_once(' ').unwrap_or((&attrs, ""));
                    facts.files.insert(path, (meta.to_owned(), sha.to_owned()));
                }
            }
            "S" => {
                facts.running.insert(rest.to_owned());
            }
            "X" => {
                facts.init_scripts.insert(rest.to_owned());
            }
            "C" => {
                facts.created.insert(rest.to_owned());
            }
            "A" => facts.current_release = rest.trim().to_owned(),
            "M" => {
                let mut p = rest.split(' ');
                facts.codename = p.next().unwrap_or_default().to_owned();
                facts.mirror_list_sha = p.next().unwrap_or_default().to_owned();
            }
            _ => {}
        }
    }
    Ok(facts)
}

/// The probe line of a file: `F <path> <owner> <group> <mode> <sha256>` when it exists.
fn probe_file(dest: &str) -> String {
    format!("[ -f {0} ] && echo \"F {1} $(stat -c '%U %G %04a' {0}) $(sha256sum < {0} | cut -d' ' -f1)\"\n", shell_quote(dest), dest)
}

/// Split `path a b c` into the path and its last `n` space-separated fields.
fn split_path(rest: &str, n: usize) -> Option<(String, String)> {
    let fields: Vec<&str> = rest.rsplitn(n + 1, ' ').collect();
    if fields.len() != n + 1 {
        return None;
    }
    let path = fields[n].to_owned();
    let mut attrs: Vec<&str> = fields[..n].to_vec();
    attrs.reverse();
    Some((path, attrs.join(" ")))
}

fn normalize_mode(mode: &str) -> String {
    format!("{:0>4}", mode.trim_start_matches('0'))
}

#[allow(clippy::too_many_arguments)]
fn run_step(
    conn: &Connection,
    host: &HostPlan,
    step: &Step,
    tree: &BTreeMap<String, Vec<u8>>,
    facts: &Facts,
    mode: Mode,
    mirror: &str,
    secrets: &crate::secrets::SecretStore,
    restart: &mut BTreeSet<String>,
    report: &mut HostReport,
) -> Result<(), SshError> {
    let apply = mode == Mode::Apply;
    // A failed command fails the step, not the host: later steps still run where they can.
    let run = |id: &str, script: &str, stdin: Option<&[u8]>, detail: String, report: &mut HostReport| -> Result<bool, SshError> {
        if !apply {
            report.push(id, StepStatus::Changed, detail);
            return Ok(true);
        }
        let out = conn.sudo(script, stdin)?;
        if out.ok() {
            report.push(id, StepStatus::Changed, detail);
            Ok(true)
        } else {
            report.push(id, StepStatus::Failed, format!("{detail}: {}", last_lines(&out.stderr_str(), 3)));
            Ok(false)
        }
    };
    match step {
        Step::Packages { id, names } => {
            // Packages come from the mirror the document names, for the host's own release.
            let codename = if facts.codename.is_empty() { "bookworm" } else { facts.codename.as_str() };
            let mirror_list = format!("# Written by terroir: the package mirror of the Platform document.\ndeb {} {codename} main\n", mirror);
            let mirror_ok = facts.mirror_list_sha == sha256_hex(mirror_list.as_bytes());
            let missing: Vec<&String> = names.iter().filter(|n| !facts.installed.contains(*n)).collect();
            if missing.is_empty() && mirror_ok {
                report.push(id, StepStatus::Unchanged, "");
            } else {
                let list: Vec<String> = missing.iter().map(|n| shell_quote(n)).collect();
                let install = if list.is_empty() {
                    String::new()
                } else {
                    format!(" && apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confold {}", list.join(" "))
                };
                let script = format!(
                    // wait for a dpkg run still going (for example one whose terroir was killed)
                    "export DEBIAN_FRONTEND=noninteractive; printf '%s' {} > {MIRROR_LIST}.new && mv -f {MIRROR_LIST}.new {MIRROR_LIST} && \
                     apt-get update -qq -o DPkg::Lock::Timeout=600{install}",
                    shell_quote(&mirror_list)
                );
                let mut what = Vec::new();
                if !mirror_ok {
                    what.push(format!("use mirror {mirror}"));
                }
                if !missing.is_empty() {
                    what.push(format!("install {}", missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")));
                }
                run(id, &script, None, what.join("; "), report)?;
            }
        }
        Step::User { id, user } => {
            if facts.users.contains(&user.name) {
                report.push(id, StepStatus::Unchanged, "");
            } else {
                let home = user.home.as_deref().map(|h| format!("--home-dir {} --create-home ", shell_quote(h))).unwrap_or_default();
                let system = if user.system { "--system " } else { "" };
                let script = format!("useradd {system}{home}--shell /usr/sbin/nologin --user-group {}", shell_quote(&user.name));
                run(id, &script, None, format!("create user {}", user.name), report)?;
            }
        }
        Step::Directory { id, directory: d } => {
            let want = format!("{} {} {}", d.owner, d.group, normalize_mode(&d.mode));
            match facts.dirs.get(&d.path) {
                Some(have) if *have == want => report.push(id, StepStatus::Unchanged, ""),
                have => {
                    let detail = match have {
                        Some(h) => format!("{} is {h}, want {want}", d.path),
                        None => format!("create {} ({want})", d.path),
                    };
                    let script = format!("install -d -o {} -g {} -m {} {}", shell_quote(&d.owner), shell_quote(&d.group), shell_quote(&d.mode), shell_quote(&d.path));
                    run(id, &script, None, detail, report)?;
                }
            }
        }
        Step::File { id, file: f } => {
            let key = format!("baremetal/hosts/{}/{}", host.name, f.source);
            let Some(content) = tree.get(&key) else {
                report.push(id, StepStatus::Failed, format!("{key} is not in the rendered tree"));
                return Ok(());
            };
            let want_meta = format!("{} {} {}", f.owner, f.group, normalize_mode(&f.mode));
            let have = facts.files.get(&f.dest);
            let content_ok = have.is_some_and(|(_, sha)| *sha == f.sha256);
            let meta_ok = have.is_some_and(|(meta, _)| *meta == want_meta);
            if content_ok && meta_ok {
                report.push(id, StepStatus::Unchanged, "");
            } else {
                debug_assert_eq!(sha256_hex(content), f.sha256);
                let detail = match have {
                    None => format!("create {} ({} bytes)", f.dest, content.len()),
                    Some(_) if !content_ok => format!("update {} (content differs)", f.dest),
                    Some((meta, _)) => format!("{} is {meta}, want {want_meta}", f.dest),
                };
                let script = upload_script(&f.dest, &f.sha256, &f.owner, &f.group, &f.mode);
                if run(id, &script, Some(content), detail, report)? && !content_ok {
                    restart.extend(f.restarts.iter().cloned());
                }
            }
        }
        Step::Service { id, service } => {
            let name = &service.name;
            let running = facts.running.contains(name);
            let q = shell_quote(name);
            let control = |action: &str| -> String {
                if facts.systemd {
                    format!("systemctl {action} {q}")
                } else if name == "nftables" && !facts.init_scripts.contains(name) {
                    // Debian ships nftables with a systemd unit only: load the rules directly.
                    "nft -f /etc/nftables.conf".to_owned()
                } else if name == "rsyslog" && !facts.init_scripts.contains(name) {
                    // and rsyslog too (Debian 12): run the daemon itself, which forks
                    if action == "start" { "rsyslogd".to_owned() } else { "pkill -x rsyslogd; while pidof rsyslogd >/dev/null; do sleep 0.1; done; rsyslogd".to_owned() }
                } else {
                    format!("/etc/init.d/{name} {action}")
                }
            };
            let enable = if facts.systemd && service.enabled { format!("systemctl enable --quiet {q}; ") } else { String::new() };
            if restart.contains(name) && (running || !apply) {
                let action = if running { "restart" } else { "start" };
                run(id, &format!("{enable}{}", control(action)), None, format!("{action} {name}: its configuration changed"), report)?;
            } else if !running {
                run(id, &format!("{enable}{}", control("start")), None, format!("start {name}"), report)?;
            } else {
                report.push(id, StepStatus::Unchanged, "");
            }
        }
        Step::Secret { id, secret } => {
            let value = match (secrets.get(&secret.secret), apply) {
                (Ok(Some(v)), _) => Some(v),
                (Ok(None), _) if secret.provided => {
                    let what = format!("secret {} is not in the store: it is given, not generated; set it with `terroir secrets set FILE {}` (value on stdin)", secret.secret, secret.secret);
                    report.push(id, if apply { StepStatus::Failed } else { StepStatus::Changed }, what);
                    return Ok(());
                }
                (Ok(None), false) => None,
                (Ok(None), true) => match secrets.get_or_create(&secret.secret) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        report.push(id, StepStatus::Failed, e.to_string());
                        return Ok(());
                    }
                },
                (Err(e), _) => {
                    report.push(id, StepStatus::Failed, e.to_string());
                    return Ok(());
                }
            };
            let want_meta = format!("{} {} {}", secret.owner, secret.group, normalize_mode(&secret.mode));
            let have = facts.files.get(&secret.dest);
            let sha = value.as_deref().map(|v| sha256_hex(v.as_bytes()));
            let content_ok = match (&sha, have) {
                (Some(sha), Some((_, have_sha))) => sha == have_sha,
                _ => false,
            };
            if content_ok && have.is_some_and(|(meta, _)| *meta == want_meta) {
                report.push(id, StepStatus::Unchanged, "");
            } else {
                // the detail names the secret, never its value
                let detail = if have.is_none() { format!("write secret {} to {}", secret.secret, secret.dest) } else { format!("update secret {} in {}", secret.secret, secret.dest) };
                let script = upload_script(&secret.dest, sha.as_deref().unwrap_or_default(), &secret.owner, &secret.group, &secret.mode);
                let bytes = value.unwrap_or_default().into_bytes();
                if run(id, &script, Some(&bytes), detail, report)? && !content_ok {
                    restart.extend(secret.restarts.iter().cloned());
                }
            }
        }
        Step::Artifact { id, artifact } => {
            let release = format!("releases/{}", artifact.sha256);
            if facts.current_release == release {
                report.push(id, StepStatus::Unchanged, "");
            } else if !apply {
                // plan changes nothing and downloads nothing
                report.push(id, StepStatus::Changed, format!("install release {} from {}", &artifact.sha256[..12], artifact.url));
            } else {
                let bytes = match fetch_artifact(&artifact.url) {
                    Ok(b) if sha256_hex(&b) == artifact.sha256 => b,
                    Ok(b) => {
                        report.push(id, StepStatus::Failed, format!("{} has SHA-256 {}, not the pinned {}; refusing to install it", artifact.url, sha256_hex(&b), artifact.sha256));
                        return Ok(());
                    }
                    Err(e) => {
                        report.push(id, StepStatus::Failed, e);
                        return Ok(());
                    }
                };
                let dir = shell_quote(&artifact.dir);
                let sha = shell_quote(&artifact.sha256);
                // unpack beside, then switch the `current` link with one rename
                let script = format!(
                    "set -e; cd {dir}; mkdir -p releases; t=$(mktemp releases/.terroir-XXXXXX); trap 'rm -rf \"$t\" \"$t.d\"' EXIT; \
                     cat > \"$t\"; echo {sha} \"$t\" | sha256sum -c --status; \
                     if [ ! -d releases/{sha} ]; then mkdir \"$t.d\"; tar -xzf \"$t\" -C \"$t.d\"; chmod 0755 \"$t.d\"; mv \"$t.d\" releases/{sha}; fi; \
                     ln -sfn releases/{sha} .current.new; mv -T .current.new current"
                );
                let detail = format!("install release {} ({} bytes)", &artifact.sha256[..12], bytes.len());
                if run(id, &script, Some(&bytes), detail, report)? {
                    restart.extend(artifact.restarts.iter().cloned());
                }
            }
        }
        Step::Command { id, command } => {
            // The probe's answer is from before this run: once something changed on the host (a
            // new password file, a restarted service), ask the check again before skipping.
            let done = facts.created.contains(&command.name)
                && !(apply && report.changed > 0 && !conn.sudo(&format!("( {} ) >/dev/null 2>&1", command.done_check()), None)?.ok());
            if done {
                report.push(id, StepStatus::Unchanged, "");
            } else {
                run(id, &command.run, None, command.name.clone(), report)?;
            }
        }
        Step::Firewall { id, rules } => {
            // The rules are enforced by /etc/nftables.conf (a file step) and the nftables service.
            report.push(id, StepStatus::Unchanged, format!("{} rules, in /etc/nftables.conf", rules.len()));
        }
    }
    Ok(())
}

/// Upload beside the destination, verify, set owner and mode, then rename: the destination is
/// either the old file or the complete new one, never a part. A run killed mid-upload leaves its
/// temporary file; the next upload into that directory removes it.
fn upload_script(dest: &str, sha256: &str, owner: &str, group: &str, mode: &str) -> String {
    let dest = shell_quote(dest);
    format!(
        "set -e; d=$(dirname {dest}); mkdir -p \"$d\"; rm -f \"$d\"/.terroir-??????; t=$(mktemp \"$d/.terroir-XXXXXX\"); trap 'rm -f \"$t\"' EXIT; \
         cat > \"$t\"; echo {sha} \"$t\" | sha256sum -c --status; \
         chown {owner}:{group} \"$t\"; chmod {mode} \"$t\"; mv -f \"$t\" {dest}; trap - EXIT",
        sha = shell_quote(sha256),
        owner = shell_quote(owner),
        group = shell_quote(group),
        mode = shell_quote(mode),
    )
}

/// Read a release archive named by URL, from the operator's machine: `https://` or `http://`
/// (downloaded here, then uploaded to the hosts, which need no access to it), `file://` or a path.
/// The caller checks its SHA-256 before anything is installed.
fn fetch_artifact(url: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    if url.starts_with("https://") || url.starts_with("http://") {
        let mut response = ureq::get(url).call().map_err(|e| format!("cannot download {url}: {e}"))?;
        let mut bytes = Vec::new();
        response.body_mut().as_reader().read_to_end(&mut bytes).map_err(|e| format!("cannot download {url}: {e}"))?;
        return Ok(bytes);
    }
    let path = match url.strip_prefix("file://") {
        Some(p) => p,
        None if url.contains("://") => return Err(format!("{url}: artifacts are fetched over https://, http:// or file://")),
        None => url,
    };
    std::fs::read(path).map_err(|e| format!("cannot read artifact {path}: {e}"))
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
