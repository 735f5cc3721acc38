//! Replays a saved console log through the whole grammar — judge, steps (as if their text had
//! been typed: the log already holds the echo), milestones and extraction — and says which line
//! matched what and what the verdict would have been.

use std::fmt::Write as _;
use std::time::Duration;

use crate::console::{Decision, Judge, JudgeOptions, Pattern, Script};
use crate::verdict::Outcome;

/// The result of a replay: a printable account and the verdict it implies.
pub struct Replay {
    pub report: String,
    pub outcome: Outcome,
}

/// Feeds `log` in 64 KiB reads (time does not advance: deadlines do not apply).
pub fn replay(log: &[u8], success: Vec<Pattern>, fail: Vec<Pattern>, script: Script) -> Replay {
    let steps_decide = success.is_empty();
    let mut judge = Judge::new(success, fail, JudgeOptions::default()).with_script(script);
    let t = Duration::ZERO;
    let mut decision = None;
    for chunk in log.chunks(64 * 1024) {
        decision = decision.or(judge.feed(chunk, t));
        if decision.is_some() {
            break;
        }
    }
    let decision = decision.or_else(|| judge.finish(t));
    let mut rows: Vec<(u64, String)> = Vec::new();
    if let Some(s) = judge.script() {
        for e in s.timeline() {
            match e.line_no {
                Some(n) => rows.push((n, format!("{:<10} {} ← '{}'", kind(&e), e.name, e.pattern))),
                None => rows.push((
                    u64::MAX,
                    format!("{:<10} {} never matched '{}'", kind(&e), e.name, e.pattern),
                )),
            }
        }
        for c in s.cases() {
            let what = format!(
                "case       {}: {}{}",
                c.id,
                c.status.name(),
                c.raw
                    .as_ref()
                    .map(|r| format!(" (raw '{r}')"))
                    .or(c.note.as_ref().map(|n| format!(" ({n})")))
                    .unwrap_or_default()
            );
            rows.push((c.line_no.unwrap_or(u64::MAX), what));
        }
    }
    if let Some(d) = &decision {
        let m = d.info();
        let role = if matches!(d, Decision::Fail(_)) {
            "fail"
        } else {
            "success"
        };
        rows.push((
            m.line_no,
            format!("{role:<10} '{}' decides: {}", m.pattern, m.line.trim_end()),
        ));
    }
    rows.sort_by_key(|(n, _)| *n);
    let mut report = format!(
        "replayed {} bytes, {} console lines\n",
        log.len(),
        judge.lines_seen()
    );
    for (n, what) in &rows {
        let at = if *n == u64::MAX {
            "   –".to_string()
        } else {
            format!("{n:>4}")
        };
        let _ = writeln!(report, "  line {at}  {what}");
    }
    let case_failure = judge.script().and_then(|s| s.case_failure());
    let (outcome, why) = match (&decision, case_failure) {
        (Some(Decision::Fail(_)), _) => (Outcome::Fail, "a fail pattern matched".to_string()),
        (Some(Decision::Success(_)), Some(why)) => (Outcome::Fail, why),
        (Some(Decision::Success(_)), None) => {
            (Outcome::Pass, "the success condition was met".into())
        }
        (None, _) => {
            let waiting = judge.script().and_then(|s| s.awaiting());
            let why = match waiting {
                Some(w) => format!("the log ended while waiting for {w}"),
                None if steps_decide => {
                    "the log ended; only QEMU's exit status could decide".into()
                }
                None => "the log ended before any success pattern matched".into(),
            };
            (Outcome::Timeout, why)
        }
    };
    let _ = writeln!(report, "verdict: {} — {why}", outcome.name());
    Replay { report, outcome }
}

fn kind(e: &crate::console::TimelineEntry) -> &'static str {
    match e.kind {
        crate::console::TimelineKind::Milestone => "milestone",
        crate::console::TimelineKind::Step => "step",
    }
}
