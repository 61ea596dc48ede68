//! The pure diff: from a host's plan, its probed facts and the inputs the steps need, the change
//! each step asks for. No I/O here: secrets arrive resolved, artifacts are fetched by converge.
//!
//! Two decisions depend on what the run has already done on the host, so a change may carry an
//! alternative (`Unless`) that converge settles: a service restarts only if a change that
//! restarts it was really made, and a command the probe saw done is checked again once something
//! has changed on the host.

use std::collections::{BTreeMap, BTreeSet};

use super::probe::{Facts, MIRROR_LIST};
use super::ssh::shell_quote;
use crate::deploy::Mode;
use crate::pipeline::render::plan::{
    ArtifactStep, CommandStep, Directory, FileStep, HostPlan, SecretFile, Service, Step, User,
};
use crate::secrets::SecretError;
use crate::text::{error_chain, sha256_hex};

/// Held by terroir's package runs on a host, one at a time.
const PACKAGES_LOCK: &str = "/run/lock/terroir-packages.lock";

/// What the steps compare against, besides the host's facts.
pub struct Inputs<'a> {
    /// The rendered tree: contents by path (`baremetal/hosts/<host>/<source>`).
    pub tree: &'a BTreeMap<String, Vec<u8>>,
    /// Every secret the host's steps name, as the store gave it.
    pub secrets: &'a BTreeMap<String, SecretValue>,
    /// The document's Debian package mirror.
    pub mirror: &'a str,
    pub mode: Mode,
    /// What a release switch records in its history.
    pub switching: Switching,
}

/// What a switch of the application's release records: when (Unix seconds), and the restore
/// point of the database taken before it.
#[derive(Debug, Clone, Default)]
pub struct Switching {
    pub at: i64,
    pub restore_point: Option<crate::lifecycle::release::RestorePoint>,
}

/// A secret as read from the store before the diff (apply generates the missing ones first).
#[derive(Debug)]
pub enum SecretValue {
    Known(String),
    /// Not generated yet; plan leaves it so (the value, hence its digest, is unknown).
    NotYetGenerated,
    /// Given by the user (`terroir secrets set`), never generated, and not in the store.
    NotProvided,
    Unavailable(SecretError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Unchanged,
    WouldChange,
    /// Cannot be converged; `detail` says why.
    Failed,
}

/// The change one step asks for.
#[derive(Debug)]
pub struct Change<'a> {
    pub id: &'a str,
    pub status: Status,
    /// What differs (would change), or why it cannot be done (failed).
    pub detail: String,
    /// What apply runs for a would-change; plan runs nothing.
    pub action: Option<Action<'a>>,
    /// The change made instead, under a condition only the run can settle.
    pub unless: Option<Unless<'a>>,
    /// When set and this change fails, the host stops here: what follows depends on it.
    pub stops_host: Option<&'static str>,
}

/// A script run as root on the host.
#[derive(Debug)]
pub struct Action<'a> {
    pub script: String,
    pub input: Input<'a>,
    /// Services restarted once this action is made.
    pub restarts: &'a [String],
}

/// The standard input of an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input<'a> {
    None,
    Bytes(&'a [u8]),
    /// A release archive, fetched by converge from `url` and refused unless its SHA-256 is
    /// `sha256`: plan downloads nothing.
    Release {
        url: &'a str,
        sha256: &'a str,
    },
}

/// The condition under which a change gives way to `instead`.
#[derive(Debug)]
pub enum Unless<'a> {
    /// The probe said done, before this run changed anything: in apply, once something has
    /// changed on the host, `check` runs again and `instead` is made if it fails.
    CheckFails {
        check: String,
        instead: Box<Change<'a>>,
    },
    /// The probe said not done: in apply, once something has changed on the host (a service
    /// it needs just started, a standby that replicates what the command would make), `check`
    /// runs again and `instead` is made if it now passes.
    CheckPasses {
        check: String,
        instead: Box<Change<'a>>,
    },
    /// A restart for changed configuration: `instead` is made if no change restarting
    /// `service` was (in apply: an upload failed).
    NotRestarted {
        service: &'a str,
        instead: Box<Change<'a>>,
    },
}

impl<'a> Change<'a> {
    fn unchanged(id: &'a str) -> Self {
        Change {
            id,
            status: Status::Unchanged,
            detail: String::new(),
            action: None,
            unless: None,
            stops_host: None,
        }
    }

    fn failed(id: &'a str, why: String) -> Self {
        Change {
            id,
            status: Status::Failed,
            detail: why,
            action: None,
            unless: None,
            stops_host: None,
        }
    }

    fn make(id: &'a str, detail: String, action: Action<'a>) -> Self {
        Change {
            id,
            status: Status::WouldChange,
            detail,
            action: Some(action),
            unless: None,
            stops_host: None,
        }
    }
}

impl<'a> Action<'a> {
    fn run(script: String) -> Self {
        Action {
            script,
            input: Input::None,
            restarts: &[],
        }
    }
}

/// The changes that converge `host` from `facts`, one per step, in the plan's order.
pub fn diff<'a>(host: &'a HostPlan, facts: &Facts, inputs: &Inputs<'a>) -> Vec<Change<'a>> {
    // services whose configuration changes, were every change before them made
    let mut restarted: BTreeSet<&'a str> = BTreeSet::new();
    let mut changes = Vec::with_capacity(host.steps.len());
    for step in &host.steps {
        let change = match step {
            Step::Packages { id, names } => packages(id, names, facts, inputs.mirror),
            Step::User { id, user } => self::user(id, user, facts),
            Step::Directory { id, directory } => self::directory(id, directory, facts),
            Step::File { id, file } => self::file(id, &host.name, file, facts, inputs.tree),
            Step::Secret { id, secret } => self::secret(id, secret, facts, inputs),
            Step::Artifact { id, artifact } => self::artifact(id, artifact, facts, inputs),
            Step::Command { id, command } => self::command(id, command, facts, inputs.mode),
            Step::Service { id, service } => {
                self::service(id, service, facts, inputs.mode, &restarted)
            }
            Step::Firewall { id, rules } => {
                // enforced by /etc/nftables.conf (a file step) and the nftables service
                Change {
                    detail: format!("{} rules, in /etc/nftables.conf", rules.len()),
                    ..Change::unchanged(id)
                }
            }
        };
        if let (Status::WouldChange, Some(action)) = (change.status, &change.action) {
            restarted.extend(action.restarts.iter().map(String::as_str));
        }
        changes.push(change);
    }
    changes
}

/// The apt source list naming the document's mirror for the host's Debian release.
fn mirror_list(mirror: &str, codename: &str) -> String {
    format!(
        "# Written by terroir: the package mirror of the Platform document.\ndeb {mirror} {codename} main\n"
    )
}

fn packages<'a>(id: &'a str, names: &[String], facts: &Facts, mirror: &str) -> Change<'a> {
    let codename = if facts.codename.is_empty() {
        "bookworm"
    } else {
        facts.codename.as_str()
    };
    let list = mirror_list(mirror, codename);
    let mirror_ok = facts.mirror_list_sha == sha256_hex(list.as_bytes());
    let missing: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| !facts.installed.contains(*n))
        .collect();
    if missing.is_empty() && mirror_ok {
        return Change::unchanged(id);
    }
    let install = if missing.is_empty() {
        String::new()
    } else {
        let quoted: Vec<String> = missing.iter().map(|n| shell_quote(n)).collect();
        format!(
            " && apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confold {}",
            quoted.join(" ")
        )
    };
    let inner = format!(
        // finish first what a run cut short left half done (its apt and dpkg gone with it)
        "export DEBIAN_FRONTEND=noninteractive; printf '%s' {} > {MIRROR_LIST}.new && mv -f {MIRROR_LIST}.new {MIRROR_LIST} && \
         apt-get update -qq -o DPkg::Lock::Timeout=600 && \
         {{ [ -z \"$(ls -A /var/lib/dpkg/updates 2>/dev/null)\" ] || dpkg --force-confold --configure -a; }}{install}",
        shell_quote(&list)
    );
    // One package run at a time on a host: the run of an apply that was killed goes on without
    // its session, and apt's download lock does not wait (only dpkg's does, with the timeout).
    let script = format!(
        "flock -E 75 -w 600 {PACKAGES_LOCK} sh -c {}; rc=$?; \
         [ $rc != 75 ] || echo 'another package run on this host held {PACKAGES_LOCK} for 600 s' >&2; exit $rc",
        shell_quote(&inner)
    );
    let mut what = Vec::new();
    if !mirror_ok {
        what.push(format!("use mirror {mirror}"));
    }
    if !missing.is_empty() {
        what.push(format!("install {}", missing.join(", ")));
    }
    let stops_host = Some("packages could not be installed (see the packages step)");
    Change {
        stops_host,
        ..Change::make(id, what.join("; "), Action::run(script))
    }
}

fn user<'a>(id: &'a str, user: &User, facts: &Facts) -> Change<'a> {
    if facts.users.contains(&user.name) {
        return Change::unchanged(id);
    }
    let home = user
        .home
        .as_deref()
        .map(|h| format!("--home-dir {} --create-home ", shell_quote(h)))
        .unwrap_or_default();
    let system = if user.system { "--system " } else { "" };
    let script = format!(
        "useradd {system}{home}--shell /usr/sbin/nologin --user-group {}",
        shell_quote(&user.name)
    );
    Change::make(
        id,
        format!("create user {}", user.name),
        Action::run(script),
    )
}

/// A mode as `stat -c %04a` prints it.
fn normalize_mode(mode: &str) -> String {
    format!("{:0>4}", mode.trim_start_matches('0'))
}

fn directory<'a>(id: &'a str, d: &Directory, facts: &Facts) -> Change<'a> {
    let want = format!("{} {} {}", d.owner, d.group, normalize_mode(&d.mode));
    let detail = match facts.dirs.get(&d.path) {
        Some(have) if *have == want => return Change::unchanged(id),
        Some(have) => format!("{} is {have}, want {want}", d.path),
        None => format!("create {} ({want})", d.path),
    };
    let script = format!(
        "install -d -o {} -g {} -m {} {}",
        shell_quote(&d.owner),
        shell_quote(&d.group),
        shell_quote(&d.mode),
        shell_quote(&d.path)
    );
    Change::make(id, detail, Action::run(script))
}

fn file<'a>(
    id: &'a str,
    host: &str,
    f: &'a FileStep,
    facts: &Facts,
    tree: &'a BTreeMap<String, Vec<u8>>,
) -> Change<'a> {
    let key = format!("baremetal/hosts/{host}/{}", f.source);
    let Some(content) = tree.get(&key) else {
        return Change::failed(id, format!("{key} is not in the rendered tree"));
    };
    let want_meta = format!("{} {} {}", f.owner, f.group, normalize_mode(&f.mode));
    let have = facts.files.get(&f.dest);
    let content_ok = have.is_some_and(|h| h.sha256 == f.sha256);
    let meta_ok = have.is_some_and(|h| h.meta == want_meta);
    let detail = match have {
        _ if content_ok && meta_ok => return Change::unchanged(id),
        None => format!("create {} ({} bytes)", f.dest, content.len()),
        Some(_) if !content_ok => format!("update {} (content differs)", f.dest),
        Some(h) => format!("{} is {}, want {want_meta}", f.dest, h.meta),
    };
    let script = upload_script(&f.dest, &f.sha256, &f.owner, &f.group, &f.mode);
    // owner and mode alone restart nothing
    let restarts: &[String] = if content_ok { &[] } else { &f.restarts };
    Change::make(
        id,
        detail,
        Action {
            script,
            input: Input::Bytes(content),
            restarts,
        },
    )
}

fn secret<'a>(
    id: &'a str,
    secret: &'a SecretFile,
    facts: &Facts,
    inputs: &Inputs<'a>,
) -> Change<'a> {
    let value: Option<&'a str> = match inputs.secrets.get(&secret.secret) {
        Some(SecretValue::Known(v)) => Some(v.as_str()),
        Some(SecretValue::NotYetGenerated) => None,
        Some(SecretValue::NotProvided) => {
            let what = format!(
                "secret {0} is not in the store: it is given, not generated; set it with `terroir secrets set FILE {0}` (value on stdin)",
                secret.secret
            );
            let status = if inputs.mode == Mode::Apply {
                Status::Failed
            } else {
                Status::WouldChange
            };
            return Change {
                status,
                detail: what,
                ..Change::unchanged(id)
            };
        }
        Some(SecretValue::Unavailable(e)) => return Change::failed(id, error_chain(e)),
        None => {
            return Change::failed(
                id,
                format!(
                    "secret {} was not read from the store before the diff",
                    secret.secret
                ),
            );
        }
    };
    let want_meta = format!(
        "{} {} {}",
        secret.owner,
        secret.group,
        normalize_mode(&secret.mode)
    );
    let have = facts.files.get(&secret.dest);
    let sha = value.map(|v| sha256_hex(v.as_bytes()));
    let content_ok = matches!((&sha, have), (Some(sha), Some(h)) if *sha == h.sha256);
    if content_ok && have.is_some_and(|h| h.meta == want_meta) {
        return Change::unchanged(id);
    }
    // the detail names the secret, never its value
    let detail = match have {
        None => format!("write secret {} to {}", secret.secret, secret.dest),
        Some(_) => format!("update secret {} in {}", secret.secret, secret.dest),
    };
    let script = upload_script(
        &secret.dest,
        sha.as_deref().unwrap_or_default(),
        &secret.owner,
        &secret.group,
        &secret.mode,
    );
    let restarts: &[String] = if content_ok { &[] } else { &secret.restarts };
    Change::make(
        id,
        detail,
        Action {
            script,
            input: Input::Bytes(value.unwrap_or_default().as_bytes()),
            restarts,
        },
    )
}

fn artifact<'a>(
    id: &'a str,
    artifact: &'a ArtifactStep,
    facts: &Facts,
    inputs: &Inputs<'_>,
) -> Change<'a> {
    let mode = inputs.mode;
    if facts.current_release == format!("releases/{}", artifact.sha256) {
        return Change::unchanged(id);
    }
    let short = artifact.sha256.get(..12).unwrap_or(&artifact.sha256);
    // apply adds the size once it has the archive
    let detail = match mode {
        Mode::Plan => format!("install release {short} from {}", artifact.url),
        Mode::Apply => format!("install release {short}"),
    };
    let dir = shell_quote(&artifact.dir);
    let sha = shell_quote(&artifact.sha256);
    let switch = crate::lifecycle::release::Switch {
        at: inputs.switching.at,
        release: artifact.sha256.clone(),
        from: facts
            .current_release
            .strip_prefix("releases/")
            .filter(|r| !r.is_empty())
            .map(str::to_owned),
        restore_point: inputs.switching.restore_point.clone(),
        by: "apply".into(),
    };
    // unpack beside, then switch the `current` link with one rename, record the switch and
    // keep the newest releases
    let script = format!(
        "set -e; cd {dir}; mkdir -p releases; t=$(mktemp releases/.terroir-XXXXXX); trap 'rm -rf \"$t\" \"$t.d\"' EXIT; \
         cat > \"$t\"; echo {sha} \"$t\" | sha256sum -c --status; \
         if [ ! -d releases/{sha} ]; then mkdir \"$t.d\"; tar -xzf \"$t\" -C \"$t.d\"; chmod 0755 \"$t.d\"; mv \"$t.d\" releases/{sha}; fi; \
         {}",
        super::release::switch_script(&switch, artifact.keep)
    );
    let input = Input::Release {
        url: &artifact.url,
        sha256: &artifact.sha256,
    };
    Change::make(
        id,
        detail,
        Action {
            script,
            input,
            restarts: &artifact.restarts,
        },
    )
}

fn command<'a>(id: &'a str, command: &CommandStep, facts: &Facts, mode: Mode) -> Change<'a> {
    let run = Change::make(id, command.name.clone(), Action::run(command.run.clone()));
    if !facts.done.contains(&command.name) {
        return match mode {
            Mode::Apply => Change {
                unless: Some(Unless::CheckPasses {
                    check: format!("( {} ) >/dev/null 2>&1", command.done_check()),
                    instead: Box::new(Change {
                        detail: "done meanwhile".to_owned(),
                        ..Change::unchanged(id)
                    }),
                }),
                ..run
            },
            Mode::Plan => run,
        };
    }
    match mode {
        // the probe's answer is from before this run: a new password file or a restarted
        // service may undo what the check saw
        Mode::Apply => {
            let check = format!("( {} ) >/dev/null 2>&1", command.done_check());
            Change {
                unless: Some(Unless::CheckFails {
                    check,
                    instead: Box::new(run),
                }),
                ..Change::unchanged(id)
            }
        }
        Mode::Plan => Change::unchanged(id),
    }
}

fn service<'a>(
    id: &'a str,
    service: &'a Service,
    facts: &Facts,
    mode: Mode,
    restarted: &BTreeSet<&str>,
) -> Change<'a> {
    let name = service.name.as_str();
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
            if action == "start" {
                "rsyslogd".to_owned()
            } else {
                "pkill -x rsyslogd; while pidof rsyslogd >/dev/null; do sleep 0.1; done; rsyslogd"
                    .to_owned()
            }
        } else {
            format!("/etc/init.d/{name} {action}")
        }
    };
    let enable = if facts.systemd && service.enabled {
        format!("systemctl enable --quiet {q}; ")
    } else {
        String::new()
    };
    // without systemd, a service started here starts at boot too: its init script's links
    let special = (name == "nftables" || name == "rsyslog") && !facts.init_scripts.contains(name);
    let at_boot = if !facts.systemd && service.enabled && !special {
        format!("[ ! -x /etc/init.d/{name} ] || update-rc.d {q} defaults >/dev/null 2>&1; ")
    } else {
        enable.clone()
    };
    let untouched = if running {
        Change::unchanged(id)
    } else {
        Change::make(
            id,
            format!("start {name}"),
            Action::run(format!("{at_boot}{}", control("start"))),
        )
    };
    // apply starts a stopped service plainly: starting it reads the new configuration anyway
    if !restarted.contains(name) || (!running && mode == Mode::Apply) {
        return untouched;
    }
    let action = match (running, service.reload) {
        (true, true) => "reload",
        (true, false) => "restart",
        (false, _) => "start",
    };
    let change = Change::make(
        id,
        format!("{action} {name}: its configuration changed"),
        Action::run(format!("{enable}{}", control(action))),
    );
    Change {
        unless: Some(Unless::NotRestarted {
            service: name,
            instead: Box::new(untouched),
        }),
        ..change
    }
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::deploy::baremetal::probe::FileFacts;
    use crate::pipeline::render::plan::FirewallRule;

    pub const OTHER_SHA: &str = "1c8f8a32a6a6d6c0bf8b0ae4dbb3b2c6c34b9a0c88fa6ab10e4a0fdd3e22d5a1";

    pub fn host(steps: Vec<Step>) -> HostPlan {
        HostPlan {
            name: "db1".into(),
            address: "198.18.0.11".into(),
            roles: Vec::new(),
            steps,
            rollout: None,
        }
    }

    pub fn file_step(dest: &str, restarts: &[&str], content: &[u8]) -> Step {
        let file = FileStep {
            source: "conf".into(),
            dest: dest.into(),
            owner: "root".into(),
            group: "postgres".into(),
            mode: "640".into(),
            restarts: restarts.iter().map(|s| (*s).to_owned()).collect(),
            sha256: sha256_hex(content),
        };
        Step::File {
            id: format!("file:{dest}"),
            file,
        }
    }

    pub fn service_step(name: &str) -> Step {
        Step::Service {
            id: format!("service:{name}"),
            service: Service {
                name: name.into(),
                enabled: true,
                reload: false,
            },
        }
    }

    pub fn secret_step(name: &str, provided: bool) -> Step {
        let secret = SecretFile {
            secret: name.into(),
            dest: format!("/etc/app/{name}"),
            owner: "app".into(),
            group: "app".into(),
            mode: "0600".into(),
            restarts: vec!["app".into()],
            provided,
        };
        Step::Secret {
            id: format!("secret:/etc/app/{name}"),
            secret,
        }
    }

    pub fn command_step(name: &str) -> Step {
        Step::Command {
            id: format!("command:{name}"),
            command: CommandStep {
                name: name.into(),
                creates: None,
                unless: Some("test -e /done".into()),
                after: None,
                run: format!("make-{name}"),
            },
        }
    }

    pub fn tree(content: &[u8]) -> BTreeMap<String, Vec<u8>> {
        BTreeMap::from([("baremetal/hosts/db1/conf".to_owned(), content.to_vec())])
    }

    /// The diff of `steps` on `facts`, as (id, status, detail) triples.
    fn diffed(
        steps: Vec<Step>,
        facts: &Facts,
        secrets: &BTreeMap<String, SecretValue>,
        mode: Mode,
    ) -> Vec<(String, Status, String)> {
        let host = host(steps);
        let tree = tree(b"max_connections = 150\n");
        let inputs = Inputs {
            tree: &tree,
            secrets,
            mirror: "http://deb.debian.org/debian",
            mode,
            switching: Switching::default(),
        };
        diff(&host, facts, &inputs)
            .into_iter()
            .map(|c| (c.id.to_owned(), c.status, c.detail))
            .collect()
    }

    fn one(step: Step, facts: &Facts, mode: Mode) -> (Status, String) {
        let (_, status, detail) = diffed(vec![step], facts, &BTreeMap::new(), mode).remove(0);
        (status, detail)
    }

    fn mirror_facts() -> Facts {
        let list = mirror_list("http://deb.debian.org/debian", "bookworm");
        Facts {
            codename: "bookworm".into(),
            mirror_list_sha: sha256_hex(list.as_bytes()),
            ..Facts::default()
        }
    }

    #[test]
    fn packages_installed_from_the_mirror_are_unchanged() {
        let step = || Step::Packages {
            id: "packages".into(),
            names: vec!["postfix".into(), "postgresql".into()],
        };
        let mut facts = mirror_facts();
        facts.installed = BTreeSet::from(["postfix".into(), "postgresql".into()]);
        assert_eq!(
            one(step(), &facts, Mode::Apply),
            (Status::Unchanged, String::new())
        );

        facts.installed.remove("postgresql");
        assert_eq!(
            one(step(), &facts, Mode::Apply),
            (Status::WouldChange, "install postgresql".into())
        );
        facts.mirror_list_sha = "other".into();
        assert_eq!(
            one(step(), &facts, Mode::Plan),
            (
                Status::WouldChange,
                "use mirror http://deb.debian.org/debian; install postgresql".into()
            )
        );

        let host = host(vec![step()]);
        let inputs = Inputs {
            tree: &BTreeMap::new(),
            secrets: &BTreeMap::new(),
            mirror: "http://deb.debian.org/debian",
            mode: Mode::Apply,
            switching: Switching::default(),
        };
        let change = diff(&host, &facts, &inputs).remove(0);
        assert!(
            change.stops_host.is_some(),
            "everything after the packages depends on them"
        );
        let script = change.action.map(|a| a.script).unwrap_or_default();
        assert!(
            script.contains("apt-get install")
                && script.contains("'postgresql'")
                && !script.contains("'postfix'"),
            "{script}"
        );
        // one package run at a time, and a run cut short is finished first
        assert!(
            script.starts_with("flock -E 75 -w 600 /run/lock/terroir-packages.lock sh -c ")
                && script.contains("dpkg --force-confold --configure -a"),
            "{script}"
        );
        assert!(
            script.contains("deb http://deb.debian.org/debian bookworm main"),
            "the host's own release: {script}"
        );
    }

    #[test]
    fn a_missing_user_is_created() {
        let step = || Step::User {
            id: "user:crm".into(),
            user: User {
                name: "crm".into(),
                home: Some("/var/lib/crm".into()),
                system: true,
            },
        };
        let facts = Facts {
            users: BTreeSet::from(["crm".into()]),
            ..Facts::default()
        };
        assert_eq!(
            one(step(), &facts, Mode::Apply),
            (Status::Unchanged, String::new())
        );
        assert_eq!(
            one(step(), &Facts::default(), Mode::Apply),
            (Status::WouldChange, "create user crm".into())
        );
        let host = host(vec![step()]);
        let inputs = Inputs {
            tree: &BTreeMap::new(),
            secrets: &BTreeMap::new(),
            mirror: "",
            mode: Mode::Apply,
            switching: Switching::default(),
        };
        let script = diff(&host, &Facts::default(), &inputs)
            .remove(0)
            .action
            .map(|a| a.script)
            .unwrap_or_default();
        assert_eq!(
            script,
            "useradd --system --home-dir '/var/lib/crm' --create-home --shell /usr/sbin/nologin --user-group 'crm'"
        );
    }

    #[test]
    fn a_directory_is_created_or_given_its_owner_and_mode() {
        let step = || Step::Directory {
            id: "directory:/srv/crm".into(),
            directory: Directory {
                path: "/srv/crm".into(),
                owner: "crm".into(),
                group: "crm".into(),
                mode: "750".into(),
            },
        };
        let facts = |attrs: &str| Facts {
            dirs: BTreeMap::from([("/srv/crm".into(), attrs.into())]),
            ..Facts::default()
        };
        assert_eq!(
            one(step(), &facts("crm crm 0750"), Mode::Apply),
            (Status::Unchanged, String::new()),
            "modes compare in four digits"
        );
        assert_eq!(
            one(step(), &facts("root root 0755"), Mode::Apply),
            (
                Status::WouldChange,
                "/srv/crm is root root 0755, want crm crm 0750".into()
            )
        );
        assert_eq!(
            one(step(), &Facts::default(), Mode::Plan),
            (Status::WouldChange, "create /srv/crm (crm crm 0750)".into())
        );
    }

    #[test]
    fn a_file_changes_when_its_content_or_its_owner_and_mode_differ() {
        let content = b"max_connections = 150\n";
        let dest = "/etc/postgresql/15/main/postgresql.conf";
        let on_host = |meta: &str, sha: &str| Facts {
            files: BTreeMap::from([(
                dest.into(),
                FileFacts {
                    meta: meta.into(),
                    sha256: sha.into(),
                },
            )]),
            ..Facts::default()
        };
        let sha = sha256_hex(content);
        let step = || file_step(dest, &["postgresql"], content);
        assert_eq!(
            one(step(), &on_host("root postgres 0640", &sha), Mode::Apply),
            (Status::Unchanged, String::new())
        );
        assert_eq!(
            one(
                step(),
                &on_host("root postgres 0640", OTHER_SHA),
                Mode::Apply
            ),
            (
                Status::WouldChange,
                format!("update {dest} (content differs)")
            )
        );
        assert_eq!(
            one(step(), &on_host("root root 0644", &sha), Mode::Apply),
            (
                Status::WouldChange,
                format!("{dest} is root root 0644, want root postgres 0640")
            )
        );
        assert_eq!(
            one(step(), &Facts::default(), Mode::Apply),
            (Status::WouldChange, format!("create {dest} (22 bytes)"))
        );

        // only new content restarts the service; the upload carries the rendered bytes
        let host = host(vec![step()]);
        let tree = tree(content);
        let inputs = Inputs {
            tree: &tree,
            secrets: &BTreeMap::new(),
            mirror: "",
            mode: Mode::Apply,
            switching: Switching::default(),
        };
        let action = |facts: &Facts| diff(&host, facts, &inputs).remove(0).action;
        let new = action(&Facts::default());
        assert_eq!(
            new.as_ref().map(|a| (a.restarts.to_vec(), a.input)),
            Some((vec!["postgresql".to_owned()], Input::Bytes(content)))
        );
        assert!(
            new.map(|a| a.script)
                .unwrap_or_default()
                .contains(&format!("echo '{sha}' \"$t\" | sha256sum -c --status")),
            "verified before the rename"
        );
        let chmod = action(&on_host("root root 0644", &sha));
        assert_eq!(chmod.map(|a| a.restarts.len()), Some(0));
    }

    #[test]
    fn a_file_missing_from_the_rendered_tree_fails_its_step() {
        let host = host(vec![file_step("/etc/x", &[], b"x")]);
        let inputs = Inputs {
            tree: &BTreeMap::new(),
            secrets: &BTreeMap::new(),
            mirror: "",
            mode: Mode::Plan,
            switching: Switching::default(),
        };
        let change = diff(&host, &Facts::default(), &inputs).remove(0);
        assert_eq!(
            (change.status, change.detail.as_str()),
            (
                Status::Failed,
                "baremetal/hosts/db1/conf is not in the rendered tree"
            )
        );
    }

    #[test]
    fn a_secret_is_written_when_missing_or_different_and_never_shown() {
        let value = "s3cr3t-value";
        let on_host = |sha: &str| Facts {
            files: BTreeMap::from([(
                "/etc/app/db-password".into(),
                FileFacts {
                    meta: "app app 0600".into(),
                    sha256: sha.into(),
                },
            )]),
            ..Facts::default()
        };
        let known = BTreeMap::from([("db-password".to_owned(), SecretValue::Known(value.into()))]);
        let diffed_one = |facts: &Facts, secrets: &BTreeMap<String, SecretValue>, mode: Mode| {
            let (_, status, detail) = diffed(
                vec![secret_step("db-password", false)],
                facts,
                secrets,
                mode,
            )
            .remove(0);
            assert!(!detail.contains(value), "{detail}");
            (status, detail)
        };
        assert_eq!(
            diffed_one(&on_host(&sha256_hex(value.as_bytes())), &known, Mode::Apply),
            (Status::Unchanged, String::new())
        );
        assert_eq!(
            diffed_one(&on_host("old"), &known, Mode::Apply),
            (
                Status::WouldChange,
                "update secret db-password in /etc/app/db-password".into()
            )
        );
        assert_eq!(
            diffed_one(&Facts::default(), &known, Mode::Apply),
            (
                Status::WouldChange,
                "write secret db-password to /etc/app/db-password".into()
            )
        );
        // plan does not generate: a secret not generated yet would be written
        let later = BTreeMap::from([("db-password".to_owned(), SecretValue::NotYetGenerated)]);
        assert_eq!(
            diffed_one(&on_host("old"), &later, Mode::Plan),
            (
                Status::WouldChange,
                "update secret db-password in /etc/app/db-password".into()
            )
        );

        let host = host(vec![secret_step("db-password", false)]);
        let inputs = Inputs {
            tree: &BTreeMap::new(),
            secrets: &known,
            mirror: "",
            mode: Mode::Apply,
            switching: Switching::default(),
        };
        let action = diff(&host, &Facts::default(), &inputs).remove(0).action;
        assert_eq!(
            action.as_ref().map(|a| (a.input, a.restarts.to_vec())),
            Some((Input::Bytes(value.as_bytes()), vec!["app".to_owned()]))
        );
    }

    #[test]
    fn a_provided_secret_missing_from_the_store_fails_the_apply_and_shows_in_the_plan() {
        let missing = BTreeMap::from([("s3-key".to_owned(), SecretValue::NotProvided)]);
        for (mode, status) in [
            (Mode::Plan, Status::WouldChange),
            (Mode::Apply, Status::Failed),
        ] {
            let (_, got, detail) = diffed(
                vec![secret_step("s3-key", true)],
                &Facts::default(),
                &missing,
                mode,
            )
            .remove(0);
            assert_eq!(got, status);
            assert!(
                detail.contains("terroir secrets set FILE s3-key"),
                "{detail}"
            );
        }
        // nothing to write, so nothing to restart
        let steps = vec![secret_step("s3-key", true), service_step("app")];
        let facts = Facts {
            running: BTreeSet::from(["app".into()]),
            ..Facts::default()
        };
        assert_eq!(
            diffed(steps, &facts, &missing, Mode::Plan)[1].1,
            Status::Unchanged
        );

        let unreadable = BTreeMap::from([(
            "s3-key".to_owned(),
            SecretValue::Unavailable(SecretError::Name("s 3".into())),
        )]);
        let (_, status, detail) = diffed(
            vec![secret_step("s3-key", true)],
            &Facts::default(),
            &unreadable,
            Mode::Apply,
        )
        .remove(0);
        assert_eq!(status, Status::Failed);
        assert!(detail.contains("not a valid secret name"), "{detail}");
    }

    #[test]
    fn a_release_is_installed_unless_current_and_plan_downloads_nothing() {
        let sha = "ab".repeat(32);
        let step = || Step::Artifact {
            id: "artifact:/opt/crm".into(),
            artifact: ArtifactStep {
                url: "https://releases.example/crm.tar.gz".into(),
                sha256: sha.clone(),
                dir: "/opt/crm".into(),
                restarts: vec!["crm".into()],
                keep: 3,
            },
        };
        let current = Facts {
            current_release: format!("releases/{sha}"),
            ..Facts::default()
        };
        assert_eq!(
            one(step(), &current, Mode::Apply),
            (Status::Unchanged, String::new())
        );
        assert_eq!(
            one(step(), &Facts::default(), Mode::Plan),
            (
                Status::WouldChange,
                "install release abababababab from https://releases.example/crm.tar.gz".into()
            )
        );
        let host = host(vec![step()]);
        let inputs = Inputs {
            tree: &BTreeMap::new(),
            secrets: &BTreeMap::new(),
            mirror: "",
            mode: Mode::Apply,
            switching: Switching::default(),
        };
        let change = diff(&host, &Facts::default(), &inputs).remove(0);
        assert_eq!(change.detail, "install release abababababab");
        assert_eq!(
            change.action.map(|a| a.input),
            Some(Input::Release {
                url: "https://releases.example/crm.tar.gz",
                sha256: &sha
            }),
            "converge fetches it"
        );
    }

    #[test]
    fn a_command_runs_unless_done_and_apply_asks_again() {
        assert_eq!(
            one(command_step("role"), &Facts::default(), Mode::Plan),
            (Status::WouldChange, "role".into())
        );
        let done = Facts {
            done: BTreeSet::from(["role".into()]),
            ..Facts::default()
        };
        let host = host(vec![command_step("role")]);
        let (tree, secrets) = (BTreeMap::new(), BTreeMap::new());
        let changes = |mode| {
            diff(
                &host,
                &done,
                &Inputs {
                    tree: &tree,
                    secrets: &secrets,
                    mirror: "",
                    mode,
                    switching: Switching::default(),
                },
            )
            .remove(0)
        };
        let plan = changes(Mode::Plan);
        assert!(plan.status == Status::Unchanged && plan.unless.is_none());
        let apply = changes(Mode::Apply);
        assert_eq!(apply.status, Status::Unchanged);
        match apply.unless {
            Some(Unless::CheckFails { check, instead }) => {
                assert_eq!(check, "( test -e /done ) >/dev/null 2>&1");
                assert_eq!(
                    (instead.status, instead.detail.as_str()),
                    (Status::WouldChange, "role")
                );
                assert_eq!(
                    instead.action.map(|a| a.script),
                    Some("make-role".to_owned())
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_service_starts_when_stopped_and_restarts_when_its_configuration_changes() {
        let content = b"max_connections = 150\n";
        let running = Facts {
            running: BTreeSet::from(["postgresql".into()]),
            init_scripts: BTreeSet::from(["postgresql".into()]),
            ..Facts::default()
        };
        let stopped = Facts {
            init_scripts: BTreeSet::from(["postgresql".into()]),
            ..Facts::default()
        };
        assert_eq!(
            one(service_step("postgresql"), &running, Mode::Apply),
            (Status::Unchanged, String::new())
        );
        assert_eq!(
            one(service_step("postgresql"), &stopped, Mode::Apply),
            (Status::WouldChange, "start postgresql".into())
        );

        let with_file = || {
            vec![
                file_step("/etc/pg.conf", &["postgresql"], content),
                service_step("postgresql"),
            ]
        };
        let last =
            |facts: &Facts, mode| diffed(with_file(), facts, &BTreeMap::new(), mode).remove(1);
        assert_eq!(
            last(&running, Mode::Apply).2,
            "restart postgresql: its configuration changed"
        );
        assert_eq!(
            last(&stopped, Mode::Plan).2,
            "start postgresql: its configuration changed"
        );
        assert_eq!(
            last(&stopped, Mode::Apply).2,
            "start postgresql",
            "starting reads the new configuration anyway"
        );

        // the restart holds only if the file is really written
        let host = host(with_file());
        let tree = tree(content);
        let inputs = Inputs {
            tree: &tree,
            secrets: &BTreeMap::new(),
            mirror: "",
            mode: Mode::Apply,
            switching: Switching::default(),
        };
        let change = diff(&host, &running, &inputs).remove(1);
        assert_eq!(
            change.action.map(|a| a.script),
            Some("/etc/init.d/postgresql restart".to_owned())
        );
        match change.unless {
            Some(Unless::NotRestarted {
                service: "postgresql",
                instead,
            }) => assert_eq!(instead.status, Status::Unchanged),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn services_are_controlled_the_way_the_host_runs_them() {
        let host = host(vec![
            service_step("nginx"),
            service_step("nftables"),
            service_step("rsyslog"),
        ]);
        let inputs = Inputs {
            tree: &BTreeMap::new(),
            secrets: &BTreeMap::new(),
            mirror: "",
            mode: Mode::Apply,
            switching: Switching::default(),
        };
        let scripts = |facts: &Facts| -> Vec<String> {
            diff(&host, facts, &inputs)
                .into_iter()
                .filter_map(|c| c.action.map(|a| a.script))
                .collect()
        };
        let systemd = Facts {
            systemd: true,
            ..Facts::default()
        };
        assert_eq!(
            scripts(&systemd),
            [
                "systemctl enable --quiet 'nginx'; systemctl start 'nginx'",
                "systemctl enable --quiet 'nftables'; systemctl start 'nftables'",
                "systemctl enable --quiet 'rsyslog'; systemctl start 'rsyslog'"
            ]
        );
        assert_eq!(
            scripts(&Facts::default()),
            [
                // started at boot too, through its init script's links
                "[ ! -x /etc/init.d/nginx ] || update-rc.d 'nginx' defaults >/dev/null 2>&1; /etc/init.d/nginx start",
                "nft -f /etc/nftables.conf",
                "rsyslogd"
            ]
        );
    }

    #[test]
    fn the_firewall_is_enforced_by_its_file_and_service() {
        let rules = vec![FirewallRule {
            port: 5432,
            proto: "tcp".into(),
            from: vec!["198.18.0.13".into()],
            service: "postgresql".into(),
        }];
        assert_eq!(
            one(
                Step::Firewall {
                    id: "firewall".into(),
                    rules
                },
                &Facts::default(),
                Mode::Apply
            ),
            (Status::Unchanged, "1 rules, in /etc/nftables.conf".into())
        );
    }
}
