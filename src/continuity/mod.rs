//! Continuity drills (`terroir continuity`): every degraded mode the platform claims, made to
//! happen on the platform itself and checked. Each claim of the blueprint names a dependency
//! (or a redundant member), the fault that makes it fail, the probes its degraded mode promises
//! while the fault is in place, and what "back to nominal" means once it is removed.
//!
//! - [`spec`]: the claims as the blueprint states them;
//! - [`claims`]: which ones a platform makes, with their faults made concrete;
//! - [`fault`]: the faults, as scripts run on the hosts, each removing itself after a deadline
//!   even when terroir is killed;
//! - [`probe`]: the probes, run over SSH on the platform's own hosts;
//! - [`drill`]: one claim after another (or a cut-off of many at once), timed;
//! - [`report`]: `continuity-report.json` and `.md`.

pub mod claims;
pub mod drill;
pub mod fault;
pub mod probe;
pub mod report;
pub mod spec;

pub use claims::{Claim, ClaimSpec, Probe};
