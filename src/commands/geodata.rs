//! `terroir geodata update|import|status`: the IP geolocation and ASN data behind `locate` and
//! `verify` (see `crate::policy::locality::geodata`).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Context;
use crate::cli::{GeodataArgs, GeodataCommand};
use crate::error::{Error, ExitStatus};
use crate::policy::locality::geodata::{
    self, ATTRIBUTION, GeoDb, GeodataError, PACKAGES, PackageInfo, Staged,
};
use crate::policy::locality::npm;
use crate::printer::{Report, Text};

pub fn run(cmd: GeodataCommand, cx: &Context) -> Result<ExitStatus, Error> {
    let status = match cmd {
        GeodataCommand::Update { registry, data } => update(&registry, &data_dir(&data), cx)?,
        GeodataCommand::Import { files, data } => import(&files, &data_dir(&data), cx)?,
        GeodataCommand::Status { data } => Status::of(&GeoDb::open(Some(&data_dir(&data)))?),
    };
    cx.printer.report(&status)?;
    Ok(ExitStatus::Success)
}

fn data_dir(args: &GeodataArgs) -> PathBuf {
    args.geodata.clone().unwrap_or_else(GeoDb::default_dir)
}

/// Fetch the latest version of each package unless the one installed is it, each checked
/// against the registry's integrity hash, then install them together.
fn update(registry: &str, dir: &Path, cx: &Context) -> Result<Status, GeodataError> {
    let agent = npm::agent();
    let progress = cx.printer.progress();
    let mut staged = Vec::new();
    let mut verified = Vec::new();
    for package in PACKAGES {
        let dist = npm::latest(&agent, registry, package)?;
        let current = dir.join(geodata::tarball_file_name(package, &dist.version));
        if current.is_file() && npm::file_matches(&current, &dist.integrity) {
            progress.line(format!(
                "{package} {}: up to date (integrity verified)",
                dist.version
            ));
            verified.push(Verification::of(&dist));
            continue;
        }
        progress.line(format!(
            "{package} {}: fetching {}",
            dist.version, dist.tarball
        ));
        let bar = progress.bytes(&format!("{package} {}", dist.version), Some(0));
        let fetched = npm::fetch(&agent, &dist, dir, &mut |done, total| {
            if let Some(total) = total {
                bar.set_length(total);
            }
            bar.set_position(done);
        });
        bar.clear();
        staged.push(fetched?);
        progress.line(format!(
            "{package} {}: sha512 integrity verified",
            dist.version
        ));
        verified.push(Verification::of(&dist));
    }
    if !staged.is_empty() {
        progress.line("building the index");
    }
    let mut status = install(dir, staged)?;
    status.verified = verified;
    Ok(status)
}

fn import(files: &[PathBuf], dir: &Path, cx: &Context) -> Result<Status, GeodataError> {
    let progress = cx.printer.progress();
    let mut staged = Vec::new();
    for f in files {
        let s = Staged::copy_in(dir, f)?;
        progress.line(format!("{}: {} {}", f.display(), s.package(), s.version()));
        staged.push(s);
    }
    progress.line("building the index");
    install(dir, staged)
}

fn install(dir: &Path, staged: Vec<Staged>) -> Result<Status, GeodataError> {
    let installed = geodata::install(dir, staged, Some(&GeoDb::cache_dir()))?;
    let db = installed.db.map_err(|e| {
        if installed.installed.is_empty() {
            e
        } else {
            GeodataError::Incomplete {
                installed: installed.installed.clone(),
                source: Box::new(e),
            }
        }
    })?;
    Ok(Status {
        installed: installed.installed,
        removed: installed.removed,
        ..Status::of(&db)
    })
}

/// A package whose tarball was checked against the registry's integrity hash.
#[derive(Debug, Serialize)]
struct Verification {
    name: String,
    version: String,
    integrity: String,
}

impl Verification {
    fn of(dist: &npm::Dist) -> Self {
        Verification {
            name: dist.package.clone(),
            version: dist.version.clone(),
            integrity: dist.integrity.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
struct Ranges {
    country: usize,
    asn: usize,
}

/// The geodata in use, and what this run changed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    packages: Vec<PackageInfo>,
    ranges: Ranges,
    dir: String,
    index: Option<String>,
    from_cache: bool,
    installed: Vec<PathBuf>,
    removed: Vec<PathBuf>,
    /// `update` only: each package checked against the registry's integrity hash.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    verified: Vec<Verification>,
    attribution: &'static str,
    #[serde(skip)]
    cache_problem: Option<String>,
}

impl Status {
    fn of(db: &GeoDb) -> Status {
        let (country, asn) = db.ranges();
        Status {
            packages: db.packages().to_vec(),
            ranges: Ranges { country, asn },
            dir: db.dir().display().to_string(),
            index: db.index_path().map(|p| p.display().to_string()),
            from_cache: db.loaded_from_cache(),
            installed: Vec::new(),
            removed: Vec::new(),
            verified: Vec::new(),
            attribution: ATTRIBUTION,
            cache_problem: db.cache_problem().map(str::to_owned),
        }
    }
}

impl Report for Status {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        for p in &self.installed {
            writeln!(out, "installed {}", p.display())?;
        }
        for p in &self.removed {
            writeln!(out, "removed   {}", p.display())?;
        }
        writeln!(out, "geodata in {}", self.dir)?;
        let width = self
            .packages
            .iter()
            .map(|p| p.name.len())
            .max()
            .unwrap_or(0);
        for p in &self.packages {
            writeln!(
                out,
                "  {:<width$}  {}  sha256 {}",
                p.name, p.version, p.sha256
            )?;
        }
        writeln!(
            out,
            "ranges: {} country, {} ASN (IPv4 and IPv6)",
            self.ranges.country, self.ranges.asn
        )?;
        match (&self.index, &self.cache_problem) {
            (Some(i), _) => writeln!(
                out,
                "index: {i} ({})",
                if self.from_cache {
                    "loaded from the cache"
                } else {
                    "built now"
                }
            )?,
            (None, Some(problem)) => writeln!(out, "index: in memory only: {problem}")?,
            (None, None) => writeln!(out, "index: in memory only")?,
        }
        writeln!(out, "data: {ATTRIBUTION}")
    }
}
