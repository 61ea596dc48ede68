//! Terroir: render and apply blueprints that deploy a customer-engagement platform where its data
//! must stay, and prove where everything runs.

pub mod attest;
pub mod audit;
pub mod backup;
pub mod cli;
pub mod commands;
pub mod continuity;
pub mod deploy;
pub mod document;
pub mod error;
pub mod lifecycle;
pub mod operator;
pub mod parallel;
pub mod pipeline;
pub mod pki;
pub mod policy;
pub mod printer;
pub mod reversibility;
pub mod secrets;
pub mod smoke;
pub mod text;

pub use error::{Error, ExitStatus};

/// The async runtime of a command or of the operator: built here only, once per process.
pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)
}
