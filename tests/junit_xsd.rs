//! The JUnit report validates against the unmodified Jenkins xUnit `junit-10.xsd` (checked with
//! the real xmllint) and parses back with the counts we wrote.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use qemu_test_action::arch::Arch;
use qemu_test_action::console::{MatchInfo, PatternKind};
use qemu_test_action::error::Location;
use qemu_test_action::report::junit::write_junit;
use qemu_test_action::report::{CaseResult, Stage, StageTiming};
use qemu_test_action::verdict::{Outcome, QemuExit, Verdict};

fn stages(list: &[(Stage, u64, bool)]) -> Vec<StageTiming> {
    list.iter()
        .map(|&(stage, ms, ok)| StageTiming {
            stage,
            duration: Duration::from_millis(ms),
            ok,
        })
        .collect()
}

fn booted(name: &str, verdict: Verdict, boot_ok: bool, log: Option<PathBuf>) -> CaseResult {
    let mut r = CaseResult::without_boot(name, verdict, Duration::from_millis(4321));
    r.arch = Some(Arch::Aarch64);
    r.accel = Some("tcg".into());
    r.qemu_version = Some("7.2.15".into());
    r.stages = stages(&[
        (Stage::Probe, 120, true),
        (Stage::Image, 1500, true),
        (Stage::Build, 30_000, true),
        (Stage::Prepare, 40, true),
        (Stage::Boot, 2600, boot_ok),
    ]);
    r.log = log;
    r
}

fn results(dir: &Path) -> Vec<CaseResult> {
    let log = dir.join("pass.log");
    std::fs::write(
        &log,
        b"\x1b[32mOK\x1b[0m booted\r\nhello <world> & \"friends\"\n\xff\xfe\n",
    )
    .unwrap();
    let pass = booted(
        "pass-case",
        Verdict::new(Outcome::Pass, "success pattern matched"),
        true,
        Some(log),
    );

    let mut v = Verdict::new(
        Outcome::Fail,
        "fail pattern 'panicked' matched on console line 7",
    );
    v.decided_by = Some(MatchInfo {
        kind: PatternKind::Fail,
        index: 0,
        pattern: "panicked".into(),
        location: Some(Location {
            path: "configs/qemu.toml".into(),
            line: 12,
            column: 5,
        }),
        line_no: 7,
        line: "kernel panicked at <&> \"x\"".into(),
        at: Duration::from_millis(2100),
    });
    let mut fail = booted("fail-case", v, false, None);
    fail.console_tail = vec![
        "\u{1b}[31mERROR\u{1b}[0m <&> ]]> --> ".into(),
        "bad utf8: \u{FFFD}\u{FFFD} nonchar: \u{FFFE}".into(),
        "bell \u{7} and nul \u{0} and form feed \u{c}".into(),
    ];
    fail.stderr_tail = vec!["qemu-system-aarch64: warning: <x>".into()];

    let mut v = Verdict::new(
        Outcome::Timeout,
        "boot timed out after 60 s waiting for 'login:'",
    );
    v.qemu_exit = Some(QemuExit {
        code: None,
        signal: Some(9),
        killed_by_runner: true,
    });
    let mut timeout = booted("timeout-case", v, false, None);
    timeout.console_tail = vec!["still booting…".into()];

    let mut error = CaseResult::without_boot(
        "error-case",
        Verdict::new(Outcome::Error, "download of linux@0.0.1 failed: HTTP 504"),
        Duration::from_secs(3),
    );
    error.stages = stages(&[(Stage::Probe, 100, true), (Stage::Image, 2900, false)]);

    let skipped = CaseResult::without_boot(
        "nimbos-x86_64",
        Verdict::new(Outcome::Skipped, "requires vmx, which this runner lacks"),
        Duration::ZERO,
    );
    let cancelled = booted(
        "cancelled-case",
        Verdict::new(Outcome::Cancelled, "SIGTERM"),
        false,
        None,
    );
    vec![pass, fail, timeout, error, skipped, cancelled]
}

fn xmllint(schema: &Path, file: &Path) -> std::process::Output {
    match Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(schema)
        .arg(file)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("xmllint is not installed: install the Debian package libxml2-utils")
        }
        Err(e) => panic!("cannot run xmllint: {e}"),
    }
}

#[test]
fn report_validates_against_unmodified_junit_10_xsd() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out/junit.xml");
    write_junit(&results(dir.path()), &path).unwrap();

    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/junit-10.xsd");
    let out = xmllint(&schema, &path);
    let xml = std::fs::read_to_string(&path).unwrap();
    let mode = std::os::unix::fs::PermissionsExt::mode(&path.metadata().unwrap().permissions());
    assert_eq!(
        mode & 0o777,
        0o644,
        "an ordinary file, not a 0600 temp file"
    );
    assert!(
        out.status.success(),
        "xmllint rejected the report:\n{}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn report_parses_back_with_matching_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junit.xml");
    write_junit(&results(dir.path()), &path).unwrap();
    let xml = std::fs::read_to_string(&path).unwrap();

    let root = xml.lines().find(|l| l.starts_with("<testsuites")).unwrap();
    assert!(!root.contains("skipped="), "{root}");
    assert!(!xml.contains('\u{1b}') && !xml.contains('\u{FFFE}') && !xml.contains('\u{7}'));

    let report = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    assert_eq!(report.test_suites.len(), 6);
    // (name, tests, failures, errors, skipped)
    let expect = [
        ("pass-case", 5, 0, 0, 0),
        ("fail-case", 5, 1, 0, 0),
        ("timeout-case", 5, 1, 0, 0),
        ("error-case", 2, 0, 1, 0),
        ("nimbos-x86_64", 1, 0, 0, 1),
        ("cancelled-case", 5, 0, 1, 0),
    ];
    for (suite, (name, tests, failures, errors, skipped)) in report.test_suites.iter().zip(expect) {
        assert_eq!(
            (
                suite.name.as_str(),
                suite.tests,
                suite.failures,
                suite.errors,
                suite.skipped
            ),
            (name, tests, failures, errors, skipped)
        );
        assert_eq!(suite.test_cases.len(), tests);
    }
    assert_eq!((report.tests, report.failures, report.errors), (23, 2, 2));

    let fail = &report.test_suites[1];
    let boot = fail
        .test_cases
        .iter()
        .find(|c| c.name.as_str() == "boot")
        .unwrap();
    let quick_junit::TestCaseStatus::NonSuccess {
        message,
        ty,
        description,
        ..
    } = &boot.status
    else {
        panic!("boot of fail-case is not a failure: {:?}", boot.status)
    };
    assert_eq!(ty.as_deref(), Some("fail-pattern"));
    assert_eq!(
        message.as_deref(),
        Some("fail pattern 'panicked' matched on console line 7")
    );
    let body = description.as_deref().unwrap();
    assert!(body.contains("ERROR <&> ]]> -->"), "{body}");
    assert!(
        body.contains("console line 7: kernel panicked at <&> \"x\""),
        "{body}"
    );
    assert!(body.contains("\u{FFFD}\u{FFFD}"));
    let prop = |s: &quick_junit::TestSuite, k: &str| {
        s.properties
            .iter()
            .find(|p| p.name.as_str() == k)
            .map(|p| p.value.to_string())
    };
    assert_eq!(prop(fail, "accel").as_deref(), Some("tcg"));
    assert_eq!(prop(fail, "qemu-version").as_deref(), Some("7.2.15"));
    assert_eq!(prop(fail, "arch").as_deref(), Some("aarch64"));

    let timeout_boot = report.test_suites[2]
        .test_cases
        .iter()
        .find(|c| c.name.as_str() == "boot");
    assert!(matches!(
        &timeout_boot.unwrap().status,
        quick_junit::TestCaseStatus::NonSuccess { ty: Some(t), .. } if t.as_str() == "timeout"
    ));

    let pass_out = report.test_suites[0].system_out.as_deref().unwrap();
    assert!(pass_out.contains("OK booted"), "{pass_out}");
    assert!(pass_out.contains("hello <world> & \"friends\""));
}
