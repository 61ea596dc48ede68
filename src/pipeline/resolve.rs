//! Resolve: the checked document plus the blueprint's defaults become one fully explicit model,
//! the context every template renders from. Pure: no I/O, no clock, no randomness.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::document::validate::{
    ETCD_CLIENT_PORT, ETCD_PEER_PORT, PATRONI_PORT, required_roles, role_ports,
};
use crate::document::*;
use crate::pipeline::blueprint::Blueprint;

/// The fully explicit platform. Serialized, it is the template context and `platform.resolved.json`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedPlatform {
    pub platform: PlatformInfo,
    pub blueprint: BlueprintInfo,
    /// `kubernetes`, `baremetal` or `secnumcloud`.
    pub target_kind: &'static str,
    pub target: Target,
    pub components: ResolvedComponents,
    pub endpoints: ResolvedEndpoints,
    pub sovereignty: Sovereignty,
    /// Hosts (bare metal, or cloud VMs before their addresses are known), sorted by name.
    pub hosts: Vec<ResolvedHost>,
    /// Host names per role.
    pub roles: BTreeMap<&'static str, Vec<String>>,
    /// Names of the secrets the platform expects; values are never part of a render.
    pub secrets: SecretNames,
    /// Images for every container, already prefixed with the declared registry.
    pub images: BTreeMap<String, String>,
    /// Prometheus scrape jobs with their `host:port` targets.
    pub scrape_jobs: Vec<ScrapeJob>,
    /// Cloud VMs to provision (SecNumCloud, `deploy: vms`), sorted by name.
    pub cloud_vms: Vec<CloudVmSpec>,
    /// Tenants, each with its own database and role, sorted by name.
    pub tenants: Vec<ResolvedTenant>,
    /// The audit trail's settings (`spec.audit`).
    pub audit: crate::document::AuditSpec,
    /// What every TLS server of the platform offers (protocol floor, cipher suites), in each
    /// server's syntax: one definition, so that the endpoints cannot drift apart.
    pub tls_policy: crate::pki::tls::TlsPolicy,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedTenant {
    pub name: String,
    pub database: String,
    pub user: String,
    /// Name of the secret holding the role's password (`tenant-<name>-password`).
    pub secret: String,
    /// Kubernetes: the tenant's own namespace (see [`Tenant::namespace`](crate::document::Tenant::namespace)); empty elsewhere.
    pub namespace: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CloudVmSpec {
    pub name: String,
    pub instance_type: String,
    pub roles: Vec<Role>,
    /// Root disk in GiB, rounded up.
    pub disk_gb: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformInfo {
    pub name: String,
    /// Namespace on Kubernetes targets (empty otherwise).
    pub namespace: String,
    /// User labels from `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// Recommended `app.kubernetes.io/*` labels shared by every object.
    pub common_labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlueprintInfo {
    pub name: String,
    pub version: String,
    /// Every declared parameter, with the document's value or the blueprint default.
    pub parameters: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedComponents {
    pub app: ResolvedApp,
    pub database: ResolvedDatabase,
    pub mta: ResolvedMta,
    pub monitoring: ResolvedMonitoring,
    pub backups: Backups,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedResources {
    pub cpu: String,
    pub memory: String,
    pub cpu_limit: String,
    pub memory_limit: String,
}

impl From<&Resources> for ResolvedResources {
    fn from(r: &Resources) -> Self {
        let cpu_limit = r.cpu_limit.clone().unwrap_or_else(|| {
            let m = crate::document::validate::parse_cpu(&r.cpu).unwrap_or(250) * 2;
            if m.is_multiple_of(1000) {
                (m / 1000).to_string()
            } else {
                format!("{m}m")
            }
        });
        ResolvedResources {
            cpu: r.cpu.clone(),
            memory: r.memory.clone(),
            cpu_limit,
            memory_limit: r.memory_limit.clone().unwrap_or_else(|| r.memory.clone()),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedApp {
    pub enabled: bool,
    pub name: String,
    pub image: String,
    pub artifact: Option<Artifact>,
    pub replicas: u32,
    pub port: u32,
    pub health_path: String,
    pub public_host: Option<String>,
    pub env: BTreeMap<String, String>,
    pub resources: ResolvedResources,
    /// Releases kept for `terroir rollback`, the running one included.
    pub keep_releases: u32,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedDatabase {
    pub enabled: bool,
    /// Whether Terroir deploys PostgreSQL (false when disabled or external).
    pub managed: bool,
    pub service_name: String,
    /// Where clients connect: a Service name on Kubernetes, the database host's address on hosts.
    pub host: String,
    pub port: u32,
    pub version: u32,
    pub name: String,
    pub user: String,
    pub storage: String,
    pub max_connections: u32,
    pub shared_buffers: String,
    pub settings: BTreeMap<String, String>,
    pub resources: ResolvedResources,
    /// PostgreSQL servers (one primary, the others standbys).
    pub replicas: u32,
    /// Two or more replicas: Patroni elects the primary (on Kubernetes, through the API), and on
    /// Kubernetes every other component runs at least two replicas.
    pub highly_available: bool,
    /// Commits wait for a standby's acknowledgement.
    pub synchronous: bool,
    /// Hosts: every database host's address (or name, for VMs not yet created), by host name.
    pub hosts: Vec<String>,
    /// Hosts: the consensus store's members (etcd), by host name.
    pub consensus: Vec<ConsensusMember>,
    /// Tables whose every access is audited, as `schema.table` (`public.` added when absent).
    pub personal_tables: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsensusMember {
    pub name: String,
    pub address: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedMta {
    pub enabled: bool,
    pub service_name: String,
    /// Where the app sends mail: a Service name on Kubernetes, the MTA host's address on hosts.
    pub host: String,
    pub port: u32,
    pub domain: String,
    pub hostname: String,
    pub dkim_selector: String,
    pub relay_networks: Vec<String>,
    pub resources: ResolvedResources,
    /// Hosts: every MTA host's address, by host name (the application may submit to any).
    pub hosts: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedMonitoring {
    pub enabled: bool,
    pub retention: String,
    pub storage: String,
    pub alert_emails: Vec<String>,
    pub grafana: bool,
    pub resources: ResolvedResources,
    /// Where Prometheus and Alertmanager are reached.
    pub prometheus_host: String,
    pub alertmanager_host: String,
    /// Hosts: every monitoring host's address, by host name (each runs Prometheus and a member
    /// of the Alertmanager cluster).
    pub hosts: Vec<String>,
}

/// A parsed `scheme://host:port` endpoint.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedEndpoint {
    pub url: String,
    pub scheme: String,
    pub host: String,
    pub port: u16,
    pub operator: Option<String>,
    pub country: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedEndpoints {
    pub image_registry: ResolvedEndpoint,
    pub image_registry_mirror: Option<ResolvedEndpoint>,
    pub smtp_relay: Option<ResolvedEndpoint>,
    pub smtp_fallback_relay: Option<ResolvedEndpoint>,
    pub backup_s3: Option<S3Endpoint>,
    pub dns_resolvers: Vec<String>,
    pub acme_ca: Option<ResolvedEndpoint>,
    pub ai: Option<ResolvedEndpoint>,
    pub cdn: Option<ResolvedEndpoint>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedHost {
    pub name: String,
    /// Address, or empty for cloud VMs not yet created.
    pub address: String,
    pub roles: Vec<Role>,
    /// The address as a single-host network (`198.18.0.11/32`), or the name when not an IP.
    pub cidr: String,
    /// Ports this host must open, with what listens there.
    pub ports: Vec<HostPort>,
    /// Who may reach each port: the host firewall, also written into the plan.
    pub firewall: Vec<FirewallRule>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FirewallRule {
    pub port: u32,
    pub service: String,
    /// Source networks; empty means from anywhere.
    pub from: Vec<String>,
    /// The same, split by address family (host names count as IPv4).
    pub from_v4: Vec<String>,
    pub from_v6: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostPort {
    pub port: u32,
    pub service: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretNames {
    /// Kubernetes: the platform's CA (key and certificate), read by terroir only, never mounted.
    pub ca: String,
    /// Kubernetes: `kubernetes.io/tls` Secrets (with `ca.crt`) of the servers inside the platform.
    pub postgres_tls: String,
    pub mta_tls: String,
    /// Alertmanager and the PostgreSQL exporter (one certificate for both Services).
    pub monitoring_tls: String,
    /// The node exporters, in their own namespace.
    pub node_exporter_tls: String,
    /// Kubernetes: the tenants' role passwords, one key per tenant, for PostgreSQL's pod; each
    /// tenant's namespace gets its own copy (`tenant-<name>-password`).
    pub tenant_credentials: String,
    pub database: String,
    pub dkim: String,
    pub grafana: String,
    pub backup: String,
    /// Kubernetes: pgBackRest's repository encryption key (`cipher-pass`), generated once and
    /// never rotated (the repository cannot change it).
    pub backup_cipher: String,
    /// Kubernetes: the backup jobs' client certificate, which the database pod's pgBackRest
    /// server accepts (its common name is `<platform>-backup`).
    pub backup_tls: String,
    pub smtp_relay: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScrapeJob {
    pub job: String,
    pub targets: Vec<String>,
    /// Scraped over HTTPS, the target's certificate verified against the platform's CA.
    pub tls: bool,
}

impl ResolvedPlatform {
    pub fn target_kind_of(t: &Target) -> &'static str {
        t.kind()
    }
}

/// Build the resolved model. `params` are the blueprint parameters after defaults were applied
/// (see `Blueprint::resolve_parameters`).
pub fn resolve(p: &Platform, bp: &Blueprint, params: BTreeMap<String, Value>) -> ResolvedPlatform {
    let name = p.metadata.name.clone();
    let target_kind = ResolvedPlatform::target_kind_of(&p.spec.target);
    let on_kubernetes = p.spec.target.on_kubernetes();
    let namespace = p
        .spec
        .target
        .kubernetes()
        .map(|k| k.namespace.clone())
        .unwrap_or_else(|| {
            if on_kubernetes {
                name.clone()
            } else {
                String::new()
            }
        });

    let mut common_labels = BTreeMap::new();
    common_labels.insert("app.kubernetes.io/part-of".to_owned(), name.clone());
    common_labels.insert(
        "app.kubernetes.io/managed-by".to_owned(),
        "terroir".to_owned(),
    );
    common_labels.insert("app.kubernetes.io/version".to_owned(), bp.version.clone());

    // Hosts: bare metal as declared; cloud VMs without addresses until provisioned.
    let mut hosts: Vec<ResolvedHost> = match &p.spec.target {
        Target::Baremetal(b) => {
            let declared: Vec<(&str, &[Role])> = b
                .hosts
                .iter()
                .map(|h| (h.name.as_str(), h.roles.as_slice()))
                .collect();
            b.hosts
                .iter()
                .zip(effective_roles(&declared, &p.spec.components))
                .map(|(h, roles)| host(&h.name, &h.address, &roles, &p.spec.components))
                .collect()
        }
        Target::Secnumcloud(s) if s.deploy == CloudDeploy::Vms => {
            let declared: Vec<(&str, &[Role])> = s
                .vms
                .iter()
                .map(|v| (v.name.as_str(), v.roles.as_slice()))
                .collect();
            s.vms
                .iter()
                .zip(effective_roles(&declared, &p.spec.components))
                .map(|(v, roles)| host(&v.name, "", &roles, &p.spec.components))
                .collect()
        }
        Target::Secnumcloud(_) | Target::Kubernetes(_) => Vec::new(),
    };
    hosts.sort_by(|a, b| a.name.cmp(&b.name));
    let firewalls: Vec<Vec<FirewallRule>> = hosts
        .iter()
        .map(|h| firewall(h, &hosts, &p.spec.components))
        .collect();
    for (h, fw) in hosts.iter_mut().zip(firewalls) {
        h.firewall = fw;
    }
    let mut roles: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    for role in Role::ALL {
        roles.insert(
            role.as_str(),
            hosts
                .iter()
                .filter(|h| h.roles.contains(&role))
                .map(|h| h.name.clone())
                .collect(),
        );
    }
    let first_address = |role: Role| -> String {
        // cloud VMs have no address until provisioned: their name stands in
        hosts
            .iter()
            .find(|h| h.roles.contains(&role))
            .map(|h| {
                if h.address.is_empty() {
                    h.name.clone()
                } else {
                    h.address.clone()
                }
            })
            .unwrap_or_default()
    };

    let addresses = |role: Role| -> Vec<String> {
        hosts
            .iter()
            .filter(|h| h.roles.contains(&role))
            .map(|h| {
                if h.address.is_empty() {
                    h.name.clone()
                } else {
                    h.address.clone()
                }
            })
            .collect()
    };
    let c = &p.spec.components;
    let svc = |suffix: &str| format!("{name}-{suffix}");
    let (db_host, db_port) = match &c.database.external {
        Some(ext) => (ext.host.clone(), ext.port),
        None if on_kubernetes => (svc("postgres"), c.database.port),
        None => (first_address(Role::Database), c.database.port),
    };
    let (mta_host, prom_host, am_host) = if on_kubernetes {
        (svc("postfix"), svc("prometheus"), svc("alertmanager"))
    } else {
        (
            first_address(Role::Mta),
            first_address(Role::Monitoring),
            first_address(Role::Monitoring),
        )
    };

    let components = ResolvedComponents {
        app: ResolvedApp {
            enabled: c.app.enabled,
            name: svc("app"),
            image: c.app.image.clone(),
            artifact: c.app.artifact.clone(),
            replicas: c.app.replicas,
            port: c.app.port,
            health_path: c.app.health_path.clone(),
            public_host: c.app.public_host.clone(),
            env: c.app.env.clone(),
            resources: (&c.app.resources).into(),
            keep_releases: c.app.keep_releases,
        },
        database: ResolvedDatabase {
            enabled: c.database.enabled,
            managed: c.database.enabled && c.database.external.is_none(),
            service_name: svc("postgres"),
            host: db_host,
            port: db_port,
            version: c.database.version,
            name: c.database.name.clone(),
            user: c.database.user.clone(),
            storage: c.database.storage.clone(),
            max_connections: c.database.max_connections,
            shared_buffers: c.database.shared_buffers.clone(),
            settings: c.database.settings.clone(),
            resources: (&c.database.resources).into(),
            replicas: c.database.replicas,
            highly_available: c.database.highly_available(),
            synchronous: c.database.synchronous(),
            hosts: addresses(Role::Database),
            consensus: if c.database.highly_available() {
                hosts
                    .iter()
                    .filter(|h| h.roles.contains(&Role::Consensus))
                    .map(|h| ConsensusMember {
                        name: h.name.clone(),
                        address: if h.address.is_empty() {
                            h.name.clone()
                        } else {
                            h.address.clone()
                        },
                    })
                    .collect()
            } else {
                Vec::new()
            },
            personal_tables: c
                .database
                .personal_tables
                .iter()
                .map(|t| {
                    if t.contains('.') {
                        t.clone()
                    } else {
                        format!("public.{t}")
                    }
                })
                .collect(),
        },
        mta: ResolvedMta {
            enabled: c.mta.enabled,
            service_name: svc("postfix"),
            host: mta_host,
            hosts: addresses(Role::Mta),
            port: 25,
            domain: c.mta.domain.clone(),
            hostname: c
                .mta
                .hostname
                .clone()
                .unwrap_or_else(|| format!("mail.{}", c.mta.domain)),
            dkim_selector: c.mta.dkim_selector.clone(),
            relay_networks: c.mta.relay_networks.clone(),
            resources: (&c.mta.resources).into(),
        },
        monitoring: ResolvedMonitoring {
            enabled: c.monitoring.enabled,
            retention: c.monitoring.retention.clone(),
            storage: c.monitoring.storage.clone(),
            alert_emails: c.monitoring.alert_emails.clone(),
            grafana: c.monitoring.grafana,
            resources: (&c.monitoring.resources).into(),
            prometheus_host: prom_host,
            alertmanager_host: am_host,
            hosts: addresses(Role::Monitoring),
        },
        backups: c.backups.clone(),
    };

    let e = &p.spec.endpoints;
    let endpoints = ResolvedEndpoints {
        image_registry: endpoint(&e.image_registry, 443),
        image_registry_mirror: e.image_registry_mirror.as_ref().map(|x| endpoint(x, 443)),
        smtp_relay: e.smtp_relay.as_ref().map(|x| endpoint(x, 587)),
        smtp_fallback_relay: e.smtp_fallback_relay.as_ref().map(|x| endpoint(x, 587)),
        backup_s3: e.backup_s3.clone(),
        dns_resolvers: e.dns_resolvers.clone(),
        acme_ca: e.acme_ca.as_ref().map(|x| endpoint(x, 443)),
        ai: e.ai.as_ref().map(|x| endpoint(x, 443)),
        cdn: e.cdn.as_ref().map(|x| endpoint(x, 443)),
    };

    let registry = endpoints.image_registry.host.clone();
    let mut images = BTreeMap::new();
    for (key, path) in &bp.images {
        let reference = match p.spec.images.get(key) {
            Some(set) => set.to_owned(),
            None => path.replace("{pgVersion}", &c.database.version.to_string()),
        };
        images.insert(
            key.clone(),
            crate::document::image::absolute(&registry, &reference),
        );
    }

    let pgbackrest =
        components.backups.enabled && components.database.managed && endpoints.backup_s3.is_some();
    let scrape_jobs = scrape_jobs(&components, &hosts, on_kubernetes, pgbackrest, &name);
    let mut cloud_vms: Vec<CloudVmSpec> = p
        .spec
        .target
        .secnumcloud()
        .into_iter()
        .filter(|s| s.deploy == CloudDeploy::Vms)
        .flat_map(|s| s.vms.iter())
        .map(|v| {
            let bytes = crate::document::validate::parse_size(&v.disk).unwrap_or(0);
            let mut roles = v.roles.clone();
            roles.sort();
            CloudVmSpec {
                name: v.name.clone(),
                instance_type: v.instance_type.clone(),
                roles,
                disk_gb: bytes.div_ceil(1 << 30) as u64,
            }
        })
        .collect();
    cloud_vms.sort_by(|a, b| a.name.cmp(&b.name));

    ResolvedPlatform {
        platform: PlatformInfo {
            name: name.clone(),
            namespace: namespace.clone(),
            labels: p.metadata.labels.clone(),
            common_labels,
        },
        blueprint: BlueprintInfo {
            name: bp.name.clone(),
            version: bp.version.clone(),
            parameters: params,
        },
        target_kind,
        target: p.spec.target.clone(),
        components,
        endpoints,
        sovereignty: p.spec.sovereignty.clone(),
        hosts,
        roles,
        secrets: SecretNames {
            ca: svc("ca"),
            postgres_tls: svc("postgres-tls"),
            mta_tls: svc("mta-tls"),
            monitoring_tls: svc("monitoring-tls"),
            node_exporter_tls: svc("node-exporter-tls"),
            tenant_credentials: svc("tenant-credentials"),
            database: svc("postgres-credentials"),
            dkim: svc("dkim-key"),
            grafana: svc("grafana-admin"),
            backup: svc("backup-s3-credentials"),
            backup_cipher: svc("backup-cipher"),
            backup_tls: svc("backup-tls"),
            smtp_relay: svc("smtp-relay-credentials"),
        },
        images,
        scrape_jobs,
        cloud_vms,
        tenants: {
            let mut t: Vec<ResolvedTenant> = p
                .spec
                .tenants
                .iter()
                .map(|t| ResolvedTenant {
                    name: t.name.clone(),
                    database: t.name.clone(),
                    user: t.name.clone(),
                    secret: format!("tenant-{}-password", t.name.replace('_', "-")),
                    namespace: if on_kubernetes {
                        t.namespace(&namespace)
                    } else {
                        String::new()
                    },
                })
                .collect();
            t.sort_by(|a, b| a.name.cmp(&b.name));
            t
        },
        audit: p.spec.audit.clone(),
        tls_policy: crate::pki::tls::TlsPolicy::anssi(),
    }
}

/// The roles each host carries: as declared, plus `consensus` on the database hosts when the
/// database is replicated and no host was given that role.
fn effective_roles(hosts: &[(&str, &[Role])], c: &Components) -> Vec<Vec<Role>> {
    let members = crate::document::validate::consensus_members(hosts);
    hosts
        .iter()
        .map(|(name, roles)| {
            let mut roles = roles.to_vec();
            if c.database.highly_available()
                && members.contains(name)
                && !roles.contains(&Role::Consensus)
            {
                roles.push(Role::Consensus);
            }
            roles
        })
        .collect()
}

fn host(name: &str, address: &str, roles: &[Role], c: &Components) -> ResolvedHost {
    let mut roles = roles.to_vec();
    roles.sort();
    let needed = required_roles(c);
    let mut ports: Vec<HostPort> = vec![
        HostPort {
            port: 22,
            service: "ssh".into(),
        },
        HostPort {
            port: 9100,
            service: "node exporter".into(),
        },
    ];
    for role in roles
        .iter()
        .filter(|r| needed.contains(r) || **r == Role::Consensus)
    {
        ports.extend(
            role_ports(*role, c)
                .into_iter()
                .map(|(port, what)| HostPort {
                    port,
                    service: what.to_owned(),
                }),
        );
    }
    ports.sort_by_key(|p| p.port);
    let cidr = match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => format!("{address}/32"),
        Ok(std::net::IpAddr::V6(_)) => format!("{address}/128"),
        Err(_) => address.to_owned(),
    };
    ResolvedHost {
        name: name.to_owned(),
        address: address.to_owned(),
        roles,
        cidr,
        ports,
        firewall: Vec::new(),
    }
}

/// Who may reach each port of `host`: public ports from anywhere, internal ones only from the
/// platform hosts that use them.
fn firewall(host: &ResolvedHost, hosts: &[ResolvedHost], c: &Components) -> Vec<FirewallRule> {
    let with_role = |role: Role| -> Vec<String> {
        hosts
            .iter()
            .filter(|h| h.roles.contains(&role) && !h.cidr.is_empty())
            .map(|h| h.cidr.clone())
            .collect()
    };
    let all: Vec<String> = hosts
        .iter()
        .filter(|h| !h.cidr.is_empty())
        .map(|h| h.cidr.clone())
        .collect();
    let mut rules = Vec::new();
    for p in &host.ports {
        let from = match p.port {
            22 => Vec::new(),
            80 | 443 if c.app.public_host.is_some() && host.roles.contains(&Role::App) => {
                Vec::new()
            }
            // behind nginx, only Prometheus and the other application hosts' nginx (which
            // turn to this host while their own application restarts) reach it directly
            port if port == c.app.port
                && host.roles.contains(&Role::App)
                && c.app.public_host.is_some() =>
            {
                let mut v = with_role(Role::Monitoring);
                v.extend(with_role(Role::App).into_iter().filter(|c| *c != host.cidr));
                dedup(v)
            }
            port if port == c.app.port && host.roles.contains(&Role::App) => Vec::new(),
            // the application, and the other members streaming from the primary
            port if port == c.database.port && host.roles.contains(&Role::Database) => {
                let mut v = with_role(Role::App);
                if c.database.highly_available() {
                    v.extend(with_role(Role::Database));
                }
                dedup(v)
            }
            // Patroni's REST API: the members, HAProxy on the application hosts, Prometheus
            PATRONI_PORT if host.roles.contains(&Role::Database) => dedup(
                [Role::Database, Role::App, Role::Monitoring]
                    .into_iter()
                    .flat_map(with_role)
                    .collect(),
            ),
            // etcd: Patroni on the database hosts, and the members between themselves
            ETCD_CLIENT_PORT if host.roles.contains(&Role::Consensus) => dedup(
                [Role::Database, Role::Consensus, Role::Monitoring]
                    .into_iter()
                    .flat_map(with_role)
                    .collect(),
            ),
            ETCD_PEER_PORT if host.roles.contains(&Role::Consensus) => with_role(Role::Consensus),
            25 | 587 => {
                let mut v = all.clone();
                v.extend(c.mta.relay_networks.iter().cloned());
                v
            }
            _ => with_role(Role::Monitoring),
        };
        let (from_v6, from_v4): (Vec<String>, Vec<String>) =
            from.iter().cloned().partition(|a| a.contains(':'));
        rules.push(FirewallRule {
            port: p.port,
            service: p.service.clone(),
            from,
            from_v4,
            from_v6,
        });
    }
    rules
}

/// Sources in their first order, each once.
fn dedup(v: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    v.into_iter().filter(|a| seen.insert(a.clone())).collect()
}

fn endpoint(e: &Endpoint, default_port: u16) -> ResolvedEndpoint {
    let (scheme, host, port) = match url::Url::parse(&e.url) {
        Ok(u) if u.host_str().is_some() => {
            let default = match u.scheme() {
                "smtp" => 25,
                "submission" => 587,
                "smtps" => 465,
                "http" => 80,
                _ => default_port,
            };
            (
                u.scheme().to_owned(),
                u.host_str().unwrap_or_default().to_owned(),
                u.port().unwrap_or(default),
            )
        }
        _ => {
            let (h, port) = match e.url.rsplit_once(':') {
                Some((h, p)) if p.parse::<u16>().is_ok() => {
                    (h.to_owned(), p.parse().unwrap_or(default_port))
                }
                _ => (e.url.clone(), default_port),
            };
            (String::new(), h, port)
        }
    };
    ResolvedEndpoint {
        url: e.url.clone(),
        scheme,
        host,
        port,
        operator: e.operator.clone(),
        country: e.country.clone(),
    }
}

fn scrape_jobs(
    c: &ResolvedComponents,
    hosts: &[ResolvedHost],
    on_kubernetes: bool,
    pgbackrest: bool,
    name: &str,
) -> Vec<ScrapeJob> {
    let mut jobs = Vec::new();
    if !c.monitoring.enabled {
        return jobs;
    }
    if on_kubernetes {
        // as on hosts: Prometheus, Alertmanager and the exporters that speak TLS (node,
        // PostgreSQL, pgBackRest) serve a certificate from the platform's CA (Secret
        // <platform>-monitoring-tls)
        let mut push = |job: &str, target: String, tls: bool| {
            jobs.push(ScrapeJob {
                job: job.to_owned(),
                targets: vec![target],
                tls,
            })
        };
        push("prometheus", format!("{name}-prometheus:9090"), true);
        push("alertmanager", format!("{name}-alertmanager:9093"), true);
        if c.app.enabled {
            push("app", format!("{}:{}", c.app.name, c.app.port), false);
        }
        if c.database.managed {
            push("postgres", format!("{name}-postgres-exporter:9187"), true);
        }
        if pgbackrest {
            // the age of the newest backup in the repository (BackupTooOld)
            push("pgbackrest", format!("{name}-backup-exporter:9854"), true);
        }
        if c.mta.enabled {
            push("postfix", format!("{name}-postfix-exporter:9154"), false);
        }
        // node exporters are a DaemonSet, found through Kubernetes service discovery
        return jobs;
    }
    let targets = |role: Option<Role>, port: u32| -> Vec<String> {
        hosts
            .iter()
            .filter(|h| role.is_none_or(|r| h.roles.contains(&r)))
            .map(|h| {
                format!(
                    "{}:{port}",
                    if h.address.is_empty() {
                        &h.name
                    } else {
                        &h.address
                    }
                )
            })
            .collect()
    };
    // the exporters that speak TLS (node, PostgreSQL), Prometheus and Alertmanager serve the
    // host's certificate; the application (behind nginx when it has a public name) and the
    // Postfix exporter (no TLS in Debian 12's version) stay plain HTTP on the private network
    let mut add = |job: &str, t: Vec<String>, tls: bool| {
        if !t.is_empty() {
            jobs.push(ScrapeJob {
                job: job.to_owned(),
                targets: t,
                tls,
            });
        }
    };
    add("node", targets(None, 9100), true);
    add("prometheus", targets(Some(Role::Monitoring), 9090), true);
    add("alertmanager", targets(Some(Role::Monitoring), 9093), true);
    if c.app.enabled {
        add("app", targets(Some(Role::App), c.app.port), false);
    }
    if c.database.managed {
        add("postgres", targets(Some(Role::Database), 9187), true);
    }
    if c.database.managed && c.database.highly_available {
        // each member's role, timeline and replay position (Patroni's REST API, /metrics)
        add("patroni", targets(Some(Role::Database), PATRONI_PORT), true);
    }
    if c.mta.enabled {
        add("postfix", targets(Some(Role::Mta), 9154), false);
    }
    jobs
}
