//! The error a command ends with, and the one mapping of outcomes to exit statuses:
//! 0 success, 1 invalid input or usage, 2 a check or a target failed.
//!
//! Each domain keeps its own error type (with its sources); this enum only gathers them, so that
//! the printer can say any of them the same way.

use crate::document::Diagnostic;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Success,
    /// Invalid input or usage (exit 1).
    Invalid,
    /// A check or a target failed (exit 2).
    Failed,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Invalid => 1,
            ExitStatus::Failed => 2,
        }
    }

    /// Success when `ok`, else a failed check.
    pub fn checked(ok: bool) -> Self {
        if ok { ExitStatus::Success } else { ExitStatus::Failed }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Document(#[from] crate::document::Invalid),
    #[error(transparent)]
    Blueprint(#[from] crate::pipeline::blueprint::BlueprintError),
    #[error(transparent)]
    Render(#[from] crate::pipeline::render::RenderError),
    #[error(transparent)]
    Deploy(#[from] crate::deploy::DeployError),
    #[error(transparent)]
    Reversibility(#[from] crate::reversibility::Error),
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretError),
    #[error(transparent)]
    Geodata(#[from] crate::policy::locality::geodata::GeodataError),
    #[error(transparent)]
    Smoke(#[from] crate::smoke::SmokeError),
    #[error(transparent)]
    Operator(#[from] crate::operator::OperatorError),
    #[error(transparent)]
    Key(#[from] crate::attest::keys::KeyError),
    #[error(transparent)]
    Attest(#[from] crate::attest::AttestError),
    #[error(transparent)]
    Assess(#[from] crate::policy::assess::AssessError),
    #[error(transparent)]
    Locate(#[from] crate::policy::locality::locate::LocateError),
    /// The command line asks for something that cannot be done as asked.
    #[error("{message}")]
    Usage { message: String },
    #[error("cannot write the output: {0}")]
    Output(#[source] std::io::Error),
    #[error("cannot write {}: {source}", path.display())]
    Write { path: std::path::PathBuf, source: std::io::Error },
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

impl Error {
    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage { message: message.into() }
    }

    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Error::Document(_) | Error::Blueprint(_) | Error::Usage { .. } => ExitStatus::Invalid,
            // the document, its blueprint or the output directory: what the user gave
            Error::Render(_) => ExitStatus::Invalid,
            Error::Deploy(e) => e.exit_status(),
            Error::Reversibility(e) => e.exit_status(),
            Error::Secrets(_) => ExitStatus::Invalid,
            Error::Geodata(e) => e.exit_status(),
            Error::Attest(e) => e.exit_status(),
            Error::Assess(e) => e.exit_status(),
            Error::Locate(e) => e.exit_status(),
            Error::Smoke(_) | Error::Key(_) => ExitStatus::Invalid,
            Error::Operator(_) => ExitStatus::Failed,
            Error::Output(_) | Error::Runtime(_) => ExitStatus::Failed,
            Error::Write { .. } => ExitStatus::Invalid,
        }
    }

    /// A short name of the kind of failure, for scripts (`kind` in the JSON error).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Document(_) => "invalid-document",
            Error::Blueprint(_) => "blueprint",
            Error::Render(_) => "render",
            Error::Deploy(e) => e.kind(),
            Error::Reversibility(e) => e.kind(),
            Error::Secrets(_) => "secrets",
            Error::Geodata(e) => e.kind(),
            Error::Attest(e) => e.kind(),
            Error::Assess(e) => e.kind(),
            Error::Locate(e) => e.kind(),
            Error::Smoke(_) => "smoke-app",
            Error::Operator(_) => "operator",
            Error::Key(_) => "key",
            Error::Usage { .. } => "usage",
            Error::Output(_) | Error::Write { .. } => "output",
            Error::Runtime(_) => "runtime",
        }
    }

    /// The document's diagnostics and its text, when the error is an invalid document.
    pub fn diagnostics(&self) -> Option<(&[Diagnostic], Option<&str>)> {
        match self {
            Error::Document(e) => Some((&e.diagnostics, e.text.as_deref())),
            Error::Render(crate::pipeline::render::RenderError::Invalid(d)) | Error::Deploy(crate::deploy::DeployError::Render(crate::pipeline::render::RenderError::Invalid(d))) => Some((d, None)),
            Error::Assess(crate::policy::assess::AssessError::Document(e)) => Some((&e.diagnostics, e.text.as_deref())),
            Error::Assess(crate::policy::assess::AssessError::Render(crate::pipeline::render::RenderError::Invalid(d))) => Some((d, None)),
            _ => None,
        }
    }

    /// What to do next, when the error alone does not say it.
    pub fn hints(&self) -> Vec<String> {
        match self {
            Error::Deploy(e) => e.hints(),
            _ => Vec::new(),
        }
    }

    /// Facts particular to the failure, for scripts.
    pub fn details(&self) -> serde_json::Map<String, serde_json::Value> {
        match self {
            Error::Deploy(e) => e.details(),
            Error::Geodata(e) => e.details(),
            Error::Attest(e) => e.details(),
            Error::Locate(e) => e.details(),
            _ => serde_json::Map::new(),
        }
    }
}
