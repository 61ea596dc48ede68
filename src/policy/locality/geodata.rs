//! The geodata index: IP address -> country, autonomous system and the organisation behind it.
//!
//! Built from two npm packages of the ip-location-db project, kept unchanged as tarballs in a data
//! directory (`terroir geodata update` fetches them, `terroir geodata import` takes copies):
//!
//! - `@ip-location-db/geo-whois-asn-country-mmdb`: `package/geo-whois-asn-country.mmdb`, a MaxMind
//!   DB mapping IPv4 and IPv6 networks to an ISO 3166-1 country code;
//! - `@ip-location-db/asn`: `package/asn-ipv4.csv` and `package/asn-ipv6.csv`, rows of
//!   `first_ip,last_ip,asn,organisation` (CC BY 4.0, DB-IP and RouteViews: see [`ATTRIBUTION`]).
//!
//! Both are turned into sorted arrays of range starts, gaps included, searched by binary search
//! (IPv4 keys are `u32`, with a table indexed by the top 16 bits that narrows each search to one
//! /16; IPv6 keys are `u128`). Country codes live in a small table; organisations are interned in
//! one string with `u32` offsets. The index is cached under `$XDG_CACHE_HOME/terroir/geodata`,
//! named after the SHA-256 of the two tarballs, in a versioned little-endian binary format that
//! is checked (structure and checksum) on load and rebuilt when it does not pass.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The attribution the data's licences require, for documentation and reports.
pub const ATTRIBUTION: &str = "IP geolocation by DB-IP (db-ip.com, CC BY 4.0); country data from geofeeds and \
     the Regional Internet Registries' statistics (NRO, nro.net, CC BY 4.0); ASN data from RouteViews \
     (routeviews.org, CC BY 4.0) and DB-IP; via ip-location-db (github.com/sapics/ip-location-db)";

/// The npm package with the IP-to-country MaxMind DB.
pub const COUNTRY_PACKAGE: &str = "@ip-location-db/geo-whois-asn-country-mmdb";
/// The npm package with the IP-to-ASN CSV files.
pub const ASN_PACKAGE: &str = "@ip-location-db/asn";
/// Both packages, in the order [`GeoDb::packages`] lists them.
pub const PACKAGES: [&str; 2] = [COUNTRY_PACKAGE, ASN_PACKAGE];

const MMDB_MEMBER: &str = "geo-whois-asn-country.mmdb";
const ASN_MEMBERS: [&str; 2] = ["asn-ipv4.csv", "asn-ipv6.csv"];

const MAGIC: &[u8; 8] = b"TRGEOIDX";
/// Version of the cached index format; a cache file of another version is rebuilt.
pub const INDEX_FORMAT_VERSION: u32 = 1;
/// How many index files the cache keeps (the newest ones).
const CACHE_KEEP: usize = 4;

/// What the geodata says about one address.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IpFacts {
    /// ISO 3166-1 alpha-2 country code.
    pub country: Option<String>,
    /// Autonomous system number announcing the address.
    pub asn: Option<u32>,
    /// The organisation the autonomous system is registered to.
    pub organisation: Option<String>,
}

/// One package the index was built from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PackageInfo {
    pub name: String,
    pub version: String,
    /// SHA-256 of the package tarball, hex.
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum GeodataError {
    #[error("no geodata in {}: run `terroir geodata update` or pass --geodata DIR (a directory holding the two ip-location-db tarballs)", dir.display())]
    NoData { dir: PathBuf },
    #[error("geodata in {} lacks the {package} package (a file named {pattern}): run `terroir geodata update`, or `terroir geodata import FILE.tgz` with that package's tarball", dir.display())]
    MissingPackage {
        dir: PathBuf,
        package: &'static str,
        pattern: String,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a usable {package} package: {reason}; fetch it again with `terroir geodata update`", path.display())]
    BadPackage {
        path: PathBuf,
        package: String,
        reason: String,
    },
    #[error("{} is not an ip-location-db geodata package ({found}); expected one of {}", path.display(), PACKAGES.join(", "))]
    NotGeodata { path: PathBuf, found: String },
    #[error("npm registry: {url}: {reason}")]
    Registry { url: String, reason: String },
    #[error("npm registry: {url}: {what}")]
    Http {
        url: String,
        what: &'static str,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("npm registry: {url}: the package metadata is not JSON")]
    MetadataSyntax {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("npm registry: {url}: the download was interrupted")]
    Interrupted {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("npm registry: {url}: the tarball is not a usable geodata package")]
    UnusableTarball {
        url: String,
        #[source]
        source: Box<GeodataError>,
    },
    /// `expected` and `found` are each a package and its version.
    #[error("npm registry: {url}: the tarball holds {found}, not {expected} as the metadata says")]
    WrongTarball {
        url: String,
        expected: String,
        found: String,
    },
    /// Some packages were installed, but the geodata cannot be used until the rest are.
    #[error("installed {}; the geodata is still incomplete", installed.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    Incomplete {
        installed: Vec<PathBuf>,
        #[source]
        source: Box<GeodataError>,
    },
    #[error(
        "{package} {version}: the tarball from {url} does not match the registry's integrity hash (expected {expected}, got {actual}); it was discarded and nothing was replaced"
    )]
    Integrity {
        package: String,
        version: String,
        url: String,
        expected: String,
        actual: String,
    },
}

impl GeodataError {
    pub fn kind(&self) -> &'static str {
        match self {
            GeodataError::Integrity { .. } => "integrity",
            _ => "geodata",
        }
    }

    /// Facts for scripts: what was installed before the geodata turned out incomplete.
    pub fn details(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut details = serde_json::Map::new();
        if let GeodataError::Incomplete { installed, .. } = self {
            details.insert(
                "installed".into(),
                installed
                    .iter()
                    .map(|p| serde_json::Value::from(p.display().to_string()))
                    .collect(),
            );
        }
        details
    }

    fn read(path: &Path, source: std::io::Error) -> Self {
        GeodataError::Read {
            path: path.to_owned(),
            source,
        }
    }
    fn write(path: &Path, source: std::io::Error) -> Self {
        GeodataError::Write {
            path: path.to_owned(),
            source,
        }
    }
    fn bad(path: &Path, package: &str, reason: impl Into<String>) -> Self {
        GeodataError::BadPackage {
            path: path.to_owned(),
            package: package.to_owned(),
            reason: reason.into(),
        }
    }
}

/// The loaded index. Cheap to share between threads (`Send + Sync`, read-only).
pub struct GeoDb {
    dir: PathBuf,
    index: Index,
    index_path: Option<PathBuf>,
    from_cache: bool,
    cache_problem: Option<String>,
}

impl std::fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoDb")
            .field("dir", &self.dir)
            .field("packages", &self.index.packages)
            .field("ranges", &self.ranges())
            .field("index_path", &self.index_path)
            .field("from_cache", &self.from_cache)
            .finish()
    }
}

impl GeoDb {
    /// dir: the directory holding the two tarballs (None: [`GeoDb::default_dir`]).
    ///
    /// Loads the cached index when it matches the tarballs' SHA-256, else builds it and caches it
    /// in [`GeoDb::cache_dir`] (written atomically; when the cache directory is not writable the
    /// index is only kept in memory).
    pub fn open(dir: Option<&Path>) -> Result<GeoDb, GeodataError> {
        Self::open_with_cache(dir, Some(&Self::cache_dir()))
    }

    /// Like [`GeoDb::open`] with an explicit cache directory; `None` neither reads nor writes a
    /// cache (the index is built from the tarballs every time).
    pub fn open_with_cache(
        dir: Option<&Path>,
        cache_dir: Option<&Path>,
    ) -> Result<GeoDb, GeodataError> {
        let dir = dir.map_or_else(Self::default_dir, Path::to_path_buf);
        let files = current_files(&dir)?;
        open_files(&dir, &files, cache_dir)
    }

    /// `$XDG_DATA_HOME/terroir/geodata`, else `~/.local/share/terroir/geodata`.
    pub fn default_dir() -> PathBuf {
        xdg_dir("XDG_DATA_HOME", ".local/share")
            .join("terroir")
            .join("geodata")
    }

    /// `$XDG_CACHE_HOME/terroir/geodata`, else `~/.cache/terroir/geodata`.
    pub fn cache_dir() -> PathBuf {
        xdg_dir("XDG_CACHE_HOME", ".cache")
            .join("terroir")
            .join("geodata")
    }

    /// Country, autonomous system and organisation of `ip` (IPv4-mapped IPv6 addresses are looked
    /// up as IPv4).
    pub fn lookup(&self, ip: IpAddr) -> IpFacts {
        let asn = self.asn(ip);
        IpFacts {
            country: self.country(ip).map(str::to_owned),
            asn: asn.map(|a| a.0),
            organisation: asn.map(|a| a.1.to_owned()),
        }
    }

    /// ISO 3166-1 alpha-2 country code of `ip`.
    #[inline]
    pub fn country(&self, ip: IpAddr) -> Option<&str> {
        let code = match ip.to_canonical() {
            IpAddr::V4(v4) => self.index.c4.get(u32::from(v4)),
            IpAddr::V6(v6) => self.index.c6.get(u128::from(v6)),
        };
        self.index.country_code(code)
    }

    /// Autonomous system number of `ip` and the organisation it is registered to.
    #[inline]
    pub fn asn(&self, ip: IpAddr) -> Option<(u32, &str)> {
        let entry = match ip.to_canonical() {
            IpAddr::V4(v4) => self.index.a4.get(u32::from(v4)),
            IpAddr::V6(v6) => self.index.a6.get(u128::from(v6)),
        };
        self.index.as_entry(entry)
    }

    /// The packages the index was built from: the country package, then the ASN package.
    pub fn packages(&self) -> &[PackageInfo] {
        &self.index.packages
    }

    /// (country ranges, ASN ranges), IPv4 and IPv6 together, after merging adjacent ranges with
    /// the same answer.
    pub fn ranges(&self) -> (usize, usize) {
        let i = &self.index;
        (i.c4.ranges() + i.c6.ranges(), i.a4.ranges() + i.a6.ranges())
    }

    /// The data directory the tarballs were read from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cached index file in use, if the index is cached.
    pub fn index_path(&self) -> Option<&Path> {
        self.index_path.as_deref()
    }

    /// Whether the index was loaded from the cache (rather than built from the tarballs now).
    pub fn loaded_from_cache(&self) -> bool {
        self.from_cache
    }

    /// Why the index could not be cached, if it could not.
    pub fn cache_problem(&self) -> Option<&str> {
        self.cache_problem.as_deref()
    }
}

fn xdg_dir(var: &str, fallback: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(v) if Path::new(&v).is_absolute() => PathBuf::from(v),
        _ => std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map_or_else(|| PathBuf::from("."), PathBuf::from)
            .join(fallback),
    }
}

// ---------------------------------------------------------------------------------------------
// Data directory: which tarballs are there, staging and installing new ones.

/// The file name npm gives a package tarball (`npm pack`): `@scope/name` -> `scope-name-VERSION.tgz`.
pub fn tarball_file_name(package: &str, version: &str) -> String {
    format!("{}{version}.tgz", file_prefix(package))
}

fn file_prefix(package: &str) -> String {
    format!("{}-", package.trim_start_matches('@').replace('/', "-"))
}

/// The version in a file name `PREFIX-VERSION.tgz` for `package`, if the name is one.
fn version_in_name(package: &str, name: &str) -> Option<String> {
    let rest = name
        .strip_prefix(&file_prefix(package))?
        .strip_suffix(".tgz")?;
    // `ip-location-db-asn-mmdb-1.0.tgz` is another package: a version starts with a digit
    (rest.starts_with(|c: char| c.is_ascii_digit()) && valid_version(rest)).then(|| rest.to_owned())
}

fn valid_version(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_'))
}

/// Orders versions by their numeric dot-separated parts (then as text).
fn version_key(v: &str) -> (Vec<u64>, String) {
    (
        v.split(['.', '-', '+'])
            .map_while(|p| p.parse::<u64>().ok())
            .collect(),
        v.to_owned(),
    )
}

/// Tarballs of `package` in `dir` (name, version), newest first.
fn package_files(dir: &Path, package: &str) -> Result<Vec<(PathBuf, String)>, GeodataError> {
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(GeodataError::read(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| GeodataError::read(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(version) = version_in_name(package, name) {
            found.push((entry.path(), version));
        }
    }
    found.sort_by_key(|f| std::cmp::Reverse(version_key(&f.1)));
    Ok(found)
}

/// The tarballs in use in `dir`: [country, asn], the newest version of each.
fn current_files(dir: &Path) -> Result<[PathBuf; 2], GeodataError> {
    let country = package_files(dir, COUNTRY_PACKAGE)?;
    let asn = package_files(dir, ASN_PACKAGE)?;
    let missing = |package: &'static str| GeodataError::MissingPackage {
        dir: dir.to_owned(),
        package,
        pattern: tarball_file_name(package, "VERSION"),
    };
    match (country.into_iter().next(), asn.into_iter().next()) {
        (Some(c), Some(a)) => Ok([c.0, a.0]),
        (None, None) => Err(GeodataError::NoData {
            dir: dir.to_owned(),
        }),
        (None, Some(_)) => Err(missing(COUNTRY_PACKAGE)),
        (Some(_), None) => Err(missing(ASN_PACKAGE)),
    }
}

/// `name` and `version` from a tarball's `package/package.json`.
pub fn identify_tarball(path: &Path) -> Result<(String, String), GeodataError> {
    let mut meta = None;
    for_each_member(path, "a geodata", &mut |member, r| {
        if member == "package.json" {
            meta = Some(read_package_json(path, r)?);
        }
        Ok(())
    })?;
    meta.ok_or_else(|| GeodataError::NotGeodata {
        path: path.to_owned(),
        found: "no package/package.json inside".into(),
    })
}

/// One member of a package tarball, read into memory (`member` is the path below the top
/// directory, e.g. `geo-whois-asn-country.mmdb`).
pub fn tarball_member(path: &Path, member: &str) -> Result<Option<Vec<u8>>, GeodataError> {
    let mut out = None;
    for_each_member(path, "a geodata", &mut |name, r| {
        if name == member && out.is_none() {
            let mut buf = Vec::new();
            r.read_to_end(&mut buf)
                .map_err(|e| GeodataError::bad(path, "geodata", format!("{member}: {e}")))?;
            out = Some(buf);
        }
        Ok(())
    })?;
    Ok(out)
}

fn read_package_json(path: &Path, r: &mut dyn Read) -> Result<(String, String), GeodataError> {
    #[derive(serde::Deserialize)]
    struct PackageJson {
        name: String,
        version: String,
    }
    let mut text = String::new();
    r.take(1 << 20)
        .read_to_string(&mut text)
        .map_err(|e| GeodataError::NotGeodata {
            path: path.to_owned(),
            found: format!("unreadable package.json: {e}"),
        })?;
    let pj: PackageJson = serde_json::from_str(&text).map_err(|e| GeodataError::NotGeodata {
        path: path.to_owned(),
        found: format!("invalid package.json: {e}"),
    })?;
    Ok((pj.name, pj.version))
}

/// Calls `f(member, reader)` for each regular file in a gzipped tar, with the member's path below
/// the archive's top directory (npm tarballs put everything under `package/`).
fn for_each_member(
    path: &Path,
    package: &str,
    f: &mut dyn FnMut(&str, &mut dyn Read) -> Result<(), GeodataError>,
) -> Result<(), GeodataError> {
    let file = std::fs::File::open(path).map_err(|e| GeodataError::read(path, e))?;
    let gz = flate2::read::GzDecoder::new(std::io::BufReader::with_capacity(1 << 16, file));
    let mut archive = tar::Archive::new(gz);
    let bad =
        |e: std::io::Error| GeodataError::bad(path, package, format!("not a readable .tgz: {e}"));
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = {
            let p = entry.path().map_err(bad)?;
            let mut comps = p.components();
            comps.next();
            comps.as_path().to_string_lossy().into_owned()
        };
        f(&name, &mut entry)?;
    }
    Ok(())
}

/// A package tarball written into the data directory under a temporary name; removed when
/// dropped unless [`install`] moved it into place.
#[derive(Debug)]
pub struct Staged {
    path: PathBuf,
    package: &'static str,
    version: String,
    sha256: String,
}

impl Staged {
    /// Identify a tarball already written to `tmp` (inside the data directory): its
    /// package.json must name one of [`PACKAGES`].
    pub fn from_temp(tmp: PathBuf) -> Result<Staged, GeodataError> {
        // from here on the file is removed on every path out
        let mut staged = Staged {
            path: tmp,
            package: "",
            version: String::new(),
            sha256: String::new(),
        };
        let (name, version) = identify_tarball(&staged.path)?;
        let Some(package) = PACKAGES.iter().find(|p| **p == name) else {
            return Err(GeodataError::NotGeodata {
                path: staged.path.clone(),
                found: format!("its package.json names {name}"),
            });
        };
        if !valid_version(&version) {
            return Err(GeodataError::bad(
                &staged.path,
                package,
                format!("unusable version {version:?} in package.json"),
            ));
        }
        staged.package = package;
        staged.version = version;
        staged.sha256 = sha256_file(&staged.path)?;
        Ok(staged)
    }

    /// Copy `src` into `dir` under a temporary name and identify it.
    pub fn copy_in(dir: &Path, src: &Path) -> Result<Staged, GeodataError> {
        std::fs::create_dir_all(dir).map_err(|e| GeodataError::write(dir, e))?;
        let mut input = std::fs::File::open(src).map_err(|e| GeodataError::read(src, e))?;
        let tmp = temp_path(dir, "import");
        let guard = TempFile(tmp.clone());
        let mut output = std::fs::File::create(&tmp).map_err(|e| GeodataError::write(&tmp, e))?;
        std::io::copy(&mut input, &mut output).map_err(|e| GeodataError::write(&tmp, e))?;
        drop(output);
        std::mem::forget(guard);
        Staged::from_temp(tmp).map_err(|e| match e {
            // name the file the user gave, not the temporary copy
            GeodataError::NotGeodata { found, .. } => GeodataError::NotGeodata {
                path: src.to_owned(),
                found,
            },
            GeodataError::BadPackage {
                package, reason, ..
            } => GeodataError::BadPackage {
                path: src.to_owned(),
                package,
                reason,
            },
            other => other,
        })
    }

    pub fn package(&self) -> &'static str {
        self.package
    }
    pub fn version(&self) -> &str {
        &self.version
    }
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Removes a file when dropped.
pub(crate) struct TempFile(pub(crate) PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A fresh hidden name inside `dir` (hidden files are never taken for packages).
pub(crate) fn temp_path(dir: &Path, what: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    dir.join(format!(".{what}-{}-{nanos}-{n}.tmp", std::process::id()))
}

/// What [`install`] did.
#[derive(Debug)]
pub struct Installed {
    /// The index over the data directory's packages, when both are there.
    pub db: Result<GeoDb, GeodataError>,
    /// Tarballs moved into place.
    pub installed: Vec<PathBuf>,
    /// Older tarballs of the same packages, removed.
    pub removed: Vec<PathBuf>,
}

/// Move staged tarballs into `dir` under their npm names, replacing older versions of the same
/// packages. When both packages are then present, the index is built first, from the staged
/// files: if that fails, nothing in `dir` is replaced and the error is returned.
pub fn install(
    dir: &Path,
    mut staged: Vec<Staged>,
    cache_dir: Option<&Path>,
) -> Result<Installed, GeodataError> {
    // the last one given wins for each package
    let mut chosen: Vec<Staged> = Vec::new();
    for s in staged.drain(..).rev() {
        if !chosen.iter().any(|c| c.package == s.package) {
            chosen.push(s);
        }
    }
    let pick = |package: &str| -> Result<Option<PathBuf>, GeodataError> {
        match chosen.iter().find(|s| s.package == package) {
            Some(s) => Ok(Some(s.path.clone())),
            None => Ok(package_files(dir, package)?.into_iter().next().map(|f| f.0)),
        }
    };
    let db = match (pick(COUNTRY_PACKAGE)?, pick(ASN_PACKAGE)?) {
        (Some(c), Some(a)) => Some(open_files(dir, &[c, a], cache_dir)?),
        _ => None,
    };
    remove_stale_temporaries(dir);
    let mut installed = Vec::new();
    let mut removed = Vec::new();
    for mut s in chosen {
        let dest = dir.join(tarball_file_name(s.package, &s.version));
        std::fs::rename(&s.path, &dest).map_err(|e| GeodataError::write(&dest, e))?;
        s.path = PathBuf::new(); // installed: no longer removed on drop
        for (old, _) in package_files(dir, s.package)? {
            if old != dest && std::fs::remove_file(&old).is_ok() {
                removed.push(old);
            }
        }
        installed.push(dest);
    }
    let db = match db {
        Some(db) => Ok(GeoDb {
            dir: dir.to_owned(),
            ..db
        }),
        // one package is still missing: say which
        None => GeoDb::open_with_cache(Some(dir), cache_dir),
    };
    Ok(Installed {
        db,
        installed,
        removed,
    })
}

/// Temporary files an interrupted run left in `dir` (older than an hour: not another run's).
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for e in entries.filter_map(Result::ok) {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.')
            && name.ends_with(".tmp")
            && e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < hour_ago)
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String, GeodataError> {
    let mut file = std::fs::File::open(path).map_err(|e| GeodataError::read(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| GeodataError::read(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(crate::text::hex(&hasher.finalize()))
}

// ---------------------------------------------------------------------------------------------
// Opening: cache or build.

fn open_files(
    dir: &Path,
    files: &[PathBuf; 2],
    cache_dir: Option<&Path>,
) -> Result<GeoDb, GeodataError> {
    let mut stamps = cache_dir.map(Stamps::load).unwrap_or_default();
    let hashes = [stamps.sha256(&files[0])?, stamps.sha256(&files[1])?];
    let key = crate::text::hex(&Sha256::digest(
        format!("{}:{}", hashes[0], hashes[1]).as_bytes(),
    ));
    let cache_path = cache_dir.map(|c| c.join(format!("{key}.idx")));
    let mut db = GeoDb {
        dir: dir.to_owned(),
        index: Index::empty(),
        index_path: None,
        from_cache: false,
        cache_problem: None,
    };
    if let Some(path) = &cache_path
        && let Ok(bytes) = std::fs::read(path)
        && let Ok(index) = Index::decode(&bytes)
        && index
            .packages
            .iter()
            .map(|p| p.sha256.as_str())
            .eq(hashes.iter().map(String::as_str))
    {
        db.index = index;
        db.index_path = cache_path;
        db.from_cache = true;
        if let Some(c) = cache_dir {
            let _ = stamps.save(c);
        }
        return Ok(db);
    }
    db.index = Index::build(files, &hashes)?;
    if let (Some(cache), Some(path)) = (cache_dir, cache_path) {
        match write_atomic(cache, &path, &db.index.encode()) {
            Ok(()) => {
                db.index_path = Some(path.clone());
                prune_cache(cache, &path);
                let _ = stamps.save(cache);
            }
            Err(e) => {
                db.cache_problem = Some(format!(
                    "the index is not cached ({e}); it is rebuilt each time"
                ))
            }
        }
    }
    Ok(db)
}

/// Write `bytes` to `path` through a temporary file in `dir` and a rename.
pub(crate) fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), GeodataError> {
    std::fs::create_dir_all(dir).map_err(|e| GeodataError::write(dir, e))?;
    let tmp = temp_path(dir, "index");
    let guard = TempFile(tmp.clone());
    let mut f = std::fs::File::create(&tmp).map_err(|e| GeodataError::write(&tmp, e))?;
    f.write_all(bytes)
        .map_err(|e| GeodataError::write(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| GeodataError::write(path, e))?;
    std::mem::forget(guard);
    Ok(())
}

/// Keep the newest [`CACHE_KEEP`] index files.
fn prune_cache(cache: &Path, current: &Path) {
    let Ok(entries) = std::fs::read_dir(cache) else {
        return;
    };
    let mut idx: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "idx") && p != current)
        .map(|p| {
            (
                std::fs::metadata(&p)
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH),
                p,
            )
        })
        .collect();
    idx.sort_by_key(|e| std::cmp::Reverse(e.0));
    for (_, p) in idx.into_iter().skip(CACHE_KEEP.saturating_sub(1)) {
        let _ = std::fs::remove_file(p);
    }
}

/// Remembers the SHA-256 of tarballs by (path, size, modification time, inode), so that opening
/// an unchanged data directory does not hash 25 MB each time (the way git's index does).
#[derive(Default)]
struct Stamps {
    lines: Vec<(String, String)>, // (stamp, sha256)
    dirty: bool,
}

const STAMPS_FILE: &str = "hashes.tsv";
const STAMPS_KEEP: usize = 32;

impl Stamps {
    fn load(cache: &Path) -> Stamps {
        let text = std::fs::read_to_string(cache.join(STAMPS_FILE)).unwrap_or_default();
        let lines = text
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .filter(|(sha, _)| sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(|(sha, stamp)| (stamp.to_owned(), sha.to_owned()))
            .collect();
        Stamps {
            lines,
            dirty: false,
        }
    }

    fn stamp(path: &Path) -> Option<String> {
        let abs = std::fs::canonicalize(path).ok()?;
        let abs = abs
            .to_str()
            .filter(|s| !s.contains(['\t', '\n', '\r']))?
            .to_owned();
        let meta = std::fs::metadata(path).ok()?;
        let mtime = meta
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_nanos();
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        #[cfg(not(unix))]
        let inode = 0u64;
        Some(format!("{}\t{mtime}\t{inode}\t{abs}", meta.len()))
    }

    fn sha256(&mut self, path: &Path) -> Result<String, GeodataError> {
        let stamp = Self::stamp(path);
        if let Some(stamp) = &stamp
            && let Some((_, sha)) = self.lines.iter().find(|(s, _)| s == stamp)
        {
            return Ok(sha.clone());
        }
        let sha = sha256_file(path)?;
        if let Some(stamp) = stamp {
            self.lines.retain(|(s, _)| s != &stamp);
            self.lines.insert(0, (stamp, sha.clone()));
            self.lines.truncate(STAMPS_KEEP);
            self.dirty = true;
        }
        Ok(sha)
    }

    fn save(&self, cache: &Path) -> Result<(), GeodataError> {
        if !self.dirty {
            return Ok(());
        }
        let text: String = self
            .lines
            .iter()
            .map(|(stamp, sha)| format!("{sha}\t{stamp}\n"))
            .collect();
        write_atomic(cache, &cache.join(STAMPS_FILE), text.as_bytes())
    }
}

// ---------------------------------------------------------------------------------------------
// The index.

/// Range keys: IPv4 as `u32`, IPv6 as `u128`.
trait Key: Copy + Ord + Default + std::fmt::Debug {
    const BYTES: usize;
    fn inc(self) -> Option<Self>;
    fn dec(self) -> Option<Self>;
    fn put(self, out: &mut Vec<u8>);
    fn from_le(b: &[u8]) -> Self;
}

impl Key for u32 {
    const BYTES: usize = 4;
    fn inc(self) -> Option<Self> {
        self.checked_add(1)
    }
    fn dec(self) -> Option<Self> {
        self.checked_sub(1)
    }
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn from_le(b: &[u8]) -> Self {
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        u32::from_le_bytes(a)
    }
}

impl Key for u128 {
    const BYTES: usize = 16;
    fn inc(self) -> Option<Self> {
        self.checked_add(1)
    }
    fn dec(self) -> Option<Self> {
        self.checked_sub(1)
    }
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn from_le(b: &[u8]) -> Self {
        let mut a = [0u8; 16];
        a.copy_from_slice(b);
        u128::from_le_bytes(a)
    }
}

/// Values stored per range: an index into a table, 0 meaning "nothing known".
trait Val: Copy + PartialEq + Default + Into<u64> {
    const BYTES: usize;
    fn put(self, out: &mut Vec<u8>);
    fn from_le(b: &[u8]) -> Self;
}

impl Val for u16 {
    const BYTES: usize = 2;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn from_le(b: &[u8]) -> Self {
        let mut a = [0u8; 2];
        a.copy_from_slice(b);
        u16::from_le_bytes(a)
    }
}

impl Val for u32 {
    const BYTES: usize = 4;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn from_le(b: &[u8]) -> Self {
        <u32 as Key>::from_le(b)
    }
}

/// Non-overlapping segments from possibly overlapping rows `(first, last, value)`: where rows
/// overlap, the one that starts later (the more specific one) wins and the enclosing one resumes
/// after it ends; among rows with the same bounds the last one wins. Adjacent segments with the
/// same value are merged.
fn flatten<K: Key, V: Copy + PartialEq>(mut rows: Vec<(K, K, V)>) -> Vec<(K, K, V)> {
    fn emit<K: Key, V: Copy + PartialEq>(out: &mut Vec<(K, K, V)>, s: K, e: K, v: V) {
        if let Some(last) = out.last_mut()
            && last.2 == v
            && last.1.inc() == Some(s)
        {
            last.1 = e;
            return;
        }
        out.push((s, e, v));
    }
    rows.retain(|r| r.0 <= r.1);
    // stable: rows with the same bounds keep their order
    rows.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let mut out = Vec::with_capacity(rows.len());
    // enclosing rows still open, innermost last; their ends strictly decrease towards the top
    let mut stack: Vec<(K, V)> = Vec::new();
    let mut cursor = K::default();
    for (s, e, v) in rows {
        while let Some(&(top_end, top_v)) = stack.last() {
            if top_end < s {
                if cursor <= top_end {
                    emit(&mut out, cursor, top_end, top_v);
                }
                cursor = top_end.inc().unwrap_or(s);
                stack.pop();
            } else {
                if cursor < s
                    && let Some(p) = s.dec()
                {
                    emit(&mut out, cursor, p, top_v);
                }
                break;
            }
        }
        while stack.last().is_some_and(|&(top_end, _)| top_end <= e) {
            stack.pop();
        }
        stack.push((e, v));
        cursor = s;
    }
    while let Some((top_end, top_v)) = stack.pop() {
        if cursor <= top_end {
            emit(&mut out, cursor, top_end, top_v);
        }
        match top_end.inc() {
            Some(n) => cursor = n,
            None => break,
        }
    }
    out
}

/// Range starts covering the whole key space from 0, gaps included (value 0), each range
/// running to the next start.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct RangeMap<K, V> {
    starts: Vec<K>,
    vals: Vec<V>,
}

impl<K: Key, V: Val> RangeMap<K, V> {
    fn from_segments(segments: &[(K, K, V)]) -> Self {
        let mut m = RangeMap {
            starts: Vec::with_capacity(segments.len() + 1),
            vals: Vec::with_capacity(segments.len() + 1),
        };
        let mut next = Some(K::default());
        for &(s, e, v) in segments {
            if v == V::default() {
                continue;
            }
            match next {
                Some(n) if n < s => m.push(n, V::default()),
                _ => {}
            }
            m.push(s, v);
            next = e.inc();
        }
        if let Some(n) = next {
            m.push(n, V::default());
        }
        m
    }

    fn push(&mut self, start: K, v: V) {
        if self.vals.last() == Some(&v) {
            return;
        }
        self.starts.push(start);
        self.vals.push(v);
    }

    #[inline]
    fn get(&self, key: K) -> V {
        let i = self.starts.partition_point(|&s| s <= key);
        i.checked_sub(1)
            .and_then(|i| self.vals.get(i))
            .copied()
            .unwrap_or_default()
    }

    fn ranges(&self) -> usize {
        self.vals.iter().filter(|v| **v != V::default()).count()
    }

    fn encode(&self, out: &mut Vec<u8>) {
        put_u64(out, self.starts.len() as u64);
        for s in &self.starts {
            s.put(out);
        }
        for v in &self.vals {
            v.put(out);
        }
    }

    fn decode(r: &mut Cursor<'_>, table_len: usize) -> Result<Self, &'static str> {
        let n = r.len()?;
        let starts: Vec<K> = r
            .take(n, K::BYTES)?
            .chunks_exact(K::BYTES)
            .map(K::from_le)
            .collect();
        let vals: Vec<V> = r
            .take(n, V::BYTES)?
            .chunks_exact(V::BYTES)
            .map(V::from_le)
            .collect();
        if starts.first() != Some(&K::default()) {
            return Err("a range table does not start at address 0");
        }
        if starts.windows(2).any(|w| w[0] >= w[1]) {
            return Err("range starts are not strictly increasing");
        }
        if vals.iter().any(|&v| v.into() >= table_len as u64) {
            return Err("a range points outside its table");
        }
        Ok(RangeMap { starts, vals })
    }
}

/// An IPv4 range map with a table of where each /16 starts, so that a lookup searches only the
/// ranges of its own /16.
#[derive(Debug, Clone, Default)]
struct V4Map<V> {
    map: RangeMap<u32, V>,
    /// `block[h]`: index of the range covering `h << 16`; 65,537 entries.
    block: Vec<u32>,
}

impl<V: Val> V4Map<V> {
    fn new(map: RangeMap<u32, V>) -> Self {
        let mut block = Vec::with_capacity(65537);
        let mut i = 0usize;
        for h in 0..=65536u64 {
            while map
                .starts
                .get(i + 1)
                .is_some_and(|&s| u64::from(s) <= h << 16)
            {
                i += 1;
            }
            block.push(u32::try_from(i).unwrap_or(u32::MAX));
        }
        V4Map { map, block }
    }

    #[inline]
    fn get(&self, ip: u32) -> V {
        let h = (ip >> 16) as usize;
        let (Some(&lo), Some(&hi)) = (self.block.get(h), self.block.get(h + 1)) else {
            return V::default();
        };
        let (lo, hi) = (lo as usize, hi as usize);
        let Some(candidates) = self.map.starts.get(lo + 1..=hi) else {
            return V::default();
        };
        let i = lo + candidates.partition_point(|&s| s <= ip);
        self.map.vals.get(i).copied().unwrap_or_default()
    }

    fn ranges(&self) -> usize {
        self.map.ranges()
    }
}

type V6Map<V> = RangeMap<u128, V>;

#[derive(Debug, Clone, Default)]
struct Index {
    packages: Vec<PackageInfo>,
    /// Country codes; entry 0 is "none".
    codes: Vec<[u8; 2]>,
    /// Organisation `i` is `org_text[org_offsets[i]..org_offsets[i + 1]]`.
    org_offsets: Vec<u32>,
    org_text: String,
    /// (ASN, organisation) pairs; entry 0 is "none".
    as_entries: Vec<(u32, u32)>,
    c4: V4Map<u16>,
    c6: V6Map<u16>,
    a4: V4Map<u32>,
    a6: V6Map<u32>,
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u64(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A 64-bit checksum of the index file (not cryptographic: it catches torn or damaged files).
fn checksum(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut lanes = [
        0x243F_6A88_85A3_08D3u64,
        0x1319_8A2E_0370_7344,
        0xA409_3822_299F_31D0,
        0x082E_FA98_EC4E_6C89,
    ];
    let mut chunks = bytes.chunks_exact(32);
    for c in &mut chunks {
        for (lane, w) in lanes.iter_mut().zip(c.chunks_exact(8)) {
            let w = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            *lane = (*lane ^ w).wrapping_mul(K).rotate_left(31);
        }
    }
    let mut h = bytes.len() as u64;
    for (i, b) in chunks.remainder().iter().enumerate() {
        h ^= u64::from(*b) << ((i % 8) * 8);
        if i % 8 == 7 {
            h = h.wrapping_mul(K).rotate_left(27);
        }
    }
    for lane in lanes {
        h = (h ^ lane).wrapping_mul(K).rotate_left(29);
    }
    h ^ (h >> 32)
}

struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, size: usize) -> Result<&'a [u8], &'static str> {
        let len = n.checked_mul(size).ok_or("a length overflows")?;
        if len > self.bytes.len() {
            return Err("truncated");
        }
        let (head, tail) = self.bytes.split_at(len);
        self.bytes = tail;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32, &'static str> {
        Ok(<u32 as Key>::from_le(self.take(1, 4)?))
    }
    fn u64(&mut self) -> Result<u64, &'static str> {
        let b = self.take(1, 8)?;
        Ok(u64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    }
    fn len(&mut self) -> Result<usize, &'static str> {
        usize::try_from(self.u64()?).map_err(|_| "a length overflows")
    }
    fn bytes(&mut self) -> Result<&'a [u8], &'static str> {
        let n = self.len()?;
        self.take(n, 1)
    }
    fn string(&mut self) -> Result<String, &'static str> {
        std::str::from_utf8(self.bytes()?)
            .map(str::to_owned)
            .map_err(|_| "a string is not UTF-8")
    }
}

impl Index {
    fn empty() -> Index {
        Index::default()
    }

    #[inline]
    fn country_code(&self, code: u16) -> Option<&str> {
        if code == 0 {
            return None;
        }
        self.codes
            .get(usize::from(code))
            .and_then(|c| std::str::from_utf8(c).ok())
    }

    #[inline]
    fn as_entry(&self, entry: u32) -> Option<(u32, &str)> {
        if entry == 0 {
            return None;
        }
        let &(asn, org) = self.as_entries.get(entry as usize)?;
        let org = org as usize;
        let (start, end) = (
            *self.org_offsets.get(org)? as usize,
            *self.org_offsets.get(org + 1)? as usize,
        );
        Some((asn, self.org_text.get(start..end)?))
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 << 20);
        out.extend_from_slice(MAGIC);
        put_u32(&mut out, INDEX_FORMAT_VERSION);
        put_u32(&mut out, 0); // flags, none yet
        put_u64(&mut out, self.packages.len() as u64);
        for p in &self.packages {
            put_bytes(&mut out, p.name.as_bytes());
            put_bytes(&mut out, p.version.as_bytes());
            put_bytes(&mut out, p.sha256.as_bytes());
        }
        put_bytes(&mut out, self.codes.as_flattened());
        put_u64(&mut out, self.org_offsets.len() as u64);
        for o in &self.org_offsets {
            put_u32(&mut out, *o);
        }
        put_bytes(&mut out, self.org_text.as_bytes());
        put_u64(&mut out, self.as_entries.len() as u64);
        for (asn, org) in &self.as_entries {
            put_u32(&mut out, *asn);
            put_u32(&mut out, *org);
        }
        self.c4.map.encode(&mut out);
        self.c6.encode(&mut out);
        self.a4.map.encode(&mut out);
        self.a6.encode(&mut out);
        let sum = checksum(&out);
        put_u64(&mut out, sum);
        out
    }

    fn decode(bytes: &[u8]) -> Result<Index, &'static str> {
        let (body, sum) = bytes
            .split_at_checked(bytes.len().checked_sub(8).ok_or("truncated")?)
            .ok_or("truncated")?;
        let mut r = Cursor { bytes: body };
        if r.take(1, MAGIC.len())? != MAGIC {
            return Err("not a terroir geodata index");
        }
        if r.u32()? != INDEX_FORMAT_VERSION {
            return Err("another index format version");
        }
        if (Cursor { bytes: sum }).u64()? != checksum(body) {
            return Err("checksum mismatch");
        }
        let _flags = r.u32()?;
        let n = r.len()?;
        if n != PACKAGES.len() {
            return Err("not two packages");
        }
        let mut packages = Vec::with_capacity(n);
        for _ in 0..n {
            packages.push(PackageInfo {
                name: r.string()?,
                version: r.string()?,
                sha256: r.string()?,
            });
        }
        let code_bytes = r.bytes()?;
        if code_bytes.len() % 2 != 0 || code_bytes.len() / 2 > usize::from(u16::MAX) + 1 {
            return Err("bad country table");
        }
        let codes: Vec<[u8; 2]> = code_bytes.chunks_exact(2).map(|c| [c[0], c[1]]).collect();
        if codes
            .iter()
            .skip(1)
            .any(|c| !c.iter().all(u8::is_ascii_uppercase))
        {
            return Err("bad country code");
        }
        let n = r.len()?;
        let org_offsets: Vec<u32> = r
            .take(n, 4)?
            .chunks_exact(4)
            .map(<u32 as Key>::from_le)
            .collect();
        let org_text = std::str::from_utf8(r.bytes()?)
            .map_err(|_| "organisations are not UTF-8")?
            .to_owned();
        if org_offsets.first() != Some(&0)
            || org_offsets.last().map(|&o| o as usize) != Some(org_text.len())
            || org_offsets.windows(2).any(|w| w[0] > w[1])
            || org_offsets
                .iter()
                .any(|&o| !org_text.is_char_boundary(o as usize))
        {
            return Err("bad organisation table");
        }
        let n = r.len()?;
        let as_entries: Vec<(u32, u32)> = r
            .take(n, 8)?
            .chunks_exact(8)
            .map(|c| {
                (
                    <u32 as Key>::from_le(&c[..4]),
                    <u32 as Key>::from_le(&c[4..]),
                )
            })
            .collect();
        if as_entries
            .iter()
            .any(|&(_, org)| org as usize + 1 >= org_offsets.len())
        {
            return Err("bad AS table");
        }
        let c4 = V4Map::new(RangeMap::decode(&mut r, codes.len())?);
        let c6 = RangeMap::decode(&mut r, codes.len())?;
        let a4 = V4Map::new(RangeMap::decode(&mut r, as_entries.len())?);
        let a6 = RangeMap::decode(&mut r, as_entries.len())?;
        if !r.bytes.is_empty() {
            return Err("trailing bytes");
        }
        Ok(Index {
            packages,
            codes,
            org_offsets,
            org_text,
            as_entries,
            c4,
            c6,
            a4,
            a6,
        })
    }

    /// Build from the two tarballs ([country, asn]) whose SHA-256 are `hashes`; the two are read
    /// on two threads.
    fn build(files: &[PathBuf; 2], hashes: &[String; 2]) -> Result<Index, GeodataError> {
        let (country, asn) = std::thread::scope(|s| {
            let c = s.spawn(|| build_country(&files[0]));
            let a = build_asn(&files[1]);
            (c.join(), a)
        });
        let country = country
            .map_err(|_| GeodataError::bad(&files[0], COUNTRY_PACKAGE, "reading it crashed"))??;
        let asn = asn?;
        let packages = vec![
            PackageInfo {
                name: COUNTRY_PACKAGE.into(),
                version: country.version,
                sha256: hashes[0].clone(),
            },
            PackageInfo {
                name: ASN_PACKAGE.into(),
                version: asn.version,
                sha256: hashes[1].clone(),
            },
        ];
        Ok(Index {
            packages,
            codes: country.codes,
            org_offsets: asn.org_offsets,
            org_text: asn.org_text,
            as_entries: asn.as_entries,
            c4: V4Map::new(country.v4),
            c6: country.v6,
            a4: V4Map::new(asn.v4),
            a6: asn.v6,
        })
    }
}

struct CountryPart {
    version: String,
    codes: Vec<[u8; 2]>,
    v4: RangeMap<u32, u16>,
    v6: RangeMap<u128, u16>,
}

/// Check that a tarball's package.json names `package`; returns its version.
fn expect_package(
    path: &Path,
    package: &str,
    meta: Option<(String, String)>,
) -> Result<String, GeodataError> {
    match meta {
        Some((name, version)) if name == package => Ok(version),
        Some((name, _)) => Err(GeodataError::bad(
            path,
            package,
            format!("its package.json names {name}"),
        )),
        None => Err(GeodataError::bad(
            path,
            package,
            "no package/package.json inside",
        )),
    }
}

fn build_country(path: &Path) -> Result<CountryPart, GeodataError> {
    let mut meta = None;
    let mut mmdb = None;
    for_each_member(path, COUNTRY_PACKAGE, &mut |name, r| {
        if name == "package.json" {
            meta = Some(read_package_json(path, r)?);
        } else if name == MMDB_MEMBER {
            let mut buf = Vec::new();
            r.read_to_end(&mut buf).map_err(|e| {
                GeodataError::bad(path, COUNTRY_PACKAGE, format!("{MMDB_MEMBER}: {e}"))
            })?;
            mmdb = Some(buf);
        }
        Ok(())
    })?;
    let version = expect_package(path, COUNTRY_PACKAGE, meta)?;
    let mmdb = mmdb.ok_or_else(|| {
        GeodataError::bad(
            path,
            COUNTRY_PACKAGE,
            format!("no package/{MMDB_MEMBER} inside"),
        )
    })?;
    let bad = |e: maxminddb::MaxMindDbError| {
        GeodataError::bad(path, COUNTRY_PACKAGE, format!("{MMDB_MEMBER}: {e}"))
    };
    let reader = maxminddb::Reader::from_source(mmdb).map_err(bad)?;

    #[derive(serde::Deserialize)]
    struct Record<'a> {
        #[serde(borrow, default)]
        country_code: Option<&'a str>,
    }
    let mut codes: Vec<[u8; 2]> = vec![*b"  "];
    let mut code_of_record: HashMap<usize, u16> = HashMap::new();
    let mut v4: Vec<(u32, u32, u16)> = Vec::new();
    let mut v6: Vec<(u128, u128, u16)> = Vec::new();
    for item in reader
        .networks(maxminddb::WithinOptions::default())
        .map_err(bad)?
    {
        let item = item.map_err(bad)?;
        let Some(offset) = item.offset() else {
            continue;
        };
        let code = match code_of_record.get(&offset) {
            Some(&c) => c,
            None => {
                let record: Option<Record<'_>> = item.decode().map_err(bad)?;
                let c = match record.and_then(|r| r.country_code).map(str::as_bytes) {
                    Some(&[a, b]) if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                        let cc = [a.to_ascii_uppercase(), b.to_ascii_uppercase()];
                        match codes.iter().position(|c| *c == cc) {
                            Some(i) => u16::try_from(i).unwrap_or(0),
                            None => {
                                codes.push(cc);
                                u16::try_from(codes.len() - 1).map_err(|_| {
                                    GeodataError::bad(
                                        path,
                                        COUNTRY_PACKAGE,
                                        "more than 65,535 country codes",
                                    )
                                })?
                            }
                        }
                    }
                    _ => 0,
                };
                code_of_record.insert(offset, c);
                c
            }
        };
        if code == 0 {
            continue;
        }
        let net = item.network().map_err(bad)?;
        match net.network() {
            IpAddr::V4(a) => {
                let (s, e) = prefix_range_v4(u32::from(a), net.prefix());
                v4.push((s, e, code));
            }
            IpAddr::V6(a) => {
                let (s, e) = prefix_range_v6(u128::from(a), net.prefix());
                // IPv4 (and its aliases) are looked up as IPv4
                if is_v4_space(s) {
                    continue;
                }
                v6.push((s, e, code));
            }
        }
    }
    Ok(CountryPart {
        version,
        codes,
        v4: RangeMap::from_segments(&flatten(v4)),
        v6: RangeMap::from_segments(&flatten(v6)),
    })
}

/// `::/96` (IPv4-compatible, where MaxMind DBs keep IPv4) and `::ffff:0:0/96` (IPv4-mapped).
fn is_v4_space(start: u128) -> bool {
    start >> 32 == 0 || start >> 32 == 0xffff
}

fn prefix_range_v4(addr: u32, prefix: u8) -> (u32, u32) {
    let host = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
    (addr & !host, addr | host)
}

fn prefix_range_v6(addr: u128, prefix: u8) -> (u128, u128) {
    let host = u128::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
    (addr & !host, addr | host)
}

struct AsnPart {
    version: String,
    org_offsets: Vec<u32>,
    org_text: String,
    as_entries: Vec<(u32, u32)>,
    v4: RangeMap<u32, u32>,
    v6: RangeMap<u128, u32>,
}

fn build_asn(path: &Path) -> Result<AsnPart, GeodataError> {
    let mut meta = None;
    let mut seen = [false; 2];
    let mut org_offsets: Vec<u32> = vec![0, 0]; // organisation 0: ""
    let mut org_text = String::new();
    let mut org_ids: HashMap<Box<str>, u32> = HashMap::new();
    let mut as_entries: Vec<(u32, u32)> = vec![(0, 0)];
    let mut as_ids: HashMap<(u32, u32), u32> = HashMap::new();
    let mut v4: Vec<(u32, u32, u32)> = Vec::with_capacity(1 << 19);
    let mut v6: Vec<(u128, u128, u32)> = Vec::with_capacity(1 << 17);
    let too_many = || GeodataError::bad(path, ASN_PACKAGE, "more than 4 GiB of organisation names");
    for_each_member(path, ASN_PACKAGE, &mut |name, r| {
        if name == "package.json" {
            meta = Some(read_package_json(path, r)?);
            return Ok(());
        }
        let Some(which) = ASN_MEMBERS.iter().position(|m| *m == name) else {
            return Ok(());
        };
        seen[which] = true;
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(r);
        let mut record = csv::ByteRecord::new();
        loop {
            let more = csv
                .read_byte_record(&mut record)
                .map_err(|e| GeodataError::bad(path, ASN_PACKAGE, format!("{name}: {e}")))?;
            if !more {
                break;
            }
            let line = record.position().map_or(0, |p| p.line());
            let bad_row = |what: &str| {
                GeodataError::bad(path, ASN_PACKAGE, format!("{name} line {line}: {what}"))
            };
            let field = |i: usize| {
                record
                    .get(i)
                    .and_then(|f| std::str::from_utf8(f).ok())
                    .map(str::trim)
            };
            let (Some(first), Some(last), Some(asn)) = (field(0), field(1), field(2)) else {
                return Err(bad_row("expected first_ip,last_ip,asn,organisation"));
            };
            let org = record
                .get(3)
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            let asn: u32 = asn
                .parse()
                .map_err(|_| bad_row("the ASN is not a number"))?;
            let org_id = match org_ids.get(org.as_ref()) {
                Some(&id) => id,
                None => {
                    org_text.push_str(&org);
                    let end = u32::try_from(org_text.len()).map_err(|_| too_many())?;
                    org_offsets.push(end);
                    let id = u32::try_from(org_offsets.len() - 2).map_err(|_| too_many())?;
                    org_ids.insert(org.as_ref().into(), id);
                    id
                }
            };
            let next_id = u32::try_from(as_entries.len()).map_err(|_| too_many())?;
            let entry = *as_ids.entry((asn, org_id)).or_insert(next_id);
            if entry == next_id {
                as_entries.push((asn, org_id));
            }
            match (first.parse::<IpAddr>(), last.parse::<IpAddr>()) {
                (Ok(IpAddr::V4(a)), Ok(IpAddr::V4(b))) => {
                    v4.push((u32::from(a), u32::from(b), entry))
                }
                (Ok(IpAddr::V6(a)), Ok(IpAddr::V6(b))) => {
                    let (a, b) = (u128::from(a), u128::from(b));
                    if !is_v4_space(a) {
                        v6.push((a, b, entry));
                    }
                }
                _ => return Err(bad_row("expected two IPv4 or two IPv6 addresses")),
            }
        }
        Ok(())
    })?;
    let version = expect_package(path, ASN_PACKAGE, meta)?;
    if let Some(missing) = ASN_MEMBERS.iter().zip(seen).find(|(_, s)| !s) {
        return Err(GeodataError::bad(
            path,
            ASN_PACKAGE,
            format!("no package/{} inside", missing.0),
        ));
    }
    Ok(AsnPart {
        version,
        org_offsets,
        org_text,
        as_entries,
        v4: RangeMap::from_segments(&flatten(v4)),
        v6: RangeMap::from_segments(&flatten(v6)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tarball_that_fails_its_integrity_check_is_a_failed_check() {
        use crate::error::ExitStatus;
        let integrity = GeodataError::Integrity {
            package: "p".into(),
            version: "1".into(),
            url: "u".into(),
            expected: "e".into(),
            actual: "a".into(),
        };
        assert_eq!(integrity.exit_status(), ExitStatus::Failed);
        assert_eq!(integrity.kind(), "integrity");
        let missing = GeodataError::NoData {
            dir: PathBuf::from("/d"),
        };
        assert_eq!(missing.exit_status(), ExitStatus::Invalid);
        let incomplete = GeodataError::Incomplete {
            installed: vec![PathBuf::from("/d/asn.tgz")],
            source: Box::new(missing),
        };
        assert_eq!(incomplete.exit_status(), ExitStatus::Invalid);
        assert_eq!(
            incomplete.details()["installed"],
            serde_json::json!(["/d/asn.tgz"])
        );
        assert!(
            crate::text::error_chain(&incomplete).contains("no geodata in /d"),
            "{incomplete}"
        );
    }
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(s: &str) -> u32 {
        u32::from(s.parse::<Ipv4Addr>().unwrap())
    }
    fn v6(s: &str) -> u128 {
        u128::from(s.parse::<Ipv6Addr>().unwrap())
    }

    /// A small index by hand: country and AS ranges with gaps, at the very ends of the address
    /// spaces, in IPv6 too.
    fn sample() -> GeoDb {
        let codes = vec![*b"  ", *b"FR", *b"US", *b"DE"];
        let c4 = flatten(vec![
            (0, v4("0.255.255.255"), 3u16),
            (v4("1.0.0.0"), v4("1.0.0.255"), 1),
            (v4("1.0.2.0"), v4("1.0.3.255"), 2),
            (v4("255.255.255.0"), u32::MAX, 1),
        ]);
        let c6 = flatten(vec![
            (
                v6("2001:db8::"),
                v6("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"),
                1u16,
            ),
            (v6("ffff::"), u128::MAX, 2),
        ]);
        let orgs = ["", "Amazon.com, Inc.", "OVH SAS"];
        let mut org_offsets = vec![0u32];
        let mut org_text = String::new();
        for o in orgs {
            org_text.push_str(o);
            org_offsets.push(org_text.len() as u32);
        }
        let as_entries = vec![(0, 0), (16509, 1), (16276, 2)];
        let a4 = flatten(vec![
            (v4("1.0.0.0"), v4("1.0.0.127"), 1u32),
            (v4("1.0.0.128"), v4("1.0.0.255"), 2),
        ]);
        let a6 = flatten(vec![(v6("2001:db8::"), v6("2001:db8::ffff"), 2u32)]);
        let index = Index {
            packages: vec![],
            codes,
            org_offsets,
            org_text,
            as_entries,
            c4: V4Map::new(RangeMap::from_segments(&c4)),
            c6: RangeMap::from_segments(&c6),
            a4: V4Map::new(RangeMap::from_segments(&a4)),
            a6: RangeMap::from_segments(&a6),
        };
        GeoDb {
            dir: PathBuf::new(),
            index,
            index_path: None,
            from_cache: false,
            cache_problem: None,
        }
    }

    fn c(db: &GeoDb, ip: &str) -> Option<String> {
        db.country(ip.parse().unwrap()).map(str::to_owned)
    }
    fn a(db: &GeoDb, ip: &str) -> Option<(u32, String)> {
        db.asn(ip.parse().unwrap()).map(|(n, o)| (n, o.to_owned()))
    }

    #[test]
    fn first_and_last_address_of_a_range_and_the_gaps_around_it() {
        let db = sample();
        assert_eq!(c(&db, "0.0.0.0").as_deref(), Some("DE"));
        assert_eq!(c(&db, "0.255.255.255").as_deref(), Some("DE"));
        assert_eq!(c(&db, "1.0.0.0").as_deref(), Some("FR"));
        assert_eq!(c(&db, "1.0.0.255").as_deref(), Some("FR"));
        assert_eq!(c(&db, "1.0.1.0"), None, "gap between two ranges");
        assert_eq!(c(&db, "1.0.1.255"), None);
        assert_eq!(c(&db, "1.0.2.0").as_deref(), Some("US"));
        assert_eq!(c(&db, "1.0.3.255").as_deref(), Some("US"));
        assert_eq!(c(&db, "1.0.4.0"), None, "gap after the last range of a /16");
        assert_eq!(c(&db, "128.0.0.1"), None, "a /16 with no range at all");
        assert_eq!(c(&db, "255.255.254.255"), None);
        assert_eq!(c(&db, "255.255.255.0").as_deref(), Some("FR"));
        assert_eq!(
            c(&db, "255.255.255.255").as_deref(),
            Some("FR"),
            "the last address of the space"
        );
        assert_eq!(
            a(&db, "1.0.0.127"),
            Some((16509, "Amazon.com, Inc.".into()))
        );
        assert_eq!(a(&db, "1.0.0.128"), Some((16276, "OVH SAS".into())));
        assert_eq!(a(&db, "0.255.255.255"), None);
        assert_eq!(a(&db, "1.0.1.0"), None);
        assert_eq!(a(&db, "255.255.255.255"), None);
    }

    #[test]
    fn ipv6_ranges_and_mapped_ipv4() {
        let db = sample();
        assert_eq!(c(&db, "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff"), None);
        assert_eq!(c(&db, "2001:db8::").as_deref(), Some("FR"));
        assert_eq!(
            c(&db, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff").as_deref(),
            Some("FR")
        );
        assert_eq!(c(&db, "2001:db9::"), None);
        assert_eq!(
            c(&db, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff").as_deref(),
            Some("US")
        );
        assert_eq!(c(&db, "::"), None, ":: is IPv6, not 0.0.0.0");
        assert_eq!(a(&db, "2001:db8::ffff"), Some((16276, "OVH SAS".into())));
        assert_eq!(a(&db, "2001:db8::1:0"), None);
        // IPv4-mapped IPv6 is looked up as IPv4
        assert_eq!(c(&db, "::ffff:1.0.2.0").as_deref(), Some("US"));
        assert_eq!(c(&db, "::ffff:1.0.1.0"), None);
        assert_eq!(
            a(&db, "::ffff:1.0.0.1"),
            Some((16509, "Amazon.com, Inc.".into()))
        );
        let facts = db.lookup("::ffff:1.0.0.200".parse().unwrap());
        assert_eq!(
            facts,
            IpFacts {
                country: Some("FR".into()),
                asn: Some(16276),
                organisation: Some("OVH SAS".into())
            }
        );
        assert_eq!(db.ranges(), (6, 3));
    }

    #[test]
    fn flatten_lets_the_more_specific_range_win_and_merges_neighbours() {
        // nested: the enclosing range resumes after the inner one
        assert_eq!(
            flatten(vec![(0u32, 100, 1u32), (10, 20, 2)]),
            vec![(0, 9, 1), (10, 20, 2), (21, 100, 1)]
        );
        // overlapping (as 214.95.0.0-215.0.255.255 and 215.0.0.0-215.1.3.255 in asn-ipv4.csv)
        assert_eq!(
            flatten(vec![(0u32, 50, 1u32), (40, 90, 2)]),
            vec![(0, 39, 1), (40, 90, 2)]
        );
        // adjacent with the same value: merged; same bounds: the last row wins
        assert_eq!(
            flatten(vec![(0u32, 9, 1u32), (10, 19, 1), (30, 39, 2), (30, 39, 3)]),
            vec![(0, 19, 1), (30, 39, 3)]
        );
        // nested to the very end of the key space
        assert_eq!(
            flatten(vec![(0u32, u32::MAX, 1u32), (u32::MAX - 1, u32::MAX, 2)]),
            vec![(0, u32::MAX - 2, 1), (u32::MAX - 1, u32::MAX, 2)]
        );
        assert_eq!(
            flatten(vec![(5u128, 1, 1u32)]),
            vec![],
            "a reversed row is dropped"
        );
    }

    #[test]
    fn range_map_fills_gaps_and_covers_the_whole_space() {
        let m: RangeMap<u32, u16> =
            RangeMap::from_segments(&[(10, 19, 1), (20, 29, 2), (40, u32::MAX, 1)]);
        assert_eq!(m.starts, vec![0, 10, 20, 30, 40]);
        assert_eq!(m.vals, vec![0, 1, 2, 0, 1]);
        let empty: RangeMap<u128, u32> = RangeMap::from_segments(&[]);
        assert_eq!(empty.get(12345), 0);
        let v = V4Map::new(RangeMap::from_segments(&[(
            0x0001_0000u32,
            0x0003_ffff,
            7u16,
        )]));
        assert_eq!(v.get(0xffff), 0);
        assert_eq!(v.get(0x0001_0000), 7);
        assert_eq!(
            v.get(0x0002_1234),
            7,
            "a /16 inside a range that started in an earlier /16"
        );
        assert_eq!(v.get(0x0003_ffff), 7);
        assert_eq!(v.get(0x0004_0000), 0);
        assert_eq!(v.get(u32::MAX), 0);
    }

    #[test]
    fn the_index_format_round_trips_and_refuses_damage() {
        let mut db = sample();
        db.index.packages = vec![
            PackageInfo {
                name: COUNTRY_PACKAGE.into(),
                version: "1.0.0".into(),
                sha256: "a".repeat(64),
            },
            PackageInfo {
                name: ASN_PACKAGE.into(),
                version: "1.0.0".into(),
                sha256: "b".repeat(64),
            },
        ];
        let bytes = db.index.encode();
        let back = Index::decode(&bytes).unwrap();
        assert_eq!(back.encode(), bytes);
        assert_eq!(back.packages, db.index.packages);
        assert_eq!(back.c4.block, db.index.c4.block);
        assert!(
            Index::decode(&bytes[..bytes.len() - 1]).is_err(),
            "truncated"
        );
        let mut flipped = bytes.clone();
        flipped[bytes.len() / 2] ^= 1;
        assert!(Index::decode(&flipped).is_err(), "a flipped bit");
        let mut other_version = bytes.clone();
        other_version[8] = 99;
        assert_eq!(
            Index::decode(&other_version).err(),
            Some("another index format version")
        );
        assert!(Index::decode(b"").is_err());
    }

    #[test]
    fn the_index_can_be_shared_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<GeoDb>();
    }

    #[test]
    fn tarball_names_follow_npm_pack() {
        assert_eq!(
            tarball_file_name(ASN_PACKAGE, "2.3.1"),
            "ip-location-db-asn-2.3.1.tgz"
        );
        assert_eq!(
            version_in_name(ASN_PACKAGE, "ip-location-db-asn-2.3.2026061719.tgz").as_deref(),
            Some("2.3.2026061719")
        );
        assert_eq!(
            version_in_name(ASN_PACKAGE, "ip-location-db-asn-mmdb-2.3.1.tgz"),
            None,
            "another package"
        );
        assert_eq!(
            version_in_name(
                COUNTRY_PACKAGE,
                "ip-location-db-geo-whois-asn-country-mmdb-2.3.1.tgz"
            )
            .as_deref(),
            Some("2.3.1")
        );
        assert!(version_key("2.3.10") > version_key("2.3.9"));
    }
}
