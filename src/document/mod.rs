//! The Platform document: types, loading with source positions, schema and validation.

pub mod crd;
pub mod diagnostic;
pub mod load;
pub mod platform;
pub mod schedule;
pub mod schema;
pub mod source;
pub mod validate;

pub use diagnostic::Diagnostic;
pub use load::{load_file, load_str, Loaded};
pub use platform::*;
