//! The streaming judge: fail patterns first, then success; partial lines; bounded memory.
//!
//! STUB: owned by the console helper; replaced by the real implementation.

use std::time::Duration;

use super::Pattern;
use crate::error::Location;

/// Whether a match decided success or failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PatternKind {
    Success,
    Fail,
}

/// Which pattern matched, on which console line, and when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MatchInfo {
    pub kind: PatternKind,
    /// Index into the success or fail list.
    pub index: usize,
    /// The pattern as the user wrote it.
    pub pattern: String,
    /// Where the pattern was written (`None` = command line).
    #[serde(skip)]
    pub location: Option<Location>,
    /// 1-based console line number.
    pub line_no: u64,
    /// The cleaned console line (bounded in length).
    pub line: String,
    /// Time since the judge started (QEMU launch) when the match became final.
    pub at: Duration,
}

/// A final decision of the judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Fail(MatchInfo),
    Success(MatchInfo),
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
    success: Vec<Pattern>,
    fail: Vec<Pattern>,
    opts: JudgeOptions,
}

impl Judge {
    pub fn new(success: Vec<Pattern>, fail: Vec<Pattern>, opts: JudgeOptions) -> Self {
        Judge {
            success,
            fail,
            opts,
        }
    }

    /// Feeds raw console bytes received at `now`; returns a decision when one became final.
    pub fn feed(&mut self, bytes: &[u8], now: Duration) -> Option<Decision> {
        let _ = (bytes, now, &self.success, &self.fail, &self.opts);
        None
    }

    /// Confirms a pending success on an unfinished line once the console has been quiet for
    /// `settle`. Call at [`Judge::next_wakeup`].
    pub fn poll(&mut self, now: Duration) -> Option<Decision> {
        let _ = now;
        None
    }

    /// When [`Judge::poll`] should next be called, if a confirmation is pending.
    pub fn next_wakeup(&self) -> Option<Duration> {
        None
    }

    /// End of stream: a pending success on the unfinished last line becomes final.
    pub fn finish(&mut self, now: Duration) -> Option<Decision> {
        let _ = now;
        None
    }

    /// The last console lines seen (cleaned), oldest first; the unfinished line last.
    pub fn tail(&self) -> Vec<String> {
        Vec::new()
    }

    /// Number of console lines seen so far (the unfinished one included).
    pub fn lines_seen(&self) -> u64 {
        0
    }
}
