//! Baseline comparison without QEMU: the threshold rule, the reader against what
//! `JsonReporter` really writes, and what a comparison records.

use std::time::Duration;

use super::*;
use crate::console::PatternKind;
use crate::console::script::{TimelineEntry, TimelineKind};
use crate::report::json::JsonReporter;
use crate::report::{Event, Reporter};
use crate::verdict::Verdict;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A booted case: `outcome`, a success match at `boot` (for a pass) and milestones reached at
/// the given times.
fn case(name: &str, outcome: Outcome, boot: Duration, marks: &[(&str, Duration)]) -> CaseResult {
    let mut b = CaseResult::builder(
        name,
        outcome,
        "success pattern 'Hello' matched console line 3",
    );
    if outcome == Outcome::Pass {
        b = b.decided_by(PatternKind::Success, "Hello", 3, "Hello", boot);
    }
    let timeline = marks
        .iter()
        .map(|(n, at)| TimelineEntry {
            kind: TimelineKind::Milestone,
            name: n.to_string(),
            pattern: n.to_string(),
            at: Some(*at),
            delta: Some(*at),
            line_no: Some(1),
            line: Some(n.to_string()),
            optional: false,
        })
        .collect();
    b.duration(boot + ms(50))
        .stage(Stage::Boot, boot + ms(40), outcome == Outcome::Pass)
        .timeline(timeline)
        .build()
}

/// Writes `results` with the real JSON reporter, as an earlier run would have.
fn write_results(dir: &Path, results: &[CaseResult]) -> PathBuf {
    let path = dir.join("results.json");
    let mut j = JsonReporter::new(path.clone());
    j.event(&Event::RunFinished {
        results,
        exit_code: 0,
        outcome: crate::verdict::worst(results.iter().map(|r| r.verdict.outcome)),
    });
    j.finish().expect("results.json written");
    path
}

fn options(file: &Path, threshold: Option<Threshold>, fail: bool) -> BaselineOptions {
    BaselineOptions {
        file: Some(file.to_path_buf()),
        threshold,
        fail_on_regression: fail,
    }
}

fn load(opts: &BaselineOptions) -> BaselineCheck {
    let (check, warnings) = opts.load(Path::new("/"));
    assert!(warnings.is_empty(), "{warnings:?}");
    check.expect("a usable baseline")
}

#[test]
fn threshold_syntax() {
    let t = Threshold::parse("20%,500ms").unwrap();
    assert_eq!((t.percent, t.delta), (Some(20.0), Some(ms(500))));
    let t = Threshold::parse(" 12.5% , 1.5s ").unwrap();
    assert_eq!((t.percent, t.delta), (Some(12.5), Some(ms(1500))));
    assert_eq!(Threshold::parse("50%").unwrap().delta, None);
    assert_eq!(Threshold::parse("2s").unwrap().percent, None);
    // A bare number is seconds, as for every duration.
    assert_eq!(Threshold::parse("20").unwrap().delta, Some(ms(20_000)));
    assert_eq!(Threshold::default(), Threshold::parse("20%,500ms").unwrap());
    assert_eq!(Threshold::default().to_string(), "+20% and +500ms");
    assert_eq!(Threshold::parse("2s").unwrap().to_string(), "+2s");
    for (bad, why) in [
        ("abc%", "'abc%' is not a percentage"),
        ("20%,30%", "two percentages"),
        ("1s,2s", "two durations"),
        ("20%,", "an empty part"),
        ("-5%", "between 0% and 100000%"),
        ("fast", "invalid duration 'fast'"),
    ] {
        let e = Threshold::parse(bad).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
        assert!(
            e.contains("expected PCT%,DURATION such as 20%,500ms"),
            "{e}"
        );
    }
}

#[test]
fn a_regression_needs_both_parts_exceeded() {
    let t = Threshold::default();
    // +30 % but only +0.3 s: jitter of a short boot.
    assert!(!t.exceeded(ms(1000), ms(1300)));
    // +6 % of a long boot, though +0.6 s.
    assert!(!t.exceeded(ms(10_000), ms(10_600)));
    assert!(t.exceeded(ms(100), ms(700)));
    assert!(t.exceeded(ms(10_000), ms(12_100)));
    // Exactly at the threshold is not past it; equal or faster never is.
    assert!(!t.exceeded(ms(2500), ms(3000)));
    assert!(!t.exceeded(ms(100), ms(100)));
    assert!(!t.exceeded(ms(5000), ms(100)));
    // One part alone.
    let pct = Threshold::parse("10%").unwrap();
    assert!(pct.exceeded(ms(1000), ms(1101)));
    assert!(!pct.exceeded(ms(1000), ms(1099)));
    let abs = Threshold::parse("1s").unwrap();
    assert!(abs.exceeded(ms(60_000), ms(61_001)));
    assert!(!abs.exceeded(ms(100), ms(1000)));
    // From a zero baseline any slowdown is past a ratio.
    assert!(pct.exceeded(Duration::ZERO, ms(1)));
}

#[test]
fn compares_boot_and_milestones_from_what_the_json_reporter_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let before = case(
        "shell",
        Outcome::Pass,
        ms(100),
        &[("prompt", ms(30)), ("done", ms(90))],
    );
    let file = write_results(dir.path(), &[before]);
    let check = load(&options(&file, None, false));
    let mut now = case(
        "shell",
        Outcome::Pass,
        ms(3100),
        &[("prompt", ms(35)), ("done", ms(3090)), ("extra", ms(3095))],
    );
    let why = check.apply(&mut now).expect("regressed");
    let c = now.baseline.as_ref().expect("compared");
    assert_eq!(c.status, ComparisonStatus::Compared);
    assert!(c.regressed);
    assert_eq!(c.threshold, "+20% and +500ms");
    let names: Vec<(&str, Option<Duration>, bool)> = c
        .times
        .iter()
        .map(|t| (t.name.as_str(), t.baseline, t.regression))
        .collect();
    assert_eq!(
        names,
        [
            ("boot", Some(ms(100)), true),
            ("prompt", Some(ms(30)), false),
            ("done", Some(ms(90)), true),
            ("extra", None, false),
        ]
    );
    assert_eq!(c.times[0].delta_text(), "+3.000s");
    assert_eq!(c.times[0].ratio_text(), "×31.00");
    assert_eq!(c.times[3].describe(), "3.095s (new)");
    assert!(
        why.starts_with(&format!(
            "boot time regressed past the threshold (+20% and +500ms) against the baseline {}: \
             boot 3.100s (baseline 0.100s: +3.000s, ×31.00); milestone 'done' 3.090s",
            file.display()
        )),
        "{why}"
    );
    // Without --fail-on-regression the verdict is untouched.
    assert_eq!(now.verdict.outcome, Outcome::Pass);
    // results.json carries delta and ratio as numbers.
    let json = serde_json::to_value(&now).unwrap();
    let boot = &json["baseline"]["times"][0];
    assert_eq!(boot["kind"], "boot");
    assert_eq!(boot["current"], 3.1);
    assert_eq!(boot["baseline"], 0.1);
    assert_eq!(boot["delta"], 3.0);
    assert_eq!(boot["ratio"], 31.0);
    assert_eq!(boot["regression"], true);
    assert_eq!(
        json["baseline"]["times"][3]["baseline"],
        serde_json::Value::Null
    );
    assert_eq!(json["baseline"]["status"], "compared");
}

#[test]
fn fail_on_regression_fails_a_regressed_pass_and_keeps_other_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_results(
        dir.path(),
        &[case("a", Outcome::Pass, ms(100), &[("up", ms(50))])],
    );
    let check = load(&options(&file, None, true));
    let mut slow = case("a", Outcome::Pass, ms(2000), &[("up", ms(60))]);
    check.apply(&mut slow);
    assert_eq!(slow.verdict.outcome, Outcome::Fail);
    assert!(
        slow.verdict
            .reason
            .starts_with("boot time regressed past the threshold"),
        "{}",
        slow.verdict.reason
    );
    assert!(
        slow.verdict
            .reason
            .ends_with("(success pattern 'Hello' matched console line 3)"),
        "{}",
        slow.verdict.reason
    );
    // Within the threshold: still a pass.
    let mut ok = case("a", Outcome::Pass, ms(400), &[("up", ms(60))]);
    assert_eq!(check.apply(&mut ok), None);
    assert_eq!(ok.verdict.outcome, Outcome::Pass);
    // A timeout with a slow milestone stays a timeout (with its own reason), and has no boot
    // time to compare.
    let mut t = case("a", Outcome::Timeout, ms(9000), &[("up", ms(5000))]);
    let reason = t.verdict.reason.clone();
    assert!(check.apply(&mut t).is_some());
    assert_eq!(t.verdict.outcome, Outcome::Timeout);
    assert_eq!(t.verdict.reason, reason);
    let kinds: Vec<TimeKind> = t.baseline.unwrap().times.iter().map(|x| x.kind).collect();
    assert_eq!(kinds, [TimeKind::Milestone]);
}

#[test]
fn a_case_not_in_the_baseline_is_new_and_never_regressed() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_results(dir.path(), &[case("old", Outcome::Pass, ms(10), &[])]);
    let check = load(&options(&file, None, true));
    let mut r = case("fresh", Outcome::Pass, ms(9000), &[("up", ms(8000))]);
    assert_eq!(check.apply(&mut r), None);
    assert_eq!(r.verdict.outcome, Outcome::Pass);
    let c = r.baseline.unwrap();
    assert_eq!(c.status, ComparisonStatus::New);
    assert!(!c.regressed);
    assert!(c.times.iter().all(|t| t.baseline.is_none()));
    let lines = terminal_lines(&c);
    assert_eq!(lines.len(), 1);
    assert!(lines[0].0.contains("baseline: new"), "{lines:?}");
}

#[test]
fn a_baseline_boot_that_did_not_pass_is_not_compared() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_results(
        dir.path(),
        &[case("a", Outcome::Fail, ms(10), &[("up", ms(5))])],
    );
    let check = load(&options(&file, None, true));
    let mut r = case("a", Outcome::Pass, ms(5000), &[("up", ms(6))]);
    assert_eq!(check.apply(&mut r), None);
    let c = r.baseline.unwrap();
    assert_eq!(c.times.len(), 1);
    assert_eq!(c.times[0].name, "up");
}

#[test]
fn a_case_that_never_booted_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_results(dir.path(), &[case("a", Outcome::Pass, ms(10), &[])]);
    let check = load(&options(&file, None, true));
    let mut r = CaseResult::without_boot("a", Verdict::new(Outcome::Skipped, "no kvm"), ms(1));
    assert_eq!(check.apply(&mut r), None);
    assert_eq!(r.baseline, None);
    assert!(serde_json::to_value(&r).unwrap().get("baseline").is_none());
}

#[test]
fn an_unusable_baseline_is_a_warning_naming_the_file_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let v2 = write(
        "v2.json",
        r#"{"version": 2, "tool": "qemu-test", "cases": []}"#,
    );
    let cases = [
        (dir.path().join("missing.json"), "cannot read baseline"),
        (
            write("text.json", "hello"),
            "not JSON: expected value at line 1 column 1",
        ),
        (
            write("other.json", r#"{"version": 1}"#),
            "not a qemu-test results.json",
        ),
        (
            v2,
            "results.json format version 2, this qemu-test reads version 1",
        ),
        (
            write(
                "shape.json",
                r#"{"version": 1, "tool": "qemu-test", "cases": 3}"#,
            ),
            "not a results.json this qemu-test can read: invalid type: integer `3`",
        ),
        (dir.path().to_path_buf(), "not a regular file"),
    ];
    for (path, why) in cases {
        let (check, warnings) = options(&path, None, true).load(Path::new("/"));
        assert!(check.is_none(), "{}", path.display());
        assert_eq!(warnings.len(), 1);
        let w = &warnings[0];
        assert!(
            w.starts_with(&format!("baseline {}: ", path.display())),
            "{w}"
        );
        assert!(w.contains(why), "{}: {w}", path.display());
        assert!(
            w.ends_with("boot times are not compared in this run"),
            "{w}"
        );
    }
}

#[test]
fn options_without_a_baseline_warn() {
    let none = BaselineOptions {
        file: None,
        threshold: Some(Threshold::default()),
        fail_on_regression: true,
    };
    let (check, warnings) = none.load(Path::new("/"));
    assert!(check.is_none());
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].starts_with("--fail-on-regression has no effect without --baseline"));
    assert!(warnings[1].starts_with("--regression-threshold has no effect"));
}

#[test]
fn the_summary_section_escapes_names_and_flags_regressions() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_results(dir.path(), &[case("a|b", Outcome::Pass, ms(100), &[])]);
    let check = load(&options(&file, None, false));
    let mut slow = case("a|b", Outcome::Pass, ms(2000), &[]);
    check.apply(&mut slow);
    let mut new = case("c", Outcome::Pass, ms(2000), &[]);
    check.apply(&mut new);
    let plain = case("d", Outcome::Pass, ms(1), &[]);
    let mut md = String::new();
    summary_section(&mut md, [&slow, &new, &plain], |s| s.replace('|', "&#124;"));
    assert!(md.starts_with("### Boot times against the baseline\n\n1 of 2 cases regressed (more than +20% and +500ms)"), "{md}");
    assert!(
        md.contains("| a&#124;b | boot | 2.000 s | 0.100 s | +1.900s | ×20.00 | 🔺 regression |"),
        "{md}"
    );
    assert!(md.contains("| c | – | – | new | – | – | 🆕 |"), "{md}");
    assert!(!md.contains("| d |"), "{md}");
    let mut empty = String::new();
    summary_section(&mut empty, [&plain], |s| s.to_string());
    assert_eq!(empty, "");
}
