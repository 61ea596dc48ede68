//! The one place that writes: for people (text, colour, tables, progress on a terminal) or for
//! scripts (one JSON value on standard output). Commands build a report and hand it over; none of
//! them looks at the output format.
//!
//! - standard output carries the data: a report's text, or its JSON;
//! - standard error carries what happens meanwhile (notes, progress) for people only, warnings in
//!   every format, and in text the error that ends the command;
//! - the error that ends a command is said on standard error; with `--output json` it is also one
//!   JSON object on standard output, of the same shape for every command (`ErrorReport`).

mod deploy;
mod progress;

use std::fmt::Display;
use std::io::{IsTerminal, Write};

use serde::Serialize;

pub use deploy::DeployEvents;
pub use progress::{Bar, Progress};

use crate::document::Diagnostic;
use crate::error::{Error, ExitStatus};

/// How results are written: decided once, from `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

impl From<crate::cli::OutputFormat> for Format {
    fn from(f: crate::cli::OutputFormat) -> Self {
        match f {
            crate::cli::OutputFormat::Text => Format::Text,
            crate::cli::OutputFormat::Json => Format::Json,
        }
    }
}

/// A command's result: serialized as it is for scripts, written as text for people.
pub trait Report: Serialize {
    /// The report for people, on standard output.
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()>;
}

/// Standard output (or error) for people, with colour when it is a terminal and `NO_COLOR` is
/// unset. `write!` and `writeln!` work on it.
pub struct Text<'a> {
    out: &'a mut dyn Write,
    color: bool,
}

impl<'a> Text<'a> {
    /// Text without colour into any writer (a file, a buffer).
    pub fn plain(out: &'a mut dyn Write) -> Self {
        Text { out, color: false }
    }

    /// A report's text for people, without colour, as a string.
    pub fn of<R: Report + ?Sized>(report: &R) -> String {
        let mut buf = Vec::new();
        // writing into memory cannot fail
        let _ = report.text(&mut Text::plain(&mut buf));
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// `s` in an ANSI colour (`"31"` red, `"32"` green, `"33"` yellow, `"35"` magenta, `"36"`
    /// cyan), or as it is when colour is off.
    pub fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }
}

impl Write for Text<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// The one writer for every command.
#[derive(Debug, Clone)]
pub struct Printer {
    format: Format,
    stdout_color: bool,
    stderr_color: bool,
    stderr_terminal: bool,
}

fn color_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none()
}

impl Printer {
    pub fn new(format: Format) -> Self {
        let stderr_terminal = std::io::stderr().is_terminal();
        Printer {
            format,
            stdout_color: std::io::stdout().is_terminal() && color_allowed(),
            stderr_color: stderr_terminal && color_allowed(),
            stderr_terminal,
        }
    }

    /// For people: text on standard output, progress on standard error.
    fn for_people(&self) -> bool {
        self.format == Format::Text
    }

    /// Write a command's result on standard output.
    pub fn report<R: Report + ?Sized>(&self, report: &R) -> Result<(), Error> {
        let mut stdout = std::io::stdout().lock();
        let written = match self.format {
            Format::Json => serde_json::to_writer_pretty(&mut stdout, report)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(stdout)),
            Format::Text => report.text(&mut Text {
                out: &mut stdout,
                color: self.stdout_color,
            }),
        };
        written.and_then(|()| stdout.flush()).map_err(Error::Output)
    }

    /// A line about what is happening, for people only (standard error).
    pub fn note(&self, line: impl Display) {
        if self.for_people() {
            eprintln!("{line}");
        }
    }

    /// A warning, in every format (standard error: standard output stays the data).
    pub fn warn(&self, line: impl Display) {
        let word = self.paint_err("33", "warning");
        eprintln!("{word}: {line}");
    }

    /// A problem that does not end the command (one host of several, one check of many), in
    /// every format.
    pub fn problem(&self, line: impl Display) {
        let word = self.paint_err("31", "error");
        eprintln!("{word}: {line}");
    }

    /// Progress of long work: live bars on a terminal, one line per event otherwise, nothing for
    /// scripts.
    pub fn progress(&self) -> Progress {
        match (self.format, self.stderr_terminal) {
            (Format::Json, _) => Progress::hidden(),
            (Format::Text, true) => Progress::bars(),
            (Format::Text, false) => Progress::lines(),
        }
    }

    fn paint_err(&self, code: &str, s: &str) -> String {
        if self.stderr_color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }

    /// The error that ends a command, said once: its whole chain, the document's diagnostics with
    /// their source lines, and hints, on standard error; with `--output json`, also as one object
    /// on standard output for scripts. Returns the exit status it maps to.
    pub fn error(&self, e: &Error) -> ExitStatus {
        let status = e.exit_status();
        if self.format == Format::Json {
            let report = ErrorReport::new(e);
            let mut stdout = std::io::stdout().lock();
            let _ = serde_json::to_writer_pretty(&mut stdout, &report);
            let _ = writeln!(stdout);
        } else if let Some((diags, text)) = e.diagnostics() {
            // scripts find them in the JSON object
            self.diagnostics(diags, text);
        }
        let word = self.paint_err("31", "error");
        eprintln!("{word}: {}", crate::text::error_chain(e));
        for hint in e.hints() {
            eprintln!("{}: {hint}", self.paint_err("36", "hint"));
        }
        status
    }

    /// A document's diagnostics for people: each with its source line and a caret under the
    /// column.
    pub fn diagnostics(&self, diags: &[Diagnostic], source: Option<&str>) {
        let mut err = std::io::stderr().lock();
        for d in diags {
            let _ = writeln!(err, "{}: {d}", self.paint_err("31", "error"));
            if let Some(line) =
                source.and_then(|s| s.lines().nth(d.line.saturating_sub(1) as usize))
            {
                let n = d.line.to_string();
                let _ = writeln!(err, "{:>w$} | {line}", n, w = n.len());
                let pad: String = line
                    .chars()
                    .take(d.column.saturating_sub(1) as usize)
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                let _ = writeln!(err, "{:>w$} | {pad}^", "", w = n.len());
            }
        }
    }
}

/// What `--output json` prints when a command fails: the same shape for every command.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorReport {
    /// The whole error chain on one line.
    pub error: String,
    /// What kind of failure: `invalid-document`, `usage`, `policy`, `locked`, `refused`,
    /// `failed`...
    pub kind: &'static str,
    pub exit_status: u8,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
    /// The document's problems, each with file, line and column.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<Diagnostic>,
    /// Facts particular to the failure (the failing policy checks, the lock's holder...).
    #[serde(flatten, skip_serializing_if = "serde_json::Map::is_empty")]
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl ErrorReport {
    pub fn new(e: &Error) -> Self {
        ErrorReport {
            error: crate::text::error_chain(e),
            kind: e.kind(),
            exit_status: e.exit_status().code(),
            hints: e.hints(),
            diagnostics: e.diagnostics().map(|(d, _)| d.to_vec()).unwrap_or_default(),
            details: e.details(),
        }
    }
}
