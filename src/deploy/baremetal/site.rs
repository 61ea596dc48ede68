//! A deployed bare-metal platform as the commands that reach into it see it (backup, export,
//! restore, drill, audit): its document rendered, the plan that was applied, and the SSH targets
//! of its hosts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::host_lock::HostLock;
use super::ssh::{Connection, Output, SshError, Target};
use crate::deploy::lock::Holder;
use crate::document::{Loaded, Role};
use crate::pipeline::blueprint::Catalog;
use crate::pipeline::render::plan::{Plan, Step};
use crate::pipeline::render::{RenderError, RenderedTree};
use crate::pipeline::resolve::ResolvedPlatform;
use crate::text::last_lines;

/// Lines of a remote command's output kept to say why it failed.
const TAIL: usize = 6;

#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error(transparent)]
    Document(#[from] crate::document::Invalid),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{}: target `{target}`: this command reaches the platform's hosts over SSH, so it runs on bare-metal targets only (export, restore and drill also run on Kubernetes targets; for this one, the rendered runbooks/reversibility.md gives the steps)",
        document.display()
    )]
    NotBareMetal {
        document: PathBuf,
        target: &'static str,
    },
    #[error("{}: {reason}", document.display())]
    Plan {
        document: PathBuf,
        reason: crate::pipeline::render::plan::NoPlan,
    },
    #[error("no host {host} in {}", document.display())]
    UnknownHost { host: String, document: PathBuf },
    #[error("host {host}")]
    Connect { host: String, source: Box<SshError> },
    /// Another run holds the platform's lock on the host.
    #[error(transparent)]
    Locked(Box<SshError>),
    #[error("host {host}: {what}")]
    Ssh {
        host: String,
        what: String,
        source: Box<SshError>,
    },
    /// The command ran and failed: its exit status and the last lines it wrote say why.
    #[error("host {host}: {what} failed (exit {status}): {output}")]
    Remote {
        host: String,
        what: String,
        status: i32,
        output: String,
    },
}

impl SiteError {
    /// A remote command that could not be run at all: the session failed.
    pub fn ssh(host: &str, what: &str) -> impl FnOnce(SshError) -> SiteError {
        let (host, what) = (host.to_owned(), what.to_owned());
        move |source| SiteError::Ssh {
            host,
            what,
            source: Box::new(source),
        }
    }

    /// A remote command that ended with `out`'s non-zero status: the tail of its error output,
    /// else of its standard output, so that the reason is never empty.
    pub fn remote(host: &str, what: impl Into<String>, out: &Output) -> Self {
        SiteError::Remote {
            host: host.to_owned(),
            what: what.into(),
            status: out.status,
            output: why(&out.stderr_str(), &out.stdout_str()),
        }
    }
}

/// Why a command failed, from what it wrote: the last lines of `stderr`, else of `stdout`.
pub fn why(stderr: &str, stdout: &str) -> String {
    let tail = last_lines(stderr, TAIL);
    if !tail.is_empty() {
        return tail;
    }
    let tail = last_lines(stdout, TAIL);
    if tail.is_empty() {
        "it wrote nothing".to_owned()
    } else {
        tail
    }
}

/// A bare-metal platform, ready to be reached: its document rendered, its plan, its hosts.
pub struct Site {
    pub document: PathBuf,
    pub document_text: Vec<u8>,
    pub resolved: ResolvedPlatform,
    pub tree: RenderedTree,
    pub plan: Plan,
    pub targets: BTreeMap<String, Target>,
    pub secrets: crate::secrets::SecretStore,
    /// Who changes the platform, when this run changes it: each host it reaches is locked.
    holder: Option<Holder>,
    /// The locks taken, held until the site is dropped.
    locks: std::sync::Mutex<BTreeMap<String, HostLock>>,
}

impl Site {
    /// The site of the document at `document`: loaded, checked and rendered.
    pub fn open(document: &Path, catalog: &Catalog) -> Result<Site, SiteError> {
        Site::new(
            document,
            &crate::pipeline::load(document, catalog)?,
            catalog,
        )
    }

    /// The site of the document at `document`, already loaded and checked.
    pub fn new(document: &Path, loaded: &Loaded, catalog: &Catalog) -> Result<Site, SiteError> {
        let (resolved, tree) = crate::pipeline::render::render(loaded, catalog)?;
        let p = &loaded.platform;
        if p.spec.target.baremetal().is_none() {
            return Err(SiteError::NotBareMetal {
                document: document.to_owned(),
                target: resolved.target_kind,
            });
        }
        let document_text = std::fs::read(document).map_err(|source| SiteError::Read {
            path: document.to_owned(),
            source,
        })?;
        let plan = Plan::from_tree(&tree).map_err(|reason| SiteError::Plan {
            document: document.to_owned(),
            reason,
        })?;
        let targets = p
            .spec
            .target
            .baremetal()
            .map(|b| super::targets(document, b, super::Reach::default()))
            .unwrap_or_default();
        let secrets = crate::secrets::SecretStore::for_platform(document, p);
        Ok(Site {
            document: document.to_owned(),
            document_text,
            resolved,
            tree,
            plan,
            targets,
            secrets,
            holder: None,
            locks: Default::default(),
        })
    }

    /// The site of a run's work: its rendered tree and plan, reached with the run's settings.
    pub fn from_work(work: &crate::deploy::Work<'_>) -> Result<Site, SiteError> {
        let document = work.document_path();
        let plan = Plan::from_tree(work.tree).map_err(|reason| SiteError::Plan {
            document: document.clone(),
            reason,
        })?;
        let settings = &work.settings.hosts;
        let reach = super::Reach {
            accept_new_host_keys: settings.accept_new_host_keys,
            connect_timeout: settings.connect_timeout,
            timeout: settings.command_timeout,
        };
        let p = &work.loaded.platform;
        let targets = p
            .spec
            .target
            .baremetal()
            .map(|b| super::targets(&document, b, reach))
            .ok_or_else(|| SiteError::NotBareMetal {
                document: document.clone(),
                target: work.resolved.target_kind,
            })?;
        Ok(Site {
            document_text: std::fs::read(&document).unwrap_or_default(),
            secrets: crate::secrets::SecretStore::for_platform(&document, p),
            document,
            resolved: work.resolved.clone(),
            tree: work.tree.clone(),
            plan,
            targets,
            holder: None,
            locks: Default::default(),
        })
    }

    /// This run changes the platform: every host it reaches is locked for `holder` until the site
    /// is dropped, so that no other run changes it meanwhile.
    pub fn changing(mut self, holder: Holder) -> Self {
        self.holder = Some(holder);
        self
    }

    pub fn name(&self) -> &str {
        &self.resolved.platform.name
    }

    /// Hosts holding `role`, in document order (sorted by name).
    pub fn hosts_with(&self, role: Role) -> Vec<String> {
        self.resolved
            .roles
            .get(role.as_str())
            .cloned()
            .unwrap_or_default()
    }

    pub fn address(&self, host: &str) -> String {
        self.targets
            .get(host)
            .map(|t| t.address.clone())
            .unwrap_or_default()
    }

    /// An SSH session to `host` whose user may use sudo; when the site is being changed, the
    /// host is locked first (once: the lock lives as long as the site).
    pub fn connect(&self, host: &str) -> Result<Connection, SiteError> {
        let target = self
            .targets
            .get(host)
            .ok_or_else(|| SiteError::UnknownHost {
                host: host.to_owned(),
                document: self.document.clone(),
            })?;
        let connected =
            Connection::open(target).and_then(|conn| conn.require_sudo().map(|()| conn));
        let conn = connected.map_err(|source| SiteError::Connect {
            host: host.to_owned(),
            source: Box::new(source),
        })?;
        if let Some(holder) = &self.holder {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            if !locks.contains_key(host) {
                let lock = conn
                    .lock_platform(self.name(), holder)
                    .map_err(|e| match e {
                        e @ (SshError::PlatformLocked { .. }
                        | SshError::PlatformLockedByUnknown { .. }) => {
                            SiteError::Locked(Box::new(e))
                        }
                        e => SiteError::Connect {
                            host: host.to_owned(),
                            source: Box::new(e),
                        },
                    })?;
                locks.insert(host.to_owned(), lock);
            }
        }
        Ok(conn)
    }

    /// Run a root script on `host` over a session of its own: its standard output; `what`
    /// names it in the error.
    pub fn run_on(&self, host: &str, what: &str, script: &str) -> Result<String, SiteError> {
        self.connect(host)
            .and_then(|conn| run(&conn, host, what, script))
    }

    /// Destinations of the non-secret configuration files the plan installs on `host`.
    pub fn deployed_files(&self, host: &str) -> Vec<String> {
        self.plan
            .hosts
            .iter()
            .filter(|h| h.name == host)
            .flat_map(|h| h.steps.iter())
            .filter_map(|s| {
                if let Step::File { file, .. } = s {
                    Some(file.dest.clone())
                } else {
                    None
                }
            })
            .collect()
    }
}

/// Run a root script on a host and return its standard output; `what` names it in the error.
pub fn run(conn: &Connection, host: &str, what: &str, script: &str) -> Result<String, SiteError> {
    let out = conn
        .sudo(script, None)
        .map_err(SiteError::ssh(host, what))?;
    if !out.ok() {
        return Err(SiteError::remote(host, what, &out));
    }
    Ok(out.stdout_str())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn output(status: i32, stdout: &str, stderr: &str) -> Output {
        Output {
            status,
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_remote_failure_names_the_host_the_command_its_status_and_why() {
        let e = SiteError::remote(
            "db1",
            "pg_dump of `crm`",
            &output(
                1,
                "",
                "pg_dump: error: connection failed\n\nFATAL: role \"x\" does not exist\n",
            ),
        );
        assert_eq!(
            e.to_string(),
            "host db1: pg_dump of `crm` failed (exit 1): pg_dump: error: connection failed | FATAL: role \"x\" does not exist"
        );
    }

    #[test]
    fn the_reason_is_never_empty() {
        assert_eq!(
            why("", "step 1\nstep 2: no space left\n"),
            "step 1 | step 2: no space left"
        );
        assert_eq!(why("  \n", ""), "it wrote nothing");
        let e = SiteError::remote("a1", "tar", &output(2, "", ""));
        assert!(e.to_string().ends_with("(exit 2): it wrote nothing"), "{e}");
    }
}
