//! Download progress: the [`Progress`] trait the download reports to, and its renderings — an
//! indicatif bar on a terminal, a plain line every few seconds in CI logs (where a bar would
//! either not draw or flood the log).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Receives download progress; the caller decides how (or whether) to show it.
pub trait Progress: Send {
    /// A download of `label` starts (or restarts from zero).
    fn start(&mut self, label: &str, total: Option<u64>);
    /// `done` bytes of `total` have arrived (resumed bytes included).
    fn update(&mut self, done: u64, total: Option<u64>);
    /// Something the user should know mid-download: a retry, a resume, waiting for a lock.
    fn note(&mut self, message: &str);
    /// The download ended (successfully or not).
    fn finish(&mut self);
}

/// Shows nothing: for tests and `--quiet`.
#[derive(Debug, Default)]
pub struct Silent;

impl Progress for Silent {
    fn start(&mut self, _: &str, _: Option<u64>) {}
    fn update(&mut self, _: u64, _: Option<u64>) {}
    fn note(&mut self, _: &str) {}
    fn finish(&mut self) {}
}

/// The right rendering for stderr: a bar on a terminal, plain lines otherwise.
pub fn for_stderr() -> Box<dyn Progress> {
    let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
    if std::io::stderr().is_terminal() && !dumb {
        Box::new(Bar::default())
    } else {
        Box::new(Lines::new(Duration::from_secs(5)))
    }
}

/// An indicatif progress bar on stderr.
#[derive(Default)]
pub struct Bar {
    bar: Option<ProgressBar>,
}

impl Progress for Bar {
    fn start(&mut self, label: &str, total: Option<u64>) {
        self.finish();
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
        let template = "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}";
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(label.to_string());
        self.bar = Some(bar);
    }

    fn update(&mut self, done: u64, total: Option<u64>) {
        if let Some(bar) = &self.bar {
            if let Some(total) = total {
                bar.set_length(total);
            }
            bar.set_position(done);
        }
    }

    fn note(&mut self, message: &str) {
        match &self.bar {
            Some(bar) => bar.println(message),
            None => eprintln!("{message}"),
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// A plain progress line every `every`, for logs: the first when the size is known, the last
/// with the time taken.
pub struct Lines {
    every: Duration,
    label: String,
    started: Instant,
    last: Option<Instant>,
    done: u64,
    active: bool,
}

impl Lines {
    /// Prints at most one line per `every` (plus the first and the last).
    pub fn new(every: Duration) -> Self {
        Lines {
            every,
            label: String::new(),
            started: Instant::now(),
            last: None,
            done: 0,
            active: false,
        }
    }
}

impl Progress for Lines {
    fn start(&mut self, label: &str, _: Option<u64>) {
        self.label = label.to_string();
        self.started = Instant::now();
        self.last = None;
        self.done = 0;
        self.active = true;
    }

    fn update(&mut self, done: u64, total: Option<u64>) {
        self.done = done;
        let now = Instant::now();
        match self.last {
            None => eprintln!("downloading {} ({})", self.label, size_text(total)),
            Some(last) if now.duration_since(last) >= self.every => {
                eprintln!("{}", line(&self.label, done, total, now - self.started));
            }
            Some(_) => return,
        }
        self.last = Some(now);
    }

    fn note(&mut self, message: &str) {
        eprintln!("{message}");
    }

    fn finish(&mut self) {
        if std::mem::take(&mut self.active) && self.last.is_some() {
            let secs = self.started.elapsed().as_secs_f64();
            eprintln!("{}: {} in {secs:.1} s", self.label, mib(self.done));
        }
    }
}

fn line(label: &str, done: u64, total: Option<u64>, elapsed: Duration) -> String {
    let rate = done as f64 / elapsed.as_secs_f64().max(0.001) / (1 << 20) as f64;
    match total {
        Some(t) if t > 0 => format!(
            "{label}: {} of {} ({}%), {rate:.1} MiB/s",
            mib(done),
            mib(t),
            done.saturating_mul(100) / t
        ),
        _ => format!("{label}: {}, {rate:.1} MiB/s", mib(done)),
    }
}

fn size_text(total: Option<u64>) -> String {
    total.map_or_else(|| "size unknown".to_string(), mib)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_show_percent_and_rate() {
        let l = line("img", 5 << 20, Some(10 << 20), Duration::from_secs(1));
        assert_eq!(l, "img: 5.0 MiB of 10.0 MiB (50%), 5.0 MiB/s");
        assert_eq!(size_text(None), "size unknown");
    }
}
