//! JUnit XML for CI test reporters (mikepenz/action-junit-report, dorny/test-reporter,
//! EnricoMi/publish-unit-test-result-action, Jenkins): one `<testsuite>` per case, one
//! `<testcase>` per stage that ran, the verdict on the `boot` test case with the console tail in
//! the failure body, a bounded console excerpt in the suite's `system-out`.
//!
//! The file validates against the Jenkins xUnit plugin's `junit-10.xsd` unmodified (checked by
//! `tests/junit_xsd.rs` with xmllint). quick-junit always writes a `skipped` count on
//! `<testsuites>`, which that schema does not declare, so it is removed from the serialized
//! root element: the per-suite `skipped` counts (which the schema allows) carry the same
//! information, and the reporters above read those.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use quick_junit::{
    NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestRerun, TestSuite,
};

use crate::console::PatternKind;
use crate::error::Error;
use crate::report::{CaseResult, Stage, StageTiming};
use crate::verdict::{Outcome, Verdict};

/// Most console bytes copied into a suite's `system-out` (the end of the log).
const LOG_EXCERPT: u64 = 64 * 1024;

/// Writes the JUnit report for `results` to `path` (temp file + rename: never half a file,
/// never through a symlink).
pub fn write_junit(results: &[CaseResult], path: &Path) -> Result<(), Error> {
    let xml = to_xml(results)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create the directory", &e))?;
    crate::prepare::workdir::write_file(path, xml.as_bytes())
}

fn to_xml(results: &[CaseResult]) -> Result<String, Error> {
    let mut report = Report::new("qemu-test");
    for r in results {
        report.add_test_suite(suite(r));
    }
    let xml = report
        .to_string()
        .map_err(|e| Error::infra(format!("cannot serialize the JUnit report: {e}")))?;
    Ok(drop_root_skipped(&xml))
}

/// Removes the `skipped="N"` attribute from the `<testsuites …>` start tag only.
fn drop_root_skipped(xml: &str) -> String {
    let Some(start) = xml.find("<testsuites") else {
        return xml.to_string();
    };
    let Some(len) = xml[start..].find('>') else {
        return xml.to_string();
    };
    let tag = &xml[start..start + len];
    let Some(at) = tag.find(" skipped=\"") else {
        return xml.to_string();
    };
    let value_end = tag[at + 10..]
        .find('"')
        .map_or(tag.len(), |i| at + 10 + i + 1);
    let cleaned = format!("{}{}", &tag[..at], &tag[value_end..]);
    format!("{}{cleaned}{}", &xml[..start], &xml[start + len..])
}

fn suite(r: &CaseResult) -> TestSuite {
    let mut suite = TestSuite::new(&r.name);
    suite.set_time(r.duration);
    suite.add_properties(properties(r));
    let carrier = verdict_carrier(r);
    for (i, timing) in r.stages.iter().enumerate() {
        let status = if Some(i) == carrier {
            verdict_status(r)
        } else {
            stage_status(timing)
        };
        suite.add_test_case(case(r, timing.stage.name(), timing.duration, status));
    }
    if carrier.is_none() {
        suite.add_test_case(case(
            r,
            Stage::Boot.name(),
            std::time::Duration::ZERO,
            verdict_status(r),
        ));
    }
    for tc in grammar_cases(r) {
        suite.add_test_case(tc);
    }
    let log = log_excerpt(r);
    if !log.is_empty() {
        suite.set_system_out(xml_text(&log));
    }
    if !r.stderr_tail.is_empty() {
        suite.set_system_err(xml_text(&r.stderr_tail.join("\n")));
    }
    suite
}

fn properties(r: &CaseResult) -> Vec<Property> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    [
        ("outcome", Some(r.verdict.outcome.name().to_string())),
        ("arch", r.arch.map(|a| a.name().to_string())),
        ("accel", r.accel.clone()),
        ("qemu-version", r.qemu_version.clone()),
        ("runner-os", env("RUNNER_OS")),
        ("runner-arch", env("RUNNER_ARCH")),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| Property::new(k, xml_text(&v))))
    .collect()
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

fn case(r: &CaseResult, name: &str, time: std::time::Duration, status: TestCaseStatus) -> TestCase {
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
        };
        let name = xml_text(&format!("{prefix}{}", e.name));
        out.push(case(r, &name, e.delta.unwrap_or_default(), status));
    }
    for c in &r.testcases {
        use crate::config::grammar::CaseStatus;
        let status = match c.status {
            CaseStatus::Pass => TestCaseStatus::success(),
            CaseStatus::Skip => TestCaseStatus::skipped(),
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
        out.push(case(r, &name, std::time::Duration::ZERO, status));
    }
    out
}

/// Earlier attempts as reruns: `flakyFailure` on a passed case, `rerunFailure` on a failed one.
fn add_attempts(r: &CaseResult, s: &mut TestCaseStatus) {
    for a in &r.attempts {
        let kind = match a.verdict.outcome {
            Outcome::Error | Outcome::Cancelled => NonSuccessKind::Error,
            _ => NonSuccessKind::Failure,
        };
        let mut rerun = TestRerun::new(kind);
        rerun.set_type(failure_type(&a.verdict));
        rerun.set_message(xml_text(&a.verdict.reason));
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
fn verdict_status(r: &CaseResult) -> TestCaseStatus {
    let v = &r.verdict;
    let mut s = match v.outcome {
        Outcome::Pass => {
            let mut s = TestCaseStatus::success();
            add_attempts(r, &mut s);
            return s;
        }
        Outcome::Skipped => TestCaseStatus::skipped(),
        Outcome::Fail | Outcome::Timeout => TestCaseStatus::non_success(NonSuccessKind::Failure),
        Outcome::Error | Outcome::Cancelled => TestCaseStatus::non_success(NonSuccessKind::Error),
    };
    s.set_type(failure_type(v));
    s.set_message(xml_text(&v.reason));
    add_attempts(r, &mut s);
    let body = failure_body(r);
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

fn failure_body(r: &CaseResult) -> String {
    let mut body = String::new();
    if let Some(m) = &r.verdict.decided_by {
        body.push_str(&format!("console line {}: {}\n", m.line_no, m.line));
        if let Some(loc) = &m.location {
            body.push_str(&format!("pattern {:?} defined at {loc}\n", m.pattern));
        }
        body.push('\n');
    }
    if !r.console_tail.is_empty() {
        body.push_str("--- last console lines ---\n");
        body.push_str(&r.console_tail.join("\n"));
    }
    body
}

/// The end of the raw console log (at most [`LOG_EXCERPT`] bytes), else the cleaned tail.
fn log_excerpt(r: &CaseResult) -> String {
    r.log
        .as_deref()
        .and_then(|p| read_tail(p, LOG_EXCERPT).ok())
        .unwrap_or_else(|| r.console_tail.join("\n"))
}

fn read_tail(path: &Path, max: u64) -> std::io::Result<String> {
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
            path.display()
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
    error: Option<Error>,
}

impl JunitReporter {
    pub fn new(path: std::path::PathBuf) -> Self {
        JunitReporter { path, error: None }
    }
}

impl super::Reporter for JunitReporter {
    fn event(&mut self, event: &super::Event<'_>) {
        if let super::Event::RunFinished { results, .. } = event {
            self.error = write_junit(results, &self.path).err();
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
        let xml = to_xml(&[r]).unwrap();
        assert!(
            xml.contains(r#"<flakyFailure message="timed out: step 2" type="timeout">"#),
            "{xml}"
        );
        let mut r =
            CaseResult::without_boot("d", Verdict::new(Outcome::Timeout, "again"), Duration::ZERO);
        r.attempts = vec![attempt(Outcome::Error, "QEMU missing")];
        let xml = to_xml(&[r]).unwrap();
        assert!(
            xml.contains(r#"<rerunError message="QEMU missing" type="error">"#),
            "{xml}"
        );
    }

    #[test]
    fn milestones_and_extracted_cases_become_test_cases() {
        use crate::config::grammar::CaseStatus;
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
        };
        r.timeline = vec![entry("hv up", Some(2)), entry("guest up", None)];
        r.testcases = vec![ExtractedCase {
            id: "exit_code".into(),
            status: CaseStatus::Fail,
            raw: Some("42".into()),
            measurement: None,
            units: None,
            line_no: Some(9),
            note: None,
            affects_verdict: true,
            extractor: 0,
        }];
        let xml = to_xml(&[r]).unwrap();
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
    fn root_skipped_attribute_is_dropped_and_suites_keep_theirs() {
        let mut r = CaseResult::without_boot(
            "c",
            Verdict::new(Outcome::Skipped, "needs kvm"),
            Duration::ZERO,
        );
        r.name = "skipped=\"1\" <c>".into();
        let xml = to_xml(&[r]).unwrap();
        let root = xml.lines().find(|l| l.starts_with("<testsuites")).unwrap();
        assert_eq!(
            root,
            r#"<testsuites name="qemu-test" tests="1" failures="0" errors="0">"#
        );
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
        let mut v = Verdict::new(
            Outcome::Fail,
            "QEMU exited with status 0 before the success pattern",
        );
        v.qemu_exit = Some(crate::verdict::QemuExit {
            code: Some(0),
            signal: None,
            killed_by_runner: false,
        });
        let mut r = CaseResult::without_boot("c", v, Duration::from_secs(2));
        r.stages = vec![
            StageTiming {
                stage: Stage::Probe,
                duration: Duration::from_millis(100),
                ok: true,
            },
            StageTiming {
                stage: Stage::Boot,
                duration: Duration::from_secs(1),
                ok: false,
            },
        ];
        r.console_tail = vec!["hello".into(), "bye".into()];
        let xml = to_xml(&[r]).unwrap();
        assert!(
            xml.contains(r#"<testcase name="probe" classname="c" time="0.100"/>"#),
            "{xml}"
        );
        assert!(xml.contains(r#"type="qemu-exit""#), "{xml}");
        assert!(
            xml.contains("--- last console lines ---\nhello\nbye</failure>"),
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
        let text = log_excerpt(&r);
        assert!(text.starts_with("[… first "));
        assert!(text.ends_with("THE END\u{FFFD}"));
        assert!(text.len() < 66 * 1024);
    }

    #[test]
    fn xml_text_drops_noncharacters() {
        assert_eq!(xml_text("a\u{FFFE}b\u{FFFF}c\u{FFFD}\n"), "abc\u{FFFD}\n");
    }
}
