//! Replays a saved console log through the whole grammar — judge, steps (as if their text had
//! been typed: the log already holds the echo), milestones and extraction — and says which line
//! matched what and what the verdict would have been.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

use crate::console::Decision;
use crate::error::Error;
use crate::plan::JudgeSpec;
use crate::run::boot::READ_CHUNK;
use crate::verdict::{End, Facts, Outcome, decide};

/// The result of a replay: a printable account and the verdict it implies.
pub struct Replay {
    pub report: String,
    pub outcome: Outcome,
}

/// Streams the log at `path` through the judge in the same 64 KiB reads as a live boot (memory
/// stays bounded whatever the file's size; time does not advance, so deadlines do not apply),
/// then asks [`decide`] — the rules a boot uses — for the verdict. A replay has no QEMU exit:
/// a log that ends undecided is judged as such.
pub fn replay(path: &Path, spec: &JudgeSpec) -> Result<Replay, Error> {
    let what = "console log";
    let (mut file, _) = crate::config::source::open_input(path, what)?;
    let mut judge = spec.judge();
    let t = Duration::ZERO;
    let mut decision = None;
    let mut buf = vec![0u8; READ_CHUNK];
    let mut size = 0u64;
    while decision.is_none() {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::input_io(path, what, &e)),
        };
        size += n as u64;
        decision = judge.feed(&buf[..n], t);
    }
    let decision = decision.or_else(|| judge.finish(t));
    let end = match &decision {
        Some(d) => End::Decided(d.clone()),
        None => End::LogEnded,
    };
    let verdict = decide(&Facts {
        live: false,
        ..Facts::observed(end, &judge, &spec.success)
    });
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
        "replayed {size} bytes{}, {} console lines\n",
        if decision.is_some() {
            " (up to the decision)"
        } else {
            ""
        },
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
    let _ = writeln!(
        report,
        "verdict: {} — {}",
        verdict.outcome.name(),
        verdict.reason
    );
    if matches!(verdict.outcome, Outcome::Fail | Outcome::Timeout) {
        report.push_str(
            "vCPU state: none in a saved log (`run` reads it over QMP before it stops QEMU)\n",
        );
        let found = crate::postmortem::Postmortem {
            backtraces: crate::postmortem::backtrace::from_log(path),
            ..Default::default()
        };
        for line in found.report_lines() {
            let _ = writeln!(report, "  {line}");
        }
    }
    Ok(Replay {
        report,
        outcome: verdict.outcome,
    })
}

fn kind(e: &crate::console::TimelineEntry) -> &'static str {
    match e.kind {
        crate::console::TimelineKind::Milestone => "milestone",
        crate::console::TimelineKind::Step => "step",
        crate::console::TimelineKind::Stage => "stage",
    }
}
