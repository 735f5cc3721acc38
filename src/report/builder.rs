//! [`CaseBuilder`]: a [`CaseResult`] put together by hand, with only the facts a test of the
//! reports needs (the rest empty), for the unit tests here and the integration tests alike. The
//! pipeline builds its results from the stages, not with this.

use std::path::PathBuf;
use std::time::Duration;

use super::model::{Attempt, CaseResult, ImageRef, Stage, StageTiming};
use crate::arch::Arch;
use crate::console::{MatchInfo, PatternKind, TimelineEntry};
use crate::error::Location;
use crate::verdict::{Outcome, QemuExit, Verdict};

/// Builds a [`CaseResult`]; start with [`CaseResult::builder`] or [`CaseBuilder::with_verdict`].
#[derive(Debug, Clone)]
pub struct CaseBuilder {
    result: CaseResult,
}

impl CaseResult {
    /// A case `name` that ended in `outcome` for `reason`; nothing else known yet.
    pub fn builder(name: &str, outcome: Outcome, reason: impl Into<String>) -> CaseBuilder {
        CaseBuilder::with_verdict(name, Verdict::new(outcome, reason))
    }
}

impl CaseBuilder {
    /// A case `name` with a verdict made elsewhere (e.g. by `verdict::decide`).
    pub fn with_verdict(name: &str, verdict: Verdict) -> Self {
        CaseBuilder {
            result: CaseResult::without_boot(name, verdict, Duration::ZERO),
        }
    }

    /// Wall time of the whole case.
    pub fn duration(mut self, duration: Duration) -> Self {
        self.result.duration = duration;
        self
    }

    /// Where it ran: the guest's architecture and `kvm` or `tcg`.
    pub fn ran_on(mut self, arch: Arch, accel: &str) -> Self {
        self.result.arch = Some(arch);
        self.result.accel = Some(accel.to_string());
        self
    }

    pub fn qemu_version(mut self, version: &str) -> Self {
        self.result.qemu_version = Some(version.to_string());
        self
    }

    pub fn image(mut self, image: ImageRef) -> Self {
        self.result.image = Some(image);
        self
    }

    /// One more stage, after those already given.
    pub fn stage(mut self, stage: Stage, duration: Duration, ok: bool) -> Self {
        self.result.stages.push(StageTiming {
            stage,
            duration,
            ok,
        });
        self
    }

    /// The console match that decided the verdict: the `pattern` (of the first `kind` list,
    /// given on the command line) on console line `line_no`, `line`, `at` after QEMU started.
    pub fn decided_by(
        mut self,
        kind: PatternKind,
        pattern: &str,
        line_no: u64,
        line: &str,
        at: Duration,
    ) -> Self {
        self.result.verdict.decided_by = Some(MatchInfo {
            kind,
            index: 0,
            pattern: pattern.to_string(),
            location: None,
            line_no,
            line: line.to_string(),
            at,
        });
        self
    }

    /// The deciding pattern was written at `path:line:column`. Panics without [`Self::decided_by`].
    pub fn pattern_at(mut self, path: &str, line: usize, column: usize) -> Self {
        let info = self.result.verdict.decided_by.as_mut();
        info.expect("pattern_at after decided_by").location = Some(Location {
            path: path.into(),
            line,
            column,
        });
        self
    }

    pub fn qemu_exit(mut self, exit: QemuExit) -> Self {
        self.result.verdict.qemu_exit = Some(exit);
        self
    }

    pub fn postmortem(mut self, postmortem: crate::postmortem::Postmortem) -> Self {
        self.result.verdict.postmortem = Some(postmortem);
        self
    }

    /// The last console lines, oldest first.
    pub fn tail<S: Into<String>>(mut self, lines: impl IntoIterator<Item = S>) -> Self {
        self.result.console_tail = lines.into_iter().map(Into::into).collect();
        self
    }

    /// The last lines QEMU wrote to stderr.
    pub fn stderr_tail<S: Into<String>>(mut self, lines: impl IntoIterator<Item = S>) -> Self {
        self.result.stderr_tail = lines.into_iter().map(Into::into).collect();
        self
    }

    /// How many console lines the guest printed.
    pub fn console_lines(mut self, lines: u64) -> Self {
        self.result.console_lines = lines;
        self
    }

    pub fn log(mut self, path: impl Into<PathBuf>) -> Self {
        self.result.log = Some(path.into());
        self
    }

    pub fn timeline(mut self, entries: Vec<TimelineEntry>) -> Self {
        self.result.timeline = entries;
        self
    }

    /// One more earlier attempt, after those already given; with a passing verdict, the case
    /// is flaky.
    pub fn attempt(mut self, attempt: Attempt) -> Self {
        self.result.attempts.push(attempt);
        self.result.flaky = self.result.verdict.outcome == Outcome::Pass;
        self
    }

    /// The QEMU config (or suite) file the case came from.
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.result.config_file = Some(path.into());
        self
    }

    pub fn build(self) -> CaseResult {
        self.result
    }
}
