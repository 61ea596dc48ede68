//! Where each role runs, host by host with the host's own location, and whether the database's
//! replicas stand in distinct sites inside the EU: the geographic redundancy criterion of the
//! sovereignty grid rests on it, and the attestation and the runbooks describe it.
//!
//! A *site* is a declared location: two hosts stand in distinct sites when their countries or
//! operators differ, or when both name a `site` and the names differ. A host whose location names
//! no `site` counts as the same site as any other host of its country and operator: nothing says
//! it stands elsewhere. Sites come from the document (the target's `location`, or the host's
//! own); terroir renders one PostgreSQL server per database host, so the replicas stand where
//! their hosts are declared, and `verify --live` judges each host against its own location.

use serde::Serialize;

use super::in_eu;
use crate::document::{CloudDeploy, DeclaredLocation, Platform, Role, Target};
use crate::policy::locality::catalog::Catalog as Providers;
use crate::policy::locality::regions::{cloud_operator_id, country_of_region};

/// The platform's topology: every role with its hosts, and the database's replication.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Topology {
    /// `hosts` (bare metal, cloud VMs) or `cluster` (Kubernetes).
    pub kind: &'static str,
    /// Every host in the document's order, with its roles and location.
    pub hosts: Vec<PlacedHost>,
    /// Each role with its hosts, in the order of `Role::ALL`; roles no host carries are left out.
    pub roles: Vec<RoleHosts>,
    pub database: DatabaseTopology,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleHosts {
    pub role: &'static str,
    pub hosts: Vec<PlacedHost>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacedHost {
    pub name: String,
    /// Empty for cloud VMs until they are provisioned.
    pub address: String,
    /// What it runs, `consensus` included when the database hosts carry the etcd members.
    pub roles: Vec<&'static str>,
    /// The host's effective location: its own, else the target's; none when neither is declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<DeclaredLocation>,
    /// Whether the location is the host's own (`hosts[].location`) rather than the target's.
    pub own_location: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseTopology {
    /// `terroir` (PostgreSQL deployed by terroir), `external` or `none`.
    pub managed_by: &'static str,
    /// PostgreSQL servers: one primary, the others standbys.
    pub replicas: u32,
    /// Commits wait for a standby's acknowledgement.
    pub synchronous: bool,
    /// The database hosts, one replica each (empty on Kubernetes: the replicas are pods).
    pub hosts: Vec<String>,
    /// The consensus store's members (etcd) that elect the primary; empty with one replica.
    pub consensus: Vec<String>,
    /// How many consensus members may be lost with a primary still elected (a majority left).
    pub consensus_tolerates: usize,
    /// The distinct sites the replicas stand in.
    pub sites: Vec<Site>,
    /// The distinct sites the consensus members stand in: a site holding a majority of them
    /// takes the election with it when it is lost.
    pub consensus_sites: Vec<Site>,
    pub redundancy: Redundancy,
}

/// One site and the database hosts in it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Site {
    pub country: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    pub hosts: Vec<String>,
}

impl Site {
    /// `FR, OVHcloud, Roubaix RBX-8`.
    pub fn label(&self) -> String {
        [
            Some(self.country.as_str()),
            self.operator.as_deref(),
            self.site.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// What the topology establishes about geographic redundancy inside the EU.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Redundancy {
    /// `verified`: the replicas stand in two or more sites, all in the EU; `outside-eu`: the
    /// replicas stand in two or more sites, one of them outside the EU; `not-established`: one
    /// site, one replica, or a location not declared (the organisation's declaration stands).
    pub outcome: &'static str,
    /// Why, naming the hosts and their sites.
    pub reason: String,
}

impl Redundancy {
    /// The grid's answer: Some(true) when verified, Some(false) when a replica stands outside
    /// the EU, None when the topology does not establish it.
    pub fn fact(&self) -> Option<bool> {
        match self.outcome {
            "verified" => Some(true),
            "outside-eu" => Some(false),
            _ => None,
        }
    }
}

/// The topology of `p`.
pub fn of(p: &Platform) -> Topology {
    let db = &p.spec.components.database;
    let ha = db.highly_available();
    let (kind, hosts): (&'static str, Vec<(PlacedHost, Vec<Role>)>) = match &p.spec.target {
        Target::Baremetal(b) => {
            let declared: Vec<(&str, &[Role])> = b
                .hosts
                .iter()
                .map(|h| (h.name.as_str(), h.roles.as_slice()))
                .collect();
            let members = crate::document::validate::consensus_members(&declared);
            let hosts = b
                .hosts
                .iter()
                .map(|h| {
                    let mut roles = h.roles.clone();
                    if ha && members.contains(&h.name.as_str()) && !roles.contains(&Role::Consensus)
                    {
                        roles.push(Role::Consensus);
                    }
                    (
                        PlacedHost {
                            name: h.name.clone(),
                            address: h.address.clone(),
                            roles: names(&roles),
                            location: h.location(b.location.as_ref()).cloned(),
                            own_location: h.location.is_some(),
                        },
                        roles,
                    )
                })
                .collect();
            ("hosts", hosts)
        }
        Target::Secnumcloud(s) if s.deploy == CloudDeploy::Vms => {
            let location = cloud_location(s);
            let declared: Vec<(&str, &[Role])> = s
                .vms
                .iter()
                .map(|v| (v.name.as_str(), v.roles.as_slice()))
                .collect();
            let members = crate::document::validate::consensus_members(&declared);
            let hosts = s
                .vms
                .iter()
                .map(|v| {
                    let mut roles = v.roles.clone();
                    if ha && members.contains(&v.name.as_str()) && !roles.contains(&Role::Consensus)
                    {
                        roles.push(Role::Consensus);
                    }
                    (
                        PlacedHost {
                            name: v.name.clone(),
                            address: String::new(),
                            roles: names(&roles),
                            location: location.clone(),
                            own_location: false,
                        },
                        roles,
                    )
                })
                .collect();
            ("hosts", hosts)
        }
        Target::Secnumcloud(_) | Target::Kubernetes(_) => ("cluster", Vec::new()),
    };
    let roles: Vec<RoleHosts> = Role::ALL
        .iter()
        .map(|role| RoleHosts {
            role: role.as_str(),
            hosts: hosts
                .iter()
                .filter(|(_, roles)| roles.contains(role))
                .map(|(h, _)| h.clone())
                .collect(),
        })
        .filter(|r| !r.hosts.is_empty())
        .collect();
    let managed_by = if !db.enabled {
        "none"
    } else if db.external.is_some() {
        "external"
    } else {
        "terroir"
    };
    let db_hosts: Vec<&PlacedHost> = hosts
        .iter()
        .filter(|(_, roles)| roles.contains(&Role::Database))
        .map(|(h, _)| h)
        .collect();
    let members: Vec<&PlacedHost> = if ha && managed_by == "terroir" {
        hosts
            .iter()
            .filter(|(_, roles)| roles.contains(&Role::Consensus))
            .map(|(h, _)| h)
            .collect()
    } else {
        Vec::new()
    };
    let consensus: Vec<String> = members.iter().map(|h| h.name.clone()).collect();
    let consensus_sites = sites(&members);
    let (sites, redundancy) = if kind == "cluster" {
        cluster_redundancy(p, managed_by, db.replicas)
    } else {
        hosts_redundancy(managed_by, &db_hosts)
    };
    Topology {
        kind,
        hosts: hosts.iter().map(|(h, _)| h.clone()).collect(),
        roles,
        database: DatabaseTopology {
            managed_by,
            replicas: if managed_by == "terroir" {
                db.replicas
            } else {
                0
            },
            synchronous: managed_by == "terroir" && db.synchronous(),
            hosts: db_hosts.iter().map(|h| h.name.clone()).collect(),
            consensus_tolerates: consensus.len().saturating_sub(1) / 2,
            consensus,
            sites,
            consensus_sites,
            redundancy,
        },
    }
}

/// Roles by name, in the order of `Role::ALL`.
fn names(roles: &[Role]) -> Vec<&'static str> {
    Role::ALL
        .iter()
        .filter(|r| roles.contains(r))
        .map(|r| r.as_str())
        .collect()
}

/// Where a SecNumCloud target's provider region is.
fn cloud_location(s: &crate::document::SecNumCloudTarget) -> Option<DeclaredLocation> {
    let id = cloud_operator_id(s.provider);
    let providers = Providers::builtin();
    country_of_region(providers, id, &s.region).map(|country| DeclaredLocation {
        country,
        operator: providers.by_name(id).map(|o| o.name.clone()),
        site: Some(s.region.clone()),
    })
}

fn not_established(reason: String) -> Redundancy {
    Redundancy {
        outcome: "not-established",
        reason,
    }
}

/// The database runs in one cluster: one site, whatever its replicas.
fn cluster_redundancy(p: &Platform, managed_by: &str, replicas: u32) -> (Vec<Site>, Redundancy) {
    if managed_by != "terroir" {
        return (Vec::new(), not_established(unmanaged(managed_by)));
    }
    let location = match &p.spec.target {
        Target::Kubernetes(k) => k.location.clone(),
        Target::Secnumcloud(s) => cloud_location(s),
        Target::Baremetal(_) => None,
    };
    let sites: Vec<Site> = location
        .map(|l| Site {
            country: l.country,
            operator: l.operator,
            site: l.site,
            hosts: Vec::new(),
        })
        .into_iter()
        .collect();
    let place = sites
        .first()
        .map(|s| format!(" ({})", s.label()))
        .unwrap_or_default();
    let reason = if replicas == 1 {
        format!("the database's one server runs in one Kubernetes cluster{place}: one site")
    } else {
        format!("the {replicas} database replicas run in one Kubernetes cluster{place}: one site")
    };
    (sites, not_established(reason))
}

fn unmanaged(managed_by: &str) -> String {
    if managed_by == "external" {
        "the database is an external server terroir does not run: its replicas are not described"
            .into()
    } else {
        "no database component".into()
    }
}

/// The sites of the database hosts, and what they establish.
fn hosts_redundancy(managed_by: &str, db_hosts: &[&PlacedHost]) -> (Vec<Site>, Redundancy) {
    if managed_by != "terroir" {
        return (Vec::new(), not_established(unmanaged(managed_by)));
    }
    let undeclared: Vec<&str> = db_hosts
        .iter()
        .filter(|h| h.location.is_none())
        .map(|h| h.name.as_str())
        .collect();
    let sites = sites(db_hosts);
    if !undeclared.is_empty() {
        return (
            sites,
            not_established(format!(
                "no location declared for database host{} {} (`location` on the host or the target)",
                if undeclared.len() == 1 { "" } else { "s" },
                undeclared.join(", ")
            )),
        );
    }
    let placed = sites
        .iter()
        .map(|s| format!("{} in {}", s.hosts.join(", "), s.label()))
        .collect::<Vec<_>>()
        .join("; ");
    if db_hosts.len() < 2 {
        return (
            sites,
            not_established(format!(
                "one database server ({placed}): no replica stands elsewhere"
            )),
        );
    }
    if sites.len() < 2 {
        return (
            sites,
            not_established(format!(
                "the {} database replicas stand in one site ({placed})",
                db_hosts.len()
            )),
        );
    }
    let outside: Vec<String> = sites
        .iter()
        .filter(|s| !in_eu(&s.country))
        .map(|s| format!("{} in {}", s.hosts.join(", "), s.country))
        .collect();
    if !outside.is_empty() {
        return (
            sites.clone(),
            Redundancy {
                outcome: "outside-eu",
                reason: format!(
                    "database replicas stand outside the EU ({}): {} sites ({placed})",
                    outside.join("; "),
                    sites.len()
                ),
            },
        );
    }
    let n = sites.len();
    (
        sites,
        Redundancy {
            outcome: "verified",
            reason: format!(
                "the {} database replicas stand in {n} sites, all in the EU ({placed}); terroir renders one PostgreSQL server per database host",
                db_hosts.len()
            ),
        },
    )
}

/// The distinct sites of `hosts` (see the module's documentation), in the order their first host
/// is listed; hosts whose location names no `site` join the first site of their country and
/// operator.
fn sites(hosts: &[&PlacedHost]) -> Vec<Site> {
    let key = |l: &DeclaredLocation| {
        (
            l.country.to_ascii_uppercase(),
            l.operator.as_deref().map(str::to_lowercase),
        )
    };
    let mut out: Vec<Site> = Vec::new();
    let mut unnamed: Vec<(&PlacedHost, &DeclaredLocation)> = Vec::new();
    for h in hosts {
        let Some(l) = &h.location else { continue };
        let Some(name) = &l.site else {
            unnamed.push((h, l));
            continue;
        };
        match out.iter_mut().find(|s| {
            key(&s.location()) == key(l)
                && s.site.as_deref().map(str::to_lowercase) == Some(name.to_lowercase())
        }) {
            Some(s) => s.hosts.push(h.name.clone()),
            None => out.push(Site {
                country: l.country.clone(),
                operator: l.operator.clone(),
                site: Some(name.clone()),
                hosts: vec![h.name.clone()],
            }),
        }
    }
    for (h, l) in unnamed {
        match out.iter_mut().find(|s| key(&s.location()) == key(l)) {
            Some(s) => s.hosts.push(h.name.clone()),
            None => out.push(Site {
                country: l.country.clone(),
                operator: l.operator.clone(),
                site: None,
                hosts: vec![h.name.clone()],
            }),
        }
    }
    out
}

impl Site {
    fn location(&self) -> DeclaredLocation {
        DeclaredLocation {
            country: self.country.clone(),
            operator: self.operator.clone(),
            site: self.site.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn example(name: &str, edit: impl Fn(String) -> String) -> Platform {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("examples")
                .join(name),
        )
        .unwrap();
        let edited = edit(text.clone());
        crate::document::load_str(name, &edited)
            .map(|l| l.platform)
            .unwrap_or_else(|d| panic!("{d:?}"))
    }

    #[test]
    fn replicas_in_two_eu_sites_are_verified_and_the_topology_names_every_host() {
        let t = of(&example("baremetal-ha.yaml", |t| t));
        assert_eq!(t.database.replicas, 3);
        assert!(t.database.synchronous);
        assert_eq!(t.database.hosts, ["db1", "db2", "db3"]);
        assert_eq!(t.database.consensus, ["db1", "db2", "db3"]);
        assert_eq!(t.database.consensus_tolerates, 1);
        assert_eq!(t.database.consensus_sites.len(), 2);
        assert_eq!(t.database.consensus_sites[0].hosts, ["db1", "db2"]);
        assert_eq!(t.database.sites.len(), 2, "{:?}", t.database.sites);
        assert_eq!(t.database.sites[0].hosts, ["db1", "db2"]);
        assert_eq!(t.database.sites[1].hosts, ["db3"]);
        assert_eq!(t.database.redundancy.outcome, "verified");
        assert_eq!(t.database.redundancy.fact(), Some(true));
        let reason = &t.database.redundancy.reason;
        assert!(
            reason.contains("db3 in FR, OVHcloud, Gravelines GRA-11")
                && reason.contains("db1, db2 in FR, OVHcloud, Roubaix RBX-8"),
            "{reason}"
        );
        let roles: Vec<&str> = t.roles.iter().map(|r| r.role).collect();
        assert_eq!(roles, ["app", "database", "mta", "monitoring", "consensus"]);
        let db3 = &t.roles[1].hosts[2];
        assert_eq!(db3.name, "db3");
        assert!(db3.own_location);
        assert_eq!(
            db3.location.as_ref().and_then(|l| l.site.as_deref()),
            Some("Gravelines GRA-11")
        );
        let db1 = &t.roles[1].hosts[0];
        assert!(!db1.own_location, "db1 stands where the target says");
        assert_eq!(t.hosts.len(), 5);
        assert_eq!(t.hosts[0].roles, ["database", "consensus"]);
        assert_eq!(t.hosts[4].roles, ["app", "mta", "monitoring"]);
    }

    #[test]
    fn one_site_one_replica_or_an_unnamed_site_is_not_established() {
        // db3 back in Roubaix: one site
        let t = of(&example("baremetal-ha.yaml", |t| {
            t.replace("site: Gravelines GRA-11", "site: Roubaix RBX-8")
        }));
        assert_eq!(t.database.sites.len(), 1);
        assert_eq!(t.database.redundancy.fact(), None);
        assert!(
            t.database.redundancy.reason.contains("one site"),
            "{}",
            t.database.redundancy.reason
        );
        // a host that names no site is not somewhere else
        let t = of(&example("baremetal-ha.yaml", |t| {
            t.replacen("            site: Gravelines GRA-11\n", "", 1)
        }));
        assert_eq!(t.database.sites.len(), 1, "{:?}", t.database.sites);
        assert_eq!(t.database.redundancy.outcome, "not-established");
        // but another operator is another site
        let t = of(&example("baremetal-ha.yaml", |t| {
            t.replacen(
                "            operator: OVHcloud\n            site: Gravelines GRA-11\n",
                "            operator: Scaleway\n",
                1,
            )
        }));
        assert_eq!(t.database.sites.len(), 2, "{:?}", t.database.sites);
        assert_eq!(t.database.redundancy.outcome, "verified");
        // one database host
        let t = of(&example("baremetal.yaml", |t| t));
        assert_eq!(t.database.replicas, 1);
        assert!(t.database.consensus.is_empty());
        assert_eq!(t.database.redundancy.fact(), None);
        assert!(
            t.database
                .redundancy
                .reason
                .starts_with("one database server (db1 in FR"),
            "{}",
            t.database.redundancy.reason
        );
    }

    #[test]
    fn a_replica_outside_the_eu_disproves_redundancy_inside_the_eu() {
        let t = of(&example("baremetal-ha.yaml", |t| {
            t.replacen(
                "            country: FR\n            operator: OVHcloud\n            site: Gravelines GRA-11\n",
                "            country: CH\n            operator: Infomaniak\n            site: Geneva\n",
                1,
            )
        }));
        assert_eq!(t.database.redundancy.outcome, "outside-eu");
        assert_eq!(t.database.redundancy.fact(), Some(false));
        assert!(
            t.database.redundancy.reason.contains("db3 in CH"),
            "{}",
            t.database.redundancy.reason
        );
    }

    #[test]
    fn a_cluster_is_one_site() {
        let t = of(&example("kubernetes.yaml", |t| t));
        assert_eq!(t.kind, "cluster");
        assert!(t.roles.is_empty());
        assert_eq!(t.database.redundancy.fact(), None);
        assert!(
            t.database
                .redundancy
                .reason
                .contains("one Kubernetes cluster"),
            "{}",
            t.database.redundancy.reason
        );
    }
}
