//! The console grammar at run time: expect/send steps, milestones and test-case extraction, fed
//! the same cleaned batches as the judge (see [`super::lines`]).
//!
//! - **Steps** complete in order. A step's `expect` is searched only in text after the previous
//!   step's match, also on the unfinished line (a prompt has no newline), and matches at once;
//!   its `send` is then queued for typing ([`Script::take_send`]). While a step waits, its own
//!   `fail` patterns are active. With no success pattern, all steps done is the success.
//! - **Milestones** are reached in order, each searched after the previous one's match; each
//!   reached one is a timeline entry (time since start, delta to the previous entry).
//! - **Extraction** runs on complete lines: the first extractor whose pattern matches a line
//!   makes one test case from its named groups.
//!
//! Cost: one screening pass per batch for the current step, the current milestone and all
//! extractors together; lines are walked only where a screen hit.

use std::time::Duration;

use serde::Serialize;

use super::Screen;
use super::lines::{Batch, Line};
use super::pattern::{MatchInfo, Pattern, PatternKind};
use crate::config::grammar::{CaseStatus, ExtractSpec, GrammarSpec, MilestoneSpec, StepSpec};
use crate::error::Error;

/// Most extracted cases kept; later ones are counted, not stored (bounded memory).
pub const MAX_CASES: usize = 10_000;

/// A compiled step.
#[derive(Debug, Clone)]
pub struct Step {
    pub expect: Pattern,
    pub send: Option<Vec<u8>>,
    pub timeout: Option<Duration>,
    pub fail: Vec<Pattern>,
    screen: Screen,
}

/// A compiled milestone.
#[derive(Debug, Clone)]
pub struct Milestone {
    pub name: String,
    pub pattern: Pattern,
    pub deadline: Option<Duration>,
    pub optional: bool,
    screen: Screen,
}

/// A compiled extractor.
#[derive(Debug, Clone)]
pub struct Extractor {
    pub spec: ExtractSpec,
    pub pattern: Pattern,
}

/// What a timeline entry marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TimelineKind {
    Milestone,
    Step,
    /// A board's boot stage (U-Boot prompt, image loaded, kernel started: `board::stages`).
    Stage,
}

/// One milestone or step: when it was reached, or that it never was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineEntry {
    pub kind: TimelineKind,
    pub name: String,
    pub pattern: String,
    /// Time since QEMU start; `None` = not reached.
    #[serde(serialize_with = "crate::duration::serialize_opt_secs")]
    pub at: Option<Duration>,
    /// Time since the previous reached entry (or the start).
    #[serde(serialize_with = "crate::duration::serialize_opt_secs")]
    pub delta: Option<Duration>,
    pub line_no: Option<u64>,
    pub line: Option<String>,
    /// An optional milestone: not reaching it does not fail the case.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

/// One test case found on the console (or expected and never seen).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExtractedCase {
    pub id: String,
    pub status: CaseStatus,
    /// The raw result text (`None` for a missing case).
    pub raw: Option<String>,
    pub measurement: Option<String>,
    pub units: Option<String>,
    pub line_no: Option<u64>,
    /// Why the status was forced (`missing`, `unexpected`).
    pub note: Option<String>,
    /// Whether this case's failure fails the verdict.
    #[serde(skip)]
    pub affects_verdict: bool,
    /// Index of the extractor that made it.
    #[serde(skip)]
    pub extractor: usize,
}

#[cfg(test)]
impl ExtractedCase {
    /// A case the first extractor found failed with result `raw` on console line `line_no`
    /// (the reports' tests).
    pub fn failed(id: &str, raw: &str, line_no: u64) -> ExtractedCase {
        ExtractedCase {
            id: id.into(),
            status: CaseStatus::Fail,
            raw: Some(raw.into()),
            measurement: None,
            units: None,
            line_no: Some(line_no),
            note: None,
            affects_verdict: true,
            extractor: 0,
        }
    }
}

/// The compiled grammar plus its progress through the console.
#[derive(Debug, Clone)]
pub struct Script {
    steps: Vec<Step>,
    milestones: Vec<Milestone>,
    extractors: Vec<Extractor>,
    extract_screen: Screen,
    /// Whether all steps done decides success (no success pattern configured).
    steps_decide: bool,
    step: usize,
    step_from: u64,
    step_since: Duration,
    milestone: usize,
    milestone_from: u64,
    /// Optional milestones passed over by a later one (never reached).
    passed_over: Vec<usize>,
    /// Cleaned bytes seen so far (absolute offset of the end of the latest batch).
    consumed: u64,
    /// Complete lines already given to the extractors.
    extracted_upto: u64,
    timeline: Vec<TimelineEntry>,
    cases: Vec<ExtractedCase>,
    dropped_cases: u64,
    send: Option<Vec<u8>>,
    /// Reused capture slots, one per extractor (no allocation per matching line).
    locs: Vec<regex::bytes::CaptureLocations>,
}

impl Script {
    /// Compiles the grammar's patterns; `steps_decide` when no success pattern exists.
    pub fn compile(spec: &GrammarSpec, steps_decide: bool) -> Result<Script, Error> {
        let steps = spec
            .steps
            .iter()
            .map(compile_step)
            .collect::<Result<Vec<_>, _>>()?;
        let milestones = spec
            .milestones
            .iter()
            .map(compile_milestone)
            .collect::<Result<Vec<_>, _>>()?;
        let extractors = spec
            .extract
            .iter()
            .map(compile_extractor)
            .collect::<Result<Vec<_>, _>>()?;
        let extract_screen = Screen::new(extractors.iter().map(|e| &e.pattern));
        let locs = extractors
            .iter()
            .map(|e| e.pattern.regex.capture_locations())
            .collect();
        Ok(Script {
            steps,
            milestones,
            extractors,
            extract_screen,
            steps_decide,
            step: 0,
            step_from: 0,
            step_since: Duration::ZERO,
            milestone: 0,
            milestone_from: 0,
            passed_over: Vec::new(),
            consumed: 0,
            extracted_upto: 0,
            timeline: Vec::new(),
            cases: Vec::new(),
            dropped_cases: 0,
            send: None,
            locs,
        })
    }

    /// Whether the grammar has anything to do.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty() && self.milestones.is_empty() && self.extractors.is_empty()
    }

    /// Text to type now (after a step matched); taken once.
    pub fn take_send(&mut self) -> Option<Vec<u8>> {
        self.send.take()
    }

    /// Whether all steps are done.
    pub fn steps_done(&self) -> bool {
        self.step >= self.steps.len()
    }

    /// The console line on which the last step matched (0 without steps); `u64::MAX` while
    /// steps are incomplete.
    pub fn steps_done_line(&self) -> u64 {
        if !self.steps_done() {
            return u64::MAX;
        }
        self.timeline
            .iter()
            .rev()
            .find(|e| e.kind == TimelineKind::Step)
            .and_then(|e| e.line_no)
            .unwrap_or(0)
    }

    /// The earliest running deadline and what it waits for.
    pub fn next_deadline(&self) -> Option<(Duration, String)> {
        let step = self.steps.get(self.step).and_then(|s| {
            let t = s.timeout?;
            Some((
                self.step_since + t,
                format!(
                    "step {} (expect '{}') not matched within {}",
                    self.step + 1,
                    s.expect.spec.regex,
                    crate::duration::format(t)
                ),
            ))
        });
        let milestone = self.milestones[self.milestone.min(self.milestones.len())..]
            .iter()
            .filter(|m| !m.optional)
            .filter_map(|m| Some((m.deadline?, m)))
            .min_by_key(|(d, _)| *d)
            .map(|(d, m)| {
                (
                    d,
                    format!(
                        "milestone '{}' (pattern '{}') not reached within {}",
                        m.name,
                        m.pattern.spec.regex,
                        crate::duration::format(d)
                    ),
                )
            });
        [step, milestone]
            .into_iter()
            .flatten()
            .min_by_key(|(d, _)| *d)
    }

    /// What the grammar waits for now, for a timeout message: the current step, else the
    /// next required milestone.
    pub fn awaiting(&self) -> Option<String> {
        if let Some(s) = self.steps.get(self.step) {
            return Some(format!(
                "step {} (expect '{}')",
                self.step + 1,
                s.expect.spec.regex
            ));
        }
        let m = self.missed().next()?;
        Some(format!("milestone {}", milestone_name(m)))
    }

    /// Required milestones not reached (yet), as `'name' (pattern '…')`.
    pub fn missed_milestones(&self) -> Vec<String> {
        self.missed().map(milestone_name).collect()
    }

    fn missed(&self) -> impl Iterator<Item = &Milestone> {
        self.milestones[self.milestone.min(self.milestones.len())..]
            .iter()
            .filter(|m| !m.optional)
    }

    /// Follows one batch; returns a decision when a step's fail pattern matched, or when the
    /// last step matched and steps decide success.
    pub fn observe(&mut self, batch: &Batch<'_>, now: Duration) -> Option<MatchInfo> {
        self.consumed += batch.new_text().len() as u64;
        let base = self.consumed - batch.text().len() as u64;
        let decision = self.run_steps(batch, base, now);
        self.run_milestones(batch, base, now);
        self.run_extractors(batch);
        decision
    }

    fn run_steps(&mut self, batch: &Batch<'_>, base: u64, now: Duration) -> Option<MatchInfo> {
        while let Some(step) = self.steps.get(self.step) {
            let from = self.step_from.saturating_sub(base) as usize;
            let hit = find(batch, &step.screen, from, |text, start| {
                if let Some((i, _)) = first_match(&step.fail, text, start) {
                    return Some((text.len(), Err(i)));
                }
                let m = step.expect.regex.find_at(text, start)?;
                Some((m.end(), Ok(())))
            })?;
            let (line, end, result) = hit;
            if let Err(i) = result {
                return Some(info(
                    PatternKind::Fail,
                    self.step,
                    &step.fail[i],
                    &line,
                    end,
                    now,
                ));
            }
            let (expect, send) = (step.expect.clone(), step.send.clone());
            let entry_name = step_name(self.step, send.as_deref());
            self.record(TimelineKind::Step, entry_name, &expect, &line, end, now);
            if let Some(text) = send {
                self.send
                    .get_or_insert_with(Vec::new)
                    .extend_from_slice(&text);
            }
            self.step_from = base + (line.span.start + end) as u64;
            self.step_since = now;
            self.step += 1;
            if self.steps_decide && self.steps_done() {
                let last = &self.steps[self.step - 1].expect;
                return Some(info(
                    PatternKind::Success,
                    self.step - 1,
                    last,
                    &line,
                    end,
                    now,
                ));
            }
        }
        None
    }

    /// Milestones in order; an optional one may be passed over: the current milestone and,
    /// while they are optional, the ones after it up to the next required one are searched,
    /// and the earliest match wins (the optional ones it passed stay not reached).
    fn run_milestones(&mut self, batch: &Batch<'_>, base: u64, now: Duration) {
        while self.milestone < self.milestones.len() {
            let from = self.milestone_from.saturating_sub(base) as usize;
            let mut best: Option<(usize, Line<'_>, usize)> = None;
            for (k, m) in self.milestones.iter().enumerate().skip(self.milestone) {
                let hit = find(batch, &m.screen, from, |text, start| {
                    Some((m.pattern.regex.find_at(text, start)?.end(), ()))
                });
                if let Some((line, end, ())) = hit {
                    let at = line.span.start + end;
                    if best.as_ref().is_none_or(|(_, l, e)| at < l.span.start + *e) {
                        best = Some((k, line, end));
                    }
                }
                if !m.optional {
                    break;
                }
            }
            let Some((k, line, end)) = best else {
                return;
            };
            self.passed_over.extend(self.milestone..k);
            let m = &self.milestones[k];
            let (name, pattern) = (m.name.clone(), m.pattern.clone());
            self.record(TimelineKind::Milestone, name, &pattern, &line, end, now);
            self.milestone_from = base + (line.span.start + end) as u64;
            self.milestone = k + 1;
        }
    }

    fn run_extractors(&mut self, batch: &Batch<'_>) {
        if self.extractors.is_empty() {
            return;
        }
        let text = batch.text();
        let mut cursor = batch.cursor();
        let mut from = 0;
        while let Some(hit) = self.extract_screen.next_hit(text, from) {
            let line = cursor.line_at(hit);
            if !line.complete {
                return;
            }
            from = line.span.end + 1;
            if line.no <= self.extracted_upto {
                continue;
            }
            self.extracted_upto = line.no;
            if self.cases.len() >= MAX_CASES {
                // Past the cap only the count matters: no captures, no allocation, and no
                // second match where the screen's hit is already one.
                if self.extract_screen.is_exact()
                    || self
                        .extractors
                        .iter()
                        .any(|e| e.pattern.regex.is_match(line.text))
                {
                    self.dropped_cases += 1;
                }
                continue;
            }
            if let Some(case) = self.extract_line(&line) {
                self.cases.push(case);
            }
        }
    }

    fn extract_line(&mut self, line: &Line<'_>) -> Option<ExtractedCase> {
        let locs = &mut self.locs;
        self.extractors.iter().enumerate().find_map(|(index, e)| {
            let l = &mut locs[index];
            e.pattern.regex.captures_read(l, line.text)?;
            let group = |n: &str| {
                let i = e.pattern.regex.capture_names().position(|x| x == Some(n))?;
                let (a, b) = l.get(i)?;
                Some(String::from_utf8_lossy(&line.text[a..b]).trim().to_string())
            };
            let raw = group("result").unwrap_or_default();
            Some(ExtractedCase {
                id: group("test_case_id").unwrap_or_default(),
                status: classify(&e.spec, &raw),
                raw: Some(raw),
                measurement: group("measurement"),
                units: group("units"),
                line_no: Some(line.no),
                note: None,
                affects_verdict: e.spec.affects_verdict,
                extractor: index,
            })
        })
    }

    fn record(
        &mut self,
        kind: TimelineKind,
        name: String,
        pattern: &Pattern,
        line: &Line<'_>,
        end: usize,
        now: Duration,
    ) {
        let prev = self.timeline.last().and_then(|e| e.at).unwrap_or_default();
        self.timeline.push(TimelineEntry {
            kind,
            name,
            pattern: pattern.spec.regex.clone(),
            at: Some(now),
            delta: Some(now.saturating_sub(prev)),
            line_no: Some(line.no),
            line: Some(line.shown(end)),
            optional: false,
        });
    }

    /// The timeline: reached entries in order, then the milestones and steps never reached.
    pub fn timeline(&self) -> Vec<TimelineEntry> {
        let mut t = self.timeline.clone();
        let missing = |kind, name: String, p: &Pattern, optional| TimelineEntry {
            kind,
            name,
            pattern: p.spec.regex.clone(),
            at: None,
            delta: None,
            line_no: None,
            line: None,
            optional,
        };
        for (i, s) in self.steps.iter().enumerate().skip(self.step) {
            let name = step_name(i, s.send.as_deref());
            t.push(missing(TimelineKind::Step, name, &s.expect, false));
        }
        let unreached = self.passed_over.iter().copied();
        for i in unreached.chain(self.milestone..self.milestones.len()) {
            let m = &self.milestones[i];
            let (name, p) = (m.name.clone(), &m.pattern);
            t.push(missing(TimelineKind::Milestone, name, p, m.optional));
        }
        t
    }

    /// The extracted cases, then each expected case never seen (fail, `missing`); a case not in
    /// its extractor's non-empty `expected` list is forced to fail (`unexpected`).
    pub fn cases(&self) -> Vec<ExtractedCase> {
        let mut cases = self.cases.clone();
        for (e, case) in self.cases.iter().enumerate() {
            let s = &self.extractors[case.extractor].spec;
            let unexpected =
                !s.expected.is_empty() && !s.expected.iter().any(|(id, _)| *id == case.id);
            if unexpected {
                cases[e].status = CaseStatus::Fail;
                cases[e].note = Some("unexpected".into());
            }
        }
        for (index, ex) in self.extractors.iter().enumerate() {
            for (id, _) in &ex.spec.expected {
                if !self
                    .cases
                    .iter()
                    .any(|c| c.extractor == index && c.id == *id)
                {
                    cases.push(ExtractedCase {
                        id: id.clone(),
                        status: CaseStatus::Fail,
                        raw: None,
                        measurement: None,
                        units: None,
                        line_no: None,
                        note: Some("missing".into()),
                        affects_verdict: ex.spec.affects_verdict,
                        extractor: index,
                    });
                }
            }
        }
        cases
    }

    /// Extracted cases beyond [`MAX_CASES`], counted but not kept.
    pub fn cases_not_kept(&self) -> u64 {
        self.dropped_cases
    }

    /// A one-sentence reason when extracted cases fail the verdict.
    pub fn case_failure(&self) -> Option<String> {
        let cases = self.cases();
        let failed: Vec<String> = cases
            .iter()
            .filter(|c| c.affects_verdict && c.status == CaseStatus::Fail)
            .map(|c| match (&c.note, &c.raw, c.line_no) {
                (Some(n), _, _) => format!("'{}' ({n})", c.id),
                (None, Some(r), Some(l)) => format!("'{}' (result '{r}', line {l})", c.id),
                _ => format!("'{}'", c.id),
            })
            .collect();
        if failed.is_empty() {
            return None;
        }
        let total = cases.len();
        Some(format!(
            "{} of {total} test cases failed: {}",
            failed.len(),
            failed.join(", ")
        ))
    }
}

/// Maps a raw result: the user's `results` first (exact text), then the built-in words
/// (case-insensitive), else `otherwise`.
pub fn classify(spec: &ExtractSpec, raw: &str) -> CaseStatus {
    if let Some((_, s)) = spec.results.iter().find(|(r, _)| r == raw) {
        return *s;
    }
    match raw.to_ascii_lowercase().as_str() {
        "pass" | "passed" | "ok" | "success" => CaseStatus::Pass,
        "fail" | "failed" | "not ok" | "failure" | "error" => CaseStatus::Fail,
        "skip" | "skipped" => CaseStatus::Skip,
        _ => spec.otherwise,
    }
}

fn compile_step(s: &StepSpec) -> Result<Step, Error> {
    let expect = Pattern::compile(&s.expect, "step expect")?;
    let fail = s
        .fail
        .iter()
        .map(|p| Pattern::compile(p, "step fail"))
        .collect::<Result<Vec<_>, _>>()?;
    let screen = Screen::new(fail.iter().chain(std::iter::once(&expect)));
    Ok(Step {
        expect,
        send: s.send.as_ref().map(|t| t.as_bytes().to_vec()),
        timeout: s.timeout,
        fail,
        screen,
    })
}

fn milestone_name(m: &Milestone) -> String {
    format!("'{}' (pattern '{}')", m.name, m.pattern.spec.regex)
}

fn compile_milestone(m: &MilestoneSpec) -> Result<Milestone, Error> {
    let pattern = Pattern::compile(&m.pattern, "milestone")?;
    Ok(Milestone {
        name: m.name.clone(),
        screen: Screen::new(std::iter::once(&pattern)),
        pattern,
        deadline: m.deadline,
        optional: m.optional,
    })
}

fn compile_extractor(e: &ExtractSpec) -> Result<Extractor, Error> {
    let pattern = Pattern::compile(&e.pattern, "test-case")?;
    let names: Vec<&str> = pattern.regex.capture_names().flatten().collect();
    for needed in ["test_case_id", "result"] {
        if !names.contains(&needed) {
            let mut err = Error::config(format!(
                "test-case pattern '{}' has no named group `{needed}`",
                e.pattern.regex
            ))
            .help(format!(
                "name the group that captures it, e.g. `(?P<{needed}>\\S+)`"
            ));
            if let Some(l) = &e.pattern.location {
                err = err.at(l.clone());
            }
            return Err(err);
        }
    }
    Ok(Extractor {
        spec: e.clone(),
        pattern,
    })
}

/// The first line at or after `from` where `check` (given the line text and the start offset
/// within it) finds something; returns the line, the match end in the line and the result.
fn find<'a, R>(
    batch: &Batch<'a>,
    screen: &Screen,
    from: usize,
    mut check: impl FnMut(&[u8], usize) -> Option<(usize, R)>,
) -> Option<(Line<'a>, usize, R)> {
    let text = batch.text();
    let mut cursor = batch.cursor();
    let mut pos = from;
    while let Some(hit) = screen.next_hit(text, pos) {
        let line = cursor.line_at(hit);
        let start = pos.saturating_sub(line.span.start).min(line.text.len());
        if let Some((end, r)) = check(line.text, start) {
            return Some((line, end, r));
        }
        if !line.complete {
            return None;
        }
        pos = line.span.end + 1;
    }
    None
}

/// A step's name in the timeline: `step 2: send 'usertests\n'` or `step 3: expect`; control
/// characters are shown escaped, so `send = "\n"` reads `send '\n'`, not `send ''`.
fn step_name(index: usize, send: Option<&[u8]>) -> String {
    match send {
        Some(x) => format!(
            "step {}: send '{}'",
            index + 1,
            String::from_utf8_lossy(x).escape_debug()
        ),
        None => format!("step {}: expect", index + 1),
    }
}

fn first_match(patterns: &[Pattern], text: &[u8], start: usize) -> Option<(usize, usize)> {
    patterns
        .iter()
        .enumerate()
        .find_map(|(i, p)| p.regex.find_at(text, start).map(|m| (i, m.end())))
}

fn info(
    kind: PatternKind,
    index: usize,
    p: &Pattern,
    line: &Line<'_>,
    end: usize,
    now: Duration,
) -> MatchInfo {
    MatchInfo {
        kind,
        index,
        pattern: p.spec.regex.clone(),
        location: p.spec.location.clone(),
        line_no: line.no,
        line: line.shown(end),
        at: now,
    }
}

#[cfg(test)]
#[path = "script_tests.rs"]
mod tests;
