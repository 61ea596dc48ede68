//! Where an export's bytes come from. The pipeline (splitting the dump into CSV files, hashing,
//! the manifest) is one for every target; only the place a program runs differs: on a host over
//! SSH, or in a pod's container through the API server's exec.

use std::io::{Read, Write};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::ReversibilityError;
use crate::deploy::baremetal::site::SiteError;
use crate::deploy::baremetal::ssh::{Connection, shell_quote};

/// A place where a program runs, with its output streamed back (or its input streamed to it).
pub trait Source: Sync {
    /// Where it runs, for messages and the manifest: a host's name, or a pod's.
    fn place(&self) -> &str;
    /// The place with what it is, for messages: `host db1`, `pod ns/db-0`.
    fn label(&self) -> String;
    /// Runs `argv`; its stdout goes into `out`. A non-zero exit is an error saying why.
    fn run_to(
        &self,
        what: &str,
        argv: &[String],
        out: &mut dyn Write,
    ) -> Result<(), ReversibilityError>;
    /// Runs `argv` reading `input` as its stdin (its stdout is discarded).
    fn run_from(
        &self,
        what: &str,
        argv: &[String],
        input: &mut dyn Read,
    ) -> Result<(), ReversibilityError>;

    /// Runs `argv` and returns its stdout as text.
    fn output(&self, what: &str, argv: &[String]) -> Result<String, ReversibilityError> {
        let mut out = Vec::new();
        self.run_to(what, argv, &mut out)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

/// PostgreSQL's programs on a database host: run as the `postgres` system user (peer
/// authentication), from `/`.
pub struct HostPostgres<'a> {
    pub conn: &'a Connection,
    pub host: String,
}

impl HostPostgres<'_> {
    fn script(argv: &[String]) -> String {
        let quoted: Vec<String> = argv.iter().map(|a| shell_quote(a)).collect();
        format!("cd / && runuser -u postgres -- {}", quoted.join(" "))
    }
}

impl Source for HostPostgres<'_> {
    fn place(&self) -> &str {
        &self.host
    }

    fn label(&self) -> String {
        format!("host {}", self.host)
    }

    fn run_to(
        &self,
        what: &str,
        argv: &[String],
        out: &mut dyn Write,
    ) -> Result<(), ReversibilityError> {
        let done = self
            .conn
            .sudo_to(&Self::script(argv), out)
            .map_err(SiteError::ssh(&self.host, what))?;
        if !done.ok() {
            return Err(SiteError::remote(&self.host, what, &done).into());
        }
        Ok(())
    }

    fn run_from(
        &self,
        what: &str,
        argv: &[String],
        input: &mut dyn Read,
    ) -> Result<(), ReversibilityError> {
        let done = self
            .conn
            .sudo_from(&format!("{} >/dev/null", Self::script(argv)), input)
            .map_err(SiteError::ssh(&self.host, what))?;
        if !done.ok() {
            return Err(SiteError::remote(&self.host, what, &done).into());
        }
        Ok(())
    }
}

/// Programs run in one container of a pod, through `pods/{name}/exec` (WebSocket).
pub struct PodProgram<'a> {
    pub exec: &'a PodExec,
    pub pod: String,
    pub container: String,
}

impl Source for PodProgram<'_> {
    fn place(&self) -> &str {
        &self.pod
    }

    fn label(&self) -> String {
        format!("pod {}/{}", self.exec.namespace, self.pod)
    }

    fn run_to(
        &self,
        what: &str,
        argv: &[String],
        out: &mut dyn Write,
    ) -> Result<(), ReversibilityError> {
        self.exec
            .run(&self.pod, &self.container, what, argv, None, out)
    }

    fn run_from(
        &self,
        what: &str,
        argv: &[String],
        input: &mut dyn Read,
    ) -> Result<(), ReversibilityError> {
        self.exec.run(
            &self.pod,
            &self.container,
            what,
            argv,
            Some(input),
            &mut std::io::sink(),
        )
    }
}

/// The API server's exec, from synchronous code: a runtime of its own, so that several threads
/// stream from pods at once.
pub struct PodExec {
    runtime: tokio::runtime::Runtime,
    pub client: kube::Client,
    pub namespace: String,
}

/// How much of a program's stderr is kept for the error message.
const STDERR_KEPT: usize = 8 << 10;

/// What the status channel says about how the program ended: `None` when it succeeded.
pub fn failure(
    status: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Status>,
) -> Option<String> {
    let Some(s) = status else {
        return Some("the exec ended without a status (connection lost?)".into());
    };
    if s.status.as_deref() == Some("Success") {
        return None;
    }
    let code = s
        .details
        .as_ref()
        .and_then(|d| d.causes.as_ref())
        .and_then(|c| c.iter().find(|c| c.reason.as_deref() == Some("ExitCode")))
        .and_then(|c| c.message.clone());
    Some(match code {
        Some(code) => format!("exit {code}"),
        None => s.message.clone().unwrap_or_else(|| "failed".into()),
    })
}

impl PodExec {
    pub fn new(
        runtime: tokio::runtime::Runtime,
        client: kube::Client,
        namespace: String,
    ) -> PodExec {
        PodExec {
            runtime,
            client,
            namespace,
        }
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// Runs `argv` in `container` of `pod`, streaming `input` to its stdin and its stdout to
    /// `out` as they come.
    pub fn run(
        &self,
        pod: &str,
        container: &str,
        what: &str,
        argv: &[String],
        input: Option<&mut dyn Read>,
        out: &mut dyn Write,
    ) -> Result<(), ReversibilityError> {
        let fail = |reason: String| ReversibilityError::Pod {
            namespace: self.namespace.clone(),
            pod: pod.to_owned(),
            what: what.to_owned(),
            reason,
        };
        self.runtime.block_on(async {
            let api: kube::Api<k8s_openapi::api::core::v1::Pod> =
                kube::Api::namespaced(self.client.clone(), &self.namespace);
            let params = kube::api::AttachParams::default()
                .container(container)
                .stdin(input.is_some())
                .stdout(true)
                .stderr(true)
                .max_stdin_buf_size(1 << 20)
                .max_stdout_buf_size(1 << 20)
                .max_stderr_buf_size(1 << 16);
            let mut process = api
                .exec(pod, argv.to_vec(), &params)
                .await
                .map_err(|e| fail(crate::deploy::kubernetes::describe(&e)))?;
            let stdout = process.stdout();
            let stderr = process.stderr();
            let stdin = process.stdin();
            let status = process.take_status();
            let copy_out = async {
                let Some(mut r) = stdout else {
                    return Ok(());
                };
                let mut buf = vec![0u8; 1 << 18];
                loop {
                    let n = r.read(&mut buf).await?;
                    if n == 0 {
                        return Ok::<(), std::io::Error>(());
                    }
                    out.write_all(&buf[..n])?;
                }
            };
            let keep_err = async {
                let mut kept = Vec::new();
                if let Some(mut r) = stderr {
                    let mut buf = vec![0u8; 1 << 14];
                    while let Ok(n) = r.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        kept.extend_from_slice(&buf[..n]);
                        if kept.len() > STDERR_KEPT {
                            kept.drain(..kept.len() - STDERR_KEPT);
                        }
                    }
                }
                kept
            };
            let feed = async {
                let (Some(input), Some(mut w)) = (input, stdin) else {
                    return Ok(());
                };
                let mut buf = vec![0u8; 1 << 18];
                loop {
                    let n = input.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    w.write_all(&buf[..n]).await?;
                }
                w.shutdown().await?;
                Ok::<(), std::io::Error>(())
            };
            let (copied, kept, fed) = tokio::join!(copy_out, keep_err, feed);
            let status = match status {
                Some(s) => s.await,
                None => None,
            };
            let _ = process.join().await;
            let stderr = crate::text::last_lines(&String::from_utf8_lossy(&kept), 3);
            if let Some(reason) = failure(status.as_ref()) {
                return Err(fail(if stderr.is_empty() {
                    reason
                } else {
                    format!("{reason}: {stderr}")
                }));
            }
            copied.map_err(|e| fail(format!("writing its output: {e}")))?;
            fed.map_err(|e| fail(format!("sending its input: {e}")))?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Status, StatusCause, StatusDetails};

    #[test]
    fn a_status_says_how_the_program_ended() {
        let ok = Status {
            status: Some("Success".into()),
            ..Default::default()
        };
        assert_eq!(failure(Some(&ok)), None);
        let exit = Status {
            status: Some("Failure".into()),
            message: Some("command terminated with non-zero exit code".into()),
            details: Some(StatusDetails {
                causes: Some(vec![StatusCause {
                    reason: Some("ExitCode".into()),
                    message: Some("2".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(failure(Some(&exit)).as_deref(), Some("exit 2"));
        let other = Status {
            status: Some("Failure".into()),
            message: Some("executable file not found".into()),
            ..Default::default()
        };
        assert_eq!(
            failure(Some(&other)).as_deref(),
            Some("executable file not found")
        );
        assert!(failure(None).unwrap().contains("without a status"));
    }

    #[test]
    fn a_host_runs_postgres_programs_as_postgres_with_each_argument_quoted() {
        let argv = ["pg_dump".to_owned(), "--dbname=a b".to_owned()];
        assert_eq!(
            HostPostgres::script(&argv),
            "cd / && runuser -u postgres -- 'pg_dump' '--dbname=a b'"
        );
    }
}
