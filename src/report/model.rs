//! What reporters are told about a finished case: the shared results model behind the terminal
//! line, `results.json`, JUnit, the step summary and check runs.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::arch::Arch;
use crate::qemu::QemuCommand;
use crate::verdict::Verdict;

/// A pipeline stage, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Plan,
    Probe,
    Image,
    Prepare,
    Build,
    Boot,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Plan => "plan",
            Stage::Probe => "probe",
            Stage::Image => "image",
            Stage::Prepare => "prepare",
            Stage::Build => "build",
            Stage::Boot => "boot",
        }
    }
}

/// How long a stage took and whether it succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageTiming {
    pub stage: Stage,
    #[serde(serialize_with = "crate::duration::serialize_secs")]
    pub duration: Duration,
    pub ok: bool,
}

/// The guest image a case used.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ImageRef {
    pub name: String,
    pub version: Option<String>,
    /// Hex SHA-256 of the image archive.
    pub sha256: Option<String>,
}

/// Everything known about a finished case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseResult {
    pub name: String,
    pub arch: Option<Arch>,
    /// `kvm` or `tcg` when known.
    pub accel: Option<String>,
    /// The guest image, when the case used one.
    pub image: Option<ImageRef>,
    pub verdict: Verdict,
    /// Wall time of the whole case.
    #[serde(serialize_with = "crate::duration::serialize_secs")]
    pub duration: Duration,
    pub stages: Vec<StageTiming>,
    /// Full raw console log.
    pub log: Option<PathBuf>,
    pub qemu_version: Option<String>,
    pub command: Option<QemuCommand>,
    /// Last console lines (cleaned), oldest first.
    pub console_tail: Vec<String>,
    /// Last lines QEMU wrote to stderr.
    pub stderr_tail: Vec<String>,
    pub console_bytes: u64,
    pub console_lines: u64,
    /// Console bytes not in the log file (over `max_log_size`; the verdict saw them).
    pub log_dropped_bytes: u64,
    /// Milestones and steps: when each was reached (or that it was not).
    pub timeline: Vec<crate::console::TimelineEntry>,
    /// Test cases extracted from the console (and expected ones never seen).
    pub testcases: Vec<crate::console::ExtractedCase>,
    /// Earlier attempts when the case was retried, oldest first.
    pub attempts: Vec<Attempt>,
    /// Failed first, then passed on a retry.
    pub flaky: bool,
    /// Boot and milestone times against `--baseline` (absent without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<super::comparison::CaseComparison>,
    /// The QEMU config (or suite) file the case came from; `None` for built-in defaults.
    /// JUnit names it as the suite's `file`.
    #[serde(skip)]
    pub config_file: Option<PathBuf>,
}

/// One earlier attempt of a retried case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    pub verdict: Verdict,
    #[serde(serialize_with = "crate::duration::serialize_secs")]
    pub duration: Duration,
    /// Last console lines of that attempt.
    pub console_tail: Vec<String>,
    /// That attempt's console log (kept under another name).
    pub log: Option<PathBuf>,
}

impl CaseResult {
    /// A result for a case that never reached QEMU.
    pub fn without_boot(name: impl Into<String>, verdict: Verdict, duration: Duration) -> Self {
        CaseResult {
            name: name.into(),
            arch: None,
            accel: None,
            image: None,
            verdict,
            duration,
            stages: Vec::new(),
            log: None,
            qemu_version: None,
            command: None,
            console_tail: Vec::new(),
            stderr_tail: Vec::new(),
            console_bytes: 0,
            console_lines: 0,
            log_dropped_bytes: 0,
            timeline: Vec::new(),
            testcases: Vec::new(),
            attempts: Vec::new(),
            flaky: false,
            baseline: None,
            config_file: None,
        }
    }
}
