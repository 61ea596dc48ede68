//! Semantic checks: rules across fields that a JSON Schema cannot say well (names, addresses,
//! sizes, schedules, role coverage, port clashes). All problems are collected, never just the first.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::diagnostic::{Diagnostic, dotted, one_of};
use super::platform::*;
use super::source::SourceMap;

struct Checker<'a> {
    file: &'a str,
    map: &'a SourceMap,
    diags: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn err(&mut self, pointer: &str, message: impl Into<String>, expected: impl Into<String>) {
        let pos = self.map.value(pointer);
        self.diags.push(Diagnostic::new(
            self.file,
            pos,
            &dotted(pointer),
            message,
            expected,
        ));
    }

    fn key_err(&mut self, pointer: &str, message: impl Into<String>, expected: impl Into<String>) {
        let pos = self.map.key(pointer);
        self.diags.push(Diagnostic::new(
            self.file,
            pos,
            &dotted(pointer),
            message,
            expected,
        ));
    }

    fn dns_label(&mut self, pointer: &str, value: &str, max: usize, what: &str) {
        if !is_dns_label(value, max) {
            self.err(
                pointer,
                format!("{what} `{value}` is not a valid name"),
                format!("a DNS label: lowercase letters, digits and `-`, starting with a letter, at most {max} characters"),
            );
        }
    }

    fn host_or_ip(&mut self, pointer: &str, value: &str, what: &str) {
        if value.parse::<IpAddr>().is_err() && !is_dns_name(value) {
            self.err(
                pointer,
                format!("{what} `{value}` is neither an IP address nor a host name"),
                "an IPv4/IPv6 address such as `198.18.0.10` or a DNS name such as `db1.example.fr`",
            );
        }
    }

    fn size(&mut self, pointer: &str, value: &str) {
        if let Err(why) = parse_size(value) {
            self.err(
                pointer,
                format!("size `{value}` {why}"),
                "a positive size such as `512Mi`, `20Gi` or `1Ti`",
            );
        }
    }

    fn cpu(&mut self, pointer: &str, value: &str) {
        if let Err(why) = parse_cpu(value) {
            self.err(
                pointer,
                format!("CPU `{value}` {why}"),
                "a positive CPU amount such as `250m`, `0.5` or `2`",
            );
        }
    }

    fn country(&mut self, pointer: &str, value: &str, groups: bool) {
        let ok = is_country_code(value) || (groups && matches!(value, "EU" | "EEA"));
        if !ok {
            let expected = if groups {
                "an ISO 3166-1 alpha-2 country code such as `FR` or `DE`, or a group: `EU`, `EEA`"
            } else {
                "an ISO 3166-1 alpha-2 country code such as `FR` or `DE`"
            };
            self.err(
                pointer,
                format!("`{value}` is not a country code"),
                expected,
            );
        }
    }

    fn url(&mut self, pointer: &str, value: &str, schemes: &[&str], what: &str) {
        match url::Url::parse(value) {
            Ok(u)
                if schemes.contains(&u.scheme())
                    && (u.scheme() == "file" || u.host_str().is_some_and(|h| !h.is_empty())) => {}
            Ok(u) if !schemes.contains(&u.scheme()) => {
                self.err(
                    pointer,
                    format!("{what} `{value}` uses the `{}` scheme", u.scheme()),
                    format!(
                        "a URL starting with {}",
                        one_of(
                            &schemes
                                .iter()
                                .map(|s| format!("{s}://"))
                                .collect::<Vec<_>>()
                        )
                    ),
                );
            }
            _ => self.err(
                pointer,
                format!("{what} `{value}` is not a valid URL"),
                format!("a URL such as `{}://host.example.fr`", schemes[0]),
            ),
        }
    }

    /// Whether `reference`'s digest, if any, is SHA-256 in 64 lowercase hex; else says so.
    fn image_digest(&mut self, pointer: &str, reference: &str) -> bool {
        match super::image::ImageRef::parse(reference) {
            Ok(_) => true,
            Err(e) => {
                self.err(pointer, format!("image {e}"), super::image::DIGEST_EXPECTED);
                false
            }
        }
    }

    fn resources(&mut self, pointer: &str, r: &Resources) {
        self.cpu(&format!("{pointer}/cpu"), &r.cpu);
        self.size(&format!("{pointer}/memory"), &r.memory);
        if let Some(l) = &r.cpu_limit {
            self.cpu(&format!("{pointer}/cpuLimit"), l);
            if let (Ok(req), Ok(lim)) = (parse_cpu(&r.cpu), parse_cpu(l))
                && lim < req
            {
                self.err(
                    &format!("{pointer}/cpuLimit"),
                    format!("CPU limit `{l}` is below the request `{}`", r.cpu),
                    "a limit at least as large as the request",
                );
            }
        }
        if let Some(l) = &r.memory_limit {
            self.size(&format!("{pointer}/memoryLimit"), l);
            if let (Ok(req), Ok(lim)) = (parse_size(&r.memory), parse_size(l))
                && lim < req
            {
                self.err(
                    &format!("{pointer}/memoryLimit"),
                    format!("memory limit `{l}` is below the request `{}`", r.memory),
                    "a limit at least as large as the request",
                );
            }
        }
    }
}

/// Run every semantic check on a structurally valid document.
pub fn semantic(file: &str, p: &Platform, map: &SourceMap) -> Vec<Diagnostic> {
    let mut c = Checker {
        file,
        map,
        diags: Vec::new(),
    };
    c.dns_label("/metadata/name", &p.metadata.name, 40, "platform name");
    for (k, v) in &p.metadata.labels {
        let ptr = format!("/metadata/labels/{}", super::source::pointer_segment(k));
        if !is_label_key(k) {
            c.key_err(&ptr, format!("label key `{k}` is not valid"), "a Kubernetes label key: an optional DNS prefix and `/`, then at most 63 letters, digits, `-`, `_` or `.`");
        }
        if !is_label_value(v) {
            c.err(&ptr, format!("label value `{v}` is not valid"), "at most 63 letters, digits, `-`, `_` or `.`, starting and ending with a letter or digit");
        }
    }
    check_target(&mut c, p);
    check_components(&mut c, p);
    check_tenants(&mut c, p);
    check_security(&mut c, p);
    check_sovereignty(&mut c, &p.spec.sovereignty);
    check_endpoints(&mut c, p);
    check_images(&mut c, p);
    let mut diags = c.diags;
    diags.sort_by(|a, b| (a.line, a.column, &a.message).cmp(&(b.line, b.column, &b.message)));
    diags.dedup();
    diags
}

/// `spec.images`: each a reference, its digest (when pinned) SHA-256 in lowercase hexadecimal;
/// `components.app.image` is held to the same digest rule.
fn check_images(c: &mut Checker, p: &Platform) {
    for (key, reference) in p.spec.images.entries() {
        let pointer = format!("/spec/images/{key}");
        if c.image_digest(&pointer, reference) && !is_image_ref(reference) {
            c.err(
                &pointer,
                format!("`{reference}` is not a container image reference"),
                "an image such as `terroir/postgres:15-bookworm`, relative to `endpoints.imageRegistry` or starting with a registry host, optionally pinned with `@sha256:<64 hex>`",
            );
        }
    }
    // the rest of the application's reference is checked with the components
    let app = &p.spec.components.app;
    if app.enabled {
        c.image_digest("/spec/components/app/image", &app.image);
    }
}

/// Patroni's REST API (its standard port): health, role and switchover.
pub const PATRONI_PORT: u32 = 8008;
/// etcd's standard ports: clients (Patroni) and the members between themselves.
pub const ETCD_CLIENT_PORT: u32 = 2379;
pub const ETCD_PEER_PORT: u32 = 2380;

/// Settings Patroni writes itself on every member; set here, they would fight it.
const PATRONI_SETTINGS: [&str; 6] = [
    "synchronous_standby_names",
    "synchronous_commit",
    "primary_conninfo",
    "primary_slot_name",
    "hot_standby",
    "wal_level",
];

/// Which roles the enabled components need a host for.
pub fn required_roles(components: &Components) -> Vec<Role> {
    let mut roles = Vec::new();
    if components.app.enabled {
        roles.push(Role::App);
    }
    if components.database.enabled && components.database.external.is_none() {
        roles.push(Role::Database);
    }
    if components.mta.enabled {
        roles.push(Role::Mta);
    }
    if components.monitoring.enabled {
        roles.push(Role::Monitoring);
    }
    roles
}

/// Ports each role listens on, host side (bare metal and VMs). Grafana is not packaged by Debian,
/// so hosts do not run it.
pub fn role_ports(role: Role, components: &Components) -> Vec<(u32, &'static str)> {
    match role {
        // with a public name, nginx fronts the application: HTTPS on 443, and on 80 the ACME
        // challenges and a redirect to HTTPS
        // (an application port of 80 or 443 is refused on its own, in check_components)
        Role::App if components.app.public_host.is_some() => {
            let mut ports = vec![
                (80, "nginx (ACME challenges, redirect to HTTPS)"),
                (443, "nginx (the application over HTTPS)"),
            ];
            if !matches!(components.app.port, 80 | 443) {
                ports.push((components.app.port, "the application"));
            }
            ports
        }
        Role::App => vec![(components.app.port, "the application")],
        Role::Database if components.database.highly_available() => vec![
            (components.database.port, "PostgreSQL"),
            (PATRONI_PORT, "Patroni (REST API)"),
            (9187, "the PostgreSQL exporter"),
        ],
        Role::Database => vec![
            (components.database.port, "PostgreSQL"),
            (9187, "the PostgreSQL exporter"),
        ],
        Role::Consensus if components.database.highly_available() => vec![
            (ETCD_CLIENT_PORT, "etcd (clients)"),
            (ETCD_PEER_PORT, "etcd (peers)"),
        ],
        Role::Consensus => Vec::new(),
        Role::Mta => vec![
            (25, "Postfix (SMTP)"),
            (587, "Postfix (submission)"),
            (9154, "the Postfix exporter"),
        ],
        Role::Monitoring => {
            vec![
                (9090, "Prometheus"),
                (9093, "Alertmanager"),
                (9094, "Alertmanager (cluster)"),
            ]
        }
    }
}

fn check_target(c: &mut Checker, p: &Platform) {
    // exactly one kind is set: the loader refused the document otherwise
    let t = &p.spec.target;
    if let Some(k) = t.kubernetes() {
        // 49 leaves room for the `-node-exporter` namespace beside it
        c.dns_label(
            "/spec/target/kubernetes/namespace",
            &k.namespace,
            49,
            "namespace",
        );
        if let Some(sc) = &k.storage_class
            && !is_dns_name(sc)
        {
            c.err(
                "/spec/target/kubernetes/storageClass",
                format!("storage class `{sc}` is not a valid name"),
                "a lowercase DNS name such as `ssd-encrypted`",
            );
        }
        if let Some(ic) = &k.ingress_class_name
            && !is_dns_name(ic)
        {
            c.err(
                "/spec/target/kubernetes/ingressClassName",
                format!("ingress class `{ic}` is not a valid name"),
                "a lowercase DNS name such as `nginx`",
            );
        }
        if k.ingress_class_name.is_some() && p.spec.components.app.public_host.is_none() {
            c.key_err(
                "/spec/target/kubernetes/ingressClassName",
                "an ingress class is set but the application has no public name to publish",
                "`spec.components.app.publicHost` as well, or no `ingressClassName`",
            );
        }
        if let Some(l) = &k.location {
            c.country(
                "/spec/target/kubernetes/location/country",
                &l.country,
                false,
            );
        }
    }
    if let Some(b) = t.baremetal() {
        check_ssh(c, "/spec/target/baremetal/ssh", &b.ssh);
        c.url(
            "/spec/target/baremetal/packageMirror",
            &b.package_mirror,
            &["http", "https"],
            "package mirror",
        );
        if let Some(l) = &b.location {
            c.country("/spec/target/baremetal/location/country", &l.country, false);
        }
        if b.hosts.is_empty() {
            c.err(
                "/spec/target/baremetal/hosts",
                "no hosts are listed",
                "at least one host with a name, an address and roles",
            );
        }
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        let mut addresses: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, h) in b.hosts.iter().enumerate() {
            let base = format!("/spec/target/baremetal/hosts/{i}");
            c.dns_label(&format!("{base}/name"), &h.name, 63, "host name");
            c.host_or_ip(&format!("{base}/address"), &h.address, "host address");
            if let Some(first) = names.insert(&h.name, i) {
                c.err(
                    &format!("{base}/name"),
                    format!("host name `{}` is used twice (also hosts[{first}])", h.name),
                    "a unique name per host",
                );
            }
            if let Some(first) = addresses.insert(&h.address, i) {
                let replicas = h.roles.contains(&Role::Database)
                    && b.hosts[first].roles.contains(&Role::Database);
                if replicas {
                    c.err(
                        &format!("{base}/address"),
                        format!(
                            "two database replicas on one host: address `{}` is also hosts[{first}] ({})",
                            h.address, b.hosts[first].name
                        ),
                        "each replica on a host of its own, so that losing a host loses one replica",
                    );
                } else {
                    c.err(
                        &format!("{base}/address"),
                        format!(
                            "address `{}` is used twice (also hosts[{first}])",
                            h.address
                        ),
                        "a distinct address per host",
                    );
                }
            }
            if let Some(l) = &h.location {
                c.country(&format!("{base}/location/country"), &l.country, false);
            }
            check_roles(c, &base, &h.roles);
            check_port_clashes(c, &base, &h.roles, &p.spec.components);
        }
        let hosts: Vec<(&str, &[Role])> = b
            .hosts
            .iter()
            .map(|h| (h.name.as_str(), h.roles.as_slice()))
            .collect();
        check_role_coverage(
            c,
            "/spec/target/baremetal/hosts",
            &hosts,
            &p.spec.components,
        );
    }
    if let Some(s) = t.secnumcloud() {
        let base = "/spec/target/secnumcloud";
        if !s
            .region
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
            || s.region.is_empty()
        {
            c.err(
                &format!("{base}/region"),
                format!("region `{}` is not a valid region name", s.region),
                "a provider region such as `cloudgouv-eu-west-1`",
            );
        }
        if s.network_cidr.parse::<ipnet::IpNet>().is_err() {
            c.err(
                &format!("{base}/networkCidr"),
                format!("`{}` is not a network in CIDR notation", s.network_cidr),
                "a CIDR such as `10.42.0.0/16`",
            );
        }
        c.url(
            &format!("{base}/stateBackend/endpoint"),
            &s.state_backend.endpoint,
            &["https"],
            "state backend endpoint",
        );
        if !is_bucket_name(&s.state_backend.bucket) {
            c.err(
                &format!("{base}/stateBackend/bucket"),
                format!("bucket name `{}` is not valid", s.state_backend.bucket),
                "3 to 63 lowercase letters, digits, `-` or `.`",
            );
        }
        if let Some(ssh) = &s.ssh {
            check_ssh(c, &format!("{base}/ssh"), ssh);
        }
        for (i, n) in s.ssh_from.iter().enumerate() {
            if n.parse::<ipnet::IpNet>().is_err() {
                c.err(
                    &format!("{base}/sshFrom/{i}"),
                    format!("`{n}` is not a network in CIDR notation"),
                    "a CIDR such as `203.0.113.7/32` (where terroir runs, a bastion or a VPN)",
                );
            }
        }
        match s.deploy {
            CloudDeploy::Vms => {
                if s.vms.is_empty() {
                    c.err(
                        &format!("{base}/deploy"),
                        "`deploy: vms` but no VMs are listed",
                        "at least one VM under `vms` with a name, an instanceType and roles",
                    );
                }
                if s.ssh.is_none() {
                    c.err(
                        &format!("{base}/deploy"),
                        "`deploy: vms` but no `ssh` settings are given",
                        "`ssh` (user, identityFile, knownHostsFile) to reach the created VMs",
                    );
                }
                let mut names: BTreeMap<&str, usize> = BTreeMap::new();
                for (i, vm) in s.vms.iter().enumerate() {
                    let vb = format!("{base}/vms/{i}");
                    c.dns_label(&format!("{vb}/name"), &vm.name, 63, "VM name");
                    if let Some(first) = names.insert(&vm.name, i) {
                        c.err(
                            &format!("{vb}/name"),
                            format!("VM name `{}` is used twice (also vms[{first}])", vm.name),
                            "a unique name per VM",
                        );
                    }
                    c.size(&format!("{vb}/disk"), &vm.disk);
                    check_roles(c, &vb, &vm.roles);
                    check_port_clashes(c, &vb, &vm.roles, &p.spec.components);
                }
                let hosts: Vec<(&str, &[Role])> = s
                    .vms
                    .iter()
                    .map(|h| (h.name.as_str(), h.roles.as_slice()))
                    .collect();
                if !s.vms.is_empty() {
                    check_role_coverage(c, &format!("{base}/vms"), &hosts, &p.spec.components);
                }
            }
            CloudDeploy::Kubernetes => {
                if s.kubernetes.is_none() {
                    c.err(
                        &format!("{base}/deploy"),
                        "`deploy: kubernetes` but no `kubernetes` cluster settings are given",
                        "`kubernetes` with version, nodeCount and nodeType",
                    );
                }
                if !s.vms.is_empty() {
                    c.key_err(
                        &format!("{base}/vms"),
                        "`vms` are listed but `deploy` is `kubernetes`",
                        "either `deploy: vms` or no `vms`",
                    );
                }
            }
        }
    }
}

fn check_ssh(c: &mut Checker, base: &str, ssh: &SshSettings) {
    if !is_unix_user(&ssh.user) {
        c.err(
            &format!("{base}/user"),
            format!("`{}` is not a valid user name", ssh.user),
            "a Unix user name such as `deploy` (lowercase, at most 32 characters)",
        );
    }
    if ssh.identity_file.trim().is_empty() {
        c.err(
            &format!("{base}/identityFile"),
            "the identity file is empty",
            "the path of a private key file",
        );
    }
    if ssh.known_hosts_file.trim().is_empty() {
        c.err(
            &format!("{base}/knownHostsFile"),
            "the known_hosts file is empty",
            "the path of a known_hosts file",
        );
    }
    if let Some(j) = &ssh.jump_host {
        c.host_or_ip(
            &format!("{base}/jumpHost/address"),
            &j.address,
            "jump host address",
        );
    }
}

fn check_roles(c: &mut Checker, base: &str, roles: &[Role]) {
    let mut seen = BTreeSet::new();
    for (j, r) in roles.iter().enumerate() {
        if !seen.insert(*r) {
            c.err(
                &format!("{base}/roles/{j}"),
                format!("role `{}` is listed twice", r.as_str()),
                "each role once per host",
            );
        }
    }
}

fn check_role_coverage(
    c: &mut Checker,
    pointer: &str,
    hosts: &[(&str, &[Role])],
    components: &Components,
) {
    for role in required_roles(components) {
        let holders: Vec<(usize, &str)> = hosts
            .iter()
            .enumerate()
            .filter(|(_, (_, roles))| roles.contains(&role))
            .map(|(i, (n, _))| (i, *n))
            .collect();
        if holders.is_empty() {
            c.key_err(
                pointer,
                format!(
                    "no host has the `{}` role, which the enabled {} component needs",
                    role.as_str(),
                    role_component(role)
                ),
                format!(
                    "one host with `{}` in its roles (or disable `spec.components.{}`)",
                    role.as_str(),
                    role_component(role)
                ),
            );
        }
    }
    check_replication(c, pointer, hosts, components);
}

fn role_component(role: Role) -> &'static str {
    match role {
        Role::App => "app",
        Role::Database => "database",
        Role::Mta => "mta",
        Role::Monitoring => "monitoring",
        Role::Consensus => "database",
    }
}

/// The hosts whose roles say where the consensus store runs: those given `consensus`, else the
/// database hosts.
pub fn consensus_members<'a>(hosts: &[(&'a str, &'a [Role])]) -> Vec<&'a str> {
    let explicit: Vec<&str> = hosts
        .iter()
        .filter(|(_, r)| r.contains(&Role::Consensus))
        .map(|(n, _)| *n)
        .collect();
    if !explicit.is_empty() {
        return explicit;
    }
    hosts
        .iter()
        .filter(|(_, r)| r.contains(&Role::Database))
        .map(|(n, _)| *n)
        .collect()
}

/// Replicas, synchronous replication and the consensus store, against the hosts that carry them.
fn check_replication(
    c: &mut Checker,
    pointer: &str,
    hosts: &[(&str, &[Role])],
    components: &Components,
) {
    let d = &components.database;
    if !d.enabled || d.external.is_some() {
        return;
    }
    let holders: Vec<usize> = hosts
        .iter()
        .enumerate()
        .filter(|(_, (_, roles))| roles.contains(&Role::Database))
        .map(|(i, _)| i)
        .collect();
    if !holders.is_empty() && holders.len() as u32 != d.replicas {
        let names: Vec<&str> = holders.iter().map(|i| hosts[*i].0).collect();
        let message = format!(
            "the database has {} replica{} but {} host{} the `database` role ({})",
            d.replicas,
            if d.replicas == 1 { "" } else { "s" },
            holders.len(),
            if holders.len() == 1 { " has" } else { "s have" },
            names.join(", ")
        );
        let expected = format!(
            "one database host per replica: `spec.components.database.replicas: {}`, or {} host{} with the `database` role",
            holders.len(),
            d.replicas,
            if d.replicas == 1 { "" } else { "s" }
        );
        if c.map.has("/spec/components/database/replicas") {
            c.err("/spec/components/database/replicas", message, expected);
        } else {
            let at = holders
                .get(d.replicas as usize)
                .or(holders.last())
                .copied()
                .unwrap_or(0);
            c.err(&format!("{pointer}/{at}/roles"), message, expected);
        }
    }
    let consensus_listed = hosts.iter().any(|(_, r)| r.contains(&Role::Consensus));
    if !d.highly_available() {
        if let Some(i) = hosts.iter().position(|(_, r)| r.contains(&Role::Consensus)) {
            c.err(
                &format!("{pointer}/{i}/roles"),
                "a host has the `consensus` role but the database has one replica: nothing to elect",
                "`spec.components.database.replicas` of 2 or more, or no `consensus` role",
            );
        }
        return;
    }
    let members = consensus_members(hosts);
    if members.len() < 3 || members.len().is_multiple_of(2) {
        let why = if members.len() < 3 {
            "fewer than three members cannot lose one and still elect a primary"
        } else {
            "an even number of members tolerates no more failures than one fewer, and can split in two halves"
        };
        let message = format!(
            "the consensus store (etcd) would have {} member{} ({}): {why}",
            members.len(),
            if members.len() == 1 { "" } else { "s" },
            members.join(", ")
        );
        let expected = if consensus_listed {
            "an odd number of hosts, at least three, with the `consensus` role"
        } else {
            "an odd number of database hosts, at least three, or the `consensus` role on an odd number of hosts (at least three)"
        };
        let at = hosts
            .iter()
            .position(|(_, r)| {
                r.contains(if consensus_listed {
                    &Role::Consensus
                } else {
                    &Role::Database
                })
            })
            .unwrap_or(0);
        c.err(&format!("{pointer}/{at}/roles"), message, expected);
    }
}

fn check_port_clashes(c: &mut Checker, base: &str, roles: &[Role], components: &Components) {
    let mut used: BTreeMap<u32, &str> = BTreeMap::new();
    // node exporter runs on every host
    used.insert(9100, "the node exporter");
    // a role listed twice is reported by check_roles, not as a clash with itself
    let unique: BTreeSet<&Role> = roles.iter().collect();
    for role in unique {
        for (port, what) in role_ports(*role, components) {
            if let Some(other) = used.insert(port, what) {
                c.err(&format!("{base}/roles"), format!("port {port} is needed by both {other} and {what} on this host"), "roles whose ports do not clash (change `spec.components.app.port` or move a role to another host)");
            }
        }
    }
}

/// Environment variables the blueprint derives from the document; users set them there instead.
const RESERVED_APP_ENV: [&str; 8] = [
    "APP_PORT",
    "LOG_LEVEL",
    "TERROIR_ENVIRONMENT",
    "TERROIR_PLATFORM",
    "MAIL_FROM_DOMAIN",
    "PUBLIC_HOST",
    "AI_ENDPOINT",
    "APP_DATA_DIR",
];

fn check_components(c: &mut Checker, p: &Platform) {
    let comp = &p.spec.components;
    let base = "/spec/components";
    if comp.app.enabled {
        let a = &comp.app;
        if !is_image_ref(&a.image) && super::image::ImageRef::parse(&a.image).is_ok() {
            c.err(
                &format!("{base}/app/image"),
                format!("`{}` is not a container image reference", a.image),
                "an image such as `registry.example.fr/team/app:1.2.3` or pinned with `@sha256:…`",
            );
        }
        if !a.health_path.starts_with('/') {
            c.err(
                &format!("{base}/app/healthPath"),
                format!("health path `{}` does not start with `/`", a.health_path),
                "an HTTP path such as `/healthz`",
            );
        }
        if let Some(h) = &a.public_host {
            if !is_dns_name(h) {
                c.err(
                    &format!("{base}/app/publicHost"),
                    format!("`{h}` is not a host name"),
                    "a DNS name such as `crm.example.fr`",
                );
            }
            if p.spec.target.kubernetes().is_none() && (a.port == 80 || a.port == 443) {
                c.err(&format!("{base}/app/port"), format!("port {} is nginx's on the application hosts: with a public host name, nginx serves HTTPS on 443 and HTTP on 80 in front of the application", a.port), "another port for the application itself, such as 8080");
            }
        }
        for k in a.env.keys() {
            let ptr = format!("{base}/app/env/{}", super::source::pointer_segment(k));
            if !is_env_name(k) {
                c.key_err(
                    &ptr,
                    format!("`{k}` is not a valid environment variable name"),
                    "letters, digits and `_`, not starting with a digit",
                );
            } else if RESERVED_APP_ENV.contains(&k.as_str())
                || k.starts_with("DATABASE_")
                || k.starts_with("SMTP_")
            {
                c.key_err(&ptr, format!("`{k}` is set by terroir from the document"), "another name (terroir sets APP_PORT, LOG_LEVEL, TERROIR_*, DATABASE_*, SMTP_*, MAIL_FROM_DOMAIN, PUBLIC_HOST, AI_ENDPOINT, APP_DATA_DIR)");
            }
        }
        if let Some(art) = &a.artifact {
            c.url(
                &format!("{base}/app/artifact/url"),
                &art.url,
                &["https", "http", "file"],
                "artifact URL",
            );
            if art.sha256.len() != 64 || !art.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                c.err(
                    &format!("{base}/app/artifact/sha256"),
                    format!("`{}` is not a SHA-256 digest", art.sha256),
                    "64 hexadecimal digits",
                );
            }
        }
        c.resources(&format!("{base}/app/resources"), &a.resources);
    }
    if comp.database.enabled {
        let d = &comp.database;
        if !is_sql_identifier(&d.name) {
            c.err(
                &format!("{base}/database/name"),
                format!("database name `{}` is not a plain SQL identifier", d.name),
                "lowercase letters, digits and `_`, starting with a letter, at most 63 characters",
            );
        }
        if !is_sql_identifier(&d.user) {
            c.err(
                &format!("{base}/database/user"),
                format!("database user `{}` is not a plain SQL identifier", d.user),
                "lowercase letters, digits and `_`, starting with a letter, at most 63 characters",
            );
        }
        if let Some(ext) = &d.external {
            c.host_or_ip(
                &format!("{base}/database/external/host"),
                &ext.host,
                "external database host",
            );
        } else {
            c.size(&format!("{base}/database/storage"), &d.storage);
            if !is_pg_memory(&d.shared_buffers) {
                c.err(
                    &format!("{base}/database/sharedBuffers"),
                    format!("`{}` is not a PostgreSQL memory size", d.shared_buffers),
                    "a positive amount with a unit: `kB`, `MB`, `GB` or `TB`, such as `256MB`",
                );
            }
            for k in d.settings.keys() {
                if !k.chars().all(|ch| {
                    ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_' || ch == '.'
                }) || k.is_empty()
                {
                    c.key_err(
                        &format!(
                            "{base}/database/settings/{}",
                            super::source::pointer_segment(k)
                        ),
                        format!("`{k}` is not a PostgreSQL setting name"),
                        "a lowercase setting name such as `work_mem`",
                    );
                } else if k.starts_with("ssl") {
                    // written after terroir's own, the setting would win over them
                    c.key_err(
                        &format!(
                            "{base}/database/settings/{}",
                            super::source::pointer_segment(k)
                        ),
                        format!(
                            "`{k}` is terroir's: PostgreSQL's TLS is TLS 1.2 or later with ECDHE and AEAD suites only (ANSSI's recommendations), with the platform CA's certificates"
                        ),
                        "a setting other than `ssl*` (PostgreSQL's TLS settings cannot be changed here)",
                    );
                }
            }
            c.resources(&format!("{base}/database/resources"), &d.resources);
            if d.synchronous == Some(true) && !d.highly_available() {
                c.err(
                    &format!("{base}/database/synchronous"),
                    "synchronous replication is asked for but the database has one replica: no standby could acknowledge a commit",
                    "`replicas: 2` or more, or no `synchronous`",
                );
            }
            if d.highly_available() {
                for k in d
                    .settings
                    .keys()
                    .filter(|k| PATRONI_SETTINGS.contains(&k.as_str()))
                {
                    c.key_err(
                        &format!(
                            "{base}/database/settings/{}",
                            super::source::pointer_segment(k)
                        ),
                        format!("`{k}` is set by Patroni on every member of a replicated database"),
                        "a setting Patroni does not manage (replication follows `replicas` and `synchronous`)",
                    );
                }
            }
        }
    }
    if comp.mta.enabled {
        let m = &comp.mta;
        if !is_dns_name(&m.domain) || !m.domain.contains('.') {
            c.err(
                &format!("{base}/mta/domain"),
                format!("mail domain `{}` is not a domain name", m.domain),
                "a domain such as `crm.example.fr`",
            );
        }
        if let Some(h) = &m.hostname
            && !is_dns_name(h)
        {
            c.err(
                &format!("{base}/mta/hostname"),
                format!("`{h}` is not a host name"),
                "a DNS name such as `mail.crm.example.fr`",
            );
        }
        if !is_dns_label(&m.dkim_selector, 63) {
            c.err(
                &format!("{base}/mta/dkimSelector"),
                format!("DKIM selector `{}` is not a DNS label", m.dkim_selector),
                "lowercase letters, digits and `-`",
            );
        }
        // several MTA hosts each sign under `<selector>-<host>` (opendkim.conf): a DNS label too
        let mtas: Vec<&str> = p
            .spec
            .target
            .baremetal()
            .map(|b| {
                b.hosts
                    .iter()
                    .filter(|h| h.roles.contains(&Role::Mta))
                    .map(|h| h.name.as_str())
                    .collect()
            })
            .unwrap_or_default();
        for h in mtas.iter().filter(|_| mtas.len() > 1) {
            let selector = format!("{}-{h}", m.dkim_selector);
            if selector.len() > 63 {
                c.err(
                    &format!("{base}/mta/dkimSelector"),
                    format!("DKIM selector `{selector}` of MTA host {h} is longer than a DNS label (63)"),
                    "a shorter selector or host name: with several MTA hosts each signs under `<selector>-<host>`",
                );
            }
        }
        for (i, n) in m.relay_networks.iter().enumerate() {
            if n.parse::<ipnet::IpNet>().is_err() {
                c.err(
                    &format!("{base}/mta/relayNetworks/{i}"),
                    format!("`{n}` is not a network in CIDR notation"),
                    "a CIDR such as `198.18.0.0/24`",
                );
            }
        }
        c.resources(&format!("{base}/mta/resources"), &m.resources);
    }
    if comp.monitoring.enabled {
        let m = &comp.monitoring;
        if !is_prom_duration(&m.retention) {
            c.err(
                &format!("{base}/monitoring/retention"),
                format!("`{}` is not a duration", m.retention),
                "a positive duration such as `15d`, `12h` or `4w`",
            );
        }
        c.size(&format!("{base}/monitoring/storage"), &m.storage);
        for (i, e) in m.alert_emails.iter().enumerate() {
            if !is_email(e) {
                c.err(
                    &format!("{base}/monitoring/alertEmails/{i}"),
                    format!("`{e}` is not an e-mail address"),
                    "an address such as `ops@example.fr`",
                );
            }
        }
        if !m.alert_emails.is_empty() && !comp.mta.enabled {
            c.key_err(
                &format!("{base}/monitoring/alertEmails"),
                "alert e-mails are set but the MTA is disabled, so no alert could be sent",
                "`spec.components.mta.enabled: true`, or no `alertEmails`",
            );
        }
        c.resources(&format!("{base}/monitoring/resources"), &m.resources);
    }
    if comp.backups.enabled {
        if let Err(why) = super::schedule::Cron::parse(&comp.backups.schedule) {
            c.err(&format!("{base}/backups/schedule"), format!("schedule `{}` is not a valid cron expression: {why}", comp.backups.schedule), "five cron fields: minute hour day-of-month month day-of-week, such as `15 2 * * *`");
        }
        if let Err(why) = super::schedule::Cron::parse(&comp.backups.full_schedule) {
            c.err(&format!("{base}/backups/fullSchedule"), format!("schedule `{}` is not a valid cron expression: {why}", comp.backups.full_schedule), "five cron fields: minute hour day-of-month month day-of-week, such as `30 1 * * 0`");
        }
        // On a cluster the two schedules are two CronJobs, which nothing serializes (on hosts a
        // lock does): a minute they share would start two backups of the same stanza at once.
        if p.spec.target.on_kubernetes()
            && let (Ok(full), Ok(incr)) = (
                crate::document::schedule::Cron::parse(&comp.backups.full_schedule),
                crate::document::schedule::Cron::parse(&comp.backups.schedule),
            )
            && let Some((day, time)) = crate::document::schedule::first_shared_run(&full, &incr)
        {
            c.err(
                &format!("{base}/backups/schedule"),
                format!("the incremental schedule `{}` and the full schedule `{}` both fire on {day} at {time}: on Kubernetes that starts two backups of the same database at once", comp.backups.schedule, comp.backups.full_schedule),
                "schedules that never share a minute, such as `30 2 * * *` beside the full backups' `30 1 * * 0`",
            );
        }
        if !comp.database.enabled {
            c.key_err(
                &format!("{base}/backups"),
                "backups are enabled but there is no database to back up",
                "`spec.components.database.enabled: true`, or `backups.enabled: false`",
            );
        }
        if p.spec.endpoints.backup_s3.is_none() {
            c.key_err(
                &format!("{base}/backups"),
                "backups are enabled but no backup storage is declared",
                "`spec.endpoints.backupS3` (url, bucket, region), or `backups.enabled: false`",
            );
        }
    }
}

fn check_tenants(c: &mut Checker, p: &Platform) {
    let d = &p.spec.components.database;
    let mut seen = std::collections::BTreeSet::new();
    for (i, t) in p.spec.tenants.iter().enumerate() {
        let ptr = format!("/spec/tenants/{i}/name");
        if !is_sql_identifier(&t.name) {
            c.err(&ptr, format!("tenant name `{}` is not a plain SQL identifier", t.name), "lowercase letters, digits and `_`, starting with a letter, at most 63 characters (the tenant's database and role are named after it)");
        } else if ["postgres", "template0", "template1", "prometheus", "public"]
            .contains(&t.name.as_str())
            || t.name.starts_with("pg_")
        {
            c.err(
                &ptr,
                format!(
                    "tenant name `{}` is reserved by PostgreSQL or the platform",
                    t.name
                ),
                "another name",
            );
        } else if t.name == d.name || t.name == d.user {
            c.err(
                &ptr,
                format!(
                    "tenant name `{}` is the application's own database or role",
                    t.name
                ),
                "a name other than spec.components.database.name and .user",
            );
        } else if !seen.insert(t.name.as_str()) {
            c.err(
                &ptr,
                format!("tenant `{}` is listed twice", t.name),
                "each tenant once",
            );
        }
    }
    // On Kubernetes each tenant has a namespace of its own, named after the platform's.
    if p.spec.target.on_kubernetes() {
        let platform_ns = p
            .spec
            .target
            .kubernetes()
            .map(|k| k.namespace.clone())
            .unwrap_or_else(|| p.metadata.name.clone());
        for (i, t) in p
            .spec
            .tenants
            .iter()
            .enumerate()
            .filter(|(_, t)| is_sql_identifier(&t.name))
        {
            let ns = t.namespace(&platform_ns);
            if ns.len() > 63 {
                c.err(
                    &format!("/spec/tenants/{i}/name"),
                    format!("tenant `{}` would live in namespace `{ns}`, {} characters long", t.name, ns.len()),
                    format!("a namespace name of at most 63 characters: `<namespace>-<tenant>`, so a tenant name of at most {} characters here", 63usize.saturating_sub(platform_ns.len() + 1)),
                );
            } else if !is_dns_label(&ns, 63) {
                c.err(
                    &format!("/spec/tenants/{i}/name"),
                    format!("tenant `{}` would live in namespace `{ns}`, which is not a DNS label", t.name),
                    "a tenant name that does not end with `_` (its namespace is `<namespace>-<tenant>` with `_` as `-`)",
                );
            }
        }
    }
    if !p.spec.tenants.is_empty() && !d.enabled {
        c.err(
            "/spec/tenants",
            "tenants are listed but the database is disabled",
            "spec.components.database enabled: each tenant gets its own database",
        );
    }
}

/// The personal tables and the secret store's recipients.
fn check_security(c: &mut Checker, p: &Platform) {
    let d = &p.spec.components.database;
    let mut seen = std::collections::BTreeSet::new();
    for (i, t) in d.personal_tables.iter().enumerate() {
        let ptr = format!("/spec/components/database/personalTables/{i}");
        let parts: Vec<&str> = t.split('.').collect();
        if parts.len() > 2 || !parts.iter().all(|p| is_sql_identifier(p)) {
            c.err(&ptr, format!("`{t}` is not a table name"), "`table` or `schema.table`, each a plain SQL identifier (lowercase letters, digits and `_`)");
        } else if !seen.insert(if parts.len() == 1 {
            format!("public.{t}")
        } else {
            t.clone()
        }) {
            c.err(
                &ptr,
                format!("table `{t}` is listed twice"),
                "each table once",
            );
        }
    }
    if !d.personal_tables.is_empty() && !d.enabled {
        c.key_err(
            "/spec/components/database/personalTables",
            "personal tables are listed but the database is disabled",
            "`spec.components.database.enabled: true`, or no `personalTables`",
        );
    }
    for (i, r) in p.spec.secrets.recipients.iter().enumerate() {
        if r.parse::<age::x25519::Recipient>().is_err() {
            c.err(&format!("/spec/secrets/recipients/{i}"), format!("`{r}` is not an age recipient"), "an age public key such as `age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p` (from `age-keygen -y`)");
        }
    }
}

fn check_sovereignty(c: &mut Checker, s: &Sovereignty) {
    let base = "/spec/sovereignty";
    for (i, country) in s.policy.allowed_countries.iter().enumerate() {
        c.country(
            &format!("{base}/policy/allowedCountries/{i}"),
            country,
            true,
        );
    }
    for (i, j) in s.policy.forbidden_jurisdictions.iter().enumerate() {
        c.country(
            &format!("{base}/policy/forbiddenJurisdictions/{i}"),
            j,
            false,
        );
        if s.policy.allowed_countries.contains(j) {
            c.err(
                &format!("{base}/policy/forbiddenJurisdictions/{i}"),
                format!("`{j}` is both allowed and forbidden"),
                "a jurisdiction that is not also in `allowedCountries`",
            );
        }
    }
    if let Some(p) = &s.declared.publisher {
        c.country(
            &format!("{base}/declared/publisher/country"),
            &p.country,
            false,
        );
    }
    if let Some(law) = &s.declared.hosting_contract_law {
        c.country(&format!("{base}/declared/hostingContractLaw"), law, false);
    }
}

fn check_endpoints(c: &mut Checker, p: &Platform) {
    let e = &p.spec.endpoints;
    let base = "/spec/endpoints";
    for n in e.named() {
        let ptr = format!("{base}/{}", n.key);
        let ep = n.endpoint;
        if ep.url.contains("://") {
            c.url(&format!("{ptr}/url"), &ep.url, n.schemes, n.key);
        } else if !is_dns_name(ep.url.split(':').next().unwrap_or_default()) {
            c.err(
                &format!("{ptr}/url"),
                format!("`{}` is neither a URL nor a host name", ep.url),
                format!(
                    "a URL such as `{}://host.example.fr` or a host name",
                    n.schemes[0]
                ),
            );
        }
        if let Some(country) = &ep.country {
            c.country(&format!("{ptr}/country"), country, false);
        }
        if let Some(pem) = &ep.ca_certificate {
            if n.key != "acmeCa" {
                c.key_err(&format!("{ptr}/caCertificate"), format!("`caCertificate` is not used for the {}", n.label), "`caCertificate` on `acmeCa` only (terroir reaches that directory itself); other endpoints are reached by the hosts and their system CA bundle");
            } else if !is_pem_certificate(pem) {
                c.err(&format!("{ptr}/caCertificate"), "this is not a PEM certificate", "one or more `-----BEGIN CERTIFICATE-----` blocks (the CA that signed the ACME directory's HTTPS certificate)");
            }
        }
    }
    if e.smtp_fallback_relay.is_some() && e.smtp_relay.is_none() {
        c.key_err(
            &format!("{base}/smtpFallbackRelay"),
            "a fallback SMTP relay is set without a main relay",
            "`spec.endpoints.smtpRelay` as well",
        );
    }
    if let Some(s3) = &e.backup_s3 {
        c.url(
            &format!("{base}/backupS3/url"),
            &s3.url,
            &["https", "http"],
            "backup S3 endpoint",
        );
        if !is_bucket_name(&s3.bucket) {
            c.err(
                &format!("{base}/backupS3/bucket"),
                format!("bucket name `{}` is not valid", s3.bucket),
                "3 to 63 lowercase letters, digits, `-` or `.`",
            );
        }
        if let Some(country) = &s3.country {
            c.country(&format!("{base}/backupS3/country"), country, false);
        }
        // pgBackRest speaks HTTPS only, and checks the certificate
        if p.spec.components.backups.enabled && s3.url.starts_with("http://") {
            c.err(
                &format!("{base}/backupS3/url"),
                format!(
                    "`{}` is plain HTTP, and backups (pgBackRest) reach S3 over HTTPS only",
                    s3.url
                ),
                "an `https://` URL (for a private S3 service, its CA in `caCertificate`)",
            );
        }
        if let Some(pem) = &s3.ca_certificate
            && !is_pem_certificate(pem)
        {
            c.err(&format!("{base}/backupS3/caCertificate"), "this is not a PEM certificate", "one or more `-----BEGIN CERTIFICATE-----` blocks (the CA that signed the S3 endpoint's certificate)");
        }
    }
    for (i, r) in e.dns_resolvers.iter().enumerate() {
        if r.parse::<IpAddr>().is_err() {
            c.err(
                &format!("{base}/dnsResolvers/{i}"),
                format!("`{r}` is not an IP address"),
                "an IPv4 or IPv6 address such as `198.18.0.53`",
            );
        }
    }
    // Hosts get them in /etc/resolv.conf, where glibc silently ignores every nameserver past the
    // third: a fourth resolver would be declared, drilled, and never asked.
    let hosts_resolve = match &p.spec.target {
        Target::Baremetal(_) => true,
        Target::Secnumcloud(sc) => sc.deploy == CloudDeploy::Vms,
        Target::Kubernetes(_) => false,
    };
    if hosts_resolve && e.dns_resolvers.len() > MAX_RESOLV_CONF_NAMESERVERS {
        c.err(
            &format!("{base}/dnsResolvers/{MAX_RESOLV_CONF_NAMESERVERS}"),
            format!(
                "{} DNS resolvers are declared, but the hosts' resolver (glibc) reads at most {MAX_RESOLV_CONF_NAMESERVERS} nameservers from /etc/resolv.conf and would never ask this one or any after it",
                e.dns_resolvers.len()
            ),
            format!("at most {MAX_RESOLV_CONF_NAMESERVERS} DNS resolvers on hosts"),
        );
    }
}

/// glibc's MAXNS: the nameservers of /etc/resolv.conf it uses.
const MAX_RESOLV_CONF_NAMESERVERS: usize = 3;

// ---- value rules, shared with the resolver ----

pub fn is_dns_label(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.starts_with(|ch: char| ch.is_ascii_lowercase())
        && !s.ends_with('-')
        && s.chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
}

pub fn is_dns_name(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
        })
        && !s
            .split('.')
            .next_back()
            .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
}

fn is_country_code(s: &str) -> bool {
    s.len() == 2 && s.chars().all(|ch| ch.is_ascii_uppercase())
}

fn is_unix_user(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.starts_with(|ch: char| ch.is_ascii_lowercase() || ch == '_')
        && s.chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_' || ch == '-')
}

fn is_sql_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|ch: char| ch.is_ascii_lowercase())
        && s.chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
}

fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|ch: char| ch.is_ascii_digit())
        && s.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

fn is_bucket_name(s: &str) -> bool {
    (3..=63).contains(&s.len())
        && s.chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-' || ch == '.')
}

fn is_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !local.contains(char::is_whitespace)
                && is_dns_name(domain)
                && domain.contains('.')
        }
        None => false,
    }
}

fn is_label_key(k: &str) -> bool {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    prefix.is_none_or(is_dns_name) && !name.is_empty() && is_label_value(name)
}

fn is_label_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.starts_with(|ch: char| ch.is_ascii_alphanumeric())
            && v.ends_with(|ch: char| ch.is_ascii_alphanumeric())
            && v.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.')))
}

pub fn is_image_ref(s: &str) -> bool {
    if s.is_empty()
        || s.contains(char::is_whitespace)
        || s.starts_with(['/', ':', '@'])
        || s.ends_with(['/', ':', '@'])
    {
        return false;
    }
    let (name, digest) = match s.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (s, None),
    };
    if let Some(d) = digest {
        match d.strip_prefix("sha256:") {
            Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {}
            _ => return false,
        }
    }
    let last = name.rsplit('/').next().unwrap_or(name);
    let repo_part = match last.split_once(':') {
        Some((_, tag)) if tag.is_empty() || tag.len() > 128 => return false,
        Some((r, _)) => r,
        None => last,
    };
    !repo_part.is_empty()
        && repo_part.chars().all(|ch| {
            ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '.' | '_' | '-')
        })
}

fn is_pg_memory(s: &str) -> bool {
    let digits: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
    let unit = &s[digits.len()..];
    !digits.is_empty()
        && digits.parse::<u64>().is_ok_and(|n| n > 0)
        && matches!(unit, "kB" | "MB" | "GB" | "TB")
}

fn is_prom_duration(s: &str) -> bool {
    let digits: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
    let unit = &s[digits.len()..];
    !digits.is_empty()
        && digits.parse::<u64>().is_ok_and(|n| n > 0)
        && matches!(unit, "ms" | "s" | "m" | "h" | "d" | "w" | "y")
}

/// Bytes in a Kubernetes-style size (`512Mi`, `20Gi`, `1G`).
pub fn parse_size(s: &str) -> Result<u128, &'static str> {
    if s.starts_with('-') {
        return Err("is negative");
    }
    let num: String = s
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let unit = &s[num.len()..];
    let factor: u128 = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        _ => return Err("has an unknown unit"),
    };
    let value: f64 = num.parse().map_err(|_| "is not a number")?;
    if value <= 0.0 {
        return Err("is zero");
    }
    Ok((value * factor as f64) as u128)
}

/// Millicores in a CPU amount (`250m`, `0.5`, `2`).
pub fn parse_cpu(s: &str) -> Result<u64, &'static str> {
    if s.starts_with('-') {
        return Err("is negative");
    }
    let (num, milli) = match s.strip_suffix('m') {
        Some(n) => (n, true),
        None => (s, false),
    };
    let value: f64 = num.parse().map_err(|_| "is not a number")?;
    if !value.is_finite() {
        return Err("is not a number");
    }
    if value <= 0.0 {
        return Err("is zero");
    }
    Ok(if milli {
        value as u64
    } else {
        (value * 1000.0) as u64
    })
}

/// One or more PEM certificates, and nothing else that claims to be one.
fn is_pem_certificate(pem: &str) -> bool {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem.as_bytes()).collect();
    !certs.is_empty() && certs.iter().all(|r| r.is_ok())
}
