//! Container image references as the document writes them: `repo:tag`, `repo@sha256:…` or both,
//! relative to the platform's registry or absolute when the first part names a registry host.
//! A digest says what ran; a tag only what was asked for.

/// What a pinned reference's digest must look like, for messages.
pub const DIGEST_EXPECTED: &str = "a digest written `sha256:` and 64 lowercase hexadecimal digits, as in `terroir/postgres:15-bookworm@sha256:<64 hex>`";

/// An image reference split at its digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageRef<'a> {
    /// Everything before `@`: the repository and its tag, if any.
    pub name: &'a str,
    /// The 64 lowercase hexadecimal digits after `@sha256:`, when the reference is pinned.
    pub sha256: Option<&'a str>,
}

/// Why a digest is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("digest `{0}` does not use SHA-256")]
    Algorithm(String),
    #[error("digest `{0}` is not 64 lowercase hexadecimal digits")]
    Hex(String),
}

impl<'a> ImageRef<'a> {
    /// Split `reference` at `@`; a digest, when present, must be `sha256:` and 64 lowercase hex.
    pub fn parse(reference: &'a str) -> Result<Self, DigestError> {
        let Some((name, digest)) = reference.split_once('@') else {
            return Ok(ImageRef {
                name: reference,
                sha256: None,
            });
        };
        let Some(hex) = digest.strip_prefix("sha256:") else {
            return Err(DigestError::Algorithm(digest.to_owned()));
        };
        if !is_sha256_hex(hex) {
            return Err(DigestError::Hex(digest.to_owned()));
        }
        Ok(ImageRef {
            name,
            sha256: Some(hex),
        })
    }
}

/// 64 lowercase hexadecimal digits.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether the reference's first path part names a registry host (`registry.example.fr/...`,
/// `localhost:5000/...`) rather than a repository in the platform's registry.
pub fn has_registry_host(reference: &str) -> bool {
    match reference.split_once('/') {
        Some((first, _)) => first.contains(['.', ':']) || first == "localhost",
        None => false,
    }
}

/// The reference as pulled: relative ones are prefixed with the platform's registry.
pub fn absolute(registry: &str, reference: &str) -> String {
    if has_registry_host(reference) {
        reference.to_owned()
    } else {
        format!("{registry}/{reference}")
    }
}

/// The SHA-256 digest a container runtime reports for a running container's image
/// (`imageID`: `registry/repo@sha256:…`, `docker-pullable://…@sha256:…`, or `sha256:…` alone).
pub fn running_sha256(image_id: &str) -> Option<&str> {
    let digest = image_id.rsplit_once('@').map_or(image_id, |(_, d)| d);
    digest.strip_prefix("sha256:").filter(|h| is_sha256_hex(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn pinned_and_tagged_references_split_at_the_digest() {
        let tagged = format!("terroir/postgres:15-bookworm@sha256:{HEX}");
        assert_eq!(
            ImageRef::parse(&tagged),
            Ok(ImageRef {
                name: "terroir/postgres:15-bookworm",
                sha256: Some(HEX)
            })
        );
        assert_eq!(
            ImageRef::parse("prom/prometheus:v3.5.0").map(|r| r.sha256),
            Ok(None)
        );
    }

    #[test]
    fn malformed_digests_are_refused() {
        assert!(matches!(
            ImageRef::parse(&format!("a/b@sha512:{HEX}")),
            Err(DigestError::Algorithm(_))
        ));
        assert!(matches!(
            ImageRef::parse(&format!("a/b@sha256:{}", HEX.to_uppercase())),
            Err(DigestError::Hex(_))
        ));
        assert!(matches!(
            ImageRef::parse("a/b@sha256:abc"),
            Err(DigestError::Hex(_))
        ));
    }

    #[test]
    fn registry_hosts_are_told_from_repositories() {
        assert!(has_registry_host("registry.example.fr/terroir/postgres"));
        assert!(has_registry_host("localhost:5000/x"));
        assert!(!has_registry_host("terroir/postgres:15"));
        assert_eq!(
            absolute("r.example.fr", "prom/x:1"),
            "r.example.fr/prom/x:1"
        );
        assert_eq!(
            absolute("r.example.fr", "o.example.fr/x:1"),
            "o.example.fr/x:1"
        );
    }

    #[test]
    fn running_digests_are_read_from_every_spelling() {
        for id in [
            format!("registry.example.fr/terroir/postgres@sha256:{HEX}"),
            format!("docker-pullable://registry.example.fr/terroir/postgres@sha256:{HEX}"),
            format!("sha256:{HEX}"),
        ] {
            assert_eq!(running_sha256(&id), Some(HEX), "{id}");
        }
        assert_eq!(running_sha256("registry.example.fr/x:1"), None);
    }
}
