//! Terroir: render and apply blueprints that deploy a customer-engagement platform where its data
//! must stay, and prove where everything runs.

pub mod attest;
pub mod backup;
pub mod cli;
pub mod commands;
pub mod deploy;
pub mod document;
pub mod operator;
pub mod pipeline;
pub mod pki;
pub mod policy;
pub mod reversibility;
pub mod secrets;
pub mod smoke;

/// Unix seconds as an RFC 3339 UTC time (`2026-11-23T19:20:00Z`).
pub fn rfc3339(seconds: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(seconds).map(|t| t.to_string()).unwrap_or_default()
}

/// An error and its sources on one line (`a: b: c`): many libraries keep the reason in the chain.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut message = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let next = s.to_string();
        // Some errors repeat their source in their own message.
        if !message.ends_with(&next) {
            message.push_str(": ");
            message.push_str(&next);
        }
        src = s.source();
    }
    message
}
