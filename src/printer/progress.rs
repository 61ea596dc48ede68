//! Progress of long work on standard error: live bars on a terminal (indicatif), one line per
//! event when standard error is a file or a pipe, nothing at all for scripts.

use std::time::Duration;

#[derive(Clone)]
enum Mode {
    Hidden,
    Lines,
    Bars(indicatif::MultiProgress),
}

/// Where progress goes; `Bar`s hang from it.
#[derive(Clone)]
pub struct Progress {
    mode: Mode,
}

/// One piece of work in progress: a host, a file being written, a download.
pub struct Bar {
    bar: Option<indicatif::ProgressBar>,
    /// Said before each line when lines are printed (`[db1]`).
    prefix: String,
    lines: bool,
}

impl Progress {
    pub(super) fn hidden() -> Self {
        Progress { mode: Mode::Hidden }
    }
    pub(super) fn lines() -> Self {
        Progress { mode: Mode::Lines }
    }
    pub(super) fn bars() -> Self {
        Progress {
            mode: Mode::Bars(indicatif::MultiProgress::new()),
        }
    }

    /// Whether anything is shown (work that only feeds progress can be skipped otherwise).
    pub fn shown(&self) -> bool {
        !matches!(self.mode, Mode::Hidden)
    }

    /// A line for people, above the bars when there are any.
    pub fn line(&self, text: impl AsRef<str>) {
        match &self.mode {
            Mode::Hidden => {}
            Mode::Lines => eprintln!("{}", text.as_ref()),
            Mode::Bars(m) => {
                let _ = m.println(text.as_ref());
            }
        }
    }

    /// A spinner named `name` (`[name]` before its lines), showing `{msg}` after it.
    pub fn spinner(&self, name: &str) -> Bar {
        self.bar(name, "{spinner} {prefix:<12} {msg}", None)
    }

    /// A byte counter named `name`: size and rate so far, then `{msg}`; with `total`, a bar.
    pub fn bytes(&self, name: &str, total: Option<u64>) -> Bar {
        match total {
            Some(_) => self.bar(
                name,
                "{prefix} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta}) {msg}",
                total,
            ),
            None => self.bar(
                name,
                "{spinner} {prefix} {bytes} ({bytes_per_sec}) {msg}",
                None,
            ),
        }
    }

    fn bar(&self, name: &str, template: &str, total: Option<u64>) -> Bar {
        let bar = match &self.mode {
            Mode::Bars(m) => {
                let bar = m.add(match total {
                    Some(n) => indicatif::ProgressBar::new(n),
                    None => indicatif::ProgressBar::new_spinner(),
                });
                let style = indicatif::ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
                bar.set_style(style.progress_chars("=> "));
                bar.set_prefix(name.to_owned());
                bar.enable_steady_tick(Duration::from_millis(120));
                Some(bar)
            }
            _ => None,
        };
        Bar {
            bar,
            prefix: name.to_owned(),
            lines: matches!(self.mode, Mode::Lines),
        }
    }
}

impl Bar {
    /// What it is doing now: the bar's message on a terminal, a `[name] status` line otherwise.
    pub fn status(&self, status: impl AsRef<str>) {
        match &self.bar {
            Some(b) => b.set_message(status.as_ref().to_owned()),
            None if self.lines => eprintln!("[{}] {}", self.prefix, status.as_ref()),
            None => {}
        }
    }

    /// What it is doing now, on a terminal only (too many for lines).
    pub fn message(&self, message: impl AsRef<str>) {
        if let Some(b) = &self.bar {
            b.set_message(message.as_ref().to_owned());
        }
    }

    /// A line that stays: above the bars on a terminal, as it is otherwise.
    pub fn println(&self, line: impl AsRef<str>) {
        match &self.bar {
            Some(b) => b.println(line.as_ref()),
            None if self.lines => eprintln!("{}", line.as_ref()),
            None => {}
        }
    }

    /// Restart the count for a new piece of work under the same bar.
    pub fn restart(&self, name: &str) {
        if let Some(b) = &self.bar {
            b.set_prefix(name.to_owned());
            b.set_position(0);
            b.reset_elapsed();
        }
    }

    pub fn set_position(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.set_position(n);
        }
    }

    pub fn set_length(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.set_length(n);
        }
    }

    /// Done: the bar keeps `message` on a terminal; a `[name] message` line otherwise.
    pub fn finish(&self, message: impl AsRef<str>) {
        match &self.bar {
            Some(b) => b.finish_with_message(message.as_ref().to_owned()),
            None if self.lines => eprintln!("[{}] {}", self.prefix, message.as_ref()),
            None => {}
        }
    }

    /// Done, leaving nothing on the terminal.
    pub fn clear(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
