//! The step summary: a Markdown table with one row per case and, for each failed case, the
//! deciding line and the last console lines; appended to the file named by
//! `GITHUB_STEP_SUMMARY`.
//!
//! Containment: everything that comes from the guest, the image registry or QEMU is
//! HTML-escaped (`&`, `<`, `>`, `"`, `'`). Text in paragraphs and table cells additionally has
//! Markdown punctuation replaced by numeric character references (CommonMark treats those as
//! literal text), so a console line cannot become a link, an image, a heading or a table
//! column. Logs go in `<pre>` blocks rather than fenced code blocks: a `<pre>` block is raw HTML
//! up to the line containing `</pre>`, which escaped text can never contain, and it keeps one
//! escaping rule for all untrusted text (fenced blocks would show entities literally).
//!
//! Size: GitHub drops a step summary over 1 MiB *entirely*. [`render`] keeps the Markdown under
//! a byte budget: it shortens console tails first, then drops the list of overflow annotations,
//! then case rows from the end, and says so in a visible note.

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::commands::Annotation;
use crate::error::{Error, Location};
use crate::report::CaseResult;
use crate::verdict::Outcome;

/// GitHub's hard limit for one step's summary.
pub const SUMMARY_LIMIT: usize = 1024 * 1024;

/// Our default budget: well under [`SUMMARY_LIMIT`], leaving room for other writers.
pub const DEFAULT_BUDGET: usize = 900 * 1024;

/// Console lines shown per failed case before any cut.
const TAIL_LINES: usize = 60;
/// Longest console line shown, in characters.
const LINE_CHARS: usize = 400;
/// Overflow annotations listed at most.
const OVERFLOW_LISTED: usize = 50;

pub use crate::report::model::ImageRef;

/// One case as the summary shows it.
#[derive(Debug, Clone, Copy)]
pub struct SummaryCase<'a> {
    pub result: &'a CaseResult,
    pub image: Option<&'a ImageRef>,
}

/// Where the summary links a pattern's config location: the file at the commit under test.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Links {
    /// `GITHUB_SERVER_URL/GITHUB_REPOSITORY/blob/GITHUB_SHA`, checked by [`Links::blob_url`].
    pub blob: Option<String>,
    /// `GITHUB_WORKSPACE`: locations are made relative to it; outside it, no link.
    pub workspace: Option<PathBuf>,
    /// What relative locations are relative to.
    pub cwd: PathBuf,
}

impl Links {
    /// The blob URL of a commit, or `None` when a part is missing or not of GitHub's shape (a
    /// value that could break out of a Markdown link is never used).
    pub fn blob_url(server: &str, repository: &str, sha: &str) -> Option<String> {
        let server = server.trim_end_matches('/');
        let host_ok = server.starts_with("https://")
            && server[8..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:".contains(c));
        let mut parts = repository.split('/');
        let repo_ok = parts.clone().count() == 2
            && parts.all(|p| {
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            });
        let sha_ok = !sha.is_empty() && sha.chars().all(|c| c.is_ascii_hexdigit());
        (host_ok && repo_ok && sha_ok).then(|| format!("{server}/{repository}/blob/{sha}"))
    }

    /// `path:line:col`, as a link to the line when the file is inside the workspace.
    fn location(&self, loc: &Location) -> String {
        let rel = crate::report::checks::repo_path(&loc.path, self.workspace.as_deref(), &self.cwd);
        let (Some(blob), Some(rel_text)) = (&self.blob, rel) else {
            return inline(&loc.to_string());
        };
        let mut url = format!("{blob}/");
        for b in rel_text.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                url.push(b as char);
            } else {
                let _ = write!(url, "%{b:02X}");
            }
        }
        format!(
            "[{}]({url}#L{})",
            inline(&format!("{rel_text}:{}:{}", loc.line, loc.column)),
            loc.line
        )
    }
}

/// How much is left out to meet the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cut {
    tail_lines: usize,
    show_overflow: bool,
    rows: usize,
}

/// Appends the summary of `cases` to the step summary file at `path`, within `budget` bytes and
/// within what the 1 MiB limit leaves after the file's current content.
pub fn write_summary(
    path: &Path,
    cases: &[SummaryCase<'_>],
    overflow: &[Annotation],
    budget: usize,
    links: &Links,
) -> Result<(), Error> {
    let existing = std::fs::metadata(path)
        .map(|m| m.len() as usize)
        .unwrap_or(0);
    let budget = budget.min(SUMMARY_LIMIT.saturating_sub(existing));
    if budget < 1024 {
        return Err(Error::infra(format!(
            "the step summary {} already holds {existing} bytes; not adding ours",
            path.display()
        ))
        .help("GitHub drops a step summary over 1 MiB entirely; write less to it in this step"));
    }
    let markdown = render_linked(cases, overflow, budget, links);
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(path, "open the step summary", &e))?;
    file.write_all(markdown.as_bytes())
        .map_err(|e| Error::io(path, "append to the step summary", &e))
}

/// The summary as Markdown, at most `budget` bytes long.
///
/// Also usable for a check run's `output.summary` (limit 65,535 characters: pass a byte budget
/// below that, as characters never outnumber bytes).
pub fn render(cases: &[SummaryCase<'_>], overflow: &[Annotation], budget: usize) -> String {
    render_linked(cases, overflow, budget, &Links::default())
}

/// [`render`], with pattern locations linked to the file at the commit.
pub fn render_linked(
    cases: &[SummaryCase<'_>],
    overflow: &[Annotation],
    budget: usize,
    links: &Links,
) -> String {
    let full = Cut {
        tail_lines: TAIL_LINES,
        show_overflow: true,
        rows: cases.len(),
    };
    let fits = |cut: &Cut| render_with(cases, overflow, cut, full, links).len() <= budget;
    let mut cut = full;
    while !fits(&cut) && cut.tail_lines > 0 {
        cut.tail_lines /= 2;
    }
    if !fits(&cut) {
        cut.show_overflow = false;
    }
    if !fits(&cut) {
        cut.rows = most_rows_that_fit(cut, &fits);
    }
    let mut text = render_with(cases, overflow, &cut, full, links);
    if text.len() > budget {
        hard_cut(&mut text, budget);
    }
    text
}

/// Binary search over the number of rows shown (fewer rows never render longer).
fn most_rows_that_fit(cut: Cut, fits: &dyn Fn(&Cut) -> bool) -> usize {
    let (mut lo, mut hi) = (0, cut.rows);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if fits(&Cut { rows: mid, ..cut }) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// Last resort for absurdly small budgets: cut at a character boundary and say so.
fn hard_cut(text: &mut String, budget: usize) {
    const NOTE: &str = "\n\n**Summary cut to fit the size budget.**\n";
    let mut end = budget.saturating_sub(NOTE.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    if text.len() + NOTE.len() <= budget {
        text.push_str(NOTE);
    }
}

fn render_with(
    cases: &[SummaryCase<'_>],
    overflow: &[Annotation],
    cut: &Cut,
    full: Cut,
    links: &Links,
) -> String {
    let mut md = String::new();
    heading(&mut md, cases);
    table(&mut md, &cases[..cut.rows]);
    crate::report::baseline::summary_section(
        &mut md,
        cases[..cut.rows].iter().map(|c| c.result),
        cell,
    );
    not_run(&mut md, &cases[..cut.rows]);
    truncation_note(&mut md, cases.len(), overflow, cut, full);
    for case in &cases[..cut.rows] {
        grammar_details(&mut md, case.result);
        if is_failure(case.result.verdict.outcome) {
            failure_details(&mut md, case.result, cut.tail_lines, links);
        }
    }
    if cut.show_overflow {
        overflow_list(&mut md, overflow);
    }
    md
}

fn heading(md: &mut String, cases: &[SummaryCase<'_>]) {
    let order = [
        Outcome::Pass,
        Outcome::Fail,
        Outcome::Timeout,
        Outcome::Error,
        Outcome::Skipped,
        Outcome::Cancelled,
    ];
    let mut counts: Vec<String> = order
        .iter()
        .filter_map(|&o| {
            let n = cases
                .iter()
                .filter(|c| c.result.verdict.outcome == o)
                .count();
            (n > 0).then(|| format!("{n} {}", o.name()))
        })
        .collect();
    let flaky = cases.iter().filter(|c| c.result.flaky).count();
    if flaky > 0 {
        counts.push(format!("{flaky} flaky"));
    }
    let counts = if counts.is_empty() {
        "no cases".to_string()
    } else {
        counts.join(", ")
    };
    let _ = writeln!(md, "## QEMU boot tests: {counts}\n");
}

/// A fact shown per case: a column when the cases differ in it, one line under the table
/// when they all share it.
struct Fact {
    title: &'static str,
    value: fn(&SummaryCase<'_>) -> String,
}

const FACTS: [Fact; 4] = [
    Fact {
        title: "Arch",
        value: |c| {
            c.result
                .arch
                .map_or("–".to_string(), |a| a.name().to_string())
        },
    },
    Fact {
        title: "Accel",
        value: |c| cell(c.result.accel.as_deref().unwrap_or("–")),
    },
    Fact {
        title: "Image",
        value: |c| image_cell(c.image.or(c.result.image.as_ref())),
    },
    Fact {
        title: "QEMU",
        value: |c| cell(c.result.qemu_version.as_deref().unwrap_or("–")),
    },
];

fn table(md: &mut String, cases: &[SummaryCase<'_>]) {
    if cases.is_empty() {
        return;
    }
    let values: Vec<Vec<String>> = FACTS
        .iter()
        .map(|f| cases.iter().map(f.value).collect())
        .collect();
    let varies: Vec<bool> = values
        .iter()
        .map(|v| v.iter().any(|x| *x != v[0]))
        .collect();
    md.push_str("| Verdict | Case |");
    for (f, _) in FACTS.iter().zip(&varies).filter(|(_, v)| **v) {
        let _ = write!(md, " {} |", f.title);
    }
    md.push_str(" Time | Stages |\n|---|---|");
    md.push_str(&"---|".repeat(varies.iter().filter(|v| **v).count() + 2));
    md.push('\n');
    for (i, case) in cases.iter().enumerate() {
        let r = case.result;
        let _ = write!(
            md,
            "| {} {} | {} |",
            emoji(r.verdict.outcome),
            r.verdict.outcome.name(),
            cell(&r.name)
        );
        for (v, _) in values.iter().zip(&varies).filter(|(_, v)| **v) {
            let _ = write!(md, " {} |", v[i]);
        }
        let _ = writeln!(md, " {} | {} |", secs(r.duration), stages_cell(r));
    }
    let shared: Vec<String> = FACTS
        .iter()
        .zip(&values)
        .zip(&varies)
        .filter(|((_, v), varies)| !**varies && v[0] != "–")
        .map(|((f, v), _)| format!("{} {}", f.title, v[0]))
        .collect();
    if !shared.is_empty() {
        let _ = writeln!(md, "\n{}: {}", all_cases(cases.len()), shared.join(" · "));
    }
    md.push('\n');
}

fn all_cases(n: usize) -> &'static str {
    if n == 1 { "Case" } else { "All cases" }
}

/// The timeline (milestones and steps) and extracted test cases of one case, in a collapsed
/// block; guest text is escaped like every other cell.
fn grammar_details(md: &mut String, r: &CaseResult) {
    if r.timeline.is_empty() && r.testcases.is_empty() && !r.flaky {
        return;
    }
    let flaky = if r.flaky {
        " (flaky: passed on a retry)"
    } else {
        ""
    };
    let _ = writeln!(
        md,
        "<details><summary>{}: timeline and test cases{flaky}</summary>\n",
        cell(&r.name)
    );
    if !r.timeline.is_empty() {
        md.push_str("| Milestone / step | At | Δ |\n|---|---|---|\n");
        for e in &r.timeline {
            let (at, d) = match (e.at, e.delta) {
                (Some(a), Some(d)) => (secs(a), format!("+{}", secs(d))),
                _ => ("❌ not reached".to_string(), "–".to_string()),
            };
            let _ = writeln!(md, "| {} | {at} | {d} |", cell(&e.name));
        }
        md.push('\n');
    }
    if !r.testcases.is_empty() {
        md.push_str("| Test case | Result | Raw | Line |\n|---|---|---|---|\n");
        for c in &r.testcases {
            let raw = c.raw.as_deref().or(c.note.as_deref()).unwrap_or("–");
            let line = c.line_no.map_or("–".to_string(), |l| l.to_string());
            let _ = writeln!(
                md,
                "| {} | {} | {} | {line} |",
                cell(&c.id),
                c.status.name(),
                cell(raw)
            );
        }
        md.push('\n');
    }
    md.push_str("</details>\n\n");
}

/// Why skipped and cancelled cases did not run (the table has no room for reasons).
fn not_run(md: &mut String, cases: &[SummaryCase<'_>]) {
    let mut any = false;
    for r in cases.iter().map(|c| c.result) {
        let o = r.verdict.outcome;
        if matches!(o, Outcome::Skipped | Outcome::Cancelled) {
            let reason = cell(&r.verdict.reason);
            let _ = writeln!(
                md,
                "- {} **{}** {}: {reason}",
                emoji(o),
                cell(&r.name),
                o.name()
            );
            any = true;
        }
    }
    if any {
        md.push('\n');
    }
}

fn truncation_note(md: &mut String, total: usize, overflow: &[Annotation], cut: &Cut, full: Cut) {
    if *cut == full {
        return;
    }
    let mut what = Vec::new();
    if cut.tail_lines < full.tail_lines {
        what.push(format!(
            "console tails shortened to {} lines",
            cut.tail_lines
        ));
    }
    if !cut.show_overflow && !overflow.is_empty() {
        what.push(format!(
            "{} overflow annotations not listed",
            overflow.len()
        ));
    }
    if cut.rows < total {
        what.push(format!("{} of {total} cases not shown", total - cut.rows));
    }
    let _ = writeln!(
        md,
        "> [!WARNING]\n> This summary was truncated to stay under GitHub's 1 MiB limit ({}). \
         The JUnit report and `results.json` have every case.\n",
        what.join("; ")
    );
}

fn failure_details(md: &mut String, r: &CaseResult, tail_lines: usize, links: &Links) {
    let v = &r.verdict;
    let _ = writeln!(
        md,
        "### {} {} — {}\n",
        emoji(v.outcome),
        inline(&r.name),
        v.outcome.name()
    );
    let _ = writeln!(md, "{}\n", inline(&v.reason));
    if let Some(m) = &v.decided_by {
        let place = m
            .location
            .as_ref()
            .map(|l| format!(" (defined at {})", links.location(l)))
            .unwrap_or_default();
        let _ = writeln!(
            md,
            "Decided by pattern <code>{}</code>{place} on console line {}, {} after QEMU started:\n",
            inline(&m.pattern),
            m.line_no,
            secs(m.at),
        );
        pre(md, std::iter::once(m.line.as_str()));
    }
    let tail = &r.console_tail[r.console_tail.len().saturating_sub(tail_lines)..];
    if !tail.is_empty() {
        let _ = writeln!(
            md,
            "<details><summary>Last {} console lines</summary>\n",
            tail.len()
        );
        pre(md, tail.iter().map(String::as_str));
        md.push_str("</details>\n\n");
    }
    if r.log_dropped_bytes > 0 {
        let _ = writeln!(
            md,
            "The console log file is capped (max_log_size): {} of {} bytes were dropped between \
             its head and its tail; the verdict saw every byte.\n",
            r.log_dropped_bytes, r.console_bytes
        );
    }
    if !r.stderr_tail.is_empty() && tail_lines > 0 {
        let lines = &r.stderr_tail[r.stderr_tail.len().saturating_sub(tail_lines)..];
        md.push_str("<details><summary>QEMU stderr</summary>\n\n");
        pre(md, lines.iter().map(String::as_str));
        md.push_str("</details>\n\n");
    }
}

fn overflow_list(md: &mut String, overflow: &[Annotation]) {
    if overflow.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "### {} more annotations not shown\n\nGitHub keeps at most 10 errors, 10 warnings and \
         10 notices per step; these were left out:\n",
        overflow.len()
    );
    for a in overflow.iter().take(OVERFLOW_LISTED) {
        let place = match (&a.file, a.line) {
            (Some(f), Some(l)) => format!(" {}:{l}", inline(f)),
            (Some(f), None) => format!(" {}", inline(f)),
            _ => String::new(),
        };
        let _ = writeln!(
            md,
            "- **{}**{place}: {}",
            a.level.command(),
            inline(&clip(&a.message))
        );
    }
    if overflow.len() > OVERFLOW_LISTED {
        let _ = writeln!(md, "- … and {} more", overflow.len() - OVERFLOW_LISTED);
    }
    md.push('\n');
}

fn is_failure(o: Outcome) -> bool {
    matches!(o, Outcome::Fail | Outcome::Timeout | Outcome::Error)
}

fn emoji(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "✅",
        Outcome::Fail => "❌",
        Outcome::Timeout => "⏱️",
        Outcome::Error => "💥",
        Outcome::Skipped => "⏭️",
        Outcome::Cancelled => "🚫",
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn stages_cell(r: &CaseResult) -> String {
    let parts: Vec<String> = r
        .stages
        .iter()
        .filter(|s| !s.ok || s.duration >= Duration::from_millis(50))
        .map(|s| {
            let mark = if s.ok { "" } else { " ✗" };
            format!("{} {}{mark}", s.stage.name(), secs(s.duration))
        })
        .collect();
    if parts.is_empty() {
        "–".into()
    } else {
        parts.join(" · ")
    }
}

fn image_cell(image: Option<&ImageRef>) -> String {
    let Some(img) = image else {
        return "–".into();
    };
    let mut s = cell(&img.name);
    if let Some(v) = &img.version {
        let _ = write!(s, "&#64;{}", cell(v));
    }
    if let Some(sha) = &img.sha256 {
        let short: String = sha.chars().take(12).collect();
        let _ = write!(s, " <code>{}</code>", cell(&short));
    }
    s
}

/// Text for a table cell: [`inline`] with line breaks flattened (a cell is one line).
fn cell(s: &str) -> String {
    inline(&clip(s))
}

/// Untrusted text for a paragraph or cell: HTML-escaped, Markdown punctuation as numeric
/// references, control characters dropped, line breaks as spaces.
fn inline(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' | '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' | '!' | '#' | '$' | '@' => {
                let _ = write!(out, "&#{};", c as u32);
            }
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Untrusted lines in a `<pre>` block: HTML-escaped, each clipped to [`LINE_CHARS`].
fn pre<'a>(md: &mut String, lines: impl Iterator<Item = &'a str>) {
    md.push_str("<pre>\n");
    for line in lines {
        for c in clip(line).chars() {
            match c {
                '&' => md.push_str("&amp;"),
                '<' => md.push_str("&lt;"),
                '>' => md.push_str("&gt;"),
                '"' => md.push_str("&quot;"),
                '\'' => md.push_str("&#39;"),
                '\t' => md.push(' '),
                c if c.is_control() => {}
                c => md.push(c),
            }
        }
        md.push('\n');
    }
    md.push_str("</pre>\n\n");
}

/// At most [`LINE_CHARS`] characters, on one line.
fn clip(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(LINE_CHARS)
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    if s.chars().nth(LINE_CHARS).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;
    use crate::console::{MatchInfo, PatternKind};
    use crate::error::Location;
    use crate::report::{Stage, StageTiming};
    use crate::verdict::Verdict;

    fn failed(name: &str, tail: Vec<String>) -> CaseResult {
        let mut v = Verdict::new(Outcome::Fail, "fail pattern matched: <b>panic</b> & co");
        v.decided_by = Some(MatchInfo {
            kind: PatternKind::Fail,
            index: 0,
            pattern: "panic|oops".into(),
            location: Some(Location {
                path: "configs/q.toml".into(),
                line: 7,
                column: 3,
            }),
            line_no: 42,
            line: "</pre><script>alert(1)</script> ![x](http://e/x.png)".into(),
            at: Duration::from_millis(2500),
        });
        let mut r = CaseResult::without_boot(name, v, Duration::from_secs(3));
        r.arch = Some(Arch::Aarch64);
        r.accel = Some("tcg".into());
        r.stages = vec![StageTiming {
            stage: Stage::Boot,
            duration: Duration::from_secs(2),
            ok: false,
        }];
        r.console_tail = tail;
        r
    }

    fn cases(results: &[CaseResult]) -> Vec<SummaryCase<'_>> {
        results
            .iter()
            .map(|result| SummaryCase {
                result,
                image: None,
            })
            .collect()
    }

    #[test]
    fn timeline_and_extracted_cases_are_listed_and_escaped() {
        use crate::config::grammar::CaseStatus;
        use crate::console::{ExtractedCase, TimelineEntry, TimelineKind};
        let mut r = failed("c", Vec::new());
        r.flaky = true;
        r.timeline = vec![
            TimelineEntry {
                kind: TimelineKind::Milestone,
                name: "hv <up>".into(),
                pattern: "p".into(),
                at: Some(Duration::from_millis(1500)),
                delta: Some(Duration::from_millis(1500)),
                line_no: Some(3),
                line: None,
                optional: false,
            },
            TimelineEntry {
                kind: TimelineKind::Step,
                name: "step 2: expect".into(),
                pattern: "q".into(),
                at: None,
                delta: None,
                line_no: None,
                line: None,
                optional: false,
            },
        ];
        r.testcases = vec![ExtractedCase {
            id: "<script>x</script>".into(),
            status: CaseStatus::Fail,
            raw: Some("42".into()),
            measurement: None,
            units: None,
            line_no: Some(9),
            note: None,
            affects_verdict: true,
            extractor: 0,
        }];
        let results = [r];
        let md = render(&cases(&results), &[], 1 << 20);
        assert!(
            md.contains("timeline and test cases (flaky: passed on a retry)"),
            "{md}"
        );
        assert!(md.contains("| hv &lt;up&gt; | 1.5 s | +1.5 s |"), "{md}");
        assert!(
            md.contains("| step 2: expect | ❌ not reached | – |"),
            "{md}"
        );
        assert!(md.contains("| fail | 42 | 9 |"), "{md}");
        assert!(!md.contains("<script>x"), "{md}");
    }

    #[test]
    fn guest_text_is_escaped_everywhere() {
        let r = [failed(
            "a|b",
            vec!["x & y <z>\u{1b}".into(), "</details>".into()],
        )];
        let md = render(&cases(&r), &[], DEFAULT_BUDGET);
        assert!(md.contains("| ❌ fail | a&#124;b | "), "{md}");
        assert!(md.contains("\nCase: Arch aarch64 · Accel tcg"), "{md}");
        assert!(
            md.contains("&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt; ![x](http://e/x.png)")
        );
        assert!(md.contains("fail pattern matched: &lt;b&gt;panic&lt;/b&gt; &amp; co"));
        assert!(md.contains("x &amp; y &lt;z&gt;\n&lt;/details&gt;\n</pre>"));
        assert!(md.contains("<code>panic&#124;oops</code> (defined at configs/q.toml:7:3)"));
        assert!(!md.contains('\u{1b}'));
        assert_eq!(md.matches("<pre>").count(), md.matches("</pre>").count());
    }

    #[test]
    fn only_facts_that_differ_are_columns_and_zero_stages_are_left_out() {
        let mut a = failed("a", vec![]);
        let mut b = failed("b", vec![]);
        b.arch = Some(Arch::X86_64);
        b.flaky = true;
        for r in [&mut a, &mut b] {
            r.qemu_version = Some("10.0.2".into());
            r.stages.insert(
                0,
                StageTiming {
                    stage: Stage::Prepare,
                    duration: Duration::from_millis(20),
                    ok: true,
                },
            );
        }
        let r = [a, b];
        let md = render(&cases(&r), &[], DEFAULT_BUDGET);
        assert!(
            md.contains("| Verdict | Case | Arch | Time | Stages |\n|---|---|---|---|---|\n"),
            "{md}"
        );
        assert!(
            md.contains("| ❌ fail | b | x86_64 | 3.0 s | boot 2.0 s ✗ |"),
            "{md}"
        );
        assert!(
            md.contains("\nAll cases: Accel tcg · QEMU 10.0.2\n"),
            "{md}"
        );
        assert!(!md.contains("0.0 s"), "{md}");
        assert!(
            md.starts_with("## QEMU boot tests: 2 fail, 1 flaky\n"),
            "{md}"
        );
    }

    #[test]
    fn pattern_locations_link_to_the_file_at_the_commit() {
        let r = [failed("a", vec![])];
        let blob = Links::blob_url("https://github.com/", "o/r", "abc123");
        assert_eq!(blob.as_deref(), Some("https://github.com/o/r/blob/abc123"));
        let links = Links {
            blob,
            ..Links::default()
        };
        let md = render_linked(&cases(&r), &[], DEFAULT_BUDGET, &links);
        assert!(
            md.contains("(defined at [configs/q.toml:7:3](https://github.com/o/r/blob/abc123/configs/q.toml#L7))"),
            "{md}"
        );
        // A location outside the workspace, or an environment of the wrong shape, is plain text.
        let mut outside = failed("b", vec![]);
        if let Some(m) = outside.verdict.decided_by.as_mut() {
            m.location.as_mut().unwrap().path = "/etc/q.toml".into();
        }
        let links = Links {
            workspace: Some("/home/runner/work".into()),
            ..links
        };
        let md = render_linked(&cases(&[outside]), &[], DEFAULT_BUDGET, &links);
        assert!(md.contains("(defined at /etc/q.toml:7:3)"), "{md}");
        assert_eq!(Links::blob_url("https://github.com", "o/r)x", "abc"), None);
        assert_eq!(Links::blob_url("javascript:x", "o/r", "abc"), None);
        assert_eq!(Links::blob_url("https://github.com", "o/r", "HEAD"), None);
    }

    #[test]
    fn image_cell_shows_name_version_and_short_sha() {
        let r = [CaseResult::without_boot(
            "c",
            Verdict::new(Outcome::Pass, "ok"),
            Duration::ZERO,
        )];
        let img = ImageRef {
            name: "linux".into(),
            version: Some("0.0.1".into()),
            sha256: Some("0123456789abcdef0123".into()),
        };
        let md = render(
            &[SummaryCase {
                result: &r[0],
                image: Some(&img),
            }],
            &[],
            DEFAULT_BUDGET,
        );
        assert!(
            md.contains("Image linux&#64;0.0.1 <code>0123456789ab</code>"),
            "{md}"
        );
        assert!(md.starts_with("## QEMU boot tests: 1 pass\n"));
    }

    #[test]
    fn skipped_cases_say_why() {
        let v = Verdict::new(Outcome::Skipped, "requires vmx <kvm>");
        let r = [CaseResult::without_boot("nimbos", v, Duration::ZERO)];
        let md = render(&cases(&r), &[], DEFAULT_BUDGET);
        assert!(
            md.contains("- ⏭️ **nimbos** skipped: requires vmx &lt;kvm&gt;\n"),
            "{md}"
        );
    }

    #[test]
    fn budget_cuts_tails_first_then_rows() {
        let tail: Vec<String> = (0..60)
            .map(|i| format!("{i:04} {}", "x".repeat(300)))
            .collect();
        let r: Vec<CaseResult> = (0..8)
            .map(|i| failed(&format!("case{i}"), tail.clone()))
            .collect();
        let full = render(&cases(&r), &[], usize::MAX);
        assert!(full.len() > 100_000);

        let md = render(&cases(&r), &[], 60_000);
        assert!(md.len() <= 60_000, "{}", md.len());
        assert!(md.contains("console tails shortened"), "tails go first");
        assert!(!md.contains("cases not shown"), "all rows still fit");
        assert_eq!(md.matches("| ❌ fail |").count(), 8);

        let md = render(&cases(&r), &[], 2_500);
        assert!(md.len() <= 2_500, "{}", md.len());
        assert!(md.contains("cases not shown"), "{md}");
        assert!(md.contains("console tails shortened to 0 lines"));
        assert!(md.contains("| ❌ fail | case0 |"));
        assert!(!md.contains("| ❌ fail | case7 |"));
    }

    #[test]
    fn tiny_budget_still_respected() {
        let r = [failed("c", vec!["x".into()])];
        assert!(render(&cases(&r), &[], 100).len() <= 100);
    }

    #[test]
    fn overflow_annotations_are_listed() {
        use super::super::commands::Level;
        let over: Vec<Annotation> = (0..55)
            .map(|i| Annotation::new(Level::Error, format!("e{i} <x>")))
            .collect();
        let md = render(&[], &over, DEFAULT_BUDGET);
        assert!(md.contains("### 55 more annotations not shown"), "{md}");
        assert!(md.contains("- **error**: e0 &lt;x&gt;"));
        assert!(md.contains("- … and 5 more"));
    }

    #[test]
    fn write_summary_appends_within_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.md");
        std::fs::write(&path, "earlier\n").unwrap();
        let r = [failed("c", vec!["x".into()])];
        write_summary(&path, &cases(&r), &[], DEFAULT_BUDGET, &Links::default()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("earlier\n## QEMU boot tests: 1 fail"));

        std::fs::write(&path, "x".repeat(SUMMARY_LIMIT - 10)).unwrap();
        let err =
            write_summary(&path, &cases(&r), &[], DEFAULT_BUDGET, &Links::default()).unwrap_err();
        assert!(err.message.contains("already holds"), "{err}");
    }
}
