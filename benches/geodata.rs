//! Benchmark: the geodata index (`terroir::policy::locality::geodata`).
//!
//! Reports the time to build the index from the two package tarballs, to load it from the cache
//! (`GeoDb::open` end to end: finding the tarballs, recognising them, reading and checking the
//! cached index), one million random IPv4 lookups (country + ASN + organisation) on one thread,
//! and the same million country lookups done by the `maxminddb` crate on the same .mmdb file.
//!
//!   cargo bench --bench geodata
//!   TERROIR_BENCH_GEODATA=DIR cargo bench --bench geodata     # another data directory

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use terroir::policy::locality::geodata::{self, COUNTRY_PACKAGE, GeoDb};

const LOOKUPS: usize = 1_000_000;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn per_lookup(d: Duration) -> String {
    format!("{:.0} ns", d.as_secs_f64() * 1e9 / LOOKUPS as f64)
}

fn main() {
    let dir = std::env::var_os("TERROIR_BENCH_GEODATA").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/geodata")),
        PathBuf::from,
    );
    let cache = tempfile::tempdir().expect("a temporary cache directory");

    // build from the tarballs (no cache involved)
    let mut builds = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let db = GeoDb::open_with_cache(Some(&dir), None).expect("the geodata builds");
        builds.push(t.elapsed());
        black_box(db.ranges());
    }
    // first open with a cache: build and write it; then loads from it
    let first = GeoDb::open_with_cache(Some(&dir), Some(cache.path())).expect("the geodata opens");
    let index_path = first.index_path().expect("the index is cached").to_owned();
    let index_size = std::fs::metadata(&index_path).map(|m| m.len()).unwrap_or(0);
    drop(first);
    let mut loads = Vec::new();
    let mut db = None;
    for _ in 0..10 {
        let t = Instant::now();
        let d = GeoDb::open_with_cache(Some(&dir), Some(cache.path())).expect("the geodata opens");
        loads.push(t.elapsed());
        assert!(d.loaded_from_cache());
        db = Some(d);
    }
    let db = db.expect("opened");
    let (country_ranges, asn_ranges) = db.ranges();

    // the same random IPv4 addresses for both
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let ips: Vec<IpAddr> = (0..LOOKUPS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            IpAddr::V4(Ipv4Addr::from((x >> 16) as u32))
        })
        .collect();

    let t = Instant::now();
    let mut found = (0usize, 0usize, 0usize);
    for &ip in &ips {
        if let Some(c) = db.country(ip) {
            found.0 += c.len() / 2;
        }
        if let Some((asn, org)) = db.asn(ip) {
            found.1 += usize::from(asn != 0);
            found.2 += org.len();
        }
    }
    let ours = t.elapsed();
    black_box(found);

    // The full question `locate` answers: country, ASN, and the operator from the provider catalog.
    let catalog = terroir::policy::locality::catalog::Catalog::builtin();
    let t = Instant::now();
    let mut with_operator = (0usize, 0usize);
    for &ip in &ips {
        if let Some(c) = db.country(ip) {
            with_operator.0 += c.len() / 2;
        }
        if let Some((asn, _)) = db.asn(ip)
            && let Some(op) = catalog.by_asn(asn)
        {
            with_operator.1 += op.name.len();
        }
    }
    let ours_operator = t.elapsed();
    black_box(with_operator);

    let t = Instant::now();
    let mut owned = 0usize;
    for &ip in &ips {
        let facts = db.lookup(ip);
        owned += usize::from(facts.country.is_some()) + usize::from(facts.asn.is_some());
    }
    let ours_owned = t.elapsed();
    black_box(owned);

    let t = Instant::now();
    let mut country_only = 0usize;
    for &ip in &ips {
        country_only += usize::from(db.country(ip).is_some());
    }
    let ours_country = t.elapsed();

    // maxminddb reading the same .mmdb (extracted from the tarball into memory)
    let mmdb = geodata::tarball_member(&tarball(&dir), "geo-whois-asn-country.mmdb")
        .expect("readable tarball")
        .expect("the .mmdb is in the package");
    let t = Instant::now();
    let reader = maxminddb::Reader::from_source(mmdb).expect("a valid MaxMind DB");
    let mmdb_open = t.elapsed();
    #[derive(serde::Deserialize)]
    struct Record<'a> {
        #[serde(borrow)]
        country_code: Option<&'a str>,
    }
    let t = Instant::now();
    let mut theirs_found = 0usize;
    for &ip in &ips {
        let r = reader.lookup(ip).expect("lookup");
        if let Some(Record {
            country_code: Some(_),
        }) = r.decode::<Record<'_>>().expect("decodes")
        {
            theirs_found += 1;
        }
    }
    let theirs = t.elapsed();
    assert_eq!(
        theirs_found, country_only,
        "both find a country for the same addresses"
    );

    println!(
        "geodata index ({}), {country_ranges} country ranges, {asn_ranges} ASN ranges, cached index {:.1} MB",
        dir.display(),
        index_size as f64 / 1e6
    );
    println!("{:<58} {:>12} {:>12}", "", "time", "per lookup");
    println!(
        "{:<58} {:>12}",
        "build from the tarballs (median of 3)",
        ms(median(builds))
    );
    println!(
        "{:<58} {:>12}",
        "open from the cache (median of 10)",
        ms(median(loads))
    );
    println!(
        "{:<58} {:>12} {:>12}",
        "1M IPv4 lookups: country + ASN + organisation (&str)",
        ms(ours),
        per_lookup(ours)
    );
    println!(
        "{:<58} {:>12} {:>12}",
        "1M IPv4 lookups: country + ASN + operator (catalog)",
        ms(ours_operator),
        per_lookup(ours_operator)
    );
    println!(
        "{:<58} {:>12} {:>12}",
        "1M IPv4 lookups: lookup() -> IpFacts (owned strings)",
        ms(ours_owned),
        per_lookup(ours_owned)
    );
    println!(
        "{:<58} {:>12} {:>12}",
        "1M IPv4 lookups: country only",
        ms(ours_country),
        per_lookup(ours_country)
    );
    println!(
        "{:<58} {:>12} {:>12}",
        "1M IPv4 lookups: country only, maxminddb crate (same .mmdb)",
        ms(theirs),
        per_lookup(theirs)
    );
    println!(
        "{:<58} {:>12}",
        "maxminddb: open the .mmdb (already in memory)",
        ms(mmdb_open)
    );
    println!(
        "one thread; {} of {LOOKUPS} random addresses have a country, {} an ASN",
        country_only, found.1
    );
}

fn tarball(dir: &std::path::Path) -> PathBuf {
    let prefix = geodata::tarball_file_name(COUNTRY_PACKAGE, "");
    let prefix = prefix.trim_end_matches(".tgz").to_owned();
    std::fs::read_dir(dir)
        .expect("readable data directory")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix(&prefix))
                .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
        })
        .max()
        .expect("the country package tarball")
}
