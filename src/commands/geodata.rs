//! `terroir geodata update|import|status`: the IP geolocation and ASN data behind `locate` and
//! `verify` (see `crate::policy::locality::geodata`).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::Outcome;
use crate::cli::{GeodataArgs, GeodataCommand};
use crate::policy::locality::geodata::{self, ATTRIBUTION, GeoDb, GeodataError, PACKAGES, Staged};
use crate::policy::locality::npm;

pub fn run(cmd: GeodataCommand, json: bool) -> Outcome {
    match cmd {
        GeodataCommand::Update { registry, data } => update(&registry, &data_dir(&data), json),
        GeodataCommand::Import { files, data } => import(&files, &data_dir(&data), json),
        GeodataCommand::Status { data } => match GeoDb::open(Some(&data_dir(&data))) {
            Ok(db) => report(&db, json, &[], &[]),
            Err(e) => fail(&e, json),
        },
    }
}

fn data_dir(args: &GeodataArgs) -> PathBuf {
    args.geodata.clone().unwrap_or_else(GeoDb::default_dir)
}

fn fail(e: &GeodataError, json: bool) -> Outcome {
    let message = crate::text::error_chain(e);
    if json {
        println!("{}", json!({ "error": message }));
    }
    eprintln!("error: {message}");
    match e {
        GeodataError::Integrity { .. } => Outcome::CheckFailed,
        _ => Outcome::Invalid,
    }
}

fn update(registry: &str, dir: &Path, json: bool) -> Outcome {
    let agent = npm::agent();
    let progress = Progress::new();
    let mut staged = Vec::new();
    for package in PACKAGES {
        let dist = match npm::latest(&agent, registry, package) {
            Ok(d) => d,
            Err(e) => return fail(&e, json),
        };
        let current = dir.join(geodata::tarball_file_name(package, &dist.version));
        if current.is_file() && npm::file_matches(&current, &dist.integrity) {
            progress.line(&format!(
                "{package} {}: up to date (integrity verified)",
                dist.version
            ));
            continue;
        }
        progress.line(&format!(
            "{package} {}: fetching {}",
            dist.version, dist.tarball
        ));
        let bar = progress.bar(&format!("{package} {}", dist.version));
        let tmp = npm::download(&agent, &dist, dir, &mut |done, total| {
            bar.update(done, total)
        });
        bar.finish();
        let tmp = match tmp {
            Ok(t) => t,
            Err(e) => return fail(&e, json),
        };
        let s = match Staged::from_temp(tmp) {
            Ok(s) => s,
            Err(e) => {
                return fail(
                    &GeodataError::Registry {
                        url: dist.tarball.clone(),
                        reason: crate::text::error_chain(&e),
                    },
                    json,
                );
            }
        };
        if s.package() != package || s.version() != dist.version {
            let e = GeodataError::Registry {
                url: dist.tarball.clone(),
                reason: format!(
                    "the tarball holds {} {}, not {package} {} as the metadata says",
                    s.package(),
                    s.version(),
                    dist.version
                ),
            };
            return fail(&e, json);
        }
        progress.line(&format!(
            "{package} {}: sha512 integrity verified",
            dist.version
        ));
        staged.push(s);
    }
    if !staged.is_empty() {
        progress.line("building the index");
    }
    finish_install(dir, staged, json)
}

fn import(files: &[PathBuf], dir: &Path, json: bool) -> Outcome {
    let progress = Progress::new();
    let mut staged = Vec::new();
    for f in files {
        match Staged::copy_in(dir, f) {
            Ok(s) => {
                progress.line(&format!("{}: {} {}", f.display(), s.package(), s.version()));
                staged.push(s);
            }
            Err(e) => return fail(&e, json),
        }
    }
    progress.line("building the index");
    finish_install(dir, staged, json)
}

fn finish_install(dir: &Path, staged: Vec<Staged>, json: bool) -> Outcome {
    let installed = match geodata::install(dir, staged, Some(&GeoDb::cache_dir())) {
        Ok(i) => i,
        Err(e) => return fail(&e, json),
    };
    match &installed.db {
        Ok(db) => report(db, json, &installed.installed, &installed.removed),
        Err(e) => {
            for p in &installed.installed {
                eprintln!("installed {}", p.display());
            }
            fail(e, json)
        }
    }
}

fn report(db: &GeoDb, json: bool, installed: &[PathBuf], removed: &[PathBuf]) -> Outcome {
    let (country, asn) = db.ranges();
    let index = db.index_path().map(|p| p.display().to_string());
    if json {
        let out = json!({
            "packages": db.packages(),
            "ranges": {"country": country, "asn": asn},
            "dir": db.dir().display().to_string(),
            "index": index,
            "fromCache": db.loaded_from_cache(),
            "installed": installed.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "removed": removed.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "attribution": ATTRIBUTION,
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return Outcome::Success;
    }
    for p in installed {
        println!("installed {}", p.display());
    }
    for p in removed {
        println!("removed   {}", p.display());
    }
    println!("geodata in {}", db.dir().display());
    let width = db
        .packages()
        .iter()
        .map(|p| p.name.len())
        .max()
        .unwrap_or(0);
    for p in db.packages() {
        println!("  {:<width$}  {}  sha256 {}", p.name, p.version, p.sha256);
    }
    println!("ranges: {country} country, {asn} ASN (IPv4 and IPv6)");
    match (&index, db.cache_problem()) {
        (Some(i), _) => println!(
            "index: {i} ({})",
            if db.loaded_from_cache() {
                "loaded from the cache"
            } else {
                "built now"
            }
        ),
        (None, Some(problem)) => println!("index: in memory only: {problem}"),
        (None, None) => println!("index: in memory only"),
    }
    println!("data: {ATTRIBUTION}");
    Outcome::Success
}

/// Progress on stderr: a live bar on a terminal, plain lines otherwise.
struct Progress {
    terminal: bool,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn line(&self, text: &str) {
        eprintln!("{text}");
    }

    fn bar(&self, label: &str) -> Bar {
        if !self.terminal {
            return Bar(None);
        }
        let bar = indicatif::ProgressBar::new(0);
        let style = indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(label.to_owned());
        Bar(Some(bar))
    }
}

struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    fn update(&self, done: u64, total: Option<u64>) {
        if let Some(b) = &self.0 {
            if let Some(t) = total {
                b.set_length(t);
            }
            b.set_position(done);
        }
    }
    fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}
