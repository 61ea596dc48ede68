//! The platform's Secrets on a cluster. The rendered tree only names them; before the rendered
//! objects are applied, terroir creates the ones it can generate (passwords, the DKIM key) and
//! names the ones the client must give (relay and backup credentials) with the command that
//! makes them.
//!
//! An existing value is never overwritten (creation is a `POST`, which the API server refuses
//! when the name exists; keys are only ever added, under the Secret's resourceVersion). Generated
//! Secrets are not members of the ApplySet, so no prune and no Platform deletion removes them:
//! losing them would lock the application out of its data. They carry labels saying terroir
//! generated them and for which platform.
//!
//! Workloads carry, in their pod template, a digest of the resourceVersions of the Secrets they
//! read: a rotated Secret changes it, and the next apply rolls the consumers out.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde::Serialize;
use serde_json::{Value, json};

use super::{ClusterError, Manifest};
use crate::pipeline::resolve::ResolvedPlatform;

/// `"true"` on every Secret terroir generated.
pub const LABEL_GENERATED: &str = "terroir.eu/generated";
/// The platform a generated Secret belongs to.
pub const LABEL_PLATFORM: &str = "terroir.eu/platform";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// When terroir last replaced the values (RFC 3339), set by `terroir secrets rotate`.
pub const ANNOTATION_ROTATED: &str = "terroir.eu/rotated-at";
/// On pod templates: digest of the resourceVersions of the Secrets the pods read.
pub const ANNOTATION_VERSIONS: &str = "terroir.eu/secrets-version";
/// A rotation keeps the value it replaced under `<key>.previous`.
pub const PREVIOUS: &str = ".previous";

/// Who makes a Secret's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// terroir, with random values (or a key pair) the first time it is needed.
    Generated,
    /// The client: credentials of services outside the platform, never invented.
    Provided,
}

/// What a value is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Password,
    /// An RSA private key (PKCS#1 PEM, as opendkim-genkey writes it).
    DkimPrivate,
    /// The DNS TXT record publishing the public half of `<selector>.private`.
    DkimRecord {
        selector: String,
        domain: String,
    },
    /// The platform CA's `tls.key` / `tls.crt` (ECDSA P-256, src/pki.rs).
    CaKey,
    CaCert,
    /// A server's `tls.key` / `tls.crt` for these names, and the CA's certificate as `ca.crt`.
    ServerKey {
        names: Vec<String>,
    },
    ServerCert {
        names: Vec<String>,
    },
    CaBundle,
    /// The value of another Secret's key (a tenant's password, copied into its namespace).
    Copy {
        namespace: String,
        name: String,
        key: String,
    },
    /// A value that is no secret (a tenant's connection settings, beside its password).
    Fixed(String),
}

impl Kind {
    fn tls(&self) -> bool {
        matches!(
            self,
            Kind::CaKey
                | Kind::CaCert
                | Kind::ServerKey { .. }
                | Kind::ServerCert { .. }
                | Kind::CaBundle
        )
    }
}

/// On a server's TLS Secret: the names its certificate was made for, and when it ends (Unix
/// time), so that a changed name or a certificate within 30 days of its end is re-issued.
pub const ANNOTATION_TLS_NAMES: &str = "terroir.eu/tls-names";
pub const ANNOTATION_TLS_NOT_AFTER: &str = "terroir.eu/tls-not-after";

/// A Secret the rendered objects need.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Needed {
    pub namespace: String,
    pub name: String,
    pub origin: Origin,
    /// What it holds, for messages.
    pub purpose: String,
    pub keys: Vec<String>,
    #[serde(skip)]
    kinds: BTreeMap<String, Kind>,
}

impl Needed {
    /// A TLS Secret (`kubernetes.io/tls`): the CA's or a server's.
    pub fn is_tls(&self) -> bool {
        self.kinds.values().any(Kind::tls)
    }

    fn is_ca(&self) -> bool {
        self.kinds.values().any(|k| matches!(k, Kind::CaKey))
    }

    /// The names a server certificate is for.
    /// Keys derived from elsewhere (copies, fixed values, the CA's certificate): kept equal to
    /// their source on every apply.
    fn derived(&self) -> bool {
        self.server_names().is_none()
            && self
                .kinds
                .values()
                .any(|k| matches!(k, Kind::Copy { .. } | Kind::Fixed(_)))
    }

    fn server_names(&self) -> Option<&[String]> {
        self.kinds.values().find_map(|k| match k {
            Kind::ServerCert { names } => Some(names.as_slice()),
            _ => None,
        })
    }

    pub fn label(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The command that makes a Secret the client gives.
    pub fn command(&self, keys: &[String]) -> String {
        let parts: Vec<String> = keys
            .iter()
            .map(|k| {
                if k == "sasl_passwd" {
                    format!("--from-file={k}=./{k}")
                } else {
                    format!("--from-literal={k}='...'")
                }
            })
            .collect();
        format!(
            "kubectl -n {} create secret generic {} {}",
            self.namespace,
            self.name,
            parts.join(" ")
        )
    }

    /// The command that replaces an existing Secret the client gives with one holding every key
    /// it needs (`create` alone refuses a name that exists).
    pub fn replace_command(&self) -> String {
        format!(
            "{} --dry-run=client -o yaml | kubectl apply -f -",
            self.command(&self.keys)
        )
    }
}

/// Keys read through `secretKeyRef` and `secret` volume items, by (namespace, Secret name); a
/// Secret read whole (`secretRef`, a volume without items) is there with no key. Optional
/// references are left out.
pub fn referenced_keys(manifests: &[Manifest]) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for m in manifests {
        if let Some(ns) = &m.namespace {
            for (name, keys) in references(&m.object.data) {
                out.entry((ns.clone(), name))
                    .or_insert_with(BTreeSet::new)
                    .extend(keys);
            }
        }
    }
    out
}

/// The Secrets (and keys) one object reads.
fn references(v: &Value) -> BTreeMap<String, BTreeSet<String>> {
    fn walk(v: &Value, out: &mut BTreeMap<String, BTreeSet<String>>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    let optional = child
                        .get("optional")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    let found = match k.as_str() {
                        "secretKeyRef" => child.get("name").and_then(Value::as_str).map(|n| {
                            (
                                n,
                                child
                                    .get("key")
                                    .and_then(Value::as_str)
                                    .into_iter()
                                    .collect::<Vec<_>>(),
                            )
                        }),
                        "secretRef" => child
                            .get("name")
                            .and_then(Value::as_str)
                            .map(|n| (n, Vec::new())),
                        "secret" => child.get("secretName").and_then(Value::as_str).map(|n| {
                            let items = child
                                .get("items")
                                .and_then(Value::as_array)
                                .map(|i| {
                                    i.iter()
                                        .filter_map(|i| i.get("key").and_then(Value::as_str))
                                        .collect()
                                })
                                .unwrap_or_default();
                            (n, items)
                        }),
                        _ => None,
                    };
                    if let Some((name, keys)) = found.filter(|_| !optional) {
                        out.entry(name.to_owned())
                            .or_default()
                            .extend(keys.into_iter().map(str::to_owned));
                    }
                    walk(child, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    walk(v, &mut out);
    out
}

/// Every Secret the rendered objects read, with who makes it: the platform's passwords and DKIM
/// key are generated, the relay and backup credentials (and anything else) are given.
/// Each Patroni member's name under the headless Service: the members reach each other by it
/// (replication and pg_rewind with `verify-full`, the REST API), so the certificate names it.
/// None with one replica, whose certificate stays as it was.
fn patroni_member_names(resolved: &ResolvedPlatform, namespace: &str) -> Vec<String> {
    let db = &resolved.components.database;
    if !db.highly_available {
        return Vec::new();
    }
    (0..db.replicas)
        .map(|i| {
            format!(
                "{svc}-{i}.{svc}-headless.{namespace}.svc",
                svc = db.service_name
            )
        })
        .collect()
}

pub fn needed(resolved: &ResolvedPlatform, manifests: &[Manifest]) -> Vec<Needed> {
    let names = &resolved.secrets;
    let mta = &resolved.components.mta;
    let mut out = Vec::new();
    for ((namespace, name), keys) in referenced_keys(manifests) {
        let mut kinds: BTreeMap<String, Kind> = BTreeMap::new();
        let (origin, purpose, extra): (Origin, &str, Vec<&str>) = if name == names.database {
            (
                Origin::Generated,
                if resolved.components.database.highly_available {
                    "PostgreSQL passwords: the superuser (`postgres-password`), the application's role (`password`), and Patroni's replication and pg_rewind roles (`replication-password`, `rewind-password`)"
                } else {
                    "PostgreSQL passwords: the superuser (`postgres-password`) and the application's role (`password`)"
                },
                vec![],
            )
        } else if name == names.grafana {
            (Origin::Generated, "Grafana's admin password", vec![])
        } else if name == names.dkim {
            let private = format!("{}.private", mta.dkim_selector);
            kinds.insert(private.clone(), Kind::DkimPrivate);
            kinds.insert(
                format!("{}.txt", mta.dkim_selector),
                Kind::DkimRecord {
                    selector: mta.dkim_selector.clone(),
                    domain: mta.domain.clone(),
                },
            );
            (
                Origin::Generated,
                "the DKIM signing key, and the DNS TXT record to publish for it",
                vec![],
            )
        } else if name == names.backup_cipher {
            (
                Origin::Generated,
                "pgBackRest's repository encryption key (`cipher-pass`, aes-256-cbc): never rotated, and needed to read any backup",
                vec![],
            )
        } else if name == names.backup_tls {
            // a client certificate: its common name is what the database pod's pgBackRest server admits
            let dns = vec![format!("{}-backup", resolved.platform.name)];
            kinds.insert("tls.key".into(), Kind::ServerKey { names: dns.clone() });
            kinds.insert("tls.crt".into(), Kind::ServerCert { names: dns });
            kinds.insert("ca.crt".into(), Kind::CaBundle);
            (
                Origin::Generated,
                "the backup jobs' client certificate from the platform's CA (admitted by the database pod's pgBackRest server), and the CA's certificate (`ca.crt`)",
                vec![],
            )
        } else if [
            &names.postgres_tls,
            &names.mta_tls,
            &names.monitoring_tls,
            &names.node_exporter_tls,
        ]
        .contains(&&name)
        {
            let platform = &resolved.platform.name;
            let services: Vec<String> = if name == names.postgres_tls {
                vec![resolved.components.database.service_name.clone()]
            } else if name == names.mta_tls {
                vec![mta.service_name.clone()]
            } else if name == names.monitoring_tls {
                let mut s = vec![
                    format!("{platform}-alertmanager"),
                    format!("{platform}-prometheus"),
                ];
                if resolved.components.monitoring.grafana {
                    s.push(format!("{platform}-grafana"));
                }
                if resolved.components.database.managed {
                    s.push(format!("{platform}-postgres-exporter"));
                }
                if crate::backup::context(resolved).is_some() {
                    s.push(format!("{platform}-backup-exporter"));
                }
                s
            } else {
                vec![format!("{platform}-node-exporter")]
            };
            let mut dns: Vec<String> = services
                .iter()
                .flat_map(|svc| {
                    [
                        svc.clone(),
                        format!("{svc}.{namespace}.svc"),
                        format!("{svc}.{namespace}.svc.cluster.local"),
                    ]
                })
                .collect();
            if name == names.mta_tls && !mta.hostname.is_empty() && !dns.contains(&mta.hostname) {
                dns.push(mta.hostname.clone());
            }
            if name == names.postgres_tls {
                dns.extend(patroni_member_names(resolved, &namespace));
            }
            kinds.insert("tls.key".into(), Kind::ServerKey { names: dns.clone() });
            kinds.insert("tls.crt".into(), Kind::ServerCert { names: dns });
            kinds.insert("ca.crt".into(), Kind::CaBundle);
            (
                Origin::Generated,
                "the server's TLS key and certificate from the platform's CA, and the CA's certificate (`ca.crt`)",
                vec![],
            )
        } else if name == names.tenant_credentials {
            (
                Origin::Generated,
                "the tenants' role passwords, one key per tenant (copied into each tenant's namespace)",
                vec![],
            )
        } else if name == names.backup {
            (
                Origin::Provided,
                "the S3 access key of the backup endpoint",
                vec!["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
            )
        } else if name == names.smtp_relay {
            (
                Origin::Provided,
                "the SMTP relay credentials: `[host]:port user:password` lines",
                vec!["sasl_passwd"],
            )
        } else {
            (Origin::Provided, "read by the rendered objects", vec![])
        };
        let mut all: BTreeSet<String> = keys;
        all.extend(extra.into_iter().map(str::to_owned));
        all.extend(kinds.keys().cloned());
        if origin == Origin::Generated {
            for k in &all {
                kinds.entry(k.clone()).or_insert(Kind::Password);
            }
        }
        out.push(Needed {
            namespace,
            name,
            origin,
            purpose: purpose.to_owned(),
            keys: all.into_iter().collect(),
            kinds,
        });
    }
    // Each tenant's copy of its password, with its connection settings, in its own namespace:
    // after the Secrets they copy.
    let db = &resolved.components.database;
    for t in resolved
        .tenants
        .iter()
        .filter(|t| !t.namespace.is_empty() && db.managed)
    {
        let mut kinds = BTreeMap::from([
            (
                "password".to_owned(),
                Kind::Copy {
                    namespace: resolved.platform.namespace.clone(),
                    name: names.tenant_credentials.clone(),
                    key: t.name.replace('_', "-"),
                },
            ),
            (
                "host".to_owned(),
                Kind::Fixed(format!(
                    "{}.{}.svc",
                    db.service_name, resolved.platform.namespace
                )),
            ),
            ("port".to_owned(), Kind::Fixed(db.port.to_string())),
            ("database".to_owned(), Kind::Fixed(t.database.clone())),
            ("username".to_owned(), Kind::Fixed(t.user.clone())),
            ("sslmode".to_owned(), Kind::Fixed("verify-full".into())),
        ]);
        if out.iter().any(Needed::is_tls) {
            kinds.insert("ca.crt".into(), Kind::CaBundle);
        }
        out.push(Needed {
            namespace: t.namespace.clone(),
            name: t.secret.clone(),
            origin: Origin::Generated,
            purpose: format!("tenant {}: its role's password, its connection settings and the platform CA's certificate", t.name),
            keys: kinds.keys().cloned().collect(),
            kinds,
        });
    }
    // The CA signs the servers' certificates: it comes first, in the platform's namespace.
    if out.iter().any(Needed::is_tls) {
        let kinds = BTreeMap::from([
            ("tls.key".to_owned(), Kind::CaKey),
            ("tls.crt".to_owned(), Kind::CaCert),
        ]);
        out.insert(0, Needed {
            namespace: resolved.platform.namespace.clone(),
            name: names.ca.clone(),
            origin: Origin::Generated,
            purpose: "the platform's certificate authority (read by terroir to sign the servers' certificates; never mounted)".into(),
            keys: kinds.keys().cloned().collect(),
            kinds,
        });
    }
    out
}

/// What was found, or done, for one Secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SecretAction {
    /// Generated now (or, in a plan, would be).
    Create,
    /// Generated keys added to an existing Secret; its other values untouched.
    AddKeys,
    /// A server certificate made again: its names changed, it ends within 30 days, or the CA
    /// changed. The only values terroir ever replaces on its own.
    Reissue,
    /// Exists with every key.
    Present,
    /// Given by the client and absent, or lacking keys.
    Missing,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretState {
    pub namespace: String,
    pub name: String,
    pub origin: Origin,
    pub action: SecretAction,
    pub keys: Vec<String>,
    /// Keys absent from the live Secret (added for generated ones, to give for the others).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_keys: Vec<String>,
    /// For a missing Secret the client gives: the command that makes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl SecretState {
    pub fn label(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// The outcome of [`ensure`]: every needed Secret's state, the resourceVersion of each that
/// exists, and the namespaces created to hold new Secrets.
#[derive(Debug, Clone, Default)]
pub struct Ensured {
    pub secrets: Vec<SecretState>,
    pub versions: BTreeMap<(String, String), String>,
    pub created_namespaces: BTreeSet<String>,
}

impl Ensured {
    pub fn missing(&self) -> Vec<&SecretState> {
        self.secrets
            .iter()
            .filter(|s| s.action == SecretAction::Missing)
            .collect()
    }

    /// One line per missing Secret: what it is, and the command that makes it.
    pub fn missing_lines(&self) -> Vec<String> {
        self.missing()
            .iter()
            .map(|s| {
                let what = if s.missing_keys.len() == s.keys.len() || s.missing_keys.is_empty() {
                    format!("Secret {} does not exist", s.label())
                } else {
                    format!(
                        "Secret {} lacks key(s) {}",
                        s.label(),
                        s.missing_keys.join(", ")
                    )
                };
                let verb = if s.missing_keys.len() == s.keys.len() || s.missing_keys.is_empty() {
                    "create it"
                } else {
                    "give it every key"
                };
                format!(
                    "{what}; {} (given by you, never generated); {verb} with: {}",
                    s.note.as_deref().unwrap_or_default(),
                    s.command.as_deref().unwrap_or_default()
                )
            })
            .collect()
    }
}

/// The labels a generated Secret carries.
pub fn generated_labels(platform: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_MANAGED_BY.to_owned(), "terroir".to_owned()),
        (LABEL_GENERATED.to_owned(), "true".to_owned()),
        (LABEL_PLATFORM.to_owned(), platform.to_owned()),
    ])
}

fn api_error(label: &str, e: &kube::Error) -> ClusterError {
    match e {
        kube::Error::Api(s) if s.code == 403 => ClusterError::Api {
            object: format!("Secret {label}"),
            message: format!(
                "{}; terroir reads the Secrets the platform needs (never printing a value) and creates the ones it generates: grant get and create on secrets",
                super::describe(e)
            ),
        },
        _ => ClusterError::api(format!("Secret {label}"), e),
    }
}

/// Make sure every needed Secret exists: generated ones are created (keys missing from an
/// existing one are added), given ones are reported. With `dry_run`, nothing is written.
/// `namespaces` are the rendered Namespace objects: one is applied first (through `create_namespace`)
/// when a Secret must be created in it and it does not exist yet.
pub async fn ensure<F, Fut>(
    client: &Client,
    platform: &str,
    needed: &[Needed],
    dry_run: bool,
    create_namespace: F,
) -> Result<Ensured, ClusterError>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<bool, ClusterError>>,
{
    let mut out = Ensured::default();
    // Read (or made) first: `needed` puts the CA before the certificates it signs.
    let mut ca: Option<CaPair> = None;
    for n in needed {
        let api: Api<Secret> = Api::namespaced(client.clone(), &n.namespace);
        let live = match api.get_opt(&n.name).await {
            Ok(s) => s,
            // The namespace does not exist yet: neither does the Secret.
            Err(kube::Error::Api(s)) if s.code == 404 => None,
            Err(e) => return Err(api_error(&n.label(), &e)),
        };
        // The values a derived Secret copies, read now from their sources.
        let mut copies = Values::new();
        for kind in n.kinds.values() {
            if let Kind::Copy {
                namespace,
                name,
                key,
            } = kind
            {
                let source: Api<Secret> = Api::namespaced(client.clone(), namespace);
                match source.get_opt(name).await {
                    Ok(Some(s)) => {
                        if let Some(v) = text(&s, key) {
                            copies.insert(key.clone(), v);
                        }
                    }
                    Ok(None) => {}
                    Err(e) => return Err(api_error(&format!("{namespace}/{name}"), &e)),
                }
            }
        }
        let mut state = SecretState {
            namespace: n.namespace.clone(),
            name: n.name.clone(),
            origin: n.origin,
            action: SecretAction::Present,
            keys: n.keys.clone(),
            missing_keys: Vec::new(),
            command: None,
            note: None,
        };
        match (live, n.origin) {
            (Some(live), origin) => {
                let have: BTreeSet<&String> = live
                    .data
                    .iter()
                    .flat_map(|d| d.keys())
                    .chain(live.string_data.iter().flat_map(|d| d.keys()))
                    .collect();
                state.missing_keys = n
                    .keys
                    .iter()
                    .filter(|k| !have.contains(k))
                    .cloned()
                    .collect();
                let rv = live.metadata.resource_version.clone().unwrap_or_default();
                let key = (n.namespace.clone(), n.name.clone());
                if state.missing_keys.is_empty() {
                    if n.is_ca() {
                        ca = ca_pair(&live);
                    }
                    let expected = if n.derived()
                        && (!dry_run
                            || copies.len()
                                == n.kinds
                                    .values()
                                    .filter(|k| matches!(k, Kind::Copy { .. }))
                                    .count())
                    {
                        Some(generate_from(n, &n.keys, platform, ca.as_ref(), &copies)?.0)
                    } else {
                        None
                    };
                    let outdated = expected.as_ref().is_some_and(|want| {
                        want.iter().any(|(k, v)| {
                            live.data
                                .as_ref()
                                .and_then(|d| d.get(k))
                                .map(|b| base64::engine::general_purpose::STANDARD.encode(&b.0))
                                .as_deref()
                                != Some(v.as_str())
                        })
                    });
                    let stale = outdated
                        || n.server_names()
                            .is_some_and(|names| !fresh(&live, names, ca.as_ref()));
                    if stale {
                        state.action = SecretAction::Reissue;
                        state.note = Some(if outdated {
                            "a copy no longer equal to its source".into()
                        } else {
                            "made for other names, within 30 days of its end, or by another CA"
                                .into()
                        });
                    }
                    if stale && !dry_run {
                        let (values, annotations) =
                            generate_from(n, &n.keys, platform, ca.as_ref(), &copies)?;
                        let patch = json!({"metadata": {"resourceVersion": rv, "annotations": annotations}, "data": values});
                        let done = api
                            .patch(&n.name, &PatchParams::default(), &Patch::Merge(&patch))
                            .await
                            .map_err(|e| api_error(&n.label(), &e))?;
                        out.versions
                            .insert(key, done.metadata.resource_version.unwrap_or_default());
                    } else {
                        out.versions.insert(key, rv);
                    }
                } else if origin == Origin::Provided {
                    state.action = SecretAction::Missing;
                    state.note = Some(n.purpose.clone());
                    state.command = Some(n.replace_command());
                    out.versions.insert(key, rv);
                } else {
                    state.action = SecretAction::AddKeys;
                    if !dry_run {
                        let (values, annotations) =
                            generate_from(n, &state.missing_keys, platform, ca.as_ref(), &copies)?;
                        // Under the resourceVersion read: a concurrent writer makes this fail
                        // rather than lose its value.
                        let patch = json!({"metadata": {"resourceVersion": rv, "annotations": annotations}, "data": values});
                        let done = api
                            .patch(&n.name, &PatchParams::default(), &Patch::Merge(&patch))
                            .await
                            .map_err(|e| api_error(&n.label(), &e))?;
                        if n.is_ca() {
                            ca = ca_pair(&done);
                        }
                        out.versions
                            .insert(key, done.metadata.resource_version.unwrap_or_default());
                    }
                }
            }
            (None, Origin::Provided) => {
                state.action = SecretAction::Missing;
                state.missing_keys = n.keys.clone();
                state.note = Some(n.purpose.clone());
                state.command = Some(n.command(&n.keys));
            }
            (None, Origin::Generated) => {
                state.action = SecretAction::Create;
                state.missing_keys = n.keys.clone();
                if !dry_run {
                    let made = create(
                        &api,
                        platform,
                        n,
                        ca.as_ref(),
                        &copies,
                        &create_namespace,
                        &mut out.created_namespaces,
                    )
                    .await?;
                    if n.is_ca() {
                        ca = ca_pair(&made);
                    }
                    out.versions.insert(
                        (n.namespace.clone(), n.name.clone()),
                        made.metadata.resource_version.unwrap_or_default(),
                    );
                }
            }
        }
        out.secrets.push(state);
    }
    Ok(out)
}

fn text(s: &Secret, key: &str) -> Option<String> {
    s.data
        .as_ref()?
        .get(key)
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
}

fn ca_pair(s: &Secret) -> Option<CaPair> {
    Some(CaPair {
        key_pem: text(s, "tls.key")?,
        cert_pem: text(s, "tls.crt")?,
    })
}

/// Whether a server's live certificate still serves: made for these names, by this CA, and not
/// within 30 days of its end.
fn fresh(live: &Secret, names: &[String], ca: Option<&CaPair>) -> bool {
    let annotation = |k: &str| {
        live.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(k))
            .cloned()
            .unwrap_or_default()
    };
    let not_after: i64 = annotation(ANNOTATION_TLS_NOT_AFTER).parse().unwrap_or(0);
    let same_ca = ca.is_none_or(|ca| text(live, "ca.crt").as_deref() == Some(ca.cert_pem.as_str()));
    same_ca && crate::pki::still_good(&annotation(ANNOTATION_TLS_NAMES), not_after, names)
}

async fn create<F, Fut>(
    api: &Api<Secret>,
    platform: &str,
    n: &Needed,
    ca: Option<&CaPair>,
    copies: &Values,
    create_namespace: &F,
    created: &mut BTreeSet<String>,
) -> Result<Secret, ClusterError>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<bool, ClusterError>>,
{
    let (values, mut annotations) = generate_from(n, &n.keys, platform, ca, copies)?;
    annotations.insert("terroir.eu/purpose".into(), n.purpose.clone());
    let mut secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": n.name, "namespace": n.namespace, "labels": generated_labels(platform), "annotations": annotations},
        "type": if n.is_tls() { "kubernetes.io/tls" } else { "Opaque" },
        "data": values,
    }))
    .map_err(|e| ClusterError::Generate { secret: n.label(), source: Box::new(e.into()) })?;
    let pp = PostParams {
        field_manager: Some("terroir".into()),
        ..PostParams::default()
    };
    for attempt in 0..2 {
        match api.create(&pp, &secret).await {
            Ok(s) => return Ok(s),
            // Created meanwhile by someone else: theirs is kept.
            Err(kube::Error::Api(s)) if s.code == 409 => {
                return api
                    .get(&n.name)
                    .await
                    .map_err(|e| api_error(&n.label(), &e));
            }
            Err(kube::Error::Api(s)) if s.code == 404 && attempt == 0 => {
                if !create_namespace(n.namespace.clone()).await? {
                    return Err(ClusterError::Api {
                        object: format!("Secret {}", n.label()),
                        message: format!(
                            "namespace {} does not exist; create it first (kubectl create namespace {})",
                            n.namespace, n.namespace
                        ),
                    });
                }
                created.insert(n.namespace.clone());
                secret.metadata.resource_version = None;
            }
            Err(e) => return Err(api_error(&n.label(), &e)),
        }
    }
    Err(ClusterError::Api {
        object: format!("Secret {}", n.label()),
        message: "its namespace was created but the Secret still cannot be".into(),
    })
}

/// A Secret's `data` (base64 values) or its annotations, by key.
type Values = BTreeMap<String, String>;

/// The platform CA: its key and certificate, in PEM.
#[derive(Debug, Clone)]
pub struct CaPair {
    pub key_pem: String,
    pub cert_pem: String,
}

/// New values for `keys` of a generated Secret, base64 as a Secret's `data` holds them, and the
/// annotations that go with them (a certificate's names and end).
fn generate(
    n: &Needed,
    keys: &[String],
    platform: &str,
    ca: Option<&CaPair>,
) -> Result<(Values, Values), ClusterError> {
    generate_from(n, keys, platform, ca, &BTreeMap::new())
}

/// [`generate`], with the values copied from other Secrets (`copies`, by the source's key).
fn generate_from(
    n: &Needed,
    keys: &[String],
    platform: &str,
    ca: Option<&CaPair>,
    copies: &Values,
) -> Result<(Values, Values), ClusterError> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let fail = |source: super::GenerateError| ClusterError::Generate {
        secret: n.label(),
        source: Box::new(source),
    };
    let mut out = BTreeMap::new();
    let mut annotations = BTreeMap::new();
    // The private key and its DNS record are made together, whichever of them is asked for.
    let dkim = if keys.iter().any(|k| {
        matches!(
            n.kinds.get(k),
            Some(Kind::DkimPrivate | Kind::DkimRecord { .. })
        )
    }) {
        Some(dkim_key().map_err(fail)?)
    } else {
        None
    };
    // So are a key and its certificate.
    let new_ca = if n.is_ca() {
        Some(crate::pki::new_ca(platform).map_err(|e| fail(e.into()))?)
    } else {
        None
    };
    let server = match n.server_names() {
        Some(names) => {
            let ca = ca.ok_or_else(|| fail(super::GenerateError::NoCa))?;
            let issued = crate::pki::issue_server(
                platform,
                &ca.key_pem,
                names,
                &format!("Secret {}", n.label()),
            )
            .map_err(|e| fail(e.into()))?;
            annotations.insert(ANNOTATION_TLS_NAMES.to_owned(), names.join(","));
            annotations.insert(
                ANNOTATION_TLS_NOT_AFTER.to_owned(),
                issued.not_after.to_string(),
            );
            Some(issued)
        }
        None => None,
    };
    let value_of = |kind: Option<&Kind>| -> Result<String, ClusterError> {
        Ok(match (kind, &dkim, &new_ca, &server) {
            (Some(Kind::DkimPrivate), Some((private, _)), ..) => private.clone(),
            (Some(Kind::DkimRecord { selector, domain }), Some((_, public)), ..) => {
                dkim_record(selector, domain, public)
            }
            (Some(Kind::CaKey), _, Some(c), _) => c.key_pem.clone(),
            (Some(Kind::CaCert), _, Some(c), _) => c.cert_pem.clone(),
            (Some(Kind::ServerKey { .. }), _, _, Some(i)) => i.key_pem.clone(),
            (Some(Kind::ServerCert { .. }), _, _, Some(i)) => i.cert_pem.clone(),
            (Some(Kind::CaBundle), ..) => ca
                .map(|c| c.cert_pem.clone())
                .ok_or_else(|| fail(super::GenerateError::NoCa))?,
            (Some(Kind::Fixed(v)), ..) => v.clone(),
            (
                Some(Kind::Copy {
                    namespace,
                    name,
                    key,
                }),
                ..,
            ) => copies.get(key.as_str()).cloned().ok_or_else(|| {
                fail(super::GenerateError::NoCopy {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    key: key.clone(),
                })
            })?,
            _ => crate::secrets::random_value().map_err(|e| fail(e.into()))?,
        })
    };
    let mut wanted: BTreeSet<String> = keys.iter().cloned().collect();
    // A key pair (DKIM, CA, server) is replaced whole: its parts always match.
    if n.derived() {
        wanted.extend(n.kinds.keys().cloned());
    }
    if dkim.is_some() || new_ca.is_some() || server.is_some() {
        wanted.extend(
            n.kinds
                .iter()
                .filter(|(_, k)| !matches!(k, Kind::Password))
                .map(|(k, _)| k.clone()),
        );
    }
    for k in &wanted {
        let v = value_of(n.kinds.get(k))?;
        out.insert(k.clone(), b64(&v));
    }
    Ok((out, annotations))
}

/// A 2048-bit RSA key: the PKCS#1 PEM of the private key, and the base64 DER of the public key
/// (SubjectPublicKeyInfo), which is what a DKIM record's `p=` carries. RSA rather than Ed25519:
/// receivers are not required to verify Ed25519 signatures (RFC 8463), and many do not.
fn dkim_key() -> Result<(String, String), super::GenerateError> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::EncodePublicKey;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)?;
    let private = key.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)?.to_string();
    let public = key.to_public_key().to_public_key_der()?;
    Ok((
        private,
        base64::engine::general_purpose::STANDARD.encode(public.as_bytes()),
    ))
}

/// `<selector>._domainkey.<domain>. IN TXT ("v=DKIM1; k=rsa; " "p=...")`, strings of at most
/// 255 characters as DNS requires.
fn dkim_record(selector: &str, domain: &str, public: &str) -> String {
    let text = format!("v=DKIM1; h=sha256; k=rsa; p={public}");
    let chunks: Vec<String> = text
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    format!(
        "{selector}._domainkey.{domain}. IN TXT ( {} )\n",
        chunks.join(" ")
    )
}

/// New values for every generated key of a live Secret, keeping each replaced value under
/// `<key>.previous`. The patch is made under the live resourceVersion.
pub fn rotation(n: &Needed, live: &Secret, platform: &str) -> Result<Value, ClusterError> {
    if n.origin != Origin::Generated {
        return Err(ClusterError::NotRotated {
            secret: n.label(),
            reason: format!(
                "it is given by you, not generated ({}); replace it with: {}",
                n.purpose,
                n.replace_command()
            ),
        });
    }
    if n.derived() {
        let source = n.kinds.values().find_map(|k| match k {
            Kind::Copy { name, .. } => Some(name.clone()),
            _ => None,
        });
        let source = source.unwrap_or_default();
        return Err(ClusterError::NotRotated {
            secret: n.label(),
            reason: format!(
                "it copies its password from Secret {source}: rotate that one (`terroir secrets rotate FILE {source}`), and the apply copies the new value here"
            ),
        });
    }
    if n.server_names().is_some() {
        return Err(ClusterError::NotRotated {
            secret: n.label(),
            reason: format!(
                "it is a certificate: `terroir apply` issues it again when its names change, 30 days before its end, or when the platform CA is rotated; to issue it now, delete it (kubectl -n {} delete secret {}) and apply",
                n.namespace, n.name
            ),
        });
    }
    let (fresh, _) = generate(n, &n.keys, platform, None)?;
    let mut data = serde_json::Map::new();
    let old = live.data.clone().unwrap_or_default();
    for (k, v) in &fresh {
        if let Some(ByteString(prev)) = old.get(k) {
            data.insert(
                format!("{k}{PREVIOUS}"),
                base64::engine::general_purpose::STANDARD
                    .encode(prev)
                    .into(),
            );
        }
        data.insert(k.clone(), v.clone().into());
    }
    let now = crate::text::now_rfc3339();
    Ok(json!({
        "metadata": {"resourceVersion": live.metadata.resource_version, "annotations": {ANNOTATION_ROTATED: now}},
        "data": data,
    }))
}

/// The pod template of a workload object (Deployment, StatefulSet, DaemonSet, Job, CronJob).
fn pod_template<'a>(kind: &str, object: &'a mut Value) -> Option<&'a mut Value> {
    match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "Job" => object.pointer_mut("/spec/template"),
        "CronJob" => object.pointer_mut("/spec/jobTemplate/spec/template"),
        _ => None,
    }
}

/// Write, on the pod template of every workload that reads Secrets, the digest of their
/// resourceVersions (`""` for one that does not exist): a Secret replaced since the last apply
/// rolls its consumers out.
pub fn annotate_versions(
    manifests: &mut [Manifest],
    versions: &BTreeMap<(String, String), String>,
) {
    for m in manifests.iter_mut() {
        let Some(ns) = m.namespace.clone() else {
            continue;
        };
        let kind = m.gvk.kind.clone();
        let read = references(&m.object.data);
        if read.is_empty() {
            continue;
        }
        let Some(template) = pod_template(&kind, &mut m.object.data) else {
            continue;
        };
        let lines: String = read
            .keys()
            .map(|name| {
                format!(
                    "{ns}/{name}={}\n",
                    versions
                        .get(&(ns.clone(), name.clone()))
                        .map(String::as_str)
                        .unwrap_or_default()
                )
            })
            .collect();
        let digest = crate::text::sha256_hex(lines.as_bytes());
        let Some(template) = template.as_object_mut() else {
            continue;
        };
        let meta = template.entry("metadata").or_insert_with(|| json!({}));
        if let Some(meta) = meta.as_object_mut() {
            let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
            if let Some(a) = annotations.as_object_mut() {
                a.insert(ANNOTATION_VERSIONS.into(), digest[..16].to_owned().into());
            }
        }
    }
}

/// Before an apply (CLI and operator alike): make sure the Secrets exist (`dry_run`: only say
/// which would be created), then mark each workload with the versions of the Secrets it reads.
/// A namespace that must hold a new Secret is applied first when `manage_namespaces`.
pub async fn prepare(
    applier: &super::Applier,
    resolved: &ResolvedPlatform,
    manifests: &mut [Manifest],
    set: &super::ApplySet,
    dry_run: bool,
    manage_namespaces: bool,
    force: bool,
) -> Result<Ensured, ClusterError> {
    let needed = needed(resolved, manifests);
    let namespaces: Vec<Manifest> = manifests
        .iter()
        .filter(|m| m.wave() == 1)
        .cloned()
        .collect();
    let namespaces = &namespaces;
    let ensured = ensure(
        applier.client(),
        &resolved.platform.name,
        &needed,
        dry_run,
        |ns: String| async move {
            match namespaces
                .iter()
                .find(|m| m.name == ns)
                .filter(|_| manage_namespaces)
            {
                Some(m) => applier.apply_namespace(m, set, force).await.map(|()| true),
                None => Ok(false),
            }
        },
    )
    .await?;
    annotate_versions(manifests, &ensured.versions);
    Ok(ensured)
}

/// A live Secret as `terroir secrets list` shows it: never a value.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listed {
    pub namespace: String,
    pub name: String,
    pub origin: Option<Origin>,
    pub exists: bool,
    pub keys: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_keys: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotated: Option<String>,
    /// Generated for this platform but no longer read by what it renders (a removed tenant's).
    pub unused: bool,
}

/// The needed Secrets and the ones terroir generated for `platform`, as they are on the cluster.
pub async fn list(
    client: &Client,
    platform: &str,
    needed: &[Needed],
    namespaces: &BTreeSet<String>,
) -> Result<Vec<Listed>, ClusterError> {
    let describe = |s: &Secret| {
        let keys: Vec<String> = s.data.iter().flat_map(|d| d.keys().cloned()).collect();
        let created = s
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.to_string());
        let rotated = s
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_ROTATED))
            .cloned();
        (keys, created, rotated)
    };
    let mut out = Vec::new();
    for n in needed {
        let api: Api<Secret> = Api::namespaced(client.clone(), &n.namespace);
        let live = match api.get_opt(&n.name).await {
            Ok(s) => s,
            Err(kube::Error::Api(s)) if s.code == 404 => None,
            Err(e) => return Err(api_error(&n.label(), &e)),
        };
        let (keys, created, rotated) = live.as_ref().map(describe).unwrap_or_default();
        let missing_keys = n
            .keys
            .iter()
            .filter(|k| !keys.contains(k))
            .cloned()
            .collect();
        out.push(Listed {
            namespace: n.namespace.clone(),
            name: n.name.clone(),
            origin: Some(n.origin),
            exists: live.is_some(),
            keys,
            missing_keys,
            created,
            rotated,
            unused: false,
        });
    }
    let selector = format!("{LABEL_GENERATED}=true,{LABEL_PLATFORM}={platform}");
    for ns in namespaces {
        let api: Api<Secret> = Api::namespaced(client.clone(), ns);
        let found = match api
            .list(&kube::api::ListParams::default().labels(&selector))
            .await
        {
            Ok(l) => l.items,
            Err(kube::Error::Api(s)) if s.code == 404 => Vec::new(),
            Err(e) => return Err(api_error(&format!("{ns}/*"), &e)),
        };
        for s in found {
            let name = s.metadata.name.clone().unwrap_or_default();
            if out.iter().any(|l| l.namespace == *ns && l.name == name) {
                continue;
            }
            let (keys, created, rotated) = describe(&s);
            out.push(Listed {
                namespace: ns.clone(),
                name,
                origin: Some(Origin::Generated),
                exists: true,
                keys,
                missing_keys: Vec::new(),
                created,
                rotated,
                unused: true,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(doc: Value) -> Manifest {
        super::super::manifest_from_value(doc, "kubernetes/test.yaml")
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn deployment(env_secret: &str) -> Manifest {
        manifest(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app", "namespace": "crm"},
            "spec": {"template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "env": [
                {"name": "P", "valueFrom": {"secretKeyRef": {"name": env_secret, "key": "password"}}},
                {"name": "O", "valueFrom": {"secretKeyRef": {"name": "opt", "key": "x", "optional": true}}}
            ]}], "volumes": [{"name": "v", "secret": {"secretName": "files", "items": [{"key": "k1", "path": "p"}]}}]}}}}),
        )
    }

    #[test]
    fn references_name_keys_and_leave_optional_ones_out() {
        let refs = referenced_keys(&[deployment("db")]);
        let keys: Vec<(String, Vec<String>)> = refs
            .iter()
            .map(|((_, n), k)| (n.clone(), k.iter().cloned().collect()))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("db".into(), vec!["password".into()]),
                ("files".into(), vec!["k1".into()])
            ]
        );
    }

    #[test]
    fn the_versions_digest_changes_with_a_secret_and_only_then() {
        let versions = |rv: &str| {
            BTreeMap::from([
                (("crm".to_owned(), "db".to_owned()), rv.to_owned()),
                (("crm".to_owned(), "files".to_owned()), "3".to_owned()),
            ])
        };
        let annotated = |rv: &str| {
            let mut m = vec![deployment("db")];
            annotate_versions(&mut m, &versions(rv));
            m[0].object
                .data
                .pointer(&format!(
                    "/spec/template/metadata/annotations/{}",
                    ANNOTATION_VERSIONS.replace('/', "~1")
                ))
                .cloned()
                .unwrap_or(Value::Null)
        };
        assert!(annotated("7").is_string());
        assert_eq!(annotated("7"), annotated("7"));
        assert_ne!(annotated("7"), annotated("8"));
        // A ConfigMap has no pod template and is left alone.
        let mut cm = vec![manifest(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "crm"}, "data": {"secretRef": "x"}}),
        )];
        let before = cm[0].object.data.clone();
        annotate_versions(&mut cm, &versions("1"));
        assert_eq!(cm[0].object.data, before);
    }

    #[test]
    fn a_dkim_key_is_a_pem_private_key_with_its_record() {
        let n = Needed {
            namespace: "crm".into(),
            name: "dkim".into(),
            origin: Origin::Generated,
            purpose: String::new(),
            keys: vec!["mail.private".into(), "mail.txt".into()],
            kinds: BTreeMap::from([
                ("mail.private".into(), Kind::DkimPrivate),
                (
                    "mail.txt".into(),
                    Kind::DkimRecord {
                        selector: "mail".into(),
                        domain: "example.eu".into(),
                    },
                ),
            ]),
        };
        let (values, _) = generate(&n, &["mail.private".into()], "crm", None).unwrap_or_default();
        let decode = |k: &str| {
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(&values[k])
                    .unwrap_or_default(),
            )
            .unwrap_or_default()
        };
        let private = decode("mail.private");
        assert!(
            private.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"),
            "{private}"
        );
        let record = decode("mail.txt");
        assert!(
            record.starts_with(
                "mail._domainkey.example.eu. IN TXT ( \"v=DKIM1; h=sha256; k=rsa; p=MII"
            ),
            "{record}"
        );
        assert!(record.split('"').all(|s| s.len() <= 255));
        // The record's public key is the private key's.
        use rsa::pkcs1::DecodeRsaPrivateKey;
        use rsa::pkcs8::EncodePublicKey;
        let key = rsa::RsaPrivateKey::from_pkcs1_pem(&private).unwrap_or_else(|e| panic!("{e}"));
        let der = key
            .to_public_key()
            .to_public_key_der()
            .unwrap_or_else(|e| panic!("{e}"));
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_bytes());
        assert_eq!(
            record
                .split('"')
                .filter(|s| !s.trim().is_empty() && !s.contains("IN TXT") && *s != " )\n")
                .collect::<String>(),
            format!("v=DKIM1; h=sha256; k=rsa; p={b64}")
        );
    }

    #[test]
    fn a_certificate_is_issued_again_for_new_names_a_near_end_or_another_ca() {
        let names = vec!["pg".to_owned(), "pg.crm.svc".to_owned()];
        let ca = CaPair {
            key_pem: String::new(),
            cert_pem: "CA1".into(),
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let secret = |names: &str, days: i64, ca_crt: &str| -> Secret {
            serde_json::from_value(json!({"metadata": {"annotations": {ANNOTATION_TLS_NAMES: names, ANNOTATION_TLS_NOT_AFTER: (now + days * 86400).to_string()}},
                "data": {"ca.crt": base64::engine::general_purpose::STANDARD.encode(ca_crt)}}))
            .unwrap_or_default()
        };
        assert!(fresh(
            &secret("pg,pg.crm.svc", 365, "CA1"),
            &names,
            Some(&ca)
        ));
        assert!(
            !fresh(&secret("pg", 365, "CA1"), &names, Some(&ca)),
            "names changed"
        );
        assert!(
            !fresh(&secret("pg,pg.crm.svc", 29, "CA1"), &names, Some(&ca)),
            "within 30 days of its end"
        );
        assert!(fresh(
            &secret("pg,pg.crm.svc", 31, "CA1"),
            &names,
            Some(&ca)
        ));
        assert!(
            !fresh(&secret("pg,pg.crm.svc", 365, "CA0"), &names, Some(&ca)),
            "another CA"
        );
    }

    #[test]
    fn a_server_certificate_chains_to_the_ca_it_was_issued_from() {
        let ca = crate::pki::new_ca("crm").unwrap_or_else(|e| panic!("{e}"));
        let names = vec!["pg".to_owned(), "pg.crm.svc".to_owned()];
        let n = Needed {
            namespace: "crm".into(),
            name: "pg-tls".into(),
            origin: Origin::Generated,
            purpose: String::new(),
            keys: vec!["ca.crt".into(), "tls.crt".into(), "tls.key".into()],
            kinds: BTreeMap::from([
                (
                    "tls.key".into(),
                    Kind::ServerKey {
                        names: names.clone(),
                    },
                ),
                (
                    "tls.crt".into(),
                    Kind::ServerCert {
                        names: names.clone(),
                    },
                ),
                ("ca.crt".into(), Kind::CaBundle),
            ]),
        };
        let pair = CaPair {
            key_pem: ca.key_pem.clone(),
            cert_pem: ca.cert_pem.clone(),
        };
        let (values, annotations) =
            generate(&n, &n.keys, "crm", Some(&pair)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(annotations[ANNOTATION_TLS_NAMES], "pg,pg.crm.svc");
        let live: Secret = serde_json::from_value(
            json!({"metadata": {"annotations": annotations}, "data": values}),
        )
        .unwrap_or_default();
        assert!(fresh(&live, &names, Some(&pair)));
        assert_eq!(text(&live, "ca.crt").as_deref(), Some(ca.cert_pem.as_str()));
        // Without the CA there is nothing to sign with.
        assert!(generate(&n, &n.keys, "crm", None).is_err());
    }

    #[test]
    fn a_rotation_keeps_the_previous_values() {
        let n = Needed {
            namespace: "crm".into(),
            name: "db".into(),
            origin: Origin::Generated,
            purpose: String::new(),
            keys: vec!["password".into()],
            kinds: BTreeMap::from([("password".into(), Kind::Password)]),
        };
        let live: Secret = serde_json::from_value(json!({"metadata": {"name": "db", "resourceVersion": "5"}, "data": {"password": "b2xk"}})).unwrap_or_default();
        let patch = rotation(&n, &live, "crm").unwrap_or(Value::Null);
        assert_eq!(patch["data"]["password.previous"], "b2xk");
        assert_ne!(patch["data"]["password"], "b2xk");
        assert_eq!(patch["metadata"]["resourceVersion"], "5");
        let given = Needed {
            origin: Origin::Provided,
            ..n
        };
        let e = rotation(&given, &live, "crm")
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("given by you") && e.contains("kubectl -n crm create secret generic db"),
            "{e}"
        );
    }
}
