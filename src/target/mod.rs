//! Drivers that change real targets from a rendered tree.

pub mod baremetal;
