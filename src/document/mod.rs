//! The Platform document: types, loading with source positions, schema and validation.

pub mod crd;
pub mod diagnostic;
pub mod image;
pub mod load;
pub mod pin;
pub mod platform;
pub mod schedule;
pub mod schema;
pub mod source;
pub mod validate;

pub use diagnostic::Diagnostic;
pub use load::{Loaded, load_file, load_str};
pub use platform::*;

/// A document that failed its checks: every problem found, each with file, line and column.
#[derive(Debug, thiserror::Error)]
#[error("{file}: invalid document ({} error{})", diagnostics.len(), crate::text::plural(diagnostics.len()))]
pub struct Invalid {
    pub file: String,
    /// The document's text, to show the lines the diagnostics point at.
    pub text: Option<String>,
    pub diagnostics: Vec<Diagnostic>,
}
