//! One entry of a `Status`'s `details.causes`: why a field was refused.

#[derive(Debug, Clone)]
pub(crate) struct Cause {
    pub reason: String,
    pub message: String,
    pub field: String,
}

pub(crate) fn cause(reason: &str, field: &str, message: impl Into<String>) -> Cause {
    Cause {
        reason: reason.to_owned(),
        message: message.into(),
        field: field.to_owned(),
    }
}
