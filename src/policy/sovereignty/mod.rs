//! Sovereignty: where things run, who operates them, under which law.

pub mod dependencies;
pub mod preassess;
pub mod topology;

/// EU member states (ISO 3166-1 alpha-2; Greece is `GR`).
pub const EU: [&str; 27] = [
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT",
    "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
];

/// EEA members outside the EU.
pub const EEA_EXTRA: [&str; 3] = ["IS", "LI", "NO"];

/// Whether `country` is inside one of `allowed` (codes or the groups `EU` and `EEA`).
pub fn country_allowed(country: &str, allowed: &[String]) -> bool {
    allowed.iter().any(|a| match a.as_str() {
        "EU" => EU.contains(&country),
        "EEA" => EU.contains(&country) || EEA_EXTRA.contains(&country),
        code => code == country,
    })
}

pub fn in_eu(country: &str) -> bool {
    EU.contains(&country)
}
