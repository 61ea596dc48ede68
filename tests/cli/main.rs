//! The command line on documents alone: validation, rendering, runbooks, the schema, and the
//! rendered configuration checked by the tools that read it (TLS by the servers themselves, on
//! loopback).

#[path = "../common/mod.rs"]
mod common;

mod cli;
mod continuity;
mod images;
mod malformed;
mod native_configs;
mod render;
mod roles;
mod runbook;
mod schema;
mod terraform;
mod tls;
