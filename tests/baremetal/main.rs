//! Tests on the bare-metal test hosts (tests/hosts/hostctl): real Debian hosts over real SSH,
//! one test at a time (.config/nextest.toml), sharing deployed platforms where they check
//! independent things (common/deployments.rs); and the benchmarks' quick modes.

#[path = "../common/mod.rs"]
mod common;

mod acme;
mod apply;
mod backups;
mod benches;
mod continuity;
mod ha;
mod host_lock;
mod hosts;
mod lifecycle;
mod relays;
mod reversibility;
mod roles;
mod secnumcloud;
mod secrets;
mod security;
mod tenants;
