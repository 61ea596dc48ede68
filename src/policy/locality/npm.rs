//! Fetching packages from an npm registry: the package's metadata (latest version, tarball
//! address, integrity hash) and the tarball itself, checked against its SRI integrity hash
//! (`sha512-<base64>`) before anything uses it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use sha2::{Digest, Sha512};

use super::geodata::{GeodataError, Staged, TempFile, temp_path};

/// The latest version of a package as the registry describes it.
#[derive(Debug, Clone)]
pub struct Dist {
    pub package: String,
    pub version: String,
    /// Absolute URL of the tarball.
    pub tarball: String,
    /// SRI string, e.g. `sha512-<base64>`.
    pub integrity: String,
}

/// Largest tarball accepted (the geodata packages are about 20 MB).
const MAX_TARBALL: u64 = 1 << 30;

/// An HTTP agent with timeouts suited to a registry, trusting the system's certificate
/// authorities (as npm and curl do).
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .http_status_as_error(false)
        .user_agent(concat!("terroir/", env!("CARGO_PKG_VERSION")))
        // the system's trust store: registries are often reached through a proxy with its own CA
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                .build(),
        )
        .build()
        .into()
}

/// Metadata URL of `package` (`@scope/name` -> `@scope%2fname`, as npm requests it).
pub fn metadata_url(registry: &str, package: &str) -> String {
    format!(
        "{}/{}",
        registry.trim_end_matches('/'),
        package.replacen('/', "%2f", 1)
    )
}

/// The `latest` dist-tag of `package` with its tarball address and integrity hash.
pub fn latest(agent: &ureq::Agent, registry: &str, package: &str) -> Result<Dist, GeodataError> {
    let url = metadata_url(registry, package);
    let err = |reason: String| GeodataError::Registry {
        url: url.clone(),
        reason,
    };
    let mut response = agent
        .get(&url)
        .header(
            "Accept",
            "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*",
        )
        .call()
        .map_err(|e| GeodataError::Http {
            url: url.clone(),
            what: "cannot fetch the package metadata",
            source: Box::new(e),
        })?;
    let status = response.status();
    if !status.is_success() {
        return Err(err(format!("HTTP {status} for the package metadata")));
    }
    let text = response
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .map_err(|e| GeodataError::Http {
            url: url.clone(),
            what: "cannot read the package metadata",
            source: Box::new(e),
        })?;
    let meta: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| GeodataError::MetadataSyntax {
            url: url.clone(),
            source,
        })?;
    let version = meta["dist-tags"]["latest"]
        .as_str()
        .ok_or_else(|| err("no `dist-tags.latest` in the package metadata".into()))?;
    let dist = &meta["versions"][version]["dist"];
    let tarball = dist["tarball"].as_str().ok_or_else(|| {
        err(format!(
            "no `versions[{version}].dist.tarball` in the package metadata"
        ))
    })?;
    let integrity = dist["integrity"]
        .as_str()
        .ok_or_else(|| err(format!("no `versions[{version}].dist.integrity` in the package metadata: refusing a tarball that cannot be verified")))?;
    if !tarball.starts_with("https://") && !tarball.starts_with("http://") {
        return Err(err(format!(
            "the tarball address {tarball:?} is not an http(s) URL"
        )));
    }
    Ok(Dist {
        package: package.to_owned(),
        version: version.to_owned(),
        tarball: tarball.to_owned(),
        integrity: integrity.to_owned(),
    })
}

/// The SHA-512 digests an SRI string allows (other algorithms are ignored).
pub fn sri_sha512(integrity: &str) -> Vec<Vec<u8>> {
    integrity
        .split_whitespace()
        .filter_map(|h| h.strip_prefix("sha512-"))
        .filter_map(|b64| b64.split('?').next())
        .filter_map(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .filter(|d| d.len() == 64)
        .collect()
}

/// SHA-512 of a file, as SRI (`sha512-<base64>`).
pub fn sri_of_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha512::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(hasher.finalize())
    ))
}

/// Whether the file at `path` matches `integrity`.
pub fn file_matches(path: &Path, integrity: &str) -> bool {
    let wanted = sri_sha512(integrity);
    sri_of_file(path)
        .ok()
        .and_then(|s| {
            s.strip_prefix("sha512-")
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        })
        .is_some_and(|d| wanted.contains(&d))
}

/// Download `dist`'s tarball into a hidden temporary file in `dir`, hashing it on the way, and
/// keep it only if its SHA-512 matches the integrity hash. `progress(done, total)` is called as
/// bytes arrive. Returns the temporary file's path (the caller stages and installs it).
pub fn download(
    agent: &ureq::Agent,
    dist: &Dist,
    dir: &Path,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<PathBuf, GeodataError> {
    let wanted = sri_sha512(&dist.integrity);
    let url = &dist.tarball;
    let err = |reason: String| GeodataError::Registry {
        url: url.clone(),
        reason,
    };
    if wanted.is_empty() {
        return Err(err(format!(
            "the integrity hash {:?} has no sha512 digest: refusing a tarball that cannot be verified",
            dist.integrity
        )));
    }
    let mut response = agent.get(url).call().map_err(|e| GeodataError::Http {
        url: url.clone(),
        what: "cannot download the tarball",
        source: Box::new(e),
    })?;
    let status = response.status();
    if !status.is_success() {
        return Err(err(format!("HTTP {status} for the tarball")));
    }
    let total = response.body().content_length();
    if total.is_some_and(|t| t > MAX_TARBALL) {
        return Err(err(format!(
            "the tarball is larger than {} MiB",
            MAX_TARBALL >> 20
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| GeodataError::Write {
        path: dir.to_owned(),
        source: e,
    })?;
    let tmp = temp_path(dir, "download");
    let guard = TempFile(tmp.clone());
    let mut file = std::fs::File::create(&tmp).map_err(|e| GeodataError::Write {
        path: tmp.clone(),
        source: e,
    })?;
    let mut reader = response
        .body_mut()
        .with_config()
        .limit(MAX_TARBALL)
        .reader();
    let mut hasher = Sha512::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut done = 0u64;
    progress(0, total);
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|source| GeodataError::Interrupted {
                url: url.clone(),
                source,
            })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).map_err(|e| GeodataError::Write {
            path: tmp.clone(),
            source: e,
        })?;
        done += n as u64;
        progress(done, total);
    }
    file.flush().map_err(|e| GeodataError::Write {
        path: tmp.clone(),
        source: e,
    })?;
    drop(file);
    let digest = hasher.finalize();
    if !wanted.iter().any(|w| w.as_slice() == digest.as_slice()) {
        return Err(GeodataError::Integrity {
            package: dist.package.clone(),
            version: dist.version.clone(),
            url: url.clone(),
            expected: dist.integrity.clone(),
            actual: format!(
                "sha512-{}",
                base64::engine::general_purpose::STANDARD.encode(digest)
            ),
        });
    }
    std::mem::forget(guard);
    Ok(tmp)
}

/// Download `dist`'s tarball into `dir` (see [`download`]) and stage it for
/// [`super::geodata::install`], once its package.json says it is the package and version the
/// registry named.
pub fn fetch(
    agent: &ureq::Agent,
    dist: &Dist,
    dir: &Path,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<Staged, GeodataError> {
    let tmp = download(agent, dist, dir, progress)?;
    let staged = Staged::from_temp(tmp).map_err(|e| GeodataError::UnusableTarball {
        url: dist.tarball.clone(),
        source: Box::new(e),
    })?;
    if staged.package() != dist.package || staged.version() != dist.version {
        return Err(GeodataError::WrongTarball {
            url: dist.tarball.clone(),
            expected: format!("{} {}", dist.package, dist.version),
            found: format!("{} {}", staged.package(), staged.version()),
        });
    }
    Ok(staged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_url_escapes_the_scope_like_npm() {
        assert_eq!(
            metadata_url("https://registry.npmjs.org/", "@ip-location-db/asn"),
            "https://registry.npmjs.org/@ip-location-db%2fasn"
        );
    }

    #[test]
    fn sri_keeps_only_sha512_digests() {
        let d = Sha512::digest(b"x");
        let b64 = base64::engine::general_purpose::STANDARD.encode(d);
        assert_eq!(
            sri_sha512(&format!("sha1-abc sha512-{b64}")),
            vec![d.to_vec()]
        );
        assert!(sri_sha512("sha256-AAAA").is_empty());
        assert!(sri_sha512("sha512-notbase64!").is_empty());
    }
}
