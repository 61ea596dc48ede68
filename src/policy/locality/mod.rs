//! Locality and jurisdiction: where an address really is (country), who operates it (autonomous
//! system, organisation, operator) and which law reaches it.
//!
//! - `geodata`: the IP-to-country and IP-to-ASN index (ip-location-db packages; DB-IP and
//!   RouteViews data), built once from the package tarballs and cached.
//! - `catalog`: the provider catalog (`catalog/providers.yaml`): operators, ASNs, jurisdiction,
//!   CLOUD Act exposure, regions and qualifications, each fact with its source.
//! - `regions`: the country of a provider's region (the catalog's, else the providers' own).

pub mod catalog;
pub mod geodata;
pub mod hostfacts;
pub mod live;
pub mod locate;
pub mod npm;
pub mod regions;
pub mod verify;
