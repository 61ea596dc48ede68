//! One change at a time: who holds a platform's lock. Every command that changes a target takes
//! it (a file beside the document, a lock on each host for the length of the SSH session, a
//! Lease on a cluster); `plan` only says when it is held.

use serde::{Deserialize, Serialize};

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
        let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| format!("uid {}", unsafe_free_uid()));
        let machine = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "unknown".into());
        Holder { user, machine, pid: std::process::id(), since: crate::text::now_rfc3339(), command: command.to_owned() }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` by {} on {} (process {}) since {}", self.command, self.user, self.machine, self.pid, self.since)
    }
}

/// The user id, for a holder whose environment names no user.
fn unsafe_free_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}
