//! What is on a host now, as the plan's steps need to know it: one shell script built from the
//! steps, run once as root, and a pure parser of its output.
//!
//! Each fact is one line, a tag then its values: `I systemd`, `P <package> <status>`,
//! `U <user>`, `D <path> <owner> <group> <mode>`, `F <path> <owner> <group> <mode> <sha256>`,
//! `S <running service>`, `X <service with an init script>`, `C <command already done>`,
//! `A <current release>`, `M <codename> <sha256 of the mirror list>`.

use std::collections::{BTreeMap, BTreeSet};

use super::ssh::{Connection, SshError, shell_quote};
use crate::pipeline::render::plan::{HostPlan, Step};

/// terroir's own apt source list on each host.
pub const MIRROR_LIST: &str = "/etc/apt/sources.list.d/terroir-mirror.list";

/// What is on the host now, gathered in one round trip.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Facts {
    pub systemd: bool,
    pub installed: BTreeSet<String>,
    pub users: BTreeSet<String>,
    /// path -> "owner group mode"
    pub dirs: BTreeMap<String, String>,
    /// path -> file
    pub files: BTreeMap<String, FileFacts>,
    pub running: BTreeSet<String>,
    pub init_scripts: BTreeSet<String>,
    /// commands whose check says they already ran
    pub done: BTreeSet<String>,
    /// where `<dir>/current` points, for artifacts
    pub current_release: String,
    /// Debian release of the host, and the SHA-256 of terroir's apt source list
    pub codename: String,
    pub mirror_list_sha: String,
}

/// A file on the host: `owner group mode` (mode in four digits, as `stat` prints it) and SHA-256.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FileFacts {
    pub meta: String,
    pub sha256: String,
}

/// Probe `host` for everything its steps compare against.
pub fn probe(conn: &Connection, host: &HostPlan) -> Result<Facts, SshError> {
    let out = conn.sudo(&script(host), None)?;
    Ok(Facts::parse(&out.stdout_str()))
}

/// The probe of `host`'s steps: prints one tagged line per fact found, and always succeeds.
pub fn script(host: &HostPlan) -> String {
    let mut script = String::from("[ -d /run/systemd/system ] && echo 'I systemd'\n");
    for step in &host.steps {
        match step {
            Step::Packages { names, .. } => {
                script.push_str(&format!("echo \"M $(. /etc/os-release; echo $VERSION_CODENAME) $(sha256sum < {MIRROR_LIST} 2>/dev/null | cut -d' ' -f1)\"\n"));
                let list: Vec<String> = names.iter().map(|n| shell_quote(n)).collect();
                script.push_str(&format!(
                    "dpkg-query -W -f='P ${{Package}} ${{db:Status-Status}}\\n' {} 2>/dev/null\n",
                    list.join(" ")
                ));
            }
            Step::User { user, .. } => {
                script.push_str(&format!(
                    "getent passwd {0} >/dev/null && echo 'U {0}'\n",
                    shell_quote(&user.name)
                ));
            }
            Step::Directory { directory, .. } => {
                script.push_str(&format!(
                    "[ -d {0} ] && echo \"D {1} $(stat -c '%U %G %04a' {0})\"\n",
                    shell_quote(&directory.path),
                    directory.path
                ));
            }
            Step::File { file, .. } => script.push_str(&file_line(&file.dest)),
            Step::Service { service, .. } => {
                let n = shell_quote(&service.name);
                script.push_str(&format!(
                    "[ -x /etc/init.d/{n} ] && echo 'X {0}'\n",
                    service.name
                ));
                script.push_str(&format!(
                    "if [ -d /run/systemd/system ]; then systemctl is-active --quiet {n} && echo 'S {0}'; \
                     elif [ -x /etc/init.d/{n} ]; then /etc/init.d/{n} status >/dev/null 2>&1 && echo 'S {0}'; \
                     elif [ {n} = nftables ]; then nft list table inet terroir >/dev/null 2>&1 && echo 'S {0}'; \
                     elif [ {n} = rsyslog ]; then pidof rsyslogd >/dev/null && echo 'S {0}'; fi\n",
                    service.name
                ));
            }
            Step::Secret { secret, .. } => script.push_str(&file_line(&secret.dest)),
            Step::Artifact { artifact, .. } => {
                script.push_str(&format!(
                    "echo \"A $(readlink {}/current)\"\n",
                    shell_quote(&artifact.dir)
                ));
            }
            Step::Command { command, .. } => {
                script.push_str(&format!(
                    "if ( {} ) >/dev/null 2>&1; then echo 'C {}'; fi\n",
                    command.done_check(),
                    command.name
                ));
            }
            Step::Firewall { .. } => {}
        }
    }
    script.push_str("true\n");
    script
}

/// The probe line of a file: `F <path> <owner> <group> <mode> <sha256>` when it exists.
fn file_line(dest: &str) -> String {
    format!(
        "[ -f {0} ] && echo \"F {1} $(stat -c '%U %G %04a' {0}) $(sha256sum < {0} | cut -d' ' -f1)\"\n",
        shell_quote(dest),
        dest
    )
}

impl Facts {
    /// Read the probe's output; lines it does not know are skipped.
    pub fn parse(output: &str) -> Facts {
        let mut facts = Facts::default();
        for line in output.lines() {
            let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
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
                        facts.files.insert(
                            path,
                            FileFacts {
                                meta: meta.to_owned(),
                                sha256: sha.to_owned(),
                            },
                        );
                    }
                }
                "S" => {
                    facts.running.insert(rest.to_owned());
                }
                "X" => {
                    facts.init_scripts.insert(rest.to_owned());
                }
                "C" => {
                    facts.done.insert(rest.to_owned());
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
        facts
    }
}

/// Split `path a b c` into the path and its last `n` space-separated fields (a path may hold
/// spaces, the fields never do).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::render::plan::{CommandStep, FileStep, Service};

    #[test]
    fn every_kind_of_fact_is_read() {
        let output = "I systemd\n\
                      M bookworm 0a1b\n\
                      P postgresql installed\n\
                      P postfix not-installed\n\
                      U crm\n\
                      D /var/lib/my dir root root 0755\n\
                      F /etc/app/app env crm crm 0640 5f5f\n\
                      S postgresql\n\
                      X postgresql\n\
                      C create-role\n\
                      A releases/abc\n\
                      noise without a known tag\n";
        let facts = Facts::parse(output);
        assert!(facts.systemd);
        assert_eq!(
            (facts.codename.as_str(), facts.mirror_list_sha.as_str()),
            ("bookworm", "0a1b")
        );
        assert_eq!(
            facts.installed,
            BTreeSet::from(["postgresql".to_owned()]),
            "only installed packages count"
        );
        assert!(facts.users.contains("crm"));
        assert_eq!(
            facts.dirs.get("/var/lib/my dir").map(String::as_str),
            Some("root root 0755"),
            "paths keep their spaces"
        );
        assert_eq!(
            facts.files.get("/etc/app/app env"),
            Some(&FileFacts {
                meta: "crm crm 0640".into(),
                sha256: "5f5f".into()
            })
        );
        assert!(facts.running.contains("postgresql") && facts.init_scripts.contains("postgresql"));
        assert!(facts.done.contains("create-role"));
        assert_eq!(facts.current_release, "releases/abc");
    }

    #[test]
    fn an_empty_probe_finds_nothing() {
        assert_eq!(Facts::parse(""), Facts::default());
        // a line cut short is skipped rather than read wrong
        assert!(Facts::parse("F /etc/x root\n").files.is_empty());
        // `readlink` of a missing link prints nothing
        assert_eq!(Facts::parse("A \n").current_release, "");
    }

    #[test]
    fn the_script_asks_for_each_step_and_always_succeeds() {
        let host = HostPlan {
            name: "db1".into(),
            address: "198.18.0.11".into(),
            roles: Vec::new(),
            rollout: None,
            steps: vec![
                Step::File {
                    id: "file:/etc/it's".into(),
                    file: FileStep {
                        source: "x".into(),
                        dest: "/etc/it's".into(),
                        owner: "root".into(),
                        group: "root".into(),
                        mode: "0644".into(),
                        restarts: Vec::new(),
                        sha256: String::new(),
                    },
                },
                Step::Service {
                    id: "service:postgresql".into(),
                    service: Service {
                        name: "postgresql".into(),
                        enabled: true,
                        reload: false,
                    },
                },
                Step::Command {
                    id: "command:role".into(),
                    command: CommandStep {
                        name: "role".into(),
                        creates: Some("/var/lib/done".into()),
                        unless: None,
                        after: None,
                        run: "make-role".into(),
                    },
                },
            ],
        };
        let script = script(&host);
        assert!(
            script.contains(r"[ -f '/etc/it'\''s' ]"),
            "paths are quoted: {script}"
        );
        assert!(script.contains("/etc/init.d/'postgresql' status"));
        assert!(
            script
                .contains("if ( [ -e '/var/lib/done' ] ) >/dev/null 2>&1; then echo 'C role'; fi")
        );
        assert!(
            !script.contains("make-role"),
            "the probe never runs a command's work"
        );
        assert!(script.ends_with("true\n"));
    }
}
