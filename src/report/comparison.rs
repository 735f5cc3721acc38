//! A case's times against a baseline run's (`baseline` in `results.json`): the data that
//! [`super::baseline`] computes and the reporters show.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::console::script::TimelineKind;

/// What a compared time measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeKind {
    /// QEMU start to the pass: the success match, or QEMU's clean exit when no success
    /// pattern is configured. Compared only when the case passed in both runs.
    Boot,
    Milestone,
    Step,
}

impl TimeKind {
    pub(super) fn from_timeline(kind: TimelineKind) -> TimeKind {
        match kind {
            TimelineKind::Milestone => TimeKind::Milestone,
            TimelineKind::Step => TimeKind::Step,
            // A board stage is timed like a milestone (a named point on the console).
            TimelineKind::Stage => TimeKind::Milestone,
        }
    }
}

/// One time of a case against the baseline's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeComparison {
    pub kind: TimeKind,
    /// `boot`, or the milestone's or step's name.
    pub name: String,
    /// Since QEMU started.
    pub current: Duration,
    /// `None`: the baseline's case never reached it (new).
    pub baseline: Option<Duration>,
    pub regression: bool,
}

impl TimeComparison {
    /// `current - baseline` in seconds (negative: faster).
    pub fn delta_secs(&self) -> Option<f64> {
        self.baseline
            .map(|b| self.current.as_secs_f64() - b.as_secs_f64())
    }

    /// `current / baseline`; `None` when new or the baseline time is zero.
    pub fn ratio(&self) -> Option<f64> {
        self.baseline
            .filter(|b| !b.is_zero())
            .map(|b| self.current.as_secs_f64() / b.as_secs_f64())
    }

    /// `boot` or `milestone 'hv up'`.
    pub fn label(&self) -> String {
        match self.kind {
            TimeKind::Boot => "boot".into(),
            TimeKind::Milestone => format!("milestone '{}'", self.name),
            TimeKind::Step => self.name.clone(),
        }
    }

    /// `3.012s (baseline 0.101s: +2.911s, ×29.82)`, or `0.030s (new)`.
    pub fn describe(&self) -> String {
        let now = format!("{:.3}s", self.current.as_secs_f64());
        match self.baseline {
            Some(b) => format!(
                "{now} (baseline {:.3}s: {}, {})",
                b.as_secs_f64(),
                self.delta_text(),
                self.ratio_text()
            ),
            None => format!("{now} (new)"),
        }
    }

    /// `+2.911s` / `-0.004s`, `–` when new.
    pub fn delta_text(&self) -> String {
        self.delta_secs()
            .map_or("–".into(), |d| format!("{d:+.3}s"))
    }

    /// `×29.82`, `–` when there is no ratio.
    pub fn ratio_text(&self) -> String {
        self.ratio().map_or("–".into(), |r| format!("×{r:.2}"))
    }
}

impl Serialize for TimeComparison {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        /// Seconds to the microsecond, as every time in `results.json`.
        fn round(x: f64) -> f64 {
            (x * 1e6).round() / 1e6
        }
        #[derive(Serialize)]
        struct Out<'a> {
            kind: TimeKind,
            name: &'a str,
            current: f64,
            baseline: Option<f64>,
            delta: Option<f64>,
            ratio: Option<f64>,
            regression: bool,
        }
        Out {
            kind: self.kind,
            name: &self.name,
            current: round(self.current.as_secs_f64()),
            baseline: self.baseline.map(|b| round(b.as_secs_f64())),
            delta: self.delta_secs().map(round),
            ratio: self.ratio().map(|r| (r * 1000.0).round() / 1000.0),
            regression: self.regression,
        }
        .serialize(s)
    }
}

/// Whether the baseline had the case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ComparisonStatus {
    Compared,
    /// No case of this name in the baseline.
    New,
}

/// A case's times against the baseline (`baseline` in `results.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseComparison {
    /// The baseline `results.json`.
    pub file: PathBuf,
    pub status: ComparisonStatus,
    /// The threshold in words, e.g. `+20% and +500ms`.
    pub threshold: String,
    /// Some time regressed past the threshold.
    pub regressed: bool,
    /// The boot first (when both runs passed), then milestones and steps in timeline order.
    pub times: Vec<TimeComparison>,
}

impl CaseComparison {
    /// The regressions in one sentence (the verdict's reason with `--fail-on-regression`).
    pub fn regression_reason(&self) -> Option<String> {
        let parts: Vec<String> = self
            .times
            .iter()
            .filter(|t| t.regression)
            .map(|t| format!("{} {}", t.label(), t.describe()))
            .collect();
        (!parts.is_empty()).then(|| {
            format!(
                "boot time regressed past the threshold ({}) against the baseline {}: {}",
                self.threshold,
                self.file.display(),
                parts.join("; ")
            )
        })
    }
}
