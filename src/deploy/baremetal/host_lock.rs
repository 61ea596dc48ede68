//! A platform's lock on a host, held for the length of one SSH session, so that two machines
//! cannot change one platform at once.
//!
//! A channel runs, as root, a shell that takes `flock -n` on /run/lock/terroir-<platform>.lock,
//! records its holder as JSON beside it, then waits for the end of its input. The kernel releases
//! the lock when that shell exits: when terroir closes the channel, or when the session ends
//! however it ends (sshd closes the channel of a killed client).

use std::io::Read;
use std::time::{Duration, Instant};

use super::ssh::{Connection, Output, SshError, shell_quote};
use crate::deploy::lock::Holder;

/// Where the lock and its holder's record are kept on each host (cleared at boot).
const LOCK_DIR: &str = "/run/lock";

/// The exit status of `flock` when another process holds the lock.
const HELD: i32 = 75;

/// How long a holder whose process is gone from this machine is waited for: sshd releases its
/// lock as soon as it sees the session closed, which may come just after the next run starts.
const DEAD_HOLDER_GRACE: Duration = Duration::from_secs(5);

/// The lock of one platform on one host, held while this value lives.
pub struct HostLock {
    channel: ssh2::Channel,
}

impl Drop for HostLock {
    fn drop(&mut self) {
        // the end of its input lets the holding shell exit; waiting for it means that the next
        // session, even of this process, finds the lock free
        let _ = self.channel.send_eof();
        let _ = self.channel.wait_eof();
        let _ = self.channel.close();
        let _ = self.channel.wait_close();
    }
}

impl Connection {
    /// Take `platform`'s lock on this host as `holder`, for as long as the returned value or
    /// this session lives. Refused at once, naming the holder, when another session holds it.
    pub fn lock_platform(&self, platform: &str, holder: &Holder) -> Result<HostLock, SshError> {
        let deadline = Instant::now() + DEAD_HOLDER_GRACE;
        loop {
            match self.try_lock_platform(platform, holder) {
                Err(SshError::PlatformLocked { holder: held, .. })
                    if held.machine == holder.machine
                        && !process_alive(held.pid)
                        && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(200));
                }
                other => return other,
            }
        }
    }

    fn try_lock_platform(&self, platform: &str, holder: &Holder) -> Result<HostLock, SshError> {
        // a struct of strings and a number always serializes
        let record = serde_json::to_string(holder).unwrap_or_default();
        let script = lock_script(platform, &record);
        let err = self.exec_error(&script);
        let mut channel = self.session.channel_session().map_err(|e| err(e.into()))?;
        channel
            .exec(&format!("sudo -n sh -c {}", shell_quote(&script)))
            .map_err(|e| err(e.into()))?;
        let first = read_line(&mut channel).map_err(&err)?;
        if first == "locked" {
            return Ok(HostLock { channel });
        }
        // refused or failed: the output is the holder's record, or says why
        let mut stdout = first.into_bytes();
        stdout.push(b'\n');
        channel.read_to_end(&mut stdout).map_err(&err)?;
        let mut stderr = Vec::new();
        channel.stderr().read_to_end(&mut stderr).map_err(&err)?;
        channel.wait_close().map_err(|e| err(e.into()))?;
        let status = channel.exit_status().map_err(|e| err(e.into()))?;
        let address = self.target.address.clone();
        if status == HELD {
            return Err(refusal(
                address,
                platform,
                &String::from_utf8_lossy(&stdout),
            ));
        }
        let reason = Output {
            status,
            stdout,
            stderr,
        }
        .failure();
        Err(SshError::PlatformLock {
            address,
            platform: platform.to_owned(),
            reason,
        })
    }
}

/// The paths of `platform`'s lock and of its holder's record.
fn lock_paths(platform: &str) -> (String, String) {
    (
        format!("{LOCK_DIR}/terroir-{platform}.lock"),
        format!("{LOCK_DIR}/terroir-{platform}.holder.json"),
    )
}

/// The holding shell: prints `locked` and keeps the lock until its input ends, or prints the
/// holder's record and exits with `HELD`.
fn lock_script(platform: &str, record: &str) -> String {
    let (lock, holder) = lock_paths(platform);
    let (lock, holder) = (shell_quote(&lock), shell_quote(&holder));
    format!(
        "mkdir -p {LOCK_DIR} && exec 9>>{lock} || exit 1; flock -n -E {HELD} 9; rc=$?; \
         if [ $rc = 0 ]; then printf '%s\\n' {record} > {holder}.new && mv -f {holder}.new {holder}; echo locked; cat >/dev/null; rm -f {holder}; \
         elif [ $rc = {HELD} ]; then cat {holder} 2>/dev/null; exit {HELD}; else exit $rc; fi",
        record = shell_quote(record),
    )
}

/// The first line the holding shell prints, without waiting for more.
fn read_line(channel: &mut ssh2::Channel) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while channel.read(&mut byte)? == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// The error of a refused lock, naming the holder its record names.
fn refusal(address: String, platform: &str, record: &str) -> SshError {
    let platform = platform.to_owned();
    match serde_json::from_str::<Holder>(record.trim()) {
        Ok(holder) => SshError::PlatformLocked {
            address,
            platform,
            holder: Box::new(holder),
        },
        Err(_) if record.trim().is_empty() => SshError::PlatformLockedByUnknown {
            address,
            platform,
            answer: "no holder recorded yet".into(),
        },
        Err(e) => SshError::PlatformLockedByUnknown {
            address,
            platform,
            answer: format!("its record is not a holder: {e}"),
        },
    }
}

/// Whether a process of this machine still runs.
fn process_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder() -> Holder {
        Holder {
            user: "alice".into(),
            machine: "laptop".into(),
            pid: 4242,
            since: "2026-01-02T03:04:05Z".into(),
            command: "apply".into(),
        }
    }

    #[test]
    fn a_refusal_names_the_holder_and_the_host() {
        let record = serde_json::to_string(&holder()).unwrap_or_default() + "\n";
        let e = refusal("198.18.0.11".into(), "acme-crm", &record);
        assert!(
            matches!(&e, SshError::PlatformLocked { holder, .. } if **holder == self::holder()),
            "{e:?}"
        );
        let message = e.to_string();
        for part in [
            "198.18.0.11",
            "acme-crm",
            "`terroir apply` by alice on laptop (process 4242) since 2026-01-02T03:04:05Z",
        ] {
            assert!(message.contains(part), "{message}");
        }
    }

    #[test]
    fn a_refusal_without_a_readable_record_still_says_why() {
        let e = refusal("h".into(), "p", "");
        assert!(e.to_string().contains("no holder recorded yet"), "{e}");
        let e = refusal("h".into(), "p", "{not json");
        assert!(e.to_string().contains("its record is not a holder"), "{e}");
    }

    #[test]
    fn the_script_locks_one_file_per_platform_and_waits_for_its_input_to_end() {
        let script = lock_script("acme-crm", r#"{"user":"o'brien"}"#);
        assert!(
            script.contains("exec 9>>'/run/lock/terroir-acme-crm.lock'"),
            "{script}"
        );
        assert!(script.contains("flock -n -E 75 9"), "{script}");
        assert!(
            script.contains(r#"'{"user":"o'\''brien"}'"#),
            "the record is quoted: {script}"
        );
        assert!(
            script.contains(
                "echo locked; cat >/dev/null; rm -f '/run/lock/terroir-acme-crm.holder.json'"
            ),
            "{script}"
        );
    }
}
