//! Live facts read over SSH from bare-metal hosts for `terroir verify --live`: the host's
//! addresses, its default gateway, its hardware vendor (DMI), its DNS resolvers, its NTP servers
//! and the MTA's relayhost. Read-only, as the deploy user, without sudo.
//!
//! The cloud metadata service is asked for the host's region or zone only when DMI says the host
//! is a virtual machine of that cloud (Amazon EC2, Google Compute Engine, Azure, OpenStack,
//! Scaleway, Hetzner): the link-local request then never leaves the provider's hypervisor, and
//! a host that is not in a cloud is never probed.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use super::verify::{Finding, Verdict, Verifier, host_of};
use crate::deploy::baremetal::ssh::{Connection, SshError, Target};
use crate::document::{BaremetalTarget, DeclaredLocation, Platform};

/// One script, one round trip; each line `key value...`.
const SCRIPT: &str = r#"
echo "addresses $(hostname -I 2>/dev/null)"
echo "gateway $(awk '$2 == "00000000" { print $3; exit }' /proc/net/route 2>/dev/null)"
echo "vendor $(cat /sys/class/dmi/id/sys_vendor 2>/dev/null)"
echo "product $(cat /sys/class/dmi/id/product_name 2>/dev/null)"
echo "resolvers $(awk '/^nameserver/ { print $2 }' /etc/resolv.conf 2>/dev/null | tr '\n' ' ')"
echo "ntp $( { grep -hsE '^(server|pool) ' /etc/chrony/chrony.conf /etc/chrony/sources.d/*.sources /etc/ntp.conf /etc/ntpsec/ntp.conf | awk '{ print $2 }'; grep -hsE '^NTP=' /etc/systemd/timesyncd.conf /etc/systemd/timesyncd.conf.d/*.conf | cut -d= -f2; } | tr '\n' ' ')"
echo "relayhost $( (command -v postconf >/dev/null && postconf -h relayhost) 2>/dev/null)"
md() { if command -v curl >/dev/null; then curl -fsS -m 2 "$@" 2>/dev/null; elif command -v wget >/dev/null; then wget -qO- -T 2 "$@" 2>/dev/null; fi; }
case "$(cat /sys/class/dmi/id/sys_vendor /sys/class/dmi/id/product_name 2>/dev/null | tr '\n' ' ')" in
  *"Amazon EC2"*) echo "metadata amazon $(md http://169.254.169.254/latest/meta-data/placement/region)" ;;
  *Google*) echo "metadata google $(md -H 'Metadata-Flavor: Google' http://169.254.169.254/computeMetadata/v1/instance/zone | sed 's|.*/||')" ;;
  *"Microsoft Corporation"*) echo "metadata microsoft $(md -H 'Metadata: true' 'http://169.254.169.254/metadata/instance/compute/location?api-version=2021-02-01&format=text')" ;;
  *OpenStack*) echo "metadata openstack $(md http://169.254.169.254/openstack/latest/meta_data.json | tr -d '\n' | sed -n 's/.*"availability_zone": *"\([^"]*\)".*/\1/p')" ;;
  *Scaleway*) echo "metadata scaleway $(md http://169.254.42.42/conf | sed -n 's/^ZONE=//p')" ;;
  *Hetzner*) echo "metadata hetzner $(md http://169.254.169.254/hetzner/v1/metadata/availability-zone)" ;;
esac
"#;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HostFacts {
    pub addresses: Vec<IpAddr>,
    pub gateway: Option<IpAddr>,
    pub vendor: String,
    pub product: String,
    pub resolvers: Vec<String>,
    pub ntp: Vec<String>,
    pub relayhost: String,
    /// (cloud, region or zone) from the cloud's metadata service, when DMI names a cloud.
    pub metadata: Option<(String, String)>,
}

/// `/proc/net/route` writes IPv4 gateways as little-endian hex.
fn route_hex(hex: &str) -> Option<IpAddr> {
    let n = u32::from_str_radix(hex.trim(), 16).ok()?;
    (n != 0).then(|| IpAddr::V4(Ipv4Addr::from(n.swap_bytes())))
}

pub fn parse(output: &str) -> HostFacts {
    let mut f = HostFacts::default();
    for line in output.lines() {
        let (key, rest) = line.split_once(' ').unwrap_or((line, ""));
        let words = || rest.split_whitespace().map(str::to_owned);
        match key {
            "addresses" => {
                f.addresses = rest
                    .split_whitespace()
                    .filter_map(|a| a.parse().ok())
                    .collect()
            }
            "gateway" => f.gateway = route_hex(rest),
            "vendor" => f.vendor = rest.trim().to_owned(),
            "product" => f.product = rest.trim().to_owned(),
            "resolvers" => f.resolvers = words().collect(),
            "ntp" => f.ntp = words().collect(),
            "relayhost" => f.relayhost = rest.trim().to_owned(),
            "metadata" => {
                let mut w = rest.split_whitespace();
                if let Some(cloud) = w.next() {
                    f.metadata = Some((cloud.to_owned(), w.next().unwrap_or_default().to_owned()));
                }
            }
            _ => {}
        }
    }
    f
}

/// `[host]:port`, `host:port` or `host` as Postfix writes relayhost.
fn relay_host(relayhost: &str) -> Option<String> {
    let r = relayhost.trim();
    if r.is_empty() {
        return None;
    }
    let r = r
        .strip_prefix('[')
        .map(|s| s.split(']').next().unwrap_or(s))
        .unwrap_or_else(|| r.split(':').next().unwrap_or(r));
    Some(r.to_ascii_lowercase())
}

/// Whether an address of `host`, as the geodata locates it, stands where the document declares
/// the host (its own `location`, else the target's): a country or operator other than declared
/// is a warning naming both; an address the geodata cannot place says nothing.
pub fn against_declared(
    host: &str,
    loc: &super::locate::Location,
    declared: &DeclaredLocation,
    own: bool,
    v: &Verifier,
) -> Option<Finding> {
    let country = loc.country.as_deref()?;
    let mut differs = Vec::new();
    if !country.eq_ignore_ascii_case(&declared.country) {
        differs.push(format!(
            "located in {country}, declared in {}",
            declared.country
        ));
    }
    if let (Some(found), Some(said)) = (loc.operator.as_deref(), declared.operator.as_deref()) {
        let said_name = v
            .catalog
            .by_name(said)
            .map(|o| o.name.as_str())
            .unwrap_or(said);
        if !found.eq_ignore_ascii_case(said_name) {
            differs.push(format!("operated by {found}, declared {said}"));
        }
    }
    let whose = if own {
        format!("host {host}'s own `location`")
    } else {
        "`target.baremetal.location`".to_owned()
    };
    let label = [
        Some(declared.country.as_str()),
        declared.operator.as_deref(),
        declared.site.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ");
    Some(Finding {
        subject: format!("host {host} location"),
        observed: format!(
            "{}: {country}{}",
            loc.address,
            loc.operator
                .as_deref()
                .map(|o| format!(", operated by {o}"))
                .unwrap_or_default()
        ),
        expected: format!("where the document declares host {host}: {label} ({whose})"),
        verdict: if differs.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Warn
        },
        basis: "live",
        evidence: if differs.is_empty() {
            format!("geodata agrees with {whose}")
        } else {
            format!(
                "{}: host {host} is not where the document says; correct {whose}, or check which server answers at this address",
                differs.join("; ")
            )
        },
    })
}

/// Judge one host's facts; its addresses also against its own declared location.
pub fn judge(host: &str, f: &HostFacts, p: &Platform, v: &Verifier) -> Vec<Finding> {
    let mut out = Vec::new();
    let declared = p.spec.target.baremetal().and_then(|b| {
        let h = b.hosts.iter().find(|h| h.name == host)?;
        Some((h.location(b.location.as_ref())?, h.location.is_some()))
    });
    for ip in &f.addresses {
        out.push(v.address(format!("host {host} address"), *ip, "live"));
        if let (Some(geo), Some((location, own))) = (v.geo, declared) {
            let loc = super::locate::judge(*ip, geo, v.catalog);
            out.extend(against_declared(host, &loc, location, own, v));
        }
    }
    if let Some(gw) = f.gateway {
        out.push(v.address(format!("host {host} default gateway"), gw, "live"));
    }
    let hardware = [f.vendor.as_str(), f.product.as_str()]
        .iter()
        .find_map(|s| (!s.is_empty()).then(|| v.catalog.by_name(s)).flatten());
    if let Some(op) = hardware {
        out.push(v.place(
            format!("host {host} hardware"),
            None,
            Some(op),
            None,
            None,
            "live",
            format!("DMI vendor {:?}, product {:?}", f.vendor, f.product),
        ));
    }
    if let Some((cloud, region)) = &f.metadata {
        // OpenStack is run by many operators: the metadata names a zone, not who runs it.
        let op = v.catalog.by_name(cloud);
        let country = if region.is_empty() {
            None
        } else {
            super::verify::country_of_region(v.catalog, cloud, region)
        };
        let region = (!region.is_empty()).then_some(region.as_str());
        out.push(v.place(
            format!("host {host} cloud placement"),
            country.as_deref(),
            op,
            Some(cloud),
            region,
            "live",
            format!(
                "cloud metadata service: {cloud}, {}",
                region.unwrap_or("no region answered")
            ),
        ));
    }
    for r in &f.resolvers {
        match r.parse::<IpAddr>() {
            Ok(ip) => out.push(v.address(format!("host {host} DNS resolver"), ip, "live")),
            Err(_) => out.extend(v.host(&format!("host {host} DNS resolver"), r, None, None)),
        }
    }
    for n in &f.ntp {
        let mut fs = match n.parse::<IpAddr>() {
            Ok(ip) => vec![v.address(format!("host {host} NTP server"), ip, "live")],
            Err(_) => v.host(&format!("host {host} NTP server"), n, None, None),
        };
        fs.iter_mut().for_each(|f| f.basis = "live");
        out.extend(fs);
    }
    if let Some(relay) = relay_host(&f.relayhost) {
        let declared: Vec<String> = [
            p.spec.endpoints.smtp_relay.as_ref(),
            p.spec.endpoints.smtp_fallback_relay.as_ref(),
        ]
        .into_iter()
        .flatten()
        .filter_map(|e| host_of(&e.url))
        .collect();
        if declared.contains(&relay) {
            let mut fs = v.host(&format!("host {host} MTA relayhost"), &relay, None, None);
            fs.iter_mut().for_each(|f| f.basis = "live");
            out.extend(fs);
        } else {
            out.push(Finding {
                subject: format!("host {host} MTA relayhost"),
                observed: f.relayhost.clone(),
                expected: format!(
                    "a declared SMTP relay ({})",
                    if declared.is_empty() {
                        "none declared".into()
                    } else {
                        declared.join(", ")
                    }
                ),
                verdict: Verdict::Fail,
                basis: "live",
                evidence: "mail leaves through a relay the document does not declare".into(),
            });
        }
    }
    out
}

/// Why a read-only probe of a host gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("host {host} ({address})")]
    Connect {
        host: String,
        address: String,
        #[source]
        source: Box<SshError>,
    },
    #[error("host {host}")]
    Command {
        host: String,
        #[source]
        source: Box<SshError>,
    },
    #[error("host {host}: {what} failed (exit status {status}): {stderr}")]
    Failed {
        host: String,
        what: &'static str,
        status: i32,
        stderr: String,
    },
    #[error("the probe of host {host} stopped unexpectedly")]
    Panicked { host: String },
}

impl ProbeError {
    /// The host as a finding names it: with its address when it could not be reached.
    pub fn subject(&self) -> String {
        match self {
            ProbeError::Connect { host, address, .. } => format!("host {host} ({address})"),
            ProbeError::Command { host, .. }
            | ProbeError::Failed { host, .. }
            | ProbeError::Panicked { host } => format!("host {host}"),
        }
    }
}

/// How to reach each host of a bare-metal document (strict host keys, never recording new ones).
pub fn targets(document: &Path, b: &BaremetalTarget) -> Vec<(String, Target)> {
    crate::deploy::baremetal::targets(document, b, crate::deploy::baremetal::Reach::default())
        .into_iter()
        .collect()
}

/// Run `run` on every host in parallel, each with its own connection; one result per host, in
/// the order of `targets`.
pub fn on_hosts<T: Send>(
    targets: Vec<(String, Target)>,
    run: impl Fn(&str, &Connection) -> Result<T, ProbeError> + Sync,
) -> Vec<Result<(String, T), ProbeError>> {
    crate::parallel::each(
        &targets,
        |(name, target)| {
            let conn = Connection::open(target).map_err(|source| ProbeError::Connect {
                host: name.clone(),
                address: target.address.clone(),
                source: Box::new(source),
            })?;
            run(name, &conn).map(|t| (name.clone(), t))
        },
        |(name, _)| Err(ProbeError::Panicked { host: name.clone() }),
    )
}

/// Connect to every host of a bare-metal document and judge what it reports; a host that cannot
/// be read is a warning, never a pass.
pub fn verify_hosts(
    document: &Path,
    b: &BaremetalTarget,
    p: &Platform,
    v: &Verifier,
) -> Vec<Finding> {
    let results = on_hosts(targets(document, b), |name, conn| {
        let out = conn
            .exec(SCRIPT, None)
            .map_err(|source| ProbeError::Command {
                host: name.to_owned(),
                source: Box::new(source),
            })?;
        Ok(parse(&out.stdout_str()))
    });
    let mut out = Vec::new();
    for r in results {
        match r {
            Ok((name, facts)) => out.extend(judge(&name, &facts, p, v)),
            Err(e) => out.push(Finding {
                subject: e.subject(),
                observed: "unreachable".into(),
                expected: v.expected(),
                verdict: Verdict::Warn,
                basis: "live",
                evidence: crate::text::error_chain(&e),
            }),
        }
    }
    out
}

/// The SHA-256 of each of `files` present on a host, in one round trip (with sudo: some are
/// root-only): (path, hex digest). Files not present are left out.
pub fn file_digests(
    conn: &Connection,
    host: &str,
    files: &[String],
) -> Result<Vec<(String, String)>, ProbeError> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let script = files
        .iter()
        .map(|f| {
            let q = crate::deploy::baremetal::ssh::shell_quote(f);
            format!("if [ -f {q} ]; then sha256sum {q}; fi")
        })
        .collect::<Vec<_>>()
        .join("\n");
    let out = conn
        .sudo(&script, None)
        .map_err(|source| ProbeError::Command {
            host: host.to_owned(),
            source: Box::new(source),
        })?;
    if !out.ok() {
        return Err(ProbeError::Failed {
            host: host.to_owned(),
            what: "reading the deployed files",
            status: out.status,
            stderr: crate::text::last_lines(&out.stderr_str(), 3),
        });
    }
    Ok(out
        .stdout_str()
        .lines()
        .filter_map(|l| {
            let (hex, path) = l.split_once("  ")?;
            Some((path.to_owned(), hex.to_owned()))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_are_parsed_from_one_round_trip() {
        let f = parse(
            "addresses 198.18.0.11 2001:db8::5 \ngateway 010012C6\nvendor QEMU\nproduct Standard PC\nresolvers 9.9.9.9 127.0.0.53 \nntp 0.debian.pool.ntp.org 192.0.2.1 \nrelayhost [smtp.example.fr]:587\n",
        );
        assert_eq!(f.addresses.len(), 2);
        assert_eq!(f.gateway, Some("198.18.0.1".parse().unwrap()));
        assert_eq!(f.vendor, "QEMU");
        assert_eq!(f.resolvers, ["9.9.9.9", "127.0.0.53"]);
        assert_eq!(f.ntp, ["0.debian.pool.ntp.org", "192.0.2.1"]);
        assert_eq!(relay_host(&f.relayhost).as_deref(), Some("smtp.example.fr"));
        assert_eq!(
            relay_host("relay.example.fr:25").as_deref(),
            Some("relay.example.fr")
        );
        assert_eq!(relay_host(""), None);
    }

    #[test]
    fn cloud_placement_from_the_metadata_service_is_judged() {
        use crate::document::{Enforcement, Policy};
        use crate::policy::locality::catalog::Catalog;
        let f = parse("metadata amazon eu-west-3\n");
        assert_eq!(f.metadata, Some(("amazon".into(), "eu-west-3".into())));
        let policy = Policy {
            allowed_countries: vec!["EU".into()],
            forbidden_jurisdictions: vec!["US".into()],
            required_qualifications: vec![],
            enforcement: Enforcement::Enforce,
        };
        let v = Verifier {
            policy: &policy,
            geo: None,
            catalog: Catalog::builtin(),
            pins: Default::default(),
            dns: false,
        };
        let doc = crate::document::load_file(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/baremetal.yaml"),
        )
        .map(|l| l.platform)
        .unwrap();
        let findings = judge("db1", &f, &doc, &v);
        let placement = findings
            .iter()
            .find(|x| x.subject == "host db1 cloud placement")
            .unwrap();
        assert_eq!(
            placement.verdict,
            Verdict::Fail,
            "Amazon's Paris region: France, and under US law"
        );
        assert!(
            placement.observed.starts_with("FR"),
            "{}",
            placement.observed
        );
        let ovh = judge("db1", &parse("metadata ovhcloud GRA11\n"), &doc, &v);
        assert_eq!(
            ovh.iter()
                .find(|x| x.subject == "host db1 cloud placement")
                .unwrap()
                .verdict,
            Verdict::Pass
        );
        let unanswered = judge("db1", &parse("metadata openstack \n"), &doc, &v);
        assert_eq!(
            unanswered
                .iter()
                .find(|x| x.subject == "host db1 cloud placement")
                .unwrap()
                .verdict,
            Verdict::Warn
        );
    }

    #[test]
    fn an_address_is_judged_against_its_own_host_s_declared_location() {
        use crate::document::{Enforcement, Policy};
        use crate::policy::locality::catalog::Catalog;
        use crate::policy::locality::locate::Location;
        let policy = Policy {
            allowed_countries: vec!["EU".into()],
            forbidden_jurisdictions: vec!["US".into()],
            required_qualifications: vec![],
            enforcement: Enforcement::Enforce,
        };
        let v = Verifier {
            policy: &policy,
            geo: None,
            catalog: Catalog::builtin(),
            pins: Default::default(),
            dns: false,
        };
        let located = |country: Option<&str>, operator: Option<&str>| Location {
            address: "54.38.0.17".into(),
            country: country.map(str::to_owned),
            asn: None,
            organisation: None,
            operator: operator.map(str::to_owned),
            jurisdiction: None,
            cloud_act_exposed: None,
            reason: String::new(),
            hostname: None,
        };
        let gravelines = DeclaredLocation {
            country: "FR".into(),
            operator: Some("OVHcloud".into()),
            site: Some("Gravelines GRA-11".into()),
        };
        let ovh = Catalog::builtin().by_name("ovhcloud").unwrap().name.clone();
        let agrees = against_declared(
            "db3",
            &located(Some("FR"), Some(&ovh)),
            &gravelines,
            true,
            &v,
        )
        .unwrap();
        assert_eq!(agrees.verdict, Verdict::Pass, "{agrees:?}");
        assert_eq!(agrees.subject, "host db3 location");
        let elsewhere = against_declared(
            "db3",
            &located(Some("DE"), Some(&ovh)),
            &gravelines,
            true,
            &v,
        )
        .unwrap();
        assert_eq!(elsewhere.verdict, Verdict::Warn);
        assert!(
            elsewhere.evidence.contains("located in DE, declared in FR")
                && elsewhere.evidence.contains("host db3's own `location`"),
            "{}",
            elsewhere.evidence
        );
        assert!(
            elsewhere
                .expected
                .contains("FR, OVHcloud, Gravelines GRA-11"),
            "{}",
            elsewhere.expected
        );
        let other_operator = against_declared(
            "db1",
            &located(Some("FR"), Some("Scaleway")),
            &gravelines,
            false,
            &v,
        )
        .unwrap();
        assert_eq!(other_operator.verdict, Verdict::Warn);
        assert!(
            other_operator
                .evidence
                .contains("operated by Scaleway, declared OVHcloud")
                && other_operator
                    .evidence
                    .contains("`target.baremetal.location`"),
            "{}",
            other_operator.evidence
        );
        assert!(
            against_declared("db1", &located(None, None), &gravelines, false, &v).is_none(),
            "an address the geodata cannot place says nothing"
        );
    }

    #[test]
    fn no_gateway_is_none() {
        assert_eq!(route_hex("00000000"), None);
        assert_eq!(parse("gateway \n").gateway, None);
    }
}
