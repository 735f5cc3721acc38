//! The one place a case's verdict is decided. [`decide`] is pure: the boot (`run`) and the log
//! replay (`check --log`) collect the same [`Facts`] — how the watch over the console ended,
//! how QEMU and the guest ended, what the grammar still waits for — and get the same verdict
//! with the same one-sentence reason. README "How a verdict is reached" states these rules as
//! one table; keep the two in sync.

use std::time::Duration;

use super::{CancelSignal, Outcome, QemuExit, Quote, Verdict};
use crate::console::{Decision, Judge, Pattern, PatternKind};

/// How the watch over the console stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// A fail pattern, a success pattern (all steps done) or the last step (no success
    /// pattern) decided.
    Decided(Decision),
    /// The whole-boot deadline passed.
    Deadline(Duration),
    /// A step timeout or milestone deadline passed; says what was awaited.
    Awaited(String),
    /// No console output for this long (`inactivity_timeout`).
    Inactive(Duration),
    Cancelled(CancelSignal),
    /// QEMU ended by itself (its status is [`Facts::qemu_exit`]).
    Exited,
    /// QEMU reported that the guest panicked (`GUEST_PANICKED`, pvpanic).
    GuestPanicked(Duration),
    /// A replayed console log ended: there is no QEMU exit to judge.
    LogEnded,
    /// QMP failed before the guest was started (and QEMU did not exit): the guest never ran.
    NoControl(String),
    /// A board did not get its kernel started: power-on failed, U-Boot never answered, a
    /// U-Boot command failed, or a stage's deadline passed (`board::stages`); the reason.
    Board(String),
}

/// How the guest ended, as QEMU said over QMP (`SHUTDOWN`'s `reason`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestEnding {
    /// QEMU's reason word: `guest-shutdown`, `guest-reset`, `guest-panic`, `host-signal`, …
    pub reason: String,
    /// Time since QEMU start.
    pub at: Duration,
}

impl GuestEnding {
    fn is_reset(&self) -> bool {
        self.reason == "guest-reset"
    }

    fn is_panic(&self) -> bool {
        self.reason == "guest-panic"
    }
}

/// Everything the verdict depends on.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub end: End,
    /// Time since QEMU start (or 0 for a replay).
    pub elapsed: Duration,
    /// `None` for a replay.
    pub qemu_exit: Option<QemuExit>,
    /// The guest's own ending, when QEMU reported one.
    pub guest: Option<GuestEnding>,
    /// `on_reset = "pass"`: a guest reset is the expected ending.
    pub reset_passes: bool,
    /// Whether the guest was started (QMP `cont` answered). QEMU failing before that refused
    /// its command line: a configuration error, not a guest failure.
    pub guest_started: bool,
    pub success: &'a [Pattern],
    /// What the grammar still waits for (the current step, else the next milestone).
    pub awaiting: Option<String>,
    /// Required milestones never reached, as `'name' (pattern '…')`.
    pub missed_milestones: Vec<String>,
    /// Why extracted test cases fail the case, if they do.
    pub case_failure: Option<String>,
    /// The last console line and its number.
    pub last_line: Option<(u64, String)>,
    /// The line of QEMU's stderr that names its problem.
    pub stderr_line: Option<String>,
    /// Whether times are real (false in a replay: every time would read 0).
    pub live: bool,
    /// The vCPUs' state, read when the boot failed before QEMU was stopped.
    pub postmortem: Option<crate::postmortem::Postmortem>,
}

impl<'a> Facts<'a> {
    /// The facts of a live boot that ended `end` with nothing else known: no console line,
    /// nothing awaited or missed, QEMU's and the guest's endings empty.
    pub fn new(end: End, success: &'a [Pattern]) -> Facts<'a> {
        Facts {
            end,
            elapsed: Duration::ZERO,
            qemu_exit: None,
            guest: None,
            reset_passes: false,
            guest_started: true,
            success,
            awaiting: None,
            missed_milestones: Vec::new(),
            case_failure: None,
            last_line: None,
            stderr_line: None,
            live: true,
            postmortem: None,
        }
    }

    /// The facts the console judge (and its grammar) observed, for a boot that ended `end`;
    /// QEMU's and the guest's endings are left empty for the caller to fill in.
    pub fn observed(end: End, judge: &Judge, success: &'a [Pattern]) -> Facts<'a> {
        let script = judge.script();
        Facts {
            awaiting: script.and_then(|s| s.awaiting()),
            missed_milestones: script.map(|s| s.missed_milestones()).unwrap_or_default(),
            case_failure: script.and_then(|s| s.case_failure()),
            last_line: judge.tail().last().map(|l| (judge.lines_seen(), l.clone())),
            ..Facts::new(end, success)
        }
    }
}

/// The verdict for `facts`. Order of the rules: a cancel; a fail pattern; a guest panic or
/// reset (unless `on_reset = "pass"`); a success (then any missed required milestone or failed
/// test case turns it into a failure); the deadlines; and last how QEMU exited.
pub fn decide(facts: &Facts<'_>) -> Verdict {
    let mut v = match &facts.end {
        End::Cancelled(sig) => {
            let mut v = Verdict::new(
                Outcome::Cancelled,
                format!(
                    "cancelled by {} after {:.3}s",
                    sig.name(),
                    facts.elapsed.as_secs_f64()
                ),
            );
            v.cancelled_by = Some(*sig);
            v
        }
        End::Decided(d) => matched(d, facts),
        End::GuestPanicked(at) => Verdict::new(
            Outcome::Fail,
            format!(
                "the guest panicked at {:.3}s (QEMU's pvpanic); {}",
                at.as_secs_f64(),
                last_line(facts)
            ),
        ),
        End::Deadline(d) => Verdict::new(
            Outcome::Timeout,
            format!(
                "timed out after {}: {}; {}",
                crate::duration::format(*d),
                awaited(facts),
                last_line(facts)
            ),
        ),
        End::Awaited(what) => Verdict::new(
            Outcome::Timeout,
            format!("timed out: {what}; {}", last_line(facts)),
        ),
        End::Inactive(d) => Verdict::new(
            Outcome::Timeout,
            format!(
                "timed out: no console output for {} (inactivity_timeout){}; {}",
                crate::duration::format(*d),
                facts
                    .awaiting
                    .as_ref()
                    .map(|w| format!(" while waiting for {w}"))
                    .unwrap_or_default(),
                last_line(facts)
            ),
        ),
        End::Exited => exited(facts),
        End::LogEnded => log_ended(facts),
        End::NoControl(why) => Verdict::new(
            Outcome::Error,
            format!("the guest was never started: QEMU's QMP monitor failed: {why}"),
        ),
        // The board never ran the kernel under test: an infrastructure error (retried with
        // `retry_on = ["infra"]`), not a verdict on the kernel.
        End::Board(why) => Verdict::new(Outcome::Error, format!("board: {why}")),
    };
    if let Some(why) = unmet(facts) {
        fail_pass(&mut v, why);
    }
    v.qemu_exit = facts.qemu_exit;
    v.quote = quote(&v, facts);
    if let Some(pm) = &facts.postmortem
        && matches!(v.outcome, Outcome::Fail | Outcome::Timeout)
    {
        v.reason = format!("{}; {}", v.reason, pm.one_line());
        v.postmortem = Some(pm.clone());
    }
    v
}

/// The console line the reason quotes: the deciding match's (`matched`), else the last line
/// (`last_line`), with the exact text each of them writes.
fn quote(v: &Verdict, facts: &Facts<'_>) -> Option<Quote> {
    let (line_no, fragment) = match (&v.decided_by, &facts.last_line) {
        (Some(m), _) => (m.line_no, format!(": {}", m.line.trim_end())),
        (None, Some((n, l))) => (*n, format!(": '{}'", l.trim_end())),
        (None, None) => return None,
    };
    v.reason
        .contains(&fragment)
        .then_some(Quote { line_no, fragment })
}

/// The one run-level rule (`--fail-on-regression`): applied once per case, after its last
/// attempt, when its times were compared with a baseline (`report::baseline`). A pass whose
/// boot or milestone time regressed past the threshold (`regression` says which) becomes a
/// fail, like a pass with a missed milestone; any other verdict is kept as it is.
pub fn regressed(mut v: Verdict, regression: Option<String>) -> Verdict {
    if let Some(why) = regression {
        fail_pass(&mut v, why);
    }
    v
}

/// A pass that is not a pass after all: a fail saying `why`, then what had passed.
fn fail_pass(v: &mut Verdict, why: String) {
    if v.outcome == Outcome::Pass {
        v.outcome = Outcome::Fail;
        v.reason = format!("{why} ({})", v.reason);
    }
}

/// A pass is not a pass while a required milestone was missed or test cases failed.
fn unmet(facts: &Facts<'_>) -> Option<String> {
    let mut why = Vec::new();
    if !facts.missed_milestones.is_empty() {
        let s = if facts.missed_milestones.len() == 1 {
            ""
        } else {
            "s"
        };
        why.push(format!(
            "required milestone{s} {} not reached",
            facts.missed_milestones.join(", ")
        ));
    }
    why.extend(facts.case_failure.clone());
    (!why.is_empty()).then(|| why.join("; "))
}

fn matched(d: &Decision, facts: &Facts<'_>) -> Verdict {
    let m = d.info();
    let (outcome, what) = match m.kind {
        PatternKind::Fail => (Outcome::Fail, "fail"),
        PatternKind::Success => (Outcome::Pass, "success"),
    };
    let at = if facts.live {
        format!(" at {:.3}s", m.at.as_secs_f64())
    } else {
        String::new()
    };
    let mut v = Verdict::new(
        outcome,
        format!(
            "{what} pattern '{}' matched console line {}{at}: {}",
            m.pattern,
            m.line_no,
            m.line.trim_end()
        ),
    );
    v.decided_by = Some(m.clone());
    v
}

/// QEMU ended by itself before any pattern decided.
fn exited(facts: &Facts<'_>) -> Verdict {
    let exit = facts.qemu_exit.unwrap_or(QemuExit {
        code: None,
        signal: None,
        killed_by_runner: false,
    });
    if !facts.guest_started
        && let Some(code) = exit.code.filter(|&c| c != 0)
    {
        return refused(code, facts);
    }
    if let Some(g) = &facts.guest {
        if g.is_panic() {
            return Verdict::new(
                Outcome::Fail,
                format!(
                    "the guest panicked at {:.3}s; {}",
                    g.at.as_secs_f64(),
                    last_line(facts)
                ),
            );
        }
        if g.is_reset() && !facts.reset_passes {
            return Verdict::new(
                Outcome::Fail,
                format!(
                    "guest reset itself at {:.3}s (set on_reset = \"pass\" if that is the expected ending); {}",
                    g.at.as_secs_f64(),
                    last_line(facts)
                ),
            );
        }
    }
    let ending = match &facts.guest {
        Some(g) if g.is_reset() => "the guest reset itself (on_reset = \"pass\") and QEMU exited",
        _ => "QEMU exited with status 0",
    };
    match (exit.code, exit.signal) {
        (Some(0), _) if facts.awaiting.is_some() => Verdict::new(
            Outcome::Fail,
            format!(
                "{ending} while waiting for {}; {}",
                facts.awaiting.as_deref().unwrap_or_default(),
                last_line(facts)
            ),
        ),
        (Some(0), _) if facts.success.is_empty() => Verdict::new(
            Outcome::Pass,
            format!("{ending} and no success pattern is configured"),
        ),
        (Some(0), _) => Verdict::new(
            Outcome::Fail,
            format!(
                "{ending} before any success pattern matched ({}); {}",
                pattern_list(facts.success),
                last_line(facts)
            ),
        ),
        (Some(code), _) => Verdict::new(
            Outcome::Fail,
            format!("QEMU exited with status {code}{}", stderr_hint(facts)),
        ),
        (None, sig) => Verdict::new(
            Outcome::Fail,
            format!(
                "QEMU was killed by signal {}{}",
                sig.unwrap_or(0),
                stderr_hint(facts)
            ),
        ),
    }
}

/// QEMU exited with `code` before the guest was started: it refused its command line. A
/// missing accelerator is the host's problem (exit 3), anything else the config's (exit 2).
fn refused(code: i32, facts: &Facts<'_>) -> Verdict {
    let line = facts.stderr_line.as_deref().unwrap_or("");
    let lower = line.to_ascii_lowercase();
    let host = ["kvm", "accelerator", "hvf", "/dev/"]
        .iter()
        .any(|w| lower.contains(w));
    let what = if host {
        "QEMU could not start on this host"
    } else {
        "QEMU refused its command line"
    };
    let mut v = Verdict::new(
        Outcome::Error,
        if line.is_empty() {
            format!("{what}: it exited with status {code} before the guest started")
        } else {
            format!("{what}: {line} (exit status {code}, before the guest started)")
        },
    );
    v.config_error = !host;
    v
}

/// A replayed log ended before a decision.
fn log_ended(facts: &Facts<'_>) -> Verdict {
    let why = match &facts.awaiting {
        Some(w) => format!("the log ended while waiting for {w}"),
        None if facts.success.is_empty() => "the log ended with nothing left to wait for; \
             only QEMU's exit could decide, and a replay has no QEMU exit to judge"
            .to_string(),
        None => format!(
            "the log ended before any success pattern matched ({})",
            pattern_list(facts.success)
        ),
    };
    Verdict::new(Outcome::Timeout, why)
}

fn awaited(facts: &Facts<'_>) -> String {
    if let Some(w) = &facts.awaiting {
        return format!("waiting for {w}");
    }
    if facts.success.is_empty() {
        "QEMU did not exit and no success pattern is configured".into()
    } else {
        format!(
            "no success pattern matched (waiting for {})",
            pattern_list(facts.success)
        )
    }
}

/// `'a' or 'b'`, as a sentence shows the success patterns.
pub fn pattern_list(patterns: &[Pattern]) -> String {
    patterns
        .iter()
        .map(|p| format!("'{}'", p.spec.regex))
        .collect::<Vec<_>>()
        .join(" or ")
}

fn last_line(facts: &Facts<'_>) -> String {
    match &facts.last_line {
        Some((n, l)) => format!("last console line {n}: '{}'", l.trim_end()),
        None => "no console output at all".into(),
    }
}

fn stderr_hint(facts: &Facts<'_>) -> String {
    match &facts.stderr_line {
        Some(l) => format!(": {l}"),
        None => String::new(),
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
