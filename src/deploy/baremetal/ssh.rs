//! SSH to a host with the ssh2 crate: strict host key checking against a known_hosts file, key
//! authentication, sudo, and two timeouts as OpenSSH has them: one for reaching the host
//! (`ConnectTimeout`), one for each remote command.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use sha2::{Digest, Sha256};
use ssh2::{CheckResult, HashType, KnownHostFileKind, KnownHostKeyFormat, MethodType, Session};

use crate::deploy::lock::Holder;
use crate::text::{last_lines, shorten};

/// How long reaching a host may take (TCP connect, then the SSH handshake and authentication),
/// as `--connect-timeout` defaults to.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("cannot reach {address}:{port}: {source}")]
    Connect {
        address: String,
        port: u16,
        source: std::io::Error,
    },
    #[error("SSH handshake with {address} failed: {source}")]
    Handshake {
        address: String,
        source: ssh2::Error,
    },
    #[error(
        "host key of {address} does not match {known_hosts}: the host presents {presented} but {expected} is recorded; \
         if the host was reinstalled, remove its line from the file (refusing to connect)"
    )]
    HostKeyChanged {
        address: String,
        known_hosts: String,
        presented: String,
        expected: String,
    },
    #[error(
        "host key of {address} ({presented}) is not in {known_hosts}; check it and pass --accept-new-host-keys to record it"
    )]
    HostKeyUnknown {
        address: String,
        known_hosts: String,
        presented: String,
    },
    #[error("known_hosts file {path}: {source}")]
    KnownHosts { path: String, source: ssh2::Error },
    #[error("known_hosts file {path}: {source}")]
    KnownHostsFile {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot check the host key of {address}: {reason}")]
    HostKeyUnchecked {
        address: String,
        reason: &'static str,
    },
    #[error("{user}@{address}: key authentication with {identity} failed: {source}")]
    Auth {
        user: String,
        address: String,
        identity: String,
        source: ssh2::Error,
    },
    #[error("{address}: `{command}` failed: {source}")]
    Exec {
        address: String,
        command: String,
        source: std::io::Error,
    },
    #[error("{address}: `{command}`: {doing} on this machine failed: {source}")]
    Local {
        address: String,
        command: String,
        doing: &'static str,
        source: std::io::Error,
    },
    #[error(
        "{user}@{address} cannot use sudo without a password; give it password-less sudo (for example `{user} ALL=(ALL) NOPASSWD:ALL` in /etc/sudoers.d/)"
    )]
    NoSudo { user: String, address: String },
    #[error("no SSH settings for host {host} in the document")]
    NoSettings { host: String },
    #[error(
        "{address}: platform {platform} is being changed by {holder}; wait for it to finish (its lock on the host is released when its SSH session ends)"
    )]
    PlatformLocked {
        address: String,
        platform: String,
        holder: Box<Holder>,
    },
    #[error(
        "{address}: platform {platform} is being changed by another run, which left no record of who it is ({answer})"
    )]
    PlatformLockedByUnknown {
        address: String,
        platform: String,
        answer: String,
    },
    #[error("{address}: cannot take the lock of platform {platform}: {reason}")]
    PlatformLock {
        address: String,
        platform: String,
        reason: String,
    },
}

impl SshError {
    /// Worth another try: the host may be booting or the network flapping.
    pub fn is_transient(&self) -> bool {
        match self {
            // a host that did not answer within the connect timeout is not asked again: that
            // would multiply the wait the user chose (OpenSSH's ConnectionAttempts is 1 too)
            SshError::Connect { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset
            ),
            SshError::Handshake { .. } => true,
            _ => false,
        }
    }
}

/// How to reach a host.
#[derive(Debug, Clone)]
pub struct Target {
    pub address: String,
    pub port: u16,
    pub user: String,
    pub identity: PathBuf,
    pub known_hosts: PathBuf,
    pub accept_new_host_keys: bool,
    /// For reaching the host: TCP connect, SSH handshake and authentication (each bastion hop too).
    pub connect_timeout: Duration,
    /// For each remote command, between two reads of its output.
    pub timeout: Duration,
    /// Also offer the keys of a running ssh-agent (`SSH_AUTH_SOCK`).
    pub use_agent: bool,
    /// Reach the host through this bastion (same key, known_hosts and agent settings).
    pub jump: Option<Box<Target>>,
}

/// The output of one remote command.
#[derive(Debug, Clone)]
pub struct Output {
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn ok(&self) -> bool {
        self.status == 0
    }
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).trim().to_owned()
    }

    /// Why the command failed, never empty: its exit status and the end of its standard error,
    /// or the end of its standard output when standard error is empty (init scripts, for
    /// instance, report failures there).
    pub fn failure(&self) -> String {
        let status = self.status;
        let stderr = last_lines(&self.stderr_str(), 3);
        if !stderr.is_empty() {
            return format!("exit status {status}: {stderr}");
        }
        match last_lines(&self.stdout_str(), 3) {
            stdout if stdout.is_empty() => format!("exit status {status}, with no output"),
            stdout => format!(
                "exit status {status}, nothing on standard error; standard output ends: {stdout}"
            ),
        }
    }
}

pub struct Connection {
    pub(super) session: Session,
    pub target: Target,
    /// The bastion session carrying this one, kept alive as long as it is.
    _jump: Option<JumpTunnel>,
}

/// A local TCP port forwarded through a bastion to the target's SSH port: ssh2 sessions need a
/// socket, so the bastion's direct-tcpip channel is bridged to one on the loopback interface.
struct JumpTunnel {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for JumpTunnel {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn open_tunnel(
    jump: &Target,
    address: &str,
    port: u16,
) -> Result<(std::net::SocketAddr, JumpTunnel), SshError> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let bastion = Connection::open(jump)?;
    // the bastion dialling the target is part of reaching it
    bastion.session.set_timeout(millis(jump.connect_timeout));
    let io_err = |e: std::io::Error| SshError::Connect {
        address: address.to_owned(),
        port,
        source: e,
    };
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(io_err)?;
    let local = listener.local_addr().map_err(io_err)?;
    let channel = bastion
        .session
        .channel_direct_tcpip(address, port, None)
        .map_err(|e| SshError::Connect {
            address: address.to_owned(),
            port,
            source: std::io::Error::other(format!("through {}: {e}", jump.address)),
        })?;
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let stop_thread = stop.clone();
    let thread = std::thread::spawn(move || {
        let Ok((mut sock, _)) = listener.accept() else {
            return;
        };
        let mut channel = channel;
        let session = bastion.session.clone();
        session.set_blocking(false);
        let _ = sock.set_nonblocking(true);
        let mut buf = vec![0u8; 32 * 1024];
        // pump both ways until either side closes
        while !stop_thread.load(Ordering::SeqCst) {
            let mut moved = false;
            match sock.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    moved = true;
                    let mut off = 0;
                    while off < n {
                        match channel.write(&buf[off..n]) {
                            Ok(w) => off += w,
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                                std::thread::yield_now()
                            }
                            Err(_) => return,
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
            match channel.read(&mut buf) {
                Ok(0) if channel.eof() => break,
                Ok(0) => {}
                Ok(n) => {
                    moved = true;
                    let _ = sock.set_nonblocking(false);
                    if sock.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    let _ = sock.set_nonblocking(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
            if !moved {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    });
    Ok((
        local,
        JumpTunnel {
            stop,
            thread: Some(thread),
        },
    ))
}

/// `SHA256:…` as OpenSSH prints it.
fn fingerprint(session: &Session) -> String {
    let hash = session.host_key_hash(HashType::Sha256).unwrap_or_default();
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(hash)
    )
}

/// Fingerprints of the keys recorded for `host` in an OpenSSH known_hosts file.
fn recorded_fingerprints(path: &Path, host: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let hosts = parts.next()?;
            let kind = parts.next()?;
            let key = parts.next()?;
            hosts
                .split(',')
                .any(|h| h == host || h == format!("[{host}]:22"))
                .then_some((kind, key))
        })
        .filter_map(|(kind, key)| {
            let raw = base64::engine::general_purpose::STANDARD.decode(key).ok()?;
            let digest = Sha256::digest(&raw);
            Some(format!(
                "{kind} SHA256:{}",
                base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
            ))
        })
        .collect()
}

impl Connection {
    pub fn open(target: &Target) -> Result<Connection, SshError> {
        let address = target.address.clone();
        let (tunnel, dial): (Option<JumpTunnel>, (String, u16)) = match &target.jump {
            Some(jump) => {
                let (local, tunnel) = open_tunnel(jump, &target.address, target.port)?;
                (Some(tunnel), (local.ip().to_string(), local.port()))
            }
            None => (None, (address.clone(), target.port)),
        };
        let addrs: Vec<_> = (dial.0.as_str(), dial.1)
            .to_socket_addrs()
            .map_err(|source| SshError::Connect {
                address: address.clone(),
                port: target.port,
                source,
            })?
            .collect();
        let first = addrs.first().ok_or_else(|| SshError::Connect {
            address: address.clone(),
            port: target.port,
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
        })?;
        let tcp = TcpStream::connect_timeout(first, target.connect_timeout).map_err(|source| {
            SshError::Connect {
                address: address.clone(),
                port: target.port,
                source,
            }
        })?;
        let mut session = Session::new().map_err(|source| SshError::Handshake {
            address: address.clone(),
            source,
        })?;
        session.set_tcp_stream(tcp);
        // reaching the host is bounded by the connect timeout; commands, once in, by their own
        session.set_timeout(millis(target.connect_timeout));
        // Prefer Ed25519, then ECDSA, then RSA with SHA-2: the order OpenSSH records keys in.
        let _ = session.method_pref(
            MethodType::HostKey,
            "ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-512,rsa-sha2-256,ssh-rsa",
        );
        // AES-GCM first: hardware-accelerated through OpenSSL, it carries dumps and archives
        // several times faster than libssh2's own ChaCha20-Poly1305.
        let ciphers = "aes128-gcm@openssh.com,aes256-gcm@openssh.com,aes128-ctr,aes256-ctr,chacha20-poly1305@openssh.com";
        let _ = session.method_pref(MethodType::CryptCs, ciphers);
        let _ = session.method_pref(MethodType::CryptSc, ciphers);
        session.handshake().map_err(|source| SshError::Handshake {
            address: address.clone(),
            source,
        })?;
        Self::check_host_key(&session, target)?;
        let by_file = if target.identity.exists() {
            session.userauth_pubkey_file(&target.user, None, &target.identity, None)
        } else {
            Err(ssh2::Error::from_errno(ssh2::ErrorCode::Session(-16)))
        };
        if let Err(source) = by_file {
            let by_agent = target.use_agent
                && std::env::var_os("SSH_AUTH_SOCK").is_some()
                && session.userauth_agent(&target.user).is_ok();
            if !by_agent {
                let identity = if target.identity.exists() {
                    target.identity.display().to_string()
                } else {
                    format!("{} (missing)", target.identity.display())
                };
                return Err(SshError::Auth {
                    user: target.user.clone(),
                    address: address.clone(),
                    identity,
                    source,
                });
            }
        }
        session.set_timeout(millis(target.timeout));
        Ok(Connection {
            session,
            target: target.clone(),
            _jump: tunnel,
        })
    }

    /// The host's key against the known_hosts file. Connections to several hosts run at once, in
    /// this process and maybe in others: the file is read under a shared lock and a new key is
    /// recorded under an exclusive one, after reading the file again, so one host's record never
    /// overwrites another's, nor is read half-written.
    fn check_host_key(session: &Session, target: &Target) -> Result<(), SshError> {
        let kh_path = target.known_hosts.display().to_string();
        let kh_error = |source| SshError::KnownHosts {
            path: kh_path.clone(),
            source,
        };
        let (key, key_type) = session
            .host_key()
            .ok_or_else(|| SshError::HostKeyUnchecked {
                address: target.address.clone(),
                reason: "the server sent no host key",
            })?;
        let presented = fingerprint(session);
        let recorded =
            |exclusive: bool| -> Result<(ssh2::KnownHosts, Option<std::fs::File>), SshError> {
                let mut known = session.known_hosts().map_err(kh_error)?;
                let file = match std::fs::OpenOptions::new()
                    .read(true)
                    .append(exclusive)
                    .create(exclusive)
                    .open(&target.known_hosts)
                {
                    Ok(file) => file,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((known, None)),
                    Err(source) => {
                        return Err(SshError::KnownHostsFile {
                            path: kh_path.clone(),
                            source,
                        });
                    }
                };
                if exclusive {
                    file.lock()
                } else {
                    file.lock_shared()
                }
                .map_err(|source| SshError::KnownHostsFile {
                    path: kh_path.clone(),
                    source,
                })?;
                known
                    .read_file(&target.known_hosts, KnownHostFileKind::OpenSSH)
                    .map_err(kh_error)?;
                Ok((known, Some(file)))
            };
        let judge =
            |known: &ssh2::KnownHosts| match known.check_port(&target.address, target.port, key) {
                CheckResult::Match => Ok(true),
                CheckResult::Mismatch => Err(SshError::HostKeyChanged {
                    address: target.address.clone(),
                    known_hosts: kh_path.clone(),
                    presented: presented.clone(),
                    expected: recorded_fingerprints(&target.known_hosts, &target.address)
                        .join(", "),
                }),
                CheckResult::NotFound => Ok(false),
                CheckResult::Failure => Err(SshError::HostKeyUnchecked {
                    address: target.address.clone(),
                    reason: "libssh2 could not compare it with the recorded keys",
                }),
            };
        let (known, shared) = recorded(false)?;
        let found = judge(&known)?;
        drop(shared);
        if found {
            return Ok(());
        }
        if !target.accept_new_host_keys {
            return Err(SshError::HostKeyUnknown {
                address: target.address.clone(),
                known_hosts: kh_path,
                presented,
            });
        }
        // Record it, unless another connection did meanwhile.
        let (mut known, _exclusive) = recorded(true)?;
        if judge(&known)? {
            return Ok(());
        }
        let format: KnownHostKeyFormat = key_type.into();
        let host = if target.port == 22 {
            target.address.clone()
        } else {
            format!("[{}]:{}", target.address, target.port)
        };
        known
            .add(&host, key, "added by terroir", format)
            .map_err(kh_error)?;
        known
            .write_file(&target.known_hosts, KnownHostFileKind::OpenSSH)
            .map_err(kh_error)
    }

    /// Run a command, feeding `stdin` when given.
    pub fn exec(&self, command: &str, stdin: Option<&[u8]>) -> Result<Output, SshError> {
        let err = self.exec_error(command);
        let mut channel = self.session.channel_session().map_err(|e| err(e.into()))?;
        channel.exec(command).map_err(|e| err(e.into()))?;
        if let Some(data) = stdin {
            channel.write_all(data).map_err(&err)?;
        }
        channel.send_eof().map_err(|e| err(e.into()))?;
        collect(&mut channel).map_err(err)
    }

    /// The error of `command` failing on this host's side of the session.
    pub(super) fn exec_error(&self, command: &str) -> impl Fn(std::io::Error) -> SshError + use<> {
        let (address, command) = (self.target.address.clone(), short(command));
        move |source| SshError::Exec {
            address: address.clone(),
            command: command.clone(),
            source,
        }
    }

    /// The error of `command`'s data failing on this machine's side (`doing`: reading, writing).
    fn local_error(
        &self,
        command: &str,
        doing: &'static str,
    ) -> impl Fn(std::io::Error) -> SshError + use<> {
        let (address, command) = (self.target.address.clone(), short(command));
        move |source| SshError::Local {
            address: address.clone(),
            command: command.clone(),
            doing,
            source,
        }
    }

    /// Run a command as root and stream its standard output into `sink` (never held in memory);
    /// returns the exit status and standard error. No per-read timeout: a long dump may pause.
    pub fn sudo_to(&self, script: &str, sink: &mut dyn Write) -> Result<Output, SshError> {
        let command = format!("sudo -n sh -c {}", shell_quote(script));
        let err = self.exec_error(script);
        let local = self.local_error(script, "writing");
        self.without_timeout(|| {
            let mut channel = self.session.channel_session().map_err(|e| err(e.into()))?;
            channel.exec(&command).map_err(|e| err(e.into()))?;
            channel.send_eof().map_err(|e| err(e.into()))?;
            let mut buf = vec![0u8; 1 << 18];
            loop {
                let n = channel.read(&mut buf).map_err(&err)?;
                if n == 0 {
                    break;
                }
                sink.write_all(&buf[..n]).map_err(&local)?;
            }
            // standard output is drained: what remains is standard error and the status
            collect(&mut channel).map_err(&err)
        })
    }

    /// Run `f` with no per-read timeout on the session (a long stream may pause), then restore it.
    fn without_timeout<T>(&self, f: impl FnOnce() -> T) -> T {
        self.session.set_timeout(0);
        let result = f();
        self.session.set_timeout(millis(self.target.timeout));
        result
    }

    /// Run a command as root with `source` streamed into its standard input.
    pub fn sudo_from(&self, script: &str, source: &mut dyn Read) -> Result<Output, SshError> {
        let command = format!("sudo -n sh -c {}", shell_quote(script));
        let err = self.exec_error(script);
        let local = self.local_error(script, "reading");
        self.without_timeout(|| {
            let mut channel = self.session.channel_session().map_err(|e| err(e.into()))?;
            channel.exec(&command).map_err(|e| err(e.into()))?;
            let mut buf = vec![0u8; 1 << 18];
            loop {
                let n = source.read(&mut buf).map_err(&local)?;
                if n == 0 {
                    break;
                }
                if let Err(e) = channel.write_all(&buf[..n]) {
                    // the command stopped reading (it failed): its stderr says why
                    let mut stderr = Vec::new();
                    let _ = channel.stderr().read_to_end(&mut stderr);
                    let _ = channel.wait_close();
                    let status = channel.exit_status().unwrap_or(-1);
                    if status != 0 || !stderr.is_empty() {
                        return Ok(Output {
                            status: if status == 0 { -1 } else { status },
                            stdout: Vec::new(),
                            stderr,
                        });
                    }
                    return Err(err(e));
                }
            }
            channel.send_eof().map_err(|e| err(e.into()))?;
            collect(&mut channel).map_err(&err)
        })
    }

    /// Run a shell command as root through password-less sudo.
    pub fn sudo(&self, script: &str, stdin: Option<&[u8]>) -> Result<Output, SshError> {
        self.exec(&format!("sudo -n sh -c {}", shell_quote(script)), stdin)
    }

    /// Check once that sudo works without a password, with a message that says what to fix.
    pub fn require_sudo(&self) -> Result<(), SshError> {
        let out = self.exec("sudo -n true", None)?;
        if out.ok() {
            Ok(())
        } else {
            Err(SshError::NoSudo {
                user: self.target.user.clone(),
                address: self.target.address.clone(),
            })
        }
    }
}

/// What is left of a finished command: the rest of its standard output, its standard error and
/// its exit status.
fn collect(channel: &mut ssh2::Channel) -> std::io::Result<Output> {
    let mut stdout = Vec::new();
    channel.read_to_end(&mut stdout)?;
    let mut stderr = Vec::new();
    channel.stderr().read_to_end(&mut stderr)?;
    channel.wait_close()?;
    let status = channel.exit_status()?;
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// A command as an error names it: its first line, cut to 80 characters.
fn short(command: &str) -> String {
    shorten(command.lines().next().unwrap_or_default(), 81)
}

/// A timeout as libssh2 takes it: milliseconds, 0 meaning none.
fn millis(timeout: Duration) -> u32 {
    u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX)
}

pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_never_without_a_reason() {
        let out = |status, stdout: &str, stderr: &str| Output {
            status,
            stdout: stdout.into(),
            stderr: stderr.into(),
        };
        assert_eq!(
            out(2, "progress\n", "a\nb\nc\nd\n").failure(),
            "exit status 2: b | c | d"
        );
        assert_eq!(
            out(1, "Restarting: main\nfailed!\n\n", "  \n").failure(),
            "exit status 1, nothing on standard error; standard output ends: Restarting: main | failed!"
        );
        assert_eq!(out(1, "", "").failure(), "exit status 1, with no output");
    }

    #[test]
    fn a_command_is_named_by_its_first_line_cut_short() {
        assert_eq!(short("set -e\nmore"), "set -e");
        let long = "é".repeat(100);
        assert_eq!(
            short(&long).chars().count(),
            81,
            "cut on characters, not bytes"
        );
    }
}
