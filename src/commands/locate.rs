//! `terroir locate ADDRESS|HOSTNAME...`: where each address is, who operates it and whether the
//! US CLOUD Act reaches it.

use std::io::Write;
use std::net::IpAddr;

use super::Outcome;
use crate::cli::LocateArgs;
use crate::policy::locality::catalog::Catalog;
use crate::policy::locality::geodata::{ATTRIBUTION, GeoDb};
use crate::policy::locality::locate::{self, Location};

pub fn run(args: &LocateArgs, json: bool) -> Outcome {
    // Names first: a typo is reported before the index is loaded.
    let mut targets: Vec<(Option<&str>, Vec<IpAddr>)> = Vec::new();
    let mut failed = false;
    for t in &args.targets {
        match locate::resolve(t) {
            Ok(ips) => {
                let literal = ips.len() == 1
                    && t.trim()
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<IpAddr>()
                        .is_ok();
                targets.push(((!literal).then_some(t.as_str()), ips));
            }
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    if failed {
        return Outcome::Invalid;
    }
    let geo = match GeoDb::open(args.data.geodata.as_deref()) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: cannot load the geodata: {e}");
            return Outcome::Invalid;
        }
    };
    let catalog = Catalog::builtin();
    let locations: Vec<Location> = targets
        .into_iter()
        .flat_map(|(host, ips)| {
            let geo = &geo;
            ips.into_iter().map(move |ip| Location {
                hostname: host.map(str::to_owned),
                ..locate::judge(ip, geo, catalog)
            })
        })
        .collect();
    let mut out = std::io::stdout().lock();
    let written = if json {
        serde_json::to_string_pretty(&locations)
            .map_err(std::io::Error::other)
            .and_then(|s| writeln!(out, "{s}"))
    } else {
        write!(out, "{}", text_report(&locations))
    };
    match written {
        Ok(()) => Outcome::Success,
        // stdout closed early (`| head`): nothing more to say
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Outcome::Success,
        Err(e) => {
            eprintln!("error: cannot write the report: {e}");
            Outcome::Invalid
        }
    }
}

/// The table, one reason line per address, then the data's attribution.
pub fn text_report(locations: &[Location]) -> String {
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
                    .map_or_else(dash, |o| shorten(o, 40)),
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

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        s.chars().take(max.saturating_sub(1)).collect::<String>() + "…"
    }
}
