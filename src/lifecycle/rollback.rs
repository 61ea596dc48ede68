//! `terroir rollback`: what was asked, and what was done.

use serde::Serialize;

use super::release::Loss;

/// What the command line asked for.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// A prefix of the release to go back to; the previous one when `None`.
    pub to: Option<String>,
    /// Restore the database to the restore point taken before the newer release.
    pub with_data: bool,
    /// Go ahead with `with_data`; without it the loss is stated and nothing changes.
    pub yes: bool,
}

/// What one place (an application host, the Deployment, the database) came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub place: String,
    /// What was done, or why it failed.
    pub detail: String,
    pub ok: bool,
}

/// The rollback's report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub platform: String,
    /// The release running before, and the one gone back to.
    pub from: String,
    pub to: String,
    pub with_data: bool,
    /// What restoring the database loses (with --with-data), stated before anything is done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<Loss>,
    /// Whether anything was changed (false: --with-data without --yes).
    pub changed: bool,
    pub steps: Vec<Step>,
    pub next_steps: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.steps.iter().all(|s| s.ok)
    }
}
