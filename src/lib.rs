//! Terroir: render and apply blueprints that deploy a customer-engagement platform where its data
//! must stay, and prove where everything runs.

pub mod blueprint;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod model;
pub mod operator;
pub mod render;
pub mod resolve;
pub mod secrets;
pub mod smoke;
pub mod sovereignty;
pub mod target;
