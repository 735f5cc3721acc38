//! The step summary: a headline with the counts, a Markdown table with one row per case, and a
//! section per case under its own heading: for a failure the reason with the deciding line said
//! once (marked in the numbered console tail), where its pattern is defined; a chart of the boot
//! ([`super::gantt`]); the retries with their verdicts; where the log is in the run's artifact;
//! the timeline and test cases. Appended to the file named by `GITHUB_STEP_SUMMARY`.
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
//! a byte budget: it shortens console tails first, then drops the charts, then the list of
//! overflow annotations, then case rows from the end, and says so in a visible note.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::commands::Annotation;
use super::gantt;
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

/// Where the summary links: a pattern's config location to the file at the commit under
/// test, and a case's console log to the run's log artifact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Links {
    /// `GITHUB_SERVER_URL/GITHUB_REPOSITORY/blob/GITHUB_SHA`, checked by [`Links::blob_url`].
    pub blob: Option<String>,
    /// `GITHUB_WORKSPACE`: locations are made relative to it; outside it, no link.
    pub workspace: Option<PathBuf>,
    /// What relative locations are relative to.
    pub cwd: PathBuf,
    /// The log artifact the action uploads after this step, checked by [`Links::artifact`].
    pub artifact: Option<ArtifactLink>,
}

/// The run's log artifact: its name (as `action.yml` uploads it) and the run page's
/// artifacts list (actions/upload-artifact runs after the summary is written, so the
/// artifact's own URL is not known yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactLink {
    pub name: String,
    /// `GITHUB_SERVER_URL/GITHUB_REPOSITORY/actions/runs/GITHUB_RUN_ID#artifacts`.
    pub url: String,
}

impl Links {
    /// The blob URL of a commit, or `None` when a part is missing or not of GitHub's shape (a
    /// value that could break out of a Markdown link is never used).
    pub fn blob_url(server: &str, repository: &str, sha: &str) -> Option<String> {
        let sha_ok = !sha.is_empty() && sha.chars().all(|c| c.is_ascii_hexdigit());
        let repo = repo_url(server, repository)?;
        sha_ok.then(|| format!("{repo}/blob/{sha}"))
    }

    /// The log artifact `name` of run `run_id`, or `None` when a part is missing or not of
    /// GitHub's shape (checked like [`Links::blob_url`]; the name as `action prepare` makes it).
    pub fn artifact(
        server: &str,
        repository: &str,
        run_id: &str,
        name: &str,
    ) -> Option<ArtifactLink> {
        let id_ok = !run_id.is_empty() && run_id.bytes().all(|b| b.is_ascii_digit());
        let name_ok = !name.is_empty()
            && name.len() <= 200
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        let repo = repo_url(server, repository)?;
        (id_ok && name_ok).then(|| ArtifactLink {
            name: name.to_string(),
            url: format!("{repo}/actions/runs/{run_id}#artifacts"),
        })
    }

    /// `path:line:col`, as a link to the line when the file is inside the workspace.
    fn location(&self, loc: &Location) -> String {
        let rel = crate::report::repo_path(&loc.path, self.workspace.as_deref(), &self.cwd);
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

/// `server/owner/name`, when `server` is an https URL and `repository` is `owner/name`, both
/// of characters that cannot end a Markdown link.
fn repo_url(server: &str, repository: &str) -> Option<String> {
    let server = server.trim_end_matches('/');
    let host_ok = server.starts_with("https://")
        && server.len() > 8
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
    (host_ok && repo_ok).then(|| format!("{server}/{repository}"))
}

/// How much is left out to meet the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cut {
    tail_lines: usize,
    charts: bool,
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
    super::append(path, "the step summary", &markdown)
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
        charts: true,
        show_overflow: true,
        rows: cases.len(),
    };
    let fits = |cut: &Cut| render_with(cases, overflow, cut, full, links).len() <= budget;
    let mut cut = full;
    while !fits(&cut) && cut.tail_lines > 0 {
        cut.tail_lines /= 2;
    }
    if !fits(&cut) {
        cut.charts = false;
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
        case_section(&mut md, case.result, cut, links);
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
        let _ = writeln!(
            md,
            " {} | {} |",
            crate::duration::tenths(r.duration),
            stages_cell(r)
        );
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
/// block under its heading; guest text is escaped like every other cell.
fn grammar_details(md: &mut String, r: &CaseResult) {
    let what = match (r.timeline.is_empty(), r.testcases.is_empty()) {
        (true, true) => return,
        (false, true) => "Timeline",
        (true, false) => "Test cases",
        (false, false) => "Timeline and test cases",
    };
    let _ = writeln!(md, "<details><summary>{what}</summary>\n");
    if !r.timeline.is_empty() {
        md.push_str("| Milestone / step | At | Δ |\n|---|---|---|\n");
        for e in &r.timeline {
            let (at, d) = match (e.at, e.delta) {
                (Some(a), Some(d)) => (
                    crate::duration::tenths(a),
                    format!("+{}", crate::duration::tenths(d)),
                ),
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
    if !cut.charts {
        what.push("boot charts left out".to_string());
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

/// Everything about one case under its own heading: for a failure the reason (the deciding
/// line said once: it is marked in the console tail, not repeated) and where its pattern is
/// defined; the chart of its boot; the retries with each attempt's verdict; where its log is;
/// the timeline and test cases. A case with none of these (e.g. skipped) has no section.
fn case_section(md: &mut String, r: &CaseResult, cut: &Cut, links: &Links) {
    let v = &r.verdict;
    let failed = is_failure(v.outcome);
    let chart = cut.charts.then(|| gantt::chart(r)).flatten();
    if !failed
        && chart.is_none()
        && r.attempts.is_empty()
        && r.timeline.is_empty()
        && r.testcases.is_empty()
    {
        return;
    }
    let flaky = if r.flaky { " (flaky)" } else { "" };
    let _ = writeln!(
        md,
        "### {} {} — {}{flaky}\n",
        emoji(v.outcome),
        inline(&r.name),
        v.outcome.name()
    );
    let tail = Tail::of(r, cut.tail_lines);
    if failed {
        let reason = v.reason_beside_line(|n| tail.shows(n));
        let _ = writeln!(md, "{}\n", inline(&reason));
        if let Some(loc) = v.decided_by.as_ref().and_then(|m| m.location.as_ref()) {
            let _ = writeln!(md, "The pattern is defined at {}.\n", links.location(loc));
        }
    }
    if let Some(pm) = &v.postmortem {
        md.push_str("Where the guest was (vCPUs stopped before QEMU was):\n\n");
        pre(md, pm.report_lines().iter().map(String::as_str));
    }
    if let Some(chart) = chart {
        md.push_str(&chart);
    }
    if failed {
        tail.write(md, marked_line(v));
        if let Some(m) = &v.decided_by
            && !tail.shows(m.line_no)
            && !v.reason.contains(m.line.trim_end())
        {
            let _ = writeln!(md, "Console line {}:\n", m.line_no);
            pre(md, std::iter::once(m.line.as_str()));
        }
        if r.log_dropped_bytes > 0 {
            let _ = writeln!(
                md,
                "The console log file is capped (max_log_size): {} of {} bytes were dropped \
                 between its head and its tail; the verdict saw every byte.\n",
                r.log_dropped_bytes, r.console_bytes
            );
        }
    }
    attempts(md, r);
    if failed || !r.attempts.is_empty() {
        log_line(md, r, links);
    }
    grammar_details(md, r);
    if failed && !r.stderr_tail.is_empty() && cut.tail_lines > 0 {
        let lines = &r.stderr_tail[r.stderr_tail.len().saturating_sub(cut.tail_lines)..];
        md.push_str("<details><summary>QEMU stderr</summary>\n\n");
        pre(md, lines.iter().map(String::as_str));
        md.push_str("</details>\n\n");
    }
}

/// The console line a failure's reason is about: the one it quotes, else the deciding match.
fn marked_line(v: &crate::verdict::Verdict) -> Option<u64> {
    v.quote
        .as_ref()
        .map(|q| q.line_no)
        .or(v.decided_by.as_ref().map(|m| m.line_no))
}

/// The last console lines shown, with their numbers on the console when known.
struct Tail<'a> {
    lines: &'a [String],
    total: u64,
    /// Number of the first line shown; `None` when the count does not cover the tail.
    first: Option<u64>,
}

impl<'a> Tail<'a> {
    fn of(r: &'a CaseResult, most: usize) -> Self {
        let lines = &r.console_tail[r.console_tail.len().saturating_sub(most)..];
        let n = lines.len() as u64;
        let first = (r.console_lines >= n && n > 0).then(|| r.console_lines - n + 1);
        Tail {
            lines,
            total: r.console_lines,
            first,
        }
    }

    fn shows(&self, line_no: u64) -> bool {
        self.first
            .is_some_and(|f| (f..f + self.lines.len() as u64).contains(&line_no))
    }

    /// The lines, open, numbered, with `marked` in bold behind a `▶`.
    fn write(&self, md: &mut String, marked: Option<u64>) {
        if self.lines.is_empty() {
            return;
        }
        let n = self.lines.len();
        let what = match (n, self.total > n as u64) {
            (1, false) => "The console line".to_string(),
            (1, true) => format!("The last of {} console lines", self.total),
            (_, false) => format!("The {n} console lines"),
            (_, true) => format!("Last {n} of {} console lines", self.total),
        };
        let _ = writeln!(md, "<details open><summary>{what}</summary>\n");
        let Some(first) = self.first else {
            pre(md, self.lines.iter().map(String::as_str));
            md.push_str("</details>\n\n");
            return;
        };
        let width = (first + n as u64 - 1).to_string().len();
        md.push_str("<pre>\n");
        for (i, line) in self.lines.iter().enumerate() {
            let no = first + i as u64;
            if Some(no) == marked {
                let _ = write!(md, "<b>▶ {no:>width$} │ ");
                pre_text(md, line);
                md.push_str("</b>\n");
            } else {
                let _ = write!(md, "  {no:>width$} │ ");
                pre_text(md, line);
                md.push('\n');
            }
        }
        md.push_str("</pre>\n\n</details>\n\n");
    }
}

/// Each earlier attempt's verdict, reason and log, then this result's.
fn attempts(md: &mut String, r: &CaseResult) {
    if r.attempts.is_empty() {
        return;
    }
    let retries = r.attempts.len();
    let s = if retries == 1 { "y" } else { "ies" };
    let _ = writeln!(md, "{} attempts ({retries} retr{s}):\n", retries + 1);
    let boot = r
        .stages
        .iter()
        .rev()
        .find(|s| s.stage == crate::report::Stage::Boot)
        .map(|s| s.duration);
    let earlier = r.attempts.iter().map(|a| {
        (
            &a.verdict,
            Some(a.duration),
            cell(&a.verdict.reason),
            &a.log,
        )
    });
    let this = (&r.verdict, boot, "this result".to_string(), &r.log);
    for (i, (v, time, what, log)) in earlier.chain([this]).enumerate() {
        let time = time
            .map(|d| format!(" in {}", crate::duration::tenths(d)))
            .unwrap_or_default();
        let _ = writeln!(
            md,
            "{}. {} {}{time}: {what}{}",
            i + 1,
            emoji(v.outcome),
            v.outcome.name(),
            log_name(log.as_deref())
        );
    }
    md.push('\n');
}

/// ` — log <code>name</code>`, the log's file name (as in the artifact), or nothing.
fn log_name(log: Option<&Path>) -> String {
    log.and_then(Path::file_name)
        .map(|n| format!(" — log <code>{}</code>", cell(&n.to_string_lossy())))
        .unwrap_or_default()
}

/// Where the case's console log is: in the run's log artifact when the action uploads one.
fn log_line(md: &mut String, r: &CaseResult, links: &Links) {
    let (Some(a), Some(name)) = (&links.artifact, r.log.as_deref().and_then(Path::file_name))
    else {
        return;
    };
    let _ = writeln!(
        md,
        "Console log <code>{}</code>: in the artifact [{}]({}) of this run.\n",
        cell(&name.to_string_lossy()),
        inline(&a.name),
        a.url
    );
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

fn stages_cell(r: &CaseResult) -> String {
    let parts: Vec<String> = r
        .stages
        .iter()
        .filter(|s| gantt::stage_shown(s))
        .map(|s| {
            let mark = if s.ok { "" } else { " ✗" };
            format!(
                "{} {}{mark}",
                s.stage.name(),
                crate::duration::tenths(s.duration)
            )
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

/// Untrusted lines in a `<pre>` block, each as [`pre_text`].
fn pre<'a>(md: &mut String, lines: impl Iterator<Item = &'a str>) {
    md.push_str("<pre>\n");
    for line in lines {
        pre_text(md, line);
        md.push('\n');
    }
    md.push_str("</pre>\n\n");
}

/// One untrusted line for a `<pre>` block: HTML-escaped, clipped to [`LINE_CHARS`].
fn pre_text(md: &mut String, line: &str) {
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
    use std::time::Duration;

    use super::*;
    use crate::arch::Arch;
    use crate::console::{MatchInfo, PatternKind};
    use crate::report::CaseBuilder;
    use crate::report::{Stage, StageTiming};
    use crate::verdict::Verdict;

    fn failed(name: &str, tail: Vec<String>) -> CaseResult {
        CaseResult::builder(
            name,
            Outcome::Fail,
            "fail pattern matched: <b>panic</b> & co",
        )
        .decided_by(
            PatternKind::Fail,
            "panic|oops",
            42,
            "</pre><script>alert(1)</script> ![x](http://e/x.png)",
            Duration::from_millis(2500),
        )
        .pattern_at("configs/q.toml", 7, 3)
        .duration(Duration::from_secs(3))
        .ran_on(Arch::Aarch64, "tcg")
        .stage(Stage::Boot, Duration::from_secs(2), false)
        .tail(tail)
        .build()
    }

    /// A case failed by a fail pattern on console line `line_no` of `lines`, its verdict
    /// made by the real rules (`verdict::decide`), the tail the last `tail` lines.
    fn decided(name: &str, lines: u64, line_no: u64, tail: usize) -> CaseResult {
        use crate::console::Decision;
        use crate::verdict::{End, Facts, decide};
        let text = |n: u64| format!("line {n} <says> panicked at x");
        let info = MatchInfo {
            kind: PatternKind::Fail,
            index: 0,
            pattern: "panicked at".into(),
            location: None,
            line_no,
            line: text(line_no),
            at: Duration::from_millis(1500),
        };
        let facts = Facts {
            elapsed: Duration::from_secs(2),
            last_line: Some((lines, text(lines))),
            ..Facts::new(End::Decided(Decision::Fail(info)), &[])
        };
        CaseBuilder::with_verdict(name, decide(&facts))
            .duration(Duration::from_secs(3))
            .stage(Stage::Boot, Duration::from_secs(2), false)
            .console_lines(lines)
            .tail((lines + 1 - tail as u64..=lines).map(text))
            .log("/out/c.log")
            .build()
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
    fn a_failure_says_where_each_vcpu_and_guest_frame_was_escaped() {
        use crate::postmortem::backtrace::{GuestBacktrace, GuestFrame};
        use crate::postmortem::{Postmortem, VcpuState};
        let mut r = failed("c", Vec::new());
        r.verdict.postmortem = Some(Postmortem {
            vcpus: vec![VcpuState {
                index: 1,
                arch: "aarch64".into(),
                pc: 0x4008_0090,
                sp: Some(0x4008_40a0),
                lr: None,
                mode: Some("EL2".into()),
                halted: Some(true),
                pc_at: None,
                lr_at: None,
                registers: Default::default(),
            }],
            backtraces: vec![GuestBacktrace {
                format: "tgoskits",
                kind: Some("<panic>".into()),
                arch: None,
                frames: vec![GuestFrame {
                    label: "0".into(),
                    address: Some("0x1000".into()),
                    text: "BT 0 ip=0x1000 <b>".into(),
                    at: None,
                }],
                errors: Vec::new(),
            }],
            ..Default::default()
        });
        let md = render(&cases(&[r]), &[], 1 << 20);
        assert!(
            md.contains("vCPU1 EL2 halted: pc 0x40080090 (no symbols); sp 0x400840a0"),
            "{md}"
        );
        assert!(
            md.contains("guest backtrace (tgoskits kind=&lt;panic&gt;):"),
            "{md}"
        );
        assert!(md.contains("  BT 0 ip=0x1000 &lt;b&gt;"), "{md}");
    }

    #[test]
    fn timeline_and_extracted_cases_are_listed_and_escaped() {
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
        r.testcases = vec![ExtractedCase::failed("<script>x</script>", "42", 9)];
        let results = [r];
        let md = render(&cases(&results), &[], 1 << 20);
        assert!(md.contains("### ❌ c — fail (flaky)\n"), "{md}");
        assert!(
            md.contains("<details><summary>Timeline and test cases</summary>"),
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
        assert!(
            md.contains("\nThe pattern is defined at configs/q.toml:7:3.\n"),
            "{md}"
        );
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
            md.contains("The pattern is defined at [configs/q.toml:7:3](https://github.com/o/r/blob/abc123/configs/q.toml#L7).\n"),
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
        assert!(
            md.contains("The pattern is defined at /etc/q.toml:7:3.\n"),
            "{md}"
        );
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
    fn the_deciding_line_is_said_once_and_marked_in_the_tail() {
        let deciding = "line 8 &lt;says&gt; panicked at x";
        let r = [decided("c", 10, 8, 5)];
        let md = render(&cases(&r), &[], DEFAULT_BUDGET);
        assert_eq!(md.matches(deciding).count(), 1, "{md}");
        assert!(
            md.contains("fail pattern &#39;panicked at&#39; matched console line 8 at 1.500s\n"),
            "{md}"
        );
        assert!(
            md.contains("<details open><summary>Last 5 of 10 console lines</summary>"),
            "{md}"
        );
        assert!(
            md.contains(&format!("\n<b>▶  8 │ {deciding}</b>\n")),
            "{md}"
        );
        assert!(
            md.contains("\n  10 │ line 10 &lt;says&gt; panicked at x\n"),
            "{md}"
        );

        // The deciding line above the tail: the reason keeps it, still once.
        let r = [decided("c", 10, 3, 5)];
        let md = render(&cases(&r), &[], DEFAULT_BUDGET);
        assert_eq!(md.matches("line 3 &lt;says&gt;").count(), 1, "{md}");
        assert!(md.contains("console line 3 at 1.500s: line 3"), "{md}");
        assert!(!md.contains("<b>▶"), "{md}");

        // No console tail: the reason says it.
        let r = [decided("c", 10, 10, 0)];
        let md = render(&cases(&r), &[], DEFAULT_BUDGET);
        assert_eq!(md.matches("line 10 &lt;says&gt;").count(), 1, "{md}");
    }

    #[test]
    fn retries_are_listed_with_each_verdict_and_log() {
        use crate::report::model::Attempt;
        let mut r = decided("c", 10, 10, 3);
        r.attempts = vec![
            Attempt {
                verdict: Verdict::new(Outcome::Timeout, "timed out after 3s: <nothing>"),
                duration: Duration::from_secs(3),
                console_tail: vec![],
                log: Some("/out/c.attempt1.log".into()),
            },
            Attempt {
                verdict: Verdict::new(Outcome::Error, "QEMU died"),
                duration: Duration::from_millis(400),
                console_tail: vec![],
                log: None,
            },
        ];
        let results = [r];
        let md = render(&cases(&results), &[], DEFAULT_BUDGET);
        assert!(
            md.contains(
                "3 attempts (2 retries):\n\n\
                 1. ⏱️ timeout in 3.0 s: timed out after 3s: &lt;nothing&gt; — log <code>c.attempt1.log</code>\n\
                 2. 💥 error in 0.4 s: QEMU died\n\
                 3. ❌ fail in 2.0 s: this result — log <code>c.log</code>\n"
            ),
            "{md}"
        );
        // A flaky pass has its own section with the retries, though nothing failed.
        let mut p =
            CaseResult::without_boot("p", Verdict::new(Outcome::Pass, "ok"), Duration::ZERO);
        p.flaky = true;
        p.attempts = results[0].attempts[..1].to_vec();
        let md = render(&cases(&[p]), &[], DEFAULT_BUDGET);
        assert!(
            md.contains("### ✅ p — pass (flaky)\n\n2 attempts (1 retry):\n"),
            "{md}"
        );
        assert!(md.contains("2. ✅ pass: this result\n"), "{md}");
    }

    #[test]
    fn the_log_artifact_is_linked_only_with_a_valid_environment() {
        let a = Links::artifact(
            "https://github.com/",
            "o/r",
            "4242",
            "qemu-test-x-job-1-abc123",
        );
        assert_eq!(
            a,
            Some(ArtifactLink {
                name: "qemu-test-x-job-1-abc123".into(),
                url: "https://github.com/o/r/actions/runs/4242#artifacts".into(),
            })
        );
        let r = [decided("c", 10, 10, 3)];
        let links = Links {
            artifact: a,
            ..Links::default()
        };
        let md = render_linked(&cases(&r), &[], DEFAULT_BUDGET, &links);
        assert!(
            md.contains(
                "Console log <code>c.log</code>: in the artifact \
                 [qemu-test-x-job-1-abc123](https://github.com/o/r/actions/runs/4242#artifacts) of this run.\n"
            ),
            "{md}"
        );
        let md = render(&cases(&r), &[], DEFAULT_BUDGET);
        assert!(!md.contains("artifact"), "{md}");
        for (server, repo, id, name) in [
            ("http://github.com", "o/r", "1", "n"),
            ("https://github.com", "o/r/x", "1", "n"),
            ("https://github.com", "o/r", "1a", "n"),
            ("https://github.com", "o/r", "", "n"),
            ("https://github.com", "o/r", "1", ""),
            ("https://github.com", "o/r", "1", "n](javascript:x)"),
            ("https://github.com", "o/r", "1", "a b"),
            ("https://", "o/r", "1", "n"),
        ] {
            assert_eq!(
                Links::artifact(server, repo, id, name),
                None,
                "{server} {repo} {id} {name}"
            );
        }
    }

    #[test]
    fn each_case_has_its_sections_under_its_own_heading() {
        use crate::console::{TimelineEntry, TimelineKind};
        let milestone = |name: &str| TimelineEntry {
            kind: TimelineKind::Milestone,
            name: name.into(),
            pattern: "p".into(),
            at: Some(Duration::from_millis(500)),
            delta: Some(Duration::from_millis(500)),
            line_no: Some(1),
            line: None,
            optional: false,
        };
        let mut a = decided("a", 10, 10, 3);
        a.timeline = vec![milestone("first-of-a")];
        let mut b =
            CaseResult::without_boot("b", Verdict::new(Outcome::Pass, "ok"), Duration::ZERO);
        b.stages = a.stages.clone();
        b.stages[0].ok = true;
        b.timeline = vec![milestone("first-of-b"), milestone("bad: name # %% ;")];
        let skipped =
            CaseResult::without_boot("s", Verdict::new(Outcome::Skipped, "why"), Duration::ZERO);
        let r = [a, b, skipped];
        let md = render(&cases(&r), &[], DEFAULT_BUDGET);
        let at = |s: &str| md.find(s).unwrap_or_else(|| panic!("{s} missing:\n{md}"));
        let (ha, hb) = (at("### ❌ a — fail\n"), at("### ✅ b — pass\n"));
        assert!(ha < hb);
        for (name, heading, next) in [("first-of-a", ha, hb), ("first-of-b", hb, md.len())] {
            // The chart and the timeline table both name it, both under its case.
            let hits: Vec<usize> = md.match_indices(name).map(|(i, _)| i).collect();
            assert_eq!(hits.len(), 2, "{name}:\n{md}");
            assert!(
                hits.iter().all(|&i| heading < i && i < next),
                "{name}:\n{md}"
            );
        }
        assert_eq!(md.matches("```mermaid\n").count(), 2, "{md}");
        for block in md.split("```mermaid\n").skip(1) {
            let block = format!("```mermaid\n{}```\n", block.split("```").next().unwrap());
            super::super::gantt::tests::assert_well_formed(&block);
        }
        assert!(
            md.contains("    ⚑ bad∶ name ♯ ％％ ⁏ at 0.5 s :active,"),
            "{md}"
        );
        assert!(
            !md.contains("### ⏭️"),
            "a skipped case has no section:\n{md}"
        );
    }

    #[test]
    fn charts_go_after_tails_when_the_budget_is_short() {
        use crate::console::{TimelineEntry, TimelineKind};
        let r: Vec<CaseResult> = (0..20)
            .map(|i| {
                let mut r = decided(&format!("case{i}"), 60, 60, 60);
                r.timeline = (0..20)
                    .map(|j| TimelineEntry {
                        kind: TimelineKind::Step,
                        name: format!("step {j} of a long and winding boot"),
                        pattern: "p".into(),
                        at: Some(Duration::from_millis(100 * j)),
                        delta: Some(Duration::from_millis(100)),
                        line_no: Some(j),
                        line: None,
                        optional: false,
                    })
                    .collect();
                r
            })
            .collect();
        let full = render(&cases(&r), &[], usize::MAX);
        assert_eq!(full.matches("```mermaid").count(), 20);
        let md = render(&cases(&r), &[], 30_000);
        assert!(md.len() <= 30_000);
        assert!(
            md.contains("console tails shortened to 0 lines; boot charts left out"),
            "{md}"
        );
        assert!(!md.contains("```mermaid"));
        assert_eq!(md.matches("| ❌ fail |").count(), 20);
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
