//! One change at a time. Every command that changes a target takes the platform's lock: a file
//! beside the document (`.terroir/<platform>/lock`), a lock on each host for the length of the
//! SSH session (`deploy::baremetal`), a Lease beside the ApplySet parent on a cluster. A second
//! run stops at once and says who holds it; a holder shown to be gone is taken over, with a
//! message; `--force-unlock` takes over the rest. `plan` takes nothing and says when it is held.

use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Events, Mode};

/// Who holds a lock, and since when: written where the lock is, read back by whoever is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Holder {
    pub user: String,
    pub machine: String,
    pub pid: u32,
    /// RFC 3339, UTC.
    pub since: String,
    /// What it is doing (`apply`, `backup restore`...).
    pub command: String,
}

impl Holder {
    /// This process, about to run `command`.
    pub fn current(command: &str) -> Self {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| format!("uid {}", uid()));
        Holder {
            user,
            machine: machine(),
            pid: std::process::id(),
            since: crate::text::now_rfc3339(),
            command: command.to_owned(),
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`terroir {}` by {} on {} (process {}) since {}",
            self.command, self.user, self.machine, self.pid, self.since
        )
    }
}

fn uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

fn machine() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "{platform} is locked by {holder} ({place}): one change at a time; run it again once that one has finished"
    )]
    Held {
        platform: String,
        holder: Box<Holder>,
        place: String,
    },
    #[error(
        "{platform} is locked by {holder} ({place}), on another machine, where terroir cannot tell whether it still runs; \
         if it does not, run again with --force-unlock"
    )]
    ElsewhereHeld {
        platform: String,
        holder: Box<Holder>,
        place: String,
    },
    #[error("cannot take the lock {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("Lease {namespace}/{name}: {message}")]
    Lease {
        namespace: String,
        name: String,
        message: String,
    },
}

impl LockError {
    pub fn hints(&self) -> Vec<String> {
        match self {
            LockError::Held { .. } => {
                vec!["`terroir plan` runs beside it, and shows what is left to change".into()]
            }
            _ => Vec::new(),
        }
    }

    /// Who holds it, when the refusal is about a holder.
    pub fn holder(&self) -> Option<&Holder> {
        match self {
            LockError::Held { holder, .. } | LockError::ElsewhereHeld { holder, .. } => {
                Some(holder)
            }
            _ => None,
        }
    }
}

/// `.terroir/<platform>/lock` beside the document, where its secret store lives too.
pub fn lock_file(document: &Path, platform: &str) -> PathBuf {
    let base = document
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    base.join(".terroir").join(platform).join("lock")
}

/// The platform's lock file, held while this value lives. Held with flock(2), so the kernel
/// releases it when the process ends however it ends; the holder written inside says who.
pub struct Platform {
    file: std::fs::File,
}

impl Drop for Platform {
    fn drop(&mut self) {
        // an empty file is a lock released cleanly; the kernel drops the flock with the file
        let _ = self.file.set_len(0);
    }
}

fn read_holder(file: &mut std::fs::File) -> Option<Holder> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

fn flock(file: &std::fs::File, how: libc::c_int) -> bool {
    // SAFETY: flock on a file descriptor this process owns.
    unsafe { libc::flock(file.as_raw_fd(), how | libc::LOCK_NB) == 0 }
}

impl Platform {
    /// In apply mode, take the lock beside `document` (none for a Platform resource, which the
    /// operator's leader election serialises). In plan mode, only say when it is held.
    pub fn take(
        document: Option<&Path>,
        platform: &str,
        mode: Mode,
        force: bool,
        holder: &Holder,
        events: &dyn Events,
    ) -> Result<Option<Platform>, LockError> {
        let Some(document) = document else {
            return Ok(None);
        };
        let path = lock_file(document, platform);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        if mode == Mode::Plan {
            if let Ok(mut file) = std::fs::File::open(&path)
                && !flock(&file, libc::LOCK_SH)
                && let Some(h) = read_holder(&mut file)
            {
                events.warn(&format!("{platform} is locked by {h}: a change is under way, this plan may not show its end"));
            }
            return Ok(None);
        }
        if let Some(dir) = path.parent() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io)?;
        }
        let mut file = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)
                .map_err(io)?
        };
        let place = format!("lock file {}", path.display());
        if !flock(&file, libc::LOCK_EX) {
            return Err(match read_holder(&mut file) {
                Some(h) => LockError::Held {
                    platform: platform.to_owned(),
                    holder: Box::new(h),
                    place,
                },
                // taken a moment ago, its holder not written yet
                None => LockError::Held {
                    platform: platform.to_owned(),
                    holder: Box::new(Holder {
                        user: "?".into(),
                        machine: machine(),
                        pid: 0,
                        since: "now".into(),
                        command: "?".into(),
                    }),
                    place,
                },
            });
        }
        if let Some(previous) = read_holder(&mut file) {
            if previous.machine == holder.machine {
                // the kernel released its flock: that process is gone
                events.warn(&format!("the lock of {platform} was stale: {previous} ended without releasing it; taking it over"));
            } else if force {
                events.warn(&format!(
                    "taking over the lock of {platform} from {previous} (--force-unlock)"
                ));
            } else {
                return Err(LockError::ElsewhereHeld {
                    platform: platform.to_owned(),
                    holder: Box::new(previous),
                    place,
                });
            }
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        let text = serde_json::to_string(holder).unwrap_or_default();
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io)?;
        Ok(Some(Platform { file }))
    }
}

/// How long a Lease holds without renewal, and how often its holder renews it.
const LEASE_SECONDS: i32 = 60;
const RENEW_EVERY: Duration = Duration::from_secs(20);
/// The annotation holding the holder's details on the Lease.
const HOLDER_ANNOTATION: &str = "terroir.eu/holder";

/// The platform's Lease on a cluster (`terroir-<platform>-lock` beside the ApplySet parent),
/// renewed while this value lives. Dropping it stops the renewal; `release` gives it back at once.
pub struct Lease {
    api: kube::Api<k8s_openapi::api::coordination::v1::Lease>,
    name: String,
    renewal: tokio::task::JoinHandle<()>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

fn lease_name(platform: &str) -> String {
    format!("terroir-{platform}-lock")
}

fn identity(h: &Holder) -> String {
    format!("{}@{}/{}", h.user, h.machine, h.pid)
}

fn micro_time(
    t: k8s_openapi::jiff::Timestamp,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(t)
}

/// Who holds `lease` and whether its holder still renews it.
fn lease_holder(lease: &k8s_openapi::api::coordination::v1::Lease) -> Option<(Holder, bool)> {
    let spec = lease.spec.as_ref()?;
    let identity = spec.holder_identity.as_ref().filter(|i| !i.is_empty())?;
    let holder = lease
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(HOLDER_ANNOTATION))
        .and_then(|h| serde_json::from_str::<Holder>(h).ok())
        .unwrap_or_else(|| Holder {
            user: identity.clone(),
            machine: "?".into(),
            pid: 0,
            since: "?".into(),
            command: "?".into(),
        });
    let seconds = i64::from(spec.lease_duration_seconds.unwrap_or(LEASE_SECONDS));
    let alive = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .is_some_and(|t| {
            k8s_openapi::jiff::Timestamp::now().as_second() - t.0.as_second() < seconds
        });
    Some((holder, alive))
}

impl Lease {
    fn error(namespace: &str, name: &str, e: &kube::Error) -> LockError {
        LockError::Lease {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            message: super::kubernetes::describe(e),
        }
    }

    /// Take the platform's Lease in `namespace`, or say who holds it.
    pub async fn take(
        client: &kube::Client,
        namespace: &str,
        platform: &str,
        holder: &Holder,
        force: bool,
        events: &dyn Events,
    ) -> Result<Lease, LockError> {
        use k8s_openapi::api::coordination::v1::{Lease as K8sLease, LeaseSpec};
        use kube::api::{ObjectMeta, PostParams};
        let api: kube::Api<K8sLease> = kube::Api::namespaced(client.clone(), namespace);
        let name = lease_name(platform);
        let place = format!("Lease {namespace}/{name}");
        let now = k8s_openapi::jiff::Timestamp::now();
        let ours = |resource_version: Option<String>| K8sLease {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.to_owned()),
                resource_version,
                annotations: Some(
                    [(
                        HOLDER_ANNOTATION.to_owned(),
                        serde_json::to_string(holder).unwrap_or_default(),
                    )]
                    .into(),
                ),
                labels: Some(
                    [(
                        "app.kubernetes.io/managed-by".to_owned(),
                        "terroir".to_owned(),
                    )]
                    .into(),
                ),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(identity(holder)),
                lease_duration_seconds: Some(LEASE_SECONDS),
                acquire_time: Some(micro_time(now)),
                renew_time: Some(micro_time(now)),
                ..Default::default()
            }),
        };
        let taken = match api
            .get_opt(&name)
            .await
            .map_err(|e| Self::error(namespace, &name, &e))?
        {
            None => api.create(&PostParams::default(), &ours(None)).await,
            Some(live) => {
                if let Some((previous, alive)) = lease_holder(&live) {
                    if alive && !force {
                        return Err(LockError::Held {
                            platform: platform.to_owned(),
                            holder: Box::new(previous),
                            place,
                        });
                    }
                    let why = if alive {
                        "--force-unlock"
                    } else {
                        "it was no longer renewed"
                    };
                    events.warn(&format!(
                        "taking over the lock of {platform} from {previous} ({why})"
                    ));
                }
                // the resourceVersion makes it ours only if nobody took it meanwhile
                api.replace(
                    &name,
                    &PostParams::default(),
                    &ours(live.metadata.resource_version.clone()),
                )
                .await
            }
        };
        match taken {
            Ok(_) => {}
            // another run took it between our read and our write
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let live = api
                    .get_opt(&name)
                    .await
                    .map_err(|e| Self::error(namespace, &name, &e))?;
                let previous = live.as_ref().and_then(lease_holder).map(|(h, _)| h);
                return Err(match previous {
                    Some(h) => LockError::Held {
                        platform: platform.to_owned(),
                        holder: Box::new(h),
                        place,
                    },
                    None => LockError::Lease {
                        namespace: namespace.to_owned(),
                        name,
                        message: "taken by another run at the same moment".into(),
                    },
                });
            }
            Err(e) => return Err(Self::error(namespace, &name, &e)),
        }
        let renew_api = api.clone();
        let renew_name = name.clone();
        let renewal = tokio::spawn(async move {
            loop {
                tokio::time::sleep(RENEW_EVERY).await;
                let patch = serde_json::json!({"spec": {"renewTime": micro_time(k8s_openapi::jiff::Timestamp::now())}});
                if let Err(e) = renew_api
                    .patch(
                        &renew_name,
                        &kube::api::PatchParams::default(),
                        &kube::api::Patch::Merge(&patch),
                    )
                    .await
                {
                    tracing::warn!(lease = %renew_name, error = %super::kubernetes::describe(&e), "cannot renew the platform's Lease");
                }
            }
        });
        Ok(Lease { api, name, renewal })
    }

    /// Give the Lease back now, rather than when it expires.
    pub async fn release(self, events: &dyn Events) {
        self.renewal.abort();
        // gone with its namespace (a destroy) is given back too
        if let Err(e) = self.api.delete(&self.name, &Default::default()).await
            && !matches!(&e, kube::Error::Api(s) if s.code == 404)
        {
            events.warn(&format!(
                "cannot release Lease {}: {}",
                self.name,
                super::kubernetes::describe(&e)
            ));
        }
    }

    /// For a plan: say when the platform's Lease is held.
    pub async fn report_holder(
        client: &kube::Client,
        namespace: &str,
        platform: &str,
        events: &dyn Events,
    ) {
        let api: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
            kube::Api::namespaced(client.clone(), namespace);
        if let Ok(Some(live)) = api.get_opt(&lease_name(platform)).await
            && let Some((h, true)) = lease_holder(&live)
        {
            events.warn(&format!(
                "{platform} is locked by {h}: a change is under way, this plan may not show its end"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    struct Told(std::sync::Mutex<Vec<String>>);

    impl Events for Told {
        fn warn(&self, line: &str) {
            self.0.lock().unwrap().push(line.to_owned());
        }
    }

    #[test]
    fn a_second_holder_is_refused_and_named_until_the_first_releases() {
        let dir = tempfile::tempdir().unwrap();
        let doc = dir.path().join("platform.yaml");
        let told = Told(Default::default());
        let first = Holder::current("apply");
        let held = Platform::take(Some(&doc), "p", Mode::Apply, false, &first, &told).unwrap();
        assert!(held.is_some());
        let second = Holder {
            pid: first.pid + 1,
            ..Holder::current("apply")
        };
        let e = Platform::take(Some(&doc), "p", Mode::Apply, false, &second, &told)
            .err()
            .unwrap();
        assert_eq!(e.holder(), Some(&first), "{e}");
        assert!(
            e.to_string().contains(&format!("process {}", first.pid)),
            "{e}"
        );
        // a plan is not refused, and says who holds it
        assert!(
            Platform::take(Some(&doc), "p", Mode::Plan, false, &second, &told)
                .unwrap()
                .is_none()
        );
        assert!(
            told.0
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("is locked by"))
        );
        drop(held);
        assert!(
            Platform::take(Some(&doc), "p", Mode::Apply, false, &second, &told)
                .unwrap()
                .is_some()
        );
        // released cleanly: nothing stale was reported
        assert!(!told.0.lock().unwrap().iter().any(|l| l.contains("stale")));
    }

    #[test]
    fn a_holder_that_died_is_taken_over_and_one_elsewhere_needs_force() {
        let dir = tempfile::tempdir().unwrap();
        let doc = dir.path().join("platform.yaml");
        let path = lock_file(&doc, "p");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let told = Told(Default::default());
        let me = Holder::current("apply");
        // what a killed run leaves: its holder written, no flock held
        let dead = Holder {
            pid: 1,
            ..me.clone()
        };
        std::fs::write(&path, serde_json::to_string(&dead).unwrap()).unwrap();
        assert!(
            Platform::take(Some(&doc), "p", Mode::Apply, false, &me, &told)
                .unwrap()
                .is_some()
        );
        assert!(
            told.0
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("stale") && l.contains("process 1"))
        );
        // a holder on another machine (a shared directory) cannot be checked
        let remote = Holder {
            machine: "elsewhere".into(),
            ..me.clone()
        };
        std::fs::write(&path, serde_json::to_string(&remote).unwrap()).unwrap();
        let e = Platform::take(Some(&doc), "p", Mode::Apply, false, &me, &told)
            .err()
            .unwrap();
        assert!(matches!(e, LockError::ElsewhereHeld { .. }), "{e}");
        assert!(
            Platform::take(Some(&doc), "p", Mode::Apply, true, &me, &told)
                .unwrap()
                .is_some()
        );
    }
}
