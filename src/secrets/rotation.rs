//! Rotating a secret of the store: what a rotation replaces (a value, or a certificate with its
//! key), which hosts receive it, and where the previous values are kept.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::{SecretError, SecretStore};
use crate::document::Loaded;
use crate::pipeline::blueprint::Catalog;
use crate::pipeline::render::RenderError;
use crate::pipeline::render::plan::{Plan, Step};

/// Secret name → the hosts that receive it from the store.
pub type Receivers = BTreeMap<String, BTreeSet<String>>;

/// Which hosts receive each secret, from the rendered bare-metal plan (none for other targets:
/// their secrets are not delivered from this store).
pub fn receivers(loaded: &Loaded, catalog: &Catalog) -> Result<Receivers, RenderError> {
    if loaded.platform.spec.target.baremetal().is_none() {
        return Ok(Receivers::new());
    }
    let (_, tree) = crate::pipeline::render::render(loaded, catalog)?;
    Ok(receivers_in(&Plan::from_tree(&tree)?))
}

fn receivers_in(plan: &Plan) -> Receivers {
    let mut out = Receivers::new();
    for host in &plan.hosts {
        for step in &host.steps {
            if let Step::Secret { secret, .. } = step {
                out.entry(secret.secret.clone())
                    .or_default()
                    .insert(host.name.clone());
            }
        }
    }
    out
}

/// A rotation of one secret, checked against the store and not yet made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The secret asked for.
    pub name: String,
    /// The secrets it replaces: itself, or a certificate's key and certificate.
    pub names: Vec<String>,
    /// A certificate: removed with its partner, so that the next apply issues new ones.
    pub certificate: bool,
    /// The hosts that receive any of them.
    pub hosts: BTreeSet<String>,
}

/// A certificate made by terroir (the platform CA's, a host's, the public names'): rotating it
/// removes it, and the apply makes a new one.
fn is_certificate(name: &str) -> bool {
    name.starts_with("tls-") || name.starts_with("public-tls-")
}

/// The secrets a rotation of `name` replaces: itself, or for a certificate its key and certificate.
fn rotated_names(name: &str, held: &[String]) -> Vec<String> {
    let base = ["-key", "-cert", "-names", "-state"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .filter(|_| is_certificate(name));
    match base {
        Some(base) => [format!("{base}-key"), format!("{base}-cert")]
            .into_iter()
            .filter(|n| n == name || held.contains(n))
            .collect(),
        None => vec![name.to_owned()],
    }
}

impl Rotation {
    /// Check that `name` can be rotated in `store` (of the platform in `document`): it exists,
    /// and it is not the backup repository's key, which the repository keeps for good.
    pub fn plan(
        store: &SecretStore,
        document: &Path,
        name: &str,
        receivers: &Receivers,
    ) -> Result<Rotation, SecretError> {
        let held = store.names()?;
        if !held.iter().any(|n| n == name) {
            return Err(SecretError::NotInStore {
                name: name.to_owned(),
                store: store.dir().to_owned(),
                held,
                document: document.to_owned(),
            });
        }
        if name == crate::backup::CIPHER_PASS {
            return Err(SecretError::BackupKey {
                secret: format!("secret `{name}`"),
            });
        }
        let names = rotated_names(name, &held);
        let hosts = names
            .iter()
            .filter_map(|n| receivers.get(n))
            .flatten()
            .cloned()
            .collect();
        Ok(Rotation {
            name: name.to_owned(),
            certificate: is_certificate(name),
            names,
            hosts,
        })
    }

    /// Where each replaced value is kept, by file name in the store.
    pub fn previous_files(&self, store: &SecretStore) -> Vec<String> {
        self.names
            .iter()
            .map(|n| {
                if store.encrypted() {
                    format!("{n}.previous.age")
                } else {
                    format!("{n}.previous")
                }
            })
            .collect()
    }

    /// Replace the value (or remove the certificate and its partner), keeping the previous ones.
    pub fn perform(&self, store: &SecretStore) -> Result<(), SecretError> {
        if self.certificate {
            for n in &self.names {
                store.keep_previous(n)?;
                store.remove(n)?;
            }
            Ok(())
        } else {
            store.rotate(&self.name)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn each_secret_goes_to_the_hosts_whose_plan_installs_it() {
        let plan: Plan = serde_json::from_value(serde_json::json!({
            "platform": "p", "blueprint": "b", "blueprintVersion": "1", "packageMirror": "",
            "hosts": [
                {"name": "db1", "address": "10.0.0.1", "roles": ["database"], "steps": [
                    {"kind": "secret", "id": "secret:/a", "secret": "database-password", "dest": "/a"},
                    {"kind": "packages", "id": "packages", "names": ["postgresql"]}]},
                {"name": "app1", "address": "10.0.0.2", "roles": ["app"], "steps": [
                    {"kind": "secret", "id": "secret:/b", "secret": "database-password", "dest": "/b"},
                    {"kind": "secret", "id": "secret:/c", "secret": "smtp-relay-password", "dest": "/c"}]}
            ]
        }))
        .unwrap();
        let r = receivers_in(&plan);
        assert_eq!(
            r["database-password"].iter().collect::<Vec<_>>(),
            ["app1", "db1"]
        );
        assert_eq!(
            r["smtp-relay-password"].iter().collect::<Vec<_>>(),
            ["app1"]
        );
        assert_eq!(r.len(), 2);
    }

    /// A certificate rotates with its key (the apply makes both again); a password alone.
    #[test]
    fn certificates_rotate_with_their_keys() {
        let held: Vec<String> = [
            "tls-db1-cert",
            "tls-db1-key",
            "public-tls-cert",
            "public-tls-key",
            "public-tls-state",
            "database-password",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            rotated_names("tls-db1-key", &held),
            ["tls-db1-key", "tls-db1-cert"]
        );
        assert_eq!(
            rotated_names("public-tls-cert", &held),
            ["public-tls-key", "public-tls-cert"]
        );
        assert_eq!(
            rotated_names("public-tls-state", &held),
            ["public-tls-key", "public-tls-cert"]
        );
        assert_eq!(
            rotated_names("database-password", &held),
            ["database-password"]
        );
        assert!(is_certificate("public-tls-key") && !is_certificate("acme-account"));
    }

    #[test]
    fn a_rotation_names_what_it_replaces_and_who_receives_it() {
        let dir = tempfile::tempdir().unwrap();
        let doc = dir.path().join("platform.yaml");
        let store = SecretStore::beside(&doc, "p");
        for n in [
            "database-password",
            "tls-db1-key",
            "tls-db1-cert",
            crate::backup::CIPHER_PASS,
        ] {
            store.put(n, "value").unwrap();
        }
        let receivers: Receivers = [
            (
                "tls-db1-cert".to_owned(),
                BTreeSet::from(["db1".to_owned()]),
            ),
            (
                "tls-db1-key".to_owned(),
                BTreeSet::from(["db1".to_owned(), "app1".to_owned()]),
            ),
        ]
        .into();
        let r = Rotation::plan(&store, &doc, "tls-db1-cert", &receivers).unwrap();
        assert!(r.certificate);
        assert_eq!(r.names, ["tls-db1-key", "tls-db1-cert"]);
        assert_eq!(r.hosts.iter().collect::<Vec<_>>(), ["app1", "db1"]);
        assert_eq!(
            r.previous_files(&store),
            ["tls-db1-key.previous", "tls-db1-cert.previous"]
        );
        r.perform(&store).unwrap();
        assert_eq!(
            store.names().unwrap(),
            ["backup-cipher-pass", "database-password"]
        );

        let e = Rotation::plan(&store, &doc, "missing", &receivers)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("secret `missing` is not in the store")
                && e.contains("it holds backup-cipher-pass, database-password"),
            "{e}"
        );
        let e = Rotation::plan(&store, &doc, crate::backup::CIPHER_PASS, &receivers)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cannot be rotated")
                && e.contains("every backup and archived WAL unreadable"),
            "{e}"
        );
    }
}
