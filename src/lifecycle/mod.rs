//! The platform's life after its first apply: the restore point taken before a new release, the
//! releases kept and rolled back to (`terroir rollback`), and the end of it all (`terroir
//! destroy`), with the signed record of what was erased.
//!
//! What is pure lives here (the plans, the records, the rules); each target's effects live with
//! its driver (`deploy::baremetal::lifecycle`, `deploy::kubernetes::lifecycle`,
//! `deploy::secnumcloud::lifecycle`).

pub mod destroy;
pub mod release;
pub mod rollback;
