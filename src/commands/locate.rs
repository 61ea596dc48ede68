//! `terroir locate ADDRESS|HOSTNAME...`: where each address is, who operates it and whether the
//! US CLOUD Act reaches it.

use std::io::Write;

use serde::Serialize;

use super::Context;
use crate::cli::LocateArgs;
use crate::error::{Error, ExitStatus};
use crate::policy::locality::geodata::ATTRIBUTION;
use crate::policy::locality::locate::{self, Location};
use crate::printer::{Report, Text};

pub fn run(args: &LocateArgs, cx: &Context) -> Result<ExitStatus, Error> {
    let locations = locate::locate(&args.targets, args.data.geodata.as_deref())?;
    cx.printer.report(&Located(locations))?;
    Ok(ExitStatus::Success)
}

/// One location per address: a table for people, the list as it is for scripts.
#[derive(Serialize)]
#[serde(transparent)]
struct Located(Vec<Location>);

impl Report for Located {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        write!(out, "{}", table(&self.0))
    }
}

/// The table, one reason line per address, then the data's attribution.
fn table(locations: &[Location]) -> String {
    let with_host = locations.iter().any(|l| l.hostname.is_some());
    let mut header = vec![
        "ADDRESS",
        "COUNTRY",
        "ASN",
        "ORGANISATION",
        "OPERATOR",
        "JURISDICTION",
        "CLOUD ACT",
    ];
    if with_host {
        header.insert(0, "HOST");
    }
    let dash = || "-".to_owned();
    let rows: Vec<Vec<String>> = locations
        .iter()
        .map(|l| {
            let mut row = vec![
                l.address.clone(),
                l.country.clone().unwrap_or_else(dash),
                l.asn.map_or_else(dash, |a| format!("AS{a}")),
                l.organisation
                    .as_deref()
                    .map_or_else(dash, |o| crate::text::shorten(o, 40)),
                l.operator.clone().unwrap_or_else(dash),
                l.jurisdiction.clone().unwrap_or_else(dash),
                match l.cloud_act_exposed {
                    Some(true) => "exposed".to_owned(),
                    Some(false) => "not exposed".to_owned(),
                    None => "unknown".to_owned(),
                },
            ];
            if with_host {
                row.insert(0, l.hostname.clone().unwrap_or_else(dash));
            }
            row
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let last = cells.len().saturating_sub(1);
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = line(header);
    for row in &rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out.push('\n');
    for l in locations {
        out.push_str(&format!("{}: {}\n", l.address, l.reason));
    }
    out.push('\n');
    out.push_str(ATTRIBUTION);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(address: &str, hostname: Option<&str>, organisation: Option<&str>) -> Location {
        Location {
            address: address.into(),
            country: Some("FR".into()),
            asn: Some(16276),
            organisation: organisation.map(str::to_owned),
            operator: Some("OVHcloud".into()),
            jurisdiction: Some("FR".into()),
            cloud_act_exposed: Some(false),
            reason: "operated by OVHcloud".into(),
            hostname: hostname.map(str::to_owned),
        }
    }

    #[test]
    fn the_table_has_a_host_column_only_when_a_name_was_given() {
        let text = table(&[location("51.38.1.1", None, Some("OVH SAS"))]);
        let header = text.lines().next().unwrap_or_default();
        assert!(
            header.starts_with("ADDRESS") && header.ends_with("CLOUD ACT"),
            "{header}"
        );
        assert!(
            text.contains("51.38.1.1: operated by OVHcloud\n")
                && text.ends_with(&format!("{ATTRIBUTION}\n")),
            "{text}"
        );
        let text = table(&[
            location("51.38.1.1", Some("crm.example.fr"), None),
            location("51.38.1.2", None, None),
        ]);
        assert!(text.starts_with("HOST"), "{text}");
        assert!(
            text.lines().nth(2).unwrap_or_default().starts_with("-  "),
            "an address given as such has no host: {text}"
        );
    }

    #[test]
    fn long_organisations_are_cut() {
        let long = "A".repeat(60);
        let text = table(&[location("51.38.1.1", None, Some(&long))]);
        assert!(
            text.contains(&format!("{}…", "A".repeat(39))) && !text.contains(&long),
            "{text}"
        );
    }
}
