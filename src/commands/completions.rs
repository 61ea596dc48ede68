//! `terroir completions SHELL` and `terroir man`: generated from the same clap types as the
//! command line itself, so they cannot drift from it.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use serde::Serialize;

use super::Context;
use crate::cli::Cli;
use crate::error::{Error, ExitStatus};
use crate::printer::{Report, Text};

/// Generated text, the same for people and scripts.
#[derive(Serialize)]
#[serde(transparent)]
struct Generated(String);

impl Report for Generated {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        out.write_all(self.0.as_bytes())
    }
}

pub fn completions(shell: clap_complete::Shell, cx: &Context) -> Result<ExitStatus, Error> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "terroir", &mut script);
    cx.printer
        .report(&Generated(String::from_utf8_lossy(&script).into_owned()))?;
    Ok(ExitStatus::Success)
}

/// The pages written, for `man --out`.
#[derive(Serialize)]
struct Pages {
    directory: PathBuf,
    pages: Vec<String>,
}

impl Report for Pages {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        writeln!(
            out,
            "wrote {} manual pages into {} (read one with: man -l {}/terroir.1)",
            self.pages.len(),
            self.directory.display(),
            self.directory.display()
        )
    }
}

fn page(cmd: &clap::Command) -> Result<Vec<u8>, Error> {
    let mut roff = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut roff)
        .map_err(Error::Output)?;
    Ok(roff)
}

fn write_pages(
    cmd: &clap::Command,
    prefix: &str,
    dir: &Path,
    pages: &mut Vec<String>,
) -> Result<(), Error> {
    let name = format!("{prefix}.1");
    let path = dir.join(&name);
    std::fs::write(&path, page(cmd)?).map_err(|source| Error::Write { path, source })?;
    pages.push(name);
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        // a page is named after the command's whole path: terroir-backup-restore.1
        let full = format!("{prefix}-{}", sub.get_name());
        write_pages(&sub.clone().name(full.clone()), &full, dir, pages)?;
    }
    Ok(())
}

pub fn man(out: Option<&Path>, cx: &Context) -> Result<ExitStatus, Error> {
    let mut cmd = Cli::command();
    cmd.build();
    match out {
        None => cx.printer.report(&Generated(
            String::from_utf8_lossy(&page(&cmd)?).into_owned(),
        ))?,
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| Error::Write {
                path: dir.to_owned(),
                source,
            })?;
            let mut pages = Vec::new();
            write_pages(&cmd, "terroir", dir, &mut pages)?;
            cx.printer.report(&Pages {
                directory: dir.to_owned(),
                pages,
            })?;
        }
    }
    Ok(ExitStatus::Success)
}
