//! Where an address really is and whether the US CLOUD Act reaches it.
//!
//! The geodata gives the country an address is in and the autonomous system announcing it; the
//! provider catalog goes from the autonomous system to the operator, its jurisdiction and its
//! exposure. The judgement, in this order:
//!
//! 1. A private, loopback, link-local, shared (CGNAT), documentation, benchmarking
//!    (198.18.0.0/15), multicast or otherwise special-purpose address is not locatable: no
//!    country, no operator, exposure unknown (`null`).
//! 2. An address geolocated in the US is exposed: it is on US soil, under US law whoever runs it.
//! 3. An address whose operator answers to US law (US jurisdiction, or a US parent) is exposed
//!    wherever the address is: a US company's server in Paris is still reachable under the CLOUD
//!    Act and FISA 702. An operator's region or subsidiary facts (found by the announcing AS, else
//!    by the country) override the company's.
//! 4. An operator the catalog marks `uncertain` gives `null`, with the catalog's reason.
//! 5. An operator outside US reach with an address in the EU, the EEA or Switzerland is not
//!    exposed; with an address elsewhere (but not in the US) it is not exposed either, and the
//!    reason says the address is outside the EU/EEA/CH; with no known country it is `null` (US
//!    soil cannot be ruled out).
//! 6. An autonomous system the catalog does not know leaves the jurisdiction unknown: `null`,
//!    "AS<n> <organisation> is not in the provider catalog"; no autonomous system at all, `null`.
//!
//! `jurisdiction` is the operator's (or its region's) when the operator is known, else none.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};

use super::catalog::{Catalog, Exposure, Operator};
use super::geodata::{GeoDb, IpFacts};
use crate::policy::sovereignty::{EEA_EXTRA, in_eu};

/// What `terroir locate` reports for one address.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Location {
    pub address: String,
    pub country: Option<String>,
    pub asn: Option<u32>,
    pub organisation: Option<String>,
    pub operator: Option<String>,
    pub jurisdiction: Option<String>,
    pub cloud_act_exposed: Option<bool>,
    pub reason: String,
    /// The name the address was resolved from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

/// The reason given for an address that cannot be located.
pub const NOT_LOCATABLE: &str = "private or special-purpose address: not locatable";

/// Judge one address (see the module documentation for the rules).
pub fn judge(ip: IpAddr, geo: &GeoDb, catalog: &Catalog) -> Location {
    let facts = if is_special_purpose(ip) {
        IpFacts {
            country: None,
            asn: None,
            organisation: None,
        }
    } else {
        geo.lookup(ip)
    };
    judge_facts(ip, facts, catalog)
}

/// Judge one address from what the geodata says about it.
pub fn judge_facts(ip: IpAddr, facts: IpFacts, catalog: &Catalog) -> Location {
    // An IPv4-mapped IPv6 address is the IPv4 address.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let mut loc = Location {
        address: ip.to_string(),
        country: None,
        asn: None,
        organisation: None,
        operator: None,
        jurisdiction: None,
        cloud_act_exposed: None,
        reason: NOT_LOCATABLE.to_owned(),
        hostname: None,
    };
    if is_special_purpose(ip) {
        return loc;
    }
    loc.country = facts.country;
    loc.asn = facts.asn;
    loc.organisation = facts.organisation;
    let operator = loc.asn.and_then(|a| catalog.by_asn(a));
    let country = loc.country.as_deref();
    let region = operator.and_then(|op| op.region_for(loc.asn, country));
    let exposure = operator.map(|op| op.exposure_in(region));
    loc.operator = operator.map(|op| op.name.clone());
    loc.jurisdiction = exposure.as_ref().map(|e| e.jurisdiction.clone());

    let (exposed, reason) = match (operator.zip(exposure.as_ref()), loc.asn) {
        _ if country == Some("US") => {
            let who = match (operator.zip(exposure.as_ref()), loc.asn) {
                (Some((op, e)), _) => {
                    let part = region
                        .map(|r| format!(", {}", r.label()))
                        .unwrap_or_default();
                    format!(
                        "; operated by {}{part}, under {} law",
                        op.name, e.jurisdiction
                    )
                }
                (None, Some(asn)) => format!("; {}", as_label(asn, loc.organisation.as_deref())),
                (None, None) => String::new(),
            };
            (
                Some(true),
                format!("geolocated in the US: on US soil, under US law whoever operates it{who}"),
            )
        }
        (Some((op, e)), _) => judge_operator(op, e, country),
        (None, Some(asn)) => (
            None,
            format!(
                "{} is not in the provider catalog: jurisdiction unknown",
                as_label(asn, loc.organisation.as_deref())
            ),
        ),
        (None, None) => (
            None,
            "no autonomous system is known for this address: operator and jurisdiction unknown"
                .to_owned(),
        ),
    };
    loc.cloud_act_exposed = exposed;
    loc.reason = reason;
    if let (Some(op), Some(e), Some(asn)) = (operator, &exposure, loc.asn) {
        let mut unverified = Vec::new();
        if op
            .asns
            .iter()
            .any(|a| a.asn == asn && a.verified == Some(false))
        {
            unverified.push(format!("that AS{asn} is {}'s", op.name));
        }
        if !e.verified {
            unverified.push(match region.filter(|r| r.cloud_act.is_some()) {
                Some(r) => format!("the facts of {}", r.label()),
                None => format!("{}'s facts", op.name),
            });
        }
        if !unverified.is_empty() {
            loc.reason.push_str(&format!(
                " (unverified in the provider catalog: {})",
                unverified.join("; ")
            ));
        }
    }
    loc
}

fn judge_operator(op: &Operator, e: &Exposure, country: Option<&str>) -> (Option<bool>, String) {
    let name = &op.name;
    let j = &e.jurisdiction;
    let where_ = country.map_or_else(
        || "the country is unknown".to_owned(),
        |c| format!("geolocated in {c}"),
    );
    match e.exposed {
        Some(true) => (
            Some(true),
            format!(
                "operated by {name} ({j} law), exposed wherever the address is: {}; {where_}",
                e.reason
            ),
        ),
        None => (
            None,
            format!(
                "operated by {name} ({j} law), exposure uncertain: {}; {where_}",
                e.reason
            ),
        ),
        Some(false) => match country {
            Some(c) if in_europe(c) => (
                Some(false),
                format!(
                    "operated by {name} ({j} law: {}), geolocated in {c}, inside the EU/EEA/Switzerland",
                    e.reason
                ),
            ),
            Some(c) => (
                Some(false),
                format!(
                    "operated by {name} ({j} law: {}), geolocated in {c}: neither US soil nor a US operator, but outside the EU/EEA/Switzerland",
                    e.reason
                ),
            ),
            None => (
                None,
                format!(
                    "operated by {name} ({j} law: {}), but the address's country is unknown: US soil cannot be ruled out",
                    e.reason
                ),
            ),
        },
    }
}

fn as_label(asn: u32, organisation: Option<&str>) -> String {
    match organisation {
        Some(o) if !o.is_empty() => format!("AS{asn} {o}"),
        _ => format!("AS{asn}"),
    }
}

/// The EU, the EEA and Switzerland.
fn in_europe(country: &str) -> bool {
    in_eu(country) || EEA_EXTRA.contains(&country) || country == "CH"
}

/// Addresses no public geodata can place: private, loopback, link-local, shared, documentation,
/// benchmarking, multicast, reserved (IANA special-purpose registries).
pub fn is_special_purpose(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or_else(|| special_v6(v6), special_v4),
    }
}

fn special_v4(ip: Ipv4Addr) -> bool {
    const NETS: [(u32, u32); 15] = [
        (0x0000_0000, 8),  // 0.0.0.0/8 "this network"
        (0x0a00_0000, 8),  // 10.0.0.0/8 private
        (0x6440_0000, 10), // 100.64.0.0/10 shared address space (CGNAT)
        (0x7f00_0000, 8),  // 127.0.0.0/8 loopback
        (0xa9fe_0000, 16), // 169.254.0.0/16 link-local
        (0xac10_0000, 12), // 172.16.0.0/12 private
        (0xc000_0000, 24), // 192.0.0.0/24 IETF protocol assignments
        (0xc000_0200, 24), // 192.0.2.0/24 documentation (TEST-NET-1)
        (0xc058_6300, 24), // 192.88.99.0/24 6to4 relay anycast (deprecated)
        (0xc0a8_0000, 16), // 192.168.0.0/16 private
        (0xc612_0000, 15), // 198.18.0.0/15 benchmarking
        (0xc633_6400, 24), // 198.51.100.0/24 documentation (TEST-NET-2)
        (0xcb00_7100, 24), // 203.0.113.0/24 documentation (TEST-NET-3)
        (0xe000_0000, 4),  // 224.0.0.0/4 multicast
        (0xf000_0000, 4),  // 240.0.0.0/4 reserved, and 255.255.255.255 broadcast
    ];
    let x = u32::from(ip);
    NETS.iter()
        .any(|&(net, len)| x >> (32 - len) == net >> (32 - len))
}

fn special_v6(ip: Ipv6Addr) -> bool {
    const NETS: [(u128, u32); 10] = [
        (0, 127),                                        // ::/127 unspecified and loopback
        (0x0064_ff9b_0000_0000_0000_0000_0000_0000, 96), // 64:ff9b::/96 NAT64 (the IPv4 address inside is what runs)
        (0x0064_ff9b_0001_0000_0000_0000_0000_0000, 48), // 64:ff9b:1::/48 local-use NAT64
        (0x0100_0000_0000_0000_0000_0000_0000_0000, 64), // 100::/64 discard
        (0x2001_0000_0000_0000_0000_0000_0000_0000, 23), // 2001::/23 IETF protocol assignments (Teredo, benchmarking 2001:2::/48...)
        (0x2001_0db8_0000_0000_0000_0000_0000_0000, 32), // 2001:db8::/32 documentation
        (0x3fff_0000_0000_0000_0000_0000_0000_0000, 20), // 3fff::/20 documentation
        (0xfc00_0000_0000_0000_0000_0000_0000_0000, 7),  // fc00::/7 unique local
        (0xfe80_0000_0000_0000_0000_0000_0000_0000, 10), // fe80::/10 link-local
        (0xff00_0000_0000_0000_0000_0000_0000_0000, 8),  // ff00::/8 multicast
    ];
    let x = u128::from(ip);
    NETS.iter()
        .any(|&(net, len)| x >> (128 - len) == net >> (128 - len))
}

/// Why a name given to be located or judged stands for no address.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("an empty name: give an IP address or a host name")]
    Empty,
    /// RFC 6761: names under .invalid never resolve; answered without asking the network.
    #[error(
        "cannot resolve `{name}`: names under .invalid never resolve (RFC 6761); check the spelling, or give the address itself"
    )]
    Reserved { name: String },
    #[error(
        "cannot resolve `{name}` (check the spelling and the system resolver: /etc/resolv.conf, /etc/hosts; or give the address itself)"
    )]
    Lookup {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{name}` resolved to no address; check the name, or give the address itself")]
    NoAddress { name: String },
}

impl ResolveError {
    /// The name as it was given.
    pub fn name(&self) -> &str {
        match self {
            ResolveError::Empty => "",
            ResolveError::Reserved { name }
            | ResolveError::Lookup { name, .. }
            | ResolveError::NoAddress { name } => name,
        }
    }
}

/// The addresses a target stands for: a literal address as is (brackets allowed around IPv6), a
/// name through the system resolver, deduplicated and sorted (IPv4 first).
pub fn resolve(target: &str) -> Result<Vec<IpAddr>, ResolveError> {
    let t = target.trim();
    if let Some(ip) = literal(t) {
        return Ok(vec![ip]);
    }
    if t.is_empty() {
        return Err(ResolveError::Empty);
    }
    let name = t.trim_end_matches('.').to_ascii_lowercase();
    if name == "invalid" || name.ends_with(".invalid") {
        return Err(ResolveError::Reserved { name: t.to_owned() });
    }
    let addrs = (t, 0u16)
        .to_socket_addrs()
        .map_err(|source| ResolveError::Lookup {
            name: t.to_owned(),
            source,
        })?;
    let ips: BTreeSet<IpAddr> = addrs.map(|a| a.ip()).collect();
    if ips.is_empty() {
        return Err(ResolveError::NoAddress { name: t.to_owned() });
    }
    Ok(ips.into_iter().collect())
}

/// `target` as an IP address, when it is one (brackets allowed around IPv6).
fn literal(target: &str) -> Option<IpAddr> {
    let t = target.trim();
    t.strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(t)
        .parse()
        .ok()
}

/// Why `terroir locate` judged nothing.
#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    /// Every name that does not resolve, each with its reason.
    #[error("{}", unresolved_message(.0))]
    Unresolved(Vec<ResolveError>),
    #[error("cannot load the geodata")]
    Geodata(#[source] super::geodata::GeodataError),
}

fn unresolved_message(errors: &[ResolveError]) -> String {
    match errors {
        [one] => crate::text::error_chain(one),
        many => format!(
            "{} names do not resolve: {}",
            many.len(),
            many.iter()
                .map(|e| crate::text::error_chain(e))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

impl LocateError {
    pub fn kind(&self) -> &'static str {
        match self {
            LocateError::Unresolved(_) => "unresolved",
            LocateError::Geodata(_) => "geodata",
        }
    }

    /// Facts for scripts: the names that do not resolve.
    pub fn details(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut details = serde_json::Map::new();
        if let LocateError::Unresolved(errors) = self {
            details.insert(
                "unresolved".into(),
                errors
                    .iter()
                    .map(|e| serde_json::Value::from(e.name()))
                    .collect(),
            );
        }
        details
    }
}

/// Locate every address `targets` stand for, with the geodata in `geodata` (None: the default
/// directory). Names are resolved first: a typo is reported before the index is loaded.
pub fn locate(
    targets: &[String],
    geodata: Option<&std::path::Path>,
) -> Result<Vec<Location>, LocateError> {
    let mut resolved: Vec<(Option<&str>, Vec<IpAddr>)> = Vec::new();
    let mut unresolved = Vec::new();
    for t in targets {
        match resolve(t) {
            Ok(ips) => {
                // a literal address is not a name: no `hostname` for it
                let hostname = literal(t).is_none().then_some(t.as_str());
                resolved.push((hostname, ips));
            }
            Err(e) => unresolved.push(e),
        }
    }
    if !unresolved.is_empty() {
        return Err(LocateError::Unresolved(unresolved));
    }
    let geo = GeoDb::open(geodata).map_err(LocateError::Geodata)?;
    let catalog = Catalog::builtin();
    Ok(resolved
        .into_iter()
        .flat_map(|(hostname, ips)| {
            let geo = &geo;
            ips.into_iter().map(move |ip| Location {
                hostname: hostname.map(str::to_owned),
                ..judge(ip, geo, catalog)
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn special_purpose_addresses() {
        for s in [
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.9",
            "192.0.2.1",
            "192.168.0.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.1",
            "203.0.113.1",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:10.0.0.1",
            "64:ff9b::1.2.3.4",
            "2001:db8::1",
            "2001:2::1",
            "3fff::1",
            "fc00::1",
            "fd00::1",
            "fe80::1",
            "ff02::1",
        ] {
            assert!(is_special_purpose(ip(s)), "{s} is special-purpose");
        }
        for s in [
            "1.1.1.1",
            "8.8.8.8",
            "100.128.0.1",
            "172.32.0.1",
            "198.17.255.255",
            "198.20.0.1",
            "51.38.1.1",
            "2001:41d0::1",
            "2a01:4f8::1",
            "::ffff:51.38.1.1",
        ] {
            assert!(!is_special_purpose(ip(s)), "{s} is public");
        }
    }

    #[test]
    fn literal_addresses_pass_through_resolve() {
        assert_eq!(resolve("192.0.2.1").unwrap(), vec![ip("192.0.2.1")]);
        assert_eq!(resolve("[2001:db8::1]").unwrap(), vec![ip("2001:db8::1")]);
        assert_eq!(resolve(" 2001:db8::2 ").unwrap(), vec![ip("2001:db8::2")]);
    }

    #[test]
    fn invalid_names_fail_without_asking_the_network() {
        let e = resolve("no-such-host.invalid").unwrap_err().to_string();
        assert!(
            e.contains("no-such-host.invalid") && e.contains("RFC 6761"),
            "{e}"
        );
        assert!(matches!(resolve(""), Err(ResolveError::Empty)));
    }

    #[test]
    fn names_are_resolved_before_the_geodata_is_loaded() {
        let nowhere = std::path::Path::new("/nonexistent/geodata");
        let e = locate(
            &["192.0.2.1".into(), "a.invalid".into(), "b.invalid".into()],
            Some(nowhere),
        )
        .unwrap_err();
        let LocateError::Unresolved(errors) = &e else {
            panic!("{e}")
        };
        assert_eq!(
            errors.iter().map(ResolveError::name).collect::<Vec<_>>(),
            ["a.invalid", "b.invalid"]
        );
        assert!(
            e.to_string()
                .starts_with("2 names do not resolve: cannot resolve `a.invalid`"),
            "{e}"
        );
        assert_eq!(
            e.details()["unresolved"],
            serde_json::json!(["a.invalid", "b.invalid"])
        );
        let one = locate(&["a.invalid".into()], Some(nowhere)).unwrap_err();
        assert!(
            one.to_string().starts_with("cannot resolve `a.invalid`")
                && one.to_string().contains("give the address itself"),
            "{one}"
        );
        // every name resolves: then the missing geodata is the problem
        let e = locate(&["192.0.2.1".into()], Some(nowhere)).unwrap_err();
        assert!(matches!(e, LocateError::Geodata(_)));
        assert!(
            crate::text::error_chain(&e).contains("terroir geodata update"),
            "{e}"
        );
    }

    #[test]
    fn localhost_resolves_to_loopback() {
        let ips = resolve("localhost").unwrap();
        assert!(
            !ips.is_empty() && ips.iter().all(IpAddr::is_loopback),
            "{ips:?}"
        );
        let mut sorted = ips.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(ips, sorted);
    }

    #[test]
    fn europe_is_the_eu_the_eea_and_switzerland() {
        for c in ["FR", "DE", "IE", "GR", "NO", "IS", "LI", "CH"] {
            assert!(in_europe(c), "{c}");
        }
        for c in ["US", "GB", "CA", "SG", "EL"] {
            assert!(!in_europe(c), "{c}");
        }
    }

    fn facts(country: Option<&str>, asn: Option<u32>, org: Option<&str>) -> IpFacts {
        IpFacts {
            country: country.map(str::to_owned),
            asn,
            organisation: org.map(str::to_owned),
        }
    }

    fn judged(addr: &str, country: Option<&str>, asn: Option<u32>, org: Option<&str>) -> Location {
        judge_facts(ip(addr), facts(country, asn, org), Catalog::builtin())
    }

    #[test]
    fn us_soil_is_exposed_whoever_operates_it() {
        // an EU operator's address in the US
        let l = judged(
            "5.161.128.17",
            Some("US"),
            Some(213230),
            Some("Hetzner Online GmbH"),
        );
        assert_eq!(
            (
                l.cloud_act_exposed,
                l.operator.as_deref(),
                l.jurisdiction.as_deref()
            ),
            (Some(true), Some("Hetzner"), Some("DE"))
        );
        assert!(
            l.reason.starts_with("geolocated in the US: on US soil"),
            "{}",
            l.reason
        );
        // an operator the catalog does not know
        let l = judged(
            "99.49.81.17",
            Some("US"),
            Some(7018),
            Some("AT&T Enterprises, LLC"),
        );
        assert_eq!(
            (l.cloud_act_exposed, l.jurisdiction.as_deref()),
            (Some(true), None)
        );
        assert!(l.reason.contains("AS7018 AT&T"), "{}", l.reason);
        // a region run by a US subsidiary gives the region's jurisdiction
        let l = judged("15.204.128.17", Some("US"), Some(16276), Some("OVH SAS"));
        assert_eq!(
            (l.cloud_act_exposed, l.jurisdiction.as_deref()),
            (Some(true), Some("US"))
        );
        let l = judged(
            "157.250.38.17",
            Some("US"),
            Some(53306),
            Some("OUTSCALE INC"),
        );
        assert_eq!(
            (
                l.cloud_act_exposed,
                l.operator.as_deref(),
                l.jurisdiction.as_deref()
            ),
            (Some(true), Some("3DS Outscale"), Some("US"))
        );
    }

    #[test]
    fn a_us_operator_is_exposed_wherever_the_address_is() {
        let l = judged(
            "13.39.0.17",
            Some("FR"),
            Some(16509),
            Some("Amazon.com, Inc."),
        );
        assert_eq!(
            (
                l.cloud_act_exposed,
                l.operator.as_deref(),
                l.jurisdiction.as_deref()
            ),
            (Some(true), Some("Amazon Web Services"), Some("US"))
        );
        assert!(
            l.reason.contains("geolocated in FR") && l.reason.contains("wherever"),
            "{}",
            l.reason
        );
        // a Dutch entity with a US parent
        let l = judged(
            "92.123.28.17",
            Some("FR"),
            Some(20940),
            Some("Akamai International B.V."),
        );
        assert_eq!(l.cloud_act_exposed, Some(true));
        // a subsidiary under EU law, still controlled from the US
        let l = judged(
            "203.0.114.1",
            Some("DE"),
            Some(214101),
            Some("Amazon Data Services European Sovereign Cloud GmbH"),
        );
        assert_eq!(
            (l.cloud_act_exposed, l.jurisdiction.as_deref()),
            (Some(true), Some("DE"))
        );
        assert!(l.reason.contains("unverified"), "{}", l.reason);
    }

    #[test]
    fn a_us_parent_exposes_an_eu_operator() {
        let mut catalog = Catalog::builtin().clone();
        let op = catalog
            .operators
            .iter_mut()
            .find(|o| o.id == "hetzner")
            .unwrap();
        op.parent = Some(super::super::catalog::Parent {
            name: "Example Holdings Inc".into(),
            country: "US".into(),
            note: None,
        });
        let l = judge_facts(
            ip("2.28.128.17"),
            facts(Some("DE"), Some(24940), None),
            &catalog,
        );
        assert_eq!(l.cloud_act_exposed, Some(true));
        assert!(l.reason.contains("Example Holdings Inc"), "{}", l.reason);
    }

    #[test]
    fn an_eu_operator_in_europe_is_not_exposed() {
        let l = judged("57.129.0.17", Some("DE"), Some(16276), Some("OVH SAS"));
        assert_eq!(
            (
                l.cloud_act_exposed,
                l.operator.as_deref(),
                l.jurisdiction.as_deref()
            ),
            (Some(false), Some("OVHcloud"), Some("FR"))
        );
        assert!(
            l.reason.contains("inside the EU/EEA/Switzerland"),
            "{}",
            l.reason
        );
        assert_eq!(
            judged("83.228.224.17", Some("CH"), Some(29222), None).cloud_act_exposed,
            Some(false)
        );
        assert_eq!(
            judged("185.62.163.17", Some("NO"), Some(201419), None).cloud_act_exposed,
            Some(false)
        );
        // outside Europe but not in the US: not exposed, and the reason says where
        let l = judged("54.39.0.17", Some("CA"), Some(16276), Some("OVH SAS"));
        assert_eq!(l.cloud_act_exposed, Some(false));
        assert!(
            l.reason.contains("outside the EU/EEA/Switzerland"),
            "{}",
            l.reason
        );
        // no country: US soil cannot be ruled out
        assert_eq!(
            judged("57.129.0.17", None, Some(16276), None).cloud_act_exposed,
            None
        );
    }

    #[test]
    fn uncertain_in_the_catalog_is_null_with_its_reason() {
        let l = judged(
            "87.253.236.17",
            Some("FR"),
            Some(200069),
            Some("MAILJET SAS"),
        );
        assert_eq!(
            (
                l.cloud_act_exposed,
                l.operator.as_deref(),
                l.jurisdiction.as_deref()
            ),
            (None, Some("Mailjet"), Some("FR"))
        );
        assert!(l.reason.contains("Sinch"), "{}", l.reason);
    }

    #[test]
    fn an_unknown_autonomous_system_leaves_the_jurisdiction_unknown() {
        let l = judged(
            "79.224.0.17",
            Some("DE"),
            Some(3320),
            Some("Deutsche Telekom AG"),
        );
        assert_eq!(
            (
                l.cloud_act_exposed,
                l.operator.as_deref(),
                l.jurisdiction.as_deref()
            ),
            (None, None, None)
        );
        assert!(
            l.reason
                .starts_with("AS3320 Deutsche Telekom AG is not in the provider catalog"),
            "{}",
            l.reason
        );
        let l = judged("79.224.0.18", Some("DE"), None, None);
        assert_eq!(l.cloud_act_exposed, None);
        assert!(l.reason.contains("no autonomous system"), "{}", l.reason);
    }

    #[test]
    fn special_purpose_addresses_are_not_locatable_whatever_the_data_says() {
        for a in [
            "10.0.0.1",
            "127.0.0.1",
            "198.18.0.1",
            "::1",
            "fe80::1",
            "2001:db8::1",
            "::ffff:192.168.1.1",
        ] {
            let l = judged(a, Some("US"), Some(16509), Some("Amazon.com, Inc."));
            assert_eq!(
                (l.country, l.asn, l.operator, l.cloud_act_exposed),
                (None, None, None, None),
                "{a}"
            );
            assert_eq!(l.reason, NOT_LOCATABLE);
        }
        assert_eq!(
            judged("::ffff:192.168.1.1", None, None, None).address,
            "192.168.1.1"
        );
    }
}
