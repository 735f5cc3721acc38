//! The human reporter: the guest console live on stdout (raw, as QEMU would show it), our own
//! lines on stderr (coloured on a terminal), and one final line per case that says verdict,
//! case, wall time and what decided it.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};

use super::echo::EchoFilter;
use super::{Event, Level, Reporter};
use crate::report::CaseResult;
use crate::verdict::Outcome;

/// Terminal output; `echo_console = false` hides the guest console (`--quiet`).
pub struct TerminalReporter {
    echo_console: bool,
    color: bool,
    /// Whether the last console byte written was a newline (our lines must start on their own).
    console_at_line_start: bool,
    /// With cases running at once, console lines are prefixed with `[case] ` and written only
    /// when complete, so cases never mix within a line. Holds each case's unfinished line.
    prefixed: Option<HashMap<String, Vec<u8>>>,
    /// On a terminal, each case's console is made inert ([`EchoFilter`]); `None` elsewhere
    /// (a pipe or file gets the bytes as they are).
    inert: Option<HashMap<String, EchoFilter>>,
    /// Warnings already printed in this run. Each is printed once, and a command note that
    /// repeats one (the KVM reason is the same for every case) points back to it instead.
    warned: Vec<String>,
    /// Where the console goes (stdout) and our lines go (stderr).
    out: Box<dyn Write + Send>,
    err: Box<dyn Write + Send>,
}

/// An unfinished console line longer than this is written out anyway (bounded memory).
const MAX_PENDING_LINE: usize = 4096;

impl TerminalReporter {
    /// `parallel`: several cases echo at once, so prefix their lines with the case name.
    pub fn new(echo_console: bool, parallel: bool) -> Self {
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        TerminalReporter {
            color,
            inert: std::io::stdout().is_terminal().then(HashMap::new),
            ..Self::to_writers(
                echo_console,
                parallel,
                Box::new(std::io::stdout()),
                Box::new(std::io::stderr()),
            )
        }
    }

    /// The reporter writing to `out` and `err` as it writes to a pipe or file (no colour, the
    /// console's bytes as they are): for tests that read what it wrote.
    pub fn to_writers(
        echo_console: bool,
        parallel: bool,
        out: Box<dyn Write + Send>,
        err: Box<dyn Write + Send>,
    ) -> Self {
        TerminalReporter {
            echo_console,
            color: false,
            console_at_line_start: true,
            prefixed: parallel.then(HashMap::new),
            inert: None,
            warned: Vec::new(),
            out,
            err,
        }
    }

    /// Whether a warning is new in this run (then it is remembered and printed).
    fn first_warning(&mut self, message: &str) -> bool {
        if self.warned.iter().any(|w| w == message) {
            return false;
        }
        self.warned.push(message.to_string());
        true
    }

    /// A command note with the text of any warning already printed replaced by a pointer to it.
    fn note_text(&self, note: &str) -> String {
        self.warned
            .iter()
            .filter(|w| !w.is_empty())
            .fold(note.to_string(), |n, w| {
                n.replace(w.as_str(), "(the warning above says why)")
            })
    }

    /// The console bytes as they may reach the terminal.
    fn echoed<'b>(&mut self, case: &str, bytes: &'b [u8]) -> std::borrow::Cow<'b, [u8]> {
        match self.inert.as_mut() {
            Some(filters) => {
                let colour = std::env::var_os("NO_COLOR").is_none();
                let filter = filters
                    .entry(case.to_string())
                    .or_insert_with(|| EchoFilter::new(colour));
                filter.filter(bytes).into()
            }
            None => bytes.into(),
        }
    }

    /// Writes a case's console bytes as `[case] line` lines; keeps its unfinished line.
    fn prefixed_console(&mut self, case: &str, bytes: &[u8], flush: bool) {
        let Some(pending) = self.prefixed.as_mut() else {
            return;
        };
        let buf = pending.entry(case.to_string()).or_default();
        buf.extend_from_slice(bytes);
        let out = &mut self.out;
        let mut start = 0;
        while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
            let _ = write!(out, "[{case}] ");
            let _ = out.write_all(&buf[start..start + nl + 1]);
            start += nl + 1;
        }
        buf.drain(..start);
        if !buf.is_empty() && (flush || buf.len() > MAX_PENDING_LINE) {
            let _ = write!(out, "[{case}] ");
            let _ = out.write_all(buf);
            let _ = out.write_all(b"\n");
            buf.clear();
        }
        let _ = out.flush();
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// Writes one of our lines to stderr, first ending an unfinished console line.
    fn line(&mut self, text: &str) {
        if !self.console_at_line_start {
            let _ = self.out.flush();
            let _ = writeln!(self.err);
            self.console_at_line_start = true;
        }
        let _ = writeln!(self.err, "{text}");
    }

    fn outcome_color(outcome: Outcome) -> &'static str {
        match outcome {
            Outcome::Pass => "1;32",
            Outcome::Skipped => "1;33",
            Outcome::Cancelled => "1;35",
            _ => "1;31",
        }
    }

    fn finished(&mut self, r: &CaseResult) {
        let v = &r.verdict;
        let label = self.paint(Self::outcome_color(v.outcome), v.outcome.label());
        let text = format!(
            "{label} {} in {:.3}s: {}",
            r.name,
            r.duration.as_secs_f64(),
            v.reason
        );
        self.line(&text);
        if let Some(m) = &v.decided_by
            && let Some(loc) = &m.location
        {
            self.line(&self.paint("2", &format!("  pattern defined at {loc}")));
        }
        if r.flaky {
            self.line(&self.paint(
                "33",
                &format!(
                    "  flaky: passed after {} failed attempt(s)",
                    r.attempts.len()
                ),
            ));
        }
        for e in &r.timeline {
            let when = match (e.at, e.delta) {
                (Some(at), Some(d)) => {
                    format!("{:>8.3}s  +{:.3}s", at.as_secs_f64(), d.as_secs_f64())
                }
                _ => format!("{:>9}  {:>7}", "–", "not reached"),
            };
            let seen = e
                .line_no
                .map(|n| format!(" (line {n})"))
                .unwrap_or_default();
            let text = format!("  {when}  {}  ← '{}'{seen}", e.name, e.pattern);
            self.line(&self.paint("2", &text));
        }
        if let Some(b) = &r.baseline {
            for (text, regressed) in super::baseline::terminal_lines(b) {
                self.line(&self.paint(if regressed { "1;31" } else { "2" }, &text));
            }
        }
        if !r.testcases.is_empty() {
            let count = |st| r.testcases.iter().filter(|c| c.status == st).count();
            use crate::config::grammar::CaseStatus::*;
            self.line(&self.paint(
                "2",
                &format!(
                    "  test cases: {} pass, {} fail, {} skip",
                    count(Pass),
                    count(Fail),
                    count(Skip)
                ),
            ));
        }
        if v.outcome != Outcome::Pass && !r.stderr_tail.is_empty() {
            self.line(&self.paint("2", "  QEMU stderr:"));
            for l in r.stderr_tail.iter().rev().take(5).rev() {
                self.line(&format!("    {l}"));
            }
        }
        if let Some(log) = &r.log {
            self.line(&self.paint("2", &format!("  console log: {}", log.display())));
        }
        if r.log_dropped_bytes > 0 {
            self.line(&self.paint(
                "2",
                &format!(
                    "  console log capped: {} of {} bytes dropped from the file (max_log_size)",
                    r.log_dropped_bytes, r.console_bytes
                ),
            ));
        }
    }
}

impl Reporter for TerminalReporter {
    fn event(&mut self, event: &Event<'_>) {
        match event {
            Event::QemuStarting { case, command } => {
                let head = self.paint("1;36", &format!("==> {case}:"));
                self.line(&format!("{head} {}", command.display()));
                for n in &command.notes {
                    let n = self.note_text(n);
                    self.line(&self.paint("2", &format!("    note: {n}")));
                }
            }
            Event::Console { case, bytes } if self.echo_console && self.prefixed.is_some() => {
                let bytes = self.echoed(case, bytes);
                self.prefixed_console(case, &bytes, false);
            }
            Event::Console { case, bytes } if self.echo_console && !bytes.is_empty() => {
                let bytes = self.echoed(case, bytes);
                let _ = self.out.write_all(&bytes);
                let _ = self.out.flush();
                if !bytes.is_empty() {
                    self.console_at_line_start = bytes.ends_with(b"\n");
                }
            }
            Event::QemuStderr { bytes, .. } | Event::BuildOutput { bytes, .. }
                if self.echo_console =>
            {
                let _ = self.err.write_all(bytes);
            }
            Event::Note {
                level,
                message,
                location,
                ..
            } => {
                if *level == Level::Warning && !self.first_warning(message) {
                    return;
                }
                let (tag, code) = match level {
                    Level::Info => ("note", "2"),
                    Level::Warning => ("warning", "1;33"),
                };
                let at = location.map(|l| format!("{l}: ")).unwrap_or_default();
                let tag = self.paint(code, &format!("{tag}:"));
                self.line(&format!("{tag} {at}{message}"));
            }
            Event::ChecksWarning { message } => {
                let tag = self.paint("1;33", "warning:");
                self.line(&format!("{tag} {message}"));
            }
            Event::Failed { error, .. } => {
                let tag = self.paint("1;31", "error:");
                self.line(&format!("{tag} {error}"));
            }
            Event::CaseFinished { result } => {
                if self.echo_console {
                    self.prefixed_console(&result.name, b"", true);
                }
                self.finished(result)
            }
            Event::RunFinished { results, .. } if results.len() > 1 => {
                let count = |o: Outcome| results.iter().filter(|r| r.verdict.outcome == o).count();
                self.line(&summary_line(count));
            }
            _ => {}
        }
    }
}

/// The run's one-line tally; every outcome is counted, so the numbers add up to the cases.
fn summary_line(count: impl Fn(Outcome) -> usize) -> String {
    format!(
        "{} passed, {} failed, {} timed out, {} errors, {} skipped, {} cancelled",
        count(Outcome::Pass),
        count(Outcome::Fail),
        count(Outcome::Timeout),
        count(Outcome::Error),
        count(Outcome::Skipped),
        count(Outcome::Cancelled)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warning_is_printed_once_and_notes_point_back_to_it() {
        let mut t = TerminalReporter::new(false, false);
        let why = "KVM is present but not usable (emulation failure) → TCG";
        assert!(t.first_warning(why));
        assert!(
            !t.first_warning(why),
            "the second case's copy is not printed"
        );
        assert!(t.first_warning("another warning"));
        assert_eq!(
            t.note_text(&format!("tcg: accel=auto: {why}")),
            "tcg: accel=auto: (the warning above says why)"
        );
        assert_eq!(t.note_text("added `-machine q35`"), "added `-machine q35`");
    }

    #[test]
    fn the_summary_line_counts_cancelled_cases() {
        let outcomes = [Outcome::Pass, Outcome::Cancelled, Outcome::Cancelled];
        let line = summary_line(|o| outcomes.iter().filter(|x| **x == o).count());
        assert_eq!(
            line,
            "1 passed, 0 failed, 0 timed out, 0 errors, 0 skipped, 2 cancelled"
        );
    }
}
