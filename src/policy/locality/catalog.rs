//! The provider catalog: from an autonomous system, a host name or a name written in a document to
//! the company that operates it, the law that governs it and whether the US CLOUD Act reaches it.
//!
//! The data is `catalog/providers.yaml`, reviewed like code, embedded in the binary and checked
//! when it is parsed (see [`Catalog::from_yaml`]). Facts the research could not confirm are kept
//! and marked `verified: false`, never dropped.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::OnceLock;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The shipped catalog's text.
pub const BUILTIN_YAML: &str = include_str!("../../../catalog/providers.yaml");

/// Where the shipped catalog comes from, for messages.
pub const BUILTIN_ORIGIN: &str = "catalog/providers.yaml (built in)";

#[derive(Debug, Clone, Default, Serialize)]
pub struct Catalog {
    pub operators: Vec<Operator>,
    /// ASN -> index into `operators`, built once: `by_asn` is on the path of every lookup.
    #[serde(skip)]
    asn_index: std::collections::HashMap<u32, usize>,
}

/// A company that operates addresses, host names or services.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Operator {
    pub id: String,
    pub name: String,
    /// Other names people write in documents (matched case-insensitively).
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub asns: Vec<AsnFact>,
    /// Host-name suffixes it serves (`amazonaws.com` serves `s3.eu-west-3.amazonaws.com`).
    #[serde(default)]
    pub domains: Vec<String>,
    /// ISO 3166-1 alpha-2.
    pub headquarters: String,
    #[serde(default)]
    pub parent: Option<Parent>,
    /// The country whose law governs the operator (ISO 3166-1 alpha-2).
    pub jurisdiction: String,
    pub cloud_act: CloudAct,
    /// Facts that differ from the company's in some regions or subsidiaries.
    #[serde(default)]
    pub regions: Vec<Region>,
    #[serde(default)]
    pub qualifications: Vec<QualifiedOffer>,
    pub source: String,
    /// When the facts were last checked against their source (YYYY-MM-DD).
    pub checked: String,
    pub verified: bool,
    #[serde(default)]
    pub note: Option<String>,
}

/// An autonomous system an operator announces: a bare number is as verified as the operator's
/// own source; the long form carries its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AsnFact {
    pub asn: u32,
    /// `None`: as verified as the operator.
    pub verified: Option<bool>,
    pub source: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum AsnEntry {
    Number(u32),
    Detailed(AsnDetailed),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AsnDetailed {
    asn: u32,
    verified: bool,
    source: String,
}

impl<'de> Deserialize<'de> for AsnFact {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match AsnEntry::deserialize(d) {
            Ok(AsnEntry::Number(asn)) => Ok(AsnFact {
                asn,
                verified: None,
                source: None,
            }),
            Ok(AsnEntry::Detailed(a)) => Ok(AsnFact {
                asn: a.asn,
                verified: Some(a.verified),
                source: Some(a.source),
            }),
            Err(_) => Err(de::Error::custom(
                "expected an AS number or {asn, verified, source}",
            )),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Parent {
    pub name: String,
    /// ISO 3166-1 alpha-2 country of the controlling company.
    pub country: String,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CloudAct {
    pub exposed: Exposed,
    pub reason: String,
}

/// `true`, `false` or `uncertain` in the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposed {
    Yes,
    No,
    Uncertain,
}

impl Exposed {
    pub fn as_option(self) -> Option<bool> {
        match self {
            Exposed::Yes => Some(true),
            Exposed::No => Some(false),
            Exposed::Uncertain => None,
        }
    }
}

impl Serialize for Exposed {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Exposed::Yes => s.serialize_bool(true),
            Exposed::No => s.serialize_bool(false),
            Exposed::Uncertain => s.serialize_str("uncertain"),
        }
    }
}

impl<'de> Deserialize<'de> for Exposed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Exposed;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("true, false or uncertain")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Exposed, E> {
                Ok(if v { Exposed::Yes } else { Exposed::No })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Exposed, E> {
                match v {
                    "true" => Ok(Exposed::Yes),
                    "false" => Ok(Exposed::No),
                    "uncertain" => Ok(Exposed::Uncertain),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// Facts that hold in some regions, or for a subsidiary's autonomous systems, and differ from the
/// company's.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Region {
    /// Region names as the provider spells them (`us-east-2`); empty for a subsidiary known only
    /// by its autonomous systems.
    #[serde(default)]
    pub ids: Vec<String>,
    #[serde(default)]
    pub country: Option<String>,
    /// The company that runs it, when not the operator itself.
    #[serde(default)]
    pub entity: Option<String>,
    #[serde(default)]
    pub asns: Vec<u32>,
    #[serde(default)]
    pub jurisdiction: Option<String>,
    #[serde(default)]
    pub cloud_act: Option<CloudAct>,
    pub source: String,
    pub verified: bool,
    #[serde(default)]
    pub note: Option<String>,
}

impl Region {
    /// How messages name it: `region us-east-2/us-west-1 (OUTSCALE INC)`.
    pub fn label(&self) -> String {
        match (self.ids.is_empty(), &self.entity) {
            (false, Some(e)) => format!("region {} ({e})", self.ids.join("/")),
            (false, None) => format!("region {}", self.ids.join("/")),
            (true, Some(e)) => e.clone(),
            (true, None) => format!(
                "AS{}",
                self.asns
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join("/AS")
            ),
        }
    }
}

/// A qualification (SecNumCloud, HDS, ISO 27001...) held, sought or lacked by an offer.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QualifiedOffer {
    pub name: String,
    #[serde(default)]
    pub offer: Option<String>,
    #[serde(default)]
    pub regions: Vec<String>,
    pub status: QualificationStatus,
    #[serde(default)]
    pub since: Option<String>,
    pub source: String,
    pub verified: bool,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum QualificationStatus {
    Qualified,
    InProgress,
    Applied,
    NotQualified,
    Unknown,
}

/// Qualification names the catalog may use (a typo would otherwise silently match nothing).
pub const QUALIFICATIONS: [&str; 7] = [
    "SecNumCloud",
    "HDS",
    "ISO 27001",
    "ISO 27017",
    "ISO 27018",
    "SOC 2",
    "C5",
];

/// Whether the US CLOUD Act reaches an operator (or one of its regions), under which law, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exposure {
    /// `None`: uncertain.
    pub exposed: Option<bool>,
    /// ISO country whose law governs it.
    pub jurisdiction: String,
    pub reason: String,
    /// Whether the catalog marks the facts behind this as verified.
    pub verified: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{origin}: invalid provider catalog YAML: {message}")]
    Parse { origin: String, message: String },
    #[error("{origin}: invalid provider catalog:\n  - {}", problems.join("\n  - "))]
    Invalid {
        origin: String,
        problems: Vec<String>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    operators: Vec<Operator>,
}

impl Catalog {
    /// The catalog shipped in the binary, parsed once.
    pub fn builtin() -> &'static Catalog {
        static BUILTIN: OnceLock<Catalog> = OnceLock::new();
        BUILTIN.get_or_init(|| match Catalog::from_yaml(BUILTIN_ORIGIN, BUILTIN_YAML) {
            Ok(c) => c,
            // The shipped file is checked by a unit test; reaching this is a build defect.
            Err(e) => panic!("{e}"),
        })
    }

    /// Parse and check a catalog; `origin` names it in errors.
    pub fn from_yaml(origin: &str, text: &str) -> Result<Catalog, CatalogError> {
        let file: CatalogFile = serde_saphyr::from_str(text).map_err(|e| CatalogError::Parse {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        let mut catalog = Catalog {
            operators: file.operators,
            asn_index: std::collections::HashMap::new(),
        };
        for (i, o) in catalog.operators.iter().enumerate() {
            let asns = o
                .asns
                .iter()
                .map(|a| a.asn)
                .chain(o.regions.iter().flat_map(|r| r.asns.iter().copied()));
            for asn in asns {
                // The first claim wins, as the linear search did; `problems` refuses duplicates.
                catalog.asn_index.entry(asn).or_insert(i);
            }
        }
        let problems = catalog.problems();
        if problems.is_empty() {
            Ok(catalog)
        } else {
            Err(CatalogError::Invalid {
                origin: origin.to_owned(),
                problems,
            })
        }
    }

    /// The operator announcing `asn`, directly or through one of its regions or subsidiaries.
    pub fn by_asn(&self, asn: u32) -> Option<&Operator> {
        if let Some(&i) = self.asn_index.get(&asn) {
            return self.operators.get(i);
        }
        if !self.asn_index.is_empty() {
            return None;
        }
        // A catalog assembled by hand (tests) has no index.
        self.operators.iter().find(|o| {
            o.asns.iter().any(|a| a.asn == asn) || o.regions.iter().any(|r| r.asns.contains(&asn))
        })
    }

    /// The operator known by this id, name or alias (case and spacing ignored).
    pub fn by_name(&self, name: &str) -> Option<&Operator> {
        let wanted = normalise_name(name);
        if wanted.is_empty() {
            return None;
        }
        self.operators.iter().find(|o| {
            std::iter::once(&o.id)
                .chain(std::iter::once(&o.name))
                .chain(&o.aliases)
                .any(|n| normalise_name(n) == wanted)
        })
    }

    /// The operator serving `host`: the one whose domain is the longest suffix of the name.
    pub fn by_host(&self, host: &str) -> Option<&Operator> {
        let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
        self.operators
            .iter()
            .flat_map(|o| o.domains.iter().map(move |d| (o, d)))
            .filter(|(_, d)| {
                host == **d
                    || host
                        .strip_suffix(d.as_str())
                        .is_some_and(|rest| rest.ends_with('.'))
            })
            .max_by_key(|(_, d)| d.len())
            .map(|(o, _)| o)
    }

    /// Every rule the data must follow, as sentences naming the entry.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let mut ids = HashSet::new();
        let mut names: HashMap<String, &str> = HashMap::new();
        let mut asns: HashMap<u32, &str> = HashMap::new();
        let mut domains: HashMap<&str, &str> = HashMap::new();
        if self.operators.is_empty() {
            p.push("no operators".to_owned());
        }
        for o in &self.operators {
            let id = o.id.as_str();
            if id.is_empty()
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                p.push(format!(
                    "operator id `{id}`: use lowercase letters, digits and dashes"
                ));
            }
            if !ids.insert(id) {
                p.push(format!("operator id `{id}` appears twice"));
            }
            for n in std::iter::once(&o.id)
                .chain(std::iter::once(&o.name))
                .chain(&o.aliases)
            {
                let key = normalise_name(n);
                if key.is_empty() {
                    p.push(format!("{id}: an empty name or alias"));
                } else if let Some(other) = names.insert(key, id).filter(|other| *other != id) {
                    p.push(format!("{id}: the name `{n}` is also a name of {other}"));
                }
            }
            for a in o
                .asns
                .iter()
                .map(|a| a.asn)
                .chain(o.regions.iter().flat_map(|r| r.asns.iter().copied()))
            {
                if let Some(other) = asns.insert(a, id) {
                    p.push(if other == id {
                        format!("{id}: AS{a} is listed twice")
                    } else {
                        format!("AS{a} is claimed by both {other} and {id}")
                    });
                }
            }
            for a in &o.asns {
                if a.source.as_deref().is_some_and(|s| s.trim().is_empty()) {
                    p.push(format!("{id}: AS{} has an empty source", a.asn));
                }
            }
            for d in &o.domains {
                if d.is_empty()
                    || d.starts_with('.')
                    || d.ends_with('.')
                    || d.contains(char::is_whitespace)
                    || *d != d.to_ascii_lowercase()
                {
                    p.push(format!("{id}: domain `{d}` must be a lowercase host-name suffix without leading or trailing dots"));
                }
                if let Some(other) = domains.insert(d, id) {
                    p.push(format!("domain {d} is claimed by both {other} and {id}"));
                }
            }
            check_country(&mut p, id, "headquarters", &o.headquarters);
            check_country(&mut p, id, "jurisdiction", &o.jurisdiction);
            if let Some(parent) = &o.parent {
                check_country(&mut p, id, "parent.country", &parent.country);
                if parent.name.trim().is_empty() {
                    p.push(format!("{id}: parent.name is empty"));
                }
            }
            if o.cloud_act.reason.trim().is_empty() {
                p.push(format!("{id}: cloudAct.reason is empty"));
            }
            let us_parent = o.parent.as_ref().is_some_and(|pa| pa.country == "US");
            if (o.jurisdiction == "US" || us_parent) && o.cloud_act.exposed != Exposed::Yes {
                p.push(format!("{id}: a US jurisdiction or a US parent is exposed to the CLOUD Act: set cloudAct.exposed to true"));
            }
            if o.source.trim().is_empty() {
                p.push(format!("{id}: source is empty"));
            }
            if !is_date(&o.checked) {
                p.push(format!(
                    "{id}: checked `{}` is not a date (YYYY-MM-DD)",
                    o.checked
                ));
            }
            for r in &o.regions {
                let label = format!("{id} {}", r.label());
                if r.ids.is_empty() && r.asns.is_empty() {
                    p.push(format!("{label}: a region needs ids or asns"));
                }
                if let Some(c) = &r.country {
                    check_country(&mut p, &label, "country", c);
                }
                if let Some(j) = &r.jurisdiction {
                    check_country(&mut p, &label, "jurisdiction", j);
                    if r.cloud_act.is_none() {
                        p.push(format!(
                            "{label}: a region with its own jurisdiction needs its own cloudAct"
                        ));
                    }
                }
                if let Some(ca) = &r.cloud_act {
                    if ca.reason.trim().is_empty() {
                        p.push(format!("{label}: cloudAct.reason is empty"));
                    }
                    let on_us_soil = r.country.as_deref() == Some("US")
                        || r.jurisdiction.as_deref() == Some("US");
                    if on_us_soil && ca.exposed != Exposed::Yes {
                        p.push(format!("{label}: a region on US soil or under US law is exposed: set cloudAct.exposed to true"));
                    }
                }
                if r.source.trim().is_empty() {
                    p.push(format!("{label}: source is empty"));
                }
            }
            for q in &o.qualifications {
                if !QUALIFICATIONS.contains(&q.name.as_str()) {
                    p.push(format!(
                        "{id}: qualification `{}` is not one of {}",
                        q.name,
                        QUALIFICATIONS.join(", ")
                    ));
                }
                if q.source.trim().is_empty() {
                    p.push(format!(
                        "{id}: qualification {} has an empty source",
                        q.name
                    ));
                }
                if let Some(s) = &q.since
                    && !(is_date(s) || is_partial_date(s))
                {
                    p.push(format!(
                        "{id}: qualification {} since `{s}` is not YYYY, YYYY-MM or YYYY-MM-DD",
                        q.name
                    ));
                }
            }
        }
        p
    }

    /// How many facts are marked unverified (operators, ASNs, regions, qualifications).
    pub fn unverified_count(&self) -> usize {
        self.operators
            .iter()
            .map(|o| {
                usize::from(!o.verified)
                    + o.asns.iter().filter(|a| a.verified == Some(false)).count()
                    + o.regions.iter().filter(|r| !r.verified).count()
                    + o.qualifications.iter().filter(|q| !q.verified).count()
            })
            .sum()
    }
}

impl Operator {
    /// The region (or subsidiary) an address belongs to: by its autonomous system first, else by
    /// its country among the regions whose facts differ from the company's.
    pub fn region_for(&self, asn: Option<u32>, country: Option<&str>) -> Option<&Region> {
        asn.and_then(|a| self.regions.iter().find(|r| r.asns.contains(&a)))
            .or_else(|| {
                let c = country?;
                self.regions
                    .iter()
                    .find(|r| r.cloud_act.is_some() && r.country.as_deref() == Some(c))
            })
    }

    /// The region named `id` (as the provider spells it, case ignored).
    pub fn region(&self, id: &str) -> Option<&Region> {
        self.regions
            .iter()
            .find(|r| r.ids.iter().any(|i| i.eq_ignore_ascii_case(id)))
    }

    /// Exposure in a region (by name), or the company's when the region is unknown or not given.
    /// A region's own facts override the company's.
    pub fn exposure(&self, region: Option<&str>) -> Exposure {
        self.exposure_in(region.and_then(|r| self.region(r)))
    }

    /// Exposure in a given region of this operator, or the company's for `None`.
    pub fn exposure_in(&self, region: Option<&Region>) -> Exposure {
        if let Some(r) = region
            && let Some(ca) = &r.cloud_act
        {
            let jurisdiction = r
                .jurisdiction
                .clone()
                .unwrap_or_else(|| self.jurisdiction.clone());
            return Exposure {
                exposed: ca.exposed.as_option(),
                jurisdiction,
                reason: format!("{}: {}", r.label(), ca.reason),
                verified: r.verified,
            };
        }
        let mut exposed = self.cloud_act.exposed.as_option();
        let mut reason = self.cloud_act.reason.clone();
        // The catalog's checks enforce this; a hand-built catalog gets it too.
        let us_parent = self.parent.as_ref().filter(|p| p.country == "US");
        if exposed != Some(true) && (self.jurisdiction == "US" || us_parent.is_some()) {
            exposed = Some(true);
            reason = match us_parent {
                Some(p) => format!("controlled by {} (US)", p.name),
                None => "under US law".to_owned(),
            };
        }
        Exposure {
            exposed,
            jurisdiction: self.jurisdiction.clone(),
            reason,
            verified: self.verified,
        }
    }

    /// Whether the catalog marks this AS number as verified.
    pub fn asn_verified(&self, asn: u32) -> Option<bool> {
        if let Some(a) = self.asns.iter().find(|a| a.asn == asn) {
            return Some(a.verified.unwrap_or(self.verified));
        }
        self.regions
            .iter()
            .find(|r| r.asns.contains(&asn))
            .map(|r| r.verified)
    }
}

fn normalise_name(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn check_country(p: &mut Vec<String>, who: &str, field: &str, code: &str) {
    if !is_country(code) {
        p.push(format!(
            "{who}: {field} `{code}` is not an ISO 3166-1 alpha-2 country code"
        ));
    }
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && is_partial_date(&s[..7])
        && s[8..].parse::<u8>().is_ok_and(|d| (1..=31).contains(&d))
}

fn is_partial_date(s: &str) -> bool {
    let year_ok = |y: &str| y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit());
    match s.split_once('-') {
        None => year_ok(s),
        Some((y, m)) => {
            year_ok(y) && m.len() == 2 && m.parse::<u8>().is_ok_and(|m| (1..=12).contains(&m))
        }
    }
}

/// Whether `code` is an officially assigned ISO 3166-1 alpha-2 code.
pub fn is_country(code: &str) -> bool {
    code.len() == 2 && ISO_3166_ALPHA2.split_whitespace().any(|c| c == code)
}

const ISO_3166_ALPHA2: &str = "\
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW \
BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI \
FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN \
IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME \
MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF \
PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV \
SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE \
YT ZA ZM ZW";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn builtin() -> &'static Catalog {
        Catalog::builtin()
    }

    #[test]
    fn the_shipped_catalog_is_valid() {
        let c = Catalog::from_yaml(BUILTIN_ORIGIN, BUILTIN_YAML);
        assert!(
            c.is_ok(),
            "{}",
            c.err().map(|e| e.to_string()).unwrap_or_default()
        );
        assert!(
            builtin().operators.len() >= 40,
            "{} operators",
            builtin().operators.len()
        );
    }

    #[test]
    fn every_operator_named_in_the_research_notes_is_there() {
        for name in [
            "OVHcloud",
            "Scaleway",
            "Free",
            "Outscale",
            "Hetzner",
            "IONOS",
            "Orange",
            "Gandi",
            "Ikoula",
            "UpCloud",
            "Infomaniak",
            "Exoscale",
            "Cloud Temple",
            "Clever Cloud",
            "S3NS",
            "Bleu",
            "NumSpot",
            "Oodrive",
            "Amazon",
            "Microsoft",
            "Google",
            "Cloudflare",
            "Akamai",
            "Linode",
            "Oracle",
            "DigitalOcean",
            "Fastly",
            "IBM",
            "SoftLayer",
            "Brevo",
            "Scaleway TEM",
            "Mailjet",
            "Sinch",
            "Mailgun",
            "SendGrid",
            "Twilio",
            "Amazon SES",
            "Postmark",
            "SparkPost",
            "Docker Hub",
            "GitHub",
            "ghcr.io",
            "Quay",
            "Red Hat",
            "registry.k8s.io",
            "Bunny.net",
            "Gcore",
            "Let's Encrypt",
            "ISRG",
            "HARICA",
            "Actalis",
            "Buypass",
            "ZeroSSL",
        ] {
            assert!(builtin().by_name(name).is_some(), "{name} is missing");
        }
        assert!(
            builtin().by_name("Harbor").is_none(),
            "self-hosted software is not an operator"
        );
    }

    #[test]
    fn every_asn_in_the_research_notes_maps_to_its_operator() {
        for (asn, id) in [
            (16276, "ovhcloud"),
            (35540, "ovhcloud"),
            (12876, "scaleway"),
            (12322, "free"),
            (50624, "outscale"),
            (53306, "outscale"),
            (132418, "outscale"),
            (24940, "hetzner"),
            (213230, "hetzner"),
            (8560, "ionos"),
            (51862, "ionos"),
            (3215, "orange"),
            (29169, "gandi"),
            (203476, "gandi"),
            (21409, "ikoula"),
            (202053, "upcloud"),
            (29222, "infomaniak"),
            (61098, "exoscale"),
            (16509, "amazon"),
            (14618, "amazon"),
            (8075, "microsoft"),
            (15169, "google"),
            (396982, "google"),
            (13335, "cloudflare"),
            (20940, "akamai"),
            (16625, "akamai"),
            (63949, "akamai"),
            (31898, "oracle"),
            (14061, "digitalocean"),
            (54113, "fastly"),
            (36351, "ibm"),
        ] {
            assert_eq!(
                builtin().by_asn(asn).map(|o| o.id.as_str()),
                Some(id),
                "AS{asn}"
            );
        }
        assert!(
            builtin().by_asn(64512).is_none(),
            "private-use AS numbers are nobody's"
        );
    }

    #[test]
    fn names_match_case_insensitively() {
        assert_eq!(builtin().by_name("3ds outscale").unwrap().id, "outscale");
        assert_eq!(builtin().by_name("  OUTSCALE ").unwrap().id, "outscale");
        assert_eq!(builtin().by_name("aws").unwrap().id, "amazon");
        assert_eq!(builtin().by_name("ovh").unwrap().id, "ovhcloud");
        assert!(builtin().by_name("").is_none());
        assert!(builtin().by_name("Nobody Hosting").is_none());
    }

    #[test]
    fn hosts_match_the_longest_domain_suffix() {
        let c = builtin();
        let id = |h: &str| c.by_host(h).map(|o| o.id.as_str());
        assert_eq!(id("registry-1.docker.io"), Some("docker"));
        assert_eq!(id("docker.io"), Some("docker"));
        assert_eq!(id("ghcr.io"), Some("github"));
        assert_eq!(id("s3.eu-west-3.amazonaws.com"), Some("amazon"));
        assert_eq!(id("storage.s3nsapis.fr"), Some("s3ns"));
        assert_eq!(id("oos.eu-west-2.outscale.com"), Some("outscale"));
        assert_eq!(id("rg.fr-par.scw.cloud"), Some("scaleway"));
        assert_eq!(id("smtp.tem.scw.cloud."), Some("scaleway"));
        assert_eq!(id("SMTP-RELAY.BREVO.COM"), Some("brevo"));
        assert_eq!(id("smtp.mailgun.org"), Some("mailgun"));
        assert_eq!(id("acme-v02.api.letsencrypt.org"), Some("letsencrypt"));
        assert_eq!(id("registry.k8s.io"), Some("kubernetes-registry"));
        assert_eq!(id("europe-docker.pkg.dev"), Some("google"));
        // a suffix must end on a label boundary
        assert_eq!(id("notdocker.io"), None);
        assert_eq!(id("example.org"), None);
    }

    #[test]
    fn region_facts_override_the_company() {
        let o = builtin().by_name("Outscale").unwrap();
        let company = o.exposure(None);
        assert_eq!(
            (company.exposed, company.jurisdiction.as_str()),
            (Some(false), "FR")
        );
        let us = o.exposure(Some("us-east-2"));
        assert_eq!((us.exposed, us.jurisdiction.as_str()), (Some(true), "US"));
        assert!(us.reason.contains("us-east-2"), "{}", us.reason);
        assert_eq!(o.exposure(Some("US-WEST-1")).exposed, Some(true));
        assert_eq!(o.exposure(Some("cloudgouv-eu-west-1")).exposed, Some(false));
        assert_eq!(o.exposure(Some("no-such-region")), company);
        let ovh = builtin().by_name("OVH").unwrap();
        let us = ovh.exposure_in(ovh.region_for(Some(16276), Some("US")));
        assert_eq!(
            (us.exposed, us.jurisdiction.as_str(), us.verified),
            (Some(true), "US", false)
        );
        assert!(ovh.region_for(Some(16276), Some("FR")).is_none());
        let scw = builtin().by_asn(54265).unwrap();
        assert_eq!(scw.id, "scaleway");
        assert_eq!(
            scw.exposure_in(scw.region_for(Some(54265), None)).exposed,
            Some(true)
        );
    }

    #[test]
    fn exposure_follows_jurisdiction_and_parent() {
        let c = builtin();
        assert_eq!(
            c.by_name("Amazon").unwrap().exposure(None).exposed,
            Some(true)
        );
        assert_eq!(
            c.by_name("GitHub").unwrap().exposure(None).exposed,
            Some(true)
        );
        assert_eq!(
            c.by_name("Hetzner").unwrap().exposure(None).exposed,
            Some(false)
        );
        let mailjet = c.by_name("Mailjet").unwrap().exposure(None);
        assert_eq!(mailjet.exposed, None);
        assert!(mailjet.reason.contains("Sinch"), "{}", mailjet.reason);
        assert_eq!(c.by_name("Bleu").unwrap().exposure(None).exposed, None);
        // a hand-built operator with a US parent is exposed even if its data says otherwise
        let mut o = c.by_name("Brevo").unwrap().clone();
        o.parent = Some(Parent {
            name: "Example Holdings Inc".into(),
            country: "US".into(),
            note: None,
        });
        let e = o.exposure(None);
        assert_eq!(e.exposed, Some(true));
        assert!(e.reason.contains("Example Holdings Inc"), "{}", e.reason);
    }

    #[test]
    fn unverified_facts_are_kept_and_counted() {
        let c = builtin();
        assert!(c.unverified_count() > 0);
        assert!(!c.by_name("Exoscale").unwrap().verified);
        assert_eq!(
            c.by_name("Outscale").unwrap().asn_verified(132418),
            Some(false)
        );
        assert_eq!(
            c.by_name("Outscale").unwrap().asn_verified(50624),
            Some(true)
        );
        let s3ns = c.by_name("S3NS").unwrap();
        let q = s3ns
            .qualifications
            .iter()
            .find(|q| q.name == "SecNumCloud")
            .unwrap();
        assert_eq!(
            (q.status, q.verified, q.regions.as_slice()),
            (
                QualificationStatus::Qualified,
                false,
                &["u-france-east1".to_owned()][..]
            )
        );
    }

    fn minimal(extra: &str) -> String {
        format!(
            "operators:\n  - id: a\n    name: A\n    headquarters: FR\n    jurisdiction: FR\n    cloudAct: {{exposed: false, reason: French}}\n    source: notes\n    checked: 2026-11-23\n    verified: true\n    asns: [1]\n{extra}"
        )
    }

    #[test]
    fn a_minimal_catalog_parses() {
        let c = Catalog::from_yaml("t", &minimal("")).unwrap();
        assert_eq!(c.by_asn(1).unwrap().id, "a");
    }

    #[test]
    fn broken_catalogs_are_refused_with_every_problem() {
        let dup = minimal(
            "  - id: b\n    name: B\n    headquarters: XX\n    jurisdiction: US\n    cloudAct: {exposed: uncertain, reason: ''}\n    source: ''\n    checked: soon\n    verified: false\n    asns: [1, {asn: 2, verified: false, source: data}]\n    domains: [Example.COM]\n",
        );
        let err = Catalog::from_yaml("t", &dup).unwrap_err().to_string();
        for expected in [
            "AS1 is claimed by both a and b",
            "headquarters `XX` is not an ISO 3166-1 alpha-2",
            "cloudAct.reason is empty",
            "set cloudAct.exposed to true",
            "b: source is empty",
            "checked `soon` is not a date",
            "domain `Example.COM`",
        ] {
            assert!(err.contains(expected), "`{expected}` not in:\n{err}");
        }
        let twice = minimal(
            "  - id: a\n    name: A2\n    headquarters: FR\n    jurisdiction: FR\n    cloudAct: {exposed: false, reason: r}\n    source: s\n    checked: 2026-11-23\n    verified: true\n",
        );
        assert!(
            Catalog::from_yaml("t", &twice)
                .unwrap_err()
                .to_string()
                .contains("operator id `a` appears twice")
        );
        let unknown_key = minimal("    colour: blue\n");
        assert!(matches!(
            Catalog::from_yaml("t", &unknown_key),
            Err(CatalogError::Parse { .. })
        ));
        let bad_flag = minimal("").replace("exposed: false", "exposed: maybe");
        assert!(matches!(
            Catalog::from_yaml("t", &bad_flag),
            Err(CatalogError::Parse { .. })
        ));
    }

    #[test]
    fn country_codes_and_dates() {
        assert!(is_country("FR") && is_country("NO") && is_country("GR"));
        assert!(!is_country("EL") && !is_country("EU") && !is_country("fr") && !is_country("UK"));
        assert!(is_date("2026-11-23") && !is_date("2026-13-01") && !is_date("2026-11"));
        assert!(is_partial_date("2025") && is_partial_date("2025-08") && !is_partial_date("25"));
    }
}
