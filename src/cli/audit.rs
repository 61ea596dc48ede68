//! `terroir audit`: the platform's audit trail, read from its hosts.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Platform document (YAML) of a bare-metal platform.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Only this host (repeat for several); every host by default.
    #[arg(long = "host", value_name = "NAME")]
    pub hosts: Vec<String>,
    /// Only these sources (repeat for several); all by default.
    #[arg(long = "source", value_enum, value_name = "SOURCE")]
    pub sources: Vec<AuditSource>,
    /// Events shown per host: the latest ones.
    #[arg(long, short = 'n', default_value_t = 20, value_name = "N")]
    pub lines: usize,
    /// Only events whose user, object or detail contain TEXT.
    #[arg(long, value_name = "TEXT")]
    pub grep: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditSource {
    /// SSH logins and failures (sshd, /var/log/auth.log).
    Ssh,
    /// Commands run with sudo (/var/log/auth.log).
    Sudo,
    /// pgaudit (DDL, role changes, access to personal tables) and connections, from
    /// PostgreSQL's log.
    Postgres,
}
