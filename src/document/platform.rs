//! The `Platform` document: what users write, the CLI's input and the operator's custom resource.
//!
//! Types only. Structural rules (types, enums, ranges, unknown keys) live here as serde/schemars
//! attributes so that the published JSON Schema and the loader agree; cross-field rules live in
//! `validate.rs`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const API_VERSION: &str = "terroir.eu/v1alpha1";
pub const KIND: &str = "Platform";

/// A Terroir Platform: one customer-engagement platform and where it must run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "Platform")]
pub struct Platform {
    /// Always `terroir.eu/v1alpha1`.
    #[schemars(extend("enum" = [API_VERSION]))]
    pub api_version: String,
    /// Always `Platform`.
    #[schemars(extend("enum" = [KIND]))]
    pub kind: String,
    pub metadata: Metadata,
    pub spec: PlatformSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metadata {
    /// The platform's name: a DNS label (lowercase letters, digits and `-`, at most 40 characters).
    /// It prefixes every object, file and service Terroir creates.
    pub name: String,
    /// Kubernetes namespace of the custom resource (operator use only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Extra labels copied onto every rendered object.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// The platform's desired state. Also the `spec` of the `Platform` custom resource
/// (`platforms.terroir.eu`) that `terroir operator` reconciles: `terroir crd` prints it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, kube::CustomResource)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[kube(
    group = "terroir.eu",
    version = "v1alpha1",
    kind = "Platform",
    root = "PlatformResource",
    namespaced,
    status = "PlatformStatus",
    shortname = "plat",
    category = "terroir",
    doc = "A customer-engagement platform that terroir operator renders, checks against its sovereignty policy, applies and keeps converged.",
    label("applyset.kubernetes.io/is-parent-type", "true"),
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Objects","type":"integer","jsonPath":".status.appliedObjects"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
pub struct PlatformSpec {
    pub blueprint: BlueprintRef,
    pub target: Target,
    #[serde(default)]
    pub components: Components,
    pub sovereignty: Sovereignty,
    pub endpoints: Endpoints,
    /// Clients served by this platform, each with its own database and role named after it
    /// (tenant isolation): no role can connect to another tenant's database, nor the
    /// application's role to a tenant's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<Tenant>,
    /// How terroir keeps the secrets it generates on the operator's side.
    #[serde(default, skip_serializing_if = "SecretsSpec::is_default")]
    pub secrets: SecretsSpec,
    /// The audit trail: how long the hosts keep it.
    #[serde(default, skip_serializing_if = "AuditSpec::is_default")]
    pub audit: AuditSpec,
    /// Image references replacing the blueprint's, by its image keys; pinned by digest
    /// (`terroir/postgres:15-bookworm@sha256:…`) they say exactly what runs. Relative to
    /// `endpoints.imageRegistry`, or absolute when they start with a registry host. The
    /// application's image is `components.app.image`.
    #[serde(default, skip_serializing_if = "Images::is_empty")]
    pub images: Images,
}

/// The operator-side secret store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretsSpec {
    /// age recipients (`age1...` public keys) the store is encrypted to. With none, secrets are
    /// kept in clear in files of mode 0600 (and the attestation says so).
    #[serde(default)]
    pub recipients: Vec<String>,
}

impl SecretsSpec {
    pub fn is_default(&self) -> bool {
        *self == SecretsSpec::default()
    }
}

/// The references that replace the blueprint's images, one optional key per image.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Images {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres_exporter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postfix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postfix_exporter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alertmanager: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grafana: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_exporter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_exporter: Option<String>,
}

impl Images {
    /// The keys as the document writes them (the blueprint's image keys).
    pub const KEYS: [&'static str; 9] = [
        "postgres",
        "postgresExporter",
        "postfix",
        "postfixExporter",
        "prometheus",
        "alertmanager",
        "grafana",
        "nodeExporter",
        "backupExporter",
    ];

    pub fn is_empty(&self) -> bool {
        *self == Images::default()
    }

    fn slot(&mut self, key: &str) -> Option<&mut Option<String>> {
        Some(match key {
            "postgres" => &mut self.postgres,
            "postgresExporter" => &mut self.postgres_exporter,
            "postfix" => &mut self.postfix,
            "postfixExporter" => &mut self.postfix_exporter,
            "prometheus" => &mut self.prometheus,
            "alertmanager" => &mut self.alertmanager,
            "grafana" => &mut self.grafana,
            "nodeExporter" => &mut self.node_exporter,
            "backupExporter" => &mut self.backup_exporter,
            _ => return None,
        })
    }

    /// The reference set for `key`, if any.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The references set, by key, in the order of `KEYS`.
    pub fn entries(&self) -> impl Iterator<Item = (&'static str, &str)> {
        let values = [
            &self.postgres,
            &self.postgres_exporter,
            &self.postfix,
            &self.postfix_exporter,
            &self.prometheus,
            &self.alertmanager,
            &self.grafana,
            &self.node_exporter,
            &self.backup_exporter,
        ];
        Self::KEYS
            .into_iter()
            .zip(values)
            .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
    }

    /// Set `key` to `reference`; `false` when the key is not one of `KEYS`.
    pub fn set(&mut self, key: &str, reference: &str) -> bool {
        match self.slot(key) {
            Some(slot) => {
                *slot = Some(reference.to_owned());
                true
            }
            None => false,
        }
    }
}

/// The platform's audit trail (pgaudit, SSH and sudo logs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuditSpec {
    /// Days the hosts keep audit logs (rotated daily, older files removed).
    #[serde(default = "default_audit_retention")]
    #[schemars(range(min = 1, max = 3650))]
    pub retention_days: u32,
}

impl Default for AuditSpec {
    fn default() -> Self {
        AuditSpec {
            retention_days: default_audit_retention(),
        }
    }
}

impl AuditSpec {
    pub fn is_default(&self) -> bool {
        *self == AuditSpec::default()
    }
}

fn default_audit_retention() -> u32 {
    365
}

/// One client of the platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Tenant {
    /// A plain SQL identifier: the tenant's database and role are named after it.
    pub name: String,
}

impl Tenant {
    /// On Kubernetes, the tenant's own namespace beside the platform's: a DNS label, so `_`
    /// becomes `-`.
    pub fn namespace(&self, platform_namespace: &str) -> String {
        format!("{platform_namespace}-{}", self.name.replace('_', "-"))
    }
}

/// Which blueprint renders this platform, and its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BlueprintRef {
    /// Blueprint name; `engagement-platform` is shipped inside the binary.
    pub name: String,
    /// Blueprint parameters; each blueprint declares which it accepts, their types and defaults.
    #[serde(default)]
    pub parameters: BTreeMap<String, serde_json::Value>,
}

/// Where the platform runs: one kind of place, written as the one key under `spec.target`
/// (`target: {baremetal: {...}}`, serde's external tagging).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Target {
    Kubernetes(KubernetesTarget),
    Baremetal(BaremetalTarget),
    Secnumcloud(SecNumCloudTarget),
}

/// The keys `spec.target` may hold, in the order messages name them.
pub const TARGET_KINDS: [&str; 3] = ["kubernetes", "baremetal", "secnumcloud"];

// The document's form of `Target` for the JSON Schema and the CRD: each kind an optional key, so
// that unknown and misplaced keys are reported precisely. "Exactly one" is checked when the
// document is loaded (`load::check_structure`).
/// Where the platform runs: exactly one of `kubernetes`, `baremetal`, `secnumcloud`.
#[derive(JsonSchema)]
#[schemars(rename = "Target", deny_unknown_fields)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct TargetKeys {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kubernetes: Option<KubernetesTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    baremetal: Option<BaremetalTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secnumcloud: Option<SecNumCloudTarget>,
}

impl JsonSchema for Target {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        TargetKeys::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        TargetKeys::json_schema(generator)
    }
}

impl Target {
    /// `kubernetes`, `baremetal` or `secnumcloud`: the key the document names it by.
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Kubernetes(_) => "kubernetes",
            Target::Baremetal(_) => "baremetal",
            Target::Secnumcloud(_) => "secnumcloud",
        }
    }

    /// Whether the platform runs in a Kubernetes cluster: the client's own, or one a SecNumCloud
    /// provider runs for it (`deploy: kubernetes`). Otherwise it runs on hosts (bare metal or
    /// SecNumCloud VMs).
    pub fn on_kubernetes(&self) -> bool {
        match self {
            Target::Kubernetes(_) => true,
            Target::Baremetal(_) => false,
            Target::Secnumcloud(s) => s.deploy == CloudDeploy::Kubernetes,
        }
    }

    pub fn kubernetes(&self) -> Option<&KubernetesTarget> {
        match self {
            Target::Kubernetes(k) => Some(k),
            _ => None,
        }
    }

    pub fn baremetal(&self) -> Option<&BaremetalTarget> {
        match self {
            Target::Baremetal(b) => Some(b),
            _ => None,
        }
    }

    pub fn secnumcloud(&self) -> Option<&SecNumCloudTarget> {
        match self {
            Target::Secnumcloud(s) => Some(s),
            _ => None,
        }
    }
}

/// The client's own Kubernetes cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KubernetesTarget {
    /// Namespace the platform is deployed into (created by Terroir).
    pub namespace: String,
    /// kubeconfig file; defaults to `$KUBECONFIG` or `~/.kube/config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<String>,
    /// kubeconfig context; defaults to the current context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// StorageClass for persistent volumes; the cluster default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// IngressClass that publishes `components.app.publicHost`: terroir renders an Ingress for it
    /// and, with `spec.endpoints.acmeCa`, a cert-manager Issuer that obtains the name's
    /// certificate from that CA (HTTP-01). cert-manager must then be installed in the cluster.
    /// Without it, the application is a ClusterIP Service that your own ingress publishes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_class_name: Option<String>,
    /// Where the cluster runs, as declared (checked against the nodes by `terroir verify --live`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<DeclaredLocation>,
}

/// Bare-metal or dedicated hosts reached over SSH.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BaremetalTarget {
    pub ssh: SshSettings,
    /// Debian mirror the hosts install packages from.
    #[serde(default = "default_debian_mirror")]
    pub package_mirror: String,
    /// The hosts and the roles each one plays.
    pub hosts: Vec<Host>,
    /// Where the hosts are, as declared (checked against live facts by `terroir verify --live`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<DeclaredLocation>,
}

pub fn default_debian_mirror() -> String {
    "http://deb.debian.org/debian".to_owned()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SshSettings {
    /// Remote user; must have password-less sudo.
    pub user: String,
    #[serde(default = "default_ssh_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: u32,
    /// Private key (Ed25519 or RSA).
    pub identity_file: String,
    /// known_hosts file used for strict host key checking.
    pub known_hosts_file: String,
    /// Optional bastion reached first (same key and known_hosts file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jump_host: Option<JumpHost>,
    /// Also offer the keys of a running ssh-agent (`SSH_AUTH_SOCK`), after the identity file.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub use_agent: bool,
}

fn default_ssh_port() -> u32 {
    22
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JumpHost {
    pub address: String,
    #[serde(default = "default_ssh_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Host {
    /// Host name: a DNS label, unique in the document.
    pub name: String,
    /// IP address or DNS name the host is reached at.
    pub address: String,
    /// What the host runs.
    #[schemars(length(min = 1))]
    pub roles: Vec<Role>,
    /// Where this host stands, when it differs from the target's `location` (replicas in another
    /// site): `verify --live` judges each host against its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<DeclaredLocation>,
}

impl Host {
    /// The host's own location, or the target's.
    pub fn location<'a>(
        &'a self,
        target: Option<&'a DeclaredLocation>,
    ) -> Option<&'a DeclaredLocation> {
        self.location.as_ref().or(target)
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    App,
    Database,
    Mta,
    Monitoring,
    // A member of the consensus store (etcd) that elects the PostgreSQL primary when the database
    // has replicas; without any host given this role, the database hosts carry it. (A plain
    // comment: a doc comment on one variant turns the schema's enum into a `oneOf`.)
    Consensus,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::App,
        Role::Database,
        Role::Mta,
        Role::Monitoring,
        Role::Consensus,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::App => "app",
            Role::Database => "database",
            Role::Mta => "mta",
            Role::Monitoring => "monitoring",
            Role::Consensus => "consensus",
        }
    }
}

/// Provisioning on a SecNumCloud-qualified cloud through Terraform/OpenTofu, then deploying on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecNumCloudTarget {
    pub provider: CloudProvider,
    /// Provider region, for example `cloudgouv-eu-west-1` (Outscale) or `u-france-east1` (S3NS).
    pub region: String,
    /// What to provision: virtual machines (then deployed like bare metal) or a managed
    /// Kubernetes cluster (then deployed like the kubernetes target).
    #[serde(default)]
    pub deploy: CloudDeploy,
    /// Private network of the platform.
    #[serde(default = "default_network_cidr")]
    pub network_cidr: String,
    /// Virtual machines, for `deploy: vms`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vms: Vec<CloudVm>,
    /// Managed Kubernetes cluster, for `deploy: kubernetes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<CloudKubernetes>,
    /// Where Terraform state is kept: an S3-compatible bucket of the client's, never a SaaS backend.
    pub state_backend: StateBackend,
    /// SSH settings used on the created VMs (`deploy: vms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<SshSettings>,
    /// Networks allowed to reach the VMs' SSH port from outside the platform's network: where
    /// terroir runs, a bastion or a VPN (CIDR notation). Empty: nobody from outside.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ssh_from: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CloudProvider {
    Outscale,
    Ovhcloud,
    CloudTemple,
    S3ns,
}

impl CloudProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            CloudProvider::Outscale => "outscale",
            CloudProvider::Ovhcloud => "ovhcloud",
            CloudProvider::CloudTemple => "cloud-temple",
            CloudProvider::S3ns => "s3ns",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CloudDeploy {
    #[default]
    Vms,
    Kubernetes,
}

fn default_network_cidr() -> String {
    "10.42.0.0/16".to_owned()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CloudVm {
    /// VM name: a DNS label, unique in the document.
    pub name: String,
    /// Provider instance type, for example `tinav6.c4r8p2` (Outscale).
    pub instance_type: String,
    #[schemars(length(min = 1))]
    pub roles: Vec<Role>,
    /// Root disk size, for example `50Gi`.
    #[serde(default = "default_disk")]
    pub disk: String,
}

fn default_disk() -> String {
    "50Gi".to_owned()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CloudKubernetes {
    pub version: String,
    #[schemars(range(min = 1, max = 100))]
    pub node_count: u32,
    pub node_type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StateBackend {
    /// S3 API endpoint URL (https).
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    /// Object key of the state file.
    #[serde(default = "default_state_key")]
    pub key: String,
}

fn default_state_key() -> String {
    "terroir/terraform.tfstate".to_owned()
}

/// Where something is, as the organisation declares it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeclaredLocation {
    /// ISO 3166-1 alpha-2 country code, for example `FR`.
    pub country: String,
    /// Company operating the datacentre or cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// Datacentre or region name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
}

/// The platform's building blocks. Each can be disabled.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Components {
    #[serde(default)]
    pub app: App,
    #[serde(default)]
    pub database: Database,
    #[serde(default)]
    pub mta: Mta,
    #[serde(default)]
    pub monitoring: Monitoring,
    #[serde(default)]
    pub backups: Backups,
}

/// CPU and memory for one container (Kubernetes quantities).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Resources {
    /// CPU request, for example `250m` or `1`.
    pub cpu: String,
    /// Memory request, for example `512Mi`.
    pub memory: String,
    /// CPU limit; twice the request when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_limit: Option<String>,
    /// Memory limit; equal to the request when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<String>,
}

impl Resources {
    fn new(cpu: &str, memory: &str) -> Self {
        Resources {
            cpu: cpu.into(),
            memory: memory.into(),
            cpu_limit: None,
            memory_limit: None,
        }
    }
}

fn yes() -> bool {
    true
}

/// The customer-engagement application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct App {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Container image (Kubernetes), pinned by tag or digest.
    #[serde(default = "default_app_image")]
    pub image: String,
    /// Release artifact installed on hosts (bare metal), pinned by SHA-256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 1, max = 100))]
    pub replicas: u32,
    /// Port the application listens on.
    #[serde(default = "default_app_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: u32,
    /// HTTP path answering 200 when the application is healthy.
    #[serde(default = "default_health_path")]
    pub health_path: String,
    /// Public host name of the application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_host: Option<String>,
    /// Non-secret environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default = "default_app_resources")]
    pub resources: Resources,
    /// Releases kept for `terroir rollback`, the running one included: release directories on
    /// hosts, the Deployment's revisionHistoryLimit on Kubernetes.
    #[serde(default = "default_keep_releases")]
    #[schemars(range(min = 2, max = 50))]
    pub keep_releases: u32,
}

impl Default for App {
    fn default() -> Self {
        App {
            enabled: true,
            image: default_app_image(),
            artifact: None,
            replicas: default_replicas(),
            port: default_app_port(),
            health_path: default_health_path(),
            public_host: None,
            env: BTreeMap::new(),
            resources: default_app_resources(),
            keep_releases: default_keep_releases(),
        }
    }
}

fn default_keep_releases() -> u32 {
    3
}

fn default_app_image() -> String {
    "registry.terroir.eu/terroir/smoke-app:0.1.0".to_owned()
}
fn default_replicas() -> u32 {
    2
}
fn default_app_port() -> u32 {
    8080
}
fn default_health_path() -> String {
    "/healthz".to_owned()
}
fn default_app_resources() -> Resources {
    Resources::new("250m", "256Mi")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Artifact {
    /// Where the release archive is downloaded from.
    pub url: String,
    /// Its SHA-256 (64 hexadecimal digits); the install is refused on mismatch.
    pub sha256: String,
    /// Command started by the service, relative to the unpacked archive.
    #[serde(default = "default_artifact_command")]
    pub command: String,
}

fn default_artifact_command() -> String {
    "bin/app".to_owned()
}

/// PostgreSQL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Database {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Use an existing PostgreSQL instead of deploying one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalService>,
    /// PostgreSQL major version.
    #[serde(default = "default_pg_version")]
    #[schemars(range(min = 13, max = 18))]
    pub version: u32,
    /// Database the application uses.
    #[serde(default = "default_db_name")]
    pub name: String,
    /// Role the application connects as.
    #[serde(default = "default_db_user")]
    pub user: String,
    /// Persistent volume size, for example `20Gi`.
    #[serde(default = "default_db_storage")]
    pub storage: String,
    #[serde(default = "default_max_connections")]
    #[schemars(range(min = 10, max = 10000))]
    pub max_connections: u32,
    /// `shared_buffers`, for example `256MB`.
    #[serde(default = "default_shared_buffers")]
    pub shared_buffers: String,
    #[serde(default = "default_db_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: u32,
    /// PostgreSQL servers: one primary and `replicas - 1` standbys. With 2 or more, Patroni elects
    /// the primary (on hosts, one database host per replica; on Kubernetes, one pod per replica,
    /// and then Alertmanager, Prometheus, the MTA and the app run at least two replicas each).
    #[serde(default = "default_db_replicas")]
    #[schemars(range(min = 1, max = 9))]
    pub replicas: u32,
    /// A transaction is acknowledged only once a standby has it, so that a failover loses no
    /// acknowledged write. Default: true with 2 or more replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synchronous: Option<bool>,
    /// Extra `postgresql.conf` settings.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    #[serde(default = "default_db_resources")]
    pub resources: Resources,
    /// Tables holding personal data (`table` or `schema.table`, in the application's database):
    /// every read and write of them is written to the audit log (pgaudit), with role, time and
    /// statement.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub personal_tables: Vec<String>,
}

impl Default for Database {
    fn default() -> Self {
        Database {
            enabled: true,
            external: None,
            version: default_pg_version(),
            name: default_db_name(),
            user: default_db_user(),
            storage: default_db_storage(),
            max_connections: default_max_connections(),
            shared_buffers: default_shared_buffers(),
            port: default_db_port(),
            replicas: default_db_replicas(),
            synchronous: None,
            settings: BTreeMap::new(),
            resources: default_db_resources(),
            personal_tables: Vec::new(),
        }
    }
}

fn default_pg_version() -> u32 {
    15
}
fn default_db_name() -> String {
    "app".to_owned()
}
fn default_db_user() -> String {
    "app".to_owned()
}
fn default_db_storage() -> String {
    "20Gi".to_owned()
}
fn default_max_connections() -> u32 {
    100
}
fn default_shared_buffers() -> String {
    "128MB".to_owned()
}
fn default_db_port() -> u32 {
    5432
}
fn default_db_replicas() -> u32 {
    1
}

impl Database {
    /// More than one PostgreSQL server: Patroni runs them (on hosts and on Kubernetes).
    pub fn highly_available(&self) -> bool {
        self.replicas >= 2
    }

    /// Whether commits wait for a standby: as set, else whenever there is a standby.
    pub fn synchronous(&self) -> bool {
        self.synchronous.unwrap_or(self.highly_available())
    }
}
fn default_db_resources() -> Resources {
    Resources::new("500m", "1Gi")
}

/// An existing service used instead of one Terroir deploys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExternalService {
    pub host: String,
    #[schemars(range(min = 1, max = 65535))]
    pub port: u32,
}

/// Postfix, the platform's own MTA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Mta {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Mail domain the platform sends from, for example `crm.example.fr`.
    #[serde(default = "default_mail_domain")]
    pub domain: String,
    /// Postfix `myhostname`; `mail.<domain>` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// DKIM selector published in DNS.
    #[serde(default = "default_dkim_selector")]
    pub dkim_selector: String,
    /// Networks allowed to relay through the MTA (CIDR); the platform's own when empty.
    #[serde(default)]
    pub relay_networks: Vec<String>,
    #[serde(default = "default_mta_resources")]
    pub resources: Resources,
}

impl Default for Mta {
    fn default() -> Self {
        Mta {
            enabled: true,
            domain: default_mail_domain(),
            hostname: None,
            dkim_selector: default_dkim_selector(),
            relay_networks: Vec::new(),
            resources: default_mta_resources(),
        }
    }
}

fn default_mail_domain() -> String {
    "example.org".to_owned()
}
fn default_dkim_selector() -> String {
    "terroir".to_owned()
}
fn default_mta_resources() -> Resources {
    Resources::new("100m", "128Mi")
}

/// Prometheus, Alertmanager, Grafana and exporters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Monitoring {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// How long Prometheus keeps samples, for example `15d`.
    #[serde(default = "default_retention")]
    pub retention: String,
    /// Prometheus volume size.
    #[serde(default = "default_monitoring_storage")]
    pub storage: String,
    /// Where Alertmanager sends alerts (sent through the platform's own MTA).
    #[serde(default)]
    pub alert_emails: Vec<String>,
    #[serde(default = "yes")]
    pub grafana: bool,
    #[serde(default = "default_monitoring_resources")]
    pub resources: Resources,
}

impl Default for Monitoring {
    fn default() -> Self {
        Monitoring {
            enabled: true,
            retention: default_retention(),
            storage: default_monitoring_storage(),
            alert_emails: Vec::new(),
            grafana: true,
            resources: default_monitoring_resources(),
        }
    }
}

fn default_retention() -> String {
    "15d".to_owned()
}
fn default_monitoring_storage() -> String {
    "10Gi".to_owned()
}
fn default_monitoring_resources() -> Resources {
    Resources::new("250m", "512Mi")
}

/// Database backups to the S3 endpoint in `spec.endpoints.backupS3`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Backups {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Cron schedule (5 fields) of incremental backups, for example `15 2 * * *`.
    #[serde(default = "default_backup_schedule")]
    pub schedule: String,
    /// Cron schedule (5 fields) of full backups, for example `30 1 * * 0`.
    #[serde(default = "default_full_backup_schedule")]
    pub full_schedule: String,
    /// Days a backup is kept.
    #[serde(default = "default_backup_retention")]
    #[schemars(range(min = 1, max = 3650))]
    pub retention_days: u32,
}

impl Default for Backups {
    fn default() -> Self {
        Backups {
            enabled: true,
            schedule: default_backup_schedule(),
            full_schedule: default_full_backup_schedule(),
            retention_days: default_backup_retention(),
        }
    }
}

fn default_backup_schedule() -> String {
    "15 2 * * *".to_owned()
}
fn default_full_backup_schedule() -> String {
    "30 1 * * 0".to_owned()
}
fn default_backup_retention() -> u32 {
    14
}

/// The sovereignty policy and the organisation's declared facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Sovereignty {
    pub policy: Policy,
    #[serde(default)]
    pub declared: DeclaredFacts,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Policy {
    /// Countries data may be in: ISO 3166-1 alpha-2 codes, or the groups `EU` and `EEA`.
    #[schemars(length(min = 1))]
    pub allowed_countries: Vec<String>,
    /// Jurisdictions whose laws must not reach the platform (ISO codes), for example `US` for the
    /// CLOUD Act.
    #[serde(default)]
    pub forbidden_jurisdictions: Vec<String>,
    /// Qualifications every provider must hold.
    #[serde(default)]
    pub required_qualifications: Vec<Qualification>,
    /// `enforce` stops a run on a violation; `warn` reports it and goes on.
    #[serde(default)]
    pub enforcement: Enforcement,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Qualification {
    Secnumcloud,
    Hds,
    Iso27001,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Enforcement {
    #[default]
    Enforce,
    Warn,
}

/// Facts about the organisation that no probe can see; reported as declared, never as verified.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeclaredFacts {
    /// The software publisher operating the platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<Publisher>,
    /// Law governing the hosting contract (ISO country code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosting_contract_law: Option<String>,
    /// Datacentre certifications.
    #[serde(default)]
    pub datacentre_certifications: Vec<Qualification>,
    /// Whether backups and redundancy stay inside the EU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eu_only_redundancy: Option<bool>,
    /// Whether the platform's source code can be audited by the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_code_auditable: Option<bool>,
    /// Purposes of processing (GDPR Art. 30).
    #[serde(default)]
    pub purposes: Vec<String>,
    /// Categories of personal data processed.
    #[serde(default)]
    pub data_categories: Vec<String>,
    /// How the data is encrypted at rest, as declared (checked by `attest --live` on hosts where
    /// a probe can see it: a LUKS device under PostgreSQL's data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_at_rest: Option<EncryptionAtRest>,
}

/// Encryption at rest of the platform's storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EncryptionAtRest {
    /// dm-crypt/LUKS volumes on the hosts.
    Luks,
    /// The cloud provider's volume and object storage encryption.
    Provider,
    /// An encrypting StorageClass on Kubernetes.
    StorageClass,
    /// Not encrypted.
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Publisher {
    pub name: String,
    /// Country of incorporation (ISO code).
    pub country: String,
    /// Share of capital held by EU shareholders, in percent.
    #[schemars(range(min = 0, max = 100))]
    pub eu_shareholding_percent: u32,
    /// Whether the publisher has a subsidiary in the United States.
    pub us_subsidiary: bool,
}

/// Every external dependency the platform reaches, so that each can be judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Endpoints {
    /// Registry images are pulled from, for example `registry.example.fr`.
    pub image_registry: Endpoint,
    /// Mirror registry used when the main one is unreachable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_registry_mirror: Option<Endpoint>,
    /// SMTP relay outgoing mail goes through (`smtp://host:port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_relay: Option<Endpoint>,
    /// Relay used when the first one fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_fallback_relay: Option<Endpoint>,
    /// S3-compatible object storage for backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_s3: Option<S3Endpoint>,
    /// DNS resolvers the hosts use (IP addresses).
    #[serde(default)]
    pub dns_resolvers: Vec<String>,
    /// ACME directory URL of the certificate authority that certifies the public names
    /// (`components.app.publicHost`) on hosts: `apply` obtains and renews the certificate
    /// (HTTP-01 challenge, served on port 80 of the application hosts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme_ca: Option<Endpoint>,
    /// AI/LLM endpoint the application calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai: Option<Endpoint>,
    /// CDN serving public assets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cdn: Option<Endpoint>,
}

/// One declared endpoint with its document key and the name people use for it.
pub struct NamedEndpoint<'a> {
    /// Key under `spec.endpoints`, for example `smtpFallbackRelay`.
    pub key: &'static str,
    /// What it is, for reports: `fallback SMTP relay`.
    pub label: &'static str,
    /// URL schemes it may use.
    pub schemes: &'static [&'static str],
    pub endpoint: &'a Endpoint,
}

impl Endpoints {
    /// Every declared URL endpoint (the S3 backup endpoint and DNS resolvers have shapes of
    /// their own), in document order.
    pub fn named(&self) -> Vec<NamedEndpoint<'_>> {
        const HTTPS: &[&str] = &["https"];
        const REGISTRY: &[&str] = &["https", "oci"];
        const SMTP: &[&str] = &["smtp", "smtps", "submission"];
        let all: [(
            &'static str,
            &'static str,
            &'static [&'static str],
            Option<&Endpoint>,
        ); 7] = [
            (
                "imageRegistry",
                "image registry",
                REGISTRY,
                Some(&self.image_registry),
            ),
            (
                "imageRegistryMirror",
                "image registry mirror",
                REGISTRY,
                self.image_registry_mirror.as_ref(),
            ),
            ("smtpRelay", "SMTP relay", SMTP, self.smtp_relay.as_ref()),
            (
                "smtpFallbackRelay",
                "fallback SMTP relay",
                SMTP,
                self.smtp_fallback_relay.as_ref(),
            ),
            ("acmeCa", "ACME CA", HTTPS, self.acme_ca.as_ref()),
            ("ai", "AI endpoint", HTTPS, self.ai.as_ref()),
            ("cdn", "CDN", HTTPS, self.cdn.as_ref()),
        ];
        all.into_iter()
            .filter_map(|(key, label, schemes, e)| {
                e.map(|endpoint| NamedEndpoint {
                    key,
                    label,
                    schemes,
                    endpoint,
                })
            })
            .collect()
    }
}

/// An external service and what the organisation declares about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Endpoint {
    /// URL (`https://…`, `smtp://…`) or bare host name.
    pub url: String,
    /// Company operating it, as declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// Country it runs in, as declared (ISO code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// PEM of the certificate authority that signed the service's own HTTPS certificate, for a
    /// private service that no public CA vouches for. Only the ACME CA (`acmeCa`) uses it: terroir
    /// talks to that directory itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct S3Endpoint {
    /// S3 API endpoint URL (https).
    pub url: String,
    pub bucket: String,
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// PEM of the certificate authority that signed the endpoint's certificate, for a private S3
    /// service (installed on the database host for pgBackRest). Without it, the host's system CA
    /// bundle is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
}

/// What the operator last did with a `Platform` resource (the status subresource).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlatformStatus {
    /// The `metadata.generation` the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Rendered`, `PolicyCompliant`, `Applied` and `Ready`, in that order.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Objects applied by the last successful reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_objects: Option<i64>,
    /// SHA-256 of the rendered manifests last applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendered_digest: Option<String>,
    /// The ApplySet id labelling every object this resource owns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applyset: Option<String>,
}

/// A status condition, as `metav1.Condition`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// CamelCase reason, for programs.
    pub reason: String,
    /// For people.
    #[serde(default)]
    pub message: String,
    /// RFC 3339 time of the last change of `status`.
    pub last_transition_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
