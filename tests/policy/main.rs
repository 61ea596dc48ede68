//! Where a platform runs and what it proves: `verify`, `attest` and its reports, `locate`, and
//! the geodata they read.

#[path = "../common/mod.rs"]
mod common;

mod attest;
mod attest_report;
mod geodata;
mod locate;
mod redundancy;
mod verify;
