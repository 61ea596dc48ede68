//! `terroir images list|pin`: the platform's images, and their digests written into the document.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use super::Context;
use crate::cli::ImagesCommand;
use crate::document::pin::{self, Change, ImagePinError, Pin};
use crate::error::{Error, ExitStatus};
use crate::pipeline::images::ImageUse;
use crate::printer::{Report, Text};

#[derive(Debug, Serialize)]
#[serde(transparent)]
struct Listed(Vec<ImageUse>);

impl Report for Listed {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        let width = self.0.iter().map(|i| i.key.len()).max().unwrap_or(0);
        for i in &self.0 {
            let how = if i.pinned { "pinned" } else { "tag only" };
            writeln!(out, "{:<width$}  {:<8}  {}", i.key, how, i.reference)?;
        }
        Ok(())
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Pinned {
    file: String,
    dry_run: bool,
    changes: Vec<Change>,
    /// The change as a unified diff (empty when nothing changes).
    diff: String,
}

impl Report for Pinned {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        if self.changes.is_empty() {
            return writeln!(out, "{}: every image already pinned as asked", self.file);
        }
        if self.dry_run {
            return out.write_all(self.diff.as_bytes());
        }
        for c in &self.changes {
            writeln!(out, "{}: spec.images.{} = {}", self.file, c.key, c.after)?;
        }
        Ok(())
    }
}

pub fn run(cmd: ImagesCommand, cx: &Context) -> Result<ExitStatus, Error> {
    match cmd {
        ImagesCommand::List { file } => {
            let loaded = crate::pipeline::load(&file, &cx.catalog)?;
            let resolved = crate::pipeline::resolved(&loaded, &cx.catalog)?;
            cx.printer
                .report(&Listed(crate::pipeline::images::inventory(&resolved)))?;
            Ok(ExitStatus::Success)
        }
        ImagesCommand::Pin {
            file,
            pins,
            dry_run,
        } => {
            let pins = pins
                .iter()
                .map(|p| Pin::parse(p))
                .collect::<Result<Vec<_>, _>>()?;
            cx.printer.report(&pin_file(&file, &pins, dry_run, cx)?)?;
            Ok(ExitStatus::Success)
        }
    }
}

fn pin_file(path: &Path, pins: &[Pin], dry_run: bool, cx: &Context) -> Result<Pinned, Error> {
    let before = crate::pipeline::load(path, &cx.catalog)?;
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| Error::Write {
        path: path.to_owned(),
        source,
    })?;
    let edit = pin::pin(&name, &text, pins)?;
    let after = crate::pipeline::load_str(&name, &edit.text, &cx.catalog)?;
    // the loaded platform may differ from the one before in its images only
    let mut expected = before.platform.clone();
    for p in pins {
        expected.spec.images.set(&p.key, &p.reference);
    }
    if after.platform != expected {
        return Err(ImagePinError::Unconfined { file: name }.into());
    }
    let diff = similar::TextDiff::from_lines(&text, &edit.text)
        .unified_diff()
        .header(&name, &name)
        .to_string();
    if !dry_run && !edit.changes.is_empty() {
        write_atomic(path, edit.text.as_bytes())?;
    }
    Ok(Pinned {
        file: name,
        dry_run,
        changes: edit.changes,
        diff,
    })
}

/// Replace `path` with `bytes` in one rename, keeping its permissions; a symbolic link keeps
/// pointing at the file it names, which is the one replaced.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let real = std::fs::canonicalize(path).map_err(|source| Error::Write {
        path: path.to_owned(),
        source,
    })?;
    let path = real.as_path();
    let werr = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let leaf = path
        .file_name()
        .map_or_else(|| "document".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{leaf}.pin-{}", std::process::id()));
    let permissions = std::fs::metadata(path).map_err(werr)?.permissions();
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.set_permissions(permissions)?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(werr(e));
    }
    Ok(())
}
