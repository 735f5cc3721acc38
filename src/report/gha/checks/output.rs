//! What one check run shows: a one-line title, the Markdown summary (the step summary's
//! renderer, for this one case), the console tail as text, and annotations at file lines.
//!
//! Limits: GitHub rejects an `output.summary` or `output.text` over 65,535 characters. We
//! bound *bytes* instead, which is stricter whichever way GitHub counts (a character is never
//! more UTF-8 bytes than it is UTF-16 units or characters), and cut at a character boundary
//! with a visible note.

use std::fmt::Write as _;
use std::path::Path;

use crate::report::gha::commands::{Annotation, Level};
use crate::report::gha::summary::{self, SummaryCase};
use crate::report::{CaseResult, repo_path};
use crate::verdict::Outcome;

/// GitHub's limit for `output.summary` and `output.text`.
pub const OUTPUT_LIMIT: usize = 65_535;

/// Budget for the rendered summary, leaving room below [`OUTPUT_LIMIT`].
const SUMMARY_BUDGET: usize = 60_000;
/// Longest title, in bytes (shown on one line in the checks list).
const TITLE_LIMIT: usize = 200;
/// Longest annotation message, in bytes (GitHub allows 64 KiB; a long one helps nobody).
const MESSAGE_LIMIT: usize = 4_000;
/// Longest console line in the text, in bytes.
const LINE_LIMIT: usize = 1_000;

/// The content of one check run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRunContent {
    pub title: String,
    pub summary: String,
    pub text: Option<String>,
    /// Only annotations with a file and line can be sent; others are left out.
    pub annotations: Vec<Annotation>,
}

/// Builds the check run content of a finished case; `workspace` is `GITHUB_WORKSPACE` and `cwd`
/// resolves relative pattern locations (annotation paths must be repository-relative).
pub fn content(r: &CaseResult, workspace: Option<&Path>, cwd: &Path) -> CheckRunContent {
    // The renderer cuts console tails and whole rows to meet its budget, never the reason:
    // bound that here so an absurd reason cannot push the case out of its own summary.
    let mut bounded = r.clone();
    bounded.verdict.reason = clip(&r.verdict.reason, MESSAGE_LIMIT);
    let cases = [SummaryCase {
        result: &bounded,
        image: r.image.as_ref(),
    }];
    let summary = summary::render(&cases, &[], SUMMARY_BUDGET);
    CheckRunContent {
        title: title(r),
        summary: fit(summary, OUTPUT_LIMIT),
        text: text(r),
        annotations: deciding_annotation(r, workspace, cwd).into_iter().collect(),
    }
}

/// `PASS: <reason>`, on one line and bounded.
fn title(r: &CaseResult) -> String {
    let v = &r.verdict;
    let line = one_line(&format!("{}: {}", v.outcome.label(), v.reason));
    clip(&line, TITLE_LIMIT)
}

/// The deciding pattern's place, when it was written in a file inside the workspace.
fn deciding_annotation(r: &CaseResult, workspace: Option<&Path>, cwd: &Path) -> Option<Annotation> {
    let m = r.verdict.decided_by.as_ref()?;
    let loc = m.location.as_ref()?;
    let file = repo_path(&loc.path, workspace, cwd)?;
    let level = match r.verdict.outcome {
        Outcome::Pass => Level::Notice,
        Outcome::Fail | Outcome::Timeout | Outcome::Error => Level::Error,
        Outcome::Skipped | Outcome::Cancelled => Level::Warning,
    };
    let message = format!(
        "{} {}: {}\nconsole line {}: {}",
        r.name,
        r.verdict.outcome.name(),
        r.verdict.reason,
        m.line_no,
        m.line
    );
    let mut a = Annotation::new(level, clip(&message, MESSAGE_LIMIT)).title(clip(
        &format!("qemu-test: {}", one_line(&r.name)),
        TITLE_LIMIT,
    ));
    a.file = Some(file);
    a.line = Some(loc.line.max(1));
    Some(a)
}

/// The console tail, QEMU's stderr and command as fenced code, keeping the newest lines that
/// fit.
fn text(r: &CaseResult) -> Option<String> {
    if r.console_tail.is_empty() && r.stderr_tail.is_empty() && r.command.is_none() {
        return None;
    }
    let mut rest = tail_block("QEMU stderr", &r.stderr_tail, 0, OUTPUT_LIMIT / 4);
    if let Some(cmd) = &r.command {
        let cmd = clip(&code_line(&cmd.display().to_string()), 4 * LINE_LIMIT);
        rest.push_str("QEMU command:\n");
        rest.push_str(&fenced(&[cmd]));
    }
    let room = OUTPUT_LIMIT - rest.len();
    let console = tail_block("Console", &r.console_tail, r.console_lines, room);
    Some(fit(console + &rest, OUTPUT_LIMIT))
}

/// The newest `lines` whose fenced block fits in `room` bytes, under a heading that says how
/// many of `total` are shown; empty when there are no lines.
fn tail_block(what: &str, lines: &[String], total: u64, room: usize) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let clean: Vec<String> = lines
        .iter()
        .map(|l| clip(&code_line(l), LINE_LIMIT))
        .collect();
    let total = total.max(lines.len() as u64);
    let block = |n: usize| {
        let mut s = format!("{what} (last {n} of {total} lines):\n");
        s.push_str(&fenced(&clean[clean.len() - n..]));
        s
    };
    // Binary search for the most lines that fit (fewer lines never render longer).
    let (mut lo, mut hi) = (0, clean.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if block(mid).len() <= room {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    block(lo)
}

/// A fenced code block whose fence is longer than any backtick run inside, so no line can
/// close it early.
fn fenced(lines: &[String]) -> String {
    let longest = lines.iter().map(|l| longest_run(l, '`')).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    let mut s = format!("{fence}text\n");
    for line in lines {
        let _ = writeln!(s, "{}", code_line(line));
    }
    let _ = writeln!(s, "{fence}\n");
    s
}

fn longest_run(s: &str, c: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for ch in s.chars() {
        run = if ch == c { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// A line for a code block: tabs as spaces, other control characters dropped.
fn code_line(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            '\t' => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect()
}

/// Text on one line: control characters (line breaks included) as spaces.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// At most `limit` bytes, cut at a character boundary with `…`.
fn clip(s: &str, limit: usize) -> String {
    if s.len() <= limit {
        return s.to_string();
    }
    let mut end = limit.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// At most `limit` bytes: cut at a character boundary and say so.
pub fn fit(mut s: String, limit: usize) -> String {
    const NOTE: &str = "\n\n**Cut to fit GitHub's size limit.**\n";
    if s.len() <= limit {
        return s;
    }
    let mut end = limit.saturating_sub(NOTE.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    if s.len() + NOTE.len() <= limit {
        s.push_str(NOTE);
    }
    s
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::console::PatternKind;

    fn failed(tail: Vec<String>) -> CaseResult {
        CaseResult::builder("c1", Outcome::Fail, "fail pattern matched:\npanic")
            .decided_by(
                PatternKind::Fail,
                "panic",
                42,
                "kernel panic",
                Duration::from_secs(2),
            )
            .pattern_at("/ws/configs/q.toml", 7, 3)
            .duration(Duration::from_secs(3))
            .tail(tail)
            .build()
    }

    #[test]
    fn title_is_one_bounded_line() {
        let mut r = failed(vec![]);
        assert_eq!(title(&r), "FAIL: fail pattern matched: panic");
        r.verdict.reason = "é".repeat(500);
        let t = title(&r);
        assert!(t.len() <= TITLE_LIMIT && t.ends_with('…'), "{t}");
    }

    #[test]
    fn deciding_pattern_is_annotated_relative_to_the_workspace() {
        let r = failed(vec![]);
        let c = content(&r, Some(Path::new("/ws")), Path::new("/ws"));
        let a = &c.annotations[0];
        assert_eq!(a.file.as_deref(), Some("configs/q.toml"));
        assert_eq!((a.line, a.level), (Some(7), Level::Error));
        assert!(a.message.contains("console line 42: kernel panic"));
        let outside = content(&r, Some(Path::new("/elsewhere")), Path::new("/"));
        assert!(outside.annotations.is_empty());
    }

    #[test]
    fn fence_outlasts_backticks_in_the_console() {
        let s = fenced(&["a ````` b".to_string(), "\u{1b}[31mred\t!".to_string()]);
        assert!(s.starts_with("``````text\n"), "{s}");
        assert!(s.contains("\n[31mred !\n"));
        assert!(s.ends_with("\n``````\n\n"));
    }

    #[test]
    fn huge_console_keeps_the_newest_lines_within_the_limit() {
        let tail: Vec<String> = (0..5000)
            .map(|i| format!("line {i} {}", "x".repeat(300)))
            .collect();
        let r = failed(tail);
        let c = content(&r, None, Path::new("/"));
        let text = c.text.unwrap();
        assert!(text.len() <= OUTPUT_LIMIT);
        assert!(text.contains("line 4999 "));
        assert!(!text.contains("line 0 "));
        assert!(text.starts_with("Console (last "));
        assert!(c.summary.len() <= OUTPUT_LIMIT);
    }

    #[test]
    fn fit_cuts_at_a_char_boundary_with_a_note() {
        let s = fit("é".repeat(40_000), OUTPUT_LIMIT);
        assert!(s.len() <= OUTPUT_LIMIT);
        assert!(s.ends_with("size limit.**\n"));
        assert_eq!(fit("short".into(), 10), "short");
    }
}
