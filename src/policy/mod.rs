//! Where the platform runs and who operates it, judged against the document's sovereignty policy:
//! the gate every change passes first, locality (geodata, provider catalog, live facts) and the
//! sovereignty assessments rendered with the platform.

pub mod assess;
pub mod digests;
pub mod gate;
pub mod locality;
pub mod sovereignty;
