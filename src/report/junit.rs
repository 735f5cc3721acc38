//! JUnit XML for CI test reporters (mikepenz/action-junit-report, dorny/test-reporter,
//! EnricoMi/publish-unit-test-result-action, Jenkins): one `<testsuite>` per case, one
//! `<testcase>` per stage that did work, the verdict on the `boot` test case with the console
//! tail in the failure body, a bounded console excerpt in the suite's `system-out`.
//!
//! What real readers need (checked with them by `tests/junit_consumers.rs`):
//! - no empty test cases: a `prepare` stage that passed is no test case (a failed one is the
//!   case's failure);
//! - `time` on `<testsuites>` (the sum of the suites) and on each suite (the case's wall time,
//!   retries included), the `boot` test case's time covering every attempt;
//! - retries as `flakyFailure`/`rerunFailure` (Surefire's elements) and, for readers that do not
//!   know those, an `attempts` suite property and the `boot` test case's `system-out`, one line
//!   per attempt with its verdict and log;
//! - `file` on `<testsuite>`: the config, relative to the workspace (`GITHUB_WORKSPACE`, else the
//!   current directory), and only such relative paths in the text;
//! - a failure body that ends with a `file:line` line naming that config, so a reader that
//!   takes the last `…<file>…:<line>` in the body as the place to annotate (as
//!   mikepenz/action-junit-report does) lands there and not on a path a guest printed
//!   (`panicked at src/main.rs:1:1`).
//!
//! The file validates against the Jenkins xUnit plugin's `junit-10.xsd` unmodified (checked by
//! `tests/junit_xsd.rs` with xmllint). quick-junit always writes a `skipped` count on
//! `<testsuites>`, which that schema does not declare; without it, a reader of the root's
//! counts (test-results-parser) counts skipped cases as passed. So `<testsuites>` carries no
//! counts at all (the schema makes them optional): such readers then add up the suites, as
//! the others do anyway, and the per-suite counts say it all.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use quick_junit::{
    NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestRerun, TestSuite,
};

use crate::console::PatternKind;
use crate::environment::Runner;
use crate::error::Error;
use crate::report::{CaseResult, Stage, StageTiming};
use crate::verdict::{Outcome, Verdict};

/// Most console bytes copied into a suite's `system-out` (the end of the log).
const LOG_EXCERPT: u64 = 64 * 1024;

/// Writes the JUnit report for `results` to `path` (temp file + rename: never half a file,
/// never through a symlink). Paths in it are relative to the runner's `GITHUB_WORKSPACE`, else
/// the current directory; its `RUNNER_OS`/`RUNNER_ARCH` are properties.
pub fn write_junit(results: &[CaseResult], path: &Path, runner: &Runner) -> Result<(), Error> {
    let xml = to_xml(results, &Paths::of(runner))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create the directory", &e))?;
    crate::prepare::workdir::write_file(path, xml.as_bytes())
}

/// Where the report's paths are relative to, and the runner it ran on.
struct Paths {
    workspace: PathBuf,
    cwd: PathBuf,
    /// `RUNNER_OS`, `RUNNER_ARCH`.
    os: Option<String>,
    arch: Option<String>,
}

impl Paths {
    fn of(runner: &Runner) -> Self {
        let cwd = std::env::current_dir().unwrap_or_default();
        let workspace = runner.workspace.clone().unwrap_or_else(|| cwd.clone());
        Paths {
            workspace,
            cwd,
            os: runner.os.clone(),
            arch: runner.arch.clone(),
        }
    }

    /// `path` relative to the workspace; `None` outside it.
    fn relative(&self, path: &Path) -> Option<String> {
        crate::report::repo_path(path, Some(&self.workspace), &self.cwd)
    }

    /// `text` (a reason) with the workspace's absolute path dropped from paths inside it: an
    /// error names files by their absolute path, the report by the workspace-relative one.
    fn relative_text(&self, text: &str) -> String {
        let ws = self.workspace.to_string_lossy();
        let ws = ws.trim_end_matches('/');
        if ws.is_empty() {
            return text.to_string();
        }
        text.replace(&format!("{ws}/"), "")
    }

    /// `path` for a reader: workspace-relative when inside it, else as given.
    fn show(&self, path: &Path) -> String {
        self.relative(path)
            .unwrap_or_else(|| path.display().to_string())
    }
}

fn to_xml(results: &[CaseResult], paths: &Paths) -> Result<String, Error> {
    let mut report = Report::new("qemu-test");
    for r in results {
        report.add_test_suite(suite(r, paths));
    }
    report.set_time(results.iter().map(|r| r.duration).sum());
    let xml = report
        .to_string()
        .map_err(|e| Error::infra(format!("cannot serialize the JUnit report: {e}")))?;
    Ok(drop_root_counts(&xml))
}

/// Removes the counts from the `<testsuites …>` start tag only (see the module docs).
fn drop_root_counts(xml: &str) -> String {
    let Some(start) = xml.find("<testsuites") else {
        return xml.to_string();
    };
    let Some(len) = xml[start..].find('>') else {
        return xml.to_string();
    };
    let mut tag = xml[start..start + len].to_string();
    for attr in ["tests", "failures", "errors", "skipped"] {
        let key = format!(" {attr}=\"");
        if let Some(at) = tag.find(&key) {
            let end = tag[at + key.len()..]
                .find('"')
                .map_or(tag.len(), |i| at + key.len() + i + 1);
            tag.replace_range(at..end, "");
        }
    }
    format!("{}{tag}{}", &xml[..start], &xml[start + len..])
}

fn suite(r: &CaseResult, paths: &Paths) -> TestSuite {
    let mut suite = TestSuite::new(&r.name);
    // The case's wall time: every attempt, and the stages before them.
    suite.set_time(r.duration);
    if let Some(file) = r.config_file.as_deref().and_then(|f| paths.relative(f)) {
        suite.extra.insert("file".into(), xml_text(&file).into());
    }
    suite.add_properties(properties(r, paths));
    let carrier = verdict_carrier(r);
    for (i, timing) in r.stages.iter().enumerate() {
        if Some(i) == carrier {
            let time = timing.duration + r.attempts.iter().map(|a| a.duration).sum::<Duration>();
            suite.add_test_case(verdict_case(r, timing.stage.name(), time, paths));
        } else if timing.stage == Stage::Prepare && timing.ok {
            // Making directories and patched copies: no test of anything, and a 0.000 s pass
            // next to every boot inflates the pass count.
        } else {
            suite.add_test_case(case(
                r,
                timing.stage.name(),
                timing.duration,
                stage_status(timing),
            ));
        }
    }
    if carrier.is_none() {
        let time = r.attempts.iter().map(|a| a.duration).sum();
        suite.add_test_case(verdict_case(r, Stage::Boot.name(), time, paths));
    }
    for tc in grammar_cases(r) {
        suite.add_test_case(tc);
    }
    let log = log_excerpt(r, paths);
    if !log.is_empty() {
        suite.set_system_out(xml_text(&log));
    }
    if !r.stderr_tail.is_empty() {
        suite.set_system_err(xml_text(&r.stderr_tail.join("\n")));
    }
    suite
}

fn properties(r: &CaseResult, paths: &Paths) -> Vec<Property> {
    // Every attempt's verdict and log on one line, for readers that show properties but not
    // Surefire's flakyFailure/rerunFailure.
    let attempts = (!r.attempts.is_empty()).then(|| attempt_lines(r, paths, false).join("; "));
    [
        ("outcome", Some(r.verdict.outcome.name().to_string())),
        ("arch", r.arch.map(|a| a.name().to_string())),
        ("accel", r.accel.clone()),
        ("qemu-version", r.qemu_version.clone()),
        ("attempts", attempts),
        ("runner-os", paths.os.clone()),
        ("runner-arch", paths.arch.clone()),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| Property::new(k, xml_text(&v))))
    .collect()
}

/// One line per attempt, oldest first, the final one last: `attempt 1/2: timeout (log: …)`,
/// with the reason when `reasons`.
fn attempt_lines(r: &CaseResult, paths: &Paths, reasons: bool) -> Vec<String> {
    let total = r.attempts.len() + 1;
    let earlier = r.attempts.iter().map(|a| (&a.verdict, a.log.as_deref()));
    earlier
        .chain([(&r.verdict, r.log.as_deref())])
        .enumerate()
        .map(|(i, (v, log))| {
            let mut line = format!("attempt {}/{total}: {}", i + 1, v.outcome.name());
            if reasons && !v.reason.is_empty() {
                line.push_str(&format!(" - {}", paths.relative_text(&v.reason)));
            }
            if let Some(log) = log {
                line.push_str(&format!(" (log: {})", paths.show(log)));
            }
            line
        })
        .collect()
}

/// The test case that carries the verdict; with retries, its `system-out` lists the attempts.
fn verdict_case(r: &CaseResult, name: &str, time: Duration, paths: &Paths) -> TestCase {
    let mut tc = case(r, name, time, verdict_status(r, paths));
    if !r.attempts.is_empty() {
        let text = attempt_lines(r, paths, true).join("\n");
        tc.set_system_out(xml_text(&text));
    }
    tc
}

/// Which stage's test case carries the verdict: `boot` when it ran, else the first failed
/// stage; `None` adds a synthetic `boot` case (e.g. a skipped case that never booted).
fn verdict_carrier(r: &CaseResult) -> Option<usize> {
    let stages = &r.stages;
    stages
        .iter()
        .position(|s| s.stage == Stage::Boot)
        .or_else(|| stages.iter().position(|s| !s.ok))
}

fn case(r: &CaseResult, name: &str, time: Duration, status: TestCaseStatus) -> TestCase {
    let mut tc = TestCase::new(name, status);
    tc.set_classname(&r.name);
    tc.set_time(time);
    tc
}

/// One test case per milestone/step (time = delta to the previous entry; never reached =
/// failure `not-reached`) and one per extracted console test case (`case: <id>`).
fn grammar_cases(r: &CaseResult) -> Vec<TestCase> {
    let mut out = Vec::new();
    for e in &r.timeline {
        let status = match e.at {
            Some(_) => TestCaseStatus::success(),
            // Not reaching it does not fail the case, so it is no JUnit failure either.
            None if e.optional => {
                let mut s = TestCaseStatus::skipped();
                s.set_type("not-reached");
                s.set_message(xml_text(&format!(
                    "optional: '{}' never matched",
                    e.pattern
                )));
                s
            }
            None => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_type("not-reached");
                s.set_message(xml_text(&format!("'{}' never matched", e.pattern)));
                s
            }
        };
        let prefix = match e.kind {
            crate::console::TimelineKind::Milestone => "milestone: ",
            crate::console::TimelineKind::Step => "",
            crate::console::TimelineKind::Stage => "board: ",
        };
        let name = xml_text(&format!("{prefix}{}", e.name));
        out.push(case(r, &name, e.delta.unwrap_or_default(), status));
    }
    for c in &r.testcases {
        use crate::config::grammar::CaseStatus;
        let status = match c.status {
            CaseStatus::Pass => TestCaseStatus::success(),
            CaseStatus::Skip => TestCaseStatus::skipped(),
            // `affects_verdict = false`: reported, but no JUnit failure (the verdict ignores it).
            CaseStatus::Fail if !c.affects_verdict => {
                let mut s = TestCaseStatus::skipped();
                s.set_type(c.note.as_deref().unwrap_or("case-failed"));
                let what = match (&c.raw, c.line_no) {
                    (Some(raw), Some(l)) => format!("result '{raw}' on console line {l}"),
                    _ => c.note.clone().unwrap_or_default(),
                };
                s.set_message(xml_text(&format!(
                    "failed ({what}), but affects_verdict = false"
                )));
                s
            }
            CaseStatus::Fail => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_type(c.note.as_deref().unwrap_or("case-failed"));
                let what = match (&c.raw, c.line_no) {
                    (Some(raw), Some(l)) => format!("result '{raw}' on console line {l}"),
                    _ => c.note.clone().unwrap_or_default(),
                };
                s.set_message(xml_text(&what));
                s
            }
        };
        let name = xml_text(&format!("case: {}", c.id));
        out.push(case(r, &name, Duration::ZERO, status));
    }
    out
}

/// Earlier attempts as reruns: `flakyFailure` on a passed case, `rerunFailure` on a failed one.
fn add_attempts(r: &CaseResult, s: &mut TestCaseStatus, paths: &Paths) {
    for a in &r.attempts {
        let kind = match a.verdict.outcome {
            Outcome::Error | Outcome::Cancelled => NonSuccessKind::Error,
            _ => NonSuccessKind::Failure,
        };
        let mut rerun = TestRerun::new(kind);
        rerun.set_type(failure_type(&a.verdict));
        rerun.set_message(xml_text(&paths.relative_text(&a.verdict.reason)));
        if !a.console_tail.is_empty() {
            rerun.set_description(xml_text(&a.console_tail.join("\n")));
        }
        s.add_rerun(rerun);
    }
}

/// A stage that does not carry the verdict: passed, or failed without its own reason.
fn stage_status(t: &StageTiming) -> TestCaseStatus {
    if t.ok {
        return TestCaseStatus::success();
    }
    let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
    s.set_type("stage-failed");
    s.set_message(format!("the {} stage failed", t.stage.name()));
    s
}

/// The verdict as a JUnit status; the failure body holds the console tail.
fn verdict_status(r: &CaseResult, paths: &Paths) -> TestCaseStatus {
    let v = &r.verdict;
    let mut s = match v.outcome {
        Outcome::Pass => {
            let mut s = TestCaseStatus::success();
            add_attempts(r, &mut s, paths);
            return s;
        }
        Outcome::Skipped => TestCaseStatus::skipped(),
        Outcome::Fail | Outcome::Timeout => TestCaseStatus::non_success(NonSuccessKind::Failure),
        Outcome::Error | Outcome::Cancelled => TestCaseStatus::non_success(NonSuccessKind::Error),
    };
    s.set_type(failure_type(v));
    s.set_message(xml_text(&paths.relative_text(&v.reason)));
    add_attempts(r, &mut s, paths);
    let body = failure_body(r, paths);
    if !body.is_empty() {
        s.set_description(xml_text(&body));
    }
    s
}

/// The `type` attribute: what kind of event decided the outcome.
fn failure_type(v: &Verdict) -> &'static str {
    match v.outcome {
        Outcome::Fail => match (&v.decided_by, &v.qemu_exit) {
            (Some(m), _) if m.kind == PatternKind::Fail => "fail-pattern",
            // A success pattern matched, but a required milestone or test case was missed.
            (Some(_), _) => "unmet",
            (_, Some(_)) => "qemu-exit",
            _ => "fail",
        },
        Outcome::Timeout => "timeout",
        Outcome::Error => "error",
        Outcome::Cancelled => "cancelled",
        Outcome::Skipped => "skipped",
        Outcome::Pass => "pass",
    }
}

fn failure_body(r: &CaseResult, paths: &Paths) -> String {
    let mut body = String::new();
    let config = r.config_file.as_deref().and_then(|f| paths.relative(f));
    let mut config_line = None;
    if let Some(m) = &r.verdict.decided_by {
        body.push_str(&format!("console line {}: {}\n", m.line_no, m.line));
        if let Some(loc) = &m.location {
            let file = paths.show(&loc.path);
            if config.as_ref() == Some(&file) {
                config_line = Some(loc.line);
            }
            body.push_str(&format!(
                "pattern {:?} defined at {file}:{}:{}\n",
                m.pattern, loc.line, loc.column
            ));
        }
        body.push('\n');
    }
    if let Some(pm) = &r.verdict.postmortem {
        body.push_str("--- where the guest was ---\n");
        for line in pm.report_lines() {
            body.push_str(&paths.relative_text(&line));
            body.push('\n');
        }
        body.push('\n');
    }
    if !r.console_tail.is_empty() {
        body.push_str("--- last console lines ---\n");
        body.push_str(&r.console_tail.join("\n"));
        body.push_str("\n--- end of console ---\n");
    }
    if r.verdict.outcome == Outcome::Skipped {
        return body.trim_end().to_string();
    }
    // Last, so that a reader taking the last `…<file>…:<line>` of the body as the place to
    // annotate (mikepenz/action-junit-report, with `file` or else the classname's last
    // dot-separated part as <file>) finds this line, never a path:line the guest printed.
    match config {
        Some(file) => body.push_str(&format!("config: {file}:{}", config_line.unwrap_or(1))),
        None => body.push_str(&format!(
            "case {}:1 (no config file in the workspace)",
            r.name
        )),
    }
    body
}

/// The end of the raw console log (at most [`LOG_EXCERPT`] bytes), else the cleaned tail.
fn log_excerpt(r: &CaseResult, paths: &Paths) -> String {
    r.log
        .as_deref()
        .and_then(|p| read_tail(p, LOG_EXCERPT, paths).ok())
        .unwrap_or_else(|| r.console_tail.join("\n"))
}

fn read_tail(path: &Path, max: u64, paths: &Paths) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let start = len.saturating_sub(max);
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::with_capacity((len - start) as usize);
    f.take(max).read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    Ok(if start > 0 {
        format!(
            "[… first {start} bytes of {} omitted …]\n{text}",
            paths.show(path)
        )
    } else {
        text
    })
}

/// Text safe for XML 1.0: quick-junit drops ANSI escapes and C0 controls; this also drops the
/// noncharacters U+FFFE/U+FFFF, which XML forbids and a guest can print as valid UTF-8.
fn xml_text(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '\u{FFFE}' | '\u{FFFF}'))
        .collect()
}

/// Writes the JUnit file when the run finishes (cancelled runs included).
pub struct JunitReporter {
    path: std::path::PathBuf,
    runner: Runner,
    error: Option<Error>,
}

impl JunitReporter {
    pub fn new(path: std::path::PathBuf, runner: &Runner) -> Self {
        JunitReporter {
            path,
            runner: runner.clone(),
            error: None,
        }
    }
}

impl super::Reporter for JunitReporter {
    fn event(&mut self, event: &super::Event<'_>) {
        if let super::Event::RunFinished { results, .. } = event {
            self.error = write_junit(results, &self.path, &self.runner).err();
        }
    }

    fn finish(&mut self) -> Result<(), Error> {
        self.error.take().map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Paths relative to `/ws`, the current directory too.
    fn ws() -> Paths {
        Paths {
            workspace: PathBuf::from("/ws"),
            cwd: PathBuf::from("/ws"),
            os: None,
            arch: None,
        }
    }

    fn attempt(outcome: Outcome, reason: &str) -> crate::report::model::Attempt {
        crate::report::model::Attempt {
            verdict: Verdict::new(outcome, reason),
            duration: Duration::from_secs(1),
            console_tail: vec!["last <line>".into()],
            log: None,
        }
    }

    #[test]
    fn flaky_pass_has_flaky_failures_and_failed_case_rerun_failures() {
        let mut r =
            CaseResult::without_boot("c", Verdict::new(Outcome::Pass, "ok"), Duration::ZERO);
        r.flaky = true;
        r.attempts = vec![attempt(Outcome::Timeout, "timed out: step 2")];
        let xml = to_xml(&[r], &ws()).unwrap();
        assert!(
            xml.contains(r#"<flakyFailure message="timed out: step 2" type="timeout">"#),
            "{xml}"
        );
        let mut r =
            CaseResult::without_boot("d", Verdict::new(Outcome::Timeout, "again"), Duration::ZERO);
        r.attempts = vec![attempt(Outcome::Error, "QEMU missing")];
        let xml = to_xml(&[r], &ws()).unwrap();
        assert!(
            xml.contains(r#"<rerunError message="QEMU missing" type="error">"#),
            "{xml}"
        );
    }

    #[test]
    fn milestones_and_extracted_cases_become_test_cases() {
        use crate::console::{ExtractedCase, TimelineEntry, TimelineKind};
        let mut r = CaseResult::without_boot("c", Verdict::new(Outcome::Fail, "x"), Duration::ZERO);
        let entry = |name: &str, at: Option<u64>| TimelineEntry {
            kind: TimelineKind::Milestone,
            name: name.into(),
            pattern: "p".into(),
            at: at.map(Duration::from_secs),
            delta: at.map(Duration::from_secs),
            line_no: at,
            line: None,
            optional: false,
        };
        r.timeline = vec![entry("hv up", Some(2)), entry("guest up", None)];
        r.testcases = vec![ExtractedCase::failed("exit_code", "42", 9)];
        let xml = to_xml(&[r], &ws()).unwrap();
        for needle in [
            r#"name="milestone: hv up""#,
            r#"name="milestone: guest up""#,
            r#"type="not-reached""#,
            r#"name="case: exit_code""#,
            "on console line 9",
            r#"type="case-failed""#,
        ] {
            assert!(xml.contains(needle), "{needle} missing: {xml}");
        }
    }

    #[test]
    fn root_counts_are_dropped_and_suites_keep_theirs() {
        let mut r = CaseResult::without_boot(
            "c",
            Verdict::new(Outcome::Skipped, "needs kvm"),
            Duration::ZERO,
        );
        r.name = "skipped=\"1\" <c>".into();
        let xml = to_xml(&[r], &ws()).unwrap();
        let root = xml.lines().find(|l| l.starts_with("<testsuites")).unwrap();
        assert_eq!(root, r#"<testsuites name="qemu-test" time="0.000">"#);
        assert!(
            xml.contains(
                r#"<testsuite name="skipped=&quot;1&quot; &lt;c&gt;" tests="1" skipped="1""#
            ),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<skipped message="needs kvm" type="skipped"/>"#),
            "{xml}"
        );
    }

    #[test]
    fn verdict_goes_on_boot_and_types_name_the_cause() {
        let r = CaseResult::builder(
            "c",
            Outcome::Fail,
            "QEMU exited with status 0 before the success pattern",
        )
        .qemu_exit(crate::verdict::QemuExit {
            code: Some(0),
            signal: None,
            killed_by_runner: false,
        })
        .duration(Duration::from_secs(2))
        .stage(Stage::Probe, Duration::from_millis(100), true)
        .stage(Stage::Boot, Duration::from_secs(1), false)
        .tail(["hello", "bye"])
        .build();
        let xml = to_xml(&[r], &ws()).unwrap();
        assert!(
            xml.contains(r#"<testcase name="probe" classname="c" time="0.100"/>"#),
            "{xml}"
        );
        assert!(xml.contains(r#"type="qemu-exit""#), "{xml}");
        assert!(
            xml.contains(
                "--- last console lines ---\nhello\nbye\n--- end of console ---\n\
                 case c:1 (no config file in the workspace)</failure>"
            ),
            "{xml}"
        );
    }

    #[test]
    fn paths_are_workspace_relative_and_the_body_ends_on_the_config_line() {
        use crate::console::PatternKind;
        let line = "panicked at src/main.rs:1:1";
        let r = CaseResult::builder("c", Outcome::Fail, "see /ws/qemu-test-out/c.log and /wsx/y")
            .decided_by(PatternKind::Fail, "panicked", 1, line, Duration::ZERO)
            .pattern_at("/ws/configs/q.toml", 3, 5)
            .config_file("/ws/configs/q.toml")
            .tail([line])
            .build();
        let xml = to_xml(&[r], &ws()).unwrap();
        for needle in [
            r#"file="configs/q.toml""#,
            r#"message="see qemu-test-out/c.log and /wsx/y""#,
            "defined at configs/q.toml:3:5\n",
            "--- end of console ---\nconfig: configs/q.toml:3</failure>",
        ] {
            assert!(xml.contains(needle), "{needle} missing: {xml}");
        }
        assert!(!xml.contains("/ws/"), "{xml}");
    }

    #[test]
    fn a_passed_prepare_stage_is_no_test_case_and_a_failed_one_carries_the_error() {
        let stage = |stage, ok| StageTiming {
            stage,
            duration: Duration::from_millis(5),
            ok,
        };
        let mut r =
            CaseResult::without_boot("c", Verdict::new(Outcome::Pass, "ok"), Duration::ZERO);
        r.stages = vec![stage(Stage::Prepare, true), stage(Stage::Boot, true)];
        let xml = to_xml(&[r], &ws()).unwrap();
        assert!(!xml.contains(r#"name="prepare""#), "{xml}");
        assert!(xml.contains(r#"tests="1""#), "{xml}");
        let v = Verdict::new(Outcome::Error, "prepare stage failed: disk full");
        let mut r = CaseResult::without_boot("c", v, Duration::ZERO);
        r.stages = vec![stage(Stage::Prepare, false)];
        let xml = to_xml(&[r], &ws()).unwrap();
        assert!(
            xml.contains(r#"<testcase name="prepare" classname="c" time="0.005">"#)
                && xml
                    .contains(r#"<error message="prepare stage failed: disk full" type="error">"#),
            "{xml}"
        );
    }

    #[test]
    fn log_excerpt_keeps_the_end_of_a_long_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("console.log");
        let mut data = vec![b'a'; 100_000];
        data.extend_from_slice(b"THE END\xff");
        std::fs::write(&log, &data).unwrap();
        let mut r = CaseResult::without_boot("c", Verdict::new(Outcome::Pass, ""), Duration::ZERO);
        r.log = Some(log);
        let text = log_excerpt(&r, &ws());
        assert!(text.starts_with("[… first "));
        assert!(text.ends_with("THE END\u{FFFD}"));
        assert!(text.len() < 66 * 1024);
    }

    #[test]
    fn xml_text_drops_noncharacters() {
        assert_eq!(xml_text("a\u{FFFE}b\u{FFFF}c\u{FFFD}\n"), "abc\u{FFFD}\n");
    }
}
