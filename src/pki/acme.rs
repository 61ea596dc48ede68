//! Certificates for the platform's public names (`components.app.publicHost`) from the ACME CA
//! the document names (`spec.endpoints.acmeCa`), by the HTTP-01 challenge.
//!
//! nginx on every application host serves `/.well-known/acme-challenge/` on port 80 from
//! [`webroot`]. `apply` runs the order from the operator's machine once the hosts are converged:
//! it writes each challenge's key authorization to every application host (the public name may
//! point at any of them), tells the CA it is ready, waits for the order, finalizes it with a new
//! key, removes the challenge files, and keeps the chain and key in the secret store
//! (`public-tls-cert`, `public-tls-key`, see src/pki.rs), which the next converge delivers to nginx.
//!
//! The ACME account's key stays in the secret store too (`acme-account`), tied to the directory it
//! was made on. The certificate is renewed 30 days before its end, or at once when the names or
//! the CA change.

use std::time::Duration;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};

use crate::deploy::baremetal::ssh::{Connection, Target, shell_quote};
use crate::pki::{self, PublicState};
use crate::secrets::SecretStore;

/// The secret holding the ACME account (its key and URL) and the directory it belongs to.
pub const ACCOUNT: &str = "acme-account";

/// How long the CA may take to validate the challenges and to issue.
const VALIDATION: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    #[error(transparent)]
    Store(#[from] crate::secrets::SecretError),
    #[error("ACME CA {directory}: {message}")]
    Ca { directory: String, message: String },
    #[error("host {host}: {message}")]
    Host { host: String, message: String },
}

/// What to ask for, and where the challenges are served.
pub struct Request<'a> {
    pub platform: &'a str,
    /// The ACME directory URL.
    pub directory: &'a str,
    /// PEM of the CA behind the directory's own HTTPS certificate (a private ACME CA).
    pub ca_certificate: Option<&'a str>,
    /// Where the CA sends notices about the certificates (an e-mail address).
    pub contact: Option<&'a str>,
    pub names: Vec<String>,
    /// The application hosts: (name, how to reach it).
    pub hosts: Vec<(String, Target)>,
}

/// The directory on the application hosts that nginx serves at `/.well-known/acme-challenge/`.
pub fn webroot(platform: &str) -> String {
    format!("/var/www/{platform}-acme/.well-known/acme-challenge")
}

/// Why a certificate must be requested now, or `None` when the stored one serves.
pub fn due(
    store: &SecretStore,
    directory: &str,
    names: &[String],
) -> Result<Option<&'static str>, AcmeError> {
    let Some(state) = pki::public_state(store)? else {
        return Ok(Some("no certificate yet"));
    };
    Ok(if state.names != names {
        Some("the public names changed")
    } else if state.issuer == PublicState::INTERNAL {
        Some("the platform's own CA issued the current one")
    } else if state.issuer != directory {
        Some("another ACME CA issued the current one")
    } else if state.due() {
        Some("the current one ends within 30 days")
    } else {
        None
    })
}

/// Run one order to the end and store the certificate. The challenge files are removed from the
/// hosts whatever happens.
pub async fn obtain(store: &SecretStore, req: &Request<'_>) -> Result<PublicState, AcmeError> {
    let mut hosts = Vec::new();
    for (name, target) in &req.hosts {
        let conn = Connection::open(target).map_err(|e| AcmeError::Host {
            host: name.clone(),
            message: e.to_string(),
        })?;
        hosts.push((name.clone(), conn));
    }
    let mut written = Vec::new();
    let result = order(store, req, &hosts, &mut written).await;
    let cleaned = remove_challenges(req.platform, &hosts, &written);
    let state = result?;
    cleaned?;
    Ok(state)
}

/// The error and its causes: the client keeps the reason (refused, certificate unknown) inside.
fn chain(e: &instant_acme::Error) -> String {
    crate::text::error_chain(e)
}

fn ca(req: &Request<'_>, message: impl Into<String>) -> AcmeError {
    AcmeError::Ca {
        directory: req.directory.to_owned(),
        message: message.into(),
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredAccount {
    directory: String,
    credentials: AccountCredentials,
}

async fn account(store: &SecretStore, req: &Request<'_>) -> Result<Account, AcmeError> {
    let builder = || -> Result<instant_acme::AccountBuilder, AcmeError> {
        match req.ca_certificate {
            None => Account::builder()
                .map_err(|e| ca(req, format!("cannot set up HTTPS: {}", chain(&e)))),
            Some(pem) => {
                // the client takes its root from a file: a private one, removed right after
                let dir = std::env::temp_dir().join(format!("terroir-acme-{}", std::process::id()));
                std::fs::create_dir_all(&dir)
                    .map_err(|e| ca(req, format!("{}: {e}", dir.display())))?;
                let file = dir.join("ca.pem");
                std::fs::write(&file, pem)
                    .map_err(|e| ca(req, format!("{}: {e}", file.display())))?;
                let built = Account::builder_with_root(&file)
                    .map_err(|e| ca(req, format!("its `caCertificate`: {}", chain(&e))));
                let _ = std::fs::remove_dir_all(&dir);
                built
            }
        }
    };
    if let Some(text) = store.get(ACCOUNT)?
        && let Ok(saved) = serde_json::from_str::<StoredAccount>(&text)
        && saved.directory == req.directory
    {
        return builder()?
            .from_credentials(saved.credentials)
            .await
            .map_err(|e| ca(req, format!("the stored account: {}", chain(&e))));
    }
    let contact = req.contact.map(|c| format!("mailto:{c}"));
    let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
    let new = NewAccount {
        contact: &contacts,
        terms_of_service_agreed: true,
        only_return_existing: false,
    };
    let (account, credentials) = builder()?
        .create(&new, req.directory.to_owned(), None)
        .await
        .map_err(|e| ca(req, format!("creating the account: {}", chain(&e))))?;
    let saved = StoredAccount {
        directory: req.directory.to_owned(),
        credentials,
    };
    store.put(ACCOUNT, &serde_json::to_string(&saved).expect("serializes"))?;
    Ok(account)
}

async fn order(
    store: &SecretStore,
    req: &Request<'_>,
    hosts: &[(String, Connection)],
    written: &mut Vec<String>,
) -> Result<PublicState, AcmeError> {
    let account = account(store, req).await?;
    let identifiers: Vec<Identifier> = req.names.iter().cloned().map(Identifier::Dns).collect();
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .map_err(|e| ca(req, format!("new order: {}", chain(&e))))?;
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz.map_err(|e| ca(req, format!("authorization: {}", chain(&e))))?;
        match authz.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            other => {
                return Err(ca(
                    req,
                    format!("authorization for {} is {other:?}", authz.identifier()),
                ));
            }
        }
        let identifier = authz.identifier().to_string();
        let mut challenge = authz
            .challenge(ChallengeType::Http01)
            .ok_or_else(|| ca(req, format!("offers no HTTP-01 challenge for {identifier}")))?;
        let token = challenge.token.clone();
        if token.is_empty()
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ca(
                req,
                format!("challenge token `{token}` is not base64url"),
            ));
        }
        let proof = challenge.key_authorization().as_str().to_owned();
        let dir = webroot(req.platform);
        let script = format!(
            "install -d -m 0755 {d} && umask 022 && cat > {d}/{t}",
            d = shell_quote(&dir),
            t = token
        );
        written.push(token.clone());
        for (name, conn) in hosts {
            let out = conn
                .sudo(&script, Some(proof.as_bytes()))
                .map_err(|e| AcmeError::Host {
                    host: name.clone(),
                    message: e.to_string(),
                })?;
            if !out.ok() {
                return Err(AcmeError::Host {
                    host: name.clone(),
                    message: format!("writing the ACME challenge: {}", out.stderr_str().trim()),
                });
            }
        }
        challenge
            .set_ready()
            .await
            .map_err(|e| ca(req, format!("challenge for {identifier}: {}", chain(&e))))?;
    }
    let retries = RetryPolicy::new().timeout(VALIDATION);
    let status = order
        .poll_ready(&retries)
        .await
        .map_err(|e| ca(req, format!("validating the challenge: {}", chain(&e))))?;
    if status != OrderStatus::Ready {
        return Err(ca(
            req,
            format!("the order is {status:?}: {}", problems(&mut order).await),
        ));
    }
    let key = order
        .finalize()
        .await
        .map_err(|e| ca(req, format!("finalizing: {}", chain(&e))))?;
    let chain = order
        .poll_certificate(&retries)
        .await
        .map_err(|e| ca(req, format!("downloading the certificate: {}", chain(&e))))?;
    let state = PublicState {
        names: req.names.clone(),
        issuer: req.directory.to_owned(),
        expires: pki::not_after(&chain)?,
    };
    pki::store_public(store, &key, &chain, &state)?;
    Ok(state)
}

/// What the CA said went wrong: the order's own error and each failed challenge's.
async fn problems(order: &mut instant_acme::Order) -> String {
    let mut out = Vec::new();
    if let Some(p) = &order.state().error {
        out.push(p.to_string());
    }
    let mut authorizations = order.authorizations();
    while let Some(Ok(authz)) = authorizations.next().await {
        let id = authz.identifier().to_string();
        for c in &authz.challenges {
            if let Some(p) = &c.error {
                out.push(format!("{id}: {p}"));
            }
        }
    }
    if out.is_empty() {
        "the CA gave no reason".to_owned()
    } else {
        out.join("; ")
    }
}

fn remove_challenges(
    platform: &str,
    hosts: &[(String, Connection)],
    tokens: &[String],
) -> Result<(), AcmeError> {
    if tokens.is_empty() {
        return Ok(());
    }
    let dir = webroot(platform);
    let files: Vec<String> = tokens
        .iter()
        .map(|t| shell_quote(&format!("{dir}/{t}")))
        .collect();
    let script = format!("rm -f {}", files.join(" "));
    for (name, conn) in hosts {
        let out = conn.sudo(&script, None).map_err(|e| AcmeError::Host {
            host: name.clone(),
            message: e.to_string(),
        })?;
        if !out.ok() {
            return Err(AcmeError::Host {
                host: name.clone(),
                message: format!("removing the ACME challenges: {}", out.stderr_str().trim()),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate is asked for when there is none, when the platform's CA made it, when the
    /// names or the CA change, and near its end; not otherwise.
    #[test]
    fn due_when_missing_internal_changed_or_ending() {
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::beside(&dir.path().join("p.yaml"), "demo");
        let names = vec!["crm.example.fr".to_owned()];
        let ca = "https://acme.example/dir";
        assert_eq!(due(&store, ca, &names).unwrap(), Some("no certificate yet"));
        pki::ensure_public(&store, "demo", &names).unwrap();
        assert_eq!(
            due(&store, ca, &names).unwrap(),
            Some("the platform's own CA issued the current one")
        );
        let later = time::OffsetDateTime::now_utc().unix_timestamp() + 60 * 86_400;
        pki::store_public(
            &store,
            "k",
            "c",
            &PublicState {
                names: names.clone(),
                issuer: ca.into(),
                expires: later,
            },
        )
        .unwrap();
        assert_eq!(due(&store, ca, &names).unwrap(), None);
        assert_eq!(
            due(&store, "https://other.example/dir", &names).unwrap(),
            Some("another ACME CA issued the current one")
        );
        assert_eq!(
            due(&store, ca, &["www.example.fr".to_owned()]).unwrap(),
            Some("the public names changed")
        );
        pki::store_public(
            &store,
            "k",
            "c",
            &PublicState {
                names: names.clone(),
                issuer: ca.into(),
                expires: later - 40 * 86_400,
            },
        )
        .unwrap();
        assert_eq!(
            due(&store, ca, &names).unwrap(),
            Some("the current one ends within 30 days")
        );
    }
}
