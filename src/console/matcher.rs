//! The streaming judge: decides pass or fail from the console as it arrives, with the first
//! decisive event final (design principle 6).
//!
//! Rules, per cleaned console line (see [`super::clean`] and [`super::lines`]):
//! - each line is matched as its own haystack, so `^` is the line start and `$` the line end (for
//!   the line still being printed, the end of what has arrived so far);
//! - fail patterns come first: a fail match is final at once, on a complete line or on the line
//!   still being printed;
//! - a success match on a complete line is final at once; on the line still being printed (a
//!   prompt like `>> ` has no newline) it is *pending*: it becomes final when that line ends with
//!   no fail match on it, after `settle` of console quiet ([`Judge::poll`]), or at end of stream
//!   ([`Judge::finish`]); if a fail pattern matches the rest of that line first, Fail wins;
//! - lines are judged in console order, so the first decisive line wins.
//!
//! The result does not depend on how the stream is cut into reads: when several patterns match
//! one line, the reported one is the pattern that matches the shortest prefix of the line (the
//! one a byte-by-byte reader would see first), the lowest index on a tie. This holds exactly for
//! patterns whose match does not look past its end (`$`, `\b` at the end may see a different line
//! end on a partial line). For lines longer than `line_cap` see [`super::lines`].
//!
//! Speed: each batch (at most 64 KiB) is screened by a few combined regexes ([`Screen`]); lines
//! are checked one by one only where the screen found something, so a console that matches
//! nothing costs one regex pass per group of patterns plus a newline count. The unfinished line
//! is searched again with each batch, which costs at most `line_cap` bytes per read. Measured
//! with `cargo bench --bench matcher`.

use std::time::Duration;

use super::clean::Cleaner;
use super::lines::{Batch, Line, LineAssembler, MAX_BATCH};
use super::pattern::{MatchInfo, Pattern, PatternKind};
use super::screen::Screen;
use super::script::Script;

/// A final decision of the judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Fail(MatchInfo),
    Success(MatchInfo),
}

impl Decision {
    /// The match behind the decision.
    pub fn info(&self) -> &MatchInfo {
        match self {
            Decision::Fail(info) | Decision::Success(info) => info,
        }
    }
}

/// Tunables of the judge.
#[derive(Debug, Clone)]
pub struct JudgeOptions {
    /// Quiet time after which a success match on an unfinished line (a prompt) is confirmed.
    pub settle: Duration,
    /// Longest line kept for matching; longer lines keep their last `line_cap` bytes.
    pub line_cap: usize,
    /// How many recent console lines to keep for reports.
    pub tail_lines: usize,
}

impl Default for JudgeOptions {
    fn default() -> Self {
        JudgeOptions {
            settle: Duration::from_millis(100),
            line_cap: 16 * 1024,
            tail_lines: 50,
        }
    }
}

/// Streaming console judge.
pub struct Judge {
    rules: Rules,
    cleaner: Cleaner,
    lines: LineAssembler,
    settle: Duration,
    /// A success match on the unfinished line, waiting to be confirmed.
    pending: Option<Pending>,
    /// When bytes last arrived.
    last_activity: Duration,
    decided: bool,
    /// Steps, milestones and extraction, fed the same batches (see [`super::script`]).
    script: Option<Script>,
}

/// The patterns and the screen over all of them.
struct Rules {
    success: Vec<Pattern>,
    fail: Vec<Pattern>,
    screen: Screen,
}

/// A success match on the line still being printed.
#[derive(Debug, Clone, Copy)]
struct Pending {
    index: usize,
    line_no: u64,
}

impl Judge {
    /// A judge for the given patterns; with no patterns at all it never decides.
    pub fn new(success: Vec<Pattern>, fail: Vec<Pattern>, opts: JudgeOptions) -> Self {
        let screen = Screen::new(fail.iter().chain(&success));
        Judge {
            rules: Rules {
                success,
                fail,
                screen,
            },
            cleaner: Cleaner::new(),
            lines: LineAssembler::new(opts.line_cap, opts.tail_lines),
            settle: opts.settle,
            pending: None,
            last_activity: Duration::ZERO,
            decided: false,
            script: None,
        }
    }

    /// Adds the console grammar; its step decisions compete with the patterns, first line wins
    /// (a fail on the same line wins).
    pub fn with_script(mut self, script: Script) -> Self {
        self.script = (!script.is_empty()).then_some(script);
        self
    }

    /// The grammar's progress, if any.
    pub fn script(&self) -> Option<&Script> {
        self.script.as_ref()
    }

    /// The grammar, to take what it wants typed.
    pub fn script_mut(&mut self) -> Option<&mut Script> {
        self.script.as_mut()
    }

    /// Feeds raw console bytes received at `now`; returns a decision when one became final.
    /// After the first decision it returns `None` but still keeps the tail up to date.
    pub fn feed(&mut self, bytes: &[u8], now: Duration) -> Option<Decision> {
        // A prompt that was already quiet long enough is confirmed before the new bytes.
        let mut decision = self.poll(now);
        if !bytes.is_empty() {
            self.last_activity = now;
        }
        for piece in bytes.chunks(MAX_BATCH) {
            let d = self.feed_piece(piece, now);
            decision = decision.or(d);
        }
        decision
    }

    /// Keeps the tail and the line count up to date with console bytes that may no longer
    /// decide anything (what follows the verdict, or what was left in the pipe after QEMU was
    /// stopped): neither the patterns nor the grammar see them.
    pub fn feed_tail(&mut self, bytes: &[u8]) {
        for piece in bytes.chunks(MAX_BATCH) {
            let cleaner = &mut self.cleaner;
            self.lines.push_with(|buf| cleaner.clean(piece, buf));
        }
    }

    /// Confirms a pending success on an unfinished line once the console has been quiet for
    /// `settle`. Call at [`Judge::next_wakeup`].
    pub fn poll(&mut self, now: Duration) -> Option<Decision> {
        let due = self.next_wakeup()?;
        if now < due {
            return None;
        }
        self.confirm_pending(now)
    }

    /// When [`Judge::poll`] should next be called, if a confirmation is pending.
    pub fn next_wakeup(&self) -> Option<Duration> {
        self.pending.map(|_| self.last_activity + self.settle)
    }

    /// End of stream: a pending success on the unfinished last line becomes final.
    pub fn finish(&mut self, now: Duration) -> Option<Decision> {
        self.confirm_pending(now)
    }

    /// The last console lines seen (cleaned), oldest first; the unfinished line last.
    pub fn tail(&self) -> Vec<String> {
        self.lines.tail()
    }

    /// Number of console lines seen so far (the unfinished one included).
    pub fn lines_seen(&self) -> u64 {
        self.lines.lines_seen()
    }

    /// A fail decided on a line cut mid-way (the rest still in the pipe) names the whole line
    /// once the tail has it: call after [`Judge::feed_tail`] has read the rest. Only a line the
    /// decision holds the start of is taken; nothing else about the decision changes.
    pub fn complete_line(&self, decision: &mut Decision) {
        let Decision::Fail(info) = decision else {
            return;
        };
        let tail = self.lines.tail();
        let seen = self.lines.lines_seen();
        let Some(back) = seen.checked_sub(info.line_no) else {
            return;
        };
        let Some(i) = (tail.len() as u64).checked_sub(back + 1) else {
            return;
        };
        let whole = &tail[i as usize];
        if whole.len() > info.line.len() && whole.starts_with(info.line.as_str()) {
            info.line = whole.clone();
        }
    }

    /// Heap bytes held by the judge's buffers; bounded by about `line_cap` + 64 KiB + the tail,
    /// whatever the guest prints.
    pub fn memory_footprint(&self) -> usize {
        self.lines.memory_footprint()
    }

    fn feed_piece(&mut self, piece: &[u8], now: Duration) -> Option<Decision> {
        let cleaner = &mut self.cleaner;
        let batch = self.lines.push_with(|buf| cleaner.clean(piece, buf));
        if self.decided || batch.new_text().is_empty() {
            return None;
        }
        let by_script = self.script.as_mut().and_then(|s| s.observe(&batch, now));
        // A success pattern cannot pass a case whose steps were not all typed: the boot goes
        // on waiting for the step (fail patterns still count), and only a success on the last
        // step's line or later counts.
        let success_from = self.script.as_ref().map_or(0, |s| s.steps_done_line());
        let by_rules = self
            .rules
            .judge_batch(&batch, &mut self.pending, now, success_from);
        let decision = first_decision(by_script, by_rules);
        if decision.is_some() {
            self.decided = true;
            self.pending = None;
        }
        decision
    }

    fn confirm_pending(&mut self, now: Duration) -> Option<Decision> {
        if self.decided {
            return None;
        }
        let pending = self.pending?;
        // A pending success always sits on the unfinished line.
        let line = self.lines.unfinished()?;
        let decision = self.rules.confirm(pending, &line, now);
        self.pending = None;
        self.decided = true;
        Some(decision)
    }
}

impl Rules {
    /// Judges the lines of a batch in order; only lines the screen points at are checked, and
    /// the first line when a success on it is pending. Success counts only on lines numbered
    /// `success_from` or later.
    fn judge_batch(
        &self,
        batch: &Batch<'_>,
        pending: &mut Option<Pending>,
        now: Duration,
        success_from: u64,
    ) -> Option<Decision> {
        let text = batch.text();
        let mut cursor = batch.cursor();
        let mut from = 0;
        if let Some(p) = *pending {
            let line = cursor.line_at(0);
            if let Some(d) = self.fail_on(&line, now) {
                return Some(d);
            }
            if !line.complete {
                return None;
            }
            return Some(self.confirm(p, &line, now));
        }
        while let Some(hit) = self.screen.next_hit(text, from) {
            let line = cursor.line_at(hit);
            if let Some(d) = self.judge_line(&line, pending, now, success_from) {
                return Some(d);
            }
            if !line.complete {
                break;
            }
            from = line.span.end + 1;
        }
        None
    }

    /// Fail first, then success (final on a complete line, pending on an unfinished one).
    fn judge_line(
        &self,
        line: &Line<'_>,
        pending: &mut Option<Pending>,
        now: Duration,
        success_from: u64,
    ) -> Option<Decision> {
        if let Some(d) = self.fail_on(line, now) {
            return Some(d);
        }
        if line.no < success_from {
            return None;
        }
        let (index, end) = earliest_match(&self.success, line.text)?;
        if line.complete {
            let info = self.info(PatternKind::Success, index, line.no, line.shown(end), now);
            return Some(Decision::Success(info));
        }
        *pending = Some(Pending {
            index,
            line_no: line.no,
        });
        None
    }

    fn fail_on(&self, line: &Line<'_>, now: Duration) -> Option<Decision> {
        let (index, end) = earliest_match(&self.fail, line.text)?;
        let info = self.info(PatternKind::Fail, index, line.no, line.shown(end), now);
        Some(Decision::Fail(info))
    }

    /// A pending success becomes final on `line` (the same line, now ended or quiet): the
    /// pattern reported is the one that matches it now, else the one that matched before.
    fn confirm(&self, pending: Pending, line: &Line<'_>, now: Duration) -> Decision {
        let (index, end) =
            earliest_match(&self.success, line.text).unwrap_or((pending.index, line.text.len()));
        let info = self.info(
            PatternKind::Success,
            index,
            pending.line_no,
            line.shown(end),
            now,
        );
        Decision::Success(info)
    }

    fn info(
        &self,
        kind: PatternKind,
        index: usize,
        line_no: u64,
        line: String,
        now: Duration,
    ) -> MatchInfo {
        let list = match kind {
            PatternKind::Success => &self.success,
            PatternKind::Fail => &self.fail,
        };
        let spec = &list[index].spec;
        MatchInfo {
            kind,
            index,
            pattern: spec.regex.clone(),
            location: spec.location.clone(),
            line_no,
            line,
            at: now,
        }
    }
}

/// The earlier of a grammar decision and a pattern decision (by console line; fail wins a tie).
fn first_decision(script: Option<MatchInfo>, rules: Option<Decision>) -> Option<Decision> {
    let script = script.map(|m| match m.kind {
        PatternKind::Fail => Decision::Fail(m),
        PatternKind::Success => Decision::Success(m),
    });
    match (script, rules) {
        (Some(a), Some(b)) => {
            let key = |d: &Decision| (d.info().line_no, matches!(d, Decision::Success(_)));
            Some(if key(&a) <= key(&b) { a } else { b })
        }
        (a, b) => a.or(b),
    }
}

/// The pattern that a byte-by-byte reader would see match first on `text`: the shortest prefix
/// of `text` that any pattern matches, and the lowest index matching that prefix. Returns the
/// index and the prefix length.
fn earliest_match(patterns: &[Pattern], text: &[u8]) -> Option<(usize, usize)> {
    let any = |len: usize| patterns.iter().any(|p| p.regex.is_match(&text[..len]));
    if text.is_empty() || !any(text.len()) {
        return None;
    }
    // Invariant: `any(hi)`; every prefix up to `lo` was not matched (patterns need ≥ 1 byte).
    let (mut lo, mut hi) = (0, text.len());
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if any(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    let index = patterns
        .iter()
        .position(|p| p.regex.is_match(&text[..hi]))?;
    Some((index, hi))
}

#[cfg(test)]
#[path = "matcher_tests.rs"]
mod tests;
