//! The platform's internal certificate authority: every connection inside a platform (the
//! application to PostgreSQL and to Postfix, Alertmanager to Postfix) is TLS with a certificate
//! the client verifies against it.
//!
//! The CA and the host certificates are made with rcgen on the operator's side and kept in the
//! platform's secret store: `tls-ca-key` (never leaves the operator), `tls-ca-cert`, and per host
//! `tls-<host>-key`, `tls-<host>-cert` and `tls-<host>-names` (the names the certificate was made
//! for and its expiry, so that a changed address or a certificate near its end is re-issued). The
//! bare-metal plan delivers them to the hosts as secret files.

pub mod acme;
pub mod tls;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::secrets::{SecretError, SecretStore};

/// CA certificates last ten years, host certificates two (and are re-issued 30 days before).
const CA_DAYS: i64 = 3650;
const HOST_DAYS: i64 = 730;
const RENEW_BEFORE_DAYS: i64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error(transparent)]
    Store(#[from] SecretError),
    #[error("certificate for {what}: {message}")]
    Cert { what: String, message: String },
}

/// A host that gets a server certificate, and the names clients reach it by.
#[derive(Debug, Clone)]
pub struct HostNames {
    pub host: String,
    /// DNS names and IP addresses (the first one is the certificate's common name).
    pub names: Vec<String>,
}

/// The names a host's certificate is made for: its name and address, the MTA's hostname on the
/// MTA host, and the loopback.
pub fn tls_names(
    host: &crate::pipeline::render::plan::HostPlan,
    resolved: &crate::pipeline::resolve::ResolvedPlatform,
) -> HostNames {
    let mut names = vec![host.name.clone()];
    if !host.address.is_empty() {
        names.push(host.address.clone());
    }
    if host.roles.contains(&crate::document::Role::Mta) && resolved.components.mta.enabled {
        names.push(resolved.components.mta.hostname.clone());
    }
    names.extend(["localhost".to_owned(), "127.0.0.1".to_owned()]);
    let mut seen = std::collections::BTreeSet::new();
    names.retain(|n| !n.is_empty() && seen.insert(n.clone()));
    HostNames {
        host: host.name.clone(),
        names,
    }
}

/// Secret names of the CA and of a host's certificate.
pub const CA_CERT: &str = "tls-ca-cert";
pub const CA_KEY: &str = "tls-ca-key";
pub fn host_cert(host: &str) -> String {
    format!("tls-{host}-cert")
}
pub fn host_key(host: &str) -> String {
    format!("tls-{host}-key")
}
fn host_names(host: &str) -> String {
    format!("tls-{host}-names")
}

fn ca_params(platform: &str) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{platform} internal CA"));
    params
        .distinguished_name
        .push(DnType::OrganizationName, "terroir");
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

fn cert_err(what: &str) -> impl Fn(rcgen::Error) -> PkiError + '_ {
    move |e| PkiError::Cert {
        what: what.to_owned(),
        message: e.to_string(),
    }
}

/// The CA's key pair, made the first time.
fn ensure_ca(
    store: &SecretStore,
    platform: &str,
) -> Result<(Issuer<'static, KeyPair>, Vec<String>), PkiError> {
    let mut made = Vec::new();
    let key = match store.get(CA_KEY)? {
        Some(pem) => KeyPair::from_pem(&pem).map_err(cert_err("the platform CA (stored key)"))?,
        None => {
            let key = KeyPair::generate().map_err(cert_err("the platform CA"))?;
            store.put(CA_KEY, &key.serialize_pem())?;
            store.remove(CA_CERT)?;
            made.push(CA_KEY.to_owned());
            key
        }
    };
    if store.get(CA_CERT)?.is_none() {
        store.put(CA_CERT, &ca_cert(platform, &key)?.0)?;
        made.push(CA_CERT.to_owned());
    }
    // the issuer is rebuilt from the same subject and key: certificates it signs chain to the
    // stored CA certificate
    let issuer = Issuer::new(
        ca_params(platform).map_err(cert_err("the platform CA"))?,
        key,
    );
    Ok((issuer, made))
}

/// A key and its certificate, in PEM, and when the certificate ends (Unix time).
#[derive(Debug, Clone)]
pub struct Issued {
    pub key_pem: String,
    pub cert_pem: String,
    pub not_after: i64,
}

/// The CA's self-signed certificate for `key`, and when it ends.
fn ca_cert(platform: &str, key: &KeyPair) -> Result<(String, i64), PkiError> {
    let mut params = ca_params(platform).map_err(cert_err("the platform CA"))?;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(CA_DAYS);
    let cert = params
        .self_signed(key)
        .map_err(cert_err("the platform CA"))?;
    Ok((cert.pem(), params.not_after.unix_timestamp()))
}

/// A server certificate for `names` (the first is the common name), signed by the CA.
fn server_cert(
    platform: &str,
    issuer: &Issuer<'_, KeyPair>,
    names: &[String],
    what: &str,
) -> Result<Issued, PkiError> {
    let now = time::OffsetDateTime::now_utc();
    let key = KeyPair::generate().map_err(cert_err(what))?;
    let mut params = CertificateParams::new(names.to_vec()).map_err(cert_err(what))?;
    if let Some(first) = names.first() {
        params
            .distinguished_name
            .push(DnType::CommonName, first.clone());
    }
    params
        .distinguished_name
        .push(DnType::OrganizationName, format!("{platform} (terroir)"));
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - time::Duration::days(1);
    let not_after = now + time::Duration::days(HOST_DAYS);
    params.not_after = not_after;
    let cert = params.signed_by(&key, issuer).map_err(cert_err(what))?;
    Ok(Issued {
        key_pem: key.serialize_pem(),
        cert_pem: cert.pem(),
        not_after: not_after.unix_timestamp(),
    })
}

/// A new platform CA (ECDSA P-256), kept elsewhere than in a store (a cluster's Secret).
pub fn new_ca(platform: &str) -> Result<Issued, PkiError> {
    let key = KeyPair::generate().map_err(cert_err("the platform CA"))?;
    let (cert_pem, not_after) = ca_cert(platform, &key)?;
    Ok(Issued {
        key_pem: key.serialize_pem(),
        cert_pem,
        not_after,
    })
}

/// A server certificate for `names` from the CA whose key is `ca_key_pem`.
pub fn issue_server(
    platform: &str,
    ca_key_pem: &str,
    names: &[String],
    what: &str,
) -> Result<Issued, PkiError> {
    let key = KeyPair::from_pem(ca_key_pem).map_err(cert_err("the platform CA (stored key)"))?;
    let issuer = Issuer::new(
        ca_params(platform).map_err(cert_err("the platform CA"))?,
        key,
    );
    server_cert(platform, &issuer, names, what)
}

/// Whether a certificate ending at `not_after` (Unix time) is due for renewal: it ends within 30
/// days, or has ended. The one rule for host, cluster and public certificates.
pub fn ends_soon(not_after: i64) -> bool {
    not_after
        <= (time::OffsetDateTime::now_utc() + time::Duration::days(RENEW_BEFORE_DAYS))
            .unix_timestamp()
}

/// Whether a certificate made for `names` ending at `not_after` serves `want` for 30 days more.
pub fn still_good(names: &str, not_after: i64, want: &[String]) -> bool {
    names == want.join(",") && !ends_soon(not_after)
}

/// Make the CA and every host's certificate that is missing, was made for other names or ends
/// within 30 days. Returns the names of the secrets written.
pub fn ensure(
    store: &SecretStore,
    platform: &str,
    hosts: &[HostNames],
) -> Result<Vec<String>, PkiError> {
    let (issuer, mut made) = ensure_ca(store, platform)?;
    let ca_renewed = !made.is_empty();
    for h in hosts {
        let want = h.names.join("\n");
        let current = store.get(&host_names(&h.host))?.unwrap_or_default();
        let (names, expires) = current.rsplit_once("\nexpires=").unwrap_or(("", "0"));
        let expires: i64 = expires.trim().parse().unwrap_or(0);
        let fresh = names == want
            && !ends_soon(expires)
            && store.get(&host_cert(&h.host))?.is_some()
            && store.get(&host_key(&h.host))?.is_some();
        if fresh && !ca_renewed {
            continue;
        }
        let issued = server_cert(platform, &issuer, &h.names, &format!("host {}", h.host))?;
        store.put(&host_key(&h.host), &issued.key_pem)?;
        store.put(&host_cert(&h.host), &issued.cert_pem)?;
        store.put(
            &host_names(&h.host),
            &format!("{want}\nexpires={}", issued.not_after),
        )?;
        made.push(host_cert(&h.host));
    }
    Ok(made)
}

/// The certificate nginx serves for the platform's public names (`components.app.publicHost`),
/// with its key and what it was made for. Issued by the ACME CA the document names (src/acme.rs),
/// or by the platform's own CA until then, or when the document names none.
pub const PUBLIC_CERT: &str = "public-tls-cert";
pub const PUBLIC_KEY: &str = "public-tls-key";
pub const PUBLIC_STATE: &str = "public-tls-state";

/// Who issued the public certificate, for which names, until when.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicState {
    pub names: Vec<String>,
    /// `internal` (the platform's CA) or the ACME directory URL.
    pub issuer: String,
    /// Unix seconds.
    pub expires: i64,
}

impl PublicState {
    pub const INTERNAL: &str = "internal";

    /// Within 30 days of its end (or past it).
    pub fn due(&self) -> bool {
        ends_soon(self.expires)
    }
}

/// The public certificate's state, if one was made and all three secrets are there.
pub fn public_state(store: &SecretStore) -> Result<Option<PublicState>, PkiError> {
    let Some(text) = store.get(PUBLIC_STATE)? else {
        return Ok(None);
    };
    if store.get(PUBLIC_CERT)?.is_none() || store.get(PUBLIC_KEY)?.is_none() {
        return Ok(None);
    }
    Ok(serde_json::from_str(&text).ok())
}

/// Keep a certificate for the public names: one made by the platform's CA when there is none, when
/// the names changed, or when an internal one is due. A certificate from an ACME CA for the same
/// names is left to src/acme.rs to renew. Returns the secrets written.
pub fn ensure_public(
    store: &SecretStore,
    platform: &str,
    names: &[String],
) -> Result<Vec<String>, PkiError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    if let Some(state) = public_state(store)?
        && state.names == names
        && (state.issuer != PublicState::INTERNAL || !state.due())
    {
        return Ok(Vec::new());
    }
    let (issuer, _) = ensure_ca(store, platform)?;
    let issued = server_cert(platform, &issuer, names, "the public names")?;
    store_public(
        store,
        &issued.key_pem,
        &issued.cert_pem,
        &PublicState {
            names: names.to_vec(),
            issuer: PublicState::INTERNAL.to_owned(),
            expires: issued.not_after,
        },
    )?;
    Ok(vec![PUBLIC_CERT.to_owned()])
}

/// Store a public certificate (its chain), key and state together.
pub fn store_public(
    store: &SecretStore,
    key: &str,
    chain: &str,
    state: &PublicState,
) -> Result<(), PkiError> {
    store.put(PUBLIC_KEY, key)?;
    store.put(PUBLIC_CERT, chain)?;
    store.put(
        PUBLIC_STATE,
        &serde_json::to_string(state).expect("serializes"),
    )?;
    Ok(())
}

/// The end of validity of the first certificate in a PEM chain, in Unix seconds.
pub fn not_after(chain_pem: &str) -> Result<i64, PkiError> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let bad = |message: String| PkiError::Cert {
        what: "the certificate received".into(),
        message,
    };
    let der = CertificateDer::from_pem_slice(chain_pem.as_bytes())
        .map_err(|e| bad(format!("not PEM: {e}")))?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| bad(e.to_string()))?;
    Ok(cert.validity().not_after.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, SecretStore) {
        let dir = tempfile::tempdir().unwrap();
        let doc = dir.path().join("platform.yaml");
        let store = SecretStore::beside(&doc, "demo");
        (dir, store)
    }

    fn hosts(address: &str) -> Vec<HostNames> {
        vec![HostNames {
            host: "db1".into(),
            names: vec!["db1".into(), address.into(), "localhost".into()],
        }]
    }

    /// The host certificate verifies against the CA for its address and name, not for others.
    #[test]
    fn host_certificates_chain_to_the_ca() {
        let (_d, store) = store();
        let made = ensure(&store, "demo", &hosts("198.18.0.11")).unwrap();
        assert_eq!(made, vec![CA_KEY, CA_CERT, "tls-db1-cert"]);
        let ca = store.get(CA_CERT).unwrap().unwrap();
        let cert = store.get("tls-db1-cert").unwrap().unwrap();
        let mut roots = rustls::RootCertStore::empty();
        use rustls::client::danger::ServerCertVerifier;
        use rustls::pki_types::pem::PemObject;
        roots
            .add(rustls::pki_types::CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
            .unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            provider,
        )
        .build()
        .unwrap();
        let end = rustls::pki_types::CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
        let now = rustls::pki_types::UnixTime::now();
        for name in ["198.18.0.11", "db1", "localhost"] {
            let sn = rustls::pki_types::ServerName::try_from(name).unwrap();
            verifier
                .verify_server_cert(&end, &[], &sn, &[], now)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        for name in ["198.18.0.12", "db2"] {
            let sn = rustls::pki_types::ServerName::try_from(name).unwrap();
            assert!(
                verifier
                    .verify_server_cert(&end, &[], &sn, &[], now)
                    .is_err(),
                "{name} must not verify"
            );
        }
    }

    /// A second run changes nothing; a new address re-issues the host's certificate only.
    #[test]
    fn reissued_only_when_names_change() {
        let (_d, store) = store();
        ensure(&store, "demo", &hosts("198.18.0.11")).unwrap();
        let cert = store.get("tls-db1-cert").unwrap();
        assert!(
            ensure(&store, "demo", &hosts("198.18.0.11"))
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.get("tls-db1-cert").unwrap(), cert);
        let ca = store.get(CA_CERT).unwrap();
        assert_eq!(
            ensure(&store, "demo", &hosts("198.18.0.21")).unwrap(),
            vec!["tls-db1-cert"]
        );
        assert_ne!(store.get("tls-db1-cert").unwrap(), cert);
        assert_eq!(store.get(CA_CERT).unwrap(), ca);
    }

    /// The public names get a certificate from the platform's CA until an ACME one replaces it;
    /// that one is kept (its renewal is the ACME client's), unless the names change.
    #[test]
    fn public_certificate_bootstraps_and_yields_to_acme() {
        let (_d, store) = store();
        let names = vec!["crm.example.fr".to_owned()];
        assert_eq!(
            ensure_public(&store, "demo", &names).unwrap(),
            vec![PUBLIC_CERT]
        );
        let state = public_state(&store).unwrap().unwrap();
        assert_eq!(
            (state.issuer.as_str(), state.due()),
            (PublicState::INTERNAL, false)
        );
        assert_eq!(
            not_after(&store.get(PUBLIC_CERT).unwrap().unwrap()).unwrap(),
            state.expires
        );
        assert!(ensure_public(&store, "demo", &names).unwrap().is_empty());
        let acme = PublicState {
            names: names.clone(),
            issuer: "https://acme.example/dir".into(),
            expires: 0,
        };
        store_public(&store, "key", "chain", &acme).unwrap();
        assert!(
            ensure_public(&store, "demo", &names).unwrap().is_empty(),
            "an ACME certificate is not replaced by an internal one"
        );
        assert_eq!(store.get(PUBLIC_CERT).unwrap().unwrap(), "chain");
        assert_eq!(
            ensure_public(&store, "demo", &["www.example.fr".to_owned()]).unwrap(),
            vec![PUBLIC_CERT]
        );
        assert_eq!(
            public_state(&store).unwrap().unwrap().issuer,
            PublicState::INTERNAL
        );
    }

    /// Removing a certificate (what `terroir secrets rotate tls-…` does) makes a new one.
    #[test]
    fn removed_certificates_are_made_again() {
        let (_d, store) = store();
        ensure(&store, "demo", &hosts("198.18.0.11")).unwrap();
        store.remove("tls-db1-cert").unwrap();
        assert_eq!(
            ensure(&store, "demo", &hosts("198.18.0.11")).unwrap(),
            vec!["tls-db1-cert"]
        );
    }
}
