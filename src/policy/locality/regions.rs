//! Where a cloud provider's regions stand: the catalog's facts, else what the providers publish.
//! Pure data, below both the verifier and the sovereignty assessment that use it.

use super::catalog::{Catalog, Operator, Region};

/// The catalog's facts for a region, subregion or zone (`cloudgouv-eu-west-1a` is in
/// `cloudgouv-eu-west-1`).
pub fn op_region<'o>(op: &'o Operator, region: &str) -> Option<&'o Region> {
    op.region(region).or_else(|| {
        op.regions
            .iter()
            .filter_map(|r| {
                r.ids
                    .iter()
                    .filter(|id| {
                        region
                            .to_ascii_lowercase()
                            .starts_with(&id.to_ascii_lowercase())
                    })
                    .map(|id| (id.len(), r))
                    .max_by_key(|(l, _)| *l)
            })
            .max_by_key(|(l, _)| *l)
            .map(|(_, r)| r)
    })
}

/// Country of a region: the catalog's fact first, else what the providers publish.
pub fn country_of_region(catalog: &Catalog, operator: &str, region: &str) -> Option<String> {
    catalog
        .by_name(operator)
        .and_then(|op| op_region(op, region))
        .and_then(|r| r.country.clone())
        .or_else(|| region_country(operator, region).map(str::to_owned))
}

/// The catalog id of a SecNumCloud target's provider.
pub fn cloud_operator_id(p: crate::document::CloudProvider) -> &'static str {
    use crate::document::CloudProvider as C;
    match p {
        C::Outscale => "outscale",
        C::Ovhcloud => "ovhcloud",
        C::CloudTemple => "cloud-temple",
        C::S3ns => "s3ns",
    }
}

/// The country of a provider region, from what the providers publish (subregions and zones
/// map to their region). `None` when the region is not known.
pub fn region_country(operator: &str, region: &str) -> Option<&'static str> {
    let r = region.to_ascii_lowercase();
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| r.starts_with(p));
    match operator {
        "outscale" => {
            if starts(&["cloudgouv-eu-west-1", "eu-west-2"]) {
                Some("FR")
            } else if starts(&["us-east-2", "us-west-1"]) {
                Some("US")
            } else if starts(&["ap-northeast-1"]) {
                Some("JP")
            } else {
                None
            }
        }
        "ovhcloud" => {
            if starts(&[
                "gra",
                "sbg",
                "rbx",
                "eu-west-par",
                "eu-west-gra",
                "eu-west-rbx",
                "eu-west-sbg",
            ]) {
                Some("FR")
            } else if starts(&["eu-south-mil"]) {
                Some("IT")
            } else if starts(&["de", "eu-central-lz-fra"]) {
                Some("DE")
            } else if starts(&["uk"]) {
                Some("GB")
            } else if starts(&["waw"]) {
                Some("PL")
            } else if starts(&["bhs", "ca-east"]) {
                Some("CA")
            } else if starts(&["us-", "vin", "hil"]) {
                Some("US")
            } else if starts(&["sgp", "ap-southeast-sgp"]) {
                Some("SG")
            } else if starts(&["syd", "ap-southeast-syd"]) {
                Some("AU")
            } else {
                None
            }
        }
        "cloud-temple" => r.starts_with("fr").then_some("FR"),
        "scaleway" => {
            if starts(&["fr-par"]) {
                Some("FR")
            } else if starts(&["nl-ams"]) {
                Some("NL")
            } else if starts(&["pl-waw"]) {
                Some("PL")
            } else if starts(&["it-mil"]) {
                Some("IT")
            } else {
                None
            }
        }
        "s3ns" | "google" => {
            if starts(&["u-france-east1", "europe-west9"]) {
                Some("FR")
            } else if starts(&["europe-west1"]) && !starts(&["europe-west10", "europe-west12"]) {
                Some("BE")
            } else if starts(&["europe-west3", "europe-west10"]) {
                Some("DE")
            } else if starts(&["europe-west4"]) {
                Some("NL")
            } else if starts(&["europe-west2"]) {
                Some("GB")
            } else if starts(&["europe-west8", "europe-west12"]) {
                Some("IT")
            } else if starts(&["europe-southwest1"]) {
                Some("ES")
            } else if starts(&["europe-north1"]) {
                Some("FI")
            } else if starts(&["europe-central2"]) {
                Some("PL")
            } else if starts(&["us-", "northamerica-"]) {
                Some(if starts(&["northamerica-"]) {
                    "CA"
                } else {
                    "US"
                })
            } else {
                None
            }
        }
        "amazon" => {
            if starts(&["eu-west-3"]) {
                Some("FR")
            } else if starts(&["eu-central-1"]) {
                Some("DE")
            } else if starts(&["eu-west-1"]) {
                Some("IE")
            } else if starts(&["eu-west-2"]) {
                Some("GB")
            } else if starts(&["eu-south-1"]) {
                Some("IT")
            } else if starts(&["eu-south-2"]) {
                Some("ES")
            } else if starts(&["eu-north-1"]) {
                Some("SE")
            } else if starts(&["us-"]) {
                Some("US")
            } else {
                None
            }
        }
        _ => None,
    }
}
