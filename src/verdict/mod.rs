//! The outcome of a case and the one sentence that explains it.

use serde::Serialize;

use crate::console::MatchInfo;
use crate::error::exit;

mod decide;
pub use decide::{End, Facts, GuestEnding, decide, pattern_list, regressed};

/// What happened to a case, from best to worst for reporting purposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    Timeout,
    /// Infrastructure or configuration failure: the guest was not judged.
    Error,
    /// Not run, by policy (e.g. a requirement this runner cannot meet).
    Skipped,
    /// Stopped by SIGINT/SIGTERM.
    Cancelled,
}

impl Outcome {
    /// Upper-case label for terminal lines.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Timeout => "TIMEOUT",
            Outcome::Error => "ERROR",
            Outcome::Skipped => "SKIP",
            Outcome::Cancelled => "CANCELLED",
        }
    }

    /// Lower-case name, as in outputs and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Timeout => "timeout",
            Outcome::Error => "error",
            Outcome::Skipped => "skipped",
            Outcome::Cancelled => "cancelled",
        }
    }
}

/// How QEMU ended, when it ended by itself or was killed by us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QemuExit {
    /// Exit status when QEMU exited.
    pub code: Option<i32>,
    /// Signal number when QEMU was killed.
    pub signal: Option<i32>,
    /// Whether the runner stopped QEMU (after a verdict, deadline or cancel).
    pub killed_by_runner: bool,
}

/// Which signal cancelled the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CancelSignal {
    Sigint,
    Sigterm,
    /// The terminal (or an SSH session) went away.
    Sighup,
}

impl CancelSignal {
    /// 128 + the signal number, as a shell reports a process killed by it.
    pub fn exit_code(self) -> i32 {
        match self {
            CancelSignal::Sigint => exit::SIGINT,
            CancelSignal::Sigterm => exit::SIGTERM,
            CancelSignal::Sighup => exit::SIGHUP,
        }
    }

    /// The signal's name as people write it ("SIGTERM"), for messages.
    pub fn name(self) -> &'static str {
        match self {
            CancelSignal::Sigint => "SIGINT",
            CancelSignal::Sigterm => "SIGTERM",
            CancelSignal::Sighup => "SIGHUP",
        }
    }
}

impl std::fmt::Display for CancelSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The verdict of one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub outcome: Outcome,
    /// One sentence a person reads first: what decided the outcome.
    pub reason: String,
    /// The console match that decided it, if a pattern did.
    pub decided_by: Option<MatchInfo>,
    pub qemu_exit: Option<QemuExit>,
    /// Set when the outcome is [`Outcome::Cancelled`].
    pub cancelled_by: Option<CancelSignal>,
    /// An [`Outcome::Error`] caused by the configuration (QEMU refused its command line):
    /// exit 2 rather than 3.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub config_error: bool,
    /// The console line `reason` quotes, for reports that show that line anyway (the step
    /// summary marks it in the console tail and leaves the quote out of the reason).
    #[serde(skip)]
    pub quote: Option<Quote>,
    /// Where the vCPUs were when a failing boot was stopped (read over QMP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postmortem: Option<crate::postmortem::Postmortem>,
}

/// A console line quoted at the end of a clause of [`Verdict::reason`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// The line's number on the console (1-based).
    pub line_no: u64,
    /// The exact part of `reason` that repeats the line's text.
    pub fragment: String,
}

impl Verdict {
    /// The reason without the quoted line's text, for a report that shows console line
    /// `line_no` next to it; the whole reason otherwise.
    pub fn reason_beside_line(&self, shown: impl Fn(u64) -> bool) -> std::borrow::Cow<'_, str> {
        // The quote ends its clause, and that clause is the last one `decide` writes (before
        // the vCPU state, which quotes no console line): the last occurrence is the quote even
        // if the guest's line also appears earlier.
        match &self.quote {
            Some(q) if shown(q.line_no) => match self.reason.rfind(&q.fragment) {
                Some(at) => {
                    let mut r = self.reason.clone();
                    r.replace_range(at..at + q.fragment.len(), "");
                    r.into()
                }
                None => self.reason.as_str().into(),
            },
            _ => self.reason.as_str().into(),
        }
    }
}

impl Verdict {
    pub fn new(outcome: Outcome, reason: impl Into<String>) -> Self {
        Verdict {
            outcome,
            reason: reason.into(),
            decided_by: None,
            qemu_exit: None,
            cancelled_by: None,
            config_error: false,
            quote: None,
            postmortem: None,
        }
    }
}

/// How bad an outcome is, the worst highest: `cancelled` > `fail` > `timeout` > `error` >
/// `pass` > `skipped`. The one ranking behind a run's `verdict` ([`worst`]) and its exit code
/// ([`exit_code`]).
fn rank(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Skipped => 0,
        Outcome::Pass => 1,
        Outcome::Error => 2,
        Outcome::Timeout => 3,
        Outcome::Fail => 4,
        Outcome::Cancelled => 5,
    }
}

/// The worst of a run's outcomes ([`rank`]), for its one `verdict`; `error` when nothing ran.
pub fn worst(outcomes: impl IntoIterator<Item = Outcome>) -> Outcome {
    outcomes
        .into_iter()
        .max_by_key(|o| rank(*o))
        .unwrap_or(Outcome::Error)
}

/// The process exit code of a run: that of its worst verdict ([`rank`]; among errors, a
/// configuration error before an infrastructure one; among cancels, the first), 0 when
/// nothing ran. So a cancel wins, then a failure or timeout (the guest is broken), then an
/// error, else success.
pub fn exit_code<'a>(verdicts: impl IntoIterator<Item = &'a Verdict>) -> i32 {
    let severity = |v: &Verdict| {
        let config = v.outcome == Outcome::Error && v.config_error;
        (rank(v.outcome), config)
    };
    let mut worst: Option<&Verdict> = None;
    for v in verdicts {
        if worst.is_none_or(|w| severity(v) > severity(w)) {
            worst = Some(v);
        }
    }
    worst.map_or(exit::PASS, Verdict::exit_code)
}

impl Verdict {
    /// The exit code of a run with this one verdict.
    fn exit_code(&self) -> i32 {
        match self.outcome {
            Outcome::Cancelled => self
                .cancelled_by
                .map_or(exit::SIGTERM, CancelSignal::exit_code),
            Outcome::Fail | Outcome::Timeout => exit::FAIL,
            Outcome::Error if self.config_error => exit::USAGE,
            Outcome::Error => exit::INFRA,
            Outcome::Pass | Outcome::Skipped => exit::PASS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(o: Outcome) -> Verdict {
        Verdict::new(o, "")
    }

    #[test]
    fn exit_code_ranks_cancel_then_fail_then_infra() {
        assert_eq!(exit_code(&[v(Outcome::Pass), v(Outcome::Skipped)]), 0);
        assert_eq!(exit_code(&[v(Outcome::Pass), v(Outcome::Error)]), 3);
        assert_eq!(exit_code(&[v(Outcome::Error), v(Outcome::Timeout)]), 1);
        let mut c = v(Outcome::Cancelled);
        c.cancelled_by = Some(CancelSignal::Sigint);
        assert_eq!(exit_code(&[v(Outcome::Fail), c.clone()]), 130);
        c.cancelled_by = Some(CancelSignal::Sighup);
        assert_eq!(exit_code(&[c, v(Outcome::Error)]), 129);
        let cancel = |signal| Verdict {
            cancelled_by: Some(signal),
            ..v(Outcome::Cancelled)
        };
        let (term, int) = (cancel(CancelSignal::Sigterm), cancel(CancelSignal::Sigint));
        assert_eq!(
            exit_code(&[term, int]),
            143,
            "the first cancel names the code"
        );
        let mut config = v(Outcome::Error);
        config.config_error = true;
        let infra = v(Outcome::Error);
        assert_eq!(exit_code(&[infra.clone(), config.clone()]), 2);
        assert_eq!(exit_code(&[config, infra]), 2);
        assert_eq!(exit_code(&[]), 0);
        assert_eq!(CancelSignal::Sighup.to_string(), "SIGHUP");
        assert_eq!(
            serde_json::to_value(CancelSignal::Sigterm).unwrap(),
            serde_json::json!("SIGTERM")
        );
    }

    /// A run's exit code is its worst outcome's: one ranking for both.
    #[test]
    fn the_exit_code_follows_the_worst_outcome() {
        use Outcome::*;
        let all = [Skipped, Pass, Error, Timeout, Fail, Cancelled];
        for a in all {
            for b in all {
                let w = worst([a, b]);
                assert_eq!(exit_code(&[v(a), v(b)]), exit_code(&[v(w)]), "{a:?} {b:?}");
            }
        }
        assert_eq!(worst([]), Error);
        assert_eq!(worst([Pass, Skipped]), Pass);
        assert_eq!(worst([Error, Timeout, Pass]), Timeout);
    }
}
