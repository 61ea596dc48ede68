//! The images a resolved platform runs, each with its digest when the document pins it: what
//! `terroir images list` shows, what the attestation lists as subjects and what `verify --live`
//! compares with the cluster's pods.

use serde::Serialize;

use super::resolve::ResolvedPlatform;
use crate::document::image::ImageRef;

/// One image of the platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageUse {
    /// The blueprint's image key, or `app` for `components.app.image`.
    pub key: String,
    /// The reference as pulled (registry included).
    pub reference: String,
    /// Whether the reference is pinned by digest (else by tag only).
    pub pinned: bool,
    /// The SHA-256 digest (64 lowercase hex) when the reference is pinned; `None`: by tag only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// Every image of the platform: the blueprint's by key, then the application's when enabled.
pub fn inventory(resolved: &ResolvedPlatform) -> Vec<ImageUse> {
    let app = &resolved.components.app;
    resolved
        .images
        .iter()
        .map(|(k, r)| (k.as_str(), r.as_str()))
        .chain(app.enabled.then_some(("app", app.image.as_str())))
        .map(|(key, reference)| {
            let sha256 = ImageRef::parse(reference)
                .ok()
                .and_then(|r| r.sha256)
                .map(str::to_owned);
            ImageUse {
                key: key.to_owned(),
                reference: reference.to_owned(),
                pinned: sha256.is_some(),
                sha256,
            }
        })
        .collect()
}
