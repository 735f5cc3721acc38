//! Boot-time baselines: each case's boot and milestone times against an earlier `results.json`
//! (`--baseline FILE`, e.g. the base branch's), with the delta and ratio, and a regression flag
//! past `--regression-threshold`. The comparison goes into the case result (`baseline` in
//! `results.json`), the terminal and the step summary; `--fail-on-regression` turns a regressed
//! pass into a fail through the verdict's one run-level rule ([`crate::verdict::regressed`]).
//!
//! A baseline that is missing, unreadable, not a `results.json` or of another format version is
//! a warning naming the file and the reason, never a failure: the run goes on uncompared.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::comparison::{CaseComparison, ComparisonStatus, TimeComparison, TimeKind};
use super::{CaseResult, Stage};
use crate::verdict::Outcome;

/// How much slower a time must be to count as a regression: more than `percent` % slower
/// **and** more than `delta` slower (a part that is `None` is not required).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    pub percent: Option<f64>,
    pub delta: Option<Duration>,
}

impl Default for Threshold {
    /// +20 % and +0.5 s: a fast boot's jitter (tens of ms) never counts, nor does a slow
    /// boot's few-percent noise.
    fn default() -> Self {
        Threshold {
            percent: Some(20.0),
            delta: Some(Duration::from_millis(500)),
        }
    }
}

impl Threshold {
    /// `PCT%,DURATION` (both must be exceeded), `PCT%` or `DURATION` alone: `20%,500ms`,
    /// `50%`, `2s`, `12.5%,1.5s`.
    pub fn parse(text: &str) -> Result<Threshold, String> {
        let bad = |why: &str| {
            format!(
                "invalid regression threshold '{text}': {why} (expected PCT%,DURATION such as \
                 20%,500ms — both must be exceeded — or PCT% or DURATION alone)"
            )
        };
        let mut t = Threshold {
            percent: None,
            delta: None,
        };
        for part in text.split(',').map(str::trim) {
            if let Some(p) = part.strip_suffix('%') {
                let p: f64 = p
                    .trim()
                    .parse()
                    .map_err(|_| bad(&format!("'{part}' is not a percentage")))?;
                if !(0.0..=100_000.0).contains(&p) {
                    return Err(bad("the percentage must be between 0% and 100000%"));
                }
                if t.percent.replace(p).is_some() {
                    return Err(bad("two percentages"));
                }
            } else if part.is_empty() {
                return Err(bad("an empty part"));
            } else {
                let d = crate::duration::parse(part).map_err(|e| bad(&e))?;
                if t.delta.replace(d).is_some() {
                    return Err(bad("two durations"));
                }
            }
        }
        Ok(t)
    }

    /// Whether `current` is a regression against `baseline`.
    pub fn exceeded(&self, baseline: Duration, current: Duration) -> bool {
        let Some(over) = current.checked_sub(baseline).filter(|d| !d.is_zero()) else {
            return false;
        };
        let by_ratio = self
            .percent
            .is_none_or(|p| current.as_secs_f64() > baseline.as_secs_f64() * (1.0 + p / 100.0));
        let by_delta = self.delta.is_none_or(|d| over > d);
        by_ratio && by_delta
    }
}

impl std::fmt::Display for Threshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .percent
            .map(|p| format!("+{p}%"))
            .into_iter()
            .chain(
                self.delta
                    .map(|d| format!("+{}", crate::duration::format(d))),
            )
            .collect();
        f.write_str(&parts.join(" and "))
    }
}

/// The times of one case that a baseline compares: the boot's, and each reached milestone's
/// and step's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Times {
    boot: Option<Duration>,
    marks: Vec<(TimeKind, String, Duration)>,
}

impl Times {
    fn of(r: &CaseResult) -> Times {
        let boot_stage = r
            .stages
            .iter()
            .rev()
            .find(|s| s.stage == Stage::Boot)
            .map(|s| s.duration);
        Times {
            boot: boot_time(
                r.verdict.outcome == Outcome::Pass,
                r.verdict.decided_by.as_ref().map(|m| m.at),
                boot_stage,
            ),
            marks: r
                .timeline
                .iter()
                .filter_map(|e| Some((TimeKind::from_timeline(e.kind), e.name.clone(), e.at?)))
                .collect(),
        }
    }
}

/// The boot's time, the same rule for this run and the baseline: only a pass has one; it is
/// the deciding success match's time, else (no success pattern: QEMU's clean exit decided)
/// the boot stage's.
fn boot_time(
    passed: bool,
    decided_at: Option<Duration>,
    boot_stage: Option<Duration>,
) -> Option<Duration> {
    passed.then_some(decided_at.or(boot_stage)).flatten()
}

/// The part of an earlier `results.json` the comparison reads; everything else is ignored.
#[derive(Deserialize)]
struct BaseDoc {
    cases: Vec<BaseCase>,
}

#[derive(Deserialize)]
struct BaseCase {
    name: String,
    verdict: BaseVerdict,
    #[serde(default)]
    stages: Vec<BaseStage>,
    #[serde(default)]
    timeline: Vec<BaseEntry>,
}

#[derive(Deserialize)]
struct BaseVerdict {
    outcome: String,
    decided_by: Option<BaseMatch>,
}

#[derive(Deserialize)]
struct BaseMatch {
    /// `MatchInfo::at`, written by serde as `{"secs": …, "nanos": …}`.
    at: Duration,
}

#[derive(Deserialize)]
struct BaseStage {
    stage: String,
    duration: f64,
}

#[derive(Deserialize)]
struct BaseEntry {
    kind: String,
    name: String,
    at: Option<f64>,
}

/// Seconds from a file as a duration; `None` for a negative, non-finite or absurd value.
fn file_secs(x: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(x).ok()
}

impl BaseCase {
    fn times(&self) -> Times {
        let boot_stage = self
            .stages
            .iter()
            .rev()
            .find(|s| s.stage == Stage::Boot.name())
            .and_then(|s| file_secs(s.duration));
        Times {
            boot: boot_time(
                self.verdict.outcome == Outcome::Pass.name(),
                self.verdict.decided_by.as_ref().map(|m| m.at),
                boot_stage,
            ),
            marks: self
                .timeline
                .iter()
                .filter_map(|e| {
                    let kind = match e.kind.as_str() {
                        "milestone" => TimeKind::Milestone,
                        "step" => TimeKind::Step,
                        _ => return None,
                    };
                    Some((kind, e.name.clone(), file_secs(e.at?)?))
                })
                .collect(),
        }
    }
}

/// What `--baseline`, `--regression-threshold` and `--fail-on-regression` (the inputs
/// `baseline`, `regression-threshold`, `fail-on-regression`) ask for.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineOptions {
    pub file: Option<PathBuf>,
    pub threshold: Option<Threshold>,
    pub fail_on_regression: bool,
}

impl BaselineOptions {
    /// Reads the baseline (relative to `cwd`). Returns the check to apply to each case (none
    /// without a usable baseline) and the warnings to show: an unusable baseline, or options
    /// that have nothing to act on.
    pub fn load(&self, cwd: &Path) -> (Option<BaselineCheck>, Vec<String>) {
        let Some(file) = &self.file else {
            let mut warnings = Vec::new();
            if self.fail_on_regression {
                warnings.push(
                    "--fail-on-regression has no effect without --baseline FILE (input \
                     `baseline`): there is nothing to compare with"
                        .to_string(),
                );
            }
            if self.threshold.is_some() {
                warnings.push(
                    "--regression-threshold has no effect without --baseline FILE (input \
                     `baseline`)"
                        .to_string(),
                );
            }
            return (None, warnings);
        };
        let path = cwd.join(file);
        match read_baseline(&path) {
            Ok(cases) => (
                Some(BaselineCheck {
                    file: file.clone(),
                    cases,
                    threshold: self.threshold.unwrap_or_default(),
                    fail_on_regression: self.fail_on_regression,
                }),
                Vec::new(),
            ),
            Err(why) => (
                None,
                vec![format!(
                    "baseline {}: {why}; boot times are not compared in this run",
                    path.display()
                )],
            ),
        }
    }
}

/// The cases of a baseline file by name (the first of a name wins); the error says why the
/// file cannot serve as a baseline.
fn read_baseline(path: &Path) -> Result<HashMap<String, Times>, String> {
    // Bounded like every input file (16 MiB, regular files only).
    let text = crate::config::source::read_input(path, "baseline").map_err(|e| e.message)?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
    if value.get("tool").and_then(|t| t.as_str()) != Some("qemu-test") {
        return Err("not a qemu-test results.json (no \"tool\": \"qemu-test\")".into());
    }
    let version = value.get("version").and_then(|v| v.as_u64());
    if version != Some(u64::from(super::json::FORMAT_VERSION)) {
        let found = version.map_or("none".to_string(), |v| v.to_string());
        return Err(format!(
            "results.json format version {found}, this qemu-test reads version {}",
            super::json::FORMAT_VERSION
        ));
    }
    let doc: BaseDoc = serde_json::from_value(value)
        .map_err(|e| format!("not a results.json this qemu-test can read: {e}"))?;
    let mut cases = HashMap::new();
    for c in doc.cases {
        let times = c.times();
        cases.entry(c.name).or_insert(times);
    }
    Ok(cases)
}

/// A loaded baseline, applied to each case as it finishes.
#[derive(Debug, Clone)]
pub struct BaselineCheck {
    /// As given (for messages and `results.json`).
    file: PathBuf,
    cases: HashMap<String, Times>,
    threshold: Threshold,
    fail_on_regression: bool,
}

impl BaselineCheck {
    /// Compares a finished case that booted with its namesake in the baseline, records the
    /// comparison in the result and, with `--fail-on-regression`, applies the verdict's
    /// run-level rule. Cases that never booted (skipped, cancelled, errors before the boot)
    /// are left alone. Returns the regression sentence when the case regressed.
    pub fn apply(&self, result: &mut CaseResult) -> Option<String> {
        if !result.stages.iter().any(|s| s.stage == Stage::Boot) {
            return None;
        }
        let comparison = self.compare(&Times::of(result), self.cases.get(&result.name));
        let why = comparison.regression_reason();
        result.baseline = Some(comparison);
        if self.fail_on_regression {
            result.verdict = crate::verdict::regressed(result.verdict.clone(), why.clone());
        }
        why
    }

    /// Whether a regression fails its case.
    pub fn fails(&self) -> bool {
        self.fail_on_regression
    }

    fn compare(&self, now: &Times, base: Option<&Times>) -> CaseComparison {
        let mut times = Vec::new();
        let mut add = |kind, name: &str, current, baseline: Option<Duration>| {
            times.push(TimeComparison {
                kind,
                name: name.to_string(),
                current,
                baseline,
                regression: baseline.is_some_and(|b| self.threshold.exceeded(b, current)),
            })
        };
        if let Some(boot) = now.boot {
            // A boot that did not pass in the baseline has no time to compare with.
            let was = base.and_then(|b| b.boot);
            if base.is_none() || was.is_some() {
                add(TimeKind::Boot, "boot", boot, was);
            }
        }
        for (kind, name, at) in &now.marks {
            let was = base.and_then(|b| {
                b.marks
                    .iter()
                    .find(|(k, n, _)| k == kind && n == name)
                    .map(|m| m.2)
            });
            add(*kind, name, *at, was);
        }
        let regressed = times.iter().any(|t| t.regression);
        CaseComparison {
            file: self.file.clone(),
            status: if base.is_some() {
                ComparisonStatus::Compared
            } else {
                ComparisonStatus::New
            },
            threshold: self.threshold.to_string(),
            regressed,
            times,
        }
    }
}

/// The terminal's lines for a comparison, each with whether it flags a regression.
pub fn terminal_lines(c: &CaseComparison) -> Vec<(String, bool)> {
    if c.status == ComparisonStatus::New {
        return vec![(
            format!(
                "  baseline: new (no case of this name in {})",
                c.file.display()
            ),
            false,
        )];
    }
    let mut lines = vec![(
        format!(
            "  baseline {} (regression: more than {}):",
            c.file.display(),
            c.threshold
        ),
        c.regressed,
    )];
    let width = c
        .times
        .iter()
        .map(|t| t.label().chars().count())
        .max()
        .unwrap_or(0);
    for t in &c.times {
        let flag = if t.regression { "  REGRESSION" } else { "" };
        lines.push((
            format!("    {:width$}  {}{flag}", t.label(), t.describe()),
            t.regression,
        ));
    }
    lines
}

/// The step summary's section: one table row per compared time of every case that has a
/// comparison; nothing when no case has one. `cell` escapes text for a table cell (the
/// summary's own rule).
pub fn summary_section<'a>(
    md: &mut String,
    results: impl IntoIterator<Item = &'a CaseResult>,
    cell: fn(&str) -> String,
) {
    let compared: Vec<(&str, &CaseComparison)> = results
        .into_iter()
        .filter_map(|r| r.baseline.as_ref().map(|b| (r.name.as_str(), b)))
        .collect();
    let Some((_, first)) = compared.first() else {
        return;
    };
    let regressed = compared.iter().filter(|(_, c)| c.regressed).count();
    let _ = writeln!(
        md,
        "### Boot times against the baseline\n\n{} of {} cases regressed (more than {}); \
         baseline: {}\n",
        regressed,
        compared.len(),
        cell(&first.threshold),
        cell(&first.file.display().to_string()),
    );
    md.push_str("| Case | Time | Now | Baseline | Δ | Ratio | |\n|---|---|---|---|---|---|---|\n");
    for (name, c) in compared {
        if c.status == ComparisonStatus::New {
            let _ = writeln!(md, "| {} | – | – | new | – | – | 🆕 |", cell(name));
            continue;
        }
        for t in &c.times {
            let mark = if t.regression { "🔺 regression" } else { "" };
            let _ = writeln!(
                md,
                "| {} | {} | {:.3} s | {} | {} | {} | {mark} |",
                cell(name),
                cell(&t.label()),
                t.current.as_secs_f64(),
                t.baseline
                    .map_or("new".to_string(), |b| format!("{:.3} s", b.as_secs_f64())),
                t.delta_text(),
                t.ratio_text(),
            );
        }
    }
    md.push('\n');
}

#[cfg(test)]
#[path = "baseline_tests.rs"]
mod tests;
