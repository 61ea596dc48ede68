//! `terroir render FILE --out DIR`: the rendered tree and its SHA256SUMS; nothing is deployed.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use super::Context;
use crate::cli::RenderArgs;
use crate::error::{Error, ExitStatus};
use crate::printer::{Report, Text};
use crate::text::sha256_hex;

#[derive(Debug, Serialize)]
struct RenderedFile {
    path: String,
    sha256: String,
    size: usize,
}

#[derive(Debug, Serialize)]
struct BlueprintRef {
    name: String,
    version: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Rendered {
    file: String,
    rendered: bool,
    platform: String,
    target: &'static str,
    blueprint: BlueprintRef,
    out: String,
    tree_sha256: String,
    files: Vec<RenderedFile>,
}

impl Report for Rendered {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        let mut sections: BTreeMap<&str, usize> = BTreeMap::new();
        for f in &self.files {
            *sections
                .entry(f.path.split('/').next().unwrap_or_default())
                .or_default() += 1;
        }
        writeln!(
            out,
            "Rendered platform {} (target {}, blueprint {} {}) into {}",
            self.platform, self.target, self.blueprint.name, self.blueprint.version, self.out
        )?;
        for (section, n) in sections {
            writeln!(out, "  {section:<28} {n} file{}", crate::text::plural(n))?;
        }
        writeln!(
            out,
            "Tree digest (sha256 of SHA256SUMS): {}",
            self.tree_sha256
        )?;
        writeln!(
            out,
            "Check it with: (cd {} && sha256sum -c SHA256SUMS)",
            self.out
        )
    }
}

pub fn run(args: &RenderArgs, cx: &Context) -> Result<ExitStatus, Error> {
    let loaded = crate::pipeline::load(&args.file, &cx.catalog)?;
    let (resolved, tree) = crate::pipeline::render::render(&loaded, &cx.catalog)?;
    let sums = tree.write_to(&args.out, args.force)?;
    // SHA256SUMS has a line per file, in the tree's order: each file's digest is read from it
    let files = tree
        .files
        .iter()
        .zip(sums.lines())
        .map(|((p, c), line)| RenderedFile {
            path: p.clone(),
            sha256: line.split_once("  ").map_or("", |(d, _)| d).to_owned(),
            size: c.len(),
        })
        .collect();
    cx.printer.report(&Rendered {
        file: loaded.file.clone(),
        rendered: true,
        platform: resolved.platform.name.clone(),
        target: resolved.target_kind,
        blueprint: BlueprintRef {
            name: resolved.blueprint.name.clone(),
            version: resolved.blueprint.version.clone(),
        },
        out: args.out.display().to_string(),
        tree_sha256: sha256_hex(sums.as_bytes()),
        files,
    })?;
    Ok(ExitStatus::Success)
}
