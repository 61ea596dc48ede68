//! `terroir geodata` and the geodata index, against the real ip-location-db packages kept in
//! ../shared/geodata, and a fake npm registry on 127.0.0.1 for `update` (never the real one).
#![allow(clippy::unwrap_used)]

use crate::common;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use common::*;
use predicates::prelude::*;
use sha2::{Digest, Sha512};
use terroir::policy::locality::geodata::{self, ASN_PACKAGE, COUNTRY_PACKAGE, GeoDb};

fn shared() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/geodata"))
}

/// The shared tarball of `package`.
fn tarball(package: &str) -> PathBuf {
    let prefix = geodata::tarball_file_name(package, "");
    let prefix = prefix.trim_end_matches(".tgz");
    std::fs::read_dir(shared())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .strip_prefix(prefix)
                .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
        })
        .unwrap_or_else(|| panic!("no {package} tarball in {}", shared().display()))
}

fn version_of(path: &Path) -> String {
    geodata::identify_tarball(path).unwrap().1
}

/// A home of its own for each test: nothing is written outside it.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn data(&self) -> PathBuf {
        self.path().join("data/terroir/geodata")
    }
    fn cache(&self) -> PathBuf {
        self.path().join("cache/terroir/geodata")
    }
    fn cmd(&self) -> assert_cmd::Command {
        let mut cmd = terroir();
        cmd.env("HOME", self.path())
            .env("XDG_DATA_HOME", self.path().join("data"))
            .env("XDG_CACHE_HOME", self.path().join("cache"))
            .env_remove("TERROIR_GEODATA")
            .env_remove("TERROIR_NPM_REGISTRY");
        for v in [
            "http_proxy",
            "HTTP_PROXY",
            "https_proxy",
            "HTTPS_PROXY",
            "all_proxy",
            "ALL_PROXY",
        ] {
            cmd.env_remove(v);
        }
        cmd
    }
    fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self
            .cmd()
            .args(["-o", "json", "geodata"])
            .args(args)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        serde_json::from_slice(&out).unwrap()
    }
}

/// Name -> content of every file in `dir`.
fn listing(dir: &Path) -> HashMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn status_reports_the_shared_packages_and_caches_the_index() {
    let home = Home::new();
    let dir = shared();
    let v = home.json(&["status", "--geodata", dir.to_str().unwrap()]);
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    let packages = v["packages"].as_array().unwrap();
    assert_eq!(packages.len(), 2);
    for (p, name) in packages.iter().zip([COUNTRY_PACKAGE, ASN_PACKAGE]) {
        let file = tarball(name);
        assert_eq!(p["name"], name);
        assert_eq!(p["version"], version_of(&file));
        let line = format!(
            "{}  {}",
            p["sha256"].as_str().unwrap(),
            file.file_name().unwrap().to_str().unwrap()
        );
        assert!(sums.lines().any(|l| l == line), "{line} is in SHA256SUMS");
    }
    assert!(v["ranges"]["country"].as_u64().unwrap() > 100_000, "{v}");
    assert!(v["ranges"]["asn"].as_u64().unwrap() > 100_000, "{v}");
    assert_eq!(v["dir"], dir.to_str().unwrap());
    let index = PathBuf::from(v["index"].as_str().unwrap());
    assert!(
        index.starts_with(home.cache()) && index.is_file(),
        "{}",
        index.display()
    );
    assert_eq!(v["fromCache"], false);
    // the second time it is read from the cache
    assert_eq!(
        home.json(&["status", "--geodata", dir.to_str().unwrap()])["fromCache"],
        true
    );
    // text for people, with the attribution the licences require
    home.cmd()
        .args(["geodata", "status"])
        .env("TERROIR_GEODATA", &dir)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("loaded from the cache")
                .and(predicate::str::contains("DB-IP"))
                .and(predicate::str::contains("RouteViews")),
        );
}

#[test]
fn status_without_data_says_what_to_do() {
    let home = Home::new();
    home.cmd()
        .args(["geodata", "status"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("no geodata in")
                .and(predicate::str::contains("terroir geodata update"))
                .and(predicate::str::contains("--geodata")),
        );
    let out = home
        .cmd()
        .args(["-o", "json", "geodata", "status"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert!(v["error"].as_str().unwrap().contains("no geodata in"));
}

#[test]
fn import_recognises_each_package_and_replaces_older_versions() {
    let home = Home::new();
    let data = home.data();
    // an older version of the ASN package already there is replaced
    std::fs::create_dir_all(&data).unwrap();
    let old = data.join(geodata::tarball_file_name(ASN_PACKAGE, "1.0.0"));
    std::fs::write(&old, b"old").unwrap();
    // given in any order, recognised by the package.json inside, not by file name
    let tmp = tempfile::tempdir().unwrap();
    let renamed = tmp.path().join("whatever.tgz");
    std::fs::copy(tarball(COUNTRY_PACKAGE), &renamed).unwrap();
    let out = home
        .cmd()
        .args(["-o", "json", "geodata", "import"])
        .arg(tarball(ASN_PACKAGE))
        .arg(&renamed)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["dir"], data.to_str().unwrap());
    assert_eq!(v["removed"], serde_json::json!([old.to_str().unwrap()]));
    let mut names: Vec<String> = listing(&data).into_keys().collect();
    names.sort();
    let mut expected = vec![
        geodata::tarball_file_name(ASN_PACKAGE, &version_of(&tarball(ASN_PACKAGE))),
        geodata::tarball_file_name(COUNTRY_PACKAGE, &version_of(&tarball(COUNTRY_PACKAGE))),
    ];
    expected.sort();
    assert_eq!(
        names, expected,
        "the two packages under their npm names, nothing else"
    );
    assert_eq!(
        std::fs::read(data.join(&expected[0])).unwrap(),
        std::fs::read(tarball(ASN_PACKAGE)).unwrap()
    );
    // status now finds them in the default data directory, index already cached by the import
    let s = home.json(&["status"]);
    assert_eq!(s["fromCache"], true);
    assert_eq!(s["packages"], v["packages"]);
}

#[test]
fn import_refuses_what_is_not_geodata_and_says_what_is_missing() {
    let home = Home::new();
    let tmp = tempfile::tempdir().unwrap();
    // a valid npm tarball of another package
    let other = tmp.path().join("other-1.0.0.tgz");
    {
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&other).unwrap(),
            flate2::Compression::fast(),
        );
        let mut tar = tar::Builder::new(gz);
        let json = br#"{"name":"left-pad","version":"1.0.0"}"#;
        let mut header = tar::Header::new_gnu();
        header.set_size(json.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, "package/package.json", &json[..])
            .unwrap();
        tar.into_inner().unwrap().finish().unwrap();
    }
    home.cmd()
        .args(["geodata", "import"])
        .arg(&other)
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("not an ip-location-db geodata package")
                .and(predicate::str::contains("left-pad")),
        );
    let garbage = tmp.path().join("garbage.tgz");
    std::fs::write(&garbage, b"not gzip").unwrap();
    home.cmd()
        .args(["geodata", "import"])
        .arg(&garbage)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("garbage.tgz"));
    assert!(
        !home.data().exists() || listing(&home.data()).is_empty(),
        "nothing was left behind"
    );
    // one package alone is installed, and the message names the other one
    home.cmd()
        .args(["geodata", "import"])
        .arg(tarball(ASN_PACKAGE))
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains(COUNTRY_PACKAGE)
                .and(predicate::str::contains("terroir geodata update")),
        );
    assert_eq!(listing(&home.data()).len(), 1);
}

#[test]
fn a_corrupt_or_foreign_cache_file_is_rebuilt() {
    let home = Home::new();
    let dir = shared();
    let dir = dir.to_str().unwrap();
    let v = home.json(&["status", "--geodata", dir]);
    let index = PathBuf::from(v["index"].as_str().unwrap());
    let good = std::fs::read(&index).unwrap();
    let damaged: [fn(&mut Vec<u8>); 3] = [
        |b| b.truncate(b.len() / 3),
        |b| {
            let i = b.len() / 2;
            b[i] ^= 0x40;
        },
        // another format version
        |b| b[8] = b[8].wrapping_add(1),
    ];
    for damage in damaged {
        let mut bytes = good.clone();
        damage(&mut bytes);
        std::fs::write(&index, &bytes).unwrap();
        let v = home.json(&["status", "--geodata", dir]);
        assert_eq!(v["fromCache"], false, "a damaged index is not used");
        assert_eq!(PathBuf::from(v["index"].as_str().unwrap()), index);
        assert_eq!(std::fs::read(&index).unwrap(), good, "and is written again");
    }
    assert_eq!(home.json(&["status", "--geodata", dir])["fromCache"], true);
}

#[test]
fn an_unwritable_cache_leaves_the_index_in_memory() {
    let home = Home::new();
    // the cache "directory" is a file: it cannot be created
    std::fs::write(home.path().join("cache"), b"").unwrap();
    let v = home.json(&["status", "--geodata", shared().to_str().unwrap()]);
    assert_eq!(v["index"], serde_json::Value::Null);
    assert!(v["ranges"]["asn"].as_u64().unwrap() > 0);
}

// ---------------------------------------------------------------------------------------------
// Lookups, checked against the data files themselves.

fn db() -> &'static GeoDb {
    static DB: std::sync::OnceLock<GeoDb> = std::sync::OnceLock::new();
    DB.get_or_init(|| GeoDb::open_with_cache(Some(&shared()), None).unwrap())
}

struct Row {
    first: IpAddr,
    last: IpAddr,
    asn: u32,
    org: String,
}

fn asn_rows(member: &str) -> Vec<Row> {
    let csv = geodata::tarball_member(&tarball(ASN_PACKAGE), member)
        .unwrap()
        .unwrap();
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(&csv[..])
        .records()
        .map(|r| {
            let r = r.unwrap();
            Row {
                first: r[0].parse().unwrap(),
                last: r[1].parse().unwrap(),
                asn: r[2].parse().unwrap(),
                org: r[3].to_owned(),
            }
        })
        .collect()
}

fn key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn ip_of(v6: bool, k: u128) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(k))
    } else {
        IpAddr::V4(Ipv4Addr::from(u32::try_from(k).unwrap()))
    }
}

#[test]
fn asn_lookups_match_the_csv_rows_at_their_edges_and_in_the_gaps() {
    let db = db();
    for (member, v6) in [("asn-ipv4.csv", false), ("asn-ipv6.csv", true)] {
        let rows = asn_rows(member);
        let mut checked = 0;
        let mut gaps = 0;
        let mut quoted = 0;
        let step = rows.len() / 2000;
        for i in (1..rows.len() - 1)
            .step_by(step)
            .chain([1, rows.len() - 2])
            .chain(
                (1..rows.len() - 1)
                    .filter(|&i| rows[i].org.contains(','))
                    .take(50),
            )
        {
            let (prev, row, next) = (&rows[i - 1], &rows[i], &rows[i + 1]);
            // rows that overlap a neighbour are settled by the more specific one: not an edge to test
            if key(prev.last) >= key(row.first) || key(row.last) >= key(next.first) {
                continue;
            }
            for ip in [row.first, row.last] {
                assert_eq!(
                    db.asn(ip),
                    Some((row.asn, row.org.as_str())),
                    "{member}: {ip} is in {}-{}",
                    row.first,
                    row.last
                );
            }
            checked += 1;
            quoted += usize::from(row.org.contains(','));
            let after = key(row.last) + 1;
            if after < key(next.first) {
                assert_eq!(
                    db.asn(ip_of(v6, after)),
                    None,
                    "{member}: {} is in the gap after {}",
                    ip_of(v6, after),
                    row.last
                );
                gaps += 1;
            }
        }
        assert!(
            checked > 1000 && gaps > 10 && quoted > 10,
            "{member}: {checked} rows, {gaps} gaps, {quoted} quoted organisations"
        );
    }
}

#[test]
fn well_known_operators() {
    let db = db();
    let amazon = asn_rows("asn-ipv4.csv")
        .into_iter()
        .filter(|r| r.asn == 16509)
        .map(|r| r.first)
        .take(3)
        .collect::<Vec<_>>();
    assert_eq!(amazon.len(), 3);
    for ip in amazon
        .into_iter()
        .chain(["52.94.76.1", "3.5.140.2", "15.236.0.1"].map(|s| s.parse().unwrap()))
    {
        assert_eq!(
            db.asn(ip).map(|a| a.0),
            Some(16509),
            "{ip} is Amazon's (AS16509)"
        );
    }
    assert_eq!(
        db.asn("1.1.1.1".parse().unwrap()),
        Some((13335, "Cloudflare, Inc."))
    );
    assert_eq!(db.asn("8.8.8.8".parse().unwrap()).map(|a| a.0), Some(15169));
    assert_eq!(
        db.asn("91.121.0.1".parse().unwrap()).map(|a| a.0),
        Some(16276),
        "OVH"
    );
    let facts = db.lookup("::ffff:1.1.1.1".parse().unwrap());
    assert_eq!(
        facts.asn,
        Some(13335),
        "IPv4-mapped IPv6 is looked up as IPv4"
    );
    assert_eq!(facts, db.lookup("1.1.1.1".parse().unwrap()));
    assert_eq!(db.lookup("127.0.0.1".parse().unwrap()).asn, None);
}

#[test]
fn country_lookups_match_the_mmdb_file() {
    let db = db();
    let mmdb = geodata::tarball_member(&tarball(COUNTRY_PACKAGE), "geo-whois-asn-country.mmdb")
        .unwrap()
        .unwrap();
    let reader = maxminddb::Reader::from_source(mmdb).unwrap();
    #[derive(serde::Deserialize)]
    struct Record<'a> {
        #[serde(borrow)]
        country_code: Option<&'a str>,
    }
    let expected = |ip: IpAddr| -> Option<String> {
        reader
            .lookup(ip)
            .unwrap()
            .decode::<Record<'_>>()
            .unwrap()
            .and_then(|r| r.country_code)
            .map(str::to_owned)
    };
    // a deterministic pseudo-random walk over both address spaces, plus the edges of networks
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut found = 0;
    for _ in 0..20_000 {
        let v4 = IpAddr::V4(Ipv4Addr::from(next() as u32));
        assert_eq!(db.country(v4).map(str::to_owned), expected(v4), "{v4}");
        found += usize::from(db.country(v4).is_some());
        // IPv6: mostly inside 2000::/4, where the allocations are
        let v6 = IpAddr::V6(Ipv6Addr::from(
            (0x2u128 << 124) | ((u128::from(next()) << 64 | u128::from(next())) >> 4),
        ));
        assert_eq!(db.country(v6).map(str::to_owned), expected(v6), "{v6}");
        let mapped = match v4 {
            IpAddr::V4(a) => IpAddr::V6(a.to_ipv6_mapped()),
            IpAddr::V6(_) => unreachable!(),
        };
        assert_eq!(db.country(mapped), db.country(v4), "{mapped}");
    }
    assert!(found > 10_000, "most of IPv4 has a country: {found}");
    // the first and last address of networks in the file, and the addresses just outside them
    let mut edges = 0;
    for (i, item) in reader.networks(Default::default()).unwrap().enumerate() {
        if i % 997 != 0 {
            continue;
        }
        let net = item.unwrap().network().unwrap();
        let (first, last) = match net.network() {
            IpAddr::V4(a) => {
                let host = u32::MAX.checked_shr(u32::from(net.prefix())).unwrap_or(0);
                (u128::from(u32::from(a)), u128::from(u32::from(a) | host))
            }
            IpAddr::V6(a) => {
                let host = u128::MAX.checked_shr(u32::from(net.prefix())).unwrap_or(0);
                (u128::from(a), u128::from(a) | host)
            }
        };
        let v6 = net.network().is_ipv6();
        for k in [
            first.checked_sub(1),
            Some(first),
            Some(last),
            last.checked_add(1),
        ]
        .into_iter()
        .flatten()
        {
            if !v6 && k > u128::from(u32::MAX) {
                continue;
            }
            let ip = ip_of(v6, k);
            assert_eq!(
                db.country(ip).map(str::to_owned),
                expected(ip),
                "{ip} (edge of {net})"
            );
            edges += 1;
        }
    }
    assert!(edges > 1000, "{edges}");
}

// ---------------------------------------------------------------------------------------------
// `geodata update` against a fake npm registry on 127.0.0.1.

struct FakeRegistry {
    server: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
    url: String,
}

impl FakeRegistry {
    /// Serves `routes` (path -> body); anything else is a 404.
    fn start(routes: impl FnOnce(&str) -> HashMap<String, Vec<u8>>) -> FakeRegistry {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let url = format!("http://{}", server.server_addr().to_ip().unwrap());
        let routes = routes(&url);
        let s = server.clone();
        let thread = std::thread::spawn(move || {
            for request in s.incoming_requests() {
                let path = request.url().replace("%2F", "%2f");
                let _ = match routes.get(&path) {
                    Some(body) => request.respond(tiny_http::Response::from_data(body.clone())),
                    None => request.respond(
                        tiny_http::Response::from_string("not found").with_status_code(404),
                    ),
                };
            }
        });
        FakeRegistry {
            server,
            thread: Some(thread),
            url,
        }
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn sri(bytes: &[u8]) -> String {
    format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha512::digest(bytes))
    )
}

/// npm registry metadata for one version of a package, in the abbreviated form npm asks for.
fn metadata(name: &str, version: &str, tarball: &str, integrity: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "name": name,
        "dist-tags": {"latest": version},
        "versions": {version: {"name": name, "version": version, "dist": {"tarball": tarball, "integrity": integrity, "shasum": "0"}}},
    }))
    .unwrap()
}

/// Routes for both packages; `tamper` may change the ASN package's (version, integrity).
fn registry_routes(
    base: &str,
    tamper: impl Fn(String, String) -> (String, String),
) -> HashMap<String, Vec<u8>> {
    let mut routes = HashMap::new();
    for (i, package) in [COUNTRY_PACKAGE, ASN_PACKAGE].into_iter().enumerate() {
        let bytes = std::fs::read(tarball(package)).unwrap();
        let (mut version, mut integrity) = (version_of(&tarball(package)), sri(&bytes));
        if package == ASN_PACKAGE {
            (version, integrity) = tamper(version, integrity);
        }
        let path = format!("/tarballs/{i}.tgz");
        routes.insert(
            format!("/{}", package.replacen('/', "%2f", 1)),
            metadata(package, &version, &format!("{base}{path}"), &integrity),
        );
        routes.insert(path, bytes);
    }
    routes
}

#[test]
fn update_installs_packages_whose_integrity_matches() {
    let home = Home::new();
    let registry = FakeRegistry::start(|base| registry_routes(base, |v, i| (v, i)));
    let out = home
        .cmd()
        .args([
            "-o",
            "json",
            "geodata",
            "update",
            "--registry",
            &registry.url,
        ])
        .assert()
        .success()
        .get_output()
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // with --output json no progress is shown: the report says what was verified
    let verified = v["verified"].as_array().unwrap();
    assert_eq!(verified.len(), 2, "{v}");
    for (p, package) in verified.iter().zip([COUNTRY_PACKAGE, ASN_PACKAGE]) {
        assert_eq!(p["name"], package);
        assert_eq!(
            p["integrity"],
            sri(&std::fs::read(tarball(package)).unwrap()),
            "integrity verified: {p}"
        );
    }
    for (p, package) in v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .zip([COUNTRY_PACKAGE, ASN_PACKAGE])
    {
        assert_eq!(p["name"], package);
        let bytes = std::fs::read(tarball(package)).unwrap();
        assert_eq!(p["sha256"], terroir::text::sha256_hex(&bytes));
        let installed = home.data().join(geodata::tarball_file_name(
            package,
            p["version"].as_str().unwrap(),
        ));
        assert_eq!(std::fs::read(installed).unwrap(), bytes);
    }
    assert!(
        v["index"]
            .as_str()
            .unwrap()
            .starts_with(home.cache().to_str().unwrap())
    );
    assert_eq!(listing(&home.data()).len(), 2, "no temporary file left");
    // again: nothing to download
    home.cmd()
        .args(["geodata", "update", "--registry", &registry.url])
        .assert()
        .success()
        .stderr(
            predicate::str::contains("up to date").and(predicate::str::contains("fetching").not()),
        );
}

#[test]
fn update_refuses_a_tarball_whose_integrity_does_not_match_and_replaces_nothing() {
    let home = Home::new();
    home.cmd()
        .args(["geodata", "import"])
        .arg(tarball(COUNTRY_PACKAGE))
        .arg(tarball(ASN_PACKAGE))
        .assert()
        .success();
    let before = listing(&home.data());
    // a "newer" version whose tarball is not what the registry's hash says
    let registry = FakeRegistry::start(|base| {
        registry_routes(base, |_, _| ("9.9.9".into(), sri(b"some other tarball")))
    });
    home.cmd()
        .args(["geodata", "update", "--registry", &registry.url])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("does not match the registry's integrity hash")
                .and(predicate::str::contains("nothing was replaced"))
                .and(predicate::str::contains("9.9.9")),
        );
    assert_eq!(
        listing(&home.data()),
        before,
        "the data directory is untouched"
    );
    // no SRI at all: refused too
    let registry = FakeRegistry::start(|base| {
        registry_routes(base, |_, _| ("9.9.9".into(), "sha1-AAAA".into()))
    });
    home.cmd()
        .args(["geodata", "update", "--registry", &registry.url])
        .assert()
        .failure()
        .stderr(predicate::str::contains("cannot be verified"));
    assert_eq!(listing(&home.data()), before);
    // a registry without the package
    let registry = FakeRegistry::start(|_| HashMap::new());
    home.cmd()
        .args(["geodata", "update", "--registry", &registry.url])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("404"));
    assert_eq!(listing(&home.data()), before);
}
