//! Terroir: render and apply blueprints that deploy a customer-engagement platform where its data
//! must stay, and prove where everything runs.

pub mod attest;
pub mod backup;
pub mod cli;
pub mod commands;
pub mod deploy;
pub mod document;
pub mod operator;
pub mod pipeline;
pub mod pki;
pub mod policy;
pub mod reversibility;
pub mod secrets;
pub mod smoke;
pub mod text;
